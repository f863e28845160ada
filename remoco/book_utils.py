"""Helpers the chapters use to show the library's own code, videos and tables.

The book's rule is "one source of truth": a chapter never pastes a copy of library code; it calls
:func:`show_source` on the function it explains, so the rendered page always shows the code that ran.
"""

from __future__ import annotations

import base64
import html
import inspect
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from .video import as_uint8_frames  # re-exported: the one uint8 conversion lives in remoco.video

__all__ = ["show_source", "source_html", "video_html", "show_video", "video_grid", "as_uint8_frames"]


def source_html(obj) -> str:
    """Return highlighted HTML of ``obj``'s source, headed by its module file and line numbers."""
    try:
        lines, start = inspect.getsourcelines(obj)
        path = inspect.getsourcefile(obj)
    except (TypeError, OSError) as exc:
        raise ValueError(f"obj: cannot read the source of {obj!r} ({exc})") from exc
    code = "".join(lines)
    root = Path(__file__).resolve().parent.parent
    try:
        shown = str(Path(path).resolve().relative_to(root))
    except ValueError:
        shown = os.path.basename(path)
    end = start + len(lines) - 1
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        body = highlight(code, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True))
    except ImportError:  # pragma: no cover - pygments ships with IPython
        body = f"<pre>{html.escape(code)}</pre>"
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", str(obj)))
    header = (
        f'<div style="font-size:0.85em;color:#555">'
        f"<code>{html.escape(name)}</code> — <code>{html.escape(shown)}</code>, lines {start}–{end}</div>"
    )
    return f'<div class="remoco-source">{header}<div style="font-size:0.85em">{body}</div></div>'


def show_source(obj):
    """Display the source of a library function or class in the notebook (rendered, never pasted)."""
    from IPython.display import HTML, display

    display(HTML(source_html(obj)))


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
