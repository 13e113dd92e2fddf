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

import dataclasses
from typing import Optional

import numpy as np

from zoo.weights.conventions import KERAS, Conventions, Weights, declared
from zoo.weights.errors import WeightMismatchError
from zoo.weights.mapping import load_named

# zoo name -> (keras.applications constructor, extra arguments, input scale).
# EfficientNet starts with Rescaling(1/255) and a Normalization that is the
# identity without ImageNet weights, so it takes our normalised images times
# 255; MobileNetV3's built-in rescaling is switched off.
KERAS_APPLICATIONS = {
    "mobilenet_v1": ("MobileNet", {}, 1.0),
    "mobilenet_v2": ("MobileNetV2", {}, 1.0),
    "mobilenet_v3_small": ("MobileNetV3Small", {"include_preprocessing": False}, 1.0),
    "mobilenet_v3_large": ("MobileNetV3Large", {"include_preprocessing": False}, 1.0),
    **{f"efficientnet_b{i}": (f"EfficientNetB{i}", {}, 255.0) for i in range(8)},
}

_LEAVES = {
    ("params", "kernel"): ("kernel", "depthwise_kernel"),
    ("params", "scale"): ("gamma",),
    ("batch_stats", "mean"): ("moving_mean",),
    ("batch_stats", "var"): ("moving_variance",),
}
# Preprocessing layers (Rescaling, Normalization) carry statistics, not
# weights of the network: zoo.preprocess does their job.
_PREPROCESSING = ("Normalization", "Rescaling")


def _leaf_names(collection: str, leaf: str, batchnorm: bool):
    if leaf == "bias":
        return ("beta",) if batchnorm else ("bias",)
    return _LEAVES.get((collection, leaf), ())


def _to_ours(arr: np.ndarray, shape: tuple[int, ...]):
    if arr.shape == shape:
        return arr
    if arr.size == int(np.prod(shape)):
        if arr.ndim == 4 and len(shape) == 4 and arr.shape[3] == 1 and shape[2] == 1:
            return arr.reshape(shape)  # depthwise (k, k, C, 1) -> (k, k, 1, C)
        if arr.ndim == 4 and arr.shape[:2] == (1, 1) and len(shape) == 2:
            return arr.reshape(shape)  # 1x1 conv -> dense
    return None


def keras_conventions(keras_model) -> Conventions:
    """What a live Keras model's weights need: TF "same" padding (every
    Keras Applications model pads so) and its BatchNormalization epsilon,
    read from the layers (1e-3 when it has none).

    Args:
        keras_model: a live ``keras.Model``.

    Returns:
        ``KERAS`` with the model's BatchNormalization epsilon.

    Raises:
        WeightMismatchError: its BatchNormalization layers use more than one
            epsilon.
    """
    eps = {float(layer.epsilon) for layer in keras_model.layers
           if type(layer).__name__ == "BatchNormalization"}
    if len(eps) > 1:
        raise WeightMismatchError(
            f"keras model {keras_model.name!r}: its BatchNormalization layers use several "
            f"epsilons ({', '.join(map(str, sorted(eps)))}); a zoo model has one bn_eps")
    return KERAS if not eps else dataclasses.replace(KERAS, bn_eps=eps.pop())


def from_keras(keras_model, name: str, *, conventions: Optional[Conventions] = None,
               **options) -> Weights:
    """Variables for zoo model ``name`` from a live ``keras.Model``, as
    ``Weights`` carrying the conventions they need (TF "same" padding and the
    model's BatchNorm epsilon, 1e-3 in Keras Applications):
    ``zoo.create(name, weights=from_keras(km, name))`` builds the model that
    runs them.

    ``options`` are ``zoo.create``'s (``width``, ``num_classes``, ...);
    ``conventions`` (or ``padding``/``bn_eps``) overrides what is recorded.
    The weights of preprocessing layers (Rescaling, Normalization) are
    skipped: ``zoo.preprocess`` does their job.

    Args:
        keras_model: a live ``keras.Model`` of the same architecture, e.g.
            ``keras.applications.MobileNetV2(weights="imagenet")``.
        name: the zoo model the weights are for.
        conventions: the conventions to record instead of the model's.
        **options: ``zoo.create``'s options for building the target model.

    Returns:
        ``Weights``: ``{"params": ..., "batch_stats": ...}`` numpy arrays
        carrying their conventions.

    Raises:
        WeightMismatchError: keys are missing, unexpected or mis-shaped
            (all named), the family has no Keras counterpart, or the
            Keras model mixes BatchNorm epsilons.
        ValueError: ``conventions`` given together with ``padding``/``bn_eps``.

    Example:
        ::

            km = keras.applications.MobileNetV2(weights="imagenet")
            model, variables = zoo.create("mobilenet_v2", weights=from_keras(km, "mobilenet_v2"))
    """
    need = declared(keras_conventions(keras_model), conventions, options.get("padding"),
                    options.get("bn_eps"))
    source, skip = {}, set()
    for layer in keras_model.layers:
        for w, v in zip(layer.weights, layer.get_weights()):
            key = f"{layer.name}/{w.name.split('/')[-1]}"
            source[key] = v
            if type(layer).__name__ in _PREPROCESSING:
                skip.add(key)
    return from_keras_arrays(source, name, source_label=f"keras model {keras_model.name!r}",
                             skip=skip, conventions=need, **options)


def from_keras_arrays(source, name: str, *, source_label: str, skip=(),
                      conventions: Conventions = KERAS, **options) -> Weights:
    """Variables for zoo model ``name`` from Keras arrays keyed
    ``"<keras layer name>/<weight name>"`` (``kernel``, ``depthwise_kernel``,
    ``bias``, ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``),
    as ``Weights`` carrying ``conventions``; keys in ``skip`` are never
    reported as unexpected. Shared by ``from_keras`` (live models) and
    ``zoo.weights.keras_files`` (files).

    Args:
        source: ``"<layer>/<weight>"`` -> numpy array, in Keras layouts.
        name: the zoo model the weights are for.
        source_label: what the arrays came from, for messages.
        skip: source keys to leave unread without reporting them.
        conventions: the conventions to record on the result.
        **options: ``zoo.build``'s options for the target model.

    Returns:
        ``Weights`` carrying ``conventions``.

    Raises:
        WeightMismatchError: the family has no Keras counterpart, or keys
            are missing, unexpected or mis-shaped (all named).
    """
    from zoo.registry import build

    model = build(name, **options)
    if not hasattr(model, "keras_names"):
        raise WeightMismatchError(f"{source_label}: {name} has no Keras counterpart (no "
                                  "keras_names() for its family)")
    skip = frozenset(skip)
    variables = load_named(model, name, model.keras_names(), source,
                           source_label=source_label, sep="/",
                           leaf_names=_leaf_names, to_ours=_to_ours, ignore=skip.__contains__)
    return Weights(variables, conventions)
