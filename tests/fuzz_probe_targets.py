"""Targets that misbehave on purpose, one per outcome, for the fuzzing
harness's own test (tests/test_fuzz_harness.py)."""

import os
import time

import numpy as np

from zoo.weights.errors import WeightFileError
from zoo.weights.fuzz import Target


def read_by_first_byte(path):
    data = open(path, "rb").read()
    kind = data[:1]
    if kind == b"o":
        return {}
    if kind == b"e":
        raise WeightFileError(f"{path}: header: not a probe file")
    if kind == b"m":
        raise WeightFileError("a message that names no file")
    if kind == b"k":
        raise KeyError("escapes")
    if kind == b"b":
        return np.ones(200 * 2**20, np.uint8)  # 200 MiB for a 1-byte file
    if kind == b"h":
        time.sleep(60)
    if kind == b"c":
        os.abort()
    raise WeightFileError(f"{path}: unknown probe {kind!r}")


TARGETS = [Target(name="probe", read="fuzz_probe_targets:read_by_first_byte", suffix=".bin",
                  seeds=lambda: [b"o"], crafted=lambda: [("error", b"e")])]
