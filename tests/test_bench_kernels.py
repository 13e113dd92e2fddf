"""Smoke test of the kernel micro-benchmark (benchmarks/kernels.py)."""

import json

import pytest

from benchmarks import kernels as kb


def test_help_runs(capsys):
    with pytest.raises(SystemExit) as e:
        kb.main(["--help"])
    assert e.value.code == 0
    assert "python -m benchmarks.kernels" in capsys.readouterr().out


def test_one_shape_per_op(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert kb.main(["--models", "mobilenet_v3_small", "--limit", "1", "--runs", "2",
                    "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["op"] for r in rows] == ["depthwise", "pointwise", "squeeze_excite"]
    for r in rows:
        assert r["reference_ms"] > 0 and r["xla_fast_ms"] > 0
        # Fusion never moves more bytes than the op-by-op graph; the kernel's
        # estimate (input once, output once) is below XLA's unfused count.
        assert r["pallas_bytes"] < r["unfused_bytes"]
        assert r["xla_bytes_reference"] <= r["unfused_bytes"]
    text = capsys.readouterr().out
    assert "| depthwise | 1 |" in text


def test_unknown_op_is_named():
    with pytest.raises(SystemExit):
        kb.main(["--ops", "conv7x7"])
