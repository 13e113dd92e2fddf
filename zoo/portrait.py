"""Portrait mode: the person sharp, the background blurred as a lens blurs it.

    import skimage.data
    import zoo.portrait

    image = skimage.data.astronaut()                  # (512, 512, 3) uint8
    picture = zoo.portrait.portrait(image)            # (512, 512, 3) uint8
    flat = zoo.portrait.portrait(image, depth=False)  # one blur radius for all the background

The steps:

1. The person: ``zoo.segment.person`` (MediaPipe's selfie segmentation), a
   soft mask at the network's 256x256 resolution upsampled to the image's.
2. Its edges refined with a guided filter (He, Sun and Tang, "Guided Image
   Filtering", ECCV 2010 / TPAMI 2013) with the image as the guide: inside
   each window the output is an affine function of the guide's colour
   (their colour-guide form, a 3x3 covariance per window), so the mask's soft
   edge snaps to the colour edges of hair and shoulders instead of forming a
   halo as wide as the upsampled network output's blur.
3. The background blurred with a lens-like disc (``zoo.depth.disc_kernel``)
   in linear light by normalised convolution (Knutsson and Westin,
   "Normalized and Differential Convolution", CVPR 1993):
   ``blur(image * w) / blur(w)`` with ``w = (1 - mask)**2`` the background's
   weight, so the subject's pixels never spread into the blurred
   background and no bright or dark rim appears around it. The square
   weighs half-person pixels of the edge (hair over the background) at a
   quarter.
4. With ``depth=True`` the blur radius grows with the distance behind the
   subject: ``zoo.depth.estimate`` (midas_small_lite0, bundled weights,
   mirrored average) gives relative inverse depth, normalised to [0, 1]
   between its 1st and 99th percentiles as ``zoo.depth.bokeh`` does; the
   focus is its median under the mask; a background pixel's radius runs
   from ``MIN_RADIUS_SHARE`` of the largest radius (background at the
   subject's depth still looks out of focus, as the segmentation, not the
   depth, decides what the subject is) up to the largest radius for the
   pixel farthest from the focus. The radii are quantised to a few levels,
   each blurred once, each pixel interpolated between its two levels.
   Without depth every background pixel gets the largest radius.
5. Composite in linear light: ``mask * image + (1 - mask) * background``.

The largest radius is ``strength * max(H, W) / 40`` pixels, the scale of
``zoo.depth.bokeh``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from zoo.depth.inference import as_rgb
from zoo.depth.pictures import (RADIUS_FRACTION, disc_blur, linear_to_srgb, normalized,
                                 srgb_to_linear)

DEPTH_MODEL = "midas_small_lite0"
MIN_RADIUS_SHARE = 0.3  # of the largest radius, for background at the subject's depth
LEVELS = 6  # blur radii computed between the smallest and the largest
EPS = 1e-4  # guided filter regulariser for a guide in [0, 1] (He et al.'s epsilon)


def default_radius(height: int, width: int) -> int:
    """The guided filter's window radius for an image: 1/100 of the longer side,
    at least 2 pixels (about twice the blur of the 256-pixel network mask
    upsampled to a 512-pixel image).

    Args:
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        int: the radius in pixels.
    """
    return max(2, round(max(height, width) / 100))


# ---------------------------------------------------------- guided filter


def _box(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window around each pixel of ``a`` (H, W, ...),
    the window clipped at the border (He et al.'s ``boxfilter`` divided by
    the pixel count): two cumulative sums, so the cost does not grow with r."""
    out = a.astype(np.float64)
    for axis in (0, 1):
        n = out.shape[axis]
        c = np.cumsum(out, axis=axis)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        hi = np.minimum(np.arange(n) + r + 1, n)
        lo = np.maximum(np.arange(n) - r, 0)
        shape = [1] * out.ndim
        shape[axis] = n
        out = (np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)) / (hi - lo).reshape(shape)
    return out


def guided_filter(guide, src, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter: ``src`` smoothed by windows while following the
    edges of ``guide``.

    With a (H, W, 3) guide this is the colour form (a 3x3 covariance per
    window). A constant guide gives the box filter applied twice (mean of the
    per-window means). Windows are clipped at the border.

    Args:
        guide: (H, W) or (H, W, C) guide image.
        src: (H, W) map to filter.
        radius: window radius in pixels, an integer >= 1 (windows are
            ``2 * radius + 1`` wide).
        eps: regulariser in the guide's units squared, > 0: edges whose guide
            variance is well above it are kept, flatter patches are averaged.

    Returns:
        np.ndarray: (H, W) float64 filtered map.

    Raises:
        ValueError: for shapes other than these or mismatched ones, a
            ``radius`` that is not an integer >= 1, or ``eps`` <= 0.
    """
    g = np.asarray(guide, np.float64)
    p = np.asarray(src, np.float64)
    if g.ndim == 2:
        g = g[..., None]
    if g.ndim != 3 or p.shape != g.shape[:2]:
        raise ValueError(f"guided_filter: guide of shape {np.shape(guide)} and src of shape "
                         f"{np.shape(src)}; expected guide (H, W) or (H, W, C) and src (H, W)")
    if not (isinstance(radius, (int, np.integer)) and radius >= 1):
        raise ValueError(f"radius={radius!r}: expected an integer >= 1")
    if not eps > 0:
        raise ValueError(f"eps={eps!r}: expected a value > 0")
    c = g.shape[-1]
    mean_g = _box(g, radius)
    mean_p = _box(p, radius)
    cov_gp = _box(g * p[..., None], radius) - mean_g * mean_p[..., None]
    var_g = (_box(g[..., :, None] * g[..., None, :], radius)
             - mean_g[..., :, None] * mean_g[..., None, :])
    # per window, the ridge least-squares line p ~ a . g + b; a pixel lies in
    # many windows and takes the mean of their lines
    a = np.linalg.solve(var_g + eps * np.eye(c), cov_gp[..., None])[..., 0]
    b = mean_p - np.sum(a * mean_g, axis=-1)
    return np.sum(_box(a, radius) * g, axis=-1) + _box(b, radius)


def refine_mask(image, mask, radius: Optional[int] = None, eps: float = EPS) -> np.ndarray:
    """A soft person mask with its edges snapped to the image's by the colour
    guided filter (the image scaled to [0, 1] as the guide).

    Args:
        image: (H, W) grey, RGB or RGBA, uint8 or float pixels in 0-255, or a
            PIL image; at least 32 pixels a side.
        mask: (H, W) person probabilities in [0, 1].
        radius: window radius in pixels; default ``default_radius``.
        eps: regulariser: larger smooths more, smaller follows weaker colour
            edges.

    Returns:
        np.ndarray: (H, W) float32 mask in [0, 1].

    Raises:
        ValueError: for a bad image, a mask of another shape or with values
            outside [0, 1] or non-finite, or a bad ``radius`` or ``eps``.
    """
    rgb = as_rgb(image, "image")
    m = _checked_mask(mask, rgb.shape[:2])
    if radius is None:
        radius = default_radius(*m.shape)
    q = guided_filter(rgb.astype(np.float64) / 255.0, m, radius, eps)
    return np.clip(q, 0.0, 1.0).astype(np.float32)


def _checked_mask(mask, shape) -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ValueError(f"mask of shape {m.shape} does not match the image; expected "
                         f"{tuple(shape)}")
    m = m.astype(np.float64)
    if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise ValueError("mask: expected finite values in [0, 1] (a person probability per pixel)")
    return m


# ---------------------------------------------------------------- blurring


def background_blur(linear: np.ndarray, weight: np.ndarray, radius) -> np.ndarray:
    """Normalised convolution: ``blur(linear * weight) / blur(weight)`` with a disc.

    A map of radii is served by blurring at up to ``LEVELS`` radii between
    its smallest and largest and interpolating each pixel between its two
    levels. Where no weighted pixel is within reach the input is returned as
    is.

    Args:
        linear: (H, W, 3) image in linear light.
        weight: (H, W) weight of each pixel, >= 0.
        radius: disc radius in pixels: a number, or an (H, W) map of radii.

    Returns:
        np.ndarray: (H, W, 3) blurred image.
    """
    radii = np.broadcast_to(np.asarray(radius, np.float64), weight.shape)
    lo, hi = float(radii.min()), float(radii.max())
    levels = np.array([lo]) if hi - lo < 0.25 else np.linspace(lo, hi, LEVELS)
    stack = np.concatenate([linear * weight[..., None], weight[..., None]], -1).astype(np.float32)
    blurred = []
    for r in levels:
        b = disc_blur(stack, float(r))
        den = b[..., 3:]
        blurred.append(np.where(den > 1e-4, b[..., :3] / np.maximum(den, 1e-4), linear))
    if len(levels) == 1:
        return blurred[0]
    u = (radii - lo) / (hi - lo) * (len(levels) - 1)  # position among the levels
    k = np.minimum(np.floor(u).astype(int), len(levels) - 2)
    f = (u - k)[..., None]
    stacked = np.stack(blurred)
    rows, cols = np.indices(weight.shape)
    return stacked[k, rows, cols] * (1 - f) + stacked[k + 1, rows, cols] * f


def blur_radii(inverse_depth, mask: np.ndarray, largest: float) -> np.ndarray:
    """Per-pixel blur radius from relative inverse depth.

    The inverse depth is normalised as ``zoo.depth.bokeh`` does; the focus is
    its median where ``mask >= 0.5`` (or over the whole image if no pixel
    is). The radius is ``MIN_RADIUS_SHARE * largest`` at the focus, growing
    linearly to ``largest`` at the pixel farthest from it in either
    direction.

    Args:
        inverse_depth: (H, W) relative inverse depth (larger = nearer).
        mask: (H, W) person probabilities in [0, 1].
        largest: the largest radius in pixels.

    Returns:
        np.ndarray: (H, W) float64 radii in pixels.
    """
    t = normalized(inverse_depth)
    under = mask >= 0.5
    focus = float(np.median(t[under] if under.any() else t))
    diff = np.abs(t - focus)
    spread = float(diff.max())
    share = diff / spread if spread > 1e-12 else np.zeros_like(diff)
    return largest * (MIN_RADIUS_SHARE + (1 - MIN_RADIUS_SHARE) * share)


# ----------------------------------------------------------------- portrait


def portrait(image, *, depth: bool = True, strength: float = 1.0, refine: bool = True,
             mask=None, inverse_depth=None) -> np.ndarray:
    """Portrait mode: the person sharp, the background disc-blurred in linear
    light (see the module docstring for the method).

    Args:
        image: (H, W) grey, RGB or RGBA, uint8 or float pixels in 0-255, or a
            PIL image; at least 32 pixels a side.
        depth: grade the blur by the distance behind the subject with the
            bundled depth model (``DEPTH_MODEL``); False: one radius for the
            whole background.
        strength: the largest blur radius in units of 1/40 of the longer
            side, a finite number >= 0 (0: the image back unchanged).
        refine: snap the mask's edges to the image with the guided filter
            (``refine_mask``).
        mask: an (H, W) person mask in [0, 1] to use instead of
            ``zoo.segment.person``'s.
        inverse_depth: an (H, W) relative inverse depth map to use instead of
            ``zoo.depth.estimate``'s; implies depth grading.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.

    Raises:
        ValueError: for a negative or non-finite ``strength``, an
            ``inverse_depth`` of another shape or not finite, a bad mask (see
            ``refine_mask``) or a bad image.

    Example:
        ::

            picture = zoo.portrait.portrait(image)              # (H, W, 3) uint8
            flat = zoo.portrait.portrait(image, depth=False)    # one blur radius
    """
    rgb = as_rgb(image, "image")
    h, w = rgb.shape[:2]
    if not (isinstance(strength, (int, float, np.number)) and np.isfinite(strength)
            and strength >= 0):
        raise ValueError(f"strength={strength!r}: expected a finite number >= 0")
    if mask is None:
        import zoo.segment

        # segment takes floats as 0-1, depth's as_rgb gives floats as 0-255
        mask = zoo.segment.person(rgb if rgb.dtype == np.uint8 else rgb / 255.0)
    m = _checked_mask(mask, (h, w))
    largest = strength * RADIUS_FRACTION * max(h, w)
    if largest < 0.5:
        return np.rint(rgb).astype(np.uint8)
    if refine:
        m = refine_mask(rgb, m).astype(np.float64)
    if inverse_depth is not None or depth:
        if inverse_depth is None:
            import zoo.depth

            inverse_depth = zoo.depth.estimate(rgb, DEPTH_MODEL, flip=True)
        d = np.asarray(inverse_depth, np.float64)
        if d.shape != (h, w) or not np.isfinite(d).all():
            raise ValueError(f"inverse_depth: expected finite values of shape {(h, w)}, got "
                             f"shape {d.shape}")
        radius = blur_radii(d, m, largest)
    else:
        radius = largest
    linear = srgb_to_linear(rgb.astype(np.float64) / 255.0)
    back = background_blur(linear, (1.0 - m) ** 2, radius)
    out = m[..., None] * linear + (1.0 - m[..., None]) * back
    return np.rint(linear_to_srgb(out) * 255.0).astype(np.uint8)
