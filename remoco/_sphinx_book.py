"""Sphinx extension used by the book: keep every page self-contained and its console clean.

* **No progress widgets.** Before any chapter is executed, ``REMOCO_PROGRESS=off`` is put into the
  build's environment (unless already set), so the kernels that myst-nb starts inherit it and
  :mod:`remoco._progress` creates every tqdm bar disabled: the executed chapters store no ipywidgets
  state for their progress bars. (myst-nb's ``nb_ipywidgets_js`` is emptied in ``_config.yml``, so
  whatever widget state remains, e.g. the drag demo's, never pulls ipywidgets' JavaScript from a CDN.)
* **No duplicated inline scripts.** Sphinx 7.4 lists a body-only ``<script>`` that an extension adds
  after the builder was created twice (once as filename ``None``, once as ``''``): sphinx-thebe's
  ``const THEBE_JS_URL = ...`` then throws "Identifier 'THEBE_JS_URL' has already been declared" on
  every page. Each page's scripts are de-duplicated here.
* **The book's stylesheet** ``book/_static/remoco-book.css`` (wrapping long output lines, figures
  scaled to the column, padded tables) is copied into ``_static`` and linked from every page.
* **A favicon at the site root.** The root ``index.html`` that sphinx-external-toc writes is a bare redirect with
  no ``<link rel="icon">``, so a browser asks for ``/favicon.ico`` and logs a 404 console error; the book's
  icon is copied there.
"""

from __future__ import annotations

import os
from pathlib import Path

from sphinx.util.fileutil import copy_asset_file

CSS = Path(__file__).resolve().parent.parent / "book" / "_static" / "remoco-book.css"
FAVICON = CSS.with_name("favicon.png")


def _script_key(js) -> tuple:
    attrs = getattr(js, "attributes", {}) or {}
    return (getattr(js, "filename", str(js)) or "", getattr(js, "priority", 500),
            tuple(sorted((k, str(v)) for k, v in attrs.items())))


def dedupe_scripts(scripts) -> list:
    """``scripts`` without repeats (a filename of ``None`` and ``''`` count as the same inline script)."""
    seen, out = set(), []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            out.append(js)
    return out


def _page_context(app, pagename, templatename, context, doctree):
    if "script_files" in context:
        context["script_files"] = dedupe_scripts(context["script_files"])


def _builder_inited(app):
    if app.builder.format == "html":
        app.add_css_file(CSS.name)


def _copy_css(app, exc):
    if exc is None and app.builder.format == "html":
        copy_asset_file(str(CSS), os.path.join(app.outdir, "_static"))
        root_icon = Path(app.outdir) / "favicon.ico"  # PNG data: browsers read an icon by its content
        root_icon.write_bytes(FAVICON.read_bytes())


def setup(app):
    os.environ.setdefault("REMOCO_PROGRESS", "off")  # inherited by the kernels that execute the chapters
    for path in (CSS, FAVICON):
        if not path.exists():
            raise FileNotFoundError(f"missing the book's asset {path}")
    app.connect("builder-inited", _builder_inited)
    app.connect("html-page-context", _page_context, priority=900)
    app.connect("build-finished", _copy_css)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
