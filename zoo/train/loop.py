"""``fit(config)``: the one training loop, for every task.

Per step: the next batch from the grain iterator is split over the mesh's
``data`` axis, the jitted step updates the replicated state, and the
previous step's metrics are read back (one step late, so the host never
stalls the device). Every ``save_every`` steps and at the end the state and
the iterator's position go to an asynchronous Orbax checkpoint; every
``eval_every`` steps (an epoch by default) the model is evaluated and the
best variables are kept. Rerunning the same command resumes from the last
checkpoint and ends where an unbroken run ends: the data order comes from
the iterator state, the dropout masks from ``fold_in(rng, step)``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Optional

import jax
import numpy as np

from zoo.train.checkpoints import RunDir
from zoo.train.config import TrainConfig
from zoo.train.metrics import MetricWriter
from zoo.train.progress import TrainProgress
from zoo.train.sharding import check_batch_size, make_mesh, put_batch, replicated
from zoo.train.step import (eval_variables, init_state, jit_steps, make_eval_step,
                            make_train_step)
from zoo.train.tasks import Task, task_for


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
        workdir: the run's directory (absolute).
        steps: the step the run ended at (``total`` when it completed).
        best: ``{"step": ..., **eval_metrics}`` of the best checkpoint; None
            if the run was never evaluated.
        last_eval: the last evaluation's metrics (with ``epoch``); None if
            this call evaluated nothing.
        resumed_from: the step this call resumed at; None for a fresh start.
        state: the final training state (``zoo.train.step``'s layout), on
            the devices; not shown in ``repr``.
    """

    workdir: Path
    steps: int
    best: Optional[dict]  # step and eval metrics of the best checkpoint
    last_eval: Optional[dict]
    resumed_from: Optional[int]
    state: Any = dataclasses.field(repr=False, default=None)


def fit(config: TrainConfig, task: Optional[Task] = None, *,
        progress: bool = True) -> FitResult:
    """Train ``config.model`` on ``config.data`` in ``config.workdir`` for
    ``task`` (by default the model spec's: depth for depth models, action
    localisation for action models, image classification otherwise);
    rerunning it in the same work directory resumes.

    The run lasts ``config.steps`` batches, or ``config.epochs`` (default 10)
    epochs. It writes the work directory described in
    ``zoo.train.checkpoints`` and, unless ``progress`` is False, shows a
    progress bar on standard error.

    Args:
        config: the run's configuration.
        task: the task to train; None for ``task_for(config)``.
        progress: show progress and eval lines on standard error.

    Returns:
        FitResult: the work directory, final step, best and last eval
        metrics, and the final state.

    Raises:
        ValueError: for a bad configuration, dataset, work directory or
            training batch (one line naming the option or data); the
            configuration, data and work directory are checked before
            training starts.
        TrainingDiverged: if the loss becomes NaN or infinite; the message
            names the last good checkpoint.

    Example:
        ::

            from zoo.train import TrainConfig, fit
            result = fit(TrainConfig(model="mobilenet_v2", pretrained=True,
                                     data="digits", workdir="runs/digits", epochs=3))
            print(result.best)     # {"step": ..., "top1": ..., "loss": ..., "epoch": ...}
    """
    task = task or task_for(config)
    task.check(config)  # a bad model name fails before any data is built
    mesh = make_mesh(config.devices)
    check_batch_size(config.batch_size, mesh)
    data = task.prepare(config)
    per_epoch = data.steps_per_epoch
    total = config.steps or (config.epochs or 10) * per_epoch
    eval_every = config.eval_every or per_epoch

    run = RunDir(config.workdir, config)
    meta = {"model": config.model, "task": task.name, "data": config.data, **data.meta,
            "config": config.to_json()}
    resuming = run.claim(meta)

    model, variables, trainable = task.init(config, data)
    from zoo.train.optim import make_optimizer

    tx, schedule = make_optimizer(config, variables["params"], trainable, total)
    state = jax.device_put(init_state(variables, tx, config), replicated(mesh))
    del variables
    batches = iter(data.train)
    start = 0
    if resuming and run.latest_step() is not None:
        state, data_state = run.restore(state)
        batches.set_state(data_state)
        start = int(jax.device_get(state["step"]))
    best = run.best()
    train_step, eval_step = jit_steps(make_train_step(model, task, tx, schedule, config,
                                                      trainable),
                                      make_eval_step(model, task), mesh)
    writer = MetricWriter(run.path, start)
    bar = TrainProgress(total, start, enabled=progress)
    if start:
        bar.message(f"resuming {run.path} at step {start}/{total}")
    last_eval, pending, window = None, None, []
    t_window, images = time.perf_counter(), 0
    # XLA:CPU runs each device's share of a program on one shared thread pool;
    # with two SPMD programs in flight (the next step dispatched before the
    # last one ends) both pool threads can wait in one program's all-reduce
    # for a partner that has no thread left. One program at a time there.
    one_at_a_time = jax.default_backend() == "cpu" and mesh.devices.size > 1

    def evaluate(step: int) -> dict:
        sums = None
        for batch in data.evaluate():
            out = eval_step(eval_variables(state), put_batch(batch, mesh))
            sums = out if sums is None else jax.tree_util.tree_map(np.add, sums, out)
        sums = jax.device_get(sums)
        count = max(float(sums.pop("count")), 1.0)
        return {k: float(v) / count for k, v in sums.items()}

    def check(step: int, metrics) -> dict:
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        if not math.isfinite(values["loss"]):
            saved = run.latest_step()
            where = (f"the last good checkpoint is step {saved} in {run.path / 'checkpoints'}"
                     if saved is not None else "no checkpoint was written before it")
            raise TrainingDiverged(
                f"loss became {values['loss']} at step {step}; {where}. Lower --lr "
                f"(now {config.peak_lr:g}), keep --clip-norm on, or use --dtype float32")
        return values

    try:
        step = start
        while step < total:
            batch = next(batches)
            data.check_batch(batch)
            state, metrics = train_step(state, put_batch(batch, mesh))
            if one_at_a_time:
                jax.block_until_ready(metrics)
            step += 1
            images += config.batch_size
            if pending is not None:
                window.append(check(*pending))
            pending = (step, metrics)
            must_save = step % config.save_every == 0 or step == total
            must_eval = step % eval_every == 0 or step == total
            if step % config.log_every == 0 or must_save or must_eval:
                window.append(check(*pending))
                pending = None
                elapsed = time.perf_counter() - t_window
                values = {k: float(np.mean([w[k] for w in window])) for k in window[-1]}
                values["images_per_s"] = images / elapsed if elapsed > 0 else 0.0
                writer.write(step, "train", values)
                bar.update(step, {k: values[k] for k in ("loss", "accuracy", "lr",
                                                         "images_per_s") if k in values})
                window, images, t_window = [], 0, time.perf_counter()
            if must_save:
                run.save(step, state, batches.get_state())
            if must_eval:
                last_eval = evaluate(step)
                last_eval["epoch"] = step / per_epoch
                writer.write(step, "eval", last_eval)
                bar.message(f"step {step}: eval " + "  ".join(
                    f"{k} {v:.4f}" for k, v in last_eval.items()))
                key = task.best_metric
                better = best is None or (last_eval[key] > best[key] if task.higher_is_better
                                          else last_eval[key] < best[key])
                if better:
                    run.save_best(step, eval_variables(state), last_eval)
                    best = {"step": step, **last_eval}
                t_window = time.perf_counter()  # eval time is not training throughput
    finally:
        bar.close()
        writer.close()
        run.close()
    return FitResult(run.path, step, best, last_eval, start or None, state)


def load_run(workdir) -> tuple[Any, dict, dict]:
    """``(model, variables, meta)`` of a training run's best checkpoint:
    ``model.apply(variables, zoo.preprocess(images, spec))`` with
    ``spec = zoo.get_spec(meta["model"], resolution=meta["image_size"])``,
    class names in ``meta["class_names"]``.

    Args:
        workdir: the run's ``--workdir`` (``~`` is expanded).

    Returns:
        tuple: ``(model, variables, meta)``: the Flax module built as the run
        built it, the best variables (``{"params", "batch_stats"}``), and the
        run's ``run.json`` as a dict.

    Raises:
        ValueError: if ``workdir`` holds no ``run.json`` or no evaluated
            (best) checkpoint yet.

    Example:
        ::

            model, variables, meta = load_run("runs/digits")
            spec = zoo.get_spec(meta["model"], resolution=meta["image_size"])
            logits = model.apply(variables, zoo.preprocess(images, spec))
    """
    import json

    import zoo

    path = Path(workdir).expanduser()
    try:
        meta = json.loads((path / "run.json").read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} is not a zoo training run (no run.json); give the --workdir "
                         "of `zoo train`") from None
    if not (path / "best").exists():
        raise ValueError(f"{path} has no evaluated checkpoint yet (no {path / 'best'}); let "
                         "`zoo train` reach its first evaluation")
    model = zoo.build(meta["model"], num_classes=meta.get("num_classes"),
                      **meta.get("model_options", {}))
    variables = zoo.restore(path / "best")
    return model, variables, meta
