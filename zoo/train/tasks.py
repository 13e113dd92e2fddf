"""What the training loop needs to know about a task, and the first one,
image classification. ``task_for`` picks a model's task from its spec
(depth: ``zoo.train.depth``).

A task supplies the model and its starting variables, the loss, and the
evaluation sums; the loop (``zoo.train.loop``), its checkpoints and its
sharding are the same for every task.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from zoo.train.config import TrainConfig

# The classifier of every ConvNet in zoo.models.common; MobileNetV3 also has a
# fully connected layer after pooling, which belongs to the backbone here.
HEAD = ("classifier",)


@dataclasses.dataclass
class TaskData:
    """A task's data, ready for the loop.

    Attributes:
        train: an iterable whose iterator yields batches (dicts of numpy
            arrays with the batch first) forever and has ``get_state()`` /
            ``set_state(state)`` (JSON-able), so a checkpoint can hold its
            position (a grain iterator).
        evaluate: called with no arguments, returns the held-out batches,
            each with a bool ``mask`` (B,) of the real examples (the last
            batch is padded to the batch size).
        steps_per_epoch: training batches per pass over the training split.
        meta: JSON-able facts for the run's ``run.json`` (what predicting
            and exporting with the run needs, e.g. ``num_classes``,
            ``class_names``, ``image_size``).
        check_batch: called with each training batch before the step;
            raises (a one-line ValueError) on a batch that would become a
            NaN loss. By default accepts everything.
    """

    train: Iterable
    evaluate: Callable[[], Iterable[dict]]
    steps_per_epoch: int
    meta: dict
    check_batch: Callable[[dict], None] = lambda batch: None


class Task(Protocol):
    """The parts of training that differ between tasks: the model, the data,
    the loss and the evaluation. The loop, checkpoints and sharding are
    shared.

    A task may also define ``train_inputs(batch) -> dict``: keyword
    arguments of the model's training call beyond the input (see
    ``zoo.train.actions.Actions``).

    Attributes:
        name: the task's name, recorded in ``run.json``.
        input_key: the batch entry the model is applied to (``"image"`` for
            the image tasks).
        best_metric: the eval metric (a key of ``eval_sums``) that picks
            the best checkpoint.
        higher_is_better: whether a larger ``best_metric`` is better.
    """

    name: str
    # The batch entry the model is applied to ("image" for the image tasks).
    input_key: str
    # The eval metric that picks the best checkpoint, and whether higher is better.
    best_metric: str
    higher_is_better: bool

    def check(self, config: TrainConfig) -> None:
        """Refuse a model this task cannot train (before any data is built).

        Args:
            config: the run's configuration.

        Raises:
            ValueError: naming the bad option, when the task cannot train
                ``config.model`` on ``config.data`` with these settings.
        """

    def prepare(self, config: TrainConfig) -> TaskData:
        """Build (once) and open the data; check it against the config.

        Args:
            config: the run's configuration (``data``, ``data_dir``,
                ``batch_size``, augmentation settings, ``seed``, ``workers``).

        Returns:
            TaskData: the training and held-out batches, ``run.json`` facts.
        """

    def init(self, config: TrainConfig, data: TaskData) -> tuple[Any, dict, Any]:
        """The model and its starting variables.

        Args:
            config: the run's configuration (``model``, ``pretrained``,
                ``freeze``, ``dtype``, ``seed``, ...).
            data: what ``prepare`` returned (its ``meta``, e.g. the number of
                classes).

        Returns:
            tuple: ``(model, variables, trainable)``: a Flax module,
            ``{"params": ..., "batch_stats": ...}``, and a pytree of bools
            shaped like ``variables["params"]`` (False: frozen).
        """

    def loss(self, outputs, batch, config: TrainConfig) -> tuple[jax.Array, dict]:
        """Mean loss over the batch, and metrics (batch means) to log; the
        metrics hold ``loss``. Traced inside the jitted train step.

        Args:
            outputs: what ``model.apply`` returned in training mode.
            batch: the training batch (dict of arrays, batch first).
            config: the run's configuration (e.g. ``label_smoothing``).

        Returns:
            tuple: ``(loss, metrics)``: a scalar and a dict of scalars.
        """

    def eval_sums(self, outputs, batch) -> dict:
        """Sums over the valid examples (``batch["mask"]``) with their
        ``count``; the loop divides by it at the end of an evaluation.
        Traced inside the jitted eval step.

        Args:
            outputs: what ``model.apply`` returned in eval mode.
            batch: a held-out batch with its ``mask``.

        Returns:
            dict: metric name -> scalar sum over the valid examples, and
            ``count``, the number of them.
        """


def merge_pretrained(variables: dict, pretrained: dict, skip=HEAD) -> tuple[dict, list[str]]:
    """``variables`` with every array also in ``pretrained`` (same path, same
    shape) replaced by the pretrained one, except under ``skip``; and the
    paths that were kept from ``variables`` (a new head).

    Args:
        variables: the freshly initialised variables (any nested dict of
            arrays, e.g. ``{"params": ..., "batch_stats": ...}``).
        pretrained: the pretrained variables, same nesting.
        skip: a path prefix below the collection (e.g. ``("classifier",)``
            matches ``params/classifier/...``) whose arrays are never
            replaced; ``()`` replaces everything that matches.

    Returns:
        tuple: ``(merged, kept)``: the variables, pretrained arrays cast to
        the dtype of the ones they replace, and the ``"/"``-joined paths
        that kept their initial values.
    """
    flat = _flatten(pretrained)
    kept = []

    def pick(path, a):
        key = tuple(str(getattr(p, "key", p)) for p in path)
        skipped = bool(skip) and key[1:1 + len(skip)] == skip
        if not skipped and key in flat and flat[key].shape == a.shape:
            return jnp.asarray(flat[key], a.dtype)
        kept.append("/".join(key))
        return a

    return jax.tree_util.tree_map_with_path(pick, variables), kept


def _flatten(tree) -> dict:
    return {tuple(str(getattr(p, "key", p)) for p in path): a
            for path, a in jax.tree_util.tree_flatten_with_path(tree)[0]}


@dataclasses.dataclass(frozen=True)
class Classification:
    """Image classification from ``zoo.datasets``: softmax cross-entropy with
    label smoothing; top-1 accuracy.

    Batches are ``{"image": float32 (B, S, S, 3), "label": int32 (B,)}``
    (plus ``mask`` (B,) bool in evaluation).

    Attributes:
        name: ``"classification"``.
        input_key: ``"image"``.
        best_metric: ``"top1"``, the eval accuracy (a fraction).
        higher_is_better: True.
    """

    name: str = "classification"
    input_key: str = "image"
    best_metric: str = "top1"
    higher_is_better: bool = True

    def check(self, config: TrainConfig) -> None:
        """Refuse a model that is not a classifier, or a dataset without labels.

        Args:
            config: supplies ``model`` and ``data``.

        Raises:
            ValueError: if ``config.model`` is not a classification model
                (naming those that are) or ``config.data`` is a depth dataset.
        """
        import zoo

        from zoo.datasets import dataset_task

        spec = zoo.get_spec(config.model)
        if spec.task != "classification":
            raise ValueError(f"{config.model} is a {spec.task} model; `zoo train` fine-tunes "
                             f"classifiers: {', '.join(classifiers())}")
        if dataset_task(config.data) != "classification":
            from zoo.train.depth import depth_models

            raise ValueError(f"--data {config.data} is a depth dataset (no labels) and "
                             f"{config.model} is a classifier: train a depth model on it "
                             f"({', '.join(depth_models()) or 'none registered'})")

    def prepare(self, config: TrainConfig) -> TaskData:
        """Build and open ``config.data``: augmented training batches at the
        run's resolution and the ``test`` split for evaluation, normalised
        with the model spec's mean and std.

        Args:
            config: the run's configuration.

        Returns:
            TaskData: its ``meta`` holds ``num_classes``, ``class_names``
            (extra classes beyond the dataset's are named by their index) and
            ``image_size``; its ``check_batch`` refuses out-of-range labels.

        Raises:
            ValueError: if ``config.num_classes`` is below the dataset's
                class count, or ``config.batch_size`` exceeds its training split.
        """
        import zoo
        from zoo.datasets import eval_batches, prepare, steps_per_epoch, train_batches

        data = prepare(config.data, data_dir=config.data_dir)
        num_classes = config.num_classes or data.num_classes
        if num_classes < data.num_classes:
            raise ValueError(f"--num-classes {num_classes}: {data.name} has {data.num_classes} "
                             f"classes ({', '.join(data.class_names[:5])}, ...); give at least "
                             f"{data.num_classes}")
        if config.batch_size > len(data.train):
            raise ValueError(f"--batch-size {config.batch_size} is larger than {data.name}'s "
                             f"training split ({len(data.train)} examples)")
        spec = zoo.get_spec(config.model, resolution=config.image_size or data.image_size)
        train = train_batches(data, batch_size=config.batch_size, image_size=spec.input_size,
                              mean=spec.mean, std=spec.std, seed=config.seed,
                              augment=config.augment,
                              flip=data.flip if config.flip is None else config.flip,
                              min_scale=config.min_scale, interpolation=spec.interpolation,
                              num_workers=config.workers, shard_index=jax.process_index(),
                              shard_count=jax.process_count())
        class_names = list(data.class_names) + [str(i) for i in
                                                range(data.num_classes, num_classes)]
        return TaskData(
            train=train,
            evaluate=lambda: eval_batches(data, "test", batch_size=config.batch_size,
                                          spec=spec),
            steps_per_epoch=steps_per_epoch(data, config.batch_size),
            meta={"num_classes": num_classes, "class_names": class_names,
                  "image_size": spec.input_size},
            check_batch=lambda batch: check_labels(batch["label"], num_classes, data.name))

    def init(self, config: TrainConfig, data: TaskData):
        """``build`` with the number of classes ``prepare`` chose.

        Args:
            config: the run's configuration.
            data: ``prepare``'s result (``meta["num_classes"]``).

        Returns:
            tuple: ``(model, variables, trainable)`` as ``build`` returns.
        """
        return self.build(config, data.meta["num_classes"])

    def build(self, config: TrainConfig, num_classes: int):
        """``init`` without data: the model for ``num_classes`` classes.

        The model gets ``config.dtype``, ``config.dropout`` and
        ``config.bn_momentum``. With ``config.pretrained`` every pretrained
        array that fits is loaded; a head whose size differs from the
        checkpoint's (or any head without ``pretrained``) starts at zero, so
        the first loss is about log(num_classes). With ``freeze="backbone"``
        only the ``classifier`` parameters are trainable.

        Args:
            config: the run's configuration.
            num_classes: classifier outputs.

        Returns:
            tuple: ``(model, variables, trainable)``: the Flax module, its
            variables and a pytree of bools shaped like ``variables["params"]``.

        Raises:
            ValueError: from ``check``, if the model is not a classifier.
        """
        import zoo
        from zoo.registry import init_variables

        self.check(config)
        spec = zoo.get_spec(config.model)
        options = {"num_classes": num_classes, "dtype": jnp.dtype(config.dtype)}
        if config.dropout is not None:
            options["dropout"] = config.dropout
        model = zoo.build(config.model, **options)
        model = model.clone(settings=dataclasses.replace(model.settings,
                                                         bn_momentum=config.bn_momentum))
        variables = init_variables(model, config.seed)
        new_head = True
        if config.pretrained:
            pretrained = zoo.load_pretrained(config.model)
            new_head = num_classes != spec.num_classes
            variables, _ = merge_pretrained(variables, pretrained,
                                            skip=HEAD if new_head else ())
        if new_head:
            # A new classifier starts at zero (big_vision's head_zeroinit): the
            # first loss is log(num_classes), not the ~10x larger one that the
            # ImageNet-scaled random head gives on a 1280-wide feature vector.
            params = dict(variables["params"])
            params["classifier"] = jax.tree_util.tree_map(jnp.zeros_like, params["classifier"])
            variables = dict(variables, params=params)
        trainable = jax.tree_util.tree_map_with_path(
            lambda path, _: config.freeze == "none" or str(path[0].key) in HEAD,
            variables["params"])
        return model, variables, trainable

    def loss(self, logits, batch, config: TrainConfig):
        """Softmax cross-entropy with ``config.label_smoothing``.

        Args:
            logits: (B, num_classes) model outputs.
            batch: supplies ``label`` (B,) int.
            config: supplies ``label_smoothing``.

        Returns:
            tuple: ``(loss, {"loss", "accuracy"})``: batch means (accuracy a
            fraction in [0, 1]).
        """
        labels = optax.smooth_labels(jax.nn.one_hot(batch["label"], logits.shape[-1]),
                                     config.label_smoothing)
        loss = optax.softmax_cross_entropy(logits, labels).mean()
        accuracy = (jnp.argmax(logits, -1) == batch["label"]).mean()
        return loss, {"loss": loss, "accuracy": accuracy}

    def eval_sums(self, logits, batch):
        """Unsmoothed cross-entropy and top-1 hits, summed over the valid
        examples.

        Args:
            logits: (B, num_classes) model outputs.
            batch: supplies ``label`` (B,) int and ``mask`` (B,) bool.

        Returns:
            dict: ``{"loss", "top1", "count"}``, scalar sums.
        """
        mask = batch["mask"].astype(jnp.float32)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
        top1 = (jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32)
        return {"loss": (loss * mask).sum(), "top1": (top1 * mask).sum(), "count": mask.sum()}


def task_for(config: TrainConfig) -> Task:
    """The task of ``config.model``'s spec: ``Depth`` for depth models,
    ``Actions`` for action localisation, ``Classification`` for everything
    else (which refuses models that are not classifiers, naming the ones
    that are).

    Args:
        config: supplies ``model``, a registry name.

    Returns:
        Task: a new task object.
    """
    import zoo

    task = zoo.get_spec(config.model).task
    if task == "depth":
        from zoo.train.depth import Depth

        return Depth()
    if task == "action_localisation":
        from zoo.train.actions import Actions

        return Actions()
    return Classification()


def classifiers() -> list[str]:
    """The registry's classification models.

    Returns:
        list[str]: their names, in ``zoo.list_models()`` order.
    """
    from zoo.registry import models_for_task

    return models_for_task("classification")


def check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    """Refuse labels outside [0, num_classes) before they become NaN losses.

    Args:
        labels: integer class labels, any shape (empty passes).
        num_classes: the classifier's outputs.
        where: names the data in the message (e.g. the dataset's name).

    Raises:
        ValueError: if a label is negative or at least ``num_classes``
            (the message lists up to five of them).
    """
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = sorted(set(labels[(labels < 0) | (labels >= num_classes)].tolist()))[:5]
        raise ValueError(f"{where}: labels {bad} are outside [0, {num_classes}); give "
                         f"--num-classes {int(labels.max()) + 1} or more (or leave it to "
                         "the dataset)")
