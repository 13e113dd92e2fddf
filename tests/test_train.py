"""The training stack: loop, checkpoints, resume after SIGKILL, data
parallelism, divergence, the work directory's guards, and the way from a
run to predictions and a TFLite file."""

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from helpers import zoo_cli, zoo_command
from zoo.train import TaskData, TrainConfig, TrainingDiverged, fit, load_run
from zoo.train.checkpoints import RunDir
from zoo.train.tasks import check_labels, merge_pretrained

# A small network at a small size keeps compiles and steps short.
SMALL = dict(model="mobilenet_v3_small", data="digits", image_size=32, batch_size=8)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One built copy of the datasets for this module (and its subprocesses)."""
    path = tmp_path_factory.mktemp("zoo-data")
    os.environ["ZOO_DATA"] = str(path)
    yield path
    os.environ.pop("ZOO_DATA", None)


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    """The environment for `zoo train` subprocesses: a persistent compilation
    cache shared by them, so reruns of one configuration compile once."""
    return dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("jax-cache")),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")


def losses(workdir, split="train"):
    return {r["step"]: r for r in map(json.loads, (workdir / "metrics.jsonl").read_text()
                                      .splitlines()) if r["split"] == split}


def final_state(workdir, step):
    import zoo
    return zoo.restore(workdir / "checkpoints" / str(step) / "state")


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="--optimizer: 'adam' is not one of sgd, adamw"):
        TrainConfig(model="m", data="d", workdir="w", optimizer="adam")
    with pytest.raises(ValueError, match="--epochs or --steps, not both"):
        TrainConfig(model="m", data="d", workdir="w", epochs=1, steps=2)
    with pytest.raises(ValueError, match="--batch-size: must be at least 1"):
        TrainConfig(model="m", data="d", workdir="w", batch_size=0)
    with pytest.raises(ValueError, match="--ema"):
        TrainConfig(model="m", data="d", workdir="w", ema=1.0)


def test_labels_outside_num_classes_are_named():
    check_labels(np.array([0, 9]), 10, "digits")
    with pytest.raises(ValueError, match=r"digits: labels \[10, 12\] are outside \[0, 10\)"):
        check_labels(np.array([0, 10, 12]), 10, "digits")


def test_merge_pretrained_keeps_a_new_head():
    a = {"params": {"stem": {"w": np.zeros((3, 3))}, "classifier": {"w": np.zeros((4, 10))}}}
    b = {"params": {"stem": {"w": np.ones((3, 3))}, "classifier": {"w": np.ones((4, 1000))}}}
    merged, kept = merge_pretrained(a, b)
    assert (merged["params"]["stem"]["w"] == 1).all()
    assert (merged["params"]["classifier"]["w"] == 0).all() and kept == ["params/classifier/w"]


def test_bad_input_is_one_line(data_dir, tmp_path):
    r = zoo_cli("train", "--model", "effnet_b0", "--data", "digits", "--workdir",
                str(tmp_path / "a"))
    assert r.returncode == 2 and "unknown model 'effnet_b0'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = zoo_cli("train", "--model", "mobilenet_v2", "--data", "digitz", "--workdir",
                str(tmp_path / "b"))
    assert r.returncode == 2 and "digitz" in r.stderr and "digits" in r.stderr
    r = zoo_cli("train", "--model", "face_mesh", "--data", "digits", "--workdir",
                str(tmp_path / "c"))
    assert r.returncode == 2 and "face_mesh is a face_landmarks model" in r.stderr
    r = zoo_cli("train", "--model", "mobilenet_v2", "--data", "digits", "--num-classes", "5",
                "--workdir", str(tmp_path / "d"))
    assert r.returncode == 2 and "--num-classes 5: digits has 10 classes" in r.stderr
    r = zoo_cli("train", "--model", "mobilenet_v2", "--data", "digits", "--batch-size", "5000",
                "--workdir", str(tmp_path / "e"))
    assert r.returncode == 2 and "larger than digits's training split (1437" in r.stderr
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "notes.txt").write_text("mine")
    r = zoo_cli("train", "--model", "mobilenet_v2", "--data", "digits", "--workdir",
                str(tmp_path / "f"))
    assert r.returncode == 2 and "is not empty and holds no zoo run" in r.stderr
    assert (tmp_path / "f" / "notes.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def small_run(data_dir, tmp_path_factory):
    """A finished 6-step run of the small model on digits."""
    work = tmp_path_factory.mktemp("train") / "run"
    result = fit(TrainConfig(workdir=str(work), steps=6, save_every=3, eval_every=3,
                             log_every=1, **SMALL), progress=False)
    return work, result


# The tests of one small run share a test worker (`--dist loadgroup`), so
# the run is trained once, not once per worker.
@pytest.mark.slow
@pytest.mark.xdist_group("train_small_run")
def test_fit_evaluates_saves_best_and_refuses_another_model(small_run):
    work, result = small_run
    assert result.steps == 6 and result.best["step"] in (3, 6)
    assert sorted(p.name for p in (work / "checkpoints").iterdir()
                  if p.name.isdigit()) == ["3", "6"]
    train = losses(work)
    assert sorted(train) == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(r["loss"]) and r["images_per_s"] > 0 for r in train.values())
    assert sorted(losses(work, "eval")) == [3, 6]
    assert list((work / "tensorboard").iterdir())
    # The best checkpoint is a plain zoo checkpoint of the new 10-class model.
    model, variables, meta = load_run(work)
    assert meta["class_names"] == [str(i) for i in range(10)] and meta["image_size"] == 32
    assert variables["params"]["classifier"]["kernel"].shape[-1] == 10
    x = np.zeros((1, 32, 32, 3), np.float32)
    assert model.apply(variables, x).shape == (1, 10)
    # The same directory for another model or other settings is refused, untouched.
    before = (work / "run.json").read_text()
    with pytest.raises(ValueError, match=r"holds a run of mobilenet_v3_small on digits; this "
                                         r"command trains mobilenet_v2 on digits"):
        fit(TrainConfig(workdir=str(work), steps=6, **dict(SMALL, model="mobilenet_v2")))
    with pytest.raises(ValueError, match=r"--lr None -> 0.5"):
        fit(TrainConfig(workdir=str(work), steps=6, lr=0.5, **SMALL))
    assert (work / "run.json").read_text() == before
    # Rerunning the finished command resumes at its end and does nothing more.
    again = fit(TrainConfig(workdir=str(work), steps=6, save_every=3, eval_every=3,
                            log_every=1, **SMALL), progress=False)
    assert again.resumed_from == 6 and again.steps == 6


@dataclasses.dataclass(frozen=True)
class LineFit:
    """A task that is not classification, with its own model and data: fit
    y = x . w + b on 4 features (mean squared error, lower is better)."""

    name: str = "line_fit"
    input_key: str = "x"
    best_metric: str = "mse"
    higher_is_better: bool = False

    def check(self, config):
        pass

    def prepare(self, config):
        import grain

        rng = np.random.default_rng(0)
        x = (rng.standard_normal((320, 4)) * 3 + 1).astype(np.float32)
        y = (x @ np.float32([1, -2, 0.5, 3]) + 0.7).astype(np.float32)
        train = (grain.MapDataset.range(256).shuffle(seed=config.seed).repeat()
                 .map(lambda i: {"x": x[i], "y": y[i]}).batch(config.batch_size))

        def evaluate():
            for lo in range(256, 320, 32):
                yield {"x": x[lo:lo + 32], "y": y[lo:lo + 32], "mask": np.ones(32, bool)}

        def check_batch(batch):
            if not np.isfinite(batch["x"]).all():
                raise ValueError("line_fit: non-finite features")

        return TaskData(train=train, evaluate=evaluate, steps_per_epoch=256 // config.batch_size,
                        meta={"features": 4}, check_batch=check_batch)

    def init(self, config, data):
        import flax.linen as nn

        class Line(nn.Module):
            @nn.compact
            def __call__(self, x, train: bool = False):
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
                return nn.Dense(1)(x)[:, 0]

        model = Line()
        variables = model.init(jax.random.key(config.seed), np.zeros((1, 4), np.float32))
        return model, variables, jax.tree_util.tree_map(lambda _: True, variables["params"])

    def loss(self, outputs, batch, config):
        mse = ((outputs - batch["y"]) ** 2).mean()
        return mse, {"loss": mse}

    def eval_sums(self, outputs, batch):
        mask = batch["mask"].astype(np.float32)
        return {"mse": (((outputs - batch["y"]) ** 2) * mask).sum(), "count": mask.sum()}


def test_the_loop_trains_another_task_with_its_own_data_and_metric(tmp_path):
    work = tmp_path / "line"
    config = TrainConfig(model="line", data="synthetic", workdir=str(work), steps=120,
                         batch_size=32, optimizer="adamw", lr=0.1, weight_decay=0.0,
                         clip_norm=None, eval_every=40, log_every=40, save_every=40)
    result = fit(config, task=LineFit(), progress=False)
    evals = losses(work, "eval")
    assert sorted(evals) == [40, 80, 120]
    # The best checkpoint is the lowest error, as the task says, and it is small.
    lowest = min(evals, key=lambda step: evals[step]["mse"])
    assert result.best["step"] == lowest and result.best["mse"] == evals[lowest]["mse"]
    assert evals[lowest]["mse"] < 0.05 * float(np.var(np.float32([1, -2, 0.5, 3]) * 3) * 4)
    meta = json.loads((work / "run.json").read_text())
    assert meta["task"] == "line_fit" and meta["features"] == 4
    # Resuming the finished run restores its data position and does nothing more.
    again = fit(config, task=LineFit(), progress=False)
    assert again.resumed_from == 120 and again.steps == 120


@pytest.mark.slow
@pytest.mark.xdist_group("train_small_run")
def test_run_predicts_with_its_classes_and_converts_to_tflite(small_run, tmp_path):
    import sklearn.datasets
    from PIL import Image

    work, _ = small_run
    digit = (sklearn.datasets.load_digits().images[0] * 255 / 16).round().astype(np.uint8)
    Image.fromarray(digit).resize((32, 32)).save(tmp_path / "digit.png")
    r = zoo_cli("predict", str(tmp_path / "digit.png"), "--checkpoint", str(work), "--json",
                "--top", "3")
    assert r.returncode == 0, r.stderr
    top = json.loads(r.stdout)[0]["top"]
    assert len(top) == 3 and all(t["label"] == str(t["class"]) for t in top)
    r = zoo_cli("convert", "--checkpoint", str(work), "--to", "tflite", "--out",
                str(tmp_path) + "/")
    assert r.returncode == 0, r.stderr
    out = tmp_path / f"mobilenet_v3_small_{work.name}_32_float32.tflite"
    assert out.exists(), r.stdout
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["labels"] == [str(i) for i in range(10)] and meta["input"]["shape"] == [1, 32,
                                                                                        32, 3]
    # The file in LiteRT against the JAX model, printed by the command's own check.
    diff = float(r.stdout.split("max |tflite - jax| = ")[1].split()[0])
    assert diff <= 1e-4, r.stdout
    r = zoo_cli("train", "plot", str(work))
    assert r.returncode == 0 and f"wrote {work / 'curves.png'}" in r.stdout, r.stderr
    from PIL import Image as PILImage
    assert PILImage.open(work / "curves.png").size == (1200, 360)
    r = zoo_cli("convert", "mobilenet_v2", "--checkpoint", str(work), "--to", "tflite")
    assert r.returncode == 2 and "drop the model name" in r.stderr
    r = zoo_cli("predict", str(tmp_path / "digit.png"), "--checkpoint", str(tmp_path))
    assert r.returncode == 2 and "is not a zoo training run" in r.stderr


@pytest.mark.slow
@pytest.mark.early
def test_sigkill_at_a_random_step_then_resume_ends_where_an_unbroken_run_ends(data_dir,
                                                                              tmp_path,
                                                                              jax_cache):
    steps = 12
    args = ["train", "--steps", str(steps), "--save-every", "2", "--log-every", "1",
            "--eval-every", "6", "--ema", "0.9"] + [
        a for k, v in SMALL.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    whole = tmp_path / "whole"
    r = zoo_cli(*args, "--workdir", str(whole), timeout=600, env=jax_cache)
    assert r.returncode == 0, r.stderr
    broken = tmp_path / "broken"
    kill_at = random.Random().randint(3, steps - 2)
    proc = subprocess.Popen(zoo_command(*args, "--workdir", str(broken)), text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=jax_cache)
    for line in proc.stderr:
        if line.startswith(f"step {kill_at}/"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before step {kill_at}"
    saved = RunDir(broken, None).latest_step()
    assert saved is None or saved < steps
    r = zoo_cli(*args, "--workdir", str(broken), timeout=600, env=jax_cache)
    assert r.returncode == 0, r.stderr
    assert saved is None or f"resuming {broken} at step {saved}/{steps}" in r.stderr
    a, b = final_state(whole, steps), final_state(broken, steps)
    for key in ("params", "batch_stats", "ema", "opt_state"):
        for x, y in zip(jax.tree_util.tree_leaves(a[key]), jax.tree_util.tree_leaves(b[key])):
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-6, err_msg=key)
    # metrics.jsonl holds each step once, whatever the kill left behind.
    assert sorted(losses(broken)) == list(range(1, steps + 1))
    for step, rec in losses(whole).items():
        assert abs(losses(broken)[step]["loss"] - rec["loss"]) <= 1e-5


TWO_DEVICES = r"""
import json, sys
import jax
from zoo.train import TrainConfig, fit
assert jax.device_count() == 2
settings, work = json.loads(sys.argv[1]), sys.argv[2]
if settings.pop("try_odd_batch", False):  # refused before anything is built
    try:
        fit(TrainConfig(workdir=work + "-odd", **dict(settings, batch_size=7)), progress=False)
    except ValueError as e:
        print(e)
fit(TrainConfig(workdir=work, **settings), progress=False)
"""


@pytest.mark.slow
@pytest.mark.early
def test_two_devices_match_one(data_dir, tmp_path, jax_cache):
    """20 steps over 2 CPU devices give the 1-device loss curve: the batch is
    split, gradients and BatchNorm statistics are over the global batch.
    Each run is its own process, as a user's would be."""
    # A small learning rate: fine-tuning is chaotic enough here that float32
    # round-off grows through the steps (a 1e-7 relative change of the
    # parameters moves the next gradient norm by 6e-5 at lr 1e-2, the same
    # on one device), so only a gentle run can compare curves to 1e-5.
    settings = dict(model="efficientnet_lite0", pretrained=True, data="lfw_subset",
                    image_size=64, batch_size=16, lr=1e-4, steps=20, log_every=1,
                    eval_every=20, save_every=20)
    env = dict(jax_cache, XLA_FLAGS="--xla_force_host_platform_device_count=2")

    def run(name, **changes):
        r = subprocess.run([sys.executable, "-c", TWO_DEVICES,
                            json.dumps(dict(settings, **changes)), str(tmp_path / name)],
                           capture_output=True, text=True, env=env, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stdout

    run("one", devices=1)
    refused = run("two", try_odd_batch=True)
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    np.testing.assert_allclose([two[s]["loss"] for s in range(1, 21)],
                               [one[s]["loss"] for s in range(1, 21)], rtol=0, atol=1e-5)
    # Gradients over the global batch (per-device BatchNorm statistics would
    # change them at once); later ones drift by round-off (1e-4 by step 18).
    np.testing.assert_allclose([two[s]["grad_norm"] for s in (1, 2, 3)],
                               [one[s]["grad_norm"] for s in (1, 2, 3)], rtol=1e-5)
    assert np.mean([one[s]["loss"] for s in range(16, 21)]) < one[1]["loss"] - 1e-3
    assert "--batch-size 7 does not split over 2 devices" in refused


@pytest.mark.slow
def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
    work = tmp_path / "nan"
    config = TrainConfig(workdir=str(work), steps=40, save_every=1, log_every=1, lr=1e9,
                         clip_norm=0, label_smoothing=0, warmup_steps=0, **SMALL)
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf) at step (\d+); the last "
                                               r"good checkpoint is step") as e:
        fit(config, progress=False)
    bad = int(str(e.value).split(" at step ")[1].split(";")[0])
    good = RunDir(work, None).latest_step()
    assert good == bad - 1
    state = final_state(work, good)
    assert all(np.isfinite(a).all() for a in jax.tree_util.tree_leaves(state["params"]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits_mobilenet_v2_pretrained", "digits_mobilenet_v2_scratch",
                                  "lfw_lite0_probe", "lfw_lite0_finetune"])
def test_recipe_shortened(name, data_dir, tmp_path):
    """Each recipe as it is, cut to 8 steps: it runs, and from
    pretrained weights its loss falls. From random weights the loss only
    starts to fall after about two epochs (the recorded run: 2.32 at step
    30, 1.97 at step 170), so that one is checked to stay finite and near
    log(10)."""
    from zoo.train.recipes import RECIPES

    settings = dict(RECIPES[name].settings, epochs=None, steps=8, log_every=1, eval_every=8,
                    save_every=8)
    result = fit(TrainConfig(workdir=str(tmp_path / name), **settings), progress=False)
    curve = [losses(tmp_path / name)[s]["loss"] for s in range(1, 9)]
    if settings["pretrained"]:
        assert np.mean(curve[-3:]) < curve[0], curve
    else:
        assert np.isfinite(curve).all() and max(curve) < curve[0] + 0.5, curve
    assert 0 <= result.last_eval["top1"] <= 1


# Recipes defined but not yet run once in full: `zoo train --list-recipes`
# says so. Any other recipe must state what it measured.
NOT_YET_MEASURED: set = set()


def test_recipes_state_their_result():
    """A recipe without its measured result, time and hardware is not done."""
    from zoo.train.recipes import RECIPES

    for recipe in RECIPES.values():
        if recipe.name in NOT_YET_MEASURED:
            assert recipe.result is None and recipe.time is None, recipe.name
        else:
            assert recipe.result and recipe.time and recipe.hardware, recipe.name
