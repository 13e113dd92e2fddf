"""Read TFLite flatbuffers (``.tflite``) into numpy, without TensorFlow.

``read_tflite(path, subgraph=None) -> TFLiteGraph`` exposes the graph, not
just a bag of weights, so converters can derive a layer mapping from it:

* ``tensors``: ``Tensor(index, name, shape, dtype, buffer_index,
  quantization)``; ``dtype`` is a numpy-style name ("float32", "float16",
  "int8", ..., "string", "resource"); ``quantization`` is ``None`` or
  ``Quantization(scale, zero_point, quantized_dimension)``.
* ``ops`` in execution order: ``Op(index, opcode, inputs, outputs, options)``;
  ``opcode`` is the builtin name ("CONV_2D", "DEPTHWISE_CONV_2D",
  "DEQUANTIZE", ...) or ``"CUSTOM:<name>"``; ``options`` is a plain dict of
  the builtin options in snake case with enums as names (``{"padding":
  "SAME", "stride_w": 2, "fused_activation_function": "RELU", ...}``); an
  optional input is the index -1, as in the file.
* ``inputs`` / ``outputs``: the graph's input and output tensor indices;
  ``producer(i)`` / ``consumers(i)`` walk the edges.
* ``constant(i, dequantize=False)``: a constant tensor's data as a fresh
  array. float16 (and bfloat16) are widened to float32, which is exact;
  integer tensors carrying a scale become float32 ``(q - zero_point) *
  scale`` (per tensor or per channel along ``quantized_dimension``) only when
  ``dequantize=True``; everything else comes as stored.
* ``dequantized_constant(i)``: the float32 data behind a weight input. The
  float16 models MediaPipe ships store each weight as a float16 constant
  feeding a DEQUANTIZE op whose float32 output is what CONV_2D reads, so a
  conv's weight input is not itself a constant; this follows one DEQUANTIZE
  back to its constant (or takes the tensor itself when it is constant).
  Layouts are TFLite's: CONV_2D weights OHWI, DEPTHWISE_CONV_2D 1HW(I*M).

Parsing uses the ``tflite`` package from the package index: classes that
``flatc`` generated from TFLite's ``schema.fbs`` on top of the maintained
``flatbuffers`` runtime (no TensorFlow, no compiled code; the schema is
versioned with TensorFlow's releases). Hand-written offset arithmetic would
duplicate the schema; TensorFlow and LiteRT ship the same generated code only
inside multi-hundred-MB wheels. The generated accessors read lazily and do no
bounds checks, so the whole file is walked here once, up front, and any
failure or inconsistency raises ``TFLiteFormatError`` (or, for a file that
would take far more memory to parse than its size, ``WeightBudgetError``),
one line naming the file and the tensor or op. Checked before anything is
allocated:

* vector lengths fit in the file; what parsing materialises (shapes, names,
  index lists, options, metadata, plus ``TABLE_CHARGE`` per table) stays
  under twice the file's size plus ``PARSE_SLACK``, so tables sharing one
  huge vector or string cannot multiply it;
* shapes: at most ``MAX_RANK`` dimensions, none below -1, at most
  ``MAX_ELEMENTS`` elements; a constant's dimensions are all known and its
  element count times item size is exactly its buffer's size (buffers kept
  after the flatbuffer lie inside the file);
* quantization: as many zero points as scales (or none), per-channel scales
  along an existing dimension of that length;
* op inputs and outputs, graph inputs and outputs, buffer, opcode and
  control-flow subgraph indices in range (-1 only for an optional op input);
* execution order: an op reading its own output or a later op's (a cycle)
  is refused, so every walk back through ``producer`` ends within the op count.

The ``TFLiteGraph`` methods raise ``TFLiteFormatError`` too (a tensor with
no data, a DEQUANTIZE with no input, a type with no numpy form).

Only one subgraph is read: the first when the file has one, else the caller
must pass ``subgraph=`` (models with control flow keep their bodies in
further subgraphs; those are not followed).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import os
import re
import struct
from typing import Any, Optional

import ml_dtypes
import numpy as np
import tflite as _schema

from zoo.weights.errors import (TFLiteFormatError, WeightBudgetError, WeightError,
                                WeightFileError, one_line)

FILE_IDENTIFIER = b"TFL3"
# What the generated accessors raise on reading past the end or garbage offsets.
_PARSE_ERRORS = (struct.error, IndexError, ValueError, TypeError, AttributeError, OverflowError,
                 UnicodeError)

# Budgets, checked before anything is allocated (a fuzzed or hostile file
# must fail with TFLiteFormatError/WeightBudgetError, never exhaust memory):
MAX_RANK = 32  # dimensions of a tensor's shape (TFLite kernels use up to 6)
MAX_ELEMENTS = 2**32  # elements one tensor's shape may declare (int32-indexed kernels)
# Parsing materialises shapes, names, index lists and options as Python objects;
# a flatbuffer can point many tables at one vector or string, so the bytes read
# that way (plus a fixed charge per table) are capped at twice the file's size
# plus this slack. An unshared file reads each byte at most once.
PARSE_SLACK = 1 << 20
# Charged per tensor, op and opcode table (its Python objects and the accessors'
# time, ~0.1 ms): a file whose tables all share one table is bounded too.
TABLE_CHARGE = 128

@dataclasses.dataclass(frozen=True)
class Quantization:
    """How an integer tensor maps to real numbers: ``(q - zero_point) * scale``.

    Attributes:
        scale: one scale per tensor, or one per channel.
        zero_point: as many zero points as scales, or none (zero).
        quantized_dimension: the channel dimension of per-channel scales.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int = 0

    @property
    def per_channel(self) -> bool:
        """Whether there is more than one scale (one per channel)."""
        return len(self.scale) > 1


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One tensor of the graph, as the file declares it.

    Attributes:
        index: its position in ``TFLiteGraph.tensors``.
        name: its name in the file.
        shape: its dimensions; -1 marks one unknown until run time.
        dtype: a numpy-style name: "float32", "float16", "int8", "uint8",
            "int32", ..., or "string", "resource", "variant", "int4".
        buffer_index: the model buffer holding its data (0: none).
        quantization: its quantization parameters, or None.
        is_variable: whether the graph writes it as state (a variable).
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer_index: int
    quantization: Optional[Quantization] = None
    is_variable: bool = False


@dataclasses.dataclass(frozen=True)
class Op:
    """One operator of the graph, in execution order.

    Attributes:
        index: its position in ``TFLiteGraph.ops`` (the execution order).
        opcode: the builtin name ("CONV_2D", "DEQUANTIZE", ...) or
            ``"CUSTOM:<name>"``.
        inputs: tensor indices it reads; -1 for an absent optional input.
        outputs: tensor indices it writes.
        options: its builtin options in snake case, enums as names, e.g.
            ``{"padding": "SAME", "stride_w": 2}``.
        custom_options: the raw (usually flexbuffer) bytes of a custom op's
            options; empty otherwise.
    """

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    custom_options: bytes = b""


# TensorType -> (dtype name, numpy dtype or None when there is no fixed-size element).
_DTYPES = {
    "FLOAT32": ("float32", np.dtype("<f4")), "FLOAT16": ("float16", np.dtype("<f2")),
    "INT32": ("int32", np.dtype("<i4")), "UINT8": ("uint8", np.dtype("u1")),
    "INT64": ("int64", np.dtype("<i8")), "STRING": ("string", None),
    "BOOL": ("bool", np.dtype("?")), "INT16": ("int16", np.dtype("<i2")),
    "COMPLEX64": ("complex64", np.dtype("<c8")), "INT8": ("int8", np.dtype("i1")),
    "FLOAT64": ("float64", np.dtype("<f8")), "COMPLEX128": ("complex128", np.dtype("<c16")),
    "UINT64": ("uint64", np.dtype("<u8")), "RESOURCE": ("resource", None),
    "VARIANT": ("variant", None), "UINT32": ("uint32", np.dtype("<u4")),
    "UINT16": ("uint16", np.dtype("<u2")), "INT4": ("int4", None),  # two per byte
    "BFLOAT16": ("bfloat16", np.dtype(ml_dtypes.bfloat16)),
}


def _enum_names(cls) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


_TENSOR_TYPES = {code: _DTYPES.get(name, (name.lower(), None))
                 for code, name in _enum_names(_schema.TensorType).items()}
_BUILTINS = _enum_names(_schema.BuiltinOperator)
_OPTION_CLASSES = {code: getattr(_schema, name, None)
                   for code, name in _enum_names(_schema.BuiltinOptions).items() if code}
_OPTION2_CLASSES = {code: getattr(_schema, name, None)
                    for code, name in _enum_names(_schema.BuiltinOptions2).items() if code}
# Option fields whose integers are schema enums, reported by name.
_ENUM_FIELDS = {
    "padding": "Padding", "fused_activation_function": "ActivationFunctionType",
    "quantized_bias_type": "TensorType", "in_data_type": "TensorType",
    "out_data_type": "TensorType", "output_type": "TensorType", "out_type": "TensorType",
    "idx_out_type": "TensorType", "mode": "MirrorPadMode", "type": "LSHProjectionType",
    "kernel_type": "LSTMKernelType", "weights_format": "FullyConnectedOptionsWeightsFormat",
    "combiner": "CombinerType", "reduce_function": "ReduceWindowFunction",
    "comparison_direction": "StablehloComparisonDirection",
    "compare_type": "StablehloComparisonType", "algorithm": "RngAlgorithm",
}
_ENUM_FIELDS = {k: _enum_names(getattr(_schema, v)) for k, v in _ENUM_FIELDS.items()
                if hasattr(_schema, v)}
_SKIP = re.compile(r"^(Init|GetRootAs.*)$|(Length|IsNone|AsNumpy|BufferHasIdentifier)$")


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _short(name: str) -> str:
    """A tensor name for a message (they can be kilobytes long)."""
    return repr(name if len(name) <= 80 else name[:77] + "...")


class _Parse:
    """What reading one file needs besides the schema: its path and bytes (for
    messages and bounds) and the budget of what parsing may still materialise."""

    def __init__(self, path: str, buf: bytes):
        self.path, self.buf = path, buf
        self.left = 2 * len(buf) + PARSE_SLACK

    def bad(self, what: str, where: Optional[str] = None) -> TFLiteFormatError:
        return TFLiteFormatError(one_line(self.path, what, where))

    def take(self, nbytes: int, what: str) -> None:
        self.left -= nbytes
        if self.left < 0:
            raise WeightBudgetError(one_line(
                self.path, f"parsing would materialise more than twice the file's "
                f"{len(self.buf)} bytes (+{PARSE_SLACK >> 20} MiB): many tables share one "
                f"vector or string", what))

    def count(self, n: int, what: str, elem: int = 4) -> int:
        """A vector length, checked against the file before it is iterated."""
        if n < 0 or n * elem > len(self.buf):
            raise self.bad(f"{n} entries cannot fit in the file's {len(self.buf)} bytes", what)
        self.take(n * elem, what)
        return n

    def tables(self, n: int, what: str, charge: int = TABLE_CHARGE) -> int:
        """A vector of ``n`` tables: its length checked and all of them charged
        before the first is read."""
        self.count(n, what)
        self.take(n * charge, what)
        return n

    def ints(self, arr, what: str) -> tuple[int, ...]:
        if not isinstance(arr, np.ndarray):
            return ()
        self.take(arr.nbytes, what)
        return tuple(arr.tolist())

    def floats(self, arr, what: str) -> tuple[float, ...]:
        if not isinstance(arr, np.ndarray):
            return ()
        self.take(arr.nbytes, what)
        return tuple(float(v) for v in arr.tolist())

    def str(self, value: Optional[bytes], what: str) -> str:
        if not value:
            return ""
        self.take(len(value), what)
        return value.decode("utf-8", "replace")


def _plain(value, parse: _Parse, what: str):
    if isinstance(value, (bytes, bytearray)):
        return parse.str(bytes(value), what)
    if isinstance(value, (bool, int, float, str)):
        return value
    return None  # a nested table: not needed by any builtin op we map


@functools.lru_cache(maxsize=None)
def _option_fields(cls) -> tuple[tuple[str, str, str], ...]:
    """(accessor, snake-case key, kind) of a generated options class, in schema
    order; kind is "numpy" (vector of scalars), "vector" (of tables or
    strings) or "scalar"."""
    fields = []
    for attr, fn in vars(cls).items():
        if not callable(fn) or attr.startswith("_") or _SKIP.search(attr):
            continue
        if hasattr(cls, f"{attr}AsNumpy"):
            kind = "numpy"
        elif len(inspect.signature(fn).parameters) == 2:
            kind = "vector"
        else:
            kind = "scalar"
        fields.append((attr, _snake(attr), kind))
    return tuple(fields)


def _options_dict(table, cls, parse: _Parse, where: str) -> dict[str, Any]:
    """The fields of a generated options table as a plain dict (schema order)."""
    if table is None or cls is None:
        return {}
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    out = {}
    for attr, key, kind in _option_fields(cls):
        if kind == "numpy":
            value = parse.ints(getattr(obj, f"{attr}AsNumpy")(), where)
        elif kind == "vector":
            n = parse.count(getattr(obj, f"{attr}Length")(), where)
            value = tuple(_plain(getattr(obj, attr)(j), parse, where) for j in range(n))
        else:
            value = _plain(getattr(obj, attr)(), parse, where)
        if key in _ENUM_FIELDS and isinstance(value, int):
            value = _ENUM_FIELDS[key].get(value, value)
        out[key] = value
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class TFLiteGraph:
    """One subgraph of a TFLite model, with the model's constant buffers.

    Made by ``read_tflite``; its methods raise ``TFLiteFormatError`` for an
    index out of range or a tensor that cannot give what is asked.

    Attributes:
        path: the file it was read from, for messages.
        tensors: every tensor of the subgraph, by index.
        ops: its operators in execution order.
        inputs: the subgraph's input tensor indices.
        outputs: the subgraph's output tensor indices.
        subgraph: which subgraph of the model this is.
        num_subgraphs: how many subgraphs the model has.
        version: the schema version the file declares.
        description: the model's description string.
        metadata: the model's metadata entries, name -> raw bytes.
        _buffers: the model's buffers as uint8 arrays (internal; read them
            through ``constant``).
        _producers: tensor index -> index of the op that writes it
            (internal; see ``producer``).
    """

    path: str
    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraph: int = 0
    num_subgraphs: int = 1
    version: int = 3
    description: str = ""
    metadata: dict[str, bytes] = dataclasses.field(default_factory=dict, repr=False)
    _buffers: tuple[np.ndarray, ...] = dataclasses.field(default=(), repr=False)
    _producers: dict[int, int] = dataclasses.field(default_factory=dict, repr=False)

    def _error(self, what: str, index: Optional[int] = None) -> TFLiteFormatError:
        where = None
        if index is not None:
            where = f"tensor {index} {_short(self.tensors[index].name)}"
        return TFLiteFormatError(one_line(self.path, what, where))

    def _tensor(self, index: int) -> Tensor:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
                or not 0 <= index < len(self.tensors):
            absent = " (-1 marks an absent optional input)" if index == -1 else ""
            raise self._error(f"no tensor {index}{absent}; the graph has {len(self.tensors)}")
        return self.tensors[index]

    def is_constant(self, index: int) -> bool:
        """Whether tensor ``index`` holds data in the file.

        Args:
            index: a tensor index.

        Returns:
            True when its buffer is a non-empty one of the file's.
        """
        t = self._tensor(index)
        return 0 < t.buffer_index < len(self._buffers) and self._buffers[t.buffer_index].size > 0

    def producer(self, index: int) -> Optional[Op]:
        """The op whose output tensor ``index`` is (None for inputs and constants).

        Args:
            index: a tensor index.

        Returns:
            The producing ``Op``, or None.
        """
        op = self._producers.get(self._tensor(index).index)
        return None if op is None else self.ops[op]

    def consumers(self, index: int) -> list[Op]:
        """The ops that read tensor ``index``, in execution order.

        Args:
            index: a tensor index.

        Returns:
            Those ``Op`` objects; empty for a graph output nothing reads.
        """
        self._tensor(index)
        return [op for op in self.ops if index in op.inputs]

    def constant(self, index: int, *, dequantize: bool = False) -> np.ndarray:
        """The data of constant tensor ``index`` (see the module docstring for dtypes).

        Args:
            index: a tensor index.
            dequantize: turn an integer tensor that carries a scale into
                float32 ``(q - zero_point) * scale``.

        Returns:
            A fresh array of the tensor's shape: float16 and bfloat16
            widened to float32, int4 unpacked to int8, others as stored.

        Raises:
            TFLiteFormatError: ``index`` is out of range or not constant, its
                type has no numpy form, its shape is not fully known, its
                buffer has the wrong size, or its per-channel quantization
                does not fit its shape.
        """
        t = self._tensor(index)
        if not self.is_constant(index):
            what = self.producer(index)
            why = f"the output of op {what.index} ({what.opcode})" if what else "not constant"
            raise self._error(f"has no data: {why}", index)
        raw = self._buffers[t.buffer_index]
        np_dtype = _TENSOR_TYPES_BY_NAME.get(t.dtype)
        # read_tflite checked the sizes; a graph built by hand is checked here too.
        if np_dtype is None and t.dtype != "int4":
            raise self._error(f"has type {t.dtype}, which has no numpy form", index)
        count = _elements(t.shape)
        if count is None:
            raise self._error(f"constant of unknown shape {list(t.shape)}", index)
        want = (count + 1) // 2 if t.dtype == "int4" else count * np_dtype.itemsize
        if raw.size != want:
            raise self._error(f"{t.dtype}{list(t.shape)} needs {want} bytes, its buffer "
                              f"{t.buffer_index} has {raw.size}", index)
        if t.dtype == "int4":
            b = raw.view(np.int8)
            nibbles = np.stack([(b << 4) >> 4, b >> 4], axis=-1).reshape(-1)  # low nibble first
            data = nibbles[:count].reshape(t.shape)
        else:
            data = raw.view(np_dtype).reshape(t.shape).copy()
        if data.dtype in (np.float16, ml_dtypes.bfloat16):
            return data.astype(np.float32)
        q = t.quantization
        if dequantize and q is not None and data.dtype.kind in "iu":
            scale = np.asarray(q.scale, np.float32)
            zero = np.asarray(q.zero_point or (0,), np.float32)
            if len(scale) > 1 or len(zero) > 1:
                if not (len(zero) in (1, len(scale)) and 0 <= q.quantized_dimension < data.ndim
                        and data.shape[q.quantized_dimension] == len(scale)):
                    raise self._error(f"{len(scale)} scales and {len(zero)} zero points along "
                                      f"dimension {q.quantized_dimension} of shape "
                                      f"{list(t.shape)}", index)
                bshape = [1] * data.ndim
                bshape[q.quantized_dimension] = -1
                scale, zero = scale.reshape(bshape), zero.reshape(bshape)
            return ((data.astype(np.float32) - zero) * scale).astype(np.float32)
        return data

    def dequantized_source(self, index: int) -> int:
        """The constant tensor behind tensor ``index``: itself if constant, else
        the input of the DEQUANTIZE op producing it (see ``dequantized_constant``).

        Args:
            index: a tensor index, e.g. a convolution's weight input.

        Returns:
            The index of the constant tensor that holds the data.

        Raises:
            TFLiteFormatError: ``index`` is out of range, or the tensor is
                neither constant nor a DEQUANTIZE of a constant.
        """
        t = self._tensor(index)
        if self.is_constant(index):
            return index
        op = self.producer(index)
        if (op is not None and op.opcode == "DEQUANTIZE" and op.inputs
                and 0 <= op.inputs[0] < len(self.tensors) and self.is_constant(op.inputs[0])):
            return op.inputs[0]
        if op is not None:
            what = f"the output of op {op.index} ({op.opcode})"
            if op.opcode == "DEQUANTIZE":
                what += (" with no input" if not op.inputs or op.inputs[0] < 0
                         else f" of non-constant tensor {op.inputs[0]}")
        else:
            what = "a graph input" if t.index in self.inputs else "written by no op"
        raise self._error(f"is neither a constant nor a DEQUANTIZE of one; it is {what}", index)

    def dequantized_constant(self, index: int) -> np.ndarray:
        """Float32 data of tensor ``index``: itself if constant, else the constant
        behind the DEQUANTIZE op producing it (float16 -> float32 as stored by
        MediaPipe, or int8/uint8 dequantized with its scale).

        Args:
            index: a tensor index, e.g. a convolution's weight input.

        Returns:
            float32 array in TFLite's layout (CONV_2D weights OHWI,
            DEPTHWISE_CONV_2D 1HW(I*M)).

        Raises:
            TFLiteFormatError: as for ``dequantized_source`` and
                ``constant``, or the data are not real numbers.
        """
        src = self.dequantized_source(index)
        data = self.constant(src, dequantize=True)
        if data.dtype.kind not in "fiub":
            raise self._error(f"holds {self.tensors[src].dtype}, not real numbers", src)
        return data.astype(np.float32, copy=False)


_TENSOR_TYPES_BY_NAME = {name: dt for name, dt in _TENSOR_TYPES.values()}


def _elements(shape: tuple[int, ...]) -> Optional[int]:
    """Elements of a fully known shape (None when a dimension is negative)."""
    return None if any(d < 0 for d in shape) else math.prod(shape)


def read_tflite(path: os.PathLike | str, *, subgraph: Optional[int] = None) -> TFLiteGraph:
    """Parse the ``.tflite`` file at ``path`` (one subgraph, see the module docstring).

    A file that is not a well-formed TFLite graph raises ``TFLiteFormatError``
    (or ``WeightBudgetError`` when parsing it would take far more memory than
    its size), one line naming the file. A file with several subgraphs needs
    ``subgraph=``; asking for none, or for one it does not have, raises the
    base ``WeightFileError``.

    Args:
        path: the ``.tflite`` file.
        subgraph: which subgraph to read; None reads the only one.

    Returns:
        The ``TFLiteGraph`` of that subgraph.

    Raises:
        TFLiteFormatError: not a well-formed TFLite flatbuffer or graph.
        WeightBudgetError: parsing it would take far more memory than its size.
        WeightFileError: ``subgraph`` is missing for a model with several,
            or out of range.
        OSError: the file cannot be opened (``FileNotFoundError`` when missing).

    Example:
        ::

            graph = read_tflite("face_detection_short_range.tflite")
            conv = next(op for op in graph.ops if op.opcode == "CONV_2D")
            kernel = graph.dequantized_constant(conv.inputs[1])  # OHWI float32
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8 or buf[4:8] != FILE_IDENTIFIER:
        got = buf[4:8] if len(buf) >= 8 else f"only {len(buf)} bytes"
        raise TFLiteFormatError(one_line(path, f"not a TFLite flatbuffer: file identifier "
                                         f"{got!r}, expected {FILE_IDENTIFIER!r}"))
    parse = _Parse(path, buf)
    try:
        model = _schema.Model.GetRootAs(buf, 0)
        n_sub = model.SubgraphsLength()
    except _PARSE_ERRORS as e:
        raise parse.bad(f"truncated or corrupt: {type(e).__name__}: {e}") from e
    if n_sub == 0 or 4 * n_sub > len(buf):
        raise parse.bad(f"truncated or corrupt: {n_sub} subgraphs")
    # Not corrupt, but not readable without (a valid) choice: WeightFileError, not
    # TFLiteFormatError.
    if subgraph is None and n_sub > 1:
        raise WeightFileError(f"{path} has {n_sub} subgraphs: pass subgraph= (0 is the main "
                              "one; the others are bodies of control-flow ops)")
    chosen = 0 if subgraph is None else subgraph
    if not 0 <= chosen < n_sub:
        raise WeightFileError(f"{path}: subgraph={subgraph} but the model has {n_sub}")
    try:
        return _read(parse, model, chosen, n_sub)
    except WeightError:
        raise
    except _PARSE_ERRORS as e:  # the generated accessors read past the end, or garbage
        raise parse.bad(f"truncated or corrupt: {type(e).__name__}: {e}") from e


def _read(parse: _Parse, model, chosen: int, n_sub: int) -> TFLiteGraph:
    path, buf, bad = parse.path, parse.buf, parse.bad

    buffers = []
    for b in range(parse.tables(model.BuffersLength(), "buffers", 16)):
        buffer = model.Buffers(b)
        offset, size = buffer.Offset(), buffer.Size()
        if offset > 1:  # models over 2 GB keep data after the flatbuffer
            if offset + size > len(buf):
                raise bad(f"spans bytes {offset}..{offset + size} of {len(buf)}", f"buffer {b}")
            data = np.frombuffer(buf, np.uint8, count=size, offset=offset)
        else:
            data = buffer.DataAsNumpy()
            data = data if isinstance(data, np.ndarray) else np.zeros(0, np.uint8)
        buffers.append(data)

    opcodes = []
    for c in range(parse.tables(model.OperatorCodesLength(), "operator codes")):
        oc = model.OperatorCodes(c)
        # Schema 3a: codes past 127 live in builtin_code; old files only fill the deprecated one.
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = _BUILTINS.get(code, f"UNKNOWN_BUILTIN_{code}")
        if name == "CUSTOM":
            name = f"CUSTOM:{parse.str(oc.CustomCode(), f'operator code {c}')}"
        opcodes.append(name)

    sg = model.Subgraphs(chosen)
    tensors = []
    for i in range(parse.tables(sg.TensorsLength(), "tensors")):
        t = sg.Tensors(i)
        where = f"tensor {i}"
        name = parse.str(t.Name(), where)
        where = f"tensor {i} {_short(name)}"
        type_code = t.Type()
        if type_code not in _TENSOR_TYPES:
            raise bad(f"unknown type code {type_code}", where)
        dtype, np_dtype = _TENSOR_TYPES[type_code]
        shape = parse.ints(t.ShapeAsNumpy(), where)
        if len(shape) > MAX_RANK:
            raise bad(f"{len(shape)} dimensions, more than {MAX_RANK}", where)
        if any(d < -1 for d in shape):
            raise bad(f"negative dimension in shape {list(shape)}", where)
        if math.prod(d for d in shape if d > 0) > MAX_ELEMENTS:
            raise bad(f"shape {list(shape)} declares more than {MAX_ELEMENTS} elements", where)
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            quant = Quantization(parse.floats(q.ScaleAsNumpy(), where),
                                 parse.ints(q.ZeroPointAsNumpy(), where),
                                 int(q.QuantizedDimension()))
            n_scale, n_zero = len(quant.scale), len(quant.zero_point)
            if n_zero not in (0, n_scale):
                raise bad(f"{n_scale} quantization scales but {n_zero} zero points", where)
            if n_scale > 1 and not 0 <= quant.quantized_dimension < len(shape):
                raise bad(f"{n_scale} quantization scales along dimension "
                          f"{quant.quantized_dimension} of shape {list(shape)}", where)
        b = t.Buffer()
        if not 0 <= b < max(len(buffers), 1):
            raise bad(f"refers to buffer {b} of {len(buffers)}", where)
        tensor = Tensor(i, name, shape, dtype, b, quant, bool(t.IsVariable()))
        nbytes = buffers[b].size if b < len(buffers) else 0
        if nbytes:
            count = _elements(shape)
            if count is None:
                raise bad(f"constant with unknown dimension in shape {list(shape)}", where)
            want = (count + 1) // 2 if dtype == "int4" else (
                None if np_dtype is None else count * np_dtype.itemsize)
            if want is not None and nbytes != want:
                raise bad(f"{dtype}{list(shape)} needs {want} bytes, its buffer {b} has "
                          f"{nbytes}", where)
            if quant is not None and len(quant.scale) > 1 \
                    and shape[quant.quantized_dimension] != len(quant.scale):
                raise bad(f"{len(quant.scale)} quantization scales along dimension "
                          f"{quant.quantized_dimension} of shape {list(shape)}", where)
        tensors.append(tensor)

    def check(indices: tuple[int, ...], what: str, optional: bool = False) -> tuple[int, ...]:
        for k in indices:
            if not (0 <= k < len(tensors) or (optional and k == -1)):
                raise bad(f"refers to tensor {k} of {len(tensors)}", what)
        return indices

    ops, producers = [], {}
    for k in range(parse.tables(sg.OperatorsLength(), "operators")):
        o = sg.Operators(k)
        idx = o.OpcodeIndex()
        if not 0 <= idx < len(opcodes):
            raise bad(f"opcode index {idx} of {len(opcodes)}", f"op {k}")
        where = f"op {k} ({opcodes[idx]})"
        options = _options_dict(o.BuiltinOptions(), _OPTION_CLASSES.get(o.BuiltinOptionsType()),
                                parse, where)
        options.update(_options_dict(o.BuiltinOptions2(),
                                     _OPTION2_CLASSES.get(o.BuiltinOptions2Type()), parse, where))
        for key, value in options.items():  # control flow: WHILE, IF, CALL_ONCE, STABLEHLO_*
            if key.endswith("subgraph_index") and isinstance(value, int) \
                    and not 0 <= value < n_sub:
                raise bad(f"{key} {value} of {n_sub} subgraphs", where)
        custom = o.CustomOptionsAsNumpy()
        if isinstance(custom, np.ndarray):
            parse.take(custom.nbytes, where)
            custom = custom.tobytes()
        else:
            custom = b""
        large_at, large_n = o.LargeCustomOptionsOffset(), o.LargeCustomOptionsSize()
        if large_at > 1:
            if large_at + large_n > len(buf):
                raise bad(f"custom options span bytes {large_at}..{large_at + large_n} of "
                          f"{len(buf)}", where)
            parse.take(large_n, where)
            custom = buf[large_at:large_at + large_n]
        op = Op(k, opcodes[idx], check(parse.ints(o.InputsAsNumpy(), where), f"{where} input",
                                       True),
                check(parse.ints(o.OutputsAsNumpy(), where), f"{where} output"), options, custom)
        for out in op.outputs:
            producers.setdefault(out, k)
        ops.append(op)
    # Operators are stored in execution order: an op reading its own output or a
    # later op's is a cycle, which no walk back through the graph could end.
    for op in ops:
        for i in op.inputs:
            p = producers.get(i, -1) if i >= 0 else -1
            if p >= op.index:
                whose = ("its own output" if p == op.index
                         else f"the output of op {p} ({ops[p].opcode}), which runs later")
                raise bad(f"reads tensor {i} {_short(tensors[i].name)}, {whose}: a cycle "
                          "(operators must be in execution order)",
                          f"op {op.index} ({op.opcode})")

    metadata = {}
    for m in range(parse.tables(model.MetadataLength(), "metadata", 16)):
        entry = model.Metadata(m)
        name, b = parse.str(entry.Name(), f"metadata {m}"), entry.Buffer()
        if not 0 <= b < len(buffers):
            raise bad(f"refers to buffer {b} of {len(buffers)}", f"metadata {_short(name)}")
        parse.take(buffers[b].size, f"metadata {_short(name)}")
        metadata[name] = buffers[b].tobytes()

    return TFLiteGraph(
        path=path, metadata=metadata, tensors=tuple(tensors), ops=tuple(ops),
        inputs=check(parse.ints(sg.InputsAsNumpy(), "graph inputs"), "graph input"),
        outputs=check(parse.ints(sg.OutputsAsNumpy(), "graph outputs"), "graph output"),
        subgraph=chosen, num_subgraphs=n_sub, version=int(model.Version()),
        description=parse.str(model.Description(), "description"), _buffers=tuple(buffers),
        _producers=producers)


__all__ = ["MAX_ELEMENTS", "MAX_RANK", "Op", "Quantization", "TFLiteFormatError", "TFLiteGraph",
           "Tensor", "read_tflite"]
