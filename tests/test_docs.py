"""The documentation site: built with Sphinx, warnings as errors, and every
link inside the built HTML resolves.

The build is the one the docs extra describes (``python -m sphinx -W
--keep-going -b html docs OUT``): MyST pages, the notebooks of ``colab/``
rendered without executing, the model catalogue, command-line help, result
tables and API reference generated while building. A broken cross-reference,
a page outside every toctree or a docstring docutils cannot read fails it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")
pytest.importorskip("sphinx_book_theme")

# One test worker runs this file (`--dist loadgroup`): the site is built
# once, not once per worker.
pytestmark = pytest.mark.xdist_group("docs_site")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html")
    r = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                        str(DOCS), str(out)], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONHASHSEED": "0"})
    assert r.returncode == 0, f"sphinx failed:\n{r.stderr[-6000:]}"
    return out


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag in ("a", "span", "div", "section", "dt", "p") else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        for key in ("href", "src"):
            if a.get(key):
                self.links.append(a[key])


def parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(errors="replace"))
    return p


def broken_links(site: Path) -> list[str]:
    """Every local href/src of every page whose file or #anchor does not exist."""
    # Theme assets under _static/ include Jinja templates, not pages.
    pages = {p: parse(p) for p in site.rglob("*.html")
             if p.relative_to(site).parts[0] not in ("_static", "_sources")}
    broken = []
    for page, parsed in pages.items():
        for link in parsed.links:
            url = urlsplit(link)
            if url.scheme or url.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue
            target = page if not url.path else (page.parent / unquote(url.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link} (no such file)")
            elif url.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse(target).ids
                if unquote(url.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {link} (no such anchor)")
    return broken


def test_link_checker_finds_planted_breakage(tmp_path):
    """The checker itself, on a hand-made site: one good link and anchor, one
    missing file, one missing anchor, external links ignored."""
    (tmp_path / "a.html").write_text(
        '<a href="b.html#here">ok</a><a href="missing.html">x</a><a href="b.html#nowhere">y</a>'
        '<a href="https://example.org/zzz">ext</a><img src="img/p.png"><a href="#top">t</a>'
        '<h1 id="top">A</h1>')
    (tmp_path / "b.html").write_text('<section id="here"></section>')
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "p.png").write_bytes(b"")
    assert sorted(broken_links(tmp_path)) == ["a.html: b.html#nowhere (no such anchor)",
                                              "a.html: missing.html (no such file)"]


@pytest.mark.slow
def test_site_builds_without_warnings_and_links_resolve(site):
    assert (site / "index.html").is_file()
    assert broken_links(site) == []


@pytest.mark.slow
def test_catalogue_lists_every_registered_model(site):
    import zoo

    text = (site / "catalogue.html").read_text()
    missing = [name for name in zoo.list_models() if f">{name}<" not in text]
    assert missing == []


@pytest.mark.slow
def test_every_subcommand_has_its_help_on_the_cli_page(site):
    import argparse

    from zoo.cli import parser

    text = (site / "cli.html").read_text()
    root = parser()
    names = [name for a in root._actions if isinstance(a, argparse._SubParsersAction)
             for name in a.choices]
    assert names
    for name in names:
        assert f"$ zoo {name} --help" in text, name
    # The modes of `zoo bench` that parse options of their own.
    for mode in ("--train", "--lengths", "--memory-plan"):
        assert f"usage: zoo bench {mode}" in text, mode


@pytest.mark.slow
def test_notebooks_are_pages_without_outputs(site):
    for nb in sorted((ROOT / "colab").glob("*.ipynb")):
        page = site / "notebooks" / f"{nb.stem}.html"
        assert page.is_file(), page
        assert "cell_output" not in page.read_text(), f"{page.name}: rendered with outputs"


def newest_per_model(runs: dict[str, tuple[str, set[str]]]) -> set[str]:
    """The names of the runs that are the newest for at least one model, from
    {name: (sortable time, models)}."""
    newest: dict[str, tuple[str, str]] = {}
    for name, (when, models) in runs.items():
        for m in models:
            if m not in newest or when > newest[m][0]:
                newest[m] = (when, name)
    return {name for _, name in newest.values()}


def test_newest_per_model_on_planted_runs():
    runs = {"a": ("2026-01-01", {"x", "y"}), "b": ("2026-02-01", {"y"}), "c": ("2025-12-01", {"x"})}
    assert newest_per_model(runs) == {"a", "b"}


@pytest.mark.slow
def test_committed_results_are_on_their_pages(site):
    """Every run that is the newest for some model (per backend) is shown on its page."""
    import json

    bench = (site / "benchmarks.html").read_text()
    for kind in ("bench", "seq", "train"):
        by_backend: dict[str, dict] = {}
        for path in (ROOT / "benchmarks" / "results").glob(f"{kind}-*.json"):
            data = json.loads(path.read_text())
            by_backend.setdefault(data["env"]["backend"], {})[path.stem] = (
                data["env"]["date_utc"], {r["model"] for r in data["results"]})
        for runs in by_backend.values():
            for stem in newest_per_model(runs):
                assert stem in bench, stem
    export = (site / "export.html").read_text()
    runs = {p.stem: (p.stem.rsplit("-", 1)[1], {r["model"] for r in json.loads(p.read_text())["rows"]})
            for p in (ROOT / "conversions" / "results").glob("conversions-*.json")
            if "partial" not in p.name}
    for stem in newest_per_model(runs):
        assert stem in export, stem


WORK_LOG = re.compile(r"\b(issue|ticket|PR) ?#?\d+|#\d{2,}\b|\bsession\b|\bpreviously\b|"
                      r"\bwe fixed\b|\bno longer\b|\bbefore the fix\b", re.I)


def test_pages_describe_the_software_not_its_history():
    hits = []
    for page in sorted(DOCS.glob("*.md")):
        for i, line in enumerate(page.read_text().splitlines(), 1):
            if WORK_LOG.search(line):
                hits.append(f"{page.name}:{i}: {line.strip()}")
    assert hits == []


def test_the_work_log_pattern_catches_what_it_is_for():
    for bad in ("as in issue 16", "fixed in #123", "this session", "previously it was slow",
                "we fixed the bug"):
        assert WORK_LOG.search(bad), bad
    for fine in ("mAP@0.5 84.2", "EfficientNet-B0", "issue a warning", "a PR curve"):
        assert not WORK_LOG.search(fine), fine
