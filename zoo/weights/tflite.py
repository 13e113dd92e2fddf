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
failure or inconsistency (indices out of range, buffer sizes that do not
match the shape) raises ``TFLiteFormatError`` naming the file.

Only one subgraph is read: the first when the file has one, else the caller
must pass ``subgraph=`` (models with control flow keep their bodies in
further subgraphs; those are not followed).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import struct
from typing import Any, Optional

import ml_dtypes
import numpy as np
import tflite as _schema

FILE_IDENTIFIER = b"TFL3"
# What the generated accessors raise on reading past the end or garbage offsets.
_PARSE_ERRORS = (struct.error, IndexError, ValueError, TypeError, AttributeError, OverflowError,
                 UnicodeError)


class TFLiteFormatError(ValueError):
    """Not a TFLite flatbuffer, or truncated/corrupted; the message names the file."""


@dataclasses.dataclass(frozen=True)
class Quantization:
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclasses.dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer_index: int
    quantization: Optional[Quantization] = None
    is_variable: bool = False


@dataclasses.dataclass(frozen=True)
class Op:
    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    custom_options: bytes = b""  # raw (usually flexbuffer) bytes of a custom op


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


def _plain(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (bool, int, float, str)):
        return value
    return None  # a nested table: not needed by any builtin op we map


def _options_dict(table, cls) -> dict[str, Any]:
    """The fields of a generated options table as a plain dict (schema order)."""
    if table is None or cls is None:
        return {}
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    out = {}
    for attr, fn in vars(cls).items():
        if not callable(fn) or attr.startswith("_") or _SKIP.search(attr):
            continue
        key = _snake(attr)
        if hasattr(cls, f"{attr}AsNumpy"):  # vector of scalars
            arr = getattr(obj, f"{attr}AsNumpy")()
            value = tuple(arr.tolist()) if isinstance(arr, np.ndarray) else ()
        elif len(inspect.signature(fn).parameters) == 2:  # vector of tables or strings
            n = getattr(obj, f"{attr}Length")()
            value = tuple(_plain(getattr(obj, attr)(j)) for j in range(n))
        else:
            value = _plain(getattr(obj, attr)())
        if key in _ENUM_FIELDS and isinstance(value, int):
            value = _ENUM_FIELDS[key].get(value, value)
        out[key] = value
    return out


def _ints(arr) -> tuple[int, ...]:
    return tuple(int(v) for v in arr) if isinstance(arr, np.ndarray) else ()


def _str(value: Optional[bytes]) -> str:
    return value.decode("utf-8", "replace") if value else ""


@dataclasses.dataclass(frozen=True, eq=False)
class TFLiteGraph:
    """One subgraph of a TFLite model, with the model's constant buffers."""

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

    def _tensor(self, index: int) -> Tensor:
        if not 0 <= index < len(self.tensors):
            raise IndexError(f"{self.path}: no tensor {index} (the graph has "
                             f"{len(self.tensors)})")
        return self.tensors[index]

    def is_constant(self, index: int) -> bool:
        """Whether tensor ``index`` holds data in the file."""
        t = self._tensor(index)
        return 0 < t.buffer_index < len(self._buffers) and self._buffers[t.buffer_index].size > 0

    def producer(self, index: int) -> Optional[Op]:
        """The op whose output tensor ``index`` is (None for inputs and constants)."""
        op = self._producers.get(self._tensor(index).index)
        return None if op is None else self.ops[op]

    def consumers(self, index: int) -> list[Op]:
        """The ops that read tensor ``index``, in execution order."""
        self._tensor(index)
        return [op for op in self.ops if index in op.inputs]

    def constant(self, index: int, *, dequantize: bool = False) -> np.ndarray:
        """The data of constant tensor ``index`` (see the module docstring for dtypes)."""
        t = self._tensor(index)
        if not self.is_constant(index):
            what = self.producer(index)
            why = f"the output of op {what.index} ({what.opcode})" if what else "not constant"
            raise ValueError(f"{self.path}: tensor {index} {t.name!r} has no data: {why}")
        raw = self._buffers[t.buffer_index]
        np_dtype = _TENSOR_TYPES_BY_NAME.get(t.dtype)
        if t.dtype == "int4":
            b = raw.view(np.int8)
            nibbles = np.stack([(b << 4) >> 4, b >> 4], axis=-1).reshape(-1)  # low nibble first
            data = nibbles[: int(np.prod(t.shape, dtype=np.int64))].reshape(t.shape)
        elif np_dtype is None:
            raise ValueError(f"{self.path}: tensor {index} {t.name!r} has type {t.dtype}, "
                             "which has no numpy form")
        else:
            data = raw.view(np_dtype).reshape(t.shape).copy()
        if data.dtype in (np.float16, ml_dtypes.bfloat16):
            return data.astype(np.float32)
        q = t.quantization
        if dequantize and q is not None and data.dtype.kind in "iu":
            scale = np.asarray(q.scale, np.float32)
            zero = np.asarray(q.zero_point or (0,), np.float32)
            if len(scale) > 1 or len(zero) > 1:
                bshape = [1] * data.ndim
                bshape[q.quantized_dimension] = -1
                scale, zero = scale.reshape(bshape), zero.reshape(bshape)
            return ((data.astype(np.float32) - zero) * scale).astype(np.float32)
        return data

    def dequantized_constant(self, index: int) -> np.ndarray:
        """Float32 data of tensor ``index``: itself if constant, else the constant
        behind the DEQUANTIZE op producing it (float16 -> float32 as stored by
        MediaPipe, or int8/uint8 dequantized with its scale)."""
        t = self._tensor(index)
        if self.is_constant(index):
            return self.constant(index, dequantize=True).astype(np.float32, copy=False)
        op = self.producer(index)
        if op is not None and op.opcode == "DEQUANTIZE" and self.is_constant(op.inputs[0]):
            return self.constant(op.inputs[0], dequantize=True).astype(np.float32, copy=False)
        what = f"the output of op {op.index} ({op.opcode})" if op else "a graph input"
        raise ValueError(f"{self.path}: tensor {index} {t.name!r} is neither a constant nor "
                         f"a DEQUANTIZE of one; it is {what}")


_TENSOR_TYPES_BY_NAME = {name: dt for name, dt in _TENSOR_TYPES.values()}


def read_tflite(path: os.PathLike | str, *, subgraph: Optional[int] = None) -> TFLiteGraph:
    """Parse the ``.tflite`` file at ``path`` (one subgraph, see the module docstring)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8 or buf[4:8] != FILE_IDENTIFIER:
        got = buf[4:8] if len(buf) >= 8 else f"only {len(buf)} bytes"
        raise TFLiteFormatError(f"{path} is not a TFLite flatbuffer: file identifier "
                                f"{got!r}, expected {FILE_IDENTIFIER!r}")
    try:
        model = _schema.Model.GetRootAs(buf, 0)
        n_sub = model.SubgraphsLength()
    except _PARSE_ERRORS as e:
        raise TFLiteFormatError(f"{path} is truncated or corrupt: "
                                f"{type(e).__name__}: {e}") from e
    if n_sub == 0 or 4 * n_sub > len(buf):
        raise TFLiteFormatError(f"{path} is truncated or corrupt: {n_sub} subgraphs")
    if subgraph is None and n_sub > 1:
        raise ValueError(f"{path} has {n_sub} subgraphs: pass subgraph= (0 is the main "
                         "one; the others are bodies of control-flow ops)")
    chosen = 0 if subgraph is None else subgraph
    if not 0 <= chosen < n_sub:
        raise ValueError(f"{path}: subgraph={subgraph} but the model has {n_sub}")
    try:
        return _read(path, buf, model, chosen, n_sub)
    except TFLiteFormatError:
        raise
    except _PARSE_ERRORS as e:  # the generated accessors read past the end, or garbage
        raise TFLiteFormatError(f"{path} is truncated or corrupt: "
                                f"{type(e).__name__}: {e}") from e


def _read(path: str, buf: bytes, model, chosen: int, n_sub: int) -> TFLiteGraph:
    def bad(msg: str) -> TFLiteFormatError:
        return TFLiteFormatError(f"{path} is truncated or corrupt: {msg}")

    buffers = []
    for b in range(model.BuffersLength()):
        buffer = model.Buffers(b)
        offset, size = buffer.Offset(), buffer.Size()
        if offset > 1:  # models over 2 GB keep data after the flatbuffer
            if offset + size > len(buf):
                raise bad(f"buffer {b} spans bytes {offset}..{offset + size} of {len(buf)}")
            data = np.frombuffer(buf, np.uint8, count=size, offset=offset)
        else:
            data = buffer.DataAsNumpy()
            data = data if isinstance(data, np.ndarray) else np.zeros(0, np.uint8)
        buffers.append(data)

    opcodes = []
    for c in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(c)
        # Schema 3a: codes past 127 live in builtin_code; old files only fill the deprecated one.
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = _BUILTINS.get(code, f"UNKNOWN_BUILTIN_{code}")
        opcodes.append(f"CUSTOM:{_str(oc.CustomCode())}" if name == "CUSTOM" else name)

    sg = model.Subgraphs(chosen)
    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        type_code = t.Type()
        if type_code not in _TENSOR_TYPES:
            raise bad(f"tensor {i} has unknown type code {type_code}")
        dtype, np_dtype = _TENSOR_TYPES[type_code]
        shape = _ints(t.ShapeAsNumpy())
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            quant = Quantization(tuple(float(s) for s in q.ScaleAsNumpy()),
                                 _ints(q.ZeroPointAsNumpy()), int(q.QuantizedDimension()))
        b = t.Buffer()
        if not 0 <= b < max(len(buffers), 1):
            raise bad(f"tensor {i} refers to buffer {b} of {len(buffers)}")
        tensor = Tensor(i, _str(t.Name()), shape, dtype, b, quant, bool(t.IsVariable()))
        nbytes = buffers[b].size if b < len(buffers) else 0
        if nbytes:
            count = int(np.prod(shape, dtype=np.int64))
            want = (count + 1) // 2 if dtype == "int4" else (
                None if np_dtype is None else count * np_dtype.itemsize)
            if want is not None and nbytes != want:
                raise bad(f"tensor {i} {tensor.name!r} {dtype}{list(shape)} needs {want} "
                          f"bytes, its buffer {b} has {nbytes}")
            if quant is not None and len(quant.scale) > 1 and not (
                    0 <= quant.quantized_dimension < len(shape)
                    and shape[quant.quantized_dimension] == len(quant.scale)):
                raise bad(f"tensor {i} {tensor.name!r}: {len(quant.scale)} scales along "
                          f"dimension {quant.quantized_dimension} of shape {list(shape)}")
        tensors.append(tensor)

    def check(indices: tuple[int, ...], what: str, optional: bool = False) -> tuple[int, ...]:
        for k in indices:
            if not (0 <= k < len(tensors) or (optional and k == -1)):
                raise bad(f"{what} refers to tensor {k} of {len(tensors)}")
        return indices

    ops, producers = [], {}
    for k in range(sg.OperatorsLength()):
        o = sg.Operators(k)
        idx = o.OpcodeIndex()
        if not 0 <= idx < len(opcodes):
            raise bad(f"op {k} has opcode index {idx} of {len(opcodes)}")
        options = _options_dict(o.BuiltinOptions(), _OPTION_CLASSES.get(o.BuiltinOptionsType()))
        options.update(_options_dict(o.BuiltinOptions2(),
                                     _OPTION2_CLASSES.get(o.BuiltinOptions2Type())))
        custom = o.CustomOptionsAsNumpy()
        custom = custom.tobytes() if isinstance(custom, np.ndarray) else b""
        large_at, large_n = o.LargeCustomOptionsOffset(), o.LargeCustomOptionsSize()
        if large_at > 1:
            if large_at + large_n > len(buf):
                raise bad(f"op {k} custom options span bytes {large_at}..{large_at + large_n}")
            custom = buf[large_at:large_at + large_n]
        op = Op(k, opcodes[idx], check(_ints(o.InputsAsNumpy()), f"op {k} input", True),
                check(_ints(o.OutputsAsNumpy()), f"op {k} output"), options, custom)
        for out in op.outputs:
            producers.setdefault(out, k)
        ops.append(op)

    metadata = {}
    for m in range(model.MetadataLength()):
        entry = model.Metadata(m)
        b = entry.Buffer()
        if not 0 <= b < len(buffers):
            raise bad(f"metadata {_str(entry.Name())!r} refers to buffer {b} of {len(buffers)}")
        metadata[_str(entry.Name())] = buffers[b].tobytes()

    return TFLiteGraph(
        path=path, metadata=metadata, tensors=tuple(tensors), ops=tuple(ops),
        inputs=check(_ints(sg.InputsAsNumpy()), "graph input"),
        outputs=check(_ints(sg.OutputsAsNumpy()), "graph output"),
        subgraph=chosen, num_subgraphs=n_sub, version=int(model.Version()),
        description=_str(model.Description()), _buffers=tuple(buffers), _producers=producers)


__all__ = ["Op", "Quantization", "TFLiteFormatError", "TFLiteGraph", "Tensor", "read_tflite"]
