"""Measure one (model, batch, dtype, device) configuration, and the device's roofline.

What ``measure`` records, and why:

- **Lowering and compile time apart.** ``jax.jit(apply).lower(...)`` traces the
  Flax module and emits StableHLO (Python-side cost: grows with the number of
  layers); ``.compile()`` runs XLA (backend-side cost: fusion, layout,
  codegen). A slow first call can come from either; timing them apart says
  which.
- **Latency percentiles, not a mean alone.** ``runs`` timed calls after
  ``warmup`` untimed ones, each ended by ``block_until_ready`` (JAX dispatch
  is asynchronous: without it we would time the dispatch, not the work). The
  median (p50) is the headline: a single descheduling or page fault moves the
  mean but not the median. p90, min, mean and std show the spread; throughput
  is ``batch / p50``.
- **Multiply-adds two ways.** ``macs`` is the analytic count of
  ``zoo.counting.analytic_counts`` (papers' convention: convolutions and dense
  layers only) at the spec's resolution, times the batch. ``xla_flops`` is
  ``compiled.cost_analysis()["flops"]``. ``flops_ratio = xla_flops / (2 *
  macs)``: about 1 means XLA sees the same network we count. On CPU float32
  it is slightly above 1 (about 1.1 for MobileNetV3-Small) because XLA also
  counts BatchNorm, activations, pooling and residual adds; in bfloat16 it is
  higher still (the dtype converts are counted). ``flops_flag`` is True when
  the ratio differs from 1 by more than 10 %: it means "do not trust one of
  the two numbers without a look" (XLA's counters are missing or wrong on
  some GPU versions, and Pallas calls are only counted through their
  ``cost_estimate``), not that the model is wrong.
- **Memory.** ``compiled.memory_analysis()`` argument/output/temp bytes
  (XLA's static buffer assignment, exact for the compiled program); the
  device's ``memory_stats()["peak_bytes_in_use"]`` where the backend keeps it
  (GPU, TPU; None on CPU), else the process's peak resident set size
  (``ru_maxrss``, a lifetime high-water mark of the whole process, so only an
  upper bound for any one configuration).
- **Roofline in the same process.** ``roofline()`` measures a float32
  matmul's FLOP/s and a large elementwise copy's bytes/s on the same device,
  in the same run, so ``roofline_fraction = (2 * macs / p50) / matmul FLOP/s``
  compares like with like (a bfloat16 configuration is still compared with
  the float32 matmul).
- **Failures are results.** Out of memory, any exception, or a configuration
  running past ``time_budget`` seconds is returned as ``status`` "oom",
  "error" or "timeout" with a ``message``; the caller goes on with the next
  configuration. The budget is checked between stages (create, lower,
  compile, each timed call): a single XLA compile cannot be interrupted
  in-process.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from zoo.timing import time_calls

FLOPS_TOLERANCE = 0.10  # flag |xla_flops / (2 * macs) - 1| above this

#: Every key of a result, in the order of the CSV columns.
FIELDS = (
    "model", "batch", "dtype", "device", "devices", "implementation", "status", "message",
    "input_size", "lower_s", "compile_s", "runs", "timed_runs", "warmup",
    "p50_ms", "p90_ms", "min_ms", "mean_ms", "std_ms", "throughput_ips",
    "macs", "xla_flops", "flops_ratio", "flops_flag", "transcendentals", "bytes_accessed",
    "argument_bytes", "output_bytes", "temp_bytes", "device_peak_bytes", "host_peak_rss_bytes",
    "params", "weight_bytes", "achieved_flops_per_s", "roofline_flops_per_s",
    "roofline_fraction",
)


class BudgetExceeded(Exception):
    """A configuration ran past its ``time_budget``."""


def roofline(*, matmul_n: int = 2048, copy_mib: int = 64, runs: int = 5,
             device: Optional[Any] = None) -> dict:
    """The device's attainable float32 matmul FLOP/s and memory bytes/s.

    Matmul: ``n x n @ n x n`` (``2 n^3`` FLOPs). Copy: ``y = x * 2`` over
    ``copy_mib`` MiB of float32 (read once, written once: ``2 * size`` bytes;
    a multiply so XLA cannot elide it). Medians of ``runs`` calls after one
    compile-and-warm-up call. The defaults take about a second on 2 CPU cores.

    Args:
        matmul_n: side of the square float32 matrices.
        copy_mib: size of the copied float32 array in MiB.
        runs: timed calls of each.
        device: the ``jax.Device`` to measure (default: the first of
            ``jax.devices()``).

    Returns:
        dict: ``matmul_n``, ``matmul_flops_per_s``, ``copy_mib``,
        ``copy_bytes_per_s`` and ``runs``.

    Example:
        ::

            from benchmarks.runner import roofline
            roofline(matmul_n=512, copy_mib=8, runs=3)["matmul_flops_per_s"] / 1e9   # GFLOP/s
    """
    device = device or jax.devices()[0]
    key = jax.random.PRNGKey(0)
    a = jax.device_put(jax.random.normal(key, (matmul_n, matmul_n), jnp.float32), device)
    matmul = jax.jit(lambda a: a @ a)
    t_mm = time_calls(lambda: jax.block_until_ready(matmul(a)), runs, warmup=1)["p50_ms"] / 1e3
    n = copy_mib * 2**20 // 4
    x = jax.device_put(jnp.ones((n,), jnp.float32), device)
    copy = jax.jit(lambda x: x * 2.0)
    t_cp = time_calls(lambda: jax.block_until_ready(copy(x)), runs, warmup=1)["p50_ms"] / 1e3
    return {"matmul_n": matmul_n, "matmul_flops_per_s": 2 * matmul_n**3 / t_mm,
            "copy_mib": copy_mib, "copy_bytes_per_s": 2 * n * 4 / t_cp, "runs": runs}


def _classify(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    if isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower():
        return "oom"
    return "error"


def _message(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    first = text.splitlines()[0] if text else type(e).__name__
    return first[:500]


def _peak_memory(device) -> tuple[Optional[int], Optional[int]]:
    """(device peak bytes or None, host peak RSS bytes or None)."""
    peak = None
    try:
        stats = device.memory_stats()
        if stats:
            peak = stats.get("peak_bytes_in_use")
    except Exception:  # backends without memory_stats raise or return None
        peak = None
    if peak is not None:
        return int(peak), None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return None, int(rss if sys.platform == "darwin" else rss * 1024)  # KiB on Linux


def measure_peer(peer: str, name: str, *, batch: int, runs: int = 20, warmup: int = 3,
                 zoo_p50_ms: Optional[float] = None, max_seconds: Optional[float] = None) -> dict:
    """Latency of ``peer`` (see ``benchmarks.peers``) on the same model and
    batch at the spec's resolution, timed like the zoo's path. ``ratio`` is
    peer p50 / zoo p50: above 1, the zoo is faster. A peer that cannot run
    here gives ``status`` "skipped" and the reason.

    Peers in ``benchmarks.peers.CHILD_PEERS`` are timed in a child
    process. Any failure is a result, never an exception.

    Args:
        peer: one of ``benchmarks.peers.PEERS``.
        name: a registered model name.
        batch: images per call.
        runs: most timed calls.
        warmup: untimed calls first.
        zoo_p50_ms: the zoo's p50 for the same configuration, for
            ``ratio``; None (or 0) leaves ``ratio`` None.
        max_seconds: stop timing once the timed calls took this many
            seconds (after at least ``zoo.timing.MIN_TIMED_RUNS``).

    Returns:
        dict: ``peer``, ``status`` (``"ok"``, ``"skipped"``, ``"oom"`` or
        ``"error"``), ``message`` (``""`` when ok), ``p50_ms`` and
        ``ratio`` (None unless measured); when ok also ``p90_ms``,
        ``min_ms``, ``mean_ms``, ``std_ms`` and ``timed_runs``.
    """
    from benchmarks.peers import CHILD_PEERS, PeerUnavailable, build_peer, run_child
    import zoo

    out: dict[str, Any] = {"peer": peer, "status": "ok", "message": "", "p50_ms": None,
                           "ratio": None}
    try:
        size = zoo.get_spec(name).input_size
        if peer in CHILD_PEERS:
            out.update(run_child(peer, name, batch, size, runs, warmup, max_seconds))
        else:
            out.update(time_calls(build_peer(peer, name, batch, size), runs, warmup,
                                max_seconds=max_seconds))
        if zoo_p50_ms:
            out["ratio"] = out["p50_ms"] / zoo_p50_ms
    except PeerUnavailable as e:
        out.update(status="skipped", message=str(e))
    except Exception as e:  # noqa: BLE001 - a failing peer is a result, not a crash
        out.update(status=_classify(e), message=_message(e))
    return out


def prepare(name: str, *, batch: int, dtype: str = "float32", implementation: str = "auto",
            seed: int = 0, devices=None, length: Optional[int] = None,
            options: Optional[dict] = None):
    """``(spec, model, variables, x)`` for one configuration: random
    variables and a random batch at the spec's resolution, placed on
    ``devices`` (one: that device; several: batch split over them with
    ``jax.sharding``, variables replicated). A sequence model (one that
    declares ``trace_input``) gets sequences of ``length`` steps (default:
    the spec's ``input_size``); ``options`` are builder options passed to
    ``zoo.create`` (e.g. a smaller ``hidden``).

    Args:
        name: a registered model name.
        batch: the global batch size.
        dtype: compute dtype, ``"float32"``, ``"bfloat16"`` or
            ``"float16"`` (parameters stay float32).
        implementation: the kernels' implementation (``"auto"``,
            ``"reference"``, ``"xla_fast"``, ``"pallas"``).
        seed: seed of the random variables and of the input.
        devices: ``jax.Device`` objects to place on (default: the first of
            ``jax.devices()``).
        length: sequence length for a sequence model; None for the
            spec's ``input_size``. Not allowed for image models.
        options: builder options for ``zoo.create``, or None.

    Returns:
        tuple: ``(spec, model, variables, x)``: the ``ModelSpec``, the Flax
        model, its variables and the float32 standard-normal input, (batch,
        H, W, 3) for an image model or (batch, length, ...) for a sequence
        model.

    Raises:
        ValueError: if ``length`` is given for an image model, or ``batch``
            does not divide evenly over several ``devices``.
        KeyError: for an unknown model name (from ``zoo.get_spec``).
    """
    import zoo

    devices = devices or jax.devices()[:1]
    spec = zoo.get_spec(name)
    options = options or {}
    if length is not None and getattr(zoo.build(name, **options), "trace_input", None) is None:
        raise ValueError(f"{name}: length={length} is for sequence models (those declaring "
                         "trace_input); this one takes images at the spec's input_size")
    model, variables = zoo.create(name, seed=seed, dtype=dtype, implementation=implementation,
                                  **options)
    sequence = getattr(model, "trace_input", None)  # a sequence model (TALNet): its length
    size = spec.input_size if length is None else int(length)
    shape = ((batch, size) + tuple(sequence.shape[2:]) if sequence is not None
             else (batch, *spec.input_hw, 3))
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    if len(devices) > 1:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        if batch % len(devices):
            raise ValueError(f"data-parallel: batch {batch} does not split over "
                             f"{len(devices)} devices")
        mesh = Mesh(np.array(devices), ("data",))
        return (spec, model, jax.device_put(variables, NamedSharding(mesh, P())),
                jax.device_put(x, NamedSharding(mesh, P("data"))))
    return (spec, model, jax.device_put(variables, devices[0]),
            jax.device_put(x, devices[0]))


def measure(name: str, *, batch: int, dtype: str = "float32", runs: int = 20,
            warmup: int = 3, implementation: str = "auto",
            time_budget: Optional[float] = None, roof: Optional[dict] = None,
            data_parallel: bool = False, seed: int = 0,
            max_seconds: Optional[float] = None, length: Optional[int] = None,
            options: Optional[dict] = None) -> dict:
    """Benchmark ``name`` at ``batch`` images in compute ``dtype``; a flat dict.

    Keys are ``FIELDS``; on failure ``status`` is "oom", "error" or "timeout",
    ``message`` says why, and the measurements not reached are None.
    ``roof`` is a ``roofline()`` result (measured once per run by the caller;
    None leaves ``roofline_fraction`` None). ``data_parallel`` splits the
    batch over all of ``jax.devices()`` (``jax.sharding``, variables
    replicated); ``batch`` is the global batch and must divide evenly. Then
    ``xla_flops`` is one device's ``cost_analysis`` times the device count
    (the compiled SPMD module is one device's share), while the
    ``memory_analysis`` bytes stay per device. ``length`` and ``options``
    are ``prepare``'s: a sequence model measured at ``length`` steps
    (``input_size`` and ``macs`` are then at that length), built with
    ``options``.

    Every failure, unknown model names included, is returned as a row, not
    raised.

    Args:
        name: a registered model name.
        batch: images (or sequences) per call; the global batch with
            ``data_parallel``.
        dtype: compute dtype, ``"float32"``, ``"bfloat16"`` or
            ``"float16"``.
        runs: most timed calls.
        warmup: untimed calls before timing.
        implementation: the kernels' implementation (``"auto"``,
            ``"reference"``, ``"xla_fast"``, ``"pallas"``).
        time_budget: seconds for the whole configuration, checked between
            stages and after each call; past it ``status`` is "timeout".
            None: no budget.
        roof: a ``roofline()`` result, or None.
        data_parallel: split the batch over all of ``jax.devices()``.
        seed: seed of the random variables and input.
        max_seconds: stop timing once the timed calls took this many
            seconds (after at least ``zoo.timing.MIN_TIMED_RUNS``);
            ``timed_runs`` says how many ran. None times all ``runs``.
        length: sequence length for a sequence model (see ``prepare``).
        options: builder options for ``zoo.create``, or None.

    Returns:
        dict: one value per key of ``FIELDS`` (times in ``_s`` seconds and
        ``_ms`` milliseconds, sizes in bytes, ``throughput_ips`` in images
        per second, ``status`` ``"ok"``, ``"oom"``, ``"error"`` or
        ``"timeout"``).

    Example:
        ::

            from benchmarks.runner import measure, roofline
            r = measure("mobilenet_v2", batch=1, runs=10, roof=roofline())
            r["p50_ms"], r["flops_ratio"], r["roofline_fraction"]
    """
    devices = jax.devices() if data_parallel else jax.devices()[:1]
    device = devices[0]
    r: dict[str, Any] = dict.fromkeys(FIELDS)
    r.update(model=name, batch=int(batch), dtype=str(dtype), device=device.device_kind,
             devices=len(devices), implementation=implementation, runs=int(runs),
             warmup=int(warmup), status="ok", message="")
    start = time.perf_counter()

    def check_budget(stage: str) -> None:
        if time_budget is not None and time.perf_counter() - start > time_budget:
            raise BudgetExceeded(f"time budget {time_budget:g} s exceeded after {stage} "
                                 f"({time.perf_counter() - start:.1f} s)")

    try:
        spec, model, variables, x = prepare(name, batch=batch, dtype=dtype,
                                            implementation=implementation, seed=seed,
                                            devices=devices, length=length, options=options)
        from zoo.counting import analytic_counts
        import zoo

        r["input_size"] = size = int(x.shape[1])  # the spec's, or the sequence length
        r["params"] = zoo.count_params(variables)
        r["weight_bytes"] = int(sum(a.nbytes for a in jax.tree_util.tree_leaves(variables)))
        image_hw = tuple(int(d) for d in x.shape[1:3]) if x.ndim == 4 else size
        r["macs"] = int(analytic_counts(model, image_hw).macs) * int(batch)
        check_budget("create")

        t = time.perf_counter()
        lowered = jax.jit(model.apply).lower(variables, x)
        r["lower_s"] = time.perf_counter() - t
        check_budget("lowering")
        t = time.perf_counter()
        compiled = lowered.compile()
        r["compile_s"] = time.perf_counter() - t
        check_budget("compile")

        cost = compiled.cost_analysis()
        if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
            cost = cost[0] if cost else {}
        cost = cost or {}
        if cost.get("flops") is not None:
            # SPMD: the compiled module is one device's share of the work.
            r["xla_flops"] = float(cost["flops"]) * len(devices)
            if r["macs"]:
                r["flops_ratio"] = r["xla_flops"] / (2 * r["macs"])
                r["flops_flag"] = abs(r["flops_ratio"] - 1) > FLOPS_TOLERANCE
        r["transcendentals"] = cost.get("transcendentals")
        r["bytes_accessed"] = cost.get("bytes accessed")
        mem = compiled.memory_analysis()
        if mem is not None:
            r["argument_bytes"] = int(mem.argument_size_in_bytes)
            r["output_bytes"] = int(mem.output_size_in_bytes)
            r["temp_bytes"] = int(mem.temp_size_in_bytes)

        r.update(time_calls(lambda: jax.block_until_ready(compiled(variables, x)),
                          runs, warmup, check_budget, max_seconds))
        r["throughput_ips"] = batch / (r["p50_ms"] / 1e3)
        r["achieved_flops_per_s"] = 2 * r["macs"] / (r["p50_ms"] / 1e3)
        if roof:
            # One device's matmul rate; data-parallel runs have len(devices) of them.
            r["roofline_flops_per_s"] = roof["matmul_flops_per_s"] * len(devices)
            r["roofline_fraction"] = r["achieved_flops_per_s"] / r["roofline_flops_per_s"]
    except BudgetExceeded as e:
        r.update(status="timeout", message=str(e))
    except Exception as e:  # noqa: BLE001 - every failure (MemoryError too) is a result
        r.update(status=_classify(e), message=_message(e))
    r["device_peak_bytes"], r["host_peak_rss_bytes"] = _peak_memory(device)
    return r
