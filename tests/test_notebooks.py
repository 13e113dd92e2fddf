"""The Colab notebooks in ``colab/``: committed without outputs, each with an
"Open in Colab" badge for its own path, and each executed top to bottom (in a
Jupyter kernel, by nbclient) with small settings, so a notebook that raises
fails here.

Small settings: every notebook has one code cell tagged ``parameters`` (the
papermill convention); the test inserts a cell right after it that assigns
the small values (tagged ``injected-parameters``). The names it assigns must
exist in the parameters cell, so a renamed knob fails instead of being
ignored. After the last cell the test appends one that prints, as JSON, the
values the notebook computed (top-5 classes, detected faces, export
differences, kernel errors), and checks them.

The kernel's working directory is a temporary folder (whatever a notebook
writes lands there), and it inherits the session's ``ZOO_CACHE``
(tests/conftest.py), so pretrained weights come through the zoo's own cache.
"""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
COLAB = ROOT / "colab"
NOTEBOOKS = sorted(p.stem for p in COLAB.glob("*.ipynb"))
CELL_TIMEOUT = 600  # seconds; a notebook cell taking longer is a failure


def read(name: str):
    return nbformat.read(COLAB / f"{name}.ipynb", as_version=4)


def repo_slug() -> str:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    m = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", urls["Repository"])
    assert m, f"[project.urls] Repository = {urls['Repository']!r} is not a GitHub repository URL"
    return m.group(1)


def parameter_names(nb) -> tuple[int, set[str]]:
    """(index, assigned names) of the one cell tagged ``parameters``."""
    tagged = [i for i, c in enumerate(nb.cells)
              if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected one code cell tagged 'parameters', found {len(tagged)}"
    tree = ast.parse(nb.cells[tagged[0]].source)
    names = {t.id for node in tree.body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    return tagged[0], names


def execute(name: str, workdir: Path, params: dict, report: str) -> tuple[dict, object]:
    """Run notebook ``name`` in ``workdir`` with ``params`` injected; returns
    (the JSON the appended ``report`` expression printed, the executed notebook)."""
    nb = read(name)
    index, names = parameter_names(nb)
    unknown = set(params) - names
    assert not unknown, f"{name}: {sorted(unknown)} are not in its parameters cell {sorted(names)}"
    injected = nbformat.v4.new_code_cell(
        "# Parameters injected by tests/test_notebooks.py\n"
        + "".join(f"{k} = {v!r}\n" for k, v in params.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, injected)
    nb.cells.append(nbformat.v4.new_code_cell(
        f"import json as _json\nprint('REPORT ' + _json.dumps({report}, default=float))"))
    before = sorted(p.name for p in COLAB.iterdir())
    start = time.perf_counter()
    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    print(f"{name}: executed in {time.perf_counter() - start:.1f} s")
    assert sorted(p.name for p in COLAB.iterdir()) == before, f"{name} wrote into colab/"
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    line = next(ln for ln in text.splitlines() if ln.startswith("REPORT "))
    return json.loads(line[len("REPORT "):]), nb


def outputs(nb, kind: str) -> list:
    """Every output of ``kind`` ("image/png", "text/markdown", "stream") in ``nb``."""
    found = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            if kind == "stream" and o.output_type == "stream":
                found.append(o.text)
            elif kind in o.get("data", {}):
                found.append(o.data[kind])
    return found


# ------------------------------------------------------------ the committed files


def test_the_five_demos_are_there():
    assert NOTEBOOKS == ["benchmark", "face_mesh", "kernels", "mobile_export", "quickstart"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs(name):
    nb = read(name)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}.ipynb cell {i} has outputs: clear them"
            assert cell.execution_count is None, f"{name}.ipynb cell {i} has an execution count"
            assert "execution" not in cell.metadata, f"{name}.ipynb cell {i} has run timestamps"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_badge_points_at_its_own_path(name):
    slug = repo_slug()
    first = read(name).cells[0]
    assert first.cell_type == "markdown"
    # Every link into Colab but the badge's own picture (colab-badge.svg under assets/).
    links = re.findall(r"\((https://colab\.research\.google\.com/(?!assets/)[^)\s]+)\)",
                       first.source)
    assert links == [f"https://colab.research.google.com/github/{slug}/blob/main/colab/{name}.ipynb"]
    assert "colab-badge.svg" in first.source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_first_code_cell_installs_from_the_repository(name):
    nb = read(name)
    first = next(c for c in nb.cells if c.cell_type == "code")
    src = first.source
    assert f'REPO = "{repo_slug()}"' in src
    assert 'f"zoo[{EXTRAS}] @ git+https://github.com/{REPO}"' in src
    assert 'importlib.util.find_spec("zoo") is None' in src  # skipped when installed
    assert 'IN_COLAB = "google.colab" in sys.modules' in src
    assert "jax.default_backend()" in src and "jax.devices()" in src
    # The parameters cell comes after the install cell, so the test's values override it.
    assert parameter_names(nb)[0] > nb.cells.index(first)


def test_colab_only_calls_are_guarded():
    """Upload and download exist only in Colab: each use sits under ``if IN_COLAB:``."""
    for name in NOTEBOOKS:
        for cell in read(name).cells:
            if "google.colab import files" in cell.source:
                lines = cell.source.splitlines()
                i = next(k for k, ln in enumerate(lines) if "google.colab import files" in ln)
                assert any(ln.startswith("if IN_COLAB") for ln in lines[:i]), (name, cell.source)


# ------------------------------------------------------------ executed


def test_quickstart(tmp_path):
    report, nb = execute(
        "quickstart", tmp_path, {"LIST_PATTERN": "mobilenet*"},
        "{label: {m: [c for c, _, _ in top] for m, top in p.items()} "
        "for label, p in predictions.items()}")
    assert set(report) == {"chelsea", "coffee"}
    for model in ("efficientnet_lite0", "mobilenet_v2"):
        assert report["coffee"][model][0] == 967  # espresso
        assert len(report["coffee"][model]) == 5
        assert 285 in report["chelsea"][model][:2]  # Egyptian cat, first or (Lite0) second
        assert set(report["chelsea"][model][:3]) <= {281, 282, 285}  # tabby, tiger, Egyptian
    assert len(outputs(nb, "image/png")) == 2  # each photo with its top-5
    listing = "".join(outputs(nb, "stream"))
    assert "mobilenet_v3_small" in listing and "efficientnet_b0" not in listing
    assert "not running in Colab: no upload" in listing


BENCH_SMALL = {"MODELS": ["mobilenet_v3_small", "mobilenet_v2"], "RUNS": 3, "WARMUP": 1}


def test_benchmark(tmp_path):
    report, nb = execute(
        "benchmark", tmp_path, BENCH_SMALL,
        "{'status': [r['status'] for r in results], 'p50': [r['p50_ms'] for r in results], "
        "'files': sorted(p.name for p in paths.values()), 'committed': str(committed)}")
    assert report["status"] == ["ok", "ok"]
    assert all(p > 0 for p in report["p50"])
    assert sorted(Path(f).suffix for f in report["files"]) == [".csv", ".json", ".md", ".png"]
    assert all((tmp_path / "bench_results" / f).is_file() for f in report["files"])
    # The comparison used the newest committed CPU table of this checkout
    # that has rows for the models measured (a newer one may hold only others).
    committed = Path(report["committed"])
    assert committed.parent == ROOT / "benchmarks" / "results"
    tables = [json.loads(p.read_text()) for p in committed.parent.glob("bench-*.json")]
    dates = [t["env"]["date_utc"] for t in tables if t["env"]["backend"] == "cpu"
             and {r["model"] for r in t["results"]} & set(BENCH_SMALL["MODELS"])]
    assert json.loads(committed.read_text())["env"]["date_utc"] == max(dates)
    tables = "".join(outputs(nb, "text/markdown"))
    assert "| mobilenet_v2 | 1 | float32 |" in tables  # this run's table
    assert "B/A" in tables  # the comparison
    assert len(outputs(nb, "image/png")) == 2  # latency plot, comparison chart


def test_benchmark_without_the_repository(tmp_path):
    """Installed from git (as in Colab) there is no benchmarks/results folder:
    the notebook says so and skips the comparison instead of failing."""
    empty = tmp_path / "no-checkout"
    empty.mkdir()
    report, nb = execute("benchmark", tmp_path,
                         {**BENCH_SMALL, "MODELS": ["mobilenet_v3_small"],
                          "RESULTS_DIR": str(empty)},
                         "{'status': [r['status'] for r in results], 'committed': committed}")
    assert report == {"status": ["ok"], "committed": None}
    assert "skipping the comparison" in "".join(outputs(nb, "stream"))


def test_face_mesh(tmp_path):
    report, nb = execute(
        "face_mesh", tmp_path, {"TIMING_RUNS": 2},
        "{'faces': len(faces), 'landmarks': list(faces[0].landmarks.shape), "
        "'box': [float(v) for v in faces[0].box], "
        "'centre': [float(v) for v in faces[0].landmarks[:, :2].mean(0)]}")
    assert report["faces"] == 1 and report["landmarks"] == [468, 3]
    x0, y0, x1, y1 = report["box"]
    cx, cy = report["centre"]
    assert x0 < cx < x1 and y0 < cy < y1  # the mesh sits on the detected face
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 210  # astronaut's face (512x512 photo)
    assert len(outputs(nb, "image/png")) >= 2  # overlay and depth view
    assert "not running in Colab: no upload" in "".join(outputs(nb, "stream"))


def test_mobile_export(tmp_path):
    report, nb = execute(
        "mobile_export", tmp_path, {"CALIBRATION_SAMPLES": 8, "LATENCY_RUNS": 3},
        "{'jax_top1': {k: int(v.argmax()) for k, v in reference.items()}, 'files': "
        "{q: {k: r[k] for k in ('bytes', 'max_rel_diff', 'top1_agrees', 'top5', 'ms')} "
        "for q, r in rows.items()}}")
    assert report["jax_top1"] == {"chelsea": 282, "coffee": 967}  # Lite0: tiger cat, espresso
    files = report["files"]
    assert list(files) == ["float32", "float16", "int8"]
    for q in ("float32", "float16"):
        assert files[q]["top1_agrees"] == {"chelsea": True, "coffee": True}, q
    # int8 calibrated on 8 images here: chelsea's two cats are 0.1 logit apart in
    # float, within int8's error, so only ask that JAX's class stays in the top 2.
    assert files["int8"]["top1_agrees"]["coffee"]
    assert 282 in files["int8"]["top5"]["chelsea"][:2]
    assert all(r["ms"] > 0 for r in files.values())
    assert files["float32"]["max_rel_diff"] < 1e-4
    assert files["float16"]["max_rel_diff"] < 1e-2
    assert files["int8"]["max_rel_diff"] < 0.15
    b = {q: r["bytes"] for q, r in files.items()}  # about 18.6, 9.4 and 5.3 MB
    assert b["float32"] > 1.8 * b["float16"] and b["float16"] > 1.5 * b["int8"]
    assert sorted(p.name for p in (tmp_path / "exports").glob("*.tflite")) == [
        f"efficientnet_lite0_224_{q}.tflite" for q in ("float16", "float32", "int8")]
    assert len(outputs(nb, "image/png")) == 1  # the comparison chart
    assert "not running in Colab: download skipped" in "".join(outputs(nb, "stream"))


def test_kernels(tmp_path):
    shapes = [(28, 28, 32, 3, 1, "relu6"), (14, 14, 48, 5, 2, "swish")]
    report, nb = execute(
        "kernels", tmp_path, {"SHAPES": shapes, "RUNS": 3},
        "{'checks': [(c['target'], c['interpret'], c['rel_err']) for c in checks], "
        "'exports': sorted(exported), 'timed': [sorted(k for k in r if k.endswith('_ms')) "
        "for r in timings]}")
    assert len(report["checks"]) == 2 * len(shapes)  # each shape, TPU and GPU block plans
    for target, interpret, err in report["checks"]:
        assert target in ("tpu", "triton") and interpret is True  # CPU: interpret mode
        assert err <= 2e-5
    assert report["exports"] == ["cuda", "tpu"]  # lowered for both from this CPU machine
    assert report["timed"] == [["reference_ms", "xla_fast_ms"]] * len(shapes)  # no pallas on CPU
    text = "".join(outputs(nb, "stream"))
    assert "Pallas has no compiled CPU backend" in text
    assert len(outputs(nb, "image/png")) == 1  # the check figure
