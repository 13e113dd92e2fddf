"""Keep freed host memory in the process instead of returning it to the OS.

XLA:CPU allocates every output and the temporary buffer of each execution
with ``malloc``. glibc serves blocks over 32 MiB with a fresh ``mmap`` and
unmaps them on ``free``, so every execution of a training step page-faults
its whole working set again: a MobileNetV2 step at batch 32, 224x224 spends
more time in the kernel zeroing pages than in its convolutions. Telling glibc
never to ``mmap`` (``M_MMAP_MAX = 0``), never to trim the heap
(``M_TRIM_THRESHOLD``) and to serve every thread from the main arena
(``M_ARENA_MAX = 1``: other arenas map their large blocks regardless) keeps
the pages: the process stays at its peak resident size, which a training
process reaches anyway on its first step.

``M_ARENA_MAX`` only binds threads that have not allocated yet, so this acts
only before JAX creates its CPU client (before the first computation or
``jax.devices()``); later it changes nothing and says so.
``python -m benchmarks.train_speed --host-memory keep|release`` shows the
effect on the same step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8

_applied: bool | None = None


def _jax_started() -> bool:
    bridge = sys.modules.get("jax._src.xla_bridge")
    started = getattr(bridge, "backends_are_initialized", None)
    return bool(started and started())


def keep_freed_host_memory() -> bool:
    """Tune glibc's allocator as the module docstring describes.

    Call it before JAX's first computation or ``jax.devices()``. The
    outcome of the first call that reaches ``mallopt`` is remembered, and
    later calls return it without tuning again.

    Returns:
        Whether the settings applied: False on other C libraries and
        operating systems, or once JAX's backends exist (then nothing
        changes).
    """
    global _applied
    if _applied is not None:
        return _applied
    if not sys.platform.startswith("linux") or _jax_started():
        return False
    _applied = False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # A trim threshold of -1 becomes SIZE_MAX inside glibc (the argument is an
    # int, the threshold a size_t): never trim.
    _applied = all(mallopt(option, value) == 1 for option, value in (
        (M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, -1)))
    return _applied
