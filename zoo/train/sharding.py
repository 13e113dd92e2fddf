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
    """A one-axis mesh ``("data",)`` over the first ``devices`` devices.

    Args:
        devices: how many of ``jax.devices()`` to use; None for all.

    Returns:
        jax.sharding.Mesh: the devices along the ``data`` axis
        (``AxisType.Auto``).

    Raises:
        ValueError: if ``devices`` exceeds the devices available.
    """
    available = jax.devices()
    n = len(available) if devices is None else devices
    if n > len(available):
        raise ValueError(f"--devices {n}: only {len(available)} {jax.default_backend()} "
                         f"device(s) here")
    return jax.make_mesh((n,), ("data",), axis_types=(AxisType.Auto,), devices=available[:n])


def replicated(mesh) -> NamedSharding:
    """The sharding of the training state: a full copy on every device.

    Args:
        mesh: a mesh from ``make_mesh``.

    Returns:
        NamedSharding: ``PartitionSpec()`` on ``mesh``.
    """
    return NamedSharding(mesh, P())


def batch_sharded(mesh) -> NamedSharding:
    """The sharding of a batch: its first axis split over ``data``.

    Args:
        mesh: a mesh from ``make_mesh``.

    Returns:
        NamedSharding: ``PartitionSpec("data")`` on ``mesh``.
    """
    return NamedSharding(mesh, P("data"))


def check_batch_size(batch_size: int, mesh) -> None:
    """Refuse a global batch that does not split evenly over the devices.

    Args:
        batch_size: the global batch (``--batch-size``).
        mesh: the mesh the batch is split over.

    Raises:
        ValueError: if ``batch_size`` is not a multiple of the mesh's
            device count (the message suggests one).
    """
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(f"--batch-size {batch_size} does not split over {n} devices; use a "
                         f"multiple of {n} (e.g. {max(n, batch_size // n * n)}) or --devices")


def put_batch(batch: dict, mesh) -> dict:
    """A host batch of numpy arrays -> global arrays split over ``data``.
    On one host this is a device_put; with several hosts each passes its
    own share and ``make_array_from_process_local_data`` assembles them.

    Args:
        batch: dict (or any pytree) of arrays with the batch first; on one
            host the whole global batch, else this process's share.
        mesh: a mesh from ``make_mesh``.

    Returns:
        dict: the same structure of ``jax.Array`` sharded by
        ``batch_sharded(mesh)``.
    """
    sharding = batch_sharded(mesh)
    if jax.process_count() == 1:
        return jax.device_put(batch, sharding)
    return jax.tree_util.tree_map(
        lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)), batch)
