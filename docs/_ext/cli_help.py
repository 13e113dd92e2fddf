"""The command-line reference, generated at build time from ``zoo.cli.parser()``.

Walks the parser and every subparser (nested ones too) and writes each one's
``--help`` text, as argparse prints it at a fixed width, to
``docs/_generated/cli.md``, which ``cli.md`` includes. A command whose modes
have parsers of their own (``zoo bench --train``) lists them as its
``help_pages`` default: a callable returning ``(words, parser)`` pairs.
"""

from __future__ import annotations

import argparse
import contextlib
import os

from catalogue import GENERATED, write_if_changed

WIDTH = "90"  # columns argparse wraps the help at


@contextlib.contextmanager
def _columns(width: str):
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of the direct subcommands, aliases dropped, in the order added."""
    seen, out = set(), []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    out.append((name, sub))
    return out


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) for ``parser`` and every parser below it, depth first."""
    yield path, parser
    pages = parser.get_default("help_pages")
    for words, mode in (pages() if pages else ()):
        yield path + (words,), mode
    for name, sub in subcommands(parser):
        yield from walk(sub, path + (name,))


def cli_markdown() -> str:
    from zoo.cli import parser

    root = parser()
    parts = []
    with _columns(WIDTH):
        for path, p in walk(root):
            command = " ".join(("zoo",) + path)
            level = "#" * min(2 + max(len(path) - 1, 0), 4)
            parts.append(f"{level} `{command}`\n\n```text\n$ {command} --help\n"
                         f"{p.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def generate(app) -> None:
    write_if_changed(GENERATED / "cli.md", cli_markdown())


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
