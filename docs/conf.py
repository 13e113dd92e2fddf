"""Sphinx configuration of the zoo's documentation site.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(the ``docs`` extra). Generated at build time, all git-ignored:
``docs/_generated/`` (model catalogue, command-line help, committed result
tables), ``docs/api/`` (the API reference pages) and ``docs/notebooks/``
(copies of ``colab/*.ipynb``, rendered without executing them).
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

_project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
project = "zoo"
author = "zoo contributors"
copyright = "2026, zoo contributors"
release = version = _project["version"]
REPOSITORY = _project["urls"]["Repository"]

extensions = [
    "myst_nb",  # MyST Markdown pages and the notebooks (includes myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "catalogue",
    "cli_help",
    "results",
    "apiref",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "_generated", "_ext", "Thumbs.db", ".DS_Store",
                    "**.ipynb_checkpoints"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 4  # [text](page.md#a-heading) links

# The notebooks are pages as committed (without outputs): never executed here;
# tests/test_notebooks.py runs them.
nb_execution_mode = "off"

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autosummary_generate = False  # the pages are written by docs/_ext/apiref.py
napoleon_google_docstring = True
napoleon_numpy_docstring = True
# ``Attributes:`` sections as fields of their class: as ``.. attribute::``
# entries they would describe a second time a dataclass field that autodoc
# also finds as a member (one whose default is a function or a type).
napoleon_use_ivar = True

html_theme = "sphinx_book_theme"
html_title = "zoo"
html_theme_options = {
    "repository_url": REPOSITORY,
    "use_repository_button": True,
    "show_toc_level": 2,
}


def _copy_notebooks(app) -> None:
    """colab/*.ipynb -> docs/notebooks/ (only files that changed)."""
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    sources = {p.name: p for p in (ROOT / "colab").glob("*.ipynb")}
    for stale in target.glob("*.ipynb"):
        if stale.name not in sources:
            stale.unlink()
    for name, src in sources.items():
        dst = target / name
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)


def setup(app):
    app.connect("builder-inited", _copy_notebooks)
