"""Cost against sequence length (benchmarks.sequence): one row per length,
FLOPs, multiply-adds and argument bytes growing as hand counts of a tiny
TALNet say, the line fit checked on hand-worked numbers, one-line errors
naming the bad input. No assertion about how fast anything is."""

import contextlib
import io
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from benchmarks import env as bench_env
from benchmarks import sequence
from benchmarks.runner import FIELDS, measure

# One stream, two anchor scales: the smallest TALNet that still has every part
# (towers, NMS, SoI pooling, classifier).
F, H, SCALES = 4, 8, (2, 4)
TINY = dict(feature_dim=F, hidden=H, fc_width=16, pooled=4, scales=list(SCALES),
            num_proposals=4, num_classes=3, streams=["rgb"])
LENGTHS = (16, 32, 64)
# Multiply-adds per step by hand: per tower conv1 (k3, F -> H), conv2 (k3,
# H -> H), head (k1, H -> 3); plus the classifier's base conv (k1, F -> H).
# The rest (fc layers on a fixed number of proposals) does not grow with T.
MACS_PER_STEP = len(SCALES) * (3 * F * H + 3 * H * H + H * 3) + F * H  # 656


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = sequence.main(list(argv))
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    out = tmp_path_factory.mktemp("seq")
    rc, stdout, stderr = run_cli("--model", "talnet", "--model-options", json.dumps(TINY),
                                 "--lengths", ",".join(map(str, reversed(LENGTHS))),
                                 "--runs", "2", "--warmup", "1", "--out", str(out))
    assert rc == 0, stderr
    files = {p.suffix: p for p in out.iterdir()}
    doc = json.loads(files[".json"].read_text())
    return dict(out=out, stdout=stdout, files=files, doc=doc,
                rows={r["length"]: r for r in doc["results"]})


def test_one_row_per_length_and_the_files(measured):
    doc, rows = measured["doc"], measured["rows"]
    assert [r["length"] for r in doc["results"]] == list(LENGTHS)  # sorted ascending
    for length, r in rows.items():
        assert set(FIELDS) <= set(r) and r["status"] == "ok", r["message"]
        assert (r["model"], r["batch"], r["input_size"], r["timed_runs"]) == ("talnet", 1,
                                                                             length, 2)
        assert r["p90_ms"] >= r["p50_ms"] >= r["min_ms"] > 0 and r["compile_s"] > 0
        assert r["steps_per_s"] == pytest.approx(length / (r["p50_ms"] / 1e3))
    assert doc["options"]["scales"] == list(SCALES) and doc["env"]["jax"] == jax.__version__
    stem = f"seq-{bench_env.tag(doc['env'])}-"
    assert sorted(measured["files"]) == [".csv", ".json", ".md"]  # no partial file left
    assert all(p.name.startswith(stem) for p in measured["files"].values())
    csv_lines = measured["files"][".csv"].read_text().splitlines()
    assert csv_lines[0].startswith("length,") and [c.split(",")[0] for c in csv_lines[1:]] == \
        [str(v) for v in LENGTHS]
    md = measured["files"][".md"].read_text()
    assert md == measured["stdout"]
    assert f"jax {jax.__version__}" in md and "--lengths 64,32,16" in md
    for length in LENGTHS:
        assert f"\n| {length} | {rows[length]['p50_ms']:.2f} |" in md
    assert "| XLA FLOPs |" in md and "| latency p50 |" in md


def test_flops_grow_linearly_with_length(measured):
    f = {n: r["xla_flops"] for n, r in measured["rows"].items()}
    assert f[16] < f[32] < f[64]
    # An affine cost a + b L: doubling the length from 2L adds twice what
    # doubling from L added (the fixed classifier cost cancels).
    assert (f[64] - f[32]) / (f[32] - f[16]) == pytest.approx(2.0, rel=0.02)
    fit = measured["doc"]["fits"]["xla_flops"]
    assert fit["r2"] > 0.999 and fit["growth"] == "linear"
    # Per step, XLA counts the convolutions' 2 x MACs plus bias adds, ReLUs,
    # the max-pool and the NMS's tIoU per anchor: a little more, not less.
    assert 1.0 <= fit["slope"] / (2 * MACS_PER_STEP) <= 1.4
    marginal = [measured["rows"][n]["marginal_flops_per_step"] for n in LENGTHS]
    assert marginal[0] is None and marginal[2] == pytest.approx(marginal[1], rel=0.02)


def test_macs_and_argument_bytes_match_hand_counts(measured):
    rows = measured["rows"]
    for a, b in zip(LENGTHS, LENGTHS[1:]):
        assert rows[b]["macs"] - rows[a]["macs"] == (b - a) * MACS_PER_STEP
        # The only argument that grows is the float32 feature sequence.
        assert rows[b]["argument_bytes"] - rows[a]["argument_bytes"] == (b - a) * F * 4
        assert rows[b]["temp_bytes"] > rows[a]["temp_bytes"]
    assert measured["doc"]["fits"]["macs"]["slope"] == pytest.approx(MACS_PER_STEP)


def test_fit_line_on_hand_worked_numbers():
    exact = sequence.fit_line([1, 2, 4, 8], [5, 7, 11, 19])  # 3 + 2 x
    assert (exact["slope"], exact["intercept"], exact["r2"]) == pytest.approx((2, 3, 1))
    assert exact["curvature"] == pytest.approx(1) and exact["growth"] == "linear"
    # x 0,1,2, y 1,3,2: slope 1/2, intercept 3/2, residuals -1/2, 1, -1/2:
    # SS_res 3/2, SS_tot 2, R^2 1/4.
    noisy = sequence.fit_line([0, 1, 2], [1, 3, 2])
    assert (noisy["slope"], noisy["intercept"], noisy["r2"]) == pytest.approx((0.5, 1.5, 0.25))
    assert noisy["growth"] == "unclear"  # the cost falls from x 1 to 2
    square = sequence.fit_line([1, 2, 4, 8], [1, 4, 16, 64])  # marginal slopes 3, 6, 12
    assert square["curvature"] == pytest.approx(4) and square["growth"] == "super-linear"
    two = sequence.fit_line([1, 2], [1, 5])
    assert two["slope"] == pytest.approx(4) and two["r2"] is None and two["growth"] is None
    assert sequence.fit_line([1, 2, 3], [7, 7, 7])["growth"] == "constant"


@pytest.mark.parametrize("argv,names", [
    (["--lengths", "0,16,32"], "--lengths 0:"),
    (["--lengths", "16,abc,32"], "--lengths 'abc':"),
    (["--lengths", "12.5,16,32"], "--lengths '12.5':"),
    (["--lengths", "16,32,16"], "3 or more distinct lengths"),
    (["--lengths", "1,16,32", "--model-options", json.dumps(TINY)],
     "--lengths 1: talnet: the sequence has 1 steps, shorter than the smallest anchor scale 2"),
    (["--models", "mobilenet_v3_small", "--lengths", "16,32,64"],
     "--model mobilenet_v3_small: not a sequence model"),
    (["--model", "no_such_model"], "--model no_such_model: unknown model"),
    (["--model-options", "{\"hiddn\": 8}"], "--model-options: talnet: unknown option(s) hiddn"),
    (["--model-options", "{hidden: 8}"], "--model-options '{hidden: 8}' is not JSON"),
    (["--runs", "0"], "--runs 0"),
])
def test_bad_input_is_one_line_naming_it(tmp_path, argv, names):
    rc, stdout, stderr = run_cli(*argv, "--out", str(tmp_path))
    assert rc == 2 and stdout == "" and list(tmp_path.iterdir()) == []
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith(f"{sequence.PROG}: error: ") and names in stderr, stderr


class EveryFourth(nn.Module):
    """A planted sequence model that takes only multiples of 4 steps (it
    folds time into groups of 4), as a strided network would."""

    trace_input = jax.ShapeDtypeStruct((1, 8, 3), jnp.float32)

    @nn.compact
    def __call__(self, x):
        b, t, f = x.shape
        return nn.Dense(2)(x.reshape(b, t // 4, 4 * f))


def test_a_length_the_model_rejects_is_named():
    sequence.check_lengths(EveryFourth(), [8, 12, 400])
    with pytest.raises(sequence.LengthError, match=r"^--lengths 10: ") as e:
        sequence.check_lengths(EveryFourth(), [8, 10, 12])
    assert "\n" not in str(e.value)


def test_runner_length_is_for_sequence_models_only():
    r = measure("mobilenet_v3_small", batch=1, runs=1, warmup=0, length=64)
    assert r["status"] == "error" and "length=64 is for sequence models" in r["message"]


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as e:
        sequence.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--lengths 128,256,512,1024,2048" in text
