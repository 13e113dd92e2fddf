"""Depthwise k x k convolution (one filter per channel), NHWC, with folded
BatchNorm (per-channel scale and bias) and an activation fused.

Forms behind one switch (``implementation``):

* ``*_reference``: XLA's grouped convolution (``feature_group_count = C``),
  then scale, bias and activation as separate ops. The definition of
  correct, and what TFLite export uses (a single DEPTHWISE_CONV_2D op).
* ``*_xla_fast``: the same sum written as k*k shifted, strided multiply-adds.
  XLA:CPU fuses these (and the scale/bias/activation after them) into one
  loop nest; its grouped convolution does not vectorise and was measured
  17-40x slower per layer on the 2-core x86 machines used here
  (EfficientNet-B0 at batch 1: about 214 ms with grouped conv, about 30 ms
  with this form, same logits to 1e-6).
* ``pallas``: one Pallas kernel that reads the (padded) input once, runs the
  k*k taps, scale, bias and activation in registers/VMEM and writes the
  result once. Two block plans share one kernel body:

  - TPU (Mosaic): a grid step holds ``th`` output rows of the whole width and
    a 128-lane channel block (or all channels when C is not a multiple of
    128), so every block satisfies Mosaic's (8, 128) rule through full
    dimensions; ``th`` is the largest that keeps the double-buffered working
    set under the default scoped VMEM (16 MiB).
  - GPU: **Triton**, not Mosaic GPU. Mosaic GPU targets Hopper/Blackwell
    (warpgroups, TMA, wgmma) and pays off for tensor-core matmuls; a
    depthwise conv has no matmul, is bound by memory bandwidth, and the
    mobile models are deployed on every GPU generation, which Triton covers
    (sm70+, and ROCm). Triton needs power-of-two tiles: a program computes a
    (th, tw, bc) power-of-two output tile; the wrapper pads H, W and C up to
    tile multiples and crops the result.

  Stride 2 is handled without strided loads: the wrapper splits the padded
  input into its s*s phases (``x[a::s, b::s]``), so tap (i, j) is a
  contiguous window of phase (i % s, j % s) at offset (i // s, j // s).
  Overlapping row windows (the k-1 halo) are expressed with ``pl.Element``
  block dimensions. The backward pass is the reference's VJP (custom_vjp).

``implementation="auto"`` picks ``xla_fast`` on CPU and ``reference`` on
GPU/TPU. On CPU, ``pallas`` runs the kernel in interpret mode (slow, for
testing). A shape a Pallas plan cannot take (a working set over the VMEM
budget) runs the reference and is recorded in ``kernels.fallbacks()``.

The kernel layout is HWIO with I = 1: ``(kh, kw, 1, C)``, the layout
``lax.conv_general_dilated`` expects for a depthwise convolution.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from kernels._common import (IMPLEMENTATIONS, TPU_VMEM_BUDGET, TRITON_TILE_ELEMENTS, act_fn,
                             itemsize, next_pow2, pallas_target, record_fallback,
                             resolve_implementation, round_up, with_reference_vjp, TRANSCENDENTAL)

__all__ = ["IMPLEMENTATIONS", "depthwise_conv", "depthwise_conv_reference",
           "depthwise_conv_xla_fast", "depthwise_conv_bn_act", "depthwise_conv_bn_act_reference",
           "depthwise_conv_bn_act_xla_fast", "depthwise_conv_bn_act_pallas", "depthwise_plan",
           "DepthwisePlan", "resolve_implementation", "same_padding", "resolve_padding"]

Padding = Union[str, Sequence[tuple[int, int]]]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one spatial axis: output = ceil(size/stride),
    the extra pixel (if any) goes after. Weights trained in TensorFlow expect it.

    Args:
        size: the input's length along the axis, in pixels.
        kernel: the kernel's length along the axis.
        stride: the stride along the axis.

    Returns:
        ``(before, after)`` pixel counts, ``after`` the larger when the total
        is odd; ``(0, 0)`` when the windows need no padding.

    Example:
        ::

            same_padding(224, 3, 2)   # (0, 1): 112 outputs
            same_padding(112, 5, 2)   # (1, 2)
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: Padding, spatial: Sequence[int], kernel: Sequence[int],
                    stride: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Explicit ((top, bottom), (left, right)) pads from a padding mode.

    ``"same"``: TensorFlow SAME (asymmetric at stride 2 on even sizes).
    ``"symmetric"``: k//2 on each side, as PyTorch models are written.
    ``"valid"``: none. A pair of pairs is returned unchanged.

    Args:
        padding: a mode name (``"same"``, ``"symmetric"``, ``"valid"``, any
            letter case) or explicit ``((top, bottom), (left, right))``.
        spatial: the input's ``(H, W)``.
        kernel: the kernel's ``(kh, kw)``.
        stride: the stride of both spatial axes.

    Returns:
        ``((top, bottom), (left, right))`` as ints.

    Raises:
        ValueError: if ``padding`` names no mode, or explicit padding is not
            two ``(before, after)`` pairs.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "same":
            return tuple(same_padding(n, k, stride) for n, k in zip(spatial, kernel))
        if mode == "symmetric":
            return tuple((k // 2, k // 2) for k in kernel)
        if mode == "valid":
            return ((0, 0), (0, 0))
        raise ValueError(
            f"padding={padding!r} is not a padding mode; use 'same' (TensorFlow SAME), "
            "'symmetric' (k//2 each side), 'valid', or explicit ((top, bottom), (left, right))")
    pads = tuple((int(a), int(b)) for a, b in padding)
    if len(pads) != 2:
        raise ValueError(f"explicit padding needs two (before, after) pairs, got {padding!r}")
    return pads


def _check(x: jax.Array, w: jax.Array) -> None:
    if x.ndim != 4:
        raise ValueError(f"depthwise_conv expects NHWC input of rank 4, got shape {x.shape}")
    if w.ndim != 4 or w.shape[2] != 1 or w.shape[3] != x.shape[3]:
        raise ValueError(
            f"depthwise_conv expects a (kh, kw, 1, C={x.shape[3]}) kernel, got shape {w.shape}")


def depthwise_conv_reference(x: jax.Array, w: jax.Array, *, stride: int = 1,
                             padding: Padding = "same") -> jax.Array:
    """Definition of correct: XLA grouped convolution.

    Args:
        x: (N, H, W, C) float input (NHWC).
        w: (kh, kw, 1, C) kernel (HWIO with I = 1), cast to ``x``'s dtype.
        stride: the stride of both spatial axes.
        padding: ``"same"``, ``"symmetric"``, ``"valid"`` or explicit
            ``((top, bottom), (left, right))``; see ``resolve_padding``.

    Returns:
        (N, H_out, W_out, C) array of ``x``'s dtype; with ``"same"``,
        ``H_out = ceil(H / stride)`` and ``W_out = ceil(W / stride)``.

    Raises:
        ValueError: if ``x`` is not rank 4, ``w`` is not (kh, kw, 1, C), or
            ``padding`` is not a valid mode or pair of pairs.
    """
    _check(x, w)
    pads = resolve_padding(padding, x.shape[1:3], w.shape[:2], stride)
    return lax.conv_general_dilated(
        x, w.astype(x.dtype), window_strides=(stride, stride), padding=pads,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[3])


def depthwise_conv_xla_fast(x: jax.Array, w: jax.Array, *, stride: int = 1,
                            padding: Padding = "same") -> jax.Array:
    """k*k shifted multiply-adds; XLA:CPU fuses them into one vectorised loop.

    Args:
        x: (N, H, W, C) float input (NHWC).
        w: (kh, kw, 1, C) kernel (HWIO with I = 1), cast to ``x``'s dtype.
        stride: the stride of both spatial axes.
        padding: ``"same"``, ``"symmetric"``, ``"valid"`` or explicit
            ``((top, bottom), (left, right))``; see ``resolve_padding``.

    Returns:
        (N, H_out, W_out, C) array of ``x``'s dtype; with ``"same"``,
        ``H_out = ceil(H / stride)`` and ``W_out = ceil(W / stride)``.

    Raises:
        ValueError: if ``x`` is not rank 4, ``w`` is not (kh, kw, 1, C),
            ``padding`` is not valid, or the window does not fit the padded
            input.
    """
    _check(x, w)
    kh, kw = w.shape[:2]
    (pt, pb), (pl, pr) = resolve_padding(padding, x.shape[1:3], (kh, kw), stride)
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    out_h = (xp.shape[1] - kh) // stride + 1
    out_w = (xp.shape[2] - kw) // stride + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"depthwise_conv: a {kh}x{kw} window does not fit the padded input "
            f"{xp.shape[1]}x{xp.shape[2]}")
    w = w.astype(x.dtype)
    acc = None
    for i in range(kh):
        for j in range(kw):
            tap = lax.slice(
                xp, (0, i, j, 0),
                (xp.shape[0], i + (out_h - 1) * stride + 1, j + (out_w - 1) * stride + 1,
                 xp.shape[3]),
                (1, stride, stride, 1))
            term = tap * w[i, j, 0]
            acc = term if acc is None else acc + term
    return acc


# ------------------------------------------------------------- fused forms


def _scale_bias(c: int, scale, bias):
    scale = jnp.ones((c,), jnp.float32) if scale is None else jnp.asarray(scale)
    bias = jnp.zeros((c,), jnp.float32) if bias is None else jnp.asarray(bias)
    if scale.shape != (c,) or bias.shape != (c,):
        raise ValueError(f"depthwise_conv_bn_act: scale and bias must have shape ({c},), "
                         f"got {scale.shape} and {bias.shape}")
    return scale, bias


def _epilogue(y, scale, bias, act):
    if scale is not None:
        y = y * scale.astype(y.dtype)
    if bias is not None:
        y = y + bias.astype(y.dtype)
    return act_fn(act)(y)


def depthwise_conv_bn_act_reference(x, w, scale=None, bias=None, *, stride: int = 1,
                                    padding: Padding = "same", act: Optional[str] = None):
    """act(depthwise_conv(x, w) * scale + bias): grouped conv, then the epilogue.

    Args:
        x: (N, H, W, C) float input (NHWC).
        w: (kh, kw, 1, C) kernel (HWIO with I = 1), cast to ``x``'s dtype.
        scale: (C,) per-channel factor (a folded BatchNorm's
            ``gamma / sqrt(var + eps)``); None means 1.
        bias: (C,) per-channel offset (``beta - mean * scale``); None means 0.
        stride: the stride of both spatial axes.
        padding: ``"same"``, ``"symmetric"``, ``"valid"`` or explicit
            ``((top, bottom), (left, right))``; see ``resolve_padding``.
        act: activation applied last: None (identity), ``"relu"``,
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, ``"sigmoid"`` or
            ``"hard_sigmoid"``.

    Returns:
        (N, H_out, W_out, C) array of ``x``'s dtype; with ``"same"``,
        ``H_out = ceil(H / stride)`` and ``W_out = ceil(W / stride)``.

    Raises:
        ValueError: if ``act`` is unknown, or as ``depthwise_conv_reference``.
    """
    act_fn(act)
    y = depthwise_conv_reference(x, w, stride=stride, padding=padding)
    return _epilogue(y, scale, bias, act)


def depthwise_conv_bn_act_xla_fast(x, w, scale=None, bias=None, *, stride: int = 1,
                                   padding: Padding = "same", act: Optional[str] = None):
    """The shifted multiply-adds with the epilogue; XLA fuses it all on CPU.

    Args:
        x: (N, H, W, C) float input (NHWC).
        w: (kh, kw, 1, C) kernel (HWIO with I = 1), cast to ``x``'s dtype.
        scale: (C,) per-channel factor (a folded BatchNorm's
            ``gamma / sqrt(var + eps)``); None means 1.
        bias: (C,) per-channel offset (``beta - mean * scale``); None means 0.
        stride: the stride of both spatial axes.
        padding: ``"same"``, ``"symmetric"``, ``"valid"`` or explicit
            ``((top, bottom), (left, right))``; see ``resolve_padding``.
        act: activation applied last: None (identity), ``"relu"``,
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, ``"sigmoid"`` or
            ``"hard_sigmoid"``.

    Returns:
        (N, H_out, W_out, C) array of ``x``'s dtype; with ``"same"``,
        ``H_out = ceil(H / stride)`` and ``W_out = ceil(W / stride)``.

    Raises:
        ValueError: if ``act`` is unknown, or as ``depthwise_conv_xla_fast``.
    """
    act_fn(act)
    y = depthwise_conv_xla_fast(x, w, stride=stride, padding=padding)
    return _epilogue(y, scale, bias, act)


# ------------------------------------------------------------------ Pallas


@dataclasses.dataclass(frozen=True)
class DepthwisePlan:
    """How the Pallas kernel tiles one problem; ``reason`` set means fall back.

    Attributes:
        target: ``"tpu"`` (Mosaic) or ``"triton"`` (GPU).
        n: batch size of the input.
        h: input height.
        w: input width.
        c: channels.
        k: the square kernel's side.
        stride: the stride of both spatial axes.
        pads: ``((top, bottom), (left, right))`` padding.
        out_h: output height.
        out_w: output width.
        th: output rows per grid step (0 when ``reason`` is set).
        tw: output columns per grid step (TPU: the whole width).
        bc: channels per grid step.
        out_h_pad: ``out_h`` rounded up to a multiple of ``th``.
        out_w_pad: ``out_w`` rounded up to a multiple of ``tw``.
        c_pad: ``c`` rounded up to a multiple of ``bc`` (Triton; TPU: ``c``).
        vmem_bytes: the TPU plan's double-buffered working set per grid
            step, in bytes (0 for Triton).
        reason: why no tiling fits, making the op run the reference; empty
            when the plan is usable.
    """

    target: str
    n: int
    h: int
    w: int
    c: int
    k: int
    stride: int
    pads: tuple
    out_h: int
    out_w: int
    th: int = 0  # output rows per grid step
    tw: int = 0  # output columns per grid step
    bc: int = 0  # channels per grid step
    out_h_pad: int = 0
    out_w_pad: int = 0
    c_pad: int = 0
    vmem_bytes: int = 0
    reason: str = ""

    @property
    def halo(self) -> int:
        """Extra rows (and columns) of each stride phase a tile reads beyond
        its outputs: ``(k - 1) // stride``."""
        return (self.k - 1) // self.stride

    @property
    def grid(self) -> tuple:
        """The Pallas grid, (batch, row tiles, column tiles, channel tiles);
        only defined when ``reason`` is empty."""
        return (self.n, self.out_h_pad // self.th, self.out_w_pad // self.tw, self.c_pad // self.bc)


def depthwise_plan(shape, k: int, stride: int = 1, padding: Padding = "same",
                   dtype=jnp.float32, target: str = "tpu") -> DepthwisePlan:
    """Tiling of a depthwise kxk conv of NHWC ``shape`` for ``target``
    ("tpu" or "triton"); ``plan.reason`` is non-empty when no tiling fits.

    TPU: whole-width row bands of a 128-channel block (all channels when C
    is not a multiple of 128), the tallest band whose double-buffered
    working set fits the 16 MiB VMEM budget. Triton: power-of-two tiles of
    at most 8 rows, 16 columns and 128 channels.

    Args:
        shape: the input's (N, H, W, C).
        k: the square kernel's side.
        stride: the stride of both spatial axes.
        padding: a padding mode or explicit pads, as in ``resolve_padding``.
        dtype: the input's dtype; its item size sets the working set.
        target: ``"tpu"`` or ``"triton"``.

    Returns:
        A ``DepthwisePlan``; its ``reason`` says why no kernel fits (the
        window does not fit the padded input, or on TPU even 8 rows exceed
        the VMEM budget).

    Raises:
        ValueError: if ``target`` is neither ``"tpu"`` nor ``"triton"``, or
            ``padding`` is not valid.
    """
    n, h, w, c = shape
    pads = resolve_padding(padding, (h, w), (k, k), stride)
    out_h = (h + sum(pads[0]) - k) // stride + 1
    out_w = (w + sum(pads[1]) - k) // stride + 1
    base = dict(target=target, n=n, h=h, w=w, c=c, k=k, stride=stride, pads=pads,
                out_h=out_h, out_w=out_w)
    if out_h < 1 or out_w < 1:
        return DepthwisePlan(**base, reason="the window does not fit the padded input")
    hh = (k - 1) // stride
    p = stride * stride
    isz = itemsize(dtype)
    if target == "tpu":
        # Whole width, a lane-dense channel block (or all channels), as many
        # rows as fit: every block dim is full or (8, 128)-aligned.
        bc = 128 if c % 128 == 0 else c
        wq = out_w + hh
        for th in sorted({out_h} | {t for t in (256, 128, 64, 32, 16, 8) if t < out_h},
                         reverse=True):
            vmem = 2 * (p * (th + hh) * wq * bc * isz + th * out_w * bc * isz) \
                + 2 * (k * k + 2) * bc * 4
            if vmem <= TPU_VMEM_BUDGET:
                return DepthwisePlan(**base, th=th, tw=out_w, bc=bc,
                                     out_h_pad=round_up(out_h, th), out_w_pad=out_w, c_pad=c,
                                     vmem_bytes=vmem)
        return DepthwisePlan(
            **base, reason=f"8 output rows x {out_w} columns x {bc} channels need {vmem} bytes "
                           f"of VMEM double-buffered, over the {TPU_VMEM_BUDGET}-byte budget")
    if target == "triton":
        tw = min(next_pow2(out_w), 16)
        th = min(next_pow2(out_h), 8)
        bc = max(1, min(next_pow2(c), 128, TRITON_TILE_ELEMENTS // (th * tw)))
        return DepthwisePlan(**base, th=th, tw=tw, bc=bc, out_h_pad=round_up(out_h, th),
                             out_w_pad=round_up(out_w, tw), c_pad=round_up(c, bc))
    raise ValueError(f"target={target!r}: use 'tpu' or 'triton'")


def _phase_split(x, plan: DepthwisePlan):
    """Pad ``x`` and split it into its stride phases:
    out[n, a*s + b, r, q, c] = padded[n, r*s + a, q*s + b, c], with enough rows
    and columns for every (padded) output tile and its halo."""
    s = plan.stride
    (pt, _), (pleft, _) = plan.pads
    hq = plan.out_h_pad + plan.halo
    wq = plan.out_w_pad + plan.halo
    eh, ew = s * hq, s * wq  # padded extents we need
    x = x[:, :max(0, eh - pt), :max(0, ew - pleft), :]
    x = jnp.pad(x, ((0, 0), (pt, eh - pt - x.shape[1]), (pleft, ew - pleft - x.shape[2]),
                    (0, plan.c_pad - plan.c)))
    if s == 1:
        return x[:, None]
    n, c = x.shape[0], x.shape[3]
    x = x.reshape(n, hq, s, wq, s, c).transpose(0, 2, 4, 1, 3, 5)
    return x.reshape(n, s * s, hq, wq, c)


def _dw_kernel(x_ref, w_ref, sb_ref, o_ref, *, k, s, th, tw, act):
    """One output tile: k*k taps from the phase windows, then scale, bias, act."""
    if len(x_ref.shape) == 5:  # the TPU plan's all-Element block keeps the batch dim
        x_ref = x_ref.at[0]
    acc = None
    for i in range(k):
        for j in range(k):
            ph = (i % s) * s + (j % s)
            tap = x_ref[ph, pl.ds(i // s, th), pl.ds(j // s, tw), :].astype(jnp.float32)
            wt = w_ref[pl.ds(i * k + j, 1), :].astype(jnp.float32)
            term = tap * wt
            acc = term if acc is None else acc + term
    y = acc * sb_ref[pl.ds(0, 1), :] + sb_ref[pl.ds(1, 1), :]
    o_ref[...] = act_fn(act)(y).astype(o_ref.dtype)


def _dw_cost(plan: DepthwisePlan, act, dtype) -> pl.CostEstimate:
    out = plan.n * plan.out_h * plan.out_w * plan.c
    isz = itemsize(dtype)
    return pl.CostEstimate(
        flops=int(out * (2 * plan.k * plan.k + 2 + (4 if act else 0))),
        transcendentals=int(out if act in TRANSCENDENTAL else 0),
        bytes_accessed=int(plan.n * plan.h * plan.w * plan.c * isz + out * isz
                           + (plan.k * plan.k + 2) * plan.c * 4))


def _dw_pallas_call(x, w, scale, bias, plan: DepthwisePlan, act, interpret):
    k, s, th, tw, bc, hh = plan.k, plan.stride, plan.th, plan.tw, plan.bc, plan.halo
    p = s * s
    xp = _phase_split(x, plan)
    wk = jnp.pad(w.reshape(k * k, plan.c).astype(jnp.float32),
                 ((0, 0), (0, plan.c_pad - plan.c)))
    sb = jnp.pad(jnp.stack([scale, bias]).astype(jnp.float32), ((0, 0), (0, plan.c_pad - plan.c)))
    kernel = functools.partial(_dw_kernel, k=k, s=s, th=th, tw=tw, act=act)
    if plan.target == "tpu":
        from jax.experimental.pallas import tpu as pltpu
        # Mosaic wants every dim of a block in element offsets once one is.
        x_spec = pl.BlockSpec((pl.Element(1), pl.Element(p), pl.Element(th + hh),
                               pl.Element(xp.shape[3]), pl.Element(bc)),
                              lambda n, i, j, c: (n, 0, i * th, 0, c * bc))
        out_shape = (plan.n, plan.out_h, plan.out_w, plan.c)
        params = pltpu.CompilerParams(
            dimension_semantics=("parallel",) * 4,
            vmem_limit_bytes=max(TPU_VMEM_BUDGET, plan.vmem_bytes + 2**20))
    else:
        from jax.experimental.pallas import triton as pltr
        x_spec = pl.BlockSpec((None, p, pl.Element(th + hh), pl.Element(tw + hh), bc),
                              lambda n, i, j, c: (n, 0, i * th, j * tw, c))
        out_shape = (plan.n, plan.out_h_pad, plan.out_w_pad, plan.c_pad)
        params = pltr.CompilerParams(num_warps=4, num_stages=1)
    y = pl.pallas_call(
        kernel,
        out_shape=jax.ShapeDtypeStruct(out_shape, x.dtype),
        grid=plan.grid,
        in_specs=[x_spec,
                  pl.BlockSpec((k * k, bc), lambda n, i, j, c: (0, c)),
                  pl.BlockSpec((2, bc), lambda n, i, j, c: (0, c))],
        out_specs=pl.BlockSpec((None, th, tw, bc), lambda n, i, j, c: (n, i, j, c)),
        compiler_params=params,
        cost_estimate=_dw_cost(plan, act, x.dtype),
        interpret=interpret,
        name=f"depthwise{k}x{k}s{s}_bn_{act or 'linear'}",
    )(xp, wk, sb)
    if y.shape != (plan.n, plan.out_h, plan.out_w, plan.c):
        y = y[:, :plan.out_h, :plan.out_w, :plan.c]
    return y


def depthwise_conv_bn_act_pallas(x, w, scale=None, bias=None, *, stride: int = 1,
                                 padding: Padding = "same", act: Optional[str] = None,
                                 target: Optional[str] = None,
                                 interpret: Optional[bool] = None):
    """The fused Pallas kernel (Mosaic TPU or Triton GPU; interpret mode on
    CPU), differentiable through the reference's VJP. A shape the plan cannot
    take (a non-square kernel, or a plan with a ``reason``) runs the
    reference and is recorded in ``kernels.fallbacks()``.

    Args:
        x: (N, H, W, C) float input (NHWC).
        w: (kh, kw, 1, C) kernel (HWIO with I = 1); the kernel computes in
            float32 and casts the result to ``x``'s dtype.
        scale: (C,) per-channel factor (a folded BatchNorm's
            ``gamma / sqrt(var + eps)``); None means 1.
        bias: (C,) per-channel offset (``beta - mean * scale``); None means 0.
        stride: the stride of both spatial axes.
        padding: ``"same"``, ``"symmetric"``, ``"valid"`` or explicit
            ``((top, bottom), (left, right))``; see ``resolve_padding``.
        act: activation applied last: None (identity), ``"relu"``,
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, ``"sigmoid"`` or
            ``"hard_sigmoid"``.
        target: the kernel variant, ``"tpu"`` or ``"triton"``; None means
            the backend's own (``"tpu"`` on CPU). See ``pallas_target``.
        interpret: run in the Pallas interpreter; None means whenever the
            variant is not the backend's own (always on CPU), never inside
            ``lowering_target``.

    Returns:
        (N, H_out, W_out, C) array of ``x``'s dtype; with ``"same"``,
        ``H_out = ceil(H / stride)`` and ``W_out = ceil(W / stride)``.

    Raises:
        ValueError: if ``x`` or ``w`` is mis-shaped, ``scale`` or ``bias`` is
            not (C,), ``act`` is unknown, ``target`` is not a variant, or
            ``padding`` is not valid.
    """
    _check(x, w)
    act_fn(act)
    kh, kw = w.shape[:2]
    c = x.shape[3]
    scale, bias = _scale_bias(c, scale, bias)
    tgt, interp = pallas_target(target)
    interpret = interp if interpret is None else interpret

    def reference(x, w, scale, bias):
        return depthwise_conv_bn_act_reference(x, w, scale, bias, stride=stride,
                                               padding=padding, act=act)

    plan = None if kh != kw else depthwise_plan(x.shape, kh, stride, padding, x.dtype, tgt)
    if plan is None or plan.reason:
        reason = "non-square kernel" if plan is None else plan.reason
        record_fallback("depthwise_conv_bn_act", tgt,
                        (tuple(x.shape), (kh, kw), stride, str(x.dtype)), reason)
        return reference(x, w, scale, bias)

    def forward(x, w, scale, bias):
        return _dw_pallas_call(x, w, scale, bias, plan, act, interpret)

    return with_reference_vjp(forward, reference)(x, w, scale, bias)


def depthwise_conv_bn_act(x, w, scale=None, bias=None, *, stride: int = 1,
                          padding: Padding = "same", act: Optional[str] = None,
                          implementation: str = "auto", target: Optional[str] = None):
    """act(depthwise_conv(x, w) * scale + bias) with ``implementation``
    "auto" | "reference" | "xla_fast" | "pallas" (``target`` picks the Pallas
    variant, "tpu" or "triton"; default: the backend's).

    Every implementation gives the same result to float rounding.

    Args:
        x: (N, H, W, C) float input (NHWC).
        w: (kh, kw, 1, C) kernel (HWIO with I = 1), cast to ``x``'s dtype.
        scale: (C,) per-channel factor (a folded BatchNorm's
            ``gamma / sqrt(var + eps)``); None means 1.
        bias: (C,) per-channel offset (``beta - mean * scale``); None means 0.
        stride: the stride of both spatial axes.
        padding: ``"same"``, ``"symmetric"``, ``"valid"`` or explicit
            ``((top, bottom), (left, right))``; see ``resolve_padding``.
        act: activation applied last: None (identity), ``"relu"``,
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, ``"sigmoid"`` or
            ``"hard_sigmoid"``.
        implementation: ``"auto"`` (``xla_fast`` on CPU, ``reference`` on
            GPU/TPU), ``"reference"``, ``"xla_fast"`` or ``"pallas"``.
        target: with ``"pallas"``: ``"tpu"`` or ``"triton"``; None means the
            backend's own. Ignored by the other forms.

    Returns:
        (N, H_out, W_out, C) array of ``x``'s dtype; with ``"same"``,
        ``H_out = ceil(H / stride)`` and ``W_out = ceil(W / stride)``.

    Raises:
        ValueError: if ``implementation`` is unknown, or as the chosen form.

    Example:
        ::

            x = jnp.ones((1, 16, 16, 8)); w = jnp.ones((3, 3, 1, 8))
            y = depthwise_conv_bn_act(x, w, jnp.ones(8), jnp.zeros(8),
                                      stride=2, act="relu6")   # (1, 8, 8, 8)
    """
    impl = resolve_implementation(implementation)
    kwargs = dict(stride=stride, padding=padding, act=act)
    if impl == "reference":
        return depthwise_conv_bn_act_reference(x, w, scale, bias, **kwargs)
    if impl == "xla_fast":
        return depthwise_conv_bn_act_xla_fast(x, w, scale, bias, **kwargs)
    return depthwise_conv_bn_act_pallas(x, w, scale, bias, target=target, **kwargs)


def depthwise_conv(x: jax.Array, w: jax.Array, *, stride: int = 1,
                   padding: Padding = "same", implementation: str = "auto") -> jax.Array:
    """Depthwise convolution of NHWC ``x`` with a ``(kh, kw, 1, C)`` kernel.

    Args:
        x: (N, H, W, C) float input (NHWC).
        w: (kh, kw, 1, C) kernel (HWIO with I = 1), cast to ``x``'s dtype.
        stride: the stride of both spatial axes.
        padding: ``"same"``, ``"symmetric"``, ``"valid"`` or explicit
            ``((top, bottom), (left, right))``; see ``resolve_padding``.
        implementation: ``"auto"`` (``xla_fast`` on CPU, ``reference`` on
            GPU/TPU), ``"reference"``, ``"xla_fast"`` or ``"pallas"`` (the
            fused kernel with no scale, bias or activation).

    Returns:
        (N, H_out, W_out, C) array of ``x``'s dtype; with ``"same"``,
        ``H_out = ceil(H / stride)`` and ``W_out = ceil(W / stride)``.

    Raises:
        ValueError: if ``implementation`` is unknown, or as the chosen form.
    """
    impl = resolve_implementation(implementation)
    if impl == "reference":
        return depthwise_conv_reference(x, w, stride=stride, padding=padding)
    if impl == "xla_fast":
        return depthwise_conv_xla_fast(x, w, stride=stride, padding=padding)
    return depthwise_conv_bn_act_pallas(x, w, stride=stride, padding=padding)
