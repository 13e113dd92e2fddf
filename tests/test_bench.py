"""The benchmark suite (benchmarks.runner/env/report, `zoo bench`): every field
present and sane, failures recorded as results, files written atomically.
Sanity only: no assertion about how fast anything is."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import zoo
from benchmarks import env as bench_env
from benchmarks import report
from benchmarks.runner import FIELDS, measure, roofline
from helpers import zoo_cli, zoo_command

MODEL = "mobilenet_v3_small"  # the smallest network: about 2 s to build and compile


@pytest.fixture(scope="module")
def roof():
    return roofline(matmul_n=256, copy_mib=4, runs=2)


@pytest.fixture(scope="module")
def result(roof):
    return measure(MODEL, batch=1, dtype="float32", runs=3, warmup=1, roof=roof)


def test_roofline(roof):
    assert roof["matmul_flops_per_s"] > 0 and roof["copy_bytes_per_s"] > 0


def test_measure_fields_and_sanity(result):
    r = result
    assert set(r) == set(FIELDS)
    assert r["status"] == "ok" and r["message"] == ""
    assert (r["model"], r["batch"], r["dtype"], r["devices"]) == (MODEL, 1, "float32", 1)
    assert r["lower_s"] > 0 and r["compile_s"] > 0
    assert r["p90_ms"] >= r["p50_ms"] >= r["min_ms"] > 0
    assert r["mean_ms"] >= r["min_ms"] and r["std_ms"] >= 0
    assert r["throughput_ips"] == pytest.approx(1 / (r["p50_ms"] / 1e3))
    model = zoo.build(MODEL)
    assert r["macs"] == zoo.count_macs(model, 224)
    assert 0.9 <= r["flops_ratio"] <= 1.3 and r["flops_flag"] is False
    assert r["xla_flops"] == pytest.approx(r["flops_ratio"] * 2 * r["macs"])
    assert r["temp_bytes"] >= 0 and r["output_bytes"] == 1000 * 4
    assert r["argument_bytes"] >= r["weight_bytes"]  # the variables and the image
    _, variables = zoo.create(MODEL)
    assert r["params"] == zoo.count_params(variables) == 2542856
    assert r["weight_bytes"] >= 4 * r["params"]  # plus BatchNorm statistics
    # CPU keeps no device memory statistics: the host's peak RSS instead.
    assert r["device_peak_bytes"] is None and r["host_peak_rss_bytes"] > 0
    assert r["roofline_fraction"] == pytest.approx(
        r["achieved_flops_per_s"] / r["roofline_flops_per_s"])
    assert r["achieved_flops_per_s"] == pytest.approx(2 * r["macs"] / (r["p50_ms"] / 1e3))


@pytest.mark.parametrize("exc,status", [
    (MemoryError("cannot allocate"), "oom"),
    (RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 9.1GiB"), "oom"),
    (ZeroDivisionError("inside the model"), "error"),
])
def test_failures_are_results_and_the_run_goes_on(monkeypatch, exc, status):
    real_create = zoo.create

    def create(name, **kw):
        if name == "efficientnet_b7":
            raise exc
        return real_create(name, **kw)

    monkeypatch.setattr(zoo, "create", create)
    names = ["efficientnet_b7", "not_a_model"] + ([MODEL] if status == "error" else [])
    rows = [measure(name, batch=1, runs=1, warmup=0) for name in names]
    assert [r["status"] for r in rows] == [status, "error", "ok"][:len(names)]
    assert type(exc).__name__ in rows[0]["message"] and str(exc).split(":")[0] in rows[0]["message"]
    assert "unknown model 'not_a_model'" in rows[1]["message"]
    assert rows[0]["p50_ms"] is None and rows[0]["host_peak_rss_bytes"] > 0
    assert set(rows[0]) == set(FIELDS)


def test_time_budget_exceeded_is_timeout():
    r = measure(MODEL, batch=1, runs=1, warmup=0, time_budget=0.0)
    assert r["status"] == "timeout" and "time budget 0 s exceeded" in r["message"]
    assert r["p50_ms"] is None


def test_env_record_and_tag():
    e = bench_env.collect(["zoo", "bench"])
    for k in ("jax", "jaxlib", "flax", "backend", "device_kind", "device_count", "cpu",
              "cpu_cores", "xla_flags", "git_commit", "date_utc", "command"):
        assert k in e
    assert e["jax"] == "0.10.2" and e["command"] == ["zoo", "bench"]
    assert bench_env.tag(e) == f"cpu-{os.cpu_count()}cores-jax0.10.2"
    gpu = dict(e, backend="gpu", device_kind="NVIDIA A100-SXM4-40GB", device_count=8)
    assert bench_env.tag(gpu) == "gpu-nvidia-a100-sxm4-40gbx8-jax0.10.2"


def _results(result):
    failed = dict.fromkeys(FIELDS)
    failed.update(model="efficientnet_b7", batch=8, dtype="float32", devices=1,
                  implementation="auto", status="oom", message="MemoryError: | big")
    slower = dict(result, p50_ms=result["p50_ms"] * 1.5)
    return [dict(result, repeat=0), dict(failed, repeat=0), dict(slower, repeat=1),
            dict(failed, repeat=1)]


def test_report_writes_json_csv_md(tmp_path, result, roof):
    env = bench_env.collect(["zoo", "bench", "--models", MODEL])
    paths = report.write(_results(result), env, tmp_path, roof=roof, stamp="20250101T000000Z")
    stem = f"bench-{bench_env.tag(env)}-20250101T000000Z"
    assert {p.name for p in paths.values()} == {stem + s for s in (".json", ".csv", ".md", ".png")}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())
    doc = json.loads(paths["json"].read_text())
    assert doc["env"]["jax"] == "0.10.2" and doc["command"] == ["zoo", "bench", "--models", MODEL]
    assert doc["roofline"] == roof and len(doc["results"]) == 4
    ok, failed = doc["summary"]
    assert ok["repeats"] == 2 and ok["p50_min"] == result["p50_ms"]
    assert ok["p50_spread"] == pytest.approx(0.5)
    assert failed["status"] == "oom" and failed["repeats_ok"] == 0
    rows = paths["csv"].read_text().splitlines()
    assert rows[0].split(",")[:3] == ["repeat", "model", "batch"] and len(rows) == 5
    md = paths["md"].read_text()
    assert f"| {MODEL} | 1 | float32 | {result['p50_ms']:.2f} |" in md
    assert "50.0%" in md and "| oom: MemoryError: / big |" in md
    assert "jax 0.10.2" in md and f"--models {MODEL}" in md


def test_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    report.write_atomic(target, "old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        report.write_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_compare(tmp_path, result):
    env = bench_env.collect(["zoo", "bench"])
    a = report.write(_results(result)[:2], env, tmp_path / "a")["json"]
    faster = dict(result, p50_ms=result["p50_ms"] / 2, repeat=0)
    b = report.write([faster], env, tmp_path / "b")["json"]
    text = report.compare(a, b)
    assert f"| {MODEL} | 1 | float32 | {result['p50_ms']:.2f} | {result['p50_ms'] / 2:.2f} | 0.50 |" in text
    assert "| efficientnet_b7 | 8 | float32 | oom | absent | - |" in text


def test_cli_bench_end_to_end_and_compare(tmp_path):
    r = zoo_cli("bench", "--models", "mobilenet_v3_s*", "--batch", "1", "--runs", "2",
                "--warmup", "1", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert f"| {MODEL} | 1 | float32 |" in r.stdout and "| ok |" in r.stdout
    # No terminal: a log line per configuration instead of the bar.
    assert f"[1/1] {MODEL} b1 float32: p50 " in r.stderr
    assert not list(tmp_path.glob("*.partial.json"))  # removed once the full files exist
    [js] = tmp_path.glob("bench-cpu-*cores-jax0.10.2-*.json")
    assert {p.suffix for p in tmp_path.iterdir()} == {".json", ".csv", ".md", ".png"}
    [png] = tmp_path.glob("*.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(js.read_text())
    assert doc["command"][1:3] == ["bench", "--models"] and doc["results"][0]["status"] == "ok"
    r = zoo_cli("bench", "compare", str(js), str(js))
    assert r.returncode == 0, r.stderr
    assert f"| {MODEL} | 1 | float32 |" in r.stdout and r.stdout.rstrip().endswith("| 1.00 |")
    png.unlink()
    r = zoo_cli("bench", "plot", str(js))
    assert r.returncode == 0 and png.exists(), r.stderr


def test_cli_bench_interrupted_keeps_finished_configurations(tmp_path):
    """Ctrl-C during the second configuration: the first one's result is on disk."""
    cmd = zoo_command("bench", "--models", f"{MODEL},mobilenet_v3_large", "--runs", "2",
                      "--warmup", "0", "--out", str(tmp_path))
    # A child inherits ignored signals, and pytest-xdist's workers ignore
    # SIGINT: give the child the default handler, as a terminal's would be.
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stderr:
            if line.startswith("[1/2]"):
                proc.send_signal(signal.SIGINT)
                break
        proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0
    [partial] = tmp_path.glob("bench-*.partial.json")
    doc = json.loads(partial.read_text())
    assert doc["partial"] and [r["model"] for r in doc["results"]] == [MODEL]
    assert doc["results"][0]["status"] == "ok" and doc["command"][1] == "bench"
    assert not list(tmp_path.glob("*.md"))  # no table claims to be complete


@pytest.mark.parametrize("args,message", [
    (("bench", "--models", "effnet_b0"), "Did you mean 'efficientnet_b0'"),
    (("bench", "--models", "resnet*"), "matches no model"),
    (("bench", "compare", "only_one.json"), "compare takes two result files"),
    (("bench", "mobilenet_v2"), "unknown action 'mobilenet_v2'"),
    (("bench", "plot", "missing.json"), "missing.json is not a zoo bench result file"),
    (("bench", "--models", MODEL, "--dtype", "int8"), "--dtype ['int8']"),
    (("bench", "--models", MODEL, "--peers", "tvm"),
     "--peers tvm: known peers are keras, keras_tf, torch, litert, onnxruntime"),
])
def test_cli_bench_errors(args, message):
    r = zoo_cli(*args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_peers_side_by_side(tmp_path, result):
    """A peer is timed like the zoo's path and reported as a ratio; one that
    cannot run here is a note in the table, not a crash."""
    pytest.importorskip("torch")
    from benchmarks.runner import measure_peer

    torch_peer = measure_peer("torch", "efficientnet_lite0", batch=1, runs=2, warmup=1,
                              zoo_p50_ms=10.0)
    assert torch_peer["status"] == "ok" and torch_peer["p50_ms"] > 0
    assert torch_peer["ratio"] == pytest.approx(torch_peer["p50_ms"] / 10.0)
    skipped = measure_peer("torch", MODEL, batch=1, runs=2, warmup=1)
    assert skipped["status"] == "skipped" and "no PyTorch definition" in skipped["message"]
    with_peers = dict(result, peers={"torch": skipped, "keras": dict(torch_peer, peer="keras")})
    table = report.markdown(report.summarize([with_peers]))
    assert "keras p50 ms (x zoo) | torch p50 ms (x zoo) |" in table
    assert f"({torch_peer['ratio']:.2f}x)" in table and "skipped: no PyTorch definition" in table
    csv_text = report.to_csv([with_peers])
    assert "keras_p50_ms,keras_ratio,keras_status,torch_p50_ms" in csv_text.splitlines()[0]


def test_cli_bench_help_has_examples():
    r = zoo_cli("bench", "--help")
    assert r.returncode == 0 and "zoo bench compare" in r.stdout and "--time-budget" in r.stdout


def test_data_parallel_over_two_simulated_devices():
    code = textwrap.dedent(f"""
        import json, jax
        from benchmarks.runner import measure
        assert len(jax.devices()) == 2
        ok = measure({MODEL!r}, batch=2, runs=1, warmup=0, data_parallel=True)
        odd = measure({MODEL!r}, batch=3, runs=1, warmup=0, data_parallel=True)
        print(json.dumps([ok, odd]))
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    ok, odd = json.loads(r.stdout.strip().splitlines()[-1])
    assert ok["status"] == "ok" and ok["devices"] == 2
    assert ok["macs"] == 2 * zoo.count_macs(zoo.build(MODEL), 224)
    assert 0.9 <= ok["flops_ratio"] <= 1.3  # per-device cost x devices = whole batch
    assert odd["status"] == "error" and "does not split over 2 devices" in odd["message"]
    assert ok["roofline_fraction"] is None  # no roof given
    assert "| 2 (2 dev) | float32 |" in report.markdown([dict(ok, repeats=1)])


def test_pytest_benchmark_entry_point_smoke(tmp_path):
    """`pytest benchmarks/ --benchmark-only` runs and saves pytest-benchmark's JSON."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "pb.json"
    # Not under the parent's xdist: pytest-benchmark disables itself there.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env.update(ZOO_BENCH_MODELS=MODEL, ZOO_BENCH_ROUNDS="2")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-n", "0", os.path.join(root, "benchmarks"), "--benchmark-only",
                        f"--benchmark-json={out}"],
                       capture_output=True, text=True, timeout=300, env=env, cwd=root)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    [bench] = json.loads(out.read_text())["benchmarks"]
    assert bench["extra_info"]["model"] == MODEL and bench["extra_info"]["macs"] > 0
    assert bench["stats"]["rounds"] == 2 and bench["stats"]["median"] > 0


def test_plot_latency_vs_macs_and_top1(tmp_path, result):
    pytest.importorskip("matplotlib")
    from benchmarks.plot import plot

    other = dict(result, model="mobilenet_v2", macs=300_774_272, p50_ms=result["p50_ms"] * 3)
    path = plot(report.summarize([result, other]), tmp_path / "p.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]  # no temp file left
    with pytest.raises(ValueError, match="no successful float32 result"):
        plot([dict(result, status="error")], tmp_path / "q.png")


def test_plot_leaves_the_matplotlib_backend_alone(tmp_path):
    """In a notebook, plotting the benchmark must not switch inline plots off
    (pyplot's backend is chosen by whoever imports pyplot, not by us)."""
    pytest.importorskip("matplotlib")
    code = textwrap.dedent(f"""
        import sys
        from benchmarks.plot import plot
        plot([dict(model="mobilenet_v2", batch=1, dtype="float32", status="ok", p50_ms=10.0,
                   macs=300_774_272, device="cpu")], {str(tmp_path / "p.png")!r})
        assert "matplotlib.pyplot" not in sys.modules, "plot imported pyplot"
        import matplotlib
        assert matplotlib.rcParams["backend"] == "module://inline_test", matplotlib.rcParams["backend"]
    """)
    env = dict(os.environ, MPLBACKEND="module://inline_test")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_profile_covers_every_layer():
    """The per-layer profile captures every convolution, SE and the classifier:
    its multiply-adds add up to the model's analytic count."""
    from benchmarks.profile import markdown, profile

    r = profile("mobilenet_v3_small", batch=1, runs=2, warmup=1)
    assert {"depthwise 3x3", "depthwise 5x5", "1x1 expand", "1x1 project", "squeeze-excite",
            "classifier"} <= set(r["kinds"])
    assert abs(sum(k["share"] for k in r["kinds"].values()) - 1) < 1e-9
    total = sum(k["macs"] for k in r["kinds"].values())
    assert abs(total / zoo.count_macs(zoo.build("mobilenet_v3_small"), 224) - 1) < 0.02
    assert r["whole_ms"] > 0 and "mobilenet_v3_small" in markdown([r], top=len(r["layers"]))


@pytest.mark.early
def test_profile_train_and_xla_ops_views():
    """--train times forward and backward per layer; --ops groups the traced
    ops of the whole program by the layer and pass they came from."""
    from benchmarks.profile import op_breakdown, ops_markdown, profile

    r = profile("mobilenet_v3_small", batch=2, runs=1, warmup=0, train=True)
    assert r["train"] and r["whole_ms"] > 0 and "depthwise 3x3" in r["kinds"]
    ops = op_breakdown("mobilenet_v3_small", batch=2, train=True, top=200)
    assert ops["total_ms"] > 0 and ops["other_ms"] == 0
    assert abs(sum(x["share"] for x in ops["rows"]) - 1) < 1e-6
    passes = {x["pass"] for x in ops["rows"]}
    assert passes == {"forward", "backward"}
    # The backward of the depthwise convolutions' kernels is among the rows.
    assert any(x["pass"] == "backward" and x["layer"].endswith("dw/conv") for x in ops["rows"])
    assert "train mode" in ops_markdown(ops)


def test_latency_stops_at_max_seconds_after_five_runs():
    import time

    from zoo.timing import time_calls

    r = time_calls(lambda: time.sleep(0.02), runs=100, warmup=0, max_seconds=0.05)
    assert r["timed_runs"] == 5  # 0.05 s passes at the 3rd call, but 5 is the minimum
    r = time_calls(lambda: time.sleep(0.02), runs=100, warmup=0, max_seconds=0.2)
    assert 5 <= r["timed_runs"] <= 11  # 0.2 s of >= 0.02 s calls: at most 10, then stop
    assert time_calls(lambda: None, runs=7, warmup=0)["timed_runs"] == 7
