"""The training configuration: one frozen dataclass, the same fields as the
``zoo train`` options, saved beside every run (``run.json``) so a run says
how it was made and a resumed run can check it is the same one."""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

OPTIMIZERS = ("sgd", "adamw")
FREEZE = ("none", "backbone")
DTYPES = ("float32", "bfloat16")


def model_options(text: Optional[str]) -> dict:
    """``--model-options`` (a JSON object) as builder options, with a
    one-line error. JSON lists become tuples: JSON has none, and the
    builders' sequence options (TALNet's scales, streams) are tuples.

    Args:
        text: a JSON object of keyword arguments for the model's builder,
            e.g. ``'{"towers": "single"}'``; None or ``""`` for none.

    Returns:
        dict: the options, with JSON lists turned into tuples (``{}`` for
        empty ``text``).

    Raises:
        ValueError: if ``text`` is not JSON, or is JSON but not an object.
    """
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--model-options {text!r} is not JSON ({e.msg}); e.g. "
                         "'{\"towers\": \"single\"}'") from None
    if not isinstance(value, dict):
        raise ValueError(f"--model-options {text!r}: expected a JSON object of builder options")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run, one field per ``zoo train``
    option (``--batch-size`` is ``batch_size``). Checked on construction.

    Attributes:
        model: registry name of the model to train (``zoo list``).
        data: ``"digits"``, ``"lfw_subset"``, ``"folder:PATH"``,
            ``"tfds:NAME"``, or a depth / action dataset (``"depth_scenes"``,
            ``"action_features"``, ``"action_videos"``).
        workdir: the run's directory; rerunning in it resumes the run.
        pretrained: start from the model's pretrained weights (for depth
            models, the backbone's ImageNet weights in the encoder).
        data_dir: where datasets are built; None for ``$ZOO_DATA``.
        epochs: passes over the training split; give this or ``steps``
            (10 epochs when neither is given).
        steps: training batches in total, instead of ``epochs``.
        batch_size: global batch, split over the devices.
        image_size: training side in pixels, at least 32; None for the
            dataset's (digits 96, lfw_subset 128) or else the spec's.
        num_classes: classifier outputs; None for the dataset's number of
            classes. A value that differs from the checkpoint's gives a new head.
        freeze: ``"none"`` (full fine-tune) or ``"backbone"`` (linear probe:
            the backbone stays in eval mode, only the head learns).
        optimizer: ``"sgd"`` (Nesterov momentum 0.9) or ``"adamw"``.
        lr: peak learning rate, positive; None for ``peak_lr``'s default.
        warmup_steps: linear warmup in batches; None for 5 % of the run.
        weight_decay: decay on kernels only (not BatchNorm parameters or
            biases).
        label_smoothing: in [0, 1).
        clip_norm: global gradient-norm clip; None or 0 turns it off.
        accumulate: gradient accumulation, one update every this many batches.
        dtype: compute dtype, ``"float32"`` or ``"bfloat16"``; parameters
            stay float32.
        ema: parameter EMA decay in [0, 1) (e.g. 0.999); 0 turns it off.
            Evaluation and the best checkpoint use the EMA.
        augment: random resized crop (and flip) in the loader.
        flip: random horizontal flips; None for the dataset's default (off
            for digits).
        min_scale: smallest random-resized-crop area fraction, in (0, 1].
        photometric: depth data only: strength in [0, 1] of random lighting,
            colour, blur and noise; 0 turns it off.
        dropout: dropout rate before the classifier; None for the family's.
        model_options: JSON object of extra builder options (see
            ``model_options``), e.g. ``'{"towers": "single"}'``.
        bn_momentum: BatchNorm running statistics update
            ``new = m * old + (1 - m) * batch``, in [0, 1).
        seed: seeds initialisation, data order, augmentation and dropout.
        workers: loader worker processes (0: in the main process).
        eval_every: steps between evaluations; None for once per epoch.
        save_every: steps between resumable checkpoints.
        keep: resumable checkpoints kept (the best is kept apart).
        log_every: steps between metric lines.
        devices: use the first this many devices; None for all.

    Raises:
        ValueError: on construction, naming the ``--option``, when a choice
            is unknown, ``epochs`` and ``steps`` are both given, a count is
            below 1, ``image_size`` is below 32, a rate is outside its range,
            or ``model_options`` is not a JSON object.

    Example:
        ::

            config = TrainConfig(model="mobilenet_v2", data="digits",
                                 workdir="runs/digits", pretrained=True, epochs=3)
            config.peak_lr    # 0.05: the SGD default for a batch of 64
    """

    model: str
    data: str  # "digits", "lfw_subset", "folder:PATH", "tfds:NAME"
    workdir: str
    pretrained: bool = False
    data_dir: Optional[str] = None  # where datasets are built ($ZOO_DATA by default)
    epochs: Optional[int] = None  # or steps; epochs=10 when neither is given
    steps: Optional[int] = None
    batch_size: int = 64
    image_size: Optional[int] = None  # the dataset's (digits 96, lfw_subset 128) or the spec's
    num_classes: Optional[int] = None  # the dataset's by default; a new head when it differs
    freeze: str = "none"  # "backbone": linear probe (backbone in eval mode, only the head learns)
    optimizer: str = "sgd"  # SGD with Nesterov momentum 0.9, or AdamW
    lr: Optional[float] = None  # peak learning rate; 0.05 (sgd) or 1e-3 (adamw) per 64 images
    warmup_steps: Optional[int] = None  # 5 % of the run by default
    weight_decay: float = 5e-5  # masked off BatchNorm parameters and biases
    label_smoothing: float = 0.1
    clip_norm: Optional[float] = 1.0  # global gradient norm; None or 0 turns it off
    accumulate: int = 1  # gradient accumulation: one update every N batches
    dtype: str = "float32"  # compute dtype; parameters stay float32
    ema: float = 0.0  # parameter EMA decay (e.g. 0.999); 0 turns it off
    augment: bool = True  # random resized crop (+ flip) in the loader workers
    flip: Optional[bool] = None  # horizontal flips; the dataset's default (off for digits)
    min_scale: float = 0.25  # smallest random-resized-crop area fraction
    photometric: float = 0.0  # depth: random lighting, colour, blur and noise of this strength
    dropout: Optional[float] = None  # the family's default
    model_options: Optional[str] = None  # JSON object of builder options, e.g. '{"towers": "single"}'
    # BatchNorm running statistics: new = m * old + (1 - m) * batch. The
    # checkpoints' 0.99 needs hundreds of steps to forget ImageNet's
    # statistics; a short fine-tune on other images evaluates with stale ones.
    bn_momentum: float = 0.9
    seed: int = 0
    workers: int = 0  # loader worker processes (0: in the main process)
    eval_every: Optional[int] = None  # steps; once per epoch by default
    save_every: int = 100  # steps between resumable checkpoints
    keep: int = 2  # resumable checkpoints kept (the best is kept apart)
    log_every: int = 10  # steps between metric lines
    devices: Optional[int] = None  # use the first N devices; all by default

    def __post_init__(self):
        def bad(field, why):
            raise ValueError(f"--{field.replace('_', '-')}: {why}")

        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"{self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.freeze not in FREEZE:
            bad("freeze", f"{self.freeze!r} is not one of {', '.join(FREEZE)}")
        if self.dtype not in DTYPES:
            bad("dtype", f"{self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.epochs is not None and self.steps is not None:
            bad("steps", "give --epochs or --steps, not both")
        for name in ("epochs", "steps", "batch_size", "accumulate", "save_every", "keep",
                     "log_every", "eval_every", "num_classes", "devices"):
            value = getattr(self, name)
            if value is not None and value < 1:
                bad(name, f"must be at least 1, got {value}")
        if self.image_size is not None and self.image_size < 32:
            bad("image_size", f"{self.image_size} is too small; the models need at least 32")
        if not 0 <= self.ema < 1:
            bad("ema", f"decay must be in [0, 1), got {self.ema}")
        if not 0 <= self.label_smoothing < 1:
            bad("label_smoothing", f"must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.bn_momentum < 1:
            bad("bn_momentum", f"must be in [0, 1), got {self.bn_momentum}")
        if not 0 < self.min_scale <= 1:
            bad("min_scale", f"must be in (0, 1], got {self.min_scale}")
        if not 0 <= self.photometric <= 1:
            bad("photometric", f"must be in [0, 1], got {self.photometric}")
        if self.lr is not None and self.lr <= 0:
            bad("lr", f"must be positive, got {self.lr}")
        model_options(self.model_options)  # a one-line error for bad JSON, before any work

    @property
    def peak_lr(self) -> float:
        """``lr``, or the optimizer's default scaled linearly with the batch:
        0.05 (sgd) or 1e-3 (adamw) per 64 images of ``batch_size`` times
        ``accumulate``."""
        if self.lr is not None:
            return self.lr
        base = 0.05 if self.optimizer == "sgd" else 1e-3
        return base * self.batch_size * self.accumulate / 64

    def to_json(self) -> dict:
        """The fields as a JSON-able dict (what ``run.json`` records).

        Returns:
            dict: field name -> value.
        """
        return dataclasses.asdict(self)

    # Fields that may change when a run is resumed (they change neither the
    # model nor the data order): more steps, more logging, more workers.
    RESUMABLE_CHANGES = ("epochs", "steps", "workers", "log_every", "eval_every", "save_every",
                         "keep", "workdir", "data_dir")
