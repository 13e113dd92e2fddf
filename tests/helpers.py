"""Shared test helpers."""

import jax
import numpy as np


def randomize_batch_stats(variables, seed=0):
    """Fresh BatchNorm statistics (random init leaves mean 0, var 1, which
    hides a wrong epsilon or a swapped mean/var) and O(1) BN scales, so
    outputs are far from zero and every parameter matters."""
    rng = np.random.default_rng(seed)

    def fill(path, a):
        name = str(getattr(path[-1], "key", path[-1]))
        if name == "var":
            return rng.uniform(0.5, 1.5, a.shape).astype(a.dtype)
        if name == "mean":
            return rng.normal(0, 0.2, a.shape).astype(a.dtype)
        return a

    out = dict(variables)
    out["batch_stats"] = jax.tree_util.tree_map_with_path(fill, variables["batch_stats"])
    return out


def images(n, size, seed=0):
    return np.random.default_rng(seed).standard_normal((n, size, size, 3)).astype(np.float32)
