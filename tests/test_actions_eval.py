"""zoo.actions.evaluate against hand-worked cases and against the official
tools: ActivityNet's eval_detection.py (tests/data/activitynet) and the
THUMOS'14 MATLAB kit run under Octave (tests/data/thumos14); each
fixture's make_fixture.py says how it was recorded."""

import json
from pathlib import Path

import numpy as np
import pytest

import zoo.actions
from zoo.actions import evaluate, tiou

DATA = Path(__file__).parent / "data"
from zoo.actions import metrics as evaluate_module


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


def seg(video, start, end, label="a", score=None):
    out = {"video": video, "start": start, "end": end, "label": label}
    if score is not None:
        out["score"] = score
    return out


def ap(detections, truth, protocol, threshold=0.5, label="a"):
    return evaluate(detections, truth, protocol, [threshold])["ap"][threshold][label]


# -- hand-worked cases

def test_false_positive_ranked_first():
    # Ranked: FP (0.9), TP (0.8), TP (0.7); two ground truths.
    # THUMOS: precisions at the TPs 1/2 and 2/3, over 2 -> 7/12 = 0.5833.
    # ActivityNet: precision envelope 2/3 over recall 0-1 -> 0.6667.
    truth = [seg("v", 0, 10), seg("v", 20, 30)]
    found = [seg("v", 40, 50, score=0.9), seg("v", 0, 10, score=0.8),
             seg("v", 20, 30, score=0.7)]
    assert ap(found, truth, "thumos14") == pytest.approx(7 / 12, abs=1e-12)
    assert ap(found, truth, "activitynet") == pytest.approx(2 / 3, abs=1e-12)


def test_matching_by_ground_truth_or_by_detection():
    # [0, 9] (IoU 0.9, score 0.9) and [0, 10] (IoU 1, score 0.5) for [0, 10].
    # THUMOS: the ground truth takes the detection of highest IoU, [0, 10],
    # ranked second: AP 1/2. ActivityNet: [0, 9] comes first and matches: 1.
    truth = [seg("v", 0, 10)]
    found = [seg("v", 0, 9, score=0.9), seg("v", 0, 10, score=0.5)]
    assert ap(found, truth, "thumos14") == pytest.approx(0.5, abs=1e-12)
    assert ap(found, truth, "activitynet") == pytest.approx(1.0, abs=1e-12)


def test_iou_exactly_on_the_threshold():
    # [0, 5] against [0, 10]: IoU 0.5 exactly. THUMOS needs > 0.5, ActivityNet >= 0.5.
    truth = [seg("v", 0, 10)]
    found = [seg("v", 0, 5, score=0.9)]
    assert ap(found, truth, "thumos14") == 0.0
    assert ap(found, truth, "activitynet") == 1.0
    assert ap(found, truth, "thumos14", threshold=0.49) == 1.0


def test_ground_truth_order_decides_thumos_matching():
    # [0, 10] listed first takes [1, 11] (IoU 9/11 against 7/13 for [3, 13]),
    # leaving [3, 13] to [1, 11] (IoU 2/3 > 0.6): two TPs, AP 1. Listed the
    # other way, [1, 11] takes [1, 11] and [0, 10] is left [3, 13] at 7/13:
    # one TP at rank 1 of 2 ground truths, AP 1/2.
    found = [seg("v", 1, 11, score=0.9), seg("v", 3, 13, score=0.3)]
    first, second = seg("v", 0, 10), seg("v", 1, 11)
    assert ap(found, [first, second], "thumos14", 0.6) == 1.0
    assert ap(found, [second, first], "thumos14", 0.6) == 0.5


def test_equal_scores():
    # Same score, [0, 10] given first. THUMOS keeps the order given (within
    # a video): TP then FP, AP 1. ActivityNet's reversed argsort puts the
    # later one first: FP then TP, envelope 1/2 over recall 0-1, AP 1/2.
    truth = [seg("v", 0, 10)]
    found = [seg("v", 0, 10, score=0.5), seg("v", 20, 30, score=0.5)]
    assert ap(found, truth, "thumos14") == 1.0
    assert ap(found, truth, "activitynet") == 0.5
    assert ap(found[::-1], truth, "thumos14") == 0.5
    assert ap(found[::-1], truth, "activitynet") == 1.0
    # Across videos THUMOS orders equal scores by video name: "a" < "b".
    truth = [seg("b", 0, 10)]
    found = [seg("b", 0, 10, score=0.5), seg("a", 0, 10, score=0.5)]
    assert ap(found, truth, "thumos14") == 0.5


def test_ambiguous_segments():
    truth = [seg("v", 0, 10), seg("v", 20, 30, "Ambiguous")]
    on_ambiguous = seg("v", 25, 35, score=0.9)
    touching = seg("v", 30, 40, score=0.9)  # shares only the end point: no overlap
    hit = seg("v", 0, 10, score=0.5)
    # THUMOS: the unmatched detection on the ambiguous segment is ignored
    # (AP 1); one that only touches it is a false positive (AP 1/2).
    assert ap([on_ambiguous, hit], truth, "thumos14") == 1.0
    assert ap([touching, hit], truth, "thumos14") == 0.5
    # ActivityNet drops Ambiguous: a false positive, AP 1/2.
    assert ap([on_ambiguous, hit], truth, "activitynet") == 0.5
    # A matched detection overlapping an ambiguous segment stays a TP.
    truth = [seg("v", 0, 10), seg("v", 8, 30, "Ambiguous")]
    assert ap([seg("v", 0, 10, score=0.5)], truth, "thumos14") == 1.0
    # Ambiguous is no class.
    result = evaluate([on_ambiguous, hit], truth, "thumos14", [0.5])
    assert list(result["ap"][0.5]) == ["a"]


def test_classes_come_from_the_ground_truth():
    truth = [seg("v", 0, 10, "a"), seg("v", 0, 10, "b")]
    found = [seg("v", 0, 10, "a", 0.9), seg("w", 0, 10, "a", 0.8)]  # "w" has no ground truth
    for protocol in ("thumos14", "activitynet"):
        result = evaluate(found, truth, protocol, [0.5])
        assert result["ap"][0.5] == {"a": 1.0, "b": 0.0}  # "b" has no detections
        assert result["map"][0.5] == 0.5
        # A label without ground truth is ignored, with a warning.
        with pytest.warns(UserWarning, match="'c'"):
            again = evaluate(found + [seg("v", 0, 10, "c", 1.0)], truth, protocol, [0.5])
        assert again == result


def test_default_thresholds_and_average():
    truth = [seg("v", 0, 10)]
    found = [seg("v", 0, 7.5, score=0.9)]  # IoU 0.75
    th = evaluate(found, truth, "thumos14")
    assert list(th["map"]) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert th["average_map"] == 1.0
    an = evaluate(found, truth, "activitynet")
    assert list(an["map"]) == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert an["map"][0.75] == 1.0 and an["map"][0.8] == 0.0  # 0.75 is an exact key
    assert an["average_map"] == pytest.approx(0.6, abs=1e-12)  # 6 of 10 thresholds


def test_tiou():
    assert tiou([0, 10], [[0, 5], [5, 20], [10, 12], [0, 10]]) == pytest.approx(
        [0.5, 0.25, 0.0, 1.0])
    a = np.array([[0.0, 4], [2, 6]])
    b = np.array([[1.0, 3], [3, 9], [4, 4]])
    pairwise = tiou(a[:, None], b[None])
    assert pairwise.shape == (2, 3)
    np.testing.assert_allclose(pairwise, [[0.5, 1 / 9, 0.0], [0.2, 3 / 7, 0.0]], rtol=1e-12)
    assert tiou([3, 3], [3, 3]) == 0.0  # two points: no union
    with pytest.raises(ValueError) as e:
        tiou([0, 1, 2], [0, 1])
    assert "last axis of 2" in one_line(e)


# -- the official tools' results

def load_fixture(name):
    data = json.loads((DATA / name / "fixture.json").read_text())
    truth = [seg(v, s, e, label) for v, s, e, label in data["ground_truth"]]
    found = [seg(v, s, e, label, score) for v, s, e, label, score in data["detections"]]
    return data, truth, found


def deviation(result, data):
    """Largest difference from the recorded per-class APs and mAPs."""
    aps = list(result["ap"].values())
    worst = max(abs(aps[i][label] - value) for label, values in data["ap"].items()
                for i, value in enumerate(values))
    maps = list(result["map"].values())
    return max(worst, max(abs(m - r) for m, r in zip(maps, data["map"])))


@pytest.mark.parametrize("protocol, name", [("activitynet", "activitynet"),
                                            ("thumos14", "thumos14")])
def test_matches_the_official_tool(protocol, name):
    data, truth, found = load_fixture(name)
    result = evaluate(found, truth, protocol, data["thresholds"])
    assert list(result["map"]) == data["thresholds"]
    assert set(result["ap"][data["thresholds"][0]]) == set(data["ap"])
    assert deviation(result, data) < 1e-9
    if "average_map" in data:
        assert result["average_map"] == pytest.approx(data["average_map"], abs=1e-9)
    # Not a degenerate fixture: a few hundred detections, APs strictly
    # between 0 and 1, and a class without detections at 0.
    assert len(found) > 250
    values = np.array(list(data["ap"].values()))
    assert ((values > 0.05) & (values < 0.95)).sum() > 20
    assert (values == 0).all(axis=1).any()


def differs(result, data):
    return deviation(result, data) > 1e-6


def test_the_activitynet_fixture_tells_the_rules_apart(monkeypatch):
    data, truth, found = load_fixture("activitynet")
    thr = data["thresholds"]
    # IoU >= threshold, not >.
    assert differs(evaluate(found, truth, "activitynet", [t + 1e-12 for t in thr]), data)
    # Order of equal scores and of ground truths of equal IoU.
    assert differs(evaluate(found[::-1], truth, "activitynet", thr), data)
    assert differs(evaluate(found, truth[::-1], "activitynet", thr), data)
    # THUMOS's matching and AP.
    assert differs(evaluate(found, truth, "thumos14", thr), data)
    # The IoU formula's rounding.
    with monkeypatch.context() as m:
        m.setattr(evaluate_module, "_union_iou", evaluate_module._span_iou)
        assert differs(evaluate(found, truth, "activitynet", thr), data)
    # Interpolated, not plain, precision.
    with monkeypatch.context() as m:
        m.setattr(evaluate_module, "_interpolated_ap",
                  lambda p, r: float(np.sum(np.diff(np.r_[0, r]) * p)))
        assert differs(evaluate(found, truth, "activitynet", thr), data)


def test_the_thumos_fixture_tells_the_rules_apart(monkeypatch):
    data, truth, found = load_fixture("thumos14")
    thr = data["thresholds"]
    # IoU > threshold, not >=.
    assert differs(evaluate(found, truth, "thumos14", [t - 1e-12 for t in thr]), data)
    # Order of equal scores, of ground truths, of video names.
    assert differs(evaluate(found[::-1], truth, "thumos14", thr), data)
    assert differs(evaluate(found, truth[::-1], "thumos14", thr), data)
    names = sorted({d["video"] for d in truth + found})
    renamed = {v: f"x{len(names) - i:04d}" for i, v in enumerate(names)}  # reversed order
    assert differs(evaluate([{**d, "video": renamed[d["video"]]} for d in found],
                            [{**d, "video": renamed[d["video"]]} for d in truth],
                            "thumos14", thr), data)
    # Ambiguous segments.
    plain = [d for d in truth if d["label"] != "Ambiguous"]
    assert differs(evaluate(found, plain, "thumos14", thr), data)
    # ActivityNet's matching and AP.
    assert differs(evaluate(found, truth, "activitynet", thr), data)
    # The kit's IoU formula's rounding.
    with monkeypatch.context() as m:
        m.setattr(evaluate_module, "_span_iou", evaluate_module._union_iou)
        assert differs(evaluate(found, truth, "thumos14", thr), data)


def test_a_few_thousand_detections():
    rng = np.random.default_rng(0)
    truth = [seg(f"v{rng.integers(100)}", s, s + rng.uniform(1, 30), f"c{rng.integers(20)}")
             for s in rng.uniform(0, 300, 500)]
    found = []
    for _ in range(5000):
        t = truth[rng.integers(len(truth))]
        found.append(seg(t["video"], t["start"] - rng.uniform(0, 3), t["end"] + rng.uniform(0, 3),
                         t["label"], rng.uniform()))
    for protocol in ("thumos14", "activitynet"):
        result = evaluate(found, truth, protocol)
        assert 0 < result["average_map"] < 1


# -- bad input

@pytest.mark.parametrize("change, words", [
    (lambda d, t: (d + [seg("v7", 5, 4, score=1.0)], t), ["detections[1]", "'v7'", "before"]),
    (lambda d, t: (d, t + [seg("v", 3, 2)]), ["ground_truth[1]", "before"]),
    (lambda d, t: ([{"video": "v", "start": 0, "end": 1, "label": "a"}], t),
     ["detections[0]", "'score'"]),
    (lambda d, t: (d, [{"video": "v", "start": 0, "label": "a"}]), ["ground_truth[0]", "'end'"]),
    (lambda d, t: ([seg("v", 0, float("inf"), score=1.0)], t), ["non-finite", "end"]),
    (lambda d, t: ([seg("v", 0, 1, score=float("nan"))], t), ["non-finite", "score"]),
    (lambda d, t: ([seg("v", 0, "x", score=1.0)], t), ["detections[0]", "'end'", "number"]),
    (lambda d, t: (d, []), ["ground_truth", "no segments"]),
    (lambda d, t: (d, [seg("v", 0, 1, "Ambiguous")]), ["other than Ambiguous"]),
    (lambda d, t: (d, t[0]), ["list of dicts"]),
    (lambda d, t: (["v 0 1 a 0.5"], t), ["detections[0]", "str"]),
    (lambda d, t: ([seg(["v"], 0, 1, score=1.0)], t), ["detections[0]", "'video'", "list"]),
])
def test_bad_input(change, words):
    found, truth = change([seg("v", 0, 10, score=0.9)], [seg("v", 0, 10)])
    with pytest.raises(ValueError) as e:
        evaluate(found, truth, "thumos14")
    message = one_line(e)
    for word in words:
        assert word in message, message


def test_bad_protocol_and_thresholds():
    args = ([seg("v", 0, 10, score=0.9)], [seg("v", 0, 10)])
    with pytest.raises(ValueError) as e:
        evaluate(*args, protocol="thumos15")
    assert "'thumos15'" in one_line(e)
    for thresholds, word in [([], "empty"), ([1.5], "[0, 1]"), ([0.5, 0.5], "repeat")]:
        with pytest.raises(ValueError) as e:
            evaluate(*args, thresholds=thresholds)
        assert word in one_line(e)
    assert zoo.actions.PROTOCOLS == ("thumos14", "activitynet")
