"""Depthwise k x k convolution (one filter per channel), NHWC.

Three forms behind one switch:

* ``depthwise_conv_reference``: XLA's grouped convolution
  (``feature_group_count = C``). The definition of correct, and what TFLite
  export uses (it becomes a single DEPTHWISE_CONV_2D op).
* ``depthwise_conv_xla_fast``: the same sum written as k*k shifted, strided
  multiply-adds. XLA:CPU fuses these into one loop nest; its grouped
  convolution does not vectorise and was measured 17-40x slower per layer on
  the 2-core x86 machines used here (EfficientNet-B0 at batch 1: about
  214 ms with grouped conv, about 30 ms with this form, same logits to 1e-6).
* ``pallas``: fused Pallas kernels for GPU/TPU (not written yet: issue 7).

``implementation="auto"`` picks ``xla_fast`` on CPU and ``reference`` on
GPU/TPU, where cuDNN and the TPU compiler handle grouped convolution well.

The kernel layout is HWIO with I = 1: ``(kh, kw, 1, C)``, the layout
``lax.conv_general_dilated`` expects for a depthwise convolution.
"""

from __future__ import annotations

from typing import Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax

IMPLEMENTATIONS = ("auto", "reference", "xla_fast", "pallas")

Padding = Union[str, Sequence[tuple[int, int]]]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one spatial axis: output = ceil(size/stride),
    the extra pixel (if any) goes after. Weights trained in TensorFlow expect it."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: Padding, spatial: Sequence[int], kernel: Sequence[int],
                    stride: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Explicit ((top, bottom), (left, right)) pads from a padding mode.

    ``"same"``: TensorFlow SAME (asymmetric at stride 2 on even sizes).
    ``"symmetric"``: k//2 on each side, as PyTorch models are written.
    ``"valid"``: none. A pair of pairs is returned unchanged.
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
    """Definition of correct: XLA grouped convolution."""
    _check(x, w)
    pads = resolve_padding(padding, x.shape[1:3], w.shape[:2], stride)
    return lax.conv_general_dilated(
        x, w.astype(x.dtype), window_strides=(stride, stride), padding=pads,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[3])


def depthwise_conv_xla_fast(x: jax.Array, w: jax.Array, *, stride: int = 1,
                            padding: Padding = "same") -> jax.Array:
    """k*k shifted multiply-adds; XLA:CPU fuses them into one vectorised loop."""
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


def resolve_implementation(implementation: str, backend: str | None = None) -> str:
    """The concrete form ``implementation`` stands for on ``backend``."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"implementation={implementation!r} is not one of {IMPLEMENTATIONS}")
    if implementation != "auto":
        return implementation
    backend = backend or jax.default_backend()
    # XLA:CPU's grouped convolution is the slow path (see module docstring);
    # accelerators run it well.
    return "xla_fast" if backend == "cpu" else "reference"


def depthwise_conv(x: jax.Array, w: jax.Array, *, stride: int = 1,
                   padding: Padding = "same", implementation: str = "auto") -> jax.Array:
    """Depthwise convolution of NHWC ``x`` with a ``(kh, kw, 1, C)`` kernel."""
    impl = resolve_implementation(implementation)
    if impl == "reference":
        return depthwise_conv_reference(x, w, stride=stride, padding=padding)
    if impl == "xla_fast":
        return depthwise_conv_xla_fast(x, w, stride=stride, padding=padding)
    raise NotImplementedError(
        "implementation='pallas' for depthwise_conv is not written yet (issue 7); "
        "use 'auto', 'reference' or 'xla_fast'")
