"""The ``zoo`` command line.

    zoo list [PATTERN]        models with parameters, multiply-adds, resolution
    zoo info NAME             one model's spec, counts and published figures
    zoo predict IMAGE...      classify images with a pretrained model
    zoo convert-weights SRC   a weight file or training run -> Orbax or safetensors
    zoo convert NAME --to tflite|onnx   export for phones and other runtimes
    zoo facemesh IMAGE...     faces and their 468-point mesh, drawn
    zoo depth IMAGE...        depth maps and portrait-mode (bokeh) pictures
    zoo actions VIDEO...      actions found in videos by a trained TALNet, with a timeline
    zoo bench ...             latency, FLOPs, memory, compile time (the benchmarks package)
    zoo bench compare A B     p50 ratios of two result files
    zoo train ...             fine-tune a model (zoo.train), resumable
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

EXAMPLES = {
    "list": "examples:\n  zoo list\n  zoo list 'efficientnet_lite*'\n  zoo list --json\n"
            "  zoo list --published      # the README's table of ours vs published",
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
    "convert": "examples:\n"
               "  zoo convert efficientnet_lite0 --pretrained --to tflite --quantize int8\n"
               "  zoo convert mobilenet_v2 --pretrained --to onnx --out exports/\n"
               "  zoo convert mobilenet_v3_small --to tflite --quantize float16 --out mnv3s.tflite\n"
               "  zoo convert mobilenet_v2 --pretrained --to tflite --quantize int8 \\\n"
               "      --keep-float FULLY_CONNECTED   # int8 body, float32 classifier\n"
               "  zoo convert efficientnet_b7 --to tflite --resolution 300   # fixed 1x300x300x3\n"
               "  zoo convert --checkpoint runs/digits --to tflite   # a fine-tuned run (zoo train)\n"
               "\n"
               "Writes the file and FILE.json (input normalisation, resolution, labels; also\n"
               "embedded in the file), prints the op audit, then runs the file in LiteRT or\n"
               "onnxruntime beside JAX and prints the difference (--no-check skips it).",
    "facemesh": "examples:\n  zoo facemesh --example astronaut --out overlays/\n"
                "  zoo facemesh photo.jpg selfies/ --out overlays/ --json\n"
                "\nWrites <image>_facemesh.png per image: the 468 landmarks (green), the face box\n"
                "(red) and the 6 detector keypoints (yellow). BlazeFace short range + MediaPipe's\n"
                "face mesh, weights from the mediapipe==0.10.21 wheel (fetched once).",
    "depth": "examples:\n"
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
             "them as downloaded.",
    "actions": "examples:\n"
               "  zoo actions match.mp4 --checkpoint runs/talnet_video --out actions/\n"
               "  zoo actions clips/*.mp4 --checkpoint runs/talnet_video --threshold 0.3 --json\n"
               "\nPrints the actions found in each video (start and end in seconds, class, score)\n"
               "and writes <video>_actions.png, a timeline of them. The run must be a TALNet\n"
               "trained on features of the same backbone (its run.json says which).",
    "bench": "examples:\n"
             "  zoo bench --models efficientnet_b0 --out results/\n"
             "  zoo bench --models 'efficientnet_b0,mobilenet*' --batch 1,8 --dtype float32,bfloat16 \\\n"
             "            --runs 20 --warmup 3 --repeat 3 --time-budget 120 --out results/\n"
             "  zoo bench --models mobilenet_v2 --batch 8 --data-parallel   # batch split over "
             "jax.devices()\n"
             "  zoo bench --models efficientnet_b0,mobilenet_v2 --peers keras,keras_tf,torch,litert,onnxruntime\n"
             "  zoo bench compare results/bench-A.json results/bench-B.json   # p50 ratios B/A\n"
             "  zoo bench plot results/bench-A.json   # latency vs MACs and top-1 (PNG beside it)\n"
             "  zoo bench --train --models mobilenet_v2,efficientnet_b0 --batch 32 --peers keras,torch\n"
             "  zoo bench --models talnet --lengths 128,256,512,1024,2048   # cost vs sequence length\n"
             "\n"
             "`zoo bench [run] [options]` measures (run is the default action);\n"
             "`zoo bench compare A.json B.json` compares two result files.\n"
             "Writes bench-<env>-<time>.json (raw), .csv and .md to --out and prints the table.\n"
             "A configuration that fails, runs out of memory or exceeds --time-budget is a row\n"
             "with its status; the run goes on. Results so far are kept in\n"
             "bench-<env>-<time>.partial.json after each configuration (removed at the end), so\n"
             "a crash or Ctrl-C loses only the configuration under way. Without a terminal,\n"
             "one line per finished configuration goes to stderr instead of a progress bar.",
}


def _counts(name: str, width: Optional[float] = None, resolution: Optional[int] = None):
    from zoo.counting import analytic_counts
    from zoo.registry import build, get_spec

    spec = get_spec(name, width=width, resolution=resolution)
    return spec, analytic_counts(build(name, width=width), spec.input_size)


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
            rows.append({"name": name, "params": counts.params, "macs": counts.macs,
                         "resolution": spec.input_size, "pretrained": where})
            bar.advance(task)
    return rows


def cmd_list(args) -> int:
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
    print(f"{'name':<22}{'params':>10}{'MACs':>10}{'input':>7}  pretrained weights from")
    for r in rows:
        print(f"{r['name']:<22}{r['params'] / 1e6:>9.2f}M{r['macs'] / 1e6:>9.0f}M"
              f"{r['resolution']:>7}  {r['pretrained'] or '-'}")
    return 0


def published_table(rows) -> str:
    """Markdown: our counts against the published figures, with sources.
    Notes that explain a difference are numbered below the table; a figure
    the source does not publish is a dash."""
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


def _image_paths(items: Sequence[str]) -> list[Path]:
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


def _read_image(path: Path):
    """(H, W, 3) uint8 RGB, upright; ``zoo.images.ImageFileError`` (a
    ValueError: one line, exit status 2) for a file that is not a whole image."""
    from zoo.images import read_image

    return read_image(path)


def _example(name: str):
    import skimage.data

    if name not in ("astronaut", "chelsea", "coffee", "rocket"):
        raise ValueError(f"--example {name}: use astronaut, chelsea, coffee or rocket")
    return getattr(skimage.data, name)()


def cmd_predict(args) -> int:
    import jax

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
    inputs = [(str(p), _read_image(p)) for p in _image_paths(args.images)]
    inputs += [(f"example:{e}", _example(e)) for e in args.example or ()]
    if not inputs:
        raise ValueError("give image files, folders or --example NAME")
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
def _offer_allow_unpinned():
    """Adds the command's flag to an ``UnpinnedSourceError``, whose message
    names only the Python and environment opt-ins."""
    from zoo.weights.errors import UnpinnedSourceError

    try:
        yield
    except UnpinnedSourceError as e:
        raise UnpinnedSourceError(f"{e} On the command line: --allow-unpinned.") from None


def cmd_convert_weights(args) -> int:
    from zoo.checkpoint import save
    from zoo.counting import count_params

    model_name = args.model
    if args.source == "pretrained":
        if not model_name:
            raise ValueError("'pretrained' needs --model NAME")
        from zoo.weights.pretrained import load_pretrained
        with _offer_allow_unpinned():
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

    state = to_torch(jax.device_get(variables), model_name, dtype=np.dtype(dtype))
    write_atomic(path, save(state, metadata={"zoo_model": model_name, "dtype": dtype}))
    print(f"sha256 {file_digest(path)}")
    return path


def cmd_facemesh(args) -> int:
    from zoo.face import write_overlays

    inputs = [(str(p), _read_image(p)) for p in _image_paths(args.images)]
    inputs += [(f"example:{e}", _example(e)) for e in args.example or ()]
    if not inputs:
        raise ValueError("give image files, folders or --example NAME")
    rows = write_overlays(inputs, args.out)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        scores = ", ".join(f"{f['score']:.2f}" for f in r["faces"])
        print(f"{r['image']}: {len(r['faces'])} face(s) {f'(scores {scores}) ' if scores else ''}"
              f"-> {r['overlay']}")
    return 0


DEPTH_EXAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")


def _depth_example(name: str):
    if name == "motorcycle":  # Middlebury 2014, the left image of the stereo pair
        import skimage.data

        return skimage.data.stereo_motorcycle()[0]
    return _example(name)


def _png_bytes(rgb) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _parse_focus(text: Optional[str]):
    if text is None:
        return None
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--focus {text!r}: expected X,Y in pixels, e.g. 320,240") from None
    return x, y


def cmd_actions(args) -> int:
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


def cmd_depth(args) -> int:
    from rich.progress import Progress

    from zoo.atomic import write_atomic
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
    sources = [(str(p), p) for p in _image_paths(args.images)]
    sources += [(f"example:{e}", e) for e in args.example or ()]
    if not sources:
        raise ValueError("give image files, folders or --example NAME")
    out = Path(args.out)
    kinds = ("depth", "bokeh") if args.bokeh else ("depth",)
    plan, used = [], set()
    for label, src in sources:
        stem = Path(label.split(":", 1)[-1]).stem or "image"
        base, k = stem, 1
        while base in used:
            k += 1
            base = f"{stem}_{k}"
        used.add(base)
        plan.append((label, src, {kind: out / f"{base}_{kind}.png" for kind in kinds}))
    existing = [str(p) for _, _, paths in plan for p in paths.values() if p.exists()]
    if existing and not args.overwrite:
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        verb = "exists" if len(existing) == 1 else "exist"
        raise ValueError(f"{', '.join(existing[:3])}{more} already {verb}; pass --overwrite to "
                         "replace them, or choose another --out")
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
            image = _read_image(src) if isinstance(src, Path) else _depth_example(src)
            rgb = as_rgb(image, label)
            h, w = rgb.shape[:2]
            if focus is not None and not (0 <= focus[0] <= w - 1 and 0 <= focus[1] <= h - 1):
                raise ValueError(f"{label}: --focus {args.focus} is outside the {w}x{h} image "
                                 f"(x in 0-{w - 1}, y in 0-{h - 1})")
            depth = estimate(rgb, **options)
            write_atomic(paths["depth"], _png_bytes(colorize(depth)))
            line = f"{label} -> {paths['depth']}"
            if args.bokeh:
                picture = bokeh(rgb, depth, focus=focus, strength=strength)
                write_atomic(paths["bokeh"], _png_bytes(picture))
                line += f", {paths['bokeh']}"
            bar.advance(task)
            print(line, flush=True)
    return 0


def _bench_models(spec: str) -> list[str]:
    """Comma-separated names and globs -> registered names, in order, unique."""
    from zoo.registry import get_spec, list_models

    names: list[str] = []
    for item in filter(None, (i.strip() for i in spec.split(","))):
        if any(c in item for c in "*?["):
            found = list_models(item)
            if not found:
                raise ValueError(f"--models {item!r} matches no model; `zoo list` shows them all")
        else:
            get_spec(item)  # unknown names fail here, with suggestions
            found = [item]
        names += [n for n in found if n not in names]
    if not names:
        raise ValueError("--models: give at least one name or glob")
    return names


def _csv_list(text: str, kind, what: str) -> list:
    try:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected a comma-separated list") from None
    if not values:
        raise ValueError(f"{what}: give at least one value")
    return values


def cmd_bench(args) -> int:
    """`zoo bench [run]` measures; `zoo bench compare A B` compares. The
    action is an optional first positional (default "run") so both forms
    parse with one subparser and `zoo bench --help` documents both."""
    if args.action == "compare":
        if len(args.files) != 2:
            raise ValueError("compare takes two result files: zoo bench compare A.json B.json")
        from benchmarks.report import compare
        print(compare(*args.files), end="")
        return 0
    if args.action == "plot":
        if len(args.files) != 1:
            raise ValueError("plot takes one result file: zoo bench plot RESULT.json")
        from benchmarks.plot import plot
        src = Path(args.files[0])
        try:
            summary = json.loads(src.read_text())["summary"]
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{src} is not a zoo bench result file: {e}") from None
        print(f"wrote {plot(summary, src.with_name(src.name[:-len(src.suffix)] + '.png'))}")
        return 0
    if args.action != "run":
        raise ValueError(f"unknown action {args.action!r}: use `zoo bench --models ...`, "
                         "`zoo bench compare A.json B.json` or `zoo bench plot A.json`")
    if args.files:
        raise ValueError(f"unexpected arguments {' '.join(args.files)!r} (models go in --models)")
    names = _bench_models(args.models)
    batches = _csv_list(args.batch, int, "--batch")
    dtypes = _csv_list(args.dtype, str, "--dtype")
    bad = [d for d in dtypes if d not in ("float32", "bfloat16", "float16")]
    if bad or min(batches) < 1 or args.runs < 1 or args.warmup < 0 or args.repeat < 1:
        raise ValueError(f"bad values: --dtype {bad or 'ok'} (float32, bfloat16, float16), "
                         "--batch >= 1, --runs >= 1, --warmup >= 0, --repeat >= 1")

    from rich.progress import Progress

    from benchmarks import env as bench_env
    from benchmarks import report
    from benchmarks.peers import PEERS
    from benchmarks.runner import measure, measure_peer, roofline

    peers = _csv_list(args.peers, str, "--peers") if args.peers else []
    unknown = [q for q in peers if q not in PEERS]
    if unknown:
        raise ValueError(f"--peers {','.join(unknown)}: known peers are {', '.join(PEERS)}")

    env = bench_env.collect()  # records sys.argv: the exact command
    configs = [(n, b, d) for n in names for b in batches for d in dtypes]
    results = []
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    partial = report.partial_path(args.out, env, stamp)
    tty = sys.stderr.isatty()
    with Progress(transient=True, disable=not tty) as bar:
        task = bar.add_task("roofline", total=len(configs) * args.repeat)
        roof = roofline()
        for k in range(args.repeat):
            for name, batch, dtype in configs:
                bar.update(task, description=f"{name} b{batch} {dtype} "
                                             f"(repeat {k + 1}/{args.repeat})")
                r = measure(name, batch=batch, dtype=dtype, runs=args.runs,
                            warmup=args.warmup, implementation=args.implementation,
                            time_budget=args.time_budget, roof=roof,
                            data_parallel=args.data_parallel, max_seconds=args.max_seconds)
                r["repeat"] = k
                # Peers run float32 on one device: compare only like with like.
                if peers and r["status"] == "ok" and dtype == "float32" and r["devices"] == 1:
                    r["peers"] = {}
                    for q in peers:
                        bar.update(task, description=f"{name} b{batch} peer {q}")
                        r["peers"][q] = measure_peer(q, name, batch=batch, runs=args.runs,
                                                     warmup=args.warmup,
                                                     zoo_p50_ms=r["p50_ms"],
                                                     max_seconds=args.max_seconds)
                results.append(r)
                report.write_partial(results, env, partial)
                bar.advance(task)
                if not tty:  # logs get one line per configuration instead of the bar
                    print(report.progress_line(len(results), len(configs) * args.repeat, r),
                          file=sys.stderr, flush=True)
    paths = report.write(results, env, args.out, roof=roof, stamp=stamp)
    partial.unlink(missing_ok=True)
    print(report.markdown(report.summarize(results), env), end="")
    for kind, path in paths.items():
        print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_convert(args) -> int:
    import numpy as np
    from rich.console import Console

    from conversions.audit import audit_tflite
    from conversions.export import prepare
    from conversions.onnx import to_onnx
    from conversions.runtime import runner
    from conversions.tflite import QUANTIZATIONS, default_output, quant_label, to_tflite
    from zoo.registry import get_spec

    if args.to == "onnx" and args.quantize != "float32":
        raise ValueError(f"--quantize {args.quantize}: ONNX export is float32 only; quantised "
                         "files are TFLite's (--to tflite)")
    if args.quantize not in QUANTIZATIONS:
        raise ValueError(f"--quantize {args.quantize}: choose {', '.join(QUANTIZATIONS)}")
    keep_float = _csv_list(args.keep_float, str, "--keep-float") if args.keep_float else []
    if keep_float and (args.to != "tflite" or args.quantize != "int8"):
        raise ValueError("--keep-float is for --to tflite --quantize int8 (mixed precision)")
    if args.checkpoint:
        ex, spec, shape = _exportable_run(args)
    else:
        if not args.name:
            raise ValueError("give a model name (zoo list) or --checkpoint RUN")
        spec = get_spec(args.name, resolution=args.resolution)
        shape = (args.batch, spec.input_size, spec.input_size, 3)
        with _offer_allow_unpinned():
            ex = prepare(args.name, pretrained=args.pretrained, input_shape=shape, spec=spec,
                         allow_unpinned=args.allow_unpinned)
    suffix = "." + args.to
    out = Path(args.out) if args.out else None
    if out is None or out.is_dir() or (args.out.endswith("/")):
        out = (out or Path(".")) / default_output(ex, quant_label(args.quantize, keep_float),
                                                  suffix)
    elif out.suffix != suffix:
        raise ValueError(f"--out {out}: a {args.to} file should end in {suffix}")
    console = Console(stderr=True)
    with console.status(f"converting {ex.name} to {args.to} ({args.quantize})..."):
        path = (to_tflite(ex, quantization=args.quantize, out=out, keep_float=keep_float)
                if args.to == "tflite"
                else to_onnx(ex, out=out))
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB) and {path.name}.json")
    if args.to == "tflite":
        print(audit_tflite(path).summary())
    if args.check:
        x = _check_input(spec, shape)
        want = {k: np.asarray(v) for k, v in ex.fn(x).items()}
        got = runner(path)(x)
        for k, w in want.items():
            diff = float(np.abs(got[k] - w).max() / max(np.abs(w).max(), 1e-12))
            line = f"{k}: max |{args.to} - jax| = {diff:.2e} x max |jax|"
            if spec.task == "classification" and not args.checkpoint:
                same = bool((got[k].argmax(-1) == w.argmax(-1)).all())
                line += (f"; top-1 {'agrees' if same else 'DIFFERS'} on chelsea "
                         f"[{int(w.argmax(-1)[0])}]")
            print(line)
    return 0


def _exportable_run(args):
    """A `zoo train` run's best checkpoint, ready to export: its model with
    the reference kernels, its image size and class names."""
    import dataclasses

    from conversions.export import prepare
    from zoo.registry import build, get_spec
    from zoo.train import load_run

    if args.name or args.pretrained:
        raise ValueError("--checkpoint RUN exports that run's model: drop the model name "
                         "and --pretrained")
    _, variables, meta = load_run(args.checkpoint)
    spec = get_spec(meta["model"], resolution=args.resolution or meta["image_size"])
    spec = dataclasses.replace(spec, num_classes=meta["num_classes"], weights=())
    model = build(meta["model"], num_classes=meta["num_classes"], implementation="reference")
    shape = (args.batch, spec.input_size, spec.input_size, 3)
    ex = prepare(model, variables, input_shape=shape, spec=spec)
    ex.name = f"{meta['model']}_{Path(args.checkpoint).resolve().name}"
    ex.labels = list(meta["class_names"])
    return ex, spec, shape


def _check_input(spec, shape):
    """A real photo for pretrained classifiers (top-1 means something), noise
    otherwise."""
    import numpy as np

    if spec.task == "classification" and shape[1] == shape[2]:
        from zoo.preprocess import preprocess
        x = np.asarray(preprocess(_example("chelsea"), spec))
        return np.repeat(x, shape[0], axis=0)
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _add_allow_unpinned(s: argparse.ArgumentParser, when: str = "") -> None:
    s.add_argument("--allow-unpinned", action="store_true",
                   help=f"{when}accept weights whose publisher gives no hash (midas_small's "
                        "official ones), as downloaded")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zoo", description="A JAX/Flax model zoo for on-device vision.",
        epilog="examples:\n  zoo list\n  zoo info efficientnet_lite0",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, help_):
        return sub.add_parser(name, help=help_, description=help_, epilog=EXAMPLES[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    s = add("list", "List models with parameters, multiply-adds and input size.")
    s.add_argument("pattern", nargs="?", default="*", help="glob filter (default: all)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--published", action="store_true",
                   help="Markdown table of our counts against the published figures")
    s.set_defaults(func=cmd_list)

    s = add("info", "Show one model's spec, counts and published figures.")
    s.add_argument("name")
    s.add_argument("--width", type=float, help="width multiplier (default: the spec's)")
    s.add_argument("--resolution", type=int, help="input size in pixels (default: the spec's)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_info)

    s = add("predict", "Classify images with a pretrained model (ImageNet labels).")
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

    s = add("convert-weights", "Write an Orbax checkpoint from a weight file or the spec's "
                               "pretrained source.")
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
    _add_allow_unpinned(s, "with 'pretrained': ")
    s.add_argument("--width", type=float, help="width multiplier of the weights")
    s.add_argument("--num-classes", type=int, help="classifier size of the weights")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    s.set_defaults(func=cmd_convert_weights)

    s = add("convert", "Export a model to TFLite or ONNX, with its op audit and a parity check.")
    s.add_argument("name", nargs="?", help="registry model name (zoo list)")
    s.add_argument("--checkpoint", metavar="RUN",
                   help="export a `zoo train` run's best checkpoint (its classes and image "
                        "size) instead of a registry model")
    s.add_argument("--to", required=True, choices=("tflite", "onnx"), help="output format")
    s.add_argument("--quantize", default="float32", metavar="MODE",
                   help="tflite: float32 (default), float16, dynamic_int8, int8 (calibrated on "
                        "scikit-image photos)")
    s.add_argument("--keep-float", metavar="OPS",
                   help="with --quantize int8: comma-separated TFLite op types to leave in "
                        "float32, e.g. FULLY_CONNECTED (the classifier)")
    s.add_argument("--pretrained", action="store_true",
                   help="export the pretrained weights (default: random, seed 0)")
    _add_allow_unpinned(s, "with --pretrained: ")
    s.add_argument("--resolution", type=int, help="input size (default: the spec's)")
    s.add_argument("--batch", type=int, default=1, help="fixed batch size (default 1)")
    s.add_argument("--out", help="file or folder (default: NAME_RES_QUANT.EXT here)")
    s.add_argument("--no-check", dest="check", action="store_false",
                   help="skip running the file beside JAX")
    s.set_defaults(func=cmd_convert)

    s = add("facemesh", "Find faces and their 468-point mesh; write PNG overlays.")
    s.add_argument("images", nargs="*", help="image files (JPEG, PNG, ...) or folders of them")
    s.add_argument("--out", required=True, help="folder for the overlays (created if needed)")
    s.add_argument("--example", action="append", metavar="NAME",
                   help="a scikit-image sample photo: astronaut (a face), chelsea, coffee, rocket")
    s.add_argument("--json", action="store_true", help="machine-readable summary")
    s.set_defaults(func=cmd_facemesh)

    s = add("depth", "Estimate depth; write colour-mapped depth maps and portrait-mode "
                     "(bokeh) pictures.")
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
    _add_allow_unpinned(s)
    s.add_argument("--overwrite", action="store_true", help="replace existing pictures")
    s.set_defaults(func=cmd_depth)

    s = add("actions", "Find actions in video files with a trained TALNet; print them and "
                       "draw their timeline.")
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

    s = add("bench", "Benchmark models: latency, FLOPs, memory, compile time "
                     "(or `zoo bench compare A.json B.json`).")
    s.add_argument("action", nargs="?", default="run", metavar="run|compare|plot",
                   help="run (default) measures; compare prints p50 ratios of two result "
                        "files; plot draws one result file's latency plot")
    s.add_argument("files", nargs="*", metavar="FILE",
                   help="compare: the two .json result files; plot: one")
    s.add_argument("--models", default="*",
                   help="comma-separated names or globs, e.g. 'efficientnet_b0,mobilenet*' "
                        "(default: all)")
    s.add_argument("--batch", default="1", help="comma-separated batch sizes (default 1)")
    s.add_argument("--dtype", default="float32",
                   help="comma-separated compute dtypes: float32, bfloat16 (default float32)")
    s.add_argument("--runs", type=int, default=20, help="timed calls per configuration (20)")
    s.add_argument("--warmup", type=int, default=3, help="untimed calls before timing (3)")
    s.add_argument("--repeat", type=int, default=1,
                   help="measure the whole set K times and report the p50 spread (1)")
    s.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="per configuration; past it the row says timeout (default: none)")
    s.add_argument("--max-seconds", type=float, default=None, metavar="SECONDS",
                   help="stop timing a configuration (or peer) once its timed calls took "
                        "this long, after at least 5; the result records timed_runs")
    s.add_argument("--implementation", default="auto",
                   help="depthwise-conv implementation: auto, reference, xla_fast, pallas")
    s.add_argument("--data-parallel", action="store_true",
                   help="split each batch over all of jax.devices() (jax.sharding)")
    s.add_argument("--peers", default="",
                   help="also time other runtimes on the same model and batch, float32: "
                        "keras (Keras 3 Applications, JAX backend), keras_tf (Keras 3 on "
                        "TensorFlow, no XLA), torch (PyTorch eager), litert and onnxruntime "
                        "(the zoo's own TFLite / ONNX export)")
    s.add_argument("--out", default="results", help="folder for the result files (results/)")
    s.add_argument("--train", action="store_true",
                   help="training speed instead: images/s of a whole training step beside "
                        "Keras and PyTorch, and of the data pipeline (`zoo bench --train "
                        "--help` lists its options)")
    s.add_argument("--lengths", metavar="L,L,...",
                   help="sequence models (talnet): cost at each sequence length, with a linear "
                        "fit (`zoo bench --lengths 128 --help` lists its options)")
    s.set_defaults(func=cmd_bench)

    from zoo.train.cli import add_parser as add_train
    add_train(sub)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"] and "--train" in argv[1:]:
        # The training-speed table has options of its own (benchmarks/train_speed.py).
        from benchmarks.train_speed import main as train_speed
        return train_speed([a for a in argv[1:] if a != "--train"], prog="zoo bench --train")
    if argv[:1] == ["bench"] and any(a == "--lengths" or a.startswith("--lengths=")
                                     for a in argv[1:]):
        # Cost against sequence length has options of its own (benchmarks/sequence.py).
        from benchmarks.sequence import main as sequence
        return sequence(argv[1:], prog="zoo bench --lengths")
    args = parser().parse_args(argv)
    return run_reporting_errors(f"zoo {args.command}", args.func, args)


def run_reporting_errors(prog: str, fn, *args) -> int:
    """``fn(*args)``; bad input, missing files, every weight error
    (``zoo.weights.errors``: unreadable, unsafe, over-budget, mismatched or
    unfetchable weights), a missing optional package become
    one line on stderr and exit status 2, not a traceback."""
    from zoo.weights.errors import WeightError

    try:
        return fn(*args)
    except (WeightError, KeyError, ValueError, TypeError, OSError, RuntimeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
