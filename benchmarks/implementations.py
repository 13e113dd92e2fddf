"""Latency of each depthwise-conv implementation inside whole models, side by
side in one run (interleaved rounds, medians), on whatever backend JAX has.

    python -m benchmarks.implementations --models efficientnet_b0,mobilenet_v2 --runs 30

The full suite (FLOPs, memory, compile time, peers) is issue 4; this is the
measurement behind the README's claim about the CPU path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import numpy as np

from benchmarks.env import cpu_model

IMPLS = ("reference", "xla_fast")


def measure(name: str, runs: int, batch: int) -> dict[str, float]:
    import zoo

    spec = zoo.get_spec(name)
    _, variables = zoo.create(name)
    x = np.random.default_rng(0).standard_normal(
        (batch, spec.input_size, spec.input_size, 3)).astype(np.float32)
    fns = {impl: jax.jit(zoo.build(name, implementation=impl).apply) for impl in IMPLS}
    for f in fns.values():  # compile and warm up
        f(variables, x).block_until_ready()
        f(variables, x).block_until_ready()
    times: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for _ in range(runs):  # interleave so drifts in machine load hit both alike
        for impl, f in fns.items():
            t = time.perf_counter()
            f(variables, x).block_until_ready()
            times[impl].append(time.perf_counter() - t)
    return {impl: statistics.median(t) * 1e3 for impl, t in times.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="efficientnet_b0,mobilenet_v2,mobilenet_v3_large")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--batch", type=int, default=1)
    args = p.parse_args(argv)
    dev = jax.devices()[0]
    cpu = cpu_model()
    print(f"backend {jax.default_backend()} ({dev.device_kind}; CPU {cpu}, {os.cpu_count()} cores), "
          f"jax {jax.__version__}, batch {args.batch}, "
          f"median of {args.runs} interleaved runs, float32\n")
    print("| model | grouped conv (reference) ms | shifted MACs (xla_fast) ms | speed-up |")
    print("|---|---:|---:|---:|")
    for name in args.models.split(","):
        m = measure(name, args.runs, args.batch)
        print(f"| {name} | {m['reference']:.1f} | {m['xla_fast']:.1f} "
              f"| {m['reference'] / m['xla_fast']:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
