"""Fuzzing the TFLite reader and the face models' TFLite-to-Flax mappings
(zoo.weights.fuzz.formats_tflite): every crafted attack ends in a documented
one-line error, and mutants of valid files (byte edits drawn by Hypothesis,
structured patches of the flatbuffer's indices, shapes and tables) end in
``ok`` or ``error``, never an escape, a hang, a crash or an allocation
beyond the budget. The seeds are built here, without network."""

import os
import random
import struct
import tempfile

import numpy as np
import pytest

from zoo.weights.fuzz import get_target
from zoo.weights.fuzz import formats_tflite as F
from zoo.weights.fuzz.mutate import apply_edits, edits_strategy
from zoo.weights.fuzz.runner import Worker, fuzz, markdown, passed

NAMES = ("tflite", "tflite_blazeface", "tflite_face_mesh")
MODELS = {"tflite_blazeface": "blazeface_short_range", "tflite_face_mesh": "face_mesh"}


@pytest.fixture(scope="module")
def worker():
    """One worker for the whole file. The first input of each mapping target
    traces its model in the worker (seconds, more on a loaded machine),
    hence the generous limit per input; the inputs themselves take well
    under a second."""
    with Worker(seconds=60) as w:
        yield w


@pytest.fixture(scope="module")
def targets():
    return {name: get_target(name) for name in NAMES}


def test_targets_are_registered_with_offline_seeds(targets):
    for name, t in targets.items():
        seeds = t.seeds()
        assert seeds and all(s[4:8] == b"TFL3" for s in seeds), name
        assert t.suffix == ".tflite" and t.crafted()
    # The mapping seeds: built here (float16, and int8 for BlazeFace), plus
    # MediaPipe's own files only when the weight cache already holds them.
    for name, model in MODELS.items():
        real = F.cached_real_file(model)
        built = [F.synthetic(model)] + ([F.synthetic(model, int8=True)]
                                        if model == "blazeface_short_range" else [])
        assert targets[name].seeds() == built + ([real] if real else [])


@pytest.fixture(scope="module")
def crafted_answers(worker, targets):
    """Each target's seeds (which must read cleanly) and crafted cases, run once."""
    cache = {}

    def run(name):
        if name not in cache:
            t = targets[name]
            seeds = [worker.run(t, seed) for seed in t.seeds()]
            cache[name] = seeds, {case: worker.run(t, data) for case, data in t.crafted()}
        return cache[name]

    return run


@pytest.mark.parametrize("name", NAMES)
def test_crafted_cases_end_in_a_documented_error(crafted_answers, name):
    seeds, outcomes = crafted_answers(name)
    assert all(a["outcome"] == "ok" for a in seeds), seeds
    bad = {case: a for case, a in outcomes.items() if a["outcome"] != "error"}
    assert not bad, bad
    for a in outcomes.values():  # one line, naming the file (the worker checked it too)
        assert "input.tflite" in a["message"] and "\n" not in a["message"]
    types = {a["type"] for a in outcomes.values()}
    assert types <= {"TFLiteFormatError", "WeightBudgetError", "WeightMismatchError"}, types


@pytest.mark.parametrize("name,case,text", [
    # The failures an earlier fuzzer found, each with the message that says what.
    ("tflite", "dequantize_without_inputs", "DEQUANTIZE) with no input"),
    ("tflite", "more_zero_points_than_scales", "1 quantization scales but 3 zero points"),
    ("tflite", "op_reads_its_own_output", "its own output: a cycle"),
    ("tflite", "op_reads_later_output", "which runs later: a cycle"),
    ("tflite", "names_shared_1gb", "more than twice the file's"),
    ("tflite", "subgraph_index_out_of_range", "init_subgraph_index 7 of 2 subgraphs"),
    ("tflite_blazeface", "deep_nested_concat", "chains of [0]"),
    ("tflite_blazeface", "concat_fan_out_2e40", "more than 64 chains"),
    ("tflite_blazeface", "cycle_through_output", "its own output: a cycle"),
    ("tflite_blazeface", "conv_with_one_input", "has 1 inputs; input 1 is needed"),
    ("tflite_blazeface", "other_face_model", "chains of [59]"),
    ("tflite_face_mesh", "dequantize_without_inputs", "DEQUANTIZE) with no input"),
    ("tflite_face_mesh", "add_same_input_twice", "expected a residual block"),
])
def test_known_failures_are_named(crafted_answers, name, case, text):
    answer = crafted_answers(name)[1][case]
    assert answer["outcome"] == "error" and text in answer["message"], answer


def test_structured_mutators_patch_one_meaningful_integer():
    seed = F.reader_seeds()[0]
    kinds = {f.kind for f in F._fields(seed)}
    assert {"op input", "op output", "shape dimension", "tensor buffer", "opcode index",
            "tensors entry", "operators count", "scale count"} <= kinds
    for mutator in F.MUTATORS:
        a = [mutator(seed, random.Random(3)) for _ in range(2)]
        b = [mutator(seed, random.Random(3)) for _ in range(2)]
        assert a == b and all(m != seed and len(m) == len(seed) for m in a), mutator
        # One field changed: the files differ in at most 8 consecutive bytes.
        diff = [i for i, (x, y) in enumerate(zip(seed, a[0])) if x != y]
        assert diff[-1] - diff[0] < 8, mutator
    # An op input set to its own output is found (and refused by the reader).
    rng, own = random.Random(0), 0
    for _ in range(200):
        data = F.patch_index(seed, rng)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.tflite")
            with open(path, "wb") as f:
                f.write(data)
            try:
                F.read_and_touch(path)
            except ValueError as e:
                own += "a cycle" in str(e)
    assert own > 0


import hypothesis  # noqa: E402  (a test dependency: failing to import must fail, not skip)

st = hypothesis.strategies


MUTANT = dict(which=st.integers(0, 7),
              structured=st.none() | st.tuples(st.integers(0, len(F.MUTATORS) - 1),
                                               st.integers(0, 2**32 - 1)),
              edits=st.just([]) | edits_strategy(max_edits=4))
SETTINGS = dict(derandomize=True, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))


def check_mutant(worker, t, which, structured, edits):
    """A seed, optionally patched by one structured mutator, then byte-edited."""
    seeds = t.seeds()
    data = seeds[which % len(seeds)]
    if structured is not None:
        mutator, r = structured
        data = F.MUTATORS[mutator](data, random.Random(r))
    data = apply_edits(data, edits, other=seeds[(which + 1) % len(seeds)])
    answer = worker.run(t, data)
    assert answer["outcome"] in ("ok", "error"), answer


@hypothesis.settings(max_examples=100, **SETTINGS)
@hypothesis.given(**MUTANT)
def test_reader_mutants_end_ok_or_error(worker, targets, which, structured, edits):
    check_mutant(worker, targets["tflite"], which, structured, edits)


@pytest.mark.parametrize("name", ["tflite_blazeface", "tflite_face_mesh"])
@hypothesis.settings(max_examples=25, **SETTINGS)
@hypothesis.given(**MUTANT)
def test_mapping_mutants_end_ok_or_error(worker, targets, name, which, structured, edits):
    check_mutant(worker, targets[name], which, structured, edits)


def test_patched_counts_and_offsets_past_the_end(worker, targets):
    """Vector lengths and table offsets set to the largest values: refused
    before any allocation or loop they would size."""
    t = targets["tflite"]
    seed = F.reader_seeds()[0]
    for f in F._fields(seed):
        if f.kind.endswith("count") or f.kind.endswith("entry"):
            out = bytearray(seed)
            struct.pack_into("<I", out, f.pos, 0xFFFFFFFF)
            answer = worker.run(t, bytes(out))
            assert answer["outcome"] in ("ok", "error"), (f.kind, answer)


@pytest.mark.slow
def test_fuzz_150_mutants_per_target(worker, targets):
    report = fuzz([targets[n] for n in NAMES], count=150, seed=1, worker=worker)
    assert passed(report), markdown(report) + str({n: r["bad"][:3] for n, r in report.items()})
    for r in report.values():
        assert r["tried"] == 150 and r["outcomes"].get("error", 0) > 0


@pytest.mark.slow
@pytest.mark.parametrize("model,int8", [("blazeface_short_range", False),
                                        ("blazeface_short_range", True), ("face_mesh", False)])
def test_synthetic_seeds_are_the_architecture(tmp_path, model, int8):
    """The seeds are real TFLite models of our architectures: LiteRT runs
    them, and our Flax model with the weights mapped from them computes the
    same outputs (so the mutants start from files the mapping fully walks)."""
    import jax

    import zoo
    from zoo.models.blazeface import variables_from_tflite

    litert = pytest.importorskip("ai_edge_litert.interpreter")
    path = tmp_path / f"{model}.tflite"
    path.write_bytes(F.synthetic(model, int8))
    it = litert.Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    size = zoo.get_spec(model).input_size
    x = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    theirs = [it.get_tensor(d["index"]) for d in it.get_output_details()]
    ours = jax.jit(zoo.build(model).apply)(variables_from_tflite(path, model), x)
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs):
        a = np.asarray(a)
        b = b.reshape(a.shape)
        assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()
