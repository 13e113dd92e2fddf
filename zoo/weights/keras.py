"""Copy the weights of a live Keras model (Keras Applications) into ours.

Each family names its layers' Keras counterparts (``model.keras_names()``);
the tensors map as

    Conv2D kernel (k, k, I, O)            -> conv/kernel (k, k, I, O)
    Conv2D 1x1 kernel (1, 1, I, O)        -> Dense kernel (I, O)   (SE, heads)
    DepthwiseConv2D kernel (k, k, C, 1)   -> dw/conv/kernel (k, k, 1, C)
    BatchNormalization gamma, beta        -> bn/scale, bn/bias
    moving_mean, moving_variance          -> batch_stats .../mean, .../var
    Dense kernel, bias                    -> kernel, bias
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from zoo.weights.mapping import Report, fill, template_leaves

_LEAF_TO_KERAS = {
    ("params", "kernel"): ("kernel", "depthwise_kernel"),
    ("params", "bias"): ("bias",),
    ("params", "scale"): ("gamma",),
    ("batch_stats", "mean"): ("moving_mean",),
    ("batch_stats", "var"): ("moving_variance",),
}
_BN_OFFSET = ("beta",)


def _keras_weights(layer) -> dict[str, np.ndarray]:
    return {w.name.split("/")[-1]: np.asarray(v) for w, v in zip(layer.weights, layer.get_weights())}


def from_keras(keras_model, name: str, **options) -> dict:
    """Variables for zoo model ``name`` from a live ``keras.Model``.

    ``options`` are ``zoo.create``'s (``width``, ``num_classes``, ...). Keras
    checkpoints were trained with TensorFlow "same" padding and BatchNorm
    epsilon 1e-3: build the model that runs them with
    ``zoo.create(name, padding="same", bn_eps=1e-3)``.
    Raises ``WeightMismatchError`` naming every missing, unexpected or
    mis-shaped key.
    """
    from zoo.registry import build

    model = build(name, **options)
    if not hasattr(model, "keras_names"):
        raise ValueError(f"{name}: no Keras counterpart is known for this family")
    names = model.keras_names()
    template = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                              jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32))
    layers = {layer.name: layer for layer in keras_model.layers}
    report = Report(source=f"keras model {keras_model.name!r}")
    used: set[str] = set()
    cache: dict[str, dict[str, np.ndarray]] = {}

    def lookup(path):
        collection, module, leaf = path[0], path[1:-1], path[-1]
        keras_name = names.get(module)
        layer = layers.get(keras_name) if keras_name else None
        if layer is None:
            report.missing.append(f"{'/'.join(path)} (Keras layer {keras_name or '?'} not found)")
            return None
        weights = cache.setdefault(keras_name, _keras_weights(layer))
        is_bn = type(layer).__name__ == "BatchNormalization"
        candidates = _BN_OFFSET if (is_bn and leaf == "bias") else _LEAF_TO_KERAS.get((collection, leaf), ())
        for c in candidates:
            if c in weights:
                used.add(f"{keras_name}/{c}")
                return weights[c]
        report.missing.append(f"{'/'.join(path)} (Keras layer {keras_name} has {sorted(weights)})")
        return None

    def convert(path, arr, shape):
        if arr.shape == shape:
            return arr
        if arr.size == int(np.prod(shape)):
            if arr.ndim == 4 and len(shape) == 4 and arr.shape[3] == 1 and shape[2] == 1:
                return arr.reshape(shape)  # depthwise (k, k, C, 1) -> (k, k, 1, C)
            if arr.ndim == 4 and arr.shape[:2] == (1, 1) and len(shape) == 2:
                return arr.reshape(shape)  # 1x1 conv -> dense
        return None

    variables = fill(template, lookup, report, convert)
    for layer in keras_model.layers:
        for w in layer.weights:
            key = f"{layer.name}/{w.name.split('/')[-1]}"
            if key not in used:
                report.unexpected.append(key)
    # Non-weight Keras layers (e.g. Normalization's mean/variance) are only
    # unexpected if they carry trainable meaning; preprocessing layers are
    # the caller's business (zoo.preprocess), so they are not reported.
    report.unexpected = [k for k in report.unexpected if not _is_preprocessing(layers, k)]
    report.raise_if_any(name)
    return variables


def _is_preprocessing(layers, key: str) -> bool:
    return type(layers[key.split("/")[0]]).__name__ in ("Normalization", "Rescaling")
