"""The API reference, one page per public module, generated at build time.

Walks the four packages (``zoo``, ``kernels``, ``benchmarks``,
``conversions``) without running any ``__main__`` and writes
``docs/api/<module>.rst``: an autosummary table of the module's public
names followed by their autodoc entries. A module's public names are its
``__all__`` or, without one, every name not starting with ``_`` that the
module defines itself: classes and functions whose ``__module__`` is the
module, and names its top level assigns. A package that re-exports a name
from a documented submodule links to it there instead of documenting it twice.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

from catalogue import write_if_changed

API = Path(__file__).resolve().parent.parent / "api"
PACKAGES = ("zoo", "kernels", "benchmarks", "conversions")
TITLES = {"zoo": "zoo: models, registry, weights, tasks, training",
          "kernels": "kernels: fused ops (reference, fast XLA, Pallas)",
          "benchmarks": "benchmarks: the measurement suite",
          "conversions": "conversions: TFLite and ONNX export"}


def _skipped(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last.startswith("_") or last.startswith("test_") or last == "conftest"


def modules() -> list[str]:
    """Every public module of the packages, sorted, packages before their modules."""
    found = []

    def visit(name: str):
        found.append(name)
        module = importlib.import_module(name)
        for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
            child = f"{name}.{info.name}"
            if not _skipped(child):
                if info.ispkg:
                    visit(child)
                else:
                    found.append(child)

    for package in PACKAGES:
        visit(package)
    return sorted(found)


def _assigned(module) -> list[str]:
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return []
    names = []
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def public_names(module) -> list[str]:
    """The module's public names (see the module docstring), in source order."""
    explicit = getattr(module, "__all__", None)
    if explicit is not None:
        return list(explicit)
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == module.__name__:
            names.append(name)
    names += [n for n in _assigned(module) if not n.startswith("_") and n not in names
              and hasattr(module, n) and not inspect.ismodule(getattr(module, n))]
    return names


def _canonical(obj, documented: dict[str, list[str]]):
    """``module.name`` where ``obj`` is documented, if that is another module's page."""
    home, name = getattr(obj, "__module__", None), getattr(obj, "__name__", None)
    if home in documented and name in documented[home]:
        return f"{home}.{name}"
    return None


def _entry(name: str, obj) -> list[str]:
    """The autodoc directive for one public name, chosen by what it is."""
    if inspect.isclass(obj):
        kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
        return [f".. {kind}:: {name}", "   :members:", "   :show-inheritance:",
                "   :member-order: bysource"]
    if inspect.isroutine(obj) or (callable(obj) and _has_signature(obj)):
        return [f".. autofunction:: {name}"]
    # Data: its type and (short) value. Not autodata: for an instance of a
    # builtin type that would print the type's own docstring (dict's, tuple's).
    lines = [f".. py:data:: {name}", f"   :type: {type(obj).__qualname__}"]
    value = repr(obj)
    if len(value) <= 120 and "\n" not in value:
        lines.append(f"   :value: {value}")
    return lines


def _summarised(obj) -> bool:
    """Classes and functions go in the summary table; data only in the reference."""
    return inspect.isclass(obj) or inspect.isroutine(obj) or (callable(obj) and _has_signature(obj))


def _has_signature(obj) -> bool:
    try:
        inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    return True


def module_page(modname: str, documented: dict[str, list[str]]) -> str:
    module = importlib.import_module(modname)
    own, linked = [], []
    for name in documented[modname]:
        obj = getattr(module, name)
        target = _canonical(obj, documented)
        if target and target != f"{modname}.{name}":
            linked.append(target)
        else:
            own.append(name)
    def rel(target: str) -> str:
        # autosummary resolves names against the current module and warns on its prefix
        return target[len(modname) + 1:] if target.startswith(modname + ".") else target

    title = f"``{modname}``"
    lines = [title, "=" * len(title), "", f".. automodule:: {modname}", "   :no-members:", ""]
    children = [m for m in documented if m.rsplit(".", 1)[0] == modname]
    if children:
        lines += ["Modules", "-------", "", ".. autosummary::", ""]
        lines += [f"   {rel(c)}" for c in children] + [""]
    summarised = [n for n in own if _summarised(getattr(module, n))]
    if summarised:
        lines += ["Summary", "-------", "", ".. autosummary::", ""]
        lines += [f"   {n}" for n in summarised] + [""]
    if linked:
        lines += ["Re-exported here", "----------------", "", ".. autosummary::", ""]
        lines += [f"   ~{rel(t)}" for t in linked] + [""]
    if own:
        lines += ["Reference", "---------", "", f".. currentmodule:: {modname}", ""]
        for name in own:
            lines += _entry(name, getattr(module, name)) + [""]
    return "\n".join(lines)


def index_page(names: list[str]) -> str:
    lines = ["API reference", "=============", "",
             "Every public name of the four packages, one page per module, generated from "
             "the docstrings. The stable entry points are the top-level ``zoo`` functions "
             "(:doc:`zoo`); the rest is documented for readers of the code and for "
             "extending the zoo.", ""]
    for package in PACKAGES:
        lines += [TITLES[package], "-" * len(TITLES[package]), "", ".. toctree::",
                  "   :maxdepth: 1", ""]
        lines += [f"   {m}" for m in names if m == package or m.startswith(package + ".")]
        lines.append("")
    return "\n".join(lines)


def generate(app) -> None:
    names = modules()
    documented = {m: public_names(importlib.import_module(m)) for m in names}
    API.mkdir(parents=True, exist_ok=True)
    keep = {"index.rst"} | {f"{m}.rst" for m in names}
    for stale in API.glob("*.rst"):
        if stale.name not in keep:
            stale.unlink()
    write_if_changed(API / "index.rst", index_page(names))
    for m in names:
        write_if_changed(API / f"{m}.rst", module_page(m, documented))


TABLE_BORDER = re.compile(r"=+( +=+)+ *$")
LIST_ITEM = re.compile(r"([-*+]|\d+[.)]|[a-zA-Z][.)]|#[.)]) +")


def tidy_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    """Make plain-text docstrings valid reStructuredText, in place.

    Many docstrings indent an example or a table under a sentence, wrap a
    list item, or mention ``**kwargs`` or ``|x|`` in prose; docutils reads
    those as block quotes missing their blank lines, unfinished emphasis or
    substitutions, and reports errors. So: an indented block under a plain
    paragraph becomes a literal block (examples keep their layout); a blank
    line goes in wherever other text leaves or returns to the margin right
    after a non-blank line (list items and fields keep their wrapped
    lines); a ``*``, ``**`` that opens no emphasis on its line and every
    ``|`` are escaped outside inline literals. Runs after napoleon has
    turned Google and NumPy sections into fields."""
    out: list[str] = []
    literal = table = False
    previous = ""  # the last non-blank line
    for i, line in enumerate(lines):
        blank = not line.strip()
        if TABLE_BORDER.match(line):
            # A simple table: its rows are copied as they are. It ends at a
            # border followed by a blank line (or the end).
            table = not (table and (i + 1 == len(lines) or not lines[i + 1].strip()))
            out.append(line)
            previous = line
            continue
        if table:
            out.append(line)
            continue
        if literal:
            if blank or _indent(line) > 0:
                out.append(line)
                continue
            literal = False
            if out and out[-1].strip():
                out.append("")
        if not blank and _indent(line) > 0 and previous and _indent(previous) == 0:
            if previous.rstrip().endswith("::"):
                literal = True
            elif _plain(previous):
                last = max(i for i, ln in enumerate(out) if ln.strip())
                if out[last].rstrip().endswith(":"):
                    out[last] = out[last].rstrip() + ":"
                    del out[last + 1:]
                    out.append("")
                else:
                    del out[last + 1:]
                    out += ["", "::", ""]
                literal = True
            if literal:
                if out and out[-1].strip():
                    out.append("")
                out.append(line)
                previous = line
                continue
        if not blank and out and out[-1].strip():
            if (_indent(line) == 0) != (_indent(out[-1]) == 0) and not _continues(out[-1], line):
                out.append("")
            elif _marker(line) and _marker(out[-1]) and _marker(line) != _marker(out[-1]):
                out.append("")  # one list kind right after another
        out.append(_escape(line))
        if not blank:
            previous = line
    _protect_first_sentence(out)
    lines[:] = out


def _protect_first_sentence(lines: list[str]) -> None:
    """autosummary cuts its one-line summary at the first ". ": one inside an
    inline literal of the first paragraph (``0 .. n``) would cut the literal
    in two. A word joiner after such a period keeps it whole and shows nothing."""
    for i, line in enumerate(lines):
        if not line.strip():
            if any(ln.strip() for ln in lines[:i]):
                return
            continue
        parts = re.split(r"(``.*?``)", line)
        lines[i] = "".join(re.sub(r"\.(?=\s)", ".\u2060", p) if p.startswith("``") else p
                           for p in parts)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _marker(line: str) -> str:
    """The kind of list item ``line`` starts at the margin ("-", "*", "+" or "1."), or ""."""
    item = LIST_ITEM.match(line) if _indent(line) == 0 else None
    if not item:
        return ""
    return item.group(1) if item.group(1) in "-*+" else "1."


def _plain(line: str) -> bool:
    """A line of an ordinary paragraph: no list item, field or directive."""
    text = line.strip()
    return not (LIST_ITEM.match(text) or text.startswith((":", "..", "|", "+", "=", "-")))


def _continues(previous: str, line: str) -> bool:
    """``line`` is the wrapped continuation of a list item or field in ``previous``."""
    text = previous.lstrip()
    item = LIST_ITEM.match(text)
    if item and _indent(line) == _indent(previous) + item.end():
        return True
    return text.startswith(":") and _indent(line) > _indent(previous)


def _escape(line: str) -> str:
    """Escape ``|`` and unpaired ``*``/``**`` outside the line's inline literals."""
    if line.count("``") % 2 or line.lstrip().startswith(("..", "|", "+")):
        return line
    parts = re.split(r"(``.*?``|`[^`]*`_?)", line)
    prose = "".join(parts[::2])
    for stars in ("**", "*"):
        if prose.count(stars) % 2 == 1:
            parts[::2] = [re.sub(r"(?<![\\*])" + re.escape(stars) + r"(?=[A-Za-z_(])",
                                 lambda m: "\\" + "\\".join(m.group(0)), p) for p in parts[::2]]
            prose = "".join(parts[::2])
    parts[::2] = [p.replace("|", "\\|") for p in parts[::2]]
    return "".join(parts)


def setup(app):
    app.connect("builder-inited", generate)
    app.connect("autodoc-process-docstring", tidy_docstring, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
