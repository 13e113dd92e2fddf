"""The committed measurement tables, rendered at build time.

``benchmarks/results/`` holds one ``<kind>-<env>-<UTC time>.{json,md,csv}``
set per run (``bench``: inference, ``seq``: cost against sequence length,
``train``: training speed), ``conversions/results/`` one
``conversions-<env>-<time>.{json,md}`` per conversion-table run. For each
kind and backend the pages show the newest run of every model: runs are
taken newest first, and a run is shown with the rows of the models no newer
run of that backend measured. Its Markdown (written by the suite itself) is
copied as it is, headings turned into bold lines, with its plot when the
run drew one. Conversion tables are rendered from their JSON by
``conversions.table.markdown``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from catalogue import GENERATED, write_if_changed

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "results"
CONVERSIONS = ROOT / "conversions" / "results"
KINDS = {"bench": "Inference", "seq": "Cost against sequence length", "train": "Training speed"}


def _demote_headings(markdown: str) -> str:
    return re.sub(r"^#+ (.*)$", r"**\1**", markdown, flags=re.M)


def newest_runs(kind: str) -> list[tuple[Path, dict, set[str]]]:
    """(json path, its data, the models it is newest for) per backend, newest first."""
    runs = []
    for path in BENCH.glob(f"{kind}-*.json"):
        data = json.loads(path.read_text())
        runs.append((data["env"]["date_utc"], path, data))
    runs.sort(key=lambda r: r[0], reverse=True)
    shown: dict[str, set[str]] = {}
    out = []
    for _, path, data in runs:
        backend = data["env"]["backend"]
        models = {r["model"] for r in data["results"]} - shown.setdefault(backend, set())
        if models:
            shown[backend] |= models
            out.append((path, data, models))
    return out


def _models(models: set[str]) -> str:
    return ", ".join(sorted(models)) if len(models) <= 4 else f"{len(models)} models"


def bench_markdown() -> str:
    """Every kind's newest runs, each with its environment line, command and plot."""
    parts = []
    for kind, title in KINDS.items():
        runs = newest_runs(kind)
        if not runs:
            continue
        parts.append(f"## {title}\n")
        for path, data, models in runs:
            env = data["env"]
            parts.append(f"### {env['backend'].upper()}, {env.get('cpu') or env['device_kind']}, "
                         f"{env['date_utc'][:10]}: {_models(models)}\n")
            parts.append(f"`benchmarks/results/{path.stem}.md`\n")
            parts.append(_demote_headings(path.with_suffix(".md").read_text()).rstrip() + "\n")
            png = path.with_suffix(".png")
            if png.exists():
                shutil.copyfile(png, GENERATED / png.name)
                parts.append(f"![{kind} plot of {path.stem}](_generated/{png.name})\n")
    return "\n".join(parts)


def conversion_runs() -> list[tuple[Path, dict, list[dict]]]:
    """(json path, data, rows of models no newer run converted), newest first."""
    runs = []
    for path in CONVERSIONS.glob("conversions-*.json"):
        if "partial" in path.name:
            continue
        runs.append((path, json.loads(path.read_text())))
    # The file name's UTC time orders runs; env["date"] is only the day.
    runs.sort(key=lambda r: r[0].stem.rsplit("-", 1)[1], reverse=True)
    seen: set[str] = set()
    out = []
    for path, data in runs:
        rows = [r for r in data["rows"] if r["model"] not in seen]
        if rows:
            seen |= {r["model"] for r in rows}
            out.append((path, data, rows))
    return out


def conversions_markdown() -> str:
    from conversions.table import markdown

    parts = []
    for path, data, rows in conversion_runs():
        models = sorted({r["model"] for r in rows})
        parts.append(f"### {data['env']['date']}: {_models(set(models))}\n")
        parts.append(f"`conversions/results/{path.stem}.json`\n")
        parts.append(markdown(rows, data["env"]))
    return "\n".join(parts)


def generate(app) -> None:
    GENERATED.mkdir(parents=True, exist_ok=True)
    write_if_changed(GENERATED / "benchmarks.md", bench_markdown())
    write_if_changed(GENERATED / "conversions.md", conversions_markdown())


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
