"""Fuzzing the weight readers (and the image loader): every malformed input
must end in the documented error family, within a memory budget and a time
limit, and never crash or hang the process.

    python -m zoo.weights.fuzz --minutes 10            # every format
    python -m zoo.weights.fuzz --format torch_zip --count 2000

A **target** is one reader entry point and the inputs it is fuzzed with:
valid seed files built here (small real-format files), crafted cases (each
a known attack: a decompression bomb, a stride-0 view, a huge memo index, a
graph cycle...) and structured mutators that know the format (a JSON
header's numbers, a zip member's sizes, pickle opcodes); the generic byte
mutators of ``zoo.weights.fuzz.mutate`` apply to every format.

Each input runs in a worker process (``zoo.weights.fuzz.worker``) with an
address-space limit (``RLIMIT_AS``, 4 GiB by default) and a wall-clock limit
per input (the worker is killed and restarted on a hang or a crash). The
worker classifies what happened:

    ok            the reader returned (a mutation that kept the file valid)
    error         a documented error (``target.errors``), one line naming the file
    bad_message   a documented error whose message is not one line or names no file
    escape        any other exception (its type and message are recorded)
    over_budget   the reader allocated more than ``target.budget(file size)``
                  (tracemalloc's peak, numpy's arrays included) or hit MemoryError
    hang          no answer within the time limit
    crash         the worker died (a signal, an abort in C code)

A run passes when only ``ok`` and ``error`` occur.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Optional

__all__ = ["BAD_OUTCOMES", "OUTCOMES", "Target", "default_budget", "get_target", "targets"]

OUTCOMES = ("ok", "error", "bad_message", "escape", "over_budget", "hang", "crash")
BAD_OUTCOMES = OUTCOMES[2:]

# Format modules, each with TARGETS: list[Target]; $ZOO_FUZZ_MODULES
# (comma-separated) adds more, e.g. a test's own targets.
FORMAT_MODULES = ("zoo.weights.fuzz.formats_torch", "zoo.weights.fuzz.formats_keras",
                  "zoo.weights.fuzz.formats_tflite", "zoo.weights.fuzz.formats_fetch",
                  "zoo.weights.fuzz.formats_images")

# The fixed allowance of every input: the reader's own bookkeeping (a parsed
# graph, a config dict) besides the arrays its file can hold.
BASE_BUDGET = 64 * 2**20


def default_budget(size: int) -> int:
    """What a well-formed file of ``size`` bytes may make a reader allocate:
    its arrays (at most its size, uncompressed, in float32 after widening
    float16 or int8: 4x) with room for one copy, plus a fixed allowance."""
    return BASE_BUDGET + 8 * size


@dataclasses.dataclass(frozen=True)
class Target:
    """One reader entry point under fuzzing.

    ``read``: "module:function", called in the worker as ``function(path)``.
    ``suffix``: the file name ending the reader dispatches on (".pth").
    ``seeds()``: valid files as bytes (small: they are mutated thousands of times).
    ``crafted()``: (name, bytes) pairs, each a known attack that must end in
    ``error`` (not ``ok``: a crafted case is malformed on purpose).
    ``mutators``: format-aware ``f(data, rng) -> bytes`` used besides the
    generic byte mutators.
    ``errors``: the exception classes (dotted names) that count as documented.
    ``budget(size)``: bytes the reader may allocate for a file of ``size`` bytes.
    """

    name: str
    read: str
    suffix: str
    seeds: Callable[[], list[bytes]]
    crafted: Callable[[], list[tuple[str, bytes]]] = lambda: []
    mutators: tuple[Callable, ...] = ()
    errors: tuple[str, ...] = ("zoo.weights.errors.WeightError",)
    budget: Callable[[int], int] = default_budget
    description: str = ""


def targets(names: Optional[list[str]] = None) -> list[Target]:
    """Every registered target (or those named), in module order."""
    import os

    found: list[Target] = []
    extra = [m for m in os.environ.get("ZOO_FUZZ_MODULES", "").split(",") if m]
    for module in (*FORMAT_MODULES, *extra):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue  # a format module not written yet
        found += list(mod.TARGETS)
    if names:
        by_name = {t.name: t for t in found}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f"unknown fuzz format(s) {', '.join(unknown)}; known: "
                             f"{', '.join(by_name)}")
        return [by_name[n] for n in names]
    return found


def get_target(name: str) -> Target:
    return targets([name])[0]
