"""Cost against sequence length: a sequence model measured at several lengths.

    python -m benchmarks.sequence --model talnet --lengths 128,256,512,1024,2048 --runs 20

A model that takes sequences (it declares ``trace_input``, e.g. TALNet's
(batch, steps, features)) is measured at each length with
``benchmarks.runner.measure`` at batch 1, the same way ``zoo bench``
measures a configuration: median latency and its spread (min, p90) of the
compiled forward, FLOPs from XLA's ``cost_analysis``, multiply-adds of
``zoo.counting``, XLA's argument and temp bytes from ``memory_analysis``,
and the lowering and compile times.

Then, per quantity (latency, FLOPs, multiply-adds, temp and argument bytes),
a least-squares line ``y = a + b * length`` over the lengths that ran:
``b`` is the cost of one more step, ``a`` the fixed cost (work that does not
depend on the length, such as a classifier on a fixed number of proposals),
R^2 how well a line explains the points. R^2 alone does not tell a line from
a gentle curve over a short range (``L log L`` over 128..2048 still gives
0.998; ``L^2`` gives 0.95), so each fit also reports its *curvature*: the
marginal cost per step between the last two lengths over that between the
first two. It is 1 for linear growth, 2 ... 8 for quadratic growth over
doubling lengths, below 1 when a fixed cost is being amortised. ``growth``
says "linear" when R^2 >= ``LINEAR_R2`` and the curvature lies within
``CURVATURE_BAND``, "super-linear" / "sub-linear" when the curvature lies
above / below it, and "unclear" otherwise (a low R^2, or a cost that falls
somewhere along the lengths: timing noise, not a trend).

Every row also gives the marginal cost per step from the previous length
(``marginal_ms_per_step``, ``marginal_flops_per_step``): constant down the
table when growth is linear.

Results go to ``--out`` as ``seq-<env tag>-<UTC time>.{json,csv,md}``
(``benchmarks.env`` for the tag and the environment, ``zoo.atomic`` for the
writes); ``seq-...partial.json`` keeps the rows so far while the run goes on.
Latency is noise-sensitive: run the full table on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import math
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from benchmarks.runner import FIELDS

# The program name of usage lines, and the default of ``--lengths``.
PROG = "python -m benchmarks.sequence"
DEFAULT_LENGTHS = "128,256,512,1024,2048"
LINEAR_R2 = 0.99  # at least this R^2 ...
CURVATURE_BAND = (2 / 3, 1.5)  # ... and a curvature in here: "linear"
MIN_LENGTHS = 3  # a line through two points always has R^2 = 1

#: The quantities fitted against the length: (row key, label, unit per step).
FITTED = (("p50_ms", "latency p50", "ms"), ("xla_flops", "XLA FLOPs", "FLOPs"),
          ("macs", "analytic MACs", "MACs"), ("temp_bytes", "XLA temp", "bytes"),
          ("argument_bytes", "XLA arguments", "bytes"))

#: Columns added to ``benchmarks.runner.FIELDS`` in each row.
DERIVED = ("length", "steps_per_s", "marginal_ms_per_step", "marginal_flops_per_step")

EXAMPLES = """examples:
  python -m benchmarks.sequence --model talnet --lengths 128,256,512,1024,2048 --runs 20
  python -m benchmarks.sequence --model talnet --lengths 64,128,256 --runs 2 --out /tmp/seq
  python -m benchmarks.sequence --model talnet --lengths 32,64,128 \\
      --model-options '{"hidden": 64, "streams": ["rgb"]}'   # a smaller variant

Writes seq-<env>-<time>.json (raw rows and fits), .csv and .md to --out and
prints the Markdown table. Lengths are feature steps; each must be one the
model accepts (TALNet: at least its smallest anchor scale).
"""


class LengthError(ValueError):
    """A length the model cannot take, or a length list that cannot be fitted."""


# -- input checks ---------------------------------------------------------------------


def parse_lengths(text: str) -> list[int]:
    """``"128,256,512"`` -> ``[128, 256, 512]``: positive whole numbers,
    sorted, duplicates dropped; ``LengthError`` (one line) names a bad item.

    Args:
        text: comma-separated lengths in steps; blanks around items and
            empty items are ignored.

    Returns:
        list[int]: the distinct lengths, ascending.

    Raises:
        LengthError: if an item is not a whole number or is below 1, or
            ``text`` holds no length.
    """
    lengths = []
    for item in (i.strip() for i in str(text).split(",")):
        if not item:
            continue
        try:
            value = int(item)
        except ValueError:
            raise LengthError(f"--lengths {item!r}: not a whole number of steps; give "
                              "comma-separated integers, e.g. --lengths 128,256,512") from None
        if value < 1:
            raise LengthError(f"--lengths {value}: a length is a positive number of steps, "
                              "e.g. --lengths 128,256,512")
        lengths.append(value)
    if not lengths:
        raise LengthError(f"--lengths {text!r}: give comma-separated lengths, e.g. "
                          "--lengths 128,256,512")
    return sorted(set(lengths))


def sequence_model(name: str, options: Optional[dict] = None):
    """The flax module of ``name`` built with ``options``; ``ValueError``
    (one line) when it is unknown or does not take sequences.

    Args:
        name: a registered model name.
        options: builder options for ``zoo.build`` (e.g. ``{"hidden": 64}``),
            or None for the spec's.

    Returns:
        flax.linen.Module: the unbound model; its ``trace_input`` is a
        ``jax.ShapeDtypeStruct`` of shape (batch, steps, ...).

    Raises:
        ValueError: if ``name`` is not registered, the builder rejects
            ``options``, or the model is not a sequence model.
    """
    import zoo

    try:
        zoo.get_spec(name)
    except KeyError as e:  # unknown names fail here, with suggestions
        raise ValueError(f"--model {name}: {e.args[0] if e.args else e}") from None
    try:
        model = zoo.build(name, **(options or {}))
    except (TypeError, ValueError) as e:
        raise ValueError(f"--model-options: {e}") from None
    if getattr(model, "trace_input", None) is None:
        size = zoo.get_spec(name).input_size
        raise ValueError(f"--model {name}: not a sequence model (it takes {size}x{size} "
                         "images and declares no trace_input); sequence models: "
                         f"{', '.join(sequence_models()) or 'none'}")
    return model


def sequence_models() -> list[str]:
    """Registered models that declare a sequence ``trace_input``.

    Builds every registered model (without variables) to ask.

    Returns:
        list[str]: their names, in ``zoo.list_models`` order (sorted).
    """
    import zoo

    return [n for n in zoo.list_models()
            if getattr(zoo.build(n), "trace_input", None) is not None]


def check_lengths(model, lengths: Sequence[int]) -> None:
    """Trace ``model``'s forward at every length (shapes only, nothing runs)
    so a length it rejects (TALNet: shorter than its smallest anchor; or one
    that breaks a shape rule) fails now, in one line naming the length,
    instead of after the lengths before it were measured.

    Args:
        model: a sequence model (see ``sequence_model``).
        lengths: the lengths in steps to try, at batch 1.

    Raises:
        LengthError: for the first length whose trace raises ``ValueError``
            or ``TypeError``, with that error's first line.
    """
    import jax

    from zoo.registry import variables_template

    template = variables_template(model)
    sequence = model.trace_input
    for length in lengths:
        x = jax.ShapeDtypeStruct((1, int(length)) + tuple(sequence.shape[2:]), sequence.dtype)
        try:
            jax.eval_shape(model.apply, template, x)
        except (ValueError, TypeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise LengthError(f"--lengths {length}: {first}") from None


# -- fitting ---------------------------------------------------------------------------


def fit_line(x: Sequence[float], y: Sequence[float]) -> dict:
    """Least-squares ``y = intercept + slope * x``, with R^2, the curvature
    (last over first marginal slope, see the module docstring) and a
    ``growth`` verdict. R^2, curvature and growth are None below
    ``MIN_LENGTHS`` points (a line through two points always fits).

    ``growth`` is ``"constant"`` (with R^2 = 1) when all y are equal,
    ``"unclear"`` when the fit or an end segment does not rise, else
    ``"super-linear"`` / ``"sub-linear"`` for a curvature above / below
    ``CURVATURE_BAND``, else ``"linear"`` when R^2 >= ``LINEAR_R2`` and
    ``"unclear"`` below. The curvature needs x in ascending order.

    Args:
        x: the lengths (or any abscissae), at least two distinct values.
        y: the measured quantity at each x, same count.

    Returns:
        dict: ``slope``, ``intercept``, ``points`` (count), ``r2``,
        ``curvature`` (None when the first segment does not rise) and
        ``growth``.

    Raises:
        ValueError: if ``x`` and ``y`` differ in length, have fewer than
            two points, or all x are equal.

    Example:
        ::

            from benchmarks.sequence import fit_line
            fit_line([1, 2, 3, 4], [3, 5, 7, 9])   # slope 2.0, intercept 1.0, r2 1.0, "linear"
    """
    n = len(x)
    if n != len(y) or n < 2:
        raise ValueError(f"fit_line: need two or more (x, y) pairs of equal count, got "
                         f"{len(x)} x and {len(y)} y")
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    if len(set(x)) < 2:
        raise ValueError("fit_line: all x are equal; give distinct lengths")
    slope, intercept = (float(v) for v in np.polyfit(x, y, 1))
    out = {"slope": slope, "intercept": intercept, "points": n, "r2": None,
           "curvature": None, "growth": None}
    if n < MIN_LENGTHS:
        return out
    my = sum(y) / n
    ss_tot = sum((b - my) ** 2 for b in y)
    ss_res = sum((b - intercept - slope * a) ** 2 for a, b in zip(x, y))
    if ss_tot == 0:
        out.update(r2=1.0, curvature=None, growth="constant")
        return out
    out["r2"] = 1.0 - ss_res / ss_tot
    first = (y[1] - y[0]) / (x[1] - x[0])
    last = (y[-1] - y[-2]) / (x[-1] - x[-2])
    out["curvature"] = c = last / first if first > 0 else None
    if c is None or slope <= 0 or last <= 0:
        out["growth"] = "unclear"  # cost falling with length: noise, not a trend
    elif c > CURVATURE_BAND[1]:
        out["growth"] = "super-linear"
    elif c < CURVATURE_BAND[0]:
        out["growth"] = "sub-linear"
    else:
        out["growth"] = "linear" if out["r2"] >= LINEAR_R2 else "unclear"
    return out


def fits(rows: list[dict]) -> dict[str, dict]:
    """``fit_line`` of each quantity of ``FITTED`` against the length, over
    the rows that ran and have it; quantities with fewer than two points
    are left out.

    Args:
        rows: rows of ``measure_lengths`` (each with ``length`` and
            ``status``).

    Returns:
        dict[str, dict]: row key of ``FITTED`` (``"p50_ms"``, ...) ->
        ``fit_line`` result.
    """
    out = {}
    for key, _, _ in FITTED:
        pts = [(r["length"], r[key]) for r in rows if r["status"] == "ok" and r.get(key) is not None]
        if len({p[0] for p in pts}) >= 2:
            out[key] = fit_line([p[0] for p in pts], [p[1] for p in pts])
    return out


def _add_derived(rows: list[dict]) -> None:
    prev = None
    for r in rows:
        r["steps_per_s"] = (r["batch"] * r["length"] / (r["p50_ms"] / 1e3)
                            if r.get("p50_ms") else None)
        r["marginal_ms_per_step"] = r["marginal_flops_per_step"] = None
        if r["status"] != "ok":
            continue
        if prev is not None:
            dl = r["length"] - prev["length"]
            r["marginal_ms_per_step"] = (r["p50_ms"] - prev["p50_ms"]) / dl
            if r.get("xla_flops") is not None and prev.get("xla_flops") is not None:
                r["marginal_flops_per_step"] = (r["xla_flops"] - prev["xla_flops"]) / dl
        prev = r


# -- measuring -------------------------------------------------------------------------


def measure_lengths(name: str, lengths: Sequence[int], *, runs: int = 20, warmup: int = 3,
                    dtype: str = "float32", options: Optional[dict] = None,
                    time_budget: Optional[float] = None,
                    after_each: Callable[[list], None] = lambda rows: None) -> list[dict]:
    """One ``benchmarks.runner.measure`` row per length (batch 1, ascending),
    with ``DERIVED``'s columns; a length that fails is a row with its status,
    and the others go on. ``after_each(rows)`` runs after every length
    (progress, partial files). Lengths are checked first (``check_lengths``).

    Args:
        name: a registered sequence model (e.g. ``"talnet"``).
        lengths: sequence lengths in steps; sorted and de-duplicated here.
        runs: timed calls per length.
        warmup: untimed calls before timing.
        dtype: compute dtype, ``"float32"`` or ``"bfloat16"``.
        options: builder options for the model, or None.
        time_budget: seconds per length; past it the row's ``status`` is
            "timeout". None: no budget.
        after_each: called with the list of rows so far after each length.

    Returns:
        list[dict]: one row per length, ascending: the keys of
        ``benchmarks.runner.FIELDS`` plus ``DERIVED``'s (marginal costs are
        from the previous successful length, None for the first).

    Raises:
        ValueError: if ``name`` is not a sequence model or ``options`` are
            rejected (from ``sequence_model``).
        LengthError: if the model rejects a length (from
            ``check_lengths``).

    Example:
        ::

            from benchmarks.sequence import fits, measure_lengths
            rows = measure_lengths("talnet", [64, 128, 256], runs=3, warmup=1)
            fits(rows)["p50_ms"]["growth"]
    """
    from benchmarks.runner import measure

    lengths = sorted(set(int(v) for v in lengths))
    check_lengths(sequence_model(name, options), lengths)
    rows: list[dict] = []
    for length in lengths:
        r = measure(name, batch=1, dtype=dtype, runs=runs, warmup=warmup,
                    time_budget=time_budget, length=length, options=options)
        r["length"] = length
        rows.append(r)
        _add_derived(rows)
        after_each(rows)
    return rows


# -- files -----------------------------------------------------------------------------


def _g(v, fmt: str = ".4g", scale: float = 1.0) -> str:
    return "-" if v is None else format(v / scale, fmt)


def markdown(rows: list[dict], fitted: dict, env: Optional[dict] = None,
             options: Optional[dict] = None) -> str:
    """The rows and the fits as Markdown, the environment on top.

    Args:
        rows: rows of ``measure_lengths``.
        fitted: the result of ``fits(rows)``.
        env: an environment record (``benchmarks.env.collect``) for the
            header, or None.
        options: the builder options, named in the header when given.

    Returns:
        str: a heading, the table of lengths, the table of fits and notes,
        ending in a newline.
    """
    from benchmarks.report import env_lines

    name = rows[0]["model"] if rows else "?"
    head = [f"## {name}: cost against sequence length (batch 1, "
            f"{rows[0]['dtype'] if rows else 'float32'})"]
    if options:
        head.append(f"\nbuilder options: `{json.dumps(options, sort_keys=True)}`")
    if env:
        head += env_lines(env)
    lines = head + ["", "| length | p50 ms | min ms | p90 ms | steps/s | XLA GFLOPs | MACs (M) "
                        "| XLA/analytic | temp MiB | argument MiB | compile s "
                        "| marginal ms/step | marginal FLOPs/step | status |",
                    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['message']}"
        lines.append(
            f"| {r['length']} | {_g(r.get('p50_ms'), '.2f')} | {_g(r.get('min_ms'), '.2f')} "
            f"| {_g(r.get('p90_ms'), '.2f')} | {_g(r.get('steps_per_s'), ',.0f')} "
            f"| {_g(r.get('xla_flops'), '.4g', 1e9)} | {_g(r.get('macs'), '.4g', 1e6)} "
            f"| {_g(r.get('flops_ratio'), '.3f')} | {_g(r.get('temp_bytes'), '.2f', 2**20)} "
            f"| {_g(r.get('argument_bytes'), '.2f', 2**20)} | {_g(r.get('compile_s'), '.2f')} "
            f"| {_g(r.get('marginal_ms_per_step'))} | {_g(r.get('marginal_flops_per_step'))} "
            f"| {status.replace('|', '/')[:120]} |")
    lines += ["", "Least-squares line y = a + b x length over the lengths that ran:", "",
              "| quantity | b: per step | a: fixed | R^2 | curvature | growth |",
              "|---|---:|---:|---:|---:|---|"]
    for key, label, unit in FITTED:
        f = fitted.get(key)
        if f is None:
            continue
        lines.append(f"| {label} | {_g(f['slope'])} {unit} | {_g(f['intercept'])} {unit} "
                     f"| {_g(f['r2'], '.4f')} | {_g(f['curvature'], '.2f')} "
                     f"| {f['growth'] or '-'} |")
    lines += ["", "p50/min/p90: of the timed calls of the compiled forward at each length. "
                  "marginal: cost of one more step since the previous length (constant down "
                  "the column when growth is linear). XLA/analytic: cost_analysis flops / "
                  "(2 x zoo.counting multiply-adds). curvature: last marginal slope over the "
                  f"first (1 = linear; quadratic growth over doubling lengths gives 2-8); "
                  f"growth is 'linear' when R^2 >= {LINEAR_R2} and the curvature lies in "
                  f"[{CURVATURE_BAND[0]:.2f}, {CURVATURE_BAND[1]:.2f}], 'unclear' with a "
                  "lower R^2 or a cost that falls somewhere (timing noise: rerun on a quiet "
                  "machine; see benchmarks/sequence.py)."]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    """One line per length: ``DERIVED``'s columns, then ``benchmarks.runner.FIELDS``.

    Args:
        rows: rows of ``measure_lengths``.

    Returns:
        str: CSV text with a header line; None values are empty cells.
    """
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=DERIVED + FIELDS, extrasaction="ignore",
                       lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def write(rows: list[dict], env: dict, out_dir, *, stamp: Optional[str] = None,
          options: Optional[dict] = None) -> dict[str, Path]:
    """JSON (env, options, rows, fits), CSV and Markdown in ``out_dir``,
    each written atomically; returns {"json"|"csv"|"md": path}.

    The files are ``seq-<env tag>-<stamp>.{json,csv,md}``; the folder is
    created if missing.

    Args:
        rows: rows of ``measure_lengths``.
        env: the environment record (``benchmarks.env.collect``).
        out_dir: the output folder (str or ``Path``).
        stamp: the UTC time part of the names (default: now,
            ``YYYYMMDDTHHMMSSZ``).
        options: the builder options, recorded in the JSON and Markdown.

    Returns:
        dict[str, Path]: the written files by kind.
    """
    from benchmarks.report import _base_name
    from zoo.atomic import write_atomic

    out = Path(out_dir)
    stamp = stamp or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = _base_name(env, stamp, prefix="seq")
    fitted = fits(rows)
    doc = {"env": env, "command": env.get("command"), "options": options or {},
           "results": rows, "fits": fitted}
    return {"json": write_atomic(out / f"{base}.json", json.dumps(doc, indent=1) + "\n"),
            "csv": write_atomic(out / f"{base}.csv", to_csv(rows)),
            "md": write_atomic(out / f"{base}.md", markdown(rows, fitted, env, options))}


# -- command line ----------------------------------------------------------------------


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The command-line parser of the sequence-length table.

    Args:
        prog: the program name shown in usage lines.

    Returns:
        argparse.ArgumentParser: options ``--model`` (alias ``--models``),
        ``--lengths``, ``--runs``, ``--warmup``, ``--dtype``,
        ``--model-options``, ``--time-budget`` and ``--out``.
    """
    p = argparse.ArgumentParser(
        prog=prog, description="Latency, FLOPs and memory of a sequence model at several "
                               "sequence lengths, with a linear fit of each against the length.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--model", "--models", dest="model", default="talnet",
      help="a sequence model of the registry (default talnet); --models is the same, as "
           "in zoo bench")
    a("--lengths", default=DEFAULT_LENGTHS,
      help=f"comma-separated sequence lengths in steps, {MIN_LENGTHS} or more "
           f"(default {DEFAULT_LENGTHS})")
    a("--runs", type=int, default=20, help="timed calls per length (20)")
    a("--warmup", type=int, default=3, help="untimed calls before timing (3)")
    a("--dtype", default="float32", choices=("float32", "bfloat16"),
      help="compute dtype (default float32)")
    a("--model-options", metavar="JSON",
      help="builder options as a JSON object, e.g. '{\"hidden\": 64}' (default: the spec's)")
    a("--time-budget", type=float, default=None, metavar="SECONDS",
      help="per length; past it the row says timeout (default: none)")
    a("--out", default="results", help="folder for the result files (results/)")
    return p


def check(args) -> tuple[list[int], dict]:
    """(lengths, builder options) from the options, or ``ValueError`` with
    one line naming what is wrong (``measure_lengths`` then checks the
    lengths against the model).

    Args:
        args: the ``argparse.Namespace`` of ``parser()``.

    Returns:
        tuple: ``(lengths, options)``: the sorted distinct lengths and the
        builder options (a dict, empty for none).

    Raises:
        ValueError: if ``--runs`` < 1 or ``--warmup`` < 0, the model options
            are not a JSON object or are rejected, or the model is not a
            sequence model.
        LengthError: if a length is bad, or fewer than ``MIN_LENGTHS``
            distinct lengths are given.
    """
    from zoo.train.config import model_options

    if args.runs < 1 or args.warmup < 0:
        raise ValueError(f"bad values: --runs {args.runs} (at least 1), --warmup "
                         f"{args.warmup} (at least 0)")
    lengths = parse_lengths(args.lengths)
    if len(lengths) < MIN_LENGTHS:
        raise LengthError(f"--lengths {args.lengths}: give {MIN_LENGTHS} or more distinct "
                          "lengths (a line through two points says nothing about linearity)")
    options = model_options(args.model_options)
    sequence_model(args.model, options)
    return lengths, options


def run(args, command: Optional[list[str]] = None) -> int:
    """Measure every length, write the files, print the table. ``command``
    is recorded as the command line (default: ``sys.argv``).

    Progress goes to stderr, one line per length; the rows so far are kept
    in ``seq-...partial.json`` in ``--out`` until the final files are
    written.

    Args:
        args: the ``argparse.Namespace`` of ``parser()``.
        command: the command line to record, as a list of str.

    Returns:
        int: the exit status, 0.
    """
    from benchmarks import env as bench_env
    from benchmarks import report

    lengths, options = check(args)
    env = bench_env.collect(command)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    partial = report.partial_path(args.out, env, stamp, prefix="seq")

    def after_each(rows: list) -> None:
        r = rows[-1]
        said = (f"p50 {r['p50_ms']:.2f} ms, {r['xla_flops'] or math.nan:.4g} FLOPs"
                if r["status"] == "ok" else f"{r['status']}: {r['message']}")
        print(f"[{len(rows)}/{len(lengths)}] {args.model} length {r['length']}: {said}",
              file=sys.stderr, flush=True)
        report.write_partial(rows, env, partial)

    rows = measure_lengths(args.model, lengths, runs=args.runs, warmup=args.warmup,
                           dtype=args.dtype, options=options, time_budget=args.time_budget,
                           after_each=after_each)
    paths = write(rows, env, args.out, stamp=stamp, options=options)
    partial.unlink(missing_ok=True)
    print(paths["md"].read_text(), end="")
    for path in paths.values():
        print(f"wrote {path}", file=sys.stderr)
    return 0


def main(argv=None, prog: str = PROG) -> int:
    """``python -m benchmarks.sequence [options]``. Bad input: one line on
    stderr, exit status 2.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``); see ``parser``.
        prog: the program name shown in usage and error lines.

    Returns:
        int: the exit status: 0, or 2 after a one-line error.

    Example:
        ::

            from benchmarks.sequence import main
            main(["--model", "talnet", "--lengths", "64,128,256", "--runs", "2",
                  "--out", "/tmp/seq"])
    """
    from zoo.cli import run_reporting_errors

    args = parser(prog).parse_args(argv)
    if argv is None:
        command = list(sys.argv)
        if command and command[0].endswith(str(Path("benchmarks", "sequence.py"))):
            command[0:1] = [sys.executable, "-m", "benchmarks.sequence"]  # runnable again
    else:  # called from Python: record the equivalent command line
        command = [sys.executable, "-m", "benchmarks.sequence"] + list(argv)
    return run_reporting_errors(prog, run, args, command)


if __name__ == "__main__":
    sys.exit(main())
