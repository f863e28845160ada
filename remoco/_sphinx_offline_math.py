"""Sphinx extension used by the book: serve MathJax 3 from the built site, never from a CDN.

The MathJax files come from the ``sphinx-mathjax-offline`` wheel (installed from PyPI with the book's
requirements); this extension copies them into ``_build/html/_static/mathjax`` and points Sphinx's
``mathjax_path`` at the local copy, so equations render on a machine without network access.
"""

from __future__ import annotations

import importlib.util
import os

from sphinx.util.fileutil import copy_asset


def _mathjax_dir() -> str:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "sphinx-mathjax-offline is not installed: `pip install sphinx-mathjax-offline` "
            "(it ships MathJax 3 for offline builds)")
    return os.path.join(list(spec.submodule_search_locations)[0], "static", "mathjax")


def _config_inited(app, config):
    config.mathjax_path = "mathjax/tex-chtml.js"


def _copy(app, exc):
    if exc is None and app.builder.format == "html":
        copy_asset(_mathjax_dir(), os.path.join(app.outdir, "_static", "mathjax"))


def setup(app):
    _mathjax_dir()  # fail early with a clear message
    app.connect("config-inited", _config_inited, priority=900)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
