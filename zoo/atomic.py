"""Files that are either whole or absent: write to a temporary file in the
same folder, then rename over the target (``os.replace`` is atomic on one
file system), so no reader ever sees a half-written result or model."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union


def write_atomic(path: Union[str, os.PathLike], data: Union[str, bytes]) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically.

    Missing parent folders are created; the file ends up readable by all
    (mode 0o644). If writing fails, the temporary file is removed, the
    target is left as it was and the error propagates.

    Args:
        path: the file to create or replace.
        data: the whole content; ``str`` is encoded as UTF-8.

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; outputs are for sharing
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
