"""Record the THUMOS'14 evaluation kit on seeded random data: writes
fixture.json next to this file (inputs, per-class AP per threshold, mAP),
which tests/test_actions_eval.py compares zoo.actions.evaluate with.

The kit is MATLAB code; its TH14evalDet with intervaloverlapvalseconds.m
as vendored in github.com/zhengshou/scnn (experiments/THUMOS14/eval/,
TH14evalDet_Updated.m) runs unmodified under GNU Octave (7.3, Debian's
``apt-get install octave``), from a throwaway folder, never part of this
repository:

    git show HEAD:experiments/THUMOS14/eval/TH14evalDet_Updated.m > /tmp/th14kit/...
    git show HEAD:experiments/THUMOS14/eval/intervaloverlapvalseconds.m > /tmp/th14kit/...
    python tests/data/thumos14/make_fixture.py /tmp/th14kit

The kit reads its own file formats: a detection file ("video start end
class-id score" lines) and one "<class>_test.txt" file of ground truth per
class plus "Ambiguous_test.txt" and "detclasslist.txt"; the script writes
those to a temporary folder. Numbers are written with Python's shortest
round-trip repr, so Octave reads back the same doubles.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

SEED = 20240602
THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]  # zoo.actions.DEFAULT_THRESHOLDS["thumos14"]
HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = ["BaseballPitch", "CliffDiving", "Diving", "GolfSwing", "HighJump", "LongJump",
           "PoleVault", "Shotput", "TennisSwing"]
NO_DETECTIONS = "TennisSwing"


def make_data(rng):
    """Ground truth (with Ambiguous segments) and detections with the cases
    that tell matching rules apart: exact-threshold IoUs (strictness),
    ground truths competing for one detection (ground-truth order),
    equal scores in different videos (video-name order), unmatched
    detections on ambiguous segments, detections in videos without ground
    truth, a class without detections, videos without detections."""
    videos = ["video_test_%07d" % rng.randint(1, 1600) for _ in range(16)]
    videos = sorted(set(videos))[:14]
    truth, found = [], []

    def segment(length, earliest=0.0):
        start = round(rng.uniform(earliest, 200), 1)
        return start, round(start + length, 1)

    for label in CLASSES:  # every class has ground truth
        truth.append([rng.choice(videos[:12]), *segment(rng.uniform(2, 30)), label])
    for video in videos[:12]:  # two videos have no ground truth
        for _ in range(rng.randint(1, 4)):
            truth.append([video, *segment(rng.uniform(2, 30)), rng.choice(CLASSES)])
        for _ in range(rng.randint(0, 2)):
            truth.append([video, *segment(rng.uniform(1, 20)), "Ambiguous"])

    def score():
        return round(rng.choice(range(1, 20)) * 0.05, 2)  # many equal scores

    for video, start, end, label in list(truth):
        if label == NO_DETECTIONS:
            continue
        length = end - start
        for _ in range(rng.randint(0, 3)):
            jitter = length * rng.uniform(-0.3, 0.3)
            stretch = length * rng.uniform(-0.4, 0.4)
            s = max(0.0, round(start + jitter, 1))
            e = round(max(s + 0.5, end + jitter + stretch), 1)
            lab = label if label != "Ambiguous" else rng.choice(CLASSES[:-1])
            found.append([video, s, e, lab, score()])

    v = videos
    # Exact thresholds: IoU 0.5 and 0.25 (dyadic), and decimal times whose
    # IoU by the kit's span formula is one ulp above 0.2, 0.4 and 0.6 (by
    # the lengths-minus-intersection formula: exactly on them) or exactly
    # 0.3 (the other formula: one ulp above).
    truth += [[v[0], 0.0, 16.0, "LongJump"], [v[1], 3.9, 4.9, "HighJump"],
              [v[2], 5.3, 11.4, "HighJump"], [v[3], 4.3, 10.3, "HighJump"],
              [v[4], 4.0, 10.7, "HighJump"]]
    found += [[v[0], 0.0, 8.0, "LongJump", 0.9], [v[0], 12.0, 16.0, "LongJump", 0.6],
              [v[1], 4.2, 7.4, "HighJump", 0.95], [v[2], 4.9, 7.9, "HighJump", 0.95],
              [v[3], 4.9, 13.3, "HighJump", 0.95], [v[4], 3.7, 6.1, "HighJump", 0.95]]
    # Ground-truth order: [0, 10] comes first and takes [1, 11] (IoU 9/11),
    # leaving [3, 13] to [1, 11] (IoU 2/3); the other order would leave
    # [3, 13] to [0, 10] (IoU 7/13).
    truth += [[v[5], 300.0, 310.0, "PoleVault"], [v[5], 301.0, 311.0, "PoleVault"]]
    found += [[v[5], 301.0, 311.0, "PoleVault", 0.9], [v[5], 303.0, 313.0, "PoleVault", 0.3]]
    # The free detection of highest IoU wins, not the highest score.
    truth += [[v[6], 400.0, 410.0, "Shotput"]]
    found += [[v[6], 400.0, 409.0, "Shotput", 0.9], [v[6], 400.0, 410.0, "Shotput", 0.5]]
    # Two detections of equal IoU (9/11) for one ground truth: the
    # higher-scored one is matched.
    truth += [[v[8], 600.0, 610.0, "Shotput"]]
    found += [[v[8], 599.0, 609.0, "Shotput", 0.3], [v[8], 601.0, 611.0, "Shotput", 0.9]]
    # Unmatched detections touching Ambiguous segments, and one that only
    # meets one at an end point (zero overlap: still a false positive).
    truth += [[v[7], 500.0, 520.0, "Ambiguous"]]
    found += [[v[7], 515.0, 530.0, "GolfSwing", 0.85], [v[7], 490.0, 501.0, "Diving", 0.85],
              [v[7], 520.0, 525.0, "Diving", 0.85]]
    # Background: false positives, some in videos without ground truth.
    for _ in range(200):
        start, end = segment(rng.uniform(1, 30))
        found.append([rng.choice(videos), start, end, rng.choice(CLASSES[:-1]), score()])
    return truth, found


def run_kit(kit_dir, truth, found):
    folder = tempfile.mkdtemp()
    try:
        with open(os.path.join(folder, "detclasslist.txt"), "w") as f:
            for k, label in enumerate(CLASSES):
                f.write("%d %s\n" % (k + 1, label))
        for label in CLASSES + ["Ambiguous"]:
            with open(os.path.join(folder, label + "_test.txt"), "w") as f:
                for video, start, end, lab in truth:
                    if lab == label:
                        f.write("%s %r %r\n" % (video, start, end))
        with open(os.path.join(folder, "det.txt"), "w") as f:
            for video, start, end, label, score in found:
                f.write("%s %r %r %d %r\n" % (video, start, end, CLASSES.index(label) + 1, score))
        script = os.path.join(folder, "record_kit.m")
        with open(script, "w") as f:
            f.write("addpath('%s');\nout = fopen('%s', 'w');\n"
                    % (kit_dir, os.path.join(folder, "ap.txt")))
            for t in THRESHOLDS:
                f.write("[pr, ap, m] = TH14evalDet_Updated('%s', '%s', 'test', %r);\n"
                        "fprintf(out, '%%.17g ', ap); fprintf(out, '%%.17g\\n', m);\n"
                        % (os.path.join(folder, "det.txt"), folder, t))
            f.write("fclose(out);\n")
        subprocess.run(["octave", "--no-gui", "--quiet", "--no-window-system", script],
                       check=True, stdout=subprocess.DEVNULL, cwd=folder)
        with open(os.path.join(folder, "ap.txt")) as f:
            rows = [[float(x) for x in line.split()] for line in f if line.strip()]
    finally:
        shutil.rmtree(folder)
    assert len(rows) == len(THRESHOLDS) and all(len(r) == len(CLASSES) + 1 for r in rows)
    return rows


def main(kit_dir):
    truth, found = make_data(random.Random(SEED))
    rows = run_kit(os.path.abspath(kit_dir), truth, found)
    out = {
        "source": "THUMOS'14 kit TH14evalDet_Updated.m + intervaloverlapvalseconds.m "
                  "(github.com/zhengshou/scnn commit ee05621eb272c80e72ce7a068f63e947fca3b112, "
                  "experiments/THUMOS14/eval), GNU Octave 7.3",
        "seed": SEED,
        "thresholds": THRESHOLDS,
        # [video, start, end, label(, score)], in the order of the kit's files.
        "ground_truth": truth,
        "detections": found,
        "ap": {label: [r[k] for r in rows] for k, label in enumerate(CLASSES)},
        "map": [r[-1] for r in rows],
    }
    with open(os.path.join(HERE, "fixture.json"), "w") as f:
        json.dump(out, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
    print("%d ground truths, %d detections, mAP %s"
          % (len(truth), len(found), " ".join("%.4f" % m for m in out["map"])))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/th14kit")
