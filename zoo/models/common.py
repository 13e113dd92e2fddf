"""The skeleton every classification family shares.

A family describes its network as a ``Layout`` (stem, blocks, head) derived
from the architecture table at the top of its file; ``ConvNet`` runs any
layout: input checks, stem, blocks with stochastic depth, head conv, and
either the stage outputs (``features_only``), the last feature map
(``include_top=False``) or logits.

Parameter paths are fixed here and the weight converters rely on them:
``stem/{conv,bn}``, ``blocks_<i>/{expand,dw,project}/{conv,bn}``,
``blocks_<i>/se/{reduce,expand}``, ``head/{conv,bn}``, ``head_fc``,
``classifier``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from zoo.layers import (ChecksConventions, ConvBN, ConvSettings, Dense, FeatureCollector,
                        InvertedResidual, activation, check_images)


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """One conv + BatchNorm + activation row of a layout (stem or head), or
    the FC after pooling (``head_fc``, where only ``features`` and ``act``
    apply).

    Attributes:
        features: output channels.
        kernel: kernel side.
        stride: stride along H and W.
        act: activation name (see ``zoo.layers.activation``), or None.
    """

    features: int
    kernel: int = 1
    stride: int = 1
    act: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One InvertedResidual; ``stage``/``index`` locate it in the table.

    Attributes:
        out: output channels.
        expanded: channels after the expand conv (equal to the input
            channels: no expand conv).
        kernel: depthwise kernel side.
        stride: depthwise stride.
        act: activation after the expand and depthwise convs.
        se_reduced: squeeze-excite width; 0 for none.
        se_act: activation inside squeeze-excite.
        se_gate: gate of squeeze-excite.
        project_act: activation after the project conv; None for linear.
        residual: add the input when the shapes allow.
        stage: the block's row (0-based) in the family's table.
        index: the block's repeat (0-based) within its row.
    """

    out: int
    expanded: int
    kernel: int
    stride: int
    act: str
    se_reduced: int = 0
    se_act: str = "relu"
    se_gate: str = "sigmoid"
    project_act: Optional[str] = None
    residual: bool = True
    stage: int = 0
    index: int = 0

    def module_kwargs(self) -> dict:
        """The keyword arguments of ``zoo.layers.InvertedResidual`` for this block.

        Returns:
            Every field but ``stage`` and ``index``, by name.
        """
        d = dataclasses.asdict(self)
        del d["stage"], d["index"]
        return d


@dataclasses.dataclass(frozen=True)
class Layout:
    """A whole classification network, as ``ConvNet`` runs it.

    Attributes:
        stem: the first conv (stride 2 in every family here).
        blocks: the inverted-residual blocks in order.
        head: the 1x1 conv before pooling, or None.
        head_fc: the FC (with activation, no BatchNorm) between pooling and
            the classifier (MobileNetV3), or None.
    """

    stem: ConvSpec
    blocks: tuple[BlockSpec, ...]
    head: Optional[ConvSpec] = None  # 1x1 conv before pooling
    head_fc: Optional[ConvSpec] = None  # FC after pooling (MobileNetV3)


MIN_INPUT = 32  # five stride-2 stages: 32 pixels leave a 1x1 map


class ConvNet(ChecksConventions):
    """Runs a family's ``Layout``. Subclasses define ``layout()``.

    ``__call__(x, train=False)``: ``x`` is NHWC float, normalised as the
    model's spec says. Eval mode by default; ``train=True`` updates BatchNorm
    statistics (pass ``mutable=["batch_stats"]``) and applies dropout and
    stochastic depth (pass ``rngs={"dropout": key}``). Returns (N,
    ``num_classes``) float32 logits; with ``include_top=False`` the last
    feature map (N, h, w, C); with ``features_only``
    the list of the last maps at strides 2, 4, 8, 16 and 32. Raises
    ``TypeError``/``ValueError`` (``zoo.layers.check_images``) for input
    that is not float NHWC with 3 channels and sides of at least 32.

    Attributes:
        num_classes: classifier outputs.
        include_top: pool and classify; False returns the head's feature map.
        features_only: return the stage outputs instead (no head).
        dropout: dropout rate before the classifier, in training.
        drop_path: stochastic-depth rate of the last block, in training
            (block i of n drops with ``drop_path * i / n``).
        settings: padding, BatchNorm, implementation and compute dtype.
        model_name: the registry name, used in error messages.
    """

    num_classes: int = 1000
    include_top: bool = True
    features_only: bool = False
    dropout: float = 0.2
    drop_path: float = 0.0
    settings: ConvSettings = ConvSettings()
    model_name: str = "model"

    def layout(self) -> Layout:
        """The network this module runs, derived from the family's table and
        the module's options.

        Returns:
            The ``Layout``.

        Raises:
            NotImplementedError: in ``ConvNet`` itself; each family overrides it.
        """
        raise NotImplementedError

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_images(x, model=self.model_name, min_size=MIN_INPUT)
        lay = self.layout()
        s = self.settings
        x = jnp.asarray(x).astype(s.dtype)
        features = FeatureCollector(x.shape[1])
        st = lay.stem
        x = ConvBN(st.features, st.kernel, st.stride, st.act, settings=s, name="stem")(x, train)
        features.add(x)
        n = len(lay.blocks)
        for i, b in enumerate(lay.blocks):
            x = InvertedResidual(**b.module_kwargs(), drop_path=self.drop_path * i / n,
                                 settings=s, name=f"blocks_{i}")(x, train)
            features.add(x)
        if self.features_only:
            return features.outputs()
        if lay.head is not None:
            h = lay.head
            x = ConvBN(h.features, h.kernel, h.stride, h.act, settings=s, name="head")(x, train)
        if not self.include_top:
            return x
        x = jnp.mean(x, axis=(1, 2))
        if lay.head_fc is not None:
            x = activation(lay.head_fc.act)(Dense(lay.head_fc.features, name="head_fc")(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = Dense(self.num_classes, name="classifier")(x)
        return x.astype(jnp.float32)


# timm's EfficientNet and MobileNetV3 classes (huggingface/pytorch-image-models,
# timm/models/efficientnet.py, mobilenetv3.py, _efficientnet_blocks.py) name
# the stem ``conv_stem``/``bn1``, the blocks ``blocks.<stage>.<index>``, and a
# block's layers by its type: DepthwiseSeparableConv where there is no expand
# conv, InvertedResidual otherwise.
_TIMM_SEPARABLE = {("dw", "conv"): "conv_dw", ("dw", "bn"): "bn1",
                   ("se", "reduce"): "se.conv_reduce", ("se", "expand"): "se.conv_expand",
                   ("project", "conv"): "conv_pw", ("project", "bn"): "bn2"}
_TIMM_INVERTED = {("expand", "conv"): "conv_pw", ("expand", "bn"): "bn1",
                  ("dw", "conv"): "conv_dw", ("dw", "bn"): "bn2",
                  ("se", "reduce"): "se.conv_reduce", ("se", "expand"): "se.conv_expand",
                  ("project", "conv"): "conv_pwl", ("project", "bn"): "bn3"}


def timm_block_names(layout: Layout, positions) -> dict[tuple[str, ...], str]:
    """Our stem, blocks and classifier -> timm module names; ``positions[i]``
    is our block ``i``'s (stage, index) in timm's ``blocks``. The head is
    named by the family (EfficientNet's ``conv_head``/``bn2``, MobileNetV3's
    last stage).

    Args:
        layout: the model's ``Layout``.
        positions: one (stage, index) pair per block of ``layout``;
            ``zip(..., strict=True)`` raises ValueError on a length mismatch.

    Returns:
        A dict from our layer path to timm's dotted module name, e.g.
        ``("blocks_0", "dw", "conv")`` to ``"blocks.0.0.conv_dw"`` when
        ``positions[0]`` is (0, 0).
    """
    names = {("stem", "conv"): "conv_stem", ("stem", "bn"): "bn1",
             ("classifier",): "classifier"}
    cin = layout.stem.features
    for i, (block, (stage, index)) in enumerate(zip(layout.blocks, positions, strict=True)):
        layers = _TIMM_INVERTED if block.expanded != cin else _TIMM_SEPARABLE
        for ours, theirs in layers.items():
            names[(f"blocks_{i}",) + ours] = f"blocks.{stage}.{index}.{theirs}"
        cin = block.out
    return names


def timm_efficientnet_names(layout: Layout) -> dict[tuple[str, ...], str]:
    """timm's names for a layout built as its EfficientNet class builds
    (EfficientNet, Lite, MobileNetV2): blocks at their table's (stage,
    index), the head conv ``conv_head``/``bn2``.

    Args:
        layout: the model's ``Layout``; its blocks' ``stage`` and ``index``
            give their place in timm's ``blocks``.

    Returns:
        A dict from our layer paths to timm's dotted module names.
    """
    names = timm_block_names(layout, [(b.stage, b.index) for b in layout.blocks])
    names.update({("head", "conv"): "conv_head", ("head", "bn"): "bn2"})
    return names
