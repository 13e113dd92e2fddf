"""JAX -> ONNX through the float32 TFLite export: ``tf2onnx --tflite``.

tf2onnx cannot read jax2tf's ``XlaCallModule`` (DESIGN.md), but it reads the
TFLite flatbuffer, where every op is already a plain builtin. The metadata
JSON travels in the ONNX model's ``metadata_props`` (key ``zoo_metadata``)
and as a sidecar ``FILE.json``.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Union

from conversions.export import ConversionError, prepare
from conversions.metadata import METADATA_NAME
from conversions.tflite import default_output, read_metadata, to_tflite
from zoo.atomic import write_atomic

OPSET = 17


def to_onnx(name_or_model: Union[str, Any], variables: Optional[dict] = None,
            input_shape=None, *, out: Union[str, Path, None] = None,
            pretrained: bool = False, spec: Any = None, opset: int = OPSET) -> Path:
    """Export to a float32 ``.onnx`` file; returns its path (default
    ``NAME_RES_float32.onnx``).

    The model goes through a temporary float32 TFLite file (``to_tflite``
    without the audit) and ``tflite_to_onnx``; the metadata is in the
    model's ``metadata_props`` and in the sidecar ``FILE.json``. Needs the
    ``convert`` extra.

    Args:
        name_or_model: a registry name, a flax model (with ``variables``),
            or an ``Exportable``; see ``conversions.export.prepare``.
        variables: the model's variables; required with a model object.
        input_shape: the fixed input shape; None means (1, H, W, 3) at the
            spec's resolution.
        out: the ``.onnx`` path; None means ``NAME_RES_float32.onnx`` in the
            working folder.
        pretrained: with a name: export the published weights.
        spec: the ``ModelSpec``; None means the registry's.
        opset: the ONNX opset to target.

    Returns:
        The path of the written ``.onnx`` file.

    Raises:
        ValueError: from ``prepare``, for inconsistent arguments.
        ConversionError: if TFLite or tf2onnx conversion fails.
        ImportError: if TensorFlow, tf2onnx or onnx is not installed.

    Example:
        ::

            path = to_onnx("mobilenet_v2", pretrained=True)
            logits = runner(path)(x)["output"]
    """
    ex = prepare(name_or_model, variables, pretrained=pretrained, input_shape=input_shape,
                 spec=spec)
    path = Path(out) if out is not None else default_output(ex, "float32", ".onnx")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        lite = to_tflite(ex, out=Path(tmp) / "model.tflite", audit=False)
        tflite_to_onnx(lite, path, opset=opset, started=started)
    return path


def tflite_to_onnx(tflite: Union[str, Path], out: Union[str, Path], *, opset: int = OPSET,
                   started: Optional[float] = None) -> Path:
    """Convert a float32 ``.tflite`` written by ``to_tflite`` to ``out``.

    The file's ``zoo_metadata`` goes into the ONNX model's
    ``metadata_props`` and the sidecar ``out.json``, with ``format``,
    ``opset`` and ``conversion_seconds`` updated; the model passes
    ``onnx.checker`` before it is written.

    Args:
        tflite: a float32 ``.tflite`` file written by ``to_tflite``.
        out: the ``.onnx`` path to write.
        opset: the ONNX opset to target.
        started: ``time.perf_counter()`` when the export began, so
            ``conversion_seconds`` includes the TFLite step; None means now.

    Returns:
        ``out`` as a ``Path``.

    Raises:
        ImportError: if tf2onnx or onnx is not installed.
        ValueError: if ``tflite`` has no ``zoo_metadata`` or is not float32.
        ConversionError: if tf2onnx cannot convert the file.
    """
    try:
        import onnx
        import tf2onnx
    except ImportError:
        raise ImportError("ONNX export needs tf2onnx and onnx: pip install -e '.[convert]'") \
            from None
    started = time.perf_counter() if started is None else started
    path = Path(out)
    meta = read_metadata(tflite)
    if meta.get("quantization") != "float32":
        raise ValueError(f"{tflite}: ONNX export starts from the float32 TFLite file, "
                         f"not {meta.get('quantization')}")
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            model, _ = tf2onnx.convert.from_tflite(str(tflite), opset=opset)
    except Exception as e:
        raise ConversionError(f"{meta.get('model')}: tf2onnx could not convert the TFLite "
                              f"export: {e}") from e
    meta.update(format="onnx", opset=opset,
                conversion_seconds=round(time.perf_counter() - started, 2))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_NAME, json.dumps(meta, separators=(",", ":"))
    onnx.checker.check_model(model)
    write_atomic(path, model.SerializeToString())
    write_atomic(path.with_name(path.name + ".json"), json.dumps(meta, indent=1) + "\n")
    return path
