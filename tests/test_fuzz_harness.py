"""The fuzzing harness tells every outcome apart, in a worker process with
limits, and keeps going after a hang or a crash."""

import os
from pathlib import Path

import pytest

from zoo.weights.fuzz import get_target
from zoo.weights.fuzz.mutate import apply_edit, mutate
from zoo.weights.fuzz.runner import Worker, fuzz, markdown, passed


@pytest.fixture()
def probe(monkeypatch):
    tests = str(Path(__file__).parent)
    monkeypatch.setenv("ZOO_FUZZ_MODULES", "fuzz_probe_targets")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [tests, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.syspath_prepend(tests)
    return get_target("probe")


def test_every_outcome_is_told_apart(probe):
    with Worker(memory_bytes=2 * 2**30, seconds=3) as worker:
        seen = {kind: worker.run(probe, kind.encode())["outcome"] for kind in "oemkbhc"}
        # The worker came back after the hang and the crash.
        assert worker.run(probe, b"o")["outcome"] == "ok"
    assert seen == {"o": "ok", "e": "error", "m": "bad_message", "k": "escape",
                    "b": "over_budget", "h": "hang", "c": "crash"}


def test_fuzz_reports_and_saves_bad_inputs(probe, tmp_path):
    with Worker(memory_bytes=2 * 2**30, seconds=3) as worker:
        report = fuzz([probe], count=30, seed=1, save=tmp_path, worker=worker)
    r = report["probe"]
    assert r["tried"] == 30 and sum(r["outcomes"].values()) == 30
    assert r["crafted"] == {"error": "error"}
    # Mutants of b"o" hit the misbehaving first bytes only by chance; whatever
    # ended badly was saved, named by its outcome.
    saved = sorted(p.name.split("-")[1] for p in tmp_path.iterdir())
    assert saved == sorted(b["outcome"] for b in r["bad"])
    assert passed(report) == (not r["bad"])
    assert "| probe | 30 |" in markdown(report)


def test_mutations_are_deterministic_and_change_the_data():
    import random

    data = bytes(range(256)) * 4
    a = [mutate(data, random.Random(7)) for _ in range(3)]
    b = [mutate(data, random.Random(7)) for _ in range(3)]
    assert a == b and all(m != data for m in a)
    assert apply_edit(data, "truncate", 0.5, 0) == data[:512]
    assert apply_edit(b"", "flip", 0.3, 5) != b""
