"""BlazeFace short-range face detector (Bazarevsky et al., "BlazeFace:
Sub-millisecond Neural Face Detection on Mobile GPUs", 2019), as shipped by
MediaPipe (``face_detection_short_range.tflite``), plus the pieces the Blaze
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

Weights: ``blazeface_variables(graph, model)`` walks the TFLite graph from
each output back to the input and pairs the parametric ops it meets (CONV_2D,
DEPTHWISE_CONV_2D, PRELU) with the layers this table produces, in order,
checking op types and shapes on the way. No tensor index is written down.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from kernels import depthwise_conv
from zoo.layers import (Conv, ConvSettings, DepthwiseConv, activation, check_images,
                        depthwise_init)

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
    would be intercepted, and counted, twice."""

    @nn.compact
    def __call__(self, x):
        w = self.param("kernel", depthwise_init, (self.kernel, self.kernel, 1, x.shape[-1]))
        y = depthwise_conv(x, w, stride=self.stride, padding=self.settings.padding,
                           implementation=self.settings.implementation)
        return y + self.param("bias", nn.initializers.zeros, (x.shape[-1],)).astype(y.dtype)


class PReLU(nn.Module):
    """max(x, 0) + alpha * min(x, 0), one alpha per channel (TFLite PRELU)."""

    @nn.compact
    def __call__(self, x):
        alpha = self.param("alpha", nn.initializers.constant(0.25), (x.shape[-1],))
        # max/min rather than a select: exported to TFLite it stays MAXIMUM/MINIMUM/MUL/ADD,
        # which XNNPACK runs (a select leaves GREATER_EQUAL and SELECT outside it).
        return jnp.maximum(x, 0) + alpha.astype(x.dtype) * jnp.minimum(x, 0)


def act_layer(name: str, x, layer_name: str):
    """Apply the activation ``name``; PReLU carries parameters, named ``layer_name``."""
    if name == "prelu":
        return PReLU(name=layer_name)(x)
    return activation(name)(x)


class BlazeBlock(nn.Module):
    """Depthwise k x k + bias -> 1x1 conv + bias, plus the skip path (2x2
    max-pool at stride 2, zero channels appended when widening), then ``act``.

    ``pool_padding`` is the max-pool's TFLite padding ("SAME" or "VALID";
    the same on the even map sizes these models see)."""

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
    """Parameter-carrying layers of one BlazeBlock, in the order they run."""
    layers = [(prefix, "dw"), (prefix, "project")]
    return layers + ([(prefix, "act")] if act == "prelu" else [])


def check_input(x, model: str, size: int) -> None:
    check_images(x, model=model, min_size=1)
    if x.shape[1] != size or x.shape[2] != size:
        raise ValueError(f"{model}: expected {size}x{size} images (the anchors and heads are "
                         f"fixed to it), got {x.shape[1]}x{x.shape[2]}; resize first "
                         "(zoo.face does it for you)")


class _BlazeBase(nn.Module):
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
    -> ``(regressors (N, 896, 16), scores (N, 896, 1))``, float32."""

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
        to each of the tensors the output concatenates (see ``map_tflite``)."""
        trunk = [("stem",)] + [p for i in range(len(BLOCKS)) for p in
                               block_layers(f"blocks_{i}", "relu")]

        def upto(block):
            return trunk[:1 + 2 * (block + 1)]

        return [[upto(tap) + [(f"{name}_box",)] for name, tap, _ in HEADS],
                [upto(tap) + [(f"{name}_score",)] for name, tap, _ in HEADS]]


# ------------------------------------------------ weights from a TFLite graph

PARAM_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "PRELU")
PASS_OPS = ("RELU", "PAD", "MAX_POOL_2D", "RESHAPE")


def _chains(graph, tensor: int) -> list[list]:
    """Parametric ops from the graph input to ``tensor``, one list per
    concatenated input (a single list when nothing is concatenated).

    Walks producers backwards: CONV_2D, DEPTHWISE_CONV_2D and PRELU are
    recorded and their data input followed; RELU, PAD, MAX_POOL_2D and
    RESHAPE are passed through; an ADD follows its residual branch (the input
    a CONV_2D produced) after checking that the other input is the block's
    skip path from the same tensor; CONCATENATION splits the walk."""
    ops: list = []
    t = tensor
    while True:
        op = graph.producer(t)
        if op is None:
            if t not in graph.inputs:
                raise ValueError(f"{graph.path}: the walk back from tensor {tensor} ended at "
                                 f"tensor {t}, which is not the graph input")
            return [ops[::-1]]
        if op.opcode in PARAM_OPS:
            ops.append(op)
            t = op.inputs[0]
        elif op.opcode in PASS_OPS:
            t = op.inputs[0]
        elif op.opcode == "ADD":
            convs = [i for i in op.inputs if (p := graph.producer(i)) and p.opcode == "CONV_2D"]
            if len(convs) != 1:
                raise ValueError(f"{graph.path}: op {op.index} (ADD) has {len(convs)} inputs "
                                 "made by CONV_2D; expected a residual block with one")
            skip = [i for i in op.inputs if i != convs[0]][0]
            while (p := graph.producer(skip)) is not None and p.opcode in ("PAD", "MAX_POOL_2D"):
                skip = p.inputs[0]
            branch = graph.producer(graph.producer(convs[0]).inputs[0])
            if branch is None or branch.opcode != "DEPTHWISE_CONV_2D" or branch.inputs[0] != skip:
                raise ValueError(f"{graph.path}: op {op.index} (ADD) is not a Blaze block: its "
                                 "skip path and its depthwise conv read different tensors")
            t = convs[0]
        elif op.opcode == "CONCATENATION":
            out = []
            for i in op.inputs:
                out += [c + ops[::-1] for c in _chains(graph, i)]
            return out
        else:
            raise ValueError(f"{graph.path}: op {op.index} ({op.opcode}) is not part of a "
                             "Blaze network")


def _layer_arrays(graph, op) -> dict[str, np.ndarray]:
    """An op's parameters in our layouts: conv OHWI -> HWIO, depthwise
    1HWC -> HW1C, PReLU alpha (1, 1, C) -> (C,)."""
    if op.opcode == "PRELU":
        return {"alpha": graph.dequantized_constant(op.inputs[1]).reshape(-1)}
    w = graph.dequantized_constant(op.inputs[1])
    b = graph.dequantized_constant(op.inputs[2])
    if op.opcode == "CONV_2D":
        return {"kernel": w.transpose(1, 2, 3, 0), "bias": b}
    if op.options.get("depth_multiplier", 1) != 1:
        raise ValueError(f"{graph.path}: op {op.index} has depth multiplier "
                         f"{op.options['depth_multiplier']}; only 1 is supported")
    return {"kernel": w.transpose(1, 2, 0, 3), "bias": b}


def map_tflite(graph, model, template: dict) -> dict:
    """Our ``{"params": ...}`` from ``graph`` for a model with ``tflite_chains()``.

    The graph's outputs are taken in their order (regressors, scores for
    BlazeFace; landmarks, face flag for the mesh); each is walked back to the
    input (``_chains``) and its ops paired with our layers. A layer reached
    by several outputs (the shared trunk) must pair with the same op each
    time. Layers of ours left unpaired, graph ops left unused, and shape
    mismatches are reported by name."""
    ours = model.tflite_chains()
    if len(graph.outputs) != len(ours):
        raise ValueError(f"{graph.path}: {len(graph.outputs)} outputs, expected {len(ours)}")
    params = template["params"]
    assigned: dict[tuple[str, ...], object] = {}
    for out, chains in zip(graph.outputs, ours):
        found = _chains(graph, out)
        if [len(c) for c in found] != [len(c) for c in chains]:
            raise ValueError(f"{graph.path}: output {graph.tensors[out].name!r} has chains of "
                             f"{[len(c) for c in found]} parametric ops; ours have "
                             f"{[len(c) for c in chains]}")
        for gchain, ochain in zip(found, chains):
            for op, path in zip(gchain, ochain):
                prev = assigned.setdefault(path, op)
                if prev is not op:
                    raise ValueError(f"{graph.path}: layer {'/'.join(path)} pairs with ops "
                                     f"{prev.index} and {op.index}")
    problems, result = [], {}
    for path, op in assigned.items():
        node = params
        for k in path:
            node = node.get(k, {}) if isinstance(node, dict) else {}
        arrays = _layer_arrays(graph, op)
        for k, a in arrays.items():
            want = node.get(k) if isinstance(node, dict) else None
            if want is None:
                problems.append(f"{'/'.join(path)}/{k}: op {op.index} ({op.opcode}) has it, "
                                "our layer does not")
            elif tuple(want.shape) != a.shape:
                problems.append(f"{'/'.join(path)}/{k}: ours {tuple(want.shape)}, op "
                                f"{op.index} ({op.opcode}) gives {a.shape}")
            else:
                d = result
                for p in path:
                    d = d.setdefault(p, {})
                d[k] = a
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

    missing = sorted(set(leaves(params)) - set(leaves(result)))
    if missing:
        problems.append("our parameters with no weights: "
                        + ", ".join("/".join(p) for p in missing))
    if problems:
        raise ValueError(f"{graph.path} does not match {model.model_name}: "
                         + "; ".join(problems))
    return {"params": result}


def variables_from_tflite(path, name: str) -> dict:
    """Variables of registered model ``name`` from MediaPipe's ``.tflite`` at ``path``."""
    import jax

    from zoo.registry import build, variables_template
    from zoo.weights.tflite import read_tflite

    model = build(name)
    template = variables_template(model)
    return jax.tree_util.tree_map(jnp.asarray, map_tflite(read_tflite(path), model, template))


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


_register()
