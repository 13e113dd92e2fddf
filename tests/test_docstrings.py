"""Every public function and class says what it takes, returns and raises.

The API reference is generated from the docstrings (``docs/_ext/apiref.py``),
so they are the documentation. The public names are the ones that reference
documents: a module's ``__all__`` or the names it defines without a leading
underscore, and the methods of public classes. Docstrings are Google style
(read by napoleon):

- every public function, method and class has a docstring;
- every parameter is an entry of an ``Args:`` (or ``Keyword Args:``) section,
  written ``name:`` or ``name (type):``; ``*args`` and ``**kwargs`` too;
- a function that returns a value has a ``Returns:`` section (a generator,
  ``Yields:``);
- a function whose own body raises has a ``Raises:`` section;
- a dataclass, named tuple or Flax module names each of its fields in an
  ``Attributes:`` (or ``Args:``) section.

The checks read the docstring's sections; what the prose says is for people.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
apiref = pytest.importorskip("apiref")

SECTION = re.compile(r"^([A-Z][A-Za-z ]*):\s*$")
ENTRY = re.compile(r"^\s+(\*{0,2}\w+)\s*(\([^)]*\))?\s*:")
ARG_SECTIONS = ("Args", "Keyword Args")
FIELD_SECTIONS = ("Attributes", "Args")


def sections(doc: str) -> dict[str, list[str]]:
    """The docstring's Google sections: title -> the names of its entries
    (for Args/Attributes) or its lines (for the others)."""
    found: dict[str, list[str]] = {}
    current = None
    for line in doc.splitlines():
        title = SECTION.match(line)
        if title and not line.startswith(" "):
            current = title.group(1)
            found.setdefault(current, [])
            continue
        if current is None:
            continue
        if line.strip() and not line.startswith(" "):
            current = None
            continue
        entry = ENTRY.match(line)
        if entry and (len(line) - len(line.lstrip())) <= 4:
            found[current].append(entry.group(1).lstrip("*"))
        elif line.strip():
            found[current].append("")
    return found


def _body_facts(fn) -> tuple[bool, bool, bool]:
    """(returns a value, yields, raises) in the function's own body."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False, False, False
    returns = yields = raises = False

    def walk(node):
        nonlocal returns, yields, raises
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                raises = True
            if isinstance(child, ast.Return) and child.value is not None and not (
                    isinstance(child.value, ast.Constant) and child.value.value is None):
                returns = True
            if isinstance(child, (ast.Yield, ast.YieldFrom)):
                yields = True
            walk(child)

    node = tree.body[0]
    walk(node)
    return returns, yields, raises


def function_problems(fn, skip_first: bool = False, doc: str | None = None) -> list[str]:
    """What the function's docstring (or ``doc`` in its place) leaves out, as short phrases."""
    doc = doc or (inspect.getdoc(fn) if fn.__doc__ else None)
    if not doc:
        return ["no docstring"]
    found = sections(doc)
    problems = []
    documented = {n for s in ARG_SECTIONS for n in found.get(s, [])}
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    if skip_first and params:
        params = params[1:]
    missing = [p.name for p in params if p.name not in documented]
    if missing:
        problems.append("Args: missing " + ", ".join(missing))
    returns, yields, raises = _body_facts(fn)
    if yields and "Yields" not in found:
        problems.append("no Yields:")
    elif returns and not yields and "Returns" not in found:
        problems.append("no Returns:")
    if raises and "Raises" not in found:
        problems.append("no Raises:")
    return problems


def _fields(cls) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)
                if f.init and f.name not in ("parent", "name")]
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return list(cls._fields)
    return []


def _fields_class(cls) -> bool:
    """Dataclasses (Flax modules too) and named tuples: fields, not a hand-written constructor."""
    return dataclasses.is_dataclass(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))


def class_problems(cls) -> dict[str, list[str]]:
    """Problems of the class and of each public method it defines, by qualified name."""
    out: dict[str, list[str]] = {}
    doc = inspect.getdoc(cls) if cls.__doc__ else None
    own: list[str] = []
    if not doc:
        own.append("no docstring")
    else:
        found = sections(doc)
        fields = _fields(cls)
        named = {n for s in FIELD_SECTIONS for n in found.get(s, [])}
        missing = [f for f in fields if f not in named]
        if missing:
            own.append("Attributes: missing " + ", ".join(missing))
        init = vars(cls).get("__init__")
        written_here = inspect.isfunction(init) and init.__qualname__.startswith(cls.__qualname__)
        if not _fields_class(cls) and written_here:  # not one typing.Protocol adds
            # The constructor's parameters belong in the class docstring.
            own += [p for p in function_problems(init, skip_first=True, doc=doc)
                    if p.startswith("Args")]
    if own:
        out[cls.__qualname__] = own
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for name, member in vars(cls).items():
        if name.startswith("_") or name in fields:  # a field's default is documented as a field
            continue
        if isinstance(member, (staticmethod, classmethod)):
            fn, skip = member.__func__, isinstance(member, classmethod)
        elif isinstance(member, property):
            if not member.__doc__:
                out[f"{cls.__qualname__}.{name}"] = ["no docstring"]
            continue
        elif inspect.isfunction(member):
            fn, skip = member, True
        else:
            continue
        problems = function_problems(fn, skip_first=skip)
        if problems:
            out[f"{cls.__qualname__}.{name}"] = problems
    return out


def module_problems(modname: str) -> dict[str, list[str]]:
    module = importlib.import_module(modname)
    out: dict[str, list[str]] = {}
    for name in apiref.public_names(module):
        obj = getattr(module, name)
        if getattr(obj, "__module__", modname) != modname:
            continue  # documented (and checked) where it is defined
        if inspect.isclass(obj):
            out.update({f"{modname}.{k}": v for k, v in class_problems(obj).items()})
        elif inspect.isfunction(obj):
            problems = function_problems(obj)
            if problems:
                out[f"{modname}.{name}"] = problems
    return out


MODULES = apiref.modules()


@pytest.mark.parametrize("modname", MODULES)
def test_public_docstrings_say_what_they_take_return_and_raise(modname):
    problems = module_problems(modname)
    assert not problems, "\n".join(f"{k}: {'; '.join(v)}" for k, v in problems.items())


def test_the_checker_finds_what_is_missing():
    def documented(images, size=224, *, mean=None):
        """Resize images.

        Args:
            images: a batch.
            size (int): the side.
            mean: per-channel mean.

        Returns:
            The batch.

        Raises:
            ValueError: if ``images`` is not 4-D.
        """
        if images.ndim != 4:
            raise ValueError("4-D")
        return images

    def undocumented(images, size=224, **options):
        """Resize images.

        Args:
            images: a batch.
        """
        if size < 1:
            raise ValueError("size")
        return images

    def generator(n):
        """Count.

        Args:
            n: up to.

        Returns:
            numbers.
        """
        yield from range(n)

    assert function_problems(documented) == []
    assert function_problems(undocumented) == ["Args: missing size, options", "no Returns:",
                                               "no Raises:"]
    assert function_problems(generator) == ["no Yields:"]

    @dataclasses.dataclass
    class Box:
        """A box.

        Attributes:
            x: left.
        """
        x: int
        y: int

        def area(self):
            return 0

    assert class_problems(Box) == {
        "test_the_checker_finds_what_is_missing.<locals>.Box": ["Attributes: missing y"],
        "test_the_checker_finds_what_is_missing.<locals>.Box.area": ["no docstring"]}
