"""Fuzz targets for TFLite: the flatbuffer reader and the face models'
TFLite-to-Flax mappings.

    tflite             zoo.weights.tflite.read_tflite, then every constant read
                       and dequantized (``read_and_touch``)
    tflite_blazeface   zoo.models.blazeface.variables_from_tflite(path, "blazeface_short_range")
    tflite_face_mesh   the same for "face_mesh"

Seeds are built here, without network: small graphs of every tensor type
and option kind for the reader, and for the mappings graphs of the exact
BlazeFace / face-mesh architecture in MediaPipe's layout (float16 constants
behind DEQUANTIZE ops, CONV_2D weights OHWI, depthwise 1HWC, PRELU alphas
11C, residual ADDs with MAX_POOL_2D/PAD skips, heads RESHAPEd and
CONCATENATEd), with random weights. LiteRT runs them (tests/test_fuzz_tflite.py
checks our mapped models against it). When MediaPipe's real files are
already in the weight cache (``$ZOO_CACHE``, filled by ``zoo.load_pretrained``)
they are seeds too; nothing is downloaded here.

Structured mutators parse a file with the schema's generated classes, find
the integers that carry meaning (tensor indices of op inputs and outputs,
shape dimensions, buffer and opcode indices, quantization dimension, vector
lengths, table offsets) and patch one of them with a value that breaks it
(-1, one past the end, an op's own output, a later op's output, a huge
dimension...).
"""

from __future__ import annotations

import dataclasses
import functools
import random
import struct
from typing import Any, Optional

import numpy as np

from zoo.weights.fuzz import Target

# The crafted cases and mutators are reached through TARGETS; map_blazeface and
# map_face_mesh (the mapping targets' readers) are made on first access.
__all__ = ["MAX_SUBGRAPHS_TOUCHED", "Net", "TARGETS", "blazeface_net", "cached_real_file",
           "face_mesh_net", "map_to_variables", "mapping_seeds", "read_and_touch",
           "reader_seeds", "synthetic", "write"]

# --------------------------------------------------------------- writing files


@dataclasses.dataclass
class Net:
    """A TFLite graph under construction (one main subgraph; ``extra_subgraphs``
    empty ones after it for control-flow ops to name).

    Tensors and ops are plain dicts, edited freely before ``write`` (the
    crafted cases break them on purpose); tensor indices are positions in
    ``tensors``, -1 an absent optional input.

    Attributes:
        tensors: one dict per tensor: name, shape, type (a ``TensorType``
            name or code), data (the constant's bytes or None) and optional
            scale, zero_point, qdim; see ``tensor``.
        ops: one dict per op: opcode, inputs, outputs, options, custom; see
            ``op``.
        inputs: the graph's input tensor indices.
        outputs: the graph's output tensor indices.
        metadata: metadata name -> bytes, each stored in its own buffer.
        extra_subgraphs: empty subgraphs after the main one, each run by a
            CALL_ONCE op appended to the main graph.
        description: the model's description string.
    """

    tensors: list[dict] = dataclasses.field(default_factory=list)
    ops: list[dict] = dataclasses.field(default_factory=list)
    inputs: list[int] = dataclasses.field(default_factory=list)
    outputs: list[int] = dataclasses.field(default_factory=list)
    metadata: dict[str, bytes] = dataclasses.field(default_factory=dict)
    extra_subgraphs: int = 0
    description: str = "zoo fuzz seed"

    def tensor(self, name: str, shape, type: str = "FLOAT32", data: Optional[bytes] = None,
               **quant) -> int:
        """A tensor; ``quant``: scale, zero_point, qdim.

        Args:
            name: the tensor's name.
            shape: its dimensions.
            type: a ``tflite.TensorType`` name ("FLOAT32", "INT8", ...) or
                its integer code (any number, for the crafted cases).
            data: the constant's raw bytes; None for an activation.
            **quant: quantization: ``scale`` (floats) and ``zero_point``
                (integers), both needed when given, and ``qdim`` (the
                quantized dimension, default 0).

        Returns:
            The new tensor's index.
        """
        self.tensors.append(dict(name=name, shape=list(shape), type=type, data=data, **quant))
        return len(self.tensors) - 1

    def const(self, name: str, array: np.ndarray, type: Optional[str] = None, **quant) -> int:
        """A constant tensor holding ``array``.

        Args:
            name: the tensor's name.
            array: the values; float16, float32, int32, int8 or uint8 unless
                ``type`` is given.
            type: the ``TensorType`` name; default from ``array.dtype``.
            **quant: quantization, as for ``tensor``.

        Returns:
            The new tensor's index.
        """
        type = type or {"float16": "FLOAT16", "float32": "FLOAT32", "int32": "INT32",
                        "int8": "INT8", "uint8": "UINT8"}[array.dtype.name]
        return self.tensor(name, array.shape, type, np.ascontiguousarray(array).tobytes(),
                           **quant)

    def op(self, opcode: str, inputs, outputs, options: Optional[tuple[str, dict]] = None,
           custom: bytes = b"") -> int:
        """An op of the main subgraph, appended after the others.

        Args:
            opcode: a ``tflite.BuiltinOperator`` name ("CONV_2D"), or
                "CUSTOM:<name>" for a custom op.
            inputs: its input tensor indices (-1 for an absent one).
            outputs: its output tensor indices.
            options: ``(options table, fields)``, e.g. ``("Conv2DOptions",
                {"Padding": 0, "StrideW": 1})``: the schema's table name and
                its field names; list values become int32 vectors.
            custom: the custom options' bytes.

        Returns:
            The new op's index.
        """
        self.ops.append(dict(opcode=opcode, inputs=list(inputs), outputs=list(outputs),
                             options=options, custom=custom))
        return len(self.ops) - 1

    def weight(self, name: str, array: np.ndarray, int8_axis: Optional[int] = None) -> int:
        """A float32 weight input as MediaPipe stores it: a float16 constant (or,
        with ``int8_axis``, int8 with per-channel scales along that axis) feeding
        a DEQUANTIZE op.

        Args:
            name: the float32 tensor's name (the stored one gets ``/fp16`` or
                ``/int8`` appended).
            array: the float32 values.
            int8_axis: quantize to int8 (symmetric, zero points 0) with one
                scale per index of this axis; None for float16.

        Returns:
            The index of the DEQUANTIZE op's float32 output.
        """
        if int8_axis is None:
            src = self.const(f"{name}/fp16", array.astype(np.float16))
        else:
            other = tuple(a for a in range(array.ndim) if a != int8_axis)
            scale = np.maximum(np.abs(array).max(axis=other), 1e-6) / 127.0
            bshape = [1] * array.ndim
            bshape[int8_axis] = -1
            q = np.clip(np.round(array / scale.reshape(bshape)), -127, 127).astype(np.int8)
            src = self.const(f"{name}/int8", q, scale=scale.tolist(),
                             zero_point=[0] * len(scale), qdim=int8_axis)
        out = self.tensor(name, array.shape)
        self.op("DEQUANTIZE", [src], [out])
        return out


def _vector(b, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def _options(b, schema, cls: str, fields: dict[str, Any]) -> int:
    """An options table built with the generated ``<cls>Start/Add<Field>/End``;
    list values become int32 vectors."""
    vectors = {k: b.CreateNumpyVector(np.asarray(v, np.int32)) for k, v in fields.items()
               if isinstance(v, (list, tuple))}
    getattr(schema, f"{cls}Start")(b)
    for k, v in fields.items():
        getattr(schema, f"{cls}Add{k}")(b, vectors.get(k, v))
    return getattr(schema, f"{cls}End")(b)


def write(net: Net) -> bytes:
    """The ``.tflite`` bytes of ``net`` (every scalar field written, defaults
    too, so that the structured mutators find it).

    Needs the ``flatbuffers`` and ``tflite`` (generated schema) packages.

    Args:
        net: the graph.

    Returns:
        The flatbuffer, file identifier "TFL3", schema version 3.
    """
    import flatbuffers
    import tflite as S

    b = flatbuffers.Builder(1024)
    b.ForceDefaults(True)
    ints = lambda xs: b.CreateNumpyVector(np.asarray(xs, np.int32))  # noqa: E731
    datas = [b""] + [t["data"] for t in net.tensors if t["data"]] + list(net.metadata.values())
    buffer_offsets = []
    for data in datas:
        vec = None
        if data:
            b.StartVector(1, len(data), 16)
            b.head -= len(data)
            b.Bytes[b.head:b.head + len(data)] = data
            b.vectorNumElems = len(data)
            vec = b.EndVector()
        S.BufferStart(b)
        if vec is not None:
            S.BufferAddData(b, vec)
        buffer_offsets.append(S.BufferEnd(b))
    opcodes = sorted({op["opcode"] for op in net.ops} | ({"CALL_ONCE"} if net.extra_subgraphs
                                                           else set()))
    code_offsets = []
    for name in opcodes:
        custom = b.CreateString(name.split(":", 1)[1]) if name.startswith("CUSTOM:") else None
        code = S.BuiltinOperator.CUSTOM if custom else getattr(S.BuiltinOperator, name)
        S.OperatorCodeStart(b)
        S.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        S.OperatorCodeAddBuiltinCode(b, code)
        S.OperatorCodeAddVersion(b, 1)
        if custom is not None:
            S.OperatorCodeAddCustomCode(b, custom)
        code_offsets.append(S.OperatorCodeEnd(b))

    def subgraph(tensors, ops, inputs, outputs, name) -> int:
        tensor_offsets, buffer = [], 1
        for t in tensors:
            tname, shape, quant = b.CreateString(t["name"]), ints(t["shape"]), None
            if "scale" in t:
                scale = b.CreateNumpyVector(np.asarray(t["scale"], np.float32))
                zero = b.CreateNumpyVector(np.asarray(t["zero_point"], np.int64))
                S.QuantizationParametersStart(b)
                S.QuantizationParametersAddScale(b, scale)
                S.QuantizationParametersAddZeroPoint(b, zero)
                S.QuantizationParametersAddQuantizedDimension(b, t.get("qdim", 0))
                quant = S.QuantizationParametersEnd(b)
            S.TensorStart(b)
            S.TensorAddShape(b, shape)
            ttype = t["type"]
            S.TensorAddType(b, ttype if isinstance(ttype, int) else getattr(S.TensorType, ttype))
            S.TensorAddBuffer(b, buffer if t["data"] else 0)
            buffer += bool(t["data"])
            S.TensorAddName(b, tname)
            if quant is not None:
                S.TensorAddQuantization(b, quant)
            tensor_offsets.append(S.TensorEnd(b))
        op_offsets = []
        for op in ops:
            iv, ov = ints(op["inputs"]), ints(op["outputs"])
            opts = custom = None
            if op["options"]:
                opts = _options(b, S, *op["options"])
            if op["custom"]:
                custom = b.CreateByteVector(op["custom"])
            S.OperatorStart(b)
            S.OperatorAddOpcodeIndex(b, opcodes.index(op["opcode"]))
            S.OperatorAddInputs(b, iv)
            S.OperatorAddOutputs(b, ov)
            if opts is not None:
                S.OperatorAddBuiltinOptionsType(b, getattr(S.BuiltinOptions, op["options"][0]))
                S.OperatorAddBuiltinOptions(b, opts)
            if custom is not None:
                S.OperatorAddCustomOptions(b, custom)
            op_offsets.append(S.OperatorEnd(b))
        tv, opv = _vector(b, tensor_offsets), _vector(b, op_offsets)
        iv, ov, sname = ints(inputs), ints(outputs), b.CreateString(name)
        S.SubGraphStart(b)
        S.SubGraphAddTensors(b, tv)
        S.SubGraphAddInputs(b, iv)
        S.SubGraphAddOutputs(b, ov)
        S.SubGraphAddOperators(b, opv)
        S.SubGraphAddName(b, sname)
        return S.SubGraphEnd(b)

    ops = list(net.ops)
    for k in range(net.extra_subgraphs):  # run each once, as CALL_ONCE does for initialisers
        ops.append(dict(opcode="CALL_ONCE", inputs=[], outputs=[], custom=b"",
                        options=("CallOnceOptions", {"InitSubgraphIndex": 1 + k})))
    subgraphs = [subgraph(net.tensors, ops, net.inputs, net.outputs, "main")]
    for k in range(net.extra_subgraphs):
        subgraphs.append(subgraph([dict(name=f"init{k}", shape=[1], type="FLOAT32", data=None)],
                                  [], [], [0], f"init{k}"))
    meta_offsets = []
    for j, name in enumerate(net.metadata):
        mname = b.CreateString(name)
        S.MetadataStart(b)
        S.MetadataAddName(b, mname)
        S.MetadataAddBuffer(b, len(datas) - len(net.metadata) + j)
        meta_offsets.append(S.MetadataEnd(b))
    bv, cv, sv = _vector(b, buffer_offsets), _vector(b, code_offsets), _vector(b, subgraphs)
    mv = _vector(b, meta_offsets) if meta_offsets else None
    desc = b.CreateString(net.description)
    S.ModelStart(b)
    S.ModelAddVersion(b, 3)
    S.ModelAddOperatorCodes(b, cv)
    S.ModelAddSubgraphs(b, sv)
    S.ModelAddDescription(b, desc)
    S.ModelAddBuffers(b, bv)
    if mv is not None:
        S.ModelAddMetadata(b, mv)
    b.Finish(S.ModelEnd(b), b"TFL3")
    return bytes(b.Output())


# ------------------------------------------------ the reader's seeds and target


def _mixed_net() -> Net:
    """Every constant kind the reader converts (float16/32, bfloat16, int8
    per-channel, uint8 per-tensor, int4, int32, bool, string), DEQUANTIZE ops,
    options with enums and vectors, a custom op, metadata."""
    rng = np.random.default_rng(0)
    n = Net()
    x = n.tensor("input", (1, 4, 4, 2))
    n.inputs = [x]
    w = n.weight("conv/w", rng.standard_normal((3, 1, 1, 2)).astype(np.float32), int8_axis=0)
    bias = n.weight("conv/b", rng.standard_normal(3).astype(np.float32))
    conv = n.tensor("conv", (1, 4, 4, 3))
    n.op("CONV_2D", [x, w, bias], [conv], ("Conv2DOptions", dict(
        Padding=0, StrideW=1, StrideH=1, FusedActivationFunction=1, DilationWFactor=1,
        DilationHFactor=1)))
    dw_w = n.weight("dw/w", rng.standard_normal((1, 3, 3, 3)).astype(np.float32), int8_axis=3)
    dw = n.tensor("dw", (1, 4, 4, 3))
    n.op("DEPTHWISE_CONV_2D", [conv, dw_w, -1], [dw], ("DepthwiseConv2DOptions", dict(
        Padding=0, StrideW=1, StrideH=1, DepthMultiplier=1, FusedActivationFunction=0,
        DilationWFactor=1, DilationHFactor=1)))
    u8 = n.const("uint8", rng.integers(0, 256, 5).astype(np.uint8), scale=[0.1],
                 zero_point=[128])
    u8_out = n.tensor("uint8/dq", (5,))
    n.op("DEQUANTIZE", [u8], [u8_out])
    q4 = rng.integers(-8, 8, 6).astype(np.uint8) & 0xF
    n.tensor("int4", (2, 3), "INT4", bytes((q4[0::2] | (q4[1::2] << 4)).tolist()),
             scale=[0.5, 1.0], zero_point=[0, 0], qdim=0)
    n.tensor("bfloat16", (3,), "BFLOAT16", np.array([0x3F80, 0xC000, 0x0000], "<u2").tobytes())
    n.tensor("bool", (4,), "BOOL", bytes([0, 1, 1, 0]))
    n.tensor("string", (1,), "STRING", struct.pack("<iii", 1, 12, 13) + b"a")
    shape = n.const("shape", np.array([1, 48], np.int32))
    flat = n.tensor("flat", (1, 48))
    n.op("RESHAPE", [dw, shape], [flat], ("ReshapeOptions", dict(NewShape=[1, 48])))
    out = n.tensor("custom_out", (1, 48))
    n.op("CUSTOM:ZooFuzz", [flat], [out], custom=b"\x01\x02\x03 flexbuffer-ish")
    n.outputs = [out, u8_out]
    n.metadata = {"min_runtime_version": b"1.5.0\0\0\0\0\0\0\0\0\0\0\0"}
    return n


def _control_flow_net() -> Net:
    """Two subgraphs: the main one runs the second once (CALL_ONCE)."""
    n = Net(extra_subgraphs=1)
    x = n.tensor("x", (2, 3))
    y = n.tensor("y", (2, 3))
    n.op("RELU", [x], [y])
    n.inputs, n.outputs = [x], [y]
    return n


@functools.lru_cache(maxsize=None)
def reader_seeds() -> tuple[bytes, ...]:
    """The ``tflite`` target's seeds (built once).

    Returns:
        Two files, a graph with every constant kind the reader converts
        (float16/32, bfloat16, per-channel int8, uint8, int4, int32, bool,
        string), options, a custom op and metadata; and a two-subgraph graph
        run with CALL_ONCE.
    """
    return write(_mixed_net()), write(_control_flow_net())


# dtypes whose constants ``TFLiteGraph.constant`` returns as numbers.
_NUMERIC = {"float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "uint16",
            "int32", "uint32", "int64", "uint64", "bool", "complex64", "complex128", "int4"}
MAX_SUBGRAPHS_TOUCHED = 8


def read_and_touch(path) -> int:
    """``read_tflite`` every subgraph (up to 8) and read every constant,
    dequantized, and the constant behind every DEQUANTIZE op: the whole of
    what a converter can ask of the reader. Returns the elements read.

    Args:
        path: the ``.tflite`` file.

    Returns:
        The number of constant elements read, DEQUANTIZE sources counted
        again.

    Raises:
        zoo.weights.errors.WeightFileError: from ``read_tflite`` and the
            graph's accessors, for a file that is not a well-formed TFLite
            graph (``TFLiteFormatError``, ``WeightBudgetError``).
    """
    from zoo.weights.tflite import read_tflite

    first = read_tflite(path, subgraph=0)
    graphs = [first] + [read_tflite(path, subgraph=k)
                        for k in range(1, min(first.num_subgraphs, MAX_SUBGRAPHS_TOUCHED))]
    total = 0
    for g in graphs:
        for t in g.tensors:
            g.producer(t.index)
            if g.is_constant(t.index) and t.dtype in _NUMERIC:
                total += g.constant(t.index, dequantize=True).size
        for op in g.ops:
            # (A DEQUANTIZE of an activation, as in int8 models, has no constant behind it.)
            activation = op.inputs and 0 <= op.inputs[0] and not g.is_constant(op.inputs[0])
            if op.opcode == "DEQUANTIZE" and op.outputs and not activation:
                total += g.dequantized_constant(op.outputs[0]).size
    return total


# ------------------------------------------------------ the face models' graphs


def _he(rng, shape, fan_in) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


class _Blaze:
    """Emits MediaPipe-layout Blaze layers into a ``Net``; tracks shapes (NHWC)."""

    def __init__(self, net: Net, seed: int, int8: bool = False):
        self.n, self.rng, self.int8, self.k = net, np.random.default_rng(seed), int8, 0

    def name(self, what: str) -> str:
        self.k += 1
        return f"{what}_{self.k}"

    def conv(self, x, shape, out_ch, kernel, stride, padding="SAME", act=0):
        h, w, c = shape
        name = self.name("conv2d")
        wt = self.n.weight(f"{name}/kernel", _he(self.rng, (out_ch, kernel, kernel, c),
                                                 kernel * kernel * c),
                           int8_axis=0 if self.int8 else None)
        b = self.n.weight(f"{name}/bias", 0.1 * _he(self.rng, (out_ch,), 1))
        if padding == "SAME":
            oh, ow = -(-h // stride), -(-w // stride)
        else:
            oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
        y = self.n.tensor(name, (1, oh, ow, out_ch))
        self.n.op("CONV_2D", [x, wt, b], [y], ("Conv2DOptions", dict(
            Padding=0 if padding == "SAME" else 1, StrideW=stride, StrideH=stride,
            FusedActivationFunction=act, DilationWFactor=1, DilationHFactor=1)))
        return y, (oh, ow, out_ch)

    def prelu(self, x, shape):
        name = self.name("p_re_lu")
        alpha = self.n.weight(f"{name}/alpha",
                              self.rng.uniform(0.0, 0.5, (1, 1, shape[2])).astype(np.float32))
        y = self.n.tensor(name, (1, *shape))
        self.n.op("PRELU", [x, alpha], [y])
        return y

    def relu(self, x, shape):
        y = self.n.tensor(self.name("re_lu"), (1, *shape))
        self.n.op("RELU", [x], [y])
        return y

    def block(self, x, shape, out_ch, stride, act: str, pool_padding: str):
        """depthwise 3x3 + bias -> 1x1 conv + bias, + skip (max-pool, zero channels), act."""
        h, w, c = shape
        name = self.name("depthwise_conv2d")
        wt = self.n.weight(f"{name}/depthwise_kernel", _he(self.rng, (1, 3, 3, c), 9),
                           int8_axis=3 if self.int8 else None)
        b = self.n.weight(f"{name}/bias", 0.1 * _he(self.rng, (c,), 1))
        oh, ow = -(-h // stride), -(-w // stride)
        d = self.n.tensor(name, (1, oh, ow, c))
        self.n.op("DEPTHWISE_CONV_2D", [x, wt, b], [d], ("DepthwiseConv2DOptions", dict(
            Padding=0, StrideW=stride, StrideH=stride, DepthMultiplier=1,
            FusedActivationFunction=0, DilationWFactor=1, DilationHFactor=1)))
        p, _ = self.conv(d, (oh, ow, c), out_ch, 1, 1)
        skip = x
        if stride == 2:
            pooled = self.n.tensor(self.name("max_pooling2d"), (1, oh, ow, c))
            self.n.op("MAX_POOL_2D", [skip], [pooled], ("Pool2DOptions", dict(
                Padding=0 if pool_padding == "SAME" else 1, StrideW=2, StrideH=2,
                FilterWidth=2, FilterHeight=2, FusedActivationFunction=0)))
            skip = pooled
        if out_ch > c:
            pads = self.n.const(self.name("channel_padding/paddings"),
                                np.array([[0, 0], [0, 0], [0, 0], [0, out_ch - c]], np.int32))
            padded = self.n.tensor(self.name("channel_padding"), (1, oh, ow, out_ch))
            self.n.op("PAD", [skip, pads], [padded])
            skip = padded
        out_shape = (oh, ow, out_ch)
        added = self.n.tensor(self.name("add"), (1, *out_shape))
        fused = 1 if act == "relu" else 0  # BlazeFace's ADD carries its RELU
        self.n.op("ADD", [skip, p], [added], ("AddOptions", dict(FusedActivationFunction=fused)))
        if act == "prelu":
            added = self.prelu(added, out_shape)
        return added, out_shape

    def reshape(self, x, shape_out):
        s = self.n.const(self.name("reshape/shape"), np.array(shape_out, np.int32))
        y = self.n.tensor(self.name("reshape"), shape_out)
        self.n.op("RESHAPE", [x, s], [y], ("ReshapeOptions", dict(NewShape=list(shape_out))))
        return y

    def concat(self, xs, shape_out, axis=1):
        y = self.n.tensor(self.name("concatenate"), shape_out)
        self.n.op("CONCATENATION", xs, [y], ("ConcatenationOptions", dict(
            Axis=axis, FusedActivationFunction=0)))
        return y


def blazeface_net(seed: int = 0, int8: bool = False) -> Net:
    """BlazeFace short range in the layout of MediaPipe's
    ``face_detection_short_range.tflite`` (``zoo.models.blazeface``'s table).

    Args:
        seed: the seed of the random (He-scaled) weights.
        int8: store the conv and depthwise weights as per-channel int8
            instead of float16.

    Returns:
        The graph, outputs "regressors" and "classificators".
    """
    from zoo.models import blazeface as bf

    n = Net(description="synthetic BlazeFace short range (zoo fuzz seed)")
    g = _Blaze(n, seed, int8)
    x = n.tensor("input", (1, bf.INPUT_SIZE, bf.INPUT_SIZE, 3))
    n.inputs = [x]
    y, shape = g.conv(x, (bf.INPUT_SIZE, bf.INPUT_SIZE, 3), bf.STEM[0], bf.STEM[1], 2)
    y = g.relu(y, shape)
    taps = {}
    for i, (out, stride) in enumerate(bf.BLOCKS):
        y, shape = g.block(y, shape, out, stride, "relu", "SAME")
        taps[i] = (y, shape)
    regs, scores = [], []
    for _, tap, anchors in bf.HEADS:
        f, fshape = taps[tap]
        cells = fshape[0] * fshape[1] * anchors
        r, _ = g.conv(f, fshape, anchors * bf.NUM_COORDS, 1, 1)
        c, _ = g.conv(f, fshape, anchors, 1, 1)
        regs.append((g.reshape(r, (1, cells, bf.NUM_COORDS)), cells))
        scores.append((g.reshape(c, (1, cells, 1)), cells))
    total = sum(c for _, c in regs)
    n.outputs = [g.concat([r for r, _ in regs], (1, total, bf.NUM_COORDS)),
                 g.concat([s for s, _ in scores], (1, total, 1))]
    n.tensors[n.outputs[0]]["name"] = "regressors"
    n.tensors[n.outputs[1]]["name"] = "classificators"
    return n


def face_mesh_net(seed: int = 0, int8: bool = False) -> Net:
    """The face mesh in the layout of MediaPipe's ``face_landmark.tflite``
    (``zoo.models.face_mesh``'s table).

    Args:
        seed: the seed of the random (He-scaled) weights.
        int8: store the conv and depthwise weights as per-channel int8
            instead of float16.

    Returns:
        The graph, outputs "conv2d_21" (landmarks) and "conv2d_31" (face flag).
    """
    from zoo.models import face_mesh as fm

    n = Net(description="synthetic face mesh (zoo fuzz seed)")
    g = _Blaze(n, seed, int8)
    x = n.tensor("input_1", (1, fm.INPUT_SIZE, fm.INPUT_SIZE, 3))
    n.inputs = [x]
    y, shape = g.conv(x, (fm.INPUT_SIZE, fm.INPUT_SIZE, 3), fm.STEM[0], fm.STEM[1], 2)
    y = g.prelu(y, shape)
    for c, stride in fm._blocks(fm.TRUNK):
        y, shape = g.block(y, shape, c, stride, "prelu", "VALID")
    outs = []
    for _, stages, reduced, n_out in fm.HEADS:
        h, hshape = y, shape
        for c, stride in fm._blocks(stages):
            h, hshape = g.block(h, hshape, c, stride, "prelu", "VALID")
        h, hshape = g.conv(h, hshape, reduced, 1, 1)
        h = g.prelu(h, hshape)
        h, hshape = g.block(h, hshape, reduced, 1, "prelu", "VALID")
        h, hshape = g.conv(h, hshape, n_out, 3, 3, padding="VALID")
        outs.append(h)
    n.outputs = outs
    n.tensors[outs[0]]["name"] = "conv2d_21"
    n.tensors[outs[1]]["name"] = "conv2d_31"
    return n


@functools.lru_cache(maxsize=None)
def synthetic(model: str, int8: bool = False, seed: int = 0) -> bytes:
    """The synthetic ``.tflite`` of ``model`` ("blazeface_short_range" or "face_mesh").

    Cached: the same arguments return the same bytes object.

    Args:
        model: "blazeface_short_range" or "face_mesh" (another name raises
            KeyError).
        int8: per-channel int8 conv and depthwise weights instead of float16.
        seed: the seed of the random weights.

    Returns:
        The file's bytes (``write`` of ``blazeface_net`` or ``face_mesh_net``).
    """
    build = {"blazeface_short_range": blazeface_net, "face_mesh": face_mesh_net}[model]
    return write(build(seed, int8))


def cached_real_file(model: str) -> Optional[bytes]:
    """MediaPipe's file for ``model`` if the weight cache already holds it
    (verified by its hash); never downloads.

    Args:
        model: a registered model name whose first weight source is the
            ``.tflite`` ("blazeface_short_range", "face_mesh").

    Returns:
        The file's bytes, or None when the cache does not hold it (or holds
        a file with another hash).
    """
    from zoo.registry import get_spec
    from zoo.weights.fetch import cache_path, file_digest

    source = get_spec(model).weights[0]
    path = cache_path(source)
    if path.is_file() and file_digest(path) == source.sha256:
        return path.read_bytes()
    return None


def mapping_seeds(model: str) -> list[bytes]:
    """The seeds of a mapping target.

    Args:
        model: "blazeface_short_range" or "face_mesh".

    Returns:
        The synthetic float16 file, for BlazeFace also the int8 one, and
        MediaPipe's real file when ``cached_real_file`` finds it.
    """
    seeds = [synthetic(model)]
    if model == "blazeface_short_range":
        seeds.append(synthetic(model, int8=True))
    real = cached_real_file(model)
    return seeds + ([real] if real is not None else [])


def map_to_variables(path, model: str) -> dict:
    """``variables_from_tflite(path, model)``: the mapping targets' reader.

    Args:
        path: the ``.tflite`` file.
        model: the registered model whose layout the file must have.

    Returns:
        The model's Flax variables (nested dicts of jax arrays, shaped as
        its variables template), from
        ``zoo.models.blazeface.variables_from_tflite``.

    Raises:
        zoo.weights.errors.WeightError: ``TFLiteFormatError`` for a file that
            is not a readable TFLite graph, ``WeightMismatchError`` for one
            that is not this model.
    """
    from zoo.models.blazeface import variables_from_tflite

    return variables_from_tflite(path, model)


_MAPPING_READERS = {"map_blazeface": "blazeface_short_range", "map_face_mesh": "face_mesh"}


def __getattr__(name: str):
    """``map_blazeface`` / ``map_face_mesh``: ``map_to_variables`` for one model.

    Made on first access because the worker resolves a target's reader
    before it starts the memory count: the access imports the model, traces
    its variable shapes and warms jax once (seconds, ~60 MB), so that what is
    measured per input is the reading and mapping. (The parent's clock does
    run: the first input of a mapping target takes seconds.)"""
    if name not in _MAPPING_READERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import jax
    import jax.numpy as jnp

    from zoo.models.blazeface import _model_and_template

    model = _MAPPING_READERS[name]
    _, template = _model_and_template(model)
    # jax's CPU client and allocator take ~60 MB the first time a model's worth
    # of arrays is put on the device: once, here, with zeros of the same shapes.
    jax.block_until_ready(jax.tree_util.tree_map(
        lambda s: jnp.asarray(np.zeros(s.shape, s.dtype)), template))
    reader = functools.partial(map_to_variables, model=model)
    globals()[name] = reader
    return reader


# ---------------------------------------------------------- structured mutators

# Field slots (vtable offsets) of the schema's tables, from the generated classes.
_TENSOR_TYPE, _TENSOR_BUFFER = 6, 8
_OPERATOR_OPCODE, _OPERATOR_OPTIONS_TYPE = 4, 10


@dataclasses.dataclass
class _Field:
    """An integer in the file: where, its width and signedness, what it is, and
    the values that break it."""

    pos: int
    fmt: str
    kind: str
    values: tuple[int, ...]


def _slot(table, slot: int) -> Optional[int]:
    o = table._tab.Offset(slot)
    return table._tab.Pos + o if o else None


def _vector_at(table, slot: int) -> Optional[tuple[int, int]]:
    """(position of the length word, length) of a vector field."""
    o = table._tab.Offset(slot)
    if not o:
        return None
    start = table._tab.Vector(o)
    return start - 4, table._tab.VectorLen(o)


def _table_vector(data: bytes, at: tuple[int, int], kind: str) -> list[_Field]:
    """The length word and the entries (uoffsets) of a vector of tables: entries
    may be swapped with or aliased to another entry (re-pointed)."""
    pos, n = at
    fields = [_Field(pos, "<I", f"{kind} count", (0, max(n - 1, 0), n + 1, 2 * n + 1, 2**31,
                                                    2**32 - 1))]
    entries = [pos + 4 + 4 * j for j in range(n)]
    targets = [p + struct.unpack_from("<I", data, p)[0] for p in entries]
    for j, p in enumerate(entries):
        # Re-point entry j at every other entry's table (relative uoffsets).
        rel = tuple((t - p) & 0xFFFFFFFF for t in targets[:64] if t != targets[j])
        fields.append(_Field(p, "<I", f"{kind} entry", rel + (0, 2**31, len(data) - p + 4)))
    return fields


@functools.lru_cache(maxsize=16)
def _fields(data: bytes) -> tuple[_Field, ...]:
    """Every integer of a TFLite file worth patching, with its breaking values."""
    import tflite as S

    model = S.Model.GetRootAs(data, 0)
    fields: list[_Field] = []
    for slot, kind in ((6, "operator codes"), (8, "subgraphs"), (12, "buffers")):
        at = _vector_at(model, slot)
        if at:
            fields += _table_vector(data, at, kind)
    sg = model.Subgraphs(0)
    n_tensors, n_ops = sg.TensorsLength(), sg.OperatorsLength()
    outputs_of = [tuple(sg.Operators(k).OutputsAsNumpy().tolist()) for k in range(n_ops)]
    index_values = (-1, -2, n_tensors, n_tensors + 1, 2**31 - 1, -2**31)
    for slot, kind in ((4, "tensors"), (10, "operators")):
        at = _vector_at(sg, slot)
        if at:
            fields += _table_vector(data, at, kind)
    for slot, kind in ((6, "graph input"), (8, "graph output")):
        at = _vector_at(sg, slot)
        if at:
            pos, n = at
            fields.append(_Field(pos, "<I", kind + " count", (0, n + 1, 2**31)))
            fields += [_Field(pos + 4 + 4 * j, "<i", kind, index_values) for j in range(n)]
    for i in range(n_tensors):
        t = sg.Tensors(i)
        at = _vector_at(t, 4)
        if at:
            pos, n = at
            fields.append(_Field(pos, "<I", "shape rank", (0, n + 1, 33, 2**31)))
            fields += [_Field(pos + 4 + 4 * j, "<i", "shape dimension",
                              (0, -1, -2, 1, 3, 2**16, 2**31 - 1, -2**31)) for j in range(n)]
        p = _slot(t, _TENSOR_TYPE)
        if p is not None:
            fields.append(_Field(p, "<b", "tensor type", (0, 1, 2, 3, 5, 9, 17, 18, 99, -1)))
        p = _slot(t, _TENSOR_BUFFER)
        if p is not None:
            n_buf = model.BuffersLength()
            fields.append(_Field(p, "<I", "tensor buffer", (0, 1, n_buf - 1, n_buf, 2**31,
                                                            2**32 - 1)))
        q = t.Quantization()
        if q is not None:
            for slot, kind in ((8, "scale count"), (10, "zero point count")):
                at = _vector_at(q, slot)
                if at:
                    pos, n = at
                    fields.append(_Field(pos, "<I", kind, (0, 1, n - 1, n + 1, 2 * n, 2**31)))
            p = _slot(q, 16)
            if p is not None:
                fields.append(_Field(p, "<i", "quantized dimension", (-1, 1, 2, 3, 4, 2**31 - 1)))
    for k in range(n_ops):
        o = sg.Operators(k)
        later = tuple(i for outs in outputs_of[k:] for i in outs)[:8]  # own and later outputs
        p = _slot(o, _OPERATOR_OPCODE)
        if p is not None:
            n_codes = model.OperatorCodesLength()
            fields.append(_Field(p, "<I", "opcode index", tuple(range(n_codes)) + (
                n_codes, 2**31)))
        p = _slot(o, _OPERATOR_OPTIONS_TYPE)
        if p is not None:
            fields.append(_Field(p, "<B", "options type", (0, 1, 2, 3, 5, 22, 200, 255)))
        for slot, kind in ((6, "op input"), (8, "op output")):
            at = _vector_at(o, slot)
            if at:
                pos, n = at
                fields.append(_Field(pos, "<I", kind + " count", (0, max(n - 1, 0), n + 1,
                                                                 2**30)))
                fields += [_Field(pos + 4 + 4 * j, "<i", kind, index_values + later)
                           for j in range(n)]
    return tuple(fields)


def patch_field(data: bytes, rng: random.Random, kinds: Optional[tuple[str, ...]] = None) -> bytes:
    """Set one meaningful integer (of ``kinds``, default any) to a breaking value."""
    fields = [f for f in _fields(data) if kinds is None or f.kind in kinds]
    f = rng.choice(fields)
    size = struct.calcsize(f.fmt)
    lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if f.fmt[-1].islower() else (
        0, (1 << (8 * size)) - 1)
    value = min(max(rng.choice(f.values), lo), hi)
    out = bytearray(data)
    struct.pack_into(f.fmt, out, f.pos, value)
    return bytes(out)


def patch_index(data: bytes, rng: random.Random) -> bytes:
    """An op's input or output, or a graph input/output, set to -1, past the
    end, its own output or a later op's output (a cycle)."""
    return patch_field(data, rng, ("op input", "op output", "graph input", "graph output"))


def patch_shape(data: bytes, rng: random.Random) -> bytes:
    """A shape dimension or rank, or a quantization array length or dimension."""
    return patch_field(data, rng, ("shape dimension", "shape rank", "scale count",
                                   "zero point count", "quantized dimension"))


def patch_table(data: bytes, rng: random.Random) -> bytes:
    """A vector of tables (tensors, ops, buffers, subgraphs, opcodes) lengthened,
    shortened, or one entry re-pointed at another's table."""
    return patch_field(data, rng, ("operator codes count", "operator codes entry",
                                   "subgraphs count", "subgraphs entry", "buffers count",
                                   "buffers entry", "tensors count", "tensors entry",
                                   "operators count", "operators entry"))


def patch_scalar(data: bytes, rng: random.Random) -> bytes:
    """A tensor's type or buffer, an op's opcode or options type."""
    return patch_field(data, rng, ("tensor type", "tensor buffer", "opcode index",
                                   "options type", "op input count", "op output count"))


MUTATORS = (patch_field, patch_index, patch_shape, patch_table, patch_scalar)


# ------------------------------------------------------------------ crafted cases


def _edit(net_fn, edit) -> bytes:
    net = net_fn()
    edit(net)
    return write(net)


def _find_op(net: Net, opcode: str, nth: int = 0) -> dict:
    return [op for op in net.ops if op["opcode"] == opcode][nth]


def _ops_reading(net: Net, tensor: int) -> list[dict]:
    return [op for op in net.ops if tensor in op["inputs"]]


def _patch_u32(data: bytes, pos: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<I", out, pos, value & 0xFFFFFFFF)
    return bytes(out)


def _file_crafted(seed: bytes) -> list[tuple[str, bytes]]:
    """Attacks on the container, valid for any TFLite file."""
    import tflite as S

    model = S.Model.GetRootAs(seed, 0)
    subgraphs_at = _vector_at(model, 8)
    sg = model.Subgraphs(0)
    tensors_at, ops_at = _vector_at(sg, 4), _vector_at(sg, 10)
    out = [
        ("empty", b""),
        ("identifier_only", b"\x00\x00\x00\x00TFL3"),
        ("wrong_identifier", seed[:4] + b"TFL2" + seed[8:]),
        ("truncated_header", seed[:6]),
        ("truncated_half", seed[:len(seed) // 2]),
        ("truncated_tail", seed[:-64]),
        ("root_offset_past_end", _patch_u32(seed, 0, len(seed) + 16)),
        # The subgraphs vector claims more subgraphs than it holds (index out of range).
        ("subgraph_count_past_end", _patch_u32(seed, subgraphs_at[0], 1000)),
        ("subgraph_count_huge", _patch_u32(seed, subgraphs_at[0], 2**31)),
        ("tensor_count_huge", _patch_u32(seed, tensors_at[0], 2**30)),
        ("operator_count_past_end", _patch_u32(seed, ops_at[0], ops_at[1] + 1000)),
    ]
    return out


def _quantized_net_with(**quant) -> Net:
    n = Net()
    q = n.const("q", np.arange(12, dtype=np.int8).reshape(3, 4), **quant)
    out = n.tensor("q/dq", (3, 4))
    n.op("DEQUANTIZE", [q], [out])
    n.outputs = [out]
    return n


def _shared_tensors(count: int, name_bytes: int) -> bytes:
    """``count`` tensor entries all pointing at one table with a name of
    ``name_bytes``: 10,000 x 100 kB is 1 GB of names from a 140 kB file,
    40,000 x 1 B is 40,000 tensors to parse from 160 kB."""
    import flatbuffers
    import tflite as S

    b = flatbuffers.Builder(1024)
    name = b.CreateString("n" * name_bytes)
    shape = b.CreateNumpyVector(np.asarray([1], np.int32))
    S.TensorStart(b)
    S.TensorAddShape(b, shape)
    S.TensorAddName(b, name)
    t = S.TensorEnd(b)
    tv = _vector(b, [t] * count)
    S.SubGraphStart(b)
    S.SubGraphAddTensors(b, tv)
    sg = S.SubGraphEnd(b)
    S.BufferStart(b)
    buf0 = S.BufferEnd(b)
    sv, bv = _vector(b, [sg]), _vector(b, [buf0])
    S.ModelStart(b)
    S.ModelAddVersion(b, 3)
    S.ModelAddSubgraphs(b, sv)
    S.ModelAddBuffers(b, bv)
    b.Finish(S.ModelEnd(b), b"TFL3")
    return bytes(b.Output())


def _external_buffer(offset: int, size: int) -> bytes:
    """A buffer kept after the flatbuffer (models over 2 GB) at ``offset``."""
    import flatbuffers
    import tflite as S

    b = flatbuffers.Builder(1024)
    b.ForceDefaults(True)
    shape, tname = b.CreateNumpyVector(np.asarray([4], np.int32)), b.CreateString("w")
    S.TensorStart(b)
    S.TensorAddShape(b, shape)
    S.TensorAddType(b, S.TensorType.FLOAT32)
    S.TensorAddBuffer(b, 1)
    S.TensorAddName(b, tname)
    tv = _vector(b, [S.TensorEnd(b)])
    S.SubGraphStart(b)
    S.SubGraphAddTensors(b, tv)
    sv = _vector(b, [S.SubGraphEnd(b)])
    S.BufferStart(b)
    b0 = S.BufferEnd(b)
    S.BufferStart(b)
    S.BufferAddOffset(b, offset)
    S.BufferAddSize(b, size)
    b1 = S.BufferEnd(b)
    bv = _vector(b, [b0, b1])
    S.ModelStart(b)
    S.ModelAddVersion(b, 3)
    S.ModelAddSubgraphs(b, sv)
    S.ModelAddBuffers(b, bv)
    b.Finish(S.ModelEnd(b), b"TFL3")
    return bytes(b.Output()) + b"\0" * 16


def reader_crafted() -> list[tuple[str, bytes]]:
    mixed = _mixed_net

    def set_tensor(name, **kw):
        def edit(n):
            t = next(t for t in n.tensors if t["name"] == name)
            t.update(kw)
        return edit

    def dequantize_no_inputs(n):
        _find_op(n, "DEQUANTIZE")["inputs"] = []

    def op_reads_own_output(n):
        op = _find_op(n, "CONV_2D")
        op["inputs"][0] = op["outputs"][0]

    def op_reads_later_output(n):
        conv, dw = _find_op(n, "CONV_2D"), _find_op(n, "DEPTHWISE_CONV_2D")
        conv["inputs"][0] = dw["outputs"][0]

    def input_out_of_range(n):
        _find_op(n, "CONV_2D")["inputs"][0] = len(n.tensors) + 5

    def output_minus_one(n):
        _find_op(n, "CONV_2D")["outputs"][0] = -1

    def graph_output_out_of_range(n):
        n.outputs = [len(n.tensors)]

    def call_once_subgraph_out_of_range(n):
        n.extra_subgraphs = 1
        n.ops.append(dict(opcode="CALL_ONCE", inputs=[], outputs=[], custom=b"",
                          options=("CallOnceOptions", {"InitSubgraphIndex": 7})))

    return _file_crafted(reader_seeds()[0]) + [
        ("dequantize_without_inputs", _edit(mixed, dequantize_no_inputs)),
        ("more_zero_points_than_scales", write(_quantized_net_with(
            scale=[0.5], zero_point=[0, 1, 2]))),
        ("scales_along_missing_dimension", write(_quantized_net_with(
            scale=[0.5, 0.25, 0.125], zero_point=[0, 0, 0], qdim=5))),
        ("scales_not_matching_dimension", write(_quantized_net_with(
            scale=[0.5, 0.25], zero_point=[0, 0], qdim=0))),
        ("op_reads_its_own_output", _edit(mixed, op_reads_own_output)),
        ("op_reads_later_output", _edit(mixed, op_reads_later_output)),
        ("op_input_out_of_range", _edit(mixed, input_out_of_range)),
        ("op_output_minus_one", _edit(mixed, output_minus_one)),
        ("graph_output_out_of_range", _edit(mixed, graph_output_out_of_range)),
        ("subgraph_index_out_of_range", _edit(mixed, call_once_subgraph_out_of_range)),
        ("huge_shape_small_buffer", _edit(mixed, set_tensor(
            "uint8", shape=[2**31 - 1, 2**31 - 1, 2**31 - 1, 4]))),
        ("shape_product_wraps_int64", _edit(mixed, set_tensor(  # 2^64 + 5 elements
            "uint8", shape=[2**16, 2**16, 2**16, 2**16 + 5]))),
        ("negative_dimensions", _edit(mixed, set_tensor("uint8", shape=[-1, -5]))),
        ("rank_40", _edit(mixed, set_tensor("uint8", shape=[1] * 39 + [5]))),
        ("buffer_larger_than_shape", _edit(mixed, set_tensor("bool", shape=[2]))),
        ("int4_odd_elements_too_few_bytes", _edit(mixed, set_tensor("int4", shape=[3, 3]))),
        ("unknown_tensor_type", _edit(mixed, set_tensor("bool", type=99))),
        ("buffer_offset_past_end", _external_buffer(1 << 20, 16)),
        ("buffer_offset_huge", _external_buffer(2**63, 2**63)),
        ("names_shared_1gb", _shared_tensors(10_000, 100_000)),
        ("tensor_table_shared_40000_times", _shared_tensors(40_000, 1)),
    ]


def _mapping_crafted(model: str) -> list[tuple[str, bytes]]:
    net_fn = {"blazeface_short_range": blazeface_net, "face_mesh": face_mesh_net}[model]
    other = face_mesh_net if model == "blazeface_short_range" else blazeface_net

    def conv_one_input(n):
        _find_op(n, "CONV_2D", 3)["inputs"] = _find_op(n, "CONV_2D", 3)["inputs"][:1]

    def conv_weight_absent(n):
        _find_op(n, "CONV_2D", 3)["inputs"][1] = -1

    def conv_data_absent(n):
        _find_op(n, "CONV_2D", 3)["inputs"][0] = -1

    def dequantize_no_inputs(n):  # the DEQUANTIZE behind a conv weight
        w = _find_op(n, "CONV_2D", 3)["inputs"][1]
        next(op for op in n.ops if w in op["outputs"])["inputs"] = []

    def weight_not_4d(n):
        w = _find_op(n, "CONV_2D", 3)["inputs"][1]
        dq = next(op for op in n.ops if w in op["outputs"])
        src = n.tensors[dq["inputs"][0]]
        size = int(np.prod(src["shape"]))
        src["shape"], n.tensors[w]["shape"] = [size], [size]

    def weight_from_activation(n):  # a conv whose weight is computed, not stored
        _find_op(n, "CONV_2D", 3)["inputs"][1] = n.inputs[0]

    def add_same_input_twice(n):
        add = _find_op(n, "ADD", 2)
        add["inputs"] = [add["inputs"][1], add["inputs"][1]]

    def add_without_inputs(n):
        _find_op(n, "ADD", 2)["inputs"] = []

    def dw_without_inputs(n):
        _find_op(n, "DEPTHWISE_CONV_2D", 2)["inputs"] = []

    def cycle_through_concat(n):  # the first output's concat reads itself
        op = next(op for op in n.ops if n.outputs[0] in op["outputs"])
        op["inputs"] = [n.outputs[0]] + op["inputs"]

    def later_output(n):  # the stem reads the last op's output
        _find_op(n, "CONV_2D", 0)["inputs"][0] = n.ops[-1]["outputs"][0]

    def deep_concat(n):  # 1,100 nested single-input CONCATENATIONs: no recursion limit
        y = n.inputs[0]
        for _ in range(1100):
            z = n.tensor("deep", (1, 1))
            n.op("CONCATENATION", [y], [z], ("ConcatenationOptions", dict(Axis=1)))
            y = z
        n.outputs = [y, y]

    def concat_fan_out(n):  # 2^40 paths through 40 concats of two copies each
        y = n.inputs[0]
        for _ in range(40):
            z = n.tensor("fan", (1, 1))
            n.op("CONCATENATION", [y, y], [z], ("ConcatenationOptions", dict(Axis=1)))
            y = z
        n.outputs = [y, y]

    def long_pass_chain(n):  # 500 RESHAPEs between the input and the output
        y = n.inputs[0]
        for _ in range(500):
            z = n.tensor("pass", (1, 1))
            n.op("RESHAPE", [y], [z])
            y = z
        n.outputs = [y, y]

    def output_absent(n):
        n.outputs = [n.outputs[0]]

    def unknown_op_in_chain(n):
        _find_op(n, "CONV_2D", 3)["opcode"] = "MUL"

    def shared_weights(n):  # every conv reads the stem's weight
        w = _find_op(n, "CONV_2D", 0)["inputs"][1]
        for op in n.ops:
            if op["opcode"] == "CONV_2D":
                op["inputs"][1] = w

    cases = {
        "conv_with_one_input": conv_one_input, "conv_weight_absent": conv_weight_absent,
        "conv_data_input_absent": conv_data_absent,
        "dequantize_without_inputs": dequantize_no_inputs, "weight_not_4d": weight_not_4d,
        "weight_from_activation": weight_from_activation,
        "add_same_input_twice": add_same_input_twice, "add_without_inputs": add_without_inputs,
        "depthwise_without_inputs": dw_without_inputs,
        "cycle_through_output": cycle_through_concat, "stem_reads_last_output": later_output,
        "deep_nested_concat": deep_concat, "concat_fan_out_2e40": concat_fan_out,
        "long_pass_chain": long_pass_chain, "one_output_missing": output_absent,
        "unknown_op_in_chain": unknown_op_in_chain, "shared_weights": shared_weights,
    }
    out = [(name, _edit(functools.partial(net_fn, 0), edit)) for name, edit in cases.items()]
    out.append(("other_face_model", write(other(0))))
    seed = synthetic(model)
    out += [(f"file_{name}", data) for name, data in _file_crafted(seed)
            if name in ("truncated_half", "wrong_identifier", "subgraph_count_past_end")]
    return out


TARGETS = [
    Target(name="tflite", read="zoo.weights.fuzz.formats_tflite:read_and_touch",
           suffix=".tflite", seeds=lambda: list(reader_seeds()), crafted=reader_crafted,
           mutators=MUTATORS,
           description="TFLite flatbuffer reader, every constant dequantized"),
    Target(name="tflite_blazeface", read="zoo.weights.fuzz.formats_tflite:map_blazeface",
           suffix=".tflite", seeds=lambda: mapping_seeds("blazeface_short_range"),
           crafted=lambda: _mapping_crafted("blazeface_short_range"), mutators=MUTATORS,
           description="TFLite -> BlazeFace variables (graph walk and mapping)"),
    Target(name="tflite_face_mesh", read="zoo.weights.fuzz.formats_tflite:map_face_mesh",
           suffix=".tflite", seeds=lambda: mapping_seeds("face_mesh"),
           crafted=lambda: _mapping_crafted("face_mesh"), mutators=MUTATORS,
           description="TFLite -> face mesh variables (graph walk and mapping)"),
]
