"""The interactive drag demo (ipywidgets / ipycanvas): brush a motion region, draw trajectories, animate.

Section 3.4 of the paper ("Inference pipeline of ReMoCo"): the user *brushes the motion region* on the
reference image and *draws the trajectory of the moving direction*; :class:`remoco.pipeline.ReMoCoPipeline`
then denoises the video with the region-wise trajectory and the motion mask
(:func:`remoco.user_conditions.conditions_from_user`).

This module is only the JupyterLab front end. Its mouse handlers translate canvas coordinates and call
:class:`remoco.drag.DragState` (the browser-free state, coordinates and validation); pictures come from
:func:`remoco.drawing.render_inputs`; the recorded inputs are :mod:`remoco.bench` examples. Any error is
shown as a message inside the widget, never as a traceback.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
import os
import tempfile
import traceback
from pathlib import Path

import numpy as np

from .bench import BenchExample, bench_json, dumps_bench_json, run_bench_example
from .drag import (
    DEFAULT_MAGNIFICATION,
    DEFAULT_SIZE,
    CoordinateMapping,
    DragState,
    check_magnification,
    prepare_reference_image,
)
from .drawing import render_inputs, render_last_frame
from .runs import atomic_file
from .user_conditions import EMPTY_BRUSH, TRAJECTORY_FILL
from .video import as_uint8_frames, png_bytes, write_video

__all__ = [
    "load_demo_pipeline",
    "DragDemo",
    "launch_demo",
    "demo_notebook_path",
]


def load_demo_pipeline(seed: int = 0):
    """Return ``(pipeline, note)``: the shipped toy checkpoints if they load, else the untrained toy model.

    ``note`` is ``""`` for the trained checkpoints and a warning sentence for the fallback
    (:func:`remoco.pipeline.build_toy_remoco_pipeline`: random weights, so videos are noise-like).
    The imports are done on call (plain imports, looked up in their modules at that moment), so that
    ``import remoco.widgets`` stays light and a broken checkpoint module falls back instead of failing.
    """
    try:
        from .shipped import load_shipped_pipeline

        return load_shipped_pipeline(), ""
    except Exception as exc:  # noqa: BLE001 - any failure means "no shipped checkpoints"
        reason = f"{type(exc).__name__}: {exc}"
    from .pipeline import build_toy_remoco_pipeline

    pipe = build_toy_remoco_pipeline(seed=seed)
    note = ("Note: the shipped trained checkpoints could not be loaded "
            f"({reason[:160]}); using the UNTRAINED toy pipeline — the videos are not meaningful.")
    return pipe, note


# ----------------------------------------------------------------------------------------------------
# the widget
# ----------------------------------------------------------------------------------------------------


def _guarded(method):
    """Run a widget callback; show any exception as a message in the widget instead of a traceback."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (ValueError, FileNotFoundError) as exc:
            self.show_message(str(exc), kind="error")
        except Exception as exc:  # noqa: BLE001 - a widget must not raise into the front end
            self.show_message(f"Unexpected error ({type(exc).__name__}): {exc}", kind="error")
            self.last_traceback = traceback.format_exc()
        return None

    return wrapper


#: Recorded drag examples the demo's menu offers besides the photographs: ``{menu label: example JSON}``.
RECORDED_EXAMPLES = {"recorded example (synthetic)": Path(__file__).resolve().parent.parent / "data" / "demo"
                     / "example.json"}


class DragDemo:
    """ipycanvas/ipywidgets drag demo (display it with ``display(demo.widget)`` or just ``demo``).

    Parameters
    ----------
    image : the initial reference image (path / array / PIL) or a name of
        :func:`remoco.data.sample_images`; default: the first sample image.
    pipeline : a ready :class:`~remoco.pipeline.ReMoCoPipeline`; default: :func:`load_demo_pipeline` on
        the first "Animate".
    height, width : model resolution (64 at toy scale). magnification : canvas zoom (6 -> 384 px).
    k, num_frames, num_inference_steps, seed, fps : initial settings.
    state_file : if given, the state (drawing + last result) is written to this JSON file after every
        change — used by the browser test to read the kernel's state.
    output_dir : default folder of the "Save" button.
    empty_brush : what "Animate" does when no region is brushed: ``"error"`` (default, the paper: the
        user brushes the motion region; shown as an error message) or ``"trajectory_blocks"`` (the authors'
        release, MotionPro: only the dragged k x k blocks move). See
        :func:`remoco.user_conditions.conditions_from_user`.
    trajectory_fill : ``"block"`` (the paper: each drag fills its k x k block) or ``"brush"`` (the drag also
        fills the brushed region; what the shipped toy controller follows best, see chapter 5).
    """

    message_text: str = ""  # the message shown in the widget (plain text) and its kind
    message_kind: str = "info"  # "info" | "warning" | "error"

    def __init__(self, image=None, pipeline=None, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE,
                 magnification: int = DEFAULT_MAGNIFICATION, k: int = 8, num_frames: int = 8,
                 num_inference_steps: int = 8, seed: int = 0, fps: float = 4,
                 state_file=None, output_dir="demo_output", pipeline_note: str = "",
                 empty_brush: str = "error", trajectory_fill: str = "block"):
        import ipywidgets as W
        from ipycanvas import MultiCanvas

        if empty_brush not in EMPTY_BRUSH:
            raise ValueError(f"empty_brush: expected one of {EMPTY_BRUSH}, got {empty_brush!r}")
        self.empty_brush = empty_brush
        if trajectory_fill not in TRAJECTORY_FILL:
            raise ValueError(f"trajectory_fill: expected one of {TRAJECTORY_FILL}, got {trajectory_fill!r}")
        self.trajectory_fill = trajectory_fill

        self.height, self.width = int(height), int(width)
        self.magnification = check_magnification(magnification)
        self.state = DragState(self.height, self.width)
        self.pipeline = pipeline
        self.pipeline_note = pipeline_note
        self.state_file = Path(state_file) if state_file else None
        self.fps = fps
        self.last_frames: np.ndarray | None = None
        self.last_example: BenchExample | None = None
        self.last_traceback: str | None = None
        self.image: np.ndarray | None = None
        self.mapping: CoordinateMapping | None = None
        self.image_name = ""

        try:
            from . import data as _data
            self._samples = dict(_data.sample_images())
        except Exception:  # noqa: BLE001 - the picker just stays empty
            self._samples = {}
        # recorded drawings (image + brush + drag) that chapter 8 measures, loaded whole from the menu
        self._recorded = {label: path for label, path in RECORDED_EXAMPLES.items() if Path(path).is_file()}

        ch, cw = self.height * self.magnification, self.width * self.magnification
        self.canvas = MultiCanvas(2, width=cw, height=ch)
        self.canvas.layout.width = f"{cw}px"
        self.canvas.layout.height = f"{ch}px"
        self.canvas.on_mouse_down(self.on_mouse_down)
        self.canvas.on_mouse_move(self.on_mouse_move)
        self.canvas.on_mouse_up(self.on_mouse_up)
        self.canvas.on_mouse_out(self.on_mouse_out)

        lay = W.Layout(width="auto")
        self.picker = W.Dropdown(options=list(self._samples) + list(self._recorded) or ["(none)"], description="Sample",
                                 layout=W.Layout(width="260px"))
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="Upload image")
        self.mode = W.ToggleButtons(options=[("Brush", "brush"), ("Erase", "erase"), ("Trajectory", "trajectory")],
                                    value="brush", description="Mode", style={"button_width": "90px"})
        self.radius = W.IntSlider(value=5, min=1, max=20, description="Radius (px)")
        self.undo_button = W.Button(description="Undo", icon="undo", layout=lay)
        self.clear_button = W.Button(description="Clear", icon="trash", layout=lay)
        self.show_conditions = W.Checkbox(value=True, description="Show conditions (k×k blocks)", indent=False)
        self.k = W.BoundedIntText(value=k, min=1, max=max(self.height, self.width), description="k")
        self.num_frames = W.BoundedIntText(value=num_frames, min=2, max=64, description="Frames")
        self.steps = W.BoundedIntText(value=num_inference_steps, min=1, max=200, description="Steps")
        self.seed = W.IntText(value=seed, description="Seed")
        self.animate_button = W.Button(description="Animate", icon="play", button_style="primary", layout=lay)
        self.progress = W.IntProgress(value=0, min=0, max=1, description="", layout=W.Layout(width="380px"))
        self.save_dir = W.Text(value=str(output_dir), description="Save to")
        self.save_button = W.Button(description="Save", icon="save", layout=lay)
        self.message = W.HTML(value="")
        self.info = W.HTML(value="")
        self.video = W.HTML(value="")
        self.last_frame = W.Image(format="png", layout=W.Layout(width=f"{cw}px", height=f"{ch}px",
                                                                display="none"))  # shown after Animate
        self.downloads = W.HTML(value="")

        self.picker.observe(self._on_pick, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.undo_button.on_click(self.on_undo)
        self.clear_button.on_click(self.on_clear)
        self.show_conditions.observe(lambda ch: self.redraw(), names="value")
        self.k.observe(lambda ch: self.redraw(), names="value")
        self.num_frames.observe(lambda ch: self.redraw(), names="value")
        self.animate_button.on_click(self.on_animate)
        self.save_button.on_click(self.on_save)

        controls = W.VBox([
            W.HBox([self.picker, self.upload]), self.mode, self.radius,
            W.HBox([self.undo_button, self.clear_button]), self.show_conditions,
            self.k, self.num_frames, self.steps, self.seed,
            W.HBox([self.animate_button]), self.progress, W.HBox([self.save_dir, self.save_button]),
        ])
        result = W.VBox([W.HTML("<b>Result</b> — the generated video, and its last frame with the trajectories "
                                "(as in the paper's Fig. 1)"),
                         W.HBox([self.video, self.last_frame]), self.downloads])
        self.widget = W.VBox([self.info, W.HBox([self.canvas, controls]), self.message, result])
        self.widget.add_class("remoco-drag-demo")

        if image is None:
            if self._samples:
                self._set_image(self._samples[self.picker.value], self.picker.value)
            else:
                self._set_image(np.full((self.height, self.width, 3), 128, np.uint8), "grey")
        elif isinstance(image, str) and image in self._samples:
            self.picker.value = image  # triggers _on_pick
            if self.image is None:
                self._set_image(self._samples[image], image)
        else:
            self._set_image(image, str(image) if isinstance(image, (str, os.PathLike)) else "image")
        if self.pipeline_note:
            self.show_message(self.pipeline_note, kind="warning")

    # --- display ---------------------------------------------------------------------------------
    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def show_message(self, text: str, kind: str = "info") -> None:
        colour = {"error": "#b00020", "warning": "#8a5a00", "info": "#1b5e20"}.get(kind, "#333")
        self.message_text, self.message_kind = text, kind
        self.message.value = (f'<div class="remoco-msg remoco-msg-{kind}" style="color:{colour}">'
                              f"{html.escape(text)}</div>") if text else ""

    def _set_image(self, image, name: str):
        img, mapping = prepare_reference_image(image, self.height, self.width, self.magnification)
        self.image, self.mapping, self.image_name = img, mapping, name
        self.state = DragState(self.height, self.width)
        h0, w0 = mapping.original_size
        self.info.value = (
            f"<b>ReMoCo drag demo</b> — image <code>{html.escape(name)}</code>: original {w0}×{h0} px → model "
            f"{self.width}×{self.height} px (scale {mapping.scale[1]:.3f}, crop offset x={mapping.crop_offset[1]:g}, "
            f"y={mapping.crop_offset[0]:g}), shown ×{self.magnification}. Brush the region that moves, then "
            "switch to <i>Trajectory</i> and drag from a point to where it should go.")
        self.redraw()
        self._write_state()

    def redraw(self) -> None:
        """Repaint the canvas (image, brush tint, trajectories, conditions overlay)."""
        if self.image is None:
            return
        rt = mm = None
        trajs = self.state.drawn_trajectories
        if self.show_conditions.value and trajs:
            try:
                rt, mm = self.state.conditions(int(self.num_frames.value), int(self.k.value),
                                               empty_brush=self.empty_brush,
                                               trajectory_fill=self.trajectory_fill)
            except Exception as exc:  # noqa: BLE001 - show the inputs anyway
                self.show_message(f"Cannot compute the conditions: {exc}", kind="warning")
        pic = render_inputs(self.image, self.state.brush_mask, trajs, self.magnification,
                            region_trajectory=rt, motion_mask=mm, k=int(self.k.value))
        self.canvas[0].put_image_data(pic, 0, 0)
        self.canvas[1].clear()

    def _draw_stroke_preview(self, x0, y0, x1, y1):
        layer = self.canvas[1]
        mode = self.mode.value
        if mode == "trajectory":
            layer.stroke_style = "white"
            layer.line_width = max(2, self.magnification // 2)
            layer.stroke_line(x0, y0, x1, y1)
        else:
            layer.fill_style = "rgba(40,120,255,0.45)" if mode == "brush" else "rgba(0,0,0,0.45)"
            layer.fill_circle(x1, y1, (self.radius.value + 0.5) * self.magnification)

    # --- mouse handlers (canvas CSS pixel coordinates) -------------------------------------------
    def _to_model(self, x, y):
        p = self.mapping.canvas_to_model([x, y])
        return float(p[0]), float(p[1])

    @_guarded
    def on_mouse_down(self, x, y):
        self.show_message("")
        mx, my = self._to_model(x, y)
        mode = self.mode.value
        self.state.begin_stroke(mode, mx, my, radius=float(self.radius.value) if mode != "trajectory" else None)
        self._last_canvas_xy = (x, y)
        self._draw_stroke_preview(x, y, x, y)

    @_guarded
    def on_mouse_move(self, x, y):
        if not self.state.in_stroke:
            return
        mx, my = self._to_model(x, y)
        try:
            self.state.extend_stroke(mx, my)
        except ValueError:
            self.canvas[1].clear()
            raise
        x0, y0 = getattr(self, "_last_canvas_xy", (x, y))
        self._last_canvas_xy = (x, y)
        self._draw_stroke_preview(x0, y0, x, y)

    @_guarded
    def on_mouse_up(self, x, y):
        if not self.state.in_stroke:
            return
        mx, my = self._to_model(x, y)
        try:
            kind = self.state.end_stroke(mx, my)
        finally:
            self.redraw()
        self._after_commit(kind)

    @_guarded
    def on_mouse_out(self, x, y):
        if not self.state.in_stroke:
            return
        mode, _ = self.state.current_stroke
        if mode == "trajectory":
            self.state.cancel_stroke()
            self.redraw()
            raise ValueError("Trajectory discarded: the stroke left the image. Draw it inside the canvas "
                             "(press at the start point, release at the end point).")
        try:
            kind = self.state.end_stroke()  # brush strokes may run off the edge; keep what was painted
        finally:
            self.redraw()
        self._after_commit(kind)

    def _after_commit(self, kind):
        if kind == "trajectory":
            t = self.state.drawn_trajectories[-1]
            x0, y0 = t[0]
            mask = self.state.brush_mask
            msg = (f"Trajectory {self.state.num_trajectories} added: "
                   f"({t[0][0]:.1f}, {t[0][1]:.1f}) → ({t[-1][0]:.1f}, {t[-1][1]:.1f}).")
            if not mask[int(math.floor(y0 + 0.5)), int(math.floor(x0 + 0.5))]:
                self.show_message(msg + " Its start is outside the brushed region (the motion mask).", "warning")
            else:
                self.show_message(msg, "info")
        else:
            n_pixels = int(self.state.brush_mask.sum())
            self.show_message(f"{kind.capitalize()} stroke: {n_pixels} pixels in the motion region.")
        self._write_state()

    # --- buttons ---------------------------------------------------------------------------------
    @_guarded
    def on_undo(self, _button=None):
        if not self.state.undo():
            self.show_message("Nothing to undo.", "warning")
        else:
            self.show_message("Undone.")
        self.redraw()
        self._write_state()

    @_guarded
    def on_clear(self, _button=None):
        self.state.clear()
        self.redraw()
        self.show_message("Cleared (Undo brings the drawing back).")
        self._write_state()

    @_guarded
    def _on_pick(self, change):
        name = change["new"]
        if name in self._samples:
            self._set_image(self._samples[name], name)
            self.show_message(f"Loaded sample image {name!r}; the drawing was reset.")
        elif name in self._recorded:
            self.load_example(self._recorded[name], name)
            self.show_message(f"Loaded {name!r}: its image, brush and drag, as recorded (press Animate).")

    def load_example(self, example, name: str = "example"):
        """Load a recorded :class:`~remoco.bench.BenchExample` (or the path of its JSON): its image, brush, drawn
        trajectories and settings (k, frames, steps, seed), as if drawn on the canvas."""
        from .bench import load_bench_example

        ex = load_bench_example(example) if isinstance(example, (str, os.PathLike)) else example
        if not isinstance(ex, BenchExample):
            raise ValueError(f"example: expected a BenchExample or the path of its JSON, got {type(example).__name__}")
        if ex.image.shape[:2] != (self.height, self.width):
            raise ValueError(f"example: recorded at {ex.image.shape[1]}x{ex.image.shape[0]} px, the demo runs at "
                             f"{self.width}x{self.height} px")
        self._set_image(ex.image, name)
        self.state = DragState.from_mask(ex.brush_mask, ex.drawn_trajectories or ex.trajectories)
        self.k.value, self.num_frames.value = int(ex.k), int(ex.num_frames)
        self.steps.value, self.seed.value = int(ex.num_inference_steps or self.steps.value), int(ex.seed)
        self.redraw()
        self._write_state()

    @_guarded
    def _on_upload(self, change):
        files = change["new"]
        if not files:
            return
        f = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
        content = f["content"]
        name = f.get("name", "upload")
        self._set_image(bytes(content), name)
        self.show_message(f"Loaded {name!r}; the drawing was reset.")

    def load_image(self, image, name="image"):
        """Load a reference image programmatically (same as picking / uploading)."""
        self._set_image(image, name)

    def current_example(self) -> BenchExample:
        """The current drawing and settings as a :class:`BenchExample` (raises ValueError if incomplete)."""
        if self.state.in_stroke:
            self.state.cancel_stroke()
        if self.state.num_trajectories == 0:
            raise ValueError("Draw at least one trajectory (mode 'Trajectory': press, drag, release) before animating.")
        n = int(self.num_frames.value)
        src = dict(self.mapping.to_dict(), name=self.image_name)
        return BenchExample(image=self.image, brush_mask=self.state.brush_mask,
                            trajectories=self.state.trajectories(n), k=int(self.k.value), num_frames=n,
                            seed=int(self.seed.value), num_inference_steps=int(self.steps.value),
                            drawn_trajectories=self.state.drawn_trajectories, source=src,
                            trajectory_fill=self.trajectory_fill)

    @_guarded
    def on_animate(self, _button=None):
        example = self.current_example()
        if not example.brush_mask.any():
            if self.empty_brush == "error":
                raise ValueError("brush_mask: the motion region is empty. Brush the region that moves (mode "
                                 "'Brush') before animating, or build the demo with "
                                 "empty_brush='trajectory_blocks' to move only the dragged k×k blocks.")
            self.show_message("The motion region is empty: only the trajectory blocks will move. "
                              "Brush the region first for object-level motion.", "warning")
        self.animate_button.disabled = True
        try:
            if self.pipeline is None:
                self.show_message("Loading the model…")
                self.pipeline, self.pipeline_note = load_demo_pipeline()
            steps = example.num_inference_steps
            self.progress.max, self.progress.value = steps, 0
            self.progress.description = "Sampling"

            def progress(i, n):
                self.progress.max, self.progress.value = n, i

            frames = run_bench_example(self.pipeline, example, progress=progress, show_progress_bar=False,
                                       empty_brush=self.empty_brush)
        finally:
            self.animate_button.disabled = False
        self.last_frames, self.last_example = frames, example
        self.progress.description = "Done"
        self._show_result(frames, example)
        note = f" {self.pipeline_note}" if self.pipeline_note else ""
        self.show_message(f"Generated {frames.shape[0]} frames of {frames.shape[2]}×{frames.shape[1]} px."
                          + note, "warning" if note else "info")
        self._write_state()

    def _show_result(self, frames, example):
        from .book_utils import video_html

        self.video.value = video_html(frames, fps=self.fps, scale=self.magnification,
                                      caption="Generated video (toy scale)")
        self.last_frame.value = png_bytes(render_last_frame(frames, example.drawn_trajectories or example.trajectories,
                                                             self.magnification, example.brush_mask))
        self.last_frame.layout.display = ""
        files = self.result_files()
        links = " · ".join(
            f'<a download="{n}" href="data:{mime};base64,{base64.b64encode(b).decode()}">{n}</a>'
            for n, (mime, b) in files.items())
        self.downloads.value = f"<div>Download: {links}</div>"

    def result_files(self) -> dict:
        """``{file name: (mime type, bytes)}`` of the last result: video (mp4, GIF) and the bench inputs."""
        if self.last_frames is None or self.last_example is None:
            raise ValueError("Nothing to save yet: click Animate first.")
        frames = as_uint8_frames(self.last_frames)
        out = {}
        with tempfile.TemporaryDirectory() as tmp:
            for ext, mime in (("mp4", "video/mp4"), ("gif", "image/gif")):
                p = Path(tmp) / f"video.{ext}"
                _write_video(p, frames, self.fps)
                out[p.name] = (mime, p.read_bytes())
        d = bench_json(self.last_example, "image.png", "mask.png")
        d["video"] = "video.mp4"
        out["inputs.json"] = ("application/json", dumps_bench_json(d).encode())
        out["image.png"] = ("image/png", png_bytes(self.last_example.image))
        out["mask.png"] = ("image/png", png_bytes(self.last_example.brush_mask.astype(np.uint8) * 255))
        return out

    @_guarded
    def on_save(self, _button=None):
        folder = Path(self.save_dir.value).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        for name, (_mime, data) in self.result_files().items():
            (folder / name).write_bytes(data)
        self.show_message(f"Saved video.mp4, video.gif, inputs.json, image.png, mask.png to {folder.resolve()}")

    def _write_state(self):
        if self.state_file is None:
            return
        d = {"image_name": self.image_name, "state": self.state.to_dict(),
             "mapping": self.mapping.to_dict() if self.mapping else None,
             "num_frames": int(self.num_frames.value), "k": int(self.k.value),
             "message": self.message_text, "message_kind": self.message_kind,
             "video_frames_shape": list(self.last_frames.shape) if self.last_frames is not None else None}
        with atomic_file(self.state_file) as tmp:
            tmp.write_text(json.dumps(d, indent=1))


def _write_video(path, frames, fps):
    import torch

    write_video(path, torch.from_numpy(np.ascontiguousarray(frames)), fps)


def demo_notebook_path() -> Path:
    """Path of the demo chapter ``notebooks/08_drag_demo.ipynb`` in a source checkout (for ``remoco demo``)."""
    path = Path(__file__).resolve().parent.parent / "notebooks" / "08_drag_demo.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"demo notebook not found at {str(path)!r} (needs a source checkout of the repo)")
    return path


def launch_demo(image=None, pipeline=None, display: bool = True, **kwargs) -> DragDemo:
    """Build the drag demo (shipped checkpoints if available, else the untrained toy model) and show it.

    Call it in a JupyterLab cell (``remoco.widgets.launch_demo()``); ``remoco demo`` opens
    ``notebooks/08_drag_demo.ipynb``, which does the same. Extra keyword arguments go to :class:`DragDemo`;
    with the shipped checkpoints ``k`` and ``trajectory_fill`` default to
    :func:`remoco.shipped.shipped_drag_settings`.
    """
    note = kwargs.pop("pipeline_note", "")
    if pipeline is None:
        pipeline, note = load_demo_pipeline()
        if not note:  # the shipped toy controller: its k and the drag filling the brush (chapter 5)
            from .shipped import shipped_drag_settings

            for key, value in shipped_drag_settings().items():
                kwargs.setdefault(key, value)
    demo = DragDemo(image=image, pipeline=pipeline, pipeline_note=note, **kwargs)
    if display:
        from IPython.display import display as _display

        _display(demo.widget)
    return demo

