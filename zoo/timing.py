"""The one timing loop: ``warmup`` untimed then ``runs`` timed calls of a
synchronous call, summarised in milliseconds. The benchmark suite and the
conversion table both time with it, so their figures mean the same thing."""

from __future__ import annotations

import statistics
import time
from typing import Callable, Optional

import numpy as np

MIN_TIMED_RUNS = 5


def time_calls(call: Callable[[], object], runs: int, warmup: int,
               check_budget: Callable[[str], None] = lambda stage: None,
               max_seconds: Optional[float] = None) -> dict:
    """``call`` must wait for its result (``block_until_ready`` for JAX).
    With ``max_seconds``, timing stops once the timed calls have taken that
    long and at least ``MIN_TIMED_RUNS`` ran (slow peers at large batches);
    ``timed_runs`` says how many did. ``check_budget(stage)`` runs after each
    call and may raise to stop."""
    for i in range(warmup):
        call()
        check_budget(f"warm-up call {i + 1}")
    times = []
    for i in range(runs):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1e3)
        check_budget(f"timed call {i + 1} of {runs}")
        if (max_seconds is not None and len(times) >= MIN_TIMED_RUNS
                and sum(times) > max_seconds * 1e3):
            break
    times.sort()
    return {"p50_ms": statistics.median(times),
            "p90_ms": float(np.percentile(np.asarray(times), 90)),
            "min_ms": times[0], "mean_ms": statistics.fmean(times),
            "std_ms": statistics.pstdev(times), "timed_runs": len(times)}
