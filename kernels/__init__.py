"""Fused ops for the zoo's models: a plain-JAX reference, a fast XLA form for
CPU, and Pallas kernels for GPU (Triton) and TPU (Mosaic), behind one
``implementation`` switch ("auto" | "reference" | "xla_fast" | "pallas").

One op per file: ``depthwise_conv`` (k x k depthwise + folded BatchNorm +
activation), ``pointwise_conv`` (1x1 conv + bias + activation + residual),
``squeeze_excite`` (mean -> FC -> act -> FC -> gate -> channel scale).
``fallbacks()`` lists the shapes that ran the reference instead of a kernel.

Kernels know nothing of models; they import jax only.
"""

from kernels._common import (IMPLEMENTATIONS, TARGETS, Fallback, fallbacks, lowering_target,
                             pallas_target, resolve_implementation)
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
from kernels.pointwise_conv import (
    pointwise_conv,
    pointwise_conv_pallas,
    pointwise_conv_reference,
    pointwise_conv_xla_fast,
)
from kernels.squeeze_excite import (
    squeeze_excite,
    squeeze_excite_pallas,
    squeeze_excite_reference,
    squeeze_excite_xla_fast,
)

__all__ = [
    "IMPLEMENTATIONS",
    "TARGETS",
    "Fallback",
    "fallbacks",
    "lowering_target",
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
    "pointwise_conv",
    "pointwise_conv_pallas",
    "pointwise_conv_reference",
    "pointwise_conv_xla_fast",
    "squeeze_excite",
    "squeeze_excite_pallas",
    "squeeze_excite_reference",
    "squeeze_excite_xla_fast",
]
