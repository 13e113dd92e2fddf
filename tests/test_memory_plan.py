"""benchmarks.memory_plan: lifetimes from jaxprs, the greedy-by-size arena,
its bounds on real models, and `zoo bench --memory-plan`."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import memory_plan as mp
from benchmarks.memory_plan import Tensor


def _overlaps(tensors, offsets):
    """Pairs that share a step and a byte, by brute force over all pairs."""
    bad = []
    for i, j in itertools.combinations(range(len(tensors)), 2):
        a, b = tensors[i], tensors[j]
        if a.size == 0 or b.size == 0:
            continue
        in_time = a.start <= b.end and b.start <= a.end
        in_space = offsets[i] < offsets[j] + b.size and offsets[j] < offsets[i] + a.size
        if in_time and in_space:
            bad.append((i, j))
    return bad


def _max_live_by_steps(tensors):
    steps = range(min(t.start for t in tensors), max(t.end for t in tensors) + 1)
    return max(sum(t.size for t in tensors if t.start <= s <= t.end) for s in steps)


def test_three_tensors_hand_worked_plan_is_optimal():
    # A: 4 bytes live at steps 0-1, B: 3 bytes at 1-2, C: 2 bytes at 2-3.
    # Greedy by size: A (largest) at 0..4. B shares step 1 with A, so it goes
    # above A at 4..7. C shares step 2 with B only; the gap 0..4 under B holds
    # it, so C lands at offset 0. Arena = 7 bytes.
    # Live bytes per step: 4, 4+3=7, 3+2=5, 2 -> the bound is 7, so the plan is
    # optimal; without reuse it would take 4+3+2 = 9.
    ts = [Tensor(4, 0, 1, "A"), Tensor(3, 1, 2, "B"), Tensor(2, 2, 3, "C")]
    offsets = mp.greedy_by_size(ts)
    assert offsets == [0, 4, 0]
    assert mp.arena_bytes(ts, offsets) == 7
    assert mp.max_live_bytes(ts) == 7
    assert mp.no_reuse_bytes(ts) == 9


def test_alignment_rounds_offsets_up():
    # A at 0..5; B shares its step, so it goes at 5 rounded up to 8 -> arena 8 + 3 = 11.
    ts = [Tensor(5, 0, 0), Tensor(3, 0, 0)]
    offsets = mp.greedy_by_size(ts, alignment=8)
    assert offsets == [0, 8] and mp.arena_bytes(ts, offsets) == 11


def test_random_plans_never_overlap_and_sit_between_the_bounds():
    rng = np.random.default_rng(0)
    for _ in range(30):
        ts = []
        for _ in range(25):
            s = int(rng.integers(0, 20))
            ts.append(Tensor(int(rng.integers(0, 100)), s, s + int(rng.integers(0, 6))))
        offsets = mp.greedy_by_size(ts)
        assert not _overlaps(ts, offsets)
        arena = mp.arena_bytes(ts, offsets)
        assert _max_live_by_steps(ts) == mp.max_live_bytes(ts) <= arena <= mp.no_reuse_bytes(ts)


def test_bad_lifetime_is_one_line_error():
    with pytest.raises(ValueError, match="start <= end"):
        mp.greedy_by_size([Tensor(4, 3, 1, "backwards")])


def test_lifetimes_inline_nested_jit_and_exclude_weights():
    def f(w, x):
        a = jnp.sin(x)                       # step 0
        b = jax.jit(lambda t: t * 2.0)(a)    # step 1, inside a pjit: inlined
        return b + w                         # step 2, the output

    w = jnp.ones(4, jnp.float32)
    x = jnp.ones(4, jnp.float32)
    life = mp.lifetimes(jax.make_jaxpr(f)(w, x), n_weights=1)
    assert life["equations"] == 3
    assert life["weights_bytes"] == 16 and life["input_bytes"] == 16
    assert life["output_bytes"] == 16
    # x and the output live throughout; a from 0 to its last read at 1;
    # b from 1 to 2. Every one is 4 float32 = 16 bytes.
    spans = sorted((t.start, t.end, t.size) for t in life["tensors"])
    assert spans == [(0, 1, 16), (0, 2, 16), (0, 2, 16), (1, 2, 16)]
    # Live per step: 48, 64, 48.
    assert mp.max_live_bytes(life["tensors"]) == 64


@pytest.fixture(scope="module")
def traced():
    return {"mobilenet_v3_small": mp.trace("mobilenet_v3_small", input_size=64),
            "blazeface_short_range": mp.trace("blazeface_short_range")}


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "blazeface_short_range"])
def test_real_model_plan_between_bounds_without_overlap(traced, name):
    ts = traced[name]["lifetimes"]["tensors"]
    assert len(ts) > 500  # every intermediate of the inlined jaxpr, not a few calls
    offsets = mp.greedy_by_size(ts)
    arena = mp.arena_bytes(ts, offsets)
    bound = _max_live_by_steps(ts)
    assert bound <= arena <= sum(t.size for t in ts)
    assert arena < 0.2 * sum(t.size for t in ts)  # reuse matters on a real network
    # Brute force over all pairs, vectorised one row at a time.
    st = np.array([t.start for t in ts]); en = np.array([t.end for t in ts])
    sz = np.array([t.size for t in ts]); off = np.array(offsets)
    for i in range(len(ts)):
        clash = ((st[i] <= en) & (st <= en[i]) & (off[i] < off + sz) & (off < off[i] + sz[i])
                 & (sz > 0) & (sz[i] > 0))
        clash[i] = False
        assert not clash.any(), (ts[i], [ts[j] for j in np.flatnonzero(clash)])


def test_model_memory_plan_fields_and_xla(tmp_path):
    r = mp.model_memory_plan("mobilenet_v3_small", input_size=64)
    assert r["input_shape"] == [1, 64, 64, 3]
    assert r["input_bytes"] == 64 * 64 * 3 * 4 and r["output_bytes"] == 1000 * 4
    assert r["max_live_bytes"] <= r["arena_bytes"] <= r["no_reuse_bytes"]
    # XLA's arguments are the weights plus the image.
    assert r["xla_argument_bytes"] == pytest.approx(r["weights_bytes"] + r["input_bytes"],
                                                    rel=1e-3)
    assert r["xla_output_bytes"] >= 4000 and r["xla_temp_bytes"] > 0
    assert r["litert_arena_bytes"] is None
    md = mp.markdown([r, {"model": "broken", "status": "error", "message": "a|b"}])
    assert md.count("\n") == 4 and "| broken |" in md and "a/b" in md


def test_zoo_bench_memory_plan_dispatches(monkeypatch):
    import zoo.cli

    calls = []
    monkeypatch.setattr(mp, "main", lambda argv, prog: calls.append((argv, prog)) or 0)
    assert zoo.cli.main(["bench", "--memory-plan", "--models", "x", "--out", "d"]) == 0
    assert calls == [(["--models", "x", "--out", "d"], "zoo bench --memory-plan")]


def test_zoo_bench_memory_plan_end_to_end(tmp_path, capsys):
    import zoo.cli

    assert zoo.cli.main(["bench", "--memory-plan", "--models", "blazeface_short_range",
                         "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "| blazeface_short_range | 1x128x128x3 |" in out.out
    (md,) = tmp_path.glob("memory-plan-cpu-*.md")
    text = md.read_text()
    assert "--memory-plan" in text and "hardware:" in text and "date (UTC):" in text
    assert zoo.cli.main(["bench", "--memory-plan", "--models", "mobilenet_v9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo bench --memory-plan: error:") and err.count("\n") == 1


@pytest.mark.slow
def test_litert_arena_of_blazeface_export():
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("tensorflow")
    r = mp.litert_arena_child("blazeface_short_range", (1, 128, 128, 3))
    # During BlazeFace's first convolution (stride 2, 24 channels) the 128x128x3
    # input and its 64x64x24 output are both live, float32: the arena holds at
    # least both. It can never need more than every activation without reuse
    # (about 58 MiB in the jaxpr of the same network).
    assert 128 * 128 * 3 * 4 + 64 * 64 * 24 * 4 <= r["litert_arena_bytes"] < 58 * 2**20
    assert r["litert_tensors"] > 20
