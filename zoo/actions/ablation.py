"""The ablation of TAL-Net's three ideas on ``action_features``, as in the
paper: the full model and four variants that each take one idea away
(``zoo.train.recipes.TALNET_ABLATIONS``), trained with the same recipe,
scored by THUMOS'14 mAP at tIoU 0.1-0.7 on the test videos.

    python -m zoo.actions.ablation --out runs/ablation            # the committed table
    python -m zoo.actions.ablation --out /tmp/a --steps 20 --data action_features/64

Each variant trains in ``OUT/<recipe>`` (rerunning resumes or reuses a
finished run); the table is written to ``OUT/ablation.json`` and
``OUT/ablation.md`` and printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def run(out: Path, steps: Optional[int] = None, data: Optional[str] = None,
        data_dir: Optional[str] = None, variants: Optional[Sequence[str]] = None) -> list[dict]:
    """Train (or resume) each variant and evaluate it; one row per variant.

    Each variant is the recipe ``action_features_talnet<suffix>`` of
    ``zoo.train.recipes.TALNET_ABLATIONS``, trained in ``out / <recipe>``
    and scored by ``zoo.actions.evaluate_split`` on the test split under the
    THUMOS'14 protocol at ``THRESHOLDS``.

    Args:
        out: directory holding one work directory per variant; a finished
            run is reused, an interrupted one resumed.
        steps: training steps of every variant, also its evaluation and
            checkpoint interval (default: each recipe's own).
        data: dataset to train on instead of the recipe's, e.g.
            ``"action_features/64"``.
        data_dir: where datasets are built (default: ``$ZOO_DATA``).
        variants: recipe names to run (default: all five).

    Returns:
        list[dict]: one row per variant run, in ``TALNET_ABLATIONS`` order,
        with keys ``recipe``, ``variant`` (what it takes away), ``steps``,
        ``data``, ``minutes`` (wall-clock training time), ``map``
        (``{str(threshold): mAP in [0, 1]}``) and ``average_map``.

    Raises:
        ValueError: from training or evaluation, e.g. when the dataset
            cannot be built or a run is not an action model.
    """
    from zoo.actions.localise import evaluate_split
    from zoo.train import TrainConfig, fit
    from zoo.train.recipes import RECIPES, TALNET_ABLATIONS

    rows = []
    for suffix, (what, _) in TALNET_ABLATIONS.items():
        name = f"action_features_talnet{suffix}"
        if variants and name not in variants:
            continue
        settings = dict(RECIPES[name].settings, workdir=str(out / name), data_dir=data_dir)
        if steps:
            settings.update(steps=steps, eval_every=steps, save_every=steps)
        if data:
            settings["data"] = data
        start = time.time()
        fit(TrainConfig(**settings))
        minutes = (time.time() - start) / 60
        result = evaluate_split(out / name, protocol="thumos14", thresholds=THRESHOLDS)
        rows.append({"recipe": name, "variant": what, "steps": settings["steps"],
                     "data": settings["data"], "minutes": round(minutes, 1),
                     "map": {str(t): result["map"][t] for t in THRESHOLDS},
                     "average_map": result["average_map"]})
    return rows


def markdown(rows: list[dict]) -> str:
    """The ablation table in Markdown, mAP in percent with one decimal.

    Args:
        rows: the rows ``run`` returns.

    Returns:
        str: a header, a separator and one line per row (no trailing
        newline): variant, mAP at each of ``THRESHOLDS``, their average and
        the training minutes.
    """
    head = ("| variant | " + " | ".join(f"mAP@{t}" for t in THRESHOLDS)
            + " | avg | train min |")
    lines = [head, "|---|" + "---:|" * (len(THRESHOLDS) + 2)]
    for r in rows:
        maps = " | ".join(f"{100 * r['map'][str(t)]:.1f}" for t in THRESHOLDS)
        lines.append(f"| {r['variant']} (`{r['recipe']}`) | {maps} | "
                     f"{100 * r['average_map']:.1f} | {r['minutes']} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m zoo.actions.ablation``: run the ablation, write and print its table.

    Writes ``OUT/ablation.json`` (the rows of ``run``) and
    ``OUT/ablation.md`` (``markdown`` of them), each atomically.

    Args:
        argv: the command-line arguments (default: ``sys.argv[1:]``):
            ``--out`` (required), ``--steps``, ``--data``, ``--data-dir``,
            ``--variants`` (comma-separated recipe names).

    Returns:
        int: the exit status: 0, or 2 after printing a one-line error when
        training or evaluation raised ``ValueError`` or
        ``FileNotFoundError``.

    Example:
        ::

            from zoo.actions.ablation import main
            main(["--out", "/tmp/a", "--steps", "20", "--data", "action_features/64"])
    """
    p = argparse.ArgumentParser(prog="python -m zoo.actions.ablation",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="examples:\n" + __doc__.split("\n\n")[1])
    p.add_argument("--out", required=True, help="directory of the runs and the table")
    p.add_argument("--steps", type=int, help="train each variant this many steps (default: "
                                             "the recipe's)")
    p.add_argument("--data", help="another build, e.g. action_features/64 (default: the "
                                  "recipe's)")
    p.add_argument("--data-dir", help="where datasets are built ($ZOO_DATA by default)")
    p.add_argument("--variants", help="comma-separated recipe names (default: all five)")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        rows = run(out, args.steps, args.data, args.data_dir,
                   args.variants.split(",") if args.variants else None)
    except (ValueError, FileNotFoundError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    from zoo.atomic import write_atomic
    write_atomic(out / "ablation.json", json.dumps(rows, indent=1) + "\n")
    table = markdown(rows)
    write_atomic(out / "ablation.md", table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
