"""The `zoo` command line, run as a user would."""

import json
import os

import pytest

from helpers import zoo_cli
from test_registry import ACTION_NAMES, DEPTH_NAMES, FACE_NAMES, NAMES, SEGMENTATION_NAMES


def test_list_shows_all():
    r = zoo_cli("list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split() == ["name", "params", "MACs", "input", "pretrained", "weights", "from"]
    assert [line.split()[0] for line in lines[1:]] == sorted(NAMES + FACE_NAMES + DEPTH_NAMES
                                                             + ACTION_NAMES + SEGMENTATION_NAMES)
    row = next(line for line in lines if line.startswith("efficientnet_b0 "))
    assert row.split()[1:] == ["5.29M", "386M", "224", "Keras,", "timm"]
    row = next(line for line in lines if line.startswith("efficientnet_lite0 "))
    assert row.split()[4:] == ["efficientnet-lite-pytorch", "(offline),", "timm"]
    row = next(line for line in lines if line.startswith("mobilenet_v1 "))
    assert row.split()[4:] == ["-"]
    row = next(line for line in lines if line.startswith("midas_small "))
    assert row.split()[4:] == ["MiDaS", "(unpinned)"]
    # A sequence model: parameters and multiply-adds on its 512 feature steps.
    row = next(line for line in lines if line.startswith("talnet "))
    assert row.split()[1:] == ["26.81M", "9381M", "512", "-"]


def test_list_pattern_json_and_published():
    r = zoo_cli("list", "mobilenet_v3*", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["name"] for row in rows] == ["mobilenet_v3_large", "mobilenet_v3_small"]
    assert rows[1]["params"] == 2542856  # torchvision's mobilenet_v3_small card: 2,542,856
    r = zoo_cli("list", "mobilenet_v2", "--published")
    assert "| mobilenet_v2 [1] | 3.50M | 3.4M | +3.1% |" in r.stdout
    assert "[1] The paper rounds" in r.stdout
    r = zoo_cli("list", "resnet*")
    assert r.returncode == 1 and "no model matches 'resnet*'" in r.stderr


def test_list_published_depth_models():
    """MiDaS publishes no MACs and a depth model has no top-1: dashes."""
    r = zoo_cli("list", "midas*", "--published")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("| midas_small "))
    assert row.startswith("| midas_small [1] | 21.32M | 21.0M | +1.5% | 4,595M | — | — | — |")
    assert "midas_small_lite0" not in r.stdout  # nothing published for the zoo's own variant


def _offline_env():
    """No downloads and no opt-in to unpinned weights from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if k != "ZOO_ALLOW_UNPINNED"}
    env["ZOO_OFFLINE"] = "1"
    return env


def test_info_depth_model():
    r = zoo_cli("info", "midas_small", env=_offline_env())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert ("weights        no published hash: pass --allow-unpinned or set "
            "ZOO_ALLOW_UNPINNED=1 (the file is then used as downloaded, unverified)") in lines
    published = next(line for line in lines if line.startswith("published "))
    assert "params 21.0M, MACs not published  (" in published and "top-1" not in published
    assert "metrics        DIW WHDR            0.1344" in lines
    assert "               KITTI delta>1.25 %  29.27" in lines
    r = zoo_cli("info", "midas_small", "--json", env=_offline_env())
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["pretrained"][0]["unpinned"] is True
    published = info["published"]
    assert published["macs"] is None and published["top1"] is None
    assert published["metrics"]["KITTI delta>1.25 %"] == 29.27 and len(published["metrics"]) == 6


@pytest.mark.parametrize("args,out", [
    (("convert", "midas_small", "--pretrained", "--to", "onnx", "--no-check"), "m.onnx"),
    (("convert-weights", "pretrained", "--model", "midas_small"), "ckpt"),
])
def test_unpinned_weights_need_the_flag(args, out, tmp_path):
    r = zoo_cli(*args, "--out", str(tmp_path / out), env=_offline_env())
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no published hash" in r.stderr and "--allow-unpinned" in r.stderr
    assert not any(tmp_path.iterdir())


def test_info():
    r = zoo_cli("info", "efficientnet_lite0", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["input_size"] == 224 and info["padding"] == "same"
    assert info["params"] == 4652008 and info["published"]["macs"] == 407e6
    r = zoo_cli("info", "mobilenet_v2", "--width", "0.5", "--resolution", "160")
    assert r.returncode == 0 and "input_size     160" in r.stdout


@pytest.mark.parametrize("args,message", [
    (("info", "effnet_b0"), "Did you mean 'efficientnet_b0'"),
    (("info", "mobilenet_v2", "--resolution", "8"), "resolution=8"),
    (("info", "mobilenet_v2", "--width", "-1"), "width=-1.0: expected a multiplier"),
])
def test_errors_are_one_line_not_a_traceback(args, message):
    r = zoo_cli(*args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("sub", ["list", "info", "predict", "convert-weights"])
def test_help_has_examples(sub):
    r = zoo_cli(sub, "--help")
    assert r.returncode == 0 and "examples:" in r.stdout and f"zoo {sub}" in r.stdout


def test_predict_folder_json(tmp_path):
    import numpy as np
    import skimage.data
    from PIL import Image

    Image.fromarray(skimage.data.chelsea()).save(tmp_path / "chelsea.png")
    Image.fromarray(skimage.data.coffee()).save(tmp_path / "coffee.jpg", quality=95)
    (tmp_path / "notes.txt").write_text("not an image")  # skipped: not an image suffix
    r = zoo_cli("predict", str(tmp_path), "--model", "mobilenet_v2", "--top", "2", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [o["image"].rsplit("/", 1)[1] for o in out] == ["chelsea.png", "coffee.jpg"]
    assert [o["top"][0]["label"] for o in out] == ["Egyptian cat", "espresso"]
    assert len(out[0]["top"]) == 2 and 0 < out[0]["top"][0]["probability"] <= 1
    assert np.isclose(sum(t["probability"] for t in out[1]["top"]), 1, atol=0.1)


def test_predict_text_and_examples():
    r = zoo_cli("predict", "--example", "chelsea", "--model", "mobilenet_v2", "--top", "1")
    assert r.returncode == 0, r.stderr
    assert "Egyptian cat  [285]" in r.stdout


@pytest.mark.parametrize("setup,message", [
    (lambda d: d / "missing.jpg", "no such file or folder"),
    (lambda d: (d / "bad.jpg").write_bytes(b"\xff\xd8 truncated") and d / "bad.jpg",
     "cannot read image"),
    (lambda d: d, "has no images"),
])
def test_predict_bad_input(tmp_path, setup, message):
    target = setup(tmp_path)
    r = zoo_cli("predict", str(target), "--model", "mobilenet_v2")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_predict_model_without_weights():
    r = zoo_cli("predict", "--example", "chelsea", "--model", "mobilenet_v1")
    assert r.returncode == 2 and "no pretrained weights" in r.stderr


def test_predict_refuses_a_depth_model(tmp_path):
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "photo.png")
    r = zoo_cli("predict", "--model", "midas_small", str(tmp_path / "photo.png"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "zoo depth IMAGE --model midas_small" in r.stderr


def test_predict_refuses_a_face_model():
    r = zoo_cli("predict", "--example", "chelsea", "--model", "face_mesh")
    assert r.returncode == 2
    assert "face_mesh is a face_landmarks model, not an ImageNet classifier" in r.stderr


def test_convert_weights_writes_float16_safetensors_in_torch_layout(tmp_path):
    """Pretrained Lite0 -> float16 safetensors (PyTorch key names, so the
    reader and torch both take it) with its SHA-256 printed; read back, it
    gives the weights rounded to float16."""
    import hashlib

    import numpy as np
    from safetensors.numpy import load_file

    import zoo

    out = tmp_path / "lite0.safetensors"
    r = zoo_cli("convert-weights", "pretrained", "--model", "efficientnet_lite0", "--out",
                str(out), "--dtype", "float16")
    assert r.returncode == 0, r.stderr
    assert f"sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}" in r.stdout
    state = load_file(out)
    assert {a.dtype for a in state.values()} == {np.dtype("float16")}
    assert "_fc.weight" in state  # lukemelas/efficientnet-pytorch names
    r = zoo_cli("convert-weights", str(out), "--out", str(tmp_path / "ckpt"))
    assert r.returncode == 2 and "give --model NAME" in r.stderr
    r = zoo_cli("convert-weights", str(out), "--model", "efficientnet_lite0", "--out",
                str(tmp_path / "ckpt"))
    assert r.returncode == 0, r.stderr
    back, want = zoo.restore(tmp_path / "ckpt"), zoo.load_pretrained("efficientnet_lite0")
    kernel = np.asarray(back["params"]["stem"]["conv"]["kernel"])
    np.testing.assert_array_equal(
        kernel, np.asarray(want["params"]["stem"]["conv"]["kernel"]).astype(np.float16))
    r = zoo_cli("convert-weights", "pretrained", "--model", "efficientnet_lite0", "--out",
                str(out), "--dtype", "float16")
    assert r.returncode == 2 and "exists; pass --overwrite" in r.stderr
