"""Optical flow maps and visibility masks from the first frame (Eq. 4).

The paper labels every training clip with DOT (Eq. 4)::

    f^i, M^i = DOT(x_0^1, x_0^i),   i = 1, ..., L

where ``f^i`` (H x W x 2) moves each pixel of frame 1 to its position in frame ``i`` and ``M^i``
(H x W, binary) says whether that frame-1 pixel is visible in frame ``i``.

:func:`estimate_flow` returns the same pair for a whole clip. Its default backend needs no
downloaded weights: OpenCV's DIS optical flow, **chained** through consecutive frames (each step
samples the next consecutive flow at the current tracked position, bilinearly) and then **refined
directly** from frame 1 to frame ``i`` with the chained flow as initialisation (the "dis-hybrid"
method, chosen by measuring end-point error on moving objects of :mod:`remoco.data` clips; see the
chapter "2. Flow and visibility"). Visibility comes from a forward-backward consistency check
(the backward flow frame i -> frame 1 is built the same way) plus an in-frame check.
Backends ``"dot"`` and ``"cotracker"`` wrap the paper's models when the user has them installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

__all__ = [
    "BACKENDS",
    "OPENCV_METHODS",
    "DEFAULT_METHOD",
    "estimate_flow",
    "opencv_flow",
    "forward_backward_visibility",
    "chain_flows",
    "warp_by_flow",
    "end_point_error",
    "score_estimator",
    "flow_to_color",
]

BACKENDS = ("opencv", "dot", "cotracker")
#: Variants of the embedded OpenCV estimator (compared in the chapter; the default is DEFAULT_METHOD).
OPENCV_METHODS = ("dis-hybrid", "dis-chain", "dis-direct", "farneback-chain", "farneback-direct")
DEFAULT_METHOD = "dis-hybrid"


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _check_video(video) -> np.ndarray:
    if not isinstance(video, torch.Tensor):
        raise ValueError(f"video must be a torch.Tensor of shape (L, H, W, 3) uint8, got {type(video).__name__}")
    if video.dtype != torch.uint8:
        raise ValueError(f"video must have dtype torch.uint8, got {video.dtype}")
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must have shape (L, H, W, 3), got {tuple(video.shape)}")
    if video.shape[0] < 2:
        raise ValueError(f"video must have at least 2 frames (L >= 2), got L={video.shape[0]}")
    if video.shape[1] < 8 or video.shape[2] < 8:
        raise ValueError(f"video frames must be at least 8x8 pixels, got {tuple(video.shape[1:3])}")
    return video.detach().cpu().numpy()


# --------------------------------------------------------------------------------------------
# flow utilities
# --------------------------------------------------------------------------------------------


def _grid(h: int, w: int):
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs, ys


def _sample(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear sample of an (H, W, C) float32 field at positions (x, y) (border replicated)."""
    return cv2.remap(field, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def chain_flows(flow_a: np.ndarray, flow_b: np.ndarray) -> np.ndarray:
    """Compose flows: ``a`` (frame s -> t) then ``b`` (frame t -> u) gives frame s -> u,
    ``c(p) = a(p) + b(p + a(p))`` with ``b`` sampled bilinearly (numpy (H, W, 2) float32)."""
    h, w = flow_a.shape[:2]
    xs, ys = _grid(h, w)
    return flow_a + _sample(flow_b, xs + flow_a[..., 0], ys + flow_a[..., 1])


def warp_by_flow(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp ``image`` (frame i) to frame 1 with the flow from frame 1:
    ``out(p) = image(p + f(p))``. Where ``f`` is exact and the pixel visible, ``out`` equals frame 1."""
    h, w = flow.shape[:2]
    xs, ys = _grid(h, w)
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def forward_backward_visibility(fwd: np.ndarray, bwd: np.ndarray, alpha: float = 0.01, beta: float = 0.5) -> np.ndarray:
    """Visibility ``M^i`` (Eq. 4) by forward-backward consistency.

    A frame-1 pixel ``p`` is visible in frame ``i`` iff ``q = p + f(p)`` lies inside the image and the
    backward flow brings it back: ``|f(p) + b(q)|^2 <= alpha (|f(p)|^2 + |b(q)|^2) + beta``
    (``fwd``: frame 1 -> i, ``bwd``: frame i -> 1, both (H, W, 2)).
    """
    h, w = fwd.shape[:2]
    xs, ys = _grid(h, w)
    qx, qy = xs + fwd[..., 0], ys + fwd[..., 1]
    bq = _sample(bwd, qx, qy)
    err = ((fwd + bq) ** 2).sum(-1)
    bound = alpha * ((fwd**2).sum(-1) + (bq**2).sum(-1)) + beta
    inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
    return inside & (err <= bound)


def end_point_error(flow_est, flow_gt, mask=None) -> float:
    """Mean end-point error ``|f_est - f_gt|_2`` in pixels over ``mask`` (tensors or arrays)."""
    a = torch.as_tensor(flow_est, dtype=torch.float32)
    b = torch.as_tensor(flow_gt, dtype=torch.float32)
    if a.shape != b.shape or a.shape[-1] != 2:
        raise ValueError(f"flow_est and flow_gt must have the same (..., 2) shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    e = (a - b).norm(dim=-1)
    if mask is not None:
        m = torch.as_tensor(mask, dtype=torch.bool)
        if m.shape != e.shape:
            raise ValueError(f"mask must have shape {tuple(e.shape)}, got {tuple(m.shape)}")
        if not m.any():
            return float("nan")
        return float(e[m].mean())
    return float(e.mean())


def score_estimator(clips, method: str = DEFAULT_METHOD, quality: str = "balanced", backend: str | None = None,
                    progress: bool = False) -> dict:
    """How well :func:`estimate_flow` recovers the exact flow and visibility of ``clips`` (clips of
    :mod:`remoco.data`, which carry ``video``, ``flow``, ``visibility`` and ``object_mask``), frames 2..L:

    * ``epe_all`` / ``epe_objects``: mean end-point error (px) over visible pixels, over the whole frame and over
      the moving objects only (mean over clips; a clip without visible object pixels is left out of the latter);
    * ``occluded_precision`` / ``occluded_recall``: of the pixels the estimate calls occluded, the share that is,
      and of the occluded pixels, the share it finds (mean over clips);
    * ``false_alarm_off``: of the visible pixels it calls occluded, the share whose flow is more than 1 px off;
    * ``seconds`` / ``cpu_seconds``: wall-clock and process CPU time of the estimates, and ``frames``."""
    import time

    if not clips:
        raise ValueError("clips must hold at least one clip")
    e_all, e_obj, prec, rec, off = [], [], [], [], []
    wall = cpu = 0.0
    frames = 0
    it = clips
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(clips, desc=f"{method}:{quality}", leave=False)
    for c in it:
        t0, c0 = time.perf_counter(), time.process_time()
        f_est, v_est = estimate_flow(c.video, backend=backend, method=method, quality=quality)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        frames += int(c.video.shape[0])
        gv = c.visibility[1:]
        e_all.append(end_point_error(f_est[1:], c.flow[1:], gv))
        om = gv & c.object_mask[None]
        if om.any():
            e_obj.append(end_point_error(f_est[1:], c.flow[1:], om))
        occ, pocc = ~gv, ~v_est[1:]
        tp = (occ & pocc).sum().item()
        prec.append(tp / max(pocc.sum().item(), 1))
        rec.append(tp / max(occ.sum().item(), 1))
        off.append(((f_est[1:] - c.flow[1:]).norm(dim=-1) > 1.0)[pocc & gv])
    return {"epe_all": float(np.mean(e_all)), "epe_objects": float(np.mean(e_obj)) if e_obj else float("nan"),
            "occluded_precision": float(np.mean(prec)), "occluded_recall": float(np.mean(rec)),
            "false_alarm_off": float(torch.cat(off).float().mean()) if sum(len(o) for o in off) else float("nan"),
            "seconds": wall, "cpu_seconds": cpu, "frames": frames}


# --------------------------------------------------------------------------------------------
# OpenCV estimator
# --------------------------------------------------------------------------------------------


#: DIS settings per quality level, each (preset, finest scale), for: the consecutive steps, the
#: direct forward refinement (frame 1 -> i, the flow returned) and the direct backward refinement
#: (frame i -> 1, used only by the visibility check). Finest scale 0 = full resolution.
QUALITY = {
    "fast": (("ultrafast", 2), ("fast", 1), ("fast", 2)),
    "balanced": (("ultrafast", 2), ("medium", 1), ("medium", 1)),
    "accurate": (("medium", 1), ("medium", 0), ("medium", 0)),
}
_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class _Pairwise:
    """Two-frame flow with an optional initial flow (DIS or Farneback)."""

    def __init__(self, algo: str, preset: str = "medium", finest_scale: int = 1):
        self.algo = algo
        if algo == "dis":
            self.dis = cv2.DISOpticalFlow_create(_PRESETS[preset])
            self.dis.setFinestScale(finest_scale)

    def __call__(self, a: np.ndarray, b: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
        if self.algo == "dis":
            flow = None if init is None else np.array(init, dtype=np.float32, order="C")
            return self.dis.calc(a, b, flow)
        flags = 0
        flow = None
        if init is not None:
            flow = np.array(init, dtype=np.float32, order="C")
            flags = cv2.OPTFLOW_USE_INITIAL_FLOW
        return cv2.calcOpticalFlowFarneback(a, b, flow, 0.5, 4, 15, 3, 5, 1.2, flags)


def opencv_flow(video: torch.Tensor, method: str = DEFAULT_METHOD, quality: str = "balanced", fb_alpha: float = 0.01,
                fb_beta: float = 0.5, min_side: int = 160):
    """OpenCV substitute for DOT in Eq. 4 (the default backend of :func:`estimate_flow`).

    ``method``:

    * ``"dis-direct"`` / ``"farneback-direct"``: flow from frame 1 straight to frame ``i``
      (fails when things travel far: the coarse-to-fine search has a limited range);
    * ``"dis-chain"`` / ``"farneback-chain"``: consecutive flows composed along the track,
      ``f^{i+1}(p) = f^i(p) + g_{i->i+1}(p + f^i(p))`` (robust to large motion, but drifts);
    * ``"dis-hybrid"`` (default): the chained flow initialises a direct frame-1 -> frame-i DIS
      refinement, removing most of the drift.

    The backward flows (frame i -> frame 1) are computed the same way and give the visibility mask
    by :func:`forward_backward_visibility`. ``quality`` (``"fast"``, ``"balanced"``, ``"accurate"``)
    picks the DIS presets of :data:`QUALITY` (consecutive steps / forward / backward refinement);
    ``fb_alpha``, ``fb_beta`` are the consistency thresholds; frames whose short side is below
    ``min_side`` are upsampled (integer factor) before estimation so DIS has enough pyramid levels.
    Returns ``(flow (L,H,W,2) float32, visibility (L,H,W) bool)``.
    """
    if method not in OPENCV_METHODS:
        raise ValueError(f"method must be one of {OPENCV_METHODS}, got {method!r}")
    frames = _check_video(video)
    L, H, W = frames.shape[:3]
    if quality not in QUALITY:
        raise ValueError(f"quality must be one of {tuple(QUALITY)}, got {quality!r}")
    if not isinstance(min_side, int) or min_side < 1:
        raise ValueError(f"min_side must be a positive int, got {min_side!r}")
    if not (fb_alpha >= 0 and fb_beta >= 0):
        raise ValueError(f"fb_alpha and fb_beta must be >= 0, got {fb_alpha!r}, {fb_beta!r}")
    algo, mode = method.split("-")
    step_cfg, fwd_cfg, bwd_cfg = QUALITY[quality]
    step = _Pairwise(algo, *step_cfg)
    pair = _Pairwise(algo, *fwd_cfg)
    pair_b = _Pairwise(algo, *bwd_cfg)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    # DIS needs a few pyramid levels: small frames (toy scale) are upsampled before estimation
    up = max(1, int(np.ceil(min_side / min(H, W))))
    if up > 1:
        gray = [cv2.resize(g, (W * up, H * up), interpolation=cv2.INTER_CUBIC) for g in gray]
        H, W = H * up, W * up
    flow = np.zeros((L, H, W, 2), np.float32)
    vis = np.ones((L, H, W), bool)
    fwd = np.zeros((H, W, 2), np.float32)  # frame 1 -> frame i (chained)
    bwd = np.zeros((H, W, 2), np.float32)  # frame i -> frame 1 (chained)
    for i in range(1, L):
        if mode == "direct":
            f_i = pair(gray[0], gray[i])
            b_i = pair_b(gray[i], gray[0])
        else:
            step_f = step(gray[i - 1], gray[i])  # frame i-1 -> i
            step_b = step(gray[i], gray[i - 1])  # frame i -> i-1
            fwd = chain_flows(fwd, step_f)  # 1 -> i-1 -> i
            bwd = chain_flows(step_b, bwd)  # i -> i-1 -> 1
            f_i, b_i = fwd, bwd
            if mode == "hybrid":
                f_i = pair(gray[0], gray[i], fwd)
                b_i = pair_b(gray[i], gray[0], bwd)
                # keep tracking from the refined estimate (drift does not accumulate)
                fwd, bwd = f_i, b_i
        flow[i] = f_i
        vis[i] = forward_backward_visibility(f_i, b_i, fb_alpha, fb_beta * up * up)  # beta is in px^2
    if up > 1:  # back to the input grid: average each up x up block (centred on the original pixel)
        h, w = H // up, W // up
        flow = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in flow]) / up
        vis = np.stack([cv2.resize(v.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) for v in vis]) > 0.5
    return torch.from_numpy(flow.astype(np.float32)), torch.from_numpy(vis)


# --------------------------------------------------------------------------------------------
# paper models (optional)
# --------------------------------------------------------------------------------------------


def _dot_flow(video: torch.Tensor, checkpoint=None, device=None, **kw):
    """DOT (Le Moing et al., 2024) adapter: ``pred["tracks"]`` from frame 1 to every frame.

    Needs the ``dot`` package from https://github.com/16lemoing/dot (installed, e.g. ``pip install -e .``
    in a clone, with its ``configs/`` folder) and a checkpoint folder holding its three weight files
    ``cvo_raft_patch_8.pth``, ``movi_f_raft_patch_4_alpha.pth``, ``movi_f_cotracker_patch_4_wind_8.pth``
    (``checkpoint=`` path, or env ``REMOCO_DOT_CHECKPOINTS``).
    """
    try:
        from dot.models import DenseOpticalTracker  # type: ignore
    except ImportError as e:  # pragma: no cover - depends on the user's environment
        raise ImportError(
            "backend='dot' needs the DOT package (https://github.com/16lemoing/dot): clone it, "
            "`pip install -e .` inside the clone, and download its checkpoints; "
            "or use backend=None for the embedded OpenCV estimator."
        ) from e
    ckpt = Path(checkpoint or os.environ.get("REMOCO_DOT_CHECKPOINTS", "checkpoints"))
    names = ("cvo_raft_patch_8.pth", "movi_f_raft_patch_4_alpha.pth", "movi_f_cotracker_patch_4_wind_8.pth")
    missing = [n for n in names if not (ckpt / n).is_file()]
    if missing:
        raise FileNotFoundError(f"checkpoint: DOT weights {missing} not found in folder {str(ckpt)!r} "
                                "(see the DOT README for downloads)")
    import dot  # type: ignore

    cfg = Path(kw.pop("config_dir", Path(dot.__file__).resolve().parent.parent / "configs"))
    frames = _check_video(video)
    L, H, W = frames.shape[:3]
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = DenseOpticalTracker(
        height=H, width=W,
        tracker_config=str(cfg / "cotracker_patch_4_wind_8.json"), tracker_path=str(ckpt / names[2]),
        estimator_config=str(cfg / "raft_patch_8.json"), estimator_path=str(ckpt / names[0]),
        refiner_config=str(cfg / "raft_patch_4_alpha.json"), refiner_path=str(ckpt / names[1]),
    ).to(device).eval()
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255.0)[None].to(device)
    opts = dict(num_tracks=2048, sim_tracks=2048, alpha_thresh=0.8, sample_mode="all", interpolation_version="torch",
                flow_mode="direct")
    opts.update(kw)
    with torch.no_grad():
        tracks = model({"video": x}, mode="tracks_from_first_to_every_other_frame", **opts)["tracks"][0].float().cpu()
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    flow = torch.stack([tracks[..., 0] - xs, tracks[..., 1] - ys], dim=-1)
    flow[0] = 0
    vis = tracks[..., 2] > 0.5
    vis[0] = True
    return flow.contiguous(), vis


def _cotracker_flow(video: torch.Tensor, checkpoint=None, device=None, stride: int = 4, **kw):
    """CoTracker (Karaev et al., 2024) adapter: tracks every ``stride``-th frame-1 pixel, then
    upsamples displacements bilinearly (and visibility, thresholded at 0.5) to every pixel.

    Needs the ``cotracker`` package (https://github.com/facebookresearch/co-tracker, ``pip install -e .``
    in a clone) and an offline checkpoint file (``checkpoint=`` path or env ``REMOCO_COTRACKER_CHECKPOINT``,
    e.g. ``scaled_offline.pth``). Note: CoTracker loads its ``.pth`` with ``torch.load``; use only
    the official weights.
    """
    try:
        from cotracker.predictor import CoTrackerPredictor  # type: ignore
    except ImportError as e:  # pragma: no cover
        raise ImportError(
            "backend='cotracker' needs the CoTracker package (https://github.com/facebookresearch/co-tracker): "
            "clone it and `pip install -e .`, then download a checkpoint; or use backend=None."
        ) from e
    path = checkpoint or os.environ.get("REMOCO_COTRACKER_CHECKPOINT")
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint: CoTracker weights file not found ({path!r}); "
                                "pass checkpoint='.../scaled_offline.pth'")
    frames = _check_video(video)
    L, H, W = frames.shape[:3]
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = CoTrackerPredictor(checkpoint=str(path)).to(device).eval()
    gy, gx = torch.meshgrid(torch.arange(0, H, stride, dtype=torch.float32),
                            torch.arange(0, W, stride, dtype=torch.float32), indexing="ij")
    queries = torch.stack([torch.zeros_like(gx), gx, gy], dim=-1).reshape(1, -1, 3).to(device)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()[None].to(device)
    with torch.no_grad():
        tracks, visib = model(x, queries=queries, **kw)
    gh, gw = gx.shape
    disp = (tracks[0].cpu() - queries[0, :, 1:].cpu()[None]).reshape(L, gh, gw, 2).permute(0, 3, 1, 2)
    v = visib[0].float().cpu().reshape(L, 1, gh, gw)
    # positions of the grid points are stride*j: align_corners over the grid's own extent
    size = ((gh - 1) * stride + 1, (gw - 1) * stride + 1)
    disp = torch.nn.functional.interpolate(disp, size=size, mode="bilinear", align_corners=True)
    v = torch.nn.functional.interpolate(v, size=size, mode="bilinear", align_corners=True)
    pad = (0, W - size[1], 0, H - size[0])
    disp = torch.nn.functional.pad(disp, pad, mode="replicate")
    v = torch.nn.functional.pad(v, pad, mode="replicate")
    flow = disp.permute(0, 2, 3, 1).contiguous()
    flow[0] = 0
    vis = v[:, 0] > 0.5
    vis[0] = True
    return flow, vis


def estimate_flow(video: torch.Tensor, backend: str | None = None, checkpoint=None, **options):
    """Flow maps ``f^i`` and visibility masks ``M^i`` from the first frame (Eq. 4).

    Parameters
    ----------
    video : (L, H, W, 3) uint8 tensor, L >= 2.
    backend : ``None`` / ``"opencv"`` (embedded, no weights; OpenCV substitute for DOT),
        ``"dot"`` or ``"cotracker"`` (need the packages and their weights).
    checkpoint : weights path for ``"dot"`` (folder) / ``"cotracker"`` (file).
    options : passed to the backend (e.g. ``method="dis-chain"`` for OpenCV, see :func:`opencv_flow`).

    Returns
    -------
    flow : (L, H, W, 2) float32, pixels, x then y; ``flow[0] == 0``.
    visibility : (L, H, W) bool; ``visibility[0]`` is all True.
    """
    backend = "opencv" if backend is None else backend
    if backend not in BACKENDS:
        raise ValueError(f"backend must be None or one of {BACKENDS}, got {backend!r}")
    _check_video(video)
    if backend == "opencv":
        if checkpoint is not None:
            raise ValueError("checkpoint is not used by the OpenCV backend (it needs no weights); leave it None")
        return opencv_flow(video, **options)
    if backend == "dot":
        return _dot_flow(video, checkpoint, **options)
    return _cotracker_flow(video, checkpoint, **options)


# --------------------------------------------------------------------------------------------
# visualisation
# --------------------------------------------------------------------------------------------


def flow_to_color(flow, max_magnitude: float | None = None) -> torch.Tensor:
    """Colour-wheel rendering of a flow field: hue = direction, saturation = magnitude (white = 0).

    ``flow``: (..., H, W, 2) tensor/array. ``max_magnitude``: magnitude drawn fully saturated
    (default: the largest magnitude in ``flow``). Returns (..., H, W, 3) uint8 tensor.
    """
    f = torch.as_tensor(flow, dtype=torch.float32)
    if f.ndim < 3 or f.shape[-1] != 2:
        raise ValueError(f"flow must have shape (..., H, W, 2), got {tuple(f.shape)}")
    mag = f.norm(dim=-1)
    m = float(mag.max()) if max_magnitude is None else float(max_magnitude)
    if not m > 0:
        m = 1.0
    hue = (torch.atan2(-f[..., 1], -f[..., 0]) / np.pi + 1) * 3  # direction -> [0, 6]
    sat = torch.clamp(mag / m, 0, 1)[..., None]
    out = 1 - sat * (1 - _wheel(hue))  # white at rest, saturated colour at max_magnitude
    return (out * 255).round().clamp(0, 255).to(torch.uint8)


def _wheel(hue: torch.Tensor) -> torch.Tensor:
    """Fully saturated RGB in [0, 1] for hue in [0, 6)."""
    k = torch.stack([(5 + hue) % 6, (3 + hue) % 6, (1 + hue) % 6], dim=-1)
    return 1 - torch.clamp(torch.minimum(k, 4 - k), 0, 1)
