"""MobileNetV1 (Howard et al., 2017).

Architecture at width 1.0 (Howard et al. 2017, Table 1). Each block is a
depthwise-separable convolution: depthwise 3x3 -> BN -> ReLU6 -> pointwise
1x1 -> BN -> ReLU6, with no residual.

    stage  block        repeats  kernel  stride  expand  channels  SE  act
    stem   conv3x3         1       3       2       -        32     -   relu6
    1      dw-separable    1       3       1       -        64     -   relu6
    2      dw-separable    2       3       2,1     -       128     -   relu6
    3      dw-separable    2       3       2,1     -       256     -   relu6
    4      dw-separable    6       3       2,1..   -       512     -   relu6
    5      dw-separable    2       3       2,1     -      1024     -   relu6
    top    avgpool + FC                                   classes

The width multiplier (alpha) scales every row: ``int(channels * alpha)``.
"""

from __future__ import annotations

from zoo.models.common import BlockSpec, ConvNet, ConvSpec, Layout

STEM = 32
# repeats, kernel, stride of the first repeat, channels
STAGES = (
    (1, 3, 1, 64),
    (2, 3, 2, 128),
    (2, 3, 2, 256),
    (6, 3, 2, 512),
    (2, 3, 2, 1024),
)
WIDTHS = (0.25, 0.5, 0.75, 1.0)  # the published checkpoints


class MobileNetV1(ConvNet):
    """MobileNetV1 (see the module docstring), run by ``ConvNet``:
    ``__call__(x, train=False)`` takes (N, H, W, 3) normalised float images
    and returns (N, ``num_classes``) float32 logits. No head conv: the
    last block's map is pooled and classified.

    Attributes:
        width: the width multiplier alpha (published: ``WIDTHS``).
        dropout: dropout rate before the classifier in training (1e-3, the
            Keras Applications default).
        num_classes: classifier outputs.
        include_top: pool and classify; False returns the last block's map.
        features_only: return the stage outputs at strides 2 to 32.
        drop_path: stochastic depth; unused, the blocks have no residual.
        settings: padding, BatchNorm, implementation and compute dtype.
        model_name: the registry name, used in error messages.
    """

    width: float = 1.0
    dropout: float = 1e-3

    def layout(self) -> Layout:
        """The table's rows at ``width``: channels ``int(c * width)``.

        Returns:
            The ``Layout`` ``ConvNet`` runs.
        """
        blocks = []
        cin = int(STEM * self.width)
        for stage, (repeats, k, stride, cout) in enumerate(STAGES):
            cout = int(cout * self.width)
            for j in range(repeats):
                blocks.append(BlockSpec(out=cout, expanded=cin, kernel=k,
                                        stride=stride if j == 0 else 1, act="relu6",
                                        project_act="relu6", residual=False,
                                        stage=stage, index=j))
                cin = cout
        return Layout(stem=ConvSpec(int(STEM * self.width), 3, 2, "relu6"), blocks=tuple(blocks))

    def keras_names(self) -> dict[tuple[str, ...], str]:
        """Our layer paths -> layer names of ``keras.applications.MobileNet``.

        Returns:
            A dict from paths such as ``("blocks_0", "dw", "conv")`` to Keras
            layer names such as ``"conv_dw_1"``.
        """
        names = {("stem", "conv"): "conv1", ("stem", "bn"): "conv1_bn",
                 ("classifier",): "conv_preds"}
        for i, _ in enumerate(self.layout().blocks):
            for part, keras in (("dw", f"conv_dw_{i + 1}"), ("project", f"conv_pw_{i + 1}")):
                names[(f"blocks_{i}", part, "conv")] = keras
                names[(f"blocks_{i}", part, "bn")] = keras + "_bn"
        return names


def _register():
    from zoo.registry import INCEPTION_MEAN, INCEPTION_STD, ModelSpec, Published, register

    register(ModelSpec(
        name="mobilenet_v1", family="mobilenet_v1", task="classification", input_size=224,
        mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_fraction=0.875, interpolation="bilinear",
        num_classes=1000, padding="same", bn_eps=1e-3,
        published=Published(4.2e6, 569e6, 70.6, "Howard et al. 2017, Table 8"),
        license="Apache-2.0", config=(("width", 1.0),)), MobileNetV1)


_register()
