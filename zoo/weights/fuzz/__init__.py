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
    float16 or int8: 4x) with room for one copy, plus a fixed allowance.

    Args:
        size: the input file's size in bytes.

    Returns:
        The budget in bytes, ``BASE_BUDGET`` (64 MiB) plus ``8 * size``.
    """
    return BASE_BUDGET + 8 * size


def _no_crafted_cases() -> list[tuple[str, bytes]]:
    """No crafted cases (the default of ``Target.crafted``).

    Returns:
        An empty list.
    """
    return []


@dataclasses.dataclass(frozen=True)
class Target:
    """One reader entry point under fuzzing.

    Format modules list theirs in a module-level ``TARGETS``; ``targets``
    collects them.

    Attributes:
        name: the target's name, as given to ``--format`` ("torch_zip").
        read: the reader as "module:function" (or "module.function"), called
            in the worker as ``function(path)``; what it returns is ignored.
        suffix: the file name ending the reader dispatches on (".pth").
        seeds: ``seeds()`` returns valid files as bytes (small: they are
            mutated thousands of times); each must be read with outcome ``ok``.
        crafted: ``crafted()`` returns (name, bytes) pairs, each a known
            attack that must end in ``error`` (not ``ok``: a crafted case is
            malformed on purpose). Default: none.
        mutators: format-aware ``f(data, rng) -> bytes`` (``rng`` a
            ``random.Random``) used besides the generic byte mutators; one
            that raises on its input is skipped for that mutant.
        errors: dotted names of the exception classes that count as
            documented errors. Default: ``zoo.weights.errors.WeightError``.
        budget: ``budget(size)``, the bytes the reader may allocate for a file
            of ``size`` bytes. Default: ``default_budget``.
        description: one line for ``--list``.
    """

    name: str
    read: str
    suffix: str
    seeds: Callable[[], list[bytes]]
    crafted: Callable[[], list[tuple[str, bytes]]] = _no_crafted_cases
    mutators: tuple[Callable, ...] = ()
    errors: tuple[str, ...] = ("zoo.weights.errors.WeightError",)
    budget: Callable[[int], int] = default_budget
    description: str = ""


def targets(names: Optional[list[str]] = None) -> list[Target]:
    """Every registered target (or those named), in module order.

    The targets come from the ``TARGETS`` lists of the format modules, then
    of the modules named in ``$ZOO_FUZZ_MODULES`` (comma-separated); a
    format module that does not exist is skipped.

    Args:
        names: target names to pick, in the order wanted; None or empty for
            every target.

    Returns:
        The ``Target`` objects, every one or those of ``names`` in that order.

    Raises:
        ValueError: if a name in ``names`` is not a registered target (the
            message lists the known ones).
        ModuleNotFoundError: if a format module exists but one of its own
            imports is missing.

    Example:
        ::

            from zoo.weights.fuzz import targets
            print([t.name for t in targets()])
            wheel, = targets(["wheel"])
    """
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
    """The registered target called ``name`` (see ``targets``).

    Args:
        name: a target name, such as "torch_zip" or "wheel".

    Returns:
        The ``Target``.

    Raises:
        ValueError: if no target has that name.
    """
    return targets([name])[0]
