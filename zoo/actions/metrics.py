"""Temporal action localisation: mean average precision under the two
standard protocols, each reproducing its official tool.

Both protocols score each class separately, sorting its detections by
descending score; a detection is a true positive when it is matched to a
ground-truth segment of the same class and video whose temporal IoU passes
the threshold; each ground-truth segment is matched at most once. They
differ in everything else:

``"thumos14"``, the THUMOS'14 evaluation kit's ``TH14evalDet`` (MATLAB; the
copy read and run here is ``TH14evalDet_Updated.m`` with
``intervaloverlapvalseconds.m`` in github.com/zhengshou/scnn,
experiments/THUMOS14/eval/, the version with a threshold argument and
non-interpolated AP):

* matching is by ground truth: in each video the class's ground-truth
  segments, in the order given, each take the still-free detection of
  highest IoU (the higher-scored one on a tie), if that IoU is strictly
  greater than the threshold;
* a detection left unmatched that overlaps (by any positive length) an
  ``"Ambiguous"`` segment of its video is ignored: neither true nor false
  positive;
* AP is not interpolated: the sum of the precision at each true positive
  divided by the number of ground-truth segments;
* equal scores keep the kit's order: videos by name (character codes),
  then the order given.

``"activitynet"``, ``ANETdetection`` of ``Evaluation/eval_detection.py`` in
github.com/activitynet/ActivityNet:

* matching is by detection: each detection, in score order, takes the
  not-yet-matched ground-truth segment of its video with the highest IoU if
  that IoU is at least the threshold;
* AP is interpolated over all points (the VOC 2011 rule of
  ``interpolated_prec_rec``: the area under the precision envelope);
* ``"Ambiguous"`` segments are dropped: they are no class, and detections
  overlapping them count like any other;
* the tool sorts with numpy's unstable ``argsort()[::-1]``, so its order of
  equal scores (and of ground truths of equal IoU) is not defined; here the
  later of two equal items comes first, which is what that call returns
  whenever the sort happens to be stable (always for 16 items or fewer with
  the numpy 1.x the tool was written for).

Classes are the labels of the ground truth other than ``"Ambiguous"``. A
class with ground truth but no detections has AP 0 and counts in the mean
(both tools). A label with no ground truth is not a class: its detections
are ignored with a warning (the THUMOS kit skips them with a warning too;
ActivityNet's tool raises ``KeyError`` on them).

Temporal IoU: the THUMOS kit divides the intersection by the span from the
earliest start to the latest end, ActivityNet's by the sum of the lengths
minus the intersection. Both equal the union when the segments overlap but
round differently, so each protocol uses its tool's formula (an IoU landing
exactly on a threshold must compare as in the tool). Two segments of zero
length have IoU 0 here (ActivityNet's tool divides 0 by 0).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

AMBIGUOUS = "Ambiguous"
PROTOCOLS = ("thumos14", "activitynet")
# THUMOS'14 papers report 0.1-0.7; ActivityNet averages 0.5:0.05:0.95. Rounded
# so that 0.75 and 0.95 are exact keys (ActivityNet's np.linspace(0.5, 0.95,
# 10) gives 0.8999999999999999 for 0.9, one ulp below).
DEFAULT_THRESHOLDS = {
    "thumos14": tuple(round(0.1 * k, 2) for k in range(1, 8)),
    "activitynet": tuple(round(0.5 + 0.05 * k, 2) for k in range(10)),
}
_DETECTION_KEYS = ("video", "start", "end", "label", "score")
_TRUTH_KEYS = ("video", "start", "end", "label")


def tiou(a, b) -> np.ndarray:
    """Temporal IoU of segments ``a`` and ``b``.

    The intersection over (length a + length b - intersection), as
    ActivityNet's ``segment_iou``; 0 where both have zero length.

    Args:
        a: array-like of shape (..., 2) holding (start, end).
        b: array-like of shape (..., 2), broadcast against ``a``
            (``a[:, None]`` against ``b[None]`` gives the pairwise matrix).

    Returns:
        np.ndarray: float64 IoUs in [0, 1] (for start <= end), of the
        broadcast shape without the last axis.

    Raises:
        ValueError: when the last axis of ``a`` or ``b`` is not of length 2.

    Example:
        ::

            zoo.actions.tiou([0, 10], [[0, 5], [5, 20]])    # array([0.5, 0.25])
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape[-1:] != (2,) or b.shape[-1:] != (2,):
        raise ValueError(f"tiou: segments must have a last axis of 2 (start, end); got shapes "
                         f"{a.shape} and {b.shape}")
    return _union_iou(a[..., 0], a[..., 1], b[..., 0], b[..., 1])


def _union_iou(s1, e1, s2, e2):
    # The operations of ActivityNet's utils.segment_iou, in its order.
    inter = np.clip(np.minimum(e1, e2) - np.maximum(s1, s2), 0, None)
    union = (e2 - s2) + (e1 - s1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _span_iou(s1, e1, s2, e2):
    # The THUMOS kit's intervalsingleoverlapvalseconds (normtype 0).
    inter = np.minimum(e1, e2) - np.maximum(s1, s2)
    span = np.maximum(e1, e2) - np.minimum(s1, s2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(inter > 0, inter / np.where(inter > 0, span, 1), 0.0)


# -- input

def _bad_entry(items, name, keys, i):
    item = items[i]
    if not isinstance(item, Mapping):
        return (f"{name}[{i}] is a {type(item).__name__}, not a dict with keys "
                f"{', '.join(keys)}")
    missing = [k for k in keys if k not in item]
    return (f"{name}[{i}] has no {', '.join(map(repr, missing))} key; each entry needs "
            f"{', '.join(keys)}")


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _numbers(name, key, values):
    try:
        array = np.array(values, np.float64)
        if array.ndim == 1:
            return array
    except (TypeError, ValueError):
        pass
    for i, value in enumerate(values):
        if not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name}[{i}] {key!r} is {value!r}, not a number")
    raise ValueError(f"{name}: {key!r} values are not plain numbers")


def _table(items, name, keys):
    """Columns of a list of dicts (numbers as float64 arrays), validated."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise ValueError(f"{name} must be a list of dicts with keys {', '.join(keys)}; got "
                         f"{type(items).__name__}")
    try:
        rows = [[item[k] for k in keys] for item in items]
    except (KeyError, TypeError, IndexError):
        for i in range(len(items)):
            try:
                [items[i][k] for k in keys]
            except (KeyError, TypeError, IndexError):
                raise ValueError(_bad_entry(items, name, keys, i)) from None
        raise
    cols = {k: [row[j] for row in rows] for j, k in enumerate(keys)}
    for key in ("video", "label"):
        try:
            set(cols[key])
        except TypeError:
            i = next(i for i, v in enumerate(cols[key]) if not _hashable(v))
            raise ValueError(f"{name}[{i}] {key!r} is a {type(cols[key][i]).__name__}; "
                             f"give a string (or another hashable value)") from None
    for key in keys[1:]:
        if key != "label":
            cols[key] = _numbers(name, key, cols[key])
            bad = np.flatnonzero(~np.isfinite(cols[key]))
            if len(bad):
                i = int(bad[0])
                raise ValueError(f"{name}[{i}] (video {cols['video'][i]!r}) has a non-finite "
                                 f"{key} {cols[key][i]}; give finite times and scores")
    bad = np.flatnonzero(cols["end"] < cols["start"])
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{name}[{i}] (video {cols['video'][i]!r}) ends at {cols['end'][i]} "
                         f"before it starts at {cols['start'][i]}; give start <= end in seconds")
    return cols


def _sorted_names(values):
    try:
        return sorted(set(values))
    except TypeError:  # mixed types: any fixed order will do
        return sorted(set(values), key=repr)


def _thresholds(protocol, thresholds):
    if thresholds is None:
        return DEFAULT_THRESHOLDS[protocol]
    if np.ndim(thresholds) == 0:
        thresholds = [thresholds]
    out = tuple(float(t) for t in thresholds)
    if not out:
        raise ValueError("thresholds is empty; give at least one tIoU threshold in [0, 1]")
    bad = [t for t in out if not 0 <= t <= 1]
    if bad:
        raise ValueError(f"tIoU thresholds must lie in [0, 1]; got {bad[0]}")
    if len(set(out)) != len(out):
        raise ValueError(f"thresholds {list(out)} repeat a value; give each once")
    return out


# -- one class, all thresholds
#
# The greedy matchings are sequential within a video but independent across
# videos, so each step below handles the k-th item of every video at once:
# arrays are (threshold, video, item), padded to the longest video.

def _grouped(video, n_videos):
    """For items with video indices ``video`` (already in processing
    order): each item's position within its video, and the largest count."""
    order = np.argsort(video, kind="stable")
    counts = np.bincount(video, minlength=n_videos)
    starts = np.cumsum(counts) - counts
    position = np.empty(len(video), np.int64)
    position[order] = np.arange(len(video)) - starts[video[order]]
    return position, int(counts.max(initial=0))


def _padded(video, position, width, n_videos, *columns):
    out = []
    for col in columns:
        table = np.full((n_videos, width), np.nan)
        table[video, position] = col
        out.append(table)
    return out


def _thumos_class(det, gt, amb, thr):
    """AP per threshold of one class under the THUMOS kit's rules. ``det``:
    columns (video, start, end, score, index) of the class's detections;
    ``gt``: columns (video, start, end) of its ground truth in input order;
    ``amb``: the Ambiguous segments (video, start, end); videos are integer
    ranks of the names."""
    n_thr, n = len(thr), len(det["score"])
    if n == 0:
        return np.zeros(n_thr)
    # Score order, equal scores by video name then input order: the kit's
    # stable sort over videos visited in name order.
    order = np.lexsort((det["index"], det["video"], -det["score"]))
    video, start, end = det["video"][order], det["start"][order], det["end"][order]

    # Ground truths of the detections' videos only; others cannot match.
    vids, g_video = np.unique(gt["video"], return_inverse=True)
    slot = np.searchsorted(vids, video).clip(max=len(vids) - 1)
    has_gt = vids[slot] == video
    d_video = slot[has_gt]
    d_pos, d_width = _grouped(d_video, len(vids))
    g_pos, g_width = _grouped(g_video, len(vids))
    ds, de = _padded(d_video, d_pos, max(d_width, 1), len(vids),
                     start[has_gt], end[has_gt])
    gs, ge = _padded(g_video, g_pos, g_width, len(vids), gt["start"], gt["end"])
    free = np.ones((n_thr, len(vids), ds.shape[1]), bool)
    for k in range(g_width):  # ground truths in the order given
        ov = _span_iou(gs[:, k, None], ge[:, k, None], ds, de)  # 0 on padding
        cand = np.where(free & ~np.isnan(ds), ov, -np.inf)
        best = cand.argmax(axis=2)  # the first (higher-scored) on a tie
        hit = cand.max(axis=2) > thr[:, None]
        t_hit, v_hit = np.nonzero(hit)
        free[t_hit, v_hit, best[t_hit, v_hit]] = False
    matched = np.zeros((n_thr, n), bool)
    matched[:, has_gt] = ~free[:, d_video, d_pos]

    # Unmatched detections overlapping an Ambiguous segment of their video
    # by a positive length are dropped.
    ambiguous = np.zeros(n, bool)
    for v in np.intersect1d(amb["video"], video):
        rows = np.flatnonzero(video == v)
        sel = amb["video"] == v
        inter = (np.minimum(amb["end"][sel, None], end[None, rows])
                 - np.maximum(amb["start"][sel, None], start[None, rows]))
        ambiguous[rows] = (inter > 0).any(axis=0)

    n_pos = len(gt["start"])
    ap = np.zeros(n_thr)
    for t in range(n_thr):
        tp = matched[t][matched[t] | ~ambiguous]
        precision = np.cumsum(tp) / np.arange(1, len(tp) + 1)
        ap[t] = precision[tp].sum() / n_pos
    return ap


def _interpolated_ap(precision, recall):
    # VOC 2011 rule, as ActivityNet's utils.interpolated_prec_rec.
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx])


def _activitynet_class(det, gt, thr):
    """AP per threshold of one class under ActivityNet's rules (columns as
    in ``_thumos_class``)."""
    n_thr, n = len(thr), len(det["score"])
    if n == 0:
        return np.zeros(n_thr)
    order = np.argsort(det["score"], kind="stable")[::-1]
    video, start, end = det["video"][order], det["start"][order], det["end"][order]

    vids, g_video = np.unique(gt["video"], return_inverse=True)
    g_pos, g_width = _grouped(g_video, len(vids))
    gs, ge = _padded(g_video, g_pos, g_width, len(vids), gt["start"], gt["end"])
    slot = np.searchsorted(vids, video).clip(max=len(vids) - 1)
    iou = _union_iou(start[:, None], end[:, None], gs[slot], ge[slot])
    iou[(vids[slot] != video)[:, None] | np.isnan(gs[slot])] = -np.inf
    # A detection whose best IoU is below every threshold is a false
    # positive whatever the matching: only the others take part in it.
    live = np.flatnonzero(iou.max(axis=1) >= thr.min())
    d_video = slot[live]
    d_pos, d_width = _grouped(d_video, len(vids))
    tp = np.zeros((n_thr, n), bool)
    locked = np.zeros((n_thr, len(vids), g_width), bool)
    above = thr[:, None, None]
    for j in range(d_width):  # the j-th live detection of each video, in score order
        rows = live[d_pos == j]
        v = d_video[d_pos == j]
        row_iou = iou[rows][None]
        cand = np.where(~locked[:, v] & (row_iou >= above), row_iou, -np.inf)
        pick = g_width - 1 - cand[..., ::-1].argmax(axis=2)  # the later one on a tie
        hit = cand.max(axis=2) > -np.inf
        t_hit, i_hit = np.nonzero(hit)
        locked[t_hit, v[i_hit], pick[t_hit, i_hit]] = True
        tp[t_hit, rows[i_hit]] = True

    n_pos = len(gt["start"])
    n_tp = np.cumsum(tp, axis=1).astype(np.float64)
    n_fp = np.cumsum(~tp, axis=1).astype(np.float64)
    return np.array([_interpolated_ap(n_tp[t] / (n_tp[t] + n_fp[t]), n_tp[t] / n_pos)
                     for t in range(n_thr)])


# -- public

def evaluate(detections, ground_truth, protocol: str = "thumos14", thresholds=None) -> dict:
    """Mean average precision of temporal action detections.

    Classes are the ground-truth labels except ``"Ambiguous"``; a class
    without detections has AP 0 and counts in the mean; detections whose
    label has no ground truth are ignored (with a warning). Ground truth
    labelled ``"Ambiguous"`` marks THUMOS'14's ambiguous segments, no
    class's ground truth: under ``"thumos14"`` unmatched detections
    overlapping one are ignored; under ``"activitynet"`` the segments are
    dropped and such detections count like any other.

    Args:
        detections: a list of dicts ``{"video", "start", "end", "label",
            "score"}``; times in seconds (start <= end, finite), videos and
            labels any hashable value (strings as a rule).
        ground_truth: a list of dicts ``{"video", "start", "end", "label"}``
            in the same units, with at least one segment not labelled
            ``"Ambiguous"``.
        protocol: ``"thumos14"`` (the THUMOS'14 kit: matching by ground
            truth, IoU strictly above the threshold, non-interpolated AP) or
            ``"activitynet"`` (ActivityNet's ``ANETdetection``: matching by
            detection, IoU at least the threshold, all-point interpolated
            AP); see the module docstring for the exact rules, ties
            included.
        thresholds: a tIoU threshold or a sequence of distinct ones in
            [0, 1] (default 0.1, 0.2, ..., 0.7 for thumos14; 0.5, 0.55, ...,
            0.95 for activitynet).

    Returns:
        dict: ``{"ap": {threshold: {label: AP}}, "map": {threshold: mAP},
        "average_map": mean of the mAPs over the thresholds}``, every value
        a float in [0, 1]; thresholds are float keys, classes in order of
        first appearance in ``ground_truth``.

    Raises:
        ValueError: for an unknown ``protocol``; empty, repeated or
            out-of-range ``thresholds``; an entry of either list that is not
            a dict with the required keys, has an unhashable video or label,
            a non-numeric or non-finite time or score, or ends before it
            starts; or ground truth without any labelled segment.

    Example:
        ::

            truth = [{"video": "v1", "start": 0.0, "end": 10.0, "label": "Diving"},
                     {"video": "v1", "start": 20.0, "end": 30.0, "label": "Diving"}]
            found = [{"video": "v1", "start": 0.5, "end": 9.5, "label": "Diving", "score": 0.9}]
            zoo.actions.evaluate(found, truth, protocol="thumos14")["map"][0.5]   # 0.5
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; use 'thumos14' or 'activitynet'")
    thr_keys = _thresholds(protocol, thresholds)
    thr = np.asarray(thr_keys)
    det = _table(detections, "detections", _DETECTION_KEYS)
    gt = _table(ground_truth, "ground_truth", _TRUTH_KEYS)
    classes = list(dict.fromkeys(lab for lab in gt["label"] if lab != AMBIGUOUS))
    if not classes:
        raise ValueError(f"ground_truth has no segments{' other than Ambiguous' if gt['label'] else ''}"
                         f"; give at least one labelled segment")

    videos = _sorted_names(gt["video"] + det["video"])
    rank = {v: r for r, v in enumerate(videos)}
    class_index = {c: k for k, c in enumerate(classes)}
    d_class = np.array([class_index.get(lab, -1) for lab in det["label"]], np.int64)
    unknown = d_class < 0
    if unknown.any():
        labels = list(dict.fromkeys(lab for lab, u in zip(det["label"], unknown) if u))
        warnings.warn(f"{int(unknown.sum())} detections have labels without ground truth "
                      f"({', '.join(map(repr, labels[:3]))}{', ...' if len(labels) > 3 else ''}"
                      f"); they are ignored", stacklevel=2)
    d_cols = {"video": np.array([rank[v] for v in det["video"]], np.int64),
              "start": np.array(det["start"], np.float64),
              "end": np.array(det["end"], np.float64),
              "score": np.array(det["score"], np.float64),
              "index": np.arange(len(d_class))}
    g_class = np.array([class_index.get(lab, -1) for lab in gt["label"]], np.int64)
    g_cols = {"video": np.array([rank[v] for v in gt["video"]], np.int64),
              "start": np.array(gt["start"], np.float64),
              "end": np.array(gt["end"], np.float64)}
    amb = {key: col[np.array([lab == AMBIGUOUS for lab in gt["label"]], bool)]
           for key, col in g_cols.items()}
    ap = np.zeros((len(thr), len(classes)))
    for k in range(len(classes)):
        class_det = {key: col[d_class == k] for key, col in d_cols.items()}
        truth = {key: col[g_class == k] for key, col in g_cols.items()}
        if protocol == "thumos14":
            ap[:, k] = _thumos_class(class_det, truth, amb, thr)
        else:
            ap[:, k] = _activitynet_class(class_det, truth, thr)

    mean = ap.mean(axis=1)
    return {"ap": {t: {c: float(ap[i, k]) for k, c in enumerate(classes)}
                   for i, t in enumerate(thr_keys)},
            "map": {t: float(mean[i]) for i, t in enumerate(thr_keys)},
            "average_map": float(mean.mean())}
