"""``zoo crop``: saliency-aware crops of images to given aspect ratios."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zoo.cli import add_command, image_sources, output_plan, refuse_overwrite, sample_image

EXAMPLES = ("examples:\n"
            "  zoo crop photo.jpg --aspect 16:9 --out crops/\n"
            "  zoo crop photos/ --aspect 9:16 --aspect 1:1 --out crops/\n"
            "  zoo crop --example chelsea --aspect 21:9 --json\n"
            "\nWrites <image>_crop_WxH.png per image and aspect (16:9 -> _crop_16x9.png): the\n"
            "largest box of that aspect placed where the classifier's class activation map\n"
            "is strongest, never cutting a detected face. Prints each box as top, left,\n"
            "height, width in pixels (--json: one JSON object per line). Existing files are\n"
            "not replaced without --overwrite.")


def _aspect_tag(text: str) -> str:
    """File-name form of an aspect: "16:9" -> "16x9", "1.5" -> "1.5"."""
    return "x".join(p.strip() for p in text.replace("/", ":").replace("x", ":").split(":"))


def cmd_crop(args) -> int:
    """Runs ``zoo crop``: writes one crop per image and aspect, prints each box.

    Every aspect and ``--example`` name is checked before any model loads.

    Args:
        args: the ``argparse.Namespace`` of ``zoo crop`` (``images``,
            ``aspect``, ``out``, ``example``, ``model``, ``no_faces``,
            ``json``, ``overwrite``).

    Returns:
        int: the exit status, 0.
    """
    from rich.progress import Progress

    from zoo.atomic import write_atomic
    from zoo.crop import parse_aspect, saliency, smart_crop
    from zoo.images import png_bytes, read_image

    aspects = args.aspect or ["16:9"]
    for a in aspects:
        parse_aspect(a)  # a bad aspect fails before any model loads
    for e in args.example or ():
        sample_image(e)  # names the valid examples on a bad one
    sources = image_sources(args.images, args.example)
    out = Path(args.out)
    plan = output_plan(sources, out, {a: f"crop_{_aspect_tag(a)}" for a in aspects})
    if not args.overwrite:
        refuse_overwrite(plan)
    tty = sys.stderr.isatty()
    with Progress(transient=True, disable=not tty) as bar:
        task = bar.add_task("crop", total=len(plan))
        for label, src, paths in plan:
            bar.update(task, description=f"crop: {label}")
            image = read_image(src) if isinstance(src, Path) else sample_image(src)
            sal = saliency(image, args.model)  # once per image, shared by every aspect
            for a, path in paths.items():
                top, left, h, w = smart_crop(image, a, faces=not args.no_faces,
                                             model=args.model, saliency_map=sal)
                write_atomic(path, png_bytes(image[top:top + h, left:left + w]))
                if args.json:
                    print(json.dumps({"image": label, "aspect": a, "top": top, "left": left,
                                      "height": h, "width": w, "file": str(path)}), flush=True)
                else:
                    print(f"{label} {a}: top={top} left={left} height={h} width={w} -> {path}",
                          flush=True)
            bar.advance(task)
    return 0


def register(sub) -> None:
    """Adds ``zoo crop`` to the ``zoo`` command's subparsers (the ``zoo.commands``
    entry point).

    Args:
        sub: the subparsers object of the ``zoo`` parser
            (``argparse.ArgumentParser.add_subparsers()``).
    """
    s = add_command(sub, "crop", "Crop images to aspect ratios around their subject "
                                 "(class activation saliency, faces kept whole).", EXAMPLES)
    s.add_argument("images", nargs="*", help="image files (JPEG, PNG, ...) or folders of them")
    s.add_argument("--aspect", action="append", metavar="W:H",
                   help="target aspect ratio, repeatable: 16:9, 9:16, 1:1, 1.85 "
                        "(default: 16:9)")
    s.add_argument("--out", default=".", help="folder for the crops (default: here; created "
                                              "if needed)")
    s.add_argument("--example", action="append", metavar="NAME",
                   help="a sample photo: astronaut, chelsea, coffee, rocket")
    s.add_argument("--model", default="mobilenet_v2",
                   help="classifier for the saliency map: mobilenet_v2 (default) or "
                        "efficientnet_lite0")
    s.add_argument("--no-faces", action="store_true",
                   help="skip face detection (faces may then be cut)")
    s.add_argument("--json", action="store_true", help="print one JSON object per crop")
    s.add_argument("--overwrite", action="store_true", help="replace existing crops")
    s.set_defaults(func=cmd_crop)
