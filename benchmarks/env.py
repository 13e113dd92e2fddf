"""The environment a benchmark ran in, recorded beside every result file.

A latency means nothing without the machine, the library versions, the XLA
flags and the code it measured: ``collect()`` gathers them (jax, jaxlib,
flax versions; backend, device kind and count; CPU model and core count;
``XLA_FLAGS``; git commit; UTC date; the command line), and ``tag()`` turns
them into a short file-name part such as ``cpu-2cores-jax0.10.2``.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Optional


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform``'s guess.

    Returns:
        str: e.g. ``"Intel(R) Xeon(R) CPU @ 2.20GHz"``; ``platform.processor()``
        or ``platform.machine()`` where /proc/cpuinfo is unreadable, and
        ``"unknown"`` when those are empty too.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def git_commit(path: Optional[Path] = None) -> Optional[str]:
    """HEAD of the checkout this package lives in (``-dirty`` if modified), or None.

    Args:
        path: a folder inside the git checkout (default: this package's
            folder).

    Returns:
        str or None: the 40-hex commit, with ``-dirty`` appended when
        tracked files differ from it; None when ``path`` is not in a git
        checkout, git is missing or takes over 10 s.
    """
    path = path or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=path, capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def collect(argv: Optional[list[str]] = None) -> dict:
    """The environment record (a JSON-ready dict).

    Imports jax, so the backend it reports is the one the benchmark uses.

    Args:
        argv: the command line to record (default: ``sys.argv``).

    Returns:
        dict: ``jax``, ``jaxlib``, ``flax`` and ``python`` versions;
        ``backend`` (``jax.default_backend()``, e.g. ``"cpu"``), ``device_kind`` of
        the first device and ``device_count``; ``cpu`` (``cpu_model()``),
        ``cpu_cores``, ``platform``; ``xla_flags`` (``$XLA_FLAGS``, ``""``
        when unset); ``git_commit`` (``git_commit()``, may be None);
        ``date_utc`` (ISO 8601, seconds); ``command`` (list of str).
    """
    import flax
    import jax
    import jaxlib

    devices = jax.devices()
    return {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_commit": git_commit(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": list(sys.argv if argv is None else argv),
    }


def tag(env: dict) -> str:
    """A short, file-name-safe summary: ``cpu-2cores-jax0.10.2``,
    ``gpu-nvidia-a100-sxm4-40gbx8-jax0.10.2``.

    On CPU, ``-<n>dev`` follows the core count when more than one device is
    visible.

    Args:
        env: an environment record from ``collect()`` (uses its
            ``backend``, ``cpu_cores``, ``device_kind``, ``device_count``
            and ``jax``).

    Returns:
        str: lower-case letters, digits, dots and hyphens.
    """
    if env["backend"] == "cpu":
        where = f"cpu-{env['cpu_cores']}cores"
        if env["device_count"] > 1:
            where += f"-{env['device_count']}dev"
    else:
        kind = re.sub(r"[^a-z0-9]+", "-", str(env["device_kind"]).lower()).strip("-")
        where = f"{env['backend']}-{kind}x{env['device_count']}"
    return f"{where}-jax{env['jax']}"
