"""JAX -> TFLite: jax2tf (native serialisation) -> ``tf.function`` with a fixed
input signature -> ``TFLiteConverter.from_concrete_functions`` with builtin
ops only.

Quantisations (``quantization=``):

=============  ==========================================================
float32        the reference; BatchNorm folded into the convolutions
float16        weights stored as float16 (half the file), computed in float32
dynamic_int8   weights int8 per channel, activations quantised on the fly
int8           weights and activations int8, calibrated on real images
               (``representative_data``; by default scikit-image photos
               preprocessed per the spec); float32 input and output
=============  ==========================================================

Mixed precision: ``keep_float=("FULLY_CONNECTED",)`` with ``int8`` leaves
those TFLite op types in float32 and quantises the rest (selective
quantisation through TensorFlow's ``QuantizationDebugger``, its documented
route). For MobileNetV2 the int8 classifier is what loses chelsea's top-1:
float32 ranks it 1.6 logits ahead, the int8 output step is ~0.2 and the
error ~3 logits, so the winner depended on the calibration draw (seeds 0-3:
282, 285, 285, 281); with the classifier in float all four seeds keep 285,
for a file of 7.5 MiB instead of 3.9 (float32: 13.6).

Shapes are fixed (batch 1 and the spec's resolution by default): with a
polymorphic batch the converter leaves BatchNorm unfolded and emits
BROADCAST_TO ops that XNNPACK does not take (DESIGN.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import tempfile
import types
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from conversions.export import ConversionError, Exportable, prepare
from conversions.metadata import METADATA_NAME, metadata
from zoo.atomic import write_atomic

QUANTIZATIONS = ("float32", "float16", "dynamic_int8", "int8")


def _tensorflow():
    try:
        import tensorflow as tf
        from jax.experimental import jax2tf
    except ImportError:
        raise ImportError("TFLite export needs TensorFlow: pip install -e '.[convert]'") from None
    return tf, jax2tf


def default_output(ex: Exportable, quantization: str, suffix: str) -> Path:
    """The default file name of an export, in the working folder.

    Args:
        ex: the ``Exportable``; its name and input shape make the name.
        quantization: the quantisation label, as ``quant_label`` makes it.
        suffix: the extension with its dot, ``".tflite"`` or ``".onnx"``.

    Returns:
        ``NAME_RES[_bBATCH]_QUANT.SUFFIX`` as a relative ``Path``: RES is
        ``H`` for a square input, else ``HxW``; the batch part only when it
        is not 1 (e.g. ``mobilenet_v2_224_int8.tflite``).
    """
    h, w = ex.input_shape[1:3]
    res = f"_{h}" if h == w else f"_{h}x{w}"
    batch = f"_b{ex.input_shape[0]}" if ex.input_shape[0] != 1 else ""
    return Path(f"{ex.name}{res}{batch}_{quantization}{suffix}")


def _converter(ex: Exportable):
    tf, jax2tf = _tensorflow()
    names = ex.output_names
    converted = jax2tf.convert(ex.fn, with_gradient=False)

    # A dict of named outputs gives the TFLite signature readable names.
    fn = tf.function(lambda x: {k: v for k, v in converted(x).items()}, autograph=False,
                     input_signature=[tf.TensorSpec(ex.input_shape, tf.float32, name="images")])
    concrete = fn.get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    conv.allow_custom_ops = False
    # The flatbuffer's outputs keep TensorFlow's tensor names (Identity,
    # Identity_1...); remember which output name each one carries.
    tf_names = {t.name.split(":")[0]: k for k, t in concrete.structured_outputs.items()}
    return conv, names, tf_names


def _representative(ex: Exportable, data: Optional[Iterable[Any]]):
    if data is None:
        from conversions.calibration import calibration_images
        data = calibration_images(ex.spec, ex.input_shape)
    samples = [np.asarray(d, np.float32) for d in data]
    if not samples:
        raise ValueError("representative_data is empty: int8 calibration needs real inputs")
    for i, s in enumerate(samples):
        if s.shape != ex.input_shape:
            raise ValueError(f"representative_data[{i}] has shape {s.shape}; the export's "
                             f"input is {ex.input_shape} (preprocessed, like the model's input)")
    return lambda: ([s] for s in samples)


@contextlib.contextmanager
def _native_stderr():
    """Collect what the converter's C++ code writes to file descriptor 2 into
    the yielded object's ``text`` (set on exit): its error locations name the
    JAX op and flax layer, which the Python exception leaves out; on success
    the chatter is dropped."""
    sys.stderr.flush()
    saved = os.dup(2)
    captured = types.SimpleNamespace(text="")
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.text = tmp.read().decode(errors="replace")


_JAX_LOC = re.compile(r'"jit\([^)"]*\)/([^"]+)"')
_ERROR = re.compile(r"error: (.+)")


def _layer_errors(message: str) -> str:
    """Name the failing layer and why. jax2tf keeps each op's JAX location,
    ``jit(fn)/Model/blocks_3/dw/<primitive>``, in the converter's message."""
    places = list(dict.fromkeys(_JAX_LOC.findall(message)))
    reasons = [r.strip() for r in _ERROR.findall(message)
               if not r.startswith("failed while converting")]
    reasons = list(dict.fromkeys(reasons))
    if not places and not reasons:
        return message.strip()[:2000]
    lines = []
    for place in places[:5]:
        layer, _, primitive = place.rpartition("/")
        lines.append(f"layer {layer or '?'}: `{primitive}` has no TFLite builtin")
    lines += [f"converter: {r}" for r in reasons[:5]]
    return "\n".join(lines)


def to_tflite(name_or_model: Union[str, Any], variables: Optional[dict] = None,
              quantization: str = "float32", input_shape=None, representative_data=None, *,
              out: Union[str, Path, None] = None, pretrained: bool = False,
              spec: Any = None, audit: bool = True, keep_float: Sequence[str] = ()) -> Path:
    """Export a registry model (by name) or a flax model with its variables to
    a ``.tflite`` file; returns its path.

    ``out`` defaults to ``NAME_RES_QUANT.tflite`` in the working folder. The
    file embeds the preprocessing and labels as metadata (``zoo_metadata``)
    and gets the same JSON as a sidecar, ``FILE.json``. With ``audit`` (the
    default) the op audit runs and a Flex or custom op is an error naming
    its layer. ``keep_float`` (int8 only) names TFLite op types to leave in
    float32, e.g. ``("FULLY_CONNECTED",)`` for the classifier.

    Needs the ``convert`` extra (TensorFlow).

    Args:
        name_or_model: a registry name, a flax model (with ``variables``),
            or an ``Exportable``; see ``conversions.export.prepare``.
        variables: the model's variables; required with a model object.
        quantization: ``"float32"``, ``"float16"``, ``"dynamic_int8"`` or
            ``"int8"`` (see the module's table).
        input_shape: the fixed input shape; None means (1, H, W, 3) at the
            spec's resolution.
        representative_data: int8 only: an iterable of float32 arrays of
            the export's input shape, preprocessed like the model's input;
            None means ``calibration_images`` of the spec.
        out: the ``.tflite`` path; None means ``NAME_RES_QUANT.tflite`` in
            the working folder.
        pretrained: with a name: export the published weights.
        spec: the ``ModelSpec``; None means the registry's.
        audit: run ``audit_tflite`` on the result (needs LiteRT).
        keep_float: int8 only: TFLite op type names (any case) to keep in
            float32; a single string is one name.

    Returns:
        The path of the written ``.tflite`` file (its ``FILE.json`` sidecar
        sits beside it).

    Raises:
        ValueError: if ``quantization`` is unknown; ``keep_float`` or
            ``representative_data`` comes with another quantisation than
            int8; ``keep_float`` names no TFLite builtin op;
            ``representative_data`` is empty or mis-shaped; or ``prepare``
            rejects the arguments.
        ConversionError: if the TFLite converter fails (the message names
            the layers and reasons), or the audit finds Flex or custom ops
            (the file and its sidecar are then deleted).
        ImportError: if TensorFlow is not installed.

    Example:
        ::

            path = to_tflite("efficientnet_lite0", pretrained=True, quantization="int8")
            path = to_tflite(model, variables, input_shape=(1, 96, 96, 3), out="m.tflite")
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization={quantization!r}: choose one of {', '.join(QUANTIZATIONS)}")
    keep_float = _check_keep_float(keep_float, quantization)
    ex = prepare(name_or_model, variables, pretrained=pretrained, input_shape=input_shape,
                 spec=spec)
    if representative_data is not None and quantization != "int8":
        raise ValueError("representative_data is only used by quantization='int8'")
    tf, _ = _tensorflow()
    started = time.perf_counter()
    conv, names, tf_names = _converter(ex)
    if quantization != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        conv.target_spec.supported_types = [tf.float16]
    convert = conv.convert
    if quantization == "int8":
        rep = conv.representative_dataset = _representative(ex, representative_data)
        if keep_float:
            # Builtins stay allowed (set by _converter): the kept ops run in
            # float32 with QUANTIZE/DEQUANTIZE at their edges.
            options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_ops=list(keep_float))
            convert = lambda: tf.lite.experimental.QuantizationDebugger(  # noqa: E731
                converter=conv, debug_dataset=rep,
                debug_options=options).get_nondebug_quantized_model()
        else:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    log = io.StringIO()
    with _native_stderr() as native:
        try:
            with contextlib.redirect_stdout(log), warnings.catch_warnings():
                # "Statistics for quantized inputs were expected": the float
                # input is quantised by the graph's own QUANTIZE op.
                warnings.simplefilter("ignore", UserWarning)
                flatbuffer = convert()
        except Exception as e:  # ConverterError and friends
            failure = e
        else:
            failure = None
    if failure is not None:
        raise ConversionError(f"{ex.name}: TFLite conversion ({quantization}) failed:\n"
                              f"{_layer_errors(native.text + str(failure))}") from failure
    seconds = time.perf_counter() - started
    meta = metadata(ex, fmt="tflite", quantization=quantization, outputs=names)
    if keep_float:
        meta["keep_float"] = list(keep_float)
    meta["conversion_seconds"] = round(seconds, 2)
    flatbuffer = _finish(flatbuffer, meta, tf_names)
    path = Path(out) if out is not None else default_output(
        ex, quant_label(quantization, keep_float), ".tflite")
    sidecar = path.with_name(path.name + ".json")
    write_atomic(path, flatbuffer)
    write_atomic(sidecar, json.dumps(meta, indent=1) + "\n")
    if audit:
        from conversions.audit import audit_tflite
        report = audit_tflite(path)
        if report.foreign_ops:
            path.unlink()
            sidecar.unlink()
            raise ConversionError(f"{ex.name}: {report.describe_foreign()}")
    return path


def quant_label(quantization: str, keep_float: Sequence[str] = ()) -> str:
    """``int8``, or ``int8-float-fully_connected`` for a mixed-precision file.

    Args:
        quantization: the quantisation, e.g. ``"int8"``.
        keep_float: the op types kept in float32, if any.

    Returns:
        ``quantization``, followed by ``-float-`` and the lower-cased op
        types joined by ``-`` when ``keep_float`` is not empty.
    """
    return "-".join([quantization] + ["float"] * bool(keep_float)
                    + [o.lower() for o in keep_float])


def _check_keep_float(keep_float, quantization: str) -> tuple[str, ...]:
    if isinstance(keep_float, str):
        keep_float = (keep_float,)
    ops = tuple(str(o).strip().upper() for o in keep_float)
    if ops and quantization != "int8":
        raise ValueError(f"keep_float={list(ops)} is for quantization='int8' (mixed precision); "
                         f"with {quantization!r} nothing is int8 to keep float")
    from tflite.BuiltinOperator import BuiltinOperator
    unknown = [o for o in ops if not isinstance(getattr(BuiltinOperator, o, None), int)]
    if unknown:
        raise ValueError(f"keep_float: {', '.join(unknown)} is not a TFLite builtin op type "
                         "(e.g. FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, MEAN)")
    return ops


def _finish(flatbuffer: bytes, meta: dict, tf_names: dict[str, str]) -> bytes:
    """Name the inputs and outputs and add a ``serving_default`` signature
    (so runtimes return outputs by name, not by position), and add the JSON
    as a named metadata buffer: the place TFLite keeps model-level data
    (``Model.metadata``), readable without our code."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1:
        raise ConversionError(f"expected one input in the TFLite graph, got {len(graph.inputs)}")

    def tensor_map(name, index):
        m = schema.TensorMapT()
        m.name, m.tensorIndex = name, index
        return m

    graph.tensors[graph.inputs[0]].name = b"images"
    outputs = []
    for i in graph.outputs:
        tf_name = graph.tensors[i].name.decode()
        if tf_name not in tf_names:
            raise ConversionError(f"TFLite output {tf_name!r} does not match any of the "
                                  f"function's outputs {sorted(tf_names)}")
        graph.tensors[i].name = tf_names[tf_name].encode()
        outputs.append(tensor_map(tf_names[tf_name], i))
    signature = schema.SignatureDefT()
    signature.signatureKey = "serving_default"
    signature.subgraphIndex = 0
    signature.inputs = [tensor_map("images", graph.inputs[0])]
    signature.outputs = outputs
    model.signatureDefs = [signature]
    buf = schema.BufferT()
    buf.data = bytearray(json.dumps(meta, separators=(",", ":")).encode())
    model.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(path: Union[str, Path]) -> dict:
    """The ``zoo_metadata`` JSON embedded in a ``.tflite`` file we wrote.

    Args:
        path: a ``.tflite`` file written by ``to_tflite``.

    Returns:
        The metadata as a dict (see ``conversions.metadata.metadata``), with
        ``conversion_seconds`` and, for mixed precision, ``keep_float``.

    Raises:
        ValueError: if the file carries no ``zoo_metadata``.
        zoo.weights.errors.TFLiteFormatError: if the file is not a
            well-formed TFLite flatbuffer.
    """
    from zoo.weights.tflite import read_tflite

    graph = read_tflite(path, subgraph=0)
    data = graph.metadata.get(METADATA_NAME)
    if data is None:
        raise ValueError(f"{path}: no {METADATA_NAME} metadata (not written by zoo convert?)")
    return json.loads(bytes(data).decode())


_LOC = re.compile(r"jit\([^)]*\)/([^;'\"]+)")


def layer_of(tensor_name: str) -> str:
    """``jit(fn)/MobileNetV2/blocks_3/dw/conv/conv_general_dilated`` ->
    ``MobileNetV2/blocks_3/dw/conv``: the flax path that made a tensor.

    Args:
        tensor_name: a TFLite tensor name; of a fused op's ``;``-separated
            names the last (the convolution's) is read.

    Returns:
        The JAX location without its ``jit(...)`` prefix and primitive, or
        ``tensor_name`` unchanged when it holds no JAX location.
    """
    m = _LOC.search((tensor_name or "").split(";")[-1])  # fused ops: the last is the conv
    if not m:
        return tensor_name
    return m.group(1).rsplit("/", 1)[0]
