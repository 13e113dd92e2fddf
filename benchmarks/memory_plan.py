"""A memory plan per model: how many bytes of activations an inference needs.

    python -m benchmarks.memory_plan --models 'mobilenet*,blazeface_short_range' --out DIR
    zoo bench --memory-plan --models mobilenet_v2

From the model's jaxpr at batch 1 (nested ``pjit`` / ``custom_jvp_call`` /
``custom_vjp_call`` / ``closed_call`` jaxprs are inlined so every
intermediate value is seen) every activation gets a lifetime: defined at
equation ``i``, last read at equation ``j`` (the inclusive interval
``[i, j]``; the model's inputs and outputs live throughout). Weights and
constants are excluded from the plan and counted separately. Then:

* ``no_reuse_bytes``: the sum of all activations (every value its own buffer);
* ``arena_bytes``: an arena planned *greedy by size*: tensors sorted by size,
  largest first, each placed at the lowest offset where it overlaps no
  already placed tensor in both address and lifetime. This is the "Greedy by
  Size" offset strategy of Pisarchyk & Lee, "Efficient Memory Management for
  Deep Neural Net Inference" (2020, arXiv:2001.03288), which TFLite's
  ``ArenaPlanner`` uses for its activation arena;
* ``max_live_bytes``: the lower bound: the largest total of bytes live at
  one equation. No plan of these lifetimes can use less;
* XLA's own numbers from ``jax.jit(...).lower(...).compile().memory_analysis()``
  (temp, argument and output bytes) for the same function;
* optionally LiteRT's arena for the zoo's own TFLite export (see
  ``litert_arena``).

Caveats: the jaxpr is the program before XLA fuses it, so the plan counts
values XLA never materialises (elementwise chains fuse, reshapes become
bitcasts); XLA's temp bytes are usually far smaller. Loops and conditionals
(``scan``, ``while``, ``cond``) stay single equations: the temporaries of
their bodies are not seen. The zoo's depthwise convolutions on CPU are k*k
shifted multiply-adds (``implementation="auto"``), so their partial sums are
separate values here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

PROG = "python -m benchmarks.memory_plan"
EXAMPLES = """examples:
  python -m benchmarks.memory_plan --models 'mobilenet*' --out benchmarks/results
  zoo bench --memory-plan --models blazeface_short_range,efficientnet_lite0 --litert

Prints the Markdown table; with --out also writes memory-plan-<env>-<date>.{json,md}.
A model that fails is a row with its error; the others go on.
"""

#: Equation parameters that hold a jaxpr to inline, per primitive family.
_SUBJAXPR_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")
_INLINED = {"pjit", "jit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
            "custom_vjp_call_jaxpr", "remat", "checkpoint", "custom_lin"}


class PlanError(ValueError):
    """A bad lifetime list or alignment given to the planner."""


@dataclass(frozen=True)
class Tensor:
    """One buffer to place: ``size`` bytes live from step ``start`` to step
    ``end`` inclusive.

    Attributes:
        size: bytes, >= 0.
        start: the step (equation index) that defines it.
        end: the last step that reads it, >= ``start``.
        name: a label for error messages and debugging (the jaxpr variable).
    """
    size: int
    start: int
    end: int
    name: str = ""


# ---------------------------------------------------------------- planner

def _check(tensors: Sequence[Tensor]) -> None:
    for t in tensors:
        if t.size < 0 or t.start > t.end:
            raise PlanError(f"tensor {t.name or t}: needs size >= 0 and start <= end")


def no_reuse_bytes(tensors: Sequence[Tensor]) -> int:
    """Bytes when every tensor has a buffer of its own.

    Args:
        tensors: the buffers (lifetimes do not matter here).

    Returns:
        int: the sum of their sizes (0 for none).
    """
    return int(sum(t.size for t in tensors))


def max_live_bytes(tensors: Sequence[Tensor]) -> int:
    """The lower bound of any plan: the most bytes live at one step.

    Args:
        tensors: the buffers with their inclusive lifetimes.

    Returns:
        int: the largest sum of sizes of the tensors live at one step (0
        for none).

    Raises:
        PlanError: if a tensor has a negative size or ``start > end``.
    """
    _check(tensors)
    if not tensors:
        return 0
    horizon = max(t.end for t in tensors) + 2
    delta = np.zeros(horizon, dtype=np.int64)
    for t in tensors:
        delta[t.start] += t.size
        delta[t.end + 1] -= t.size
    return int(np.cumsum(delta).max())


def greedy_by_size(tensors: Sequence[Tensor], alignment: int = 1) -> list[int]:
    """Offsets for ``tensors`` (same order), planned greedy by size
    (Pisarchyk & Lee 2020): largest first, each at the lowest ``alignment``-
    aligned offset whose bytes overlap no placed tensor that is live at the
    same time. Ties in size go to the earlier start, so plans are repeatable.

    Args:
        tensors: the buffers with their inclusive lifetimes.
        alignment: every offset of a tensor placed above another is rounded
            up to a multiple of this many bytes (1: no rounding).

    Returns:
        list[int]: the byte offset of each tensor in the arena; zero-size
        tensors get 0.

    Raises:
        PlanError: if ``alignment`` < 1, or a tensor has a negative size or
            ``start > end``.

    Example:
        ::

            from benchmarks.memory_plan import Tensor, greedy_by_size
            greedy_by_size([Tensor(4, 0, 1), Tensor(8, 1, 2), Tensor(4, 2, 3)])   # [8, 0, 8]
    """
    _check(tensors)
    if alignment < 1:
        raise PlanError(f"alignment={alignment}: give a positive number of bytes")
    n = len(tensors)
    order = sorted(range(n), key=lambda k: (-tensors[k].size, tensors[k].start, k))
    starts = np.array([t.start for t in tensors], dtype=np.int64)
    ends = np.array([t.end for t in tensors], dtype=np.int64)
    sizes = np.array([t.size for t in tensors], dtype=np.int64)
    offsets = np.full(n, -1, dtype=np.int64)
    placed = np.zeros(n, dtype=bool)
    for k in order:
        size = sizes[k]
        if size == 0:  # occupies no bytes, so overlaps nothing
            offsets[k] = 0
            continue
        busy = np.flatnonzero(placed & (starts <= ends[k]) & (ends >= starts[k]) & (sizes > 0))
        busy = busy[np.argsort(offsets[busy], kind="stable")]
        offset = 0
        for b in busy:  # gaps in address order: the first one that fits wins
            if offsets[b] >= offset + size:
                break
            offset = max(offset, _align(int(offsets[b] + sizes[b]), alignment))
        offsets[k] = offset
        placed[k] = True
    return [int(o) for o in offsets]


def _align(x: int, alignment: int) -> int:
    return -(-x // alignment) * alignment


def arena_bytes(tensors: Sequence[Tensor], offsets: Sequence[int]) -> int:
    """The arena a plan needs: the end of its highest tensor.

    Args:
        tensors: the buffers.
        offsets: their byte offsets, same order (e.g. from
            ``greedy_by_size``).

    Returns:
        int: the largest ``offset + size`` (0 for no tensors).
    """
    return int(max((o + t.size for t, o in zip(tensors, offsets)), default=0))


# ---------------------------------------------------------------- jaxpr lifetimes

def _nbytes(aval) -> int:
    shape = getattr(aval, "shape", None)
    dtype = getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return 0  # tokens and other abstract values hold no activation bytes
    return int(math.prod(shape)) * np.dtype(dtype).itemsize


def _subjaxpr(eqn):
    if eqn.primitive.name not in _INLINED:
        return None
    for key in _SUBJAXPR_PARAMS:
        sub = eqn.params.get(key)
        if sub is not None:
            return sub
    return None


def lifetimes(closed_jaxpr, n_weights: int = 0) -> dict:
    """Activation lifetimes of a closed jaxpr, nested jaxprs inlined.

    The first ``n_weights`` inputs are weights; the jaxpr's constants (and
    those of inlined jaxprs) are counted with them. Returns ``tensors`` (a
    list of ``Tensor``), ``equations`` (the flat equation count),
    ``weights_bytes``, ``input_bytes`` and ``output_bytes``.

    A step is one equation of the flattened program. The non-weight inputs
    and the outputs live from the first step to the last.

    Args:
        closed_jaxpr: a ``jax.make_jaxpr(f)(*args)`` result.
        n_weights: how many of the jaxpr's leading inputs (flattened
            leaves) are weights rather than activations.

    Returns:
        dict: ``tensors`` (the inputs and activations, one ``Tensor`` per
        value, named after its jaxpr variable), ``equations`` (int),
        ``weights_bytes`` (weights and constants), ``input_bytes`` and
        ``output_bytes`` (ints).
    """
    from jax.extend.core import Literal

    ids: dict = {}  # jaxpr Var -> value id (an alias of an outer value when inlined)
    info: list[dict] = []  # per value id: bytes, kind, defined, last use
    step = [0]

    def new(var, kind):
        ids[var] = len(info)
        info.append({"bytes": _nbytes(var.aval), "kind": kind, "start": step[0],
                     "end": step[0], "name": str(var)})

    def use(var):
        if isinstance(var, Literal):
            return
        v = info[ids[var]]
        v["end"] = max(v["end"], step[0])

    def walk(jaxpr, consts_are_weights):
        for var in jaxpr.constvars:
            if var not in ids:
                new(var, "weight" if consts_are_weights else "const")
        for eqn in jaxpr.eqns:
            sub = _subjaxpr(eqn)
            if sub is not None:
                inner = getattr(sub, "jaxpr", sub)
                for outer, var in zip(eqn.invars, inner.invars):
                    if isinstance(outer, Literal):
                        new(var, "const")
                    else:
                        ids[var] = ids[outer]
                walk(inner, False)
                for outer, var in zip(eqn.outvars, inner.outvars):
                    if isinstance(var, Literal):
                        new(outer, "const")
                    else:
                        ids[outer] = ids[var]
                continue
            for var in eqn.invars:
                use(var)
            for var in eqn.outvars:
                new(var, "activation")
            step[0] += 1

    jaxpr = closed_jaxpr.jaxpr
    for k, var in enumerate(jaxpr.invars):
        new(var, "weight" if k < n_weights else "input")
    walk(jaxpr, True)
    last = max(step[0] - 1, 0)
    outputs = {ids[v] for v in jaxpr.outvars if not isinstance(v, Literal)}
    tensors = []
    for vid, v in enumerate(info):
        if v["kind"] == "input":
            v["start"], v["end"] = 0, last
        elif vid in outputs and v["kind"] == "activation":
            v["start"], v["end"] = 0, last  # outputs are held for the caller: live throughout
        if v["kind"] in ("input", "activation"):
            tensors.append(Tensor(v["bytes"], v["start"], v["end"], v["name"]))
    return {
        "tensors": tensors,
        "equations": step[0],
        "weights_bytes": sum(v["bytes"] for v in info if v["kind"] in ("weight", "const")),
        "input_bytes": sum(v["bytes"] for v in info if v["kind"] == "input"),
        "output_bytes": sum(info[i]["bytes"] for i in outputs),
    }


def plan(tensors: Sequence[Tensor], alignment: int = 1) -> dict:
    """No-reuse sum, greedy-by-size arena and max-live bound of ``tensors``.

    Args:
        tensors: the buffers with their inclusive lifetimes.
        alignment: byte alignment of the greedy plan's offsets.

    Returns:
        dict: ``no_reuse_bytes``, ``arena_bytes``, ``max_live_bytes`` (ints)
        and ``offsets`` (the plan of ``greedy_by_size``).
    """
    offsets = greedy_by_size(tensors, alignment)
    return {"no_reuse_bytes": no_reuse_bytes(tensors),
            "arena_bytes": arena_bytes(tensors, offsets),
            "max_live_bytes": max_live_bytes(tensors),
            "offsets": offsets}


# ---------------------------------------------------------------- per model

def trace(name: str, *, input_size: Optional[int] = None) -> dict:
    """Registered model ``name`` at batch 1, float32, random weights, traced:
    ``f(variables, x)``, ``variables``, ``x`` (the spec's input size, or
    ``input_size`` for an image model) and ``lifetimes`` of its jaxpr.

    Args:
        name: a registered model name.
        input_size: square side in pixels to trace an image model at
            (zeros instead of the random batch); ignored for sequence
            models. None: the spec's input size.

    Returns:
        dict: ``f`` (``f(variables, x) -> model.apply(variables, x)``),
        ``variables``, ``x`` (the (1, H, W, 3) float32 batch, or a sequence
        model's input) and ``lifetimes`` (see ``lifetimes``; the variables'
        leaves are the weights).
    """
    import jax

    from benchmarks.runner import prepare

    _, model, variables, x = prepare(name, batch=1)
    if input_size is not None and getattr(model, "trace_input", None) is None:
        x = jax.numpy.zeros((1, input_size, input_size, x.shape[-1]), x.dtype)

    def f(v, images):
        return model.apply(v, images)

    n_weights = len(jax.tree_util.tree_leaves(variables))
    return {"f": f, "variables": variables, "x": x,
            "lifetimes": lifetimes(jax.make_jaxpr(f)(variables, x), n_weights)}


def model_memory_plan(name: str, *, input_size: Optional[int] = None,
                      litert: bool = False, alignment: int = 1) -> dict:
    """The memory plan of registered model ``name`` at batch 1, float32, at
    the spec's input size (or ``input_size``): activation counts, the three
    plan numbers, weight bytes, XLA's ``memory_analysis`` and, with
    ``litert``, the LiteRT arena of the zoo's TFLite export (else None).

    Args:
        name: a registered model name.
        input_size: square input side for an image model; None for the
            spec's.
        litert: also export to TFLite and read LiteRT's arena (in a child
            process; slow, needs the TFLite extra). A failure there becomes
            ``litert_note``, not an error.
        alignment: byte alignment of the greedy plan.

    Returns:
        dict: ``model``, ``input_shape`` (list), ``activations`` (count),
        ``equations``, ``weights_bytes``, ``input_bytes``,
        ``output_bytes``, ``no_reuse_bytes``, ``arena_bytes``,
        ``max_live_bytes``, ``arena_over_bound`` (arena over max-live),
        ``xla_temp_bytes``, ``xla_argument_bytes``, ``xla_output_bytes``,
        ``litert_arena_bytes`` (None without ``litert`` or on failure) and
        ``litert_note``; with a LiteRT number also ``litert_tensors``.

    Example:
        ::

            from benchmarks.memory_plan import model_memory_plan
            row = model_memory_plan("mobilenet_v2")
            row["arena_bytes"] / 2**20   # MiB
    """
    import jax

    t = trace(name, input_size=input_size)
    life = dict(t["lifetimes"])
    tensors = life.pop("tensors")
    p = plan(tensors, alignment)
    p.pop("offsets")
    x = t["x"]
    out = {"model": name, "input_shape": list(x.shape), "activations": len(tensors), **life,
           **p, "arena_over_bound": p["arena_bytes"] / max(p["max_live_bytes"], 1)}
    mem = jax.jit(t["f"]).lower(t["variables"], x).compile().memory_analysis()
    out.update(xla_temp_bytes=getattr(mem, "temp_size_in_bytes", None),
               xla_argument_bytes=getattr(mem, "argument_size_in_bytes", None),
               xla_output_bytes=getattr(mem, "output_size_in_bytes", None))
    out["litert_arena_bytes"] = None
    out["litert_note"] = "not asked (--litert)"
    if litert:
        try:
            out.update(litert_arena_child(name, tuple(x.shape)))
        except Exception as e:  # noqa: BLE001 - a missing LiteRT number is a note
            out["litert_note"] = f"{type(e).__name__}: {e}"[:200]
    return out


def litert_arena(path) -> dict:
    """LiteRT's activation arena for a ``.tflite`` file, read from tensor addresses.

    The Python interpreter does not report its arena size. With the default
    delegates off (XNNPACK would take the tensors inside its partition out
    of the arena), ``allocate_tensors()`` plans the arena; every graph input
    and op output is then a numpy view into it, so the span from the lowest
    start to the highest end of those views is the part of the arena the
    graph's tensors occupy. Kernel scratch tensors (e.g. im2col buffers)
    are not listed in the tensor details, and reading them through
    ``tensor()`` crashes the interpreter, so the span is a lower bound of
    the arena without them.

    Imports ``ai_edge_litert`` (installed with the TFLite extra).

    Args:
        path: the ``.tflite`` file (str or ``Path``).

    Returns:
        dict: ``litert_arena_bytes`` (the span in bytes), ``litert_tensors``
        (how many tensors it covers) and ``litert_note`` (what was
        measured).
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=
                     OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    wanted = {int(i) for op in it._get_ops_details() for i in op["outputs"] if i >= 0}
    wanted |= {d["index"] for d in it.get_input_details()}
    spans = []
    for d in it.get_tensor_details():
        if d["index"] in wanted:
            view = it.tensor(d["index"])()
            if isinstance(view, np.ndarray) and view.nbytes:
                spans.append((view.ctypes.data, view.nbytes))
    lo = min(s for s, _ in spans)
    return {"litert_arena_bytes": max(s + n for s, n in spans) - lo,
            "litert_tensors": len(spans),
            "litert_note": "span of graph tensors in the arena, XNNPACK off; "
                           "kernel scratch not included"}


def litert_arena_child(name: str, shape: tuple, timeout: float = 900) -> dict:
    """Export ``name`` to TFLite at ``shape`` and measure ``litert_arena`` in a
    fresh process (TensorFlow stays out of this one).

    Args:
        name: a registered model name.
        shape: the input shape to export at, e.g. ``(1, 224, 224, 3)``.
        timeout: seconds before the child is killed.

    Returns:
        dict: the child's ``litert_arena`` result.

    Raises:
        RuntimeError: if the child exits with an error or prints nothing
            (the message is the last line of its stderr).
        subprocess.TimeoutExpired: if the child runs past ``timeout``.
    """
    cmd = [sys.executable, "-m", "benchmarks.memory_plan", "--litert-child", name,
           ",".join(map(str, shape))]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        tail = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
        raise RuntimeError(f"LiteRT child failed: {tail}")
    return json.loads(lines[-1])


def _litert_child(name: str, shape: str) -> int:
    import tempfile

    from conversions import tflite

    dims = tuple(int(s) for s in shape.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        path = tflite.to_tflite(name, input_shape=dims, out=Path(tmp) / "m.tflite", audit=False)
        print(json.dumps(litert_arena(path)))
    return 0


# ---------------------------------------------------------------- table and CLI

def _mib(x) -> str:
    return "-" if x is None else f"{x / 2**20:.2f}"


def markdown(rows: Sequence[dict], header: str = "") -> str:
    """All models' plans as one Markdown table (MiB; batch 1, float32).

    Args:
        rows: the rows of ``run``: ``model_memory_plan`` results, or
            failed rows with ``status`` and ``message``.
        header: Markdown put above the table ("": none).

    Returns:
        str: the table, one line per row, ending in a newline; sizes in MiB
        (2^20 bytes), ``-`` for a missing number.
    """
    lines = [header] if header else []
    lines += ["| model | input | eqns | activations | weights MiB | no reuse MiB "
              "| greedy arena MiB | max live MiB | arena / bound | XLA temp MiB "
              "| XLA args MiB | XLA out MiB | LiteRT arena MiB | status |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if r.get("status", "ok") != "ok":
            lines.append(f"| {r['model']} |" + " - |" * 12
                         + f" {r['status']}: {r.get('message', '')}".replace("|", "/")[:150]
                         + " |")
            continue
        shape = "x".join(map(str, r["input_shape"]))
        lines.append(
            f"| {r['model']} | {shape} | {r['equations']} | {r['activations']} "
            f"| {_mib(r['weights_bytes'])} | {_mib(r['no_reuse_bytes'])} "
            f"| {_mib(r['arena_bytes'])} | {_mib(r['max_live_bytes'])} "
            f"| {r['arena_over_bound']:.3f} | {_mib(r['xla_temp_bytes'])} "
            f"| {_mib(r['xla_argument_bytes'])} | {_mib(r['xla_output_bytes'])} "
            f"| {_mib(r.get('litert_arena_bytes'))} | ok |")
    return "\n".join(lines) + "\n"


def run(names: Sequence[str], *, litert: bool = False, out: Optional[str] = None,
        progress=None, command: Optional[str] = None) -> tuple[list[dict], Optional[Path]]:
    """Plans for ``names``; a model that fails is a row with its status.
    With ``out`` writes ``memory-plan-<env tag>-<date>.{json,md}`` there, its
    header naming ``command`` (default: this process's command line).

    Args:
        names: registered model names, in table order.
        litert: also measure LiteRT's arena (see ``model_memory_plan``).
        out: folder for the result files (created if missing); None writes
            nothing.
        progress: called with each row as it is done, or None.
        command: the command line to name in the Markdown header.

    Returns:
        tuple: ``(rows, path)``: the rows (failures have ``status``
        ``"error"`` and a one-line ``message``) and the Markdown file
        written, or None without ``out``.
    """
    from benchmarks import env as bench_env

    rows = []
    for name in names:
        try:
            rows.append({**model_memory_plan(name, litert=litert), "status": "ok"})
        except Exception as e:  # noqa: BLE001 - one failing model is a row, not a crash
            rows.append({"model": name, "status": "error",
                         "message": f"{type(e).__name__}: {e}".splitlines()[0][:200]})
        if progress:
            progress(rows[-1])
    if out is None:
        return rows, None
    from zoo.atomic import write_atomic

    env = bench_env.collect()
    command = command or shlex.join(env["command"])
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
    base = Path(out) / f"memory-plan-{bench_env.tag(env)}-{date}"
    header = (f"# Activation memory plan, batch 1, float32\n\n"
              f"- command: `{command}`\n"
              f"- hardware: {env['cpu']}, {env['cpu_cores']} cores, backend {env['backend']}\n"
              f"- jax {env['jax']}, jaxlib {env['jaxlib']}, flax {env['flax']}, "
              f"commit {env['git_commit']}\n- date (UTC): {env['date_utc']}\n\n"
              "Activations from the jaxpr (before XLA fusion); greedy arena = greedy by size "
              "(Pisarchyk & Lee 2020); max live = lower bound of any plan; XLA numbers from "
              "`compile().memory_analysis()`; LiteRT = span of graph tensors in the "
              "interpreter's arena with XNNPACK off.\n")
    # The tag holds dots (jax0.10.2): append suffixes, never with_suffix.
    write_atomic(f"{base}.json", json.dumps({"env": env, "rows": rows}, indent=1))
    return rows, write_atomic(f"{base}.md", markdown(rows, header))


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The command-line parser of the memory-plan table.

    Args:
        prog: the program name shown in usage lines.

    Returns:
        argparse.ArgumentParser: ``--models``, ``--litert`` and ``--out``.
    """
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="*", help="comma-separated names or globs (default all)")
    p.add_argument("--litert", action="store_true",
                   help="also export each model to TFLite and read LiteRT's arena (slow)")
    p.add_argument("--out", default=None, help="folder for memory-plan-*.{json,md}")
    return p


def main(argv: Optional[Sequence[str]] = None, prog: str = PROG) -> int:
    """The command line (also ``zoo bench --memory-plan``).

    Args:
        argv: the arguments (default: ``sys.argv[1:]``): ``--models``
            (comma-separated names or globs), ``--litert``, ``--out``.
        prog: the program name shown in usage and error lines.

    Returns:
        int: the exit status: 0, or 2 after a one-line error on bad input
        (e.g. a model name that does not exist).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--litert-child"]:
        return _litert_child(*argv[1:3])
    args = parser(prog).parse_args(argv)
    from zoo.cli import run_reporting_errors

    return run_reporting_errors(prog, _run_command, args, shlex.join([*prog.split(), *argv]))


def _run_command(args, command: str) -> int:
    from benchmarks.cli import _bench_models

    names = _bench_models(args.models)
    rows, path = run(names, litert=args.litert, out=args.out, command=command,
                     progress=lambda r: print(f"{r['model']}: {r['status']}", file=sys.stderr,
                                              flush=True))
    print(markdown(rows), end="")
    if path:
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
