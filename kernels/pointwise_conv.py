"""1x1 convolution (a matmul over channels), NHWC, with a fused epilogue:
per-output-channel scale and bias (folded BatchNorm, or a plain bias with
scale 1), an activation, and an optional residual add after it:

    y = act((x @ w) * scale + bias) + residual

Forms behind one switch (``implementation``):

* ``pointwise_conv_reference``: ``jnp.dot`` then the epilogue as separate ops
  (the definition of correct; what TFLite export uses).
* ``pointwise_conv_xla_fast``: the same graph. XLA:CPU already runs a dot at
  matmul speed and fuses the elementwise epilogue into one loop after it;
  there is no faster plain-XLA form on CPU, so this is the reference.
* ``pallas``: one kernel computes an output tile from a row block of ``x``
  and a column block of ``w`` and applies scale, bias, activation and the
  residual before the single write, so the conv output never makes a round
  trip through memory before its BatchNorm/activation/residual.

  - TPU (Mosaic): rows in blocks of up to 512 (multiples of 8), all of K in
    one block, output columns in 256/128-lane blocks (or all of them when N
    is not a multiple of 128): full or (8, 128)-aligned blocks only; the
    block is shrunk until the double-buffered working set fits the default
    scoped VMEM (16 MiB).
  - GPU: Triton (see ``kernels.depthwise_conv`` for why not Mosaic GPU: the
    mobile models' 1x1 convs are small, K and N of 16-1280 channels; Triton
    covers every GPU generation and its ``tl.dot`` uses the tensor cores on
    Ampere and later). Power-of-two tiles (bm, bn, bk) with bm, bn, bk >= 16;
    the wrapper pads M, K and N to tile multiples and crops the result.

The backward pass is the reference's VJP (custom_vjp). On CPU, ``pallas``
runs in interpret mode (for testing).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from kernels._common import (IMPLEMENTATIONS, TPU_VMEM_BUDGET, TRANSCENDENTAL, act_fn, itemsize,
                             next_pow2, pallas_target, record_fallback, resolve_implementation,
                             round_up, with_reference_vjp)

__all__ = ["IMPLEMENTATIONS", "pointwise_conv", "pointwise_conv_reference",
           "pointwise_conv_xla_fast", "pointwise_conv_pallas", "pointwise_plan", "PointwisePlan"]


def _prepare(x, w, scale, bias, residual):
    if x.ndim < 2:
        raise ValueError(f"pointwise_conv expects (..., K) input, got shape {x.shape}")
    if w.ndim == 4:
        if w.shape[:2] != (1, 1):
            raise ValueError(f"pointwise_conv expects a (1, 1, K, N) or (K, N) kernel, "
                             f"got shape {w.shape}")
        w = w[0, 0]
    if w.ndim != 2 or w.shape[0] != x.shape[-1]:
        raise ValueError(f"pointwise_conv expects a (K={x.shape[-1]}, N) kernel, got shape "
                         f"{w.shape}")
    n = w.shape[1]
    for name, v in (("scale", scale), ("bias", bias)):
        if v is not None and jnp.shape(v) != (n,):
            raise ValueError(f"pointwise_conv: {name} must have shape ({n},), got {jnp.shape(v)}")
    out_shape = x.shape[:-1] + (n,)
    if residual is not None and residual.shape != out_shape:
        raise ValueError(f"pointwise_conv: residual must have the output shape {out_shape}, "
                         f"got {residual.shape}")
    return w, out_shape


def pointwise_conv_reference(x, w, scale=None, bias=None, residual=None, *,
                             act: Optional[str] = None):
    """act((x @ w) * scale + bias) + residual, op by op.

    Args:
        x: (..., K) float input, usually NHWC (N, H, W, K); every leading
            axis is a row of the matmul.
        w: (K, N) or (1, 1, K, N) kernel: K input, N output channels; cast to
            ``x``'s dtype.
        scale: (N,) per-output-channel factor (a folded BatchNorm's
            ``gamma / sqrt(var + eps)``); None means 1.
        bias: (N,) per-output-channel offset; None means 0.
        residual: an array of the output's shape (..., N), added after the
            activation; None adds nothing.
        act: activation before the residual: None (identity), ``"relu"``,
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, ``"sigmoid"`` or
            ``"hard_sigmoid"``.

    Returns:
        (..., N) array of ``x``'s dtype.

    Raises:
        ValueError: if ``x`` has fewer than 2 axes, ``w`` is not (K, N) or
            (1, 1, K, N) with K = ``x.shape[-1]``, ``scale`` or ``bias`` is
            not (N,), ``residual`` does not have the output's shape, or
            ``act`` is unknown.
    """
    w, _ = _prepare(x, w, scale, bias, residual)
    act_fn(act)
    y = jnp.dot(x, w.astype(x.dtype))
    if scale is not None:
        y = y * scale.astype(y.dtype)
    if bias is not None:
        y = y + bias.astype(y.dtype)
    y = act_fn(act)(y)
    if residual is not None:
        y = y + residual.astype(y.dtype)
    return y


def pointwise_conv_xla_fast(x, w, scale=None, bias=None, residual=None, *,
                            act: Optional[str] = None):
    """On CPU XLA's dot plus its fused epilogue is already the fast form:
    this is ``pointwise_conv_reference``.

    Args:
        x: (..., K) float input, usually NHWC (N, H, W, K); every leading
            axis is a row of the matmul.
        w: (K, N) or (1, 1, K, N) kernel: K input, N output channels; cast to
            ``x``'s dtype.
        scale: (N,) per-output-channel factor (a folded BatchNorm's
            ``gamma / sqrt(var + eps)``); None means 1.
        bias: (N,) per-output-channel offset; None means 0.
        residual: an array of the output's shape (..., N), added after the
            activation; None adds nothing.
        act: activation before the residual: None (identity), ``"relu"``,
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, ``"sigmoid"`` or
            ``"hard_sigmoid"``.

    Returns:
        (..., N) array of ``x``'s dtype.

    Raises:
        ValueError: if ``x`` has fewer than 2 axes, ``w`` is not (K, N) or
            (1, 1, K, N) with K = ``x.shape[-1]``, ``scale`` or ``bias`` is
            not (N,), ``residual`` does not have the output's shape, or
            ``act`` is unknown.
    """
    return pointwise_conv_reference(x, w, scale, bias, residual, act=act)


# ------------------------------------------------------------------ Pallas


@dataclasses.dataclass(frozen=True)
class PointwisePlan:
    """How the Pallas kernel tiles one (m, k) @ (k, n) problem; ``reason``
    set means fall back to the reference.

    Attributes:
        target: ``"tpu"`` (Mosaic) or ``"triton"`` (GPU).
        m: rows: the product of the input's leading axes (N * H * W).
        k: input channels.
        n: output channels.
        bm: rows per grid step (0 when ``reason`` is set).
        bn: output columns per grid step.
        bk: input channels per inner matmul step (TPU: all of ``k``).
        m_pad: ``m`` padded to a multiple of ``bm`` (Triton; TPU: ``m``).
        k_pad: ``k`` padded to a multiple of ``bk`` (Triton; TPU: ``k``).
        n_pad: ``n`` padded to a multiple of ``bn`` (Triton; TPU: ``n``).
        vmem_bytes: the TPU plan's double-buffered working set per grid
            step, in bytes (0 for Triton).
        reason: why no tiling fits; empty when the plan is usable.
    """

    target: str
    m: int
    k: int
    n: int
    bm: int = 0
    bn: int = 0
    bk: int = 0
    m_pad: int = 0
    k_pad: int = 0
    n_pad: int = 0
    vmem_bytes: int = 0
    reason: str = ""

    @property
    def grid(self):
        """The Pallas grid, (row blocks, column blocks); only defined when
        ``reason`` is empty."""
        return (pl.cdiv(self.m_pad, self.bm), self.n_pad // self.bn)


def pointwise_plan(m: int, k: int, n: int, dtype=jnp.float32, residual: bool = False,
                   target: str = "tpu") -> PointwisePlan:
    """Tiling of an (m, k) @ (k, n) conv with epilogue for ``target``.

    TPU: all of K in one block, 256- or 128-column blocks (all columns when
    N is not a multiple of 128), and the largest row block (up to 512) whose
    double-buffered working set fits the 16 MiB VMEM budget. Triton:
    power-of-two tiles, 16 to 64 rows and columns and 16 to 32 of K.

    Args:
        m: rows (pixels: N * H * W).
        k: input channels.
        n: output channels.
        dtype: the input's dtype; its item size sets the working set.
        residual: whether a residual block is read too (TPU working set).
        target: ``"tpu"`` or ``"triton"``.

    Returns:
        A ``PointwisePlan``; its ``reason`` is set (TPU only) when even 8
        rows exceed the VMEM budget.

    Raises:
        ValueError: if ``target`` is neither ``"tpu"`` nor ``"triton"``.
    """
    isz = itemsize(dtype)
    if target == "tpu":
        bn = 256 if n % 256 == 0 else (128 if n % 128 == 0 else n)
        cands = [m] if m <= 512 else []
        cands += [b for b in (512, 256, 128, 64, 32, 16, 8) if b < m]
        for bm in cands:
            vmem = 2 * isz * (bm * k + k * bn + bm * bn * (2 if residual else 1)) + 4 * bn * 4 \
                + 4 * bm * bn  # the float32 accumulator
            if vmem <= TPU_VMEM_BUDGET:
                return PointwisePlan(target, m, k, n, bm=bm, bn=bn, bk=k, m_pad=m, k_pad=k,
                                     n_pad=n, vmem_bytes=vmem)
        return PointwisePlan(target, m, k, n, reason=(
            f"K={k} x {bn} columns need {vmem} bytes of VMEM at 8 rows, over the "
            f"{TPU_VMEM_BUDGET}-byte budget"))
    if target == "triton":
        bm = 64 if m >= 64 else max(16, next_pow2(m))
        bn = max(16, min(64, next_pow2(n)))
        bk = max(16, min(32, next_pow2(k)))
        return PointwisePlan(target, m, k, n, bm=bm, bn=bn, bk=bk, m_pad=round_up(m, bm),
                             k_pad=round_up(k, bk), n_pad=round_up(n, bn))
    raise ValueError(f"target={target!r}: use 'tpu' or 'triton'")


def _pw_kernel(x_ref, w_ref, sb_ref, *rest, bk, nk, act, has_residual):
    if has_residual:
        r_ref, o_ref = rest
    else:
        (o_ref,) = rest
    if nk == 1:
        acc = jnp.dot(x_ref[...], w_ref[...], preferred_element_type=jnp.float32)
    else:
        def step(i, acc):
            start = pl.multiple_of(i * bk, bk)
            xs = x_ref[:, pl.ds(start, bk)]
            ws = w_ref[pl.ds(start, bk), :]
            return acc + jnp.dot(xs, ws, preferred_element_type=jnp.float32)
        acc = lax.fori_loop(0, nk, step,
                            jnp.zeros((x_ref.shape[0], w_ref.shape[1]), jnp.float32))
    y = acc * sb_ref[pl.ds(0, 1), :] + sb_ref[pl.ds(1, 1), :]
    y = act_fn(act)(y)
    if has_residual:
        y = y + r_ref[...].astype(jnp.float32)
    o_ref[...] = y.astype(o_ref.dtype)


def _pw_pallas_call(x2, w, scale, bias, r2, plan: PointwisePlan, act, interpret):
    dtype = x2.dtype
    m, k, n = plan.m, plan.k, plan.n
    has_r = r2 is not None
    if plan.target == "triton":
        x2 = jnp.pad(x2, ((0, plan.m_pad - m), (0, plan.k_pad - k)))
        if has_r:
            r2 = jnp.pad(r2, ((0, plan.m_pad - m), (0, plan.n_pad - n)))
    wp = jnp.pad(w.astype(dtype), ((0, plan.k_pad - k), (0, plan.n_pad - n)))
    sb = jnp.pad(jnp.stack([scale, bias]).astype(jnp.float32), ((0, 0), (0, plan.n_pad - n)))
    bm, bn = plan.bm, plan.bn
    in_specs = [pl.BlockSpec((bm, plan.k_pad), lambda i, j: (i, 0)),
                pl.BlockSpec((plan.k_pad, bn), lambda i, j: (0, j)),
                pl.BlockSpec((2, bn), lambda i, j: (0, j))]
    args = [x2, wp, sb]
    if has_r:
        in_specs.append(pl.BlockSpec((bm, bn), lambda i, j: (i, j)))
        args.append(r2)
    if plan.target == "tpu":
        from jax.experimental.pallas import tpu as pltpu
        params = pltpu.CompilerParams(dimension_semantics=("parallel", "parallel"),
                                      vmem_limit_bytes=max(TPU_VMEM_BUDGET, plan.vmem_bytes + 2**20))
    else:
        from jax.experimental.pallas import triton as pltr
        params = pltr.CompilerParams(num_warps=4, num_stages=2)
    isz = itemsize(dtype)
    cost = pl.CostEstimate(
        flops=int(2 * m * k * n + m * n * (2 + (4 if act else 0) + has_r)),
        transcendentals=int(m * n if act in TRANSCENDENTAL else 0),
        bytes_accessed=int(isz * (m * k + k * n + m * n * (1 + has_r)) + 8 * n))
    y = pl.pallas_call(
        functools.partial(_pw_kernel, bk=plan.bk, nk=plan.k_pad // plan.bk, act=act,
                          has_residual=has_r),
        out_shape=jax.ShapeDtypeStruct((plan.m_pad, plan.n_pad), dtype),
        grid=plan.grid,
        in_specs=in_specs,
        out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)),
        compiler_params=params,
        cost_estimate=cost,
        interpret=interpret,
        name=f"pointwise_bn_{act or 'linear'}{'_residual' if has_r else ''}",
    )(*args)
    if y.shape != (m, n):
        y = y[:m, :n]
    return y


def pointwise_conv_pallas(x, w, scale=None, bias=None, residual=None, *,
                          act: Optional[str] = None, target: Optional[str] = None,
                          interpret: Optional[bool] = None):
    """The fused Pallas kernel; differentiable through the reference's VJP.

    A shape the plan cannot take runs the reference and is recorded in
    ``kernels.fallbacks()``.

    Args:
        x: (..., K) float input, usually NHWC (N, H, W, K); every leading
            axis is a row of the matmul.
        w: (K, N) or (1, 1, K, N) kernel: K input, N output channels; cast to
            ``x``'s dtype, products accumulated in float32.
        scale: (N,) per-output-channel factor (a folded BatchNorm's
            ``gamma / sqrt(var + eps)``); None means 1.
        bias: (N,) per-output-channel offset; None means 0.
        residual: an array of the output's shape (..., N), added after the
            activation; None adds nothing.
        act: activation before the residual: None (identity), ``"relu"``,
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, ``"sigmoid"`` or
            ``"hard_sigmoid"``.
        target: the kernel variant, ``"tpu"`` or ``"triton"``; None means
            the backend's own (``"tpu"`` on CPU). See ``pallas_target``.
        interpret: run in the Pallas interpreter; None means whenever the
            variant is not the backend's own (always on CPU), never inside
            ``lowering_target``.

    Returns:
        (..., N) array of ``x``'s dtype.

    Raises:
        ValueError: if ``x`` has fewer than 2 axes, ``w`` is not (K, N) or
            (1, 1, K, N) with K = ``x.shape[-1]``, ``scale`` or ``bias`` is
            not (N,), ``residual`` does not have the output's shape,
            ``act`` is unknown, or ``target`` is not a variant.
    """
    w, out_shape = _prepare(x, w, scale, bias, residual)
    act_fn(act)
    k, n = w.shape
    m = 1
    for d in x.shape[:-1]:
        m *= d
    scale_ = jnp.ones((n,), jnp.float32) if scale is None else scale
    bias_ = jnp.zeros((n,), jnp.float32) if bias is None else bias
    tgt, interp = pallas_target(target)
    interpret = interp if interpret is None else interpret
    plan = pointwise_plan(m, k, n, x.dtype, residual is not None, tgt)

    def reference(x, w, scale, bias, *res):
        return pointwise_conv_reference(x, w, scale, bias, res[0] if res else None, act=act)

    args = (x, w, scale_, bias_) + ((residual,) if residual is not None else ())
    if plan.reason:
        record_fallback("pointwise_conv", tgt, (tuple(x.shape), (k, n), residual is not None,
                                                str(x.dtype)), plan.reason)
        return reference(*args)

    def forward(x, w, scale, bias, *res):
        r2 = res[0].reshape(m, n) if res else None
        y = _pw_pallas_call(x.reshape(m, k), w, scale, bias, r2, plan, act, interpret)
        return y.reshape(out_shape)

    return with_reference_vjp(forward, reference)(*args)


def pointwise_conv(x, w, scale=None, bias=None, residual=None, *, act: Optional[str] = None,
                   implementation: str = "auto", target: Optional[str] = None):
    """act((x @ w) * scale + bias) + residual over the last axis of ``x``
    (NHWC), ``w`` of shape (K, N) or (1, 1, K, N).

    Every implementation gives the same result to float rounding.

    Args:
        x: (..., K) float input, usually NHWC (N, H, W, K); every leading
            axis is a row of the matmul.
        w: (K, N) or (1, 1, K, N) kernel: K input, N output channels; cast to
            ``x``'s dtype.
        scale: (N,) per-output-channel factor (a folded BatchNorm's
            ``gamma / sqrt(var + eps)``); None means 1.
        bias: (N,) per-output-channel offset; None means 0.
        residual: an array of the output's shape (..., N), added after the
            activation; None adds nothing.
        act: activation before the residual: None (identity), ``"relu"``,
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, ``"sigmoid"`` or
            ``"hard_sigmoid"``.
        implementation: ``"auto"`` (``xla_fast`` on CPU, ``reference`` on
            GPU/TPU), ``"reference"``, ``"xla_fast"`` or ``"pallas"``.
        target: with ``"pallas"``: ``"tpu"`` or ``"triton"``; None means the
            backend's own. Ignored by the other forms.

    Returns:
        (..., N) array of ``x``'s dtype.

    Raises:
        ValueError: if ``implementation`` is unknown, or as the chosen form.

    Example:
        ::

            x = jnp.ones((1, 8, 8, 16)); w = jnp.ones((16, 32))
            y = pointwise_conv(x, w, bias=jnp.zeros(32), act="relu")   # (1, 8, 8, 32)
    """
    impl = resolve_implementation(implementation)
    if impl == "reference":
        return pointwise_conv_reference(x, w, scale, bias, residual, act=act)
    if impl == "xla_fast":
        return pointwise_conv_xla_fast(x, w, scale, bias, residual, act=act)
    return pointwise_conv_pallas(x, w, scale, bias, residual, act=act, target=target)
