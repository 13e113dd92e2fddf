"""The training-speed table (benchmarks/train_speed.py, `zoo bench --train`):
its rows and files, images/s and ratios computed from the medians, the zoo's
step really training, failures as cells, bad input as one line. Sanity
only: no assertion about how fast anything is."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from benchmarks import train_speed
from benchmarks.peers import PeerUnavailable
from zoo.timing import time_interleaved

BATCH, SIZE, RUNS, WARMUP = 4, 64, 2, 3
# One first call, WARMUP untimed and RUNS timed steps on the one batch.
CALLS = 1 + WARMUP + RUNS


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """The real thing, tiny: MobileNetV2 with the Keras and PyTorch peers and
    the data pipeline (about 3 minutes on 2 busy cores, most of it compiling)."""
    out = tmp_path_factory.mktemp("train-speed")
    rc = train_speed.main(["--models", "mobilenet_v2", "--batch", str(BATCH), "--image-size",
                           str(SIZE), "--runs", str(RUNS), "--warmup", str(WARMUP),
                           "--peers", "keras,torch", "--out", str(out),
                           "--data-dir", str(tmp_path_factory.mktemp("data"))])
    assert rc == 0
    return out


def _doc(out):
    (path,) = out.glob("train-*.json")
    return json.loads(path.read_text())


@pytest.mark.slow
def test_table_rows_and_files(table):
    names = sorted(p.name for p in table.iterdir())
    assert len(names) == 3 and not any("partial" in n for n in names)
    assert {n.rsplit(".", 1)[1] for n in names} == {"json", "csv", "md"}
    assert names[0].startswith("train-cpu-") and "-jax" in names[0]
    doc = _doc(table)
    assert doc["env"]["torch_threads"] >= 1 and doc["env"]["keras"] and doc["env"]["torch"]
    (row,) = doc["results"]
    assert (row["model"], row["batch"], row["image_size"], row["dtype"]) == (
        "mobilenet_v2", BATCH, SIZE, "float32")
    assert row["status"] == "ok" and row["zoo_first_call_s"] > 0
    assert set(row["peers"]) == {"keras", "torch"}
    for m in list(row["peers"].values()) + [row["pipeline"]]:
        assert m["status"] == "ok", m["message"]
    assert row["host_peak_rss_bytes"] > 0
    md = next(table.glob("*.md")).read_text()
    assert "| mobilenet_v2 | 4 | 64 |" in md and "keras images/s (zoo x)" in md
    assert "torch images/s (zoo x)" in md and "pipeline images/s (x zoo)" in md
    assert "command: `" in md
    lines = next(table.glob("*.csv")).read_text().splitlines()
    assert len(lines) == 2 and "keras_ratio" in lines[0] and "pipeline_images_per_s" in lines[0]


@pytest.mark.slow
def test_images_per_s_is_batch_over_median(table):
    (row,) = _doc(table)["results"]
    zoo = {k[4:]: v for k, v in row.items() if k.startswith("zoo_")}
    for m in [zoo] + list(row["peers"].values()):
        assert m["timed_runs"] == RUNS  # the same number of steps for everyone
        assert m["p90_ms"] >= m["p50_ms"] >= m["min_ms"] > 0
        assert m["images_per_s"] == pytest.approx(BATCH / (m["p50_ms"] / 1e3))
    p = row["pipeline"]
    assert p["timed_runs"] == max(RUNS, train_speed.PIPELINE_MIN_BATCHES)
    assert p["images_per_s"] == pytest.approx(BATCH / (p["mean_ms"] / 1e3))


@pytest.mark.slow
def test_ratios_are_consistent(table):
    (row,) = _doc(table)["results"]
    zoo_ips = row["zoo_images_per_s"]
    for m in row["peers"].values():
        assert m["ratio"] == pytest.approx(zoo_ips / m["images_per_s"])
        assert m["ratio"] == pytest.approx(m["p50_ms"] / row["zoo_p50_ms"])
    assert row["pipeline"]["ratio"] == pytest.approx(row["pipeline"]["images_per_s"] / zoo_ips)
    md = next(table.glob("*.md")).read_text()
    keras = row["peers"]["keras"]
    assert f"{keras['images_per_s']:.1f} ({keras['ratio']:.2f}x)" in md


@pytest.mark.slow
def test_every_step_trains_on_the_repeated_batch(table):
    """The zoo's step is the real one: after 5 updates on one batch its loss
    is below the first (the peers' too)."""
    (row,) = _doc(table)["results"]
    losses = row["zoo_losses"]
    assert len(losses) == CALLS == 6 and np.isfinite(losses).all()
    assert losses[5] < losses[0]  # the loss computed after 5 updates
    for m in row["peers"].values():
        assert len(m["losses"]) == CALLS and m["losses"][-1] < m["losses"][0]


def test_failures_are_cells_and_the_row_goes_on(monkeypatch):
    """A peer that cannot run is "skipped" with the reason; one that fails
    mid-run is "error"; the zoo and the other peer are still timed."""
    def fake_zoo(name, batch, size):
        state = {"loss": 7.0}

        def call():
            time.sleep(0.002)
            state["loss"] -= 0.1
            return state["loss"]
        return call, np.zeros((batch, size, size, 3), np.float32), np.zeros(batch, np.int32)

    def keras_missing(name, images, labels):
        raise PeerUnavailable("Keras Applications has no " + name)

    def torch_breaks(name, images, labels):
        calls = []

        def call():
            calls.append(1)
            if len(calls) > 2:
                raise MemoryError("out of memory")
            return 1.0
        return call

    monkeypatch.setattr(train_speed, "zoo_step", fake_zoo)
    monkeypatch.setattr(train_speed, "keras_step", keras_missing)
    monkeypatch.setattr(train_speed, "torch_step", torch_breaks)
    row = train_speed.measure_model("efficientnet_lite0", batch=2, image_size=32,
                                    runs=3, warmup=1, pipeline=False)
    assert row["status"] == "ok" and row["zoo_timed_runs"] == 3
    assert row["peers"]["keras"] == {"status": "skipped", "ratio": None,
                                     "message": "Keras Applications has no efficientnet_lite0"}
    torch = row["peers"]["torch"]
    assert torch["status"] == "oom" and "out of memory" in torch["message"]
    assert torch["ratio"] is None and "pipeline" not in row
    md = train_speed.markdown([row])
    assert "skipped: Keras Applications has no efficientnet_lite0" in md and "| oom: " in md


def test_partial_file_kept_after_each_model(tmp_path, monkeypatch):
    """A run cut short keeps the finished models' rows."""
    def fake_measure(name, **kw):
        if name == "efficientnet_b0":
            raise KeyboardInterrupt
        return {"model": name, "batch": kw["batch"], "image_size": kw["image_size"],
                "status": "ok", "message": "", "zoo_p50_ms": 10.0, "peers": {}}

    monkeypatch.setattr(train_speed, "measure_model", fake_measure)
    with pytest.raises(KeyboardInterrupt):
        train_speed.main(["--models", "mobilenet_v2,efficientnet_b0", "--out", str(tmp_path)])
    (partial,) = tmp_path.glob("train-*.partial.json")
    doc = json.loads(partial.read_text())
    assert doc["partial"] and [r["model"] for r in doc["results"]] == ["mobilenet_v2"]


@pytest.mark.parametrize("args,message", [
    (["--models", "mobilenet_v9"], "unknown model 'mobilenet_v9'"),
    (["--peers", "keras,tvm"], "--peers tvm: known peers are keras, torch"),
    (["--models", "blazeface_short_range"], "the training step is a classifier's"),
    (["--batch", "0"], "--batch 0 (at least 1)"),
    (["--image-size", "16"], "--image-size 16 (at least 32)"),
])
def test_bad_input_is_one_line(args, message, tmp_path, capsys):
    assert train_speed.main(args + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith(train_speed.PROG)
    assert not list(tmp_path.iterdir())  # nothing measured, nothing written


def test_module_help_has_examples():
    r = subprocess.run([sys.executable, "-m", "benchmarks.train_speed", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    assert "--image-size" in r.stdout and "--workers" in r.stdout and "examples:" in r.stdout


def test_zoo_bench_train_delegates():
    """`zoo bench --train ...` is this module with the same options."""
    from helpers import zoo_cli

    if "--train" not in zoo_cli("bench", "--help").stdout:
        pytest.skip("zoo/cli.py does not delegate `zoo bench --train` yet")
    r = zoo_cli("bench", "--train", "--models", "mobilenet_v9")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("zoo bench --train: error:")
    assert "unknown model 'mobilenet_v9'" in r.stderr


def test_time_interleaved_rounds():
    """Every call runs once per round, in an order rotating by one; a call
    that raises leaves the rotation and the others go on."""
    order = []

    def call(name, fail_at=None):
        def run():
            order.append(name)
            if fail_at is not None and order.count(name) == fail_at:
                raise RuntimeError(f"{name} failed")
        return run

    rounds = []
    out = time_interleaved({"a": call("a"), "b": call("b"), "c": call("c", fail_at=2)},
                           runs=3, warmup=1, after_round=lambda i, n: rounds.append((i, n)))
    assert order == ["a", "b", "c", "b", "c", "a", "a", "b", "a", "b"]
    assert rounds == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert out["a"]["timed_runs"] == out["b"]["timed_runs"] == 3
    assert isinstance(out["c"], RuntimeError)
