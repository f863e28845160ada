"""Helpers the chapters use to show the library's own code, videos and tables.

The book's rule is "one source of truth": a chapter never pastes a copy of library code; it calls
:func:`show_source` on the function it explains, so the rendered page always shows the code that ran.
"""

from __future__ import annotations

import ast
import base64
import html
import inspect
import os
import re
import tempfile
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

from .video import as_uint8_frames  # re-exported: the one uint8 conversion lives in remoco.video

__all__ = ["setup_chapter", "THREADS_ENV", "show_source", "source_html", "preamble_lines", "video_html", "show_video",
           "video_grid", "table_html", "show_table", "as_uint8_frames"]

#: The environment variable that sets every chapter's thread count (a reviewer re-runs the book with another one).
THREADS_ENV = "REMOCO_THREADS"


#: What the chapters' sampling runs in (bf16 autocast; :func:`setup_chapter`).
CHAPTER_PRECISION = "bf16"


def setup_chapter(seed: int = 0, threads: int = 1) -> dict:
    """Fix a chapter's randomness and thread count; its hidden set-up cell calls this first.

    Seeds Python's, NumPy's and torch's global generators with ``seed`` (the library passes its own generators
    wherever it draws; this covers third-party code that does not) and sets torch's and OpenCV's thread count to
    ``threads``, or to the integer in the environment variable :data:`THREADS_ENV` when it is set. The thread
    count is glued as ``threads`` (not shown), so the executed chapter records what it ran with.

    Sampling precision: the chapters sample under bf16 autocast on every machine (:data:`CHAPTER_PRECISION`,
    through :data:`remoco.speed.PRECISION_ENV` unless that is already set), so that a CPU without native bf16
    (which emulates it, slower) computes what the stored outputs show; ``REMOCO_PRECISION=no`` gives the float32
    sampler instead, whose difference is measured in ``results/chapter_drift.json``. Glued as ``precision``.
    Returns ``{"seed": seed, "threads": n, "precision": p}``."""
    import random

    import torch

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    env = os.environ.get(THREADS_ENV)
    if env is not None:
        if not env.strip().isdigit() or int(env) < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}")
        threads = int(env)
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    from .speed import PRECISION_ENV, resolve_mixed_precision

    os.environ.setdefault(PRECISION_ENV, CHAPTER_PRECISION)
    precision = resolve_mixed_precision("auto")
    random.seed(int(seed))
    np.random.seed(int(seed))
    torch.manual_seed(int(seed))
    torch.set_num_threads(int(threads))
    try:
        import cv2

        cv2.setNumThreads(int(threads))
    except ImportError:  # pragma: no cover - OpenCV is a dependency
        pass
    try:
        from myst_nb import glue

        glue("threads", str(int(threads)), display=False)
        glue("precision", precision, display=False)
    except ImportError:  # outside the book (no myst-nb): nothing to record into
        pass
    return {"seed": int(seed), "threads": int(threads), "precision": precision}


_CHECK_CALL = re.compile(r"^_?(check|validate|require)(_|$)")


def _call_name(node) -> str:
    func = node.func if isinstance(node, ast.Call) else None
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _only_raises(stmts) -> bool:
    """True when every path through ``stmts`` ends in ``raise`` (an ``if``'s arms included)."""
    if not stmts:
        return False
    for st in stmts:
        if isinstance(st, ast.Raise):
            continue
        if isinstance(st, ast.If) and _only_raises(st.body) and (not st.orelse or _only_raises(st.orelse)):
            continue
        return False
    return True


def _is_argument_check(node) -> bool:
    """A statement that only validates arguments: ``if ...: raise``, ``assert``, ``_check_*(...)``, or an
    ``if validate:`` block (any condition, no ``else``) whose body holds only such statements."""
    if isinstance(node, ast.If):
        if _only_raises(node.body) and (not node.orelse or _only_raises(node.orelse)):
            return True
        return not node.orelse and all(_is_argument_check(st) for st in node.body)
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, (ast.Expr, ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call):
        return bool(_CHECK_CALL.match(_call_name(node.value)))
    return False


def _source_lines(obj):
    try:
        lines, start = inspect.getsourcelines(obj)
    except (TypeError, OSError) as exc:
        raise ValueError(f"obj: cannot read the source of {obj!r} ({exc})") from exc
    return lines, max(start, 1)


def _preamble(obj):
    """``(first, last, has_docstring, n_checks)`` in file line numbers, or ``None`` (see preamble_lines)."""
    lines, start = _source_lines(obj)
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:  # pragma: no cover - inspect returned something that is not a whole definition
        return None
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return None
    node = tree.body[0]
    body = node.body
    if body[0].lineno == node.lineno:  # `def f(): return x` on one line: nothing to fold
        return None
    i = 0
    has_doc = (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
               and isinstance(body[0].value.value, str))
    if has_doc:
        i = 1
    if not isinstance(node, ast.ClassDef):
        while i < len(body) and _is_argument_check(body[i]):
            i += 1
    if i == 0 or i == len(body):  # nothing to fold, or nothing would be left to show
        return None
    return start + body[0].lineno - 1, start + body[i - 1].end_lineno - 1, has_doc, i - int(has_doc)


def preamble_lines(obj) -> tuple[int, int] | None:
    """File line numbers ``(first, last)`` of ``obj``'s docstring and leading argument checks, or ``None``.

    Detected with :mod:`ast` on the function's own source: the docstring, then the consecutive
    statements that only validate arguments (``if ...: raise ...`` whose every arm raises, ``assert``,
    calls such as ``_check_*(...)`` / ``validate_*(...)``, assigned or not, and ``if validate:`` blocks of
    such statements). The first other
    statement (with any comment just above it) starts the part that implements the method. For a
    class, only its docstring counts. ``None`` when there is nothing to fold, or nothing would remain.
    """
    pre = _preamble(obj)
    return None if pre is None else pre[:2]


def _highlight(code: str, first_line: int) -> str:
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - pygments ships with IPython
        numbered = [f"{first_line + i:4d}  {line}" for i, line in enumerate(code.splitlines())]
        return f'<pre style="margin:0">{html.escape(chr(10).join(numbered))}</pre>'
    fmt = HtmlFormatter(noclasses=True, nobackground=True, linenos="inline", linenostart=first_line,
                        prestyles="margin:0")
    return highlight(code, PythonLexer(stripnl=False, ensurenl=True), fmt)


def source_html(obj, lines: tuple[int, int] | None = None, fold: bool = True) -> str:
    """Return highlighted HTML of ``obj``'s own source, headed by its module file and line numbers.

    The source is always read from ``obj`` itself (never a pasted copy) and numbered with the file's
    line numbers. With ``fold=True`` (default) what is not the method is folded behind a ``<details>``
    toggle: the docstring and the leading argument checks (see :func:`preamble_lines`), or, with
    ``lines=(first, last)`` (file line numbers, as shown in the header), everything of ``obj`` outside
    those lines. ``fold=False`` shows the whole source unfolded.
    """
    src, start = _source_lines(obj)
    path = inspect.getsourcefile(obj) or "?"
    end = start + len(src) - 1
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", str(obj)))
    root = Path(__file__).resolve().parent.parent
    try:
        shown = str(Path(path).resolve().relative_to(root))
    except ValueError:
        shown = os.path.basename(path)

    def seg(a: int, b: int) -> str:  # file lines a..b (inclusive) of obj's source
        return "".join(src[a - start:b - start + 1])

    def folded(a: int, b: int, what: str) -> str:
        return (f'<details class="remoco-source-folded"><summary style="cursor:pointer;font-size:0.85em;'
                f'color:#555">{html.escape(what)} (lines {a}–{b})</summary>{_highlight(seg(a, b), a)}</details>')

    parts = []
    if lines is not None:
        try:
            a, b = (int(x) for x in lines)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"lines: expected (first, last) file line numbers, got {lines!r}") from exc
        if not start <= a <= b <= end:
            raise ValueError(f"lines: expected {start} <= first <= last <= {end} (the lines of {name} in "
                             f"{shown}), got {lines!r}")
    if not fold:
        parts.append(_highlight(seg(start, end), start))
    elif lines is not None:
        if a > start:
            parts.append(folded(start, a - 1, "more of the source"))
        parts.append(_highlight(seg(a, b), a))
        if b < end:
            parts.append(folded(b + 1, end, "more of the source"))
    else:
        pre = _preamble(obj)
        if pre is None:
            parts.append(_highlight(seg(start, end), start))
        else:
            a, b, has_doc, n_checks = pre
            what = " and ".join(w for w, on in (("docstring", has_doc), ("argument checks", n_checks)) if on)
            parts.append(_highlight(seg(start, a - 1), start))
            parts.append(folded(a, b, what))
            parts.append(_highlight(seg(b + 1, end), b + 1))
    header = (
        f'<div style="font-size:0.85em;color:#555">'
        f"<code>{html.escape(name)}</code> — <code>{html.escape(shown)}</code>, lines {start}–{end}</div>"
    )
    return f'<div class="remoco-source">{header}<div style="font-size:0.85em">{"".join(parts)}</div></div>'


def show_source(obj, lines: tuple[int, int] | None = None, fold: bool = True):
    """Display the source of a library function or class in the notebook (rendered, never pasted).

    The docstring and the leading argument checks are folded behind a toggle so that the page shows
    the lines that implement the method; see :func:`source_html` for ``lines`` and ``fold``.
    """
    from IPython.display import HTML, display

    display(HTML(source_html(obj, lines=lines, fold=fold)))


def _upscale(arr: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return arr
    return arr.repeat(scale, axis=1).repeat(scale, axis=2)


def _encode_mp4(arr: np.ndarray, fps: float) -> bytes:
    import imageio.v2 as imageio

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "clip.mp4")
        writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=1,
                                    pixelformat="yuv420p", ffmpeg_log_level="error")
        for frame in arr:
            writer.append_data(frame)
        writer.close()
        return Path(path).read_bytes()


def video_html(frames, fps: float = 4, scale: int | None = None, caption: str | None = None,
               width: int | None = None) -> str:
    """Return an HTML5 ``<video>`` element (mp4, base64-embedded) that loops the clip.

    ``scale`` repeats pixels (nearest neighbour) so that toy 64×64 clips are visible; by default it
    is chosen so the shorter side is at least 192 px. Frames are padded to even sizes for H.264.
    """
    if fps <= 0:
        raise ValueError(f"fps: expected a positive number, got {fps}")
    arr = as_uint8_frames(frames)
    if scale is None:
        scale = max(1, int(np.ceil(192 / min(arr.shape[1], arr.shape[2]))))
    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale: expected a positive integer, got {scale}")
    arr = _upscale(arr, int(scale))
    pad_h, pad_w = arr.shape[1] % 2, arr.shape[2] % 2
    if pad_h or pad_w:
        arr = np.pad(arr, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    data = base64.b64encode(_encode_mp4(arr, fps)).decode("ascii")
    w = width or arr.shape[2]
    cap = f'<figcaption style="font-size:0.85em">{html.escape(caption)}</figcaption>' if caption else ""
    return (
        f'<figure style="display:inline-block;margin:4px">'
        f'<video width="{w}" controls autoplay loop muted playsinline>'
        f'<source src="data:video/mp4;base64,{data}" type="video/mp4"></video>{cap}</figure>'
    )


def show_video(frames, fps: float = 4, caption: str | None = None, scale: int | None = None):
    """Display one clip inline (mp4). ``frames``: ``(L, H, W, 3)`` uint8 or float in [0, 1]."""
    from IPython.display import HTML, display

    display(HTML(video_html(frames, fps=fps, scale=scale, caption=caption)))


def video_grid(clips: Sequence, titles: Sequence[str] | None = None, fps: float = 4,
               scale: int | None = None):
    """Display several clips side by side, each with its title underneath."""
    from IPython.display import HTML, display

    if titles is not None and len(titles) != len(clips):
        raise ValueError(f"titles: expected {len(clips)} titles, got {len(titles)}")
    parts = [video_html(c, fps=fps, scale=scale, caption=None if titles is None else titles[i])
             for i, c in enumerate(clips)]
    display(HTML('<div style="display:flex;flex-wrap:wrap">' + "".join(parts) + "</div>"))


def _cell(value, fmt: str | None) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if fmt is not None and isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return format(value, fmt)
    return str(value)


def table_html(rows: Sequence, columns: Sequence[str] | None = None, formats: dict | None = None,
               caption: str | None = None) -> str:
    """An HTML ``<table>`` of ``rows`` (dicts, or sequences with ``columns`` naming their fields).

    ``formats`` maps a column to a format spec (``{"loss": ".4f", "params": ",d"}``); numbers are
    right-aligned; ``None`` and NaN print as an en dash. Text is escaped."""
    rows = list(rows)
    if columns is None:
        if not rows or not isinstance(rows[0], dict):
            raise ValueError("columns: required unless rows are dicts")
        columns = list(rows[0])
    columns = list(columns)
    formats = dict(formats or {})
    unknown = sorted(set(formats) - set(columns))
    if unknown:
        raise ValueError(f"formats: unknown column(s) {unknown}; columns are {columns}")
    body = []
    for n, row in enumerate(rows):
        values = [row.get(c) for c in columns] if isinstance(row, dict) else list(row)
        if len(values) != len(columns):
            raise ValueError(f"rows[{n}]: expected {len(columns)} values, got {len(values)}")
        cells = []
        for c, v in zip(columns, values):
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            align = ' style="text-align:right"' if num else ""
            cells.append(f"<td{align}>{html.escape(_cell(v, formats.get(c)))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<table class="remoco-table">{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def show_table(rows: Sequence, columns: Sequence[str] | None = None, formats: dict | None = None,
               caption: str | None = None):
    """Display :func:`table_html` in the notebook (a real table in the book, not a printed block)."""
    from IPython.display import HTML, display

    display(HTML(table_html(rows, columns, formats, caption)))
