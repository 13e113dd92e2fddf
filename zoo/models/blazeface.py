"""BlazeFace short-range face detector (Bazarevsky et al., "BlazeFace:
Sub-millisecond Neural Face Detection on Mobile GPUs", 2019), as shipped by
MediaPipe (``face_detection_short_range.tflite``), the full-range detector
(``face_detection_full_range_sparse.tflite``, 192x192, 2304 anchors; its
table and sparse-weight reader are further down), plus the pieces the Blaze
family shares (the Blaze block, PReLU, and the weight mapping from MediaPipe's
TFLite graphs, used by ``zoo.models.face_mesh`` too).

Input 128x128 RGB in [-1, 1]. Every block is a "single BlazeBlock":
depthwise 3x3 (with bias) -> 1x1 conv (with bias), added to the skip path
(2x2 max-pool when the block strides, zero channels appended when it widens),
then ReLU. Both detection heads are 1x1 convs on the 16x16 and 8x8 maps.

    stage   block        repeats  kernel  stride  channels  act    map
    stem    conv5x5         1       5       2        24     relu   64x64
    1       blaze           1       3       1        24     relu   64x64
    1       blaze           1       3       1        28     relu   64x64
    2       blaze           1       3       2        32     relu   32x32
    2       blaze           1       3       1        36     relu   32x32
    2       blaze           1       3       1        42     relu   32x32
    3       blaze           1       3       2        48     relu   16x16
    3       blaze           5       3       1   56..88 (+8) relu   16x16  -> head 16
    4       blaze           1       3       2        96     relu   8x8
    4       blaze           4       3       1        96     relu   8x8    -> head 8
    head16  conv1x1 -> 2 anchors x (16 box/keypoint values, 1 score)     512 anchors
    head8   conv1x1 -> 6 anchors x (16 box/keypoint values, 1 score)     384 anchors

Outputs ``(regressors (N, 896, 16), scores (N, 896, 1))``, anchors ordered
row, column, anchor (16x16 map first): the layout of the TFLite file's
``regressors`` / ``classificators`` outputs. Scores are logits; box and
keypoint values are offsets in 128-pixel units from the SSD anchors (see
``zoo.face`` for the anchors and the decoding).

Weights: ``map_tflite(graph, model, template)`` walks the TFLite graph from
each output back to the input and pairs the parametric ops it meets (CONV_2D,
DEPTHWISE_CONV_2D, PRELU) with the layers this table produces, in order,
checking op types and shapes on the way. No tensor index is written down.
Any file ends in the mapping's result or one error of ``zoo.weights.errors``
(``TFLiteFormatError`` for a graph the walk cannot follow, ``WeightMismatchError``
for one that is not this network): the walk is iterative, refuses cycles,
splits into at most ``MAX_CHAINS`` chains and compares shapes before reading data.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import tflite

from kernels import depthwise_conv
from zoo.layers import (ChecksConventions, Conv, ConvSettings, DepthwiseConv, activation,
                        check_images, depthwise_init)
from zoo.weights.errors import TFLiteFormatError, WeightMismatchError, one_line

# ------------------------------------------------------------------- table

STEM = (24, 5)  # channels, kernel (stride 2)
# (channels, stride) per block, in order; ``HEADS`` taps the output of a block.
BLOCKS = ((24, 1), (28, 1),
          (32, 2), (36, 1), (42, 1),
          (48, 2), (56, 1), (64, 1), (72, 1), (80, 1), (88, 1),
          (96, 2), (96, 1), (96, 1), (96, 1), (96, 1))
# head name: (tapped block index, anchors per location)
HEADS = (("head16", 10, 2), ("head8", 15, 6))
NUM_COORDS = 16  # box (4) + 6 keypoints x 2
INPUT_SIZE = 128

# ------------------------------------------------------- shared Blaze layers


class DepthwiseConvBias(DepthwiseConv):
    """Depthwise k x k convolution with a bias (TFLite DEPTHWISE_CONV_2D).

    A ``DepthwiseConv`` (so ``zoo.counting`` counts its multiply-adds), whose
    body is repeated rather than called through ``super()``: a nested call
    would be intercepted, and counted, twice.

    ``__call__(x)``: ``x`` (N, H, W, C) -> (N, H', W', C); parameters
    ``kernel`` (k, k, 1, C) and ``bias`` (C,).

    Attributes:
        kernel: kernel side k.
        stride: stride along H and W.
        settings: padding, implementation and compute dtype.
    """

    @nn.compact
    def __call__(self, x):
        w = self.param("kernel", depthwise_init, (self.kernel, self.kernel, 1, x.shape[-1]))
        y = depthwise_conv(x, w, stride=self.stride, padding=self.settings.padding,
                           implementation=self.settings.implementation)
        return y + self.param("bias", nn.initializers.zeros, (x.shape[-1],)).astype(y.dtype)


class PReLU(nn.Module):
    """max(x, 0) + alpha * min(x, 0), one alpha per channel (TFLite PRELU).

    ``__call__(x)``: ``x`` (..., C) -> the same shape; parameter ``alpha``
    (C,), initialised to 0.25. The module has no fields of its own; the
    weight mapping finds the layer by its Flax ``name`` (e.g. ``"stem_act"``).
    """

    @nn.compact
    def __call__(self, x):
        alpha = self.param("alpha", nn.initializers.constant(0.25), (x.shape[-1],))
        # max/min rather than a select: exported to TFLite it stays MAXIMUM/MINIMUM/MUL/ADD,
        # which XNNPACK runs (a select leaves GREATER_EQUAL and SELECT outside it).
        return jnp.maximum(x, 0) + alpha.astype(x.dtype) * jnp.minimum(x, 0)


def act_layer(name: str, x, layer_name: str):
    """Apply the activation ``name``; PReLU carries parameters, named ``layer_name``.

    Call it inside a compact Flax module's ``__call__`` (the PReLU becomes a
    submodule of it).

    Args:
        name: "prelu" or a name ``zoo.layers.activation`` knows.
        x: the array to activate.
        layer_name: the PReLU submodule's name (unused for other activations).

    Returns:
        The activated array, shaped like ``x``.
    """
    if name == "prelu":
        return PReLU(name=layer_name)(x)
    return activation(name)(x)


class BlazeBlock(nn.Module):
    """Depthwise k x k + bias -> 1x1 conv + bias, plus the skip path (2x2
    max-pool at stride 2, zero channels appended when widening), then ``act``.

    ``pool_padding`` is the max-pool's TFLite padding ("SAME" or "VALID";
    the same on the even map sizes these models see).

    ``__call__(x)``: ``x`` (N, H, W, C) with C <= ``out`` -> (N, H /
    stride, W / stride, ``out``). Layers ``dw``, ``project`` and, for
    PReLU, ``act``.

    Attributes:
        out: output channels, at least the input's (the skip path is padded
            with zero channels, never cut).
        stride: 1 or 2.
        kernel: depthwise kernel side.
        act: "relu", "prelu" or another ``zoo.layers.activation`` name.
        pool_padding: "SAME" or "VALID", the skip path's max-pool padding.
        settings: padding, implementation and compute dtype of the convs.
    """

    out: int
    stride: int = 1
    kernel: int = 3
    act: str = "relu"
    pool_padding: str = "SAME"
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x):
        h = DepthwiseConvBias(self.kernel, self.stride, self.settings, name="dw")(x)
        h = Conv(self.out, 1, use_bias=True, settings=self.settings, name="project")(h)
        skip = x
        if self.stride == 2:
            skip = nn.max_pool(skip, (2, 2), strides=(2, 2), padding=self.pool_padding)
        if self.out > x.shape[-1]:
            skip = jnp.pad(skip, ((0, 0), (0, 0), (0, 0), (0, self.out - x.shape[-1])))
        return act_layer(self.act, skip + h, "act")


def block_layers(prefix: str, act: str) -> list[tuple[str, ...]]:
    """Parameter-carrying layers of one BlazeBlock, in the order they run.

    Args:
        prefix: the block's submodule name, e.g. ``"blocks_3"``.
        act: the block's activation; "prelu" adds its ``act`` layer.

    Returns:
        Parameter paths such as ``[("blocks_3", "dw"), ("blocks_3", "project")]``.
    """
    layers = [(prefix, "dw"), (prefix, "project")]
    return layers + ([(prefix, "act")] if act == "prelu" else [])


def check_input(x, model: str, size: int) -> None:
    """Reject input a fixed-size Blaze model cannot take.

    Args:
        x: the model's input, expected (N, ``size``, ``size``, 3) float.
        model: the model's name, to start the messages with.
        size: the one input side the model's anchors and heads fit.

    Raises:
        TypeError: for a non-array or non-float input (see
            ``zoo.layers.check_images``).
        ValueError: for a wrong rank or channel count, or sides other than
            ``size``.
    """
    check_images(x, model=model, min_size=1)
    if x.shape[1] != size or x.shape[2] != size:
        raise ValueError(f"{model}: expected {size}x{size} images (the anchors and heads are "
                         f"fixed to it), got {x.shape[1]}x{x.shape[2]}; resize first "
                         "(zoo.face does it for you)")


class _BlazeBase(ChecksConventions):
    """Registry-facing fields shared by the Blaze models (``zoo.build`` passes them)."""

    num_classes: int = 1
    include_top: bool = True
    features_only: bool = False
    settings: ConvSettings = ConvSettings()
    model_name: str = "model"

    def _check_options(self):
        if not self.include_top or self.features_only:
            raise ValueError(f"{self.model_name}: include_top=False / features_only=True are "
                             "not offered for this model; it has fixed output heads")
        if self.num_classes != 1:
            raise ValueError(f"{self.model_name}: num_classes must be 1 (one class: face)")


# --------------------------------------------------------------- BlazeFace


class BlazeFace(_BlazeBase):
    """BlazeFace short range. ``__call__(x)``: (N, 128, 128, 3) float in [-1, 1]
    -> ``(regressors (N, 896, 16), scores (N, 896, 1))``, float32.

    Calling it raises ValueError for other input sizes and for the options
    it does not offer (``include_top=False``, ``features_only=True``,
    ``num_classes`` other than 1).

    Attributes:
        num_classes: must be 1 (face).
        include_top: must be True (the heads are fixed).
        features_only: must be False.
        settings: padding, implementation and compute dtype.
        model_name: the registry name, used in error messages.
    """

    fixed_input_size = INPUT_SIZE  # read by zoo.registry to trace the variables

    @nn.compact
    def __call__(self, x, train: bool = False):
        self._check_options()
        check_input(x, self.model_name, INPUT_SIZE)
        s = self.settings
        x = jnp.asarray(x).astype(s.dtype)
        x = activation("relu")(Conv(STEM[0], STEM[1], 2, use_bias=True, settings=s,
                                    name="stem")(x))
        taps = {}
        for i, (out, stride) in enumerate(BLOCKS):
            x = BlazeBlock(out, stride, act="relu", pool_padding="SAME", settings=s,
                           name=f"blocks_{i}")(x)
            taps[i] = x
        regs, scores = [], []
        for name, tap, anchors in HEADS:
            f = taps[tap]
            n = f.shape[0]
            c = Conv(anchors, 1, use_bias=True, settings=s, name=f"{name}_score")(f)
            r = Conv(anchors * NUM_COORDS, 1, use_bias=True, settings=s, name=f"{name}_box")(f)
            scores.append(c.reshape(n, -1, 1))
            regs.append(r.reshape(n, -1, NUM_COORDS))
        return (jnp.concatenate(regs, 1).astype(jnp.float32),
                jnp.concatenate(scores, 1).astype(jnp.float32))

    def tflite_chains(self) -> list[list[list[tuple[str, ...]]]]:
        """For each model output, the chains of parametric layers from the input
        to each of the tensors the output concatenates (see ``map_tflite``).

        Returns:
            ``[regressor chains, score chains]``, each one chain per head
            (16x16, then 8x8): a list of layer paths such as ``("stem",)``,
            ``("blocks_0", "dw")``, ending at the head's conv.
        """
        trunk = [("stem",)] + [p for i in range(len(BLOCKS)) for p in
                               block_layers(f"blocks_{i}", "relu")]

        def upto(block):
            return trunk[:1 + 2 * (block + 1)]

        return [[upto(tap) + [(f"{name}_box",)] for name, tap, _ in HEADS],
                [upto(tap) + [(f"{name}_score",)] for name, tap, _ in HEADS]]


# ------------------------------------------------------- BlazeFace full range
#
# Read from face_detection_full_range_sparse.tflite (mediapipe==0.10.21): 192x192
# input, every 3x3 conv preceded by an explicit 1-pixel PAD (symmetric, also at
# stride 2), activations fused into the convs. An encoder of bottleneck blocks
# and a top-down path (1x1 conv + ReLU, 2x bilinear upsampling with half-pixel
# centres, added to a 1x1 + ReLU lateral of the encoder stage) ending at 48x48:
#
#   stage   block                            channels  bottleneck  repeats  map
#   stem    conv3x3 s2 + relu                   32                          96x96
#   enc0    residual                            32         8          2     96x96
#   enc1    strided, residual                   64        16        1, 2    48x48 -> lateral 48
#   enc2    strided, residual                  128        32        1, 2    24x24 -> lateral 64
#   enc3    strided, residual                  192        48        1, 2    12x12 -> lateral 96
#   enc4    strided, residual                  384        96        1, 3     6x6
#   dec0    top 1x1 + up + lateral, residual    96        48          2     12x12
#   dec1    top 1x1 + up + lateral, residual    64        32          2     24x24
#   dec2    top 1x1 + up + lateral, residual    48        24          1     48x48
#   heads   1x1 conv (4 | 64) -> depthwise 3x3 s2 -> depth-to-space 2 -> 48x48x(1 | 16)
#
# residual: dw3x3 -> 1x1 to the bottleneck + relu -> dw3x3 -> 1x1 back, + input, relu;
# strided: the same with the first dw at stride 2, relu after the last 1x1, no skip.
# 48x48 x 1 anchor = 2304, matching the SSD options of MediaPipe's
# face_detection_full_range.pbtxt (num_layers 1, strides 4, 192x192, no interpolated anchor).

FR_INPUT_SIZE = 192
FR_STEM = 32
FR_ENCODER = ((32, 8, 2), (64, 16, 2), (128, 32, 2), (192, 48, 2), (384, 96, 3))
FR_DECODER = ((96, 48, 2), (64, 32, 2), (48, 24, 1))  # tapping enc3, enc2, enc1 in turn
FR_HEADS = (("score", 1), ("box", NUM_COORDS))  # values per anchor; graph order


class BottleneckBlock(nn.Module):
    """dw3x3 (stride) -> 1x1 to ``mid`` + ReLU -> dw3x3 -> 1x1 to ``out``;
    with ``residual``, plus the input then ReLU, else ReLU directly.

    ``__call__(x)``: ``x`` (N, H, W, C) -> (N, H / stride, W / stride,
    ``out``); a residual block needs stride 1 and C == ``out``. Layers
    ``dw1``, ``reduce``, ``dw2``, ``expand``, all with bias.

    Attributes:
        out: output channels.
        mid: bottleneck channels.
        stride: stride of the first depthwise conv.
        residual: add the input before the last ReLU.
        settings: padding, implementation and compute dtype.
    """

    out: int
    mid: int
    stride: int = 1
    residual: bool = True
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x):
        s = self.settings
        h = DepthwiseConvBias(3, self.stride, s, name="dw1")(x)
        h = jax_relu(Conv(self.mid, 1, use_bias=True, settings=s, name="reduce")(h))
        h = DepthwiseConvBias(3, 1, s, name="dw2")(h)
        h = Conv(self.out, 1, use_bias=True, settings=s, name="expand")(h)
        return jax_relu(x + h if self.residual else h)

    @staticmethod
    def layers(prefix: str) -> list[tuple[str, ...]]:
        """The block's conv layers in execution order.

        Args:
            prefix: the block's submodule name, e.g. ``"enc1_down"``.

        Returns:
            Four paths: ``(prefix, "dw1")``, ``(prefix, "reduce")``,
            ``(prefix, "dw2")``, ``(prefix, "expand")``.
        """
        return [(prefix, k) for k in ("dw1", "reduce", "dw2", "expand")]


def jax_relu(x):
    """ReLU, ``max(x, 0)``.

    Args:
        x: array of any shape.

    Returns:
        An array like ``x``.
    """
    return activation("relu")(x)


def upsample2x(x):
    """2x bilinear upsampling with half-pixel centres and clamped edges
    (TFLite RESIZE_BILINEAR, align_corners=False, half_pixel_centers=True):
    output 2i reads 0.75 x[i] + 0.25 x[i-1], output 2i+1 0.75 x[i] + 0.25 x[i+1].
    Shifted slices, no gather: it exports as SLICE, CONCATENATION, MUL, ADD
    and RESHAPE, all delegated to XNNPACK.

    Args:
        x: (N, H, W, C) feature map.

    Returns:
        (N, 2H, 2W, C) in ``x``'s dtype.
    """
    for axis in (1, 2):
        n = x.shape[axis]
        first = jax.lax.slice_in_dim(x, 0, 1, axis=axis)
        last = jax.lax.slice_in_dim(x, n - 1, n, axis=axis)
        prev = jnp.concatenate([first, jax.lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis)
        nxt = jnp.concatenate([jax.lax.slice_in_dim(x, 1, n, axis=axis), last], axis)
        pair = jnp.stack([0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt], axis + 1)
        shape = list(x.shape)
        shape[axis] *= 2
        x = pair.reshape(shape)
    return x


def depth_to_space(x, block: int = 2):
    """TFLite DEPTH_TO_SPACE: channel (i * block + j) * C + c of input pixel
    (h, w) goes to output pixel (h * block + i, w * block + j), channel c.

    Args:
        x: (N, H, W, block x block x C).
        block: the side of the square of pixels each input pixel becomes.

    Returns:
        (N, H x block, W x block, C) in ``x``'s dtype.
    """
    c = x.shape[-1]
    c_out = c // (block * block)
    # A transposed convolution with a 0/1 kernel moves the channels exactly
    # and exports as TFLite's TRANSPOSE_CONV; reshape and transpose would
    # leave a TRANSPOSE in the file. lax.conv_transpose meets the kernel
    # flipped, hence block - 1 - i.
    k = np.zeros((block, block, c, c_out), np.float32)
    for i in range(block):
        for j in range(block):
            k[block - 1 - i, block - 1 - j, (i * block + j) * c_out + np.arange(c_out),
              np.arange(c_out)] = 1
    return jax.lax.conv_transpose(x, jnp.asarray(k, x.dtype), (block, block), "VALID",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


class BlazeFaceFullRange(_BlazeBase):
    """BlazeFace full range. ``__call__(x)``: (N, 192, 192, 3) float in [-1, 1]
    -> ``(regressors (N, 2304, 16), scores (N, 2304, 1))``, float32, anchors
    row-major on the 48x48 grid; box and keypoint values are offsets in
    192-pixel units (see ``zoo.face``).

    Calling it raises ValueError for other input sizes and for the options
    it does not offer (``include_top=False``, ``features_only=True``,
    ``num_classes`` other than 1).

    Attributes:
        num_classes: must be 1 (face).
        include_top: must be True (the heads are fixed).
        features_only: must be False.
        settings: padding ("symmetric" for MediaPipe's file), implementation
            and compute dtype.
        model_name: the registry name, used in error messages.
    """

    fixed_input_size = FR_INPUT_SIZE

    @nn.compact
    def __call__(self, x, train: bool = False):
        self._check_options()
        check_input(x, self.model_name, FR_INPUT_SIZE)
        s = self.settings
        x = jnp.asarray(x).astype(s.dtype)
        x = jax_relu(Conv(FR_STEM, 3, 2, use_bias=True, settings=s, name="stem")(x))
        laterals = []
        for i, (out, mid, repeats) in enumerate(FR_ENCODER):
            if i:
                x = BottleneckBlock(out, mid, 2, residual=False, settings=s,
                                    name=f"enc{i}_down")(x)
            for k in range(repeats):
                x = BottleneckBlock(out, mid, settings=s, name=f"enc{i}_{k}")(x)
            if 1 <= i <= len(FR_DECODER):  # the graph computes each lateral right here
                width = FR_DECODER[len(FR_DECODER) - i][0]
                laterals.append(jax_relu(Conv(width, 1, use_bias=True, settings=s,
                                              name=f"lateral{i}")(x)))
        for j, (out, mid, repeats) in enumerate(FR_DECODER):
            top = jax_relu(Conv(out, 1, use_bias=True, settings=s, name=f"dec{j}_top")(x))
            x = upsample2x(top) + laterals[len(laterals) - 1 - j]
            for k in range(repeats):
                x = BottleneckBlock(out, mid, settings=s, name=f"dec{j}_{k}")(x)
        outs = {}
        for name, values in FR_HEADS:
            h = Conv(4 * values, 1, use_bias=True, settings=s, name=f"{name}_conv")(x)
            h = DepthwiseConvBias(3, 2, s, name=f"{name}_dw")(h)
            h = depth_to_space(h, 2)
            outs[name] = h.reshape(h.shape[0], -1, values).astype(jnp.float32)
        return outs["box"], outs["score"]

    @staticmethod
    def tflite_layers() -> list[tuple[str, ...]]:
        """Our conv layers in the graph's execution order (what
        ``variables_from_sparse_tflite`` pairs the graph's convs with).

        Returns:
            Layer paths, from ``("stem",)`` to ``("box_dw",)``.
        """
        layers = [("stem",)]
        for i, (_, _, repeats) in enumerate(FR_ENCODER):
            names = ([f"enc{i}_down"] if i else []) + [f"enc{i}_{k}" for k in range(repeats)]
            layers += [p for n in names for p in BottleneckBlock.layers(n)]
            if 1 <= i <= len(FR_DECODER):
                layers.append((f"lateral{i}",))
        for j, (_, _, repeats) in enumerate(FR_DECODER):
            layers.append((f"dec{j}_top",))
            layers += [p for k in range(repeats) for p in BottleneckBlock.layers(f"dec{j}_{k}")]
        for name, _ in FR_HEADS:
            layers += [(f"{name}_conv",), (f"{name}_dw",)]
        return layers


# ------------------------------------------------ weights from a TFLite graph

PARAM_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "PRELU")
PASS_OPS = ("RELU", "PAD", "MAX_POOL_2D", "RESHAPE")
SKIP_OPS = ("PAD", "MAX_POOL_2D")  # what a Blaze block's skip path may go through
# A graph output may split (at CONCATENATION) into at most this many chains, so
# the walk's work is at most MAX_CHAINS x the op count whatever the file says.
MAX_CHAINS = 64


def _graph_error(graph, what: str, op=None, mismatch: bool = False):
    """TFLiteFormatError (a graph the walk cannot follow) or, with ``mismatch``,
    WeightMismatchError (a well-formed graph that is not our network)."""
    where = f"op {op.index} ({op.opcode})" if op is not None else None
    cls = WeightMismatchError if mismatch else TFLiteFormatError
    return cls(one_line(graph.path, what, where))


def _input(graph, op, k: int) -> int:
    """Input ``k`` of ``op``, which the mapping needs present."""
    if k >= len(op.inputs):
        raise _graph_error(graph, f"has {len(op.inputs)} inputs; input {k} is needed", op)
    i = op.inputs[k]
    if not 0 <= i < len(graph.tensors):
        raise _graph_error(graph, f"input {k} is tensor {i}, absent or out of range", op)
    return i


def _residual(graph, op) -> int:
    """The residual branch (the CONV_2D output) of a Blaze block's ADD, after
    checking that the other input is the skip path from the tensor its
    depthwise conv reads."""
    convs = [i for i in op.inputs
             if 0 <= i < len(graph.tensors) and (p := graph.producer(i)) and p.opcode == "CONV_2D"]
    if len(op.inputs) != 2 or len(convs) != 1:
        raise _graph_error(graph, f"has {len(convs)} of {len(op.inputs)} inputs made by "
                           "CONV_2D; expected a residual block with two, one of them", op,
                           mismatch=True)
    skip = _input(graph, op, 1 if op.inputs[0] == convs[0] else 0)
    seen = set()
    while (p := graph.producer(skip)) is not None and p.opcode in SKIP_OPS:
        if p.index in seen:
            raise _graph_error(graph, f"the skip path of op {op.index} (ADD) reaches op "
                               f"{p.index} twice: a cycle", p)
        seen.add(p.index)
        skip = _input(graph, p, 0)
    branch = graph.producer(_input(graph, graph.producer(convs[0]), 0))
    if branch is None or branch.opcode != "DEPTHWISE_CONV_2D" or _input(graph, branch, 0) != skip:
        raise _graph_error(graph, "is not a Blaze block: its skip path and its depthwise conv "
                           "read different tensors", op, mismatch=True)
    return convs[0]


def _chains(graph, tensor: int) -> list[list]:
    """Parametric ops from the graph input to ``tensor``, one list per
    concatenated input (a single list when nothing is concatenated).

    Walks producers backwards: CONV_2D, DEPTHWISE_CONV_2D and PRELU are
    recorded and their data input followed; RELU, PAD, MAX_POOL_2D and
    RESHAPE are passed through; an ADD follows its residual branch (the input
    a CONV_2D produced) after checking that the other input is the block's
    skip path from the same tensor; CONCATENATION splits the walk.

    Iterative, with the ops of each path in a visited set (a cycle is refused
    even in a graph ``read_tflite`` did not check), at most ``MAX_CHAINS``
    chains, and a step count bounded by the op count."""
    limit = (MAX_CHAINS + 1) * (len(graph.ops) + 1)
    steps, done = 0, []
    # Branches to walk: (tensor, ops met walking back, the ops after the
    # CONCATENATION that split it off (in forward order), ops on its path).
    stack = [(tensor, [], [], set())]
    while stack:
        t, ops, after, seen = stack.pop()
        while True:
            steps += 1
            if steps > limit:
                raise _graph_error(graph, f"the walk back from tensor {tensor} takes more "
                                   f"than {limit} steps")
            op = graph.producer(t)
            if op is None:
                if t not in graph.inputs:
                    raise _graph_error(graph, f"the walk back from tensor {tensor} ended at "
                                       f"tensor {t}, which is not the graph input",
                                       mismatch=True)
                done.append(ops[::-1] + after)
                break
            if op.index in seen:
                raise _graph_error(graph, f"the walk back from tensor {tensor} reaches this "
                                   "op twice: a cycle", op)
            seen.add(op.index)
            if op.opcode in PARAM_OPS:
                ops.append(op)
                t = _input(graph, op, 0)
            elif op.opcode in PASS_OPS:
                t = _input(graph, op, 0)
            elif op.opcode == "ADD":
                t = _residual(graph, op)
            elif op.opcode == "CONCATENATION":
                branches = [_input(graph, op, k) for k in range(len(op.inputs))]
                if not branches:
                    raise _graph_error(graph, "has no inputs", op)
                if len(done) + len(stack) + len(branches) > MAX_CHAINS:
                    raise _graph_error(graph, f"output tensor {tensor} splits into more than "
                                       f"{MAX_CHAINS} chains", op, mismatch=True)
                tail = ops[::-1] + after
                stack += [(i, [], tail, set(seen)) for i in reversed(branches)]
                break
            else:
                raise _graph_error(graph, "is not part of a Blaze network", op, mismatch=True)
    return done


def _layer_sources(graph, op) -> dict[str, tuple[int, tuple[int, ...], object]]:
    """An op's parameters: name -> (the constant tensor holding it, its shape in
    our layout, the layout change: axes to transpose, "flat" or None). Conv
    OHWI -> HWIO, depthwise 1HWC -> HW1C, PReLU alpha (1, 1, C) -> (C,)."""
    def source(k):
        src = graph.dequantized_source(_input(graph, op, k))
        return src, graph.tensors[src].shape

    if op.opcode == "PRELU":
        src, shape = source(1)
        return {"alpha": (src, (math.prod(shape),), "flat")}
    (w, wshape), (b, bshape) = source(1), source(2)
    if len(wshape) != 4:
        raise _graph_error(graph, f"weight tensor {w} has shape {list(wshape)}, not 4-D", op,
                           mismatch=True)
    if op.opcode == "CONV_2D":
        axes = (1, 2, 3, 0)
    else:
        if op.options.get("depth_multiplier", 1) != 1:
            raise _graph_error(graph, f"depth multiplier {op.options['depth_multiplier']}; "
                               "only 1 is supported", op, mismatch=True)
        axes = (1, 2, 0, 3)
    return {"kernel": (w, tuple(wshape[a] for a in axes), axes), "bias": (b, bshape, None)}


def _layer_array(graph, src: int, change) -> np.ndarray:
    a = graph.dequantized_constant(src)
    if change == "flat":
        return a.reshape(-1)
    return a if change is None else a.transpose(change)


def map_tflite(graph, model, template: dict) -> dict:
    """Our ``{"params": ...}`` from ``graph`` for a model with ``tflite_chains()``.

    The graph's outputs are taken in their order (regressors, scores for
    BlazeFace; landmarks, face flag for the mesh); each is walked back to the
    input (``_chains``) and its ops paired with our layers. A layer reached
    by several outputs (the shared trunk) must pair with the same op each
    time. Layers of ours left unpaired, graph ops left unused, and shape
    mismatches are reported by name (``WeightMismatchError``); a graph the
    walk cannot follow (absent inputs, a cycle) is a ``TFLiteFormatError``.
    Shapes are compared before any data is read.

    Args:
        graph: the parsed file, ``zoo.weights.tflite.read_tflite(path)``.
        model: a ``BlazeFace`` or ``FaceMesh`` module (one with
            ``tflite_chains()``).
        template: the model's variables or their shapes
            (``zoo.registry.variables_template(model)``); only their
            ``params`` shapes are read.

    Returns:
        ``{"params": ...}`` of NumPy float32 arrays in our layouts (kernels
        HWIO, depthwise HW1C, PReLU alpha (C,)), dequantized where the file
        stores float16 or int8.

    Raises:
        WeightMismatchError: if the graph is well formed but not this
            network (outputs, chains, op kinds or shapes differ), naming
            every misfit.
        TFLiteFormatError: if the walk cannot follow the graph (missing
            inputs, a cycle, too many steps).
    """
    ours = model.tflite_chains()
    if len(graph.outputs) != len(ours):
        raise _graph_error(graph, f"{len(graph.outputs)} outputs, expected {len(ours)}",
                           mismatch=True)
    params = template["params"]
    assigned: dict[tuple[str, ...], object] = {}
    for out, chains in zip(graph.outputs, ours):
        found = _chains(graph, out)
        if [len(c) for c in found] != [len(c) for c in chains]:
            raise _graph_error(graph, f"output {graph.tensors[out].name[:80]!r} has chains of "
                               f"{[len(c) for c in found]} parametric ops; ours have "
                               f"{[len(c) for c in chains]}", mismatch=True)
        for gchain, ochain in zip(found, chains):
            for op, path in zip(gchain, ochain):
                prev = assigned.setdefault(path, op)
                if prev is not op:
                    raise _graph_error(graph, f"layer {'/'.join(path)} pairs with ops "
                                       f"{prev.index} and {op.index}", mismatch=True)
    problems, fits = [], []
    for path, op in assigned.items():
        node = params
        for k in path:
            node = node.get(k, {}) if isinstance(node, dict) else {}
        for k, (src, shape, change) in _layer_sources(graph, op).items():
            want = node.get(k) if isinstance(node, dict) else None
            if want is None:
                problems.append(f"{'/'.join(path)}/{k}: op {op.index} ({op.opcode}) has it, "
                                "our layer does not")
            elif tuple(want.shape) != shape:
                problems.append(f"{'/'.join(path)}/{k}: ours {tuple(want.shape)}, op "
                                f"{op.index} ({op.opcode}) gives {shape}")
            else:
                fits.append((path, k, src, change))
    used = {id(op) for op in assigned.values()}
    unused = [f"{op.index} ({op.opcode})" for op in graph.ops
              if op.opcode in PARAM_OPS and id(op) not in used]
    if unused:
        problems.append(f"graph ops not mapped: {', '.join(unused)}")

    def leaves(tree, prefix=()):
        for k, v in tree.items():
            if isinstance(v, dict):
                yield from leaves(v, prefix + (k,))
            else:
                yield prefix + (k,)

    missing = sorted(set(leaves(params)) - {(*path, k) for path, k, _, _ in fits})
    if missing:
        problems.append("our parameters with no weights: "
                        + ", ".join("/".join(p) for p in missing))
    if problems:  # every name, on one line (one_line would cut a long list)
        raise WeightMismatchError(one_line(graph.path, f"does not match {model.model_name}")
                                  + ": " + " ".join("; ".join(problems).split()))
    result: dict = {}
    for path, k, src, change in fits:
        d = result
        for p in path:
            d = d.setdefault(p, {})
        d[k] = _layer_array(graph, src, change)
    return {"params": result}


@functools.lru_cache(maxsize=None)
def _model_and_template(name: str):
    from zoo.registry import build, variables_template

    model = build(name)
    if not (hasattr(model, "tflite_chains") or hasattr(model, "tflite_layers")):
        raise ValueError(f"{name} has no mapping from MediaPipe's TFLite graphs")
    return model, variables_template(model)


def variables_from_tflite(path, name: str) -> dict:
    """Variables of registered model ``name`` from MediaPipe's ``.tflite`` at
    ``path``. A file that is not a readable TFLite graph raises
    ``TFLiteFormatError``, one that is not this model ``WeightMismatchError``.

    Models with ``tflite_layers()`` (the full-range detector, sparse
    weights) are read by ``variables_from_sparse_tflite``.

    Args:
        path: the ``.tflite`` file (str or path-like).
        name: a registered Blaze model, e.g. "blazeface_short_range" or
            "face_mesh".

    Returns:
        ``{"params": ...}`` of jax arrays, ready for ``model.apply``.

    Raises:
        WeightMismatchError: if the file has several subgraphs or its graph
            is not this network.
        TFLiteFormatError: if the file is not a readable TFLite graph.
        ValueError: if ``name`` has no mapping from MediaPipe's graphs.
        KeyError: if ``name`` is not registered.
    """
    import jax

    from zoo.weights.tflite import read_tflite

    model, template = _model_and_template(name)
    if hasattr(model, "tflite_layers"):  # sparse weights: read_tflite cannot read them yet
        return variables_from_sparse_tflite(path, name)
    graph = read_tflite(path, subgraph=0)
    if graph.num_subgraphs != 1:
        raise WeightMismatchError(one_line(path, f"{graph.num_subgraphs} subgraphs; "
                                           f"{name}'s graph has one"))
    return jax.tree_util.tree_map(jnp.asarray, map_tflite(graph, model, template))


# ------------------------------------------- weights from a sparse TFLite graph
#
# MediaPipe stores the full-range model's 1x1 weights sparse (TFLite
# SparsityParameters, densified at run time by DENSIFY ops), which
# zoo.weights.tflite.read_tflite does not read; until it does, this reads the
# conv ops and their (densified) weights straight from the flatbuffer with the
# same generated ``tflite`` classes, and pairs them with our layers in
# execution order, checking op type and shape of each.

_FLOAT_TYPES = {0: np.float32, 1: np.float16}  # TensorType FLOAT32, FLOAT16
_CONV_CODES = {3: "CONV_2D", 4: "DEPTHWISE_CONV_2D"}
_FOLLOW_CODES = (6, 124)  # DEQUANTIZE, DENSIFY: a weight's producers back to its constant


def _densify(shape, sparsity, values, where: str, path) -> np.ndarray:
    """Dense array of ``shape`` from TFLite sparse storage: dimensions in
    traversal order, each DENSE (all indices) or SPARSE_CSR (per parent, the
    child indices ``indices[segments[p]:segments[p + 1]]``); the values are
    the leaves in that order. Block sparsity is refused."""
    def bad(what):
        return TFLiteFormatError(one_line(path, what, where))

    order = list(sparsity.TraversalOrderAsNumpy()) if sparsity.TraversalOrderLength() else []
    if order != list(range(len(shape))) or sparsity.BlockMapLength():
        raise bad(f"sparse with traversal order {order} and block map: only plain "
                  "dimension order without blocks is supported")
    if sparsity.DimMetadataLength() != len(shape):
        raise bad(f"{sparsity.DimMetadataLength()} sparse dimensions for shape {list(shape)}")
    flat = np.zeros(1, np.int64)
    for d, n in enumerate(shape):
        meta = sparsity.DimMetadata(d)
        if meta.Format() == 0:  # DENSE
            if meta.DenseSize() != n:
                raise bad(f"dense dimension {d} of size {meta.DenseSize()}, shape says {n}")
            flat = (flat[:, None] * n + np.arange(n)).reshape(-1)
            continue
        vecs = []
        for table, kind in ((meta.ArraySegments(), meta.ArraySegmentsType()),
                            (meta.ArrayIndices(), meta.ArrayIndicesType())):
            cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}.get(kind)
            if cls is None or table is None:
                raise bad(f"dimension {d}: index vector type {kind} is not supported")
            v = cls()
            v.Init(table.Bytes, table.Pos)
            vecs.append(np.asarray(v.ValuesAsNumpy(), np.int64).reshape(-1))
        segments, indices = vecs
        counts = np.diff(segments)
        if (len(segments) != flat.size + 1 or segments[0] != 0 or (counts < 0).any()
                or segments[-1] != indices.size or ((indices < 0) | (indices >= n)).any()):
            raise bad(f"dimension {d}: CSR segments/indices inconsistent with shape {list(shape)}")
        flat = np.repeat(flat, counts) * n + indices
    if flat.size != values.size:
        raise bad(f"{values.size} stored values for {flat.size} sparse positions")
    dense = np.zeros(math.prod(shape), values.dtype)
    dense[flat] = values
    return dense.reshape(shape)


def sparse_tflite_convs(path) -> list[tuple[str, np.ndarray, np.ndarray, dict]]:
    """The CONV_2D / DEPTHWISE_CONV_2D ops of the one-subgraph float model at
    ``path``, in execution order: (op type, weight in TFLite layout, bias,
    {"index": op index}), float32, sparse constants densified.

    Args:
        path: the ``.tflite`` file (str or path-like).

    Returns:
        A list of ``(op, weight, bias, info)``: op "CONV_2D" (weight OHWI)
        or "DEPTHWISE_CONV_2D" (weight 1HWC), NumPy float32 arrays, and
        ``{"index": k}`` the op's position in the subgraph.

    Raises:
        WeightMismatchError: if the file has other than one subgraph, a
            conv weight computed by an op other than DEQUANTIZE/DENSIFY, or
            a non-float weight.
        TFLiteFormatError: if the file cannot be read or parsed (including
            a missing file), a conv has no bias, or sparse storage is
            inconsistent or uses block sparsity.
    """
    from zoo.weights.errors import WeightError

    try:
        buf = open(path, "rb").read()
        model = tflite.Model.GetRootAsModel(buf, 0)
        if model.SubgraphsLength() != 1:
            raise WeightMismatchError(one_line(path, f"{model.SubgraphsLength()} subgraphs; "
                                               "expected one"))
        sg = model.Subgraphs(0)
        codes = []
        for c in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(c)
            codes.append(max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode())))
        ops = [sg.Operators(k) for k in range(sg.OperatorsLength())]
        producer = {int(o.Outputs(j)): k for k, o in enumerate(ops) for j in range(o.OutputsLength())}

        def constant(t: int, where: str) -> np.ndarray:
            seen = 0
            while t in producer:  # DEQUANTIZE / DENSIFY back to the stored tensor
                op = ops[producer[t]]
                if codes[op.OpcodeIndex()] not in _FOLLOW_CODES or seen > 4:
                    raise WeightMismatchError(one_line(path, "a conv weight is computed by an "
                                                       "op that is not DEQUANTIZE/DENSIFY", where))
                t, seen = int(op.Inputs(0)), seen + 1
            tensor = sg.Tensors(t)
            dtype = _FLOAT_TYPES.get(tensor.Type())
            if dtype is None:
                raise WeightMismatchError(one_line(path, f"weight tensor {t} has type code "
                                                   f"{tensor.Type()}; only float is supported",
                                                   where))
            raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
            values = np.frombuffer(np.asarray(raw, np.uint8).tobytes(), dtype)
            shape = tuple(int(d) for d in tensor.ShapeAsNumpy())
            if tensor.Sparsity() is not None:
                return _densify(shape, tensor.Sparsity(), values, where, path).astype(np.float32)
            if values.size != math.prod(shape):
                raise TFLiteFormatError(one_line(path, f"tensor {t}: {values.size} values for "
                                                 f"shape {list(shape)}", where))
            return values.reshape(shape).astype(np.float32)

        out = []
        for k, op in enumerate(ops):
            code = codes[op.OpcodeIndex()]
            if code in _CONV_CODES:
                where = f"op {k} ({_CONV_CODES[code]})"
                if op.InputsLength() < 3:
                    raise TFLiteFormatError(one_line(path, "a conv without a bias input", where))
                out.append((_CONV_CODES[code], constant(int(op.Inputs(1)), where),
                            constant(int(op.Inputs(2)), where), {"index": k}))
        return out
    except WeightError:
        raise
    except Exception as e:  # the generated accessors read past the end of a corrupt file
        raise TFLiteFormatError(one_line(path, f"truncated or corrupt: {type(e).__name__}: {e}"))


def variables_from_sparse_tflite(path, name: str) -> dict:
    """Variables of registered model ``name`` (one with ``tflite_layers()``)
    from MediaPipe's ``.tflite`` at ``path``, sparse weights included: the
    graph's convs in execution order are paired with ``tflite_layers()``, op
    type and every shape checked first (``WeightMismatchError`` naming the
    layer otherwise).

    Args:
        path: the ``.tflite`` file (str or path-like).
        name: a registered model with ``tflite_layers()``, e.g.
            "blazeface_full_range".

    Returns:
        ``{"params": ...}`` of jax arrays, ready for ``model.apply``.

    Raises:
        WeightMismatchError: if the number of convs differs from our
            layers, a layer's kernel or bias shape does not fit its op, or
            ``sparse_tflite_convs`` finds a graph that is not this model's.
        TFLiteFormatError: if the file cannot be read as TFLite.
        ValueError: if ``name`` has no mapping from MediaPipe's graphs.
    """
    import jax

    model, template = _model_and_template(name)
    convs = sparse_tflite_convs(path)
    layers = model.tflite_layers()
    if len(convs) != len(layers):
        raise WeightMismatchError(one_line(path, f"{len(convs)} conv ops; {name} has "
                                           f"{len(layers)} conv layers"))
    params, result = template["params"], {}
    for layer, (kind, w, b, info) in zip(layers, convs):
        node = params
        for k in layer:
            node = node.get(k, {})
        ours = node.get("kernel")
        # TFLite OHWI (conv) / 1HWC (depthwise) -> our HWIO / HW1C
        kernel = w.transpose((1, 2, 0, 3) if kind == "DEPTHWISE_CONV_2D" else (1, 2, 3, 0))
        if ours is None or tuple(ours.shape) != kernel.shape or \
                tuple(node["bias"].shape) != b.shape:
            raise WeightMismatchError(one_line(
                path, f"layer {'/'.join(layer)} {None if ours is None else tuple(ours.shape)} "
                f"does not match op {info['index']} ({kind}) weight {list(w.shape)}"))
        d = result
        for k in layer:
            d = d.setdefault(k, {})
        d["kernel"], d["bias"] = kernel, b
    return jax.tree_util.tree_map(jnp.asarray, {"params": result})


# ---------------------------------------------------------------- registry

def _register():
    from zoo.registry import INCEPTION_MEAN, INCEPTION_STD, ModelSpec, WeightSource, register

    # SHA-256 of the file inside mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl
    # (the same file tests/test_tflite_reader.py checks against LiteRT).
    register(ModelSpec(
        name="blazeface_short_range", family="blazeface", task="face_detection",
        input_size=INPUT_SIZE, mean=INCEPTION_MEAN, std=INCEPTION_STD,  # [-1, 1]
        crop_fraction=1.0, interpolation="bilinear", num_classes=1, padding="same",
        bn_eps=0.0,  # no BatchNorm
        published=None,  # the paper reports latency and precision, not this model's counts
        weights=(WeightSource(
            format="tflite", package="mediapipe==0.10.21",
            path="mediapipe/modules/face_detection/face_detection_short_range.tflite",
            sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
            license="Apache-2.0", origin="MediaPipe (PyPI)"),),
        license="Apache-2.0"), BlazeFace)
    # SHA-256 of the file inside mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl.
    register(ModelSpec(
        name="blazeface_full_range", family="blazeface", task="face_detection",
        input_size=FR_INPUT_SIZE, mean=INCEPTION_MEAN, std=INCEPTION_STD,  # [-1, 1]
        crop_fraction=1.0, interpolation="bilinear", num_classes=1,
        padding="symmetric",  # the graph pads 1 pixel each side before every 3x3 conv
        bn_eps=0.0, published=None,
        weights=(WeightSource(
            format="tflite", package="mediapipe==0.10.21",
            path="mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
            sha256="2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
            license="Apache-2.0", origin="MediaPipe (PyPI)"),),
        license="Apache-2.0"), BlazeFaceFullRange)


_register()
