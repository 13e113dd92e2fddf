"""The action_features dataset: untrimmed two-stream feature sequences with
planted action instances (zoo.datasets.actions) and its TFDS build.

One small build (24 train / 4 test videos of the default 512 x 64) serves
the module; a second one in another data directory checks determinism."""

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import run_without_tensorflow
from zoo.datasets import DatasetError, dataset_task, prepare
from zoo.datasets.actions import (BACKGROUND, CLASS_NAMES, FEATURE_RATE, MAX_AMBIGUOUS,
                                  MAX_INSTANCES, TEST_SEED, TRAIN_SEED, generate_video,
                                  prototypes, step_mask, step_targets, valid_ambiguous,
                                  valid_instances)

REPO = Path(__file__).resolve().parents[1]
BUILD = "action_features/24"
STEPS, DIM = 512, 64
LENGTH = STEPS / FEATURE_RATE  # seconds
KEYS = ("rgb", "flow", "segments", "labels", "ambiguous")


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("action-data")


@pytest.fixture(scope="module")
def data(data_root):
    return prepare(BUILD, data_root)


@pytest.fixture(scope="module")
def records(data):
    return [data.train[i] for i in range(len(data.train))], [data.test[i] for i in
                                                              range(len(data.test))]


def rows(record):
    """(segments, labels, ambiguous) without padding, read here from the
    padding convention (label -1, rows of -1) rather than the module's
    helpers."""
    n = int(np.sum(record["labels"] >= 0))
    a = int(np.sum(record["ambiguous"][:, 0] >= 0))
    return record["segments"][:n], record["labels"][:n], record["ambiguous"][:a]


# -- the build

def test_build_is_deterministic_and_is_the_generator(data, records, tmp_path):
    assert data.task == "action_localisation" == dataset_task(BUILD)
    assert data.class_names == CLASS_NAMES and len(CLASS_NAMES) == 20
    assert (len(data.train), len(data.test)) == (24, 4)  # max(4, 24 // 10) test videos
    assert data.path.parts[-3:] == ("action_features", f"24_4_{STEPS}x{DIM}", "1.0.0")
    meta = json.loads((data.path / "metadata.json").read_text())
    assert meta["class_names"] == list(CLASS_NAMES) and meta["feature_rate"] == 4.0
    # a second, smaller build elsewhere: the same videos, the first of the larger
    again = prepare("action_features/8", tmp_path)
    assert (len(again.train), len(again.test)) == (8, 4)
    train, test = records
    for split, mine, seed in (("train", train, TRAIN_SEED), ("test", test, TEST_SEED)):
        other = getattr(again, split)
        for i, record in enumerate(mine[:len(other)]):
            for key in KEYS:
                np.testing.assert_array_equal(record[key], other[i][key], err_msg=f"{split} {i}")
            assert record["video"] == other[i]["video"]
        for i in (0, len(mine) - 1):  # record i of a split is video i of its seed
            expected = generate_video(seed, i)
            for key in KEYS:
                np.testing.assert_array_equal(mine[i][key], expected[key])
            assert mine[i]["video"].decode() == expected["video"] == f"video_{split}_{i:05d}"


def test_shapes_dtypes_and_padding(records):
    train, test = records
    videos = set()
    for r in train + test:
        for key in ("rgb", "flow"):
            assert r[key].shape == (STEPS, DIM) and r[key].dtype == np.float16
            assert np.isfinite(r[key]).all()
        assert r["segments"].shape == (MAX_INSTANCES, 2) and r["segments"].dtype == np.float32
        assert r["labels"].shape == (MAX_INSTANCES,) and r["labels"].dtype == np.int32
        assert r["ambiguous"].shape == (MAX_AMBIGUOUS, 2) and r["ambiguous"].dtype == np.float32
        segments, labels, ambiguous = rows(r)
        assert len(labels) >= 1
        assert ((labels >= 0) & (labels < 20)).all()
        # valid rows first, then padding rows made entirely of -1
        assert (r["labels"][len(labels):] == -1).all()
        assert (r["segments"][len(labels):] == -1).all()
        assert (r["ambiguous"][len(ambiguous):] == -1).all()
        seg, lab = valid_instances(r)
        np.testing.assert_array_equal(seg, segments)
        np.testing.assert_array_equal(lab, labels)
        np.testing.assert_array_equal(valid_ambiguous(r), ambiguous)
        videos.add(r["video"])
    assert len(videos) == len(train) + len(test)


def test_instances_lie_inside_the_video_sorted_and_apart(records):
    for r in records[0] + records[1]:
        segments, _, _ = rows(r)
        start, end = segments[:, 0], segments[:, 1]
        assert (start >= 0).all() and (end <= LENGTH).all() and (end > start).all()
        # documented: never overlapping, at least 1 s of background between two
        assert (start[1:] >= end[:-1] + 1.0 - 1e-4).all()


def test_durations_span_two_orders_of_magnitude(records):
    durations = np.concatenate([np.diff(rows(r)[0], axis=1)[:, 0] for r in records[0]])
    assert durations.min() >= 1.0 - 1e-4 and durations.max() <= 100.0
    assert durations.min() < 2.0 and durations.max() > 50.0
    assert np.mean(durations < 5) > 0.2 and np.mean(durations > 20) > 0.1  # both ends filled


def test_ambiguous_segments_are_disjoint_from_ground_truth(records):
    count = 0
    for r in records[0] + records[1]:
        segments, _, ambiguous = rows(r)
        for a, b in ambiguous:
            count += 1
            assert 0 <= a < b <= LENGTH
            for s, e in segments:
                assert b <= s or a >= e, (r["video"], (a, b), (s, e))
    assert count >= 5  # the build has some


# -- the planted structure

def test_prototypes_share_onsets_within_pairs_only():
    for stream, p in prototypes().items():
        assert p.shape == (20, 3, DIM) and p.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(p, axis=-1), 1, rtol=1e-5)
        np.testing.assert_array_equal(p[0::2, 0], p[1::2, 0])  # pair 2k, 2k+1: one onset
        bodies = p[:, 1] @ p[:, 1].T
        assert (bodies[~np.eye(20, dtype=bool)] < 0.99).all(), stream


def test_instances_look_like_their_class(records):
    """The mean feature inside the instances of class c, less the video's
    background mean (its scene offset and drift), points closest to class c's
    prototypes in RGB, and to c's group of four in flow."""
    train, _ = records
    for stream in ("rgb", "flow"):
        sums = {}
        for r in train:
            x = r[stream].astype(np.float32)
            segments, labels, _ = rows(r)
            centre = (np.arange(STEPS) + 0.5) / FEATURE_RATE
            inside = [(centre >= s) & (centre < e) for s, e in segments]
            x = x - x[~np.any(inside, 0)].mean(0)
            for mask, label in zip(inside, labels):
                sums.setdefault(int(label), []).append(x[mask].mean(0))
        assert len(sums) == 20
        directions = prototypes()[stream].mean(1)
        directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
        nearest = {c: int(np.argmax(directions @ np.mean(v, 0))) for c, v in sums.items()}
        if stream == "rgb":
            assert all(n == c for c, n in nearest.items()), nearest
        else:
            assert all(n // 4 == c // 4 for c, n in nearest.items()), nearest


def probe(train, test, streams, targets):
    """Least-squares linear probe: accuracy of argmax over one-hot targets
    given per record by ``targets(record) -> (labels (T,), keep (T,))``."""
    def design(records):
        xs, ys = [], []
        for r in records:
            y, keep = targets(r)
            x = np.concatenate([r[s].astype(np.float32) for s in streams], 1)
            xs.append(x[keep])
            ys.append(y[keep])
        x = np.concatenate(xs)
        return np.c_[x, np.ones(len(x))], np.concatenate(ys)

    x, y = design(train)
    # normal equations: a 129 x 129 solve instead of an SVD of every step
    w = np.linalg.solve(x.T @ x + 1e-6 * np.eye(x.shape[1]), x.T @ np.eye(int(y.max()) + 1)[y])
    xt, yt = design(test)
    return float(np.mean(np.argmax(xt @ w, 1) == yt)), yt


def step_classes(r):
    """21 targets (20 classes, background 20) by step centre; steps in
    ambiguous segments left out."""
    segments, labels, ambiguous = rows(r)
    centre = (np.arange(STEPS) + 0.5) / FEATURE_RATE
    y = np.full(STEPS, 20)
    for (s, e), label in zip(segments, labels):
        y[(centre >= s) & (centre < e)] = label
    keep = np.ones(STEPS, bool)
    for s, e in ambiguous:
        keep &= ~((centre >= s) & (centre < e))
    return y, keep


def test_a_linear_probe_beats_chance_and_fusion_helps(records):
    train, test = records
    acc, truth = {}, None
    for streams in (("rgb",), ("flow",), ("rgb", "flow")):
        acc[streams], truth = probe(train, test, streams, step_classes)
    chance = max(np.mean(truth == c) for c in range(21))  # always the commonest target
    fused = acc[("rgb", "flow")]
    assert fused > chance + 0.1, (acc, chance)
    assert fused < 0.9, acc  # far from perfect
    assert fused > max(acc[("rgb",)], acc[("flow",)]) + 0.03, acc


def test_rgb_tells_the_class_and_flow_the_boundaries(records):
    train, test = records
    centre = (np.arange(STEPS) + 0.5) / FEATURE_RATE

    def action_steps(r):
        y, keep = step_classes(r)
        return y, keep & (y < 20)

    def near_boundaries(r):  # action or not, within 1 s of an instance's start or end
        y, keep = step_classes(r)
        near = np.zeros(STEPS, bool)
        for s, e in rows(r)[0]:
            near |= (np.abs(centre - s) < 1) | (np.abs(centre - e) < 1)
        return (y < 20).astype(int), keep & near

    identity = {s: probe(train, test, (s,), action_steps)[0] for s in ("rgb", "flow")}
    boundary = {s: probe(train, test, (s,), near_boundaries)[0] for s in ("rgb", "flow")}
    assert identity["rgb"] > identity["flow"] + 0.1, identity
    assert boundary["flow"] > boundary["rgb"] + 0.1, boundary


# -- helpers and names

def test_step_targets_and_mask_by_step_centre():
    # rate 4: centres 0.125, 0.375, ...; [0.3, 1.1) holds centres 1..3, [1.5, 1.75) centre 6
    segments = np.array([[0.3, 1.1], [1.5, 1.75], [-1, -1]], np.float32)
    labels = np.array([5, 2, -1], np.int32)
    np.testing.assert_array_equal(step_targets(segments, labels, 8),
                                  [BACKGROUND, 5, 5, 5, BACKGROUND, BACKGROUND, 2, BACKGROUND])
    np.testing.assert_array_equal(step_mask(segments, 8), [0, 1, 1, 1, 0, 0, 1, 0])


def test_other_lengths_and_widths(tmp_path):
    small = prepare("action_features/4/128x16", tmp_path)
    assert (len(small.train), len(small.test)) == (4, 4)
    r = small.train[0]
    assert r["rgb"].shape == r["flow"].shape == (128, 16)
    for r in (small.train[i] for i in range(4)):
        segments, _, _ = rows(r)
        assert len(segments) >= 1  # gaps shrink with the video
        assert (segments[:, 1] <= 32.0).all()
        assert (np.diff(segments, axis=1) <= 0.8 * 32.0 + 1e-4).all()  # capped by the length


def test_bad_names_are_refused_in_one_line():
    for name, message in (("action_features/0", r"at least 1 training video"),
                          ("action_features/x", r"expected 'action_features', "
                                                r"'action_features/N'"),
                          ("action_features/8/100x16", r"multiple of 32"),
                          ("action_features/8/128x2", r"between 4 and 2048")):
        with pytest.raises(DatasetError, match=message) as e:
            prepare(name, "/nonexistent-zoo-data")
        one_line(e)
    with pytest.raises(DatasetError, match=r"did you mean 'action_features'") as e:
        prepare("action_feature", "/nonexistent-zoo-data")
    one_line(e)


NO_TENSORFLOW = """
    from zoo.datasets import prepare
    data = prepare("action_features/2/64x8", sys.argv[1])
    record = data.test[3]
    assert record["rgb"].shape == (64, 8) and record["video"] == b"video_test_00003"
    print("built", len(data.train), len(data.test))
"""


def test_builds_and_reads_without_tensorflow(tmp_path):
    assert "built 2 4" in run_without_tensorflow(NO_TENSORFLOW, tmp_path)
