"""Recorded drag examples: the bench schema ``remoco-bench/1`` (the demo's inputs, ``data/demo/``).

An example is a JSON file next to two PNG files::

    {
      "schema": "remoco-bench/1",
      "image": "image.png",            # reference image, RGB, already at the model size H x W
      "height": 64, "width": 64,       # model resolution H, W
      "brush_mask": "mask.png",        # H x W greyscale PNG, 255 = motion region, 0 = static
      "trajectories": [[[x, y], ...]], # one list per trajectory, num_frames points each (frame 1..L),
                                       #   model pixel coordinates (remoco.drag), uniform arc-length samples
      "k": 8,                          # side of the square region each trajectory is padded to
      "num_frames": 8,                 # L
      "seed": 0,                       # torch.Generator seed of the sampler
      "num_inference_steps": 8,        # optional, sampler steps
      "drawn_trajectories": [[[x, y], ...]],  # optional: the raw polylines as drawn
      "source": {"original_size": [H0, W0], "scale": [sy, sx], "crop_offset": [oy, ox],
                 "name": "..."}        # optional: the mapping back to the original upload
    }

File names inside the JSON are relative to the JSON file's folder. :func:`run_bench_example` samples the
video of an example with a :class:`~remoco.pipeline.ReMoCoPipeline`.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .drag import DragState, check_points_inside
from .user_conditions import EMPTY_BRUSH, TRAJECTORY_FILL, conditions_from_user, resample_polyline
from .video import as_uint8_frames, png_bytes

__all__ = [
    "BENCH_SCHEMA",
    "BenchExample",
    "bench_json",
    "dumps_bench_json",
    "save_bench_example",
    "load_bench_example",
    "example_condition",
    "run_bench_example",
]

BENCH_SCHEMA = "remoco-bench/1"


@dataclass
class BenchExample:
    """One example in the bench schema (see the module docstring); :meth:`validate` checks it."""

    image: np.ndarray  # (H, W, 3) uint8 at the model size
    brush_mask: np.ndarray  # (H, W) bool
    trajectories: list  # of (num_frames, 2) float arrays, model pixels
    k: int = 8
    num_frames: int = 8
    seed: int = 0
    num_inference_steps: int | None = None
    drawn_trajectories: list | None = None
    source: dict | None = None
    trajectory_fill: str = "block"  # "block" (the paper, Sec. 3.4) | "brush" (conditions_from_user's fill)

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
        if self.trajectory_fill not in TRAJECTORY_FILL:
            raise ValueError(f"trajectory_fill: expected one of {TRAJECTORY_FILL}, got {self.trajectory_fill!r}")
        if not self.trajectories:
            raise ValueError("trajectories: expected at least one trajectory")
        for i, t in enumerate(self.trajectories):
            t = check_points_inside(t, self.height, self.width, f"trajectories[{i}]")
            if t.shape != (self.num_frames, 2):
                raise ValueError(f"trajectories[{i}]: expected shape ({self.num_frames}, 2), got {t.shape}")
        if self.drawn_trajectories:
            if len(self.drawn_trajectories) != len(self.trajectories):
                raise ValueError(f"drawn_trajectories: expected {len(self.trajectories)} polylines (one per "
                                 f"trajectory), got {len(self.drawn_trajectories)}")
            for i, (d, t) in enumerate(zip(self.drawn_trajectories, self.trajectories)):
                r = resample_polyline(d, self.num_frames, require_motion=True).numpy()
                if not np.allclose(r, t, atol=1e-3):
                    raise ValueError(f"drawn_trajectories[{i}]: its arc-length resampling to {self.num_frames} "
                                     f"points differs from trajectories[{i}] (max {np.abs(r - t).max():.4f} px)")

    def summary(self) -> list[tuple[str, str]]:
        """``(field, value)`` rows describing the example at a glance (what a table of it shows)."""
        rows = [("image (H × W)", f"{self.height} × {self.width} px, RGB"),
                ("brush mask", f"{int(np.asarray(self.brush_mask).sum()):,} of {self.height * self.width:,} pixels")]
        for i, t in enumerate(self.trajectories):
            t = np.asarray(t, dtype=float)
            rows.append((f"trajectory {i + 1}", f"{len(t)} points (x, y): ({t[0, 0]:g}, {t[0, 1]:g}) → "
                                                f"({t[-1, 0]:g}, {t[-1, 1]:g})"))
        rows += [("k, frames", f"{self.k}, {self.num_frames}"),
                 ("seed, sampler steps", f"{self.seed}, {self.num_inference_steps or 'pipeline default'}"),
                 ("trajectory_fill", self.trajectory_fill)]
        if self.source and self.source.get("name"):
            rows.append(("source", str(self.source["name"])))
        return rows

    def state(self) -> DragState:
        """A :class:`DragState` holding this example (mask pixel-exact, drawn polylines if known)."""
        return DragState.from_mask(np.asarray(self.brush_mask, dtype=bool),
                                   self.drawn_trajectories or self.trajectories)


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
    if example.trajectory_fill != "block":  # written only when it is not the paper's default
        d["trajectory_fill"] = example.trajectory_fill
    return d


def dumps_bench_json(d: dict) -> str:
    """The text of a bench JSON dict (:func:`bench_json`): indented, every ``[x, y]`` point on one line."""
    text = json.dumps(d, indent=1)
    num = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
    return re.sub(rf"\[\s*({num}),\s*({num})\s*\]", r"[\1, \2]", text) + "\n"


def save_bench_example(example: BenchExample, folder, stem: str = "example", image_name: str | None = None,
                       mask_name: str | None = None) -> Path:
    """Write ``<stem>.json`` and the two PNGs (``image_name`` / ``mask_name``, by default ``<stem>_image.png`` and
    ``<stem>_mask.png``) into ``folder``; return the JSON path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d = bench_json(example, image_name or f"{stem}_image.png", mask_name or f"{stem}_mask.png")
    (folder / d["image"]).write_bytes(png_bytes(np.asarray(example.image, dtype=np.uint8)))
    (folder / d["brush_mask"]).write_bytes(png_bytes(np.asarray(example.brush_mask, dtype=np.uint8) * 255))
    path = folder / f"{stem}.json"
    path.write_text(dumps_bench_json(d))
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
        source=d.get("source"), trajectory_fill=d.get("trajectory_fill", "block"),
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


def example_condition(example: BenchExample, empty_brush: str = "error", trajectory_fill: str | None = None) -> dict:
    """The motion input of a bench example as a :class:`~remoco.pipeline.ReMoCoPipeline` takes it:
    ``{"trajectories", "brush_mask", "k", "trajectory_fill"}`` (the drawn polylines when known: the pipeline's
    arc-length resampling then yields exactly ``example.trajectories``). An empty brush mask is an error with
    ``empty_brush="error"`` (the paper: ValueError naming ``brush_mask``); with ``"trajectory_blocks"`` (MotionPro)
    the dragged k x k blocks become the brush (:func:`remoco.user_conditions.conditions_from_user`'s rule).
    ``trajectory_fill``: ``"block"`` / ``"brush"``, None: the example's own."""
    import torch

    if empty_brush not in EMPTY_BRUSH:
        raise ValueError(f"empty_brush: expected one of {EMPTY_BRUSH}, got {empty_brush!r}")
    example.validate()
    trajectory_fill = example.trajectory_fill if trajectory_fill is None else trajectory_fill
    if trajectory_fill not in TRAJECTORY_FILL:
        raise ValueError(f"trajectory_fill: expected one of {TRAJECTORY_FILL} or None, got {trajectory_fill!r}")
    brush = np.asarray(example.brush_mask, dtype=bool)
    trajectories = [torch.as_tensor(np.asarray(t, dtype=np.float64))
                    for t in (example.drawn_trajectories or example.trajectories)]
    if not brush.any():
        # checked here, whatever the pipeline does: "error" raises (naming brush_mask); "trajectory_blocks"
        # (MotionPro) sends the dragged k x k blocks as the motion region (conditions_from_user's rule)
        _, mot = conditions_from_user(trajectories, torch.from_numpy(brush), int(example.num_frames),
                                      int(example.k), empty_brush=empty_brush)
        brush = mot[0, :, :, 0].numpy()
    return dict(trajectories=trajectories, brush_mask=torch.from_numpy(brush), k=int(example.k),
                trajectory_fill=trajectory_fill)


def run_bench_example(pipeline, example: BenchExample, num_inference_steps: int | None = None,
                      progress: Callable[[int, int], None] | None = None,
                      show_progress_bar: bool = True, empty_brush: str = "error",
                      trajectory_fill: str | None = None, precision: str = "auto") -> np.ndarray:
    """Sample a video for a bench example with a :class:`~remoco.pipeline.ReMoCoPipeline`.

    The user inputs (:func:`example_condition`) go to the pipeline as ``trajectories`` / ``brush_mask`` / ``k``;
    the pipeline turns them into the region-wise trajectory and motion mask (Sec. 3.4). ``progress(step, total)``
    is called after each denoising step. ``empty_brush``: with an empty brush mask, ``"error"`` (the paper; a
    ValueError naming ``brush_mask``) or ``"trajectory_blocks"`` (MotionPro). ``trajectory_fill``: ``"block"``
    (the paper) or ``"brush"`` (the drag also fills its brushed region); ``None``: the example's own.
    ``precision``: the UNet's (:func:`remoco.speed.autocast_module`; "auto": bf16 where the processor computes it
    natively). Returns the frames as ``(L, H, W, 3)`` uint8 numpy.
    """
    import contextlib

    import torch
    from PIL import Image

    from .speed import autocast_module

    cond = example_condition(example, empty_brush, trajectory_fill)
    trajectory_fill = cond.pop("trajectory_fill")
    steps = int(num_inference_steps or example.num_inference_steps or 8)
    kwargs = dict(
        **cond, height=example.height, width=example.width,
        num_frames=int(example.num_frames),
        num_inference_steps=steps, generator=torch.Generator("cpu").manual_seed(int(example.seed)),
        output_type="np",
    )
    if _pipeline_accepts(pipeline, "trajectory_fill"):
        kwargs["trajectory_fill"] = trajectory_fill
    elif trajectory_fill != "block":
        raise ValueError(f"trajectory_fill={trajectory_fill!r} needs a pipeline that takes it (ReMoCoPipeline); "
                         f"{type(pipeline).__name__} only knows the paper's k x k block")
    if progress is not None and _pipeline_accepts(pipeline, "callback_on_step_end"):
        def _cb(pipe, i, t, callback_kwargs):
            progress(i + 1, steps)
            return callback_kwargs
        kwargs["callback_on_step_end"] = _cb
    saved = copy.deepcopy(getattr(pipeline, "_progress_bar_config", None))
    if hasattr(pipeline, "set_progress_bar_config"):
        pipeline.set_progress_bar_config(disable=not show_progress_bar)
    unet = getattr(pipeline, "unet", None)
    fast = autocast_module(unet, precision) if isinstance(unet, torch.nn.Module) else contextlib.nullcontext()
    try:
        with fast:
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

