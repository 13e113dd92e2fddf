"""Read PyTorch checkpoints (``.pth``/``.pt``) and safetensors files into
numpy arrays, without torch and without running any code from the file.

``torch.save`` writes one of two layouts:

* zip (torch >= 1.6): ``<archive>/data.pkl`` pickles the object; each tensor
  refers to its storage by a persistent id ``("storage", type, key,
  location, numel)`` whose raw bytes are the record ``<archive>/data/<key>``;
  ``<archive>/byteorder`` holds "little" or "big" (little when absent).
* legacy (torch < 1.6, or ``_use_new_zipfile_serialization=False``): pickles
  back to back -- magic number, protocol version, sys_info, the object (ids
  ``("storage", type, root_key, location, numel, view_metadata)``), the list
  of storage keys -- then per key an int64 element count and the raw bytes.

A tensor is pickled as a call ``torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, ...)``; a state dict as an ``OrderedDict``.

Safety rule: unpickling calls whatever global the file names (``os.system``
works as well as a tensor constructor). ``_Unpickler.find_class`` therefore
resolves only an allow-list -- OrderedDict, the tensor/parameter rebuild
functions, storage classes, dtypes, ``torch.Size`` -- to stand-ins defined
here, and raises ``UnsafePickleError`` for any other global while the pickle
is being read, before anything it names can be called. torch is never
imported.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import sys
import zipfile

import ml_dtypes
import numpy as np
from numpy.lib.stride_tricks import as_strided

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# Checkpoints often wrap the state dict with training state; these keys are
# unwrapped (first match in this order) when the mapping holds no tensors.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module", "ema")


class WeightFileError(ValueError):
    """Not a weight file, or truncated/corrupted; the message names the file."""


class UnsafePickleError(ValueError):
    """The pickle names a global outside the allow-list; nothing was run."""


# torch dtype name: (legacy storage class, safetensors code, numpy dtype).
# torch pickles dtype objects (by name) only for _rebuild_tensor_v3, which it
# uses for the dtypes without a storage class (uint16, float8, ...).
_DTYPES = {
    "float32": ("FloatStorage", "F32", np.float32), "float16": ("HalfStorage", "F16", np.float16),
    "bfloat16": ("BFloat16Storage", "BF16", ml_dtypes.bfloat16),
    "float64": ("DoubleStorage", "F64", np.float64), "int64": ("LongStorage", "I64", np.int64),
    "int32": ("IntStorage", "I32", np.int32), "int16": ("ShortStorage", "I16", np.int16),
    "int8": ("CharStorage", "I8", np.int8), "uint8": ("ByteStorage", "U8", np.uint8),
    "bool": ("BoolStorage", "BOOL", np.bool_), "uint16": (None, "U16", np.uint16),
    "uint32": (None, "U32", np.uint32), "uint64": (None, "U64", np.uint64),
    "float8_e4m3fn": (None, "F8_E4M3", ml_dtypes.float8_e4m3fn),
    "float8_e5m2": (None, "F8_E5M2", ml_dtypes.float8_e5m2),
}


# Everything find_class hands out is shared across loads, so a pickle's BUILD
# opcode must not be able to alter it: stand-ins refuse state (a plain
# function would take attributes, a numpy dtype even a new size).
class _StandIn:
    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"state for a {type(self).__name__}")


class _Fn(_StandIn):
    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)


class _Typed(_StandIn):
    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


class _StorageType(_Typed):  # torch.FloatStorage etc.: only the dtype matters
    __slots__ = ()


class _TorchDType(_Typed):  # torch.uint16 etc.
    __slots__ = ()


class _Storage(_StandIn):  # offset, numel: a legacy view's slice of its root storage
    __slots__ = ("key", "dtype", "offset", "numel")

    def __init__(self, key, dtype, offset=0, numel=None):
        self.key, self.dtype, self.offset, self.numel = key, dtype, offset, numel


class _Tensor(_StandIn):  # built once all storage bytes are read (legacy: after the pickle)
    __slots__ = ("storage", "offset", "size", "stride", "dtype")

    def __init__(self, storage, offset, size, stride, dtype):
        if not isinstance(storage, _Storage):
            raise TypeError(f"tensor storage is a {type(storage).__name__}")
        self.storage, self.offset, self.dtype = storage, int(offset), np.dtype(dtype)
        self.size, self.stride = tuple(map(int, size)), tuple(map(int, stride))


def _rebuild_tensor(storage, offset, size, stride, *_ignored):  # also _v2
    return _Tensor(storage, offset, size, stride, getattr(storage, "dtype", None))


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *_ignored):
    if not isinstance(dtype, _TorchDType):  # only dtypes from _DTYPES, never e.g. "object"
        raise TypeError(f"tensor dtype is a {type(dtype).__name__}")
    return _Tensor(storage, offset, size, stride, dtype.dtype)


def _rebuild_parameter(data, *_ignored):  # also _with_state: a Parameter is its tensor
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch", "Size"): tuple,  # builtin types take no state
    ("torch._utils", "_rebuild_tensor"): _Fn(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): _Fn(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v3"): _Fn(_rebuild_tensor_v3),
    ("torch._utils", "_rebuild_parameter"): _Fn(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _Fn(_rebuild_parameter),
    ("torch.storage", "UntypedStorage"): _StorageType(np.uint8),  # bytes; v3 gives the dtype
    **{(m, s): _StorageType(d) for s, _, d in _DTYPES.values() if s
       for m in ("torch", "torch.cuda")},  # files saved from a GPU name torch.cuda.*
    **{("torch", n): _TorchDType(d) for n, (_, _, d) in _DTYPES.items()},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, path, dtypes):
        super().__init__(file, encoding="utf-8")
        self.path, self.dtypes = path, dtypes  # dtypes: storage key -> dtype

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.path}: refusing to unpickle global {module}.{name} (not on the allow-list "
                "of tensor-rebuilding names; nothing from the file was run). Only state dicts of "
                "tensors can be read: re-save a trusted file as model.state_dict() or safetensors."
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] in ("storage", b"storage")
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unknown persistent id {str(pid)[:80]}")
        key, dtype = str(pid[2]), pid[1].dtype
        self.dtypes[key] = dtype
        if len(pid) == 6 and pid[5] is not None:  # legacy view of a root storage
            _view_key, offset, numel = pid[5]
            return _Storage(key, dtype, int(offset), int(numel))
        return _Storage(key, dtype)


def _read(f, n, path, what):
    left = os.fstat(f.fileno()).st_size - f.tell()
    if n < 0 or n > left:  # checked first: a corrupt count must not allocate
        raise WeightFileError(f"{path}: truncated: {what} needs {n} bytes, {left} left")
    return f.read(n)


def _load_legacy(f, path):
    dtypes: dict = {}
    load = lambda: _Unpickler(f, path, dtypes).load()  # noqa: E731
    if load() != _LEGACY_MAGIC:
        raise WeightFileError(f"{path}: not a PyTorch checkpoint (no torch magic number)")
    if (version := load()) != _LEGACY_PROTOCOL:
        raise WeightFileError(f"{path}: unknown legacy torch protocol version {version!r}")
    sys_info = load()
    little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
    obj, keys, raw = load(), load(), {}
    for key in map(str, keys):
        if key not in dtypes:
            raise WeightFileError(f"{path}: storage {key} is listed but no tensor uses it")
        header = _read(f, 8, path, f"storage {key} header")
        (count,) = struct.unpack("<q" if little else ">q", header)
        raw[key] = _read(f, count * dtypes[key].itemsize, path, f"storage {key}")
    return obj, raw.__getitem__, little


def _load_zip(f, path):
    zf = zipfile.ZipFile(f)
    names = zf.namelist()
    prefix = names[0].split("/")[0] + "/" if names else ""
    if prefix + "data.pkl" not in names:
        raise WeightFileError(f"{path}: zip without <archive>/data.pkl: not from torch.save")
    with zf.open(prefix + "data.pkl") as pkl:
        obj = _Unpickler(pkl, path, {}).load()
    order = zf.read(prefix + "byteorder").strip() if prefix + "byteorder" in names else b"little"
    if order not in (b"little", b"big"):
        raise WeightFileError(f"{path}: unknown byteorder record {order!r}")
    return obj, lambda key: zf.read(f"{prefix}data/{key}"), order == b"little"


def _array(t: _Tensor, raw: bytes, swap: bool, path, name) -> np.ndarray:
    s, dt = t.storage, t.dtype
    data = np.frombuffer(raw, np.uint8)
    if s.numel is not None:  # legacy view: a slice of the root storage
        start = s.offset * s.dtype.itemsize
        data = data[start:start + s.numel * s.dtype.itemsize]
    elems = data[:data.size - data.size % dt.itemsize].view(dt)
    if 0 in t.size:
        return np.zeros(t.size, dt)
    last = t.offset + sum((n - 1) * st for n, st in zip(t.size, t.stride))
    if t.offset < 0 or min(t.stride, default=0) < 0 or last >= elems.size:
        raise WeightFileError(f"{path}: tensor {name} {t.size} reaches element {last} of a "
                              f"{elems.size}-element storage: corrupted file")
    arr = as_strided(elems[t.offset:], t.size, [st * dt.itemsize for st in t.stride]).copy()
    if swap and dt.itemsize > 1:  # file byte order differs from this machine's
        arr = arr.view(f"u{dt.itemsize}").byteswap().view(dt)
    return arr


def _tensors(obj, path) -> dict[str, _Tensor]:
    """The state dict in ``obj``: unwrap WRAPPER_KEYS while the mapping holds
    no tensors; keep tensors (also int64 ``num_batches_tracked``), flatten
    nested mappings to dotted names, drop plain Python values (epoch, config,
    lists), which are training state, not weights."""
    while isinstance(obj, dict) and not any(isinstance(v, _Tensor) for v in obj.values()):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        kind = "tensor" if isinstance(obj, _Tensor) else type(obj).__name__
        raise WeightFileError(f"{path}: holds a {kind}, not a state dict of tensors")
    out: dict[str, _Tensor] = {}

    def walk(prefix, mapping):
        for k, v in mapping.items():
            if isinstance(v, _Tensor):
                out[f"{prefix}{k}"] = v
            elif isinstance(v, dict):
                walk(f"{prefix}{k}.", v)

    walk("", obj)
    if not out:
        raise WeightFileError(f"{path}: no tensors found (keys: {list(obj)[:10]})")
    return out


def load_torch(path) -> dict[str, np.ndarray]:
    """``{name: array}`` from a ``torch.save`` state dict (zip or legacy), in
    file order. Raises UnsafePickleError for pickles naming anything but
    tensors, WeightFileError for files that are not torch checkpoints or are
    damaged."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(512)
        f.seek(0)
        try:
            if head.startswith(b"PK\x03\x04"):
                obj, read, little = _load_zip(f, path)
            elif head[:1] == b"\x80":  # pickle PROTO opcode
                obj, read, little = _load_legacy(f, path)
            else:
                raise WeightFileError(f"{path}: not a PyTorch checkpoint (neither zip nor pickle)")
            raw: dict[str, bytes] = {}  # a storage shared by several tensors is read once
            out = {}
            for name, t in _tensors(obj, path).items():
                if t.storage.key not in raw:
                    raw[t.storage.key] = read(t.storage.key)
                out[name] = _array(t, raw[t.storage.key], little != (sys.byteorder == "little"),
                                   path, name)
            return out
        except (UnsafePickleError, WeightFileError):
            raise
        except Exception as e:  # zip CRC, short pickle, bad opcode, missing record, ...
            raise WeightFileError(f"{path}: truncated or corrupted PyTorch checkpoint "
                                  f"({type(e).__name__}: {e})") from e


_SAFETENSORS_DTYPES = {code: d for _, code, d in _DTYPES.values()}


def load_safetensors(path) -> dict[str, np.ndarray]:
    """``{name: array}`` from a ``.safetensors`` file (needs the package).
    The package parses and checks the file (``safetensors.deserialize``);
    its ``numpy.load_file`` is not used as it cannot make bfloat16 arrays."""
    try:
        import safetensors
    except ImportError as e:
        raise ImportError("reading .safetensors files needs the 'safetensors' package: "
                          "pip install safetensors") from e
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        views = safetensors.deserialize(data)
    except Exception as e:  # SafetensorError: bad header, offsets past the end, ...
        raise WeightFileError(f"{path}: not a valid safetensors file "
                              f"({type(e).__name__}: {e})") from e
    out = {}
    for name, view in views:
        if view["dtype"] not in _SAFETENSORS_DTYPES:
            raise WeightFileError(f"{path}: tensor {name} has unsupported dtype {view['dtype']}")
        dt = np.dtype(_SAFETENSORS_DTYPES[view["dtype"]])
        arr = np.frombuffer(view["data"], dt).reshape(view["shape"])
        if sys.byteorder == "big" and dt.itemsize > 1:  # safetensors is little-endian
            arr = arr.view(f"u{dt.itemsize}").byteswap().view(dt)
        out[name] = arr.copy()
    return out
