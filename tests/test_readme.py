"""The README's commands are the ones CI runs."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_block(heading: str) -> str:
    """The first ```bash block after the line containing ``heading``."""
    text = (ROOT / "README.md").read_text()
    start = text.index(heading)
    return re.search(r"```bash\n(.*?)\n```", text[start:], re.S).group(1)


def test_ci_runs_the_readme_test_command_verbatim():
    command = readme_block("Run the whole test suite")
    assert "pytest" in command and "\n" not in command
    r = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "--print"], capture_output=True,
                       text=True, check=True)
    assert r.stdout == command + "\n"
    # .ci/run executes the command it printed, and nothing else runs tests.
    script = (ROOT / ".ci" / "run").read_text()
    assert 'bash -euo pipefail -c "$command"' in script
    code = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if "pytest" in line]


def test_readme_is_a_landing_page_with_the_main_command():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert readme_block("Run the main job") == (
        "pip install -e . && zoo list && zoo predict --example chelsea")


def test_readme_links_point_at_files_that_exist():
    text = (ROOT / "README.md").read_text()
    links = [m for m in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in m]
    assert links, "the README links into the documentation"
    missing = [link for link in links if not (ROOT / link.split("#")[0]).exists()]
    assert missing == []


def _table(heading: str) -> list[list[str]]:
    """Rows (cells stripped) of the first Markdown table after ``heading``."""
    text = (ROOT / "README.md").read_text()
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows


def test_readme_speed_table_is_the_committed_run():
    """Each number of the README's speed table equals the committed result file."""
    import json

    run = json.loads((ROOT / "benchmarks" / "results" /
                      "bench-cpu-2cores-jax0.10.2-20261122T070057Z.json").read_text())
    measured = {r["model"]: r for r in run["results"] if r["batch"] == 1}
    peers = ["keras", "keras_tf", "torch", "litert", "onnxruntime"]
    rows = _table("## Speed on a 2-core CPU")
    assert len(rows) >= 3
    for model, zoo_ms, *cells in rows:
        r = measured[model]
        assert zoo_ms == f"{r['p50_ms']:.2f}", model
        for peer, cell in zip(peers, cells):
            p = r["peers"][peer]
            if p["status"] != "ok":
                assert cell == "-", (model, peer)
            else:
                assert cell == f"{p['p50_ms']:.2f} ({p['ratio']:.2f}x)", (model, peer)


def test_readme_conversion_table_is_the_committed_run():
    import json

    run = json.loads((ROOT / "conversions" / "results" /
                      "conversions-cpu-2cores-20261122T111058Z.json").read_text())
    names = {("tflite", "float32"): "TFLite float32", ("tflite", "float16"): "TFLite float16",
             ("tflite", "dynamic_int8"): "TFLite dynamic int8", ("tflite", "int8"): "TFLite int8",
             ("onnx", "float32"): "ONNX float32"}
    committed = {names[r["format"], r["quantization"]]: r for r in run["rows"]
                 if r["model"] == "efficientnet_lite0"}
    rows = _table("## Export to phones")
    assert [row[0] for row in rows] == list(names.values())
    for fmt, mib, diff, top1, ms, partitions in rows:
        r = committed[fmt]
        assert float(mib) == r["size_mib"] and float(ms) == r["latency_ms"], fmt
        assert diff == f"{r['max_rel_diff']:.1e}" and top1 == r["top1_agree"], fmt
        assert partitions == str(r.get("partitions", "")), fmt
