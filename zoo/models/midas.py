"""MiDaS v2.1 small: relative inverse depth from one image (Ranftl et al.,
"Towards Robust Monocular Depth Estimation: Mixing Datasets for Zero-shot
Cross-dataset Transfer", TPAMI 2022; the v2.1 release of isl-org/MiDaS,
2020), and the zoo's own smaller sibling on EfficientNet-Lite0.

An EfficientNet encoder (the zoo's, TF "SAME" padding, ReLU6, BatchNorm eps
1e-3) is tapped at strides 4, 8, 16 and 32; a RefineNet-style decoder fuses
the taps from the coarsest up, doubling the resolution at each step, and a
head doubles once more to the input size. Layer sizes from isl-org/MiDaS
``midas/midas_net_custom.py`` (``MidasNet_small``) and ``midas/blocks.py``
(``_make_efficientnet_backbone``, ``_make_scratch``,
``FeatureFusionBlock_custom``, ``ResidualConvUnit_custom``).

Encoder taps (the outputs of the zoo EfficientNet's stages)

    tap  stride  encoder part (stages of the table)   Lite3  Lite0  MiDaS module
    1      4     stem conv3x3/2, stages 1-2             32     24   pretrained.layer1
    2      8     stage 3                                48     40   pretrained.layer2
    3     16     stages 4-5                            136    112   pretrained.layer3
    4     32     stages 6-7                            384    320   pretrained.layer4

Decoder (F = ``features``: 64 in MiDaS v2.1 small; ``expand`` doubles the
width per tap, F/2F/4F/8F, instead of F everywhere)

    row      layers                                       channels     stride   MiDaS module
    reduceI  conv3x3, no bias                             tapI -> F*2^(I-1)     scratch.layerI_rn
    fuse4    RCU; up2 (ac); conv1x1                       8F -> 4F   32 -> 16  scratch.refinenet4
    fuse3    + RCU(reduce3); RCU; up2 (ac); conv1x1       4F -> 2F   16 -> 8   scratch.refinenet3
    fuse2    + RCU(reduce2); RCU; up2 (ac); conv1x1       2F -> F     8 -> 4   scratch.refinenet2
    fuse1    + RCU(reduce1); RCU; up2 (ac); conv1x1        F -> F     4 -> 2   scratch.refinenet1
    head     conv3x3; up2 (hp); conv3x3; ReLU;            F -> F/2 -> 32 -> 1  scratch.output_conv
             conv1x1; ReLU                                           2 -> 1

RCU (residual conv unit): ``x + conv3x3(relu(conv3x3(relu(x))))``, both
convolutions with bias, no BatchNorm. ``up2``: bilinear x2; "(ac)" with
``align_corners=True`` as MiDaS's fusion blocks do, "(hp)" with half-pixel
centres (``align_corners=False``, the default of MiDaS's ``Interpolate``
module, which the head uses). Without ``expand`` every width is F. The
output is squeezed to (N, H, W), non-negative (the last ReLU).

MiDaS builds the skip RCU of ``refinenet4`` too (``resConfUnit1``) but never
calls it: the coarsest block has no skip input. Its 4.7 M parameters are in
the published file and in MiDaS's count of 21 M, so ``midas_small`` declares
them (``unused_skip_unit=True``) and computes nothing with them;
``midas_small_lite0`` leaves them out.

Input: RGB, (x - ImageNet mean) / ImageNet std for ``midas_small`` (as MiDaS),
(x - 127) / 128 for ``midas_small_lite0`` (as its ImageNet backbone was
trained); both sides multiples of 32.
MiDaS resizes (bicubic) so the image fits 256x256 keeping its aspect ratio,
each side rounded to a multiple of 32 ("upper_bound" in MiDaS's
``midas/transforms.py``): ``network_size`` computes that size.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from zoo.layers import ChecksConventions, Conv, ConvSettings, check_images, conv_init
from zoo.models.common import MIN_INPUT, timm_block_names

STRIDE = 32  # the encoder's total stride: inputs must be multiples of it
HEAD_WIDTH = 32  # the head's last 3x3 conv (MidasNet_small's output_conv)
# The EfficientNet stage whose output each MiDaS encoder module's children
# are (midas/blocks.py, _make_efficientnet_backbone): layer1 = conv_stem,
# bn1, act1, blocks[0], blocks[1]; layer2 = blocks[2]; layer3 = blocks[3:5];
# layer4 = blocks[5:9] (stages 5 and 6; there are seven).
MIDAS_STAGES = {0: "pretrained.layer1.3", 1: "pretrained.layer1.4", 2: "pretrained.layer2.0",
                3: "pretrained.layer3.0", 4: "pretrained.layer3.1", 5: "pretrained.layer4.0",
                6: "pretrained.layer4.1"}


# ------------------------------------------------------- bilinear x2 upsampling
#
# PyTorch's bilinear x2 reads output p at input position s(p) and mixes the
# two neighbours floor(s), floor(s) + 1 (clamped at the edge) linearly. For a
# doubling, even outputs 2k mix inputs k-1 and k, odd outputs 2k+1 mix k and
# k+1, with one weight per k (derived below). So the resize is a few
# elementwise ops on shifted copies, and the two results interleave by a
# concatenation and a reshape: TFLite builtins XNNPACK delegates (no
# TRANSPOSE, GATHER or matrix against a (2n, n) interpolation table).


def _lerp_weights(n: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(b, a)`` for an axis of ``n`` inputs doubled: output 2k =
    x[k-1] + b[k] (x[k] - x[k-1]), output 2k+1 = x[k] + a[k] (x[k+1] - x[k]).

    The positions are computed in float32 as PyTorch's CPU kernel computes
    them (scale, then scale * p): exact (float64) ones differ from them by up
    to 1e-5 of a pixel on a 64-pixel axis, which shows in the output."""
    p = np.arange(2 * n, dtype=np.float32)
    if align_corners:
        # s(p) = p (n - 1) / (2n - 1): s(2k) = k - k / (2n - 1) lies between
        # k-1 and k; s(2k+1) = k + (n - 1 - k) / (2n - 1) between k and k+1.
        scale = np.float32(n - 1) / np.float32(2 * n - 1)
        src = scale * p
    else:
        # Half-pixel centres: s(p) = (p + 0.5) / 2 - 0.5, clamped at 0:
        # s(2k) = k - 1/4 (k = 0 clamps to 0), s(2k+1) = k + 1/4 (the last
        # reads its own value twice: the neighbour is clamped).
        src = np.maximum(np.float32(0.5) * (p + np.float32(0.5)) - np.float32(0.5), 0)
    k = np.arange(n, dtype=np.float64)
    # Rounding can put s a hair past the pair's integer end: clip to the pair.
    b = np.clip(src[0::2].astype(np.float64) - (k - 1), 0, 1)
    a = np.clip(src[1::2].astype(np.float64) - k, 0, 1)
    return b.astype(np.float32), a.astype(np.float32)


def _double_axis(x, axis: int, align_corners: bool):
    n = x.shape[axis]
    b, a = _lerp_weights(n, align_corners)
    shape = [1] * x.ndim
    shape[axis] = n
    b = jnp.asarray(b.reshape(shape), x.dtype)
    a = jnp.asarray(a.reshape(shape), x.dtype)
    if n == 1:
        prev = nxt = x  # b = 1, a = 0: both outputs are the input
    else:
        prev = jnp.concatenate([lax.slice_in_dim(x, 0, 1, axis=axis),
                                lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis)
        nxt = jnp.concatenate([lax.slice_in_dim(x, 1, n, axis=axis),
                               lax.slice_in_dim(x, n - 1, n, axis=axis)], axis)
    even = prev + b * (x - prev)
    odd = x + a * (nxt - x)
    # Side by side along the next axis, then that axis folded back: row (or
    # column) k of `even` and of `odd` become outputs 2k and 2k+1.
    out = list(x.shape)
    out[axis] *= 2
    return jnp.concatenate([even, odd], axis=axis + 1).reshape(out)


def upsample2x(x, align_corners: bool):
    """Bilinear x2 of NHWC ``x``, as PyTorch's ``F.interpolate(scale_factor=2,
    mode="bilinear", align_corners=...)`` computes it.

    Args:
        x: (N, H, W, C) float feature map.
        align_corners: True for PyTorch's ``align_corners=True`` (corner
            pixels map to corner pixels: MiDaS's fusion blocks), False for
            half-pixel centres (MiDaS's head).

    Returns:
        (N, 2H, 2W, C) in ``x``'s dtype.
    """
    return _double_axis(_double_axis(x, 1, align_corners), 2, align_corners)


# ------------------------------------------------------------------ modules


class _ConvParams(nn.Module):
    """A ``Conv``'s ``kernel`` and ``bias`` (same names, shapes and
    initialisers), declared without computing anything."""

    features: int
    kernel: int
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x):  # x gives the input channels (and lets the counter see the layer)
        self.param("kernel", conv_init, (self.kernel, self.kernel, x.shape[-1], self.features))
        self.param("bias", nn.initializers.zeros, (self.features,))


class ResidualConvUnit(nn.Module):
    """``x + conv2(relu(conv1(relu(x))))``, 3x3 convolutions with bias.
    ``declare_only``: create the parameters, compute nothing (MiDaS's unused
    skip unit of the coarsest fusion block).

    ``__call__(x, declare_only=False)``: ``x`` (N, H, W, C) -> the same
    shape, or None with ``declare_only``. Layers ``conv1`` and ``conv2``.

    Attributes:
        settings: padding, implementation and compute dtype.
    """

    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x, declare_only: bool = False):
        c = x.shape[-1]
        if declare_only:
            for name in ("conv1", "conv2"):
                _ConvParams(c, 3, self.settings, name=name)(x)
            return None
        y = Conv(c, 3, use_bias=True, settings=self.settings, name="conv1")(jax.nn.relu(x))
        y = Conv(c, 3, use_bias=True, settings=self.settings, name="conv2")(jax.nn.relu(y))
        return x + y


class FusionBlock(nn.Module):
    """MiDaS's FeatureFusionBlock_custom: add RCU(skip) if given, RCU,
    bilinear x2 (align_corners=True), 1x1 conv to ``out`` channels.

    ``__call__(x, skip=None)``: ``x`` (N, H, W, C) and ``skip`` of the same
    shape -> (N, 2H, 2W, ``out``). Layers ``skip_unit``, ``unit`` and
    ``out_conv``.

    Attributes:
        out: output channels.
        unused_skip_unit: without a skip input, still declare the skip
            unit's parameters (MiDaS's ``refinenet4.resConfUnit1``).
        settings: padding, implementation and compute dtype.
    """

    out: int
    unused_skip_unit: bool = False  # declare the skip RCU although no skip comes
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x, skip=None):
        if skip is not None:
            x = x + ResidualConvUnit(self.settings, name="skip_unit")(skip)
        elif self.unused_skip_unit:
            ResidualConvUnit(self.settings, name="skip_unit")(x, declare_only=True)
        x = ResidualConvUnit(self.settings, name="unit")(x)
        x = upsample2x(x, align_corners=True)
        return Conv(self.out, 1, use_bias=True, settings=self.settings, name="out_conv")(x)


class DepthHead(nn.Module):
    """conv3x3 to half width, bilinear x2 (half-pixel), conv3x3 to 32, ReLU,
    conv1x1 to 1, ReLU (``non_negative``).

    ``__call__(x)``: ``x`` (N, H, W, C) -> (N, 2H, 2W, 1). Layers ``conv1``,
    ``conv2`` and ``conv3``.

    Attributes:
        non_negative: end with a ReLU.
        settings: padding, implementation and compute dtype.
    """

    non_negative: bool = True
    settings: ConvSettings = ConvSettings()

    @nn.compact
    def __call__(self, x):
        s = self.settings
        x = Conv(x.shape[-1] // 2, 3, use_bias=True, settings=s, name="conv1")(x)
        x = upsample2x(x, align_corners=False)
        x = jax.nn.relu(Conv(HEAD_WIDTH, 3, use_bias=True, settings=s, name="conv2")(x))
        x = Conv(1, 1, use_bias=True, settings=s, name="conv3")(x)
        return jax.nn.relu(x) if self.non_negative else x


class MidasSmall(ChecksConventions):
    """MidasNet_small on a zoo EfficientNet (see the module docstring).

    ``__call__(x, train=False)``: ``x`` (N, H, W, 3) normalised images, H and
    W multiples of 32 -> (N, H, W) float32 relative inverse depth. Eval mode
    by default; ``train=True`` updates the encoder's BatchNorm statistics
    (pass ``mutable=["batch_stats"]``; the decoder has no BatchNorm) and,
    with ``drop_path`` > 0, applies stochastic depth in the encoder (then
    pass ``rngs={"dropout": key}``).

    Variables: the encoder under ``encoder`` is exactly the param tree of
    the zoo classifier ``backbone`` without its head (``stem``,
    ``blocks_<i>``), so ImageNet weights merge in by name
    (``with_backbone``); the decoder is ``reduce1..4``, ``fuse4..1``
    (``skip_unit``, ``unit``, ``out_conv``) and ``head``.

    ``num_classes`` is ignored (one depth channel). ``include_top=False`` and
    ``features_only=True`` are refused: the encoder's features come from
    ``zoo.build(model.backbone, features_only=True)`` and these variables'
    ``encoder`` subtree.

    Attributes:
        backbone: registry name of the EfficientNet classifier the encoder is.
        features: decoder width F at stride 4.
        expand: widths F, 2F, 4F, 8F at strides 4 to 32 (else F everywhere).
        unused_skip_unit: declare MiDaS's never-called skip unit of the
            coarsest fusion block (for the published file's parameters).
        non_negative: end with a ReLU.
        drop_path: encoder stochastic-depth rate, in training.
        num_classes: ignored (one depth channel).
        include_top: must be True.
        features_only: must be False.
        settings: padding, BatchNorm, implementation and compute dtype.
        model_name: the registry name, used in error messages.

    Raises:
        ValueError: on construction with ``features_only=True`` or
            ``include_top=False``; when called, for sides that are not
            multiples of 32 (and, as ``zoo.layers.check_images``, for input
            that is not float NHWC RGB of at least 32x32, TypeError for a
            non-float dtype).

    Example:
        ::

            model, variables = zoo.create("midas_small_lite0")
            x = zoo.preprocess(images, "midas_small_lite0")  # (N, 256, 256, 3)
            depth = model.apply(variables, x)                # (N, 256, 256)
    """

    backbone: str = "efficientnet_lite3"  # registry name of the encoder's classifier
    features: int = 64  # decoder width F at stride 4
    expand: bool = True  # widths F, 2F, 4F, 8F at strides 4..32 (else F everywhere)
    unused_skip_unit: bool = False  # declare MiDaS's never-called refinenet4.resConfUnit1
    non_negative: bool = True  # final ReLU
    drop_path: float = 0.0  # encoder stochastic depth in training
    num_classes: int = 1
    include_top: bool = True
    features_only: bool = False
    settings: ConvSettings = ConvSettings()
    model_name: str = "midas"

    def __post_init__(self):
        if self.features_only or not self.include_top:
            what = "features_only=True" if self.features_only else "include_top=False"
            raise ValueError(
                f"{self.model_name}: {what} does not apply to a depth model; for its encoder's "
                f"features build the backbone: zoo.build({self.backbone!r}, features_only=True) "
                "with these variables' 'encoder' subtree")
        super().__post_init__()

    def widths(self) -> tuple[int, int, int, int]:
        """Decoder channels at strides 4, 8, 16, 32.

        Returns:
            ``(F, 2F, 4F, 8F)`` with ``expand``, else ``(F, F, F, F)``;
            F = ``features``.
        """
        f = self.features
        return (f, 2 * f, 4 * f, 8 * f) if self.expand else (f, f, f, f)

    def encoder_module(self, **kwargs):
        """The zoo EfficientNet this model's encoder is (``features_only``).

        Args:
            **kwargs: more ``EfficientNet`` fields, e.g. ``name=`` or
                ``parent=None``.

        Returns:
            An ``EfficientNet`` with the backbone spec's config, this model's
            settings and ``drop_path``, returning the stage outputs.

        Raises:
            ValueError: if ``backbone`` is not an EfficientNet.
        """
        from zoo.models.efficientnet import EfficientNet
        from zoo.registry import get_spec

        spec = get_spec(self.backbone)
        if spec.family != "efficientnet":
            raise ValueError(f"{self.model_name}: backbone {self.backbone!r} is a {spec.family}; "
                             "the MiDaS encoder taps an EfficientNet")
        return EfficientNet(**dict(spec.config), features_only=True, drop_path=self.drop_path,
                            settings=self.settings, model_name=self.model_name, **kwargs)

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_images(x, model=self.model_name, min_size=MIN_INPUT)
        h, w = x.shape[1:3]
        if h % STRIDE or w % STRIDE:
            up = (math.ceil(h / STRIDE) * STRIDE, math.ceil(w / STRIDE) * STRIDE)
            raise ValueError(f"{self.model_name}: input {h}x{w} must have both sides multiples "
                             f"of {STRIDE} (e.g. {up[0]}x{up[1]}; "
                             "zoo.models.midas.network_size picks MiDaS's size for an image)")
        s = self.settings
        # Stage outputs at strides 2, 4, 8, 16, 32: the taps are the last four.
        taps = self.encoder_module(name="encoder")(x, train)[1:]
        widths = self.widths()
        reduced = [Conv(c, 3, settings=s, name=f"reduce{i + 1}")(t)
                   for i, (t, c) in enumerate(zip(taps, widths))]
        y = FusionBlock(widths[2], self.unused_skip_unit, s, name="fuse4")(reduced[3])
        y = FusionBlock(widths[1], settings=s, name="fuse3")(y, reduced[2])
        y = FusionBlock(widths[0], settings=s, name="fuse2")(y, reduced[1])
        y = FusionBlock(widths[0], settings=s, name="fuse1")(y, reduced[0])
        y = DepthHead(self.non_negative, s, name="head")(y)
        return y[..., 0].astype(jnp.float32)

    def torch_names(self) -> dict[tuple[str, ...], str]:
        """Our module paths -> module names of MiDaS's ``MidasNet_small``
        state dict (``pretrained.layer*`` wrap gen-efficientnet's modules,
        whose block layers are named like timm's).

        Returns:
            A dict from our layer paths (``("encoder", "stem", "conv")``,
            ``("fuse4", "unit", "conv1")``, ...) to MiDaS's dotted module
            names (``"pretrained.layer1.0"``,
            ``"scratch.refinenet4.resConfUnit2.conv1"``, ...).
        """
        layout = self.encoder_module(parent=None).layout()  # a free module, not our child
        names = {}
        positions = [(b.stage, b.index) for b in layout.blocks]
        for ours, theirs in timm_block_names(layout, positions).items():
            if ours == ("classifier",):
                continue
            if theirs.startswith("blocks."):
                _, stage, rest = theirs.split(".", 2)
                theirs = f"{MIDAS_STAGES[int(stage)]}.{rest}"
            else:
                theirs = {"conv_stem": "pretrained.layer1.0", "bn1": "pretrained.layer1.1"}[theirs]
            names[("encoder",) + ours] = theirs
        for i in range(1, 5):
            names[(f"reduce{i}",)] = f"scratch.layer{i}_rn"
            block = f"scratch.refinenet{i}"
            for ours, theirs in (("skip_unit", "resConfUnit1"), ("unit", "resConfUnit2")):
                for conv in ("conv1", "conv2"):
                    names[(f"fuse{i}", ours, conv)] = f"{block}.{theirs}.{conv}"
            names[(f"fuse{i}", "out_conv")] = f"{block}.out_conv"
        for ours, index in (("conv1", 0), ("conv2", 2), ("conv3", 4)):  # nn.Sequential positions
            names[("head", ours)] = f"scratch.output_conv.{index}"
        return names


# ------------------------------------------------------------------ helpers


def network_size(height: int, width: int, bound: int = 256,
                 multiple: int = STRIDE) -> tuple[int, int]:
    """MiDaS's input size for a ``height`` x ``width`` image: scaled to fit
    ``bound`` x ``bound`` keeping the aspect ratio, each side rounded to a
    multiple of ``multiple`` (to nearest, down where that would pass
    ``bound``): ``Resize(..., keep_aspect_ratio=True, ensure_multiple_of=32,
    resize_method="upper_bound")`` of MiDaS's ``midas/transforms.py``. A side
    that would round to 0 (an image over 16 times longer than wide) gets
    ``multiple`` instead; MiDaS has no answer there.

    Args:
        height: the image's height in pixels.
        width: the image's width in pixels.
        bound: the side of the square the image is fitted into.
        multiple: what each side is rounded to a multiple of.

    Returns:
        ``(height, width)`` of the network input, e.g. ``network_size(480,
        640) == (192, 256)``.

    Raises:
        ValueError: if ``height`` or ``width`` is below 1.
    """
    if height < 1 or width < 1:
        raise ValueError(f"network_size: image {height}x{width} has no pixels")
    scale = min(bound / height, bound / width)

    def fit(side: float) -> int:
        y = int(np.round(side / multiple) * multiple)
        if y > bound:
            y = int(np.floor(side / multiple) * multiple)
        return max(y, multiple)

    return fit(scale * height), fit(scale * width)


def with_backbone(variables: dict, backbone_variables: dict) -> dict:
    """``variables`` of a MiDaS model with its encoder replaced by a trained
    classifier's (``backbone_variables`` of the model's ``backbone``, e.g.
    ``zoo.load_pretrained("efficientnet_lite0")``): the stem and blocks are
    copied by name; the classifier's head and FC are not part of the
    encoder. Raises ValueError naming the first paths that do not fit.

    Args:
        variables: the MiDaS model's variables (every collection with an
            ``encoder`` subtree gets it replaced).
        backbone_variables: the classifier's variables, same collections.

    Returns:
        A new plain dict of variables; ``variables`` is not modified.

    Raises:
        ValueError: if a path of the encoder is missing from the
            classifier or has another shape (e.g. Lite1 weights for a Lite0
            encoder).

    Example:
        ::

            model, variables = zoo.create("midas_small_lite0")
            variables = with_backbone(variables, zoo.load_pretrained("efficientnet_lite0"))
    """
    out = {k: dict(v) for k, v in variables.items()}
    bad = []
    for collection, tree in variables.items():
        encoder = tree.get("encoder")
        if encoder is None:
            continue
        source = backbone_variables.get(collection, {})
        flat = jax.tree_util.tree_flatten_with_path(encoder)[0]
        new = {}
        for path, leaf in flat:
            keys = [str(getattr(p, "key", p)) for p in path]
            node = source
            for k in keys:
                node = node.get(k) if isinstance(node, dict) else None
            if node is None or tuple(np.shape(node)) != tuple(np.shape(leaf)):
                got = "missing" if node is None else f"shape {tuple(np.shape(node))}"
                bad.append(f"{collection}/{'/'.join(keys)} ({got}, want {tuple(np.shape(leaf))})")
                continue
            cursor = new
            for k in keys[:-1]:
                cursor = cursor.setdefault(k, {})
            cursor[keys[-1]] = node
        out[collection]["encoder"] = new
    if bad:
        raise ValueError(f"the backbone variables do not fit this encoder ({len(bad)} paths): "
                         + ", ".join(bad[:6]) + (" ..." if len(bad) > 6 else ""))
    return out


# ----------------------------------------------------------------- registry

MIDAS_README = ("isl-org/MiDaS README.md (commit 4545977), Accuracy table, row "
                "'v2.1 Small 256'")
# That row's zero-shot errors (lower is better; the README's "delta_1" columns
# are the percentage of pixels with max(d/d*, d*/d) > 1.25, as in the paper).
MIDAS_SMALL_METRICS = (
    ("DIW WHDR", 0.1344),
    ("ETH3D AbsRel", 0.1344),
    ("Sintel AbsRel", 0.3370),
    ("TUM delta>1.25 %", 14.53),
    ("KITTI delta>1.25 %", 29.27),
    ("NYUv2 delta>1.25 %", 13.43),
)
MIDAS_SMALL_NOTE = (
    "MiDaS publishes parameters rounded to millions and no multiply-adds. Of the 21 M, "
    "4.7 M are refinenet4's skip unit, which MidasNet_small builds but never calls.")
MIDAS_URL = "https://github.com/isl-org/MiDaS/releases/download/v2_1/midas_v21_small_256.pt"
LITE0_FEATURES = 32  # keeps midas_small_lite0 under 6 M parameters in all (5.86 M)


def _register():
    from zoo.registry import (IMAGENET_MEAN, IMAGENET_STD, ModelSpec, Published, WeightSource,
                              register)

    common = dict(family="midas", task="depth", input_size=256, crop_fraction=1.0,
                  interpolation="bicubic", num_classes=1, padding="same", bn_eps=1e-3)
    register(ModelSpec(
        name="midas_small", **common, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        published=Published(21e6, None, None, MIDAS_README, note=MIDAS_SMALL_NOTE,
                            metrics=MIDAS_SMALL_METRICS),
        # The release publishes no hash (nor does the file name carry one):
        # the source is declared unpinned rather than given a made-up pin.
        weights=(WeightSource(format="torch", url=MIDAS_URL, license="MIT",
                              origin="MiDaS v2.1", unpinned=True),),
        license="MIT",
        config=(("backbone", "efficientnet_lite3"), ("expand", True), ("features", 64),
                ("unused_skip_unit", True)),
    ), MidasSmall)
    # The zoo's own variant, trained here: MiDaS v2.1 small's decoder design
    # on EfficientNet-Lite0 at half the width, without the unused unit. Its
    # input is normalised as the ImageNet Lite0 weights it starts from were
    # trained, (x - 127) / 128. Its weights ship inside the package.
    register(ModelSpec(
        name="midas_small_lite0", **common, mean=(127.0,) * 3, std=(128.0,) * 3,
        published=None,
        weights=(WeightSource(
            format="safetensors", bundled="weights/midas_small_lite0.safetensors",
            sha256="4d7cf375ccdcefc0e59ec8b45eeea58af871a68272bfd915ec42a86075bb4a8e",
            license="Apache-2.0", origin="zoo (depth_scenes_midas_small_lite0 recipe)",
            rebuild="zoo train --recipe depth_scenes_midas_small_lite0 --workdir runs/depth && "
                    "zoo convert-weights runs/depth --out midas_small_lite0.safetensors "
                    "--dtype float16"),),
        license="Apache-2.0",
        config=(("backbone", "efficientnet_lite0"), ("expand", True),
                ("features", LITE0_FEATURES), ("unused_skip_unit", False)),
    ), MidasSmall)


_register()
