"""What a mobile app needs to use an exported file without reading our code:
the input it expects (shape, layout, colour order, resize, crop,
normalisation), what the outputs mean, the labels, and where the weights came
from. Written into the file (TFLite ``Model.metadata`` entry ``zoo_metadata``;
ONNX ``metadata_props``) and as a JSON sidecar ``FILE.json``.
"""

from __future__ import annotations

import datetime
from typing import Any

METADATA_NAME = "zoo_metadata"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("zoo")
    except PackageNotFoundError:
        return "unknown"


def metadata(ex, *, fmt: str, quantization: str, outputs: list[str]) -> dict[str, Any]:
    """The metadata document of an export, ready for ``json.dumps``.

    Args:
        ex: the ``conversions.export.Exportable`` being exported.
        fmt: the file format to record, ``"tflite"`` or ``"onnx"``.
        quantization: the quantisation to record, e.g. ``"int8"``.
        outputs: the output names, in the file's order.

    Returns:
        A dict with ``model``, ``format``, ``quantization``,
        ``zoo_version``, ``created`` (UTC, ISO 8601), ``pretrained``,
        ``input`` (name, shape, dtype, layout, colour order; with a spec also
        the normalisation, mean, std, resize, centre crop and interpolation)
        and ``outputs``. With a spec also ``task``; ``weights`` (source and
        license) when pretrained; ``labels`` and ``output_meaning`` for a
        classifier with ``ex.labels`` or ImageNet's 1000 classes;
        ``output_meaning`` for a depth model. A feature-sequence model (3-D
        input) gets its own input fields and no image ones.
    """
    spec = ex.spec
    if len(ex.input_shape) == 3:
        return _sequence_metadata(ex, fmt=fmt, quantization=quantization, outputs=outputs)
    n, h, w, c = ex.input_shape
    doc: dict[str, Any] = {
        "model": ex.name,
        "format": fmt,
        "quantization": quantization,
        "zoo_version": _version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pretrained": ex.pretrained,
        "input": {
            "name": "images", "shape": [n, h, w, c], "dtype": "float32", "layout": "NHWC",
            "color": "RGB",
        },
        "outputs": outputs,
    }
    if spec is not None:
        doc["task"] = spec.task
        doc["input"].update({
            "normalization": "x = (pixel - mean) / std, pixels in 0..255",
            "mean": list(spec.mean), "std": list(spec.std),
            "resize_shorter_side_to": round(h / spec.crop_fraction),
            "center_crop": [h, w], "interpolation": spec.interpolation,
        })
        if ex.pretrained and spec.weights:
            src = spec.weights[0]
            doc["weights"] = {"source": src.where,
                              "license": src.license or spec.license}
        if spec.task == "classification" and ex.labels is not None:
            doc["labels"] = list(ex.labels)
            doc["output_meaning"] = (f"logits over the {len(ex.labels)} classes of `labels` "
                                     "(apply softmax)")
        elif spec.task == "classification" and spec.num_classes == 1000:
            from zoo.preprocess import imagenet_labels
            doc["labels"] = list(imagenet_labels())
            doc["output_meaning"] = "logits over the 1000 ImageNet classes (apply softmax)"
        elif spec.task == "depth":
            doc["output_meaning"] = ("relative inverse depth (N, H, W), larger is nearer; "
                                     "known up to an unknown scale and shift")
    return doc


def _sequence_metadata(ex, *, fmt: str, quantization: str, outputs: list[str]) -> dict[str, Any]:
    """The metadata of a feature-sequence model (TALNet): no image fields."""
    n, steps, width = ex.input_shape
    return {
        "model": ex.name, "format": fmt, "quantization": quantization,
        "zoo_version": _version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pretrained": ex.pretrained,
        "task": ex.spec.task if ex.spec is not None else None,
        "input": {"name": "features", "shape": [n, steps, width], "dtype": "float32",
                  "layout": "(batch, steps, features): each stream's features in turn"},
        "outputs": outputs,
        "output_meaning": ("proposal logits and deltas per step and anchor scale, the "
                           "selected proposals in feature steps, their class logits "
                           "(index 0 background) and refinement deltas; "
                           "zoo.models.talnet.detections decodes them"),
    }
