"""The ``zoo`` command's plug-ins: the ``zoo.commands`` entry points, the
order of ``zoo --help``, one-line messages for a missing optional extra, and
that the ``zoo`` package imports neither ``benchmarks`` nor ``conversions``."""

import argparse
import ast
import importlib.metadata
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zoo.cli

# The subcommands and their help order, written out here rather than read
# from zoo.cli.
CORE = ["list", "info", "predict", "convert-weights"]
PLUGINS = {
    "convert": "conversions.cli",
    "facemesh": "zoo.face_cli",
    "depth": "zoo.depth.cli",
    "portrait": "zoo.portrait_cli",
    "crop": "zoo.crop_cli",
    "actions": "zoo.actions.cli",
    "bench": "benchmarks.cli",
    "train": "zoo.train.cli",
}
ORDER = CORE + list(PLUGINS)
ABSENT = "zoo_test_absent_dependency"  # a module no environment has


def _subparsers(p):
    return next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))


def test_entry_points_resolve_and_register_their_subcommand():
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="zoo.commands")}
    assert set(eps) == set(PLUGINS)
    for name, module in PLUGINS.items():
        assert eps[name].module == module
        register = eps[name].load()
        p = argparse.ArgumentParser()
        sub = p.add_subparsers(dest="command")
        register(sub)
        assert list(sub.choices) == [name]  # one subcommand each, under its entry point's name
        assert callable(sub.choices[name].get_default("func"))
        assert sub.choices[name].epilog.startswith("examples:")
    assert eps["convert"].extras == ["convert"]


def test_parser_has_every_subcommand_in_the_old_order():
    sub = _subparsers(zoo.cli.parser())
    assert list(sub.choices) == ORDER
    assert [a.dest for a in sub._choices_actions] == ORDER  # the listing in --help
    func = sub.choices["depth"].get_default("func")
    assert func.__module__ == "zoo.depth.cli" and func.__name__ == "cmd_depth"


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        zoo.cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "{" + ",".join(ORDER) + "}" in out
    listed = [line.split()[0] for line in out.splitlines()
              if line.startswith("    ") and line.split()[0] in ORDER]
    assert listed == ORDER


def _fake_plugin(tmp_path, monkeypatch, name, source, extras="[convert]"):
    """Installed entry points, with ``name`` replaced by a plug-in module
    written from ``source``."""
    module = f"zoo_fake_plugin_{name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))  # also clears the import system's caches
    monkeypatch.delitem(sys.modules, module, raising=False)
    real = importlib.metadata.entry_points

    def entry_points(**select):
        eps = [ep for ep in real(**select) if ep.name != name]
        if select.get("group") == "zoo.commands":
            eps.append(importlib.metadata.EntryPoint(
                name=name, value=f"{module}:register {extras}".strip(),
                group="zoo.commands"))
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_plugin_missing_its_extra_is_listed_and_says_so_in_one_line(tmp_path, monkeypatch,
                                                                      capsys):
    _fake_plugin(tmp_path, monkeypatch, "convert", f"import {ABSENT}\n")
    want = (f"zoo convert: needs the 'convert' extra: pip install \"zoo[convert]\" "
            f"(missing module: {ABSENT})\n")
    assert list(_subparsers(zoo.cli.parser()).choices) == ORDER
    for argv in (["convert", "mobilenet_v2", "--to", "tflite"], ["convert", "--help"]):
        assert zoo.cli.main(argv) == 2
        captured = capsys.readouterr()
        assert captured.err == want and captured.out == ""
    with pytest.raises(SystemExit):
        zoo.cli.main(["--help"])
    help_text = capsys.readouterr().out
    assert re.search(r"^    convert +\(unavailable\) needs the 'convert' extra", help_text, re.M)
    # The other commands are untouched: zoo depth runs and fails on its own terms.
    assert zoo.cli.main(["depth", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("zoo depth: error: give image files, folders or "
                                       "--example NAME\n")


def test_command_meeting_a_missing_module_names_the_extra(tmp_path, monkeypatch, capsys):
    _fake_plugin(tmp_path, monkeypatch, "bench", f"""
        def register(sub):
            s = sub.add_parser("bench")
            s.add_argument("--what", default="absent")
            s.set_defaults(func=run)

        def run(args):
            if args.what == "absent":
                import {ABSENT}
            if args.what == "message":
                raise ImportError("plots need matplotlib: pip install 'zoo[bench]'")
            import zoo.no_such_module  # a bug, not a missing extra
        """, extras="[bench]")
    assert zoo.cli.main(["bench"]) == 2
    assert capsys.readouterr().err == (f"zoo bench: needs the 'bench' extra: pip install "
                                       f"\"zoo[bench]\" (missing module: {ABSENT})\n")
    assert zoo.cli.main(["bench", "--what", "message"]) == 2
    assert capsys.readouterr().err == ("zoo bench: error: plots need matplotlib: "
                                       "pip install 'zoo[bench]'\n")
    with pytest.raises(ModuleNotFoundError, match="zoo.no_such_module"):
        zoo.cli.main(["bench", "--what", "bug"])


def test_plugin_without_extra_names_the_module(tmp_path, monkeypatch, capsys):
    _fake_plugin(tmp_path, monkeypatch, "facemesh", f"import {ABSENT}\n", extras="")
    assert zoo.cli.main(["facemesh", "--out", "x"]) == 2
    assert capsys.readouterr().err == (f"zoo facemesh: needs the module {ABSENT}, which is "
                                       "not installed\n")


def test_plugin_with_a_bug_is_not_hidden(tmp_path, monkeypatch):
    _fake_plugin(tmp_path, monkeypatch, "depth", "raise RuntimeError('broken plug-in')\n")
    with pytest.raises(RuntimeError, match="broken plug-in"):
        zoo.cli.parser()


def test_bench_train_and_lengths_take_their_arguments_unparsed(monkeypatch):
    import benchmarks.sequence
    import benchmarks.train_speed

    calls = []
    monkeypatch.setattr(benchmarks.train_speed, "main",
                        lambda argv, prog: calls.append((argv, prog)) or 0)
    monkeypatch.setattr(benchmarks.sequence, "main",
                        lambda argv, prog: calls.append((argv, prog)) or 0)
    assert zoo.cli.main(["bench", "--train", "--models", "x", "--steps", "3"]) == 0
    assert zoo.cli.main(["bench", "--models", "talnet", "--lengths=128,256"]) == 0
    assert calls == [(["--models", "x", "--steps", "3"], "zoo bench --train"),
                     (["--models", "talnet", "--lengths=128,256"], "zoo bench --lengths")]


def test_building_the_parser_imports_no_optional_extra():
    heavy = ["tensorflow", "matplotlib", "onnxruntime", "tf2onnx", "torch", "keras", "av",
             "cv2", "grain", "tensorflow_datasets"]
    code = ("import sys, zoo.cli; zoo.cli.parser(); "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


FORBIDDEN = ("benchmarks", "conversions")


def imported_packages(source: str) -> set[str]:
    """Top-level packages named by the import statements of ``source``,
    wherever they are (module level, functions, conditionals)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.partition(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
              and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value.partition(".")[0])
    return found


def test_import_finder_sees_imports_anywhere():
    source = textwrap.dedent("""
        import os, benchmarks.report as r
        def f():
            from conversions.tflite import to_tflite
            return importlib.import_module("kernels.depthwise")
        from . import sibling
        """)
    assert imported_packages(source) == {"os", "benchmarks", "conversions", "kernels"}


def test_zoo_imports_neither_benchmarks_nor_conversions():
    root = Path(zoo.cli.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 20
    offenders = {str(f.relative_to(root.parent)): sorted(imported_packages(f.read_text())
                                                         & set(FORBIDDEN))
                 for f in files}
    assert {f: p for f, p in offenders.items() if p} == {}
