"""The PyTorch (zip, legacy) and safetensors readers under fuzzing
(zoo.weights.fuzz.formats_torch): every crafted attack ends in a documented
one-line error naming the file, every mutant of a valid file ends ``ok`` or
``error`` (never an escape, a budget overrun, a hang or a crash), and the
hand-built seed files are what torch and safetensors themselves read."""

import io
import os
import random
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.weights.errors import WeightBudgetError, WeightError, WeightFileError
from zoo.weights.fuzz import get_target
from zoo.weights.fuzz.formats_torch import OD, T, legacy_file, safetensors_file, zip_file
from zoo.weights.fuzz.mutate import apply_edits, edits_strategy
from zoo.weights.fuzz.runner import Worker, fuzz, markdown, passed
from zoo.weights.torch_pickle import load_safetensors, load_torch, read_state_dict

NAMES = ["torch_zip", "torch_legacy", "safetensors"]
# The error class each attack must end in, where it matters which.
EXPECTED = {
    ("torch_zip", "stride0_expanded_1.6GB"): "WeightBudgetError",
    ("torch_legacy", "stride0_expanded_1.6GB"): "WeightBudgetError",
    ("torch_zip", "many_views_of_one_storage"): "WeightBudgetError",
    ("torch_zip", "deflate_bomb_1GiB"): "WeightBudgetError",
    ("torch_zip", "declared_size_huge"): "WeightBudgetError",
    ("torch_zip", "data.pkl:unsafe_global"): "UnsafePickleError",
    ("torch_legacy", "pickle:unsafe_stack_global"): "UnsafePickleError",
}


@pytest.fixture(scope="module")
def worker():
    # One worker process for the whole file (it imports the readers once).
    with Worker(seconds=20) as w:
        yield w


@pytest.mark.parametrize("name", NAMES)
def test_crafted_attacks_end_in_one_line_errors(worker, name):
    target = get_target(name)
    cases = target.crafted()
    assert len(cases) >= 30
    wrong = {}
    for case, data in cases:
        answer = worker.run(target, data)
        message = answer.get("message") or ""
        expected = EXPECTED.get((name, case))
        if (answer["outcome"] != "error" or "\n" in message
                or f"input{target.suffix}" not in message
                or (expected and answer["type"] != expected)):
            wrong[case] = (answer["outcome"], answer["type"], message[:200])
    assert not wrong, wrong


def _example(target, mode, seed_index, mutator, rng_seed, edits):
    seeds = target.seeds()
    data = seeds[seed_index % len(seeds)]
    if mode != "edits":
        data = target.mutators[mutator % len(target.mutators)](data, random.Random(rng_seed))
    if mode != "structured":
        data = apply_edits(data, edits, seeds[(seed_index + 1) % len(seeds)])
    return data


@pytest.mark.parametrize("name", NAMES)
@settings(derandomize=True, deadline=None, max_examples=200, database=None)
@given(mode=st.sampled_from(["edits", "structured", "structured", "both"]),
       seed_index=st.integers(0, 9), mutator=st.integers(0, 9),
       rng_seed=st.integers(0, 2**32 - 1), edits=edits_strategy())
def test_mutants_end_ok_or_error(worker, name, mode, seed_index, mutator, rng_seed, edits):
    """Generic byte edits (which shrink to a few) and the format-aware
    mutators (a size/stride/offset, a zip header field, a JSON number)."""
    target = get_target(name)
    data = _example(target, mode, seed_index, mutator, rng_seed, edits)
    answer = worker.run(target, data)
    assert answer["outcome"] in ("ok", "error"), answer


@pytest.mark.slow
def test_fuzz_150_mutants_per_format(worker):
    report = fuzz([get_target(n) for n in NAMES], count=150, seed=0, worker=worker)
    assert passed(report), markdown(report) + "\n" + "\n".join(
        f"{name}: {b['input']} {b['outcome']} {b['type']}: {b['message']}"
        for name, r in report.items() for b in r["bad"][:5])
    assert all(r["tried"] == 150 for r in report.values())


# ---- The seeds are real files ----------------------------------------------

def _flat(obj, prefix=""):
    """Tensors as (dtype name, shape, bytes): numpy has no float8 for torch to give."""
    out = {}
    for k, v in obj.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif hasattr(v, "detach"):
            raw = v.detach().contiguous().reshape(-1).view(__import__("torch").uint8)
            out[f"{prefix}{k}"] = (str(v.dtype).split(".")[-1], tuple(v.shape),
                                   raw.numpy().tobytes())
    return out


@pytest.mark.parametrize("name", ["torch_zip", "torch_legacy"])
def test_seeds_are_what_torch_reads(tmp_path, name):
    torch = pytest.importorskip("torch")
    for i, data in enumerate(get_target(name).seeds()):
        path = tmp_path / f"seed{i}.pth"
        path.write_bytes(data)
        ref = torch.load(path, weights_only=True)
        ref = ref.get("model", ref.get("state_dict", ref))  # the wrapped seeds
        want, got = _flat(ref), read_state_dict(path)
        assert list(got) == list(want)
        assert {k: (a.dtype.name, a.shape, a.tobytes()) for k, a in got.items()} == want


def test_safetensors_seeds_are_what_safetensors_reads(tmp_path):
    numpy_st = pytest.importorskip("safetensors.numpy")
    for i, data in enumerate(get_target("safetensors").seeds()):
        path = tmp_path / f"seed{i}.safetensors"
        path.write_bytes(data)
        want, got = numpy_st.load_file(path), read_state_dict(path)
        assert sorted(got) == sorted(want)
        for k, v in want.items():
            assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
            np.testing.assert_array_equal(got[k], v, err_msg=k)


# ---- What the budgets still let through -------------------------------------

def test_deflated_repack_reads(tmp_path):
    """A torch zip re-packed with deflate (ratio about 1) reads as the original."""
    seed = get_target("torch_zip").seeds()[0]
    src = zipfile.ZipFile(io.BytesIO(seed))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info))
    (tmp_path / "a.pth").write_bytes(seed)
    (tmp_path / "b.pth").write_bytes(buf.getvalue())
    a, b = load_torch(tmp_path / "a.pth"), load_torch(tmp_path / "b.pth")
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_small_expanded_and_empty_views_read(tmp_path, fmt):
    """A stride-0 view no bigger than its storage (a (1, n) position-id
    buffer) is materialised; an empty tensor may have any offset."""
    base = np.arange(4, dtype=np.float32)
    sd = OD([("pos", T("0", "float32", 0, (1, 4), (0, 1), 4)),
             ("empty", T("0", "float32", 99, (0, 3), (3, 1), 4))])
    path = tmp_path / "v.pth"
    path.write_bytes(zip_file(sd, {"0": base.tobytes()}) if fmt == "zip"
                     else legacy_file(sd, {"0": (base.dtype, base.tobytes())}))
    got = load_torch(path)
    np.testing.assert_array_equal(got["pos"], base[None])
    assert got["empty"].shape == (0, 3)


def test_shared_mappings_are_walked_once(tmp_path):
    """d_{i+1} = {"a": d_i, "b": d_i}, 60 deep: 2**60 paths, read in linear time."""
    w = T("0", "float32", 0, (1,), (1,), 1)
    d = {"w": w}
    for _ in range(60):
        d = {"a": d, "b": d}
    path = tmp_path / "dag.pth"
    from zoo.weights.fuzz.formats_torch import PickleWriter

    class Memo(PickleWriter):  # memoize dicts, as pickle does: each is written once
        def value(self, v):
            if isinstance(v, dict) and id(v) in self.seen:
                self.out += b"j" + self.seen[id(v)].to_bytes(4, "little")
                return
            if isinstance(v, dict):
                self.seen[id(v)] = self.memo
            super().value(v)

    writer = Memo()
    writer.seen = {}
    writer.value(d)
    path.write_bytes(zip_file(None, {"0": np.ones(1, np.float32).tobytes()},
                              pkl=writer.finish()))
    got = load_torch(path)
    assert list(got) == ["a" + ".a" * 59 + ".w"]


def test_safetensors_brackets_inside_names_are_not_nesting(tmp_path):
    path = tmp_path / "b.safetensors"
    path.write_bytes(safetensors_file({"[[[[{{": np.ones(2, np.float32)},
                                      metadata={"note": "]]]] {{{{ \\\" [["}))
    assert list(load_safetensors(path)) == ["[[[[{{"]


def test_errors_are_the_documented_family(tmp_path):
    from zoo.weights.files import load_weight_file

    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "missing.pth")
    with pytest.raises(WeightFileError, match="x.onnx"):
        load_weight_file(_touch(tmp_path / "x.onnx"), "mobilenet_v2")
    with pytest.raises(WeightFileError, match="dir.pth"):
        load_torch(_mkdir(tmp_path / "dir.pth"))
    huge = tmp_path / "huge.pth"
    huge.write_bytes(zip_file(OD([("w", T("0", "float32", 0, (64, 64), (0, 0), 1))]),
                              {"0": bytes(4)}))
    with pytest.raises(WeightBudgetError, match="huge.pth: tensor w:") as err:
        load_torch(huge)
    assert isinstance(err.value, WeightError) and "\n" not in str(err.value)


def _touch(path):
    path.write_bytes(b"")
    return path


def _mkdir(path):
    os.mkdir(path)
    return path
