"""Data parallelism over every device: one mesh axis ``data``; the batch is
split along it and the training state is replicated.

jit with these shardings lets XLA insert the collectives: gradients are
averaged and BatchNorm statistics are taken over the global batch, so the
run computes what one device would compute on the whole batch. The meshes
are ``AxisType.Auto`` (jax 0.10's ``make_mesh`` defaults to Explicit, which
would require sharding annotations inside the model). The same code runs
on GPU and TPU.
"""

from __future__ import annotations

from typing import Optional

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P


def make_mesh(devices: Optional[int] = None) -> jax.sharding.Mesh:
    available = jax.devices()
    n = len(available) if devices is None else devices
    if n > len(available):
        raise ValueError(f"--devices {n}: only {len(available)} {jax.default_backend()} "
                         f"device(s) here")
    return jax.make_mesh((n,), ("data",), axis_types=(AxisType.Auto,), devices=available[:n])


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def check_batch_size(batch_size: int, mesh) -> None:
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(f"--batch-size {batch_size} does not split over {n} devices; use a "
                         f"multiple of {n} (e.g. {max(n, batch_size // n * n)}) or --devices")


def put_batch(batch: dict, mesh) -> dict:
    """A host batch of numpy arrays -> global arrays split over ``data``.
    On one host this is a device_put; with several hosts each passes its
    own share and ``make_array_from_process_local_data`` assembles them."""
    sharding = batch_sharded(mesh)
    if jax.process_count() == 1:
        return jax.device_put(batch, sharding)
    return jax.tree_util.tree_map(
        lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)), batch)
