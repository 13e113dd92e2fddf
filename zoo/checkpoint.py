"""Save and restore variables as Orbax checkpoints.

Orbax writes into a temporary directory and renames it when complete, so a
crash never leaves a half-written checkpoint under the final name. The
conventions the variables need (``zoo.Conventions``: padding, BatchNorm
epsilon) go into the same checkpoint, as Orbax custom metadata under
``"zoo"``, so they are written and renamed with it; ``restore`` gives them
back on the variables, and ``zoo.create(name, weights=zoo.restore(path))``
builds the matching model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

METADATA_KEY = "zoo"  # Orbax custom metadata: {"zoo": {"conventions": {...}}}


def _checkpointer():
    import orbax.checkpoint as ocp

    return ocp.StandardCheckpointer()


def metadata_for(conventions) -> Optional[dict]:
    """The Orbax custom metadata that records ``conventions``.

    Args:
        conventions: a ``zoo.Conventions``, or None.

    Returns:
        ``{"zoo": {"conventions": conventions.to_json()}}``, or None when
        ``conventions`` is None (nothing to record).
    """
    return None if conventions is None else {METADATA_KEY: {"conventions":
                                                                conventions.to_json()}}


def conventions_in(custom_metadata, where) -> Optional[Any]:
    """The ``Conventions`` recorded in a checkpoint's custom metadata.

    Args:
        custom_metadata: the dict Orbax gives back as ``custom_metadata``
            (None or ``{}`` when the checkpoint has none).
        where: the checkpoint's path or name, for messages and for the
            ``source`` label ("restored from ``where``").

    Returns:
        The recorded ``zoo.Conventions``, or None when it records none
        (checkpoints written before they were, plain pytrees).

    Raises:
        ValueError: the recorded conventions are malformed (from
            ``Conventions.from_json``, naming ``where``).
    """
    from zoo.weights.conventions import Conventions

    recorded = ((custom_metadata or {}).get(METADATA_KEY) or {}).get("conventions")
    if recorded is None:
        return None
    return Conventions.from_json(recorded, f"{where}: recorded conventions").labelled(
        f"restored from {where}")


def save(variables: Any, path, *, overwrite: bool = False, conventions=None) -> Path:
    """Write ``variables`` (any pytree of arrays) to the directory ``path``,
    with the conventions they need: ``conventions`` (a ``zoo.Conventions``)
    if given, else those the variables carry (``zoo.weights.Weights``, what
    ``zoo.create`` and the weight readers return); plain dicts record none.

    Args:
        variables: a pytree of arrays, typically ``{"params": ...,
            "batch_stats": ...}`` or a ``zoo.weights.Weights``.
        path: the checkpoint directory to create (``~`` is expanded,
            relative paths are made absolute).
        overwrite: replace an existing ``path`` instead of refusing.
        conventions: record these instead of the ones ``variables`` carry.

    Returns:
        The absolute path of the checkpoint directory.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.

    Example:
        ::

            model, variables = zoo.create("mobilenet_v2", pretrained=False, seed=0)
            zoo.save(variables, "/tmp/mnv2_ckpt")
            model, variables = zoo.create("mobilenet_v2", weights=zoo.restore("/tmp/mnv2_ckpt"))
    """
    path = Path(os.path.abspath(os.path.expanduser(path)))
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    conventions = conventions or getattr(variables, "conventions", None)
    if hasattr(variables, "conventions"):
        variables = variables.variables  # Orbax stores plain trees
    ckpt = _checkpointer()
    ckpt.save(path, variables, force=overwrite, custom_metadata=metadata_for(conventions))
    ckpt.wait_until_finished()
    return path


def restore(path) -> Any:
    """The pytree saved at ``path``, with its dtypes and shapes. Variables
    saved with conventions come back as ``zoo.weights.Weights`` carrying
    them: ``zoo.create(name, weights=zoo.restore(path))`` builds the model
    they need. Checkpoints that record none (older ones, plain pytrees)
    come back as saved, and ``zoo.create`` gives those the spec's
    conventions.

    Args:
        path: a checkpoint directory written by ``save`` (``~`` is expanded).

    Returns:
        The saved pytree of arrays; a ``zoo.weights.Weights`` when it is a
        dict saved with conventions.

    Raises:
        FileNotFoundError: no directory at ``path``.
        ValueError: Orbax cannot read ``path`` as a checkpoint, or the
            recorded conventions are malformed.
    """
    path = Path(os.path.abspath(os.path.expanduser(path)))
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint directory at {path}")
    ckpt = _checkpointer()
    try:
        tree = ckpt.restore(path)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise ValueError(f"{path} is not a readable Orbax checkpoint: {e}") from None
    try:
        custom = ckpt.metadata(path).custom_metadata
    except (ValueError, FileNotFoundError, OSError, AttributeError):
        custom = None  # an item inside a CheckpointManager step records none
    conventions = conventions_in(custom, path)
    if conventions is None or not isinstance(tree, dict):
        return tree
    from zoo.weights.conventions import Weights

    return Weights(tree, conventions)
