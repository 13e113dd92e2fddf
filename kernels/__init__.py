"""Fused ops for the zoo's models: a plain-JAX reference, a fast XLA form for
CPU, and Pallas kernels for GPU (Triton) and TPU (Mosaic), behind one
``implementation`` switch ("auto" | "reference" | "xla_fast" | "pallas").

One op per file: ``depthwise_conv`` (k x k depthwise + folded BatchNorm +
activation), ``pointwise_conv`` (1x1 conv + bias + activation + residual),
``squeeze_excite`` (mean -> FC -> act -> FC -> gate -> channel scale).
``fallbacks()`` lists the shapes that ran the reference instead of a kernel.

Kernels know nothing of models; they import jax only.
"""

from kernels._common import (IMPLEMENTATIONS, TARGETS, Fallback, fallbacks, pallas_target,
                             resolve_implementation)
from kernels.depthwise_conv import (
    depthwise_conv,
    depthwise_conv_bn_act,
    depthwise_conv_bn_act_pallas,
    depthwise_conv_bn_act_reference,
    depthwise_conv_bn_act_xla_fast,
    depthwise_conv_reference,
    depthwise_conv_xla_fast,
    same_padding,
)

__all__ = [
    "IMPLEMENTATIONS",
    "TARGETS",
    "Fallback",
    "fallbacks",
    "pallas_target",
    "resolve_implementation",
    "depthwise_conv",
    "depthwise_conv_bn_act",
    "depthwise_conv_bn_act_pallas",
    "depthwise_conv_bn_act_reference",
    "depthwise_conv_bn_act_xla_fast",
    "depthwise_conv_reference",
    "depthwise_conv_xla_fast",
    "same_padding",
]
