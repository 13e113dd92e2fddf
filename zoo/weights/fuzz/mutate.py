"""Byte-level mutations that apply to every format, and a Hypothesis
strategy that draws them (so a failing input shrinks to a few edits of a
valid file).

A mutation is a list of edits ``(kind, position, value)``; positions and
values are fractions or small integers resolved against the data, so the
same edit list applies to any seed and shrinks well.
"""

from __future__ import annotations

import random
import struct
from typing import Callable, Sequence

# Integers that break length and index arithmetic when they replace one.
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF, 2**62, 2**63 - 1, 2**64 - 1)
KINDS = ("flip", "byte", "int32", "int64", "delete", "duplicate", "insert", "truncate", "splice")


def apply_edit(data: bytes, kind: str, where: float, value: int, other: bytes = b"") -> bytes:
    """One edit at ``where`` (a fraction of the length) with ``value``.

    The edit kinds (``KINDS``), at byte ``i = int(where * len(data))``:
    ``flip`` flips bit ``value % 8``; ``byte`` writes the low byte of an
    ``INTERESTING`` integer; ``int32`` / ``int64`` write one little-endian
    (moved left to fit, cut at the end of short data); ``delete`` removes
    ``1 + value % 64`` bytes; ``duplicate`` repeats the next
    ``1 + value % 256`` bytes ``1 + value % 3`` more times; ``insert`` adds
    ``1 + value % 16`` copies of an interesting byte; ``truncate`` cuts the
    data at ``i``; ``splice`` replaces the rest with ``other`` from the same
    fraction of its length.

    Args:
        data: the bytes to edit.
        kind: one of ``KINDS``; any other string leaves ``data`` as it is
            (so does ``splice`` without ``other``).
        where: the position as a fraction of ``len(data)``, in [0, 1).
        value: a non-negative integer choosing the bit, the interesting value
            (``INTERESTING[value % len(INTERESTING)]``) or the length.
        other: another input (a seed) for ``splice``.

    Returns:
        The edited bytes; for empty ``data``, the single byte ``value & 0xFF``.
    """
    n = len(data)
    if n == 0:
        return bytes([value & 0xFF])
    i = min(int(where * n), n - 1)
    b = bytearray(data)
    if kind == "flip":
        b[i] ^= 1 << (value % 8)
    elif kind == "byte":
        b[i] = INTERESTING[value % len(INTERESTING)] & 0xFF
    elif kind in ("int32", "int64"):
        size = 4 if kind == "int32" else 8
        v = INTERESTING[value % len(INTERESTING)] & ((1 << (8 * size)) - 1)
        i = min(i, max(0, n - size))
        b[i:i + size] = struct.pack("<I" if size == 4 else "<Q", v)[:n - i]
    elif kind == "delete":
        b[i:i + 1 + value % 64] = b""
    elif kind == "duplicate":
        chunk = bytes(b[i:i + 1 + value % 256])
        b[i:i] = chunk * (1 + value % 3)
    elif kind == "insert":
        b[i:i] = bytes([INTERESTING[value % len(INTERESTING)] & 0xFF]) * (1 + value % 16)
    elif kind == "truncate":
        b = b[:i]
    elif kind == "splice" and other:
        j = min(int(where * len(other)), len(other) - 1)
        b[i:] = other[j:]
    return bytes(b)


def random_edits(rng: random.Random, count: int | None = None) -> list[tuple[str, float, int]]:
    """Random edits for ``apply_edit``: each a (kind, where, value) tuple.

    Args:
        rng: the source of randomness.
        count: how many edits; default: 1 to 8, fewer more often
            (``1 + min(int(expovariate(0.7)), 7)``).

    Returns:
        A list of ``(kind, where, value)`` tuples, kind from ``KINDS``,
        where in [0, 1), value in [0, 65536).
    """
    count = count if count is not None else 1 + min(int(rng.expovariate(0.7)), 7)
    return [(rng.choice(KINDS), rng.random(), rng.randrange(1 << 16)) for _ in range(count)]


def mutate(data: bytes, rng: random.Random, seeds: Sequence[bytes] = (),
           mutators: Sequence[Callable] = ()) -> bytes:
    """A random mutant of ``data``: a format-aware mutator (half of the time
    when there are any) or a few generic edits.

    A format-aware mutator that raises (it could not parse ``data``) falls
    back to the generic edits.

    Args:
        data: the input to mutate (usually a seed).
        rng: the source of randomness (the same state gives the same mutant).
        seeds: the target's seeds, the source of ``splice`` edits.
        mutators: format-aware mutators, each ``f(data, rng) -> bytes``.

    Returns:
        The mutant bytes.
    """
    if mutators and rng.random() < 0.5:
        try:
            return rng.choice(mutators)(data, rng)
        except Exception:  # noqa: BLE001 - a mutator that cannot parse its mutant falls back
            pass
    other = rng.choice(seeds) if seeds else b""
    for kind, where, value in random_edits(rng):
        data = apply_edit(data, kind, where, value, other)
    return data


def edits_strategy(max_edits: int = 6):
    """A Hypothesis strategy of edit lists (imported lazily: tests only).

    Hypothesis shrinks a failing edit list towards fewer edits, earlier
    kinds and smaller numbers; apply one with ``apply_edits``.

    Args:
        max_edits: the most edits in one list (at least one is drawn).

    Returns:
        A strategy drawing lists of ``(kind, where, value)`` tuples.
    """
    from hypothesis import strategies as st

    edit = st.tuples(st.sampled_from(KINDS), st.floats(0, 1, exclude_max=True),
                     st.integers(0, (1 << 16) - 1))
    return st.lists(edit, min_size=1, max_size=max_edits)


def apply_edits(data: bytes, edits, other: bytes = b"") -> bytes:
    """``apply_edit`` for each edit in turn.

    Args:
        data: the bytes to edit.
        edits: ``(kind, where, value)`` tuples, as ``random_edits`` or
            ``edits_strategy`` make them.
        other: another input for ``splice`` edits.

    Returns:
        The edited bytes.
    """
    for kind, where, value in edits:
        data = apply_edit(data, kind, where, value, other)
    return data
