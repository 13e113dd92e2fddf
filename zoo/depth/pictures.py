"""Pictures of depth: ``colorize`` (a colour-mapped depth map) and ``bokeh``
(portrait mode: the subject sharp, the rest blurred as a lens blurs it).

``bokeh`` renders depth of field by layers, the gather form of Kraus and
Strengert's "Depth-of-Field Rendering by Pyramidal Image Processing"
(Eurographics 2007) with disc kernels instead of a pyramid:

* A thin lens blurs a point at inverse depth ``d`` into a disc whose radius
  is proportional to ``|d - d_focus|`` (the circle of confusion is linear in
  inverse depth, which is what the networks predict). The inverse depth is
  first normalised to [0, 1] between its 1st and 99th percentiles, and
  ``strength`` scales the largest radius: ``strength * max(H, W) / 40``
  pixels for the whole range.
* That signed radius is quantised to a few layers (steps of at most 1/8 of
  the largest radius), each pixel shared between its two nearest layers
  (soft masks, so no seams between layers).
* Far to near, each layer's pixels (colour premultiplied by the mask) and
  its mask are convolved with a disc of the layer's radius and composited
  over what lies behind (``out = out * (1 - mask) + colour``); the result is
  divided by the accumulated coverage. A layer only spreads its own pixels:
  the sharp subject never bleeds into the blurred background, while a
  blurred foreground does spread over the subject, as it does through a
  lens. Coverage lost at the image border or behind an occluder is
  renormalised instead of darkening the picture.
* Blurring happens in linear light (sRGB decoded), so bright highlights
  become the bright discs a lens makes.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from zoo.depth.inference import as_rgb

# matplotlib's "inferno" (matplotlib._cm_listed._inferno_data), entries 0, 8, ..., 248 and
# 255; linear interpolation between them stays within 1.5/255 of the full table.
_INFERNO = np.array([
    [0.001462, 0.000466, 0.013866], [0.013995, 0.011225, 0.071862],
    [0.042253, 0.028139, 0.141141], [0.081962, 0.043328, 0.215289],
    [0.129285, 0.047293, 0.290788], [0.183429, 0.040329, 0.354971],
    [0.238273, 0.036621, 0.396353], [0.290763, 0.045644, 0.418637],
    [0.341500, 0.062325, 0.429425], [0.391453, 0.080927, 0.433109],
    [0.441207, 0.099338, 0.431594], [0.491022, 0.117179, 0.425552],
    [0.540920, 0.134729, 0.415123], [0.590734, 0.152563, 0.400290],
    [0.640135, 0.171438, 0.381065], [0.688653, 0.192239, 0.357603],
    [0.735683, 0.215906, 0.330245], [0.780517, 0.243327, 0.299523],
    [0.822386, 0.275197, 0.266085], [0.860533, 0.311892, 0.230606],
    [0.894305, 0.353399, 0.193584], [0.923215, 0.399359, 0.155193],
    [0.946965, 0.449191, 0.115272], [0.965397, 0.502249, 0.073859],
    [0.978422, 0.557937, 0.034931], [0.985952, 0.615750, 0.025592],
    [0.987874, 0.675267, 0.065257], [0.984075, 0.736087, 0.129527],
    [0.974638, 0.797692, 0.206332], [0.960626, 0.859069, 0.298010],
    [0.947594, 0.917399, 0.410665], [0.954529, 0.965896, 0.540361],
    [0.988362, 0.998364, 0.644924]])
_INFERNO_AT = np.append(np.arange(0, 256, 8), 255) / 255.0

RADIUS_FRACTION = 1 / 40  # the largest blur radius at strength 1, as a fraction of max(H, W)
MAX_LAYER_STEP = 1 / 8  # layer spacing, as a fraction of the largest radius


def colorize(inverse_depth, *, lo: Optional[float] = None, hi: Optional[float] = None
             ) -> np.ndarray:
    """A depth map as a picture with the "inferno" colour map: near (large
    values) bright yellow, far dark purple.

    Args:
        inverse_depth: (H, W) inverse depth (or disparity).
        lo: value drawn darkest; default the map's finite minimum.
        hi: value drawn brightest; default the map's finite maximum.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB; non-finite pixels (missing ground
        truth) are black.

    Raises:
        ValueError: when ``inverse_depth`` is not 2-D.

    Example:
        ::

            png = zoo.depth.colorize(zoo.depth.estimate(image))
    """
    d = np.asarray(inverse_depth, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"colorize: expected an (H, W) depth map, got shape {d.shape}")
    finite = np.isfinite(d)
    if not finite.any():
        return np.zeros(d.shape + (3,), np.uint8)
    lo = float(d[finite].min()) if lo is None else float(lo)
    hi = float(d[finite].max()) if hi is None else float(hi)
    t = np.clip((np.where(finite, d, lo) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    rgb = np.stack([np.interp(t, _INFERNO_AT, _INFERNO[:, k]) for k in range(3)], -1)
    rgb = np.rint(rgb * 255.0).astype(np.uint8)
    rgb[~finite] = 0
    return rgb


def disc_kernel(radius: float) -> np.ndarray:
    """A lens's blur: a flat disc of ``radius`` pixels with an antialiased rim.

    Each weight is the pixel's coverage ``clip(radius + 0.5 - distance, 0,
    1)``, normalised to sum to 1.

    Args:
        radius: disc radius in pixels.

    Returns:
        np.ndarray: (k, k) float32 kernel of odd side ``k = 2 * ceil(radius +
        0.5) + 1``; ``[[1.]]`` for a radius below half a pixel.
    """
    if radius < 0.5:
        return np.ones((1, 1), np.float32)
    half = int(np.ceil(radius + 0.5))
    y, x = np.mgrid[-half:half + 1, -half:half + 1]
    k = np.clip(radius + 0.5 - np.hypot(x, y), 0.0, 1.0)
    return (k / k.sum()).astype(np.float32)


def disc_blur(a: np.ndarray, radius: float) -> np.ndarray:
    """A lens-like blur: ``a`` convolved with ``disc_kernel(radius)``.

    Args:
        a: (H, W, C) float values (linear light, for a photographic blur);
            outside the image counts as zero, so blur a mask beside the
            values and divide (normalised convolution) to avoid dark edges.
        radius: the disc's radius in pixels; under 0.5 returns ``a`` as is.

    Returns:
        The blurred (H, W, C) array.
    """
    if radius < 0.5:
        return a
    from scipy.signal import fftconvolve

    return fftconvolve(a, disc_kernel(radius)[:, :, None], mode="same", axes=(0, 1))


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values to linear light (IEC 61966-2-1's transfer function).

    Args:
        srgb: values in [0, 1], any shape.

    Returns:
        Linear-light values in [0, 1], same shape.
    """
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light back to sRGB encoding (the inverse of ``srgb_to_linear``).

    Args:
        linear: linear-light values, any shape; clipped to [0, 1] first.

    Returns:
        sRGB-encoded values in [0, 1], same shape.
    """
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92,
                    1.055 * linear ** (1 / 2.4) - 0.055)


def normalized(inverse_depth: np.ndarray) -> np.ndarray:
    """Inverse depth mapped to [0, 1] between its 1st and 99th percentiles.

    Args:
        inverse_depth: (H, W) finite inverse depth.

    Returns:
        np.ndarray: (H, W) float64 in [0, 1], 0 far and 1 near (clipped
        outside the percentiles); all 0 for a flat map.
    """
    d = np.asarray(inverse_depth, np.float64)
    lo, hi = np.percentile(d, [1, 99])
    if hi - lo <= 1e-12 * max(abs(hi), abs(lo), 1e-30):
        return np.zeros_like(d)
    return np.clip((d - lo) / (hi - lo), 0.0, 1.0)


def focus_depth(t: np.ndarray, focus: Optional[tuple[float, float]] = None) -> float:
    """The depth in focus: median of ``t`` in a small window around ``focus``.

    The window reaches 2 % of the shorter side (at least 2 pixels) each way,
    so it is at least 5x5 pixels.

    Args:
        t: (H, W) normalised inverse depth (``normalized``).
        focus: ``(x, y)`` in pixels; default the image centre.

    Returns:
        float: the median.

    Raises:
        ValueError: when ``focus`` lies outside the image.
    """
    h, w = t.shape
    if focus is None:
        x, y = (w - 1) / 2, (h - 1) / 2
    else:
        x, y = (float(v) for v in focus)
        if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
            raise ValueError(f"focus ({x:g}, {y:g}) is outside the {w}x{h} image (x in 0-{w - 1}, "
                             f"y in 0-{h - 1})")
    r = max(2, round(0.02 * min(h, w)))
    cx, cy = int(round(x)), int(round(y))
    return float(np.median(t[max(0, cy - r):cy + r + 1, max(0, cx - r):cx + r + 1]))


def bokeh(image, inverse_depth, *, focus: Optional[tuple[float, float]] = None,
          strength: float = 1.0) -> np.ndarray:
    """Portrait mode: everything off the focus depth blurred by a lens-like disc
    whose radius grows with the inverse-depth difference (see the module
    docstring for the method).

    Args:
        image: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, uint8 or float
            pixels in 0-255, or a PIL image.
        inverse_depth: (H, W) finite inverse depth of ``image``, e.g. from
            ``estimate``.
        focus: ``(x, y)`` in pixels of the subject to keep sharp, default the
            image centre; the focus depth is the median inverse depth in a
            small window there.
        strength: the largest blur radius, in units of 1/40 of the image's
            longer side; 0 for no blur.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.

    Raises:
        ValueError: when ``inverse_depth`` does not have the image's (H, W)
            shape or is not finite, ``strength`` is negative, ``focus`` lies
            outside the image, or the image is bad (see ``as_rgb``).

    Example:
        ::

            d = zoo.depth.estimate(image)
            picture = zoo.depth.bokeh(image, d, focus=(256, 200))
    """
    rgb = as_rgb(image, "image")
    h, w = rgb.shape[:2]
    d = np.asarray(inverse_depth)
    if d.shape != (h, w):
        raise ValueError(f"bokeh: inverse depth of shape {d.shape} does not match the {w}x{h} "
                         f"image; expected ({h}, {w})")
    if not np.isfinite(d).all():
        raise ValueError("bokeh: inverse depth has NaN or infinite values")
    if not strength >= 0:
        raise ValueError(f"strength={strength}: expected a value >= 0")
    t = normalized(d)
    coc = strength * RADIUS_FRACTION * max(h, w) * (t - focus_depth(t, focus))
    largest = float(np.abs(coc).max())
    if largest < 0.5:
        return np.asarray(np.rint(rgb), np.uint8)
    step = max(0.5, MAX_LAYER_STEP * largest)
    u = coc / step  # in layer units; 0 is the focus layer
    first, last = int(np.floor(u.min())), int(np.ceil(u.max()))
    base = np.floor(u)
    frac = (u - base).astype(np.float32)
    linear = srgb_to_linear(rgb.astype(np.float32) / 255.0).astype(np.float32)
    out = np.zeros((h, w, 3), np.float32)
    cover = np.zeros((h, w, 1), np.float32)
    for j in range(first, last + 1):  # far (negative) to near (positive)
        mask = np.where(base == j, 1 - frac, np.where(base == j - 1, frac, 0.0))
        mask = mask.astype(np.float32)[..., None]
        if not mask.any():
            continue
        layer = disc_blur(np.concatenate([linear * mask, mask], axis=-1), abs(j) * step)
        alpha = np.clip(layer[..., 3:], 0.0, 1.0)
        out = out * (1 - alpha) + np.clip(layer[..., :3], 0.0, None)
        cover = cover * (1 - alpha) + alpha
    out = out / np.maximum(cover, 1e-6)
    return np.rint(linear_to_srgb(out) * 255.0).astype(np.uint8)
