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
    """One edit at ``where`` (a fraction of the length) with ``value``."""
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
    count = count if count is not None else 1 + min(int(rng.expovariate(0.7)), 7)
    return [(rng.choice(KINDS), rng.random(), rng.randrange(1 << 16)) for _ in range(count)]


def mutate(data: bytes, rng: random.Random, seeds: Sequence[bytes] = (),
           mutators: Sequence[Callable] = ()) -> bytes:
    """A random mutant of ``data``: a format-aware mutator (half of the time
    when there are any) or a few generic edits."""
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
    """A Hypothesis strategy of edit lists (imported lazily: tests only)."""
    from hypothesis import strategies as st

    edit = st.tuples(st.sampled_from(KINDS), st.floats(0, 1, exclude_max=True),
                     st.integers(0, (1 << 16) - 1))
    return st.lists(edit, min_size=1, max_size=max_edits)


def apply_edits(data: bytes, edits, other: bytes = b"") -> bytes:
    for kind, where, value in edits:
        data = apply_edit(data, kind, where, value, other)
    return data
