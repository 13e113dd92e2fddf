"""The parent side of fuzzing: a worker process per run, fed one input at a
time, killed and restarted on a hang or crash; outcomes counted per target.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from zoo.weights.fuzz import OUTCOMES, Target
from zoo.weights.fuzz.mutate import mutate

MEMORY_BYTES = 4 * 2**30
SECONDS = 10.0  # per input: the readers take milliseconds on these small files


class Worker:
    """A ``zoo.weights.fuzz.worker`` process; ``run(target, data)`` writes
    the input to a temporary file and returns the worker's answer (or a
    ``hang``/``crash`` one, after which the next call starts a new worker).

    The process starts on the first ``run``. Use it as a context manager (or
    call ``close``) to kill it and remove its temporary folder.

    Args:
        memory_bytes: the worker's address-space limit (``RLIMIT_AS``) in
            bytes; 0 or less for none. Default 4 GiB.
        seconds: the wall-clock limit per input. Default 10 s.

    Example:
        ::

            from zoo.weights.fuzz import get_target
            from zoo.weights.fuzz.runner import Worker
            with Worker(seconds=5.0) as worker:
                answer = worker.run(get_target("wheel"), b"not a zip")
            print(answer["outcome"])  # "error"
    """

    def __init__(self, memory_bytes: int = MEMORY_BYTES, seconds: float = SECONDS):
        self.memory_bytes, self.seconds = memory_bytes, seconds
        self.proc: Optional[subprocess.Popen] = None
        self.seen: set[str] = set()
        self.tmp = tempfile.TemporaryDirectory(prefix="zoo-fuzz-")

    def _start(self) -> None:
        env = dict(os.environ, PYTHONFAULTHANDLER="0", JAX_PLATFORMS="cpu")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zoo.weights.fuzz.worker", "--memory-bytes",
             str(self.memory_bytes)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1, env=env)

    def _stop(self) -> Optional[int]:
        if self.proc is None:
            return None
        self.proc.kill()
        code = self.proc.wait()
        self.proc = None
        return code

    def run(self, target: Target, data: bytes, first_seconds: float = 120.0) -> dict:
        """Read one input with ``target``'s reader in the worker.

        Starts a worker if none is running. The input is written to a
        temporary file named ``input`` plus ``target.suffix``.

        Args:
            target: the reader and its memory budget.
            data: the file's bytes.
            first_seconds: extra time allowed for the first input of a new
                worker or of a target new to it (importing the reader, and jax
                for the face-model mappings).

        Returns:
            The answer, a dict with keys ``"outcome"``, ``"type"``,
            ``"message"``, ``"peak_bytes"`` and ``"seconds"`` (see
            ``zoo.weights.fuzz.worker.classify``); the outcome is ``hang``
            when no answer came in time (the worker is killed), ``crash``
            when the worker died.
        """
        fresh = self.proc is None or self.proc.poll() is not None
        if fresh:
            self._stop()
            self._start()
            self.seen = set()
        first = target.name not in self.seen  # imports its reader (jax for the mappings)
        self.seen.add(target.name)
        path = Path(self.tmp.name) / f"input{target.suffix}"
        path.write_bytes(data)
        request = {"target": target.name, "path": str(path), "budget": target.budget(len(data))}
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._dead()
        # The first request of a worker or of a target also imports the
        # readers (and jax for the face-model mappings): allow that once.
        limit = self.seconds + (first_seconds if first else 0.0)
        ready, _, _ = select.select([self.proc.stdout], [], [], limit)
        if not ready:
            self._stop()
            return {"outcome": "hang", "type": None,
                    "message": f"no answer within {limit:.0f} s", "peak_bytes": 0,
                    "seconds": limit}
        line = self.proc.stdout.readline()
        if not line:
            return self._dead()
        return json.loads(line)

    def _dead(self) -> dict:
        code = self.proc.wait() if self.proc else None
        self.proc = None
        return {"outcome": "crash", "type": None, "message": f"worker exited with {code}",
                "peak_bytes": 0, "seconds": 0.0}

    def close(self) -> None:
        """Kill the worker process, if any, and remove the temporary folder."""
        self._stop()
        self.tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def fuzz(targets: list[Target], count: Optional[int] = None, seconds: Optional[float] = None,
         seed: int = 0, save: Optional[Path] = None, worker: Optional[Worker] = None,
         say: Callable[[str], None] = lambda line: None) -> dict:
    """Per target: its crafted cases, its seeds unmutated, then mutants until
    ``count`` mutants or ``seconds`` of fuzzing (split evenly between the
    targets). Bad inputs are written to ``save`` (named by outcome and hash)
    for reproduction.

    A crafted case read without an error counts as an ``escape`` (type
    "accepted"). With neither ``count`` nor ``seconds`` the mutants never
    stop: give one of them.

    Args:
        targets: the targets to fuzz, in order.
        count: mutants per target.
        seconds: total time for the mutants of all targets, split evenly.
        seed: the run's seed; each target's mutants come from
            ``random.Random(f"{seed}:{name}")``, so a run repeats.
        save: a folder for the inputs that ended badly, written as
            ``<target>-<outcome>-<sha256 prefix><suffix>``; None to keep none.
        worker: the ``Worker`` to use (it is left open); default: a new one
            with the default limits, closed at the end.
        say: called with a progress line every 100 mutants.

    Returns:
        A dict from target name to that target's report, a dict with
        ``"tried"`` (mutants run), ``"outcomes"`` (outcome name to count,
        mutants only), ``"crafted"`` (case name to outcome) and ``"bad"`` (a
        list of one dict per input that ended outside ``ok``/``error``, with
        ``"input"`` ("crafted:<name>" or "mutant"), ``"sha256"`` (first 12
        hex digits) and the worker's answer).

    Raises:
        RuntimeError: if a seed of a target is not read with outcome ``ok``
            (the target itself is broken).

    Example:
        ::

            from zoo.weights.fuzz import targets
            from zoo.weights.fuzz.runner import fuzz, markdown, passed
            report = fuzz(targets(["wheel"]), count=100, seed=0)
            print(markdown(report), passed(report))
    """
    own = worker is None
    worker = worker or Worker()
    report = {}
    try:
        for t in targets:
            rng = random.Random(f"{seed}:{t.name}")
            seeds = t.seeds()
            outcomes: collections.Counter = collections.Counter()
            bad, crafted = [], {}

            def record(data: bytes, kind: str, answer: dict) -> None:
                if answer["outcome"] in ("ok", "error"):
                    return
                digest = hashlib.sha256(data).hexdigest()[:12]
                bad.append({"input": kind, "sha256": digest, **answer})
                if save is not None:
                    save.mkdir(parents=True, exist_ok=True)
                    (save / f"{t.name}-{answer['outcome']}-{digest}{t.suffix}").write_bytes(data)

            for name, data in t.crafted():
                answer = worker.run(t, data)
                # A crafted file is malformed on purpose: reading it must fail cleanly.
                if answer["outcome"] == "ok":
                    answer = dict(answer, outcome="escape", type="accepted",
                                  message="a crafted malformed file was read without an error")
                crafted[name] = answer["outcome"]
                record(data, f"crafted:{name}", answer)
            for i, data in enumerate(seeds):
                answer = worker.run(t, data)
                if answer["outcome"] != "ok":
                    raise RuntimeError(f"fuzz target {t.name}: seed {i} is not read cleanly "
                                       f"({answer['outcome']}: {answer.get('message')})")
            budget_s = None if seconds is None else seconds / len(targets)
            start, tried = time.monotonic(), 0
            while True:
                if count is not None and tried >= count:
                    break
                if budget_s is not None and time.monotonic() - start >= budget_s:
                    break
                data = mutate(rng.choice(seeds), rng, seeds, t.mutators)
                answer = worker.run(t, data)
                outcomes[answer["outcome"]] += 1
                record(data, "mutant", answer)
                tried += 1
                if tried % 100 == 0:
                    say(f"{t.name}: {tried} inputs, " + ", ".join(
                        f"{k} {outcomes[k]}" for k in OUTCOMES if outcomes[k]))
            report[t.name] = {"tried": tried, "outcomes": dict(outcomes), "crafted": crafted,
                              "bad": bad}
    finally:
        if own:
            worker.close()
    return report


def passed(report: dict) -> bool:
    """Only ``ok`` and ``error`` outcomes, every crafted case ``error``.

    Args:
        report: what ``fuzz`` returned.

    Returns:
        True when no input of any target ended badly.
    """
    return all(not r["bad"] for r in report.values())


def markdown(report: dict) -> str:
    """The report as a Markdown table: one row per target, the count of
    mutants per outcome, and how many crafted cases ended in ``error``.

    Args:
        report: what ``fuzz`` returned.

    Returns:
        The table, one line per row, ending in a newline.
    """
    lines = ["| format | inputs | " + " | ".join(OUTCOMES) + " | crafted cases (all error) |",
             "|---|---:|" + "---:|" * len(OUTCOMES) + "---|"]
    for name, r in report.items():
        crafted = r["crafted"]
        good = sum(v == "error" for v in crafted.values())
        lines.append(f"| {name} | {r['tried']} | " + " | ".join(
            str(r["outcomes"].get(k, 0)) for k in OUTCOMES) + f" | {good}/{len(crafted)} |")
    return "\n".join(lines) + "\n"
