"""Where a model's time goes: each layer compiled and timed on its own.

    python -m benchmarks.profile efficientnet_b0 mobilenet_v2 --batch 1

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


def capture(model, variables, x) -> list[dict]:
    """The leaf layers in call order: path, kind, module, its variables and
    input."""
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
                      "x": np.asarray(args[0]), "y_shape": np.shape(y)})
        return y

    with nn.intercept_methods(interceptor):
        model.apply(variables, x)
    for f in found:
        f["kind"] = _kind(f["path"], f["module"])
        f["macs"] = _macs(f["module"], f["x"].shape, f["y_shape"])
    return found


def profile(name: str, batch: int = 1, runs: int = 30, warmup: int = 3,
            implementation: str = "auto") -> dict:
    import zoo

    spec = zoo.get_spec(name)
    model, variables = zoo.create(name, implementation=implementation)
    x = np.random.default_rng(0).standard_normal(
        (batch, spec.input_size, spec.input_size, 3)).astype(np.float32)
    whole = jax.jit(model.apply)
    whole_ms = time_calls(lambda: jax.block_until_ready(whole(variables, x)), runs,
                        warmup)["p50_ms"]
    layers = []
    for f in capture(model, variables, x):
        fn = jax.jit(f["module"].apply)
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
    return {"model": name, "batch": batch, "whole_ms": whole_ms, "sum_ms": total,
            "kinds": dict(kinds), "layers": layers}


def markdown(results: list[dict], top: int = 5) -> str:
    lines = []
    for r in results:
        lines += [f"**{r['model']}**, batch {r['batch']}: whole model {r['whole_ms']:.2f} ms, "
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
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="registry names")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--implementation", default="auto")
    args = p.parse_args(argv)
    results = [profile(m, args.batch, args.runs, implementation=args.implementation)
               for m in args.models]
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
