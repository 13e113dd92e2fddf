"""The one timing loop: ``warmup`` untimed then ``runs`` timed calls of a
synchronous call, summarised in milliseconds. The benchmark suite and the
conversion table both time with it, so their figures mean the same thing.
``time_interleaved`` is the same loop over several calls taken in turns, for
comparisons that must share whatever the machine was doing at the time."""

from __future__ import annotations

import statistics
import time
from typing import Callable, Optional

import numpy as np

MIN_TIMED_RUNS = 5


def time_calls(call: Callable[[], object], runs: int, warmup: int,
               check_budget: Callable[[str], None] = lambda stage: None,
               max_seconds: Optional[float] = None) -> dict:
    """Time ``warmup`` untimed then up to ``runs`` timed calls of ``call``.

    ``call`` must wait for its result (``block_until_ready`` for JAX).
    With ``max_seconds``, timing stops once the timed calls have taken that
    long and at least ``MIN_TIMED_RUNS`` ran (slow peers at large batches);
    ``timed_runs`` says how many did. ``check_budget(stage)`` runs after each
    call and may raise to stop.

    Args:
        call: a synchronous call with no arguments; its result is ignored.
        runs: the most timed calls, at least 1.
        warmup: untimed calls first (compilation, caches).
        check_budget: called after every call with a label such as
            ``"timed call 3 of 10"``; an exception it raises propagates.
        max_seconds: stop early once this much time (seconds) went into
            timed calls; None times all ``runs``.

    Returns:
        ``summarize`` of the timed calls: ``p50_ms``, ``p90_ms``, ``min_ms``,
        ``mean_ms``, ``std_ms`` (milliseconds) and ``timed_runs``.

    Example:
        ::

            f = jax.jit(model.apply)
            stats = time_calls(lambda: f(variables, x).block_until_ready(), runs=20, warmup=3)
            print(stats["p50_ms"])
    """
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
    return summarize(times)


def time_interleaved(calls: dict[str, Callable[[], object]], runs: int, warmup: int,
                     after_round: Callable[[int, int], None] = lambda done, total: None
                     ) -> dict[str, object]:
    """``time_calls`` over several calls at once, in rounds: each round calls
    every one once, so a burst of load from elsewhere on the machine falls on
    all of them alike instead of on whichever happened to be timed then. The
    order rotates by one each round so none always runs straight after the
    same neighbour (whose leftover threads or cache state it would inherit).
    A call that raises leaves the rotation and the others go on.

    Args:
        calls: name -> synchronous call with no arguments.
        runs: timed rounds, at least 1.
        warmup: untimed rounds first.
        after_round: called as ``after_round(done, warmup + runs)`` after
            each round (progress).

    Returns:
        ``{name: summary}`` in the order of ``calls``, each summary with
        ``time_calls``'s keys; for a call that raised (an ``Exception``), the
        exception object instead.
    """
    names = list(calls)
    times: dict[str, list] = {n: [] for n in names}
    out: dict[str, object] = {}
    for i in range(warmup + runs):
        k = i % len(names) if names else 0
        for n in names[k:] + names[:k]:
            if n in out:
                continue
            t = time.perf_counter()
            try:
                calls[n]()
            except Exception as e:  # noqa: BLE001 - reported as this call's result
                out[n] = e
                continue
            if i >= warmup:
                times[n].append((time.perf_counter() - t) * 1e3)
        after_round(i + 1, warmup + runs)
    for n in names:
        if n not in out:
            out[n] = summarize(times[n])
    return {n: out[n] for n in names}


def summarize(times: list) -> dict:
    """Milliseconds -> p50 (the headline), p90, min, mean, std, count.

    Args:
        times: durations in milliseconds, at least one.

    Returns:
        ``{"p50_ms", "p90_ms", "min_ms", "mean_ms", "std_ms"}`` as floats
        (milliseconds; ``std_ms`` is the population standard deviation) and
        ``"timed_runs"``, the number of times.
    """
    times = sorted(times)
    return {"p50_ms": statistics.median(times),
            "p90_ms": float(np.percentile(np.asarray(times), 90)),
            "min_ms": times[0], "mean_ms": statistics.fmean(times),
            "std_ms": statistics.pstdev(times), "timed_runs": len(times)}
