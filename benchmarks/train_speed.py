"""Training speed: images per second of a whole training step (forward,
backward, optimizer update), the zoo's beside Keras and PyTorch measured in
the same run, and of the zoo's training input pipeline.

    python -m benchmarks.train_speed --models mobilenet_v2,efficientnet_b0 --batch 32 \\
        --image-size 224 --peers keras,torch --runs 10 --out results/
    zoo bench --train ...        # the same options

What each row measures, per model:

* ``zoo``: ``zoo.train.step.benchmark_step``, the jitted step ``zoo train``
  runs: BatchNorm in training mode and dropout, label-smoothed softmax
  cross-entropy, gradients, clipping by global norm, weight decay, SGD with
  Nesterov momentum 0.9; the state is donated and each call gets the state
  the previous one returned. Its first call (trace, compile, one step) is
  reported apart as the compile time.
* ``keras``: Keras 3 Applications (``weights=None``, logits out) on the JAX
  backend, compiled with SGD (momentum 0.9, Nesterov) and sparse categorical
  cross-entropy, one ``model.train_on_batch(x, y)`` per step (Keras
  jit-compiles it by default).
* ``torch``: PyTorch eager, the modules of ``benchmarks.peers`` (a
  torchvision-layout MobileNetV2, efficientnet-pytorch's B0) in training
  mode; zero the gradients, forward, cross-entropy, backward,
  ``torch.optim.SGD(momentum=0.9, nesterov=True)`` step; as many threads as
  cores (``torch.set_num_threads``).
* ``pipeline``: the zoo's training input pipeline
  (``zoo.datasets.train_batches``: shuffle, random resized crop, resize,
  normalise, batch; ``--workers`` worker processes) producing batches of the
  same size and shape.

Fairness rules, and why:

* Same work: one batch of the same images and labels for all three (the
  zoo's random batch, copied to the peers: NCHW for torch, times 255 for
  Keras's EfficientNet, whose first layers rescale 0-255 pixels themselves),
  same image size, float32, 1000 classes, every input already in each
  framework's own array type so nobody pays a host copy per step. The
  zoo's step does a little more than the peers' plain recipe (clipping,
  weight decay, label smoothing, accuracy and gradient norm, as ``zoo
  train`` does), which can only count against it.
* A timed call is a whole synchronous step: it ends with the loss on the
  host, and for JAX with every array of the new state ready (dispatch is
  asynchronous; without the wait we would time the dispatch).
* Interleaved: after each framework's first call (timed apart), ``warmup``
  untimed and ``runs`` timed rounds, each round one step of every framework
  in a rotating order (``zoo.timing.time_interleaved``), all in this one
  process. Load from elsewhere on a shared machine then falls on all of them
  alike; every framework gets the same number of timed steps (no early
  stop). Still, run the table on a quiet machine: PyTorch's OpenMP threads
  wait for each other at every operator, so when other processes hold the
  cores its step slows down many times more than XLA's (up to 50x against
  2x, seen on a busy 2-core machine), and no interleaving undoes that.
* Medians: images/s = batch / p50 step time; ``ratio`` (x) = zoo images/s /
  peer images/s = peer p50 / zoo p50, from the same rounds. Above 1 the zoo
  trains faster.
* The pipeline is timed alone, after the rounds (its worker processes would
  otherwise fill their buffers while the frameworks run). Its images/s is
  batch / the *mean* interval between batches over at least
  ``PIPELINE_MIN_BATCHES`` batches after a warm-up: workers hand batches over
  in bursts (two at once, then a wait), where the median interval means
  little. Its ratio is pipeline images/s / zoo step images/s; at 3x or more
  the input pipeline cannot be what holds training back even when it shares
  the cores with the step. ``digits`` (8x8 PNGs) makes decoding nearly free:
  this measures crop, resize, normalise and batching; ``--data
  folder:PATH`` measures photos with their decoding.

Every row also records each framework's loss at every call (one repeated
batch: a step that trains makes it fall) and its first-call time.

Results go to ``--out`` as ``train-<env tag>-<UTC time>.{json,csv,md}``
(environment from ``benchmarks.env``), and
``train-<env tag>-<UTC time>.partial.json`` is rewritten after each model, so
a crash loses at most the model under way.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import sys
from pathlib import Path
from typing import Callable, Optional

import numpy as np

# The frameworks timed beside the zoo, and the models of the default table.
PEERS = ("keras", "torch")
DEFAULT_MODELS = "mobilenet_v2,efficientnet_b0"
# The peers' learning rate: any fixed value times the same; this one makes
# the loss on the repeated batch fall within a few steps.
PEER_LR = 0.01
# The pipeline is cheap per batch next to a training step; more batches than
# the step's runs keep the workers' read-ahead buffers (filled during the
# warm-up) a small share of the timed interval.
PIPELINE_MIN_BATCHES = 30
PIPELINE_WARMUP = 3
PROG = "python -m benchmarks.train_speed"
EXAMPLES = f"""examples:
  {PROG} --models mobilenet_v2,efficientnet_b0 --batch 32 --image-size 224 \\
      --peers keras,torch --runs 10 --out results/
  {PROG} --models mobilenet_v2 --batch 4 --image-size 96 --runs 3 --peers torch
  {PROG} --models mobilenet_v2 --peers none --data folder:photos/ --workers 2

`zoo bench --train ...` takes the same options. Writes train-<env>-<time>.json
(raw), .csv and .md to --out and prints the table; train-<env>-<time>.partial.json
is kept after each model (removed at the end). Without a terminal, one line
per measurement goes to stderr."""


# -- the three training steps -------------------------------------------------


class _Losses:
    """Wraps a step so every call's loss is kept (the check that it trains)."""

    def __init__(self, step: Callable[[], float]):
        self.step, self.losses = step, []

    def __call__(self) -> float:
        loss = self.step()
        self.losses.append(float(loss))
        return loss


def zoo_step(name: str, batch: int, image_size: int):
    """``(call, images, labels)``: one synchronous zoo training step per
    call, and the host copy of its batch (for the peers).

    The step is ``zoo.train.step.benchmark_step`` (float32, SGD): each call
    feeds the state the previous call returned and waits for the new state
    and metrics.

    Args:
        name: a registered classifier name.
        batch: images per step.
        image_size: square input side in pixels.

    Returns:
        tuple: ``(call, images, labels)``: ``call()`` runs one step and
        returns its loss (float); ``images`` a float32 (batch, image_size,
        image_size, 3) standard-normal numpy array and ``labels`` an int32
        (batch,) numpy array.
    """
    import jax

    from zoo.train.step import benchmark_step

    step, state, data = benchmark_step(name, batch_size=batch, image_size=image_size,
                                       dtype="float32", optimizer="sgd")
    box = {"state": state}

    def call() -> float:
        # The old state was donated: only the returned one may be used again.
        box["state"], metrics = step(box["state"], data)
        jax.block_until_ready((box["state"], metrics))
        return float(metrics["loss"])

    return call, np.asarray(data["image"]), np.asarray(data["label"])


def keras_step(name: str, images: np.ndarray, labels: np.ndarray):
    """One ``train_on_batch`` of the Keras 3 Application on the JAX backend.

    The model has random weights and is compiled with SGD (learning rate
    ``PEER_LR``, momentum 0.9, Nesterov) and sparse categorical
    cross-entropy on logits. Sets ``KERAS_BACKEND=jax`` if keras is not
    imported yet.

    Args:
        name: a registered model name that Keras Applications also has.
        images: (N, S, S, 3) float32 images (multiplied by the model's input
            scale, 255 for EfficientNet, here).
        labels: (N,) integer class labels.

    Returns:
        Callable[[], float]: one synchronous training step per call; returns
        the loss.

    Raises:
        benchmarks.peers.PeerUnavailable: if Keras has no such model, is not
            installed, or runs on another backend (from
            ``benchmarks.peers.keras_model``).
    """
    if "keras" not in sys.modules:
        # Keras fixes its backend when first imported; this table is of its JAX backend.
        os.environ["KERAS_BACKEND"] = "jax"
    from benchmarks.peers import keras_model

    model, scale = keras_model(name, images.shape[1], backend="jax")
    import jax
    import keras

    model.compile(optimizer=keras.optimizers.SGD(learning_rate=PEER_LR, momentum=0.9,
                                                 nesterov=True),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = jax.device_put(images * np.float32(scale)), jax.device_put(labels)
    # train_on_batch returns the loss as a Python float: synchronised.
    return lambda: model.train_on_batch(x, y)


def torch_step(name: str, images: np.ndarray, labels: np.ndarray):
    """Zero grads, forward, cross-entropy, backward, SGD step, in PyTorch eager.

    The model (``benchmarks.peers.torch_model``, random weights) is in
    training mode; SGD has learning rate ``PEER_LR``, momentum 0.9 and
    Nesterov.

    Args:
        name: a registered model name with a PyTorch definition here.
        images: (N, S, S, 3) float32 images (NHWC; transposed to NCHW once).
        labels: (N,) integer class labels.

    Returns:
        Callable[[], float]: one training step per call; returns the loss.

    Raises:
        benchmarks.peers.PeerUnavailable: if torch or the model's definition
            is not available (from ``benchmarks.peers.torch_model``).
    """
    from benchmarks.peers import torch_model

    import torch

    model = torch_model(name).train()  # also sets as many threads as cores
    opt = torch.optim.SGD(model.parameters(), lr=PEER_LR, momentum=0.9, nesterov=True)
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(labels.astype(np.int64))

    def call() -> float:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()  # eager CPU is synchronous; item() is the host copy

    return call


def pipeline_batches(name: str, batch: int, image_size: int, workers: int, data: str,
                     data_dir: Optional[str]):
    """An iterator over the zoo's training batches for ``name``'s
    normalisation, as ``zoo train`` builds it (augmented, no flips).

    Args:
        name: a registered model name (its spec gives the mean and std).
        batch: images per batch.
        image_size: square output side in pixels.
        workers: loader processes (0: in this process).
        data: a dataset name for ``zoo.datasets.prepare``, e.g. ``"digits"``
            or ``"folder:PATH"``.
        data_dir: where datasets are built, or None for the default.

    Returns:
        Iterator[dict]: endless batches ``{"image": float32 (batch,
        image_size, image_size, 3), "label": int32 (batch,)}``; close it to
        stop the workers.
    """
    import zoo
    from zoo.datasets import prepare, train_batches

    spec = zoo.get_spec(name)
    prepared = prepare(data, data_dir=data_dir)
    return iter(train_batches(prepared, batch_size=batch, image_size=image_size,
                              mean=spec.mean, std=spec.std, seed=0, augment=True,
                              flip=False, num_workers=workers))


# -- one row -------------------------------------------------------------------


def _failed(e: BaseException) -> dict:
    """A framework's entry for an exception, classified as the suite does."""
    from benchmarks.peers import PeerUnavailable
    from benchmarks.runner import _classify, _message

    if isinstance(e, PeerUnavailable):
        return {"status": "skipped", "message": str(e)}
    return {"status": _classify(e), "message": _message(e)}


def _timed_first(call) -> float:
    import time

    t = time.perf_counter()
    call()
    return time.perf_counter() - t


def measure_model(name: str, *, batch: int = 32, image_size: int = 224,
                  peers=PEERS, runs: int = 10, warmup: int = 2, pipeline: bool = True,
                  workers: int = 0, data: str = "digits", data_dir: Optional[str] = None,
                  say: Callable[[str], None] = lambda line: None) -> dict:
    """One row: the zoo's, the peers' and the pipeline's speed on ``name``.
    Every failure is a result (``status`` "skipped", "error" or "oom" with
    ``message`` in that framework's entry); the others are still measured.

    The zoo and the peers get one first call each (timed apart), then
    ``warmup`` untimed and ``runs`` timed interleaved rounds
    (``zoo.timing.time_interleaved``); the pipeline is timed alone
    afterwards, over at least ``PIPELINE_MIN_BATCHES`` batches.

    Args:
        name: a registered classifier name.
        batch: images per step.
        image_size: square input side in pixels.
        peers: names from ``PEERS`` to time beside the zoo.
        runs: timed rounds.
        warmup: untimed rounds after the first calls.
        pipeline: also time the data pipeline.
        workers: the pipeline's loader processes.
        data: the pipeline's dataset name.
        data_dir: where datasets are built, or None.
        say: called with a progress line after each stage.

    Returns:
        dict: ``model``, ``batch``, ``image_size``, ``dtype``, ``runs``,
        ``warmup``, ``status`` and ``message`` (the zoo's); the zoo's
        ``zoo_first_call_s``, ``zoo_p50_ms``, ``zoo_p90_ms``, ...,
        ``zoo_images_per_s`` and ``zoo_losses``; ``peers``: peer -> an
        entry with the same keys unprefixed plus ``ratio`` (zoo images/s
        over the peer's); ``pipeline`` (when asked): ``data``, ``workers``,
        ``first_batch_s``, timing keys, ``images_per_s`` (from the mean
        interval) and ``ratio`` (over the zoo's step); and
        ``device_peak_bytes``, ``host_peak_rss_bytes``.

    Example:
        ::

            from benchmarks.train_speed import measure_model
            row = measure_model("mobilenet_v2", batch=4, image_size=96, peers=(), runs=3,
                                pipeline=False)
            row["zoo_images_per_s"]
    """
    from zoo.timing import time_interleaved, time_calls

    row: dict = {"model": name, "batch": int(batch), "image_size": int(image_size),
                 "dtype": "float32", "runs": int(runs), "warmup": int(warmup)}
    entries: dict[str, dict] = {}
    calls: dict[str, _Losses] = {}
    images = labels = None

    builders = [("zoo", lambda: zoo_step(name, batch, image_size))]
    builders += [(q, {"keras": keras_step, "torch": torch_step}[q]) for q in peers]
    for who, build in builders:
        entry = entries[who] = {"status": "ok", "message": ""}
        try:
            if who == "zoo":
                step, images, labels = build()
            else:
                if images is None:  # the zoo failed to build: same-shaped stand-ins
                    from benchmarks.peers import _images
                    images = _images(batch, image_size)
                    labels = np.random.default_rng(0).integers(0, 1000, batch, np.int32)
                step = build(name, images, labels)
            calls[who] = _Losses(step)
            entry["first_call_s"] = _timed_first(calls[who])
            say(f"{who} first call {entry['first_call_s']:.1f} s"
                + (" (trace + compile + one step)" if who in ("zoo", "keras") else ""))
        except Exception as e:  # noqa: BLE001 - a framework that cannot run is a cell
            entry.update(_failed(e))
            calls.pop(who, None)
            say(f"{who}: {entry['status']}: {entry['message']}")

    timed = time_interleaved(dict(calls), runs, warmup,
                             after_round=lambda i, n: say(f"round {i}/{n}")) if calls else {}
    for who, result in timed.items():
        entry = entries[who]
        if isinstance(result, Exception):
            entry.update(_failed(result))
        else:
            entry.update(result)
            entry["images_per_s"] = batch / (result["p50_ms"] / 1e3)
        entry["losses"] = calls[who].losses

    zoo_ips = entries["zoo"].get("images_per_s")
    for q in peers:
        ips = entries[q].get("images_per_s")
        entries[q]["ratio"] = zoo_ips / ips if zoo_ips and ips else None
    row.update({f"zoo_{k}": v for k, v in entries.pop("zoo").items()})
    row["status"], row["message"] = row.pop("zoo_status"), row.pop("zoo_message")
    row["peers"] = {q: entries[q] for q in peers}
    if peers:
        say("; ".join([f"zoo {_f(zoo_ips, '.1f')} images/s"]
                      + [f"{q} {_f(m.get('images_per_s'), '.1f')} ({_f(m.get('ratio'), '.2f')}x)"
                         if m["status"] == "ok" else f"{q} {m['status']}"
                         for q, m in row["peers"].items()]))
    else:
        say(f"zoo {_f(zoo_ips, '.1f')} images/s")
    # Free the three models before the pipeline's workers start and before
    # the next model's (at batch 32 each holds gigabytes of activations).
    del calls
    if "keras" in peers and "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    import gc
    gc.collect()

    if pipeline:
        p = row["pipeline"] = {"status": "ok", "message": "", "data": data,
                               "workers": int(workers)}
        it = None
        try:
            it = pipeline_batches(name, batch, image_size, workers, data, data_dir)
            p["first_batch_s"] = _timed_first(lambda: next(it))
            p.update(time_calls(lambda: next(it), max(runs, PIPELINE_MIN_BATCHES),
                                PIPELINE_WARMUP))
            p["images_per_s"] = batch / (p["mean_ms"] / 1e3)
            p["ratio"] = p["images_per_s"] / zoo_ips if zoo_ips else None
            say(f"pipeline {p['images_per_s']:.0f} images/s "
                f"({_f(p['ratio'], '.1f')}x the zoo's step)")
        except Exception as e:  # noqa: BLE001
            p.update(_failed(e))
            say(f"pipeline: {p['status']}: {p['message']}")
        finally:
            close = getattr(it, "close", None)
            if close:  # stop the worker processes now, not at interpreter exit
                try:
                    close()
                except Exception:  # noqa: BLE001 - already stopped
                    pass
    import jax

    from benchmarks.runner import _peak_memory
    # The device's peak where the backend keeps one (GPU, TPU), else this
    # process's peak RSS so far: for any one row an upper bound.
    row["device_peak_bytes"], row["host_peak_rss_bytes"] = _peak_memory(jax.devices()[0])
    return row


# -- result files ---------------------------------------------------------------


def _f(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _cell(m: Optional[dict], value: str, ratio: str) -> str:
    if m is None:
        return "-"
    if m["status"] != "ok":
        return f"{m['status']}: {m['message']}".replace("|", "/")[:80]
    return f"{_f(m.get(value), '.1f')} ({_f(m.get(ratio), '.2f')}x)"


def markdown(rows: list[dict], env: Optional[dict] = None) -> str:
    """The table: one row per model; peers as images/s (zoo x peer), the
    pipeline as images/s (x the zoo's step).

    Args:
        rows: rows of ``measure_model``.
        env: the environment record (``environment()``) for the notes and
            footer, or None.

    Returns:
        str: the table and its notes, ending in a newline.
    """
    from benchmarks.report import env_lines

    peers = [q for q in PEERS if any(q in (r.get("peers") or {}) for r in rows)]
    pipe = any("pipeline" in r for r in rows)
    head = ["model", "batch", "size", "zoo images/s", "zoo p50 ms", "zoo p90 ms",
            "zoo compile s"]
    head += [f"{q} images/s (zoo x)" for q in peers]
    head += ["pipeline images/s (x zoo)"] if pipe else []
    head += ["status"]
    lines = ["| " + " | ".join(head) + " |",
             "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * (len(peers) + pipe) + "---|"]
    for r in rows:
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['message']}"
        cells = [r["model"], str(r["batch"]), str(r["image_size"]),
                 _f(r.get("zoo_images_per_s"), ".1f"), _f(r.get("zoo_p50_ms"), ".1f"),
                 _f(r.get("zoo_p90_ms"), ".1f"), _f(r.get("zoo_first_call_s"), ".1f")]
        cells += [_cell((r.get("peers") or {}).get(q), "images_per_s", "ratio") for q in peers]
        if pipe:
            cells.append(_cell(r.get("pipeline"), "images_per_s", "ratio"))
        cells.append(status.replace("|", "/")[:120])
        lines.append("| " + " | ".join(cells) + " |")
    first = rows[0] if rows else {}
    lines += ["", f"One training step (forward, backward, optimizer update), float32, "
                  f"median of {first.get('runs')} steps after {first.get('warmup')} warm-up "
                  "steps, interleaved with the peers in one process; images/s = batch / p50. "
                  "zoo compile s: its first call (trace, compile, one step). (zoo x) = zoo "
                  "images/s / peer images/s from the same rounds: above 1 the zoo trains "
                  "faster (see benchmarks/train_speed.py)."]
    if peers:
        threads = (env or {}).get("torch_threads")
        lines += ["", "keras: Keras 3 Applications on JAX, `train_on_batch`, SGD Nesterov; "
                      f"torch: PyTorch eager, SGD Nesterov, {threads or 'as many as cores'} "
                      "threads."]
    mode = (env or {}).get("host_memory")
    if mode:
        lines += ["", f"host memory: {mode} (" + (
            "freed memory stays in the process, as in `zoo train`: zoo.host_memory"
            if mode == "keep" else "the C library's default") + "; the same for every "
            "framework of the run)."]
    if pipe:
        p = next((r["pipeline"] for r in rows if "pipeline" in r), {})
        lines += ["", f"pipeline: `zoo.datasets.train_batches` on `{p.get('data')}` with "
                      f"{p.get('workers')} worker process(es), augmented, timed alone; images/s "
                      "= batch / mean interval between batches; (x zoo) = pipeline images/s / "
                      "zoo step images/s (target: 3x or more)."]
    if env:
        lines += env_lines(env)
    return "\n".join(lines) + "\n"


_CSV_STATS = ("status", "message", "first_call_s", "p50_ms", "p90_ms", "min_ms", "mean_ms",
              "std_ms", "timed_runs", "images_per_s", "ratio")


def to_csv(rows: list[dict]) -> str:
    """One line per model: the zoo's columns, then ``<peer>_*`` and ``pipeline_*``.

    Args:
        rows: rows of ``measure_model``; the loss lists are left out.

    Returns:
        str: CSV text with a header line; None values are empty cells.
    """
    cols = ["model", "batch", "image_size", "dtype", "runs", "warmup", "status", "message",
            "device_peak_bytes", "host_peak_rss_bytes"]
    cols += [f"zoo_{k}" for k in _CSV_STATS[2:-1]]
    peers = [q for q in PEERS if any(q in (r.get("peers") or {}) for r in rows)]
    cols += [f"{q}_{k}" for q in peers for k in _CSV_STATS]
    cols += [f"pipeline_{k}" for k in ("status", "message", "workers", "first_batch_s",
                                        "p50_ms", "mean_ms", "timed_runs", "images_per_s",
                                        "ratio")]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        flat = dict(r)
        for q, m in (r.get("peers") or {}).items():
            flat.update({f"{q}_{k}": v for k, v in m.items()})
        flat.update({f"pipeline_{k}": v for k, v in (r.get("pipeline") or {}).items()})
        w.writerow({k: ("" if flat.get(k) is None else flat[k]) for k in cols})
    return buf.getvalue()


def write(rows: list[dict], env: dict, out_dir, stamp: str) -> dict[str, Path]:
    """JSON (env and every row, losses included), CSV and Markdown in ``out_dir``.

    The files are ``train-<env tag>-<stamp>.{json,csv,md}``, each written
    atomically; the folder is created if missing.

    Args:
        rows: rows of ``measure_model``.
        env: the environment record (``environment()``).
        out_dir: the output folder (str or ``Path``).
        stamp: the UTC time part of the names, e.g. ``20250101T120000Z``.

    Returns:
        dict[str, Path]: ``"json"``, ``"csv"`` and ``"md"`` -> the files.
    """
    from benchmarks.report import _base_name, write_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = _base_name(env, stamp, prefix="train")
    doc = {"env": env, "command": env.get("command"), "results": rows}
    return {"json": write_atomic(out / f"{base}.json", json.dumps(doc, indent=1) + "\n"),
            "csv": write_atomic(out / f"{base}.csv", to_csv(rows)),
            "md": write_atomic(out / f"{base}.md", markdown(rows, env))}


def environment(host_memory: str = "release") -> dict:
    """``benchmarks.env.collect()`` plus the peers' versions, torch's threads and
    the host-memory mode (``keep`` when ``zoo.host_memory`` applied).

    Args:
        host_memory: ``"keep"`` or ``"release"``, recorded as is.

    Returns:
        dict: the ``collect()`` record (its command made runnable with
        ``-m``) plus ``optax``, ``keras``, ``torch``,
        ``efficientnet_pytorch`` and ``grain`` versions (None when not
        installed), ``torch_threads`` and ``host_memory``.
    """
    from importlib import metadata

    from benchmarks import env as bench_env

    argv = list(sys.argv)
    if argv and argv[0].endswith(os.path.join("benchmarks", "train_speed.py")):
        argv = [sys.executable, "-m", "benchmarks.train_speed"] + argv[1:]  # runnable again
    env = bench_env.collect(argv)
    for pkg in ("optax", "keras", "torch", "efficientnet-pytorch", "grain"):
        try:
            env[pkg.replace("-", "_")] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            env[pkg.replace("-", "_")] = None
    env["torch_threads"] = os.cpu_count() or 1  # what benchmarks.peers.torch_model sets
    env["host_memory"] = host_memory
    return env


# -- command line -----------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options (shared by ``python -m benchmarks.train_speed`` and ``zoo bench --train``).

    Args:
        parser: the parser to add ``--models``, ``--batch``,
            ``--image-size``, ``--peers``, ``--runs``, ``--warmup``,
            ``--workers``, ``--data``, ``--data-dir``, ``--no-pipeline``,
            ``--host-memory`` and ``--out`` to.

    Returns:
        argparse.ArgumentParser: ``parser``.
    """
    a = parser.add_argument
    a("--models", default=DEFAULT_MODELS,
      help=f"comma-separated classifier names or globs (default {DEFAULT_MODELS})")
    a("--batch", type=int, default=32, help="images per step, the same for all (default 32)")
    a("--image-size", type=int, default=224, help="square input size (default 224)")
    a("--peers", default=",".join(PEERS),
      help="comma-separated: keras (Keras 3 on JAX), torch (PyTorch eager); 'none' for "
           "none (default keras,torch)")
    a("--runs", type=int, default=10, help="timed steps per framework, interleaved (10)")
    a("--warmup", type=int, default=2,
      help="untimed rounds after the first call, before timing (2)")
    a("--workers", type=int, default=0,
      help="data-pipeline worker processes (default 0: in this process, as zoo train)")
    a("--data", default="digits",
      help="dataset of the pipeline measurement: digits, lfw_subset, folder:PATH, tfds:NAME "
           "(default digits)")
    a("--data-dir", default=None, help="where datasets are built (default: $ZOO_DATA or the "
                                       "zoo cache)")
    a("--no-pipeline", dest="pipeline", action="store_false",
      help="skip the data-pipeline measurement")
    a("--host-memory", default="keep", choices=("keep", "release"),
      help="keep: freed host memory stays in the process, as in `zoo train` "
           "(zoo.host_memory; both the zoo and the peers run in it); release: the C "
           "library's default, which page-faults large buffers again at every step "
           "(default keep)")
    a("--out", default="results", help="folder for the result files (results/)")
    return parser


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The command-line parser of the training-speed table.

    Args:
        prog: the program name shown in usage lines.

    Returns:
        argparse.ArgumentParser: with the options of ``add_arguments``.
    """
    p = argparse.ArgumentParser(
        prog=prog, description="Training speed (images/s of forward + backward + update) of "
                                "zoo models beside Keras and PyTorch, and of the data pipeline.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_arguments(p)


def check(args) -> tuple[list[str], list[str]]:
    """(models, peers) from the options, or ValueError with one line saying what is wrong.

    Args:
        args: the ``argparse.Namespace`` of ``parser()``.

    Returns:
        tuple: ``(models, peers)``: registered names (globs expanded, in
        order, unique) and peer names (unique; empty for ``none``).

    Raises:
        ValueError: for an unknown model name, a glob that matches nothing,
            no model, a model that is not a classifier, an unknown peer, or
            ``--batch`` < 1, ``--image-size`` < 32, ``--runs`` < 1,
            ``--warmup`` < 0 or ``--workers`` < 0.
    """
    import zoo

    names: list[str] = []
    for item in filter(None, (i.strip() for i in args.models.split(","))):
        if any(c in item for c in "*?["):
            found = zoo.list_models(item)
            if not found:
                raise ValueError(f"--models {item!r} matches no model; `zoo list` shows them all")
        else:
            try:
                zoo.get_spec(item)
            except KeyError as e:  # unknown names fail here, with suggestions
                raise ValueError(e.args[0] if e.args else str(e)) from None
            found = [item]
        names += [n for n in found if n not in names]
    if not names:
        raise ValueError("--models: give at least one name or glob")
    not_classifiers = [n for n in names if zoo.get_spec(n).task != "classification"]
    if not_classifiers:
        raise ValueError(f"--models {','.join(not_classifiers)}: the training step is a "
                         "classifier's; give classification models")
    peers = [] if args.peers.strip().lower() in ("", "none") else \
        [q.strip() for q in args.peers.split(",") if q.strip()]
    unknown = [q for q in peers if q not in PEERS]
    if unknown:
        raise ValueError(f"--peers {','.join(unknown)}: known peers are {', '.join(PEERS)} "
                         "(or none)")
    bad = [f"--{k.replace('_', '-')} {getattr(args, k)} (at least {low})"
           for k, low in (("batch", 1), ("image_size", 32), ("runs", 1), ("warmup", 0),
                          ("workers", 0)) if getattr(args, k) < low]
    if bad:
        raise ValueError("bad values: " + ", ".join(bad))
    return names, list(dict.fromkeys(peers))


def run(args) -> int:
    """Measure every model, write the files, print the table.

    Progress goes to stderr (a status line on a terminal, else one line per
    measurement); ``train-...partial.json`` in ``--out`` keeps the rows so
    far until the final files are written.

    Args:
        args: the ``argparse.Namespace`` of ``parser()``, with
            ``host_memory_applied`` set by ``main`` (default
            ``"release"``).

    Returns:
        int: the exit status, 0.
    """
    names, peers = check(args)
    from benchmarks import report

    env = environment(getattr(args, "host_memory_applied", "release"))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    partial = report.partial_path(args.out, env, stamp, prefix="train")
    tty = sys.stderr.isatty()
    rows: list[dict] = []
    from contextlib import nullcontext

    from rich.console import Console

    # A live status line on a terminal; in logs, one line per measurement.
    with (Console(stderr=True).status("") if tty else nullcontext()) as status:
        for i, name in enumerate(names, start=1):
            head = f"[{i}/{len(names)}] {name} b{args.batch} {args.image_size}px: "

            def say(line: str, head=head) -> None:
                if status is not None:
                    status.update(head + line)
                else:
                    print(head + line, file=sys.stderr, flush=True)

            rows.append(measure_model(
                name, batch=args.batch, image_size=args.image_size, peers=peers,
                runs=args.runs, warmup=args.warmup, pipeline=args.pipeline,
                workers=args.workers, data=args.data, data_dir=args.data_dir, say=say))
            report.write_partial(rows, env, partial)
    paths = write(rows, env, args.out, stamp)
    partial.unlink(missing_ok=True)
    print(markdown(rows, env), end="")
    for path in paths.values():
        print(f"wrote {path}", file=sys.stderr)
    return 0


def main(argv=None, prog: str = PROG) -> int:
    """``python -m benchmarks.train_speed [options]``; also what ``zoo bench
    --train [options]`` runs. Bad input: one line on stderr, exit status 2.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``); see
            ``add_arguments``.
        prog: the program name shown in usage and error lines.

    Returns:
        int: the exit status: 0, or 2 after a one-line error.

    Example:
        ::

            from benchmarks.train_speed import main
            main(["--models", "mobilenet_v2", "--batch", "4", "--image-size", "96",
                  "--runs", "3", "--peers", "torch", "--out", "/tmp/train"])
    """
    from zoo.cli import run_reporting_errors
    from zoo.host_memory import keep_freed_host_memory

    args = parser(prog).parse_args(argv)
    # Before JAX starts its CPU client (zoo.host_memory says why).
    kept = args.host_memory == "keep" and keep_freed_host_memory()
    args.host_memory_applied = "keep" if kept else "release"
    return run_reporting_errors(prog, run, args)


if __name__ == "__main__":
    sys.exit(main())
