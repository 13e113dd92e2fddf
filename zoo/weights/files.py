"""Any supported weight file -> our variables, chosen by the file's suffix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zoo.weights.errors import WeightFileError, one_line

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")

if TYPE_CHECKING:
    from zoo.weights.conventions import Weights


def load_weight_file(path, name: str, **options) -> "Weights":
    """Variables for zoo model ``name`` from a PyTorch (.pth/.pt/.bin),
    safetensors or Keras (.h5/.keras) file, as ``Weights`` carrying the
    conventions they need (see ``from_torch`` and ``from_keras_file``;
    a safetensors file written by ``zoo convert-weights`` records its own;
    ``conventions=`` overrides them). ``options`` are ``zoo.create``'s.

    Args:
        path: a ``.pth``, ``.pt``, ``.bin``, ``.ckpt``, ``.safetensors``,
            ``.h5``, ``.hdf5`` or ``.keras`` file; the suffix (any case)
            picks the reader.
        name: the zoo model the weights are for.
        **options: ``zoo.create``'s options, and ``conventions=``.

    Returns:
        ``Weights``: the variables as numpy arrays, carrying their conventions.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        WeightFileError: an unknown suffix, a damaged or unsafe file, or
            recorded conventions that do not parse.
        WeightMismatchError: the weights do not fit the model (keys named).

    Example:
        ::

            w = load_weight_file("mobilenet_v2-b0353104.pth", "mobilenet_v2")
            model, variables = zoo.create("mobilenet_v2", weights=w)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weight file at {path}")
    suffix = path.suffix.lower()
    if suffix in TORCH_SUFFIXES + (".safetensors",):
        from zoo.weights.torch import from_torch
        from zoo.weights.torch_pickle import read_state_dict

        if suffix == ".safetensors" and not {"conventions", "padding", "bn_eps"} & set(options):
            # A file the zoo wrote says what its weights need; others get
            # the family's PyTorch conventions, as from_torch describes.
            recorded = _recorded_conventions(path)
            if recorded is not None:
                options["conventions"] = recorded
        return from_torch(read_state_dict(path), name, source=str(path), **options)
    if suffix in KERAS_SUFFIXES:
        from zoo.weights.keras_files import from_keras_file

        return from_keras_file(path, name, **options)
    known = ", ".join(TORCH_SUFFIXES + (".safetensors",) + KERAS_SUFFIXES)
    raise WeightFileError(one_line(path, f"unknown weight format {suffix!r}; supported: {known}"))


def _recorded_conventions(path: Path):
    from zoo.weights.conventions import from_metadata
    from zoo.weights.torch_pickle import safetensors_metadata

    try:
        return from_metadata(safetensors_metadata(path), str(path))
    except WeightFileError:
        raise
    except ValueError as e:
        raise WeightFileError(str(e)) from None
