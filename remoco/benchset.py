"""Benchmark sets on disk: a toy ReMoCo-Bench and converters from DragBench and MC-Bench (Sec. 4.1, Appendix A).

ReMoCo-Bench (Sec. 4.1, Appendix A) holds 1.1K user-annotated image-trajectory pairs: for each reference image an
annotator brushes the motion region and draws the trajectory, for *fine-grained* control (a local part moves; 460
pairs) or *object-level* control (a whole object moves; 680 pairs); there is no ground-truth video. The toy bench
of this module (:func:`build_toy_bench`) replaces the annotators by held-out synthetic clips of
:mod:`remoco.data`, so every pair also keeps its exact ground-truth motion (Eq. 4).

A bench is a folder::

    index.json              {"schema": "remoco-benchset/1", "name", "set", "build", "skipped", "entries": [
                               {"name", "set", "kind", "camera", "example", "truth", ..., "files": {name: sha256}}]}
    <name>/example.json     one example in the remoco-bench/1 schema (remoco.bench), with
    <name>/image.png        the reference image at the model size and
    <name>/mask.png         the brush mask (255 = motion region)
    <name>/truth.json       toy benches only: the ground-truth motion (remoco-bench-truth/1, see TRUTH_FIELDS)

JSON and PNG only. :func:`load_bench` reads and checks any folder in this schema; :func:`convert_dragbench` and
:func:`convert_mcbench` write one from the public layouts (data/bench/README.md says what each field means).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bench import BenchExample, dumps_bench_json, load_bench_example, save_bench_example
from .drag import CoordinateMapping, check_points_inside
from .user_conditions import resample_polyline

__all__ = [
    "BENCHSET_SCHEMA",
    "TRUTH_SCHEMA",
    "SETS",
    "FITS",
    "BENCH_SEED_BASE",
    "MCBENCH_CATEGORIES",
    "BenchEntry",
    "Bench",
    "bench_seed",
    "load_bench",
    "save_bench",
    "ground_truth_clip",
    "toy_entry",
    "build_toy_bench",
    "convert_dragbench",
    "convert_mcbench",
]

BENCHSET_SCHEMA = "remoco-benchset/1"
TRUTH_SCHEMA = "remoco-bench-truth/1"
#: the two evaluations of ReMoCo-Bench (Appendix A): fine-grained (a part moves) and object-level (an object moves)
SETS = ("fine", "object")
#: how a converter brings an image to the model size: ``"crop"`` = cover-resize then centre crop (the drag demo's
#: :func:`remoco.drag.prepare_reference_image`), ``"stretch"`` = resize to H x W (aspect ratio not kept)
FITS = ("crop", "stretch")
#: toy clip seeds lie in [2**52, 2**53): above every training seed ``data.clip_seed(d, i) = d * 1_000_003 + i``
#: with ``d, i < 2**32`` (at most ~4.29e15 < 2**52 ~ 4.50e15) and evaluate.py's 12345+ / 20000+; below 2**53, so
#: JSON readers that parse numbers as doubles keep them exact
BENCH_SEED_BASE = 2**52
#: MC-Bench's two category folders (MotionPro's tools/eval_co_tracker.sh) and the set each holds
MCBENCH_CATEGORIES = {"Fine_grained_control": "fine", "object_control": "object"}
TRUTH_FIELDS = ("schema", "set", "generator", "clip_kind", "layers", "moving_layer", "brush", "tracks", "visible",
                "parent", "camera", "attempt")
_SET_CODE = {"fine": 0, "object": 1}
_MIN_MOTION = 2.0  # px: the trajectory's largest displacement from its start
_MIN_PART_MOTION = 1.5  # px: fine set, the part's largest motion relative to what it is attached to
_MIN_BRUSH = 12  # pixels in the brush
_MAX_ATTEMPTS = 256


@dataclass
class BenchEntry:
    """One entry: the example (remoco-bench/1), its ground truth (toy benches; else None) and its index row."""

    name: str
    example: BenchExample
    set: str
    kind: str
    camera: bool | None = None  # the camera moves too (toy object set); None: not known (converted data)
    truth: dict | None = None
    extra: dict = field(default_factory=dict)  # further index-row fields (e.g. start_in_brush, source_name)


@dataclass
class Bench:
    """A bench in memory (:func:`load_bench`, :func:`save_bench`); ``bench["0003"]`` or ``bench[3]`` is an entry."""

    name: str
    set: str
    entries: list
    build: dict | None = None
    skipped: list = field(default_factory=list)
    folder: Path | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, key) -> BenchEntry:
        if isinstance(key, str):
            for e in self.entries:
                if e.name == key:
                    return e
            raise KeyError(f"no entry named {key!r} in bench {self.name!r}")
        return self.entries[key]


def _int_arg(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo or (hi and value >= hi):
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi if hi else 'inf'}), got {value!r}")
    return int(value)


def _check_set(set: str) -> str:
    if set not in SETS:
        raise ValueError(f"set: expected one of {SETS}, got {set!r}")
    return set


def bench_seed(seed: int, set: str, index: int, attempt: int = 0) -> int:
    """The clip seed of candidate ``attempt`` of toy entry ``index`` of ``set``:
    ``2**52 + ((seed * 4 + {fine: 0, object: 1}) * 65536 + index) * 256 + attempt`` (see :data:`BENCH_SEED_BASE`)."""
    code = _SET_CODE[_check_set(set)]
    seed, index = _int_arg("seed", seed, 0, 2**26), _int_arg("index", index, 0, 2**16)
    return BENCH_SEED_BASE + ((seed * 4 + code) * 2**16 + index) * 2**8 + _int_arg("attempt", attempt, 0, 2**8)


# ------------------------------------------------------------------------------------------------ reading / writing
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no such file {str(path)!r}")
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what}: {str(path)!r} is not valid JSON ({exc})") from exc
    if not isinstance(d, dict):
        raise ValueError(f"{what}: {str(path)!r} must hold a JSON object, got {type(d).__name__}")
    return d


def _field(d: dict, key: str, types, where: str):
    if key not in d:
        raise ValueError(f"{where}: lacks the field {key!r}")
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and types is int):
        raise ValueError(f"{where}: field {key!r} must be of type {getattr(types, '__name__', types)}, got {v!r:.80}")
    return v


def _check_truth(t: dict, ex: BenchExample, where: str) -> None:
    """The checks of a truth.json dict against its example (TRUTH_FIELDS; Eq. 4 tracks)."""
    if t.get("schema") != TRUTH_SCHEMA:
        raise ValueError(f"{where}: field 'schema' must be {TRUTH_SCHEMA!r}, got {t.get('schema')!r}")
    gen = _field(t, "generator", dict, where)
    for key in ("function", "seed", "kind", "num_frames", "height", "width"):
        _field(gen, key, str if key in ("function", "kind") else int, f"{where} generator")
    if (gen["num_frames"], gen["height"], gen["width"]) != (ex.num_frames, ex.height, ex.width):
        raise ValueError(f"{where}: generator num_frames/height/width {gen['num_frames'], gen['height'], gen['width']}"
                         f" differ from the example's {ex.num_frames, ex.height, ex.width}")
    n, L = len(ex.trajectories), ex.num_frames
    for key in ("tracks", "visible"):
        a = np.asarray(_field(t, key, list, where))
        if a.shape != ((n, L, 2) if key == "tracks" else (n, L)):
            raise ValueError(f"{where}: field {key!r} must have shape {(n, L, 2) if key == 'tracks' else (n, L)} "
                             f"(one per trajectory and frame), got {a.shape}")
    for key in ("parent", "camera"):
        if t.get(key) is not None and not isinstance(t[key], dict):
            raise ValueError(f"{where}: field {key!r} must be null or an object, got {t[key]!r:.80}")


def load_bench(folder, verify: bool = True) -> Bench:
    """Read a bench folder (module docstring) into a :class:`Bench`; every example is validated
    (:meth:`remoco.bench.BenchExample.validate`), every truth.json checked against it and, with ``verify``, every
    file against its sha256 in index.json. Errors name the file and the field: FileNotFoundError for a missing file,
    ValueError for the rest."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder: no such bench folder {str(folder)!r}")
    index_path = folder / "index.json"
    idx = _read_json(index_path, "folder")
    where = str(index_path)
    if idx.get("schema") != BENCHSET_SCHEMA:
        raise ValueError(f"{where}: field 'schema' must be {BENCHSET_SCHEMA!r}, got {idx.get('schema')!r}")
    name, set_ = _field(idx, "name", str, where), _field(idx, "set", str, where)
    entries, seen = [], set()
    for i, row in enumerate(_field(idx, "entries", list, where)):
        w = f"{where} entries[{i}]"
        if not isinstance(row, dict):
            raise ValueError(f"{w}: must be a JSON object, got {row!r:.80}")
        ename = _field(row, "name", str, w)
        if not re.fullmatch(r"[A-Za-z0-9._-]+", ename) or ename in (".", "..") or ename in seen:
            raise ValueError(f"{w}: field 'name' must be a unique folder name of [A-Za-z0-9._-], got {ename!r}")
        seen.add(ename)
        rel = {"example": _field(row, "example", str, w)}
        if row.get("truth") is not None:
            rel["truth"] = _field(row, "truth", str, w)
        camera = row.get("camera")
        if camera is not None and not isinstance(camera, bool):
            raise ValueError(f"{w}: field 'camera' must be true, false or null, got {camera!r}")
        files = row.get("files") or {}
        if verify:
            for fname, digest in files.items():
                p = folder / ename / fname
                if not p.is_file():
                    raise FileNotFoundError(f"{w}: the file {str(p)!r} listed in 'files' does not exist")
                if _sha256(p) != digest:
                    raise ValueError(f"{w}: {str(p)!r} differs from its sha256 in 'files' (changed after writing)")
        path = folder / rel["example"]
        try:
            ex = load_bench_example(path)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        truth = None
        if "truth" in rel:
            tpath = folder / rel["truth"]
            truth = _read_json(tpath, f"{w} truth")
            _check_truth(truth, ex, str(tpath))
            if camera is not None and camera != (truth.get("camera") is not None):
                raise ValueError(f"{w}: field 'camera' is {camera} but the field 'camera' of {str(tpath)!r} is "
                                 f"{'set' if truth.get('camera') is not None else 'null'}")
        known = ("name", "set", "kind", "camera", "example", "truth", "files")
        entries.append(BenchEntry(ename, ex, _field(row, "set", str, w), _field(row, "kind", str, w), camera, truth,
                                  {k: v for k, v in row.items() if k not in known}))
    return Bench(name, set_, entries, idx.get("build"), list(idx.get("skipped") or []), folder)


def save_bench(bench: Bench, out, overwrite: bool = False) -> Path:
    """Write ``bench`` as a folder (module docstring) and return the path of its index.json. The folder is written
    next to ``out`` first and then moved in place; an existing ``out`` is replaced only with ``overwrite`` and only if
    it holds a bench (an index.json of this schema)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"out: {str(out)!r} exists and is not empty; pass overwrite=True to replace a bench")
        try:
            is_bench = _read_json(out / "index.json", "out").get("schema") == BENCHSET_SCHEMA
        except (FileNotFoundError, ValueError):
            is_bench = False
        if not is_bench:
            raise ValueError(f"out: {str(out)!r} is not a bench folder (no {BENCHSET_SCHEMA} index.json); not replaced")
    tmp = out.with_name(out.name + ".writing")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    rows, names = [], set()
    for e in bench.entries:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", e.name) or e.name in names:
            raise ValueError(f"entries: entry name {e.name!r} must be a unique folder name of [A-Za-z0-9._-]")
        names.add(e.name)
        d = tmp / e.name
        save_bench_example(e.example, d, "example", image_name="image.png", mask_name="mask.png")
        row = {"name": e.name, "set": e.set, "kind": e.kind, "camera": e.camera, "example": f"{e.name}/example.json",
               "truth": f"{e.name}/truth.json" if e.truth is not None else None, **e.extra}
        if e.truth is not None:
            (d / "truth.json").write_text(dumps_bench_json(e.truth))
        row["files"] = {p.name: _sha256(p) for p in sorted(d.iterdir())}
        rows.append(row)
    index = {"schema": BENCHSET_SCHEMA, "name": bench.name, "set": bench.set, "build": bench.build,
             "skipped": bench.skipped, "entries": rows}
    (tmp / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out / "index.json"


# ---------------------------------------------------------------------------------------------------- toy bench
def _toy_generator(set: str, index: int) -> dict:
    """What entry ``index`` of a toy set renders: every 4th fine entry a photograph whose region moves (photo_clip),
    every 4th object entry a clip where the camera moves too; the rest synthetic part / object clips."""
    from .data import PHOTO_NAMES

    if set == "fine" and index % 4 == 3:
        return {"function": "remoco.data.photo_clip", "kind": "part", "photo": PHOTO_NAMES[(index // 4) % 7]}
    return {"function": "remoco.data.make_clip",
            "kind": "part" if set == "fine" else ("camera" if index % 4 == 3 else "object")}


def ground_truth_clip(truth: dict):
    """The :class:`remoco.data.SyntheticClip` of a truth.json dict (its ``generator``), rendered again: the
    ground-truth video, flow and visibility of a toy entry (Eq. 4)."""
    from . import data

    g = truth.get("generator") if isinstance(truth, dict) else None
    if not isinstance(g, dict):
        raise ValueError(f"truth: expected a dict with a 'generator' object, got {truth!r:.80}")
    args = (g.get("seed"), g.get("num_frames"), g.get("height"), g.get("width"))
    if g.get("function") == "remoco.data.make_clip":
        return data.make_clip(*args, kind=g.get("kind"))
    if g.get("function") == "remoco.data.photo_clip":
        return data.photo_clip(*args, photo=g.get("photo"), kind=g.get("kind"))
    raise ValueError(f"truth: generator 'function' must be 'remoco.data.make_clip' or 'remoco.data.photo_clip', "
                     f"got {g.get('function')!r}")


def _rigid_track(flow: np.ndarray, region: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Where ``point`` goes if it is glued to ``region``: the affine map of each frame fitted (least squares) to the
    region's flow (exact for one layer, whose flow is affine by construction; remoco.data) applied to it."""
    ys, xs = np.nonzero(region)
    A = np.stack([xs, ys, np.ones_like(xs)], 1).astype(np.float64)
    out = []
    for f in flow:
        M, *_ = np.linalg.lstsq(A, np.stack([xs, ys], 1) + f[ys, xs].astype(np.float64), rcond=None)
        out.append(np.array([point[0], point[1], 1.0]) @ M)
    return np.array(out)


def _round(a, nd=4):
    return np.round(np.asarray(a, dtype=np.float64), nd).tolist()


def toy_entry(set: str, index: int, seed: int = 0, num_frames: int = 8, size: int = 64, k: int = 8) -> BenchEntry:
    """Toy entry ``index`` of ``set`` (name ``f"{index:04d}"``), independent of the other entries.

    Candidates ``attempt = 0, 1, ...`` (clip seed :func:`bench_seed`) are rendered until one passes: the drawn
    trajectory is the true path (Eq. 4: ``p + f^i(p)``) of the pixel nearest the centroid of the front-most moving
    layer that is visible in every frame (:func:`remoco.evaluate.object_trajectory`), it stays inside the image and
    moves >= 2 px; the brush has >= 12 pixels. Fine set: the layer is a part (``"object0.part"``, or a photo_clip
    region of a photograph) and the brush is that part; it must move >= 1.5 px relative to what it is attached to.
    Object set: the brush is the whole object; in camera entries (the camera pans / zooms too, which the trajectory
    alone cannot tell apart, Sec. 3.2) the brush is the motion mask of the true flow (Sec. 3.2, > 1 px), which
    covers the moving background. ``trajectories`` are the constant-speed (arc-length) samples of the true path
    (Sec. 3.4); truth.json keeps the true per-frame positions."""
    import torch

    from .conditions import motion_mask
    from .evaluate import object_trajectory

    _check_set(set)
    _int_arg("index", index, 0, 2**16)
    L, H = _int_arg("num_frames", num_frames, 2), _int_arg("size", size, 16)
    W = H
    for attempt in range(_MAX_ATTEMPTS):
        gen = dict(_toy_generator(set, index), seed=bench_seed(seed, set, index, attempt), num_frames=L, height=H,
                   width=W)
        clip = ground_truth_clip({"generator": gen})
        try:
            path, brush_t = object_trajectory(clip)
        except ValueError:  # a camera clip without a moving object
            continue
        brush, owner, flow = brush_t.numpy(), np.asarray(clip.meta["owner"]), clip.flow.numpy()
        x0, y0 = int(path[0, 0]), int(path[0, 1])
        layers, lab = list(clip.meta["layers"]), int(owner[y0, x0])
        inside = ((path >= -0.5) & (path < np.array([W, H]) - 0.5)).all()
        if not (inside and clip.visibility[:, y0, x0].all() and brush.sum() >= _MIN_BRUSH
                and np.linalg.norm(path - path[0], axis=1).max() >= _MIN_MOTION):
            continue
        parent = camera = None
        if set == "fine":
            if layers[lab] not in ("object0.part", "region"):
                continue
            pname = "object0" if layers[lab] == "object0.part" else "background"
            glued = _rigid_track(flow, owner == layers.index(pname), path[0])
            rel = float(np.linalg.norm(path - glued, axis=1).max())
            if rel < _MIN_PART_MOTION:
                continue
            parent = {"layer": pname, "track": _round(glued), "relative_motion_px": round(rel, 4)}
        if clip.meta.get("camera"):
            brush = motion_mask(clip.flow, 1.0)[0, :, :, 0].numpy()
            bg = (owner == 0) & clip.visibility.all(0).numpy()
            ys, xs = np.nonzero(bg)
            if not brush[y0, x0] or not len(ys):
                continue
            j = int(np.argmin((ys - (H - 1) / 2) ** 2 + (xs - (W - 1) / 2) ** 2))
            disp = flow[:, ys[j], xs[j]]
            if np.linalg.norm(disp, axis=1).max() < 1.0:
                continue
            camera = {"pan": _round(clip.meta["pan"]), "zoom": round(float(clip.meta["zoom"]), 6),
                      "background_pixel": [int(xs[j]), int(ys[j])], "displacement": _round(disp)}
        traj = resample_polyline(torch.from_numpy(path), L).numpy()
        ex = BenchExample(image=clip.video[0].numpy(), brush_mask=brush, trajectories=[traj], k=k, num_frames=L,
                          seed=index, drawn_trajectories=[path],
                          source={"name": f"remoco toy bench, {set} set, entry {index:04d}", "truth": "truth.json"})
        truth = {"schema": TRUTH_SCHEMA, "set": set, "generator": gen, "clip_kind": clip.kind, "layers": layers,
                 "moving_layer": layers[lab], "brush": "motion_mask" if camera else "layer", "tracks": [_round(path)],
                 "visible": [clip.visibility[:, y0, x0].tolist()], "parent": parent, "camera": camera,
                 "attempt": attempt}
        return BenchEntry(f"{index:04d}", ex, set, clip.kind, camera is not None, truth)
    raise RuntimeError(f"toy_entry: no candidate of {set} entry {index} passed in {_MAX_ATTEMPTS} attempts")


def build_toy_bench(out, set: str = "fine", n: int = 120, seed: int = 0, overwrite: bool = False) -> Bench:
    """Generate the toy bench ``set`` (``"fine"`` or ``"object"``, Appendix A's two evaluations) of ``n`` entries
    (:func:`toy_entry` ``0 .. n-1``; 64 x 64, 8 frames, k = 8) into the folder ``out`` and return it loaded.
    Deterministic: the same ``(set, n, seed)`` writes identical files, and the first ``m`` entries do not depend on
    ``n``. Clip seeds come from :func:`bench_seed`, disjoint from the training and evaluation seeds."""
    _check_set(set)
    n = _int_arg("n", n, 1, 2**16)
    entries = [toy_entry(set, i, seed) for i in range(n)]
    build = {"function": "remoco.benchset.build_toy_bench", "set": set, "n": n, "seed": seed, "height": 64,
             "width": 64, "num_frames": 8, "k": 8, "clip_seeds": "remoco.benchset.bench_seed(seed, set, index, "
             "attempt) = 2**52 + ((seed * 4 + {fine: 0, object: 1}) * 65536 + index) * 256 + attempt",
             "rejected_candidates": sum(e.truth["attempt"] for e in entries)}
    return load_bench(Path(save_bench(Bench(f"remoco-toy-{set}", set, entries, build), out, overwrite)).parent)


# ---------------------------------------------------------------------------------------------------- converters
def _read_png(path: Path, what: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise FileNotFoundError(f"{what}: no such file {str(path)!r}")
    try:
        with Image.open(path) as im:
            return np.asarray(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{what}: {str(path)!r} is not a readable image ({exc})") from exc


def _resample(arr: np.ndarray, m: CoordinateMapping, resample) -> np.ndarray:
    from PIL import Image

    rh, rw = m.resized_size
    oy, ox = (int(v) for v in m.crop_offset)
    h, w = m.model_size
    return np.asarray(Image.fromarray(arr).resize((rw, rh), resample).crop((ox, oy, ox + w, oy + h)))


def _converted_entry(name: str, sample: Path, image_file: str, mask_file: str, polylines: list, where: str,
                     size: tuple, num_frames: int, k: int, fit: str, source: dict, set: str, kind: str) -> BenchEntry:
    """A bench entry from an image, a brush mask (brushed: any channel > 0) and polylines in original pixels."""
    from PIL import Image

    img = _read_png(sample / image_file, "image")
    mask = _read_png(sample / mask_file, "mask")
    img = np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img[..., :3]
    brushed = (mask > 0) if mask.ndim == 2 else (mask > 0).any(-1)
    h0, w0 = img.shape[:2]
    if brushed.shape != (h0, w0):
        raise ValueError(f"{sample / mask_file}: the mask is {brushed.shape[0]}x{brushed.shape[1]} (HxW), the image "
                         f"{image_file} is {h0}x{w0}; expected the same size")
    H, W = size
    m = (CoordinateMapping.for_resize_crop((h0, w0), (H, W)) if fit == "crop"
         else CoordinateMapping((h0, w0), (H, W), (H / h0, W / w0), (0, 0)))
    image = _resample(np.ascontiguousarray(img.astype(np.uint8)), m, Image.Resampling.LANCZOS)
    # a model pixel is brushed when at least half of its area is (box filter)
    brush = _resample(brushed.astype(np.uint8) * 255, m, Image.Resampling.BOX) >= 128
    drawn = []
    for i, p in enumerate(polylines):
        what = f"{where}[{i}]"
        p = check_points_inside(p, h0, w0, what)
        if not (np.abs(p[1:] - p[:-1]).sum(1) > 0).any():
            raise ValueError(f"{what}: expected points that move (at least two distinct [x, y]), got {p.tolist()}")
        drawn.append(check_points_inside(m.original_to_model(p), H, W, f"{what} (at the model size, fit={fit!r})"))
    trajs = [resample_polyline(d, num_frames).numpy() for d in drawn]
    rows, cols = zip(*[(int(math.floor(t[0, 1] + 0.5)), int(math.floor(t[0, 0] + 0.5))) for t in trajs])
    ex = BenchExample(image=image, brush_mask=brush, trajectories=trajs, k=k, num_frames=num_frames, seed=0,
                      drawn_trajectories=drawn, source=dict(m.to_dict(), fit=fit, **source))
    extra = {"source_name": source["name"], "start_in_brush": [bool(brush[r, c]) for r, c in zip(rows, cols)]}
    return BenchEntry(name, ex, set, kind, None, None, extra)


def _convert(src, out, marker: str, read_sample, name: str, height, width, num_frames, k, fit, on_error,
             overwrite, kind: str, hint: str = "") -> Bench:
    src = Path(src)
    size = (_int_arg("height", height, 8), _int_arg("width", width, 8))
    num_frames, k = _int_arg("num_frames", num_frames, 2), _int_arg("k", k, 1)
    if fit not in FITS:
        raise ValueError(f"fit: expected one of {FITS}, got {fit!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
    if not src.is_dir():
        raise FileNotFoundError(f"src: no such folder {str(src)!r}")
    samples = sorted({p.parent for pat in marker.split("|") for p in src.rglob(pat)})
    if not samples:
        raise FileNotFoundError(f"src: no sample folder (with {marker.replace('|', ' or ')}) below {str(src)!r}{hint}")
    entries, skipped, names = [], [], set()
    for sample in samples:
        rel = sample.relative_to(src).as_posix() or src.name
        ename = re.sub(r"[^A-Za-z0-9._-]", "_", rel.replace("/", "__"))
        try:
            if ename in names:
                raise ValueError(f"{sample}: its entry name {ename!r} collides with another sample's")
            polylines, where, files, set_, extra = read_sample(sample, rel)
            entries.append(_converted_entry(ename, sample, *files, polylines, where, size, num_frames, k, fit,
                                            dict(name=rel, **extra), set_, kind))
            names.add(ename)
        except (ValueError, FileNotFoundError) as exc:
            if on_error == "raise":
                raise
            skipped.append({"sample": rel, "error": str(exc)})
    sets = sorted({e.set for e in entries})
    build = {"function": f"remoco.benchset.convert_{kind}", "src": src.name, "height": size[0], "width": size[1],
             "num_frames": num_frames, "k": k, "fit": fit}
    bench = Bench(name, sets[0] if len(sets) == 1 else "mixed", entries, build, skipped)
    return load_bench(Path(save_bench(bench, out, overwrite)).parent)


def _points(value, where: str) -> np.ndarray:
    try:
        p = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: expected a list of [x, y] numbers, got {value!r:.80} ({exc})") from None
    if p.ndim != 2 or p.shape[1] != 2 or not len(p) or not np.isfinite(p).all():
        raise ValueError(f"{where}: expected a non-empty list of finite [x, y] points, got {value!r:.80}")
    return p


def convert_dragbench(src, out, height: int = 64, width: int = 64, num_frames: int = 8, k: int = 8,
                      fit: str = "crop", on_error: str = "raise", overwrite: bool = False) -> Bench:
    """Convert a DragBench-style folder into a bench at the model size (ReMoCo-Bench takes 72 of its images from
    DragBench, Appendix A) and return it loaded.

    Layout: below ``src`` (any depth, e.g. DragBench's ``<category>/<sample>/``) every folder with
    ``drag_instruction.json`` is a sample, with ``original_image.png`` and ``mask.png`` (the editable region: a
    pixel is brushed when any channel is > 0; same size as the image). The JSON holds ``points``: handle -> target
    pairs of ``[x, y]`` pixels of the original image (pixel centres at integers), either flat and alternating
    ``[h1, t1, h2, t2, ...]`` (DragBench's ``meta_data.pkl`` order, which DragBench's own release stores as a
    pickle: this reader takes the JSON form only) or nested ``[[h1, t1], ...]``; ``prompt`` is kept if present.
    Each pair becomes one straight trajectory from handle to target, resampled to ``num_frames`` points; the image,
    mask and points are brought to ``height x width`` by ``fit`` (:data:`FITS`), the mapping recorded in the
    example's ``source``. A point outside the image (or, with ``"crop"``, outside the crop) raises ValueError
    naming the file and ``points[i]``; ``on_error="skip"`` lists such samples in index.json's ``skipped`` instead.
    """
    def read(sample: Path, rel: str):
        path = sample / "drag_instruction.json"
        d = _read_json(path, "drag_instruction")
        raw = _field(d, "points", list, str(path))
        try:
            a = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            a = np.zeros((0,))
        if a.ndim == 3 and a.shape[1:] == (2, 2):  # nested [[handle, target], ...]
            a = a.reshape(-1, 2)
        if a.ndim != 2 or a.shape[1] != 2 or not len(a) or len(a) % 2 or not np.isfinite(a).all():
            raise ValueError(f"{path}: points must hold handle -> target pairs of finite [x, y] numbers, flat "
                             f"[h1, t1, h2, t2, ...] (an even number of points) or nested [[h1, t1], ...]; got "
                             f"{raw!r:.120}")
        pts = a
        extra = {"format": "dragbench", "prompt": d.get("prompt")} if d.get("prompt") is not None else \
            {"format": "dragbench"}
        return list(pts.reshape(-1, 2, 2)), f"{path}: points pair", ("original_image.png", "mask.png"), "dragbench", \
            extra

    hint = ("; DragBench's release stores meta_data.pkl, which is not read here: write its 'points' and 'prompt' "
            "as drag_instruction.json and its 'mask' as mask.png first") if any(Path(src).rglob("meta_data.pkl")) \
        else ""
    return _convert(src, out, "drag_instruction.json", read, "dragbench", height, width, num_frames, k, fit,
                    on_error, overwrite, "dragbench", hint)


def convert_mcbench(src, out, height: int = 64, width: int = 64, num_frames: int = 8, k: int = 8,
                    fit: str = "crop", category: str | None = None, on_error: str = "raise",
                    overwrite: bool = False) -> Bench:
    """Convert MotionPro's released MC-Bench (MotionPro's name for ReMoCo-Bench, Sec. 4.1 / Appendix A) into a
    bench at the model size and return it loaded.

    Layout, as MotionPro's ``eval_mc_bench.py`` and ``tools/eval_co_tracker_acc.py`` read it (HiDream-ai/MotionPro,
    data/MC-Bench.tar on its Hugging Face page; the archive itself was not available here):
    ``MC-Bench/<category>/<sample>/`` with ``category`` one of :data:`MCBENCH_CATEGORIES`
    (``Fine_grained_control`` -> set ``"fine"``, ``object_control`` -> ``"object"``; another folder name is kept as
    the set), ``first_frame.png`` (the reference image), ``first_frame_mask.png`` (the brush: any channel > 0),
    ``user_drag.png`` (a drawing, not read) and ``meta_data.json`` (``meta_data_new.json`` when that is the only
    one; the file read is recorded) whose ``traj_key_points`` is a list of trajectories, each a list of ``[x, y]``
    key points in image pixels. ``src`` may also be one category folder; ``category`` keeps only that one.

    Differences from MotionPro's evaluation, on purpose: the key points are joined by straight segments and
    resampled at constant speed (arc length, :func:`remoco.user_conditions.resample_polyline`, the rule of this project,
    Sec. 3.4) instead of MotionPro's PCHIP interpolation over the key-point index; a single-key-point trajectory
    (which MotionPro moves by (+1, +1) px) raises ValueError naming ``traj_key_points[i]`` instead of a guessed
    move. Other arguments as :func:`convert_dragbench`."""
    if category is not None and not isinstance(category, str):
        raise ValueError(f"category: expected None or a category folder name, got {category!r}")

    def read(sample: Path, rel: str):
        path = sample / "meta_data.json"
        if not path.is_file() and (sample / "meta_data_new.json").is_file():
            path = sample / "meta_data_new.json"
        tracks = _field(_read_json(path, "meta_data"), "traj_key_points", list, str(path))
        if not tracks:
            raise ValueError(f"{path}: field 'traj_key_points' holds no trajectory")
        polylines = [_points(t, f"{path}: traj_key_points[{i}]") for i, t in enumerate(tracks)]
        for i, p in enumerate(polylines):
            if len(p) < 2:
                raise ValueError(f"{path}: traj_key_points[{i}] has a single key point, which has no direction "
                                 "(MotionPro's evaluation moves it by (+1, +1) px; not guessed here)")
        parts = rel.split("/")
        cat = parts[0] if len(parts) > 1 else root.name
        extra = {"format": "mcbench", "category": cat, "meta_data": path.name}
        return polylines, f"{path}: traj_key_points", ("first_frame.png", "first_frame_mask.png"), \
            MCBENCH_CATEGORIES.get(cat, cat), extra

    root = Path(src)
    if category is not None:
        if not (root / category).is_dir():
            raise FileNotFoundError(f"category: no folder {category!r} in {str(root)!r}")
        root = root / category
    return _convert(root, out, "meta_data.json|meta_data_new.json", read, "mcbench" + (f"-{category}" if category
                    else ""), height, width, num_frames, k, fit, on_error, overwrite, "mcbench")
