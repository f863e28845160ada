"""Every page of the built book, opened by a real headless Chromium as a reader would (``make test-browser``).

Serves ``_build/html`` (``make book``) on 127.0.0.1 from a stdlib ``http.server`` thread and opens every
HTML page of it. A page fails on:

* any request to a host other than that local server (the book must work offline: no CDN, no fonts);
* any console error or uncaught page error;
* an ``<img>`` that did not load (``naturalWidth`` 0) or a ``<video>`` that cannot load (``error`` set, or no
  metadata after a few seconds);
* visible reprs instead of outputs (``<IPython.core.display...``, ``<Figure size ...``);
* a code or output block wider than the content column (``scrollWidth > clientWidth + 1``): code cells,
  outputs, tables' containers, the article and the page itself;
* a table whose neighbouring cells' text is closer than :data:`MIN_CELL_GAP` px (columns that run together).

Per page it logs the requests (all local), console errors and media loaded (also written to
``_build/browser/book_pages.log``). Skips when ``_build/html`` or the browser is missing, unless
``REMOCO_REQUIRE_BROWSER=1``, where it fails.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import ROOT, launch_chromium, missing_browser, require

pytestmark = pytest.mark.browser

HTML = Path(os.environ.get("REMOCO_BOOK_HTML") or ROOT / "_build" / "html")  # override: another build
LOG = ROOT / "_build" / "browser" / "book_pages.log"
VIEWPORT = {"width": 1280, "height": 900}  # a laptop reader: the article column is ~ 750 px wide
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads"}
BAD_TEXT = ("<IPython.core.display", "<Figure size")
MIN_CELL_GAP = 8  # px between the text of two neighbouring table cells on one line
# what a reader sees as a block: a code cell, an output (text, HTML, tables), a table's container
OVERFLOW_SELECTORS = [
    "div.cell_input div.highlight pre",
    "div.highlight pre",
    ".cell_output pre",
    ".cell_output .output",
    ".cell_output",
    ".cell_output table",
    ".pst-scrollable-table-container",
    ".table-wrapper",
    "article.bd-article",
]


def _pages() -> list[str]:
    if not (HTML / "index.html").exists():
        return []
    return sorted(str(p.relative_to(HTML)) for p in HTML.rglob("*.html")
                  if not SKIP_DIRS.intersection(p.relative_to(HTML).parts[:-1]))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    require([] if (HTML / "index.html").exists() else [f"the built book {HTML} (make book)"], "book browser test")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser(server):
    require(missing_browser(), "book browser test")
    from playwright.sync_api import sync_playwright

    LOG.parent.mkdir(parents=True, exist_ok=True)
    LOG.write_text("")
    with sync_playwright() as pw:
        b = launch_chromium(pw)
        try:
            yield b
        finally:
            b.close()


# Media, visible text and overflowing blocks, measured in the page after it loaded.
_MEASURE = """
([selectors, minGap]) => {
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const imgs = [...document.images].map((i) => ({src: (i.currentSrc || i.src).slice(0, 90),
                                                  ok: i.complete && i.naturalWidth > 0}));
  const vids = [...document.querySelectorAll('video')].map((v) => ({
      src: (v.currentSrc || (v.querySelector('source') || {}).src || '').slice(0, 60),
      ok: !v.error && v.readyState >= 1, readyState: v.readyState, error: v.error ? v.error.code : null}));
  const overflow = [];
  const seen = new Set();
  const reported = [];
  for (const sel of selectors) {
    for (const el of document.querySelectorAll(sel)) {
      if (seen.has(el) || !visible(el)) continue;
      seen.add(el);
      if (reported.some((r) => el.contains(r))) continue;  // report the innermost overflowing block once
      if (el.scrollWidth > el.clientWidth + 1) {
        reported.push(el);
        const cell = el.closest('.cell');
        const cells = [...document.querySelectorAll('.cell')];
        overflow.push({selector: sel, scrollWidth: el.scrollWidth, clientWidth: el.clientWidth,
                       cell: cell ? cells.indexOf(cell) + 1 : null,
                       text: (el.innerText || '').trim().split('\\n')[0].slice(0, 70)});
      }
    }
  }
  // table cells whose text runs into its neighbour's: the gap between the text boxes of adjacent cells
  const cramped = [];
  const textBox = (cell) => {
    const r = document.createRange();
    r.selectNodeContents(cell);
    const rects = [...r.getClientRects()].filter((b) => b.width > 0);
    if (!rects.length) return null;
    return {left: Math.min(...rects.map((b) => b.left)), right: Math.max(...rects.map((b) => b.right)),
            top: Math.min(...rects.map((b) => b.top)), bottom: Math.max(...rects.map((b) => b.bottom))};
  };
  for (const row of document.querySelectorAll('article table tr')) {
    if (!visible(row)) continue;
    const cells = [...row.children].filter((c) => (c.innerText || '').trim());
    for (let i = 0; i + 1 < cells.length; i++) {
      const a = textBox(cells[i]), b = textBox(cells[i + 1]);
      if (!a || !b || a.bottom <= b.top || b.bottom <= a.top) continue;  // not on one line
      const gap = b.left - a.right;
      if (gap < minGap)
        cramped.push({gap: Math.round(gap * 10) / 10,
                      text: cells[i].innerText.trim().slice(0, 30) + ' | ' +
                            cells[i + 1].innerText.trim().slice(0, 30)});
    }
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth + 1)
    overflow.push({selector: 'html (the page)', scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth,
                   cell: null, text: ''});
  return {imgs, vids, overflow, cramped, text: document.body.innerText};
}
"""


def _open(browser, server: str, rel: str) -> dict:
    page = browser.new_page(viewport=VIEWPORT)
    requests, foreign, console, errors = [], [], [], []
    host = urlsplit(server).netloc

    def on_request(req):
        url = req.url
        if url.startswith(("data:", "blob:", "about:")):
            return
        requests.append(url)
        if urlsplit(url).netloc != host:
            foreign.append(url)

    page.on("request", on_request)
    page.on("console", lambda m: console.append(f"{m.text} ({m.location.get('url', '')})")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server}/{rel}", wait_until="load", timeout=60_000)
        try:
            page.wait_for_load_state("networkidle", timeout=15_000)
        except Exception:  # noqa: BLE001 - a page that keeps fetching is reported by its requests
            pass
        # scroll through the page so that anything loaded on view is loaded, then give videos time
        height = page.evaluate("document.documentElement.scrollHeight")
        for y in range(0, height + VIEWPORT["height"], VIEWPORT["height"]):
            page.evaluate(f"window.scrollTo(0, {y})")
            page.wait_for_timeout(50)
        deadline = time.time() + 8
        while time.time() < deadline:
            pending = page.evaluate("[...document.querySelectorAll('video')]"
                                    ".filter(v => !v.error && v.readyState < 1).length")
            if not pending:
                break
            page.wait_for_timeout(250)
        page.wait_for_timeout(300)  # late console errors (MathJax, async scripts)
        m = page.evaluate(_MEASURE, [OVERFLOW_SELECTORS, MIN_CELL_GAP])
    finally:
        page.close()
    m.update(requests=requests, foreign=foreign, console=console, errors=errors)
    return m


@pytest.mark.parametrize("rel", _pages() or ["<no _build/html: make book>"])
def test_book_page(browser, server, rel, capsys):
    m = _open(browser, server, rel)
    media = m["imgs"] + m["vids"]
    loaded = sum(x["ok"] for x in media)
    line = (f"{rel}: {len(m['requests'])} requests ({len(m['foreign'])} not local), "
            f"{len(m['console'])} console errors, {len(m['errors'])} page errors, "
            f"media loaded {loaded}/{len(media)} ({len(m['imgs'])} img, {len(m['vids'])} video), "
            f"{len(m['overflow'])} overflowing blocks, {len(m['cramped'])} cramped table cells")
    with LOG.open("a") as f:
        f.write(line + "\n")
    with capsys.disabled():
        print("\n" + line, end="")

    problems = []
    problems += [f"request to another host: {u}" for u in m["foreign"]]
    problems += [f"console error: {c}" for c in m["console"]]
    problems += [f"page error: {e}" for e in m["errors"]]
    problems += [f"<img> not loaded: {x['src']}" for x in m["imgs"] if not x["ok"]]
    problems += [f"<video> cannot load (readyState {x['readyState']}, error {x['error']}): {x['src']}"
                 for x in m["vids"] if not x["ok"]]
    problems += [f"visible text {t!r}" for t in BAD_TEXT if t in m["text"]]
    problems += [f"horizontal overflow of {o['selector']} (cell {o['cell']}): scrollWidth {o['scrollWidth']} > "
                 f"clientWidth {o['clientWidth']}: {o['text']!r}" for o in m["overflow"]]
    problems += [f"table cells {c['gap']} px apart (< {MIN_CELL_GAP}): {c['text']!r}" for c in m["cramped"]]
    if problems:
        with LOG.open("a") as f:
            f.write("".join(f"    {p}\n" for p in problems))
    assert not problems, f"{rel}:\n  " + "\n  ".join(problems)


def test_cramped_table_check_can_fail(browser, tmp_path):
    """The spacing check catches columns that run together (a bare table: "1.0000-0.0020") and passes the
    book's own table style."""
    css = (ROOT / "book" / "_static" / "remoco-book.css").read_text()
    table = ('<article><table class="remoco-table"><tr><th>c_skip</th><th>c_out</th></tr>'
             '<tr><td style="text-align:right">1.0000</td><td style="text-align:right">-0.0020</td></tr>'
             '</table></article>')
    found = {}
    for name, style in (("bare", "td, th { padding: 0 }"), ("book", css)):
        page = browser.new_page(viewport=VIEWPORT)
        try:
            page.set_content(f"<html><head><style>{style}</style></head><body>{table}</body></html>")
            found[name] = page.evaluate(_MEASURE, [OVERFLOW_SELECTORS, MIN_CELL_GAP])["cramped"]
        finally:
            page.close()
    assert found["bare"], "a table without cell padding was not caught"
    assert not found["book"], f"the book's table style still runs cells together: {found['book']}"


def test_site_root_serves_a_favicon(server):
    """The root redirect page has no icon link: a browser asks for /favicon.ico, which must not 404."""
    import urllib.request

    with urllib.request.urlopen(f"{server}/favicon.ico", timeout=10) as r:
        assert r.status == 200 and r.read(8) == b"\x89PNG\r\n\x1a\n"
