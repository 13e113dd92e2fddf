"""Save and restore variables as Orbax checkpoints.

Orbax writes into a temporary directory and renames it when complete, so a
crash never leaves a half-written checkpoint under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _checkpointer():
    import orbax.checkpoint as ocp

    return ocp.StandardCheckpointer()


def save(variables: Any, path, *, overwrite: bool = False) -> Path:
    """Write ``variables`` (any pytree of arrays) to the directory ``path``."""
    path = Path(os.path.abspath(os.path.expanduser(path)))
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    ckpt = _checkpointer()
    ckpt.save(path, variables, force=overwrite)
    ckpt.wait_until_finished()
    return path


def restore(path) -> Any:
    """The pytree saved at ``path``, with its dtypes and shapes."""
    path = Path(os.path.abspath(os.path.expanduser(path)))
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint directory at {path}")
    try:
        return _checkpointer().restore(path)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise ValueError(f"{path} is not a readable Orbax checkpoint: {e}") from None
