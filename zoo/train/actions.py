"""Temporal action localisation, the third task of the training loop: a
model of the registry whose spec's task is ``"action_localisation"``
(``talnet``) on a dataset of feature sequences (``action_features``, or
``action_videos``: features of video files, whose settings the run records
in ``run.json`` under ``video``).

* Data: one record per untrimmed video (``zoo.datasets.actions``): the
  streams the model reads, concatenated in its ``streams`` order, as
  ``features`` (B, T, F); the ground truth in feature steps, padded
  (``gt`` (B, M, 2), ``gt_labels``, ``gt_valid``); and, for the classifier,
  ``PROPOSALS`` segments per video sampled in the loader around the ground
  truth and at random (``sample_proposals``) with their class labels and
  refinement targets. Steps inside "Ambiguous" segments are neither action
  nor background: proposals over them are left out of the loss.
* Model: ``model.apply(variables, features, proposals=..., train=True)``
  in training (the classifier learns on the sampled proposals, as Fast
  R-CNN trains on precomputed ones), ``model.apply(variables, features)``
  at evaluation (the classifier sees the network's own proposals).
* Loss: Faster R-CNN's. Proposals: binary cross-entropy over the anchors
  ``talnet.match`` labels (positives and negatives weighted equally, since
  negatives outnumber positives by about a hundred to one) plus smooth L1
  on the positives' centre/length deltas; classifier: softmax cross-entropy
  over background + classes plus smooth L1 on the foreground proposals'
  refinement.
* Evaluation in the loop: the same proposal loss, the recall of the
  network's own proposals at tIoU 0.5, and the classifier's cross-entropy
  on them (labelled by tIoU >= 0.5 with a ground truth); the best
  checkpoint has the lowest sum of the two losses. Detection mAP under the
  THUMOS'14 or ActivityNet protocol needs every video's detections at once:
  ``zoo.actions.evaluate_split`` computes it for a run.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from zoo.actions.metrics import tiou
from zoo.train.config import TrainConfig, model_options
from zoo.train.tasks import TaskData

PROPOSALS = 64  # sampled per video for the classifier
FOREGROUND = 0.25  # share of them drawn around a ground-truth instance
FOREGROUND_IOU = 0.5  # a proposal of tIoU >= this with an instance is that class
TASK = "action_localisation"


def action_models() -> list[str]:
    """The registry's action localisation models.

    Returns:
        list[str]: their names, in ``zoo.list_models()`` order.
    """
    from zoo.registry import models_for_task

    return models_for_task(TASK)


def sample_proposals(rng: np.random.Generator, gt: np.ndarray, labels: np.ndarray,
                     ambiguous: np.ndarray, length: int, count: int = PROPOSALS,
                     foreground: float = FOREGROUND):
    """Proposals for the classifier of one video, in feature steps:
    ``(segments (count, 2), labels (count,), targets (count, 2))``.

    A ``foreground`` share jitters a random ground-truth instance (centre by
    up to a quarter of its length, length by a factor in [e^-0.4, e^0.4]);
    the rest are random segments of log-uniform length in [2, length / 2].
    Each is labelled by its best tIoU with the instances ``gt`` (G, 2) of
    ``labels`` (G,): class + 1 at ``FOREGROUND_IOU`` or more, else 0
    (background), or -1 (left out of the loss) when it lies mostly inside an
    Ambiguous segment. ``targets`` are the foreground proposals' deltas to
    their instance (Faster R-CNN's coding), zero elsewhere.

    Args:
        rng: the random generator (the loader's per-record one).
        gt: (G, 2) float ground-truth instances (start, end) in feature
            steps; G may be 0 (then every proposal is random).
        labels: (G,) int class of each instance.
        ambiguous: (A, 2) float Ambiguous segments in feature steps; A may
            be 0.
        length: the video's length in feature steps; segments are clipped
            to [0, length] and last at least one step.
        count: proposals to draw.
        foreground: share of them drawn around ground-truth instances.

    Returns:
        tuple: ``(segments, labels, targets)``: float32 (count, 2) start and
        end, int32 (count,) labels (class + 1, 0 background, -1 left out),
        and float32 (count, 2) refinement deltas (centre offset over the
        proposal's length, log of the length ratio).
    """
    n_fg = int(round(count * foreground)) if len(gt) else 0
    pick = gt[rng.integers(0, len(gt), n_fg)] if n_fg else np.zeros((0, 2))
    centre = pick.mean(axis=1) + (pick[:, 1] - pick[:, 0]) * rng.uniform(-0.25, 0.25, n_fg)
    size = (pick[:, 1] - pick[:, 0]) * np.exp(rng.uniform(-0.4, 0.4, n_fg))
    fg = np.stack([centre - size / 2, centre + size / 2], axis=1)
    n_bg = count - n_fg
    size = np.exp(rng.uniform(np.log(2.0), np.log(max(length / 2, 2.0)), n_bg))
    start = rng.uniform(-0.1 * size, length - 0.9 * size)
    bg = np.stack([start, start + size], axis=1)
    segments = np.clip(np.concatenate([fg, bg]), 0.0, float(length)).astype(np.float32)
    segments[:, 1] = np.maximum(segments[:, 1], segments[:, 0] + 1.0)  # at least one step
    out = np.zeros(count, np.int32)
    targets = np.zeros((count, 2), np.float32)
    if len(gt):
        iou = tiou(segments[:, None], gt[None])
        best = iou.argmax(axis=1)
        hit = iou.max(axis=1) >= FOREGROUND_IOU
        out = np.where(hit, labels[best] + 1, 0).astype(np.int32)
        matched = gt[best]
        c, w = segments.mean(axis=1), segments[:, 1] - segments[:, 0]
        mc, mw = matched.mean(axis=1), matched[:, 1] - matched[:, 0]
        targets = np.where(hit[:, None], np.stack([(mc - c) / w, np.log(mw / w)], axis=1),
                           0.0).astype(np.float32)
    if len(ambiguous):
        inside = np.clip(np.minimum(segments[:, None, 1], ambiguous[None, :, 1])
                         - np.maximum(segments[:, None, 0], ambiguous[None, :, 0]),
                         0, None).sum(axis=1)
        mostly = inside > 0.5 * (segments[:, 1] - segments[:, 0])
        out = np.where(mostly & (out == 0), -1, out).astype(np.int32)
    return segments, out, targets


@dataclasses.dataclass(frozen=True)
class ActionTransform:
    """A grain ``random_map`` callable: one ``action_features`` record ->
    one video of a batch (see the module docstring). With ``sample=False``
    (evaluation) no proposals are drawn.

    Called as ``transform(record, rng)``, it returns ``features`` float32
    (T, F x streams), ``gt`` float32 (M, 2) in feature steps, ``gt_labels``
    int32 (M,), ``gt_valid`` bool (M,), and when sampling ``proposals``,
    ``proposal_labels`` and ``proposal_targets`` (``sample_proposals``).

    Attributes:
        streams: the record's feature streams to concatenate, in the
            model's order (e.g. ``("rgb", "flow")``).
        feature_rate: feature steps per second: converts the record's
            segments (seconds) to feature steps.
        max_instances: M, the padded number of ground-truth instances.
        sample: draw the classifier's training proposals (needs ``rng``).
    """

    streams: tuple[str, ...]
    feature_rate: float
    max_instances: int
    sample: bool = True

    def __call__(self, record: dict, rng: Optional[np.random.Generator] = None) -> dict:
        from zoo.datasets.actions import valid_ambiguous, valid_instances

        features = np.concatenate([np.asarray(record[s], np.float32) for s in self.streams],
                                  axis=-1)
        length = features.shape[0]
        segments, labels = valid_instances(record)
        gt = np.asarray(segments, np.float32) * self.feature_rate
        m = self.max_instances
        out = {"features": features,
               "gt": np.zeros((m, 2), np.float32), "gt_labels": np.zeros(m, np.int32),
               "gt_valid": np.arange(m) < len(gt)}
        out["gt"][:len(gt)] = gt
        out["gt_labels"][:len(gt)] = labels
        if self.sample:
            ambiguous = np.asarray(valid_ambiguous(record), np.float32) * self.feature_rate
            p, pl, pt = sample_proposals(rng, gt, np.asarray(labels), ambiguous, length)
            out.update(proposals=p, proposal_labels=pl, proposal_targets=pt)
        return out


@dataclasses.dataclass(frozen=True)
class _EvalBatch:
    transform: ActionTransform
    batch_size: int

    def __call__(self, records: list) -> dict:
        items = [self.transform(r) for r in records]
        batch = {k: np.zeros((self.batch_size,) + v.shape, v.dtype) for k, v in items[0].items()}
        for i, item in enumerate(items):
            for k, v in item.items():
                batch[k][i] = v
        batch["mask"] = np.arange(self.batch_size) < len(items)
        return batch


def _smooth_l1(x):
    return optax.huber_loss(x, delta=1.0)


def proposal_loss(outputs, batch, scales):
    """Per video: (classification, regression) losses of the proposal
    network against ``talnet.match``'s anchor labels.

    The classification loss is the mean of two means of binary
    cross-entropy, one over the positive and one over the negative anchors
    (so each kind weighs equally; ignored anchors take no part); the
    regression loss is the mean smooth L1 of the positive anchors' deltas.

    Args:
        outputs: the model's outputs: ``proposal_logits`` (B, T, A) and
            ``proposal_deltas`` (B, T, A, 2).
        batch: supplies ``gt`` (B, M, 2) in feature steps and ``gt_valid``
            (B, M) bool.
        scales: the model's anchor scales in feature steps (A of them).

    Returns:
        tuple: ``(cls, reg)``, each float32 (B,).
    """
    from zoo.models.talnet import anchors, match

    length = outputs["proposal_logits"].shape[1]
    grid = jnp.asarray(anchors(length, scales))
    labels, targets, _ = jax.vmap(match, in_axes=(None, 0, 0))(grid, batch["gt"],
                                                               batch["gt_valid"])
    bce = optax.sigmoid_binary_cross_entropy(outputs["proposal_logits"],
                                             (labels == 1).astype(jnp.float32))
    pos, neg = (labels == 1), (labels == 0)
    axes = (1, 2)

    def mean(x, where):
        return (x * where).sum(axis=axes) / jnp.maximum(where.sum(axis=axes), 1)

    cls = 0.5 * (mean(bce, pos) + mean(bce, neg))
    reg = mean(_smooth_l1(outputs["proposal_deltas"] - targets).sum(-1), pos)
    return cls, reg


def classifier_loss(logits, refine, labels, targets):
    """Per video: (cross-entropy, refinement) losses of the classifier on
    proposals labelled ``labels`` (0 background, c + 1, -1 left out).

    Args:
        logits: (B, K, C + 1) class logits, background first.
        refine: (B, K, 2) predicted refinement deltas.
        labels: (B, K) int labels; the cross-entropy averages over labels
            >= 0, the refinement loss (smooth L1) over labels > 0.
        targets: (B, K, 2) refinement targets.

    Returns:
        tuple: ``(ce, reg)``, each (B,).
    """
    use = labels >= 0
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(labels, 0))
    ce = (ce * use).sum(-1) / jnp.maximum(use.sum(-1), 1)
    fg = labels > 0
    reg = (_smooth_l1(refine - targets).sum(-1) * fg).sum(-1) / jnp.maximum(fg.sum(-1), 1)
    return ce, reg


def label_own_proposals(proposals, valid, gt, gt_labels, gt_valid):
    """Labels of the network's own proposals (B, K, 2): the class + 1 of the
    instance they overlap at tIoU >= ``FOREGROUND_IOU``, else 0; -1 where
    the proposal slot is padding. Also the recall of the instances.

    Args:
        proposals: (B, K, 2) segments in feature steps.
        valid: (B, K) bool, False for padding slots.
        gt: (B, M, 2) ground-truth instances in feature steps.
        gt_labels: (B, M) int class of each instance.
        gt_valid: (B, M) bool, False for padding rows.

    Returns:
        tuple: ``(labels, recall)``: int (B, K) labels, and (B,) the share
        of each video's valid instances that some valid proposal overlaps
        at tIoU >= ``FOREGROUND_IOU`` (0 for a video without instances).
    """
    from zoo.models.talnet import tiou_matrix

    iou = jax.vmap(tiou_matrix)(proposals, gt)  # (B, K, M)
    iou = jnp.where(gt_valid[:, None, :] & valid[:, :, None], iou, 0.0)
    best = iou.argmax(-1)
    hit = iou.max(-1) >= FOREGROUND_IOU
    labels = jnp.where(hit, jnp.take_along_axis(gt_labels, best, axis=1) + 1, 0)
    labels = jnp.where(valid, labels, -1)
    found = (iou.max(1) >= FOREGROUND_IOU) & gt_valid  # (B, M)
    recall = found.sum(-1) / jnp.maximum(gt_valid.sum(-1), 1)
    return labels, recall


@dataclasses.dataclass
class Actions:
    """Temporal action localisation: Faster R-CNN losses, proposal and
    classifier losses on the held-out videos as the best-checkpoint metric.

    Attributes:
        name: ``"actions"``.
        input_key: ``"features"``.
        best_metric: ``"loss"``, the held-out proposal plus classifier loss.
        higher_is_better: False.
        scales: the model's anchor scales; ``init`` sets them (the losses
            need them).
    """

    name: str = "actions"
    input_key: str = "features"
    best_metric: str = "loss"
    higher_is_better: bool = False
    scales: tuple = ()  # the model's anchor scales, set by init

    def check(self, config: TrainConfig) -> None:
        """Refuse a model that does not localise actions, a dataset without
        action segments, or ``--pretrained``.

        Args:
            config: supplies ``model``, ``data`` and ``pretrained``.

        Raises:
            ValueError: if ``config.model`` is not an action localisation
                model, ``config.data`` holds no feature sequences with
                action segments, or ``config.pretrained`` is set (no such
                weights exist).
        """
        import zoo
        from zoo.datasets import dataset_task

        spec = zoo.get_spec(config.model)
        if spec.task != TASK:
            raise ValueError(f"{config.model} is a {spec.task} model; the actions task trains "
                             f"{', '.join(action_models())}")
        if dataset_task(config.data) != TASK:
            raise ValueError(f"--data {config.data} holds no feature sequences with action "
                             f"segments and {config.model} localises actions: train it on "
                             f"action_features or action_videos")
        if config.pretrained:
            raise ValueError(f"--pretrained: no pretrained weights exist for {config.model}; "
                             "it trains from scratch")

    def _options(self, config: TrainConfig, data) -> dict:
        options = model_options(config.model_options)
        dim = np.asarray(data.train[0]["rgb"]).shape[-1]
        if options.setdefault("feature_dim", dim) != dim:
            raise ValueError(f"--model-options feature_dim={options['feature_dim']}, but "
                             f"{data.name}'s features have {dim} values per stream")
        return options

    def prepare(self, config: TrainConfig) -> TaskData:
        """Build and open ``config.data``: training videos with sampled
        proposals (``ActionTransform``), the ``test`` videos in order for
        evaluation.

        Args:
            config: the run's configuration (``model_options`` too: the
                model's streams and scales decide the batches).

        Returns:
            TaskData: its ``meta`` holds ``feature_rate``, ``steps`` (T),
            ``num_classes``, ``class_names``, ``model_options`` (with
            ``feature_dim``) and, for ``action_videos``, ``video`` (how
            the features were made).

        Raises:
            ValueError: if ``config.num_classes`` differs from the dataset's,
                ``feature_dim`` in ``model_options`` differs from the
                features', the sequences are shorter than the smallest
                anchor, or ``config.batch_size`` does not fit the dataset.
        """
        import zoo
        from zoo.datasets import prepare, steps_per_epoch
        from zoo.datasets.pipeline import _check_batch_size, _ordered, _stream

        data = prepare(config.data, data_dir=config.data_dir)
        _check_batch_size(data, config.batch_size)
        if config.num_classes not in (None, data.num_classes):
            raise ValueError(f"--num-classes {config.num_classes}: {data.name} has "
                             f"{data.num_classes} action classes")
        options = self._options(config, data)
        model = zoo.build(config.model, num_classes=data.num_classes, **options)
        rate = float(data.meta["feature_rate"])  # each feature dataset states its own
        max_instances = np.asarray(data.train[0]["labels"]).shape[0]
        transform = ActionTransform(tuple(model.streams), rate, max_instances)
        train = _stream(data, config.batch_size, transform, config.seed, config.workers,
                        jax.process_index(), jax.process_count())
        scales = tuple(model.scales)
        steps = np.asarray(data.train[0]["rgb"]).shape[0]
        if steps < max(2, min(scales)):
            raise ValueError(f"{data.name}: sequences of {steps} steps are shorter than the "
                             f"smallest anchor ({min(scales)} steps)")
        evaluate = _EvalBatch(dataclasses.replace(transform, sample=False), config.batch_size)
        return TaskData(
            train=train,
            evaluate=lambda: _ordered(data.test, config.batch_size, evaluate),
            steps_per_epoch=steps_per_epoch(data, config.batch_size),
            meta={"feature_rate": rate, "steps": int(steps), "num_classes": data.num_classes,
                  "class_names": list(data.class_names),
                  "model_options": options,
                  # How the features were made: detect_video featurises new files alike.
                  **({"video": dict(data.meta["video"])} if "video" in data.meta else {})})

    def init(self, config: TrainConfig, data: TaskData):
        """The model, randomly initialised and wholly trainable, built with
        ``data.meta``'s classes and options, ``config.dtype`` and
        ``config.dropout``; sets ``scales``.

        Args:
            config: the run's configuration.
            data: ``prepare``'s result.

        Returns:
            tuple: ``(model, variables, trainable)``.

        Raises:
            ValueError: from ``check``.
        """
        import zoo
        from zoo.registry import init_variables

        self.check(config)
        model = zoo.build(config.model, num_classes=data.meta["num_classes"],
                          dtype=jnp.dtype(config.dtype), **data.meta["model_options"])
        if config.dropout is not None:
            model = model.clone(dropout=config.dropout)
        self.scales = tuple(model.scales)
        variables = init_variables(model, config.seed)
        trainable = jax.tree_util.tree_map(lambda _: True, variables["params"])
        return model, variables, trainable

    def train_inputs(self, batch) -> dict:
        """The keyword arguments of the model's training call beyond the input.

        Args:
            batch: a training batch with the sampled ``proposals``.

        Returns:
            dict: ``{"proposals": (B, K, 2)}``.
        """
        return {"proposals": batch["proposals"]}

    def loss(self, outputs, batch, config: TrainConfig):
        """Sum of the proposal losses (``proposal_loss``) and the classifier
        losses on the sampled proposals (``classifier_loss``), batch means.

        Args:
            outputs: the model's training outputs (a dict).
            batch: the training batch (``gt``, ``gt_valid``,
                ``proposal_labels``, ``proposal_targets``).
            config: unused (the loss has no settings).

        Returns:
            tuple: ``(loss, {"loss", "proposal_cls", "proposal_reg",
            "class", "refine"})``, scalars.
        """
        p_cls, p_reg = proposal_loss(outputs, batch, self.scales)
        c_cls, c_reg = classifier_loss(outputs["class_logits"], outputs["refine_deltas"],
                                       batch["proposal_labels"], batch["proposal_targets"])
        parts = {"proposal_cls": p_cls.mean(), "proposal_reg": p_reg.mean(),
                 "class": c_cls.mean(), "refine": c_reg.mean()}
        loss = sum(parts.values())
        return loss, {"loss": loss, **parts}

    def eval_sums(self, outputs, batch):
        """Held-out proposal loss, the classifier's cross-entropy on the
        network's own proposals (``label_own_proposals``) and their recall
        at tIoU 0.5, summed over the real videos.

        Args:
            outputs: the model's eval outputs (a dict).
            batch: a held-out batch (``gt``, ``gt_labels``, ``gt_valid``,
                ``mask``).

        Returns:
            dict: ``{"loss", "proposal_loss", "class_loss", "recall_50",
            "count"}``, scalar sums; ``loss`` is ``proposal_loss`` plus
            ``class_loss``.
        """
        p_cls, p_reg = proposal_loss(outputs, batch, self.scales)
        labels, recall = label_own_proposals(outputs["proposals"], outputs["proposal_valid"],
                                             batch["gt"], batch["gt_labels"], batch["gt_valid"])
        ce, _ = classifier_loss(outputs["class_logits"], outputs["refine_deltas"], labels,
                                jnp.zeros_like(outputs["refine_deltas"]))
        weight = batch["mask"].astype(jnp.float32)
        proposal = p_cls + p_reg
        return {"loss": ((proposal + ce) * weight).sum(),
                "proposal_loss": (proposal * weight).sum(),
                "class_loss": (ce * weight).sum(),
                "recall_50": (recall * weight).sum(), "count": weight.sum()}

