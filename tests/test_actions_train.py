"""Action localisation through the one training loop: proposal sampling
for the classifier, TALNet trained briefly on a tiny action_features build
(the loss falls, the held-out losses and proposal recall are logged), the
whole-split detection mAP of the run, and one-line refusals of bad
settings. One tiny build (16 train / 4 test videos of 128 steps x 16 values)
and one short run serve the module."""

import json

import numpy as np
import pytest

import zoo.actions
from zoo.models.talnet import decode
from zoo.train import TrainConfig, fit
from zoo.train.actions import FOREGROUND_IOU, sample_proposals

TINY_BUILD = "action_features/16/128x16"
TINY_NET = json.dumps({"hidden": 16, "fc_width": 32, "scales": [2, 4, 8, 16],
                       "num_proposals": 16, "pooled": 4})


def tiou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / ((a[1] - a[0]) + (b[1] - b[0]) - inter)


def test_sampled_proposals_are_labelled_by_their_best_instance():
    gt = np.array([[10.0, 30.0], [60.0, 64.0]], np.float32)
    labels = np.array([3, 7])
    ambiguous = np.array([[90.0, 120.0]], np.float32)
    rng = np.random.default_rng(0)
    segments, out, targets = sample_proposals(rng, gt, labels, ambiguous, 128, count=400)
    assert segments.shape == (400, 2) and out.shape == (400,) and targets.shape == (400, 2)
    assert (segments[:, 0] >= 0).all() and (segments[:, 1] <= 128).all()
    assert (segments[:, 1] > segments[:, 0]).all()
    for seg, label, target in zip(segments, out, targets):
        ious = [tiou(seg, g) for g in gt]
        best = int(np.argmax(ious))
        inside = max(0.0, min(seg[1], 120.0) - max(seg[0], 90.0))
        if ious[best] >= FOREGROUND_IOU:
            assert label == labels[best] + 1
            # The target turns the proposal into its instance.
            np.testing.assert_allclose(np.asarray(decode(target[None], seg[None]))[0],
                                       gt[best], atol=1e-3)
        else:
            assert label == (-1 if inside > 0.5 * (seg[1] - seg[0]) else 0)
            assert not target.any()
    # A quarter is drawn around the instances; all classes and background occur.
    assert set(out.tolist()) >= {0, 4, 8, -1}
    assert 0.15 < (out > 0).mean() < 0.4


def test_a_video_without_instances_gets_background_only():
    rng = np.random.default_rng(1)
    segments, out, targets = sample_proposals(rng, np.zeros((0, 2), np.float32),
                                              np.zeros(0, int), np.zeros((0, 2)), 64, count=8)
    assert segments.shape == (8, 2) and (out == 0).all() and not targets.any()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The recipe as it is, on the tiny build, cut to 16 steps of 4 videos."""
    from zoo.train.recipes import RECIPES

    root = tmp_path_factory.mktemp("actions")
    settings = dict(RECIPES["action_features_talnet"].settings, data=TINY_BUILD, steps=16,
                    batch_size=4, eval_every=8, save_every=8, log_every=1)
    config = TrainConfig(data_dir=str(root / "data"), workdir=str(root / "run"), **settings)
    result = fit(config)
    return config, result


def test_training_lowers_the_loss_and_logs_held_out_metrics(run):
    config, result = run
    rows = [json.loads(line) for line in open(f"{config.workdir}/metrics.jsonl")]
    train = [r["loss"] for r in rows if r["split"] == "train"]
    assert len(train) == 16 and np.mean(train[-4:]) < np.mean(train[:4]) - 0.2
    evals = [r for r in rows if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [8, 16]
    for r in evals:
        assert {"loss", "proposal_loss", "class_loss", "recall_50"} <= set(r)
        assert 0 <= r["recall_50"] <= 1
        assert r["loss"] == pytest.approx(r["proposal_loss"] + r["class_loss"], rel=1e-5)
    meta = json.loads(open(f"{config.workdir}/run.json").read())
    assert meta["task"] == "actions" and meta["feature_rate"] == 4.0
    assert meta["model_options"]["feature_dim"] == 16  # taken from the data


def test_split_map_of_the_run(run):
    config, _ = run
    result = zoo.actions.evaluate_split(config.workdir)
    assert result["videos"] == 4 and result["detections"] > 0
    assert sorted(result["map"]) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert all(0 <= v <= 1 for v in result["map"].values())
    anet = zoo.actions.evaluate_split(config.workdir, protocol="activitynet")
    assert sorted(anet["map"])[0] == 0.5 and len(anet["map"]) == 10


def test_ground_truth_of_a_split_keeps_ambiguous_segments():
    from zoo.datasets.actions import CLASS_NAMES, generate_video

    records = [generate_video(0, i, steps=512, dim=8) for i in range(6)]
    truth = zoo.actions.split_ground_truth(records, CLASS_NAMES)
    labels = {t["label"] for t in truth}
    assert zoo.actions.AMBIGUOUS in labels and labels - {zoo.actions.AMBIGUOUS} <= set(
        CLASS_NAMES)
    assert all(t["end"] > t["start"] for t in truth)


def test_ablation_table(run, tmp_path):
    """``python -m zoo.actions.ablation`` trains a variant and tabulates its mAP."""
    from zoo.actions.ablation import main

    config, _ = run
    assert main(["--out", str(tmp_path), "--steps", "2", "--data", TINY_BUILD, "--data-dir",
                 config.data_dir, "--variants", "action_features_talnet_rgb_only"]) == 0
    rows = json.loads((tmp_path / "ablation.json").read_text())
    assert [r["recipe"] for r in rows] == ["action_features_talnet_rgb_only"]
    assert sorted(rows[0]["map"]) == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]
    meta = json.loads((tmp_path / "action_features_talnet_rgb_only" / "run.json").read_text())
    assert json.loads(meta["config"]["model_options"])["streams"] == ["rgb"]
    assert "the RGB stream alone" in (tmp_path / "ablation.md").read_text()


@pytest.mark.parametrize("change, match", [
    (dict(model_options="{towers: single}"), "--model-options .* is not JSON"),
    (dict(model_options="[1, 2]"), "expected a JSON object"),
])
def test_bad_model_options(change, match):
    base = dict(model="talnet", data=TINY_BUILD, workdir="unused")
    with pytest.raises(ValueError, match=match) as e:
        TrainConfig(**base, **change)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("change, match", [
    (dict(model="mobilenet_v2"), "classification model|action_features"),
    (dict(data="digits"), "holds no feature sequences"),
    (dict(pretrained=True), "no pretrained weights exist for talnet"),
    (dict(model_options=json.dumps({"feature_dim": 32})), "feature_dim=32, but .* 16 values"),
    (dict(num_classes=5), "--num-classes 5: .* 20 action classes"),
])
def test_bad_settings_are_refused_in_one_line(run, change, match, tmp_path):
    config, _ = run
    base = dict(model="talnet", data=TINY_BUILD, data_dir=config.data_dir,
                workdir=str(tmp_path / "w"), steps=1, batch_size=4, model_options=TINY_NET)
    base.update(change)
    with pytest.raises(ValueError, match=match) as e:
        fit(TrainConfig(**base))
    assert "\n" not in str(e.value)


def test_zoo_actions_refuses_a_run_of_other_features(run, tmp_path):
    """A video's Lite0 features (1,280 per stream) cannot feed a TALNet
    trained on 16-value action_features: one line, exit 2, nothing written."""
    import skimage.data
    from PIL import Image

    from helpers import zoo_cli
    from zoo.video import write_video

    config, _ = run
    frame = np.asarray(Image.fromarray(skimage.data.chelsea()).resize((128, 96)))
    write_video(tmp_path / "clip.mp4", np.stack([frame] * 20), 10)
    r = zoo_cli("actions", str(tmp_path / "clip.mp4"), "--checkpoint", config.workdir,
                "--out", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    assert "trained on features of 16 values per stream" in r.stderr
    assert "efficientnet_lite0 gives 1280" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_timeline_picture(tmp_path):
    from PIL import Image

    from zoo.actions.video import plot_timeline

    path = plot_timeline([(1.0, 4.0, "jump", 0.9), (6.0, 7.5, "run", 0.4)], 10.0,
                         tmp_path / "t.png", title="clip")
    image = Image.open(path)
    assert image.format == "PNG" and image.size[0] > 500
