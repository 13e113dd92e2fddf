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
    builders' sequence options (TALNet's scales, streams) are tuples."""
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
        """``lr``, or the optimizer's default scaled linearly with the batch."""
        if self.lr is not None:
            return self.lr
        base = 0.05 if self.optimizer == "sgd" else 1e-3
        return base * self.batch_size * self.accumulate / 64

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    # Fields that may change when a run is resumed (they change neither the
    # model nor the data order): more steps, more logging, more workers.
    RESUMABLE_CHANGES = ("epochs", "steps", "workers", "log_every", "eval_every", "save_every",
                         "keep", "workdir", "data_dir")
