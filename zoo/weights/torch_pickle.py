"""Read PyTorch checkpoints (``.pth``/``.pt``) and safetensors files into
numpy arrays, without torch and without running any code from the file.

``torch.save`` writes one of two layouts:

* zip (torch >= 1.6): ``<archive>/data.pkl`` pickles the object; each tensor
  refers to its storage by a persistent id ``("storage", type, key,
  location, numel)`` whose raw bytes are the record ``<archive>/data/<key>``;
  ``<archive>/byteorder`` holds "little" or "big" (little when absent).
  torch writes every record stored (uncompressed).
* legacy (torch < 1.6, or ``_use_new_zipfile_serialization=False``): pickles
  back to back -- magic number, protocol version, sys_info, the object (ids
  ``("storage", type, root_key, location, numel, view_metadata)``), the list
  of storage keys -- then per key an int64 element count and the raw bytes,
  both little-endian whatever machine wrote them (torch ignores sys_info's
  ``little_endian`` when loading, and so do we).

A tensor is pickled as a call ``torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, ...)``; a state dict as an ``OrderedDict``.

Safety rule: unpickling calls whatever global the file names (``os.system``
works as well as a tensor constructor). ``_Unpickler.find_class`` therefore
resolves only an allow-list -- OrderedDict, the tensor/parameter rebuild
functions, storage classes, dtypes, ``torch.Size`` -- to stand-ins defined
here, and raises ``UnsafePickleError`` for any other global while the pickle
is being read, before anything it names can be called. torch is never
imported.

Robustness rule: no file, however made, gets anything but the errors of
``zoo.weights.errors`` out of these readers (``WeightFileError``,
``UnsafePickleError``, ``WeightBudgetError``; ``FileNotFoundError`` for a
missing path), each one line naming the file and, where known, the tensor.
Every size a file declares is checked against the budgets below *before*
anything is allocated or inflated, and every pickle is pre-scanned opcode by
opcode (``pickletools.genops``, which runs nothing) before it is unpickled:

* ``MAX_DIMS``, ``MAX_TENSOR_BYTES``: a shape has at most 32 dimensions, none
  negative, and its non-zero dimensions multiply to at most 1 TiB (so even
  an empty tensor's shape is one numpy can make).
* A tensor's view (offset + (size - 1) * stride per dimension) must lie inside
  its storage, and the array it becomes may not be larger than that
  storage: an expanded (stride-0) or overlapping view is refused with
  ``WeightBudgetError`` rather than materialised (torch keeps it a view; we
  return plain arrays, and a 1.6 KB file must not become a 1.6 GB array).
* ``MAX_VIEW_COPIES``: all arrays together are at most 4x the bytes of the
  storages they are cut from (+ 1 MiB).
* ``ZIP_MAX_RATIO``: a zip's members may declare at most 4x the file's size
  uncompressed (+ 1 MiB); only stored and deflated members are read, in
  1 MiB chunks, and must hold exactly their declared size.
* Pickles: memo indices must be ones the stream has written (every pickler
  numbers them 0, 1, 2...), counted lengths (strings, bytes, frames) must
  fit in the bytes that remain, objects nest at most ``MAX_PICKLE_DEPTH``
  deep.
* safetensors: the header is at most 100 MB and within the file, its JSON
  nests at most 3 deep (all a valid header needs) and is checked before it is
  parsed; every tensor's dtype is known, its offsets lie in the data
  section, its shape times its itemsize is its byte span, and the tensors
  tile the data section exactly.
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import pickletools
import re
import reprlib
import struct
import sys
import zipfile

import ml_dtypes
import numpy as np
from numpy.lib.stride_tricks import as_strided

from zoo.weights.errors import UnsafePickleError, WeightBudgetError, WeightFileError, one_line

__all__ = ["MAX_DIMS", "MAX_PICKLE_DEPTH", "MAX_TENSOR_BYTES", "MAX_VIEW_COPIES",
           "SAFETENSORS_MAX_HEADER", "ZIP_MAX_RATIO", "UnsafePickleError", "WeightBudgetError",
           "WeightFileError", "load_safetensors", "load_torch", "read_state_dict",
           "safetensors_metadata"]

# ---- Budgets (see the module docstring) ----
# numpy allows 64 dimensions; no network's weight has more than a handful.
MAX_DIMS = 32
# One tensor's shape, counting only its non-zero dimensions, times its
# itemsize: far above any real weight, far below numpy's 2**63 limit.
MAX_TENSOR_BYTES = 2**40
# The arrays returned may total this many times the bytes of the storages
# they view: tied weights (an embedding shared with the classifier) make 2x,
# q/k/v views of a fused tensor beside it 2x; more than 4 copies is a file
# made to multiply itself. The slack keeps tiny files of many views readable.
MAX_VIEW_COPIES = 4
VIEW_SLACK = 2**20
# torch.save stores zip members uncompressed (ratio 1); a re-packed,
# deflated checkpoint of float weights inflates about 1.1x, zero-filled
# buffers more. 4x (+1 MiB) reads all of those and keeps a deflate bomb
# (up to 1032x) to 4x its size.
ZIP_MAX_RATIO = 4
ZIP_SLACK = 2**20
ZIP_CHUNK = 2**20
# Stored and deflated only: what torch reads; zipfile inflates bzip2 and
# lzma members without an output limit.
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_ZIP_METHOD_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma", 9: "deflate64",
                     93: "zstandard", 99: "AES"}
# A state dict nests about 8 deep (OrderedDict, rebuild call, its argument
# tuple, the persistent id...), a wrapped training checkpoint a few more.
# Python recurses into nested tuples (hashing a key, repr) in C: a pickle
# may make a million-deep one in a few MB.
MAX_PICKLE_DEPTH = 100
# safetensors' own limit for the JSON header.
SAFETENSORS_MAX_HEADER = 100_000_000
# {"name": {"shape": [...]}}: a valid header nests 3 deep.
SAFETENSORS_MAX_DEPTH = 3

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# Checkpoints often wrap the state dict with training state; these keys are
# unwrapped (first match in this order) when the mapping holds no tensors.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module", "ema")


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

class _Repr(reprlib.Repr):
    """Short reprs of values from a file for messages (a pickle's integer may
    have millions of digits: Python refuses to print those)."""

    def repr_int(self, x, level):
        return repr(x) if x.bit_length() <= 128 else f"<a {x.bit_length()}-bit integer>"


_short = _Repr()
_short.maxstring = _short.maxother = 60
_short.maxlevel = 3


def _fail(path, what, where=None, cls=WeightFileError):
    return cls(one_line(path, what, where))


def _wrapped(path, where, e: BaseException):
    """A library's exception (zipfile, pickle, json, struct) as our one-line error."""
    return WeightFileError(one_line(path, f"truncated or corrupted ({type(e).__name__}: {e})",
                                    where))


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
        self.storage, self.offset, self.dtype = storage, _int(offset), np.dtype(dtype)
        self.size, self.stride = _ints(size), _ints(stride)


def _int(v) -> int:
    if not isinstance(v, int):  # bool is an int, as torch's pickler would never write
        raise TypeError(f"expected an integer, got a {type(v).__name__}")
    return int(v)


def _ints(v) -> tuple[int, ...]:
    if not isinstance(v, (tuple, list)):  # torch.Size is read as a tuple
        raise TypeError(f"expected a tuple of integers, got a {type(v).__name__}")
    if len(v) > MAX_DIMS:
        raise ValueError(f"{len(v)} dimensions (at most {MAX_DIMS})")
    return tuple(map(_int, v))


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
        except (KeyError, TypeError):
            raise UnsafePickleError(one_line(
                self.path, f"refusing to unpickle global {module}.{name} (not on the allow-list "
                "of tensor-rebuilding names; nothing from the file was run). Only state dicts of "
                "tensors can be read: re-save a trusted file as model.state_dict() or safetensors."
            )) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] in ("storage", b"storage")
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], (str, int))):
            raise pickle.UnpicklingError(f"unknown persistent id {_short.repr(pid)}")
        key, dtype = str(pid[2]), pid[1].dtype
        self.dtypes[key] = dtype
        if len(pid) == 6 and pid[5] is not None:  # legacy view of a root storage
            if not (isinstance(pid[5], tuple) and len(pid[5]) == 3):
                raise pickle.UnpicklingError(f"storage view {_short.repr(pid[5])} is not "
                                             "(key, offset, numel)")
            _view_key, offset, numel = pid[5]
            return _Storage(key, dtype, _int(offset), _int(numel))
        return _Storage(key, dtype)


# ---- Pickle pre-scan -------------------------------------------------------

_SCALAR = [0]  # the depth cell shared by every scalar on the simulated stack


class _Bad(Exception):
    """A pre-scan finding (becomes a WeightFileError naming the file)."""


_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
# Opcodes that add to the object under them (which stays on the stack).
_MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}
# opcode -> (kind, objects popped below a MARK or without one, objects pushed)
_SPECIAL = {"PROTO", "FRAME", "MEMOIZE", "MARK", "DUP", "POP", *_PUTS, *_GETS}
_OPCODES = {
    op.name: ("special" if op.name in _SPECIAL else "mutate" if op.name in _MUTATORS
              else "container" if op.name.startswith("EMPTY_") else "make",
              pickletools.markobject in op.stack_before,
              op.stack_before.index(pickletools.markobject)
              if pickletools.markobject in op.stack_before else len(op.stack_before),
              len(op.stack_after))
    for op in pickletools.opcodes}


def _scan_pickle(buf: bytes, start: int, path, where: str) -> int:
    """Check the pickle starting at ``buf[start]`` without running it; return
    where it ends (after STOP). Walks the opcodes with ``pickletools.genops``
    (which decodes arguments and nothing else), simulating the unpickler's
    stack and memo with one nesting depth per object:

    * memo indices: a PUT must name the next index or one already written
      (every pickler writes 0, 1, 2...); a GET one that was written. The C
      unpickler sizes its memo table by the largest index it sees: a 12-byte
      pickle with index 10**8 would make it allocate 1.6 GB.
    * lengths: counted strings, bytes and frames must fit in the bytes left
      (genops reads them from an in-memory buffer and fails when they do not,
      without allocating the declared size).
    * depth: objects nest at most MAX_PICKLE_DEPTH deep. Exact for tuples
      and frozensets (immutable: what Python hashes and prints recursively);
      a list or dict filled after it was put into another may be counted
      short, which the readers' walks allow for (they are iterative).
    """
    f = io.BytesIO(buf)
    f.seek(start)
    stack: list = []  # one [depth] cell per object (shared by DUP, memo, GET)
    marks: list[int] = []
    memo: dict = {}
    pos = start
    try:
        for op, arg, pos in pickletools.genops(f):
            name = op.name
            kind, mark, below, pushes = _OPCODES[name]
            fence = marks[-1] if marks else 0
            if kind != "special":
                if mark:
                    if not marks:
                        raise _Bad(f"{name} without a MARK")
                    m = marks.pop()
                    items = stack[m:]
                    del stack[m:]
                    fence = marks[-1] if marks else 0
                else:
                    items = None
                if len(stack) - fence < below:
                    raise _Bad(f"stack underflow at {name}")
                if below:
                    popped = stack[-below:]
                    del stack[-below:]
                    if items:
                        popped += items
                else:
                    popped = items or ()
                depth = 0
                for c in popped[1:] if kind == "mutate" else popped:
                    if c[0] > depth:
                        depth = c[0]
                if kind == "mutate":
                    cell = popped[0]
                    if cell is _SCALAR:  # (the unpickler would fail too)
                        raise _Bad(f"{name} on a scalar or a global")
                    if len(popped) > 1 and depth + 1 > cell[0]:
                        cell[0] = depth + 1
                    stack.append(cell)
                    depth = cell[0]
                elif not pushes:  # STOP, POP_MARK
                    pass
                elif popped or mark or kind == "container":  # a new object, maybe filled later
                    depth = depth + 1 if popped else 0
                    stack.append([depth])
                else:  # a scalar or a global: never filled by a valid pickle
                    stack.append(_SCALAR)
                if depth > MAX_PICKLE_DEPTH:
                    raise _Bad(f"objects nest deeper than {MAX_PICKLE_DEPTH}")
            elif name == "PROTO":
                if not 0 <= arg <= pickle.HIGHEST_PROTOCOL:
                    raise _Bad(f"unknown pickle protocol {arg}")
            elif name == "FRAME":
                if arg > len(buf) - f.tell():
                    raise _Bad(f"a frame of {arg} bytes with {len(buf) - f.tell()} left")
            elif name in _GETS:
                if arg not in memo:
                    raise _Bad(f"memo index {arg} was never written")
                stack.append(memo[arg])
            elif name == "MARK":
                marks.append(len(stack))
            elif name == "DUP":
                if len(stack) <= fence:
                    raise _Bad("stack underflow")
                stack.append(stack[-1])
            elif name == "POP":
                if marks and marks[-1] == len(stack):
                    marks.pop()
                elif len(stack) > fence:
                    stack.pop()
                else:
                    raise _Bad("stack underflow")
            else:  # PUT, BINPUT, LONG_BINPUT, MEMOIZE
                index = len(memo) if name == "MEMOIZE" else arg
                if not 0 <= index <= len(memo):
                    raise _Bad(f"memo index {index} after {len(memo)} memo entries")
                if len(stack) <= fence:
                    raise _Bad(f"{name} with nothing to remember")
                memo[index] = stack[-1]
    except _Bad as e:
        raise _fail(path, f"{e} (byte {pos - start})", where) from None
    except MemoryError:
        raise
    except Exception as e:  # genops: unknown opcode, short string, no STOP, bad UTF-8
        raise _wrapped(path, where, e) from e
    return f.tell()


def _unpickle(buf: bytes, start: int, end: int, path, where: str, dtypes: dict):
    """Unpickle ``buf[start:end]`` (scanned) with the allow-listed unpickler."""
    try:
        return _Unpickler(io.BytesIO(buf[start:end]), path, dtypes).load()
    except (WeightFileError, MemoryError):
        raise
    except Exception as e:  # a stand-in given wrong arguments, a bad key, bad UTF-8...
        raise _wrapped(path, where, e) from e


# ---- From the object to tensors -------------------------------------------

def _name(k) -> str:
    return k if isinstance(k, str) else _short.repr(k)


def _tensors(obj, path) -> dict[str, _Tensor]:
    """The state dict in ``obj``: unwrap WRAPPER_KEYS while the mapping holds
    no tensors; keep tensors (also int64 ``num_batches_tracked``), flatten
    nested mappings to dotted names, drop plain Python values (epoch, config,
    lists), which are training state, not weights. Each mapping is walked
    once (a mapping under two names keeps the first; a cycle ends)."""
    seen: set[int] = set()
    while isinstance(obj, dict) and not any(isinstance(v, _Tensor) for v in obj.values()):
        seen.add(id(obj))
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None or id(inner) in seen:
            break
        obj = inner
    if not isinstance(obj, dict):
        kind = "tensor" if isinstance(obj, _Tensor) else type(obj).__name__
        raise _fail(path, f"holds a {kind}, not a state dict of tensors")
    out: dict[str, _Tensor] = {}
    walked = {id(obj)}
    todo = [("", iter(obj.items()))]
    while todo:
        prefix, items = todo[-1]
        for k, v in items:
            if isinstance(v, _Tensor):
                out[f"{prefix}{_name(k)}"] = v
            elif isinstance(v, dict) and id(v) not in walked:
                walked.add(id(v))
                todo.append((f"{prefix}{_name(k)}.", iter(v.items())))
                break
        else:
            todo.pop()
    if not out:
        keys = ", ".join(_short.repr(k) for k in list(obj)[:10])
        raise _fail(path, f"no tensors found (keys: {keys})")
    return out


def _check_shape(size: tuple, itemsize: int, path, where) -> int:
    """The element count of ``size``, refusing shapes numpy cannot make."""
    if len(size) > MAX_DIMS:
        raise _fail(path, f"{len(size)} dimensions (at most {MAX_DIMS})", where)
    if any(d < 0 for d in size):
        raise _fail(path, f"negative dimension in shape {_short.repr(size)}", where)
    nonzero = 1
    for d in size:  # each factor checked before multiplying: a dimension may be a huge int
        if d > MAX_TENSOR_BYTES or (d and nonzero * d * itemsize > MAX_TENSOR_BYTES):
            raise _fail(path, f"shape {_short.repr(size)} would be over {MAX_TENSOR_BYTES} bytes "
                        "(the limit of one tensor): corrupted", where)
        nonzero *= d or 1
    return math.prod(size)


def _plan(tensors: dict[str, _Tensor], storage_bytes, path) -> int:
    """Check every tensor against the bytes its storage holds
    (``storage_bytes(tensor) -> (root key, root bytes, bytes of its view)``)
    and the total against MAX_VIEW_COPIES, before anything is allocated.
    Returns the total bytes the arrays will take."""
    total, roots = 0, {}
    for name, t in tensors.items():
        where = f"tensor {name}"
        key, root, avail = storage_bytes(name, t)
        roots[key] = root
        itemsize = t.dtype.itemsize
        count = _check_shape(t.size, itemsize, path, where)
        if count == 0:
            continue  # torch allows any offset and strides for an empty tensor
        if len(t.stride) != len(t.size):
            raise _fail(path, f"{len(t.size)}-d size {_short.repr(t.size)} with a "
                        f"{len(t.stride)}-d stride {_short.repr(t.stride)}", where)
        elems = avail // itemsize
        if t.offset < 0 or any(st < 0 for st in t.stride):
            raise _fail(path, f"negative offset or stride (offset {_short.repr(t.offset)}, stride "
                        f"{_short.repr(t.stride)})", where)
        if t.offset >= elems or any(n > 1 and st >= elems for n, st in zip(t.size, t.stride)):
            last = None  # the sum would be a needlessly huge integer
        else:
            last = t.offset + sum((n - 1) * st for n, st in zip(t.size, t.stride))
        if last is None or last >= elems:
            raise _fail(path, f"view (offset {_short.repr(t.offset)}, size {_short.repr(t.size)}, "
                        f"stride {_short.repr(t.stride)}) reaches past its {elems}-element "
                        "storage: corrupted", where)
        nbytes = count * itemsize
        if nbytes > avail:
            raise _fail(path, f"size {t.size} with stride {t.stride} is {nbytes} bytes as an "
                        f"array but its storage holds {avail} (an expanded or overlapping "
                        "view): refusing to materialise it", where, WeightBudgetError)
        total += nbytes
    limit = MAX_VIEW_COPIES * sum(roots.values()) + VIEW_SLACK
    if total > limit:
        raise _fail(path, f"its {len(tensors)} tensors would take {total} bytes from "
                    f"{sum(roots.values())} bytes of storage, over the limit of {limit} "
                    f"({MAX_VIEW_COPIES} copies + 1 MiB): too many views of the same data",
                    cls=WeightBudgetError)
    return total


def _arrays(tensors: dict[str, _Tensor], read, swap: bool) -> dict[str, np.ndarray]:
    """Arrays in file order, each storage read once (``read(key)``) and
    dropped once its tensors are copied out."""
    by_storage: dict[str, list[str]] = {}
    for name, t in tensors.items():
        by_storage.setdefault(t.storage.key, []).append(name)
    out: dict[str, np.ndarray] = dict.fromkeys(tensors)
    for key, names in by_storage.items():
        raw = memoryview(read(key))
        for name in names:
            out[name] = _array(tensors[name], raw, swap)
        del raw
    return out


def _array(t: _Tensor, raw: memoryview, swap: bool) -> np.ndarray:
    s, dt = t.storage, t.dtype
    if s.numel is not None:  # legacy view: a slice of the root storage (checked)
        start = s.offset * s.dtype.itemsize
        raw = raw[start:start + s.numel * s.dtype.itemsize]
    if 0 in t.size:
        return np.zeros(t.size, dt)
    # Strided copy as unsigned integers of the same size: as_strided cannot
    # rebuild ml_dtypes' float8 types from their array interface.
    elems = np.frombuffer(raw, f"u{dt.itemsize}", count=len(raw) // dt.itemsize)
    arr = as_strided(elems[t.offset:], t.size, [st * dt.itemsize for st in t.stride]).copy()
    if swap and dt.itemsize > 1:  # file byte order differs from this machine's
        arr.byteswap(inplace=True)
    return arr.view(dt)


# ---- zip layout ------------------------------------------------------------

def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path) -> bytearray:
    """A member's bytes, inflated in chunks (never more than it declares,
    which the caller has budgeted), checked against its declared size and CRC."""
    where = f"zip member {info.filename}"
    if info.flag_bits & 0x1:
        raise _fail(path, "encrypted (torch never encrypts its records)", where)
    if info.compress_type not in _ZIP_METHODS:
        method = _ZIP_METHOD_NAMES.get(info.compress_type, "unknown")
        raise _fail(path, f"compression method {info.compress_type} ({method}) is not read: "
                    "torch stores its records, and only stored or deflated members are "
                    "inflated with a size limit", where)
    out, got = bytearray(info.file_size), 0  # the declared size, within the zip's budget
    try:
        with zf.open(info) as member:
            while got < info.file_size:
                chunk = member.read(min(ZIP_CHUNK, info.file_size - got))
                if not chunk:
                    break
                out[got:got + len(chunk)] = chunk
                got += len(chunk)
    except MemoryError:
        raise
    except Exception as e:  # BadZipFile (CRC, header), zlib.error, EOFError, ...
        raise _wrapped(path, where, e) from e
    if got != info.file_size:
        raise _fail(path, f"holds {got} bytes but declares {info.file_size}: truncated "
                    "or corrupted", where)
    return out


def _load_zip(f, size: int, path) -> dict[str, np.ndarray]:
    try:
        zf = zipfile.ZipFile(f)
        infos = zf.infolist()
    except MemoryError:
        raise
    except Exception as e:  # BadZipFile, bad UTF-8 names, ...
        raise _wrapped(path, "zip directory", e) from e
    declared = sum(i.file_size for i in infos)
    limit = ZIP_MAX_RATIO * size + ZIP_SLACK
    if declared > limit:
        raise _fail(path, f"its members declare {declared} bytes uncompressed, over the limit "
                    f"of {limit} ({ZIP_MAX_RATIO}x the file's {size} bytes + 1 MiB): a "
                    "decompression bomb or a corrupted directory", cls=WeightBudgetError)
    by_name = {i.filename: i for i in infos}
    prefix = infos[0].filename.split("/")[0] + "/" if infos else ""
    if prefix + "data.pkl" not in by_name:
        raise _fail(path, "zip without <archive>/data.pkl: not from torch.save")
    order = b"little"
    if prefix + "byteorder" in by_name:
        info = by_name[prefix + "byteorder"]
        if info.file_size > 16:
            raise _fail(path, f"byteorder record of {info.file_size} bytes", prefix + "byteorder")
        order = bytes(_read_member(zf, info, path)).strip()
    if order not in (b"little", b"big"):
        raise _fail(path, f"unknown byteorder record {_short.repr(order)}")
    pkl = bytes(_read_member(zf, by_name[prefix + "data.pkl"], path))
    end = _scan_pickle(pkl, 0, path, prefix + "data.pkl")
    obj = _unpickle(pkl, 0, end, path, prefix + "data.pkl", {})
    del pkl
    tensors = _tensors(obj, path)

    def storage_bytes(name, t):
        info = by_name.get(f"{prefix}data/{t.storage.key}")
        if info is None:
            raise _fail(path, f"its storage record {prefix}data/{t.storage.key} is missing",
                        f"tensor {name}")
        return t.storage.key, info.file_size, info.file_size

    _plan(tensors, storage_bytes, path)
    swap = (order == b"little") != (sys.byteorder == "little")
    return _arrays(tensors, lambda key: _read_member(zf, by_name[f"{prefix}data/{key}"], path),
                   swap)


# ---- legacy layout ---------------------------------------------------------

def _load_legacy(f, size: int, path) -> dict[str, np.ndarray]:
    buf = f.read()  # the storages are sliced out of it, not copied
    pos, dtypes, values = 0, {}, []
    for what in ("magic number", "protocol version", "sys_info", "object", "storage keys"):
        where = f"legacy {what} pickle"
        end = _scan_pickle(buf, pos, path, where)
        value = _unpickle(buf, pos, end, path, where, dtypes)
        if what == "magic number" and not (type(value) is int and value == _LEGACY_MAGIC):
            raise _fail(path, "not a PyTorch checkpoint (no torch magic number)")
        if what == "protocol version" and not (type(value) is int and value == _LEGACY_PROTOCOL):
            raise _fail(path, f"unknown legacy torch protocol version {_short.repr(value)}")
        values.append(value)
        pos = end
    obj, keys = values[3], values[4]
    if not isinstance(keys, (list, tuple)):
        raise _fail(path, f"the storage key list is a {type(keys).__name__}")
    raw: dict[str, memoryview] = {}
    view = memoryview(buf)
    for key in keys:
        if not isinstance(key, (str, int)):
            raise _fail(path, f"a storage key is a {type(key).__name__}")
        key = str(key)
        where = f"storage {key}"
        if key not in dtypes:
            raise _fail(path, "is listed but no tensor uses it", where)
        if key in raw:
            raise _fail(path, "is listed twice", where)
        if len(buf) - pos < 8:
            raise _fail(path, f"truncated: its header needs 8 bytes, {len(buf) - pos} left", where)
        (count,) = struct.unpack_from("<q", buf, pos)  # little-endian on every machine
        pos += 8
        if count < 0:
            raise _fail(path, f"negative element count {count}: corrupted", where)
        n = count * dtypes[key].itemsize
        if n > len(buf) - pos:  # checked first: a corrupt count must not allocate
            raise _fail(path, f"truncated: {count} elements need {n} bytes, "
                        f"{len(buf) - pos} left", where)
        raw[key] = view[pos:pos + n]
        pos += n
    tensors = _tensors(obj, path)

    def storage_bytes(name, t):
        s = t.storage
        if s.key not in raw:
            raise _fail(path, f"its storage {s.key} is not in the file's storage list",
                        f"tensor {name}")
        root = len(raw[s.key])
        if s.numel is None:
            return s.key, root, root
        start, n = s.offset * s.dtype.itemsize, s.numel * s.dtype.itemsize
        if s.offset < 0 or s.numel < 0 or start + n > root:
            raise _fail(path, f"views {_short.repr(s.numel)} elements from element "
                        f"{_short.repr(s.offset)} of the {root}-byte storage {s.key}: corrupted",
                        f"tensor {name}")
        return s.key, root, n

    _plan(tensors, storage_bytes, path)
    return _arrays(tensors, raw.__getitem__, sys.byteorder != "little")


def _open(path):
    try:
        return open(path, "rb")
    except (FileNotFoundError, MemoryError):
        raise
    except OSError as e:  # a directory, no permission
        raise _fail(path, f"cannot be read ({type(e).__name__}: {e.strerror or e})") from e


def load_torch(path) -> dict[str, np.ndarray]:
    """``{name: array}`` from a ``torch.save`` state dict (zip or legacy), in
    file order. A checkpoint that wraps its state dict (under
    ``WRAPPER_KEYS`` such as ``"state_dict"`` or ``"model"``) is unwrapped,
    nested mappings become dotted names, and plain Python values (epoch,
    config) are dropped.

    Args:
        path: the ``.pth``/``.pt``/``.bin``/``.ckpt`` file.

    Returns:
        Tensor name -> numpy array with the tensor's dtype and shape
        (bfloat16 and float8 as ``ml_dtypes`` types).

    Raises:
        UnsafePickleError: the pickle names a global other than the
            tensor machinery (nothing it names is called).
        WeightBudgetError: the file declares far more data than it holds.
        WeightFileError: not a torch checkpoint, or damaged (see the module
            docstring).
        FileNotFoundError: ``path`` does not exist.
    """
    path = os.fspath(path)
    with _open(path) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(4)
        f.seek(0)
        if head.startswith(b"PK\x03\x04"):
            return _load_zip(f, size, path)
        if head[:1] == b"\x80":  # pickle PROTO opcode
            return _load_legacy(f, size, path)
        raise _fail(path, "not a PyTorch checkpoint (neither zip nor pickle)")


# ---- safetensors -----------------------------------------------------------

_SAFETENSORS_DTYPES = {code: np.dtype(d) for _, code, d in _DTYPES.values()}
# A JSON string, or an unterminated one up to the end: every match attempt
# from a quote succeeds without backtracking (an attempt that could fail
# would be retried from each later quote: quadratic on '"\\"\\"\\"...').
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\(?:.|\Z)[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _json_depth(text: bytes) -> int:
    """How deep the brackets of a JSON text nest (outside strings), counted
    in chunks without parsing."""
    brackets = _JSON_STRING.sub(b'""', text).translate(None, _NOT_BRACKETS)
    step = np.zeros(256, np.int32)
    step[list(b"[{")], step[list(b"]}")] = 1, -1
    depth, deepest = 0, 0
    for i in range(0, len(brackets), ZIP_CHUNK):
        run = depth + np.cumsum(step[np.frombuffer(brackets[i:i + ZIP_CHUNK], np.uint8)])
        deepest, depth = max(deepest, int(run.max())), int(run[-1])
    return deepest


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {_short.repr(k)}")
        d[k] = v
    return d


def _safetensors_header(raw: bytes, data_len: int, path) -> tuple[list, dict]:
    """([(name, dtype, shape, begin, end)], metadata) from the JSON header,
    every field checked."""
    if not raw.startswith(b"{"):
        raise _fail(path, "the header is not a JSON object", "header")
    depth = _json_depth(raw)
    if depth > SAFETENSORS_MAX_DEPTH:
        raise _fail(path, f"the JSON nests {depth} deep (a valid header nests at most "
                    f"{SAFETENSORS_MAX_DEPTH})", "header")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except MemoryError:
        raise
    except Exception as e:  # UnicodeDecodeError, JSONDecodeError, ints over 4300 digits
        raise _fail(path, f"not valid JSON ({type(e).__name__}: {e})", "header") from e
    if not isinstance(header, dict):
        raise _fail(path, "the header is not a JSON object", "header")
    entries, metadata = [], {}
    for name, info in header.items():
        if name == "__metadata__":
            if not (isinstance(info, dict) and all(isinstance(v, str) for v in info.values())):
                raise _fail(path, "must map strings to strings", "__metadata__")
            metadata = info
            continue
        where = f"tensor {name}"
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise _fail(path, "needs dtype, shape and data_offsets", where)
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(code, str) or code not in _SAFETENSORS_DTYPES:
            raise _fail(path, f"unsupported dtype {_short.repr(code)}", where)
        dt = _SAFETENSORS_DTYPES[code]
        if not (isinstance(shape, list) and all(type(d) is int for d in shape)):
            raise _fail(path, f"shape {_short.repr(shape)} is not a list of integers", where)
        count = _check_shape(tuple(shape), dt.itemsize, path, where)
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int for o in offsets)):
            raise _fail(path, f"data_offsets {_short.repr(offsets)} are not two integers", where)
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise _fail(path, f"data_offsets [{begin}, {end}] outside the {data_len}-byte data "
                        "section", where)
        if count * dt.itemsize != end - begin:
            raise _fail(path, f"shape {shape} of {code} is {count * dt.itemsize} bytes but "
                        f"data_offsets span {end - begin}", where)
        entries.append((name, dt, tuple(shape), begin, end))
    covered = 0  # the tensors must tile the data section, as safetensors requires
    for name, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin != covered:
            raise _fail(path, f"data_offsets start at {begin}, not at {covered} where the "
                        "previous tensor ends (overlap or gap)", f"tensor {name}")
        covered = end
    if covered != data_len:
        raise _fail(path, f"the tensors cover {covered} of the {data_len}-byte data section")
    return entries, metadata


def _open_safetensors(f, path) -> tuple[int, list, dict]:
    """(header length, entries, metadata) of the open safetensors file ``f``."""
    size = os.fstat(f.fileno()).st_size
    head = f.read(8)
    if len(head) < 8:
        raise _fail(path, f"not a safetensors file: {size} bytes, too short for a header")
    (n,) = struct.unpack("<Q", head)
    if n > min(size - 8, SAFETENSORS_MAX_HEADER):
        raise _fail(path, f"not a safetensors file: header length {n} exceeds "
                    + (f"the {size - 8} bytes after it" if n > size - 8 else
                       f"the limit of {SAFETENSORS_MAX_HEADER}"), "header")
    return (n, *_safetensors_header(f.read(n), size - 8 - n, path))


def safetensors_metadata(path) -> dict[str, str]:
    """The ``__metadata__`` of a ``.safetensors`` file (its header checked
    as ``load_safetensors`` checks it; no tensor is read).

    Args:
        path: the ``.safetensors`` file.

    Returns:
        The string-to-string metadata; empty when the file has none.

    Raises:
        WeightFileError: not a safetensors file, or a header that breaks
            the format's rules or the size limits.
        FileNotFoundError: ``path`` does not exist.
    """
    path = os.fspath(path)
    with _open(path) as f:
        return dict(_open_safetensors(f, path)[2])


def load_safetensors(path) -> dict[str, np.ndarray]:
    """``{name: array}`` from a ``.safetensors`` file, in header order (the
    format is read here: the header is checked field by field before any
    array is allocated; see the module docstring).

    Args:
        path: the ``.safetensors`` file.

    Returns:
        Tensor name -> numpy array in the file's dtype and shape; the
        ``__metadata__`` entry is not returned.

    Raises:
        WeightFileError: not a safetensors file, a header that breaks the
            format's rules or the size limits, or truncated data.
        FileNotFoundError: ``path`` does not exist.
    """
    path = os.fspath(path)
    with _open(path) as f:
        n, entries, _ = _open_safetensors(f, path)
        out = {}
        for name, dt, shape, begin, end in entries:
            arr = np.empty(shape, dt)
            if end > begin:
                f.seek(8 + n + begin)
                got = f.readinto(arr.reshape(-1).view(np.uint8))
                if got != end - begin:
                    raise _fail(path, f"truncated: {got} of {end - begin} bytes",
                                f"tensor {name}")
                if sys.byteorder == "big" and dt.itemsize > 1:  # safetensors is little-endian
                    arr.view(f"u{dt.itemsize}").byteswap(inplace=True)
            out[name] = arr
        return out


def read_state_dict(path) -> dict[str, np.ndarray]:
    """``{name: array}`` from a PyTorch checkpoint (``.pth``, ``.pt``,
    ``.bin``, ``.ckpt``: zip or legacy) or, by its suffix, a ``.safetensors``
    file.

    Args:
        path: the checkpoint; a name ending ``.safetensors`` (any case) is
            read as safetensors, anything else as ``torch.save`` output.

    Returns:
        Tensor name -> numpy array (see ``load_torch`` and
        ``load_safetensors``).

    Raises:
        WeightFileError: the file cannot be read as weights (and its
            subclasses ``UnsafePickleError``, ``WeightBudgetError``).
        FileNotFoundError: ``path`` does not exist.
    """
    if os.fspath(path).lower().endswith(".safetensors"):
        return load_safetensors(path)
    return load_torch(path)
