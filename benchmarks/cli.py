"""``zoo bench``: latency, FLOPs, memory and compile time of zoo models
(``zoo bench [run]``), ``zoo bench compare A B``, ``zoo bench plot A``, and the
training-speed (``--train``) and sequence-length (``--lengths``) tables, which
have options of their own. Registered with the ``zoo`` command through the
``zoo.commands`` entry point; the suite is imported only when the command
runs."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from zoo.cli import add_command, csv_list

EXAMPLES = ("examples:\n"
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
            "  zoo bench --memory-plan --models 'mobilenet*' --out results/   # activation arena\n"
            "\n"
            "`zoo bench [run] [options]` measures (run is the default action);\n"
            "`zoo bench compare A.json B.json` compares two result files.\n"
            "Writes bench-<env>-<time>.json (raw), .csv and .md to --out and prints the table.\n"
            "A configuration that fails, runs out of memory or exceeds --time-budget is a row\n"
            "with its status; the run goes on. Results so far are kept in\n"
            "bench-<env>-<time>.partial.json after each configuration (removed at the end), so\n"
            "a crash or Ctrl-C loses only the configuration under way. Without a terminal,\n"
            "one line per finished configuration goes to stderr instead of a progress bar.")


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



def cmd_bench(args) -> int:
    """``zoo bench [run]`` measures; ``zoo bench compare A B`` compares. The
    action is an optional first positional (default "run") so both forms
    parse with one subparser and ``zoo bench --help`` documents both.

    ``run`` measures every (model, batch, dtype) configuration ``--repeat``
    times (and the ``--peers`` on float32, one-device rows), keeps
    ``bench-<env>-<time>.partial.json`` in ``--out`` up to date after each
    configuration, then writes the ``.json``, ``.csv`` and ``.md`` result
    files there and prints the Markdown table. ``compare`` prints
    ``benchmarks.report.compare`` of two result files; ``plot`` writes the
    result file's plot as a PNG beside it.

    Args:
        args: the ``argparse.Namespace`` of the parser ``register`` builds:
            ``action``, ``files`` and the ``--models``, ``--batch``,
            ``--dtype``, ``--runs``, ``--warmup``, ``--repeat``,
            ``--time-budget``, ``--max-seconds``, ``--implementation``,
            ``--data-parallel``, ``--peers`` and ``--out`` options.

    Returns:
        int: the exit status, 0.

    Raises:
        ValueError: for an unknown action, the wrong number of files for
            ``compare`` (two) or ``plot`` (one), a file that is not a result
            file, files given to ``run``, a glob that matches no model, an
            unknown peer, or a bad ``--dtype`` (float32, bfloat16,
            float16), ``--batch`` or ``--runs`` (< 1), ``--warmup`` (< 0)
            or ``--repeat`` (< 1).
        KeyError: for an unknown model name in ``--models`` (from
            ``zoo.get_spec``, with close matches).
    """
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
    batches = csv_list(args.batch, int, "--batch")
    dtypes = csv_list(args.dtype, str, "--dtype")
    bad = [d for d in dtypes if d not in ("float32", "bfloat16", "float16")]
    if bad or min(batches) < 1 or args.runs < 1 or args.warmup < 0 or args.repeat < 1:
        raise ValueError(f"bad values: --dtype {bad or 'ok'} (float32, bfloat16, float16), "
                         "--batch >= 1, --runs >= 1, --warmup >= 0, --repeat >= 1")

    from rich.progress import Progress

    from benchmarks import env as bench_env
    from benchmarks import report
    from benchmarks.peers import PEERS
    from benchmarks.runner import measure, measure_peer, roofline

    peers = csv_list(args.peers, str, "--peers") if args.peers else []
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


def _delegate(argv: Sequence[str]) -> Optional[int]:
    """``zoo bench --train ...``, ``zoo bench --lengths ...`` and ``zoo bench
    --memory-plan ...`` are other
    tables with options of their own: run them with the arguments as given,
    before ``zoo bench``'s parser sees them."""
    if "--train" in argv:
        from benchmarks.train_speed import main as train_speed
        return train_speed([a for a in argv if a != "--train"], prog="zoo bench --train")
    if any(a == "--lengths" or a.startswith("--lengths=") for a in argv):
        from benchmarks.sequence import main as sequence
        return sequence(list(argv), prog="zoo bench --lengths")
    if "--memory-plan" in argv:
        from benchmarks.memory_plan import main as memory_plan
        return memory_plan([a for a in argv if a != "--memory-plan"],
                           prog="zoo bench --memory-plan")
    return None


def register(sub) -> None:
    """Adds ``zoo bench`` to the ``zoo`` command's subparsers.

    The ``zoo.commands`` entry point calls this; the measuring modules are
    imported only when the command runs. ``--train``, ``--lengths`` and
    ``--memory-plan`` are handed, before parsing, to
    ``benchmarks.train_speed.main``, ``benchmarks.sequence.main`` and
    ``benchmarks.memory_plan.main``.

    Args:
        sub: the ``argparse`` subparsers action of the ``zoo`` parser (what
            ``ArgumentParser.add_subparsers`` returns).
    """
    s = add_command(sub, "bench", "Benchmark models: latency, FLOPs, memory, compile time "
                                  "(or `zoo bench compare A.json B.json`).", EXAMPLES)
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
    s.add_argument("--memory-plan", action="store_true",
                   help="activation memory instead: no-reuse sum, greedy-by-size arena, "
                        "max-live bound, XLA temp and optionally LiteRT's arena, batch 1 "
                        "(`zoo bench --memory-plan --help` lists its options)")
    s.set_defaults(func=cmd_bench, preparse=_delegate, help_pages=_mode_parsers)


def _mode_parsers() -> list:
    """(words after ``zoo bench``, parser) of the modes with options of their
    own, for the documentation's command-line page."""
    from benchmarks import memory_plan, sequence, train_speed

    return [("--train", train_speed.parser("zoo bench --train")),
            ("--lengths L,L,...", sequence.parser("zoo bench --lengths")),
            ("--memory-plan", memory_plan.parser("zoo bench --memory-plan"))]
