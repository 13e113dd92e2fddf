"""Filling a variables template from named source arrays, with a report of
every key that is missing, unexpected or mis-shaped."""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import jax
import numpy as np


class WeightMismatchError(ValueError):
    """The source weights do not fit the model; the message names every key."""


@dataclasses.dataclass
class Report:
    source: str
    missing: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    misshaped: list[str] = dataclasses.field(default_factory=list)

    def raise_if_any(self, model: str) -> None:
        parts = []
        for label, keys in (("missing (in the model, not in the source)", self.missing),
                            ("unexpected (in the source, not in the model)", self.unexpected),
                            ("mis-shaped", self.misshaped)):
            if keys:
                shown = keys[:20] + ([f"... and {len(keys) - 20} more"] if len(keys) > 20 else [])
                parts.append(f"  {label}: {len(keys)}\n    " + "\n    ".join(shown))
        if parts:
            raise WeightMismatchError(
                f"weights from {self.source} do not fit {model} (is it the right model, "
                "width and number of classes?):\n" + "\n".join(parts))


def template_leaves(template) -> list[tuple[tuple[str, ...], jax.ShapeDtypeStruct]]:
    """(collection, module..., leaf) paths of a variables tree, parameters
    first (they say more about a mismatch than BatchNorm statistics)."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(template)[0]:
        out.append((tuple(str(getattr(k, "key", k)) for k in path), leaf))
    return sorted(out, key=lambda item: item[0][0] != "params")


def fill(template, lookup: Callable[[tuple[str, ...]], object], report: Report,
         convert: Callable[[tuple[str, ...], np.ndarray, tuple[int, ...]], np.ndarray | None],
         ) -> dict:
    """Build variables shaped like ``template``: ``lookup(path)`` gives the
    source array (or None when missing, recorded by the caller), ``convert``
    maps it to our layout (None when it cannot)."""
    result: dict = {}
    for path, leaf in template_leaves(template):
        arr = lookup(path)
        if arr is None:
            continue
        value = convert(path, np.asarray(arr), tuple(leaf.shape))
        if value is None or tuple(value.shape) != tuple(leaf.shape):
            report.misshaped.append(
                f"{'/'.join(path)}: ours {tuple(leaf.shape)}, source {tuple(np.shape(arr))}")
            continue
        node = result
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = np.asarray(value, dtype=leaf.dtype)
    return result


def dotted(paths: Iterable[tuple[str, ...]]) -> list[str]:
    return ["/".join(p) for p in paths]
