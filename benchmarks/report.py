"""Result files: raw JSON, CSV and a Markdown table; and ``compare`` of two runs.

``write`` puts three files in an output folder, named
``bench-<env tag>-<UTC timestamp>.{json,csv,md}`` so results from different
machines and library versions never overwrite each other:

- JSON (raw): ``{"env": ..., "roofline": ..., "results": [every result of
  every repeat], "summary": [one row per configuration]}``;
- CSV: every result, one row each, columns ``benchmarks.runner.FIELDS`` plus
  ``repeat``;
- Markdown: the summary table, then the environment.

With ``--repeat K`` each configuration was measured K times; its summary row
is the repeat with the median p50, plus ``p50_min``/``p50_max`` and
``p50_spread = (max - min) / min`` across repeats: the run-to-run spread that
says how far apart two tables must be before a difference means something.

Each file is written to a temporary name in the same folder and renamed, so a
reader never sees half a file.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import statistics
import sys
from pathlib import Path
from typing import Optional

from benchmarks.runner import FIELDS
from zoo.atomic import write_atomic  # noqa: F401  (also used by callers as report.write_atomic)

# The fields that name a configuration: its repeats are summarised, and
# ``compare`` matches rows, on these.
KEY = ("model", "batch", "dtype", "devices", "implementation")


def _key(r: dict) -> tuple:
    return tuple(r.get(k) for k in KEY)


def summarize(results: list[dict]) -> list[dict]:
    """One row per configuration (first-seen order) over its repeats.

    A configuration is the values of ``KEY``. Its row is a copy of the
    successful repeat with the median p50 (the lower median for an even
    count), or of the first repeat when none succeeded.

    Args:
        results: results of ``benchmarks.runner.measure``, each with
            ``status`` and ``p50_ms`` and, from ``zoo bench``, ``repeat``.

    Returns:
        list[dict]: the rows, without ``repeat`` and with ``p50_min``,
        ``p50_max``, ``p50_spread`` (``(max - min) / min``; None when no
        repeat succeeded or the minimum is 0), ``repeats`` and
        ``repeats_ok``.
    """
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault(_key(r), []).append(r)
    rows = []
    for rs in groups.values():
        ok = [r for r in rs if r["status"] == "ok"]
        if ok:
            p50s = sorted(r["p50_ms"] for r in ok)
            median = statistics.median_low(p50s)
            row = dict(next(r for r in ok if r["p50_ms"] == median))
            row.update(p50_min=p50s[0], p50_max=p50s[-1],
                       p50_spread=(p50s[-1] - p50s[0]) / p50s[0] if p50s[0] else None)
        else:
            row = dict(rs[0])
            row.update(p50_min=None, p50_max=None, p50_spread=None)
        row["repeats"] = len(rs)
        row["repeats_ok"] = len(ok)
        row.pop("repeat", None)
        rows.append(row)
    return rows


def _f(v, fmt: str, scale: float = 1.0) -> str:
    return "-" if v is None else format(v / scale, fmt)


def markdown(summary: list[dict], env: Optional[dict] = None) -> str:
    """The summary as a Markdown table (``!`` marks a flagged FLOP ratio).

    One row per configuration, with one more column per peer found in any
    row; notes on the columns follow the table.

    Args:
        summary: rows of ``summarize``.
        env: an environment record (``benchmarks.env.collect``) to add as a
            footer (``env_lines``), or None for none.

    Returns:
        str: the Markdown text, ending in a newline.
    """
    lines = ["| model | batch | dtype | p50 ms | p90 ms | p50 spread | images/s | MACs (M) "
             "| XLA/analytic | compile s | temp MiB | roofline | status |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in summary:
        ratio = _f(r.get("flops_ratio"), ".3f") + (" !" if r.get("flops_flag") else "")
        spread = _f(r.get("p50_spread"), ".1%") if r.get("repeats", 1) > 1 else "-"
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['message']}"
        status = status.replace("|", "/")[:120]
        batch = f"{r['batch']}" + (f" ({r['devices']} dev)" if (r.get("devices") or 1) > 1 else "")
        lines.append(
            f"| {r['model']} | {batch} | {r['dtype']} | {_f(r.get('p50_ms'), '.2f')} "
            f"| {_f(r.get('p90_ms'), '.2f')} | {spread} | {_f(r.get('throughput_ips'), '.1f')} "
            f"| {_f(r.get('macs'), ',.0f', 1e6)} | {ratio} | {_f(r.get('compile_s'), '.2f')} "
            f"| {_f(r.get('temp_bytes'), '.1f', 2**20)} | {_f(r.get('roofline_fraction'), '.1%')} "
            f"| {status} |")
    peers = sorted({q for r in summary for q in (r.get("peers") or {})})
    if peers:
        lines[0] += " " + " | ".join(f"{q} p50 ms (x zoo)" for q in peers) + " |"
        lines[1] += "---:|" * len(peers)
        for i, r in enumerate(summary, start=2):
            cells = []
            for q in peers:
                m = (r.get("peers") or {}).get(q)
                if m is None:
                    cells.append("-")
                elif m["status"] != "ok":
                    cells.append(f"{m['status']}: {m['message']}".replace("|", "/")[:80])
                else:
                    cells.append(f"{m['p50_ms']:.2f} ({_f(m.get('ratio'), '.2f')}x)")
            lines[i] += " " + " | ".join(cells) + " |"
    lines += ["", "XLA/analytic: `cost_analysis` flops / (2 x analytic multiply-adds); `!` marks "
              "a difference over 10 % (check both counts). roofline: achieved FLOP/s "
              "(2 x MACs / p50) over a float32 matmul's FLOP/s measured in the same run."]
    if peers:
        lines += ["", "Peers: the same architecture with random weights on the same batch, "
                      "float32, timed the same way; (x zoo) = peer p50 / zoo p50, above 1 the "
                      "zoo is faster (see benchmarks/peers.py)."]
    if env:
        lines += env_lines(env)
    return "\n".join(lines) + "\n"


def env_lines(env: dict) -> list[str]:
    """The environment footer of a Markdown table: versions, device, CPU,
    XLA flags, commit, date, and the exact command.

    Args:
        env: an environment record (``benchmarks.env.collect``); missing
            keys print as None.

    Returns:
        list[str]: Markdown lines, a blank line before each paragraph.
    """
    return ["", f"jax {env.get('jax')}, jaxlib {env.get('jaxlib')}, flax {env.get('flax')}; "
                f"{env.get('backend')} ({env.get('device_kind')} x{env.get('device_count')}); "
                f"CPU {env.get('cpu')}, {env.get('cpu_cores')} cores; "
                f"XLA_FLAGS={env.get('xla_flags') or '(none)'}; "
                f"git {env.get('git_commit')}; {env.get('date_utc')}",
            "", f"command: `{' '.join(env.get('command') or [])}`"]


def to_csv(results: list[dict]) -> str:
    """One row per result; each peer adds ``<peer>_p50_ms``, ``<peer>_ratio``
    and ``<peer>_status`` columns.

    Args:
        results: results of ``benchmarks.runner.measure``; keys outside
            ``repeat``, ``benchmarks.runner.FIELDS`` and the peer columns
            are left out.

    Returns:
        str: CSV text with a header line; None values are empty cells.
    """
    peers = sorted({q for r in results for q in (r.get("peers") or {})})
    peer_cols = tuple(f"{q}_{k}" for q in peers for k in ("p50_ms", "ratio", "status"))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=("repeat",) + FIELDS + peer_cols, extrasaction="ignore",
                       lineterminator="\n")
    w.writeheader()
    for r in results:
        row = dict(r)
        for q, m in (r.get("peers") or {}).items():
            row.update({f"{q}_{k}": m.get(k) for k in ("p50_ms", "ratio", "status")})
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def write(results: list[dict], env: dict, out_dir, *, roof: Optional[dict] = None,
          stamp: Optional[str] = None) -> dict[str, Path]:
    """Write JSON, CSV and Markdown to ``out_dir``, and the latency plot (PNG)
    when matplotlib is installed; returns {"json"|"csv"|"md"|"png": path}.

    The files are ``bench-<env tag>-<stamp>.{json,csv,md,png}``; the
    folder is created if missing. Why there is no plot is printed to
    stderr.

    Args:
        results: every result of the run (all repeats).
        env: the environment record (``benchmarks.env.collect``).
        out_dir: the output folder (str or ``Path``).
        roof: the run's ``benchmarks.runner.roofline`` result, stored in the
            JSON, or None.
        stamp: the UTC time part of the names (default: now,
            ``YYYYMMDDTHHMMSSZ``).

    Returns:
        dict[str, Path]: the written files by kind.

    Example:
        ::

            from benchmarks import env, report
            from benchmarks.runner import measure
            report.write([measure("mobilenet_v2", batch=1, runs=5)], env.collect(), "results")
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = stamp or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = _base_name(env, stamp)
    summary = summarize(results)
    doc = {"env": env, "command": env.get("command"), "roofline": roof, "results": results,
           "summary": summary}
    paths = {
        "json": write_atomic(out / f"{base}.json", json.dumps(doc, indent=1) + "\n"),
        "csv": write_atomic(out / f"{base}.csv", to_csv(results)),
        "md": write_atomic(out / f"{base}.md", markdown(summary, env)),
    }
    from benchmarks.plot import plot
    try:
        paths["png"] = plot(summary, out / f"{base}.png")
    except (RuntimeError, ValueError) as e:  # no matplotlib, or nothing to plot
        print(f"no plot: {e}", file=sys.stderr)
    return paths


def _base_name(env: dict, stamp: str, prefix: str = "bench") -> str:
    """``<prefix>-<env tag>-<UTC time>``: the result files' name before the
    suffix (not Path.with_suffix: the tag has dots). ``bench`` for the
    latency suite, ``train`` for the training-speed table."""
    from benchmarks.env import tag
    return f"{prefix}-{tag(env)}-{stamp}"


def partial_path(out_dir, env: dict, stamp: str, prefix: str = "bench") -> Path:
    """Where a run keeps its results so far (rewritten after each
    configuration, removed once the full files are written), so a run cut
    short by a crash or Ctrl-C loses at most the configuration under way.

    Args:
        out_dir: the output folder (str or ``Path``).
        env: the environment record (for its ``benchmarks.env.tag``).
        stamp: the UTC time part of the name, the same as the final files'.
        prefix: ``"bench"`` for the latency suite, ``"train"`` for the
            training-speed table.

    Returns:
        Path: ``<out_dir>/<prefix>-<env tag>-<stamp>.partial.json``.
    """
    return Path(out_dir) / f"{_base_name(env, stamp, prefix)}.partial.json"


def write_partial(results: list[dict], env: dict, path: Path) -> Path:
    """Write the results so far to ``path`` atomically (its folder is created).

    Args:
        results: the results measured so far.
        env: the environment record.
        path: the file, from ``partial_path``.

    Returns:
        Path: ``path``; the JSON holds ``env``, ``command``,
        ``"partial": true`` and ``results``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"env": env, "command": env.get("command"), "partial": True, "results": results}
    return write_atomic(path, json.dumps(doc, indent=1) + "\n")


def progress_line(done: int, total: int, r: dict) -> str:
    """One line per finished configuration, for logs (no TTY, no bar).

    Args:
        done: configurations finished, this one included.
        total: configurations in the run.
        r: the result of this configuration (``benchmarks.runner.measure``,
            with ``peers`` when peers ran).

    Returns:
        str: e.g. ``[3/8] mobilenet_v2 b1 float32: p50 4.21 ms; peer/zoo:
        torch 2.10x``, or the status for a failed configuration.
    """
    head = f"[{done}/{total}] {r['model']} b{r['batch']} {r['dtype']}: "
    if r.get("status") != "ok":
        return head + f"{r.get('status')} {r.get('error', '')}".strip()
    peers = ", ".join(f"{q} {p['ratio']:.2f}x" if p.get("ratio") else f"{q} {p.get('status')}"
                      for q, p in (r.get("peers") or {}).items())
    return head + f"p50 {r['p50_ms']:.2f} ms" + (f"; peer/zoo: {peers}" if peers else "")


def _load_summary(path) -> dict[tuple, dict]:
    doc = json.loads(Path(path).read_text())
    rows = doc.get("summary") or summarize(doc["results"])
    return {_key(r): r for r in rows}


def compare(a_json, b_json) -> str:
    """Markdown: p50 of each configuration in A and B and the ratio B/A
    (below 1: B is faster). Configurations in only one file, or failed in
    either, are listed with their status.

    Rows are matched on ``KEY``; a file without a ``summary`` (a partial
    one) is summarised from its ``results``.

    Args:
        a_json: the first result file (str or ``Path``), A.
        b_json: the second, B.

    Returns:
        str: the file names and a Markdown table, ending in a newline.

    Example:
        ::

            from benchmarks.report import compare
            print(compare("results/bench-A.json", "results/bench-B.json"))
    """
    a, b = _load_summary(a_json), _load_summary(b_json)
    lines = [f"A: {a_json}", f"B: {b_json}", "",
             "| model | batch | dtype | A p50 ms | B p50 ms | B/A |",
             "|---|---:|---|---:|---:|---:|"]
    for k in list(a) + [k for k in b if k not in a]:
        ra, rb = a.get(k), b.get(k)
        ref = ra or rb

        def cell(r):
            if r is None:
                return "absent"
            return _f(r.get("p50_ms"), ".2f") if r["status"] == "ok" else r["status"]

        ok = ra and rb and ra["status"] == rb["status"] == "ok"
        ratio = f"{rb['p50_ms'] / ra['p50_ms']:.2f}" if ok else "-"
        lines.append(f"| {ref['model']} | {ref['batch']} | {ref['dtype']} | {cell(ra)} "
                     f"| {cell(rb)} | {ratio} |")
    return "\n".join(lines) + "\n"
