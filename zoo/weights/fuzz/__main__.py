"""``python -m zoo.weights.fuzz``: fuzz the weight readers and the image
loader; prints a table of outcomes per format and exits 1 when any input
ended outside ``ok``/``error``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLES = """examples:
  python -m zoo.weights.fuzz --minutes 10                   # every format, 10 minutes in all
  python -m zoo.weights.fuzz --format torch_zip --count 2000 --save fuzz-failures/
  python -m zoo.weights.fuzz --list

Each input runs in a worker process limited to --memory-gib of address space
and --seconds per input; inputs that end badly are written to --save for
reproduction (`python -m zoo.weights.fuzz.worker` reads the same requests)."""


def main(argv=None) -> int:
    from zoo.weights.fuzz import targets
    from zoo.weights.fuzz.runner import Worker, fuzz, markdown, passed

    p = argparse.ArgumentParser(prog="python -m zoo.weights.fuzz", description=__doc__,
                                epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", action="append", dest="formats",
                   help="a target to fuzz (repeatable; default: every one, see --list)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--minutes", type=float, help="total fuzzing time, split over the formats")
    how.add_argument("--count", type=int, help="mutants per format (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory-gib", type=float, default=4.0,
                   help="address-space limit of the worker (default 4)")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="time limit per input (default 10)")
    p.add_argument("--save", type=Path, help="folder for the inputs that ended badly")
    p.add_argument("--json", type=Path, help="write the whole report here")
    p.add_argument("--list", action="store_true", help="list the targets and exit")
    args = p.parse_args(argv)
    try:
        chosen = targets(args.formats)
    except ValueError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
    if args.list:
        for t in chosen:
            print(f"{t.name:<20} {t.read}  {t.description}")
        return 0
    count = args.count if args.minutes is None else None
    if count is None and args.minutes is None:
        count = 200
    with Worker(int(args.memory_gib * 2**30), args.seconds) as worker:
        report = fuzz(chosen, count=count,
                      seconds=None if args.minutes is None else 60 * args.minutes,
                      seed=args.seed, save=args.save, worker=worker,
                      say=lambda line: print(line, file=sys.stderr, flush=True))
    print(markdown(report), end="")
    for name, r in report.items():
        for b in r["bad"][:5]:
            print(f"{name}: {b['input']} {b['outcome']}: {b.get('type')}: {b.get('message')}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
