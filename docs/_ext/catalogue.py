"""The model catalogue, generated from the registry at build time.

Two Markdown tables are written to ``docs/_generated/`` when the builder
starts and pulled into ``catalogue.md`` with ``{include}``: every registered
model with its task, counts, input size, published top-1 and weight sources,
and our parameter and multiply-add counts beside the published ones. The
counts come from ``zoo.counting.analytic_counts`` (an abstract trace, no
FLOPs run), the same function ``zoo list`` and ``zoo info`` use.
"""

from __future__ import annotations

import functools
from pathlib import Path

GENERATED = Path(__file__).resolve().parent.parent / "_generated"


def cell(text) -> str:
    """A Markdown table cell: pipes escaped, newlines flattened."""
    return str(text).replace("|", "\\|").replace("\n", " ")


@functools.cache
def rows() -> tuple[dict, ...]:
    """One dict per registered model: spec, counts and what the input size means.
    Cached: counting every model takes tens of seconds, once per process."""
    from zoo.counting import analytic_counts
    from zoo.registry import build, get_spec, list_models

    out = []
    for name in list_models():
        spec = get_spec(name)
        model = build(name)
        counts = analytic_counts(model, spec.input_size)
        sequence = getattr(model, "trace_input", None) is not None
        out.append({"spec": spec, "params": counts.params, "macs": counts.macs,
                    "input": f"{spec.input_size} steps" if sequence
                    else f"{spec.input_size} px"})
    return tuple(out)


def _millions(n: float) -> str:
    return f"{n / 1e6:,.2f}M" if n < 1e8 else f"{n / 1e6:,.0f}M"


def _weights(spec) -> str:
    if not spec.weights:
        return "none registered"
    parts = []
    for w in spec.weights:
        if w.bundled:
            how = "shipped with the zoo"
        elif w.package:
            how = f"package index `{w.package}`, offline"
        elif w.unpinned:
            how = "URL, no published hash (opt-in)"
        else:
            how = "URL, " + w.digest[0] + (" prefix" if w.sha256_prefix and not w.sha256 else "")
        parts.append(f"{w.origin or 'upstream'} ({how}; {w.license or 'license not stated'})")
    return "<br>".join(cell(p) for p in parts)


def catalogue_table() -> str:
    """Markdown: name, task, params, MACs, input, published top-1 and source, weights."""
    lines = ["| model | task | params | MACs | input | top-1 (published) | source | weights "
             "(origin, pin; license) |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for r in rows():
        s, p = r["spec"], r["spec"].published
        top1 = "—" if p is None or p.top1 is None else f"{p.top1}"
        source = "—" if p is None else cell(p.source)
        lines.append(f"| `{s.name}` | {s.task.replace('_', ' ')} | {_millions(r['params'])} "
                     f"| {_millions(r['macs'])} | {r['input']} | {top1} | {source} "
                     f"| {_weights(s)} |")
    return "\n".join(lines) + "\n"


def _diff(ours: float, published) -> str:
    if published is None:
        return "— | —"
    return f"{_millions(published)} | {ours / published - 1:+.1%}"


def published_table() -> str:
    """Markdown: our counts against the published ones; notes numbered below."""
    lines = ["| model | params (ours) | published | diff | MACs (ours) | published | diff "
             "| top-1 | source |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    notes: list[str] = []
    for r in rows():
        s, p = r["spec"], r["spec"].published
        if p is None:
            continue
        mark = ""
        if p.note:
            if p.note not in notes:
                notes.append(p.note)
            mark = f" [{notes.index(p.note) + 1}]"
        top1 = "—" if p.top1 is None else p.top1
        lines.append(f"| `{s.name}`{mark} | {_millions(r['params'])} | {_diff(r['params'], p.params)} "
                     f"| {_millions(r['macs'])} | {_diff(r['macs'], p.macs)} | {top1} "
                     f"| {cell(p.source)} |")
    lines.append("")
    lines += [f"[{i}] {cell(n)}\n" for i, n in enumerate(notes, 1)]
    return "\n".join(lines)


def preprocessing_table() -> str:
    """Markdown: each model's input contract and weight conventions, from its spec."""
    from zoo.registry import get_spec, list_models

    lines = ["| model | input | resize | crop | mean (0-255) | std (0-255) | padding | "
             "BatchNorm eps |", "|---|---:|---|---:|---|---|---|---:|"]
    for name in list_models():
        s = get_spec(name)
        mean = ", ".join(f"{v:g}" for v in s.mean)
        std = ", ".join(f"{v:g}" for v in s.std)
        lines.append(f"| `{name}` | {s.input_size} | {s.interpolation} | {s.crop_fraction:.3f} "
                     f"| {mean} | {std} | {s.padding} | {s.bn_eps:g} |")
    return "\n".join(lines) + "\n"


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (keeps incremental builds incremental)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate(app) -> None:
    write_if_changed(GENERATED / "catalogue.md", catalogue_table())
    write_if_changed(GENERATED / "published.md", published_table())
    write_if_changed(GENERATED / "preprocessing.md", preprocessing_table())


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
