"""The optimizer a config asks for, built from optax parts:

    clip by global norm -> [weight decay on kernels] -> SGD-Nesterov | AdamW
    with a linear warmup + cosine decay schedule, wrapped in
    ``optax.multi_transform`` (frozen parameters get no update) and
    ``optax.MultiSteps`` (gradient accumulation).

Weight decay skips BatchNorm parameters and biases (every parameter of rank
< 2): decaying them only fights the normalisation (Goyal et al. 2017, and
timm's ``param_groups_weight_decay``).
"""

from __future__ import annotations

import jax
import optax

from zoo.train.config import TrainConfig


def decay_mask(params):
    """True for the parameters weight decay applies to: kernels (rank >= 2)."""
    return jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)


def schedule(config: TrainConfig, total_steps: int) -> optax.Schedule:
    """Learning rate per optimizer update: warmup from 0, cosine to 0."""
    updates = max(1, total_steps // config.accumulate)
    warmup = config.warmup_steps
    warmup = max(1, round(0.05 * updates)) if warmup is None else warmup // config.accumulate
    warmup = min(warmup, updates - 1) if updates > 1 else 0
    return optax.warmup_cosine_decay_schedule(0.0, config.peak_lr, warmup_steps=warmup,
                                              decay_steps=updates, end_value=0.0)


def make_optimizer(config: TrainConfig, params, trainable, total_steps: int):
    """(optax transformation, learning-rate schedule). ``trainable`` is a
    pytree of bools like ``params``: False leaves a parameter untouched."""
    lr = schedule(config, total_steps)
    parts = []
    if config.clip_norm:
        parts.append(optax.clip_by_global_norm(config.clip_norm))
    if config.optimizer == "sgd":
        if config.weight_decay:
            parts.append(optax.add_decayed_weights(config.weight_decay, decay_mask(params)))
        parts.append(optax.sgd(lr, momentum=0.9, nesterov=True))
    else:
        parts.append(optax.adamw(lr, weight_decay=config.weight_decay, mask=decay_mask(params)))
    tx = optax.chain(*parts)
    labels = jax.tree_util.tree_map(lambda t: "train" if t else "frozen", trainable)
    tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)
    if config.accumulate > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=config.accumulate)
    return tx, lr
