"""``zoo facemesh``: faces and their 468-point mesh, drawn over the images."""

from __future__ import annotations

import json
from pathlib import Path

from zoo.cli import add_command, image_sources, sample_image

EXAMPLES = ("examples:\n  zoo facemesh --example astronaut --out overlays/\n"
            "  zoo facemesh photo.jpg selfies/ --out overlays/ --json\n"
            "  zoo facemesh group_photo.jpg --detector pyramid --out overlays/   # small faces\n"
            "\nWrites <image>_facemesh.png per image: the 468 landmarks (green), the face box\n"
            "(red) and the 6 detector keypoints (yellow). BlazeFace short range + MediaPipe's\n"
            "face mesh, weights from the mediapipe==0.10.21 wheel (fetched once).")


def cmd_facemesh(args) -> int:
    """Runs ``zoo facemesh``: writes one overlay per image and prints a summary.

    Args:
        args: the ``argparse.Namespace`` of ``zoo facemesh`` (``images``,
            ``out``, ``example``, ``json``, ``detector``).

    Returns:
        int: the exit status, 0.
    """
    from zoo.face import write_overlays
    from zoo.images import read_image

    inputs = [(label, read_image(src) if isinstance(src, Path) else sample_image(src))
              for label, src in image_sources(args.images, args.example)]
    rows = write_overlays(inputs, args.out, detector=args.detector)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        scores = ", ".join(f"{f['score']:.2f}" for f in r["faces"])
        print(f"{r['image']}: {len(r['faces'])} face(s) {f'(scores {scores}) ' if scores else ''}"
              f"-> {r['overlay']}")
    return 0


def register(sub) -> None:
    """Adds ``zoo facemesh`` to the ``zoo`` command's subparsers (the
    ``zoo.commands`` entry point).

    Args:
        sub: the subparsers object of the ``zoo`` parser
            (``argparse.ArgumentParser.add_subparsers()``).
    """
    from zoo.face import DETECTOR_MODES

    s = add_command(sub, "facemesh", "Find faces and their 468-point mesh; write PNG overlays.",
                    EXAMPLES)
    s.add_argument("images", nargs="*", help="image files (JPEG, PNG, ...) or folders of them")
    s.add_argument("--out", required=True, help="folder for the overlays (created if needed)")
    s.add_argument("--example", action="append", metavar="NAME",
                   help="a scikit-image sample photo: astronaut (a face), chelsea, coffee, rocket")
    s.add_argument("--json", action="store_true", help="machine-readable summary")
    s.add_argument("--detector", default="short_range", choices=DETECTOR_MODES,
                   help="short_range (faces filling a selfie, default), full_range (MediaPipe's "
                        "192x192 detector for faces further away) or pyramid (the short-range "
                        "detector over image tiles: small faces in large photos, slower)")
    s.set_defaults(func=cmd_facemesh)
