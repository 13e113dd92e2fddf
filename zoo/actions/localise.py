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
    """Actions in each sequence of ``features`` (N, T, F), as
    ``(start_s, end_s, class, score)`` lists (``zoo.models.talnet.detections``;
    ``options`` are its score threshold, NMS tIoU and maximum count). The
    sequences run through one jitted call per ``batch_size`` (the last batch
    padded), so all share one compiled program."""
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
    """The ground truth of ``action_features`` records in ``zoo.actions.evaluate``'s
    form, "Ambiguous" segments included."""
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
    """Detection mAP of a ``zoo train`` run's best checkpoint on its
    dataset's ``split``: ``zoo.actions.evaluate``'s result, plus
    ``detections`` (their count) and ``videos``."""
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
