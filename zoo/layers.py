"""Layers shared by the model families: convolutions, BatchNorm, squeeze-excite,
the inverted-residual block, activations, and input checks.

Parameters are float32; ``dtype`` is the compute dtype. Depthwise convolutions
go through ``kernels.depthwise_conv`` so the ``implementation`` switch reaches
every model. With ``implementation="pallas"`` the fused kernels take over in
eval mode: depthwise conv + folded BatchNorm + activation, 1x1 conv + folded
BatchNorm + activation (+ the block's residual), and squeeze-excite, each one
Pallas call (interpret mode on CPU); the parameters are the same variables
under the same names. In training mode BatchNorm needs batch statistics, so
only the convolutions run as kernels (gradients through the reference's VJP).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from kernels import (depthwise_conv, depthwise_conv_bn_act, pointwise_conv, resolve_implementation,
                     squeeze_excite)
from kernels.depthwise_conv import resolve_padding

# ---------------------------------------------------------------- activations


def hard_sigmoid(x):
    """Piecewise-linear sigmoid of MobileNetV3: ``relu6(x + 3) / 6``.

    Args:
        x: array of any shape, floating point.

    Returns:
        An array like ``x`` with values in [0, 1].
    """
    return jax.nn.relu6(x + 3.0) * (1.0 / 6.0)


def hard_swish(x):
    """Hard-swish of MobileNetV3: ``x * hard_sigmoid(x)``.

    Args:
        x: array of any shape, floating point.

    Returns:
        An array like ``x``.
    """
    return x * hard_sigmoid(x)


ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "swish": jax.nn.swish,
    "hard_swish": hard_swish,
    "sigmoid": jax.nn.sigmoid,
    "hard_sigmoid": hard_sigmoid,
}


def activation(name: Optional[str]) -> Callable:
    """The activation function a layer table names.

    Args:
        name: a key of ``ACTIVATIONS`` ("relu", "relu6", "swish",
            "hard_swish", "sigmoid", "hard_sigmoid"), or None for none.

    Returns:
        An elementwise function of one array; the identity for None.

    Raises:
        ValueError: if ``name`` is not a known activation.
    """
    if name is None:
        return lambda x: x
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None


# ------------------------------------------------------------ shared settings


@dataclasses.dataclass(frozen=True)
class ConvSettings:
    """How every convolution of one model is computed.

    ``padding`` and ``bn_eps`` must match what the weights were trained with:
    TensorFlow "same" and 1e-3 for Keras/TF checkpoints, "symmetric" and 1e-5
    for torchvision's.

    Attributes:
        padding: "same" (TensorFlow SAME: at stride 2 on an even size the
            extra pixel goes after) or "symmetric" (k // 2 on each side, as
            PyTorch models pad).
        bn_eps: BatchNorm epsilon added to the variance.
        bn_momentum: BatchNorm running-average momentum in training (Flax's
            convention: the weight of the old statistics).
        implementation: "auto", "reference", "xla_fast" or "pallas": which
            form of the ``kernels`` ops the layers run (``auto`` picks by
            backend).
        dtype: compute dtype, float32, bfloat16 or float16 (parameters stay
            float32); normalised to a ``jnp.dtype``.

    Raises:
        ValueError: on construction, for an unknown ``padding``,
            ``implementation`` or a ``dtype`` not listed above.
    """

    padding: str = "same"
    bn_eps: float = 1e-3
    bn_momentum: float = 0.99
    implementation: str = "auto"
    dtype: jnp.dtype = jnp.float32

    def __post_init__(self):
        if self.padding not in ("same", "symmetric"):
            raise ValueError(f"padding={self.padding!r}: use 'same' (TensorFlow) or 'symmetric'")
        resolve_implementation(self.implementation, "cpu")  # validates the name
        object.__setattr__(self, "dtype", jnp.dtype(self.dtype))
        if self.dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16),
                              jnp.dtype(jnp.float16)):
            raise ValueError(f"dtype={self.dtype}: use float32, bfloat16 or float16")


class ChecksConventions(nn.Module):
    """A zoo model: its ``apply`` refuses weights that carry other
    conventions (``zoo.weights.Weights``) than the model was built with,
    since the outputs would be silently wrong. Every family derives from
    it; a subclass has a ``settings: ConvSettings`` field."""

    def apply(self, variables, *args, **kwargs):
        """``flax.linen.Module.apply``, after checking the weights'
        conventions against ``self.settings``. Under ``jax.jit`` too: the
        conventions are part of the weights' pytree structure.

        Args:
            variables: ``{"params": ..., "batch_stats": ...}``, a plain dict
                (which records no conventions and is not checked) or
                ``zoo.weights.Weights``.
            *args: passed on to ``flax.linen.Module.apply`` (the input
                first).
            **kwargs: passed on too (``train=``, ``mutable=``, ``rngs=``,
                ``method=``, ...).

        Returns:
            What ``flax.linen.Module.apply`` returns: the outputs, and the
            updated collections when ``mutable`` is given.

        Raises:
            zoo.weights.errors.ConventionsMismatchError: if ``variables``
                record padding or BatchNorm conventions other than the
                model's.
        """
        if getattr(variables, "conventions", None) is not None:
            from zoo.weights.conventions import check_apply
            check_apply(self, variables)
        return super().apply(variables, *args, **kwargs)


# ----------------------------------------------------------- initialisers
#
# Variance scaling over fan-out, as in the EfficientNet and MobileNet
# reference code. Drawing each parameter with its own jax.random call makes
# XLA compile one RNG kernel per parameter (about 10 s for EfficientNet-B0 on
# the 2-core CPU); ``bulk_noise`` lets ``zoo.create`` draw all the noise in
# two calls and hand out slices of it instead, with the same distributions.

_bulk = threading.local()


@contextlib.contextmanager
def bulk_noise(truncated_normal: jax.Array, uniform: jax.Array):
    """Within this context, initialisers take their noise from these flat
    buffers (standard truncated normal on [-2, 2], uniform on [-1, 1]).

    Each initialiser call takes the next ``prod(shape)`` values of its
    buffer, so the buffers must hold at least as many values as every
    parameter initialised inside the context needs. The state is
    thread-local; on exit the initialisers draw their own noise again.

    Args:
        truncated_normal: 1-D float array of standard normal values
            truncated to [-2, 2] (for ``conv_init``, ``depthwise_init``).
        uniform: 1-D float array of values uniform on [-1, 1] (for
            ``dense_init``).

    Yields:
        None; the buffers are in use until the ``with`` block ends.
    """
    _bulk.buffers = {"truncated_normal": truncated_normal, "uniform": uniform}
    _bulk.offsets = {"truncated_normal": 0, "uniform": 0}
    try:
        yield
    finally:
        _bulk.buffers = None


def _noise(kind: str, key, shape, dtype):
    buffers = getattr(_bulk, "buffers", None)
    if buffers is None:
        if kind == "truncated_normal":
            return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)
        return jax.random.uniform(key, shape, dtype, -1.0, 1.0)
    n, start = math.prod(shape), _bulk.offsets[kind]
    _bulk.offsets[kind] = start + n
    return lax.dynamic_slice_in_dim(buffers[kind], start, n).reshape(shape).astype(dtype)


def fan_out_init(scale: float, kind: str, fan_out_axes: tuple[int, ...]):
    """Variance scaling ``scale / fan_out``; fan-out is the product of the
    kernel's spatial axes and ``fan_out_axes``.

    The module's initialisers are made with it: ``conv_init`` (2.0,
    truncated normal, output channels: He initialisation over fan-out),
    ``depthwise_init`` (2.0, truncated normal, the channel axis of a
    ``(k, k, 1, C)`` kernel, so fan-out k x k) and ``dense_init`` (1/3,
    uniform, output features: limit ``1 / sqrt(fan_out)``), as in the
    EfficientNet and MobileNet reference code.

    Args:
        scale: the variance times fan-out.
        kind: "truncated_normal" (normal truncated at two standard
            deviations, rescaled to the target variance); any other value
            draws uniformly from [-limit, limit] with that variance.
        fan_out_axes: axes of the parameter's shape multiplied into the
            fan-out besides the spatial ones (all but the last two axes of a
            kernel of rank above 2).

    Returns:
        An initialiser ``init(key, shape, dtype=float32)`` for
        ``flax.linen.Module.param``.
    """

    def init(key, shape, dtype=jnp.float32):
        """Draw a parameter with variance ``scale / fan_out`` (see
        ``fan_out_init`` for the scale, distribution and fan-out axes).

        Args:
            key: a ``jax.random`` key; unused inside ``bulk_noise``, where
                the values come from its buffers.
            shape: the parameter's shape, e.g. ``(k, k, C_in, C_out)``.
            dtype: the parameter's dtype.

        Returns:
            An array of ``shape`` and ``dtype``.
        """
        fan = math.prod(shape[:-2] if len(shape) > 2 else ()) * math.prod(shape[a] for a in fan_out_axes)
        if kind == "truncated_normal":  # std of N(0,1) truncated to [-2, 2]
            std = math.sqrt(scale / fan) / 0.87962566103423978
        else:  # uniform on [-limit, limit]
            std = math.sqrt(3.0 * scale / fan)
        return _noise(kind, key, shape, dtype) * std

    return init


conv_init = fan_out_init(2.0, "truncated_normal", (-1,))
depthwise_init = fan_out_init(2.0, "truncated_normal", (-2,))  # (k, k, 1, C): fan-out k*k
dense_init = fan_out_init(1.0 / 3.0, "uniform", (-1,))


# ------------------------------------------------------------------- layers


class Conv(nn.Module):
    """Dense (ungrouped) k x k convolution, kernel HWIO.

    ``__call__(x)``: ``x`` (N, H, W, C_in) -> (N, H', W', ``features``) in
    ``x``'s dtype, H' = ceil(H / stride) with "same" padding. Parameters
    ``kernel`` (k, k, C_in, features) and, with ``use_bias``, ``bias``.

    Attributes:
        features: output channels.
        kernel: kernel side k.
        stride: stride along H and W.
        use_bias: add a learned per-channel bias.
        settings: padding, implementation and compute dtype.
    """

    features: int
    kernel: int = 1
    stride: int = 1
    use_bias: bool = False
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x):
        w = self.param("kernel", conv_init, (self.kernel, self.kernel, x.shape[-1], self.features))
        impl = resolve_implementation(self.settings.implementation)
        if self.kernel == 1 and self.stride == 1 and _fused_form(impl):
            b = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
            return pointwise_conv(x, w, None, b, implementation=impl)
        pads = resolve_padding(self.settings.padding, x.shape[1:3], w.shape[:2], self.stride)
        if (impl == "xla_fast" and XLA_DOT_FORMS and self.kernel > 1
                and x.shape[-1] <= _IM2COL_MAX_CHANNELS):
            y = _conv_im2col(x, w.astype(x.dtype), self.stride, pads)
        else:
            y = lax.conv_general_dilated(
                x, w.astype(x.dtype), (self.stride, self.stride), pads,
                dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(y.dtype)
        return y


# A stem conv sees the 3 image channels: XLA:CPU's convolution vectorises
# poorly over so few input channels, while gathering the k*k taps into
# channels (im2col, k*k*3 = 27 wide) and one dot runs 1.4x (batch 1) to 1.9x
# (batch 8) faster at 224x224 on the 2-core x86 machines here. The gathered
# input is k*k times the image, so only narrow inputs take this path.
_IM2COL_MAX_CHANNELS = 4

# xla_fast's dot forms (1x1 convs and narrow stems as dots, inference ConvBN
# through the kernels' fused epilogue). `python -m benchmarks.implementations`
# switches this off at trace time to measure what they save.
XLA_DOT_FORMS = True


def _conv_im2col(x, w, stride: int, pads):
    kh, kw = w.shape[:2]
    xp = jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    out_h = (xp.shape[1] - kh) // stride + 1
    out_w = (xp.shape[2] - kw) // stride + 1
    taps = [lax.slice(xp, (0, i, j, 0),
                      (xp.shape[0], i + (out_h - 1) * stride + 1, j + (out_w - 1) * stride + 1,
                       xp.shape[3]), (1, stride, stride, 1))
            for i in range(kh) for j in range(kw)]
    # Channel order (i, j, c) matches the HWIO kernel flattened row-major.
    return jnp.dot(jnp.concatenate(taps, axis=-1), w.reshape(-1, w.shape[-1]))


class DepthwiseConv(nn.Module):
    """One k x k filter per channel, kernel ``(k, k, 1, C)``; see ``kernels``.

    ``__call__(x)``: ``x`` (N, H, W, C) -> (N, H', W', C), no bias.

    Attributes:
        kernel: kernel side k.
        stride: stride along H and W.
        settings: padding, implementation and compute dtype.
    """

    kernel: int = 3
    stride: int = 1
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x):
        w = self.param("kernel", depthwise_init, (self.kernel, self.kernel, 1, x.shape[-1]))
        return depthwise_conv(x, w, stride=self.stride, padding=self.settings.padding,
                              implementation=self.settings.implementation)


class Dense(nn.Module):
    """Fully connected layer on the last axis (also the 1x1 convs of SE heads).

    ``__call__(x)``: ``x`` (..., C_in) -> (..., ``features``); parameters
    ``kernel`` (C_in, features) and, with ``use_bias``, ``bias``.

    Attributes:
        features: output width.
        use_bias: add a learned bias.
        init: initialiser of the kernel (``dense_init``; the SE layers use
            ``conv_init``, as their reference code's 1x1 convs do).
    """

    features: int
    use_bias: bool = True
    init: Callable = dense_init

    @nn.compact
    def __call__(self, x):
        w = self.param("kernel", self.init, (x.shape[-1], self.features))
        y = x @ w.astype(x.dtype)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(y.dtype)
        return y


def _fused_form(impl: str) -> bool:
    return impl == "pallas" or (impl == "xla_fast" and XLA_DOT_FORMS)


def _pallas(settings: ConvSettings) -> bool:
    return resolve_implementation(settings.implementation) == "pallas"


class _KernelParam(nn.Module):
    """Declares a conv's ``kernel`` exactly as ``Conv``/``DepthwiseConv`` do
    (same name, shape, initialiser), for the fused kernels to use."""

    shape: tuple
    initializer: Callable

    @nn.compact
    def __call__(self):
        return self.param("kernel", self.initializer, self.shape)


class _DenseParams(nn.Module):
    """``Dense``'s ``kernel`` and ``bias``, declared without computing."""

    shape: tuple
    initializer: Callable

    @nn.compact
    def __call__(self):
        w = self.param("kernel", self.initializer, self.shape)
        return w, self.param("bias", nn.initializers.zeros, (self.shape[1],))


class _FoldedBN(nn.Module):
    """``nn.BatchNorm``'s variables (same names), folded for inference into a
    per-channel scale and bias: y = x * scale + bias."""

    features: int
    eps: float

    @nn.compact
    def __call__(self):
        c = (self.features,)
        mean = self.variable("batch_stats", "mean", lambda s: jnp.zeros(s, jnp.float32), c).value
        var = self.variable("batch_stats", "var", lambda s: jnp.ones(s, jnp.float32), c).value
        gamma = self.param("scale", nn.initializers.ones, c)
        beta = self.param("bias", nn.initializers.zeros, c)
        scale = gamma * lax.rsqrt(var + self.eps)
        return scale, beta - mean * scale


class ConvBN(nn.Module):
    """Convolution (dense or depthwise), BatchNorm, activation.

    Submodules are named ``conv`` and ``bn``; weight converters rely on it.
    ``residual`` (same shape as the output) is added after the activation;
    with ``implementation="pallas"`` in eval mode the depthwise and 1x1 cases
    run as one fused kernel each, the residual add included.

    ``__call__(x, train=False, residual=None)``: ``x`` (N, H, W, C) ->
    (N, H', W', ``features``), or C channels when ``depthwise``. With
    ``train=True`` BatchNorm uses and updates batch statistics (apply with
    ``mutable=["batch_stats"]``).

    Attributes:
        features: output channels (ignored when ``depthwise``: the output
            keeps the input's channels).
        kernel: kernel side k.
        stride: stride along H and W.
        act: activation name (see ``activation``), or None for none.
        depthwise: a depthwise conv instead of a dense one.
        settings: padding, BatchNorm epsilon and momentum, implementation,
            compute dtype.
    """

    features: int
    kernel: int = 1
    stride: int = 1
    act: Optional[str] = None
    depthwise: bool = False
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x, train: bool = False, residual=None):
        fusable = self.depthwise or (self.kernel == 1 and self.stride == 1)
        impl = resolve_implementation(self.settings.implementation)
        # Inference runs the kernels' fused forms: Pallas, or on CPU the
        # xla_fast forms, where a 1x1 conv is a dot (with the im2col stem, whole
        # models run 1.2-1.4x faster than with conv_general_dilated:
        # `python -m benchmarks.implementations`). `reference` keeps flax's
        # conv + BatchNorm, the graph the TFLite export folds.
        if fusable and not train and _fused_form(impl):
            return self._fused(x, residual, impl)
        if self.depthwise:
            x = DepthwiseConv(self.kernel, self.stride, self.settings, name="conv")(x)
        else:
            x = Conv(self.features, self.kernel, self.stride, settings=self.settings, name="conv")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=self.settings.bn_momentum,
                         epsilon=self.settings.bn_eps, dtype=self.settings.dtype, name="bn")(x)
        x = activation(self.act)(x)
        return x if residual is None else x + residual

    def _fused(self, x, residual, impl):
        c = x.shape[-1]
        if self.depthwise:
            w = _KernelParam((self.kernel, self.kernel, 1, c), depthwise_init, name="conv")()
            scale, bias = _FoldedBN(c, self.settings.bn_eps, name="bn")()
            y = depthwise_conv_bn_act(x, w, scale, bias, stride=self.stride,
                                      padding=self.settings.padding, act=self.act,
                                      implementation=impl)
            return y if residual is None else y + residual
        w = _KernelParam((1, 1, c, self.features), conv_init, name="conv")()
        scale, bias = _FoldedBN(self.features, self.settings.bn_eps, name="bn")()
        return pointwise_conv(x, w, scale, bias, residual, act=self.act, implementation=impl)


class SqueezeExcite(nn.Module):
    """Global mean -> FC -> act -> FC -> gate -> channel scale (Hu et al. 2018).

    ``__call__(x)``: ``x`` (N, H, W, C) -> the same shape, each channel
    scaled by its gate. Layers ``reduce`` and ``expand`` (``Dense``, with
    bias).

    Attributes:
        reduced: width of the bottleneck FC.
        act: activation after the first FC.
        gate: activation of the gate ("sigmoid" or "hard_sigmoid").
        settings: implementation (``pallas`` runs the whole block as one
            kernel).
    """

    reduced: int
    act: str = "relu"
    gate: str = "sigmoid"
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x):
        if _pallas(self.settings):  # one fused kernel, same variables
            c = x.shape[-1]
            w1, b1 = _DenseParams((c, self.reduced), conv_init, name="reduce")()
            w2, b2 = _DenseParams((self.reduced, c), conv_init, name="expand")()
            return squeeze_excite(x, w1, b1, w2, b2, act=self.act, gate=self.gate,
                                  implementation="pallas")
        s = jnp.mean(x, axis=(1, 2))
        s = activation(self.act)(Dense(self.reduced, init=conv_init, name="reduce")(s))
        s = activation(self.gate)(Dense(x.shape[-1], init=conv_init, name="expand")(s))
        return x * s[:, None, None, :]


class InvertedResidual(nn.Module):
    """Optional 1x1 expand -> depthwise k x k -> optional SE -> 1x1 project.

    With ``expanded == input channels`` the expand conv is omitted; with
    ``project_act`` set it is MobileNetV1's depthwise-separable block. The
    residual is added when shapes allow and ``residual`` is true; in training
    it is dropped per sample with probability ``drop_path`` (stochastic depth).

    ``__call__(x, train=False)``: ``x`` (N, H, W, C) -> (N, H', W',
    ``out``). With ``train=True`` and ``drop_path`` > 0, apply with
    ``rngs={"dropout": key}``. Layers ``expand``, ``dw``, ``se`` and
    ``project``.

    Attributes:
        out: output channels.
        expanded: channels after the 1x1 expand conv (equal to the input
            channels: no expand conv).
        kernel: depthwise kernel side.
        stride: depthwise stride.
        act: activation after the expand and depthwise convs.
        se_reduced: squeeze-excite bottleneck width; 0 for no SE.
        se_act: activation inside the SE block.
        se_gate: gate activation of the SE block.
        project_act: activation after the 1x1 project conv (None: linear
            bottleneck).
        residual: add the input when stride is 1 and channels match.
        drop_path: probability of dropping the residual branch per sample
            in training.
        settings: padding, BatchNorm, implementation, compute dtype.
    """

    out: int
    expanded: int
    kernel: int = 3
    stride: int = 1
    act: str = "relu6"
    se_reduced: int = 0
    se_act: str = "relu"
    se_gate: str = "sigmoid"
    project_act: Optional[str] = None
    residual: bool = True
    drop_path: float = 0.0
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x, train: bool = False):
        inputs = x
        if self.expanded != x.shape[-1]:
            x = ConvBN(self.expanded, 1, act=self.act, settings=self.settings, name="expand")(x, train)
        x = ConvBN(self.expanded, self.kernel, self.stride, act=self.act, depthwise=True,
                   settings=self.settings, name="dw")(x, train)
        if self.se_reduced:
            x = SqueezeExcite(self.se_reduced, self.se_act, self.se_gate, self.settings,
                              name="se")(x)
        add = self.residual and self.stride == 1 and inputs.shape[-1] == self.out
        if add and not train and _pallas(self.settings):
            # The project kernel adds the residual in its epilogue.
            return ConvBN(self.out, 1, act=self.project_act, settings=self.settings,
                          name="project")(x, train, residual=inputs)
        x = ConvBN(self.out, 1, act=self.project_act, settings=self.settings, name="project")(x, train)
        if add:
            if self.drop_path > 0:
                x = nn.Dropout(self.drop_path, broadcast_dims=(1, 2, 3),
                               deterministic=not train)(x)
            x = x + inputs
        return x


# ------------------------------------------------------------------ helpers


def make_divisible(v: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round channels to a multiple of ``divisor``, never more than 10 % down
    (the rule of the MobileNet/EfficientNet reference code).

    Args:
        v: the unrounded channel count, e.g. ``32 * width``.
        divisor: the multiple to round to (to nearest).
        min_value: the smallest result; ``divisor`` when None.

    Returns:
        The rounded count, an int: ``make_divisible(19) == 24`` (19 rounds
        to 16, more than 10 % down, so one more multiple is added).
    """
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)


def check_images(x, *, model: str, min_size: int, channels: int = 3) -> None:
    """Reject inputs the network cannot take, naming what was expected.

    Runs at trace time on static shapes and dtypes, so it costs nothing in
    the compiled function.

    Args:
        x: the network's input, expected (N, H, W, ``channels``) floating
            point (NHWC).
        model: the model's name, to start the error messages with.
        min_size: the smallest H and W the network takes.
        channels: the expected size of the last axis.

    Raises:
        TypeError: if ``x`` is not an array (no ``shape``/``dtype``) or its
            dtype is not floating point (e.g. uint8 images not yet
            preprocessed).
        ValueError: if ``x`` is not rank 4, its last axis is not
            ``channels`` (NCHW input gets a hint), or H or W is below
            ``min_size``.
    """
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"{model}: expected an array of images (N, H, W, {channels}), "
                        f"got {type(x).__name__}")
    if len(shape) != 4:
        hint = " (add a batch axis: x[None])" if len(shape) == 3 else ""
        raise ValueError(f"{model}: expected images of rank 4 (N, H, W, {channels}) in NHWC "
                         f"layout, got shape {tuple(shape)}{hint}")
    if shape[-1] != channels:
        hint = " (NCHW input? transpose to NHWC: x.transpose(0, 2, 3, 1))" if shape[1] == channels else ""
        raise ValueError(f"{model}: expected {channels} channels in the last axis (NHWC), got "
                         f"shape {tuple(shape)}{hint}")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{model}: expected floating-point images, got dtype {dtype}; "
                        "convert and normalise first with zoo.preprocess(images, spec)")
    if shape[1] < min_size or shape[2] < min_size:
        raise ValueError(f"{model}: input {shape[1]}x{shape[2]} is too small; this network "
                         f"needs at least {min_size}x{min_size}")


class FeatureCollector:
    """Keeps the last feature map seen at each output stride (2, 4, ..., 32):
    the stage outputs that ``features_only`` returns.

    Args:
        input_size: the network input's height H in pixels; a map of height
            h is at stride ``round(H / h)``.
    """

    def __init__(self, input_size: int):
        self.input_size = input_size
        self.by_stride: dict[int, jax.Array] = {}

    def add(self, x) -> None:
        """Record ``x`` as the latest map at its stride (replacing an earlier one).

        Args:
            x: a feature map (N, h, w, C).
        """
        stride = round(self.input_size / x.shape[1])
        self.by_stride[stride] = x

    def outputs(self) -> list:
        """The recorded maps, one per stride.

        Returns:
            A list of (N, h, w, C) arrays ordered by increasing stride.
        """
        return [self.by_stride[s] for s in sorted(self.by_stride)]
