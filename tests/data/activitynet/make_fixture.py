"""Record ActivityNet's official detection evaluator on seeded random data:
writes fixture.json next to this file (inputs, per-class AP per threshold,
mAP), which tests/test_actions_eval.py compares zoo.actions.evaluate with.

The evaluator is ``Evaluation/eval_detection.py`` (+ ``utils.py``) of
github.com/activitynet/ActivityNet (commit 82304fa9f4a7219421df13dae6347a445c4cf5bc),
Python 2 code, run unmodified in a throwaway environment, never part of
this repository:

    pyenv's python2.7 -m pip install --target /tmp/anetvenv/site \\
        numpy==1.16.6 pandas==0.24.2 joblib==0.14.1
    # copy eval_detection.py and utils.py to /tmp/anetvenv/Evaluation
    PYTHONPATH=/tmp/anetvenv/site JOBLIB_MULTIPROCESSING=0 \\
        python2.7 tests/data/activitynet/make_fixture.py /tmp/anetvenv/Evaluation

(JOBLIB_MULTIPROCESSING=0 runs joblib's Parallel sequentially: same
results, no process per class.) This script runs under Python 2.7 and 3.

The tool sorts with numpy's unstable argsort()[::-1], whose order of equal
values is defined only while the sort is stable; the data keep every tied
class to 16 detections or fewer (insertion sort in numpy 1.16) and every
(video, class) to 16 ground truths or fewer, and the script checks that the
tool's order is the reverse-stable one zoo.actions.evaluate uses. Detections
are recorded in the order the tool read them (Python 2 dict order of
videos), which is the order evaluate must be given.
"""

from __future__ import division, print_function

import json
import os
import random
import shutil
import sys
import tempfile

import numpy as np

SEED = 20240601
# zoo.actions.DEFAULT_THRESHOLDS["activitynet"]: decimal values (the tool's
# default np.linspace gives 0.8999999999999999 for 0.9).
THRESHOLDS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
HERE = os.path.dirname(os.path.abspath(__file__))


def make_data(rng):
    """Ground truth and detections with the cases that tell matching rules
    apart: near and exact threshold IoUs, duplicate ground truths, ground
    truths of equal IoU, equal scores, detections in videos without ground truth, a class without
    detections, videos without detections."""
    small = ["Archery", "Bowling", "Cheerleading", "Fencing", "Juggling", "Knitting",
             "Rafting", "Surfing"]  # ties allowed: at most 16 detections each
    large = ["Diving", "Skiing"]  # distinct scores, many detections
    no_detections = "Yodeling"
    videos = ["v_%s" % "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                               for _ in range(8)) for _ in range(14)]
    truth, found = [], []

    def segment(length):
        start = round(rng.uniform(0, 200), 1)
        return start, round(start + length, 1)

    for label in small + large:  # every class has ground truth
        start, end = segment(rng.uniform(2, 40))
        truth.append([rng.choice(videos[:12]), start, end, label])
    for video in videos[:12]:  # two videos have no ground truth
        for _ in range(rng.randint(1, 4)):
            label = rng.choice(small + large)
            start, end = segment(rng.uniform(2, 40))
            truth.append([video, start, end, label])
    truth.append([videos[0], 10.0, 20.0, no_detections])
    truth.append([videos[1], 0.0, 16.0, no_detections])
    # Two identical ground truths in one video: which one a detection locks
    # decides what the next detection can match.
    truth.append([videos[2], 50.0, 60.0, "Archery"])
    truth.append([videos[2], 50.0, 60.0, "Archery"])
    # Two ground truths equally close to one detection (IoU 9/11 each): the
    # one it locks decides whether the next detection scores IoU 1 or 2/3.
    truth.append([videos[4], 60.0, 70.0, "Diving"])
    truth.append([videos[4], 62.0, 72.0, "Diving"])
    # Decimal times whose IoU rounds to either side of a threshold depending
    # on the formula: (lengths - intersection), the tool's, gives 0.55 and
    # 0.7999999999999999, the span from first start to last end gives
    # 0.5499999999999999 and 0.8.
    truth.append([videos[5], 2.5, 5.6, "Skiing"])
    truth.append([videos[6], 16.6, 37.2, "Skiing"])
    # Dyadic segments whose IoU is exactly 0.5 and 0.75 (and 0.9 / 0.95
    # within rounding) against [0, 16] or [0, 20].
    truth.append([videos[3], 0.0, 16.0, "Bowling"])
    truth.append([videos[3], 100.0, 120.0, "Bowling"])

    counts = {}

    def detect(video, start, end, label, score):
        counts[label] = counts.get(label, 0) + 1
        found.append([video, float(start), float(end), label, score])

    def small_score():
        return round(rng.choice([0.2, 0.3, 0.5, 0.5, 0.7, 0.9]) + rng.choice([0, 0.05]), 2)

    for video, start, end, label in list(truth):
        if label == no_detections:
            continue
        length = end - start
        copies = rng.randint(1, 5) if label in large else rng.randint(0, 2)
        for _ in range(copies):
            jitter = length * rng.uniform(-0.3, 0.3)
            stretch = length * rng.uniform(-0.4, 0.4)
            s = max(0.0, round(start + jitter, 2))
            e = round(max(s + 0.5, end + jitter + stretch), 2)
            score = rng.random() if label in large else small_score()
            detect(video, s, e, label, score)
    # Exact-threshold detections and a duplicate pair contending for the
    # identical ground truths.
    detect(videos[3], 0.0, 8.0, "Bowling", 0.6)       # IoU 0.5 with [0, 16]
    detect(videos[3], 0.0, 12.0, "Bowling", 0.5)      # IoU 0.75
    detect(videos[3], 100.0, 118.0, "Bowling", 0.7)   # IoU 0.9 with [100, 120]
    detect(videos[3], 100.0, 119.0, "Bowling", 0.3)   # IoU 0.95
    detect(videos[4], 61.0, 71.0, "Diving", 0.995)
    detect(videos[4], 60.0, 70.0, "Diving", 0.985)
    detect(videos[5], 3.4, 6.5, "Skiing", 0.975)
    detect(videos[6], 16.8, 42.1, "Skiing", 0.965)
    detect(videos[2], 50.0, 59.0, "Archery", 0.9)
    detect(videos[2], 51.0, 60.0, "Archery", 0.9)
    detect(videos[2], 50.0, 60.0, "Archery", 0.5)
    # Background: false positives, some in videos without ground truth.
    for _ in range(220):
        label = rng.choice(small + large)
        if label in small and counts.get(label, 0) >= 16:
            label = rng.choice(large)
        start, end = segment(rng.uniform(1, 30))
        score = rng.random() if label in large else small_score()
        detect(rng.choice(videos), start, end, label, score)
    for label in small:
        assert counts.get(label, 0) <= 16, (label, counts[label])
    return truth, found


def write_inputs(folder, truth, found):
    database = {}
    for video, start, end, label in truth:
        entry = database.setdefault(video, {"subset": "validation", "annotations": []})
        entry["annotations"].append({"segment": [start, end], "label": label})
    results = {}
    for video, start, end, label, score in found:
        results.setdefault(video, []).append({"segment": [start, end], "label": label,
                                              "score": score})
    gt_file = os.path.join(folder, "gt.json")
    pred_file = os.path.join(folder, "pred.json")
    with open(gt_file, "w") as f:
        json.dump({"database": database, "taxonomy": [], "version": "fixture"}, f)
    with open(pred_file, "w") as f:
        json.dump({"results": results, "version": "fixture", "external_data": {}}, f)
    return gt_file, pred_file


def check_tie_order(tool):
    """The tool's argsort()[::-1] equals the reverse of a stable sort on
    every array it sorts here, so its result is the defined one."""
    prediction, truth = tool.prediction, tool.ground_truth
    for cidx in tool.activity_index.values():
        scores = prediction[prediction["label"] == cidx]["score"].values
        assert (scores.argsort()[::-1] == np.argsort(scores, kind="mergesort")[::-1]).all()
        per_video = truth[truth["label"] == cidx].groupby("video-id").size()
        assert len(per_video) == 0 or per_video.max() <= 16


def main(evaluation_dir):
    sys.path.insert(0, evaluation_dir)
    from eval_detection import ANETdetection

    truth, found = make_data(random.Random(SEED))
    folder = tempfile.mkdtemp()
    try:
        gt_file, pred_file = write_inputs(folder, truth, found)
        tool = ANETdetection(gt_file, pred_file, tiou_thresholds=np.array(THRESHOLDS),
                             subset="validation", verbose=False, check_status=False)
        check_tie_order(tool)
        tool.evaluate()
    finally:
        shutil.rmtree(folder)

    names = dict((cidx, label) for label, cidx in tool.activity_index.items())
    gt = tool.ground_truth
    pred = tool.prediction
    out = {
        "source": "ActivityNet Evaluation/eval_detection.py ANETdetection, commit "
                  "82304fa9f4a7219421df13dae6347a445c4cf5bc, numpy 1.16.6, pandas 0.24.2",
        "seed": SEED,
        "thresholds": THRESHOLDS,
        # Rows in the order the tool read them: [video, start, end, label(, score)].
        "ground_truth": [[v, float(s), float(e), names[c]] for v, s, e, c in
                         zip(gt["video-id"], gt["t-start"], gt["t-end"], gt["label"])],
        "detections": [[v, float(s), float(e), names[c], float(p)] for v, s, e, c, p in
                       zip(pred["video-id"], pred["t-start"], pred["t-end"], pred["label"],
                           pred["score"])],
        "ap": dict((names[c], [float(x) for x in tool.ap[:, c]]) for c in names),
        "map": [float(x) for x in tool.mAP],
        "average_map": float(tool.average_mAP),
    }
    with open(os.path.join(HERE, "fixture.json"), "w") as f:
        json.dump(out, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
    print("%d ground truths, %d detections, average mAP %.6f"
          % (len(out["ground_truth"]), len(out["detections"]), out["average_map"]))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/anetvenv/Evaluation")
