"""How well does a generated video follow the drawn trajectory, and does a trained controller use its
input? The held-out trajectory-following experiment and the condition ablation of chapter 5; the distance to
the drawn path is :mod:`remoco.tracking`'s MD-Vid (:func:`trajectory_distance` calls it; the paper tracks with
CoTracker, here OpenCV DIS flow, validated on known answers)."""

from __future__ import annotations

import numpy as np
import torch

from .clips import TrainClips, collate_clips
from .config import TrainConfig, preset_config
from .decide import interval_text, t_interval
from .objective import Denoiser, FrozenEncoders, edm_training_batch
from .runs import seed_int
from .tracking import appearance_match, motion_distance, video_frames

__all__ = [
    "trajectory_distance",
    "object_trajectory",
    "CHAPTER5_CLIP_SEED",
    "following_clips",
    "trajectory_following",
    "following_table",
    "AT_END_PX",
    "appearance_following",
    "appearance_following_table",
    "object_displacement",
    "APPEARANCE_MIN_SCORE",
    "APPEARANCE_MARGIN",
    "recognised_object",
    "object_appearance_motion",
    "object_appearance_displacement",
    "generated_motion",
    "motion_metric_check",
    "motion_check_rows",
    "base_motion_check",
    "motion_check_figures",
    "generated_videos_from_first_frames",
    "ABLATION_CONDITIONS",
    "condition_ablation",
    "SIGMA_EDGES",
    "ablation_by_sigma",
]


def trajectory_distance(video, trajectory, tracker: str = "flow", radius: int = 2,
                        upscale: int = 4) -> tuple[float, np.ndarray]:
    """MD-Vid as chapter 5 calls it: :func:`remoco.tracking.motion_distance` with a (2 ``radius`` + 1)^2 block
    (``tracker`` ``"flow"``, the validated default, or ``"lk"``). Returns ``(distance (px), track (L, 2))``."""
    if int(radius) != radius or radius < 0:
        raise ValueError(f"radius must be a non-negative int, got {radius!r}")
    if tracker not in ("flow", "lk"):
        raise ValueError(f"tracker must be 'flow' or 'lk', got {tracker!r}")
    md = motion_distance(video, trajectory, tracker=tracker, block=2 * int(radius) + 1, upscale=upscale)
    return md.value, md.track


def object_trajectory(clip) -> tuple[np.ndarray, torch.Tensor]:
    """A drawn trajectory and brush for a synthetic test clip: the true path of the moving object's pixel
    nearest its centroid (``p + f^i(p)``, Eq. 4) and the object's frame-1 mask. The object is the front-most
    moving layer (nothing passes in front of it); the pixel is one visible in every frame.
    Returns ``(trajectory (L, 2) (x, y), brush (H, W) bool)``."""
    owner = np.asarray(clip.meta["owner"])
    obj = clip.object_mask.numpy()
    if not obj.any():
        raise ValueError(f"clip of kind {clip.kind!r} has no moving object")
    labels = [int(v) for v in np.unique(owner[obj])]
    # the front-most moving layer (layers are composited in index order): no other object occludes it
    lab = max(labels)
    m = (owner == lab) & obj & clip.visibility.all(0).numpy()
    if not m.any():
        m = (owner == lab) & obj
    ys, xs = np.nonzero(m)
    cy, cx = ys.mean(), xs.mean()
    j = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    y, x = int(ys[j]), int(xs[j])
    path = np.array([x, y], float)[None] + clip.flow[:, y, x].double().numpy()
    return path, torch.from_numpy((owner == lab) & obj)


def _first_frames_and_videos(pipelines: dict, clips, seeds, conditions, num_inference_steps: int,
                             motion_bucket_id: int, batch_size: int, precision: str, **call_kwargs) -> dict:
    """``{name: [video per clip]}``: each pipeline's videos from the clips' first frames, batched
    (:func:`remoco.sampling.sample_videos`); a ReMoCo pipeline gets ``conditions[i]``, a plain SVD pipeline the
    image only; ``call_kwargs`` (guidance, noise augmentation...) go to every pipeline call."""
    from .pipeline import ReMoCoPipeline
    from .sampling import sample_videos

    firsts = [c.video[0].numpy() for c in clips]
    L = int(clips[0].video.shape[0])
    return {name: sample_videos(pipe, firsts, seeds, conditions if isinstance(pipe, ReMoCoPipeline) else None,
                                batch_size=batch_size, precision=precision, num_frames=L,
                                num_inference_steps=num_inference_steps, motion_bucket_id=motion_bucket_id,
                                **call_kwargs)
            for name, pipe in pipelines.items()}


def generated_videos_from_first_frames(pipelines: dict, clips, seeds, num_inference_steps: int = 15,
                                       motion_bucket_id: int = 127, batch_size: int = 8,
                                       precision: str = "auto", **call_kwargs) -> dict:
    """``{name: [video per clip]}``: each pipeline's own motion from the clips' first frames, with no motion
    condition (an all-zero trajectory and mask for a ReMoCo pipeline, the image alone for SVD); ``call_kwargs``
    (``min_guidance_scale``, ``max_guidance_scale``, ``noise_aug_strength``...) go to every pipeline call."""
    L, H, W = (int(n) for n in clips[0].video.shape[:3])
    empty = dict(region_trajectory=torch.zeros(L, H, W, 2), motion_mask=torch.zeros(L, H, W, 1, dtype=torch.bool))
    return _first_frames_and_videos(pipelines, clips, seeds, [empty] * len(clips), num_inference_steps,
                                    motion_bucket_id, batch_size, precision, **call_kwargs)


#: The first seed of chapter 5's held-out object clips (seeds ``CHAPTER5_CLIP_SEED + i``), which the controller
#: benchmarks score too.
CHAPTER5_CLIP_SEED = 20000


def following_clips(num_clips: int = 3, seed: int = 12345, kind: str = "object", num_frames: int = 8,
                    size: int = 64) -> list:
    """The held-out test clips of :func:`trajectory_following`: synthetic clips of ``kind`` with seeds ``seed + i``
    for ``i < num_clips`` (each clip's ``meta["photographs"]`` names the photographs it was cut from)."""
    from . import data

    return [data.make_clip(seed + i, num_frames, size, size, kind=kind) for i in range(num_clips)]


def trajectory_following(pipelines: dict, num_clips: int = 3, seed: int = 12345, kind: str = "object",
                         num_inference_steps: int = 15, num_frames: int = 8, size: int = 64,
                         k: int = 8, tracker: str = "flow", motion_bucket_id: int = 127,
                         trajectory_fill: str = "block", batch_size: int = 8, precision: str = "auto") -> dict:
    """Generate each of ``num_clips`` seeded test clips' first frame with every pipeline in ``pipelines``
    (``{name: pipeline}``; a :class:`~remoco.pipeline.ReMoCoPipeline` also gets the drawn trajectory and the
    object brush, a plain SVD pipeline gets the image only) and measure :func:`trajectory_distance` to the
    drawn trajectory. ``"data"`` is the real clip (the tracker's error floor). Test clips
    (:func:`following_clips`) use seeds ``seed + i`` — disjoint from the training clips' seeds — and their videos
    generator seeds ``seed + 1000 + i``; ``batch_size`` videos go through one pipeline call, the UNet at ``precision``
    (:func:`remoco.sampling.sample_videos`). Returns ``{name: [distance per clip]}`` and ``"videos"``
    ``{name: [(L, H, W, 3) uint8]}``, ``"trajectories"`` and ``"brushes"`` (each clip's object mask)."""

    clips = following_clips(num_clips, seed, kind, num_frames, size)
    trajs, conds = [], []
    for clip in clips:
        traj, brush = object_trajectory(clip)
        trajs.append(traj)
        conds.append(dict(trajectories=[torch.as_tensor(traj, dtype=torch.float32)], brush_mask=brush, k=k,
                          trajectory_fill=trajectory_fill))
    videos = {"data": [c.video.numpy() for c in clips]}
    videos.update(_first_frames_and_videos(pipelines, clips, [seed + 1000 + i for i in range(num_clips)], conds,
                                           num_inference_steps, motion_bucket_id, batch_size, precision))
    out = {name: [trajectory_distance(v, t, tracker=tracker)[0] for v, t in zip(vids, trajs)]
           for name, vids in videos.items()}
    out["videos"] = videos
    out["trajectories"] = trajs
    out["brushes"] = [c["brush_mask"] for c in conds]
    return out


#: Where :func:`appearance_following` counts an object as at the drag's end: within 4 px of it, 1/16 of the toy's
#: 64-px frame (scale it with the frame: ``size / 16``); the held-out objects move 14 px on average.
AT_END_PX = 4.0


def appearance_following(videos: dict, trajectories, brushes, at_end: float = AT_END_PX) -> dict:
    """Does the dragged object arrive, *recognisably*, at the end of the drawn path? For each system's videos
    (``videos``: ``{name: [(L, H, W, 3) uint8 per clip]}``, e.g. :func:`trajectory_following`'s, with its
    ``"trajectories"`` and ``"brushes"``) the frame-1 object is searched for in the last frame by its look
    (:func:`remoco.tracking.appearance_match`, found as in :func:`object_appearance_motion`) and its shift compared
    with the drawn displacement ``trajectory[-1] - trajectory[0]``. A flow tracker follows pixels whatever they turn
    into; this asks whether the object is still the object where the drag ends. Returns ``{name: {"found": [bool],
    "error": [px, NaN where not found], "at end": [bool: found and error <= at_end]}}``."""
    if len(trajectories) != len(brushes):
        raise ValueError(f"trajectories and brushes must match, got {len(trajectories)} and {len(brushes)}")
    if not float(at_end) > 0:
        raise ValueError(f"at_end must be a positive distance in px, got {at_end}")
    out = {}
    for name, vids in videos.items():
        if len(vids) != len(trajectories):
            raise ValueError(f"videos[{name!r}] holds {len(vids)} videos for {len(trajectories)} trajectories")
        found, error = [], []
        for video, traj, brush in zip(vids, trajectories, brushes):
            match = recognised_object(video, brush)
            drawn = np.asarray(traj, float)[-1] - np.asarray(traj, float)[0]
            found.append(match is not None)
            error.append(float("nan") if match is None else float(np.hypot(*(np.asarray(match.shift) - drawn))))
        out[name] = {"found": found, "error": error,
                     "at end": [bool(f and e <= at_end) for f, e in zip(found, error)]}
    return out


def appearance_following_table(following: dict, reference: str, labels: dict | None = None) -> list[dict]:
    """Rows of :func:`appearance_following`'s result (``labels`` renames, selects and orders): the share of
    clips whose object is found in the last frame, the share where it is found at the drag's end, the mean
    distance of the found object to the drag's end (px; None where none is found) and, paired clip by clip with
    ``reference``, the difference in the share at the drag's end (percentage points, 95 % t interval, as text;
    ``"reference"`` on the reference's row, ``"+0 (no clip differs)"`` where no clip differs)."""
    if reference not in following:
        raise ValueError(f"reference={reference!r} is not among the systems {sorted(following)}")
    ref = np.asarray(following[reference]["at end"], float)
    rows = []
    for name in (list(labels) if labels is not None else list(following)):
        r = following[name]
        at_end = np.asarray(r["at end"], float)
        errors = np.asarray(r["error"], float)
        d = 100 * (at_end - ref)
        gap = "reference" if name == reference else "+0 (no clip differs)"
        if d.any() and d.size < 2:
            gap = f"{d.mean():+.0f} (one clip: no interval)"
        elif d.any():
            gap = interval_text(t_interval(d))
        rows.append({"system": labels[name] if labels else name, "object found (%)": 100 * float(np.mean(r["found"])),
                     "found at the drag's end (%)": 100 * float(at_end.mean()),
                     "distance to the drag's end, found (px)": float(np.nanmean(errors)) if np.isfinite(errors).any()
                     else None, f"at the end vs {reference} (points)": gap})
    return rows


def following_table(distances: dict, reference: str, labels: dict | None = None) -> list[dict]:
    """Rows of a distance-to-the-drawn-path table from per-clip distances ``{name: [px per clip]}`` (the
    output of :func:`trajectory_following`, other keys ignored): mean, its standard error, the ratio of the
    means to ``reference`` and the share of clips on which the system is closer than ``reference``.
    ``labels`` renames (and selects and orders) the systems."""
    names = list(labels) if labels is not None else [n for n in distances
                                                      if n not in ("videos", "trajectories", "brushes")]
    if reference not in distances:
        raise ValueError(f"reference={reference!r} is not among the systems {sorted(distances)}")
    ref = np.asarray(distances[reference], dtype=float)
    rows = []
    for name in names:
        v = np.asarray(distances[name], dtype=float)
        if v.shape != ref.shape:
            raise ValueError(f"distances[{name!r}] has {v.size} clips, the reference {ref.size}")
        se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
        rows.append({"system": labels[name] if labels else name, "mean distance (px)": float(v.mean()),
                     "standard error": se, f"ratio to {reference}": float(v.mean() / ref.mean()),
                     f"closer than {reference} (%)": float(100 * np.mean(v < ref))})
    return rows


def object_displacement(video, region) -> float:
    """How far the pixels of ``region`` (frame-1 (H, W) bool) have moved by the last frame of ``video``
    (L, H, W, 3): the mean of ``||f^L(p)||_2`` over the region, ``f`` from :func:`remoco.flow.estimate_flow`
    (OpenCV; the paper measures average flow magnitude with its own flow model)."""
    from .flow import estimate_flow

    v = video_frames(video, min_frames=1)
    region = torch.as_tensor(region)
    if region.dtype != torch.bool or tuple(region.shape) != v.shape[1:3]:
        raise ValueError(f"region must be a bool (H, W) = {v.shape[1:3]} mask, got {region.dtype} "
                         f"{tuple(region.shape)}")
    if not bool(region.any()):
        raise ValueError("region must hold at least one pixel")
    flow, _ = estimate_flow(torch.from_numpy(v))
    return float(flow[-1].norm(dim=-1)[region].mean())


#: When :func:`object_appearance_motion` counts the object as found (:meth:`remoco.tracking.AppearanceMatch.found`):
#: its match scores at least this and beats frame 1's best distractor by more than :data:`APPEARANCE_MARGIN`.
#: Chosen on 48 calibration clips (seeds 60000-60047, disjoint from every evaluation set) and the two still,
#: recoloured videos of :func:`motion_metric_check` made from each: at (0.7, 0.05), 79 % of the real objects are
#: found, 1 of those 38 matches lands more than 3 px from the object's true mean motion, and none of the 96 still
#: recoloured objects is found; at (0.6, 0.05) 88 % / 2 off / 4 found; at (0.7, 0) 81 % / 2 / 1; at (0.8, 0.05) 69 %
#: / none off / none found.
APPEARANCE_MIN_SCORE = 0.7
APPEARANCE_MARGIN = 0.05


def recognised_object(video, region, min_score: float = APPEARANCE_MIN_SCORE,
                      margin: float = APPEARANCE_MARGIN):
    """The frame-1 object of ``region`` found again in the last frame of ``video`` by its look
    (:func:`remoco.tracking.appearance_match`): the match where it scores at least ``min_score`` and beats every
    distractor in frame 1's background by more than ``margin``, else None (no longer recognisable)."""
    if not -1.0 <= float(min_score) <= 1.0:
        raise ValueError(f"min_score must be an NCC score in [-1, 1], got {min_score}")
    if not 0.0 <= float(margin) < 2.0:
        raise ValueError(f"margin must be an NCC difference in [0, 2), got {margin}")
    match = appearance_match(video, region, distractor_from=min_score)
    return match if match.found(min_score, margin) else None


def object_appearance_motion(video, region, min_score: float = APPEARANCE_MIN_SCORE,
                             margin: float = APPEARANCE_MARGIN) -> tuple[float, bool]:
    """How far the object of ``region`` (frame-1 (H, W) bool mask) has moved by the last frame of ``video``, as
    far as its *appearance* says, and whether it was found: the shift of its best rotated and scaled frame-1
    template in the last frame (:func:`remoco.tracking.appearance_match`) when that match scores at least
    ``min_score`` and beats every distractor in frame 1's background by more than ``margin``; ``(0.0, False)``
    otherwise (the object is no longer recognisable, so no motion of it is credited)."""
    match = recognised_object(video, region, min_score, margin)
    return (0.0, False) if match is None else (match.distance, True)


def object_appearance_displacement(video, region, min_score: float = APPEARANCE_MIN_SCORE) -> float:
    """The px of :func:`object_appearance_motion`: the companion of :func:`object_displacement`, which credits a
    still object that changes colour with motion (:func:`motion_metric_check`)."""
    return object_appearance_motion(video, region, min_score)[0]


def _measure_into(out: dict, name: str, values: list) -> None:
    """``out[name]`` = the px of ``values`` (a metric's results, one per clip); where the metric returns ``(px,
    found)`` the flags go to ``out["found"][name]``."""
    if values and isinstance(values[0], tuple):
        px, found = zip(*values)
        out[name] = [float(v) for v in px]
        out.setdefault("found", {})[name] = [bool(f) for f in found]
    else:
        out[name] = [float(v) for v in values]


def generated_motion(pipelines: dict, num_clips: int = 12, seed: int = 12345, num_inference_steps: int = 15,
                     num_frames: int = 8, size: int = 64, motion_bucket_id: int = 127, batch_size: int = 8,
                     precision: str = "auto", metric=object_displacement, **call_kwargs) -> dict:
    """Does the model render motion? For ``num_clips`` held-out object clips (seeds ``seed + i``), the
    moving object's displacement by the last frame (:func:`object_displacement`) in the real clip
    (``"data"``) and in each pipeline's video generated from the same first frame without any motion
    condition (SVD sampling, ``motion_bucket_id`` as given; generator seeds ``seed + 1000 + i``, batched as in
    :func:`trajectory_following`). The paper's Sec. 4.2 compares average flow magnitudes the same way (4.95 for
    MOFA-Video vs 8.95 for ReMoCo). Returns ``{name: [px per clip]}`` and ``"ratio"`` ``{name: mean(generated) /
    mean(data)}``. ``metric(video, region) -> px``: :func:`object_displacement` (flow) or
    :func:`object_appearance_displacement` (appearance). ``call_kwargs`` (guidance, noise augmentation) go to
    every pipeline call: the sampling levers of ``benchmarks/motion_sampling.py``. A metric that returns ``(px,
    found)`` (:func:`object_appearance_motion`) also fills ``"found"``: ``{name: [bool per clip]}``."""

    from . import data

    clips = [data.make_clip(seed + i, num_frames, size, size, kind="object") for i in range(num_clips)]
    brushes = [object_trajectory(c)[1] for c in clips]
    videos = generated_videos_from_first_frames(pipelines, clips, [seed + 1000 + i for i in range(num_clips)],
                                                num_inference_steps, motion_bucket_id, batch_size, precision,
                                                **call_kwargs)
    out: dict = {}
    _measure_into(out, "data", [metric(c.video, b) for c, b in zip(clips, brushes)])
    for name, vids in videos.items():
        _measure_into(out, name, [metric(v, b) for v, b in zip(vids, brushes)])
    real = float(np.mean(out["data"]))
    out["ratio"] = {name: float(np.mean(out[name])) / real for name in pipelines}
    return out


def motion_metric_check(num_clips: int = 24, seed: int = 12345, num_frames: int = 8, size: int = 64,
                        noise_seed: int = 0, metric=object_displacement) -> dict:
    """Known answers for a base-motion ``metric(video, region) -> px`` (:func:`object_displacement`, flow, by
    default; or :func:`object_appearance_displacement`), on the held-out object clips of
    :func:`generated_motion`: the real clip (``"real clip"``, the data's motion), its first frame frozen
    (``"frozen frame"``: no motion, the floor) and two videos whose object does *not* move but changes colour:
    the frozen frame with the object's pixels replaced by uniform colour noise in every later frame
    (``"object flickers"``) and by smooth colour blobs whose contrast grows frame by frame (``"object
    recolours"``, what a toy base renders when it dissolves a moving object). A metric of motion gives the last
    two the frozen frame's 0; what it gives them instead is motion it would credit a still, recoloured object
    with. Returns ``{name: [px per clip]}``; with a metric that returns ``(px, found)``
    (:func:`object_appearance_motion`) also ``"found"``: ``{name: [bool per clip]}``."""
    import cv2

    from . import data

    rng = np.random.default_rng(noise_seed)
    videos: dict = {"real clip": [], "frozen frame": [], "object flickers": [], "object recolours": []}
    for i in range(num_clips):
        clip = data.make_clip(seed + i, num_frames, size, size, kind="object")
        video = clip.video.numpy()
        brush = object_trajectory(clip)[1]
        m = brush.numpy()
        frozen = np.repeat(video[:1], num_frames, axis=0)
        flicker, blobs = frozen.copy(), frozen.copy()
        for t in range(1, num_frames):
            flicker[t][m] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)[m]
            smooth = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3)).astype(np.float32), (0, 0), 3)
            smooth = (smooth - smooth.mean()) * 6 * t / (num_frames - 1) + 128
            blobs[t][m] = np.clip(smooth, 0, 255).astype(np.uint8)[m]
        for name, v in (("real clip", video), ("frozen frame", frozen), ("object flickers", flicker),
                        ("object recolours", blobs)):
            videos[name].append(metric(v, brush))
    out: dict = {}
    for name, values in videos.items():
        _measure_into(out, name, values)
    return out


def base_motion_check(pipelines: dict, num_clips: int = 12, seed: int = 30000, num_inference_steps: int = 15,
                      flow: dict | None = None) -> dict[str, dict]:
    """Both base-motion metrics on known answers with each pipeline's own motion beside them: ``{"flow":
    ..., "appearance": ...}``, each :func:`motion_metric_check` on the same ``num_clips`` clips from ``seed``
    plus ``"NAME (its own motion)"`` for each pipeline (:func:`generated_motion`, the same clips and initial
    noises); the appearance check (:func:`object_appearance_motion`) carries ``"found"``. ``flow``: a
    :func:`generated_motion` result already computed with these clips, seed and steps (reused, not sampled
    again). The input of :func:`motion_check_rows`."""
    if flow is not None:
        missing = sorted(set(pipelines) - set(flow))
        if missing:
            raise ValueError(f"flow must hold every pipeline's px, missing {missing}")
        if len(flow[next(iter(pipelines))]) != num_clips:
            raise ValueError(f"flow must be measured on num_clips={num_clips} clips, got "
                             f"{len(flow[next(iter(pipelines))])}")
    checks = {}
    for label, metric in (("flow", object_displacement), ("appearance", object_appearance_motion)):
        check = motion_metric_check(num_clips, seed, metric=metric)
        gen = flow if label == "flow" and flow is not None else generated_motion(
            pipelines, num_clips, seed, num_inference_steps, metric=metric)
        for name in pipelines:
            check[f"{name} (its own motion)"] = gen[name]
            if "found" in gen:
                check["found"][f"{name} (its own motion)"] = gen["found"][name]
        checks[label] = check
    return checks


def motion_check_rows(checks: dict[str, dict]) -> list[dict]:
    """The known answers of several base-motion metrics side by side: ``checks`` is ``{metric label: {video name:
    [px per clip]}}`` (:func:`motion_metric_check`'s output per metric, optionally with more videos measured on the
    same clips, e.g. a base's own); one row per video name with, for each metric, its mean px and its share of the
    ``"real clip"`` row's mean (%), and for a metric whose check carries ``"found"`` (:func:`base_motion_check`'s
    appearance check) the share of clips whose object it found (%)."""
    if not checks:
        raise ValueError("checks must hold at least one metric")
    names = [n for n in next(iter(checks.values())) if n != "found"]
    rows = []
    for name in names:
        row = {"video": name}
        for label, check in checks.items():
            if "real clip" not in check or name not in check:
                raise ValueError(f"checks[{label!r}] must hold 'real clip' and {name!r}, got {sorted(check)}")
            px = float(np.mean(check[name]))
            row[f"{label} (px)"] = px
            row[f"{label} (% of the real clip)"] = 100 * px / float(np.mean(check["real clip"]))
            if "found" in check:
                if name not in check["found"]:
                    raise ValueError(f"checks[{label!r}]['found'] must hold {name!r}, got {sorted(check['found'])}")
                row[f"{label}: object found (%)"] = 100 * float(np.mean(check["found"][name]))
        rows.append(row)
    return rows


def motion_check_figures(rows: list[dict], num_clips: int) -> dict[str, str]:
    """The figures chapter 5 quotes from :func:`motion_check_rows` of :func:`base_motion_check` (``rows``),
    formatted for the page: each still-but-recoloured video's and the base's share of the real motion by flow
    (``check_flicker``, ``check_recolour``, ``check_base``) and by appearance (``..._look``), the frozen frame's
    flow px (``check_frozen``), how many real objects the appearance metric finds (``check_found``, of
    ``num_clips``), its thresholds (``look_min_score``, ``look_margin``) and ``check_clips``."""
    by_name = {r["video"]: r for r in rows}
    base = next((n for n in by_name if n.endswith("(its own motion)")), None)
    if base is None or not {"real clip", "frozen frame", "object flickers", "object recolours"} <= set(by_name):
        raise ValueError(f"rows must be motion_check_rows of base_motion_check, got videos {sorted(by_name)}")
    out = {}
    for key, name in (("flicker", "object flickers"), ("recolour", "object recolours"), ("base", base)):
        out[f"check_{key}"] = f"{by_name[name]['flow (% of the real clip)']:.0f}"
        out[f"check_{key}_look"] = f"{by_name[name]['appearance (% of the real clip)']:.0f}"
    out["check_frozen"] = f"{by_name['frozen frame']['flow (px)']:.2f}"
    out["check_found"] = f"{round(num_clips * by_name['real clip']['appearance: object found (%)'] / 100)}"
    out |= {"look_min_score": f"{APPEARANCE_MIN_SCORE:g}", "look_margin": f"{APPEARANCE_MARGIN:g}",
            "check_clips": f"{num_clips:g}"}
    return out


ABLATION_CONDITIONS = ("full condition", "motion mask only", "trajectory only", "no condition")


@torch.no_grad()
def condition_ablation(pipe, config: TrainConfig | None = None, num_clips: int = 16, draws: int = 4,
                       seed: int = 0, data_seed: int = 777, kind: str = "object", dense: bool = False) -> dict:
    """Does a trained controller use its input? The held-out denoising loss (Eq. 3) of ``pipe`` (a
    :class:`~remoco.pipeline.ReMoCoPipeline` with a controller) with the motion condition of Sec. 3.2 as
    trained (``"full condition"``), with its trajectory channels ``T_s`` zeroed (``"motion mask only"``), with
    its mask channel ``M_mot`` zeroed (``"trajectory only"``) and all zero (``"no condition"``, what condition
    dropout trains). Every setting sees the same clips, noise levels, noises and sampled regions, so the
    differences come from the condition alone.

    Clips: ``num_clips`` synthetic clips of ``kind`` from ``data_seed`` (the training clips use ``data_seed=0``,
    so the default 777 gives unseen clips), ``draws`` EDM draws each, all seeded by ``seed``. The conditions
    are drawn as in training (``config``'s k, r_min, r_max) or, with ``dense=True``, with every region kept
    (``r_m = 0``: the whole flow field), which shows what the controller can read when the trajectory is
    there. Returns ``{setting: mean loss}`` plus ``"per_sample"`` ``{setting: (num_clips * draws,) array}``
    and ``"sigma"`` (the noise level of each sample; see :func:`ablation_by_sigma`)."""
    if getattr(pipe, "controller", None) is None:
        raise ValueError("pipe must be a ReMoCoPipeline with a controller (got one without `controller`)")
    if num_clips < 1 or draws < 1:
        raise ValueError(f"num_clips and draws must be >= 1, got num_clips={num_clips}, draws={draws}")
    from . import edm

    cfg = config or preset_config("toy-cpu", "controller")
    cfg = cfg.replace(data_seed=data_seed, num_clips=num_clips, clip_kinds={kind: 1.0}, cond_dropout=0.0)
    if dense:
        cfg = cfg.replace(r_min=0.0, r_max=0.0)
    frozen = FrozenEncoders(pipe.vae, pipe.image_encoder, pipe.feature_extractor, pipe.unet.device, cache=True)
    sf = float(pipe.vae.config.scaling_factor)
    model = Denoiser(pipe.unet, pipe.controller).eval()
    ds = TrainClips(cfg, with_flow=True)
    per = {name: [] for name in ABLATION_CONDITIONS}
    sigmas = []
    for i in range(num_clips):
        batch = collate_clips([ds[i]])
        for d in range(draws):
            gen = torch.Generator().manual_seed(seed_int(seed, i, d))
            b = edm_training_batch(cfg, "controller", frozen, batch, gen, sf)
            c = b["condition"]
            sigmas.append(float(b["sigma"][0]))
            traj_off, mask_off = c.clone(), c.clone()
            traj_off[:, :, :2] = 0
            mask_off[:, :, 2:] = 0
            for name, cond in zip(ABLATION_CONDITIONS, (c, traj_off, mask_off, torch.zeros_like(c))):
                z0_hat = model(b["z"], b["sigma"], b["image_latents"], b["image_embeddings"],
                               b["added_time_ids"], cond)
                per[name].append(float(edm.denoising_loss(z0_hat, b["z0"], b["sigma"])))
    out = {name: float(np.mean(v)) for name, v in per.items()}
    out["per_sample"] = {name: np.asarray(v) for name, v in per.items()}
    out["sigma"] = np.asarray(sigmas)
    return out


#: Noise-level buckets of :func:`ablation_by_sigma`: where the condition can help (high sigma decides the
#: motion; at sigma < 0.7 the noised latents already hold it).
SIGMA_EDGES = (0.0, 0.7, 2.0, 6.0, float("inf"))


def ablation_by_sigma(ablation: dict, edges=SIGMA_EDGES) -> list[dict]:
    """Rows of a :func:`condition_ablation` result by noise-level bucket: for each ``[lo, hi)`` the number of
    samples, each setting's mean loss, and its change against ``"no condition"`` (%) with the fraction of
    samples where it is lower."""
    sig = np.asarray(ablation["sigma"])
    per = ablation["per_sample"]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be increasing, got {edges}")
    rows = []
    for lo, hi in zip(edges, edges[1:]):
        m = (sig >= lo) & (sig < hi)
        row = {"sigma": f"[{lo:g}, {hi:g})", "samples": int(m.sum())}
        ref = per["no condition"][m]
        for name in ABLATION_CONDITIONS:
            v = per[name][m]
            row[name] = float(v.mean()) if m.any() else float("nan")
            if name != "no condition":
                row[f"{name} vs none (%)"] = float(100 * (v.mean() / ref.mean() - 1)) if m.any() else float("nan")
                row[f"{name} lower (%)"] = float(100 * np.mean(v < ref)) if m.any() else float("nan")
        rows.append(row)
    return rows
