"""Fused ops for the zoo's models: a plain-JAX reference, a fast XLA form for
CPU, and Pallas kernels for GPU/TPU, behind one ``implementation`` switch.

Kernels know nothing of models; they import jax only.
"""

from kernels.depthwise_conv import (
    IMPLEMENTATIONS,
    depthwise_conv,
    depthwise_conv_reference,
    depthwise_conv_xla_fast,
    resolve_implementation,
    same_padding,
)

__all__ = [
    "IMPLEMENTATIONS",
    "depthwise_conv",
    "depthwise_conv_reference",
    "depthwise_conv_xla_fast",
    "resolve_implementation",
    "same_padding",
]
