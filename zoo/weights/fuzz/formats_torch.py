"""Fuzz targets for the PyTorch readers (zip and legacy ``torch.save``
layouts) and the safetensors reader, all through
``zoo.weights.torch_pickle.read_state_dict``.

The seed files are written here byte for byte as torch lays them out (see the
docstring of ``zoo.weights.torch_pickle``), without torch: a small pickle
writer emits the opcodes torch's pickler emits (``GLOBAL``, ``BINPERSID``,
``_rebuild_tensor_v2``/``v3``, ``_rebuild_parameter``, an ``OrderedDict`` with
its ``_metadata`` state), ``zipfile`` or a hand-made zip writer packs the
records. The crafted cases are the attacks an earlier fuzzer found (a
stride-0 view of a 1.6 GB tensor in a 1.6 KB file, a 12-byte pickle with a
huge memo index, a 1 MB member that inflates to 1 GiB, unsupported zip
methods, encrypted members, invalid UTF-8, deep nesting) and others of the
same kinds; each must end in a documented error naming the file.
"""

from __future__ import annotations

import bz2
import dataclasses
import functools
import io
import json
import lzma
import pickle
import pickletools
import random
import struct
import zipfile
import zlib
from typing import Any, Optional

import numpy as np

from zoo.weights.fuzz import Target
from zoo.weights.fuzz.mutate import INTERESTING

__all__ = ["OD", "TARGETS", "PickleWriter", "T", "legacy_file", "safetensors_file", "zip_file",
           "zip_raw"]

READ = "zoo.weights.torch_pickle:read_state_dict"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# torch dtype name: (storage class, numpy dtype, safetensors code)
DTYPES = {"float32": ("FloatStorage", np.float32, "F32"),
          "float16": ("HalfStorage", np.float16, "F16"),
          "int64": ("LongStorage", np.int64, "I64"), "uint8": ("ByteStorage", np.uint8, "U8"),
          "bool": ("BoolStorage", np.bool_, "BOOL"), "int32": ("IntStorage", np.int32, "I32")}
# Integers that break size/stride/offset arithmetic, besides mutate.INTERESTING.
NASTY_INTS = tuple(sorted(set(INTERESTING) | {-1, -2, -(2**31), -(2**63), 2, 3, 7, 64, 1000,
                                               2**31, 2**32, 2**40, 2**64, 2**100}))


# --------------------------------------------------------------------------
# A protocol-2 pickle writer emitting what torch's pickler emits.

@dataclasses.dataclass
class T:
    """A tensor as torch pickles it: ``_rebuild_tensor_v2(storage, offset,
    size, stride, requires_grad, hooks)``; ``dtype`` names the storage class
    (``v3``: an UntypedStorage and ``_rebuild_tensor_v3(..., dtype)``);
    ``view``: a legacy view ``(view_key, offset, numel)`` of the root storage.

    The numeric fields are written as given, so the crafted cases can make
    them negative, huge or of the wrong type.

    Attributes:
        key: the storage's key: the zip record ``data/<key>``, or the
            legacy file's storage key.
        dtype: the torch dtype name; with ``v3`` any (``"float8_e5m2"``),
            else a key of ``DTYPES`` (it picks the storage class).
        offset: the storage offset, in elements.
        size: the shape (a tuple or list; another value is written as is).
        stride: the strides, in elements.
        numel: the storage's element count, as its persistent id states it.
        view: legacy files only: ``(view key, offset, numel)`` when the
            storage is a view of another one, else None.
        v3: pickle with ``_rebuild_tensor_v3`` and an UntypedStorage.
        parameter: wrap in ``torch._utils._rebuild_parameter`` (an
            ``nn.Parameter``).
    """

    key: str
    dtype: str
    offset: Any
    size: Any
    stride: Any
    numel: Any
    view: Optional[tuple] = None
    v3: bool = False
    parameter: bool = False


@dataclasses.dataclass
class OD:
    """``collections.OrderedDict(items)``, with torch's ``_metadata`` state if given.

    Attributes:
        items: the (key, value) pairs, values anything ``PickleWriter.value``
            writes (``T`` for a tensor, nested ``OD`` for a sub-dict).
        metadata: torch's ``_metadata``, module prefix -> dict such as
            ``{"version": 1}``, set as the dict's state; None for none.
    """

    items: list
    metadata: Optional[dict] = None


class PickleWriter:
    """A protocol-2 pickle of torch's shape, opcode by opcode (no torch).

    Memo indices follow Python's pickler, which ``torch.save`` uses: each
    global, string and container memoized once, a global fetched again with
    BINGET. Call ``value`` with the object, then ``finish``.

    Args:
        legacy: write storages' persistent ids as the legacy format does,
            with a sixth element (``T.view``).
    """

    def __init__(self, legacy: bool = False):
        self.out = bytearray(b"\x80\x02")
        self.memo = 0
        self.globals: dict = {}
        self.legacy = legacy

    def put(self) -> None:
        """Memoize the top of the stack under the next memo index (BINPUT,
        or LONG_BINPUT from index 256)."""
        self.out += b"q" + bytes([self.memo]) if self.memo < 256 else \
            b"r" + struct.pack("<I", self.memo)
        self.memo += 1

    def glob(self, module: str, name: str) -> None:
        """Push ``module.name``: a GLOBAL the first time, memoized; a memo
        fetch (BINGET/LONG_BINGET) after that.

        Args:
            module: the global's module ("torch._utils").
            name: its name ("_rebuild_tensor_v2").
        """
        if (module, name) in self.globals:
            i = self.globals[(module, name)]
            self.out += b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)
            return
        self.out += f"c{module}\n{name}\n".encode()
        self.globals[(module, name)] = self.memo
        self.put()

    def value(self, v) -> None:
        """Push ``v`` with the opcodes Python's pickler would use.

        Args:
            v: None, a bool, int, float, str, tuple, list, dict, ``OD`` or
                ``T`` (containers nest).

        Raises:
            TypeError: for any other type.
        """
        out = self.out
        if v is None:
            out += b"N"
        elif v is True or v is False:
            out += b"\x88" if v else b"\x89"
        elif isinstance(v, int):
            out += encode_int(v)
        elif isinstance(v, float):
            out += b"G" + struct.pack(">d", v)
        elif isinstance(v, str):
            b = v.encode("utf-8", "surrogatepass")
            out += b"X" + struct.pack("<I", len(b)) + b
            self.put()
        elif isinstance(v, tuple):
            if len(v) == 0:
                out += b")"
                return
            if len(v) > 3:
                out += b"("
            for x in v:
                self.value(x)
            self.out += b"t" if len(v) > 3 else b"\x85\x86\x87"[len(v) - 1:len(v)]
            self.put()
        elif isinstance(v, list):
            out += b"]"
            self.put()
            if v:
                self.out += b"("
                for x in v:
                    self.value(x)
                self.out += b"e"
        elif isinstance(v, OD):
            self.glob("collections", "OrderedDict")
            self.out += b")R"
            self.put()
            self._items(v.items)
            if v.metadata is not None:
                self.value({"_metadata": OD(list(v.metadata.items()))})
                self.out += b"b"
        elif isinstance(v, dict):
            out += b"}"
            self.put()
            self._items(list(v.items()))
        elif isinstance(v, T):
            self.tensor(v)
        else:
            raise TypeError(type(v))

    def _items(self, items) -> None:
        if items:
            self.out += b"("
            for k, x in items:
                self.value(k)
                self.value(x)
            self.out += b"u"

    def tensor(self, t: T) -> None:
        """Push the ``_rebuild_tensor_v2``/``v3`` call (in a
        ``_rebuild_parameter`` call for a parameter) that rebuilds ``t``,
        its storage as a persistent id (BINPERSID).

        Args:
            t: the tensor.
        """
        if t.parameter:
            self.glob("torch._utils", "_rebuild_parameter")
            self.out += b"("
            self.tensor(dataclasses.replace(t, parameter=False))
            self.out += b"\x88"
            self.value(OD([]))
            self.out += b"tR"
            self.put()
            return
        self.glob("torch._utils", "_rebuild_tensor_v3" if t.v3 else "_rebuild_tensor_v2")
        self.out += b"(("
        self.value("storage")
        if t.v3:
            self.glob("torch.storage", "UntypedStorage")
        else:
            self.glob("torch", DTYPES[t.dtype][0])
        self.value(t.key)
        self.value("cpu")
        self.value(t.numel)
        if self.legacy:
            self.value(t.view)
        self.out += b"t"
        self.put()
        self.out += b"Q"
        self.value(t.offset)
        self.value(tuple(t.size) if isinstance(t.size, (list, tuple)) else t.size)
        self.value(tuple(t.stride) if isinstance(t.stride, (list, tuple)) else t.stride)
        self.out += b"\x89"
        self.value(OD([]))
        if t.v3:
            self.glob("torch", t.dtype)
        self.out += b"t"
        self.put()
        self.out += b"R"
        self.put()

    def finish(self) -> bytes:
        """The pickle so far, ended with STOP.

        Returns:
            The pickle's bytes.
        """
        return bytes(self.out + b".")


def encode_int(v: int) -> bytes:
    """The opcode Python's pickler uses for ``v`` at protocol 2."""
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    if -(2**31) <= v < 2**31:
        return b"J" + struct.pack("<i", v)
    b = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    if len(b) < 256:
        return b"\x8a" + bytes([len(b)]) + b  # LONG1
    return b"\x8b" + struct.pack("<I", len(b)) + b  # LONG4


def dumps(obj, legacy: bool = False) -> bytes:
    w = PickleWriter(legacy)
    w.value(obj)
    return w.finish()


# --------------------------------------------------------------------------
# Containers.

def zip_file(obj, storages: dict, byteorder: str = "little", archive: str = "archive",
             pkl: Optional[bytes] = None) -> bytes:
    """A torch.save zip: ``archive/data.pkl``, the small records torch 2.x
    writes, ``archive/data/<key>`` per storage (stored, not compressed).

    Args:
        obj: the object to pickle (``OD`` of ``T`` for a state dict).
        storages: storage key -> its raw bytes (in ``byteorder``).
        byteorder: the ``byteorder`` record: "little" or "big".
        archive: the top folder's name (torch uses the file's stem).
        pkl: ``data.pkl`` as given (``obj`` is then not used).

    Returns:
        The archive's bytes.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{archive}/data.pkl", pkl if pkl is not None else dumps(obj))
        zf.writestr(f"{archive}/.format_version", "1")
        zf.writestr(f"{archive}/.storage_alignment", "64")
        zf.writestr(f"{archive}/byteorder", byteorder)
        for key, raw in storages.items():
            zf.writestr(f"{archive}/data/{key}", raw)
        zf.writestr(f"{archive}/version", "3\n")
    return buf.getvalue()


def legacy_file(obj, storages: dict, little: bool = True, pkl: Optional[bytes] = None,
                keys: Optional[list] = None, counts: Optional[dict] = None) -> bytes:
    """A legacy torch.save file: magic, protocol, sys_info, the object, the
    storage keys, then per key an int64 element count and the raw bytes,
    both little-endian whatever machine wrote them (``little`` only sets
    sys_info's ``little_endian``, which torch ignores when loading).
    ``storages``: key -> (numpy dtype, raw bytes).

    Args:
        obj: the object to pickle, with ``T.view`` in the persistent ids.
        storages: storage key -> (numpy dtype, raw bytes), in order.
        little: sys_info's ``little_endian`` flag.
        pkl: the object's pickle as given (``obj`` is then not used).
        keys: the storage key list written; default ``storages``' keys.
        counts: key -> element count written before each storage; default
            its byte length over the dtype's size (given, a missing key
            counts 0).

    Returns:
        The file's bytes.
    """
    out = bytearray()
    out += pickle.dumps(LEGACY_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2)
    out += pickle.dumps({"protocol_version": 1001, "little_endian": little,
                         "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    out += pkl if pkl is not None else dumps(obj, legacy=True)
    keys = list(storages) if keys is None else keys
    out += pickle.dumps(keys, protocol=2)
    for key, (dt, raw) in storages.items():
        count = len(raw) // np.dtype(dt).itemsize if counts is None else counts.get(key, 0)
        out += struct.pack("<q", count) + raw
    return bytes(out)


def zip_raw(members: list[dict]) -> bytes:
    """A zip written field by field, for the headers ``zipfile`` will not
    write: each member ``{"name", "data" (as stored), "method", "crc",
    "size" (declared uncompressed), "flags"}`` (defaults: stored, true CRC).

    Args:
        members: the member dicts: ``name`` (str or bytes) and ``data``
            required; ``method`` (default 0), ``flags`` (0), ``crc`` (the
            CRC-32 of ``data`` when stored, else 0) and ``size`` (default
            ``len(data)``) optional. The compressed size is ``len(data)``.

    Returns:
        The archive's bytes.
    """
    out, central = bytearray(), bytearray()
    for m in members:
        name = m["name"].encode() if isinstance(m["name"], str) else m["name"]
        data = m["data"]
        method, flags = m.get("method", 0), m.get("flags", 0)
        crc = m.get("crc", zlib.crc32(data) if method == 0 else 0)
        size = m.get("size", len(data))
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc,
                           len(data), size, len(name), 0) + name + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 0x21,
                               crc, len(data), size, len(name), 0, 0, 0, 0, 0, offset) + name
    cd_offset = len(out)
    out += central
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                       len(central), cd_offset, 0)
    return bytes(out)


def safetensors_file(tensors: dict, metadata: Optional[dict] = None,
                     header: Optional[dict] = None) -> bytes:
    """``tensors``: name -> numpy array, laid out as the Rust writer does
    (JSON header padded with spaces to 8 bytes, data in header order).

    Args:
        tensors: name -> array of a dtype in ``DTYPES`` (float32, float16,
            int64, uint8, bool, int32), stored little-endian.
        metadata: the ``__metadata__`` entry (str -> str), first in the
            header; None for none.
        header: a header to write instead of the one computed (the data is
            still appended): for headers that lie.

    Returns:
        The file's bytes (the header's length as a little-endian uint64,
        the header, the data).
    """
    codes = {np.dtype(d): c for _, d, c in DTYPES.values()}
    entries, data, pos = {}, bytearray(), 0
    if metadata is not None:
        entries["__metadata__"] = metadata
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        entries[name] = {"dtype": codes[arr.dtype], "shape": list(arr.shape),
                         "data_offsets": [pos, pos + len(raw)]}
        data += raw
        pos += len(raw)
    text = json.dumps(header if header is not None else entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(data)


# --------------------------------------------------------------------------
# Seeds.

def _state(storages: dict, legacy: bool = False) -> OD:
    """A small state dict: conv/bn/linear tensors of float32, float16 and
    int64, a transposed and a sliced view of one shared storage, a
    Parameter, a scalar, with torch's ``_metadata``. ``storages`` is filled
    with key -> numpy array."""
    rng = np.random.default_rng(0)

    def store(key, arr):
        storages[key] = np.ascontiguousarray(arr)
        return arr.size

    n = store("0", rng.standard_normal((4, 2, 3, 3)).astype(np.float32))
    items = [("conv.weight", T("0", "float32", 0, (4, 2, 3, 3), (18, 9, 3, 1), n))]
    n = store("1", rng.standard_normal(4).astype(np.float32))
    items.append(("bn.weight", T("1", "float32", 0, (4,), (1,), n, parameter=True)))
    n = store("2", rng.standard_normal(4).astype(np.float16))
    items.append(("bn.running_mean", T("2", "float16", 0, (4,), (1,), n)))
    n = store("3", np.array([7], np.int64))
    items.append(("bn.num_batches_tracked", T("3", "int64", 0, (), (), n)))
    n = store("4", np.arange(24, dtype=np.float32))
    items.append(("fc.weight", T("4", "float32", 0, (6, 4), (1, 6), n)))  # transposed
    items.append(("fc.slice", T("4", "float32", 8, (3, 3), (6, 1), n)))  # sliced, offset
    if legacy:  # a legacy view of the root storage "5": elements 2..5
        n = store("5", np.arange(8, dtype=np.float32) * 0.5)
        items.append(("fc.bias", T("5", "float32", 1, (2,), (1,), 8, view=("6", 2, 4))))
    else:
        n = store("5", np.array([1, 65535, 300], np.uint16).view(np.uint8))
        items.append(("u16", T("5", "uint16", 0, (3,), (1,), n, v3=True)))
    meta = {"": {"version": 1}, "conv": {"version": 1}, "bn": {"version": 2}}
    return OD(items, metadata=meta)


def _little_raw(arrays: dict, big: bool = False) -> dict:
    def order(a):
        return a.astype(a.dtype.newbyteorder(">")) if big and a.dtype.itemsize > 1 else a

    return {k: order(a).tobytes() for k, a in arrays.items()}


def zip_seeds() -> list[bytes]:
    seeds = []
    arrays: dict = {}
    sd = _state(arrays)
    seeds.append(zip_file(sd, _little_raw(arrays)))
    arrays = {}
    wrapped = {"epoch": 3, "arch": "tiny", "lr": 0.1,
               "model": OD([("backbone", _state(arrays)), ("head.scale", 2.0)]),
               "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}}
    seeds.append(zip_file(wrapped, _little_raw(arrays), archive="ckpt"))
    arrays = {"0": np.arange(6, dtype=np.float32), "1": np.array([-2, 5], np.int64),
              "2": np.array([0, 60, 188, 124], np.uint8)}  # float8_e5m2 bytes: 0, 1, -1, inf
    sd = OD([("w", T("0", "float32", 0, (2, 3), (3, 1), 6)),
             ("i", T("1", "int64", 0, (2,), (1,), 2)),
             ("f8", T("2", "float8_e5m2", 0, (2, 2), (1, 2), 4, v3=True))])
    seeds.append(zip_file(sd, _little_raw(arrays, big=True), byteorder="big"))
    return seeds


def _legacy_storages(arrays: dict, big: bool = False) -> dict:
    raw = _little_raw(arrays, big)
    return {k: (arrays[k].dtype, raw[k]) for k in arrays}


def legacy_seeds() -> list[bytes]:
    seeds = []
    arrays: dict = {}
    sd = _state(arrays, legacy=True)
    seeds.append(legacy_file(sd, _legacy_storages(arrays)))
    arrays = {}
    wrapped = {"state_dict": _state(arrays, legacy=True), "epoch": 1, "best": 0.5}
    seeds.append(legacy_file(wrapped, _legacy_storages(arrays)))
    arrays = {"0": np.arange(6, dtype=np.float32)}
    sd = OD([("w", T("0", "float32", 0, (3, 2), (1, 3), 6))])
    seeds.append(legacy_file(sd, _legacy_storages(arrays), little=False))  # from a big-endian box
    return seeds


def safetensors_seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    a = {"conv.weight": rng.standard_normal((4, 2, 3, 3)).astype(np.float32),
         "bn.running_mean": rng.standard_normal(4).astype(np.float16),
         "bn.num_batches_tracked": np.array(3, np.int64),
         "mask": np.array([True, False, True]), "empty": np.zeros((0, 3), np.float32)}
    b = {"w": np.arange(6, dtype=np.int32).reshape(2, 3), "b": np.arange(3, dtype=np.uint8)}
    return [safetensors_file(a, metadata={"format": "pt"}), safetensors_file(b)]


# --------------------------------------------------------------------------
# Crafted cases.

def _one(t: T, storages: dict, fmt: str) -> bytes:
    sd = OD([("w", t)])
    if fmt == "zip":
        return zip_file(sd, {k: v.tobytes() for k, v in storages.items()})
    return legacy_file(sd, {k: (v.dtype, v.tobytes()) for k, v in storages.items()})


def _deflate_zeros(size: int) -> bytes:
    """A raw deflate stream of ``size`` zero bytes (a multiple of 16 MiB),
    made of one repeated block (a full flush resets the compressor, so every
    16 MiB of zeros compresses to the same bytes): about 1 KB per MB."""
    unit_in = 16 * 2**20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    c.compress(bytes(unit_in))
    first = c.flush(zlib.Z_FULL_FLUSH)
    c.compress(bytes(unit_in))
    unit = c.flush(zlib.Z_FULL_FLUSH)
    assert size % unit_in == 0
    return first + unit * (size // unit_in - 1) + c.flush()


@functools.lru_cache(maxsize=1)
def _deflate_bomb(size: int) -> tuple[bytes, int]:
    """``_deflate_zeros(size)`` and its CRC (a second to make: kept)."""
    return _deflate_zeros(size), _zero_crc(size)


def _zero_crc(size: int) -> int:
    crc, block = 0, bytes(16 * 2**20)
    for _ in range(size // len(block)):
        crc = zlib.crc32(block, crc)
    return crc


def _pickle_attacks() -> list[tuple[str, bytes]]:
    """Bare pickles (they become data.pkl, or a legacy file's first pickle)."""
    deep_dict = b"\x80\x02" + b"}X\x01\x00\x00\x00a" * 10_000 + b"N" + b"s" * 10_000 + b"."
    # hashing a 300,000-deep tuple (as a dict key) overflows CPython's C stack
    deep_tuple_key = (b"\x80\x02}" + b")" + b"\x85" * 300_000 + b"Ns.")
    memo_dag = bytearray(b"\x80\x02}q\x00")  # d_{i+1} = {"a": d_i, "b": d_i}: 2**60 paths
    for i in range(60):
        memo_dag += b"}(X\x01\x00\x00\x00ah" + bytes([i]) + b"X\x01\x00\x00\x00bh" + \
            bytes([i]) + b"uq" + bytes([i + 1])
    return [
        # 12 bytes: LONG_BINPUT 10**8 sizes the C unpickler's memo table to 1.6 GB
        ("memo_index_1e8", b"\x80\x02Nr" + struct.pack("<I", 10**8) + b"0N."),
        ("memo_huge_index", b"\x80\x02Nr\xff\xff\xff\x3f0N."),  # LONG_BINPUT 2**30-1
        ("memo_text_put_huge", b"\x80\x02Np99999999999\n0N."),
        ("memo_get_unwritten", b"\x80\x02Nq\x00j\xff\xff\xff\x00."),
        ("binbytes8_huge", b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"x."),
        ("binunicode8_huge", b"\x80\x04\x8d" + struct.pack("<Q", 2**62) + b"x."),
        ("binunicode_huge", b"\x80\x02X\xf0\xff\xff\xffx."),
        ("long4_huge", b"\x80\x02\x8b\xff\xff\xff\x7f\x01."),
        ("frame_huge", b"\x80\x04\x95" + struct.pack("<Q", 2**50) + b"N."),
        ("text_int_5000_digits", b"\x80\x02I" + b"9" * 5000 + b"\n."),
        ("invalid_utf8_key", b"\x80\x02}X\x02\x00\x00\x00\xff\xfeNs."),
        ("deep_nested_dicts", deep_dict),
        ("deep_tuple_as_key", deep_tuple_key),
        ("deep_lists", b"\x80\x02" + b"]" * 10_000 + b"a" * 9_999 + b"."),
        ("deep_marks", b"\x80\x02" + b"(" * 20_000 + b"N."),
        ("dict_cycle_wrapper", b"\x80\x02}q\x00X\n\x00\x00\x00state_dicth\x00s."),
        ("dict_cycle_walk", b"\x80\x02}q\x00(X\x03\x00\x00\x00subh\x00X\x01\x00\x00\x00xK\x01u."),
        ("shared_dict_dag", bytes(memo_dag) + b"."),
        ("unsafe_global", b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R."),
        ("unsafe_stack_global",
         b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93X\x01\x00\x00\x001\x85R."),
        ("build_on_rebuild_fn", b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}b."),
        ("ext_code", b"\x80\x02\x82\x01."),
        ("next_buffer", b"\x80\x05\x97."),
        ("stack_underflow", b"\x80\x02s."),
        ("empty_stop", b"\x80\x02."),
        ("no_stop", b"\x80\x02}"),
        ("persistent_id_int", b"\x80\x02}X\x01\x00\x00\x00wK\x05Qs."),
        ("tensor_not_dict", dumps(T("0", "float32", 0, (1,), (1,), 1))),
        ("v3_dtype_is_int", (
            b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v3\n"
            b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
            b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
            b"K\x01tQK\x00K\x01\x85K\x01\x85\x89NK\x05tRs.")),
    ]


def zip_crafted() -> list[tuple[str, bytes]]:
    one = lambda t, s: _one(t, s, "zip")  # noqa: E731
    f1 = {"0": np.zeros(1, np.float32)}
    f4 = {"0": np.arange(4, dtype=np.float32)}
    cases = [
        ("stride0_expanded_1.6GB", one(T("0", "float32", 0, (400, 1000, 1000), (0, 0, 0), 1), f1)),
        ("overlapping_strides", one(T("0", "float32", 0, (4096, 4096), (1, 1), 8192),
                                    {"0": np.zeros(8192, np.float32)})),
        ("view_past_storage", one(T("0", "float32", 0, (10,), (1,), 4), f4)),
        ("offset_past_storage", one(T("0", "float32", 2**62, (1,), (1,), 4), f4)),
        ("huge_dim", one(T("0", "float32", 0, (2**62,), (1,), 4), f4)),
        ("empty_with_huge_dim", one(T("0", "float32", 0, (0, 2**62), (1, 1), 4), f4)),
        ("too_many_dims", one(T("0", "float32", 0, (1,) * 100, (1,) * 100, 4), f4)),
        ("negative_dim", one(T("0", "float32", 0, (-1,), (1,), 4), f4)),
        ("negative_stride", one(T("0", "float32", 3, (2,), (-1,), 4), f4)),
        ("negative_offset", one(T("0", "float32", -1, (2,), (1,), 4), f4)),
        ("size_stride_mismatch", one(T("0", "float32", 0, (2, 2), (1,), 4), f4)),
        ("size_not_a_tuple", one(T("0", "float32", 0, "abc", (1,), 4), f4)),
        ("missing_storage_record", one(T("9", "float32", 0, (1,), (1,), 1), f4)),
        # integers of a million bits: Python refuses to print them (a message must not try)
        ("offset_million_bit_int", one(T("0", "float32", 2**1_000_000, (1,), (1,), 4), f4)),
        ("negative_million_bit_offset", one(T("0", "float32", -(2**1_000_000), (1,), (1,), 4), f4)),
        ("stride_million_bit_int", one(T("0", "float32", 0, (2,), (2**1_000_000,), 4), f4)),
        ("dim_million_bit_int", one(T("0", "float32", 0, (2**1_000_000,), (1,), 4), f4)),
        ("key_million_bit_int", zip_file({2**1_000_000: 1}, {})),
    ]
    # Many full views of one 128 KiB storage: 200 x 128 KiB = 26 MB from a 140 KB file.
    big = {"0": np.zeros(32768, np.float32)}
    sd = OD([(f"w{i}", T("0", "float32", 0, (32768,), (1,), 32768)) for i in range(200)])
    cases.append(("many_views_of_one_storage", zip_file(sd, {"0": big["0"].tobytes()})))
    seed = zip_seeds()[0]
    for name, pkl in _pickle_attacks():
        cases.append((f"data.pkl:{name}", zip_file(None, {}, pkl=pkl)))
    pkl = dumps(OD([("w", T("0", "float32", 0, (4,), (1,), 4))]))
    members = lambda **data0: [  # noqa: E731
        {"name": "archive/data.pkl", "data": pkl},
        {"name": "archive/byteorder", "data": b"little"},
        {"name": "archive/data/0", "data": f4["0"].tobytes(), **data0}]
    size = 2**30
    bomb, crc = _deflate_bomb(size)
    cases += [
        ("deflate_bomb_1GiB", zip_raw(members(data=bomb, method=8, size=size, crc=crc))),
        ("declared_size_huge", zip_raw(members(size=2**32 - 1))),
        ("bzip2_member", zip_raw(members(data=bz2.compress(bytes(2**20)), method=12,
                                         size=2**20, crc=zlib.crc32(bytes(2**20))))),
        ("lzma_member", zip_raw(members(data=lzma.compress(b"\0" * 16, format=lzma.FORMAT_ALONE),
                                        method=14, size=16))),
        ("unknown_method_99", zip_raw(members(method=99))),
        ("encrypted_member", zip_raw(members(flags=1))),
        ("stored_member_shorter_than_declared", zip_raw(members(size=64))),
        ("crc_mismatch", zip_raw(members(crc=12345))),
        ("invalid_utf8_member_name", zip_raw([{"name": b"archive/\xff\xfe.pkl", "data": pkl,
                                               "flags": 0x800}])),
        ("no_data_pkl", zip_raw([{"name": "archive/byteorder", "data": b"little"}])),
        ("bad_byteorder", zip_raw([{"name": "archive/data.pkl", "data": pkl},
                                   {"name": "archive/byteorder", "data": b"middle"}])),
        ("huge_byteorder_record", zip_raw([{"name": "archive/data.pkl", "data": pkl},
                                           {"name": "archive/byteorder", "data": b" " * 5000}])),
        ("truncated_half", seed[:len(seed) // 2]),
        ("truncated_central_directory", seed[:-10]),
        ("empty_zip", zip_raw([])[:4] + b"\x03\x04" + bytes(30)),
    ]
    return cases


def legacy_crafted() -> list[tuple[str, bytes]]:
    one = lambda t, s: _one(t, s, "legacy")  # noqa: E731
    f1 = {"0": np.zeros(1, np.float32)}
    f4 = {"0": np.arange(4, dtype=np.float32)}
    sd4 = OD([("w", T("0", "float32", 0, (4,), (1,), 4))])
    st4 = {"0": (np.dtype(np.float32), f4["0"].tobytes())}
    cases = [
        ("stride0_expanded_1.6GB", one(T("0", "float32", 0, (400, 1000, 1000), (0, 0, 0), 1), f1)),
        ("view_past_storage", one(T("0", "float32", 0, (10,), (1,), 4), f4)),
        ("huge_dim", one(T("0", "float32", 0, (2**62,), (1,), 4), f4)),
        ("empty_with_huge_dim", one(T("0", "float32", 0, (0, 2**62), (1, 1), 4), f4)),
        ("too_many_dims", one(T("0", "float32", 0, (1,) * 100, (1,) * 100, 4), f4)),
        ("legacy_view_past_root", one(T("0", "float32", 0, (2,), (1,), 4, view=("1", 3, 2)), f4)),
        ("legacy_view_negative", one(T("0", "float32", 0, (2,), (1,), 4, view=("1", -2, 2)), f4)),
        ("legacy_view_not_a_tuple", one(T("0", "float32", 0, (2,), (1,), 4, view=5), f4)),
        ("legacy_view_million_bit_offset",
         one(T("0", "float32", 0, (2,), (1,), 4, view=("1", 2**1_000_000, 2)), f4)),
        ("offset_million_bit_int", one(T("0", "float32", 2**1_000_000, (1,), (1,), 4), f4)),
        ("storage_count_huge", legacy_file(sd4, st4, counts={"0": 2**62})),
        ("storage_count_negative", legacy_file(sd4, st4, counts={"0": -1})),
        ("storage_count_past_end", legacy_file(sd4, st4, counts={"0": 5})),
        ("storage_not_listed", legacy_file(sd4, st4, keys=[])),
        ("unknown_storage_listed", legacy_file(sd4, st4, keys=["0", "7"])),
        ("keys_not_a_list", legacy_file(sd4, st4, keys=5)),
        ("wrong_magic", pickle.dumps(12345, protocol=2) + legacy_file(sd4, st4)[15:]),
        ("wrong_protocol", legacy_file(sd4, st4)[:15] + pickle.dumps(1002, protocol=2)
         + legacy_file(sd4, st4)[21:]),
        ("truncated_storage", legacy_file(sd4, st4)[:-3]),
        ("truncated_pickle", legacy_seeds()[0][:200]),
    ]
    magic = pickle.dumps(LEGACY_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2)
    for name, pkl in _pickle_attacks():
        cases.append((f"pickle:{name}", pkl))  # a file that is only this pickle
        if name.startswith(("memo", "deep", "dict_cycle", "binbytes8")):
            cases.append((f"object:{name}", magic + pickle.dumps({}, protocol=2) + pkl
                          + pickle.dumps([], protocol=2)))
    return cases


def safetensors_crafted() -> list[tuple[str, bytes]]:
    def st(header, data=b"", length=None):
        text = header if isinstance(header, bytes) else json.dumps(header).encode()
        return struct.pack("<Q", len(text) if length is None else length) + text + data

    def one(dtype="F32", shape=(2,), offsets=(0, 8), data=bytes(8)):
        return st({"w": {"dtype": dtype, "shape": list(shape) if isinstance(shape, tuple)
                         else shape, "data_offsets": list(offsets)
                         if isinstance(offsets, tuple) else offsets}}, data)

    good = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}
    return [
        ("empty_dim_2**62", one(shape=(0, 2**62), offsets=(0, 0), data=b"")),
        ("empty_dim_2**64", one(shape=(2**64, 0), offsets=(0, 0), data=b"")),
        ("100_dims", one(shape=(1,) * 100, offsets=(0, 4), data=bytes(4))),
        ("negative_dim", one(shape=(-2,))),
        ("float_dim", one(shape=(2.0,))),
        ("bool_dim", one(shape=(True, True), offsets=(0, 4), data=bytes(4))),
        ("string_dim", one(shape=("2",))),
        ("shape_not_a_list", one(shape=2)),
        ("shape_product_overflows", one(shape=(2**32, 2**32, 2**32), offsets=(0, 8))),
        ("span_mismatch", one(shape=(3,))),
        ("offsets_past_data", one(offsets=(0, 2**40))),
        ("offsets_reversed", one(offsets=(8, 0))),
        ("offsets_negative", one(offsets=(-8, 0))),
        ("offsets_three", one(offsets=(0, 4, 8))),
        ("offsets_float", one(offsets=(0.0, 8.0))),
        ("offsets_nan", st(b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[NaN,8]}}', bytes(8))),
        ("overlapping_tensors", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
                                   bytes(12))),
        ("gap_between_tensors", st({"a": good, "b": {"dtype": "F32", "shape": [1],
                                                     "data_offsets": [8, 12]}}, bytes(12))),
        ("trailing_data", one(data=bytes(16))),
        ("unknown_dtype", one(dtype="F128")),
        ("dtype_not_a_string", one(dtype=7)),
        ("missing_shape", st({"w": {"dtype": "F32", "data_offsets": [0, 4]}}, bytes(4))),
        ("entry_not_an_object", st({"w": [1, 2]})),
        ("header_not_an_object", st(b"[1,2,3]")),
        ("header_not_json", st(b"{not json}")),
        ("header_invalid_utf8", st(b'{"\xff\xfe":1}')),
        ("header_deep_nesting", st(b"{" + b'"a":[' * 200_000 + b"]" * 200_000 + b"}")),
        # a string scanner that backtracks would take minutes on this (quadratic)
        ("header_unterminated_escaped_quotes", st(b'{"' + b'\\"' * 50_000)),
        ("header_brackets_in_strings", st(b'{"[[[[":' + json.dumps(good).encode() + b"}")),
        ("header_int_5000_digits", st(b'{"w":{"dtype":"F32","shape":[' + b"9" * 5000 + b"]}}")),
        ("header_duplicate_key", st(b'{"w":' + json.dumps(good).encode() + b',"w":'
                                    + json.dumps(good).encode() + b"}", bytes(4))),
        ("metadata_not_strings", st({"__metadata__": {"a": 1}, "w": good}, bytes(4))),
        ("header_length_past_end", st({"w": good}, bytes(4), length=2**40)),
        ("header_length_2**64-1", st({"w": good}, bytes(4), length=2**64 - 1)),
        ("header_length_zero", st(b"", bytes(4))),
        ("seven_bytes", b"\x10\x00\x00\x00\x00\x00\x00"),
        ("empty_file", b""),
        ("truncated_data", safetensors_seeds()[0][:-5]),
    ]


# --------------------------------------------------------------------------
# Structured mutators: each takes a valid seed and returns a malformed variant.

def _ops(pkl: bytes):
    """(opcode, arg, start, end) of each op of a pickle."""
    ops = list(pickletools.genops(pkl))
    ends = [pos for _, _, pos in ops[1:]] + [len(pkl)]
    return [(op, arg, pos, end) for (op, arg, pos), end in zip(ops, ends)]


def _zip_pickle(data: bytes):
    """data.pkl of a torch zip and a function putting a new one back."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    infos = zf.infolist()
    members = [(i.filename, zf.read(i)) for i in infos]
    k = next(i for i, (n, _) in enumerate(members) if n.endswith("data.pkl"))

    def rebuild(pkl: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as out:
            for i, (n, raw) in enumerate(members):
                out.writestr(n, pkl if i == k else raw)
        return buf.getvalue()

    return members[k][1], rebuild


def _legacy_pickle(data: bytes, rng: random.Random):
    """One of a legacy file's five pickles (mostly the object) and a function
    putting a new one back."""
    f = io.BytesIO(data)
    bounds = []
    for _ in range(5):
        start = f.tell()
        for _ in pickletools.genops(f):
            pass
        bounds.append((start, f.tell()))
    start, end = bounds[3] if rng.random() < 0.7 else rng.choice(bounds)
    return data[start:end], lambda pkl: data[:start] + pkl + data[end:]


def _pickle_of(data: bytes, rng: random.Random):
    return _zip_pickle(data) if data[:2] == b"PK" else _legacy_pickle(data, rng)


def mutate_pickle_int(data: bytes, rng: random.Random) -> bytes:
    """Replace one integer of the pickle (a size, stride, offset, numel,
    memo index) with a nasty one."""
    pkl, rebuild = _pickle_of(data, rng)
    ops = [o for o in _ops(pkl) if o[0].name in ("BININT1", "BININT2", "BININT", "LONG1")]
    if not ops:  # a pickle without integers (the key list): insert one
        start = rng.choice(_ops(pkl))[2]
        return rebuild(pkl[:start] + encode_int(rng.choice(NASTY_INTS)) + pkl[start:])
    _, arg, start, end = rng.choice(ops)
    new = rng.choice(NASTY_INTS + (arg + 1, arg - 1, arg * 2, -arg))
    return rebuild(pkl[:start] + encode_int(new) + pkl[end:])


# Globals a mutant may name instead of the ones torch writes.
_GLOBALS = [("os", "system"), ("builtins", "eval"), ("builtins", "getattr"),
            ("torch._utils", "_rebuild_tensor_v3"), ("torch._utils", "_rebuild_tensor_v2"),
            ("torch._utils", "_rebuild_parameter"), ("torch", "HalfStorage"),
            ("torch", "LongStorage"), ("torch", "BoolStorage"), ("torch.storage", "UntypedStorage"),
            ("torch", "bfloat16"), ("torch", "Size"), ("collections", "OrderedDict"),
            ("numpy", "dtype"), ("torch", "float8_e5m2")]
# Opcodes a mutant may insert: memo, nesting, lengths, buffers.
_INSERTS = [b"r\xff\xff\xff\x7f", b"j\xff\xff\xff\x00", b"h\x00", b"h\xff", b"(", b"0", b"1",
            b"2", b"N", b"t", b"e", b"u", b"s", b"R", b"b", b"Q", b"]", b"}", b")", b"\x94",
            b"\x95\xff\xff\xff\xff\x00\x00\x00\x00", b"\x8e\x00\x00\x00\x00\x01\x00\x00\x00",
            b"X\xff\xff\xff\x0f", b"X\x02\x00\x00\x00\xc3\x28", b"\x97", b"\x82\x01", b".",
            b"]" * 2000 + b"a" * 1999, b"(" * 5000, b")" + b"\x85" * 5000]


def mutate_pickle_op(data: bytes, rng: random.Random) -> bytes:
    """Delete, duplicate or swap an opcode, rename a global or a string (a
    storage key, a dtype), or insert a nasty opcode."""
    pkl, rebuild = _pickle_of(data, rng)
    ops = _ops(pkl)
    i = rng.randrange(len(ops))
    _, arg, start, end = ops[i]
    action = rng.choice(("delete", "duplicate", "swap", "global", "string", "insert", "insert"))
    if action in ("global", "string") and not any(
            o[0].name == ("GLOBAL" if action == "global" else "BINUNICODE") for o in ops):
        action = "insert"
    if action == "delete":
        new = pkl[:start] + pkl[end:]
    elif action == "duplicate":
        new = pkl[:end] + pkl[start:end] + pkl[end:]
    elif action == "swap" and i + 1 < len(ops):
        _, _, s2, e2 = ops[i + 1]
        new = pkl[:start] + pkl[s2:e2] + pkl[start:end] + pkl[e2:]
    elif action == "global":
        g = [o for o in ops if o[0].name == "GLOBAL"]
        _, _, start, end = rng.choice(g)
        module, name = rng.choice(_GLOBALS)
        new = pkl[:start] + f"c{module}\n{name}\n".encode() + pkl[end:]
    elif action == "string":
        s = [o for o in ops if o[0].name == "BINUNICODE"]
        _, arg, start, end = rng.choice(s)
        text = rng.choice(["", "0", "1", "99", "storage", "../data.pkl", "cpu", "x" * 300,
                           arg + arg, "\udcff"]).encode("utf-8", "surrogatepass")
        new = pkl[:start] + b"X" + struct.pack("<I", len(text)) + text + pkl[end:]
    else:
        new = pkl[:start] + rng.choice(_INSERTS) + pkl[start:]
    return rebuild(new)


# Offsets of the fields of a local (PK\3\4) and a central (PK\1\2) header:
# name -> (offset, struct format).
_LOCAL = {"flags": (6, "<H"), "method": (8, "<H"), "crc": (14, "<L"), "csize": (18, "<L"),
          "usize": (22, "<L"), "namelen": (26, "<H"), "extralen": (28, "<H")}
_CENTRAL = {"flags": (8, "<H"), "method": (10, "<H"), "crc": (16, "<L"), "csize": (20, "<L"),
            "usize": (24, "<L"), "namelen": (28, "<H"), "extralen": (30, "<H"),
            "offset": (42, "<L")}
_EOCD = {"count": (10, "<H"), "cdsize": (12, "<L"), "cdoffset": (16, "<L")}


def mutate_zip_header(data: bytes, rng: random.Random) -> bytes:
    """Set one field of a local or central header (sizes, method, flags,
    CRC, name length, offset) or of the end record to a nasty value; the
    same field of a member's local and central headers together half of
    the time (so zipfile's cross-check passes and the reader sees it)."""
    b = bytearray(data)
    kind = rng.choice(("local", "central", "both", "both", "eocd"))
    if kind == "eocd":
        pos = data.rfind(b"PK\x05\x06")
        field, (off, fmt) = rng.choice(list(_EOCD.items()))
        positions = [(pos, off, fmt)]
    else:
        zf = zipfile.ZipFile(io.BytesIO(data))
        info = rng.choice(zf.infolist())
        central = data.find(b"PK\x01\x02")  # the central header pointing at info's local one
        while central >= 0 and struct.unpack_from("<L", data, central + 42)[0] \
                != info.header_offset:
            central = data.find(b"PK\x01\x02", central + 4)
        field = rng.choice([f for f in _LOCAL if f in _CENTRAL] + ["offset"])
        positions = []
        if kind in ("local", "both") and field in _LOCAL:
            positions.append((info.header_offset, *_LOCAL[field]))
        if kind in ("central", "both") and field in _CENTRAL:
            positions.append((central, *_CENTRAL[field]))
        if not positions:
            positions.append((central, *_CENTRAL[field]))
    width = struct.calcsize(positions[0][2])
    choices = [v for v in NASTY_INTS if 0 <= v < 2 ** (8 * width)]
    if field == "method":
        choices += [8, 9, 12, 14, 93, 95, 98, 99]
    elif field == "flags":
        choices += [1, 8, 0x40, 0x800, 0x2000]
    value = rng.choice(choices)
    for pos, off, fmt in positions:
        struct.pack_into(fmt, b, pos + off, value)
    return bytes(b)


def mutate_zip_members(data: bytes, rng: random.Random) -> bytes:
    """Rewrite the archive: compress a member (deflate with a lying size,
    bzip2, lzma), drop, duplicate or rename one, or change the byteorder."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    members = [{"name": i.filename, "data": zf.read(i)} for i in zf.infolist()]
    m = rng.choice(members)
    action = rng.choice(("deflate", "deflate_lie", "bzip2", "lzma", "drop", "duplicate", "rename",
                         "byteorder", "encrypt"))
    raw = m["data"]
    if action in ("deflate", "deflate_lie"):
        c = zlib.compressobj(rng.randrange(10), zlib.DEFLATED, -15)
        m.update(data=c.compress(raw) + c.flush(), method=8, crc=zlib.crc32(raw))
        if action == "deflate_lie":
            m["size"] = rng.choice([0, len(raw) - 1, len(raw) + 1, len(raw) * 1000, 2**32 - 1])
    elif action == "bzip2":
        m.update(data=bz2.compress(raw), method=12, size=len(raw), crc=zlib.crc32(raw))
    elif action == "lzma":
        m.update(data=lzma.compress(raw, format=lzma.FORMAT_RAW,
                                    filters=[{"id": lzma.FILTER_LZMA1}]), method=14, size=len(raw),
                 crc=zlib.crc32(raw))
    elif action == "drop":
        members.remove(m)
    elif action == "duplicate":
        members.insert(rng.randrange(len(members) + 1), dict(m, data=raw[::-1]))
    elif action == "rename":
        m["name"] = rng.choice(["data.pkl", "a/b/data.pkl", m["name"] + "x", "archive/data/99",
                                "archive/data/../data.pkl", m["name"].upper()])
    elif action == "byteorder":
        m = next((x for x in members if x["name"].endswith("byteorder")), m)
        m["data"] = rng.choice([b"big", b"little\n", b"", b"\xff" * 8, b"big" * 100])
    else:
        m["flags"] = 1
    return zip_raw(members)


_ITEMSIZES = {name: np.dtype(d).itemsize for name, d, _ in DTYPES.values()}


def mutate_legacy_storages(data: bytes, rng: random.Random) -> bytes:
    """Change a storage's element count, or cut/extend the raw bytes."""
    f = io.BytesIO(data)
    for i in range(5):
        start = f.tell()
        ops = list(pickletools.genops(f))
        if i == 3:  # the object: find each storage's key and class
            names, memo, itemsize, pending = {}, {}, {}, None
            for j, (op, arg, _) in enumerate(ops):
                if op.name == "GLOBAL":
                    names[j] = arg.split(" ")[1]
                    if ops[j + 1][0].name == "BINPUT":
                        memo[ops[j + 1][1]] = names[j]
                elif op.name == "BINGET" and arg in memo:
                    names[j] = memo[arg]
                elif op.name == "BINUNICODE" and pending is not None:
                    itemsize[arg], pending = _ITEMSIZES.get(pending, 1), None
                if op.name in ("GLOBAL", "BINGET") and j and ops[j - 2][1] == "storage":
                    pending = names.get(j)
        if i == 4:
            keys = pickle.loads(data[start:f.tell()])  # our own seed: a list of str
    pos, heads = f.tell(), []
    for key in keys:
        heads.append(pos)
        (count,) = struct.unpack_from("<q", data, pos)
        pos += 8 + count * itemsize.get(key, 1)
    b = bytearray(data)
    action = rng.choice(("count", "count", "cut", "extend"))
    if action == "count" and heads:
        struct.pack_into("<q", b, rng.choice(heads), rng.choice(
            [v for v in NASTY_INTS if -(2**63) <= v < 2**63] + [count + 1, count - 1]))
    elif action == "cut":
        b = b[:rng.randrange(len(b))]
    else:
        b += bytes(rng.randrange(1, 64))
    return bytes(b)


def _split_safetensors(data: bytes):
    (n,) = struct.unpack_from("<Q", data)
    return json.loads(data[8:8 + n]), data[8 + n:]


def mutate_safetensors_json(data: bytes, rng: random.Random) -> bytes:
    """Change a number of the header (a shape dimension, an offset) to a
    nasty one, or the dtype, or the structure of an entry."""
    header, body = _split_safetensors(data)
    names = [k for k in header if k != "__metadata__"]
    entry = header[rng.choice(names)]
    action = rng.choice(("shape", "shape", "offsets", "offsets", "dtype", "dims", "field", "swap"))
    if action == "shape" and entry["shape"]:
        entry["shape"][rng.randrange(len(entry["shape"]))] = rng.choice(NASTY_INTS + (0, 1))
    elif action == "offsets":
        entry["data_offsets"][rng.randrange(2)] = rng.choice(
            NASTY_INTS + (len(body), len(body) + 1, 0))
    elif action == "dtype":
        entry["dtype"] = rng.choice(["F32", "F16", "BF16", "I64", "U8", "BOOL", "F64", "C64",
                                     "F8_E4M3", "f32", "", 4, None, "I8", "U16"])
    elif action == "dims":
        entry["shape"] = rng.choice([[], entry["shape"] + [1], entry["shape"][:-1],
                                     [1] * 40, [0] + entry["shape"], entry["shape"][::-1]])
    elif action == "field":
        key = rng.choice(["dtype", "shape", "data_offsets"])
        if rng.random() < 0.5:
            entry.pop(key)
        else:
            entry[key] = rng.choice([None, "x", {}, [[]], 1.5, True, -1])
    else:
        if len(names) > 1:
            a, b2 = rng.sample(names, 2)
            header[a]["data_offsets"], header[b2]["data_offsets"] = \
                header[b2]["data_offsets"], header[a]["data_offsets"]
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def mutate_safetensors_bytes(data: bytes, rng: random.Random) -> bytes:
    """Change the header length field, the JSON text (a digit run, a
    bracket, invalid UTF-8), or the data section's length."""
    (n,) = struct.unpack_from("<Q", data)
    text, body = bytearray(data[8:8 + n]), data[8 + n:]
    action = rng.choice(("length", "digits", "bracket", "utf8", "body"))
    if action == "length":
        n = rng.choice([v for v in NASTY_INTS if 0 <= v < 2**64] + [n - 1, n + 1, n + 8])
    elif action == "digits":
        runs = [i for i in range(len(text)) if chr(text[i]).isdigit()]
        if runs:
            i = rng.choice(runs)
            text[i:i + 1] = rng.choice([b"9" * 25, b"-1", b"1e400", b"0.5", b"9" * 5000, b"00"])
    elif action == "bracket":
        i = rng.randrange(len(text))
        text[i:i] = rng.choice([b"[", b"]", b"{", b"}", b",", b'"', b"[" * 300])
    elif action == "utf8":
        i = rng.randrange(len(text))
        text[i:i + 1] = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])
    else:
        body = body[:rng.randrange(len(body) + 1)] if rng.random() < 0.5 else body + bytes(8)
    n = n if action == "length" else len(text)
    return struct.pack("<Q", n) + bytes(text) + body


TARGETS = [
    Target(name="torch_zip", read=READ, suffix=".pth", seeds=zip_seeds, crafted=zip_crafted,
           mutators=(mutate_pickle_int, mutate_pickle_op, mutate_zip_header, mutate_zip_members),
           description="torch.save zip archives (data.pkl + storage records)"),
    Target(name="torch_legacy", read=READ, suffix=".pth", seeds=legacy_seeds,
           crafted=legacy_crafted,
           mutators=(mutate_pickle_int, mutate_pickle_op, mutate_legacy_storages),
           description="legacy torch.save pickles (torch < 1.6 layout)"),
    Target(name="safetensors", read=READ, suffix=".safetensors", seeds=safetensors_seeds,
           crafted=safetensors_crafted,
           mutators=(mutate_safetensors_json, mutate_safetensors_bytes),
           description="safetensors files (JSON header + raw data)"),
]
