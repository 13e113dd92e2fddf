"""MobileNetV3 Large and Small (Howard et al., ICCV 2019).

Architecture (Howard et al. 2019, Tables 1 and 2). ``expand`` is the
expanded width over the block input; SE reduces the expanded width by 4 and
gates with hard-sigmoid; HS = hard-swish. The last 1x1 conv is 6x the last
stage's channels; after pooling, an FC without BN (1280 / 1024) precedes the
classifier.

Large:
    stage  block    repeats  kernel  stride  expand  channels  SE  act
    stem   conv3x3     1       3       2       -        16     -   HS
    1      bneck       1       3       1       1        16     -   relu
    2      bneck       2       3       2,1    4,3       24     -   relu
    3      bneck       3       5       2       3        40     y   relu
    4      bneck       4       3       2      6,2.5,2.3,2.3  80  -  HS
    5      bneck       2       3       1       6       112     y   HS
    6      bneck       3       5       2       6       160     y   HS
    head   conv1x1     1       1       1       -       960     -   HS
    fc     pool+FC     1       -       -       -      1280     -   HS

Small:
    stem   conv3x3     1       3       2       -        16     -   HS
    1      bneck       1       3       2       1        16     y   relu
    2      bneck       2       3       2,1   4.5,3.67   24     -   relu
    3      bneck       3       5       2      4,6,6     40     y   HS
    4      bneck       2       5       1       3        48     y   HS
    5      bneck       3       5       2       6        96     y   HS
    head   conv1x1     1       1       1       -       576     -   HS
    fc     pool+FC     1       -       -       -      1024     -   HS

The width multiplier scales the block channels (rounded to multiples of 8);
as in Keras Applications the stem stays at 16 and the FC grows only above 1.
"""

from __future__ import annotations

from zoo.layers import make_divisible
from zoo.models.common import BlockSpec, ConvNet, ConvSpec, Layout, timm_block_names

# One row per block: expand, channels, kernel, stride, se, act
LARGE = (
    (1, 16, 3, 1, False, "relu"),
    (4, 24, 3, 2, False, "relu"),
    (3, 24, 3, 1, False, "relu"),
    (3, 40, 5, 2, True, "relu"),
    (3, 40, 5, 1, True, "relu"),
    (3, 40, 5, 1, True, "relu"),
    (6, 80, 3, 2, False, "hard_swish"),
    (2.5, 80, 3, 1, False, "hard_swish"),
    (2.3, 80, 3, 1, False, "hard_swish"),
    (2.3, 80, 3, 1, False, "hard_swish"),
    (6, 112, 3, 1, True, "hard_swish"),
    (6, 112, 3, 1, True, "hard_swish"),
    (6, 160, 5, 2, True, "hard_swish"),
    (6, 160, 5, 1, True, "hard_swish"),
    (6, 160, 5, 1, True, "hard_swish"),
)
SMALL = (
    (1, 16, 3, 2, True, "relu"),
    (72 / 16, 24, 3, 2, False, "relu"),
    (88 / 24, 24, 3, 1, False, "relu"),
    (4, 40, 5, 2, True, "hard_swish"),
    (6, 40, 5, 1, True, "hard_swish"),
    (6, 40, 5, 1, True, "hard_swish"),
    (3, 48, 5, 1, True, "hard_swish"),
    (3, 48, 5, 1, True, "hard_swish"),
    (6, 96, 5, 2, True, "hard_swish"),
    (6, 96, 5, 1, True, "hard_swish"),
    (6, 96, 5, 1, True, "hard_swish"),
)
STEM = 16
HEAD_EXPAND = 6
FC = {"large": 1280, "small": 1024}
WIDTHS = (0.75, 1.0)  # the published checkpoints
# Blocks per stage in timm's arch_def (timm/models/mobilenetv3.py,
# _gen_mobilenet_v3); the head conv is timm's last stage, a lone ConvBnAct.
TIMM_STAGES = {"large": (1, 2, 3, 4, 2, 3), "small": (1, 2, 3, 2, 3)}


class MobileNetV3(ConvNet):
    """MobileNetV3 Large or Small (see the module docstring), run by
    ``ConvNet``: ``__call__(x, train=False)`` takes (N, H, W, 3) normalised
    float images and returns (N, ``num_classes``) float32 logits.

    Attributes:
        size: "large" or "small": which table.
        width: the width multiplier of the block channels (published:
            ``WIDTHS``).
        num_classes: classifier outputs.
        include_top: pool and classify; False returns the head conv's map.
        features_only: return the stage outputs at strides 2 to 32.
        dropout: dropout rate before the classifier, in training.
        drop_path: stochastic-depth rate of the last block, in training.
        settings: padding, BatchNorm, implementation and compute dtype.
        model_name: the registry name, used in error messages.
    """

    size: str = "large"
    width: float = 1.0

    def layout(self) -> Layout:
        """The ``size`` table at ``width`` (block channels rounded to
        multiples of 8; the stem stays 16, the FC widens only above 1).

        Returns:
            The ``Layout`` ``ConvNet`` runs.
        """
        rows = {"large": LARGE, "small": SMALL}[self.size]
        blocks = []
        cin = STEM
        for i, (expand, cout, k, stride, se, act) in enumerate(rows):
            expanded = make_divisible(cin * expand, 8)
            cout = make_divisible(cout * self.width, 8)
            blocks.append(BlockSpec(out=cout, expanded=expanded, kernel=k, stride=stride, act=act,
                                    se_reduced=make_divisible(expanded * 0.25, 8) if se else 0,
                                    se_act="relu", se_gate="hard_sigmoid", index=i))
            cin = cout
        fc = FC[self.size]
        fc = make_divisible(fc * self.width, 8) if self.width > 1.0 else fc
        return Layout(stem=ConvSpec(STEM, 3, 2, "hard_swish"), blocks=tuple(blocks),
                      head=ConvSpec(make_divisible(cin * HEAD_EXPAND, 8), 1, 1, "hard_swish"),
                      head_fc=ConvSpec(fc, act="hard_swish"))

    def timm_names(self) -> dict[tuple[str, ...], str]:
        """Our module paths -> module names of timm's ``tf_mobilenetv3_*``.

        Returns:
            A dict from our layer paths to timm's dotted module names (the
            head conv is timm's last stage, the FC its ``conv_head``).
        """
        stages = TIMM_STAGES[self.size]
        positions = [(s, j) for s, n in enumerate(stages) for j in range(n)]
        names = timm_block_names(self.layout(), positions)
        last = f"blocks.{len(stages)}.0"
        names.update({("head", "conv"): f"{last}.conv", ("head", "bn"): f"{last}.bn1",
                      ("head_fc",): "conv_head"})
        return names

    def keras_names(self) -> dict[tuple[str, ...], str]:
        """Our layer paths -> layer names of ``keras.applications.MobileNetV3*``.

        Returns:
            A dict from paths such as ``("blocks_1", "se", "reduce")`` to
            Keras layer names such as ``"expanded_conv_1_squeeze_excite_conv"``.
        """
        names = {("stem", "conv"): "conv", ("stem", "bn"): "conv_bn",
                 ("head", "conv"): "conv_1", ("head", "bn"): "conv_1_bn",
                 ("head_fc",): "conv_2", ("classifier",): "logits"}
        for i, _ in enumerate(self.layout().blocks):
            p = f"expanded_conv_{i}_" if i else "expanded_conv_"
            for part, keras in (("expand", "expand"), ("dw", "depthwise"), ("project", "project")):
                names[(f"blocks_{i}", part, "conv")] = p + keras
                names[(f"blocks_{i}", part, "bn")] = p + keras + "_bn"
            names[(f"blocks_{i}", "se", "reduce")] = p + "squeeze_excite_conv"
            names[(f"blocks_{i}", "se", "expand")] = p + "squeeze_excite_conv_1"
        return names


def _register():
    from zoo.registry import (INCEPTION_MEAN, INCEPTION_STD, ModelSpec, Published, WeightSource,
                              register, timm_release)

    paper = "Howard et al. 2019, Table 3"
    # Keras Applications' ImageNet files, pinned by the MD5s in Keras 3.15's
    # keras/src/applications/mobilenet_v3.py (WEIGHTS_HASHES, with-top files).
    keras_md5 = {"large": "59e551e166be033d707958cf9e29a6a7",
                 "small": "8768d4c2e7dee89b9d02b2d03d65d862"}
    # timm's ports of the TF-slim checkpoints (tf_mobilenetv3_<size>_100.in1k;
    # timm 1.0.31's pretrained configs name these files), same conventions.
    timm_digests = {"large": "427764d5", "small": "37f49e2b"}
    for size, (params, macs, top1) in (("large", (5.4e6, 219e6, 75.2)),
                                       ("small", (2.5e6, 56e6, 67.4))):
        register(ModelSpec(
            name=f"mobilenet_v3_{size}", family="mobilenet_v3", task="classification",
            input_size=224, mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_fraction=0.875,
            interpolation="bilinear", num_classes=1000, padding="same", bn_eps=1e-3,
            published=Published(params, macs, top1, paper), license="Apache-2.0",
            weights=(WeightSource(
                format="keras_h5", md5=keras_md5[size],
                url="https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
                    f"weights_mobilenet_v3_{size}_224_1.0_float.h5",
                license="Apache-2.0", origin="Keras Applications"),
                timm_release(f"tf_mobilenetv3_{size}_100-{timm_digests[size]}.pth",
                             f"tf_mobilenetv3_{size}_100.in1k")),
            config=(("size", size), ("width", 1.0))), MobileNetV3)


_register()
