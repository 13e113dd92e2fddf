"""Kernel micro-benchmarks at the shapes the zoo's models use.

    python -m benchmarks.kernels --models efficientnet_b0,mobilenet_v2 --runs 20
    python -m benchmarks.kernels --ops depthwise --limit 10 --json out.json

For every fused op (depthwise conv + BN + activation, 1x1 conv + BN +
activation + residual, squeeze-excite) and every distinct shape found by
tracing the models at their spec resolution, batch 1:

* latency (median of interleaved runs) of ``reference``, ``xla_fast`` and,
  where it compiles (GPU, TPU), the ``pallas`` kernel. On CPU Pallas only
  runs in interpret mode, which measures nothing useful, so it is skipped;
* bytes accessed, from XLA's ``compiled.cost_analysis()`` of the reference
  compiled without fusion (``xla_disable_hlo_passes=fusion``: conv, scale,
  bias, each activation op, residual each read and write memory) and with
  XLA's own fusion (on CPU: the conv output is materialised, the epilogue is
  one fused loop -- what XLA does on an accelerator too), against the Pallas
  kernel's ``cost_estimate`` (input once, output once). The ratios are the
  memory traffic the kernel saves, stated from XLA's own counts;
* on CPU, for the depthwise conv, the fast XLA form against XLA's own
  grouped convolution.

The shapes come from ``model_kernel_shapes``, which traces the models with
a Flax method interceptor (kernels know nothing of models; this module may).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import statistics
import sys
import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

# The fused ops measured, in table order; ``make_case`` builds each.
OPS = ("depthwise", "pointwise", "squeeze_excite")


@dataclasses.dataclass(frozen=True, order=True)
class DepthwiseShape:
    """One depthwise conv + BatchNorm + activation site of a model.

    Attributes:
        h: input height.
        w: input width.
        c: channels (input and output).
        k: square kernel size.
        stride: stride, 1 or 2.
        padding: ``"same"`` (TensorFlow) or ``"symmetric"``, the model's.
        act: activation name applied last (``"relu"``, ``"swish"``, ...),
            or None.
    """

    h: int
    w: int
    c: int
    k: int
    stride: int
    padding: str
    act: Optional[str]


@dataclasses.dataclass(frozen=True, order=True)
class PointwiseShape:
    """One 1x1 conv (+ BatchNorm + activation + residual) site of a model.

    Attributes:
        h: input height.
        w: input width.
        k: input channels (the contraction size).
        n: output channels.
        act: activation name applied after the BatchNorm, or None.
        residual: whether a tensor of the output's shape is added after the
            activation (the projection of a stride-1 inverted residual with
            equal input and output channels).
    """

    h: int
    w: int
    k: int
    n: int
    act: Optional[str]
    residual: bool


@dataclasses.dataclass(frozen=True, order=True)
class SEShape:
    """One squeeze-excite site of a model.

    Attributes:
        h: input height.
        w: input width.
        c: channels.
        r: reduced channels of the bottleneck.
        act: activation name after the reducing layer.
        gate: gate activation, ``"sigmoid"`` or ``"hard_sigmoid"``.
    """

    h: int
    w: int
    c: int
    r: int
    act: str
    gate: str


def _act_key(a):
    return "" if a is None else a


@functools.lru_cache(maxsize=None)
def model_kernel_shapes(models: tuple = (), resolution: Optional[int] = None) -> dict:
    """{op: sorted distinct shapes} of every fused-kernel site in ``models``
    (default: every registered model) at ``resolution`` (default: each
    spec's), found by tracing ``init`` with a method interceptor.

    Tracing is abstract (``jax.eval_shape``, batch 1), so nothing is
    computed; models that are not image models (sequence models) are
    skipped. Results are cached per argument pair.

    Args:
        models: registered model names, as a tuple (hashable for the
            cache); empty for every registered model.
        resolution: square input side in pixels for every model, or None
            for each spec's ``input_size``.

    Returns:
        dict: ``"depthwise"`` -> sorted list of ``DepthwiseShape``,
        ``"pointwise"`` -> of ``PointwiseShape``, ``"squeeze_excite"`` -> of
        ``SEShape``; each shape appears once however many sites share it.

    Example:
        ::

            from benchmarks.kernels import model_kernel_shapes
            shapes = model_kernel_shapes(("mobilenet_v2",))
            len(shapes["depthwise"])
    """
    import flax.linen as nn

    import zoo
    from zoo.layers import Conv, ConvBN, DepthwiseConv, InvertedResidual, SqueezeExcite

    found = {op: set() for op in OPS}
    block_in: dict[int, int] = {}

    def record(next_fun, args, kwargs, context):
        m = context.module
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        x = args[0] if args else None
        pad = getattr(getattr(m, "settings", None), "padding", "same")
        if isinstance(m, InvertedResidual):
            block_in[id(m)] = x.shape[-1]
        elif isinstance(m, DepthwiseConv):
            parent = m.parent
            act = parent.act if isinstance(parent, ConvBN) else None
            found["depthwise"].add(DepthwiseShape(x.shape[1], x.shape[2], x.shape[3], m.kernel,
                                                  m.stride, pad, act))
        elif isinstance(m, ConvBN) and not m.depthwise and m.kernel == 1 and m.stride == 1:
            parent = m.parent
            res = (isinstance(parent, InvertedResidual) and m.name == "project"
                   and parent.residual and parent.stride == 1
                   and block_in.get(id(parent)) == m.features)
            found["pointwise"].add(PointwiseShape(x.shape[1], x.shape[2], x.shape[3],
                                                  m.features, m.act, bool(res)))
        elif isinstance(m, Conv) and m.kernel == 1 and m.stride == 1 \
                and not isinstance(m.parent, ConvBN):
            found["pointwise"].add(PointwiseShape(x.shape[1], x.shape[2], x.shape[3],
                                                  m.features, None, False))
        elif isinstance(m, SqueezeExcite):
            found["squeeze_excite"].add(SEShape(x.shape[1], x.shape[2], x.shape[3], m.reduced,
                                                m.act, m.gate))
        return next_fun(*args, **kwargs)

    for name in models or tuple(zoo.list_models()):
        spec = zoo.get_spec(name)
        size = resolution or spec.input_size
        # The reference form calls every layer module (DepthwiseConv, Conv);
        # the fused forms declare their variables without them.
        model = zoo.build(name, implementation="reference")
        if getattr(model, "trace_input", None) is not None:
            continue  # not an image model (TALNet's sequences): no 2-D kernels to size
        x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
        with nn.intercept_methods(record):
            jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)
    return {op: sorted(s, key=lambda t: tuple(_act_key(v) if v is None or isinstance(v, str)
                                              else v for v in dataclasses.astuple(t)))
            for op, s in found.items()}


# ------------------------------------------------------------ problem setup


def make_case(op: str, shape, dtype=jnp.float32, batch: int = 1, seed: int = 0,
              abstract: bool = False):
    """(fn(implementation, *args, **kw) -> output, args) for one op at one
    shape; ``abstract`` gives ShapeDtypeStructs instead of random arrays
    (for lowering).

    ``fn(impl, *args, **kw)`` calls ``kernels.depthwise_conv_bn_act``,
    ``kernels.pointwise_conv`` or ``kernels.squeeze_excite`` with the
    shape's static settings and ``implementation=impl``; ``kw`` goes to the
    kernel (e.g. ``target="tpu"``). The activations (``x``, and a
    pointwise residual) are ``(batch, h, w, channels)`` in ``dtype``; the
    weights, scales and biases are float32, scaled so outputs stay of
    order one (BatchNorm scales near 1).

    Args:
        op: one of ``OPS``.
        shape: the ``DepthwiseShape``, ``PointwiseShape`` or ``SEShape``
            matching ``op``.
        dtype: dtype of the activations.
        batch: leading dimension of the activations.
        seed: seed of the normal random arrays (numpy ``default_rng``).
        abstract: give ``jax.ShapeDtypeStruct`` stand-ins instead of
            arrays, for ``jax.jit(...).lower`` or ``jax.export``.

    Returns:
        tuple: ``(fn, args)``; ``fn("reference", *args)`` runs the op.

    Raises:
        ValueError: if ``op`` is not one of ``OPS``.

    Example:
        ::

            from benchmarks.kernels import DepthwiseShape, make_case
            fn, args = make_case("depthwise", DepthwiseShape(56, 56, 144, 3, 2, "same", "relu6"))
            y = fn("xla_fast", *args)   # (1, 28, 28, 144)
    """
    import kernels

    rng = np.random.default_rng(seed)

    class _Abstract(jax.ShapeDtypeStruct):
        def __add__(self, other):
            return self

    def arr(*s, scale=1.0, dt=jnp.float32):
        if abstract:
            return _Abstract(s, dt)
        return jnp.asarray(rng.standard_normal(s) * scale, dt)

    if op == "depthwise":
        s = shape
        x = arr(batch, s.h, s.w, s.c, dt=dtype)
        args = (x, arr(s.k, s.k, 1, s.c, scale=1 / s.k), arr(s.c, scale=0.5) + 1, arr(s.c))

        def fn(impl, x, w, sc, b, **kw):
            return kernels.depthwise_conv_bn_act(x, w, sc, b, stride=s.stride, padding=s.padding,
                                                 act=s.act, implementation=impl, **kw)
    elif op == "pointwise":
        s = shape
        x = arr(batch, s.h, s.w, s.k, dt=dtype)
        args = (x, arr(s.k, s.n, scale=s.k ** -0.5), arr(s.n, scale=0.5) + 1, arr(s.n))
        if s.residual:
            args += (arr(batch, s.h, s.w, s.n, dt=dtype),)

        def fn(impl, x, w, sc, b, *res, **kw):
            return kernels.pointwise_conv(x, w, sc, b, res[0] if res else None, act=s.act,
                                          implementation=impl, **kw)
    elif op == "squeeze_excite":
        s = shape
        x = arr(batch, s.h, s.w, s.c, dt=dtype)
        args = (x, arr(s.c, s.r, scale=s.c ** -0.5), arr(s.r), arr(s.r, s.c, scale=s.r ** -0.5),
                arr(s.c))

        def fn(impl, *a, **kw):
            return kernels.squeeze_excite(*a, act=s.act, gate=s.gate, implementation=impl, **kw)
    else:
        raise ValueError(f"op={op!r}: use one of {OPS}")
    return fn, args


# ------------------------------------------------------------ measurements


def _unfused_bytes(lowered) -> float:
    """XLA's ``bytes accessed`` of the reference compiled with its fusion
    pass disabled: every op reads its operands from memory and writes its
    result back (what fusion, XLA's or the kernel's, saves)."""
    compiled = lowered.compile(compiler_options={"xla_disable_hlo_passes": "fusion"})
    return float(_cost(compiled).get("bytes accessed", float("nan")))


def _cost(compiled) -> dict:
    ca = compiled.cost_analysis()
    if isinstance(ca, (list, tuple)):
        ca = ca[0] if ca else {}
    return dict(ca or {})


def _pallas_cost(fn, args) -> dict:
    """The ``cost_estimate`` the kernels attach to their pallas_calls (the
    TPU plan's; XLA's cost analysis reports it for the custom call)."""
    jaxpr = jax.make_jaxpr(lambda *a: fn("pallas", *a, target="tpu"))(*args)
    out = {"flops": 0.0, "transcendentals": 0.0, "bytes accessed": 0.0}

    def walk(jp):
        for eqn in jp.eqns:
            if eqn.primitive.name == "pallas_call":
                ce = eqn.params.get("cost_estimate")
                if ce is not None:
                    out["flops"] += ce.flops
                    out["transcendentals"] += ce.transcendentals
                    out["bytes accessed"] += ce.bytes_accessed
            for p in eqn.params.values():
                if hasattr(p, "jaxpr"):
                    walk(p.jaxpr if hasattr(p.jaxpr, "eqns") else p.jaxpr.jaxpr)

    walk(jaxpr.jaxpr)
    return out


def _time(fns: dict, args, runs: int) -> dict:
    for f in fns.values():
        jax.block_until_ready(f(*args))
    times = {k: [] for k in fns}
    for _ in range(runs):
        for k, f in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f(*args))
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def measure(op: str, shape, runs: int = 20, dtype=jnp.float32, batch: int = 1,
            time_it: bool = True) -> dict:
    """Memory traffic and latency of one op at one shape, per implementation.

    Bytes and FLOPs come from XLA's ``cost_analysis()`` of the reference,
    compiled with and without XLA's fusion pass, and from the Pallas
    kernel's ``cost_estimate`` (its TPU plan, read from the traced jaxpr, so
    this works on CPU too). Timing covers ``reference`` and ``xla_fast``,
    and ``pallas`` off CPU (on CPU it would only run interpreted).

    Args:
        op: one of ``OPS``.
        shape: the op's ``DepthwiseShape``, ``PointwiseShape`` or ``SEShape``.
        runs: timed calls per implementation, interleaved, after one untimed
            call each.
        dtype: dtype of the activations (float32 or bfloat16).
        batch: leading dimension of the activations.
        time_it: False for the cost numbers only (no timing).

    Returns:
        dict: the row: ``op``, the shape's fields, ``dtype`` (name),
        ``batch``, ``backend``; ``xla_bytes_reference`` and
        ``xla_flops_reference`` (fused), ``unfused_bytes``,
        ``pallas_bytes``, ``pallas_flops``; ``bytes_saved_x`` and
        ``bytes_saved_vs_xla_fused_x`` (those over the Pallas bytes); with
        ``time_it``, ``<implementation>_ms``, the median milliseconds.

    Raises:
        ValueError: if ``op`` is not one of ``OPS`` (from ``make_case``).
    """
    fn, args = make_case(op, shape, dtype, batch)
    backend = jax.default_backend()
    impls = ["reference", "xla_fast"] + ([] if backend == "cpu" else ["pallas"])
    fns = {impl: jax.jit(functools.partial(fn, impl)) for impl in impls}
    row = {"op": op, **dataclasses.asdict(shape), "dtype": jnp.dtype(dtype).name,
           "batch": batch, "backend": backend}
    lowered = fns["reference"].lower(*args)
    fused_ref = _cost(lowered.compile())
    row["xla_bytes_reference"] = fused_ref.get("bytes accessed", float("nan"))
    row["xla_flops_reference"] = fused_ref.get("flops", float("nan"))
    row["unfused_bytes"] = _unfused_bytes(lowered)
    pc = _pallas_cost(fn, args)
    row["pallas_bytes"] = pc["bytes accessed"]
    row["pallas_flops"] = pc["flops"]
    pb = pc["bytes accessed"] or float("nan")
    row["bytes_saved_x"] = row["unfused_bytes"] / pb
    row["bytes_saved_vs_xla_fused_x"] = row["xla_bytes_reference"] / pb
    if time_it:
        ms = _time(fns, args, runs)
        for impl, v in ms.items():
            row[f"{impl}_ms"] = v
    return row


def run(ops=OPS, models: tuple = (), limit: Optional[int] = None, runs: int = 20,
        dtype=jnp.float32, time_it: bool = True, out=sys.stdout) -> list[dict]:
    """``measure`` every shape of ``ops`` found in ``models``, printing each row.

    Args:
        ops: op names from ``OPS``, in the order to run.
        models: registered model names whose shapes to run (empty: every
            model); see ``model_kernel_shapes``.
        limit: at most this many shapes per op (the first in sorted order),
            or None for all.
        runs: timed calls per implementation.
        dtype: dtype of the activations.
        time_it: False for the cost numbers only.
        out: text stream that gets ``format_row`` of each row as it is
            measured.

    Returns:
        list[dict]: the rows of ``measure``, op by op.
    """
    shapes = model_kernel_shapes(tuple(models))
    rows = []
    for op in ops:
        todo = shapes[op][:limit] if limit else shapes[op]
        for s in todo:
            row = measure(op, s, runs=runs, dtype=dtype, time_it=time_it)
            rows.append(row)
            print(format_row(row), file=out, flush=True)
    return rows


def format_row(r: dict) -> str:
    """One line for a ``measure`` row: op, shape, times, and bytes in MB.

    Args:
        r: a row of ``measure`` (with or without the ``_ms`` timings).

    Returns:
        str: a fixed-width line without a newline.
    """
    keys = [k for k in ("h", "w", "c", "k", "n", "r", "stride", "padding", "act", "gate",
                        "residual") if k in r]
    shape = " ".join(f"{k}={r[k]}" for k in keys)
    times = " ".join(f"{k[:-3]}={r[k]:.3f}ms" for k in r if k.endswith("_ms"))
    return (f"{r['op']:<15} {shape:<70} {times}  bytes: unfused {r['unfused_bytes'] / 1e6:.3f}MB "
            f"xla-fused(cpu) {r['xla_bytes_reference'] / 1e6:.3f}MB "
            f"pallas {r['pallas_bytes'] / 1e6:.3f}MB ({r['bytes_saved_x']:.2f}x / "
            f"{r['bytes_saved_vs_xla_fused_x']:.2f}x less)")


def summary(rows: list[dict]) -> str:
    """Per op: shapes, total time per implementation, total bytes.

    Args:
        rows: rows of ``measure``; ops without rows are left out and an
            implementation never timed shows ``-``.

    Returns:
        str: a Markdown table, one row per op: shape count, summed
        milliseconds of ``reference``, ``xla_fast`` and ``pallas``, summed
        MB (10^6 bytes) unfused, XLA-fused and Pallas, and the two saving
        ratios.
    """
    lines = ["| op | shapes | reference ms | xla_fast ms | pallas ms | XLA unfused MB | "
             "XLA fused MB | Pallas MB | saved vs unfused | saved vs XLA fused |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for op in OPS:
        rs = [r for r in rows if r["op"] == op]
        if not rs:
            continue

        def tot(k):
            v = [r[k] for r in rs if k in r]
            return f"{sum(v):.2f}" if v else "-"

        ub = sum(r["unfused_bytes"] for r in rs) / 1e6
        fb = sum(r["xla_bytes_reference"] for r in rs) / 1e6
        pb = sum(r["pallas_bytes"] for r in rs) / 1e6
        lines.append(f"| {op} | {len(rs)} | {tot('reference_ms')} | {tot('xla_fast_ms')} | "
                     f"{tot('pallas_ms')} | {ub:.1f} | {fb:.1f} | {pb:.1f} | {ub / pb:.2f}x | "
                     f"{fb / pb:.2f}x |")
    return "\n".join(lines)


def mbconv_budget(models: tuple = ()) -> str:
    """Per (kernel, stride): the power-of-two expanded halo tile a fused
    MBConv Triton program would hold, over the models' depthwise shapes.

    Uses ``kernels.mbconv.halo_tile_bytes`` (8x8 output tile, float32) and
    compares it with ``kernels.mbconv.PROGRAM_REGISTER_BYTES``.

    Args:
        models: registered model names (empty: every model).

    Returns:
        str: a heading line and a Markdown table: kernel, stride, shape
        count, expanded-channel range, full-tile KiB range, how many fit
        the budget, the KiB of a 32-channel chunk, and the expand-conv
        recompute factor.
    """
    from kernels.mbconv import (PROGRAM_REGISTER_BYTES, expand_recompute_factor,
                                halo_tile_bytes)

    shapes = model_kernel_shapes(tuple(models))["depthwise"]
    lines = [f"one-kernel MBConv on GPU, 8x8 output tile, float32; per-program register budget "
             f"{PROGRAM_REGISTER_BYTES / 1024:.1f} KiB",
             "| k | stride | shapes | expanded channels | full tile KiB | fit | "
             "32-channel chunk KiB | expand recompute |", "|---:|---:|---:|---|---|---:|---:|---:|"]
    for k, st in sorted({(x.k, x.stride) for x in shapes}):
        grp = [x for x in shapes if (x.k, x.stride) == (k, st)]
        full = [halo_tile_bytes(x.c, k, st) for x in grp]
        chunk = max(halo_tile_bytes(x.c, k, st, chunk=32) for x in grp)
        fit = sum(b <= PROGRAM_REGISTER_BYTES for b in full)
        lines.append(f"| {k} | {st} | {len(grp)} | {min(x.c for x in grp)}-{max(x.c for x in grp)} | "
                     f"{min(full) / 1024:.0f}-{max(full) / 1024:.0f} | {fit} | {chunk / 1024:.0f} | "
                     f"{expand_recompute_factor(k, st):.1f}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m benchmarks.kernels``: measure and print the rows and the summary.

    Args:
        argv: the command-line arguments (default: ``sys.argv[1:]``):
            ``--ops``, ``--models`` (``all`` for every model), ``--limit``,
            ``--runs``, ``--dtype``, ``--no-time``, ``--json FILE`` (write
            the rows) and ``--mbconv-budget`` (print ``mbconv_budget`` and
            stop).

    Returns:
        int: the exit status, 0; argparse exits with status 2 on an
        unknown op.
    """
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.kernels", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ops", default=",".join(OPS), help=f"comma-separated subset of {OPS}")
    p.add_argument("--models", default="efficientnet_b0,mobilenet_v2,mobilenet_v3_large",
                   help="comma-separated model names whose shapes to run ('all': every model)")
    p.add_argument("--limit", type=int, default=None, help="at most this many shapes per op")
    p.add_argument("--runs", type=int, default=20, help="timed runs per implementation")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--no-time", action="store_true", help="cost analysis only, no timing")
    p.add_argument("--json", default=None, help="write the rows to this JSON file")
    p.add_argument("--mbconv-budget", action="store_true",
                   help="print the tile budget of a one-kernel MBConv on GPU (see kernels/mbconv.py) "
                        "over the models' depthwise shapes and exit")
    a = p.parse_args(argv)
    ops = tuple(o for o in a.ops.split(",") if o)
    for o in ops:
        if o not in OPS:
            p.error(f"unknown op {o!r}; use {OPS}")
    import zoo
    models = () if a.models == "all" else tuple(m for m in a.models.split(",") if m)
    for m in models:
        zoo.get_spec(m)  # unknown names fail here with suggestions
    if a.mbconv_budget:
        print(mbconv_budget(models))
        return 0
    dev = jax.devices()[0]
    print(f"backend {jax.default_backend()} ({dev.device_kind}), jax {jax.__version__}, "
          f"batch 1, {a.dtype}, median of {a.runs} interleaved runs; models: {a.models}")
    rows = run(ops, models, a.limit, a.runs, jnp.dtype(a.dtype), not a.no_time)
    print()
    print(summary(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
