"""A run's work directory: what it holds and how it survives a kill.

    WORKDIR/run.json        the config, model, classes and image size (written once)
    WORKDIR/checkpoints/N/  resumable state: parameters, optimizer, EMA, step,
                            RNG and the data iterator's position (Orbax,
                            asynchronous, the last ``keep`` kept)
    WORKDIR/best -> best-N  the best evaluated variables as a plain
                            ``zoo.save`` checkpoint: ``zoo.restore(WORKDIR/"best")``
    WORKDIR/best.json       its step and metrics
    WORKDIR/metrics.jsonl   one JSON object per log line (see zoo.train.metrics)

Orbax writes each checkpoint into a temporary directory and renames it when
complete, and ``best`` is a symlink replaced atomically, so a run killed at
any moment leaves only whole checkpoints behind. Both kinds record the
conventions (padding, BatchNorm epsilon) the trained variables need, as
``zoo.save`` does: ``zoo.create(model, weights=zoo.restore(WORKDIR/"best"))``
builds the model that runs them, and resuming refuses a checkpoint whose
conventions are not the model's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional

import jax

from zoo.atomic import write_atomic
from zoo.train.config import TrainConfig


class RunDir:
    """A training run's work directory (layout in the module docstring):
    its ``run.json``, resumable Orbax checkpoints and best variables.

    Args:
        workdir: the directory (``~`` is expanded; made absolute).
        config: the run's configuration; its ``keep`` bounds the resumable
            checkpoints kept, its ``model`` gives the conventions. None
            keeps every checkpoint and records no conventions.
        conventions: the ``zoo.Conventions`` the trained variables need;
            None for those ``config.model`` is built with (its spec's, or
            ``padding`` / ``bn_eps`` in ``config.model_options``).
    """

    def __init__(self, workdir, config: Optional[TrainConfig] = None, conventions=None):
        self.path = Path(os.path.abspath(os.path.expanduser(workdir)))
        self.config = config
        self._conventions = conventions
        self._manager = None

    @property
    def conventions(self):
        """The ``zoo.Conventions`` the run's variables need (None without a
        config, or for a model outside the registry: nothing is known)."""
        if self._conventions is None and self.config is not None:
            from zoo.registry import get_spec
            from zoo.train.config import model_options

            try:
                spec = get_spec(self.config.model)
            except KeyError:  # a task's own model (zoo.train.fit(config, task))
                return None
            options = model_options(self.config.model_options)
            changed = {k: options[k] for k in ("padding", "bn_eps") if options.get(k) is not None}
            self._conventions = dataclasses.replace(spec.conventions, **changed).labelled(
                f"trained as {spec.name} in {self.path}")
        return self._conventions

    # -- run.json ----------------------------------------------------------------
    @property
    def meta_path(self) -> Path:
        """``WORKDIR/run.json``."""
        return self.path / "run.json"

    def read_meta(self) -> Optional[dict]:
        """The run's ``run.json``.

        Returns:
            dict or None: its contents; None when the file does not exist.

        Raises:
            ValueError: if ``run.json`` exists but is not JSON.
        """
        try:
            return json.loads(self.meta_path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise ValueError(f"{self.meta_path} is not a zoo training run ({e}); use another "
                             "--workdir") from None

    def claim(self, meta: dict) -> bool:
        """Write ``meta`` for a new run, or check that the directory holds the
        same run (True: there is something to resume).

        Args:
            meta: the run's description for ``run.json``: at least
                ``model``, ``data`` and ``config`` (``TrainConfig.to_json()``).

        Returns:
            bool: False when ``meta`` was written for a new run, True when
            the directory already holds this run.

        Raises:
            ValueError: if the directory is not empty but holds no run, holds
                a run of another model or dataset, or one whose settings
                differ in a field outside ``TrainConfig.RESUMABLE_CHANGES``.
        """
        old = self.read_meta()
        if old is None:
            if self.path.exists() and any(self.path.iterdir()):
                raise ValueError(f"--workdir {self.path} is not empty and holds no zoo run; "
                                 "choose a new or empty directory")
            write_atomic(self.meta_path, json.dumps(meta, indent=1) + "\n")
            return False
        if old.get("model") != meta["model"] or old.get("data") != meta["data"]:
            raise ValueError(f"--workdir {self.path} holds a run of {old.get('model')} on "
                             f"{old.get('data')}; this command trains {meta['model']} on "
                             f"{meta['data']}: choose another --workdir")
        fixed = set(TrainConfig.RESUMABLE_CHANGES)
        changed = sorted(k for k, v in meta["config"].items()
                         if k not in fixed and old["config"].get(k) != v)
        if changed:
            was = ", ".join(f"--{k.replace('_', '-')} {old['config'].get(k)} -> {meta['config'][k]}"
                            for k in changed)
            raise ValueError(f"--workdir {self.path} holds a run made with other settings "
                             f"({was}); rerun with the same settings to resume it, or choose "
                             "another --workdir")
        return True

    # -- resumable checkpoints ---------------------------------------------------
    @property
    def manager(self):
        """The ``orbax.checkpoint.CheckpointManager`` of ``WORKDIR/checkpoints``
        (asynchronous, keeping ``config.keep``), made on first use."""
        if self._manager is None:
            import orbax.checkpoint as ocp

            keep = self.config.keep if self.config else None
            options = ocp.CheckpointManagerOptions(max_to_keep=keep,
                                                   enable_async_checkpointing=True)
            self._manager = ocp.CheckpointManager(self.path / "checkpoints", options=options)
        return self._manager

    def latest_step(self) -> Optional[int]:
        """The step of the newest resumable checkpoint.

        Returns:
            int or None: the step; None when there is none.
        """
        return self.manager.latest_step()

    def save(self, step: int, state: dict, data_state: Any) -> None:
        """Start writing a resumable checkpoint in the background (see
        ``wait``), with the conventions of the variables in its metadata.

        Args:
            step: the checkpoint's step (its directory name).
            state: the training state (``zoo.train.step.init_state``'s layout).
            data_state: the JSON-able position of the data iterator
                (``get_state()``).
        """
        import orbax.checkpoint as ocp

        from zoo.checkpoint import metadata_for

        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state)), force=True,
            custom_metadata=metadata_for(self.conventions))

    def recorded_conventions(self, step: int):
        """The conventions checkpoint ``step`` records.

        Args:
            step: a step of a resumable checkpoint.

        Returns:
            zoo.Conventions or None: None when the checkpoint records none
            (written before they were recorded) or its metadata cannot be read.
        """
        from zoo.checkpoint import conventions_in

        try:
            custom = self.manager.metadata(step).custom_metadata
        except (ValueError, FileNotFoundError, OSError, AttributeError):
            return None
        return conventions_in(custom, self.path / "checkpoints" / str(step))

    def restore(self, state: dict) -> tuple[dict, Any]:
        """The latest checkpoint, placed like ``state`` (same shardings).
        Refuses one whose recorded conventions are not the model's.

        Args:
            state: a training state of the same structure, shapes and dtypes
                (e.g. the freshly initialised one); its shardings are used.

        Returns:
            tuple: ``(state, data_state)``: the restored training state and
            the data iterator's saved position.

        Raises:
            zoo.weights.errors.ConventionsMismatchError: if the checkpoint
                records other conventions than the run's (a ValueError).
            ValueError: if the checkpoint does not fit ``state``.
        """
        import orbax.checkpoint as ocp

        step = self.manager.latest_step()
        recorded, ours = self.recorded_conventions(step), self.conventions
        if recorded is not None and ours is not None and recorded != ours:
            from zoo.weights.errors import ConventionsMismatchError
            raise ConventionsMismatchError(
                f"{self.path / 'checkpoints' / str(step)} holds variables that need {recorded}; "
                f"this run builds its model with {ours}: rerun with the options the run was "
                "started with, or choose another --workdir")
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state)
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{self.path / 'checkpoints' / str(step)} does not fit this "
                             f"model ({str(e).splitlines()[0][:200]}); choose another "
                             "--workdir") from None
        return out["state"], out["data"]

    def wait(self) -> None:
        """Block until every checkpoint being written is complete."""
        if self._manager is not None:
            self._manager.wait_until_finished()

    def close(self) -> None:
        """Wait for pending checkpoints and release the checkpoint manager
        (the next use makes a new one)."""
        if self._manager is not None:
            self._manager.wait_until_finished()
            self._manager.close()
            self._manager = None

    # -- the best variables ------------------------------------------------------
    def best(self) -> Optional[dict]:
        """The best checkpoint's step and eval metrics (``best.json``).

        Returns:
            dict or None: ``{"step": ..., **metrics}``; None before the
            first evaluation.
        """
        try:
            return json.loads((self.path / "best.json").read_text())
        except FileNotFoundError:
            return None

    def save_best(self, step: int, variables: dict, metrics: dict) -> Path:
        """Make ``variables`` the run's best: write them as a ``zoo.save``
        checkpoint ``best-STEP``, point the ``best`` symlink at it atomically,
        write ``best.json`` and delete older ``best-*`` directories.

        Args:
            step: the step the variables were evaluated at.
            variables: ``{"params": ..., "batch_stats": ...}`` to keep.
            metrics: their eval metrics (name -> float).

        Returns:
            Path: ``WORKDIR/best``.
        """
        from zoo.checkpoint import save

        target = self.path / f"best-{step}"
        if target.exists():
            shutil.rmtree(target)
        save(jax.device_get(variables), target, conventions=self.conventions)
        link = self.path / ".best.tmp"
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(target.name, link)
        os.replace(link, self.path / "best")  # atomic: readers see the old or the new
        write_atomic(self.path / "best.json",
                     json.dumps({"step": step, **metrics}, indent=1) + "\n")
        for old in self.path.glob("best-*"):
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
        return self.path / "best"
