"""``zoo train``: the command-line face of ``zoo.train.fit``, and
``zoo train plot RUN``."""

from __future__ import annotations

import argparse
import dataclasses
import sys

EXAMPLES = """examples:
  zoo train --model mobilenet_v2 --pretrained --data digits --workdir runs/digits
  zoo train --model efficientnet_lite0 --pretrained --data lfw_subset --freeze backbone \\
            --epochs 5 --workdir runs/lfw-probe          # linear probe
  zoo train --model mobilenet_v2 --data folder:~/photos --image-size 160 --optimizer adamw \\
            --lr 1e-3 --epochs 20 --ema 0.999 --workdir runs/photos
  zoo train --model midas_small_lite0 --pretrained --data depth_scenes --workdir runs/depth
  zoo train plot runs/digits                             # runs/digits/curves.png
  zoo predict photo.png --checkpoint runs/digits         # its own class names
  zoo convert --checkpoint runs/digits --to tflite       # to a phone

--data: digits (scikit-learn's 1,797 8x8 handwritten digits), lfw_subset
(scikit-image's 100 faces and 100 non-faces), folder:PATH (one sub-folder per
class; train/ and test/ sub-folders are used as splits when present, otherwise
20 % is held out by seed), tfds:NAME (any TFDS dataset; needs a network to
prepare); for depth models depth_scenes (rendered scenes with exact depth;
depth_scenes/N for its first N). Datasets are built once into --data-dir
($ZOO_DATA, default ~/.cache/zoo/datasets).

The task follows the model: classifiers learn labels (cross-entropy, top-1),
depth models (zoo list: task depth) relative inverse depth (MiDaS's
scale-and-shift-invariant loss; AbsRel and bad pixels after alignment).

Rerunning the same command in the same --workdir resumes from the last
checkpoint and ends where an unbroken run ends. The work directory holds
run.json (the settings), checkpoints/ (resumable), best -> best-N (the best
evaluated variables: zoo.restore(WORKDIR + "/best")), metrics.jsonl and
tensorboard/ (tensorboard --logdir WORKDIR)."""


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand, one option per ``TrainConfig`` field
    with the same defaults, to ``sub``.

    Args:
        sub: the subparsers object of a parser
            (``argparse.ArgumentParser().add_subparsers()``).

    Returns:
        argparse.ArgumentParser: the ``train`` parser, whose ``func`` default
        is ``cmd_train``.
    """
    from zoo.train.config import TrainConfig

    d = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    s = sub.add_parser("train", help="Fine-tune a model (or `zoo train plot RUN`).",
                       description="Fine-tune a zoo classifier or depth model on a dataset: "
                                   "optax, Orbax checkpoints (resumable), grain data, every "
                                   "device.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("action", nargs="?", default="run", metavar="run|plot",
                   help="run (default) trains; plot draws the curves of finished runs")
    s.add_argument("runs", nargs="*", metavar="RUN", help="plot: work directories")
    g = s.add_argument_group("what to train")
    g.add_argument("--recipe", help="a recipe with a stated result (see --list-recipes); "
                                    "other options given override its settings")
    g.add_argument("--list-recipes", action="store_true",
                   help="print the recipes with their stated results and exit")
    g.add_argument("--model", help="a classifier or depth model of the registry (zoo list)")
    g.add_argument("--pretrained", action="store_true",
                   help="start from the model's pretrained ImageNet weights (a new head; "
                        "for depth models the backbone's weights in the encoder)")
    g.add_argument("--data", help="digits, lfw_subset, folder:PATH or tfds:NAME; "
                                  "depth_scenes for depth models")
    g.add_argument("--data-dir", help="where datasets are built ($ZOO_DATA)")
    g.add_argument("--workdir", help="the run's directory; rerun to resume")
    g.add_argument("--num-classes", type=int,
                   help="classifier size (default: the dataset's number of classes)")
    g.add_argument("--freeze", default=d["freeze"], choices=("none", "backbone"),
                   help="backbone: linear probe (only the classifier learns, BatchNorm "
                        "frozen); none: full fine-tune (default)")
    g = s.add_argument_group("how long")
    g.add_argument("--epochs", type=int, help="passes over the training split (default 10)")
    g.add_argument("--steps", type=int, help="batches instead of epochs")
    g.add_argument("--batch-size", type=int, default=d["batch_size"],
                   help=f"global batch, split over the devices (default {d['batch_size']})")
    g.add_argument("--image-size", type=int, help="training resolution (default: 96 for digits, 128 for "
                        "lfw_subset, 192 for depth_scenes, the model spec's otherwise)")
    g = s.add_argument_group("optimisation")
    g.add_argument("--optimizer", default=d["optimizer"], choices=("sgd", "adamw"),
                   help="SGD with Nesterov momentum 0.9 (default), or AdamW")
    g.add_argument("--lr", type=float, help="peak learning rate (default 0.05 for sgd, 1e-3 "
                                            "for adamw, per 64 images)")
    g.add_argument("--warmup-steps", type=int, help="linear warmup (default 5%% of the run), "
                                                   "then cosine decay to 0")
    g.add_argument("--weight-decay", type=float, default=d["weight_decay"],
                   help=f"on kernels only, not BatchNorm or biases (default {d['weight_decay']})")
    g.add_argument("--label-smoothing", type=float, default=d["label_smoothing"],
                   help=f"(default {d['label_smoothing']})")
    g.add_argument("--clip-norm", type=float, default=d["clip_norm"],
                   help=f"global gradient norm clip, 0 = off (default {d['clip_norm']})")
    g.add_argument("--accumulate", type=int, default=1,
                   help="gradient accumulation: one update per N batches (default 1)")
    g.add_argument("--ema", type=float, default=0.0,
                   help="parameter EMA decay, e.g. 0.999; evaluation and export use the EMA "
                        "(default 0: off)")
    g.add_argument("--dropout", type=float, help="before the classifier (default: the family's)")
    g.add_argument("--model-options", metavar="JSON",
                   help="builder options of the model as a JSON object, e.g. "
                        "'{\"towers\": \"single\", \"context\": false}' (talnet's ablations)")
    g.add_argument("--bn-momentum", type=float, default=d["bn_momentum"],
                   help="BatchNorm running-statistics momentum (default "
                        f"{d['bn_momentum']}; the checkpoints' 0.99 adapts too slowly for "
                        "short runs)")
    g.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                   help="compute dtype; parameters stay float32 (default float32)")
    g.add_argument("--seed", type=int, default=0, help="initialisation, data order, "
                                                      "augmentation, dropout (default 0)")
    g = s.add_argument_group("data")
    g.add_argument("--no-augment", dest="augment", action="store_false",
                   help="no random resized crop / flip")
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="horizontal flips (default: on, off for digits)")
    g.add_argument("--min-scale", type=float, default=d["min_scale"],
                   help=f"smallest random-crop area fraction (default {d['min_scale']})")
    g.add_argument("--photometric", type=float, default=d["photometric"], metavar="S",
                   help="depth models: random lighting, colour, blur and sensor noise of "
                        "strength S in [0, 1], so rendered pictures do not all look alike "
                        "(default 0: off)")
    g.add_argument("--workers", type=int, default=0,
                   help="loader worker processes (default 0: in this process)")
    g = s.add_argument_group("checkpoints and logs")
    g.add_argument("--save-every", type=int, default=d["save_every"],
                   help=f"steps between resumable checkpoints (default {d['save_every']})")
    g.add_argument("--keep", type=int, default=d["keep"],
                   help=f"resumable checkpoints kept, besides the best (default {d['keep']})")
    g.add_argument("--eval-every", type=int, help="steps between evaluations (default: an epoch)")
    g.add_argument("--log-every", type=int, default=d["log_every"],
                   help=f"steps between metric lines (default {d['log_every']})")
    g.add_argument("--devices", type=int, help="use the first N devices (default: all)")
    s.set_defaults(func=cmd_train)
    return s


def register(sub) -> None:
    """Adds ``zoo train`` to the ``zoo`` command's subparsers (the
    ``zoo.commands`` entry point).

    Args:
        sub: the subparsers object of the ``zoo`` parser
            (``argparse.ArgumentParser.add_subparsers()``).
    """
    add_parser(sub)


def cmd_train(args) -> int:
    """Runs ``zoo train``: plots runs, lists recipes, or trains (a recipe's
    settings overridden by the options given) and prints the best result.

    Args:
        args: the ``argparse.Namespace`` of ``add_parser``'s parser.

    Returns:
        int: the exit status, 0.

    Raises:
        ValueError: for ``plot`` without work directories, an unknown
            action, stray arguments, or training without ``--model``,
            ``--data`` and ``--workdir``.
    """
    if args.action == "plot":
        if not args.runs:
            raise ValueError("plot takes work directories: zoo train plot runs/digits")
        from zoo.train.plot import plot_run
        for run in args.runs:
            print(f"wrote {plot_run(run)}")
        return 0
    if args.action != "run":
        raise ValueError(f"unknown action {args.action!r}: `zoo train --model ... --data ... "
                         "--workdir ...` or `zoo train plot RUN`")
    if args.runs:
        raise ValueError(f"unexpected arguments {' '.join(args.runs)!r}")
    from zoo.train.recipes import RECIPES, get_recipe
    if args.list_recipes:
        for r in RECIPES.values():
            print(f"{r.name}\n  {r.description}\n  result: {r.result or 'not measured'}"
                  f"{f'  ({r.time}, {r.hardware})' if r.time else ''}")
        return 0
    if args.recipe:
        # The recipe's settings, then every option the command line changed.
        defaults = vars(add_parser(argparse.ArgumentParser().add_subparsers()).parse_args([]))
        given = {k: v for k, v in vars(args).items() if defaults.get(k, v) != v}
        for key, value in get_recipe(args.recipe).settings.items():
            if key not in given:
                setattr(args, key, value)
    missing = [f"--{k}" for k in ("model", "data", "workdir") if not getattr(args, k)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}: e.g. zoo train --model mobilenet_v2 "
                         "--pretrained --data digits --workdir runs/digits")
    from zoo.host_memory import keep_freed_host_memory
    from zoo.train import TrainConfig, fit

    keep_freed_host_memory()  # before JAX starts: steps stop page-faulting their buffers
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    result = fit(config)
    best = result.best or {}
    line = f"{result.workdir}: {result.steps} steps"
    if "top1" in best:
        line += f"; best top-1 {100 * best['top1']:.2f}% at step {best['step']}"
        line += f" ({result.workdir / 'best'})"
    elif "abs_rel" in best:
        line += (f"; best AbsRel {best['abs_rel']:.4f} (bad pixels {best['bad_1_25']:.2f}%) "
                 f"at step {best['step']} ({result.workdir / 'best'})")
    print(line, file=sys.stdout)
    return 0
