"""Latency of each CPU implementation inside whole models, side by side in
one run (interleaved rounds, medians), on whatever backend JAX has.

    python -m benchmarks.implementations --models efficientnet_b0,mobilenet_v2 --runs 30

Three forms of the same network (same variables, same logits to ~1e-6):

* ``reference``: XLA's grouped convolution for depthwise convs, flax's
  ``conv_general_dilated`` + BatchNorm elsewhere;
* ``xla_fast, convs``: depthwise as shifted multiply-adds, every other conv
  still a ``conv_general_dilated`` (``zoo.layers.XLA_DOT_FORMS`` off);
* ``xla_fast``: the CPU default; in addition 1x1 convs are dots with the
  BatchNorm/activation/residual epilogue and 3-channel stems im2col + a dot.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import numpy as np

from benchmarks.env import cpu_model

# label -> (implementation, dot forms on): the forms compared, in column order.
FORMS = {"reference": ("reference", True), "xla_fast, convs": ("xla_fast", False),
         "xla_fast": ("xla_fast", True)}


def measure(name: str, runs: int, batch: int) -> dict[str, float]:
    """Median latency of each form in ``FORMS`` on one model, randomly initialised.

    Each form is compiled once and called twice untimed; then the timed
    calls are interleaved, one per form per round, so drifts in machine
    load hit every form alike.

    Args:
        name: a registered model name, e.g. ``"efficientnet_b0"``.
        runs: timed calls per form.
        batch: images per call, at the model's input size (float32 normal
            noise, seed 0).

    Returns:
        dict[str, float]: median milliseconds per call, keyed by the labels
        of ``FORMS`` (``"reference"``, ``"xla_fast, convs"``, ``"xla_fast"``).

    Example:
        ::

            from benchmarks.implementations import measure
            measure("mobilenet_v2", runs=10, batch=1)["xla_fast"]
    """
    import zoo

    spec = zoo.get_spec(name)
    _, variables = zoo.create(name)
    x = np.random.default_rng(0).standard_normal(
        (batch, *spec.input_hw, 3)).astype(np.float32)
    from zoo import layers

    fns = {}
    for label, (impl, dots) in FORMS.items():
        layers.XLA_DOT_FORMS = dots  # read while tracing, so compile here
        try:
            fns[label] = jax.jit(zoo.build(name, implementation=impl).apply).lower(
                variables, x).compile()
        finally:
            layers.XLA_DOT_FORMS = True
    for f in fns.values():  # warm up
        f(variables, x).block_until_ready()
        f(variables, x).block_until_ready()
    times: dict[str, list[float]] = {label: [] for label in FORMS}
    for _ in range(runs):  # interleave so drifts in machine load hit all alike
        for label, f in fns.items():
            t = time.perf_counter()
            f(variables, x).block_until_ready()
            times[label].append(time.perf_counter() - t)
    return {label: statistics.median(t) * 1e3 for label, t in times.items()}


def main(argv=None) -> None:
    """``python -m benchmarks.implementations``: print a Markdown table of the forms.

    One row per model: the three forms' median latencies, the speed-up of
    ``xla_fast`` over ``reference`` and what the dot forms save, after a line
    naming the backend, CPU, jax version and batch.

    Args:
        argv: the command-line arguments (default: ``sys.argv[1:]``):
            ``--models`` (comma-separated names; default efficientnet_b0,
            mobilenet_v2, mobilenet_v3_large), ``--runs`` (30), ``--batch``
            (1).
    """
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
    print("| model | reference ms | xla_fast, convs ms | xla_fast ms | xla_fast vs reference "
          "| dot forms save |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        m = measure(name, args.runs, args.batch)
        print(f"| {name} | {m['reference']:.1f} | {m['xla_fast, convs']:.1f} | {m['xla_fast']:.1f} "
              f"| {m['reference'] / m['xla_fast']:.1f}x "
              f"| {m['xla_fast, convs'] / m['xla_fast']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
