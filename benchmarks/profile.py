"""Where a model's time goes: each layer compiled and timed on its own.

    python -m benchmarks.profile efficientnet_b0 mobilenet_v2 --batch 1
    python -m benchmarks.profile mobilenet_v2 --batch 32 --train          # a train step
    python -m benchmarks.profile mobilenet_v2 --batch 32 --train --ops    # XLA's own view

Every ``ConvBN`` (convolution + folded-at-inference BatchNorm + activation),
squeeze-excite and the classifier is captured with its real input while the
model runs, then jitted alone and timed (median of ``--runs``). Layers are
grouped by kind (stem, 1x1 expand, depthwise kxk, squeeze-excite, 1x1
project, head, classifier) with their share of the summed time and their
achieved GFLOP/s (2 x multiply-adds / time). The whole model is timed in the
same run; ``whole / sum`` below 1 is what XLA's fusion across layers saves,
above 1 what runs between the layers (residual adds, pooling).

A layer timed alone keeps its input and output in memory, as in the model,
so a memory-bound kind (depthwise) shows low GFLOP/s here as it does inside.

``--train`` times each layer's forward in training mode plus its backward
(the gradients of its summed output), and the whole model likewise.

``--ops`` shows instead where the whole compiled program spends its time,
from XLA's own trace (``jax.profiler``): every executed HLO op (a fusion, a
dot, a copy) grouped by the layer kind and primitive it came from
(``op_name`` metadata), forward or backward, with the kind of fusion XLA made
of it. This is the view that explains a whole model being slower than its
layers timed alone: a layout XLA chose for the whole program (a transposed
copy feeding a dot), or residuals the backward pass reads.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from typing import Optional

import jax
import numpy as np

from zoo.timing import time_calls

_LEAVES = ("ConvBN", "SqueezeExcite", "Dense")


def _kind(path: tuple[str, ...], module) -> str:
    name = type(module).__name__
    last = path[-1] if path else ""
    if name == "SqueezeExcite":
        return "squeeze-excite"
    if name == "Dense":
        return "classifier"
    if getattr(module, "depthwise", False):
        return f"depthwise {module.kernel}x{module.kernel}"
    if last in ("expand", "project"):
        return f"1x1 {last}"
    return last or "conv"


def _macs(module, x_shape, y_shape) -> int:
    name = type(module).__name__
    if name == "ConvBN":
        k = module.kernel
        per_out = k * k * (1 if module.depthwise else x_shape[-1])
        return math.prod(y_shape) * per_out
    if name == "Dense":
        return math.prod(x_shape) * y_shape[-1]
    if name == "SqueezeExcite":
        return 2 * x_shape[0] * x_shape[-1] * module.reduced + math.prod(x_shape)
    return 0


def capture(model, variables, x, train: bool = False) -> list[dict]:
    """The leaf layers in call order: path, kind, module, its variables and
    input.

    Runs the model once with a Flax method interceptor; the leaves are
    ``ConvBN``, ``SqueezeExcite`` and ``Dense`` modules (a ``Dense`` inside a
    squeeze-excite belongs to it).

    Args:
        model: a zoo Flax model (from ``zoo.create`` or ``zoo.build``).
        variables: its variables (``{"params": ..., "batch_stats": ...}``).
        x: an (N, H, W, 3) float32 input batch.
        train: run in training mode (batch statistics, dropout) instead of
            inference.

    Returns:
        list[dict]: one per leaf call: ``path`` (tuple of module names),
        ``kind`` (e.g. ``"depthwise 3x3"``, ``"1x1 expand"``,
        ``"squeeze-excite"``, ``"classifier"``), ``module`` (an unbound
        clone), ``variables`` (its own, as numpy arrays), ``x`` (its input,
        numpy), ``y_shape``, ``train_arg`` (whether it was called with a
        train flag) and ``macs`` (multiply-adds of the call).
    """
    import flax.linen as nn

    found, inside = [], []

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if (context.method_name != "__call__" or type(module).__name__ not in _LEAVES
                or inside):  # a Dense inside a squeeze-excite belongs to it
            return next_fun(*args, **kwargs)
        inside.append(module)
        try:
            y = next_fun(*args, **kwargs)
        finally:
            inside.pop()
        found.append({"path": module.path, "module": module.clone(parent=None),
                      "variables": jax.tree_util.tree_map(np.asarray, module.variables),
                      "x": np.asarray(args[0]), "y_shape": np.shape(y),
                      "train_arg": len(args) > 1 or "train" in kwargs})
        return y

    with nn.intercept_methods(interceptor):
        if train:
            model.apply(variables, x, train=True, mutable=["batch_stats"],
                        rngs={"dropout": jax.random.key(0)})
        else:
            model.apply(variables, x)
    for f in found:
        f["kind"] = _kind(f["path"], f["module"])
        f["macs"] = _macs(f["module"], f["x"].shape, f["y_shape"])
    return found


def _train_step(apply, takes_train: bool):
    """Forward in train mode and backward (gradients of the summed output with
    respect to the parameters and the input): a layer's share of a train step."""

    def step(variables, x):
        def loss(params, x):
            if not takes_train:
                return apply({**variables, "params": params}, x).sum()
            y, _ = apply({**variables, "params": params}, x, True, mutable=["batch_stats"],
                         rngs={"dropout": jax.random.key(0)})
            return y.sum()
        return jax.grad(loss, argnums=(0, 1))(variables["params"], x)
    return step


def _whole(name: str, batch: int, train: bool, implementation: str):
    """(model, variables, a random input batch, the jitted whole model: the
    inference call or, with ``train``, forward and backward)."""
    import zoo

    spec = zoo.get_spec(name)
    model, variables = zoo.create(name, implementation=implementation)
    x = np.random.default_rng(0).standard_normal(
        (batch, *spec.input_hw, 3)).astype(np.float32)
    return model, variables, x, jax.jit(_train_step(model.apply, True) if train
                                        else model.apply)


def profile(name: str, batch: int = 1, runs: int = 30, warmup: int = 3,
            implementation: str = "auto", train: bool = False) -> dict:
    """Each leaf layer of ``name`` jitted and timed alone, grouped by kind.

    The model has random weights and a random float32 input at the spec's
    resolution. Every time is the median (``p50_ms`` of
    ``zoo.timing.time_calls``) of ``runs`` calls after ``warmup``.

    Args:
        name: a registered image model name.
        batch: images per call.
        runs: timed calls per layer and for the whole model.
        warmup: untimed calls first.
        implementation: the kernels' implementation (``"auto"``,
            ``"reference"``, ``"xla_fast"``, ``"pallas"``).
        train: time forward in training mode plus backward (gradients of
            the summed output for the parameters and the input); MACs stay
            the forward count.

    Returns:
        dict: ``model``, ``batch``, ``train``; ``whole_ms`` (the whole model)
        and ``sum_ms`` (the layers'); ``kinds``: kind -> ``ms``, ``macs``,
        ``layers`` (count), ``share`` (of ``sum_ms``) and ``gflops``
        (2 x MACs per second, in 10^9); ``layers``: one dict per layer with
        ``path`` (``/``-joined), ``kind``, ``ms``, ``macs``, ``in`` (input
        shape) and ``out`` (output shape).

    Example:
        ::

            from benchmarks.profile import markdown, profile
            print(markdown([profile("mobilenet_v2", runs=5)]))
    """
    model, variables, x, whole = _whole(name, batch, train, implementation)
    whole_ms = time_calls(lambda: jax.block_until_ready(whole(variables, x)), runs,
                        warmup)["p50_ms"]
    layers = []
    for f in capture(model, variables, x, train):
        fn = jax.jit(_train_step(f["module"].apply, f["train_arg"]) if train
                     else f["module"].apply)
        v, xi = f["variables"], f["x"]
        ms = time_calls(lambda: jax.block_until_ready(fn(v, xi)), runs, warmup)["p50_ms"]
        layers.append({"path": "/".join(f["path"]), "kind": f["kind"], "ms": ms,
                       "macs": f["macs"], "in": list(xi.shape), "out": list(f["y_shape"])})
    kinds: dict[str, dict] = defaultdict(lambda: {"ms": 0.0, "macs": 0, "layers": 0})
    for r in layers:
        k = kinds[r["kind"]]
        k["ms"] += r["ms"]
        k["macs"] += r["macs"]
        k["layers"] += 1
    total = sum(r["ms"] for r in layers)
    for k in kinds.values():
        k["share"] = k["ms"] / total
        k["gflops"] = 2 * k["macs"] / (k["ms"] * 1e6) if k["ms"] else 0.0
    return {"model": name, "batch": batch, "train": train, "whole_ms": whole_ms, "sum_ms": total,
            "kinds": dict(kinds), "layers": layers}


def op_breakdown(name: str, batch: int = 1, train: bool = False, top: int = 15,
                 implementation: str = "auto") -> dict:
    """One traced execution of the jitted model (inference, or forward and
    backward with ``train``), its HLO ops' time grouped by (fusion kind,
    forward/backward, layer kind, primitive).

    The trace is ``jax.profiler``'s (Perfetto JSON), written to a temporary
    folder after one compiling and one untraced call; each executed op is
    traced back to its layer through the compiled HLO's ``op_name``
    metadata. Block and stage indices are folded (``blocks_3`` becomes
    ``*``) so repeated layers share a row.

    Args:
        name: a registered image model name (random weights).
        batch: images per call.
        train: trace forward in training mode plus backward instead of
            inference.
        top: rows kept, the longest first; the rest is summed.
        implementation: the kernels' implementation.

    Returns:
        dict: ``model``, ``batch``, ``train``, ``total_ms`` (all traced ops),
        ``rows`` (up to ``top`` dicts: ``fusion`` (the HLO op name without
        its number), ``pass`` (``"forward"`` or ``"backward"``), ``layer``,
        ``primitive``, ``ms``, ``share`` of ``total_ms``) and ``other_ms``
        (the rows left out).
    """
    import gzip
    import json
    import re
    import tempfile
    from pathlib import Path

    _, variables, x, fn = _whole(name, batch, train, implementation)
    hlo = fn.lower(variables, x).compile().as_text()
    for _ in range(2):  # compile, then one untraced run
        jax.block_until_ready(fn(variables, x))
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            jax.block_until_ready(fn(variables, x))
        trace = json.load(gzip.open(next(Path(tmp).rglob("*.trace.json.gz"))))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    origin = {m.group(1): m.group(2) for m in re.finditer(
        r'^\s*(?:ROOT )?%(\S+) = .*?op_name="([^"]+)"', hlo, re.M)}
    groups: dict[tuple, float] = defaultdict(float)
    total = 0.0
    for e in events:
        op = e.get("name", "")
        if e.get("ph") != "X" or op not in origin:
            continue
        path = origin[op]
        parts = path.split("/")
        layer = re.sub(r"(blocks|stage)_\d+", "*", "/".join(parts[2:-1])) or "-"
        key = (re.sub(r"\.\d+$", "", op), "backward" if "transpose(" in path else "forward",
               layer, parts[-1])
        groups[key] += e.get("dur", 0) / 1e3
        total += e.get("dur", 0) / 1e3
    rows = [{"fusion": k[0], "pass": k[1], "layer": k[2], "primitive": k[3], "ms": ms,
             "share": ms / total if total else 0.0}
            for k, ms in sorted(groups.items(), key=lambda kv: -kv[1])]
    return {"model": name, "batch": batch, "train": train, "total_ms": total,
            "rows": rows[:top], "other_ms": sum(r["ms"] for r in rows[top:])}


def ops_markdown(result: dict) -> str:
    """``op_breakdown``'s result as a bold title line and a Markdown table.

    Args:
        result: a dict from ``op_breakdown``.

    Returns:
        str: the title, the table (one row per op group and a last row for
        the rest) and a final newline.
    """
    what = "forward + backward (train mode)" if result["train"] else "inference"
    lines = [f"**{result['model']}**, batch {result['batch']}, {what}: "
             f"{result['total_ms']:.0f} ms in XLA's ops (one traced run)", "",
             "| XLA op | pass | layer | primitive | ms | share |", "|---|---|---|---|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['fusion']} | {r['pass']} | {r['layer']} | {r['primitive']} | "
                     f"{r['ms']:.0f} | {r['share']:.0%} |")
    lines.append(f"| (the rest) | | | | {result['other_ms']:.0f} | "
                 f"{result['other_ms'] / max(result['total_ms'], 1e-9):.0%} |")
    return "\n".join(lines) + "\n"


def markdown(results: list[dict], top: int = 5) -> str:
    """``profile`` results as Markdown: per model, the whole-vs-sum line,
    a table by layer kind (slowest first) and the slowest layers.

    Args:
        results: dicts from ``profile``.
        top: how many of the slowest layers to name per model.

    Returns:
        str: the Markdown text, models one after another.
    """
    lines = []
    for r in results:
        what = "forward + backward (train mode)" if r.get("train") else "inference"
        lines += [f"**{r['model']}**, batch {r['batch']}, {what}: whole model "
                  f"{r['whole_ms']:.2f} ms, "
                  f"layers timed alone {r['sum_ms']:.2f} ms (whole / sum "
                  f"{r['whole_ms'] / r['sum_ms']:.2f})", "",
                  "| kind | layers | ms | share | MMACs | GFLOP/s |",
                  "|---|---:|---:|---:|---:|---:|"]
        for kind, k in sorted(r["kinds"].items(), key=lambda kv: -kv[1]["ms"]):
            lines.append(f"| {kind} | {k['layers']} | {k['ms']:.2f} | {k['share']:.0%} | "
                         f"{k['macs'] / 1e6:.0f} | {k['gflops']:.0f} |")
        slow = sorted(r["layers"], key=lambda x: -x["ms"])[:top]
        lines += ["", "slowest layers: " + "; ".join(
            f"{x['path']} {x['kind']} {'x'.join(map(str, x['in'][1:]))}->{x['out'][-1]} "
            f"{x['ms']:.2f} ms" for x in slow), ""]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m benchmarks.profile``: print the per-kind tables (or, with
    ``--ops``, the XLA op breakdown) of each model.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``): model names, then
            ``--batch``, ``--runs``, ``--implementation``, ``--train``,
            ``--ops`` and ``--top``.

    Returns:
        int: the exit status, 0.
    """
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="registry names")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--implementation", default="auto")
    p.add_argument("--train", action="store_true",
                   help="time forward (train mode) + backward instead of inference; "
                        "MACs stay the forward count")
    p.add_argument("--ops", action="store_true",
                   help="group XLA's traced ops of the whole program instead of timing "
                        "layers alone")
    p.add_argument("--top", type=int, default=15, help="--ops: rows shown (15)")
    args = p.parse_args(argv)
    from zoo.host_memory import keep_freed_host_memory

    keep_freed_host_memory()  # as `zoo train` and the benchmark tables run
    if args.ops:
        for m in args.models:
            print(ops_markdown(op_breakdown(m, args.batch, args.train, args.top,
                                            args.implementation)))
        return 0
    results = [profile(m, args.batch, args.runs, implementation=args.implementation,
                       train=args.train)
               for m in args.models]
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
