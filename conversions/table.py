"""The conversion table: every model x format x quantisation -> file size,
error against JAX, top-1 agreement, LiteRT and onnxruntime latency,
conversion time and peak conversion memory.

    python -m conversions.table --out conversions/results/
    python -m conversions.table --models 'efficientnet_lite*' --formats tflite:int8

Each conversion runs in its own process and reports its own peak resident
memory (``VmHWM`` of its address space, read at its end). Not ``wait4``'s
``ru_maxrss``: Linux carries that across ``execve`` from the forking parent,
so it reported the table process's own, growing, size. Models with offline
pretrained weights are exported pretrained and judged on scikit-image's
``chelsea`` and ``coffee``; the others with random weights (seed 0) on the
same photos (their top-1 then only says the file ranks like JAX does). The
face models (MediaPipe's weights) are judged on ``astronaut`` and its face;
their "top-1" is the detector's best anchor (the mesh has none). The depth
models run on ``chelsea`` and ``coffee`` too and have no top-1; the
segmentation models on ``astronaut`` and ``coffee`` as MediaPipe's pipeline
feeds them (``zoo.segment.network_input``), no top-1 either. The error
is the largest over the outputs of ``max |file - JAX| / max |JAX|``.
Latency: median of ``--runs`` calls at batch 1, 2 threads, after warm-up.
Finished rows are kept in ``<out>/conversions-partial.json`` as they come,
so an interrupted run loses at most the conversion in progress.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FORMATS = ("tflite:float32", "tflite:float16", "tflite:dynamic_int8", "tflite:int8",
           "onnx:float32")
OFFLINE_PRETRAINED = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                      "mobilenet_v2", "blazeface_short_range", "blazeface_full_range",
                      "face_mesh", "midas_small_lite0", "selfie_segmentation",
                      "selfie_segmentation_landscape")
TASKS = ("classification", "face_detection", "face_landmarks", "depth", "segmentation")
COLUMNS = ("model", "format", "quantization", "pretrained", "size_mib", "max_rel_diff",
           "top1_agree", "latency_ms", "convert_s", "peak_rss_gib", "partitions", "status")


def _photos(spec):
    import skimage.data

    import zoo
    if spec.task == "segmentation":  # MediaPipe's own input: the photo stretched, in [0, 1]
        from zoo.segment import network_input
        return np.concatenate([network_input(p, spec.name) for p in
                         (skimage.data.astronaut(), skimage.data.coffee())])
    if spec.task in ("classification", "depth"):
        photos = [skimage.data.chelsea(), skimage.data.coffee()]
    else:  # the face models: the whole astronaut and her face
        a = skimage.data.astronaut()
        photos = [a, a[40:240, 130:330]]
    return np.asarray(zoo.preprocess(photos, spec))


def _top1(spec, outputs: list[np.ndarray]):
    """What a top-1 means per task: the class, the detector's best anchor
    (the last output holds the scores), none for the mesh."""
    if spec.task == "classification":
        return outputs[0].reshape(len(outputs[0]), -1).argmax(-1)
    if spec.task == "face_detection":
        return outputs[-1].reshape(len(outputs[-1]), -1).argmax(-1)
    return None


def _peak_rss_gib() -> float:
    """This process's peak resident memory since its ``execve``."""
    with open("/proc/self/status") as f:
        kib = next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))
    return round(kib / 2**20, 2)


def worker(name: str, fmt: str, quantization: str, out: str) -> dict:
    """Convert one model (in this process) and report time and peak memory.

    ``measure`` runs it in a child process (``--worker``), so the peak is
    the conversion's own. Models in ``OFFLINE_PRETRAINED`` are exported
    with their published weights, the others with random ones; no audit.

    Args:
        name: the registry model name.
        fmt: ``"tflite"``; anything else exports ONNX.
        quantization: a TFLite quantisation (ignored for ONNX).
        out: the path of the file to write.

    Returns:
        ``{"convert_s": seconds, "pretrained": bool, "peak_rss_gib": GiB}``.
    """
    from conversions.onnx import to_onnx
    from conversions.tflite import to_tflite

    pretrained = name in OFFLINE_PRETRAINED
    t = time.perf_counter()
    if fmt == "tflite":
        to_tflite(name, quantization=quantization, pretrained=pretrained, out=out, audit=False)
    else:
        to_onnx(name, pretrained=pretrained, out=out)
    return {"convert_s": round(time.perf_counter() - t, 1), "pretrained": pretrained,
            "peak_rss_gib": _peak_rss_gib()}


def _convert(name, fmt, quantization, out: Path, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "conversions.table", "--worker", name, fmt, quantization,
           str(out)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    started = time.monotonic()
    while True:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > timeout:
            proc.kill()
            os.waitpid(proc.pid, 0)
            return {"status": f"timeout after {timeout:.0f} s"}
        time.sleep(0.2)
    stdout, stderr = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        last = [ln for ln in stderr.strip().splitlines() if ln.strip()][-3:]
        return {"status": "failed: " + " | ".join(last)[:300]}
    return json.loads(stdout.strip().splitlines()[-1])


def measure(name: str, fmt: str, quantization: str, folder: Path, runs: int,
            timeout: float) -> dict:
    """One row of the table: convert in a child process, then run the file
    beside JAX on the task's photos (see the module docstring).

    Args:
        name: the registry model name.
        fmt: ``"tflite"`` or ``"onnx"``.
        quantization: ``"float32"``, ``"float16"``, ``"dynamic_int8"`` or
            ``"int8"``.
        folder: where the file is written, as ``NAME_QUANT.EXT``.
        runs: timed calls for the latency.
        timeout: seconds the conversion may take before it is killed.

    Returns:
        The row: ``model``, ``format``, ``quantization`` and ``status``
        (``"ok"``, or why the conversion failed or timed out, then nothing
        else); when ok also the worker's fields and ``size_mib``,
        ``max_rel_diff``, ``top1_agree`` (``"k/n"``, empty for tasks with no
        top-1), ``latency_ms`` and, for TFLite, ``partitions``.
    """
    import zoo
    from conversions.audit import audit_tflite
    from conversions.runtime import latency_ms, runner

    ext = ".tflite" if fmt == "tflite" else ".onnx"
    path = folder / f"{name}_{quantization}{ext}"
    row = {"model": name, "format": fmt, "quantization": quantization}
    row.update(_convert(name, fmt, quantization, path, timeout))
    if "status" in row:
        return row
    from conversions.export import _output_dict

    spec = zoo.get_spec(name)
    model, variables = zoo.create(name, pretrained=row["pretrained"])
    x = _photos(spec)
    want = {k: np.asarray(v) for k, v in _output_dict(model.apply(variables, x)).items()}
    run = runner(path, num_threads=2)
    outs = [run(x[i:i + 1]) for i in range(len(x))]
    got = {k: np.concatenate([o[k] for o in outs]) for k in want}
    diff = max(np.abs(got[k] - want[k]).max() / np.abs(want[k]).max() for k in want)
    top_got, top_want = _top1(spec, list(got.values())), _top1(spec, list(want.values()))
    row.update(
        size_mib=round(path.stat().st_size / 2**20, 2),
        max_rel_diff=float(f"{diff:.2e}"),
        top1_agree="" if top_want is None else f"{int((top_got == top_want).sum())}/{len(x)}",
        latency_ms=round(latency_ms(run, x[:1], runs=runs), 2),
        status="ok")
    if fmt == "tflite":
        row["partitions"] = audit_tflite(path).partitions
    return row


def _peak(r: dict) -> str:
    # Rows of the 2026-11-22 table measured before the VmHWM fix carry the
    # forking parent's size too: only an upper bound (see the module doc).
    v = r.get("peak_rss_gib", "")
    return f"<= {v}" if r.get("peak_rss_upper_bound") and v != "" else str(v)


def markdown(rows: list[dict], env: dict) -> str:
    """The table as Markdown.

    Args:
        rows: rows from ``measure``.
        env: the machine and versions: ``cpu``, ``cores``, ``tensorflow``,
            ``litert``, ``onnxruntime``, ``date`` and ``command``.

    Returns:
        A line naming the machine, versions and date, the command, and a
        Markdown table with one line per row (a failed row shows its status
        and peak memory only), ending in a newline.
    """
    lines = [f"Conversions on {env['cpu']} ({env['cores']} cores), TensorFlow {env['tensorflow']}, "
             f"LiteRT {env['litert']}, onnxruntime {env['onnxruntime']}, {env['date']}.",
             f"Command: `{env['command']}`", "",
             "| model | format | quant | weights | MiB | max diff / max | top-1 = JAX | "
             "latency ms (2 thr) | convert s | peak GiB | XNNPACK partitions |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.get("status") != "ok":
            lines.append(f"| {r['model']} | {r['format']} | {r['quantization']} | | | | | | | "
                         f"{_peak(r)} | {r.get('status')} |")
            continue
        lines.append(
            f"| {r['model']} | {r['format']} | {r['quantization']} | "
            f"{'pretrained' if r['pretrained'] else 'random'} | {r['size_mib']} | "
            f"{r['max_rel_diff']:.1e} | {r['top1_agree']} | {r['latency_ms']} | "
            f"{r['convert_s']} | {_peak(r)} | {r.get('partitions', '')} |")
    return "\n".join(lines) + "\n"


def _env() -> dict:
    import platform
    from importlib.metadata import version

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "tensorflow": version("tensorflow-cpu"),
            "litert": version("ai-edge-litert"), "onnxruntime": version("onnxruntime"),
            "tf2onnx": version("tf2onnx"), "jax": version("jax"),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "command": "python -m conversions.table " + " ".join(sys.argv[1:])}


def main(argv=None) -> int:
    """``python -m conversions.table``: convert and measure the models,
    write ``conversions-cpu-<cores>cores-<time>.json`` and ``.md`` to
    ``--out`` and print the table.

    Args:
        argv: the command-line arguments; None means ``sys.argv[1:]``.

    Returns:
        0, the exit status.

    Raises:
        SystemExit: if ``--models`` matches no registered model of the
            table's tasks (and on ``--help`` or bad options, from argparse).
    """
    p = argparse.ArgumentParser(
        prog="python -m conversions.table", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="*",
                   help="comma-separated names or globs (default: every classifier, "
                        "face and depth model)")
    p.add_argument("--formats", default=",".join(FORMATS),
                   help=f"comma-separated FORMAT:QUANT (default: {','.join(FORMATS)})")
    p.add_argument("--runs", type=int, default=30, help="timed calls per file (30)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per conversion (1800)")
    p.add_argument("--out", default="conversions/results", help="folder for the table")
    p.add_argument("--keep", help="folder to keep the exported files in (default: temporary)")
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0

    import tempfile

    from rich.progress import Progress

    import zoo
    from zoo.atomic import write_atomic

    names = [n for n in zoo.list_models() if zoo.get_spec(n).task in TASKS and any(
        fnmatch.fnmatchcase(n, pat.strip()) for pat in args.models.split(","))]
    formats = [f.split(":") for f in args.formats.split(",")]
    if not names:
        raise SystemExit(f"--models {args.models}: no registered model matches")
    out = Path(args.out)
    partial = out / "conversions-partial.json"
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Progress() as bar:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        task = bar.add_task("converting", total=len(names) * len(formats))
        for name in names:
            for fmt, quant in formats:
                bar.update(task, description=f"{name} {fmt} {quant}")
                rows.append(measure(name, fmt, quant, folder, args.runs, args.timeout))
                write_atomic(partial, json.dumps({"rows": rows}, indent=1))
                bar.advance(task)
                if not sys.stderr.isatty():  # logs get one line per conversion
                    r = rows[-1]
                    print(f"[{len(rows)}/{len(names) * len(formats)}] {name} {fmt} {quant}: "
                          f"{r.get('status')} {r.get('max_rel_diff', '')}", file=sys.stderr,
                          flush=True)
    env = _env()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = out / f"conversions-cpu-{env['cores']}cores-{stamp}"
    write_atomic(base.with_suffix(".json"), json.dumps({"env": env, "rows": rows}, indent=1))
    write_atomic(base.with_suffix(".md"), markdown(rows, env))
    partial.unlink(missing_ok=True)
    print(markdown(rows, env))
    print(f"wrote {base}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
