"""Depth training: the scene renderer (exact depth), the depth_scenes
builder, joint image/depth augmentation, the Depth task through the one
training loop (loss falls, resume), and model/data mismatches.

One tiny build (16 train / 4 test scenes at 64x96, about a second) serves
the module; a tiny depth network registered for this module only stands in
for the real ones, as LineFit does in test_train.py."""

import dataclasses
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import flax.linen as nn
import jax
import numpy as np
import pytest

import zoo
from helpers import run_without_tensorflow, zoo_cli
from zoo.datasets import DatasetError, depth_eval_batches, depth_train_batches, prepare
from zoo.datasets.augment import DepthTransform
from zoo.datasets.scenes import (Camera, Light, Material, Plane, Scene, Sphere, contact_sheet,
                                 render, render_example)
from zoo.layers import ConvSettings
from zoo.train import TrainConfig, fit, load_run
from zoo.train.depth import Depth, merge_backbone

REPO = Path(__file__).resolve().parents[1]
TINY_BUILD = "depth_scenes/16/64x96"
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


# -- a tiny depth network in the registry's contract

class TinyEncoder(nn.Module):
    @nn.compact
    def __call__(self, x, train):
        for i, c in enumerate((8, 16)):
            x = nn.Conv(c, (3, 3), strides=2, name=f"conv{i}")(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"bn{i}")(x)
            x = nn.relu(x)
        return x


class TinyDepth(nn.Module):
    """(N, H, W, 3) -> (N, H, W) positive relative inverse depth."""
    num_classes: int = 1
    include_top: bool = True
    features_only: bool = False
    settings: ConvSettings = ConvSettings()
    model_name: str = "tiny_depth_test"
    backbone = "tiny_backbone"

    @nn.compact
    def __call__(self, x, train: bool = False):
        n, h, w, _ = x.shape
        y = nn.relu(nn.Conv(16, (3, 3))(TinyEncoder(name="encoder")(x, train)))
        y = jax.image.resize(y, (n, h, w, 16), "bilinear")
        return nn.softplus(nn.Conv(1, (3, 3))(y)[..., 0])


@pytest.fixture(scope="module")
def tiny_model():
    from zoo import registry

    zoo.list_models()  # the families first
    spec = registry.ModelSpec(name="tiny_depth_test", family="test", task="depth",
                              input_size=64, mean=MEAN, std=STD, crop_fraction=1.0,
                              interpolation="bilinear", num_classes=1, padding="same",
                              bn_eps=1e-3, published=None)
    registry.register(spec, TinyDepth)
    yield spec.name
    del registry._REGISTRY[spec.name]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("depth-data")


@pytest.fixture(scope="module")
def scenes(data_root):
    return prepare(TINY_BUILD, data_root)


# -- the renderer

def flat(name="brick"):
    return Material(name, (0, 0, 64), 1.0)


LIGHT = Light(ambient=0.5, intensity=0.5, direction=(0.0, 0.6, -0.8))


def test_a_fronto_parallel_wall_is_at_its_distance_everywhere():
    wall = Plane((0, 0, 7.5), (0, 0, -1), (1, 0, 0), (0, -1, 0), flat())
    image, depth = render(Scene(Camera(1.5, 0, 0, math.radians(60)), (wall,), LIGHT), 24, 32)
    assert image.shape == (24, 32, 3) and image.dtype == np.uint8 and np.ptp(image) > 0
    assert depth.shape == (24, 32) and depth.dtype == np.float32
    np.testing.assert_allclose(depth, 7.5, rtol=1e-6)


def test_ground_and_far_wall_depth_follow_from_height_and_pitch():
    h, pitch, fov, rows, cols = 1.6, math.radians(12), math.radians(50), 40, 30
    cam = Camera(h, pitch, 0.0, fov)
    ground = Plane((0, 0, 0), (0, 1, 0), (1, 0, 0), (0, 0, 1), flat("grass"))
    wall = Plane((0, 0, 60), (0, 0, -1), (1, 0, 0), (0, -1, 0), flat())
    _, depth = render(Scene(cam, (ground, wall), LIGHT), rows, cols, samples=1)
    f = (rows / 2) / math.tan(fov / 2)
    v = (np.arange(rows) + 0.5 - rows / 2) / f
    on_ground = h / (v * math.cos(pitch) + math.sin(pitch))  # the module docstring's formula
    on_wall = 60 / (math.cos(pitch) - v * math.sin(pitch))  # z-depth of the plane z = 60
    expected = np.where((on_ground > 0) & (on_ground < on_wall), on_ground, on_wall)
    assert (on_ground[-1] < on_wall[-1]) and (expected == on_wall).sum() >= 5  # both seen
    np.testing.assert_allclose(depth, np.broadcast_to(expected[:, None], depth.shape),
                               rtol=2e-5)


def test_sphere_on_the_optical_axis():
    wall = Plane((0, 0, 50), (0, 0, -1), (1, 0, 0), (0, -1, 0), flat())
    ball = Sphere((0, 2, 5), 1.0, flat("coffee"))
    _, depth = render(Scene(Camera(2.0, 0, 0, math.radians(40)), (wall, ball), LIGHT), 33, 33)
    assert depth[16, 16] == pytest.approx(4.0, rel=1e-6)  # the central ray is the axis
    assert depth[0, 0] == pytest.approx(50.0, rel=1e-6)
    assert (depth < 50).sum() > 20


def test_random_scenes_are_deterministic_closed_and_varied():
    first = render_example(0, 3, 48, 64)
    again = render_example(0, 3, 48, 64)
    assert all(np.array_equal(first[k], again[k]) for k in ("image", "depth"))
    for seed, index in ((0, 4), (1, 3)):
        other = render_example(seed, index, 48, 64)
        assert not np.array_equal(other["depth"], first["depth"])
    spans = []
    for i in range(12):
        ex = render_example(2, i, 48, 64)
        d = ex["depth"]
        assert np.isfinite(d).all() and (d > 0).all(), i
        assert ex["image"].std() > 5, i  # textured, not a flat colour
        spans.append(d.max() / d.min())
    assert max(spans) > 10  # near and far in one picture


def test_contact_sheet(tmp_path):
    from PIL import Image

    contact_sheet([render_example(0, i, 32, 64) for i in range(3)], tmp_path / "s.png",
                  columns=2)
    assert Image.open(tmp_path / "s.png").size == (64 * 2 + 4, 2 * (32 * 2 + 4) + 12)


# -- the builder

def test_builder_holds_the_renderers_scenes(scenes, data_root):
    assert (len(scenes.train), len(scenes.test)) == (16, 4)
    assert scenes.task == "depth" and scenes.image_size == 64 and scenes.class_names == ()
    assert scenes.path == data_root / "depth_scenes" / "16_4_64x96" / "1.1.0"
    assert [int(r["id"]) for r in scenes.train] == list(range(16))  # record i is scene i
    for split, seed in (("train", 0), ("test", 1)):
        for i in (0, 3):
            record = getattr(scenes, split)[i]
            expected = render_example(seed, i, 64, 96)
            assert int(record["id"]) == i
            assert record["image"].dtype == np.uint8 and record["depth"].dtype == np.float32
            np.testing.assert_array_equal(record["image"], expected["image"])
            np.testing.assert_array_equal(record["depth"], expected["depth"])
    again = prepare(TINY_BUILD, data_root)
    assert again.path == scenes.path


def test_scene_names_are_checked():
    for name, message in (("depth_scenes/8/50x64", r"multiples of 32"),
                          ("depth_scenes/x", r"expected 'depth_scenes', 'depth_scenes/N'"),
                          ("depth_scenes/0", r"at least 1 training scene")):
        with pytest.raises(DatasetError, match=message) as e:
            prepare(name, "/nonexistent-zoo-data")
        one_line(e)


NO_TENSORFLOW = """
    import io
    import numpy as np
    from PIL import Image
    from zoo.datasets import depth_train_batches, prepare
    from zoo.datasets.scenes import encoded_examples
    data = prepare("depth_scenes/4/32x64", sys.argv[1])
    batch = next(iter(depth_train_batches(data, 2, 32, mean=(0, 0, 0), std=(1, 1, 1))))
    assert batch["depth"].shape == (2, 32, 32) and batch["valid"].all()
    # A worker process renders the same scenes as this one.
    for i, (png, depth) in enumerate(encoded_examples(1, 2, 32, 64, workers=1)):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), data.test[i]["image"])
        assert np.array_equal(depth, data.test[i]["depth"])
    print("built", len(data.train), len(data.test))
"""


def test_builds_and_reads_without_tensorflow(tmp_path):
    assert "built 4 4" in run_without_tensorflow(NO_TENSORFLOW, tmp_path)


UNGUARDED = """
import zoo.datasets
zoo.datasets.prepare("depth_scenes/70/32x32", data_dir=DATA)
"""


def test_a_script_without_a_main_guard_fails_instead_of_hanging(tmp_path):
    # 70 scenes are rendered by spawned workers, which run the script again.
    script = tmp_path / "unguarded.py"
    script.write_text(f"DATA = {str(tmp_path / 'data')!r}\n" + UNGUARDED)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode != 0
    assert "if __name__ == '__main__':" in r.stderr.splitlines()[-1], r.stderr[-2000:]


# -- the pipeline

def ramps(h=64, w=96):
    """Red = 2 * column, green = 3 * row; depth = 1 + column + 100 * row,
    with three invalid pixels: a batch shows which source pixel each output
    pixel came from, in the image and in the depth."""
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = 2 * np.arange(w)[None]
    image[..., 1] = 3 * np.arange(h)[:, None]
    depth = (1 + np.arange(w)[None] + 100 * np.arange(h)[:, None]).astype(np.float32)
    depth[5, 7], depth[20, 30], depth[40, 50] = np.nan, 0, np.inf
    return {"image": image, "depth": depth}


def test_crops_and_flips_move_image_and_depth_together():
    record = ramps()
    known = set(record["depth"][np.isfinite(record["depth"]) & (record["depth"] > 0)].tolist())
    mean, std = (10.0, 20.0, 30.0), (2.0, 4.0, 1.0)
    transform = DepthTransform(32, mean, std, min_scale=0.2)
    mirrored = []
    for k in range(40):
        out = transform(record, np.random.default_rng(k))
        d, valid = out["depth"], out["valid"]
        assert out["image"].shape == (32, 32, 3) and d.shape == valid.shape == (32, 32)
        assert set(d[valid].tolist()) <= known and not d[~valid].any()  # nearest: real depths
        col, row = (d - 1) % 100, (d - 1) // 100
        red = out["image"][..., 0] * std[0] + mean[0]
        green = out["image"][..., 1] * std[1] + mean[1]
        inner = valid.copy()
        inner[:2], inner[-2:], inner[:, :2], inner[:, -2:] = False, False, False, False
        assert np.abs(red / 2 - col)[inner].max() <= 1.0, k
        assert np.abs(green / 3 - row)[inner].max() <= 1.0, k
        mirrored.append(col[16, 28] < col[16, 4])
    assert 5 < sum(mirrored) < 35
    plain = DepthTransform(64, mean, std, augment=False)(record, np.random.default_rng(0))
    np.testing.assert_array_equal(plain["depth"][10], record["depth"][10, 16:80])  # centre square


def test_photometric_jitter_changes_the_look_not_the_geometry():
    """Same draws for the crop and the flip with and without jitter (they come
    first), so the depth is the same and the image is not; at strength 0 the
    jitter is the identity; its output stays in 0-255 and each example draws
    its own."""
    from zoo.datasets.augment import photometric_jitter

    record = ramps()
    mean, std = (0.0,) * 3, (1.0,) * 3
    for k in range(8):
        plain = DepthTransform(32, mean, std)(record, np.random.default_rng(k))
        jittered = DepthTransform(32, mean, std, photometric=1.0)(record,
                                                                    np.random.default_rng(k))
        np.testing.assert_array_equal(jittered["depth"], plain["depth"])
        np.testing.assert_array_equal(jittered["valid"], plain["valid"])
        assert np.abs(jittered["image"] - plain["image"]).max() > 1
        assert jittered["image"].min() >= 0 and jittered["image"].max() <= 255
    planes = [np.random.default_rng(0).uniform(0, 255, (16, 16)).astype(np.float32)
              for _ in range(3)]
    same = photometric_jitter(planes, np.random.default_rng(1), 0.0)
    np.testing.assert_allclose(np.stack(same), np.stack(planes), atol=1e-3)
    a, b = (photometric_jitter(planes, np.random.default_rng(s), 1.0) for s in (1, 2))
    assert np.abs(np.stack(a) - np.stack(b)).max() > 1
    grey = photometric_jitter(planes[:1], np.random.default_rng(1), 1.0)
    assert len(grey) == 1 and grey[0].shape == (16, 16)
    with pytest.raises(ValueError, match="--photometric: must be in"):
        TrainConfig(model="m", data="d", workdir="w", photometric=1.5)


def test_depth_batches(scenes):
    it = iter(depth_train_batches(scenes, 4, 32, mean=MEAN, std=STD, seed=1))
    first = [next(it) for _ in range(3)]
    state = json.loads(json.dumps(it.get_state()))
    later = next(it)
    b = first[0]
    assert b["image"].shape == (4, 32, 32, 3) and b["depth"].shape == (4, 32, 32)
    assert b["valid"].all() and (b["depth"] > 0).all()
    again = iter(depth_train_batches(scenes, 4, 32, mean=MEAN, std=STD, seed=1))
    again.set_state(state)
    assert np.array_equal(next(again)["depth"], later["depth"])

    batches = list(depth_eval_batches(scenes, "test", 3, mean=MEAN, std=STD))
    assert [b["mask"].tolist() for b in batches] == [[True] * 3, [True, False, False]]
    assert batches[0]["image"].shape == (3, 64, 96, 3)
    record = scenes.test[3]
    np.testing.assert_allclose(batches[1]["image"][0] * STD + np.float32(MEAN),
                               record["image"], atol=1e-3)
    np.testing.assert_array_equal(batches[1]["depth"][0], record["depth"])
    assert not batches[1]["depth"][1:].any() and not batches[1]["valid"][1:].any()

    digits_like = dataclasses.replace(scenes, task="classification", name="digits")
    with pytest.raises(DatasetError, match="digits has no depth maps") as e:
        depth_train_batches(digits_like, 4, 32, mean=MEAN, std=STD)
    one_line(e)


# -- the task

def test_merge_backbone_takes_every_encoder_array_by_name():
    zeros, ones = (lambda *s: np.zeros(s, np.float32)), (lambda *s: np.ones(s, np.float32))
    variables = {"params": {"encoder": {"stem": {"w": zeros(3, 3)}}, "decoder": {"w": zeros(2)}},
                 "batch_stats": {"encoder": {"stem": {"mean": zeros(3)}}}}
    imagenet = {"params": {"stem": {"w": ones(3, 3)}, "classifier": {"w": ones(5)}},
                "batch_stats": {"stem": {"mean": 2 * ones(3)}}}
    merged = merge_backbone(variables, imagenet, "net")
    assert (merged["params"]["encoder"]["stem"]["w"] == 1).all()
    assert (merged["batch_stats"]["encoder"]["stem"]["mean"] == 2).all()
    assert (merged["params"]["decoder"]["w"] == 0).all()
    imagenet["params"]["stem"]["w"] = ones(3, 4)
    with pytest.raises(ValueError, match=r"net's ImageNet weights lack 1 encoder array\(s\) "
                                         r"\(params/stem/w\)"):
        merge_backbone(variables, imagenet, "net")


def test_mismatched_model_and_data_fail_before_any_data_is_built(tiny_model, tmp_path):
    data_dir = tmp_path / "data"
    with pytest.raises(ValueError, match=r"--data digits has no depth maps and "
                                         r"tiny_depth_test is a depth model") as e:
        fit(TrainConfig(model=tiny_model, data="digits", workdir=str(tmp_path / "a"),
                        data_dir=str(data_dir)), progress=False)
    one_line(e)
    with pytest.raises(ValueError, match=r"--data depth_scenes is a depth dataset \(no labels\) "
                                         r"and mobilenet_v2 is a classifier: train a depth "
                                         r"model on it \(.*tiny_depth_test"):
        fit(TrainConfig(model="mobilenet_v2", data="depth_scenes", workdir=str(tmp_path / "b"),
                        data_dir=str(data_dir)), progress=False)
    r = zoo_cli("train", "--model", "mobilenet_v2", "--data", "depth_scenes/8", "--workdir",
                str(tmp_path / "c"), "--data-dir", str(data_dir))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--data depth_scenes/8 is a depth dataset" in r.stderr
    if "midas_small_lite0" in zoo.list_models():
        r = zoo_cli("train", "--model", "midas_small_lite0", "--data", "digits", "--workdir",
                    str(tmp_path / "d"), "--data-dir", str(data_dir))
        assert r.returncode == 2 and "--data digits has no depth maps" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not data_dir.exists() and not any((tmp_path / w).exists() for w in "abcd")


class Interrupted(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class StopsAt(Depth):
    """Depth, dying when it is handed batch ``stop + 1``, like a killed run."""
    stop: int = 0

    def prepare(self, config):
        data = super().prepare(config)
        handed = itertools.count(1)

        def check(batch):
            if next(handed) > self.stop:
                raise Interrupted

        return dataclasses.replace(data, check_batch=check)


def losses(workdir, split="train"):
    return {r["step"]: r for r in map(json.loads, (workdir / "metrics.jsonl").read_text()
                                      .splitlines()) if r["split"] == split}


@pytest.mark.slow
def test_training_lowers_the_loss_and_resumes_exactly(tiny_model, scenes, data_root, tmp_path):
    """Three runs (mostly compile time): 24 steps whole; killed after step
    13; resumed from its step-12 checkpoint to 24, which must end where the
    whole run ended. Evaluation takes no part in the state, so the two later
    runs evaluate only at the end (eval_every may change on resume)."""
    settings = dict(model=tiny_model, data=TINY_BUILD, data_dir=str(data_root), image_size=64,
                    batch_size=4, steps=24, optimizer="adamw", lr=3e-3, weight_decay=0.0,
                    eval_every=12, save_every=12, log_every=1)
    whole = tmp_path / "whole"
    result = fit(TrainConfig(workdir=str(whole), **settings), progress=False)  # the spec's task
    curve = [losses(whole)[s]["loss"] for s in range(1, 25)]
    assert np.mean(curve[-6:]) < 0.9 * np.mean(curve[:3]), curve
    evals = losses(whole, "eval")
    assert sorted(evals) == [12, 24]
    # AbsRel has no upper bound (one near pixel predicted far); this tiny
    # model scores about 1.0 after 12 steps on 16 scenes.
    assert all(0 < e["abs_rel"] < 10 and 0 <= e["bad_1_25"] <= 100 for e in evals.values()), evals
    best = min(evals, key=lambda s: evals[s]["bad_1_25"])
    assert result.best["step"] == best
    model, variables, meta = load_run(whole)
    assert meta["task"] == "depth" and meta["image_size"] == 64 and meta["eval_size"] == [64, 96]
    assert model.apply(variables, np.zeros((1, 64, 96, 3), np.float32)).shape == (1, 64, 96)

    # Killed after step 13 (last checkpoint: 12), then the same command again.
    broken = tmp_path / "broken"
    settings["eval_every"] = 24
    with pytest.raises(Interrupted):
        fit(TrainConfig(workdir=str(broken), **settings), task=StopsAt(stop=13), progress=False)
    again = fit(TrainConfig(workdir=str(broken), **settings), progress=False)
    assert again.resumed_from == 12 and again.steps == 24
    a, b = (zoo.restore(w / "checkpoints" / "24" / "state") for w in (whole, broken))
    for key in ("params", "batch_stats", "opt_state"):
        for x, y in zip(jax.tree_util.tree_leaves(a[key]), jax.tree_util.tree_leaves(b[key])):
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-6, err_msg=key)
    assert sorted(losses(broken)) == list(range(1, 25))


@pytest.mark.slow
@pytest.mark.skipif("midas_small_lite0" not in zoo.list_models(),
                    reason="midas_small_lite0 is not registered")
def test_recipe_shortened(scenes, data_root, tmp_path):
    """The recipe as it is on the tiny build at 64 px, cut to 6 steps: the
    spec's task is picked, the ImageNet encoder is merged, the loss falls."""
    from zoo.train.recipes import RECIPES

    settings = dict(RECIPES["depth_scenes_midas_small_lite0"].settings, data=TINY_BUILD,
                    data_dir=str(data_root), image_size=64, batch_size=4, epochs=None, steps=6,
                    warmup_steps=1, log_every=1, eval_every=6, save_every=6)
    result = fit(TrainConfig(workdir=str(tmp_path / "run"), **settings), progress=False)
    curve = [losses(tmp_path / "run")[s]["loss"] for s in range(1, 7)]
    assert np.mean(curve[-2:]) < curve[0], curve
    assert 0 < result.last_eval["abs_rel"] < 1
