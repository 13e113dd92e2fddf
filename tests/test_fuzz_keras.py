"""The Keras weight-file readers (legacy .h5, Keras 3 .weights.h5, .keras)
end every malformed file in the documented error family, one line naming
the file, within the fuzzing harness's memory and time limits: the known
attacks (crafted), Hypothesis-drawn mutants (byte edits and structured
HDF5/JSON/zip mutations, shrinkable), and a longer fuzzing run (slow)."""

import pytest

pytest.importorskip("h5py")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from zoo.weights.fuzz.formats_keras import TARGETS  # noqa: E402
from zoo.weights.fuzz.mutate import apply_edits, edits_strategy  # noqa: E402
from zoo.weights.fuzz.runner import Worker, fuzz, markdown, passed  # noqa: E402
from zoo.weights.keras_files import read_keras_file  # noqa: E402

BY_NAME = {t.name: t for t in TARGETS}
_SEEDS = {}


def seeds(target):
    if target.name not in _SEEDS:
        _SEEDS[target.name] = target.seeds()
    return _SEEDS[target.name]


@pytest.fixture(scope="module")
def worker():
    """One fuzzing worker for the whole file (it imports the readers once)."""
    with Worker() as w:
        yield w


def test_seeds_are_small_and_read_as_keras_files(tmp_path):
    expected = {
        "keras_h5": [{"conv/kernel", "bn/moving_variance", "dw/kernel", "d1/bias"},
                     {"conv/kernel", "Conv/BatchNorm/gamma", "dw/depthwise_kernel"},
                     {"conv/kernel", "bn/gamma", "d1/kernel"}],
        "keras_weights_h5": [{"conv/kernel", "bn/moving_mean", "dw/kernel", "d1/kernel"}] * 2,
        "keras_zip": [{"conv/bias", "bn/beta", "dw/kernel", "d1/bias"}] * 3,
    }
    for target in TARGETS:
        for i, data in enumerate(seeds(target)):
            assert len(data) < 32 * 1024
            path = tmp_path / f"seed{i}{target.suffix}"
            path.write_bytes(data)
            arrays, _ = read_keras_file(path)
            assert expected[target.name][i] <= set(arrays), (target.name, i, sorted(arrays))


@pytest.mark.parametrize("name", list(BY_NAME))
def test_crafted_cases_end_in_documented_errors(worker, name):
    target = BY_NAME[name]
    answers = {case: worker.run(target, data) for case, data in target.crafted()}
    assert {case: a["outcome"] for case, a in answers.items()} == dict.fromkeys(answers,
                                                                                 "error")
    # Budgets are refused as such, before anything is allocated, naming where.
    budget = {"keras_h5": ("unwritten_65536x65536", "conv/conv/kernel"),
              "keras_weights_h5": ("unwritten_16384x16384", "layers/conv2d/vars/0"),
              "keras_zip": ("deflate_bomb_1gib", "model.weights.h5")}[name]
    answer = answers[budget[0]]
    assert answer["type"] == "WeightBudgetError" and budget[1] in answer["message"]


@settings(derandomize=True, deadline=None, max_examples=500, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_mutants_end_ok_or_in_documented_errors(worker, data):
    target = BY_NAME[data.draw(st.sampled_from(sorted(BY_NAME)), label="target")]
    pool = seeds(target)
    mutant = pool[data.draw(st.integers(0, len(pool) - 1), label="seed")]
    structured = data.draw(st.booleans(), label="structured")
    if structured:
        mutator = data.draw(st.sampled_from(target.mutators), label="mutator")
        rng = data.draw(st.randoms(use_true_random=False), label="rng")
        try:
            mutant = mutator(mutant, rng)
        except Exception:  # noqa: BLE001 - as in the runner: a mutator may not apply
            structured = False
    if not structured or data.draw(st.booleans(), label="and bytes"):
        edits = data.draw(edits_strategy(), label="edits")
        mutant = apply_edits(mutant, edits, other=pool[0])
    answer = worker.run(target, mutant)
    assert answer["outcome"] in ("ok", "error"), answer


@pytest.mark.slow
def test_fuzzing_run_is_clean(worker):
    report = fuzz(TARGETS, count=150, seed=7, worker=worker)
    assert passed(report), markdown(report) + "\n" + "\n".join(
        f"{name}: {b['input']} {b['outcome']}: {b.get('type')}: {b.get('message')}"
        for name, r in report.items() for b in r["bad"][:5])
