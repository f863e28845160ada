"""The interactive drag demo: brush a motion region, draw trajectories, animate with ReMoCo.

Section 3.4 of the paper ("Inference pipeline of ReMoCo") describes the user interaction this module
implements: the user *brushes the motion region* on the reference image and *draws the trajectory of
the moving direction*. The motion mask ``M_mot`` is taken directly from the brush mask (at training
time it is the thresholded mean flow magnitude), and each user trajectory (the path of a single pixel)
is padded to the ``k x k`` region around its start pixel — the inference counterpart of ``Pad(.)`` in
Eq. 7 — to form the region-wise trajectory ``T_s`` (:func:`remoco.conditions.conditions_from_user`).
:class:`remoco.pipeline.ReMoCoPipeline` then denoises the video with both control signals through the
adaptive feature modulation of Eq. 8.

The module has two layers, kept apart so that the logic is testable without a browser:

* :class:`DragState` — a plain class holding the strokes (brush / erase) and the trajectories in
  **model pixel coordinates**, with undo, clear, arc-length resampling and validation;
  :class:`CoordinateMapping` converts between the magnified canvas, the model image and the original
  upload. Bad strokes raise :class:`ValueError` with a message that says what was expected.
* :class:`DragDemo` — the ipywidgets / ipycanvas front end for JupyterLab. Its mouse handlers only
  translate canvas coordinates and call :class:`DragState`; any error is shown as a message inside the
  widget, never as a traceback.

Coordinate conventions
----------------------
* Points are ``(x, y)``: ``x`` to the right (column), ``y`` down (row), in pixels, **pixel centres at
  integers**: model pixel ``(row i, column j)`` is the point ``(x=j, y=i)`` and covers
  ``[j - 0.5, j + 0.5) x [i - 0.5, i + 0.5)``. A point lies inside a ``H x W`` image when
  ``-0.5 <= x < W - 0.5`` and ``-0.5 <= y < H - 0.5``.
* The canvas shows the model image magnified ``m`` times (nearest neighbour); a canvas (CSS) pixel
  coordinate ``u`` (``0`` = left edge of the canvas) maps to ``x = u / m - 0.5``.
* An uploaded image of size ``H0 x W0`` is resized (aspect kept) so that it covers ``H x W`` and is then
  centre-cropped: ``x = (X + 0.5) * sx - ox - 0.5`` with the per-axis scale ``sx = W_resized / W0`` and
  the crop offset ``ox`` (likewise for ``y``).

Bench schema (``remoco-bench/1``)
---------------------------------
An example (the demo's recorded inputs, ``data/demo/``) is a JSON file next to two PNG files::

    {
      "schema": "remoco-bench/1",
      "image": "image.png",            # reference image, RGB, already at the model size H x W
      "height": 64, "width": 64,       # model resolution H, W
      "brush_mask": "mask.png",        # H x W greyscale PNG, 255 = motion region, 0 = static
      "trajectories": [[[x, y], ...]], # one list per trajectory, num_frames points each (frame 1..L),
                                       #   model pixel coordinates as above (uniform arc-length samples)
      "k": 8,                          # side of the square region each trajectory is padded to
      "num_frames": 8,                 # L
      "seed": 0,                       # torch.Generator seed of the sampler
      "num_inference_steps": 8,        # optional, sampler steps
      "drawn_trajectories": [[[x, y], ...]],  # optional: the raw polylines as drawn
      "source": {"original_size": [H0, W0], "scale": [sy, sx], "crop_offset": [oy, ox],
                 "name": "..."}        # optional: the mapping back to the original upload
    }

File names inside the JSON are relative to the JSON file's folder.
"""

from __future__ import annotations

import base64
import copy
import functools
import html
import io
import json
import math
import os
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = [
    "BENCH_SCHEMA",
    "MODES",
    "CoordinateMapping",
    "prepare_reference_image",
    "resample_polyline",
    "paint_stroke",
    "DragState",
    "BenchExample",
    "save_bench_example",
    "load_bench_example",
    "run_bench_example",
    "render_inputs",
    "render_last_frame",
    "load_demo_pipeline",
    "DragDemo",
    "launch_demo",
    "demo_notebook_path",
]

BENCH_SCHEMA = "remoco-bench/1"
MODES = ("brush", "erase", "trajectory")

#: default model resolution and canvas magnification at toy scale (64 px x 6 = 384 px canvas)
DEFAULT_SIZE = 64
DEFAULT_MAGNIFICATION = 6


# ----------------------------------------------------------------------------------------------------
# coordinates
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoordinateMapping:
    """Maps points between the original image, the model image and the magnified canvas.

    ``original_size`` and ``model_size`` are ``(height, width)``. ``scale`` = ``(sy, sx)`` and
    ``crop_offset`` = ``(oy, ox)`` describe the resize-then-centre-crop from the original to the model
    image (see the module docstring); ``magnification`` is the integer canvas zoom. All methods take
    and return ``(x, y)`` coordinates (scalars or arrays of shape ``(..., 2)``).
    """

    original_size: tuple[int, int]
    model_size: tuple[int, int]
    scale: tuple[float, float]
    crop_offset: tuple[float, float]
    magnification: int = DEFAULT_MAGNIFICATION

    @classmethod
    def for_resize_crop(cls, original_size, model_size, magnification=DEFAULT_MAGNIFICATION):
        """The mapping of :func:`prepare_reference_image` (cover-resize, then centre crop)."""
        h0, w0 = (int(v) for v in original_size)
        h, w = (int(v) for v in model_size)
        if h0 < 1 or w0 < 1:
            raise ValueError(f"original_size: expected positive (height, width), got {original_size}")
        if h < 1 or w < 1:
            raise ValueError(f"model_size: expected positive (height, width), got {model_size}")
        s = max(h / h0, w / w0)
        rh, rw = max(h, int(round(h0 * s))), max(w, int(round(w0 * s)))
        return cls((h0, w0), (h, w), (rh / h0, rw / w0), ((rh - h) // 2, (rw - w) // 2),
                   _check_magnification(magnification))

    @property
    def resized_size(self) -> tuple[int, int]:
        return (int(round(self.original_size[0] * self.scale[0])),
                int(round(self.original_size[1] * self.scale[1])))

    @property
    def canvas_size(self) -> tuple[int, int]:
        """``(height, width)`` of the magnified canvas in CSS pixels."""
        return (self.model_size[0] * self.magnification, self.model_size[1] * self.magnification)

    def canvas_to_model(self, points):
        p = _as_points(points, "points")
        return p / self.magnification - 0.5

    def model_to_canvas(self, points):
        p = _as_points(points, "points")
        return (p + 0.5) * self.magnification

    def original_to_model(self, points):
        p = _as_points(points, "points")
        s = np.array([self.scale[1], self.scale[0]])
        o = np.array([self.crop_offset[1], self.crop_offset[0]], dtype=np.float64)
        return (p + 0.5) * s - o - 0.5

    def model_to_original(self, points):
        p = _as_points(points, "points")
        s = np.array([self.scale[1], self.scale[0]])
        o = np.array([self.crop_offset[1], self.crop_offset[0]], dtype=np.float64)
        return (p + 0.5 + o) / s - 0.5

    def to_dict(self) -> dict:
        return {"original_size": list(self.original_size), "scale": [float(v) for v in self.scale],
                "crop_offset": [float(v) for v in self.crop_offset]}


def _check_magnification(m) -> int:
    if isinstance(m, bool) or int(m) != m or int(m) < 1:
        raise ValueError(f"magnification: expected a positive integer, got {m!r}")
    return int(m)


def _as_points(points, name: str) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.shape[-1:] != (2,):
        raise ValueError(f"{name}: expected (x, y) coordinates with a last axis of size 2, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError(f"{name}: coordinates must be finite numbers, got {p.tolist()}")
    return p


def prepare_reference_image(image, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE,
                            magnification: int = DEFAULT_MAGNIFICATION):
    """Bring a reference image to the model resolution; return ``(image (H, W, 3) uint8, mapping)``.

    ``image``: a path, PNG/JPEG bytes, a PIL image, or an ``(H0, W0, 3|4)`` / ``(H0, W0)`` uint8 array.
    The image is resized with its aspect ratio kept so that it covers ``height x width`` and is then
    centre-cropped; the returned :class:`CoordinateMapping` converts points back to the original.
    """
    from PIL import Image

    if isinstance(height, bool) or int(height) != height or height < 1:
        raise ValueError(f"height: expected a positive integer, got {height!r}")
    if isinstance(width, bool) or int(width) != width or width < 1:
        raise ValueError(f"width: expected a positive integer, got {width!r}")
    pil = _to_pil(image)
    w0, h0 = pil.size
    mapping = CoordinateMapping.for_resize_crop((h0, w0), (height, width), magnification)
    rh, rw = mapping.resized_size
    oy, ox = (int(v) for v in mapping.crop_offset)
    resized = pil.resize((rw, rh), Image.Resampling.LANCZOS) if (rw, rh) != (w0, h0) else pil
    out = np.asarray(resized.crop((ox, oy, ox + int(width), oy + int(height))), dtype=np.uint8)
    return np.ascontiguousarray(out), mapping


def _to_pil(image):
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, (str, os.PathLike)):
        if not Path(image).is_file():
            raise FileNotFoundError(f"image: no such file {str(image)!r}")
        try:
            with Image.open(image) as im:
                return im.convert("RGB")
        except UnidentifiedImageError as exc:
            raise ValueError(f"image: {str(image)!r} is not a readable image file") from exc
    if isinstance(image, (bytes, bytearray, memoryview)):
        try:
            with Image.open(io.BytesIO(bytes(image))) as im:
                return im.convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError("image: the uploaded bytes are not a PNG/JPEG/... image") from exc
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"image: expected a uint8 array, a PIL image, a path or image bytes, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4) or min(arr.shape[:2]) < 1:
        raise ValueError(f"image: expected shape (H, W, 3) or (H, W, 4), got {arr.shape}")
    return Image.fromarray(np.ascontiguousarray(arr[..., :3]), "RGB")


# ----------------------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------------------


def resample_polyline(points, num_points: int) -> np.ndarray:
    """Resample a drawn polyline to ``num_points`` points equally spaced in arc length.

    A user trajectory "describes the movement of a single pixel" (Sec. 3.4): point ``l`` is where that
    pixel should be in frame ``l``, so the first point is the drawn start, the last the drawn end, and
    the pixel moves at constant speed along the drawn path. Returns ``(num_points, 2)`` float64.
    Raises ValueError for fewer than two distinct points (a single click has no direction).
    The arithmetic is :func:`remoco.conditions.resample_polyline` (the same resampling the pipeline
    applies), returned as numpy.
    """
    from remoco.conditions import resample_polyline as _resample

    if isinstance(num_points, bool) or int(num_points) != num_points or num_points < 2:
        raise ValueError(f"num_points: expected an integer >= 2, got {num_points!r}")
    p = _as_points(points, "points").reshape(-1, 2)
    if len(p) == 0:
        raise ValueError("points: the polyline is empty")
    if not (np.linalg.norm(np.diff(p, axis=0), axis=1) > 0).any():
        raise ValueError(
            "points: a trajectory needs at least two distinct points (a single click has no direction); "
            "press the mouse at the start and release it at the end")
    return _resample(p, int(num_points)).numpy()


def paint_stroke(mask, points, radius: float, value: bool = True) -> np.ndarray:
    """Return a copy of the boolean ``(H, W)`` ``mask`` with a round brush stroke painted in.

    Every pixel whose centre lies within ``radius`` (model pixels) of the polyline ``points`` is set
    to ``value`` (``False`` erases). Parts of the brush outside the image are simply not painted.
    """
    m = np.asarray(mask)
    if m.ndim != 2 or m.dtype != bool:
        raise ValueError(f"mask: expected a boolean (H, W) array, got dtype {m.dtype} shape {m.shape}")
    if isinstance(radius, bool) or not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius: expected a positive number of model pixels, got {radius!r}")
    p = _as_points(points, "points").reshape(-1, 2)
    if len(p) == 0:
        raise ValueError("points: the brush stroke is empty")
    out = m.copy()
    h, w = m.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if len(p) == 1:
        p = np.concatenate([p, p])
    hit = np.zeros((h, w), dtype=bool)
    for a, b in zip(p[:-1], p[1:]):
        d = b - a
        dd = float(d @ d)
        if dd == 0:
            t = np.zeros_like(xx)
        else:
            t = np.clip(((xx - a[0]) * d[0] + (yy - a[1]) * d[1]) / dd, 0.0, 1.0)
        dist2 = (xx - a[0] - t * d[0]) ** 2 + (yy - a[1] - t * d[1]) ** 2
        hit |= dist2 <= radius * radius
    out[hit] = bool(value)
    return out


# ----------------------------------------------------------------------------------------------------
# state
# ----------------------------------------------------------------------------------------------------


@dataclass
class _Op:
    kind: str  # "brush" | "erase" | "trajectory" | "clear"
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    radius: float = 0.0


class DragState:
    """Strokes, brush mask and trajectories of the drag demo, in model pixel coordinates.

    The state is an append-only list of operations (brush stroke, erase stroke, trajectory, clear);
    the brush mask (= the motion mask ``M`` of Sec. 3.4) and the trajectory list are replayed from it,
    so :meth:`undo` is exact. A stroke is drawn with :meth:`begin_stroke` / :meth:`extend_stroke` /
    :meth:`end_stroke` (what the mouse handlers call) or added at once with :meth:`add_brush_stroke` /
    :meth:`add_trajectory`.
    """

    def __init__(self, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE,
                 min_trajectory_length: float = 1.0):
        for name, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if not np.isfinite(min_trajectory_length) or min_trajectory_length < 0:
            raise ValueError(f"min_trajectory_length: expected a number >= 0, got {min_trajectory_length!r}")
        self.height, self.width = int(height), int(width)
        self.min_trajectory_length = float(min_trajectory_length)
        self._ops: list[_Op] = []
        self._stroke: _Op | None = None
        self._mask_cache: tuple[int, np.ndarray] | None = None

    # --- queries ---------------------------------------------------------------------------------
    def contains(self, x: float, y: float) -> bool:
        """Whether the point ``(x, y)`` lies inside the model image (pixel-centre convention)."""
        return -0.5 <= x < self.width - 0.5 and -0.5 <= y < self.height - 0.5

    def _live_ops(self) -> list[_Op]:
        last_clear = max((i for i, op in enumerate(self._ops) if op.kind == "clear"), default=-1)
        return self._ops[last_clear + 1:]

    @property
    def brush_mask(self) -> np.ndarray:
        """Boolean ``(H, W)`` brush mask (``True`` = motion region), replayed from the strokes."""
        if self._mask_cache is None or self._mask_cache[0] != len(self._ops):
            mask = np.zeros((self.height, self.width), dtype=bool)
            for op in self._live_ops():
                if op.kind in ("brush", "erase"):
                    mask = paint_stroke(mask, op.points, op.radius, value=op.kind == "brush")
            self._mask_cache = (len(self._ops), mask)
        return self._mask_cache[1].copy()

    @property
    def drawn_trajectories(self) -> list[np.ndarray]:
        """The trajectories as drawn (raw polylines, ``(n_i, 2)`` each), oldest first."""
        return [op.points.copy() for op in self._live_ops() if op.kind == "trajectory"]

    @property
    def num_trajectories(self) -> int:
        return sum(op.kind == "trajectory" for op in self._live_ops())

    @property
    def can_undo(self) -> bool:
        return bool(self._ops)

    @property
    def is_empty(self) -> bool:
        return not self._live_ops()

    @property
    def in_stroke(self) -> bool:
        return self._stroke is not None

    @property
    def current_stroke(self) -> tuple[str, np.ndarray] | None:
        """``(mode, points)`` of the stroke being drawn, or ``None``."""
        if self._stroke is None:
            return None
        return self._stroke.kind, self._stroke.points.copy()

    def trajectories(self, num_frames: int) -> list[np.ndarray]:
        """Each drawn trajectory resampled to ``num_frames`` points (:func:`resample_polyline`)."""
        return [resample_polyline(t, num_frames) for t in self.drawn_trajectories]

    def conditions(self, num_frames: int, k: int):
        """The two control signals of Sec. 3.4 via :func:`remoco.conditions.conditions_from_user`.

        Returns ``(region_trajectory (L, H, W, 2), motion_mask (L, H, W, 1))``.
        """
        from remoco import conditions as cond
        import torch

        trajs = self.drawn_trajectories
        if not trajs:
            raise ValueError("trajectories: draw at least one trajectory first")
        mask = torch.from_numpy(self.brush_mask)
        return cond.conditions_from_user([torch.from_numpy(t) for t in trajs], mask, num_frames, k)

    # --- editing ---------------------------------------------------------------------------------
    def _check_point(self, x, y, name="point"):
        p = _as_points([x, y], name)
        return float(p[0]), float(p[1])

    def _check_inside(self, pts: np.ndarray, what: str):
        for x, y in pts:
            if not self.contains(x, y):
                raise ValueError(
                    f"{what}: the point ({x:.1f}, {y:.1f}) is outside the {self.width}x{self.height} image "
                    f"(x must be in [-0.5, {self.width - 0.5}), y in [-0.5, {self.height - 0.5})); "
                    "draw the trajectory inside the image")

    def begin_stroke(self, mode: str, x: float, y: float, radius: float | None = None) -> None:
        """Start a stroke at ``(x, y)`` (model pixels). ``mode``: ``"brush"``, ``"erase"`` or ``"trajectory"``."""
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        x, y = self._check_point(x, y)
        if mode in ("brush", "erase"):
            if radius is None or isinstance(radius, bool) or not np.isfinite(radius) or radius <= 0:
                raise ValueError(f"radius: expected a positive brush radius in model pixels, got {radius!r}")
        elif not self.contains(x, y):
            self._check_inside(np.array([[x, y]]), "trajectory")
        self._stroke = _Op(mode, np.array([[x, y]], dtype=np.float64), float(radius or 0.0))

    def extend_stroke(self, x: float, y: float) -> None:
        """Add a point to the stroke being drawn. A trajectory point outside the image discards the stroke."""
        if self._stroke is None:
            raise ValueError("extend_stroke: no stroke in progress (call begin_stroke first)")
        try:
            x, y = self._check_point(x, y)
            if self._stroke.kind == "trajectory":
                self._check_inside(np.array([[x, y]]), "trajectory")
        except ValueError:
            self._stroke = None
            raise
        self._stroke.points = np.concatenate([self._stroke.points, [[x, y]]])

    def end_stroke(self, x: float | None = None, y: float | None = None) -> str:
        """Finish the stroke (optionally with a last point) and commit it; returns its mode.

        Raises ValueError (and discards the stroke) for a trajectory that is a single click or shorter
        than ``min_trajectory_length`` pixels, or that left the image.
        """
        if self._stroke is None:
            raise ValueError("end_stroke: no stroke in progress (call begin_stroke first)")
        if x is not None and y is not None:
            self.extend_stroke(x, y)
        op, self._stroke = self._stroke, None
        if op.kind == "trajectory":
            self.add_trajectory(op.points)
        else:
            self.add_brush_stroke(op.points, op.radius, erase=op.kind == "erase")
        return op.kind

    def cancel_stroke(self) -> None:
        self._stroke = None

    def add_brush_stroke(self, points, radius: float, erase: bool = False) -> None:
        """Commit a brush (or erase) stroke: a polyline of model-pixel points and a radius."""
        p = _as_points(points, "points").reshape(-1, 2)
        if len(p) == 0:
            raise ValueError("points: the brush stroke is empty")
        if isinstance(radius, bool) or not np.isfinite(radius) or radius <= 0:
            raise ValueError(f"radius: expected a positive brush radius in model pixels, got {radius!r}")
        self._ops.append(_Op("erase" if erase else "brush", p.copy(), float(radius)))

    def add_trajectory(self, points) -> None:
        """Commit a trajectory polyline (model pixels, inside the image, >= 2 distinct points)."""
        p = _as_points(points, "points").reshape(-1, 2)
        if len(p) == 0:
            raise ValueError("trajectory: the polyline is empty")
        self._check_inside(p, "trajectory")
        length = float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()) if len(p) > 1 else 0.0
        if length == 0.0:
            raise ValueError(
                "trajectory: a single click has no direction; press at the start point, drag, and release "
                "at the end point")
        if length < self.min_trajectory_length:
            raise ValueError(
                f"trajectory: the drawn path is {length:.2f} px long, shorter than "
                f"min_trajectory_length={self.min_trajectory_length} model pixels; drag further")
        self._ops.append(_Op("trajectory", p.copy()))

    def undo(self) -> bool:
        """Remove the last operation (stroke, trajectory or clear). Returns False if nothing to undo."""
        self._stroke = None
        if not self._ops:
            return False
        self._ops.pop()
        return True

    def clear(self) -> None:
        """Remove all strokes and trajectories (undoable)."""
        self._stroke = None
        if not self.is_empty:
            self._ops.append(_Op("clear"))

    # --- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict of the live drawing (after the last clear)."""
        return {
            "height": self.height,
            "width": self.width,
            "strokes": [{"mode": op.kind, "radius": op.radius, "points": op.points.round(4).tolist()}
                        for op in self._live_ops() if op.kind in ("brush", "erase")],
            "drawn_trajectories": [t.round(4).tolist() for t in self.drawn_trajectories],
            "brush_pixels": int(self.brush_mask.sum()),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "DragState":
        s = cls(d["height"], d["width"])
        for st in d.get("strokes", []):
            s.add_brush_stroke(st["points"], st["radius"], erase=st["mode"] == "erase")
        for t in d.get("drawn_trajectories", []):
            s.add_trajectory(t)
        return s

    @classmethod
    def from_mask(cls, brush_mask, trajectories=()) -> "DragState":
        """A state whose brush mask is a given boolean ``(H, W)`` mask (one pixel-exact 'stroke')."""
        m = np.asarray(brush_mask)
        if m.ndim != 2 or m.dtype != bool:
            raise ValueError(f"brush_mask: expected a boolean (H, W) array, got dtype {m.dtype} shape {m.shape}")
        s = cls(*m.shape)
        ys, xs = np.nonzero(m)
        if len(xs):
            # one dab of radius 0.5 per pixel reproduces the mask exactly (only the pixel itself is
            # within 0.5 of its centre)
            for x, y in zip(xs, ys):
                s._ops.append(_Op("brush", np.array([[float(x), float(y)]]), 0.5))
        for t in trajectories:
            s.add_trajectory(t)
        return s

    def __repr__(self) -> str:
        return (f"DragState({self.height}x{self.width}, brush_pixels={int(self.brush_mask.sum())}, "
                f"trajectories={self.num_trajectories}, ops={len(self._ops)})")


# ----------------------------------------------------------------------------------------------------
# bench examples (data/demo/)
# ----------------------------------------------------------------------------------------------------


@dataclass
class BenchExample:
    """One example in the bench schema (see the module docstring)."""

    image: np.ndarray  # (H, W, 3) uint8 at the model size
    brush_mask: np.ndarray  # (H, W) bool
    trajectories: list  # of (num_frames, 2) float arrays, model pixels
    k: int = 8
    num_frames: int = 8
    seed: int = 0
    num_inference_steps: int | None = None
    drawn_trajectories: list | None = None
    source: dict | None = None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def validate(self) -> None:
        img = np.asarray(self.image)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"image: expected (H, W, 3) uint8, got dtype {img.dtype} shape {img.shape}")
        m = np.asarray(self.brush_mask)
        if m.dtype != bool or m.shape != img.shape[:2]:
            raise ValueError(f"brush_mask: expected bool of shape {img.shape[:2]}, got {m.dtype} {m.shape}")
        for name, v, lo in (("k", self.k, 1), ("num_frames", self.num_frames, 2)):
            if isinstance(v, bool) or int(v) != v or v < lo:
                raise ValueError(f"{name}: expected an integer >= {lo}, got {v!r}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed:
            raise ValueError(f"seed: expected an integer, got {self.seed!r}")
        if not self.trajectories:
            raise ValueError("trajectories: expected at least one trajectory")
        state = DragState(self.height, self.width)
        for i, t in enumerate(self.trajectories):
            t = _as_points(t, f"trajectories[{i}]")
            if t.shape != (self.num_frames, 2):
                raise ValueError(f"trajectories[{i}]: expected shape ({self.num_frames}, 2), got {t.shape}")
            state._check_inside(t, f"trajectories[{i}]")
        if self.drawn_trajectories:
            if len(self.drawn_trajectories) != len(self.trajectories):
                raise ValueError(f"drawn_trajectories: expected {len(self.trajectories)} polylines (one per "
                                 f"trajectory), got {len(self.drawn_trajectories)}")
            for i, (d, t) in enumerate(zip(self.drawn_trajectories, self.trajectories)):
                r = resample_polyline(d, self.num_frames)
                if not np.allclose(r, t, atol=1e-3):
                    raise ValueError(f"drawn_trajectories[{i}]: its arc-length resampling to {self.num_frames} "
                                     f"points differs from trajectories[{i}] (max {np.abs(r - t).max():.4f} px)")

    def state(self) -> DragState:
        """A :class:`DragState` holding this example (mask pixel-exact, drawn polylines if known)."""
        return DragState.from_mask(np.asarray(self.brush_mask, dtype=bool),
                                   self.drawn_trajectories or self.trajectories)


def _png_bytes(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def bench_json(example: BenchExample, image_name="image.png", mask_name="mask.png") -> dict:
    """The JSON dict of ``example`` in the bench schema (coordinates rounded to 1e-4 px)."""
    example.validate()
    d = {
        "schema": BENCH_SCHEMA,
        "image": image_name,
        "height": example.height,
        "width": example.width,
        "brush_mask": mask_name,
        "trajectories": [np.round(np.asarray(t, dtype=np.float64), 4).tolist() for t in example.trajectories],
        "k": int(example.k),
        "num_frames": int(example.num_frames),
        "seed": int(example.seed),
    }
    if example.num_inference_steps is not None:
        d["num_inference_steps"] = int(example.num_inference_steps)
    if example.drawn_trajectories:
        d["drawn_trajectories"] = [np.round(np.asarray(t, dtype=np.float64), 4).tolist()
                                   for t in example.drawn_trajectories]
    if example.source:
        d["source"] = example.source
    return d


def _dump_json(d: dict) -> str:
    """Indented JSON with every ``[x, y]`` point on one line."""
    import re

    text = json.dumps(d, indent=1)
    num = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
    return re.sub(rf"\[\s*({num}),\s*({num})\s*\]", r"[\1, \2]", text) + "\n"


def save_bench_example(example: BenchExample, folder, stem: str = "example") -> Path:
    """Write ``<stem>.json``, ``<stem>_image.png`` and ``<stem>_mask.png`` into ``folder``; return the JSON path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d = bench_json(example, f"{stem}_image.png", f"{stem}_mask.png")
    (folder / d["image"]).write_bytes(_png_bytes(np.asarray(example.image, dtype=np.uint8)))
    (folder / d["brush_mask"]).write_bytes(_png_bytes(np.asarray(example.brush_mask, dtype=np.uint8) * 255))
    path = folder / f"{stem}.json"
    path.write_text(_dump_json(d))
    return path


def load_bench_example(path) -> BenchExample:
    """Read a bench-schema JSON file (and its PNGs) into a validated :class:`BenchExample`."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such bench JSON file {str(path)!r}")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"path: {str(path)!r} is not valid JSON ({exc})") from exc
    if d.get("schema", BENCH_SCHEMA) != BENCH_SCHEMA:
        raise ValueError(f"path: expected schema {BENCH_SCHEMA!r}, got {d.get('schema')!r}")
    missing = [key for key in ("image", "height", "width", "brush_mask", "trajectories", "k", "num_frames", "seed")
               if key not in d]
    if missing:
        raise ValueError(f"path: {str(path)!r} lacks the bench fields {missing}")
    img_path, mask_path = path.parent / d["image"], path.parent / d["brush_mask"]
    for p in (img_path, mask_path):
        if not p.is_file():
            raise FileNotFoundError(f"path: {str(path)!r} refers to {str(p)!r}, which does not exist")
    with Image.open(img_path) as im:
        image = np.asarray(im.convert("RGB"), dtype=np.uint8)
    with Image.open(mask_path) as im:
        mask = np.asarray(im.convert("L")) >= 128
    if image.shape[:2] != (d["height"], d["width"]):
        raise ValueError(f"image: {str(img_path)!r} is {image.shape[:2]}, the JSON says {(d['height'], d['width'])}")
    ex = BenchExample(
        image=np.ascontiguousarray(image), brush_mask=mask,
        trajectories=[np.asarray(t, dtype=np.float64) for t in d["trajectories"]],
        k=int(d["k"]), num_frames=int(d["num_frames"]), seed=int(d["seed"]),
        num_inference_steps=d.get("num_inference_steps"),
        drawn_trajectories=[np.asarray(t, dtype=np.float64) for t in d["drawn_trajectories"]]
        if d.get("drawn_trajectories") else None,
        source=d.get("source"),
    )
    ex.validate()
    return ex


def _pipeline_accepts(pipeline, name: str) -> bool:
    import inspect

    try:
        params = inspect.signature(pipeline.__call__).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def run_bench_example(pipeline, example: BenchExample, num_inference_steps: int | None = None,
                      progress: Callable[[int, int], None] | None = None,
                      show_progress_bar: bool = True) -> np.ndarray:
    """Sample a video for a bench example with a :class:`~remoco.pipeline.ReMoCoPipeline`.

    The user inputs go to the pipeline as ``trajectories`` / ``brush_mask`` / ``k``; the pipeline turns
    them into the region-wise trajectory and motion mask (Sec. 3.4). The drawn polylines are passed when
    known (the pipeline's arc-length resampling then yields exactly ``example.trajectories``). ``progress(step, total)`` is called
    after each denoising step. Returns the frames as ``(L, H, W, 3)`` uint8 numpy.
    """
    import torch
    from PIL import Image

    from remoco.book_utils import as_uint8_frames

    example.validate()
    steps = int(num_inference_steps or example.num_inference_steps or 8)
    kwargs = dict(
        trajectories=[torch.as_tensor(np.asarray(t, dtype=np.float64))
                      for t in (example.drawn_trajectories or example.trajectories)],
        brush_mask=torch.from_numpy(np.asarray(example.brush_mask, dtype=bool)),
        k=int(example.k), height=example.height, width=example.width, num_frames=int(example.num_frames),
        num_inference_steps=steps, generator=torch.Generator("cpu").manual_seed(int(example.seed)),
        output_type="np",
    )
    if progress is not None and _pipeline_accepts(pipeline, "callback_on_step_end"):
        def _cb(pipe, i, t, callback_kwargs):
            progress(i + 1, steps)
            return callback_kwargs
        kwargs["callback_on_step_end"] = _cb
    saved = copy.deepcopy(getattr(pipeline, "_progress_bar_config", None))
    if hasattr(pipeline, "set_progress_bar_config"):
        pipeline.set_progress_bar_config(disable=not show_progress_bar)
    try:
        out = pipeline(Image.fromarray(np.asarray(example.image, dtype=np.uint8)), **kwargs)
    finally:
        if saved is not None:
            pipeline._progress_bar_config = saved  # leave the caller's pipeline as it was
    frames = out.frames if hasattr(out, "frames") else out[0]
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames) if not isinstance(frames, list) else frames
    if isinstance(frames, list):
        frames = frames[0]
    elif frames.ndim == 5:
        frames = frames[0]
    if progress is not None:
        progress(steps, steps)
    return as_uint8_frames(frames)


# ----------------------------------------------------------------------------------------------------
# drawing (PIL) — shared by the canvas, the static book figures and the Fig. 1-style overlay
# ----------------------------------------------------------------------------------------------------

_MASK_TINT = (40, 120, 255)
_BLOCK_COLOUR = (255, 170, 0)
_TRAJ_COLOURS = [(255, 60, 60), (60, 220, 90), (255, 220, 0), (230, 80, 255), (0, 230, 230)]


def _magnify(img: np.ndarray, m: int) -> np.ndarray:
    return img.repeat(m, axis=0).repeat(m, axis=1)


def _arrow(draw, pts_canvas: np.ndarray, colour, width: int, head: float):
    pts = [tuple(map(float, p)) for p in pts_canvas]
    if len(pts) >= 2:
        draw.line(pts, fill=colour, width=width, joint="curve")
    draw.ellipse([pts[0][0] - width, pts[0][1] - width, pts[0][0] + width, pts[0][1] + width], fill=colour)
    # arrow head along the last non-degenerate segment
    end = np.asarray(pts[-1])
    for prev in reversed(pts[:-1]):
        d = end - np.asarray(prev)
        n = float(np.linalg.norm(d))
        if n > 1e-6:
            d /= n
            perp = np.array([-d[1], d[0]])
            a = end - head * d + 0.55 * head * perp
            b = end - head * d - 0.55 * head * perp
            draw.polygon([tuple(end), tuple(a), tuple(b)], fill=colour)
            break


def render_inputs(image, brush_mask=None, trajectories=(), magnification: int = DEFAULT_MAGNIFICATION,
                  region_trajectory=None, motion_mask=None, k: int | None = None,
                  current_stroke=None, brush_radius: float | None = None) -> np.ndarray:
    """Draw the user inputs (and optionally the derived conditions) over the magnified image.

    * the brush mask (or, if given, the motion mask ``M`` of frame 1) as a blue tint;
    * each trajectory as a polyline with an arrow head (model-pixel coordinates);
    * if ``region_trajectory`` (``(L, H, W, 2)``) is given: the ``k x k`` block around each trajectory's
      start (where the region-wise trajectory is non-zero) outlined in orange, with the block's mean
      last-frame displacement as a thin orange arrow — i.e. what the controller actually receives.

    Returns ``(H*m, W*m, 3)`` uint8.
    """
    from PIL import Image, ImageDraw

    m = _check_magnification(magnification)
    img = np.asarray(_to_pil(image), dtype=np.uint8)
    h, w = img.shape[:2]
    base = img.astype(np.float32)
    tint = None
    if motion_mask is not None:
        mm = motion_mask.detach().cpu().numpy() if hasattr(motion_mask, "detach") else np.asarray(motion_mask)
        tint = mm.reshape(-1, h, w)[0] > 0.5
    elif brush_mask is not None:
        tint = np.asarray(brush_mask, dtype=bool)
        if tint.shape != (h, w):
            raise ValueError(f"brush_mask: expected shape {(h, w)}, got {tint.shape}")
    if tint is not None:
        base[tint] = 0.55 * base[tint] + 0.45 * np.array(_MASK_TINT, dtype=np.float32)
    canvas = Image.fromarray(_magnify(base.round().astype(np.uint8), m))
    draw = ImageDraw.Draw(canvas)
    to_c = lambda p: (np.asarray(p, dtype=np.float64) + 0.5) * m  # noqa: E731
    if region_trajectory is not None:
        rt = region_trajectory.detach().cpu().numpy() if hasattr(region_trajectory, "detach") else np.asarray(region_trajectory)
        support = np.abs(rt).sum(axis=(0, 3)) > 0
        from remoco.conditions import user_block

        kk = int(k or 1)
        for t in trajectories:
            x0, y0 = (int(math.floor(v + 0.5)) for v in np.asarray(t)[0])
            top, left = user_block(y0, x0, kk, h, w)
            xs, ys = slice(left, left + kk), slice(top, top + kk)
            block = support[ys, xs]
            if not block.any():
                continue
            draw.rectangle([xs.start * m, ys.start * m, xs.stop * m - 1, ys.stop * m - 1],
                           outline=_BLOCK_COLOUR, width=2)
            disp = rt[-1, ys, xs][block].mean(axis=0)
            c = np.array([(xs.start + xs.stop - 1) / 2, (ys.start + ys.stop - 1) / 2])
            _arrow(draw, to_c(np.stack([c, c + disp])), _BLOCK_COLOUR, 1, max(4.0, 1.2 * m))
    for i, t in enumerate(trajectories):
        _arrow(draw, to_c(t), _TRAJ_COLOURS[i % len(_TRAJ_COLOURS)], max(2, m // 2), max(6.0, 2.2 * m))
    if current_stroke is not None:
        mode, pts = current_stroke
        if mode == "trajectory":
            _arrow(draw, to_c(pts), (255, 255, 255), max(2, m // 2), max(6.0, 2.2 * m))
        elif brush_radius:
            r = brush_radius * m
            for p in to_c(pts):
                draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r],
                             outline=(255, 255, 255) if mode == "brush" else (0, 0, 0))
    return np.asarray(canvas, dtype=np.uint8)


def render_last_frame(frames, trajectories, magnification: int = DEFAULT_MAGNIFICATION,
                      brush_mask=None) -> np.ndarray:
    """The generated video's last frame with the input trajectories drawn on it (as in the paper's Fig. 1)."""
    from remoco.book_utils import as_uint8_frames

    last = as_uint8_frames(frames)[-1]
    if brush_mask is not None:
        # outline only (no tint) so the generated content stays visible
        edge = np.asarray(brush_mask, dtype=bool)
        inner = edge.copy()
        inner[1:-1, 1:-1] = edge[1:-1, 1:-1] & edge[:-2, 1:-1] & edge[2:, 1:-1] & edge[1:-1, :-2] & edge[1:-1, 2:]
        border = edge & ~inner
        last = last.copy()
        last[border] = (0.5 * last[border] + 0.5 * np.array(_MASK_TINT)).astype(np.uint8)
    return render_inputs(last, None, trajectories, magnification)


# ----------------------------------------------------------------------------------------------------
# pipeline loading
# ----------------------------------------------------------------------------------------------------


def load_demo_pipeline(seed: int = 0):
    """Return ``(pipeline, note)``: the shipped toy checkpoints if they load, else the untrained toy model.

    ``note`` is ``""`` for the trained checkpoints and a warning sentence for the fallback
    (``remoco.pipeline.build_toy_remoco_pipeline``: random weights, so videos are noise-like).
    """
    import importlib

    try:
        shipped = importlib.import_module("remoco.shipped")
        return shipped.load_shipped_pipeline(), ""
    except Exception as exc:  # noqa: BLE001 - any failure means "no shipped checkpoints"
        reason = f"{type(exc).__name__}: {exc}"
    pipeline = importlib.import_module("remoco.pipeline")
    pipe = pipeline.build_toy_remoco_pipeline(seed=seed)
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
    """

    message_text: str = ""  # the message shown in the widget (plain text) and its kind
    message_kind: str = "info"  # "info" | "warning" | "error"

    def __init__(self, image=None, pipeline=None, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE,
                 magnification: int = DEFAULT_MAGNIFICATION, k: int = 8, num_frames: int = 8,
                 num_inference_steps: int = 8, seed: int = 0, fps: float = 4,
                 state_file=None, output_dir="demo_output", pipeline_note: str = ""):
        import ipywidgets as W
        from ipycanvas import MultiCanvas

        self.height, self.width = int(height), int(width)
        self.magnification = _check_magnification(magnification)
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
            from remoco import data as _data
            self._samples = dict(_data.sample_images())
        except Exception:  # noqa: BLE001 - the picker just stays empty
            self._samples = {}

        ch, cw = self.height * self.magnification, self.width * self.magnification
        self.canvas = MultiCanvas(2, width=cw, height=ch)
        self.canvas.layout.width = f"{cw}px"
        self.canvas.layout.height = f"{ch}px"
        self.canvas.on_mouse_down(self.on_mouse_down)
        self.canvas.on_mouse_move(self.on_mouse_move)
        self.canvas.on_mouse_up(self.on_mouse_up)
        self.canvas.on_mouse_out(self.on_mouse_out)

        lay = W.Layout(width="auto")
        self.picker = W.Dropdown(options=list(self._samples) or ["(none)"], description="Sample",
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
                rt, mm = self.state.conditions(int(self.num_frames.value), int(self.k.value))
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
            msg = f"Trajectory {self.state.num_trajectories} added: ({t[0][0]:.1f}, {t[0][1]:.1f}) → ({t[-1][0]:.1f}, {t[-1][1]:.1f})."
            if not mask[int(math.floor(y0 + 0.5)), int(math.floor(x0 + 0.5))]:
                self.show_message(msg + " Its start is outside the brushed region (the motion mask).", "warning")
            else:
                self.show_message(msg, "info")
        else:
            self.show_message(f"{kind.capitalize()} stroke: {int(self.state.brush_mask.sum())} pixels in the motion region.")
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
                            drawn_trajectories=self.state.drawn_trajectories, source=src)

    @_guarded
    def on_animate(self, _button=None):
        example = self.current_example()
        if not example.brush_mask.any():
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

            frames = run_bench_example(self.pipeline, example, progress=progress, show_progress_bar=False)
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
        from remoco.book_utils import video_html

        self.video.value = video_html(frames, fps=self.fps, scale=self.magnification,
                                      caption="Generated video (toy scale)")
        self.last_frame.value = _png_bytes(render_last_frame(frames, example.drawn_trajectories or example.trajectories,
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
        from remoco.book_utils import as_uint8_frames

        frames = as_uint8_frames(self.last_frames)
        out = {}
        with tempfile.TemporaryDirectory() as tmp:
            for ext, mime in (("mp4", "video/mp4"), ("gif", "image/gif")):
                p = Path(tmp) / f"video.{ext}"
                _write_video(p, frames, self.fps)
                out[p.name] = (mime, p.read_bytes())
        d = bench_json(self.last_example, "image.png", "mask.png")
        d["video"] = "video.mp4"
        out["inputs.json"] = ("application/json", _dump_json(d).encode())
        out["image.png"] = ("image/png", _png_bytes(self.last_example.image))
        out["mask.png"] = ("image/png", _png_bytes(self.last_example.brush_mask.astype(np.uint8) * 255))
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
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(d, indent=1))
        tmp.replace(self.state_file)


def _write_video(path, frames, fps):
    import torch

    from remoco.video import write_video

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
    ``notebooks/08_drag_demo.ipynb``, which does the same. Extra keyword arguments go to :class:`DragDemo`.
    """
    note = kwargs.pop("pipeline_note", "")
    if pipeline is None:
        pipeline, note = load_demo_pipeline()
    demo = DragDemo(image=image, pipeline=pipeline, pipeline_note=note, **kwargs)
    if display:
        from IPython.display import display as _display

        _display(demo.widget)
    return demo
