"""Saliency-aware cropping to a target aspect ratio.

    top, left, height, width = zoo.crop.smart_crop(image, "16:9")
    picture = image[top:top + height, left:left + width]

The saliency map is a class activation map (CAM; Zhou et al., "Learning Deep
Features for Discriminative Localization", CVPR 2016): an ImageNet
classifier that ends in global average pooling and one linear layer scores
class ``c`` as ``sum_k w[k, c] * mean(f_k)``, so ``sum_k w[k, c] * f_k`` is
where the evidence for ``c`` sits in the last feature map ``f``. The map
here mixes the top classes by their probabilities.

The crop is the largest box of the aspect ratio (times ``scale``) placed
where it holds the most saliency: every position is scored at once from a
summed-area table, plus a mild rule-of-thirds term, and detected faces are
hard constraints (a face box is never cut when some position keeps it whole).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Optional, Sequence, Union

import numpy as np

Aspect = Union[str, float, int, Sequence[float]]

# Side of the square the classifier sees; the image is stretched to it, so
# every photo shares one compiled shape. At the classifiers' training
# resolution the 7x7 map kept the four annotated test subjects in more
# crops than 320 or 448 did (2 misses against 4-5 of 24, with mobilenet_v2).
SALIENCY_SIZE = 224
TOP_CLASSES = 5
# Weight of the rule-of-thirds term against the share of saliency a crop
# holds (0-1): it only decides between positions that hold nearly the same.
THIRDS_WEIGHT = 0.01
THIRDS_SIGMA = 0.15  # in crop sides
CAM_MODELS = ("mobilenet_v2", "efficientnet_lite0")
# BlazeFace's box spans brows to mouth; hair, forehead and chin lie outside
# it, so the protected region grows by this fraction of the box on each side.
FACE_MARGIN = 0.2


class AspectError(ValueError):
    """An aspect ratio that is not a positive finite number."""


def parse_aspect(aspect: Aspect) -> float:
    """Width / height of an aspect ratio given in any of the accepted forms.

    Args:
        aspect: ``"16:9"``, ``"16x9"``, ``"16/9"``, ``"1.777"``, a pair
            ``(16, 9)``, or a number such as ``1.777``.

    Returns:
        float: the ratio width / height, > 0.

    Raises:
        AspectError: (a ValueError) when ``aspect`` is none of these forms or
            holds a value that is not a positive finite number.
    """
    hint = "expected W:H with positive numbers (e.g. 16:9), a pair (16, 9) or a number > 0"
    if isinstance(aspect, str):
        parts = re.split(r"[:x/]", aspect.strip().lower())
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise AspectError(f"aspect {aspect!r}: {hint}") from None
        if len(values) not in (1, 2):
            raise AspectError(f"aspect {aspect!r}: {hint}")
    elif isinstance(aspect, (tuple, list)):
        if len(aspect) != 2:
            raise AspectError(f"aspect {aspect!r}: {hint}")
        try:
            values = [float(v) for v in aspect]
        except (TypeError, ValueError):
            raise AspectError(f"aspect {aspect!r}: {hint}") from None
    elif isinstance(aspect, (int, float, np.number)) and not isinstance(aspect, bool):
        values = [float(aspect)]
    else:
        raise AspectError(f"aspect {aspect!r}: {hint}")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise AspectError(f"aspect {aspect!r}: {hint}")
    return values[0] / values[1] if len(values) == 2 else values[0]


def crop_size(height: int, width: int, aspect: Aspect, scale: float = 1.0) -> tuple[int, int]:
    """Size of the largest box of ``aspect`` inside a ``height`` x ``width``
    image, times ``scale``.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        aspect: target width:height, any form ``parse_aspect`` takes.
        scale: fraction of that largest box's sides to keep, in (0, 1].

    Returns:
        tuple[int, int]: ``(h, w)`` in pixels, each at least 1 and at most the
        image's side.

    Raises:
        AspectError: when ``aspect`` is not a valid aspect ratio.
        ValueError: when ``scale`` is not a number in (0, 1].
    """
    r = parse_aspect(aspect)
    if not (isinstance(scale, (int, float)) and 0 < scale <= 1):
        raise ValueError(f"scale={scale!r}: expected a number in (0, 1]")
    if width / height > r:
        h, w = height, height * r
    else:
        h, w = width / r, width
    h, w = h * scale, w * scale
    return max(1, min(height, round(h))), max(1, min(width, round(w)))


def window_sums(values: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sum of ``values`` in every ``h`` x ``w`` window, from one summed-area table.

    Args:
        values: (H, W) array.
        h: window height, 1 <= h <= H.
        w: window width, 1 <= w <= W.

    Returns:
        np.ndarray: (H - h + 1, W - w + 1) float64 array whose ``[t, l]`` is
        ``values[t:t + h, l:l + w].sum()``.

    Raises:
        ValueError: when the window does not fit in ``values``.
    """
    a = np.asarray(values, np.float64)
    H, W = a.shape
    if not (1 <= h <= H and 1 <= w <= W):
        raise ValueError(f"window {h}x{w} does not fit in a {H}x{W} map")
    sat = np.zeros((H + 1, W + 1))
    sat[1:, 1:] = a.cumsum(0).cumsum(1)
    return sat[h:, w:] - sat[:-h, w:] - sat[h:, :-w] + sat[:-h, :-w]


@functools.lru_cache(maxsize=2)
def _cam_network(model: str):
    """A jitted image -> (probabilities, per-class CAM of the top classes)."""
    import jax
    import jax.numpy as jnp

    from zoo.registry import create, get_spec

    if model not in CAM_MODELS:
        raise ValueError(f"model {model!r}: saliency needs a classifier ending in average "
                         f"pooling and one linear layer; use {' or '.join(CAM_MODELS)}")
    spec = get_spec(model)
    net, variables = create(model, pretrained=True, include_top=False)
    kernel = jnp.asarray(variables["params"]["classifier"]["kernel"])  # (K, classes)
    bias = jnp.asarray(variables["params"]["classifier"]["bias"])
    mean = jnp.asarray(spec.mean, jnp.float32)
    std = jnp.asarray(spec.std, jnp.float32)

    @jax.jit
    def run(rgb):  # (S, S, 3) float 0-255
        f = net.apply(variables, ((rgb - mean) / std)[None])[0]  # (h, w, K)
        probs = jax.nn.softmax(jnp.mean(f, axis=(0, 1)) @ kernel + bias)
        p, top = jax.lax.top_k(probs, TOP_CLASSES)
        cams = jnp.einsum("hwk,kc->hwc", f, kernel[:, top])
        return p, cams

    return run


def saliency(image, model: str = "mobilenet_v2") -> np.ndarray:
    """Where an ImageNet classifier finds its top classes, as an (H, W) map.

    Each of the 5 most probable classes contributes its class activation
    map, ``sum_k w[k, c] * f_k`` (Zhou et al. 2016), weighted by its
    probability; negative evidence is clipped to 0 and the result upsampled
    bilinearly to the image.

    Args:
        image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 (0-255) or
            float (0-1) image, or a PIL image (see ``zoo.face.as_rgb``).
        model: the classifier, with pretrained weights: ``"mobilenet_v2"`` or
            ``"efficientnet_lite0"`` (``CAM_MODELS``).

    Returns:
        np.ndarray: (H, W) float32 map in [0, 1], peak 1 unless the map is
        all zero.
    """
    import jax.image
    from PIL import Image

    from zoo.face import as_rgb

    rgb = as_rgb(image)
    H, W = rgb.shape[:2]
    small = np.asarray(jax.image.resize(rgb, (SALIENCY_SIZE, SALIENCY_SIZE, 3), "linear",
                                        antialias=True))
    probs, cams = _cam_network(model)(small)
    cam = np.maximum(np.asarray(cams, np.float32) @ np.asarray(probs, np.float32), 0.0)
    full = np.asarray(Image.fromarray(cam.astype(np.float32), mode="F").resize(
        (W, H), Image.Resampling.BILINEAR), np.float32)
    full = np.maximum(full, 0.0)
    peak = float(full.max())
    return full / peak if peak > 0 else full


def _face_boxes(image, faces, H: int, W: int) -> list[tuple[float, float, float, float]]:
    """Face boxes (x0, y0, x1, y1) clipped to the image, best first."""
    if faces is True:
        from zoo.face import detect_and_mesh

        faces = detect_and_mesh(image)
    elif faces is False or faces is None:
        faces = []
    boxes = []
    for b in faces:
        x0, y0, x1, y1 = (float(v) for v in getattr(b, "box", b))
        if not isinstance(b, (tuple, list, np.ndarray)):  # a detection, not a given box
            mx, my = FACE_MARGIN * (x1 - x0), FACE_MARGIN * (y1 - y0)
            x0, y0, x1, y1 = x0 - mx, y0 - my, x1 + mx, y1 + my
        x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(W), x1), min(float(H), y1)
        if x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1, y1))
    return boxes


def _keeps(box, h: int, w: int, tops: np.ndarray, lefts: np.ndarray) -> np.ndarray:
    """Mask over positions: the crop at (top, left) holds ``box`` whole."""
    x0, y0, x1, y1 = box
    rows = (tops <= math.floor(y0)) & (tops + h >= math.ceil(y1))
    cols = (lefts <= math.floor(x0)) & (lefts + w >= math.ceil(x1))
    return rows[:, None] & cols[None, :]


def _thirds_prior(sal: np.ndarray, h: int, w: int, tops, lefts) -> np.ndarray:
    """Per position: how close the saliency's main blob sits to one of the
    crop's four rule-of-thirds points (1 on a point, falling off with a
    Gaussian of ``THIRDS_SIGMA`` crop sides). Zero when over half the map
    is near its peak: then there is no distinct subject to place."""
    blob = np.where(sal >= 0.5 * sal.max(), sal, 0.0)
    if sal.max() <= 0 or (blob > 0).mean() > 0.5:
        return np.zeros((len(tops), len(lefts)))
    ys, xs = np.indices(sal.shape)
    cy, cx = (blob * ys).sum() / blob.sum(), (blob * xs).sum() / blob.sum()
    best = np.zeros((len(tops), len(lefts)))
    for a in (1 / 3, 2 / 3):
        dy = ((cy - tops - a * h) / h) ** 2
        for b in (1 / 3, 2 / 3):
            dx = ((cx - lefts - b * w) / w) ** 2
            best = np.maximum(best, np.exp(-(dy[:, None] + dx[None, :]) / (2 * THIRDS_SIGMA ** 2)))
    return best


def place(saliency_map: np.ndarray, height: int, width: int,
          faces: Sequence[Sequence[float]] = ()) -> tuple[int, int]:
    """Position of the ``height`` x ``width`` window that holds the most saliency.

    The score of a position is the share of ``saliency_map`` inside the
    window plus ``THIRDS_WEIGHT`` times the rule-of-thirds term; ties go to
    the most central position. Face regions are first raised to the map's
    peak; then each face in turn, best first, restricts the positions to
    those keeping it whole, unless no position would remain (that face may
    then be cut).

    Args:
        saliency_map: (H, W) non-negative map.
        height: window height in pixels, at most H.
        width: window width in pixels, at most W.
        faces: face boxes ``(x0, y0, x1, y1)`` in pixels, best first.

    Returns:
        tuple[int, int]: ``(top, left)`` of the window in pixels.
    """
    sal = np.array(saliency_map, np.float64)
    H, W = sal.shape
    h, w = height, width
    for x0, y0, x1, y1 in faces:  # a face is salient even where the classifier looks elsewhere
        region = sal[int(y0):math.ceil(y1), int(x0):math.ceil(x1)]
        np.maximum(region, sal.max() if sal.max() > 0 else 1.0, out=region)
    tops, lefts = np.arange(H - h + 1), np.arange(W - w + 1)
    total = sal.sum()
    score = window_sums(sal, h, w) / total if total > 0 else np.zeros((len(tops), len(lefts)))
    if THIRDS_WEIGHT:
        score = score + THIRDS_WEIGHT * _thirds_prior(sal, h, w, tops, lefts)
    # Ties (a flat map) go to the most central position rather than the corner.
    score -= 1e-9 * (np.abs(tops - (H - h) / 2)[:, None] + np.abs(lefts - (W - w) / 2)[None, :])
    allowed = np.ones_like(score, bool)
    for box in faces:
        keep = allowed & _keeps(box, h, w, tops, lefts)
        if keep.any():
            allowed = keep
    score = np.where(allowed, score, -np.inf)
    top, left = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(top), int(left)


def smart_crop(image, aspect: Aspect, *, faces=True, model: str = "mobilenet_v2",
               scale: float = 1.0, saliency_map: Optional[np.ndarray] = None
               ) -> tuple[int, int, int, int]:
    """The crop box of ``image`` with aspect ratio ``aspect`` around its subject.

    The box is the largest of that aspect inside the image, times ``scale``,
    placed to hold the most of ``saliency(image, model)`` (or
    ``saliency_map``) with a mild pull of the salient region towards a
    rule-of-thirds point. Faces are never cut when a position keeps them all
    whole; otherwise as many as possible are kept, best first (see
    ``place``).

    Args:
        image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 (0-255) or
            float (0-1) image, or a PIL image.
        aspect: target width:height as ``"16:9"``, ``(16, 9)`` or ``1.777``
            (any form ``parse_aspect`` takes).
        faces: True detects faces with ``zoo.face.detect_and_mesh`` (each box
            grown by ``FACE_MARGIN`` per side for hair and chin); a sequence
            of ``Face`` objects (grown likewise) or of ``(x0, y0, x1, y1)``
            pixel boxes (used as given); False or None to ignore faces.
        model: classifier for the saliency map, ``"mobilenet_v2"`` or
            ``"efficientnet_lite0"``; unused when ``saliency_map`` is given.
        scale: fraction of the largest box's sides to keep, in (0, 1].
        saliency_map: an (H, W) finite non-negative map to use instead of
            computing ``saliency(image, model)``.

    Returns:
        tuple[int, int, int, int]: ``(top, left, height, width)`` in pixels;
        the crop is ``image[top:top + height, left:left + width]``.

    Raises:
        ValueError: when ``saliency_map`` does not have the image's (H, W)
            shape, or has negative or non-finite values; also for a bad
            ``aspect`` (``AspectError``), ``scale`` or image.

    Example:
        ::

            top, left, h, w = zoo.crop.smart_crop(image, "16:9")
            picture = image[top:top + h, left:left + w]
    """
    from zoo.face import as_rgb

    rgb = as_rgb(image)
    H, W = rgb.shape[:2]
    h, w = crop_size(H, W, aspect, scale)
    sal = saliency(rgb / 255.0, model) if saliency_map is None else saliency_map
    sal = np.asarray(sal)
    if sal.shape != (H, W):
        raise ValueError(f"saliency_map has shape {sal.shape}; expected the image's {(H, W)}")
    if not np.isfinite(sal).all() or sal.min() < 0:
        raise ValueError("saliency_map must be finite and non-negative")
    top, left = place(sal, h, w, _face_boxes(rgb / 255.0, faces, H, W))
    return int(top), int(left), int(h), int(w)
