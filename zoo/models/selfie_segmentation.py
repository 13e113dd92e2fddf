"""MediaPipe Selfie Segmentation: a person/background mask from one RGB image,
as shipped by MediaPipe (``selfie_segmentation.tflite``, 256x256, and
``selfie_segmentation_landscape.tflite``, 144x256).

MediaPipe's solution page: "Both models are based on MobileNetV3, with
modifications to make them more efficient. The general model operates on a
256x256x3 (HWC) tensor, and outputs a 256x256x1 tensor representing the
segmentation mask. The landscape model is similar to the general model, but
operates on a 144x256x3 (HWC) tensor" (mediapipe docs/solutions/
selfie_segmentation.md). The table below is read from the two graphs (their
ops and weight shapes are the same; only the input size differs).

Input RGB in [0, 1] (``selfie_segmentation_cpu.binarypb`` in the wheel:
ImageToTensorCalculator with ``output_tensor_float_range {min: 0 max: 1}``).
Encoder: MobileNetV3-Small's stem and first eight bottlenecks (Howard et al.,
"Searching for MobileNetV3", 2019, Table 2) with narrower 16x16 stages, cut
at stride 16. A bottleneck is 1x1 expand + act -> depthwise k x k + act ->
squeeze-excite (global mean -> 1x1 + ReLU -> 1x1 + sigmoid, a true sigmoid
here, not MobileNetV3's hard one) -> 1x1 project, plus the input when the
shapes allow. Every conv has a bias (no BatchNorm left in the file).

    stage    block       expand  out  kernel  stride  SE   act    map      skip
    stem     conv3x3        -     16    3       2      -   hswish  128x128  s2
    1        bneck         16     16    3       2      8   relu    64x64    s4
    2        bneck         72     24    3       2      -   relu    32x32
    3        bneck         88     24    3       1      -   relu    32x32    s8
    4        bneck         96     32    5       2     24   hswish  16x16
    5        bneck        128     32    5       1     32   hswish  16x16
    6        bneck        128     32    5       1     32   hswish  16x16
    7        bneck         96     32    5       1     24   hswish  16x16
    8        bneck         96     32    5       1     24   hswish  16x16
    head     LR-ASPP: relu(1x1 -> 128) * sigmoid(1x1 -> 128 of the global mean)   16x16
    up 1     x2 -> fuse with s8, 24 channels                                      32x32
    up 2     x2 -> fuse with s4, 16 channels                                      64x64
    up 3     x2 -> fuse with s2, 16 channels                                      128x128
    out      transposed conv 2x2 stride 2 -> 1 channel, sigmoid                   256x256

An "up" stage: bilinear x2 (half-pixel centres) -> 1x1 to the skip's
channels (y); skip * sigmoid(1x1(relu(1x1(mean(skip + y))))) + y; then
1x1 + ReLU (z) and z + ReLU(depthwise 3x3(z)). Map sizes are for the
256x256 model; the landscape model halves 144x256 the same way (9x16 at
the bottom).

Output (N, H, W, 1): the probability that each pixel is a person, what
the file's last op (LOGISTIC) gives and what MediaPipe's
TensorsToSegmentationCalculator (activation NONE) passes on. The network
takes any H and W that are multiples of 16 (the pools are global means),
but the weights were trained at the spec's size.

Weights: ``map_tflite(graph, model)`` pairs the graph's
parametric ops (CONV_2D, DEPTHWISE_CONV_2D and MediaPipe's custom
Convolution2DTransposeBias), in the order the file runs them, with our
layers in the order ``__call__`` runs them, checking op kind, stride and
shapes; every misfit is reported by layer name (``WeightMismatchError``).
No tensor index is written down.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo.layers import (ChecksConventions, Conv, ConvSettings, Dense, SqueezeExcite, activation,
                        check_images)
from zoo.models.blazeface import DepthwiseConvBias, upsample2x
from zoo.weights.errors import WeightMismatchError, one_line

# ------------------------------------------------------------------- table

STEM = (16, 3, "hard_swish")  # channels, kernel, activation (stride 2)
# (expanded, out, kernel, stride, SE reduced channels or 0, activation)
BLOCKS = ((16, 16, 3, 2, 8, "relu"),
          (72, 24, 3, 2, 0, "relu"),
          (88, 24, 3, 1, 0, "relu"),
          (96, 32, 5, 2, 24, "hard_swish"),
          (128, 32, 5, 1, 32, "hard_swish"),
          (128, 32, 5, 1, 32, "hard_swish"),
          (96, 32, 5, 1, 24, "hard_swish"),
          (96, 32, 5, 1, 24, "hard_swish"))
HEAD = 128  # LR-ASPP channels
# Decoder stages, bottom up: (channels, the feature map fused: "stem" or a block index)
UP = ((24, 2), (16, 0), (16, "stem"))
STRIDE = 16  # input sides must be multiples of it

# (height, width) each registered model was trained at.
INPUT_SHAPES = {"selfie_segmentation": (256, 256),
                "selfie_segmentation_landscape": (144, 256)}

# ------------------------------------------------------------------ layers


class ConvTranspose2x2(nn.Module):
    """Transposed convolution, kernel 2x2, stride 2 (so the taps never
    overlap), with a bias: output (2i + a, 2j + b) is ``x[i, j] @ kernel[a, b]
    + bias``. Kernel ``(2, 2, C_in, C_out)``. MediaPipe's custom op
    Convolution2DTransposeBias with these options.

    ``__call__(x)``: ``x`` (N, H, W, C_in) -> (N, 2H, 2W, ``features``).

    Attributes:
        features: output channels C_out.
    """

    features: int

    @nn.compact
    def __call__(self, x):
        k = self.param("kernel", nn.initializers.lecun_normal(), (2, 2, x.shape[-1], self.features))
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        # lax.conv_transpose (a correlation over the stride-dilated input)
        # meets tap (a, b) of the kernel flipped; it exports as TFLite's
        # TRANSPOSE_CONV, where an einsum and reshape need a TRANSPOSE.
        y = jax.lax.conv_transpose(x, k[::-1, ::-1].astype(x.dtype), (2, 2), "VALID",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + b.astype(x.dtype)

    def macs(self, x, out) -> int:
        """Multiply-adds (``zoo.counting`` asks each layer that has this method).

        Args:
            x: the layer's input (N, H, W, C_in), or its shape-carrying stand-in.
            out: the layer's output (N, 2H, 2W, C_out).

        Returns:
            H x W x 4 x C_in x C_out: per image, each input pixel feeds its
            four output pixels.
        """
        return x.shape[1] * x.shape[2] * 4 * x.shape[-1] * out.shape[-1]


class Bottleneck(nn.Module):
    """1x1 expand -> depthwise -> [SE] -> 1x1 project (+ input), all with bias.
    The expand conv is there even when it keeps the width (block 1).

    ``__call__(x)``: ``x`` (N, H, W, C) -> (N, H / stride, W / stride,
    ``out``); the input is added when stride is 1 and C == ``out``.

    Attributes:
        expanded: channels after the expand conv.
        out: output channels.
        kernel: depthwise kernel side.
        stride: depthwise stride.
        se: squeeze-excite width; 0 for none (its gate is a true sigmoid).
        act: activation after the expand and depthwise convs.
        settings: padding, implementation and compute dtype.
    """

    expanded: int
    out: int
    kernel: int
    stride: int
    se: int
    act: str
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x):
        s, act = self.settings, activation(self.act)
        h = act(Conv(self.expanded, 1, use_bias=True, settings=s, name="expand")(x))
        h = act(DepthwiseConvBias(self.kernel, self.stride, s, name="dw")(h))
        if self.se:
            h = SqueezeExcite(self.se, "relu", "sigmoid", s, name="se")(h)
        h = Conv(self.out, 1, use_bias=True, settings=s, name="project")(h)
        return h + x if self.stride == 1 and x.shape[-1] == self.out else h


class Up(nn.Module):
    """One decoder stage (see the module docstring).

    ``__call__(x, skip)``: ``x`` (N, h, w, C) and the encoder's ``skip``
    (N, 2h, 2w, ``features``) -> (N, 2h, 2w, ``features``).

    Attributes:
        features: the stage's channels (the skip's).
        settings: padding, implementation and compute dtype.
    """

    features: int
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x, skip):
        s = self.settings
        y = Conv(self.features, 1, use_bias=True, settings=s, name="proj")(upsample2x(x))
        g = jnp.mean(skip + y, axis=(1, 2))
        g = jax.nn.relu(Dense(self.features, name="gate_reduce")(g))
        g = jax.nn.sigmoid(Dense(self.features, name="gate_expand")(g))
        y = skip * g[:, None, None, :] + y
        z = jax.nn.relu(Conv(self.features, 1, use_bias=True, settings=s, name="conv")(y))
        return z + jax.nn.relu(DepthwiseConvBias(3, 1, s, name="dw")(z))


# ------------------------------------------------------------------- model


class SelfieSegmentation(ChecksConventions):
    """``__call__(x)``: (N, H, W, 3) float RGB in [0, 1], H and W multiples
    of 16 (trained at ``INPUT_SHAPES[name]``) -> (N, H, W, 1) float32 person
    probability.

    Calling it raises ValueError for sides that are not multiples of 16 and
    for the options it does not offer (``include_top=False``,
    ``features_only=True``, ``num_classes`` other than 1), and the errors of
    ``zoo.layers.check_images`` for input that is not float NHWC RGB.

    Attributes:
        num_classes: must be 1 (person).
        include_top: must be True (the mask head is fixed).
        features_only: must be False.
        settings: padding, implementation and compute dtype.
        model_name: the registry name, used in error messages.

    Example:
        ::

            model, variables = zoo.create("selfie_segmentation", pretrained=True)
            x = zoo.preprocess(images, "selfie_segmentation")  # (N, 256, 256, 3)
            mask = model.apply(variables, x)[..., 0]           # (N, 256, 256)
    """

    num_classes: int = 1
    include_top: bool = True
    features_only: bool = False
    settings: ConvSettings = ConvSettings()
    model_name: str = "selfie_segmentation"

    @nn.compact
    def __call__(self, x, train: bool = False):
        if not self.include_top or self.features_only:
            raise ValueError(f"{self.model_name}: include_top=False / features_only=True are "
                             "not offered for this model; it has a fixed mask head")
        if self.num_classes != 1:
            raise ValueError(f"{self.model_name}: num_classes must be 1 (one class: person)")
        check_images(x, model=self.model_name, min_size=STRIDE)
        if x.shape[1] % STRIDE or x.shape[2] % STRIDE:
            raise ValueError(f"{self.model_name}: input {x.shape[1]}x{x.shape[2]} has a side that "
                             f"is not a multiple of {STRIDE}; resize to "
                             f"{INPUT_SHAPES.get(self.model_name, (256, 256))} (zoo.segment.person "
                             "does it for you)")
        s = self.settings
        x = jnp.asarray(x).astype(s.dtype)
        x = activation(STEM[2])(Conv(STEM[0], STEM[1], 2, use_bias=True, settings=s,
                                     name="stem")(x))
        taps = {"stem": x}
        for i, (expanded, out, kernel, stride, se, act) in enumerate(BLOCKS):
            x = Bottleneck(expanded, out, kernel, stride, se, act, s, name=f"blocks_{i}")(x)
            taps[i] = x
        main = jax.nn.relu(Conv(HEAD, 1, use_bias=True, settings=s, name="aspp_conv")(x))
        gate = jax.nn.sigmoid(Dense(HEAD, name="aspp_gate")(jnp.mean(x, axis=(1, 2))))
        x = main * gate[:, None, None, :]
        for i, (features, tap) in enumerate(UP):
            x = Up(features, s, name=f"up_{i}")(x, taps[tap])
        x = ConvTranspose2x2(1, name="out")(x)
        return jax.nn.sigmoid(x).astype(jnp.float32)


# ------------------------------------------------ weights from a TFLite graph

# Our layer kind -> the TFLite op it pairs with.
_OPS = {Conv: "CONV_2D", Dense: "CONV_2D", DepthwiseConvBias: "DEPTHWISE_CONV_2D",
        ConvTranspose2x2: "CUSTOM:Convolution2DTransposeBias"}
PARAM_OPS = tuple(sorted(set(_OPS.values())))


def layer_order(model, shape=(1, 64, 64, 3)):
    """((parameter path, module) of every parametric layer in the order
    ``__call__`` runs them, the variables' shapes), from one abstract trace.

    Args:
        model: a ``SelfieSegmentation`` module (traced with the reference
            implementation, whatever its settings say).
        shape: the input shape to trace with; parameter shapes do not
            depend on it (sides multiples of 16).

    Returns:
        ``(layers, template)``: ``layers`` a list of (path tuple, module)
        for every ``Conv``, ``Dense``, ``DepthwiseConvBias`` and
        ``ConvTranspose2x2`` call, ``template`` the variables as
        ``jax.ShapeDtypeStruct`` leaves.
    """
    model = model.clone(settings=ConvSettings(implementation="reference"))
    found = []

    def record(next_fun, args, kwargs, context):
        m = context.module
        if context.method_name == "__call__" and type(m) in _OPS:
            found.append((tuple(m.path), m))
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        template = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                                  jax.ShapeDtypeStruct(shape, jnp.float32))
    return found, template


def _op_params(graph, op, module) -> tuple[dict, list[str]]:
    """{param name: (tensor index, our shape, transpose axes or "dense")} for
    the op, and what about the op does not fit ``module``."""
    problems = []

    def source(k):
        if k >= len(op.inputs) or op.inputs[k] < 0:
            raise WeightMismatchError(one_line(graph.path, f"has no input {k}",
                                               f"op {op.index} ({op.opcode})"))
        src = graph.dequantized_source(op.inputs[k])
        return src, graph.tensors[src].shape

    (w, wshape), (b, bshape) = source(1), source(2)
    if len(wshape) != 4:
        return {}, [f"weight tensor {w} has shape {list(wshape)}, not 4-D"]
    if isinstance(module, Dense):
        if wshape[1:3] != (1, 1):
            problems.append(f"a fully connected layer needs a 1x1 kernel, the op has {wshape[1:3]}")
        return {"kernel": (w, (wshape[3], wshape[0]), "dense"), "bias": (b, bshape, None)}, problems
    if isinstance(module, ConvTranspose2x2):
        opts = op.custom_options
        # Custom options: int32 padding (1 = SAME), stride width, stride height.
        if len(opts) != 12 or opts[4:] != (2).to_bytes(4, "little") * 2:
            problems.append(f"custom options {opts.hex()} are not stride 2")
    else:
        stride = (op.options.get("stride_h"), op.options.get("stride_w"))
        if stride != (module.stride, module.stride):
            problems.append(f"stride {stride}, ours {module.stride}")
        if op.options.get("depth_multiplier", 1) != 1:
            problems.append(f"depth multiplier {op.options['depth_multiplier']}")
    axes = (1, 2, 0, 3) if isinstance(module, DepthwiseConvBias) else (1, 2, 3, 0)
    return {"kernel": (w, tuple(wshape[a] for a in axes), axes),
            "bias": (b, bshape, None)}, problems


def map_tflite(graph, model) -> dict:
    """Our ``{"params": ...}`` from MediaPipe's selfie segmentation graph.

    The graph's CONV_2D, DEPTHWISE_CONV_2D and Convolution2DTransposeBias ops,
    in execution order, pair one to one with ``layer_order(model)``; each
    pair must agree on op kind, stride and every parameter shape. All
    problems are collected and raised as one ``WeightMismatchError`` naming
    the layers; shapes are compared before any data is read.

    Args:
        graph: the parsed file, ``zoo.weights.tflite.read_tflite(path)``.
        model: a ``SelfieSegmentation`` module.

    Returns:
        ``{"params": ...}`` of NumPy float32 arrays in our layouts (kernels
        HWIO, depthwise HW1C, dense (C_in, C_out)).

    Raises:
        WeightMismatchError: if the op count, an op's kind, stride or
            depth multiplier, or a parameter shape differs from our layers,
            or an op lacks its weight or bias input.
    """
    ours, template = layer_order(model)
    ops = [op for op in graph.ops if op.opcode in PARAM_OPS]
    head = one_line(graph.path, f"does not match {model.model_name}")
    if len(ops) != len(ours):
        raise WeightMismatchError(f"{head}: the graph has {len(ops)} parametric ops, our "
                                  f"model {len(ours)} layers")
    params, problems, fits = template["params"], [], []
    for op, (path, module) in zip(ops, ours):
        name = "/".join(path)
        if op.opcode != _OPS[type(module)]:
            problems.append(f"{name}: ours is {type(module).__name__}, op {op.index} is {op.opcode}")
            continue
        sources, bad = _op_params(graph, op, module)
        problems += [f"{name}: op {op.index} ({op.opcode}): {b}" for b in bad]
        node = params
        for k in path:
            node = node.get(k, {})
        for k, (src, shape, change) in sources.items():
            want = node.get(k)
            if want is None:
                problems.append(f"{name}/{k}: op {op.index} has it, our layer does not")
            elif tuple(want.shape) != tuple(shape):
                problems.append(f"{name}/{k}: ours {tuple(want.shape)}, op {op.index} "
                                f"({op.opcode}) gives {tuple(shape)}")
            else:
                fits.append((path, k, src, change))
    if problems:
        raise WeightMismatchError(f"{head}: " + " ".join("; ".join(problems).split()))
    result: dict = {}
    for path, k, src, change in fits:
        a = graph.dequantized_constant(src)
        if change == "dense":
            a = a.reshape(a.shape[0], -1).T
        elif change is not None:
            a = a.transpose(change)
        d = result
        for p in path:
            d = d.setdefault(p, {})
        d[k] = a
    return {"params": result}


def variables_from_tflite(path, name: str) -> dict:
    """Variables of registered model ``name`` from MediaPipe's ``.tflite``
    at ``path`` (``TFLiteFormatError`` for an unreadable file,
    ``WeightMismatchError`` for a graph that is not this network).

    Args:
        path: the ``.tflite`` file (str or path-like).
        name: "selfie_segmentation" or "selfie_segmentation_landscape".

    Returns:
        ``{"params": ...}`` of jax arrays, ready for ``model.apply``.

    Raises:
        WeightMismatchError: if the file has several subgraphs or its graph
            is not this network.
        TFLiteFormatError: if the file is not a readable TFLite graph.
        KeyError: if ``name`` is not registered.
    """
    from zoo.registry import build
    from zoo.weights.tflite import read_tflite

    model = build(name)
    graph = read_tflite(path, subgraph=0)
    if graph.num_subgraphs != 1:
        raise WeightMismatchError(one_line(path, f"{graph.num_subgraphs} subgraphs; "
                                           f"{name}'s graph has one"))
    return jax.tree_util.tree_map(jnp.asarray, map_tflite(graph, model))


@functools.lru_cache(maxsize=None)
def pretrained_variables(name: str) -> dict:
    """MediaPipe's weights for ``name``, fetched from the pinned wheel (cached,
    hash-checked; ``ZOO_OFFLINE=1`` never downloads) and mapped.

    The result is cached per process: callers must not modify it.

    Args:
        name: "selfie_segmentation" or "selfie_segmentation_landscape".

    Returns:
        ``{"params": ...}`` of jax arrays.

    Raises:
        zoo.weights.errors.WeightFetchError: if the file cannot be fetched
            or fails its hash check.
        WeightMismatchError: if the fetched graph does not fit the model.
    """
    from zoo.weights.fetch import fetch
    from zoo.weights.pretrained import weight_source

    return variables_from_tflite(fetch(weight_source(name), name=name), name)


# ---------------------------------------------------------------- registry

def _register():
    from zoo.registry import ModelSpec, WeightSource, register

    # SHA-256 of the files inside mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl
    # (`pip download --no-deps --only-binary=:all: --python-version 3.11 --platform
    # manylinux_2_28_x86_64 mediapipe==0.10.21`, unzip, sha256sum).
    files = {
        "selfie_segmentation": (
            "selfie_segmentation.tflite",
            "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
        "selfie_segmentation_landscape": (
            "selfie_segmentation_landscape.tflite",
            "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"),
    }
    for name, (file, sha256) in files.items():
        register(ModelSpec(
            name=name, family="selfie_segmentation", task="segmentation",
            input_size=INPUT_SHAPES[name][0], input_width=INPUT_SHAPES[name][1],
            mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0),  # [0, 1], as the graph expects
            crop_fraction=1.0, interpolation="bilinear", num_classes=1, padding="same",
            bn_eps=0.0,  # no BatchNorm
            published=None,  # MediaPipe publishes IoU per region, no parameter or FLOP count
            weights=(WeightSource(
                format="tflite", package="mediapipe==0.10.21",
                path=f"mediapipe/modules/selfie_segmentation/{file}", sha256=sha256,
                license="Apache-2.0", origin="MediaPipe (PyPI)"),),
            license="Apache-2.0"), SelfieSegmentation)


_register()
