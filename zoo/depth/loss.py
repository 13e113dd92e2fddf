"""The scale- and shift-invariant loss of MiDaS, in jax.numpy (jit-able,
differentiable): Ranftl, Lasinger, Hafner, Schindler and Koltun, "Towards
Robust Monocular Depth Estimation: Mixing Datasets for Zero-shot
Cross-dataset Transfer", TPAMI 2020, arXiv:1907.01341, Sec. 5.

Everything happens in disparity (inverse depth) space, per image, on the
valid pixels only (M of them):

* each of the prediction d and the target d* is brought to zero
  translation and unit scale, ``d_hat = (d - t(d)) / s(d)`` with
  ``t(d) = median(d)`` and ``s(d) = mean |d - t(d)|`` (Eq. 5-6), so a
  prediction is judged up to a positive scale and a shift;
* ``ssi``: the trimmed mean absolute error (Eq. 7),
  ``1 / (2M) * sum of the smallest U_m = floor(0.8 M) of |d_hat - d_hat*|``:
  the largest 20 % of residuals (wrong ground truth at edges, outliers) do
  not count;
* ``gradient``: the multi-scale gradient-matching term (Eq. 11, from Li and
  Snavely's MegaDepth), on the residual ``R = d_hat - d_hat*``:
  ``sum over K = 4 scales of (sum |grad_x R| + |grad_y R|) / M_k``, scale
  k taking every 2^k-th pixel and a difference counting only where both
  pixels are valid (normalised per scale and over the batch, as in the
  authors' published loss code). It is zero when the prediction is any
  positive affine function of the target, and pushes for sharp, aligned
  depth edges.

``loss = mean over images of ssi + alpha * gradient``, alpha = 0.5 (the
paper's value). Images without valid pixels contribute nothing.
"""

from __future__ import annotations

import jax.numpy as jnp

ALPHA = 0.5
TRIM = 0.2
SCALES = 4
_EPS = 1e-6  # floor of s(d): a constant prediction has no scale to divide by


def _flat(x):
    return x.reshape(x.shape[0], -1)


def masked_median(x, valid):
    """Median of each image's valid values.

    For an even count, the mean of the two middle values (as numpy's).

    Args:
        x: (N, H, W) values.
        valid: (N, H, W) bool mask of the values to use.

    Returns:
        jax.Array: (N,) medians; 0 for an image without valid values.
    """
    flat, ok = _flat(x), _flat(valid)
    count = ok.sum(-1)
    ordered = jnp.sort(jnp.where(ok, flat, jnp.inf), axis=-1)
    lo = jnp.maximum((count - 1) // 2, 0)
    hi = jnp.maximum(count // 2, 0)
    pick = jnp.take_along_axis(ordered, jnp.stack([lo, hi], -1), axis=-1)
    return jnp.where(count > 0, pick.mean(-1), 0.0)


def normalise(x, valid):
    """Each image brought to zero translation and unit scale over its valid pixels
    (Eq. 5-6): ``(x - median) / mean |x - median|``.

    The scale is floored at 1e-6, so a constant image gives zeros.

    Args:
        x: (N, H, W) disparities.
        valid: (N, H, W) bool mask of the pixels to use.

    Returns:
        jax.Array: (N, H, W) normalised values, 0 at invalid pixels.
    """
    t = masked_median(x, valid)[:, None, None]
    m = valid.astype(x.dtype)
    count = jnp.maximum(m.sum((1, 2)), 1)
    s = (m * jnp.abs(x - t)).sum((1, 2)) / count
    return m * (x - t) / jnp.maximum(s, _EPS)[:, None, None]


def trimmed_mae(residual, valid, trim: float = TRIM):
    """Trimmed mean absolute error per image (Eq. 7).

    ``1 / (2M) * sum of the floor((1 - trim) M) smallest |residual|`` over
    the M valid pixels.

    Args:
        residual: (N, H, W) residuals of normalised disparities.
        valid: (N, H, W) bool mask of the pixels to use.
        trim: fraction of the largest residuals left out, in [0, 1).

    Returns:
        jax.Array: (N,) errors; 0 for an image without valid pixels.
    """
    flat, ok = _flat(jnp.abs(residual)), _flat(valid)
    count = ok.sum(-1)
    ordered = jnp.sort(jnp.where(ok, flat, jnp.inf), axis=-1)
    # floor of (1 - trim) * M, safe from 0.8 * 10 = 7.999... in float32
    kept = jnp.floor((1 - trim) * count.astype(jnp.float32) + 1e-3)
    keep = jnp.arange(flat.shape[-1])[None] < kept[:, None]
    return jnp.where(keep, ordered, 0).sum(-1) / (2 * jnp.maximum(count, 1))


def gradient_matching(residual, valid, scales: int = SCALES):
    """Multi-scale gradient-matching term over the batch (Eq. 11).

    Sum over scales k of the batch's ``|grad_x R| + |grad_y R|`` at every
    2^k-th pixel, a difference counting only where both pixels are valid,
    divided by the batch's valid pixel count at that scale.

    Args:
        residual: (N, H, W) residual R of normalised disparities.
        valid: (N, H, W) bool mask of the pixels to use.
        scales: number of scales K.

    Returns:
        jax.Array: the scalar term.
    """
    total = 0.0
    m = valid.astype(residual.dtype)
    for k in range(scales):
        step = 2 ** k
        r, w = residual[:, ::step, ::step], m[:, ::step, ::step]
        gx = jnp.abs(r[:, :, 1:] - r[:, :, :-1]) * w[:, :, 1:] * w[:, :, :-1]
        gy = jnp.abs(r[:, 1:] - r[:, :-1]) * w[:, 1:] * w[:, :-1]
        total = total + (gx.sum() + gy.sum()) / jnp.maximum(w.sum(), 1)
    return total


def ssi_loss(prediction, target, valid, *, alpha: float = ALPHA, trim: float = TRIM,
             scales: int = SCALES) -> tuple:
    """The scale- and shift-invariant loss of MiDaS for a batch (see the module
    docstring): mean over images with valid pixels of the trimmed MAE, plus
    ``alpha`` times the gradient-matching term.

    Args:
        prediction: (N, H, W) predicted disparity (relative inverse depth).
        target: (N, H, W) ground-truth disparity; values at invalid pixels are
            never read.
        valid: (N, H, W) bool mask of pixels with ground truth.
        alpha: weight of the gradient-matching term (0.5 in the paper).
        trim: fraction of the largest residuals left out of the MAE.
        scales: number of scales of the gradient-matching term.

    Returns:
        tuple: ``(loss, {"ssi": ..., "gradient": ...})``, float32 scalars.
    """
    prediction = prediction.astype(jnp.float32)
    target = jnp.where(valid, target, 0).astype(jnp.float32)
    residual = normalise(prediction, valid) - normalise(target, valid)
    has = (valid.reshape(valid.shape[0], -1).sum(-1) > 0).astype(jnp.float32)
    ssi = (trimmed_mae(residual, valid, trim) * has).sum() / jnp.maximum(has.sum(), 1)
    grad = gradient_matching(residual, valid, scales)
    return ssi + alpha * grad, {"ssi": ssi, "gradient": grad}
