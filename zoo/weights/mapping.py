"""Filling a model's variables from a flat dict of named source arrays, with
a report of every key that is missing, unexpected or mis-shaped.

Each reader supplies: which source layer each of our modules comes from
(the family's ``keras_names()`` / ``torch_names()``), how our leaf names are
spelled in the source, and how a source array is laid out in ours.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import jax
import numpy as np

from zoo.weights.errors import WeightMismatchError


@dataclasses.dataclass
class Report:
    """The keys that did not map, collected while loading.

    Attributes:
        source: what the weights came from, for the message.
        missing: our variable paths found nowhere in the source.
        unexpected: source keys that no variable read.
        misshaped: variables whose source array could not take their shape.
    """

    source: str
    missing: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    misshaped: list[str] = dataclasses.field(default_factory=list)

    def raise_if_any(self, model: str) -> None:
        """One line naming the first keys of each kind; the full lists stay on
        the error (``.missing``, ``.unexpected``, ``.misshaped``).

        Args:
            model: the zoo model's name, for the message.

        Raises:
            WeightMismatchError: any of the three lists is not empty.
        """
        parts = []
        for label, keys in (("missing (in the model, not in the source)", self.missing),
                            ("unexpected (in the source, not in the model)", self.unexpected),
                            ("mis-shaped", self.misshaped)):
            if keys:
                shown = keys[:8] + ([f"... and {len(keys) - 8} more"] if len(keys) > 8 else [])
                parts.append(f"{label} {len(keys)}: " + ", ".join(shown))
        if parts:
            error = WeightMismatchError(
                f"weights from {self.source} do not fit {model} (is it the right model, "
                "width and number of classes?): " + "; ".join(parts))
            error.missing, error.unexpected, error.misshaped = (
                list(self.missing), list(self.unexpected), list(self.misshaped))
            raise error


def template_leaves(template) -> list[tuple[tuple[str, ...], jax.ShapeDtypeStruct]]:
    """(collection, module..., leaf) paths of a variables tree, parameters
    first (they say more about a mismatch than BatchNorm statistics).

    Args:
        template: a variables pytree of nested dicts (arrays or
            ``jax.ShapeDtypeStruct`` leaves).

    Returns:
        ``(path, leaf)`` pairs: the path a tuple of key strings, e.g.
        ``("params", "stem", "conv", "kernel")``; ``"params"`` entries
        first, otherwise in flattening order.
    """
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(template)[0]:
        out.append((tuple(str(getattr(k, "key", k)) for k in path), leaf))
    return sorted(out, key=lambda item: item[0][0] != "params")


def load_named(model, model_name: str, names: Mapping[tuple[str, ...], str],
               source: Mapping[str, np.ndarray], *, source_label: str, sep: str,
               leaf_names: Callable[[str, str, bool], Sequence[str]],
               to_ours: Callable[[np.ndarray, tuple[int, ...]], np.ndarray | None],
               ignore: Callable[[str], bool] = lambda key: False) -> dict:
    """Variables for ``model`` taken from ``source`` (flat ``layer<sep>leaf``
    keys): our module path ``p`` reads ``names[p] + sep + leaf`` for the first
    leaf spelling ``leaf_names(collection, our_leaf, is_batchnorm)`` that
    exists; ``to_ours(array, our_shape)`` changes the layout (None if it
    cannot). Source keys never read, unless ``ignore(key)``, are unexpected.

    Args:
        model: the zoo Flax Module to fill (its variables' shapes are traced).
        model_name: its name, for messages.
        names: our module path (a tuple of names) -> source layer name.
        source: flat source key -> array.
        source_label: what the source is, for messages.
        sep: the separator between layer and leaf in source keys ("/" or ".").
        leaf_names: ``(collection, our_leaf, is_batchnorm)`` -> the source
            spellings of that leaf, tried in order.
        to_ours: ``(source_array, our_shape)`` -> the array in our layout, or
            None when it cannot be.
        ignore: source keys for which it is True are never unexpected.

    Returns:
        The nested variables dict of numpy arrays in the template's dtypes.

    Raises:
        WeightMismatchError: keys are missing, unexpected or mis-shaped
            (``.missing``, ``.unexpected``, ``.misshaped`` hold them all).
    """
    from zoo.registry import variables_template

    template = variables_template(model)
    leaves = template_leaves(template)
    batchnorms = {p[1:-1] for p, _ in leaves if p[-1] == "scale"}
    report = Report(source=source_label)
    used: set[str] = set()
    result: dict = {}
    for path, leaf in leaves:
        collection, module, name = path[0], path[1:-1], path[-1]
        layer = names.get(module)
        keys = [f"{layer}{sep}{n}" for n in leaf_names(collection, name, module in batchnorms)]
        key = next((k for k in keys if k in source), None) if layer is not None else None
        if key is None:
            report.missing.append(f"{'/'.join(path)} (looked for {' or '.join(keys) or '?'})")
            continue
        used.add(key)
        arr = np.asarray(source[key])
        value = to_ours(arr, tuple(leaf.shape))
        if value is None or tuple(value.shape) != tuple(leaf.shape):
            report.misshaped.append(f"{'/'.join(path)}: ours {tuple(leaf.shape)}, "
                                    f"{key} {tuple(arr.shape)}")
            continue
        node = result
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[name] = np.asarray(value, dtype=leaf.dtype)
    report.unexpected = [k for k in source if k not in used and not ignore(k)]
    report.raise_if_any(model_name)
    return result
