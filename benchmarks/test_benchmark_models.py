"""The suite's latency measurement through pytest-benchmark.

    pytest benchmarks/ --benchmark-only --benchmark-json results/pytest-benchmark.json

Not part of the default test run (``testpaths`` is ``tests/``; a smoke test
there runs this file on one small model). The function timed is the same
compiled forward pass ``zoo bench`` times (``benchmarks.runner.prepare``,
``jax.jit(...).lower().compile()``), each call ended by
``block_until_ready``. Environment variables choose the set:
``ZOO_BENCH_MODELS`` (comma-separated names or globs; default
efficientnet_b0,mobilenet_v2,mobilenet_v3_large), ``ZOO_BENCH_BATCH``
(default 1), ``ZOO_BENCH_ROUNDS`` (timed rounds, default 20).
"""

import os

import jax
import pytest

import zoo
from benchmarks.runner import prepare


def _models() -> list[str]:
    patterns = os.environ.get("ZOO_BENCH_MODELS",
                              "efficientnet_b0,mobilenet_v2,mobilenet_v3_large").split(",")
    return [n for p in patterns if p.strip() for n in zoo.list_models(p.strip())]


BATCHES = [int(b) for b in os.environ.get("ZOO_BENCH_BATCH", "1").split(",")]
ROUNDS = int(os.environ.get("ZOO_BENCH_ROUNDS", "20"))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", _models())
def test_latency(benchmark, name, batch):
    spec, model, variables, x = prepare(name, batch=batch)
    compiled = jax.jit(model.apply).lower(variables, x).compile()
    benchmark.extra_info.update(
        model=name, batch=batch, input_size=spec.input_size,
        macs=zoo.count_macs(model, spec.input_size) * batch,
        backend=jax.default_backend(), device=jax.devices()[0].device_kind,
        jax=jax.__version__)
    benchmark.pedantic(lambda: jax.block_until_ready(compiled(variables, x)),
                       rounds=ROUNDS, warmup_rounds=3, iterations=1)
