"""``zoo actions``: actions found in video files by a trained TALNet, with a
timeline picture per video."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zoo.cli import add_command

EXAMPLES = ("examples:\n"
            "  zoo actions match.mp4 --checkpoint runs/talnet_video --out actions/\n"
            "  zoo actions clips/*.mp4 --checkpoint runs/talnet_video --threshold 0.3 --json\n"
            "\nPrints the actions found in each video (start and end in seconds, class, score)\n"
            "and writes <video>_actions.png, a timeline of them. The run must be a TALNet\n"
            "trained on features of the same backbone (its run.json says which).")


def cmd_actions(args) -> int:
    """Runs ``zoo actions``: detects actions in each video, writes its timeline, prints them.

    Every timeline path is checked before any video is read.

    Args:
        args: the ``argparse.Namespace`` of ``zoo actions`` (``videos``,
            ``checkpoint``, ``out``, ``threshold``, ``backbone``, ``fps``,
            ``stride``, ``json``, ``overwrite``).

    Returns:
        int: the exit status, 0.

    Raises:
        ValueError: when a ``<video>_actions.png`` already exists in
            ``--out`` and ``--overwrite`` is not given (and, from
            ``detect_video``, when the run is not a TALNet on features of
            this backbone).
    """
    from zoo.actions.video import detect_video, plot_timeline

    out = Path(args.out)
    plan = [(Path(v), out / f"{Path(v).stem}_actions.png") for v in args.videos]
    existing = [str(png) for _, png in plan if png.exists()]
    if existing and not args.overwrite:
        raise ValueError(f"{', '.join(existing[:3])} already exist(s); pass --overwrite to "
                         "replace, or choose another --out")
    rows = []
    for video, png in plan:
        feats, found = detect_video(video, args.checkpoint, backbone=args.backbone,
                                    fps=args.fps, stride=args.stride,
                                    score_threshold=args.threshold,
                                    progress=sys.stderr.isatty())
        plot_timeline(found, feats.duration, png, title=video.name)
        rows.append({"video": str(video), "duration": feats.duration, "timeline": str(png),
                     "actions": [{"start": s, "end": e, "label": c, "score": p}
                                 for s, e, c, p in found]})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print(f"{r['video']} ({r['duration']:.1f} s): {len(r['actions'])} action(s) -> "
              f"{r['timeline']}")
        for a in r["actions"]:
            print(f"  {a['start']:8.2f} - {a['end']:8.2f} s  {a['label']}  {a['score']:.2f}")
    return 0


def register(sub) -> None:
    """Adds ``zoo actions`` to the ``zoo`` command's subparsers (the
    ``zoo.commands`` entry point).

    Args:
        sub: the subparsers object of the ``zoo`` parser
            (``argparse.ArgumentParser.add_subparsers()``).
    """
    s = add_command(sub, "actions", "Find actions in video files with a trained TALNet; print "
                                    "them and draw their timeline.", EXAMPLES)
    s.add_argument("videos", nargs="+", help="video files (anything FFmpeg reads)")
    s.add_argument("--checkpoint", metavar="RUN", required=True,
                   help="a `zoo train` work directory of a TALNet trained on video features")
    s.add_argument("--out", default=".", help="folder for the timelines (default: here)")
    s.add_argument("--threshold", type=float, default=0.1,
                   help="lowest class score kept (default 0.1)")
    s.add_argument("--backbone", help="feature backbone (default: the run's)")
    s.add_argument("--fps", type=float, help="frames sampled per second (default: the run's)")
    s.add_argument("--stride", type=int, help="frames per feature step (default: the run's)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--overwrite", action="store_true", help="replace existing timelines")
    s.set_defaults(func=cmd_actions)
