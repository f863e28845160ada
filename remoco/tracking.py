"""Where does the dragged point go, and how far is that from where it was asked to go? The one motion-distance
metric of the project (MD-Vid, Sec. 4.1), the trackers behind it, and the known-answer videos that validate it.

:func:`motion_distance` is MD-Vid: the drawn trajectory is resampled to one position per frame by arc length
(:func:`remoco.user_conditions.resample_polyline`, the rule the pipeline's conditions use, so the target is what
the model was asked for), its start point is tracked through the video, and the distance between the two is
averaged over frames 2..L. Beside the distance it reports the **no-motion ceiling** (the distance of a video that
does not move: the trajectory's mean distance from its own start) and the normalised score
``1 - distance / ceiling``, "how much of the way the point went": 1 for a perfect video, 0 for a frozen one,
0.5 for one that moved at half speed along the path, -1 for one that moved the same distance the wrong way.

The paper tracks with CoTracker; the authors' release tracks an 8 x 8 block of query points around each start
point and averages them. The trackers here (:func:`track_start_point`) follow a ``block`` x ``block`` square of
pixels around the start point and take the median of their motions:

* ``"flow"`` -- dense OpenCV DIS optical flow from frame 1 (:func:`remoco.flow.estimate_flow`);
* ``"lk"`` -- pyramidal Lucas-Kanade of every pixel of the block (:func:`track_points`);
* ``"ncc"`` -- appearance: the ``patch`` x ``patch`` neighbourhood of the start point in frame 1 searched over
  the whole of every frame by normalized cross-correlation (:func:`ncc_track`; also MD-Img's matcher);
* ``"cotracker"`` -- CoTracker's tracks from the user's weights file (the paper's tracker).

A tracker is used only after it passes :func:`validate_motion_distance` on videos whose answer is known
(:func:`known_path_video`: the brushed region moved along the drawn path at full, half, zero or reversed speed,
optionally blurring or changing colour as generated objects do).

:func:`appearance_match` answers a different question, whether a model moved an object at all: it finds the frame-1
object again in a later frame by its look (rotated and scaled templates, masked NCC), so an object that stays put
and only changes colour is not credited with motion (:func:`remoco.evaluate.object_appearance_motion`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .checks import check_int
from .video import as_uint8_frames

__all__ = [
    "TRACKERS",
    "video_frames",
    "track_points",
    "ncc_track",
    "AppearanceMatch",
    "appearance_match",
    "track_start_point",
    "MotionDistance",
    "target_positions",
    "motion_distance",
    "known_path_video",
    "KNOWN_CASES",
    "known_case_videos",
    "validate_motion_distance",
    "validation_summary",
]

#: Tracker name -> the label its numbers carry (the paper's MD-Vid tracker is CoTracker).
TRACKERS = {"flow": "OpenCV DIS flow tracker", "lk": "LK tracker", "ncc": "NCC appearance tracker",
            "cotracker": "CoTracker"}


def video_frames(video, name: str = "video", min_frames: int = 2) -> np.ndarray:
    """(L, H, W, 3) uint8 numpy of a clip given as uint8 or float in [0, 1]; floats outside [0, 1], another
    shape or fewer than ``min_frames`` frames are a ValueError naming ``name`` (nothing is clipped or guessed)."""
    raw = video.detach().cpu().numpy() if torch.is_tensor(video) else np.asarray(video)
    shape = tuple(raw.shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"{name} must be (L, H, W, 3), got {shape}")
    if np.issubdtype(raw.dtype, np.floating) and raw.size:
        if not np.isfinite(raw).all():
            raise ValueError(f"{name} contains NaN or inf")
        lo, hi = float(raw.min()), float(raw.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name}: float frames must lie in [0, 1], got values in [{lo:g}, {hi:g}] "
                             "(nothing is clipped; pass uint8 or rescale)")
    elif raw.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 or float in [0, 1], got dtype {raw.dtype}")
    if shape[0] < min_frames:
        raise ValueError(f"{name} must have at least {min_frames} frame(s), got {shape[0]}")
    if shape[1] < 1 or shape[2] < 1:
        raise ValueError(f"{name} frames must not be empty, got (H, W) = {shape[1:3]}")
    return as_uint8_frames(raw, name)


def track_points(video, points, upscale: int = 4, win: int = 21, levels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Track ``points`` (N, 2) (x, y) of frame 1 through ``video`` (L, H, W, 3) with OpenCV's pyramidal
    Lucas-Kanade (:func:`cv2.calcOpticalFlowPyrLK`). Each frame is matched directly against frame 1, starting from
    the previous frame's estimate (no drift accumulation); frames are enlarged ``upscale`` times (bicubic) so the
    LK window covers enough texture at 64 px. Returns ``(tracks (L, N, 2), ok (L, N) bool)`` in input pixels."""
    import cv2

    v = video_frames(video, min_frames=1)
    p = np.asarray(points.detach().cpu() if torch.is_tensor(points) else points, np.float32).reshape(-1, 2)
    if not len(p):
        raise ValueError("points must hold at least one (x, y) point")
    L, H, W, _ = v.shape
    gray = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (W * upscale, H * upscale),
                       interpolation=cv2.INTER_CUBIC) for f in v]
    to_big = lambda q: ((q + 0.5) * upscale - 0.5).astype(np.float32)
    to_small = lambda q: (q + 0.5) / upscale - 0.5
    p0 = to_big(p).reshape(-1, 1, 2)
    tracks = np.zeros((L, len(p), 2), np.float64)
    ok = np.ones((L, len(p)), bool)
    tracks[0] = p
    prev = p0.copy()
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
    for i in range(1, L):
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(gray[0], gray[i], p0, prev.copy(), winSize=(win, win),
                                              maxLevel=levels, criteria=crit, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
        st = st.reshape(-1).astype(bool)
        nxt = np.where(st[:, None, None], nxt, prev)
        tracks[i] = to_small(nxt.reshape(-1, 2))
        ok[i] = st
        prev = nxt.astype(np.float32)
    return tracks, ok


def _subpixel(r: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """Parabola-refined peak of a score map around its integer maximum (i, j) = (row, column)."""
    def offset(a, b, c):
        den = a - 2 * b + c
        return 0.5 * (a - c) / den if den < 0 else 0.0

    dy = offset(r[i - 1, j], r[i, j], r[i + 1, j]) if 0 < i < r.shape[0] - 1 else 0.0
    dx = offset(r[i, j - 1], r[i, j], r[i, j + 1]) if 0 < j < r.shape[1] - 1 else 0.0
    return j + dx, i + dy


def ncc_track(video, start, patch: int = 11) -> np.ndarray:
    """Where the ``patch`` x ``patch`` RGB neighbourhood of ``start`` (x, y) in frame 1 best matches each frame, by
    zero-mean normalized cross-correlation at every position of the frame (reflected borders, parabolic sub-pixel
    peak); (L, 2) (x, y). A uniform start patch is a ValueError (no correspondence is defined there)."""
    import cv2

    v = video_frames(video)
    check_int("patch", patch, minimum=3)
    if patch % 2 == 0 or patch > min(v.shape[1:3]):
        raise ValueError(f"patch must be an odd int no larger than the frame ({v.shape[2]}x{v.shape[1]}), got {patch}")
    start = np.asarray(start, np.float64).reshape(2)
    r = patch // 2
    pad = lambda f: cv2.copyMakeBorder(f.astype(np.float32), r, r, r, r, cv2.BORDER_REFLECT_101)
    x0, y0 = int(round(start[0])), int(round(start[1]))
    template = pad(v[0])[y0:y0 + patch, x0:x0 + patch]
    if float(template.std()) == 0.0:
        raise ValueError(f"trajectory: the {patch}x{patch} patch around the start point ({start[0]:g}, "
                         f"{start[1]:g}) is uniform; NCC matching is undefined there (use a larger patch)")
    frac = start - (x0, y0)
    out = [start]
    for f in v[1:]:
        score = np.nan_to_num(cv2.matchTemplate(pad(f), template, cv2.TM_CCOEFF_NORMED), nan=-1.0)
        i, j = np.unravel_index(int(np.argmax(score)), score.shape)
        out.append(np.asarray(_subpixel(score, int(i), int(j))) + frac)
    return np.stack(out)


@dataclass(frozen=True)
class AppearanceMatch:
    """Where :func:`appearance_match` found the frame-1 object: its ``shift`` (dx, dy) in px, the rotation
    ``angle`` (rad) and ``scale`` of the best template, its ``score`` (masked zero-mean NCC, -1..1) and the
    ``distractor`` score: the best match of the same templates in frame 1 itself, away from the object (shifts of
    at least the object's radius), i.e. how well the rest of the scene already imitates the object."""

    shift: tuple[float, float]
    angle: float
    scale: float
    score: float
    distractor: float

    @property
    def distance(self) -> float:
        return float(np.hypot(*self.shift))

    def found(self, min_score: float, margin: float) -> bool:
        """The object is recognised: the match scores at least ``min_score`` and beats every distractor by more
        than ``margin`` (a look-alike in an unchanged background scores the same in both frames, up to rounding)."""
        return self.score >= min_score and self.score > self.distractor + margin  # False where distractor is NaN


def _templates(first: np.ndarray, m: np.ndarray, angles, scales):
    """The object's frame-1 pixels rotated about their centroid and scaled: (angle, scale, template, mask,
    top-left (x0, y0)) for every pair that keeps at least 10 pixels inside the frame."""
    import cv2

    H, W = m.shape
    ys, xs = np.nonzero(m)
    centre = (float(xs.mean()), float(ys.mean()))
    for angle in angles:
        for scale in scales:
            warp = cv2.getRotationMatrix2D(centre, float(np.degrees(angle)), float(scale))
            image = cv2.warpAffine(first, warp, (W, H), flags=cv2.INTER_LINEAR)
            inside = cv2.warpAffine(m.astype(np.float32), warp, (W, H), flags=cv2.INTER_LINEAR) > 0.99
            inside &= cv2.warpAffine(np.ones((H, W), np.float32), warp, (W, H), flags=cv2.INTER_LINEAR) > 0.99
            if int(inside.sum()) < 10:
                continue
            yy, xx = np.nonzero(inside)
            y0, y1, x0, x1 = int(yy.min()), int(yy.max()) + 1, int(xx.min()), int(xx.max()) + 1
            mask = np.repeat(inside[y0:y1, x0:x1, None].astype(np.float32), 3, axis=2)
            yield float(angle), float(scale), image[y0:y1, x0:x1], mask, (x0, y0)


def _best_shift(target: np.ndarray, templates, max_shift: float, min_shift: float = 0.0):
    """Best (score, (dx, dy), angle, scale) of ``templates`` in ``target`` (a frame, black outside it) over shifts
    with ``min_shift <= |shift| <= max_shift``; each template is matched only in the window those shifts reach."""
    import cv2

    reach = int(np.ceil(max_shift))
    target = cv2.copyMakeBorder(target.astype(np.float32), reach, reach, reach, reach, cv2.BORDER_CONSTANT,
                                value=(0, 0, 0))
    d = np.arange(-reach, reach + 1)
    r = np.hypot(d[None, :], d[:, None])  # |shift| at each (dy, dx) of a result map
    outside = (r > max_shift) | (r < min_shift)
    best = (-1.0, (0.0, 0.0), 0.0, 1.0)
    for angle, scale, image, mask, (x0, y0) in templates:
        h, w = image.shape[:2]
        window = target[y0:y0 + h + 2 * reach, x0:x0 + w + 2 * reach]  # shifts -reach..reach around (x0, y0)
        score = np.nan_to_num(cv2.matchTemplate(window, image, cv2.TM_CCOEFF_NORMED, mask=mask),
                              nan=-1.0, posinf=-1.0, neginf=-1.0)
        score[outside] = -1.0
        i, j = np.unravel_index(int(np.argmax(score)), score.shape)
        if score[i, j] > best[0]:
            best = (float(score[i, j]), (float(d[j]), float(d[i])), angle, scale)
    return best


def appearance_match(video, region, frame: int = -1, max_shift: float | None = None,
                     angles=tuple(np.linspace(-0.6, 0.6, 13)), scales=(0.8, 0.9, 1.0, 1.1, 1.2),
                     distractor_from: float | None = None) -> AppearanceMatch:
    """Find the object of ``region`` (frame-1 (H, W) bool mask) again in ``video[frame]`` by its frame-1
    *appearance*: the object's pixels, rotated about their centroid by each of ``angles`` and scaled by each of
    ``scales``, are matched at every shift up to ``max_shift`` px (default half the short side) by zero-mean
    normalized cross-correlation over the object's own pixels (OpenCV ``TM_CCOEFF_NORMED`` with a mask; outside
    the frame counts as black). The best (angle, scale, shift) wins. The same search in frame 1 at shifts of at
    least the object's radius (``sqrt(area / pi)``) gives the ``distractor`` score. Unlike flow at the object's
    pixels, this does not follow an object that keeps its place and changes colour: its pixels no longer look
    like the object, and a match elsewhere in the (unchanged) background is no better than that background's
    distractor score in frame 1. The default angle and scale ranges cover the synthetic objects' rotation
    (|angle| <= 0.5 rad) and zoom (+-15 %) over a clip (:func:`remoco.data.make_clip`). With ``distractor_from``
    the frame-1 search (half the cost) runs only when the best score reaches it, and ``distractor`` is NaN
    otherwise (such a match is not found at that threshold anyway)."""
    v = video_frames(video)
    L, H, W = v.shape[:3]
    m = np.asarray(region.numpy() if isinstance(region, torch.Tensor) else region)
    if m.dtype != bool or m.shape != (H, W) or int(m.sum()) < 10:
        raise ValueError(f"region must be a bool ({H}, {W}) mask of at least 10 pixels, got {m.dtype} "
                         f"{m.shape} with {int(m.sum()) if m.dtype == bool else '?'} set")
    check_int("frame", frame, minimum=-L)
    if frame >= L:
        raise ValueError(f"frame must index one of the video's {L} frames, got {frame}")
    max_shift = 0.5 * min(H, W) if max_shift is None else float(max_shift)
    if not max_shift > 0:
        raise ValueError(f"max_shift must be > 0 px, got {max_shift}")
    templates = list(_templates(v[0].astype(np.float32), m, angles, scales))
    score, shift, angle, scale = _best_shift(v[frame], templates, max_shift)
    distractor = float("nan")
    if distractor_from is None or score >= distractor_from:
        distractor = _best_shift(v[0], templates, max_shift, min_shift=float(np.sqrt(m.sum() / np.pi)))[0]
    return AppearanceMatch(shift, angle, scale, score, distractor)


def _block(start: np.ndarray, block: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer pixel columns and rows of the ``block`` x ``block`` square around ``start`` (its rounded pixel at
    the centre; for an even block one more pixel before it than after), cut to the frame."""
    x, y = int(round(start[0])), int(round(start[1]))
    lo = block // 2
    xs = np.arange(x - lo, x - lo + block)
    ys = np.arange(y - lo, y - lo + block)
    return xs[(xs >= 0) & (xs < w)], ys[(ys >= 0) & (ys < h)]


def track_start_point(video, start, tracker: str = "flow", block: int = 5, upscale: int = 4, patch: int = 11,
                      checkpoint=None, flow=None) -> np.ndarray:
    """The track (L, 2) (x, y) of the frame-1 point ``start`` through ``video`` (L, H, W, 3): the median motion
    of the ``block`` x ``block`` pixels around it, followed by ``tracker`` (see the module docstring; ``"ncc"``
    matches a ``patch`` x ``patch`` template and ignores ``block``; ``"cotracker"`` needs ``checkpoint``).
    ``flow``: the video's (L, H, W, 2) frame-1 flow from :func:`remoco.flow.estimate_flow` when the caller has
    already estimated it (``tracker="flow"`` only; it is not estimated again). ``track[0] == start``."""
    v = video_frames(video)
    L, H, W, _ = v.shape
    if tracker not in TRACKERS:
        raise ValueError(f"tracker must be one of {tuple(TRACKERS)}, got {tracker!r}")
    if flow is not None and (tracker != "flow" or tuple(flow.shape) != (L, H, W, 2)):
        raise ValueError(f"flow must be the video's ({L}, {H}, {W}, 2) frame-1 flow, given with tracker='flow' only; "
                         f"got shape {tuple(flow.shape)} with tracker={tracker!r}")
    check_int("block", block, minimum=1)
    start = np.asarray(start, np.float64).reshape(-1)
    if start.shape != (2,) or not (-0.5 <= start[0] < W - 0.5 and -0.5 <= start[1] < H - 0.5):
        raise ValueError(f"start must be one (x, y) point inside the {W}x{H} video, got {start.tolist()}")
    if tracker == "ncc":
        return ncc_track(v, start, patch=patch)
    xs, ys = _block(start, block, W, H)
    if tracker == "lk":
        grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float64)
        tracks, _ = track_points(v, grid, upscale=upscale)
        return start + np.median(tracks - grid[None], axis=1)
    if flow is None:
        from .flow import estimate_flow

        flow, _ = estimate_flow(torch.from_numpy(v), backend=None if tracker == "flow" else "cotracker",
                                checkpoint=checkpoint)
    patch_flow = flow.double().numpy()[:, ys[:, None], xs[None, :]].reshape(L, -1, 2)
    return start + np.median(patch_flow, axis=1)


@dataclass(frozen=True, eq=False)
class MotionDistance:
    """MD-Vid of one video (:func:`motion_distance`). ``value``: mean distance (px) over frames 2..L between the
    tracked start point and the target; ``ceiling``: the same distance for a video that does not move (the
    target's mean distance from its start); ``normalised``: ``1 - value / ceiling``; ``per_frame``: the L - 1
    distances; ``track`` and ``target``: (L, 2) (x, y); ``label``: the tracker. ``float(md)`` is ``md.value``."""

    value: float
    ceiling: float
    normalised: float
    per_frame: np.ndarray
    track: np.ndarray
    target: np.ndarray
    label: str

    def __float__(self) -> float:
        return self.value


def target_positions(trajectory, num_frames: int, width: int, height: int, timing: str = "arc_length",
                     name: str = "trajectory") -> np.ndarray:
    """Where the dragged point should be in each of ``num_frames`` frames. ``timing="arc_length"`` (default): the
    drawn polyline (P, 2) (x, y) resampled by arc length (:func:`remoco.user_conditions.resample_polyline`, what
    the pipeline's conditions do, so a per-frame path of equally spaced points comes back unchanged);
    ``"frames"``: the trajectory is already one point per frame (P must equal ``num_frames``). Its start must lie
    inside the ``width`` x ``height`` frame and it must move."""
    from .user_conditions import resample_polyline

    t = trajectory.detach().cpu().numpy() if torch.is_tensor(trajectory) else trajectory
    try:
        t = np.asarray(t, np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a (P, 2) array of (x, y) points, got {type(trajectory).__name__}") from e
    if t.ndim != 2 or t.shape[1] != 2 or len(t) < 2:
        raise ValueError(f"{name} must have shape (P, 2) with P >= 2, got {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    x0, y0 = t[0]
    if not (-0.5 <= x0 < width - 0.5 and -0.5 <= y0 < height - 0.5):
        raise ValueError(f"{name} must start inside the {width}x{height} video, got start (x, y) = ({x0:g}, {y0:g})")
    if timing == "frames":
        if len(t) != num_frames:
            raise ValueError(f"{name} must have one point per frame ({num_frames}) with timing='frames', got {len(t)}")
        target = t
    elif timing == "arc_length":
        target = resample_polyline(torch.from_numpy(t), num_frames).double().numpy()
    else:
        raise ValueError(f"timing must be 'arc_length' or 'frames', got {timing!r}")
    if not np.linalg.norm(target[1:] - target[0], axis=-1).max() > 0:
        raise ValueError(f"{name} does not move (every point equals its start); its distance has no ceiling")
    return target


def motion_distance(video, trajectory, tracker: str = "flow", block: int = 5, upscale: int = 4, patch: int = 11,
                    checkpoint=None, timing: str = "arc_length", flow=None) -> MotionDistance:
    """MD-Vid (Sec. 4.1): how far the drawn ``trajectory``'s start point, tracked through ``video`` (L, H, W, 3),
    ends from the positions the trajectory asks for (:func:`target_positions`), in pixels, with the no-motion
    ceiling and the normalised score ``1 - MD / MD_frozen``.

    ``tracker`` / ``block`` / ``patch``: :func:`track_start_point` (default: DIS flow, median of a 5 x 5 block,
    the tracker that passes :func:`validate_motion_distance` on the toy benches; the paper: CoTracker).
    ``timing``: :func:`target_positions`; ``flow``: the video's frame-1 flow if already estimated
    (:func:`track_start_point`)."""
    v = video_frames(video)
    L, H, W, _ = v.shape
    target = target_positions(trajectory, L, W, H, timing)
    if tracker == "cotracker":
        from pathlib import Path

        if checkpoint is None or not Path(checkpoint).is_file():
            raise FileNotFoundError(f"checkpoint: CoTracker weights file not found ({checkpoint!r})")
    elif checkpoint is not None:
        raise ValueError(f"checkpoint is used by tracker='cotracker' only; tracker={tracker!r} needs no weights")
    track = track_start_point(v, target[0], tracker=tracker, block=block, upscale=upscale, patch=patch,
                              checkpoint=checkpoint, flow=flow)
    d = np.linalg.norm(track[1:] - target[1:], axis=-1)
    ceiling = float(np.linalg.norm(target[1:] - target[0], axis=-1).mean())
    label = TRACKERS[tracker] + ("" if tracker in ("ncc", "cotracker") else f", {block}x{block} block")
    return MotionDistance(float(d.mean()), ceiling, 1.0 - float(d.mean()) / ceiling, d, track, target, label)


def known_path_video(image, region, trajectory, num_frames: int, speed: float = 1.0, blur: float = 0.0,
                     colour: float = 0.0) -> np.ndarray:
    """A video whose answer is known: the ``region`` (H, W) bool of ``image`` (H, W, 3) uint8 cut out (the hole
    inpainted, OpenCV Telea) and pasted at ``speed`` x the displacement the ``trajectory`` asks for in each of
    ``num_frames`` frames (:func:`target_positions`; ``speed`` 1: along the path, 0.5: half way, 0: frozen,
    -1: the wrong way). MD-Vid of this video is ``|1 - speed|`` x the ceiling, for a perfect tracker.

    Appearance changes of generated objects, growing linearly to the last frame: ``blur`` the Gaussian sigma (px)
    of the moved region, ``colour`` in [0, 1] the share of its RGB rotated to GBR. Returns (L, H, W, 3) uint8."""
    import cv2

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
    H, W = img.shape[:2]
    m = np.asarray(region.detach().cpu() if torch.is_tensor(region) else region)
    if m.shape != (H, W) or m.dtype != bool or not m.any():
        raise ValueError(f"region must be a non-empty ({H}, {W}) bool mask, got {m.shape} {m.dtype}")
    check_int("num_frames", num_frames, minimum=2)
    if blur < 0 or not 0 <= colour <= 1:
        raise ValueError(f"blur must be >= 0 and colour in [0, 1], got blur={blur!r}, colour={colour!r}")
    target = target_positions(trajectory, num_frames, W, H)
    hole = cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8))
    background = cv2.inpaint(img, hole, 3, cv2.INPAINT_TELEA).astype(np.float32)
    obj, mask = img.astype(np.float32), m.astype(np.float32)
    frames = []
    for t in range(num_frames):
        a = t / (num_frames - 1)
        dx, dy = speed * (target[t] - target[0])
        M = np.float32([[1, 0, dx], [0, 1, dy]])
        o = cv2.warpAffine(obj, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        k = cv2.warpAffine(mask, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if colour:
            o = (1 - colour * a) * o + colour * a * o[..., [1, 2, 0]]
        if blur and a:
            s = blur * a
            k_blurred = cv2.GaussianBlur(k, (0, 0), s)
            o = cv2.GaussianBlur(o * k[..., None], (0, 0), s) / np.maximum(k_blurred, 1e-3)[..., None]
            k = k_blurred
        frame = background * (1 - k[..., None]) + o * k[..., None]
        frames.append(np.clip(np.round(frame), 0, 255).astype(np.uint8))
    if speed == 0 and not blur and not colour:  # exactly frozen: frame 1 repeated
        frames = [frames[0]] * num_frames
    return np.stack(frames)


#: The known-answer cases of :func:`validate_motion_distance`: name -> (speed, blur sigma as a share of the frame
#: height, colour share); the expected normalised score of each is ``1 - |1 - speed|``, i.e. speed for speed >= 0.
KNOWN_CASES = {
    "along the path": (1.0, 0.0, 0.0),
    "half speed": (0.5, 0.0, 0.0),
    "frozen first frame": (0.0, 0.0, 0.0),
    "wrong way": (-1.0, 0.0, 0.0),
    "along the path, blurring": (1.0, 1.5 / 64, 0.0),
    "along the path, changing colour": (1.0, 0.0, 0.6),
    "half speed, blurring and changing colour": (0.5, 1.5 / 64, 0.6),
}


def known_case_videos(entry: dict, num_frames: int, cases=None) -> dict:
    """:func:`known_path_video` of ``entry`` (``image``, ``region``, ``trajectory``) for every case of ``cases``
    (default :data:`KNOWN_CASES`), the blur sigma scaled with the frame height: ``{case: (L, H, W, 3) uint8}``."""
    cases = KNOWN_CASES if cases is None else cases
    H = np.asarray(entry["image"]).shape[0]
    return {case: known_path_video(entry["image"], entry["region"], entry["trajectory"], num_frames, speed, blur * H,
                                   colour) for case, (speed, blur, colour) in cases.items()}


def validate_motion_distance(entries, trackers: dict, cases=None) -> list[dict]:
    """Score every tracker configuration of ``trackers`` (``{name: motion_distance kwargs}``) on known answers.

    ``entries``: iterable of dicts with ``image`` (H, W, 3) uint8, ``region`` (H, W) bool, ``trajectory`` (P, 2),
    ``name`` and optionally ``truth`` (the real clip, whose MD is the tracker's floor). Every case of ``cases``
    (default :data:`KNOWN_CASES`) is rendered by :func:`known_path_video` with the entry's number of frames (its
    truth's, else 8); the blur sigma scales with the frame height. Returns one row per entry x case x tracker:
    ``entry, case, tracker, md, ceiling, normalised, expected`` (expected None for the ground-truth clip)."""
    cases = KNOWN_CASES if cases is None else cases
    rows = []
    for e in entries:
        truth = None if e.get("truth") is None else video_frames(e["truth"], "truth")
        L = 8 if truth is None else len(truth)
        videos = {} if truth is None else {"ground-truth clip": (truth, None)}
        for case, v in known_case_videos(e, L, cases).items():
            videos[case] = (v, 1.0 - abs(1.0 - cases[case][0]))
        for case, (v, expected) in videos.items():
            for name, kw in trackers.items():
                md = motion_distance(v, e["trajectory"], **kw)
                rows.append(dict(entry=e["name"], case=case, tracker=name, md=md.value, ceiling=md.ceiling,
                                 normalised=md.normalised, expected=expected))
    return rows


def validation_summary(rows, tolerance: float = 0.1, order_share: float = 0.9) -> list[dict]:
    """Per tracker: the mean normalised score of each case, whether the ladder floor < half speed < frozen < wrong
    way holds entry by entry (share of entries), and the verdict: **passes** when every known-path case's mean
    normalised score is within ``tolerance`` of its expected value and the ladder holds on at least
    ``order_share`` of the entries (with and without the appearance changes)."""
    out = []
    for tracker in dict.fromkeys(r["tracker"] for r in rows):
        mine = [r for r in rows if r["tracker"] == tracker]
        row: dict = {"tracker": tracker}
        worst = 0.0
        for case in dict.fromkeys(r["case"] for r in mine):
            vals = [r for r in mine if r["case"] == case]
            mean = float(np.mean([r["normalised"] for r in vals]))
            row[case] = mean
            if vals[0]["expected"] is not None:
                worst = max(worst, abs(mean - vals[0]["expected"]))
        md = {}
        for r in mine:
            md.setdefault(r["entry"], {})[r["case"]] = r["md"]
        ladders = [("along the path", "half speed", "frozen first frame", "wrong way"),
                   ("along the path, blurring", "half speed, blurring and changing colour", "frozen first frame")]
        shares = []
        for ladder in ladders:
            ok = [all(d[a] < d[b] for a, b in zip(ladder, ladder[1:]))
                  for d in md.values() if all(c in d for c in ladder)]
            shares.append(float(np.mean(ok)) if ok else float("nan"))
        row["ladder holds (share of entries)"] = shares[0]
        row["ladder holds, appearance changing"] = shares[1]
        row["largest |mean - expected|"] = worst
        row["passes"] = bool(worst <= tolerance and all(s >= order_share for s in shares))  # nan: no entries
        out.append(row)
    return out
