"""Detections from feature sequences, and the detection mAP of a model on a
whole split of an action dataset (what the training loop cannot compute
batch by batch: AP ranks every video's detections together)."""

from __future__ import annotations

import os
import warnings
from typing import Any, Optional, Sequence, Union

import numpy as np

from zoo.actions.metrics import AMBIGUOUS, evaluate


def detect(features: np.ndarray, model, variables: dict, feature_rate: float,
           class_names: Optional[Sequence[str]] = None, *, batch_size: int = 8,
           **options: Any) -> list[list[tuple]]:
    """Actions in each sequence of ``features``, in seconds, by descending score.

    The sequences run through one jitted call per ``batch_size`` (the last
    batch padded with zeros), so all share one compiled program; the
    outputs are decoded by ``zoo.models.talnet.detections``.

    Args:
        features: (N, T, F) feature sequences, cast to float32; F is the
            model's streams concatenated in ``model.streams`` order.
        model: a TALNet (``zoo.models.talnet``) module.
        variables: its variables (``{"params": ...}``).
        feature_rate: feature steps per second (> 0): step i covers
            [i / rate, (i + 1) / rate) seconds.
        class_names: one name per action class, background excluded
            (default: classes are reported by their 0-based index).
        batch_size: sequences per call.
        **options: ``score_threshold`` (default 1e-3), ``nms_iou`` (default
            0.5) and ``max_detections`` (default 100) of
            ``zoo.models.talnet.detections``.

    Returns:
        list[list[tuple]]: per sequence, ``(start_s, end_s, class, score)``
        tuples by descending score; ``class`` is a name of ``class_names``
        or an int index.

    Raises:
        ValueError: when ``features`` is not 3-D, ``feature_rate`` is not
            positive, or ``class_names`` does not match the model's classes.
    """
    import jax

    from zoo.models.talnet import detections

    features = np.asarray(features, np.float32)
    if features.ndim != 3:
        raise ValueError(f"features: expected (N, T, F) sequences, got shape {features.shape}")
    apply = jax.jit(model.apply)
    found: list[list[tuple]] = []
    for start in range(0, len(features), batch_size):
        chunk = features[start:start + batch_size]
        padded = np.zeros((batch_size,) + features.shape[1:], np.float32)
        padded[:len(chunk)] = chunk
        outputs = jax.device_get(apply(variables, padded))
        found += detections(outputs, feature_rate, class_names, **options)[:len(chunk)]
    return found


def split_ground_truth(records: Sequence[dict], class_names: Sequence[str]) -> list[dict]:
    """The ground truth of ``action_features`` records in ``zoo.actions.evaluate``'s form.

    Args:
        records: ``action_features`` records (``zoo.datasets.actions``):
            dicts with ``video`` (str or bytes), ``segments`` (K, 2)
            seconds with ``labels`` (K,) (padding rows labelled -1) and
            ``ambiguous`` (A, 2) seconds (padding rows with end < 0).
        class_names: action class names, indexed by the records' labels.

    Returns:
        list[dict]: ``{"video", "start", "end", "label"}`` per valid
        instance (start and end in seconds, label a name of
        ``class_names``), then the record's ``"Ambiguous"`` segments, record
        by record.
    """
    from zoo.datasets.actions import valid_ambiguous, valid_instances

    truth = []
    for r in records:
        video = _video(r)
        segments, labels = valid_instances(r)
        truth += [{"video": video, "start": float(s), "end": float(e),
                   "label": class_names[int(c)]} for (s, e), c in zip(segments, labels)]
        truth += [{"video": video, "start": float(s), "end": float(e), "label": AMBIGUOUS}
                  for s, e in valid_ambiguous(r)]
    return truth


def _video(record: dict) -> str:
    v = record["video"]
    return v.decode() if isinstance(v, bytes) else str(v)


def evaluate_split(run: Union[str, os.PathLike], split: str = "test",
                   protocol: str = "thumos14", *, batch_size: int = 8,
                   thresholds: Optional[Sequence[float]] = None) -> dict:
    """Detection mAP of a ``zoo train`` run's best checkpoint on a whole split of its dataset.

    Every video of the split goes through ``detect`` whole (the model's
    streams concatenated, ``detect``'s default options) and all detections
    are ranked together by ``zoo.actions.evaluate``. Detections of classes
    absent from the split are ignored without a warning.

    Args:
        run: the ``zoo train`` work directory of an action model.
        split: ``"train"`` or ``"test"``.
        protocol: ``"thumos14"`` or ``"activitynet"``.
        batch_size: sequences per jitted call.
        thresholds: tIoU thresholds (default: the protocol's,
            ``DEFAULT_THRESHOLDS``).

    Returns:
        dict: ``zoo.actions.evaluate``'s result (``ap``, ``map``,
        ``average_map``) plus ``detections`` (how many were scored) and
        ``videos`` (how many videos the split has).

    Raises:
        ValueError: when ``run`` is not a training run with a checkpoint,
            trained a model of another task, or ``split`` is neither
            ``"train"`` nor ``"test"``; and for a bad ``protocol`` or
            ``thresholds``.

    Example:
        ::

            result = zoo.actions.evaluate_split("runs/talnet", "test", "thumos14")
            print(result["map"][0.5], result["average_map"])
    """
    from zoo.datasets import prepare
    from zoo.train.actions import ActionTransform
    from zoo.train.loop import load_run

    model, variables, meta = load_run(run)
    if meta.get("task") != "actions":
        raise ValueError(f"{run} trained a {meta.get('task')} model, not action localisation")
    data = prepare(meta["data"], data_dir=meta["config"].get("data_dir"))
    records = {"train": data.train, "test": data.test}.get(split)
    if records is None:
        raise ValueError(f"split={split!r}: expected 'train' or 'test'")
    records = [records[i] for i in range(len(records))]
    transform = ActionTransform(tuple(model.streams), meta["feature_rate"],
                                np.asarray(records[0]["labels"]).shape[0], sample=False)
    features = np.stack([transform(r)["features"] for r in records])
    names = meta["class_names"]
    found = detect(features, model, variables, meta["feature_rate"], names,
                   batch_size=batch_size)
    detections = [{"video": _video(r), "start": s, "end": e, "label": c, "score": p}
                  for r, items in zip(records, found) for s, e, c, p in items]
    with warnings.catch_warnings():
        # Classes absent from the split have no AP; their detections are
        # ignored, as both protocols do (evaluate warns of it).
        warnings.filterwarnings("ignore", ".*detections have labels without ground truth")
        result = evaluate(detections, split_ground_truth(records, names), protocol, thresholds)
    return dict(result, detections=len(detections), videos=len(records))
