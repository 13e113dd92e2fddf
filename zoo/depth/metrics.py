"""Relative depth metrics after least-squares alignment in disparity space.

A relative depth model (MiDaS) predicts inverse depth up to an unknown
scale and shift. Evaluation, as in Ranftl et al. (TPAMI 2020,
arXiv:1907.01341, Sec. 5-6), first aligns the prediction to the ground-truth
disparity: the scale s and shift t minimising sum (s * p + t - d*)^2 over
the valid pixels (``align``). Then, in depth (``to_depth`` of each
disparity; ``1 / d`` by default):

* ``abs_rel``: mean of |d - d*| / d* over the valid pixels (a fraction);
* ``bad_1_25``: the percentage (0-100) of valid pixels with
  max(d / d*, d* / d) > 1.25: the BAD pixels, i.e. what MiDaS's tables call
  "delta > 1.25" (lower is better), the complement of the accuracy
  "delta < 1.25" that other papers report.

Valid pixels are those whose ground truth is finite and > 0 (datasets mark
missing depth with 0, NaN or inf: Middlebury's disparity maps hold +inf),
and inside ``valid`` when given.

Non-positive aligned disparities. The fit can send some predicted
disparities to 0 or below, which have no depth (or a negative one). Every
aligned disparity below ``FLOOR`` (0.1) times the smallest valid
ground-truth disparity of the image is raised to that value, and
``clipped_pixels`` counts how many were. With ``to_depth = 1 / d`` this
caps predicted depth at 10 times the farthest true depth: such pixels
still count as badly wrong (abs_rel about 9 or more, always in
``bad_1_25``) but stay finite. MiDaS's own evaluation caps predicted depth
the same way, at a fixed depth per dataset (10 m NYU, 80 m KITTI).

``evaluate`` takes one (H, W) prediction and ground truth as numpy arrays
(float64 arithmetic); ``evaluate_batch`` is the same arithmetic in
jax.numpy over (N, H, W) batches, jit-able, for a training loop's
evaluation step. Both share one implementation (``_metrics``).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

FLOOR = 0.1  # aligned disparities are kept >= FLOOR * the smallest valid true disparity
RATIO = 1.25


def _reciprocal(d):
    return 1.0 / d


def _align(xp, pred, target, weight):
    """Least-squares scale and shift over the last axis, pixels weighted by
    ``weight`` (0 or 1); centred sums for float32 accuracy. A prediction
    constant on the valid pixels gets scale 0 and the mean target as shift."""
    n = xp.maximum(weight.sum(-1), 1)
    p_mean = (weight * pred).sum(-1) / n
    t_mean = (weight * target).sum(-1) / n
    pc = weight * (pred - p_mean[..., None])
    var = (pc * pc).sum(-1)
    cov = (pc * (target - t_mean[..., None])).sum(-1)
    scale = xp.where(var > 0, cov / xp.where(var > 0, var, 1), 0)
    return scale, t_mean - scale * p_mean


def _metrics(xp, pred, target, valid, to_depth) -> dict:
    """The metrics of each row of (N, P) arrays; ``valid`` bool (N, P).
    Rows without valid pixels get zeros."""
    weight = valid.astype(pred.dtype)
    target = xp.where(valid, target, 1)  # keeps invalid pixels out of the arithmetic
    pred = xp.where(valid, pred, 0)
    scale, shift = _align(xp, pred, target, weight)
    aligned = scale[:, None] * pred + shift[:, None]
    smallest = xp.min(xp.where(valid, target, xp.inf), axis=-1)
    floor = xp.where(xp.isfinite(smallest), FLOOR * smallest, 1)[:, None]
    clipped = valid & (aligned < floor)
    aligned = xp.where(valid, xp.maximum(aligned, floor), 1)
    depth, true_depth = to_depth(aligned), to_depth(target)
    rel = xp.abs(depth - true_depth) / true_depth
    ratio = xp.maximum(depth / true_depth, true_depth / depth)
    n = weight.sum(-1)
    per = xp.maximum(n, 1)
    return {"abs_rel": (weight * rel).sum(-1) / per,
            "bad_1_25": 100 * (weight * (ratio > RATIO)).sum(-1) / per,
            "scale": scale, "shift": shift, "valid_pixels": n,
            "clipped_pixels": clipped.astype(pred.dtype).sum(-1)}


def _map(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected one (H, W) map, got shape {a.shape}; evaluate "
                         f"images one at a time (evaluate_batch takes (N, H, W))")
    return a


def _checked(prediction, disparity, valid):
    prediction = _map("prediction", prediction).astype(np.float64)
    disparity = _map("ground truth", disparity).astype(np.float64)
    if prediction.shape != disparity.shape:
        raise ValueError(f"prediction {prediction.shape} and ground truth {disparity.shape} "
                         f"differ in shape; resize the prediction to the ground truth's size")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(disparity) & (disparity > 0)
    if valid is not None:
        valid = _map("valid", valid)
        if valid.shape != disparity.shape:
            raise ValueError(f"valid {valid.shape} and ground truth {disparity.shape} differ "
                             f"in shape")
        ok &= valid.astype(bool)
    if not ok.any():
        raise ValueError(f"ground truth has no valid pixels (finite and > 0"
                         f"{', inside valid' if valid is not None else ''}) among its "
                         f"{disparity.size}; nothing to evaluate")
    bad = ok & ~np.isfinite(prediction)
    if bad.any():
        raise ValueError(f"prediction has {int(bad.sum())} non-finite values at valid pixels")
    return prediction, disparity, ok


def align(prediction, target_disparity, valid) -> tuple[float, float]:
    """The least-squares alignment of a prediction to a target disparity.

    Minimises the squared error of ``scale * prediction + shift`` against
    ``target_disparity`` over the pixels whose target is finite and > 0 and
    that ``valid`` marks. A prediction constant on those pixels gets scale 0.

    Args:
        prediction: (H, W) predicted relative inverse depth.
        target_disparity: (H, W) ground-truth disparity.
        valid: (H, W) mask of pixels to use, or None for all.

    Returns:
        tuple[float, float]: ``(scale, shift)``.

    Raises:
        ValueError: for maps that are not 2-D or differ in shape, no valid
            pixel, or non-finite predictions at valid pixels.
    """
    prediction, disparity, ok = _checked(prediction, target_disparity, valid)
    scale, shift = _align(np, prediction[ok][None], disparity[ok][None],
                          np.ones((1, int(ok.sum()))))
    return float(scale[0]), float(shift[0])


def evaluate(prediction, disparity, *, valid=None,
             to_depth: Optional[Callable] = None) -> dict:
    """Metrics of one predicted relative inverse depth against ground truth.

    The prediction is aligned to ``disparity`` by least squares (``align``),
    aligned values below ``FLOOR`` times the smallest true disparity raised
    to it, then both are turned into depth and compared (see the module
    docstring).

    Args:
        prediction: (H, W) predicted relative inverse depth.
        disparity: (H, W) ground-truth disparity; pixels that are not finite
            and > 0 are left out.
        valid: optional (H, W) mask of the pixels to score.
        to_depth: disparity -> depth, applied to both (default ``1 / d``;
            Middlebury 2014 at full resolution:
            ``zoo.depth.middlebury.disparity_to_depth``, mm).

    Returns:
        dict: ``"abs_rel"`` (mean of ``|d - d*| / d*``, a fraction),
        ``"bad_1_25"`` (percent of pixels with ``max(d / d*, d* / d) > 1.25``),
        ``"scale"`` and ``"shift"`` of the alignment (floats), and
        ``"valid_pixels"`` and ``"clipped_pixels"`` (ints).

    Raises:
        ValueError: for maps that are not 2-D or differ in shape, no valid
            pixel, or non-finite predictions at valid pixels.

    Example:
        ::

            left, _, disparity = skimage.data.stereo_motorcycle()
            d = zoo.depth.estimate(left, model="midas_small", allow_unpinned=True)
            zoo.depth.evaluate(d, disparity,
                               to_depth=zoo.depth.middlebury.disparity_to_depth)
    """
    prediction, disparity, ok = _checked(prediction, disparity, valid)
    out = _metrics(np, prediction.reshape(1, -1), disparity.reshape(1, -1), ok.reshape(1, -1),
                   to_depth or _reciprocal)
    result = {k: float(v[0]) for k, v in out.items()}
    result["valid_pixels"] = int(result["valid_pixels"])
    result["clipped_pixels"] = int(result["clipped_pixels"])
    return result


def evaluate_batch(prediction, disparity, valid, *,
                   to_depth: Optional[Callable] = None) -> dict:
    """``evaluate`` over (N, H, W) batches in jax.numpy (jit-able), for a
    training loop's evaluation step; no input checks.

    Args:
        prediction: (N, H, W) predicted relative inverse depth.
        disparity: (N, H, W) ground-truth disparity; values at invalid pixels
            are never read.
        valid: (N, H, W) bool, the pixels with ground truth (pass
            ``isfinite(d) & (d > 0)``).
        to_depth: jax-traceable disparity -> depth (default ``1 / d``).

    Returns:
        dict: the keys of ``evaluate``, each an (N,) float32 array; images
        without valid pixels get zeros and ``valid_pixels`` 0 (weight by it).
    """
    import jax.numpy as jnp

    prediction = jnp.asarray(prediction, jnp.float32)
    n = prediction.shape[0]
    return _metrics(jnp, prediction.reshape(n, -1),
                    jnp.asarray(disparity, jnp.float32).reshape(n, -1),
                    jnp.asarray(valid, bool).reshape(n, -1), to_depth or _reciprocal)
