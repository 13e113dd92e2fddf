"""What a person watching a run sees: a rich progress bar with loss,
accuracy, learning rate and images/s on a terminal; one line per log
interval otherwise (CI logs, ``nohup``, notebooks' captured output)."""

from __future__ import annotations

import sys
import time


class TrainProgress:
    """Shows a run's progress on standard error: a rich progress bar on a
    terminal, plain lines otherwise.

    Args:
        total: the step the run ends at.
        start: the step it starts (or resumes) at.
        enabled: False shows nothing at all.
    """

    def __init__(self, total: int, start: int, enabled: bool = True):
        self.total, self.start = total, start
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self._progress = None
        self._t0 = time.perf_counter()
        if self.tty:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                      transient=False)
            self._task = self._progress.add_task("train", total=total, completed=start, info="")
            self._progress.start()

    def update(self, step: int, values: dict) -> None:
        """Move to ``step`` and show ``values`` (``lr``, ``images_per_s`` and
        accuracies get their own formats).

        Args:
            step: the step just completed.
            values: metric name -> float, e.g. ``{"loss": 0.31, "lr": 0.05}``.
        """
        info = "  ".join(_fmt(k, v) for k, v in values.items())
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=info)
        elif self.enabled:
            print(f"step {step}/{self.total}  {info}", file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        """Print a line above the bar (or as a plain line).

        Args:
            text: the line.
        """
        if self._progress is not None:
            self._progress.console.print(text)
        elif self.enabled:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Stop the bar, leaving its last state on the terminal."""
        if self._progress is not None:
            self._progress.stop()


def _fmt(key: str, value: float) -> str:
    if key == "lr":
        return f"lr {value:.2e}"
    if key in ("images_per_s",):
        return f"{value:.0f} img/s"
    if key in ("accuracy", "top1"):
        return f"{key} {100 * value:.1f}%"
    return f"{key} {value:.4f}"
