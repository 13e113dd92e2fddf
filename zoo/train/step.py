"""The jitted train and eval steps, generic over the task.

The state is a plain dict, which Orbax saves and restores as it is:

    step        int32 scalar: batches seen
    params      trainable and frozen parameters (float32)
    batch_stats BatchNorm running statistics
    opt_state   the optax state
    ema         exponential moving average of params (absent when off)
    rng         uint32[2] key; step ``t`` uses ``fold_in(rng, t)``, so a
                resumed run draws the same dropout masks as an unbroken one
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from zoo.train.config import TrainConfig


def init_state(variables: dict, tx, config: TrainConfig) -> dict:
    """The training state at step 0 (the layout is in the module docstring).

    Args:
        variables: ``{"params": ..., "batch_stats": ...}`` of the model
            (``batch_stats`` may be absent).
        tx: the optax transformation whose state is initialised.
        config: supplies ``seed`` (the run's PRNG key) and ``ema`` (when
            non-zero the state holds a copy of ``params`` as the EMA).

    Returns:
        dict: ``step``, ``params``, ``batch_stats``, ``opt_state``, ``rng``
        and, with EMA, ``ema``.
    """
    params = variables["params"]
    state = {"step": jnp.zeros((), jnp.int32), "params": params,
             "batch_stats": variables.get("batch_stats", {}), "opt_state": tx.init(params),
             "rng": jax.random.PRNGKey(config.seed)}
    if config.ema:
        state["ema"] = jax.tree_util.tree_map(jnp.copy, params)
    return state


def _frozen_outside(params, trainable):
    """Stop gradients at frozen parameters, so XLA drops their backward pass
    (a linear probe then costs a forward pass and the head's gradient)."""
    return jax.tree_util.tree_map(lambda p, t: p if t else jax.lax.stop_gradient(p), params,
                                  trainable)


def make_train_step(model, task, tx, schedule, config: TrainConfig, trainable) -> Callable:
    """``step(state, batch) -> (state, metrics)``, not yet jitted.

    The step draws its dropout key as ``fold_in(state["rng"], step)``, runs
    the model in training mode (in eval mode, BatchNorm statistics kept,
    when ``config.freeze == "backbone"``), takes the gradient of
    ``task.loss``, applies ``tx`` and updates the EMA.

    Args:
        model: Flax module applied as ``model.apply(variables,
            batch[task.input_key], train=...)``.
        task: the ``zoo.train.Task``; its optional ``train_inputs(batch)``
            adds keyword arguments to the training call.
        tx: the optax transformation (``make_optimizer``).
        schedule: update index -> learning rate, logged as ``lr``.
        config: supplies ``freeze``, ``ema`` and ``accumulate``.
        trainable: pytree of bools shaped like the params; gradients stop
            at the False ones.

    Returns:
        Callable: ``step(state, batch) -> (state, metrics)``; ``metrics``
        are the task's loss metrics plus ``lr`` and ``grad_norm`` (scalars).
    """
    backbone_frozen = config.freeze == "backbone"

    def step(state, batch):
        rng = jax.random.fold_in(state["rng"], state["step"])

        def loss_fn(params):
            params = _frozen_outside(params, trainable)
            variables = {"params": params, "batch_stats": state["batch_stats"]}
            inputs = batch[task.input_key]
            # Tasks whose models take more than the input in training (TALNet
            # classifies sampled proposals) name those arguments.
            extra = task.train_inputs(batch) if hasattr(task, "train_inputs") else {}
            if backbone_frozen:  # a linear probe: BatchNorm keeps its statistics
                outputs = model.apply(variables, inputs, train=False, **extra)
                stats = state["batch_stats"]
            else:
                outputs, updates = model.apply(variables, inputs, train=True,
                                               mutable=["batch_stats"], rngs={"dropout": rng},
                                               **extra)
                stats = updates.get("batch_stats", state["batch_stats"])
            loss, metrics = task.loss(outputs, batch, config)
            return loss, (stats, metrics)

        (_, (stats, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        new = dict(state, step=state["step"] + 1, params=params, batch_stats=stats,
                   opt_state=opt_state)
        if "ema" in state:
            new["ema"] = optax.incremental_update(params, state["ema"], 1.0 - config.ema)
        update_index = state["step"] // config.accumulate
        metrics = dict(metrics, lr=schedule(update_index), grad_norm=optax.tree.norm(grads))
        return new, metrics

    return step


def make_eval_step(model, task) -> Callable:
    """``step(variables, batch) -> sums``, not yet jitted.

    Args:
        model: Flax module, applied in eval mode to ``batch[task.input_key]``.
        task: supplies ``input_key`` and ``eval_sums``.

    Returns:
        Callable: ``step(variables, batch) -> task.eval_sums(outputs, batch)``.
    """

    def step(variables, batch):
        outputs = model.apply(variables, batch[task.input_key])
        return task.eval_sums(outputs, batch)

    return step


def eval_variables(state: dict) -> dict:
    """The variables a run evaluates and exports: the EMA when there is one.

    Args:
        state: a training state (``init_state``).

    Returns:
        dict: ``{"params": state["ema"] or state["params"],
        "batch_stats": state["batch_stats"]}``.
    """
    return {"params": state.get("ema", state["params"]), "batch_stats": state["batch_stats"]}


def jit_steps(train_step, eval_step, mesh, donate=True):
    """Both steps jitted with the batch split over ``data`` and the state
    replicated (see ``zoo.train.sharding``).

    Args:
        train_step: ``make_train_step``'s function.
        eval_step: ``make_eval_step``'s function.
        mesh: the mesh of ``zoo.train.sharding.make_mesh``.
        donate: donate the train step's input state (its buffers are reused
            for the new one, so the old state must not be used again).

    Returns:
        tuple: ``(train, evaluate)``, the jitted train and eval steps.
    """
    from zoo.train.sharding import batch_sharded, replicated

    rep, data = replicated(mesh), batch_sharded(mesh)
    train = jax.jit(train_step, in_shardings=(rep, data), out_shardings=(rep, rep),
                    donate_argnums=(0,) if donate else ())
    evaluate = jax.jit(eval_step, in_shardings=(rep, data), out_shardings=rep)
    return train, evaluate


def benchmark_step(name: str, batch_size: int = 32, image_size: int = 224,
                   dtype: str = "float32", optimizer: str = "sgd", seed: int = 0,
                   num_classes: int = 1000) -> tuple[Callable, dict, dict]:
    """A whole training step of ``name`` (forward, backward, optimizer
    update), as ``zoo train`` runs it, on one device: ``(step, state,
    batch)`` with ``state, metrics = step(state, batch)`` jitted and the
    state donated. For the benchmark suite's training-speed table.

    The model is a classifier with ``num_classes`` outputs, randomly
    initialised (the classifier at zero, as a new head starts); the batch is random (standard-normal images, uniform labels),
    and the schedule is that of a 1,000-step run.

    Args:
        name: registry name of a classifier.
        batch_size: images per step.
        image_size: side of the square input images in pixels.
        dtype: compute dtype, ``"float32"`` or ``"bfloat16"``.
        optimizer: ``"sgd"`` or ``"adamw"``.
        seed: seeds the initial weights and the batch.
        num_classes: classifier outputs.

    Returns:
        tuple: ``(step, state, batch)``: the jitted step, the replicated
        state and a device batch ``{"image": float32 (batch_size,
        image_size, image_size, 3), "label": int32 (batch_size,)}``.
    """
    import numpy as np

    from zoo.train.config import TrainConfig
    from zoo.train.optim import make_optimizer
    from zoo.train.sharding import make_mesh, put_batch, replicated
    from zoo.train.tasks import Classification

    config = TrainConfig(model=name, data="synthetic", workdir="", batch_size=batch_size,
                         optimizer=optimizer, dtype=dtype, seed=seed, steps=1000)
    task = Classification()
    model, variables, trainable = task.build(config, num_classes)
    tx, lr = make_optimizer(config, variables["params"], trainable, 1000)
    mesh = make_mesh(1)
    train, _ = jit_steps(make_train_step(model, task, tx, lr, config, trainable),
                         make_eval_step(model, task), mesh)
    rng = np.random.default_rng(seed)
    batch = put_batch({"image": rng.standard_normal((batch_size, image_size, image_size, 3),
                                                    np.float32),
                       "label": rng.integers(0, num_classes, batch_size).astype(np.int32)}, mesh)
    state = jax.device_put(init_state(variables, tx, config), replicated(mesh))
    return train, state, batch
