"""Drag input of ReMoCo: the user's brush strokes and trajectories, in model pixel coordinates.

Section 3.4 of the paper ("Inference pipeline of ReMoCo") describes the user interaction: the user
*brushes the motion region* on the reference image and *draws the trajectory of the moving direction*.
The motion mask ``M_mot`` is taken directly from the brush mask, and each user trajectory (the path of a
single pixel) is padded to the ``k x k`` region around its start pixel to form the region-wise trajectory
``T_s`` (:func:`remoco.user_conditions.conditions_from_user`).

This module is the browser-free logic of that interaction (numpy only; no ipywidgets):

* :class:`DragState` holds the strokes (brush / erase) and the trajectories with undo, clear,
  arc-length resampling and validation; bad strokes raise :class:`ValueError` saying what was expected.
* :class:`CoordinateMapping` converts between the magnified canvas, the model image and the original
  upload; :func:`prepare_reference_image` brings an upload to the model size.
* :func:`paint_stroke` paints a round brush along a polyline.

The ipywidgets front end is :mod:`remoco.widgets`; recorded examples are :mod:`remoco.bench`; pictures of
the inputs are :func:`remoco.drawing.render_inputs`.

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
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .user_conditions import conditions_from_user, resample_polyline

__all__ = [
    "MODES",
    "DEFAULT_SIZE",
    "DEFAULT_MAGNIFICATION",
    "CoordinateMapping",
    "check_magnification",
    "check_points_inside",
    "prepare_reference_image",
    "paint_stroke",
    "DragState",
]

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
                   check_magnification(magnification))

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


def check_magnification(m) -> int:
    """``m`` as an int if it is a positive integer (the canvas zoom), else ValueError naming ``magnification``."""
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



def check_points_inside(points, height: int, width: int, name: str = "points") -> np.ndarray:
    """Validate ``(..., 2)`` finite ``(x, y)`` points inside a ``height x width`` image; return them as float64.

    Raises ValueError naming ``name`` and the first point outside (pixel-centre convention: x must lie in
    ``[-0.5, width - 0.5)``, y in ``[-0.5, height - 0.5)``).
    """
    p = _as_points(points, name)
    for x, y in p.reshape(-1, 2):
        if not (-0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5):
            raise ValueError(
                f"{name}: the point ({x:.1f}, {y:.1f}) is outside the {width}x{height} image "
                f"(x must be in [-0.5, {width - 0.5}), y in [-0.5, {height - 0.5})); "
                "draw the trajectory inside the image")
    return p


# ----------------------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------------------


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
        """Each drawn trajectory resampled to ``num_frames`` points, ``(num_frames, 2)`` float64 numpy.

        The rule is :func:`remoco.user_conditions.resample_polyline` with ``require_motion=True`` (uniform
        arc length, first point = drawn start, last = drawn end; ``num_frames >= 2``).
        """
        return [resample_polyline(t, num_frames, require_motion=True).numpy() for t in self.drawn_trajectories]

    def conditions(self, num_frames: int, k: int, empty_brush: str = "error", trajectory_fill: str = "block"):
        """The two control signals of Sec. 3.4 via :func:`remoco.user_conditions.conditions_from_user`.

        ``empty_brush``: ``"error"`` (the paper; an empty brush mask with a trajectory raises ValueError
        naming ``brush_mask``) or ``"trajectory_blocks"`` (MotionPro: the dragged k x k blocks become the
        motion mask). ``trajectory_fill``: ``"block"`` (the paper) or ``"brush"``
        (:func:`remoco.user_conditions.conditions_from_user`). Returns ``(region_trajectory (L, H, W, 2),
        motion_mask (L, H, W, 1))``.
        """
        import torch

        trajs = self.drawn_trajectories
        if not trajs:
            raise ValueError("trajectories: draw at least one trajectory first")
        mask = torch.from_numpy(self.brush_mask)
        return conditions_from_user([torch.from_numpy(t) for t in trajs], mask, num_frames, k,
                                    empty_brush=empty_brush, fill=trajectory_fill)

    # --- editing ---------------------------------------------------------------------------------
    def _check_point(self, x, y, name="point"):
        p = _as_points([x, y], name)
        return float(p[0]), float(p[1])

    def _check_inside(self, pts: np.ndarray, what: str):
        check_points_inside(pts, self.height, self.width, what)

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


