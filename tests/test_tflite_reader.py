"""zoo.weights.tflite: TFLite flatbuffers read without TensorFlow, checked
against the LiteRT interpreter on MediaPipe's float16 models (fetched from
the pinned mediapipe wheel as DESIGN.md says) and on small quantized models
built here with the schema's generated builders."""

import collections

import flatbuffers
import numpy as np
import pytest
import tflite as S

from zoo.registry import WeightSource
from zoo.weights.fetch import fetch
from zoo.weights.tflite import TFLiteFormatError, read_tflite

# SHA-256 of the files inside mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl,
# computed with `pip download --no-deps --only-binary=:all: --python-version 3.11
# --platform manylinux_2_28_x86_64 mediapipe==0.10.21`, unzip, sha256sum.
MODELS = {
    "blazeface_short_range": WeightSource(
        format="tflite", package="mediapipe==0.10.21",
        path="mediapipe/modules/face_detection/face_detection_short_range.tflite",
        sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
    "face_landmark": WeightSource(
        format="tflite", package="mediapipe==0.10.21",
        path="mediapipe/modules/face_landmark/face_landmark.tflite",
        sha256="1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"),
}
INPUT_SHAPES = {"blazeface_short_range": (1, 128, 128, 3), "face_landmark": (1, 192, 192, 3)}
CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    return request.param, fetch(MODELS[request.param], name=request.param)


def interpreter(path):
    """LiteRT without its default XNNPACK delegate, so its op list is the file's."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    it = litert.Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it


def test_graph_matches_litert(model):
    name, path = model
    g, it = read_tflite(path), interpreter(path)
    details = it.get_tensor_details()
    # LiteRT appends its own unnamed scratch tensors (im2col buffers) after the file's.
    extra = details[len(g.tensors):]
    details = details[:len(g.tensors)]
    assert all(d["name"] == "" for d in extra) and len(extra) <= 4
    assert [(t.index, t.name, t.shape, t.dtype) for t in g.tensors] == [
        (d["index"], d["name"], tuple(d["shape"].tolist()), np.dtype(d["dtype"]).name)
        for d in details]
    for t, d in zip(g.tensors, details):
        scales = d["quantization_parameters"]["scales"]
        assert (t.quantization.scale if t.quantization else ()) == tuple(scales.tolist())
    ops = it._get_ops_details()
    assert [(op.index, op.opcode, op.inputs, op.outputs) for op in g.ops] == [
        (o["index"], o["op_name"], tuple(o["inputs"].tolist()), tuple(o["outputs"].tolist()))
        for o in ops]
    assert sorted(g.inputs) == sorted(d["index"] for d in it.get_input_details())
    assert sorted(g.outputs) == sorted(d["index"] for d in it.get_output_details())
    assert [g.tensors[i].shape for i in g.inputs] == [INPUT_SHAPES[name]]
    assert g.num_subgraphs == 1 and g.subgraph == 0


def test_constants_match_litert(model):
    _, path = model
    g, it = read_tflite(path), interpreter(path)
    constants = [t for t in g.tensors if g.is_constant(t.index)]
    assert constants and any(t.dtype == "float16" for t in constants)
    for t in constants:
        ours, theirs = g.constant(t.index), it.get_tensor(t.index)
        if t.dtype == "float16":
            assert theirs.dtype == np.float16 and ours.dtype == np.float32
            theirs = theirs.astype(np.float32)
        assert ours.dtype == theirs.dtype and ours.shape == t.shape, t
        np.testing.assert_array_equal(ours, theirs, err_msg=t.name)
    ours = g.constant(constants[0].index)
    ours[...] = 0  # a fresh, writable copy: the graph's data is untouched
    assert np.array_equal(g.constant(constants[0].index), it.get_tensor(constants[0].index)
                          .astype(ours.dtype))


def test_conv_weights_behind_dequantize(model):
    """MediaPipe's float16 convention: fp16 constant -> DEQUANTIZE -> conv input."""
    _, path = model
    g, it = read_tflite(path), interpreter(path)
    convs = [op for op in g.ops if op.opcode in CONVS]
    assert convs
    for op in convs:
        x, w, b = op.inputs
        in_channels = g.tensors[x].shape[-1]
        assert not g.is_constant(w)
        with pytest.raises(ValueError, match="DEQUANTIZE"):
            g.constant(w)
        deq = g.producer(w)
        assert deq.opcode == "DEQUANTIZE" and op in g.consumers(w)
        src = deq.inputs[0]
        assert g.tensors[src].dtype == "float16" and g.producer(src) is None
        weight, bias = g.dequantized_constant(w), g.dequantized_constant(b)
        assert weight.dtype == bias.dtype == np.float32
        out_channels = bias.shape[0]
        if op.opcode == "CONV_2D":  # OHWI
            assert weight.shape[0] == out_channels and weight.shape[3] == in_channels
        else:  # 1HW(I*M)
            m = op.options["depth_multiplier"]
            assert weight.shape[0] == 1 and weight.shape[3] == in_channels * m == out_channels
        assert weight.shape == g.tensors[w].shape == g.tensors[src].shape
        np.testing.assert_array_equal(weight, it.get_tensor(src).astype(np.float32))
        o = op.options
        assert o["padding"] in ("SAME", "VALID") and o["stride_h"] >= 1 and o["stride_w"] >= 1
        assert o["dilation_h_factor"] == o["dilation_w_factor"] == 1
        assert o["fused_activation_function"] in ("NONE", "RELU", "RELU6")
    with pytest.raises(ValueError, match="graph input"):
        g.dequantized_constant(g.inputs[0])


def test_model_facts(model):
    """What the Flax mapping relies on: builtin ops only, every fp16 constant
    goes through exactly one DEQUANTIZE, no quantized tensors."""
    _, path = model
    g = read_tflite(path)
    hist = collections.Counter(op.opcode for op in g.ops)
    fp16 = [t.index for t in g.tensors if t.dtype == "float16"]
    assert all(g.is_constant(i) for i in fp16)
    assert hist["DEQUANTIZE"] == len(fp16)
    assert sorted(op.inputs[0] for op in g.ops if op.opcode == "DEQUANTIZE") == fp16
    assert not any(op.opcode.startswith("CUSTOM:") for op in g.ops)
    assert all(t.quantization is None for t in g.tensors)


# --- small models built here ---------------------------------------------------

def _vector(b, offsets):
    b.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def build_tflite(subgraphs, buffers, opcodes):
    """A .tflite file. ``subgraphs``: dicts of tensors (dicts: name, shape, type,
    buffer, optional scale/zero_point/qdim), ops ((opcode index, inputs, outputs)),
    inputs, outputs. ``buffers``: bytes per buffer (buffer 0 empty by convention)."""
    b = flatbuffers.Builder(1024)
    buffer_offsets = []
    for data in buffers:
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
    code_offsets = []
    for code in opcodes:
        S.OperatorCodeStart(b)
        S.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        S.OperatorCodeAddBuiltinCode(b, code)
        S.OperatorCodeAddVersion(b, 1)
        code_offsets.append(S.OperatorCodeEnd(b))
    ints = lambda xs: b.CreateNumpyVector(np.asarray(xs, np.int32))  # noqa: E731
    subgraph_offsets = []
    for sg in subgraphs:
        tensor_offsets = []
        for t in sg["tensors"]:
            name, shape, quant = b.CreateString(t["name"]), ints(t["shape"]), None
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
            S.TensorAddType(b, t["type"])
            S.TensorAddBuffer(b, t.get("buffer", 0))
            S.TensorAddName(b, name)
            if quant is not None:
                S.TensorAddQuantization(b, quant)
            tensor_offsets.append(S.TensorEnd(b))
        op_offsets = []
        for opcode_index, inputs, outputs in sg["ops"]:
            iv, ov = ints(inputs), ints(outputs)
            S.OperatorStart(b)
            S.OperatorAddOpcodeIndex(b, opcode_index)
            S.OperatorAddInputs(b, iv)
            S.OperatorAddOutputs(b, ov)
            op_offsets.append(S.OperatorEnd(b))
        tv, opv = _vector(b, tensor_offsets), _vector(b, op_offsets)
        iv, ov = ints(sg["inputs"]), ints(sg["outputs"])
        S.SubGraphStart(b)
        S.SubGraphAddTensors(b, tv)
        S.SubGraphAddInputs(b, iv)
        S.SubGraphAddOutputs(b, ov)
        S.SubGraphAddOperators(b, opv)
        subgraph_offsets.append(S.SubGraphEnd(b))
    bv, cv, sv = (_vector(b, buffer_offsets), _vector(b, code_offsets),
                  _vector(b, subgraph_offsets))
    S.ModelStart(b)
    S.ModelAddVersion(b, 3)
    S.ModelAddOperatorCodes(b, cv)
    S.ModelAddSubgraphs(b, sv)
    S.ModelAddBuffers(b, bv)
    b.Finish(S.ModelEnd(b), b"TFL3")
    return bytes(b.Output())


def _pack_int4(q):
    flat = q.reshape(-1).astype(np.uint8) & 0xF
    flat = np.concatenate([flat, np.zeros(flat.size % 2, np.uint8)])
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """Each quantized constant feeds a DEQUANTIZE whose output is a graph output,
    so LiteRT computes the dequantized values independently of the reader."""
    rng = np.random.default_rng(0)
    T = S.TensorType
    consts = [  # name, raw values, tensor type, stored bytes, quantization
        ("conv_int8_per_channel", rng.integers(-127, 128, (4, 3, 3, 2)).astype(np.int8), T.INT8,
         None, dict(scale=[0.5, 0.25, 0.125, 2.0], zero_point=[0] * 4, qdim=0)),
        ("dw_int8_per_channel", rng.integers(-127, 128, (1, 3, 3, 3)).astype(np.int8), T.INT8,
         None, dict(scale=[0.1, 0.02, 3.0], zero_point=[0] * 3, qdim=3)),
        ("uint8_per_tensor", rng.integers(0, 256, (5,)).astype(np.uint8), T.UINT8,
         None, dict(scale=[0.1], zero_point=[128])),
        ("int4_per_channel", rng.integers(-8, 8, (3, 5)).astype(np.int8), T.INT4,
         "int4", dict(scale=[0.5, 1.0, 2.0], zero_point=[0] * 3, qdim=0)),
        ("fp16", rng.standard_normal((2, 3)).astype(np.float16), T.FLOAT16, None, {}),
    ]
    tensors, ops, buffers, outputs = [], [], [b""], []
    for name, values, ttype, packing, quant in consts:
        buffers.append(_pack_int4(values) if packing == "int4" else values.tobytes())
        tensors.append(dict(name=name, shape=values.shape, type=ttype, buffer=len(buffers) - 1,
                            **quant))
        tensors.append(dict(name=f"{name}/dequantized", shape=values.shape, type=T.FLOAT32))
        ops.append((0, [len(tensors) - 2], [len(tensors) - 1]))
        outputs.append(len(tensors) - 1)
    tensors.append(dict(name="int32", shape=(6,), type=T.INT32, buffer=len(buffers)))
    buffers.append(np.arange(-3, 3, dtype=np.int32).tobytes())
    data = build_tflite([dict(tensors=tensors, ops=ops, inputs=[], outputs=outputs)], buffers,
                        [S.BuiltinOperator.DEQUANTIZE])
    path = tmp_path_factory.mktemp("tflite") / "quantized.tflite"
    path.write_bytes(data)
    return path, {name: values for name, values, *_ in consts}


def test_quantized_constants_match_litert(quantized):
    path, values = quantized
    g, it = read_tflite(path), interpreter(path)
    it.invoke()
    by_name = {t.name: t for t in g.tensors}
    for name, raw in values.items():
        t = by_name[name]
        ours = g.constant(t.index)
        if raw.dtype == np.float16:
            assert ours.dtype == np.float32 and t.quantization is None
        else:  # stored integers unless asked to dequantize
            assert ours.dtype == raw.dtype and t.quantization is not None
        np.testing.assert_array_equal(ours, raw.astype(ours.dtype))
        out = by_name[f"{name}/dequantized"].index
        expected = it.get_tensor(out)
        assert expected.dtype == np.float32
        for got in (g.dequantized_constant(out), g.dequantized_constant(t.index),
                    g.constant(t.index, dequantize=True)):
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, expected, err_msg=name)
    dw = by_name["dw_int8_per_channel"].quantization
    assert dw.per_channel and dw.quantized_dimension == 3 and dw.scale[2] == pytest.approx(3.0)
    np.testing.assert_array_equal(g.constant(by_name["int32"].index), np.arange(-3, 3))
    assert g.constant(by_name["int32"].index).dtype == np.int32


def test_several_subgraphs_need_a_choice(tmp_path):
    T = S.TensorType

    def sg(name):
        return dict(tensors=[dict(name=name, shape=(1, 2), type=T.FLOAT32)], ops=[],
                    inputs=[0], outputs=[0])

    path = tmp_path / "two.tflite"
    path.write_bytes(build_tflite([sg("main"), sg("body")], [b""], []))
    with pytest.raises(ValueError, match="2 subgraphs: pass subgraph=") as e:
        read_tflite(path)
    assert str(path) in str(e.value) and not isinstance(e.value, TFLiteFormatError)
    assert read_tflite(path, subgraph=1).tensors[0].name == "body"
    g = read_tflite(path, subgraph=0)
    assert (g.tensors[0].name, g.num_subgraphs, g.inputs, g.outputs) == ("main", 2, (0,), (0,))
    with pytest.raises(ValueError, match="subgraph=2"):
        read_tflite(path, subgraph=2)


def _bad_files(quantized_path, real_path):
    rng = np.random.default_rng(0)
    yield "random", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    noise = bytearray(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    noise[4:8] = b"TFL3"  # the right identifier on garbage
    yield "random_tfl3", bytes(noise)
    yield "empty", b""
    for path in (quantized_path, real_path):
        data = path.read_bytes()
        yield "wrong_identifier", data[:4] + b"TFL2" + data[8:]
        # (MediaPipe's files end in a 22-byte zip directory the graph does not use.)
        for cut in (6, 64, len(data) // 3, len(data) // 2, len(data) - 100):
            yield f"truncated_{cut}", data[:cut]


def test_bad_files_raise_naming_the_file(tmp_path, quantized):
    real = fetch(MODELS["blazeface_short_range"], name="blazeface_short_range")
    n = 0
    for label, data in _bad_files(quantized[0], real):
        path = tmp_path / f"{label}.tflite"
        path.write_bytes(data)
        with pytest.raises(TFLiteFormatError) as e:
            read_tflite(path)
        assert str(path) in str(e.value), label
        assert isinstance(e.value, ValueError)
        n += 1
    assert n == 15
    with pytest.raises(TFLiteFormatError, match="identifier"):
        read_tflite(tmp_path / "wrong_identifier.tflite")
