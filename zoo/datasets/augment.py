"""Per-example training transforms, numpy and Pillow only, run inside grain's
loader workers.

``TrainTransform`` turns a record ``{"image": uint8 (H, W, C), "label"}``
into ``{"image": float32 (S, S, 3) normalised, "label": int32}``. With
``augment`` it takes a random resized crop (area fraction in
``[min_scale, 1]``, aspect ratio in ``[3/4, 4/3]`` on a log scale, as in
Inception / torchvision, but with sub-pixel crop boxes so tiny images such
as 8x8 digits still get a continuum of crops) and a horizontal flip with
probability 1/2 if ``flip``; without ``augment`` it resizes the whole image
to S and draws nothing (``flip`` is part of augmentation).

Resizing is Pillow's antialiased filter on float32 planes (mode "F"):
bilinear (or bicubic) with the filter widened when shrinking. That is the
same arithmetic as ``jax.image.resize(..., antialias=True)`` used by
``zoo.preprocess`` (agreement to about 1e-3 in 0-255 units), without
rounding to uint8 in between, then clipped to [0, 255] like ``preprocess``.

``DepthTransform`` does the same to an image and its depth map together:
one square crop box (no aspect change: a stretched image would show other
perspective than its depth says) and one mirroring for both. The image is
resized as above; the depth with nearest neighbour, so every output depth
is a depth of the scene: interpolating across an occlusion edge would
invent depths between the near and the far surface, and would mix invalid
pixels (no ground truth) into valid ones.

With ``photometric`` > 0, ``DepthTransform`` also changes how the picture
looks but not what it shows (``photometric_jitter``): brightness, contrast,
saturation and gamma, a slight defocus blur and sensor noise, each drawn per
example. A network trained on rendered pictures otherwise learns their
exact look (clean shading, sharp edges, no noise) along with their
geometry, and that look is what differs in photographs; randomising it is
the standard remedy (domain randomisation, Tobin et al. 2017, arXiv
1703.06907).

All randomness comes from the ``np.random.Generator`` grain hands to
``random_map``, which grain seeds from the pipeline seed and the element's
position in the stream, so results do not depend on which worker runs them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image

_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
ASPECT = (3 / 4, 4 / 3)


def crop_box(height: int, width: int, rng: np.random.Generator, min_scale: float,
             aspect: tuple[float, float] = ASPECT) -> tuple[float, float, float, float]:
    """A random crop box for a random resized crop (Inception style, sub-pixel).

    The area is drawn uniformly in ``[min_scale, 1]`` of the image's and the
    aspect ratio log-uniformly in ``aspect``; a draw that does not fit is
    retried, and after 10 misses the box is the largest centred one of the
    allowed aspect nearest the image's.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        rng: the random generator to draw from.
        min_scale: smallest area fraction, in (0, 1].
        aspect: (lowest, highest) width / height ratio.

    Returns:
        tuple[float, float, float, float]: ``(left, top, right, bottom)`` in
        pixels (not rounded), inside the image.
    """
    area = height * width
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    for _ in range(10):
        target = area * rng.uniform(min_scale, 1.0)
        ratio = math.exp(rng.uniform(log_lo, log_hi))
        w, h = math.sqrt(target * ratio), math.sqrt(target / ratio)
        if w <= width and h <= height:
            left, top = rng.uniform(0, width - w), rng.uniform(0, height - h)
            return left, top, left + w, top + h
    ratio = min(max(width / height, aspect[0]), aspect[1])
    w, h = min(width, height * ratio), min(height, width / ratio)
    left, top = (width - w) / 2, (height - h) / 2
    return left, top, left + w, top + h


def square_box(height: int, width: int, rng: np.random.Generator,
               min_scale: float) -> tuple[float, float, float, float]:
    """A random square crop box, anywhere in the image.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        rng: the random generator to draw from.
        min_scale: smallest area as a fraction of the largest square that
            fits, in (0, 1]; the area is drawn uniformly in ``[min_scale, 1]``.

    Returns:
        tuple[float, float, float, float]: ``(left, top, right, bottom)`` in
        pixels (not rounded), inside the image.
    """
    side = min(height, width) * math.sqrt(rng.uniform(min_scale, 1.0))
    left, top = rng.uniform(0, width - side), rng.uniform(0, height - side)
    return left, top, left + side, top + side


def centre_square(height: int, width: int) -> tuple[float, float, float, float]:
    """The largest square box centred in the image.

    Args:
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        tuple[float, float, float, float]: ``(left, top, right, bottom)`` in
        pixels, of side ``min(height, width)``.
    """
    side = min(height, width)
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def resize(image: np.ndarray, size: int, box=None, interpolation: str = "bilinear") -> list:
    """Resize a region of an image to a square, channel by channel, antialiased.

    Args:
        image: (H, W, C) image, uint8 in 0-255 (converted to float32 per
            channel).
        size: side of the output in pixels.
        box: ``(left, top, right, bottom)`` region in pixels, fractional
            allowed (default: the whole image).
        interpolation: ``"bilinear"`` or ``"bicubic"``.

    Returns:
        list: C float32 (size, size) planes in 0-255 units, not yet clipped
        (bicubic overshoots).
    """
    filt = _FILTERS[interpolation]
    return [np.asarray(Image.fromarray(image[..., c].astype(np.float32))
                       .resize((size, size), filt, box=box))
            for c in range(image.shape[-1])]


@dataclasses.dataclass(frozen=True)
class TrainTransform:
    """The grain ``random_map`` callable of ``train_batches`` (picklable).

    Called with a record ``{"image": uint8 (H, W) or (H, W, C), "label"}``
    and an ``np.random.Generator``, it returns ``{"image": float32 (S, S, 3)
    normalised, "label": int32}`` (see the module docstring).

    Attributes:
        image_size: output side S in pixels.
        mean: per-channel mean subtracted, in 0-255 units.
        std: per-channel standard deviation divided by, in 0-255 units.
        augment: draw a random resized crop (and flip); False resizes the
            whole image and draws nothing.
        flip: with ``augment``, mirror left-right with probability 1/2.
        min_scale: smallest crop area fraction, in (0, 1].
        interpolation: ``"bilinear"`` or ``"bicubic"``.
    """
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    augment: bool = True
    flip: bool = True
    min_scale: float = 0.25
    interpolation: str = "bilinear"

    def __call__(self, record: dict, rng: np.random.Generator) -> dict:
        image = np.asarray(record["image"])
        if image.ndim == 2:
            image = image[..., None]
        box, mirror = None, False
        if self.augment:
            box = crop_box(image.shape[0], image.shape[1], rng, self.min_scale)
            mirror = self.flip and rng.random() < 0.5
        planes = resize(image, self.image_size, box, self.interpolation)
        x = normalise(planes, self.mean, self.std, mirror)
        return {"image": x, "label": np.int32(record["label"])}


def normalise(planes: list, mean, std, mirror: bool = False) -> np.ndarray:
    """Clip, normalise and stack image planes into one RGB image.

    Args:
        planes: C float32 (S, S) planes in 0-255 units, C = 1 (grey,
            repeated to RGB as ``zoo.preprocess`` does) or 3.
        mean: three per-channel means, in 0-255 units.
        std: three per-channel standard deviations, in 0-255 units.
        mirror: flip left-right.

    Returns:
        np.ndarray: (S, S, 3) float32 ``(clip(x, 0, 255) - mean) / std``.
    """
    if len(planes) == 1:
        planes = planes * 3
    x = np.empty(planes[0].shape + (3,), np.float32)
    for c in range(3):
        out = x[..., c]
        np.clip(planes[c][:, ::-1] if mirror else planes[c], 0.0, 255.0, out=out)
        out -= np.float32(mean[c])
        out /= np.float32(std[c])
    return x


def photometric_jitter(planes: list, rng: np.random.Generator, strength: float) -> list:
    """Three float32 (S, S) RGB planes in 0-255 -> new planes showing the
    same scene differently lit and photographed. At ``strength`` 1:
    brightness and contrast x U(0.6, 1.4), saturation x U(0.4, 1.6), gamma
    U(0.7, 1.4), a Gaussian blur of sigma U(0.3, 1.2) pixels for one
    example in three, and Gaussian noise of sigma U(0, 8) for one in two;
    ``strength`` scales every range around "no change". Grey planes (one)
    skip the saturation step.

    Args:
        planes: three float32 (S, S) RGB planes, or one grey plane, in
            0-255 units.
        rng: the random generator to draw from.
        strength: in [0, 1]; 0 changes nothing but the clipping.

    Returns:
        list: as many float32 (S, S) planes, clipped to [0, 255].
    """
    from scipy.ndimage import gaussian_filter

    s = float(strength)
    x = np.stack(planes, -1).astype(np.float32) / np.float32(255)
    np.clip(x, 0, 1, out=x)
    x **= np.float32(np.exp(rng.uniform(np.log(1 - 0.3 * s), np.log(1 + 0.4 * s))))
    x *= np.float32(rng.uniform(1 - 0.4 * s, 1 + 0.4 * s))
    mean = x.mean()
    x = (x - mean) * np.float32(rng.uniform(1 - 0.4 * s, 1 + 0.4 * s)) + mean
    if x.shape[-1] == 3:
        grey = x @ np.asarray([0.299, 0.587, 0.114], np.float32)
        x = grey[..., None] + (x - grey[..., None]) * np.float32(rng.uniform(1 - 0.6 * s,
                                                                             1 + 0.6 * s))
    if rng.random() < s / 3:
        sigma = rng.uniform(0.3, 0.3 + 0.9 * s)
        x = gaussian_filter(x, sigma=(sigma, sigma, 0), mode="nearest")
    if rng.random() < s / 2:
        x = x + rng.normal(0, rng.uniform(0, 8 * s) / 255, x.shape).astype(np.float32)
    x = np.clip(x * np.float32(255), 0, 255)
    return [np.ascontiguousarray(x[..., c]) for c in range(x.shape[-1])]


def valid_depth(depth: np.ndarray) -> np.ndarray:
    """Pixels with ground truth: finite and positive (datasets mark missing
    depth with 0, NaN or inf).

    Args:
        depth: depth map of any shape.

    Returns:
        np.ndarray: bool array of ``depth``'s shape.
    """
    return np.isfinite(depth) & (depth > 0)


@dataclasses.dataclass(frozen=True)
class DepthTransform(TrainTransform):
    """The grain ``random_map`` callable of ``depth_train_batches`` (the same
    settings as ``TrainTransform``): record ``{"image": uint8 (H, W, C),
    "depth": float (H, W)}`` -> ``{"image": float32 (S, S, 3) normalised,
    "depth": float32 (S, S) (0 where invalid), "valid": bool (S, S)}``.
    Without ``augment``: the centre square, resized. The depth map is
    resized with nearest neighbour (see the module docstring).

    Attributes:
        image_size: output side S in pixels.
        mean: per-channel mean subtracted, in 0-255 units.
        std: per-channel standard deviation divided by, in 0-255 units.
        augment: draw a random square crop (and flip); False takes the
            centre square and draws nothing.
        flip: with ``augment``, mirror image and depth together with
            probability 1/2.
        min_scale: smallest crop area, as a fraction of the largest square,
            in (0, 1].
        interpolation: ``"bilinear"`` or ``"bicubic"``, for the image.
        photometric: the strength of ``photometric_jitter`` in [0, 1]
            (0: off), with ``augment`` only.
    """
    photometric: float = 0.0

    def __call__(self, record: dict, rng: np.random.Generator) -> dict:
        image = np.asarray(record["image"])
        if image.ndim == 2:
            image = image[..., None]
        depth = np.asarray(record["depth"], np.float32)
        if depth.shape != image.shape[:2]:
            raise ValueError(f"depth {depth.shape} and image {image.shape[:2]} differ in size")
        h, w = depth.shape
        box, mirror = centre_square(h, w), False
        if self.augment:
            box = square_box(h, w, rng, self.min_scale)
            mirror = self.flip and rng.random() < 0.5
        planes = resize(image, self.image_size, box, self.interpolation)
        if self.augment and self.photometric > 0:
            planes = photometric_jitter(planes, rng, self.photometric)
        x = normalise(planes, self.mean, self.std, mirror)
        known = np.where(valid_depth(depth), depth, np.float32(0))
        d = np.asarray(Image.fromarray(known).resize(
            (self.image_size, self.image_size), Image.NEAREST, box=box))
        if mirror:
            d = d[:, ::-1]
        d = np.ascontiguousarray(d, np.float32)
        return {"image": x, "depth": d, "valid": d > 0}
