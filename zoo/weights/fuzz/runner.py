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
    ``hang``/``crash`` one, after which the next call starts a new worker)."""

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
    for reproduction. Returns ``{target: {"tried", "outcomes", "crafted",
    "bad": [...]}}``."""
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
    """Only ``ok`` and ``error`` outcomes, every crafted case ``error``."""
    return all(not r["bad"] for r in report.values())


def markdown(report: dict) -> str:
    lines = ["| format | inputs | " + " | ".join(OUTCOMES) + " | crafted cases (all error) |",
             "|---|---:|" + "---:|" * len(OUTCOMES) + "---|"]
    for name, r in report.items():
        crafted = r["crafted"]
        good = sum(v == "error" for v in crafted.values())
        lines.append(f"| {name} | {r['tried']} | " + " | ".join(
            str(r["outcomes"].get(k, 0)) for k in OUTCOMES) + f" | {good}/{len(crafted)} |")
    return "\n".join(lines) + "\n"
