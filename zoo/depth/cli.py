"""``zoo depth``: depth maps and portrait-mode (bokeh) pictures of images."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from zoo.cli import (add_allow_unpinned, add_command, image_sources, output_plan,
                     refuse_overwrite, sample_image)

EXAMPLES = ("examples:\n"
            "  zoo depth photo.jpg --out depth/\n"
            "  zoo depth photo.jpg --bokeh --focus 320,240 --out depth/\n"
            "  zoo depth --example motorcycle --example astronaut --bokeh --out depth/\n"
            "  zoo depth photo.jpg --model midas_small --allow-unpinned   # MiDaS's own weights\n"
            "  zoo depth photos/ --checkpoint runs/depth --out depth/   # a zoo train run\n"
            "  zoo depth photo.jpg --untrained   # random weights: the pipeline, no real depth\n"
            "\nWrites <image>_depth.png per image (relative inverse depth, inferno colours: near\n"
            "bright, far dark) and with --bokeh <image>_bokeh.png: the subject at --focus X,Y\n"
            "(pixels; default the centre) sharp, the rest blurred by a lens-like disc growing\n"
            "with the depth difference. Existing files are not replaced without --overwrite.\n"
            "midas_small's official weights have no published hash: --allow-unpinned uses\n"
            "them as downloaded.")


DEPTH_EXAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")


def _depth_example(name: str):
    if name == "motorcycle":  # Middlebury 2014, the left image of the stereo pair
        import skimage.data

        return skimage.data.stereo_motorcycle()[0]
    return sample_image(name)


def _parse_focus(text: Optional[str]):
    if text is None:
        return None
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--focus {text!r}: expected X,Y in pixels, e.g. 320,240") from None
    return x, y


def cmd_depth(args) -> int:
    """Runs ``zoo depth``: writes a depth picture (and with ``--bokeh`` a
    portrait-mode picture) per image.

    Options and weights are checked before any image is read.

    Args:
        args: the ``argparse.Namespace`` of ``zoo depth`` (``images``,
            ``model``, ``checkpoint``, ``untrained``, ``out``, ``bokeh``,
            ``focus``, ``strength``, ``example``, ``no_flip``,
            ``allow_unpinned``, ``overwrite``).

    Returns:
        int: the exit status, 0.

    Raises:
        ValueError: for ``--focus`` or ``--strength`` without ``--bokeh``, a
            malformed or out-of-image focus, a negative strength,
            ``--checkpoint`` with ``--model`` or ``--untrained``, an unknown
            example, weights without a hash and no ``--allow-unpinned``, or
            files that exist without ``--overwrite``.
    """
    from rich.progress import Progress

    from zoo.atomic import write_atomic
    from zoo.images import png_bytes, read_image
    from zoo.depth.inference import as_rgb, estimate, resolve
    from zoo.depth.pictures import bokeh, colorize

    focus = _parse_focus(args.focus)
    if (focus is not None or args.strength is not None) and not args.bokeh:
        raise ValueError("--focus and --strength are for --bokeh pictures")
    strength = 1.0 if args.strength is None else args.strength
    if not strength >= 0:
        raise ValueError(f"--strength {strength}: expected a value >= 0")
    if args.checkpoint and (args.untrained or args.model):
        raise ValueError("--checkpoint RUN uses that run's model and weights: drop --model and "
                         "--untrained")
    bad = [e for e in args.example or () if e not in DEPTH_EXAMPLES]
    if bad:
        raise ValueError(f"--example {bad[0]}: use {', '.join(DEPTH_EXAMPLES)}")
    sources = image_sources(args.images, args.example)
    out = Path(args.out)
    kinds = ("depth", "bokeh") if args.bokeh else ("depth",)
    plan = output_plan(sources, out, {kind: kind for kind in kinds})
    if not args.overwrite:
        refuse_overwrite(plan)
    options = dict(model=args.model or "midas_small_lite0", pretrained=not args.untrained,
                   run=args.checkpoint, allow_unpinned=args.allow_unpinned)
    from zoo.weights.errors import UnpinnedSourceError

    try:
        name, _, _ = resolve(**options)  # weights load (or fail) before any image is read
    except UnpinnedSourceError:
        raise ValueError(f"{options['model']}: its publisher gives no hash for the weights, so "
                         "the zoo cannot verify the file; --allow-unpinned uses it as "
                         "downloaded") from None
    tty = sys.stderr.isatty()
    with Progress(transient=True, disable=not tty) as bar:
        task = bar.add_task("depth", total=len(plan))
        for label, src, paths in plan:
            bar.update(task, description=f"{name}: {label}")
            image = read_image(src) if isinstance(src, Path) else _depth_example(src)
            rgb = as_rgb(image, label)
            h, w = rgb.shape[:2]
            if focus is not None and not (0 <= focus[0] <= w - 1 and 0 <= focus[1] <= h - 1):
                raise ValueError(f"{label}: --focus {args.focus} is outside the {w}x{h} image "
                                 f"(x in 0-{w - 1}, y in 0-{h - 1})")
            depth = estimate(rgb, **options, flip=not args.no_flip)
            write_atomic(paths["depth"], png_bytes(colorize(depth)))
            line = f"{label} -> {paths['depth']}"
            if args.bokeh:
                picture = bokeh(rgb, depth, focus=focus, strength=strength)
                write_atomic(paths["bokeh"], png_bytes(picture))
                line += f", {paths['bokeh']}"
            bar.advance(task)
            print(line, flush=True)
    return 0


def register(sub) -> None:
    """Adds ``zoo depth`` to the ``zoo`` command's subparsers (the ``zoo.commands``
    entry point).

    Args:
        sub: the subparsers object of the ``zoo`` parser
            (``argparse.ArgumentParser.add_subparsers()``).
    """
    s = add_command(sub, "depth", "Estimate depth; write colour-mapped depth maps and "
                                  "portrait-mode (bokeh) pictures.", EXAMPLES)
    s.add_argument("images", nargs="*", help="image files (JPEG, PNG, ...) or folders of them")
    s.add_argument("--model", help="a depth model (default: midas_small_lite0; midas_small "
                                   "is MiDaS v2.1 small with its official weights)")
    s.add_argument("--checkpoint", metavar="RUN",
                   help="a `zoo train` work directory: its model and best weights")
    s.add_argument("--untrained", action="store_true",
                   help="random weights (seed 0): the pipeline without a trained model; the "
                        "depth means nothing")
    s.add_argument("--out", default=".", help="folder for the pictures (default: here; created "
                                              "if needed)")
    s.add_argument("--bokeh", action="store_true",
                   help="also write <image>_bokeh.png, portrait mode")
    s.add_argument("--focus", metavar="X,Y",
                   help="with --bokeh: the point to keep sharp, in pixels (default: the centre)")
    s.add_argument("--strength", type=float, metavar="S",
                   help="with --bokeh: blur radius for the whole depth range, in 1/40 of the "
                        "longer side (default 1)")
    s.add_argument("--example", action="append", metavar="NAME",
                   help="a sample photo: motorcycle (Middlebury's), astronaut, chelsea, coffee, "
                        "rocket")
    s.add_argument("--no-flip", action="store_true",
                   help="one pass per image; by default the prediction is averaged with the "
                        "mirrored image's (zoo.depth.estimate(flip=True): twice the compute, "
                        "fewer errors)")
    add_allow_unpinned(s)
    s.add_argument("--overwrite", action="store_true", help="replace existing pictures")
    s.set_defaults(func=cmd_depth)
