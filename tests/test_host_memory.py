"""zoo.host_memory: applied before JAX starts and refused after; once applied,
a freed large block stays in the process (the next step reuses its pages
instead of faulting in new ones)."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="glibc's allocator")

PROBE = textwrap.dedent("""
    import ctypes, os, sys
    from zoo.host_memory import keep_freed_host_memory
    mode = sys.argv[1]
    applied = keep_freed_host_memory() if mode == "before" else None
    import jax
    jax.devices()  # JAX's CPU client exists from here on
    if mode == "after":
        applied = keep_freed_host_memory()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = (ctypes.c_void_p,)
    page = os.sysconf("SC_PAGE_SIZE")
    def resident():
        return int(open("/proc/self/statm").read().split()[1]) * page
    size = 256 * 2**20  # far above glibc's largest mmap threshold (32 MiB)
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    touched = resident()
    libc.free(block)
    print(applied, (touched - resident()) / size)
""")


def _probe(mode: str) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], float(out[1])


def test_freed_memory_is_kept_only_when_applied_before_jax_starts():
    applied, kept_released = _probe("before")
    refused, default_released = _probe("after")
    assert applied == "True" and refused == "False"
    # The C library's default unmaps the freed block: the whole of it leaves.
    assert default_released > 0.9, default_released
    assert kept_released < 0.1, kept_released
