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
    def __init__(self, workdir, config: Optional[TrainConfig] = None, conventions=None):
        """``conventions`` (a ``zoo.Conventions``) are the trained model's;
        by default those ``config.model`` is built with (its spec's, or
        ``padding``/``bn_eps`` in ``config.model_options``)."""
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
        return self.path / "run.json"

    def read_meta(self) -> Optional[dict]:
        try:
            return json.loads(self.meta_path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise ValueError(f"{self.meta_path} is not a zoo training run ({e}); use another "
                             "--workdir") from None

    def claim(self, meta: dict) -> bool:
        """Write ``meta`` for a new run, or check that the directory holds the
        same run (True: there is something to resume)."""
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
        if self._manager is None:
            import orbax.checkpoint as ocp

            keep = self.config.keep if self.config else None
            options = ocp.CheckpointManagerOptions(max_to_keep=keep,
                                                   enable_async_checkpointing=True)
            self._manager = ocp.CheckpointManager(self.path / "checkpoints", options=options)
        return self._manager

    def latest_step(self) -> Optional[int]:
        return self.manager.latest_step()

    def save(self, step: int, state: dict, data_state: Any) -> None:
        import orbax.checkpoint as ocp

        from zoo.checkpoint import metadata_for

        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state)), force=True,
            custom_metadata=metadata_for(self.conventions))

    def recorded_conventions(self, step: int):
        """The conventions checkpoint ``step`` records (None for checkpoints
        written before they were recorded)."""
        from zoo.checkpoint import conventions_in

        try:
            custom = self.manager.metadata(step).custom_metadata
        except (ValueError, FileNotFoundError, OSError, AttributeError):
            return None
        return conventions_in(custom, self.path / "checkpoints" / str(step))

    def restore(self, state: dict) -> tuple[dict, Any]:
        """The latest checkpoint, placed like ``state`` (same shardings).
        Refuses one whose recorded conventions are not the model's."""
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
        if self._manager is not None:
            self._manager.wait_until_finished()

    def close(self) -> None:
        if self._manager is not None:
            self._manager.wait_until_finished()
            self._manager.close()
            self._manager = None

    # -- the best variables ------------------------------------------------------
    def best(self) -> Optional[dict]:
        try:
            return json.loads((self.path / "best.json").read_text())
        except FileNotFoundError:
            return None

    def save_best(self, step: int, variables: dict, metrics: dict) -> Path:
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
