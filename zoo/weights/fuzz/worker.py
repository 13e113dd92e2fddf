"""The fuzzing worker: reads one request per line on stdin, runs the
target's reader on the file, answers one JSON line on stdout.

    python -m zoo.weights.fuzz.worker --memory-bytes 4294967296

request:  {"target": "torch_zip", "path": "/tmp/x.pth", "budget": 67108864}
answer:   {"outcome": "error", "type": "WeightFileError", "message": "...",
           "peak_bytes": 1234, "seconds": 0.01}

The address-space limit is set before anything is imported, so an
allocation the limit refuses surfaces as MemoryError (``over_budget``), not
as the machine swapping. Crashes and hangs are the parent's to see (it reads
no answer in time, or EOF).
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import sys
import time
import tracemalloc


def _limit_memory(nbytes: int) -> None:
    if nbytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))


def _resolve(dotted: str):
    module, _, attr = dotted.rpartition(".") if ":" not in dotted else dotted.partition(":")
    return getattr(importlib.import_module(module), attr)


def classify(target, path: str, budget: int) -> dict:
    """Run ``target.read`` on ``path``; the outcome as in ``zoo.weights.fuzz``.

    A documented error (one of ``target.errors``) is ``error`` when its
    message is one line and names the file (its base name), else
    ``bad_message``. The memory used is the larger of tracemalloc's peak
    (which counts only while tracemalloc traces, as ``main`` starts it) and
    the growth of the process's peak resident size; above ``budget`` it
    turns ``ok``, ``error`` and ``bad_message`` into ``over_budget``, as a
    MemoryError does. Any other exception is an ``escape``;
    KeyboardInterrupt propagates.

    Args:
        target: a ``zoo.weights.fuzz.Target`` (its ``read`` and ``errors``).
        path: the input file.
        budget: the bytes the reader may allocate.

    Returns:
        A dict with keys ``"outcome"``, ``"type"``, ``"message"``,
        ``"peak_bytes"`` and ``"seconds"``, holding the outcome (one of
        ``OUTCOMES``), the exception's class name and message (its first
        500 characters; both None when the reader returned), the memory
        used in bytes and the reader's wall time in seconds.
    """
    import os

    read = _resolve(target.read)
    documented = tuple(_resolve(e) for e in target.errors)
    tracemalloc.reset_peak()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    result = {"type": None, "message": None}
    try:
        read(path)
        outcome = "ok"
    except MemoryError as e:
        outcome, result = "over_budget", {"type": "MemoryError", "message": str(e)[:500]}
    except documented as e:
        message = str(e)
        names_file = os.path.basename(path) in message
        outcome = "error" if names_file and "\n" not in message.strip() else "bad_message"
        result = {"type": type(e).__name__, "message": message[:500]}
    except BaseException as e:  # noqa: BLE001 - every other escape is what we look for
        if isinstance(e, KeyboardInterrupt):
            raise
        outcome, result = "escape", {"type": type(e).__name__, "message": str(e)[:500]}
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    used = max(peak, rss_growth)
    if used > budget and outcome in ("ok", "error", "bad_message"):
        outcome = "over_budget"
        result["message"] = (f"allocated {used} bytes, over the budget of {budget} "
                             f"({result.get('type') or 'returned'})")
    return {"outcome": outcome, **result, "peak_bytes": int(used), "seconds": seconds}


def main(argv=None) -> int:
    """Serve requests from stdin until it closes (``python -m
    zoo.weights.fuzz.worker``).

    Sets the address-space limit first, then answers each JSON request
    line (``{"target", "path", "budget"}``) with one JSON line from
    ``classify``.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``):
            ``--memory-bytes N``, the address-space limit (default 4 GiB;
            0 for none).

    Returns:
        0, the exit status, once stdin is exhausted.
    """
    p = argparse.ArgumentParser(prog="python -m zoo.weights.fuzz.worker")
    p.add_argument("--memory-bytes", type=int, default=4 * 2**30)
    args = p.parse_args(argv)
    _limit_memory(args.memory_bytes)
    from zoo.weights.fuzz import get_target

    tracemalloc.start()
    cache = {}
    for line in sys.stdin:
        request = json.loads(line)
        name = request["target"]
        if name not in cache:
            cache[name] = get_target(name)
        answer = classify(cache[name], request["path"], int(request["budget"]))
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
