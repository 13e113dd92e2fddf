"""``zoo portrait``: portrait-mode pictures (the person sharp, the background
lens-blurred) of images."""

from __future__ import annotations

import sys
from pathlib import Path

from zoo.cli import add_command, image_sources, output_plan, refuse_overwrite, sample_image

EXAMPLES = ("examples:\n"
            "  zoo portrait photo.jpg --out portraits/\n"
            "  zoo portrait --example astronaut --strength 1.5 --out portraits/\n"
            "  zoo portrait photos/ --no-depth --out portraits/   # one blur for all\n"
            "\nWrites <image>_portrait.png per image (the person found by MediaPipe's selfie\n"
            "segmentation kept sharp, the background blurred by a lens-like disc growing with\n"
            "the depth behind the person) and <image>_mask.png (the refined person mask).\n"
            "Existing files are not replaced without --overwrite.")


def cmd_portrait(args) -> int:
    """Runs ``zoo portrait``: writes a portrait-mode picture and the refined
    person mask per image.

    Args:
        args: the ``argparse.Namespace`` of ``zoo portrait`` (``images``,
            ``out``, ``example``, ``no_depth``, ``strength``, ``overwrite``).

    Returns:
        int: the exit status, 0.

    Raises:
        ValueError: for a negative or non-finite ``--strength``, an unknown
            example, no images, or files that exist without ``--overwrite``.
    """
    import numpy as np
    from rich.progress import Progress

    import zoo.segment
    from zoo.atomic import write_atomic
    from zoo.depth.inference import as_rgb
    from zoo.images import png_bytes, read_image
    from zoo.portrait import portrait, refine_mask

    strength = args.strength
    if not (np.isfinite(strength) and strength >= 0):
        raise ValueError(f"--strength {strength}: expected a value >= 0")
    for e in args.example or ():
        sample_image(e)  # a bad name fails before any work
    sources = image_sources(args.images, args.example)
    out = Path(args.out)
    plan = output_plan(sources, out, {"portrait": "portrait", "mask": "mask"})
    if not args.overwrite:
        refuse_overwrite(plan)
    tty = sys.stderr.isatty()
    with Progress(transient=True, disable=not tty) as bar:
        task = bar.add_task("portrait", total=len(plan))
        for label, src, paths in plan:
            bar.update(task, description=f"portrait: {label}")
            image = read_image(src) if isinstance(src, Path) else sample_image(src)
            rgb = as_rgb(image, label)
            mask = refine_mask(rgb, zoo.segment.person(rgb if rgb.dtype == np.uint8
                                                       else rgb / 255.0))
            picture = portrait(rgb, depth=not args.no_depth, strength=strength, refine=False,
                               mask=mask)
            write_atomic(paths["portrait"], png_bytes(picture))
            write_atomic(paths["mask"], png_bytes(np.rint(mask * 255.0).astype(np.uint8)))
            bar.advance(task)
            print(f"{label} -> {paths['portrait']}, {paths['mask']}", flush=True)
    return 0


def register(sub) -> None:
    """Adds ``zoo portrait`` to the ``zoo`` command's subparsers (the
    ``zoo.commands`` entry point).

    Args:
        sub: the subparsers object of the ``zoo`` parser
            (``argparse.ArgumentParser.add_subparsers()``).
    """
    s = add_command(sub, "portrait", "Portrait mode: keep the person sharp, blur the "
                                     "background as a lens does.", EXAMPLES)
    s.add_argument("images", nargs="*", help="image files (JPEG, PNG, ...) or folders of them")
    s.add_argument("--out", default=".", help="folder for the pictures (default: here; created "
                                              "if needed)")
    s.add_argument("--example", action="append", metavar="NAME",
                   help="a sample photo: astronaut, chelsea, coffee, rocket")
    s.add_argument("--no-depth", action="store_true",
                   help="one blur radius for the whole background (default: the radius grows "
                        "with the depth behind the person, from the bundled depth model)")
    s.add_argument("--strength", type=float, default=1.0, metavar="S",
                   help="largest blur radius, in 1/40 of the longer side (default 1; 0: no blur)")
    s.add_argument("--overwrite", action="store_true", help="replace existing pictures")
    s.set_defaults(func=cmd_portrait)
