"""The ``zoo`` command line.

    zoo list [PATTERN]        models with parameters, multiply-adds, resolution
    zoo info NAME             one model's spec, counts and published figures
    zoo predict IMAGE...      classify images with a pretrained model
    zoo convert-weights SRC   a weight file or training run -> Orbax or safetensors

are defined here. Every other subcommand (``zoo convert``, ``zoo facemesh``,
``zoo depth``, ``zoo actions``, ``zoo bench``, ``zoo train``) is a plug-in,
found through the entry-point group ``zoo.commands`` of the installed
distributions, so this module imports none of the packages that define them::

    [project.entry-points."zoo.commands"]
    depth = "zoo.depth.cli:register"
    convert = "conversions.cli:register [convert]"

An entry point's name is the subcommand's name and its object a callable
``register(subparsers)`` that adds the subcommand (``add_command`` gives it
the zoo's help layout) with a ``func`` default: the parsed arguments in, the
exit status out. A ``preparse`` default, ``argv -> exit status or None``, sees
the arguments after the subcommand's name before they are parsed and may
take over (``zoo bench --train`` is another program with options of its own).
The ``[extra]`` of an entry point names the optional extra its command needs:
if the plug-in cannot be imported, or its command meets a module that is not
installed, ``zoo NAME`` prints one line naming that extra and exits with 2,
and the other subcommands and ``zoo --help`` work as usual. A plug-in's
module imports only what its arguments need; the work imports inside the
command function.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

# The command bodies (``cmd_*``) are reached through ``zoo NAME``, not called.
__all__ = ["COMMAND_GROUP", "EXAMPLES", "HELP_ORDER", "IMAGE_SUFFIXES", "Requirement",
           "add_allow_unpinned", "add_command", "add_plugin", "csv_list", "image_paths",
           "image_sources", "installed_commands", "is_missing_module", "main",
           "offer_allow_unpinned", "output_plan", "parser", "published_table",
           "refuse_overwrite", "run_reporting_errors", "sample_image"]

COMMAND_GROUP = "zoo.commands"
# Where each subcommand goes in ``zoo --help``; plug-ins not named here
# follow, alphabetically.
HELP_ORDER = ("list", "info", "predict", "convert-weights", "convert", "facemesh", "depth",
              "portrait", "crop", "actions", "bench", "train")

EXAMPLES = {
    "list": "examples:\n  zoo list\n  zoo list 'efficientnet_lite*'\n  zoo list --json\n"
            "  zoo list --published      # ours vs published (the docs' catalogue page)",
    "info": "examples:\n  zoo info efficientnet_b0\n  zoo info mobilenet_v2 --width 0.5 --resolution 160",
    "predict": "examples:\n  zoo predict cat.jpg\n  zoo predict cat.jpg --model mobilenet_v2\n"
               "  zoo predict photos/ --model mobilenet_v2 --top 3 --json\n"
               "  zoo predict --example chelsea --example coffee   # scikit-image's sample photos\n"
               "  zoo predict digit.png --checkpoint runs/digits   # a fine-tuned run (zoo train)",
    "convert-weights": "examples:\n"
                       "  zoo convert-weights pretrained --model efficientnet_lite0 --out ckpt/lite0\n"
                       "  zoo convert-weights mobilenet_v2-b0353104.pth --model mobilenet_v2 --out ckpt/mnv2\n"
                       "  zoo convert-weights efficientnetb0.h5 --model efficientnet_b0 --out ckpt/b0\n"
                       "  zoo convert-weights runs/depth --out lite0_depth.safetensors --dtype float16",
}


def _counts(name: str, width: Optional[float] = None, resolution: Optional[int] = None):
    from zoo.counting import analytic_counts
    from zoo.registry import build, get_spec

    spec = get_spec(name, width=width, resolution=resolution)
    return spec, analytic_counts(build(name, width=width), spec.input_hw)


def _rows(names: Sequence[str], progress: bool):
    from rich.progress import Progress

    rows = []
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("counting", total=len(names))
        for name in names:
            bar.update(task, description=f"counting {name}")
            spec, counts = _counts(name)
            where = ", ".join(w.origin.split(" ")[0] + (" (offline)" if w.package or w.bundled else "")
                              + (" (unpinned)" if w.unpinned else "") for w in spec.weights)
            h, w = spec.input_hw
            rows.append({"name": name, "params": counts.params, "macs": counts.macs,
                         "resolution": h if h == w else f"{h}x{w}", "pretrained": where})
            bar.advance(task)
    return rows


def cmd_list(args) -> int:
    """``zoo list``: the table of models; 1 when none matches the pattern."""
    from zoo.registry import list_models

    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}; `zoo list` shows them all", file=sys.stderr)
        return 1
    rows = _rows(names, progress=sys.stderr.isatty())
    if args.published:
        print(published_table(rows))
        return 0
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    wide = max(22, *(len(r["name"]) + 1 for r in rows))
    print(f"{'name':<{wide}}{'params':>10}{'MACs':>10}{'input':>8}  pretrained weights from")
    for r in rows:
        print(f"{r['name']:<{wide}}{r['params'] / 1e6:>9.2f}M{r['macs'] / 1e6:>9.0f}M"
              f"{r['resolution']:>8}  {r['pretrained'] or '-'}")
    return 0


def published_table(rows) -> str:
    """Markdown: our counts against the published figures, with sources.
    Notes that explain a difference are numbered below the table; a figure
    the source does not publish is a dash.

    Args:
        rows: one dict per model with ``"name"`` (registered), ``"params"``
            and ``"macs"`` (our counts), as ``zoo list`` computes them;
            models whose spec publishes nothing are left out.

    Returns:
        The Markdown table and its numbered notes, one string.
    """
    from zoo.registry import get_spec

    lines = ["| model | params (ours) | published | diff | MACs (ours) | published | diff "
             "| top-1 | source |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    notes: list[str] = []
    for r in rows:
        p = get_spec(r["name"]).published
        if p is None:
            continue
        mark = ""
        if p.note:
            if p.note not in notes:
                notes.append(p.note)
            mark = f" [{notes.index(p.note) + 1}]"
        macs = (f"{p.macs / 1e6:,.0f}M | {r['macs'] / p.macs - 1:+.1%}" if p.macs is not None
                else "— | —")
        top1 = "—" if p.top1 is None else p.top1
        params = (f"{p.params / 1e6:.1f}M | {r['params'] / p.params - 1:+.1%}"
                  if p.params is not None else "— | —")
        lines.append(
            f"| {r['name']}{mark} | {r['params'] / 1e6:.2f}M | {params} "
            f"| {r['macs'] / 1e6:,.0f}M | {macs} "
            f"| {top1} | {p.source} |")
    lines.append("")
    lines += [f"[{i}] {n}  " for i, n in enumerate(notes, 1)]
    return "\n".join(lines)


def cmd_info(args) -> int:
    """``zoo info``: one model's spec, counts and published figures."""
    spec, counts = _counts(args.name, args.width, args.resolution)
    info = {
        "name": spec.name, "family": spec.family, "task": spec.task,
        "input_size": spec.input_size, "mean": spec.mean, "std": spec.std,
        "crop_fraction": round(spec.crop_fraction, 4), "interpolation": spec.interpolation,
        "num_classes": spec.num_classes, "padding": spec.padding, "bn_eps": spec.bn_eps,
        "config": dict(spec.config), "params": counts.params, "macs": counts.macs,
        "pretrained": [{k: v for k, v in w.__dict__.items() if v} for w in spec.weights],
        "license": spec.license,
    }
    if spec.published:
        p = spec.published
        info["published"] = {"params": p.params, "macs": p.macs, "top1": p.top1,
                             "metrics": dict(p.metrics), "source": p.source, "note": p.note}
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    for k, v in info.items():
        if k == "published":
            figures = ["params not published" if v["params"] is None
                       else f"params {v['params'] / 1e6:.1f}M",
                       "MACs not published" if v["macs"] is None
                       else f"MACs {v['macs'] / 1e6:.0f}M"]
            if v["top1"] is not None:
                figures.append(f"top-1 {v['top1']}%")
            print(f"{'published':<15}{', '.join(figures)}  ({v['source']})")
            if v["note"]:
                print(f"{'':<15}{v['note']}")
            width = max(map(len, v["metrics"]), default=0)
            for i, (metric, value) in enumerate(v["metrics"].items()):
                print(f"{'' if i else 'metrics':<15}{metric:<{width}}  {value}")
        elif k == "pretrained" and not v:
            print(f"{k:<15}none: no weight source (zoo.create gives random weights)")
        elif k == "pretrained":
            print(f"{k:<15}{v}")
            for w in spec.weights:
                if w.rebuild:
                    print(f"{'rebuild':<15}{w.rebuild}")
                if w.unpinned:
                    who = f"{w.origin}: " if len(spec.weights) > 1 else ""
                    print(f"{'weights':<15}{who}no published hash: pass --allow-unpinned or set "
                          "ZOO_ALLOW_UNPINNED=1 (the file is then used as downloaded, "
                          "unverified)")
        elif k in ("params", "macs"):
            print(f"{k:<15}{v:,}")
        else:
            print(f"{k:<15}{v}")
    return 0



IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def image_sources(images: Sequence[str], examples: Optional[Sequence[str]]
                  ) -> list[tuple[str, Any]]:
    """``(label, path or example name)`` for the image files and folders
    given (``image_paths``) and then each ``--example NAME``. Examples are
    checked by the command, which knows which it offers.

    Args:
        images: image files and folders from the command line.
        examples: the ``--example`` names, or None.

    Returns:
        ``(label, source)`` pairs, files first: a file's label is its path
        and its source a ``Path``; an example's label is ``example:NAME``
        and its source the name.

    Raises:
        ValueError: neither images nor examples were given, or a path is
            missing or a folder has no images (from ``image_paths``).
    """
    sources: list[tuple[str, Any]] = [(str(p), p) for p in image_paths(images)]
    sources += [(f"example:{e}", e) for e in examples or ()]
    if not sources:
        raise ValueError("give image files, folders or --example NAME")
    return sources


def output_plan(sources, out, names) -> list[tuple[str, Any, dict]]:
    """``(label, source, {key: path})`` per input image: ``sources`` are
    ``(label, path or example name)``, ``names`` maps each key to the
    file-name suffix written for it (``{"depth": "depth"}`` ->
    ``<stem>_depth.png`` in ``out``); inputs with the same stem get ``_2``,
    ``_3``... ``refuse_overwrite(plan)`` then checks, before any model
    loads, that none of the files exists.

    Args:
        sources: ``(label, source)`` pairs as ``image_sources`` gives them.
        out: the output folder.
        names: output key -> file-name suffix.

    Returns:
        ``(label, source, {key: Path})`` per source, in order.
    """
    plan, used = [], set()
    for label, src in sources:
        stem = Path(label.split(":", 1)[-1]).stem or "image"
        base, k = stem, 1
        while base in used:
            k += 1
            base = f"{stem}_{k}"
        used.add(base)
        plan.append((label, src, {key: Path(out) / f"{base}_{suffix}.png"
                                  for key, suffix in names.items()}))
    return plan


def refuse_overwrite(plan) -> None:
    """A one-line ValueError if any file of an ``output_plan`` exists.

    Args:
        plan: what ``output_plan`` returned.

    Raises:
        ValueError: some of the planned files exist (up to three are named,
            with the fix: ``--overwrite`` or another ``--out``).
    """
    existing = [str(p) for _, _, paths in plan for p in paths.values() if p.exists()]
    if existing:
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        verb = "exists" if len(existing) == 1 else "exist"
        raise ValueError(f"{', '.join(existing[:3])}{more} already {verb}; pass --overwrite to "
                         "replace them, or choose another --out")


def image_paths(items: Sequence[str]) -> list[Path]:
    """Image files and folders (their images, sorted) -> the image files.

    Args:
        items: paths of files (taken whatever their suffix) or folders
            (their files with a suffix in ``IMAGE_SUFFIXES``, not recursive).

    Returns:
        The files, in the order given, each folder's sorted by name.

    Raises:
        ValueError: a path does not exist, or a folder holds no images.
    """
    paths = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"folder {p} has no images ({', '.join(IMAGE_SUFFIXES)})")
            paths += found
        elif p.exists():
            paths.append(p)
        else:
            raise ValueError(f"no such file or folder: {p}")
    return paths


def sample_image(name: str):
    """A scikit-image sample photo for ``--example NAME``: (H, W, 3) uint8.

    Needs scikit-image installed.

    Args:
        name: "astronaut", "chelsea", "coffee" or "rocket".

    Returns:
        (H, W, 3) uint8 RGB array.

    Raises:
        ValueError: ``name`` is not one of the four.
    """
    import skimage.data

    if name not in ("astronaut", "chelsea", "coffee", "rocket"):
        raise ValueError(f"--example {name}: use astronaut, chelsea, coffee or rocket")
    return getattr(skimage.data, name)()


def cmd_predict(args) -> int:
    """``zoo predict``: the top classes of each image."""
    import jax

    from zoo.images import read_image
    from zoo.preprocess import decode_predictions, preprocess
    from zoo.registry import create, get_spec

    if not args.checkpoint:
        spec = get_spec(args.model)
        if spec.task != "classification":
            if spec.task.startswith("face"):
                hint = " (zoo facemesh IMAGE... runs the face pipeline)"
            elif spec.task == "depth":
                hint = f" (zoo depth IMAGE --model {args.model} estimates depth)"
            else:
                hint = ""
            raise ValueError(f"--model {args.model} is a {spec.task} model, not an ImageNet "
                             f"classifier{hint}")
    inputs = [(label, read_image(src) if isinstance(src, Path) else sample_image(src))
              for label, src in image_sources(args.images, args.example)]
    labels, name = None, args.model
    if args.checkpoint:
        from zoo.train import load_run
        model, variables, meta = load_run(args.checkpoint)
        spec = get_spec(meta["model"], resolution=meta["image_size"])
        labels, name = meta["class_names"], f"{meta['model']} @ {args.checkpoint}"
    else:
        model, variables = create(args.model, pretrained=args.weights or True)
    apply = jax.jit(model.apply)
    results = []
    for start in range(0, len(inputs), args.batch):
        chunk = inputs[start:start + args.batch]
        logits = apply(variables, preprocess([im for _, im in chunk], spec))
        top_k = min(args.top, logits.shape[-1])
        for (label, _), top in zip(chunk, decode_predictions(logits, top=top_k, labels=labels)):
            results.append({"image": label, "model": name,
                            "top": [{"class": i, "label": n, "probability": round(p, 6)}
                                    for i, n, p in top]})
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    for r in results:
        print(f"{r['image']}  ({r['model']})")
        for t in r["top"]:
            print(f"  {t['probability']:7.2%}  {t['label']}  [{t['class']}]")
    return 0



@contextlib.contextmanager
def offer_allow_unpinned():
    """Adds the command's flag to an ``UnpinnedSourceError``, whose message
    names only the Python and environment opt-ins.

    A context manager: wrap the code that loads weights in ``with
    offer_allow_unpinned():``.

    Yields:
        None.

    Raises:
        UnpinnedSourceError: the one raised inside, its message ending
            "On the command line: --allow-unpinned.".
    """
    from zoo.weights.errors import UnpinnedSourceError

    try:
        yield
    except UnpinnedSourceError as e:
        raise UnpinnedSourceError(f"{e} On the command line: --allow-unpinned.") from None



def cmd_convert_weights(args) -> int:
    """``zoo convert-weights``: a weight file, run or pretrained source to a checkpoint."""
    from zoo.checkpoint import save
    from zoo.counting import count_params

    model_name = args.model
    if args.source == "pretrained":
        if not model_name:
            raise ValueError("'pretrained' needs --model NAME")
        from zoo.weights.pretrained import load_pretrained
        with offer_allow_unpinned():
            variables = load_pretrained(model_name, args.weights,
                                        allow_unpinned=args.allow_unpinned)
    elif (Path(args.source) / "run.json").is_file():  # a `zoo train` run: its best checkpoint
        from zoo.train.loop import load_run
        _, variables, meta = load_run(args.source)
        if model_name and model_name != meta["model"]:
            raise ValueError(f"{args.source} trained {meta['model']}, not {model_name}: drop "
                             "--model")
        model_name = meta["model"]
    else:
        if not model_name:
            raise ValueError(f"{args.source}: give --model NAME, the zoo model the weights are for")
        from zoo.weights.files import load_weight_file
        options = {k: v for k, v in (("width", args.width), ("num_classes", args.num_classes))
                   if v is not None}
        variables = load_weight_file(args.source, model_name, **options)
    if args.out.endswith(".safetensors"):
        out = _write_safetensors(variables, model_name, args.out, args.dtype, args.overwrite)
    else:
        if args.dtype != "float32":
            raise ValueError("--dtype applies to a .safetensors --out; Orbax checkpoints keep "
                             "the variables' own dtype")
        out = save(variables, args.out, overwrite=args.overwrite)
    print(f"wrote {out}: {model_name}, {count_params(variables):,} parameters")
    return 0


def _write_safetensors(variables, model_name: str, out: str, dtype: str,
                       overwrite: bool) -> Path:
    """``variables`` as a PyTorch-layout safetensors file (the family's
    ``torch_names``), written to a temporary file and renamed into place;
    prints its SHA-256, the pin of a ``WeightSource``."""
    import numpy as np
    from safetensors.numpy import save

    from zoo.atomic import write_atomic
    from zoo.weights.fetch import file_digest
    from zoo.weights.torch import to_torch

    path = Path(out).expanduser()
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    import jax

    from zoo.registry import get_spec
    from zoo.weights.conventions import to_metadata

    # What the weights need travels in the file: PyTorch-layout names alone
    # would read back under the family's PyTorch conventions.
    conventions = getattr(variables, "conventions", None) or get_spec(model_name).conventions
    state = to_torch(jax.device_get(variables), model_name, dtype=np.dtype(dtype))
    write_atomic(path, save(state, metadata={"zoo_model": model_name, "dtype": dtype,
                                             **to_metadata(conventions)}))
    print(f"sha256 {file_digest(path)}")
    return path


def csv_list(text: str, kind, what: str) -> list:
    """``"a,b"`` -> ``[kind("a"), kind("b")]``; blanks around values and
    empty items are dropped.

    Args:
        text: the option's comma-separated value.
        kind: converts one item, e.g. ``int``, ``float`` or ``str``; it
            raises ValueError for a bad item.
        what: the option's name for messages, e.g. ``"--batch"``.

    Returns:
        The converted values, in order.

    Raises:
        ValueError: the list is empty or an item does not convert (naming
            ``what``).
    """
    try:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected a comma-separated list") from None
    if not values:
        raise ValueError(f"{what}: give at least one value")
    return values


def add_allow_unpinned(s: argparse.ArgumentParser, when: str = "") -> None:
    """The ``--allow-unpinned`` flag, its help starting with ``when``.

    Args:
        s: the subcommand's parser.
        when: a prefix of the help text, e.g. ``"with 'pretrained': "``.
    """
    s.add_argument("--allow-unpinned", action="store_true",
                   help=f"{when}accept weights whose publisher gives no hash (midas_small's "
                        "official ones), as downloaded")


def add_command(sub, name: str, help_: str, epilog: str) -> argparse.ArgumentParser:
    """A new subcommand of ``zoo`` in the common layout: ``help_`` in the
    command list and atop its ``--help``, ``epilog`` (its examples) below,
    both printed as written.

    Args:
        sub: the subparsers of ``zoo`` (what a plug-in's ``register`` gets).
        name: the subcommand's name.
        help_: its one-sentence description.
        epilog: its examples, e.g. an entry of ``EXAMPLES``.

    Returns:
        The new subcommand's parser, to add arguments and a ``func`` to.
    """
    return sub.add_parser(name, help=help_, description=help_, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


@dataclasses.dataclass(frozen=True)
class Requirement:
    """What a plug-in's command needs beyond the core install: the optional
    ``extras`` of ``distribution`` named on its entry point.

    Attributes:
        distribution: the name of the distribution that declares the entry point.
        extras: the extras its ``[extra]`` names; empty for the core install.
    """

    distribution: str = "zoo"
    extras: tuple[str, ...] = ()

    def missing_line(self, prog: str, error: ImportError) -> str:
        """The one line for ``error``, a module that is not installed.

        Args:
            prog: the command, e.g. ``"zoo depth"``, that starts the line.
            error: the ImportError met.

        Returns:
            ``"PROG: needs the 'EXTRA' extra: pip install ..."`` naming the
            missing module (without extras, only the module), or, for an
            error without a module name, the error's first line.
        """
        if not (isinstance(error, ModuleNotFoundError) and error.name):
            text = str(error).strip().splitlines()
            return f"{prog}: error: {text[0] if text else type(error).__name__}"
        if not self.extras:
            return f"{prog}: needs the module {error.name}, which is not installed"
        names = ",".join(self.extras)
        what = "extra" if len(self.extras) == 1 else "extras"
        return (f"{prog}: needs the '{names}' {what}: pip install "
                f"\"{self.distribution}[{names}]\" (missing module: {error.name})")


def is_missing_module(error: ImportError) -> bool:
    """True for an ImportError that means "install something": a module
    whose top-level package is absent, or a message composed to say what to
    install (no module name attached). A missing submodule of an installed
    package, or a name missing from a module, is a bug instead.

    Args:
        error: the ImportError to judge.

    Returns:
        Whether to report it as "install something" rather than as a bug.
    """
    import importlib.util

    if error.name is None:
        return True
    if not isinstance(error, ModuleNotFoundError):
        return False
    try:
        return importlib.util.find_spec(error.name.partition(".")[0]) is None
    except (ImportError, ValueError):
        return True


def installed_commands() -> list:
    """The ``zoo.commands`` entry points of the installed distributions,
    one per name (the first found), in ``HELP_ORDER``.

    Returns:
        ``importlib.metadata.EntryPoint`` objects; names not in
        ``HELP_ORDER`` follow, alphabetically.
    """
    from importlib.metadata import entry_points

    first: dict = {}
    for ep in entry_points(group=COMMAND_GROUP):
        first.setdefault(ep.name, ep)
    rank = {name: i for i, name in enumerate(HELP_ORDER)}
    return sorted(first.values(), key=lambda ep: (rank.get(ep.name, len(rank)), ep.name))


def _requirement(ep) -> Requirement:
    dist = getattr(ep, "dist", None)
    name = dist.metadata["Name"] if dist is not None else None
    return Requirement(distribution=name or "zoo", extras=tuple(ep.extras))


def _say(line: str) -> Callable[[Sequence[str]], int]:
    def fail(argv: Sequence[str]) -> int:
        print(line, file=sys.stderr)
        return 2

    return fail


def add_plugin(sub, ep) -> None:
    """Registers one ``zoo.commands`` entry point's subcommand. One whose
    module cannot be imported is still listed; running it prints why, in
    one line, and exits with 2.

    Args:
        sub: the subparsers of ``zoo``.
        ep: an ``importlib.metadata.EntryPoint`` of ``COMMAND_GROUP``.
    """
    need = _requirement(ep)
    before = set(sub.choices)
    try:
        register = ep.load()
    except ImportError as e:
        prog = f"zoo {ep.name}"
        line = (need.missing_line(prog, e) if is_missing_module(e)
                else f"{prog}: error: cannot load its plug-in {ep.value}: {e}")
        summary = line.split(": ", 1)[1].replace("%", "%%")
        s = sub.add_parser(ep.name, help=f"(unavailable) {summary}", add_help=False)
        s.set_defaults(preparse=_say(line))
        return
    register(sub)
    for name in set(sub.choices) - before:
        sub.choices[name].set_defaults(requirement=need)


def _build() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    p = argparse.ArgumentParser(
        prog="zoo", description="A JAX/Flax model zoo for on-device vision.",
        epilog="examples:\n  zoo list\n  zoo info efficientnet_lite0",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = add_command(sub, "list", "List models with parameters, multiply-adds and input size.",
                    EXAMPLES["list"])
    s.add_argument("pattern", nargs="?", default="*", help="glob filter (default: all)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--published", action="store_true",
                   help="Markdown table of our counts against the published figures")
    s.set_defaults(func=cmd_list)

    s = add_command(sub, "info", "Show one model's spec, counts and published figures.",
                    EXAMPLES["info"])
    s.add_argument("name")
    s.add_argument("--width", type=float, help="width multiplier (default: the spec's)")
    s.add_argument("--resolution", type=int, help="input size in pixels (default: the spec's)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_info)

    s = add_command(sub, "predict", "Classify images with a pretrained model (ImageNet labels).",
                    EXAMPLES["predict"])
    s.add_argument("images", nargs="*", help="image files (JPEG, PNG, ...) or folders of them")
    s.add_argument("--model", default="efficientnet_lite2",
                   help="a model with pretrained weights (default: efficientnet_lite2, the most "
                        "accurate one available offline)")
    s.add_argument("--example", action="append", metavar="NAME",
                   help="a scikit-image sample photo: chelsea, coffee, astronaut, rocket")
    s.add_argument("--weights", metavar="ORIGIN",
                   help="another of the model's weight sources, by publisher: timm, keras "
                        "(default: the first one `zoo info NAME` lists)")
    s.add_argument("--checkpoint", metavar="RUN",
                   help="a `zoo train` work directory: its best checkpoint, image size and "
                        "class names (instead of --model)")
    s.add_argument("--top", type=int, default=5, help="classes to show per image (default 5)")
    s.add_argument("--batch", type=int, default=8, help="images per forward pass (default 8)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_predict)

    s = add_command(sub, "convert-weights", "Write an Orbax checkpoint from a weight file or the "
                                            "spec's pretrained source.",
                    EXAMPLES["convert-weights"])
    s.add_argument("source", help="a .pth/.pt/.bin/.safetensors/.h5/.keras file, a `zoo "
                                  "train` run directory (its best checkpoint), or 'pretrained'")
    s.add_argument("--model", help="the zoo model the weights are for (a run knows its own)")
    s.add_argument("--weights", metavar="ORIGIN",
                   help="with 'pretrained': another of the model's weight sources, by "
                        "publisher (timm, keras)")
    s.add_argument("--out", required=True,
                   help="Orbax checkpoint directory to create, or a .safetensors file "
                        "(PyTorch key layout, readable by `zoo convert-weights` and torch)")
    s.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="array type of a .safetensors --out (float16 halves the file)")
    add_allow_unpinned(s, "with 'pretrained': ")
    s.add_argument("--width", type=float, help="width multiplier of the weights")
    s.add_argument("--num-classes", type=int, help="classifier size of the weights")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    s.set_defaults(func=cmd_convert_weights)

    for ep in installed_commands():
        if ep.name not in sub.choices:  # the core commands keep their names
            add_plugin(sub, ep)
    return p, sub


def parser() -> argparse.ArgumentParser:
    """The whole ``zoo`` parser: the core subcommands and every installed
    plug-in's, in help order.

    Returns:
        The ``argparse.ArgumentParser`` of ``zoo``; each subcommand sets a
        ``func`` default (arguments in, exit status out).
    """
    return _build()[0]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``zoo ARGV...``; the exit status.

    Args:
        argv: the arguments after ``zoo``; None reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 2 for an error reported in one
        line (see ``run_reporting_errors``), or the command's own status.
        Arguments argparse cannot parse exit through ``SystemExit(2)``.

    Example:
        ::

            from zoo.cli import main
            status = main(["info", "efficientnet_b0", "--json"])
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    p, sub = _build()
    chosen = sub.choices.get(argv[0]) if argv else None
    preparse = chosen.get_default("preparse") if chosen is not None else None
    if preparse is not None:
        status = preparse(argv[1:])
        if status is not None:
            return status
    args = p.parse_args(argv)
    need = getattr(args, "requirement", None) or Requirement()
    return run_reporting_errors(f"zoo {args.command}", args.func, args, requirement=need)


def run_reporting_errors(prog: str, fn, *args, requirement: Optional[Requirement] = None) -> int:
    """``fn(*args)``; bad input, missing files, every weight error
    (``zoo.weights.errors``: unreadable, unsafe, over-budget, mismatched or
    unfetchable weights), a missing optional package (named with the extra
    of ``requirement``) become one line on stderr and exit status 2, not a
    traceback.

    Args:
        prog: the command's name, e.g. ``"zoo depth"``, starting each line.
        fn: the command's work, returning its exit status.
        *args: ``fn``'s arguments.
        requirement: the extras to name for a missing module; None names
            none.

    Returns:
        What ``fn`` returned, or 2 after an error was printed.

    Raises:
        ImportError: one that is a bug, not a missing install
            (``is_missing_module`` is False). Other exceptions outside the
            listed kinds also propagate.
    """
    from zoo.weights.errors import WeightError

    try:
        return fn(*args)
    except (WeightError, KeyError, ValueError, TypeError, OSError, RuntimeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2
    except ImportError as e:
        if not is_missing_module(e):
            raise
        print((requirement or Requirement()).missing_line(prog, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
