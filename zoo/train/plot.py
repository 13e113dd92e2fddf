"""``zoo train plot RUN``: loss, accuracy and learning rate against steps,
train and eval, from the run's ``metrics.jsonl``, as ``RUN/curves.png``."""

from __future__ import annotations

from pathlib import Path

from zoo.train.metrics import read


def plot_run(run, out=None) -> Path:
    """Draw a run's curves: loss (train and eval), accuracy (train batch
    accuracy and eval top-1, in %) and learning rate, against steps.

    Args:
        run: the run's work directory (holding ``metrics.jsonl``).
        out: the PNG file to write; None for ``RUN/curves.png``.

    Returns:
        Path: the written PNG (written to a temporary file, then renamed).

    Raises:
        RuntimeError: if matplotlib is not installed.
        ValueError: if the run has no training metrics yet (or no
            ``metrics.jsonl``).

    Example:
        ::

            from zoo.train.plot import plot_run
            plot_run("runs/digits")      # runs/digits/curves.png
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError("plotting needs matplotlib: pip install 'zoo[train]'") from None
    records = read(run)
    train = [r for r in records if r["split"] == "train"]
    evals = [r for r in records if r["split"] == "eval"]
    if not train:
        raise ValueError(f"{run}: no training metrics yet")
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    steps = [r["step"] for r in train]
    ax_loss.plot(steps, [r["loss"] for r in train], label="train")
    ax_acc.plot(steps, [100 * r["accuracy"] for r in train], label="train (batch)")
    if evals:
        es = [r["step"] for r in evals]
        ax_loss.plot(es, [r["loss"] for r in evals], "o-", label="eval")
        ax_acc.plot(es, [100 * r["top1"] for r in evals], "o-", label="eval top-1")
    ax_lr.plot(steps, [r["lr"] for r in train])
    for ax, title in ((ax_loss, "loss"), (ax_acc, "accuracy %"), (ax_lr, "learning rate")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    ax_loss.legend()
    ax_acc.legend()
    fig.suptitle(str(Path(run).resolve().name))
    out = Path(out) if out else Path(run) / "curves.png"
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(out)
    return out
