"""Squeeze-and-excite (Hu et al. 2018), NHWC, fused:

    s = gate(act(mean_hw(x) @ w1 + b1) @ w2 + b2);   y = x * s[:, None, None, :]

with ``act`` relu/relu6/swish/hard_swish and ``gate`` sigmoid/hard_sigmoid.

Forms behind one switch (``implementation``):

* ``squeeze_excite_reference``: the chain op by op (definition of correct;
  what TFLite export uses).
* ``squeeze_excite_xla_fast``: the same graph; XLA:CPU fuses the reduction
  and the final scale already, and the two tiny FCs are matrix-vector
  products, so there is no faster plain-XLA form.
* ``pallas``: one kernel does the pooling, both FCs, both activations and the
  channel scale, so the pooled vector and the gate never leave the chip:

  - TPU (Mosaic): grid (batch, phase, row tile). Phase 0 accumulates the
    channel sums of each (up to 2048-row, all-channel) tile in a VMEM
    scratch and, on the last tile, runs the FCs into a gate scratch; phase 1
    multiplies each tile by the gate. The output block index stays put
    through phase 0, so nothing is written until phase 1. When a whole image
    fits one tile (most model shapes), its block is not re-fetched between
    the phases: one read and one write of ``x``, the minimum.
  - GPU: Triton (why not Mosaic GPU: see ``kernels.depthwise_conv``). One
    program per image loops over power-of-two (rows, channels) tiles twice
    (pool, then scale), the FCs done as broadcast multiply-and-sum over
    channel chunks (matrix-vector products need no tensor cores). The
    wrapper pads rows, channels and the reduced width to tile multiples.

The backward pass is the reference's VJP (custom_vjp).
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

__all__ = ["IMPLEMENTATIONS", "squeeze_excite", "squeeze_excite_reference",
           "squeeze_excite_xla_fast", "squeeze_excite_pallas", "squeeze_excite_plan", "SEPlan"]

GATES = ("sigmoid", "hard_sigmoid")


def _check(x, w1, b1, w2, b2, gate):
    if x.ndim != 4:
        raise ValueError(f"squeeze_excite expects NHWC input of rank 4, got shape {x.shape}")
    c = x.shape[3]
    if w1.ndim != 2 or w1.shape[0] != c:
        raise ValueError(f"squeeze_excite: w1 must be (C={c}, R), got {w1.shape}")
    r = w1.shape[1]
    if b1.shape != (r,) or w2.shape != (r, c) or b2.shape != (c,):
        raise ValueError(f"squeeze_excite: expected b1 ({r},), w2 ({r}, {c}), b2 ({c},); got "
                         f"{b1.shape}, {w2.shape}, {b2.shape}")
    if gate not in GATES:
        raise ValueError(f"squeeze_excite: gate={gate!r}, use one of {GATES}")


def squeeze_excite_reference(x, w1, b1, w2, b2, *, act: str = "relu", gate: str = "sigmoid"):
    """x * gate(act(mean(x) @ w1 + b1) @ w2 + b2), op by op.

    The weights are cast to ``x``'s dtype.

    Args:
        x: (N, H, W, C) float input (NHWC).
        w1: (C, R) weights of the reducing FC.
        b1: (R,) its bias.
        w2: (R, C) weights of the expanding FC.
        b2: (C,) its bias.
        act: activation after the first FC: ``"relu"`` (default),
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, another activation
            name, or None for none.
        gate: the gate after the second FC: ``"sigmoid"`` or
            ``"hard_sigmoid"``.

    Returns:
        (N, H, W, C) array of ``x``'s dtype: ``x`` scaled per image and
        channel by the gate.

    Raises:
        ValueError: if ``x`` is not rank 4, a weight or bias has the wrong
            shape, ``gate`` is not a gate, or ``act`` is unknown.
    """
    _check(x, w1, b1, w2, b2, gate)
    s = jnp.mean(x, axis=(1, 2))
    s = act_fn(act)(s @ w1.astype(x.dtype) + b1.astype(x.dtype))
    s = act_fn(gate)(s @ w2.astype(x.dtype) + b2.astype(x.dtype))
    return x * s[:, None, None, :]


def squeeze_excite_xla_fast(x, w1, b1, w2, b2, *, act: str = "relu", gate: str = "sigmoid"):
    """XLA:CPU already fuses this graph well: the reference.

    Args:
        x: (N, H, W, C) float input (NHWC).
        w1: (C, R) weights of the reducing FC.
        b1: (R,) its bias.
        w2: (R, C) weights of the expanding FC.
        b2: (C,) its bias.
        act: activation after the first FC: ``"relu"`` (default),
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, another activation
            name, or None for none.
        gate: the gate after the second FC: ``"sigmoid"`` or
            ``"hard_sigmoid"``.

    Returns:
        (N, H, W, C) array of ``x``'s dtype: ``x`` scaled per image and
        channel by the gate.

    Raises:
        ValueError: if ``x`` is not rank 4, a weight or bias has the wrong
            shape, ``gate`` is not a gate, or ``act`` is unknown.
    """
    return squeeze_excite_reference(x, w1, b1, w2, b2, act=act, gate=gate)


# ------------------------------------------------------------------ Pallas


@dataclasses.dataclass(frozen=True)
class SEPlan:
    """How the Pallas kernel tiles one squeeze-and-excite; ``reason`` set
    means fall back to the reference.

    Attributes:
        target: ``"tpu"`` (Mosaic) or ``"triton"`` (GPU).
        n: batch size.
        hw: pixels per image, H * W.
        c: channels.
        r: the reduced width R.
        bt: pixels (rows of the (H * W, C) image) per tile; 0 when
            ``reason`` is set.
        bc: channels per tile (Triton; 0 on TPU, whose tiles hold all).
        hw_pad: ``hw`` padded to a multiple of ``bt`` (Triton; TPU: ``hw``).
        c_pad: ``c`` padded to a multiple of ``bc`` (Triton; TPU: ``c``).
        r_pad: ``r`` padded to a power of two, at least 2 (Triton; TPU:
            ``r``).
        vmem_bytes: the TPU plan's working set, double-buffered tiles plus
            weights and scratch, in bytes (0 for Triton).
        reason: why no tiling fits; empty when the plan is usable.
    """

    target: str
    n: int
    hw: int
    c: int
    r: int
    bt: int = 0  # rows (pixels) per tile
    bc: int = 0  # channels per tile (Triton)
    hw_pad: int = 0
    c_pad: int = 0
    r_pad: int = 0
    vmem_bytes: int = 0
    reason: str = ""

    @property
    def num_tiles(self) -> int:
        """Tiles per image, ``ceil(hw_pad / bt)``; only defined when
        ``reason`` is empty."""
        return pl.cdiv(self.hw_pad, self.bt)


def squeeze_excite_plan(shape, r: int, dtype=jnp.float32, target: str = "tpu") -> SEPlan:
    """Tiling of a squeeze-and-excite of NHWC ``shape`` with reduced width
    ``r`` for ``target``.

    TPU: all channels per tile and the most pixels (the whole image up to
    2048, else 2048 down to 8) whose working set fits the 16 MiB VMEM
    budget. Triton: power-of-two tiles of 8 to 64 pixels and 8 to 64
    channels.

    Args:
        shape: the input's (N, H, W, C).
        r: the reduced width R (columns of ``w1``).
        dtype: the input's dtype; its item size sets the working set.
        target: ``"tpu"`` or ``"triton"``.

    Returns:
        An ``SEPlan``; its ``reason`` is set (TPU only) when even 8 pixels
        with the FC weights exceed the VMEM budget.

    Raises:
        ValueError: if ``target`` is neither ``"tpu"`` nor ``"triton"``.
    """
    n, h, w, c = shape
    hw = h * w
    isz = itemsize(dtype)
    if target == "tpu":
        weights = 2 * 4 * (2 * c * r + r + c) + 3 * 8 * c * 4  # double-buffered, + scratch
        cands = [hw] if hw <= 2048 else []
        cands += [b for b in (2048, 1024, 512, 256, 128, 64, 32, 16, 8) if b < hw]
        for bt in cands:
            vmem = 2 * 2 * bt * c * isz + weights + 2 * bt * c * 4
            if vmem <= TPU_VMEM_BUDGET:
                return SEPlan(target, n, hw, c, r, bt=bt, hw_pad=hw, c_pad=c, r_pad=r,
                              vmem_bytes=vmem)
        return SEPlan(target, n, hw, c, r, reason=(
            f"8 rows x {c} channels and the FC weights need {vmem} bytes of VMEM, over "
            f"the {TPU_VMEM_BUDGET}-byte budget"))
    if target == "triton":
        bc = max(8, min(64, next_pow2(c)))
        bt = max(8, min(64, next_pow2(hw)))
        return SEPlan(target, n, hw, c, r, bt=bt, bc=bc, hw_pad=round_up(hw, bt),
                      c_pad=round_up(c, bc), r_pad=max(2, next_pow2(r)))
    raise ValueError(f"target={target!r}: use 'tpu' or 'triton'")


def _se_tpu_kernel(x_ref, w1_ref, b1_ref, w2_ref, b2_ref, o_ref, acc_ref, g_ref, *,
                   hw, bt, nt, act, gate):
    p, t = pl.program_id(1), pl.program_id(2)

    @pl.when((p == 0) & (t == 0))
    def _():
        acc_ref[...] = jnp.zeros_like(acc_ref)

    @pl.when(p == 0)
    def _():
        x = x_ref[...].astype(jnp.float32)
        if hw % bt:  # the last tile runs past the image: zero its tail
            rows = lax.broadcasted_iota(jnp.int32, x.shape, 0) + t * bt
            x = jnp.where(rows < hw, x, 0.0)
        acc_ref[...] += jnp.broadcast_to(jnp.sum(x, axis=0, keepdims=True), acc_ref.shape)

        @pl.when(t == nt - 1)
        def _():
            m = acc_ref[...] * (1.0 / hw)  # (8, C): eight equal rows, a full sublane tile
            h = act_fn(act)(jnp.dot(m, w1_ref[...], preferred_element_type=jnp.float32)
                            + b1_ref[...])
            g_ref[...] = act_fn(gate)(jnp.dot(h, w2_ref[...], preferred_element_type=jnp.float32)
                                      + b2_ref[...])

    @pl.when(p == 1)
    def _():
        o_ref[...] = (x_ref[...].astype(jnp.float32) * g_ref[pl.ds(0, 1), :]).astype(o_ref.dtype)


def _se_triton_kernel(x_ref, w1t_ref, b1_ref, w2_ref, b2_ref, o_ref, *,
                      hw, bt, bc, nt, nc, act, gate):
    # x (HWp, Cp); w1t (Rp, Cp); b1 (Rp, 1); w2 (Rp, Cp); b2 (1, Cp)
    def pool(ci, h):
        c0 = pl.multiple_of(ci * bc, bc)

        def rows(ti, s):
            t0 = pl.multiple_of(ti * bt, bt)
            tile = x_ref[pl.ds(t0, bt), pl.ds(c0, bc)].astype(jnp.float32)
            return s + jnp.sum(tile, axis=0, keepdims=True)

        s = lax.fori_loop(0, nt, rows, jnp.zeros((1, bc), jnp.float32)) * (1.0 / hw)
        return h + jnp.sum(w1t_ref[:, pl.ds(c0, bc)] * s, axis=1, keepdims=True)

    h = lax.fori_loop(0, nc, pool, jnp.zeros((w1t_ref.shape[0], 1), jnp.float32))
    h = act_fn(act)(h + b1_ref[...])

    def scale(ci, carry):
        c0 = pl.multiple_of(ci * bc, bc)
        g = jnp.sum(w2_ref[:, pl.ds(c0, bc)] * h, axis=0, keepdims=True)
        g = act_fn(gate)(g + b2_ref[:, pl.ds(c0, bc)])

        def rows(ti, carry):
            t0 = pl.multiple_of(ti * bt, bt)
            tile = x_ref[pl.ds(t0, bt), pl.ds(c0, bc)].astype(jnp.float32)
            o_ref[pl.ds(t0, bt), pl.ds(c0, bc)] = (tile * g).astype(o_ref.dtype)
            return carry

        return lax.fori_loop(0, nt, rows, carry)

    lax.fori_loop(0, nc, scale, 0)


def _se_pallas_call(x, w1, b1, w2, b2, plan: SEPlan, act, gate, interpret):
    n, hw, c, r = plan.n, plan.hw, plan.c, plan.r
    x3 = x.reshape(n, hw, c)
    f32 = jnp.float32
    isz = itemsize(x.dtype)
    cost = pl.CostEstimate(
        flops=int(n * (2 * hw * c + 4 * c * r + 8 * (c + r))),
        transcendentals=int(n * ((c if gate == "sigmoid" else 0)
                                 + (r if act in TRANSCENDENTAL else 0))),
        # x read once (twice when an image spans several tiles), written once.
        bytes_accessed=int((2 if plan.num_tiles == 1 else 3) * n * hw * c * isz
                           + 4 * (2 * c * r + c + r)))
    if plan.target == "tpu":
        from jax.experimental.pallas import tpu as pltpu
        bt, nt = plan.bt, plan.num_tiles
        y = pl.pallas_call(
            functools.partial(_se_tpu_kernel, hw=hw, bt=bt, nt=nt, act=act, gate=gate),
            out_shape=jax.ShapeDtypeStruct((n, hw, c), x.dtype),
            grid=(n, 2, nt),
            in_specs=[pl.BlockSpec((None, bt, c), lambda b, p, t: (b, t, 0)),
                      pl.BlockSpec((c, r), lambda b, p, t: (0, 0)),
                      pl.BlockSpec((1, r), lambda b, p, t: (0, 0)),
                      pl.BlockSpec((r, c), lambda b, p, t: (0, 0)),
                      pl.BlockSpec((1, c), lambda b, p, t: (0, 0))],
            out_specs=pl.BlockSpec((None, bt, c), lambda b, p, t: (b, t * p, 0)),
            scratch_shapes=[pltpu.VMEM((8, c), f32), pltpu.VMEM((8, c), f32)],
            compiler_params=pltpu.CompilerParams(
                dimension_semantics=("parallel", "arbitrary", "arbitrary"),
                vmem_limit_bytes=max(TPU_VMEM_BUDGET, plan.vmem_bytes + 2**20)),
            cost_estimate=cost,
            interpret=interpret,
            name=f"squeeze_excite_{act}_{gate}",
        )(x3, w1.astype(f32), b1.reshape(1, r).astype(f32), w2.astype(f32),
          b2.reshape(1, c).astype(f32))
        return y.reshape(x.shape)
    from jax.experimental.pallas import triton as pltr
    hp, cp, rp = plan.hw_pad, plan.c_pad, plan.r_pad
    x3 = jnp.pad(x3, ((0, 0), (0, hp - hw), (0, cp - c)))
    w1t = jnp.pad(w1.T.astype(f32), ((0, rp - r), (0, cp - c)))
    b1p = jnp.pad(b1.astype(f32), (0, rp - r)).reshape(rp, 1)
    w2p = jnp.pad(w2.astype(f32), ((0, rp - r), (0, cp - c)))
    b2p = jnp.pad(b2.astype(f32), (0, cp - c)).reshape(1, cp)
    y = pl.pallas_call(
        functools.partial(_se_triton_kernel, hw=hw, bt=plan.bt, bc=plan.bc, nt=hp // plan.bt,
                          nc=cp // plan.bc, act=act, gate=gate),
        out_shape=jax.ShapeDtypeStruct((n, hp, cp), x.dtype),
        grid=(n,),
        in_specs=[pl.BlockSpec((None, hp, cp), lambda b: (b, 0, 0)),
                  pl.BlockSpec((rp, cp), lambda b: (0, 0)),
                  pl.BlockSpec((rp, 1), lambda b: (0, 0)),
                  pl.BlockSpec((rp, cp), lambda b: (0, 0)),
                  pl.BlockSpec((1, cp), lambda b: (0, 0))],
        out_specs=pl.BlockSpec((None, hp, cp), lambda b: (b, 0, 0)),
        compiler_params=pltr.CompilerParams(num_warps=4, num_stages=1),
        cost_estimate=cost,
        interpret=interpret,
        name=f"squeeze_excite_{act}_{gate}",
    )(x3, w1t, b1p, w2p, b2p)
    return y[:, :hw, :c].reshape(x.shape)


def squeeze_excite_pallas(x, w1, b1, w2, b2, *, act: str = "relu", gate: str = "sigmoid",
                          target: Optional[str] = None, interpret: Optional[bool] = None):
    """The fused Pallas kernel; differentiable through the reference's VJP.

    Computes in float32 and casts the result to ``x``'s dtype. A shape the
    plan cannot take runs the reference and is recorded in
    ``kernels.fallbacks()``.

    Args:
        x: (N, H, W, C) float input (NHWC).
        w1: (C, R) weights of the reducing FC.
        b1: (R,) its bias.
        w2: (R, C) weights of the expanding FC.
        b2: (C,) its bias.
        act: activation after the first FC: ``"relu"`` (default),
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, another activation
            name, or None for none.
        gate: the gate after the second FC: ``"sigmoid"`` or
            ``"hard_sigmoid"``.
        target: the kernel variant, ``"tpu"`` or ``"triton"``; None means
            the backend's own (``"tpu"`` on CPU). See ``pallas_target``.
        interpret: run in the Pallas interpreter; None means whenever the
            variant is not the backend's own (always on CPU), never inside
            ``lowering_target``.

    Returns:
        (N, H, W, C) array of ``x``'s dtype: ``x`` scaled per image and
        channel by the gate.

    Raises:
        ValueError: if ``x`` is not rank 4, a weight or bias has the wrong
            shape, ``gate`` is not a gate, ``act`` is unknown, or ``target``
            is not a variant.
    """
    _check(x, w1, b1, w2, b2, gate)
    act_fn(act)
    tgt, interp = pallas_target(target)
    interpret = interp if interpret is None else interpret
    plan = squeeze_excite_plan(x.shape, w1.shape[1], x.dtype, tgt)

    def reference(x, w1, b1, w2, b2):
        return squeeze_excite_reference(x, w1, b1, w2, b2, act=act, gate=gate)

    if plan.reason:
        record_fallback("squeeze_excite", tgt, (tuple(x.shape), w1.shape[1], str(x.dtype)),
                        plan.reason)
        return reference(x, w1, b1, w2, b2)

    def forward(x, w1, b1, w2, b2):
        return _se_pallas_call(x, w1, b1, w2, b2, plan, act, gate, interpret)

    return with_reference_vjp(forward, reference)(x, w1, b1, w2, b2)


def squeeze_excite(x, w1, b1, w2, b2, *, act: str = "relu", gate: str = "sigmoid",
                   implementation: str = "auto", target: Optional[str] = None):
    """Squeeze-and-excite of NHWC ``x``: w1 (C, R), b1 (R,), w2 (R, C), b2 (C,).

    Every implementation gives the same result to float rounding.

    Args:
        x: (N, H, W, C) float input (NHWC).
        w1: (C, R) weights of the reducing FC.
        b1: (R,) its bias.
        w2: (R, C) weights of the expanding FC.
        b2: (C,) its bias.
        act: activation after the first FC: ``"relu"`` (default),
            ``"relu6"``, ``"swish"``, ``"hard_swish"``, another activation
            name, or None for none.
        gate: the gate after the second FC: ``"sigmoid"`` or
            ``"hard_sigmoid"``.
        implementation: ``"auto"`` (``xla_fast`` on CPU, ``reference`` on
            GPU/TPU), ``"reference"``, ``"xla_fast"`` or ``"pallas"``.
        target: with ``"pallas"``: ``"tpu"`` or ``"triton"``; None means the
            backend's own. Ignored by the other forms.

    Returns:
        (N, H, W, C) array of ``x``'s dtype: ``x`` scaled per image and
        channel by the gate.

    Raises:
        ValueError: if ``implementation`` is unknown, or as the chosen form.

    Example:
        ::

            x = jnp.ones((2, 7, 7, 32))
            w1, b1, w2, b2 = jnp.ones((32, 8)), jnp.zeros(8), jnp.ones((8, 32)), jnp.zeros(32)
            y = squeeze_excite(x, w1, b1, w2, b2, act="swish")   # (2, 7, 7, 32)
    """
    impl = resolve_implementation(implementation)
    if impl == "reference":
        return squeeze_excite_reference(x, w1, b1, w2, b2, act=act, gate=gate)
    if impl == "xla_fast":
        return squeeze_excite_xla_fast(x, w1, b1, w2, b2, act=act, gate=gate)
    return squeeze_excite_pallas(x, w1, b1, w2, b2, act=act, gate=gate, target=target)
