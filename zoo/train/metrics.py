"""Metrics as JSON lines (``metrics.jsonl``, one object per line with
``step``, ``split`` and the values) and as TensorBoard event files
(``tensorboard/``, through tensorboardX: clu's writers import TensorFlow).

On resume, lines and events after the restored step are dropped, so a run
killed after its last checkpoint does not leave the same steps twice.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from zoo.atomic import write_atomic


class MetricWriter:
    """Appends metric records to ``WORKDIR/metrics.jsonl`` and to
    TensorBoard events in ``WORKDIR/tensorboard``.

    Opening it drops the records after ``start_step`` from both, so a
    resumed run continues the curves without repeating steps. Needs
    ``tensorboardX``.

    Args:
        workdir: the run's directory.
        start_step: the step the run starts or resumes from (0 for a new run).
    """

    def __init__(self, workdir: Path, start_step: int):
        self.path = Path(workdir) / "metrics.jsonl"
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= start_step]
            write_atomic(self.path, "".join(line + "\n" for line in kept))
        self._file = open(self.path, "a")
        from tensorboardX import SummaryWriter

        self._tb = SummaryWriter(str(Path(workdir) / "tensorboard"), purge_step=start_step + 1,
                                 flush_secs=30)

    def write(self, step: int, split: str, values: dict) -> None:
        """Record ``values`` at ``step``: one JSON line (flushed at once) and
        one TensorBoard scalar ``split/name`` per finite value.

        Args:
            step: the training step the values belong to.
            split: ``"train"`` or ``"eval"``.
            values: metric name -> number (anything ``float()`` accepts).
        """
        values = {k: float(v) for k, v in values.items()}
        self._file.write(json.dumps({"step": step, "split": split, **values}) + "\n")
        self._file.flush()
        for k, v in values.items():
            if math.isfinite(v):
                self._tb.add_scalar(f"{split}/{k}", v, step)

    def close(self) -> None:
        """Close the JSON-lines file and the TensorBoard writer."""
        self._file.close()
        self._tb.close()


def read(path) -> list[dict]:
    """The records of a run's ``metrics.jsonl``.

    Args:
        path: the run's work directory, or the ``metrics.jsonl`` file itself.

    Returns:
        list[dict]: one dict per line, in file order, each with ``step``,
        ``split`` and the metric values.

    Raises:
        ValueError: if there is no ``metrics.jsonl`` at ``path``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.exists():
        raise ValueError(f"{path} not found: not a zoo training run (no metrics yet?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
