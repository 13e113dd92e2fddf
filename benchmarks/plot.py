"""Latency against multiply-adds and against published top-1, per family,
as in the EfficientNet paper's Figure 1 (there: FLOPs vs accuracy), from a
benchmark summary. One point per model at its smallest batch, float32."""

from __future__ import annotations

from pathlib import Path


def plot(summary: list[dict], path) -> Path:
    """Write a PNG to ``path``; needs matplotlib (the ``bench`` extra).

    Two panels, log scales, one line per model family: p50 latency per
    image against multiply-adds per image, and published ImageNet top-1
    against that latency. Only ``"ok"`` float32 rows count, each model at
    its smallest batch. The file is written under a temporary name and
    renamed, so ``path`` never holds a half-written PNG.

    Args:
        summary: the rows of ``benchmarks.report.summarize`` (the
            ``"summary"`` list of a result file); uses ``model``,
            ``status``, ``dtype``, ``batch``, ``macs``, ``p50_ms`` and
            ``device``.
        path: the PNG file to write (str or ``Path``); its folder must
            exist.

    Returns:
        Path: ``path``.

    Raises:
        RuntimeError: if matplotlib is not installed.
        ValueError: if ``summary`` has no ``"ok"`` float32 row.

    Example:
        ::

            import json
            from benchmarks.plot import plot
            plot(json.load(open("results/bench-A.json"))["summary"], "results/bench-A.png")
    """
    try:
        # A bare Figure draws with Agg by itself: no pyplot, so the global
        # backend (a notebook's inline plots) is left alone.
        from matplotlib.figure import Figure
        from matplotlib.ticker import NullFormatter
    except ImportError:
        raise RuntimeError("the plot needs matplotlib: pip install -e '.[bench]'") from None

    import zoo

    rows = [r for r in summary if r.get("status") == "ok" and r.get("dtype") == "float32"]
    smallest = {}
    for r in rows:
        if r["model"] not in smallest or r["batch"] < smallest[r["model"]]["batch"]:
            smallest[r["model"]] = r
    if not smallest:
        raise ValueError("no successful float32 result to plot")
    by_family: dict[str, list[dict]] = {}
    for r in smallest.values():
        by_family.setdefault(zoo.get_spec(r["model"]).family, []).append(r)

    fig = Figure(figsize=(11, 4.5))
    ax_macs, ax_top1 = fig.subplots(1, 2)
    for family, rs in sorted(by_family.items()):
        rs.sort(key=lambda r: r["macs"])
        per_image_ms = [r["p50_ms"] / r["batch"] for r in rs]
        line, = ax_macs.plot([r["macs"] / r["batch"] / 1e9 for r in rs], per_image_ms, "o-",
                             label=family)
        published = [(zoo.get_spec(r["model"]).published, ms) for r, ms in zip(rs, per_image_ms)]
        pts = [(ms, p.top1) for p, ms in published if p and p.top1]
        if pts:
            ax_top1.plot(*zip(*pts), "o-", color=line.get_color(), label=family)
        for r, ms in zip(rs, per_image_ms):
            ax_macs.annotate(r["model"].split("_")[-1], (r["macs"] / r["batch"] / 1e9, ms),
                             fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax_macs.set(xlabel="multiply-adds per image (G)", ylabel="p50 latency per image (ms)",
                xscale="log", yscale="log", title="latency vs multiply-adds")
    ax_top1.set(xlabel="p50 latency per image (ms)", ylabel="published ImageNet top-1 (%)",
                xscale="log", title="published top-1 vs latency")
    for ax in (ax_macs, ax_top1):
        ax.grid(True, which="both", alpha=0.3)
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor log labels overlap
        if ax.get_legend_handles_labels()[0]:  # models without a published top-1 draw none
            ax.legend(fontsize=8)
    if not ax_top1.lines:
        ax_top1.text(0.5, 0.5, "no published ImageNet top-1 for these models",
                     ha="center", va="center", transform=ax_top1.transAxes, fontsize=9)
    device = rows[0].get("device", "")
    fig.suptitle(f"zoo, {device}, batch {min(r['batch'] for r in smallest.values())}, float32")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)  # never a half-written PNG under the final name
    return path
