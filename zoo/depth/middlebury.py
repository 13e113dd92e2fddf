"""Depth on Middlebury 2014 "Motorcycle": the evaluation table.

    python -m zoo.depth.middlebury                          # every depth model, printed
    python -m zoo.depth.middlebury --models midas_small_lite0 --out depth.md

The scene ships in scikit-image (``skimage.data.stereo_motorcycle``, no
download): the left and right images at 1/4 of the benchmark's resolution
(500x741) and the ground-truth disparity of the left image in pixels,
+inf where there is none (the docstring says NaN; the file has +inf). With
the calibration of the 1/4-resolution images (focal length 994.978 px,
principal-point offset between the cameras ``doffs`` 31.086 px, baseline
193.001 mm), depth in millimetres is ``baseline * f / (d + doffs)``.

Each model runs on the LEFT image at its own input size (``estimate``); its
relative inverse depth is aligned to the ground-truth disparity by least
squares (scale and shift) and scored on depth (``zoo.depth.evaluate``).
Rows: each model with its trained weights (also averaged with its
prediction on the mirrored image, ``flip=True``), the same network with
random weights (seed 0), and two trivial baselines that show what the numbers
mean without any network:

* constant: one disparity everywhere. Its least-squares alignment is
  degenerate (any scale fits a constant); the alignment takes scale 0, so
  the prediction becomes the best constant in the least-squares sense, the
  mean ground-truth disparity (``constant_row`` checks that it did).
* ramp: inverse depth growing linearly from the top row to the bottom one
  ("lower in the picture is closer", true of a floor seen from above),
  aligned like any prediction.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from typing import Callable, Optional, Sequence

import numpy as np

BASELINE_MM = 193.001
FOCAL_PX = 994.978
DOFFS_PX = 31.086


def disparity_to_depth(disparity):
    """Depth in millimetres of a disparity in pixels of the 1/4-resolution
    Motorcycle pair: ``baseline * f / (d + doffs)``.

    Args:
        disparity: disparity in pixels, a number or a numpy or jax array.

    Returns:
        Depth in millimetres, same shape and array type.
    """
    return BASELINE_MM * FOCAL_PX / (disparity + DOFFS_PX)


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Motorcycle scene from scikit-image (no download).

    Returns:
        tuple: ``(left, disparity, valid)``: the left image (500, 741, 3)
        uint8, the ground-truth disparity (500, 741) float in pixels with
        +inf where missing, and the mask (500, 741) bool of pixels whose
        disparity is finite and > 0.
    """
    import skimage.data

    left, _, disparity = skimage.data.stereo_motorcycle()
    disparity = np.asarray(disparity)
    if disparity.ndim == 3:  # some scikit-image versions document (H, W, 3)
        disparity = disparity[..., 0]
    return left, disparity, np.isfinite(disparity) & (disparity > 0)


def ramp(shape: tuple[int, int]) -> np.ndarray:
    """The "lower in the image is closer" baseline: inverse depth = the row index.

    Args:
        shape: ``(height, width)`` of the map.

    Returns:
        np.ndarray: (height, width) float32, row i holding i.
    """
    h, w = shape
    return np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w)).copy()


def constant_row(disparity: np.ndarray, valid: np.ndarray) -> dict:
    """Metrics of the best constant prediction.

    Any scale fits a constant equally well, so least-squares alignment is
    degenerate; ``align`` then takes scale 0 and shift = the mean
    ground-truth disparity, which is the least-squares best constant. That
    is checked here, as the row depends on it.

    Args:
        disparity: (H, W) ground-truth disparity in pixels.
        valid: (H, W) bool mask of the pixels with ground truth.

    Returns:
        dict: the metrics of ``zoo.depth.evaluate`` (depth in mm).

    Raises:
        RuntimeError: when the alignment did not give scale 0 and the mean
            disparity as shift.
    """
    from zoo.depth.metrics import evaluate

    result = evaluate(np.zeros(disparity.shape, np.float32), disparity, valid=valid,
                      to_depth=disparity_to_depth)
    mean = float(disparity[valid].astype(np.float64).mean())
    if result["scale"] != 0 or not np.isclose(result["shift"], mean, rtol=1e-6):
        raise RuntimeError(f"constant baseline: expected scale 0 and shift {mean:.6g} (the mean "
                           f"disparity), got scale {result['scale']:.6g}, shift "
                           f"{result['shift']:.6g}")
    return result


def _hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import jax

    dev = jax.devices()[0]
    kind = "" if dev.device_kind.lower() == dev.platform else f" ({dev.device_kind})"
    return f"{cpu}, {os.cpu_count()} cores, jax {jax.__version__} on {dev.platform}{kind}"


def depth_models() -> list[str]:
    """Every registered model whose task is depth.

    Returns:
        list[str]: their names, sorted.
    """
    from zoo.registry import models_for_task

    return models_for_task("depth")


def evaluate_models(models: Sequence[str], *, allow_unpinned: bool = False,
                    log: Callable[[str], None] = lambda s: None) -> tuple[list[dict], list[str]]:
    """Table rows for ``models`` and the two baselines on the Motorcycle scene.

    Per model: its trained weights, the same averaged with the mirrored
    prediction (``flip=True``), and random weights (seed 0); then the
    constant and ramp baselines. A model whose trained weights cannot be had
    (none registered, no hash without ``allow_unpinned``, offline) gets a
    note instead of its trained rows.

    Args:
        models: registered depth model names.
        allow_unpinned: accept weights whose publisher gives no hash.
        log: called with a short progress message before each step.

    Returns:
        tuple[list[dict], list[str]]: the rows (the metrics of
        ``zoo.depth.evaluate`` plus ``"prediction"`` and ``"weights"``
        labels) and the notes.
    """
    from zoo.depth.inference import estimate
    from zoo.depth.metrics import evaluate
    from zoo.registry import get_spec
    from zoo.weights.errors import UnpinnedSourceError, WeightError

    left, disparity, valid = load()
    rows, notes = [], []

    def add(label, weights, prediction):
        result = evaluate(prediction, disparity, valid=valid, to_depth=disparity_to_depth)
        rows.append(dict(result, prediction=label, weights=weights))

    for name in models:
        sources = get_spec(name).weights
        if not sources:
            notes.append(f"{name} with trained weights: none registered yet")
        else:
            log(f"{name}: trained weights")
            try:
                origin = sources[0].origin or "trained"
                add(name, origin, estimate(left, name, allow_unpinned=allow_unpinned))
                log(f"{name}: trained weights, mirrored average")
                add(f"{name}, mirrored average (flip=True)", origin,
                    estimate(left, name, allow_unpinned=allow_unpinned, flip=True))
            except UnpinnedSourceError:
                notes.append(f"{name} with trained weights: not measured; its publisher gives "
                             "no hash for the file: --allow-unpinned uses it as downloaded")
            except (WeightError, OSError) as e:  # not cached and offline, no network, ...
                notes.append(f"{name} with trained weights: not measured here ({e})")
        log(f"{name}: random weights")
        add(name, "random init (seed 0)", estimate(left, name, pretrained=False))
    log("baselines")
    rows.append(dict(constant_row(disparity, valid), prediction="constant (mean disparity)",
                     weights="-"))
    add("ramp (lower rows nearer)", "-", ramp(disparity.shape))
    return rows, notes


def table(rows: Sequence[dict], notes: Sequence[str] = (), *, valid_pixels: Optional[int] = None,
          total_pixels: Optional[int] = None, stamp: Optional[str] = None,
          hardware: Optional[str] = None) -> str:
    """The Markdown evaluation table with its header (data, method, date,
    hardware) and the notes as a list below it.

    Args:
        rows: rows from ``evaluate_models``.
        notes: notes from ``evaluate_models``.
        valid_pixels: pixels with ground truth, for the header (with
            ``total_pixels``).
        total_pixels: pixels of the image, for the header.
        stamp: the measurement time as text; default now, in UTC.
        hardware: the hardware as text; default this machine's CPU, core
            count and jax device.

    Returns:
        str: the Markdown text, ending in a newline.
    """
    stamp = stamp or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    coverage = (f"{valid_pixels:,} of {total_pixels:,} pixels have ground truth. "
                if valid_pixels is not None and total_pixels else "")
    lines = [
        "Middlebury 2014 Motorcycle, left image (scikit-image `stereo_motorcycle`, 741x500, "
        f"1/4 resolution). {coverage}Each prediction is aligned to the ground-truth "
        "disparity by least squares (scale, shift); AbsRel and the share of pixels whose "
        f"depth ratio max(d/d*, d*/d) exceeds 1.25 are computed on depth = {BASELINE_MM} mm "
        f"x {FOCAL_PX} px / (disparity + {DOFFS_PX} px). Lower is better for both. Aligned "
        "disparities below 1/10 of the smallest true one are raised to it (clipped px).",
        "",
        f"Measured {stamp} on {hardware or _hardware()}.",
        "",
        "| prediction | weights | AbsRel | δ > 1.25 (%) | scale | shift (px) | clipped px |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['prediction']} | {r['weights']} | {r['abs_rel']:.3f} "
                     f"| {r['bad_1_25']:.1f} | {r['scale']:.4g} | {r['shift']:.4g} "
                     f"| {r.get('clipped_pixels', 0):,} |")
    if notes:
        lines.append("")
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line of ``python -m zoo.depth.middlebury``: prints the table and
    optionally writes it to ``--out``.

    Args:
        argv: the arguments (``--models``, ``--out``, ``--allow-unpinned``);
            default ``sys.argv[1:]``.

    Returns:
        int: the exit status: 0, or 2 after a one-line error on stderr
        (an unknown or non-depth model, unfetchable weights, ...).
    """
    p = argparse.ArgumentParser(
        prog="python -m zoo.depth.middlebury",
        description="Evaluate depth models on Middlebury 2014 Motorcycle (scikit-image's "
                    "stereo_motorcycle): AbsRel and δ > 1.25 after least-squares alignment, "
                    "beside random weights and trivial baselines.",
        epilog="examples:\n  python -m zoo.depth.middlebury\n"
               "  python -m zoo.depth.middlebury --models midas_small_lite0 --out depth.md\n"
               "  python -m zoo.depth.middlebury --models midas_small --allow-unpinned   # online\n"
               "\nA model whose trained weights cannot be had (not registered yet, or "
               "offline) gets\na note instead of its row; its random-weights row is still "
               "measured.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", help="comma-separated depth models (default: every registered "
                                    "one)")
    p.add_argument("--out", metavar="FILE", help="also write the table to FILE (Markdown)")
    p.add_argument("--allow-unpinned", action="store_true",
                   help="accept weights whose publisher gives no hash (midas_small's official "
                        "ones), as downloaded")
    args = p.parse_args(argv)

    from zoo.cli import run_reporting_errors

    return run_reporting_errors(p.prog, _main, args)


def _main(args) -> int:
    from zoo.depth.inference import _depth_spec

    if args.models:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        for m in models:
            _depth_spec(m)  # unknown names and non-depth models fail here, by name
    else:
        models = depth_models()
    if not models:
        raise ValueError("no depth model is registered (zoo list shows the models)")
    log = (lambda s: print(f"evaluating {s}", file=sys.stderr, flush=True))
    rows, notes = evaluate_models(models, allow_unpinned=args.allow_unpinned, log=log)
    _, disparity, valid = load()
    text = table(rows, notes, valid_pixels=int(valid.sum()), total_pixels=valid.size)
    print(text, end="")
    if args.out:
        from zoo.atomic import write_atomic

        print(f"wrote {write_atomic(args.out, text)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
