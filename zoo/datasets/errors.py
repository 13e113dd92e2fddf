"""The one error type of ``zoo.datasets`` and the lazy import of its optional
dependencies.

``DatasetError`` subclasses ``ValueError`` so callers that already catch bad
arguments keep working; every message is one line naming the bad input and
the fix. TensorFlow Datasets, grain, scikit-learn and array-record are an
optional extra (``pip install 'zoo[train]'``), so they are imported here,
inside the functions that need them, with an error naming the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType, SimpleNamespace


class DatasetError(ValueError):
    """A dataset name, folder, file or pipeline argument that cannot work."""


_PIP_NAMES = {"tensorflow_datasets": "tensorflow-datasets", "grain": "grain",
              "sklearn": "scikit-learn", "array_record": "array-record"}


def require(module: str) -> ModuleType:
    """Import ``module`` or fail naming the package and the extra to install.

    Args:
        module: dotted module name, e.g. ``"sklearn.datasets"``.

    Returns:
        ModuleType: the imported module.

    Raises:
        ImportError: when it cannot be imported; the message names the pip
            package of its top-level module and ``pip install 'zoo[train]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        raise ImportError(
            f"zoo.datasets needs {_PIP_NAMES.get(top, top)} ({e}); install the extra with "
            f"pip install 'zoo[train]'") from e


def import_tfds() -> ModuleType:
    """``tensorflow_datasets``, made to work without the ``importlib_resources``
    backport: TFDS 4.9.10 imports it (lazily, when building any dataset that
    lives in a package) but declares it only for Python < 3.9. The standard
    library's ``importlib.resources`` has the one name TFDS uses from it,
    ``abc.Traversable``; this binds it in TFDS's own module only.

    Returns:
        ModuleType: the ``tensorflow_datasets`` module.

    Raises:
        ImportError: when tensorflow-datasets is not installed (naming the
            ``zoo[train]`` extra).
    """
    tfds = require("tensorflow_datasets")
    try:
        importlib.import_module("importlib_resources")
    except ImportError:
        from tensorflow_datasets.core import dataset_builder
        try:
            stdlib = importlib.import_module("importlib.resources.abc")
        except ImportError:  # Python 3.10
            stdlib = importlib.import_module("importlib.abc")
        dataset_builder.importlib_resources = SimpleNamespace(abc=stdlib)
    return tfds
