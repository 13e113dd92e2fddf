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
    """True for the parameters weight decay applies to: kernels (rank >= 2).

    Args:
        params: pytree of parameter arrays (``variables["params"]``).

    Returns:
        A pytree shaped like ``params`` of Python bools: False for
        BatchNorm scales and offsets and biases (rank below 2).
    """
    return jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)


def schedule(config: TrainConfig, total_steps: int) -> optax.Schedule:
    """Learning rate per optimizer update: warmup from 0, cosine to 0.

    With gradient accumulation an update is ``config.accumulate`` batches,
    so the schedule has ``total_steps // config.accumulate`` updates (at
    least 1) and ``config.warmup_steps`` (batches) is divided likewise. The
    default warmup is 5 % of the updates (at least 1); the warmup always
    leaves at least one update of decay.

    Args:
        config: supplies ``peak_lr``, ``warmup_steps`` and ``accumulate``.
        total_steps: training batches of the whole run.

    Returns:
        optax.Schedule: update index -> learning rate, peaking at
        ``config.peak_lr`` and reaching 0 at the last update.
    """
    updates = max(1, total_steps // config.accumulate)
    warmup = config.warmup_steps
    warmup = max(1, round(0.05 * updates)) if warmup is None else warmup // config.accumulate
    warmup = min(warmup, updates - 1) if updates > 1 else 0
    return optax.warmup_cosine_decay_schedule(0.0, config.peak_lr, warmup_steps=warmup,
                                              decay_steps=updates, end_value=0.0)


def make_optimizer(config: TrainConfig, params, trainable, total_steps: int):
    """The optimizer ``config`` asks for, with its learning-rate schedule.

    Gradients are clipped by global norm (``config.clip_norm``), then go to
    SGD with Nesterov momentum 0.9 (weight decay added to the gradient) or
    to AdamW (decoupled weight decay), decaying only ``decay_mask(params)``. Frozen parameters get zero updates;
    ``config.accumulate > 1`` wraps it all in ``optax.MultiSteps``.

    Args:
        config: the run's optimizer settings.
        params: the parameter pytree the optimizer will update.
        trainable: a pytree of bools shaped like ``params``: False leaves a
            parameter untouched.
        total_steps: training batches of the whole run (see ``schedule``).

    Returns:
        tuple: ``(tx, lr)``, the ``optax.GradientTransformation`` and the
        ``optax.Schedule`` it follows (update index -> learning rate).
    """
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
