"""Shared test helpers, imported as ``helpers``: pytest puts this folder on
``sys.path`` (rootdir-relative test files without packages), for ``pytest``
and ``python -m pytest`` alike."""

import contextlib
import ctypes
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile

import jax
import numpy as np


def zoo_command(*args) -> list[str]:
    """The ``zoo`` console script (or ``python -m zoo.cli``) with ``args``."""
    exe = shutil.which("zoo")
    return ([exe] if exe else [sys.executable, "-m", "zoo.cli"]) + list(args)


def zoo_cli(*args, env=None, timeout=300):
    """Run ``zoo ARGS`` as a user would; the CompletedProcess, text output."""
    return subprocess.run(zoo_command(*args), capture_output=True, text=True, timeout=timeout,
                          env=env)


def randomize_batch_stats(variables, seed=0):
    """Fresh BatchNorm statistics (random init leaves mean 0, var 1, which
    hides a wrong epsilon or a swapped mean/var) and O(1) BN scales, so
    outputs are far from zero and every parameter matters."""
    rng = np.random.default_rng(seed)

    def fill(path, a):
        name = str(getattr(path[-1], "key", path[-1]))
        if name == "var":
            return rng.uniform(0.5, 1.5, a.shape).astype(a.dtype)
        if name == "mean":
            return rng.normal(0, 0.2, a.shape).astype(a.dtype)
        return a

    out = dict(variables)
    out["batch_stats"] = jax.tree_util.tree_map_with_path(fill, variables["batch_stats"])
    return out


def images(n, size, seed=0):
    return np.random.default_rng(seed).standard_normal((n, size, size, 3)).astype(np.float32)


@contextlib.contextmanager
def memory_heavy():
    """Run the block while no other test process (xdist worker or another
    pytest run on this machine) is inside one: exporting EfficientNet-B7 to
    TFLite and then ONNX peaks at 12 GB resident, and two such exports side
    by side exceed a 24 GiB machine. Afterwards the C heap's free pages go
    back to the OS, so the worker does not carry the peak into its next
    test."""
    path = os.path.join(tempfile.gettempdir(), f"zoo-tests-memory-heavy-{os.getuid()}.lock")
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            fcntl.flock(lock, fcntl.LOCK_UN)


# The start of a child-process script that runs as if TensorFlow were not
# installed: importlib.util.find_spec says None and imports fail.
# (sys.modules["tensorflow"] = None would make TFDS believe TensorFlow is
# already loaded.)
_HIDE_TENSORFLOW = """\
import importlib.machinery, sys

class HideTensorFlow(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            return None
        return super().find_spec(name, path, target)

sys.meta_path[:] = [HideTensorFlow if f is importlib.machinery.PathFinder else f
                    for f in sys.meta_path]
"""
_NO_TENSORFLOW_LOADED = """
loaded = [m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.")]
assert not loaded, loaded
"""


def run_without_tensorflow(body: str, *args) -> str:
    """Run the Python ``body`` (indented as in a test file) in a child process
    as if TensorFlow were not installed, from the repository root, with
    ``args`` as sys.argv[1:]; check it succeeded and loaded no TensorFlow
    module; its standard output."""
    import textwrap

    script = _HIDE_TENSORFLOW + textwrap.dedent(body) + _NO_TENSORFLOW_LOADED
    result = subprocess.run([sys.executable, "-c", script, *map(str, args)],
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def numpy_variables(model, seed=0):
    """Random variables for ``model`` filled in numpy (He-normal kernels,
    unit BatchNorm, small biases): seconds, where compiling the registry's
    jitted init of a whole network takes 10-20 s on these machines."""
    from zoo.registry import variables_template

    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        key = str(path[-1].key)
        if key == "kernel":
            fan_in = int(np.prod(leaf.shape[:-1]))
            return (rng.standard_normal(leaf.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        if key in ("var", "scale"):
            return np.ones(leaf.shape, np.float32)
        if key == "bias":
            return (0.1 * rng.standard_normal(leaf.shape)).astype(np.float32)
        return np.zeros(leaf.shape, np.float32)

    return jax.tree_util.tree_map_with_path(fill, variables_template(model))
