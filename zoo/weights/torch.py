"""Copy a PyTorch state dict (read by ``zoo.weights.torch_pickle``, no torch
needed) into our variables.

Each family names the torch module prefix of each of its modules, in each
PyTorch layout it knows: ``model.torch_names()`` (lukemelas/efficientnet-pytorch
for EfficientNet, torchvision for MobileNetV2) and ``model.timm_names()``
(timm's ``tf_efficientnet_*``, ``mobilenetv2_*``, ``tf_mobilenetv3_*``). The
layout whose names the state dict holds most of is used, so any of them
loads without saying which. The tensors map as

    Conv2d weight (O, I, k, k)              -> conv/kernel (k, k, I, O)
    depthwise Conv2d weight (C, 1, k, k)    -> dw/conv/kernel (k, k, 1, C)
    1x1 Conv2d weight (O, I, 1, 1)          -> Dense kernel (I, O)   (SE)
    Linear weight (O, I)                    -> Dense kernel (I, O)
    BatchNorm2d weight, bias                -> bn/scale, bn/bias
    running_mean, running_var               -> batch_stats .../mean, .../var
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from zoo.weights.conventions import Conventions, Weights, declared
from zoo.weights.errors import WeightMismatchError, one_line
from zoo.weights.mapping import load_named

_LEAVES = {
    ("params", "kernel"): ("weight",),
    ("params", "bias"): ("bias",),
    ("params", "scale"): ("weight",),
    ("batch_stats", "mean"): ("running_mean",),
    ("batch_stats", "var"): ("running_var",),
}


def _leaf_names(collection: str, leaf: str, batchnorm: bool):
    return _LEAVES.get((collection, leaf), ())


def _to_ours(arr: np.ndarray, shape: tuple[int, ...]):
    if arr.ndim == 4 and len(shape) == 4:
        return arr.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if arr.ndim == 4 and len(shape) == 2 and arr.shape[2:] == (1, 1):
        return arr[:, :, 0, 0].T  # 1x1 conv -> dense
    if arr.ndim == 2 and len(shape) == 2:
        return arr.T  # Linear (out, in) -> (in, out)
    return arr


def from_torch(state_dict: Mapping[str, np.ndarray], name: str, *, source: str = "state dict",
               conventions: Optional[Conventions] = None, **options) -> Weights:
    """Variables for zoo model ``name`` from a PyTorch state dict (name ->
    numpy array), as ``Weights`` carrying the conventions they need:
    ``zoo.create(name, weights=...)`` builds the model that runs them.

    A state dict does not say how it was trained. Every PyTorch layout the
    zoo knows for a family was trained with that family spec's conventions
    (torchvision's and timm's MobileNetV2: symmetric padding, BatchNorm eps
    1e-5; lukemelas' EfficientNet and timm's ``tf_*`` ports of TF
    checkpoints: "same", 1e-3), so those are recorded. Declare others with
    ``conventions=`` (or ``padding``/``bn_eps``), e.g. for timm's own
    ``efficientnet_b0`` training, which has ``tf_efficientnet_b0``'s names
    but symmetric padding and eps 1e-5. ``options`` are ``zoo.create``'s.

    Args:
        state_dict: PyTorch key -> numpy array, e.g. from ``read_state_dict``.
        name: the zoo model the weights are for.
        source: what the state dict came from, for messages.
        conventions: the conventions to record instead of the spec's.
        **options: ``zoo.create``'s options for building the target model.

    Returns:
        ``Weights``: ``{"params": ..., "batch_stats": ...}`` numpy arrays
        carrying their conventions.

    Raises:
        WeightMismatchError: keys are missing, unexpected or mis-shaped
            (all named), or no PyTorch layout is known for the family.
        ValueError: ``conventions`` given together with ``padding``/``bn_eps``.

    Example:
        ::

            from zoo.weights.torch_pickle import read_state_dict
            state = read_state_dict("mobilenet_v2-b0353104.pth")
            model, variables = zoo.create("mobilenet_v2", weights=from_torch(state, "mobilenet_v2"))
    """
    from zoo.registry import build, get_spec

    need = declared(get_spec(name).conventions.labelled("converted from PyTorch"), conventions,
                    options.get("padding"), options.get("bn_eps"))
    model = build(name, **options)
    layouts = [getattr(model, n)() for n in ("torch_names", "timm_names") if hasattr(model, n)]
    if not layouts:
        raise WeightMismatchError(one_line(source, f"no PyTorch layout is known for the family "
                                                   f"of {name}"))
    names = max(layouts, key=lambda names: sum(
        f"{layer}.weight" in state_dict for layer in set(names.values())))
    variables = load_named(model, name, names, state_dict, source_label=source,
                           sep=".", leaf_names=_leaf_names, to_ours=_to_ours,
                           ignore=lambda key: key.endswith("num_batches_tracked"))
    return Weights(variables, need)


def to_torch(variables: Mapping, name: str, *, dtype=None, **options) -> dict[str, np.ndarray]:
    """The inverse of ``from_torch``: a PyTorch-layout state dict (name ->
    numpy array, in the family's ``torch_names`` layout) of zoo model
    ``name``'s variables, e.g. to write them as safetensors. A 2-D kernel is
    written as a ``Linear`` weight (families whose 1x1 convolutions are dense
    layers in our tree, the squeeze-excite ones, read such files back but
    PyTorch's modules would not). ``dtype`` casts every array (float16 halves
    the file).

    Args:
        variables: the model's variables (``{"params": ..., "batch_stats":
            ...}``, arrays of any kind).
        name: the zoo model they belong to.
        dtype: a numpy dtype to cast to; None keeps each array's.
        **options: ``zoo.build``'s options (``width``, ``num_classes``...).

    Returns:
        PyTorch key -> contiguous numpy array, in PyTorch layouts (OIHW
        convolutions, (out, in) linear weights).

    Raises:
        WeightMismatchError: the family has no PyTorch layout, or a variable
            has no PyTorch name.
    """
    from zoo.registry import build
    from zoo.weights.mapping import template_leaves

    model = build(name, **options)
    if not hasattr(model, "torch_names"):
        raise WeightMismatchError(f"{name}: no PyTorch layout is known for its family")
    names = model.torch_names()
    out: dict[str, np.ndarray] = {}
    for path, value in template_leaves(variables):
        collection, module, leaf = path[0], path[1:-1], path[-1]
        spelling = _LEAVES.get((collection, leaf))
        if module not in names or not spelling:
            raise WeightMismatchError(f"{name}: {'/'.join(path)} has no PyTorch name")
        arr = np.asarray(value)
        if arr.ndim == 4:
            arr = arr.transpose(3, 2, 0, 1)  # HWIO -> OIHW
        elif arr.ndim == 2:
            arr = arr.T
        out[f"{names[module]}.{spelling[0]}"] = np.ascontiguousarray(
            arr if dtype is None else arr.astype(dtype))
    return out
