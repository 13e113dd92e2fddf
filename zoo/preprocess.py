"""Images in, model inputs out; logits in, labels out.

``preprocess`` follows the spec: resize so the shorter side is
``input_size / crop_fraction`` (keeping the aspect ratio, antialiased),
centre-crop ``input_size``, then ``(x - mean) / std`` in 0-255 units.

ImageNet labels: ``zoo/data/imagenet_labels.tsv``, one ``synset<TAB>names``
line per class in the standard 1000-class order, built from the synset list
and WordNet lemmas that timm ships (timm/data/_info/imagenet_synsets.txt and
imagenet_synset_to_lemma.txt, timm 1.0.31).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from zoo.registry import ModelSpec, get_spec

_METHODS = {"bilinear": "linear", "bicubic": "cubic", "nearest": "nearest"}


def _as_rgb(image, index: int) -> np.ndarray:
    a = np.asarray(image)
    where = f"image {index}" if index >= 0 else "image"
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ValueError(f"{where}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
                         f"got shape {a.shape}")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)  # grayscale
    elif a.shape[-1] == 4:
        a = a[..., :3]  # RGBA: alpha does not take part in classification
    elif a.shape[-1] != 3:
        raise ValueError(f"{where}: expected 1, 3 or 4 channels last, got shape {a.shape}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise ValueError(f"{where}: {a.shape[0]}x{a.shape[1]} pixels is too small to resize")
    if a.dtype == np.uint8:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32)  # taken to be 0-255, like the uint8 case
    raise TypeError(f"{where}: expected uint8 (0-255) or float pixels, got dtype {a.dtype}")


def preprocess(images: Union[np.ndarray, Sequence[np.ndarray]],
               spec: Union[ModelSpec, str]) -> jax.Array:
    """uint8 RGB images (one ``(H, W, C)``, a batch ``(N, H, W, C)``, or a
    list of differently sized ones) -> ``(N, S, S, 3)`` float32 normalised
    model inputs, ``S = spec.input_size``.

    Each image is resized (antialiased, with the spec's interpolation) so
    its shorter side is ``S / spec.crop_fraction``, centre-cropped to S x S,
    clipped to [0, 255] and normalised as ``(x - spec.mean) / spec.std``.

    Args:
        images: uint8 RGB images with values 0-255: one (H, W, C), a batch
            (N, H, W, C), or a sequence of (H, W, C) arrays of any sizes.
            C is 3, 1 (grayscale, repeated) or 4 (alpha dropped); (H, W)
            is grayscale. Float pixels are taken to be 0-255 as well.
        spec: the model's ``ModelSpec``, or its registry name.

    Returns:
        ``(N, S, S, 3)`` float32 ``jax.Array``, N = 1 for a single image.

    Raises:
        ValueError: no images, a shape that is not an image, or an image
            smaller than 2 x 2.
        TypeError: pixels that are neither uint8 nor float.
        KeyError: ``spec`` names no registered model.

    Example:
        ::

            x = zoo.preprocess(uint8_images, "efficientnet_b0")  # (N, 224, 224, 3)
            logits = model.apply(variables, x)
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    elif isinstance(images, np.ndarray) or hasattr(images, "shape"):
        images = [images]
    if len(images) == 0:
        raise ValueError("preprocess: no images given")
    many = len(images) > 1
    out = [_one(_as_rgb(im, i if many else -1), spec) for i, im in enumerate(images)]
    return jnp.stack(out)


def _one(a: np.ndarray, spec: ModelSpec) -> jax.Array:
    size = spec.input_size
    short = int(round(size / spec.crop_fraction))
    h, w = a.shape[:2]
    scale = short / min(h, w)
    rh, rw = max(size, int(round(h * scale))), max(size, int(round(w * scale)))
    x = _resize(jnp.asarray(a), rh, rw, _METHODS[spec.interpolation])
    top, left = (rh - size) // 2, (rw - size) // 2
    x = x[top:top + size, left:left + size]
    mean = jnp.asarray(spec.mean, jnp.float32)
    std = jnp.asarray(spec.std, jnp.float32)
    return (jnp.clip(x, 0.0, 255.0) - mean) / std


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _resize(x, h, w, method):
    return jax.image.resize(x, (h, w, x.shape[-1]), method=method, antialias=True)


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names (first WordNet lemma of each synset).

    Returns:
        1000 names in the standard class order, e.g. ``"tench"`` at index 0.
    """
    text = resources.files("zoo").joinpath("data/imagenet_labels.tsv").read_text()
    return tuple(line.split("\t", 1)[1].split(",")[0].strip() for line in text.splitlines())


def decode_predictions(logits, top: int = 5,
                       labels: Sequence[str] | None = None) -> list[list[tuple[int, str, float]]]:
    """Per image, the ``top`` classes as ``(index, label, probability)``;
    ``labels`` are the class names (ImageNet's by default; a fine-tuned
    run's are in its ``run.json``).

    Args:
        logits: (N, C) or (C,) scores; the softmax over C gives the
            probabilities.
        top: how many classes to keep per image, most probable first.
        labels: the C class names; None means the 1000 ImageNet classes.

    Returns:
        One list per image of ``top`` ``(class index, label, probability)``
        tuples, probabilities in [0, 1] and descending.

    Raises:
        ValueError: ``logits`` are not (N, C) or (C,) with C the number of
            labels.

    Example:
        ::

            for index, label, p in zoo.decode_predictions(logits, top=5)[0]:
                print(f"{p:.1%} {label}")
    """
    logits = np.asarray(logits, np.float32)
    if logits.ndim == 1:
        logits = logits[None]
    what = "ImageNet" if labels is None else "class"
    labels = imagenet_labels() if labels is None else list(labels)
    if logits.ndim != 2 or logits.shape[1] != len(labels):
        raise ValueError(f"decode_predictions: expected (N, {len(labels)}) {what} logits, "
                         f"got shape {logits.shape}")
    probs = np.asarray(jax.nn.softmax(logits, axis=-1))
    order = np.argsort(-probs, axis=-1)[:, :top]
    return [[(int(i), labels[i], float(p[i])) for i in row] for row, p in zip(order, probs)]
