"""``zoo convert``: a registry model or a ``zoo train`` run to TFLite or ONNX,
with the op audit and a parity check against JAX. Registered with the ``zoo``
command through the ``zoo.commands`` entry point; TensorFlow and the runtimes
are imported only when the command runs."""

from __future__ import annotations

from pathlib import Path

from zoo.cli import add_allow_unpinned, add_command, csv_list, offer_allow_unpinned, sample_image

EXAMPLES = ("examples:\n"
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
            "onnxruntime beside JAX and prints the difference (--no-check skips it).")


def cmd_convert(args) -> int:
    """``zoo convert``: the parsed arguments in, the exit status out.

    Writes the file and its ``FILE.json``, prints the op audit (TFLite) and,
    with ``args.check``, the largest difference between the file's outputs
    and JAX's on one input.

    Args:
        args: the ``argparse.Namespace`` of the options ``register`` adds
            (``name``, ``checkpoint``, ``to``, ``quantize``, ``keep_float``,
            ``pretrained``, ``allow_unpinned``, ``resolution``, ``batch``,
            ``out``, ``check``).

    Returns:
        0, the exit status.

    Raises:
        ValueError: for options that do not go together: ONNX with a
            quantisation, an unknown ``--quantize``, ``--keep-float``
            without ``--to tflite --quantize int8``, neither a name nor
            ``--checkpoint`` (or ``--checkpoint`` with a name or
            ``--pretrained``), or ``--out`` with the wrong suffix.
    """
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
    keep_float = csv_list(args.keep_float, str, "--keep-float") if args.keep_float else []
    if keep_float and (args.to != "tflite" or args.quantize != "int8"):
        raise ValueError("--keep-float is for --to tflite --quantize int8 (mixed precision)")
    if args.checkpoint:
        ex, spec, shape = _exportable_run(args)
    else:
        if not args.name:
            raise ValueError("give a model name (zoo list) or --checkpoint RUN")
        spec = get_spec(args.name, resolution=args.resolution)
        shape = (args.batch, *spec.input_hw, 3)
        with offer_allow_unpinned():
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
        x = np.asarray(preprocess(sample_image("chelsea"), spec))
        return np.repeat(x, shape[0], axis=0)
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def register(sub) -> None:
    """Adds ``zoo convert`` to the ``zoo`` command's subparsers.

    Args:
        sub: the ``zoo`` parser's subparsers (what
            ``ArgumentParser.add_subparsers`` returns).
    """
    s = add_command(sub, "convert", "Export a model to TFLite or ONNX, with its op audit and a "
                                    "parity check.", EXAMPLES)
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
    add_allow_unpinned(s, "with --pretrained: ")
    s.add_argument("--resolution", type=int, help="input size (default: the spec's)")
    s.add_argument("--batch", type=int, default=1, help="fixed batch size (default 1)")
    s.add_argument("--out", help="file or folder (default: NAME_RES_QUANT.EXT here)")
    s.add_argument("--no-check", dest="check", action="store_false",
                   help="skip running the file beside JAX")
    s.set_defaults(func=cmd_convert)
