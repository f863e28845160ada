"""The paper's evaluation metrics (Sec. 4.1 "Benchmarks"; Sec. 4.2), each computed with a
real model or algorithm and labelled with what was actually used.

The paper's models are not shipped here (no CoTracker, DIFT, CLIP, Inception or I3D weights), so every metric
has a classical or toy substitute, and every number comes back as a :class:`Score` whose ``label`` names the
substitute next to the paper's model, e.g. ``"MD-Vid (LK tracker; paper: CoTracker)"``:

==================================  ==========================================  ============================
metric                              here (default)                              paper
==================================  ==========================================  ============================
:func:`md_vid`                      DIS flow tracker (:mod:`remoco.tracking`)   CoTracker
:func:`md_img`                      NCC patch matching over the whole frame     DIFT features
:func:`frame_consistency`           toy VAE encoder (:func:`vae_embedder`)      CLIP (:func:`clip_embedder`)
:func:`fid`                         toy VAE encoder, frame features             Inception
:func:`fvd`                         toy VAE encoder, clip features              I3D
:func:`kid` / :func:`kvd`           the same features, kernel distance          not reported (beside FID/FVD)
:func:`average_flow_magnitude`      OpenCV DIS (:mod:`remoco.flow`)             not named (Sec. 4.2)
==================================  ==========================================  ============================

CoTracker (``md_vid(tracker="cotracker")``), CLIP (:func:`clip_embedder`) and Inception
(:func:`inception_embedder`) are used when the user supplies their weights.

Videos are ``(L, H, W, 3)`` uint8, or float in [0, 1]; trajectories ``(L, 2)`` (x, y) pixel positions at the
evaluation resolution, one per frame, ``trajectory[0]`` the start point in frame 1. Bad input raises ValueError
naming the argument; nothing is clipped. The weights this module loads itself (CLIP, Inception) are read from
local safetensors files only, never pickle; CoTracker goes through :mod:`remoco.flow`'s adapter, whose package
reads its own ``.pth`` checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from .checks import check_int
from .tracking import TRACKERS, motion_distance, ncc_track, video_frames

__all__ = [
    "PAPER_MODELS",
    "METRIC_LABELS",
    "metric_label",
    "Score",
    "md_vid",
    "md_img",
    "Embedder",
    "vae_embedder",
    "clip_embedder",
    "inception_embedder",
    "frame_consistency",
    "frechet_distance",
    "gaussian_statistics",
    "frechet_from_features",
    "frame_features",
    "video_features",
    "fid",
    "fvd",
    "kernel_distance_from_features",
    "kid",
    "kvd",
    "DISTRIBUTION_METRICS",
    "distribution_scores",
    "average_flow_magnitude",
]

#: The model each metric uses in the paper (Sec. 4.1). Sec. 4.2 reports an average flow magnitude (4.95 for
#: MOFA-Video, 8.95 for ReMoCo) without naming the flow model (its training flow, Eq. 4, comes from DOT).
PAPER_MODELS = {
    "MD-Vid": "CoTracker",
    "MD-Img": "DIFT",
    "Frame Consis.": "CLIP",
    "FID": "Inception",
    "FVD": "I3D",
    "Avg. flow magnitude": "not named in Sec. 4.2",
}


#: Metrics the paper does not report, shown beside the one they back up: the kernel distances (Bińkowski et al.
#: 2018) are unbiased at any sample count, where FID / FVD need more samples than feature dimensions.
COMPANION_METRICS = {"KID": "FID", "KVD": "FVD"}


def metric_label(name: str, backend: str) -> str:
    """The header of a table column or plot axis: the metric, what computed it here and the paper's model,
    e.g. ``metric_label("MD-Vid", "LK tracker") == "MD-Vid (LK tracker; paper: CoTracker)"``; a metric of
    :data:`COMPANION_METRICS` says it is not in the paper and which metric it stands beside."""
    if name not in PAPER_MODELS and name not in COMPANION_METRICS:
        raise ValueError(f"name must be one of {tuple(PAPER_MODELS) + tuple(COMPANION_METRICS)}, got {name!r}")
    if not isinstance(backend, str) or not backend.strip():
        raise ValueError(f"backend must be a non-empty string naming what computed the metric, got {backend!r}")
    if name in COMPANION_METRICS:
        return f"{name} ({backend}; not in the paper: beside its {COMPANION_METRICS[name]})"
    return f"{name} ({backend}; paper: {PAPER_MODELS[name]})"


_FVD_FEATURES = "clip features: frame mean + temporal differences"

#: The labels of the defaults of this module (what a table shows when nothing else is asked for).
METRIC_LABELS = {
    "MD-Vid": metric_label("MD-Vid", TRACKERS["flow"]),
    "MD-Img": metric_label("MD-Img", "NCC matcher"),
    "Frame Consis.": metric_label("Frame Consis.", "toy VAE encoder"),
    "FID": metric_label("FID", "toy VAE encoder features"),
    "FVD": metric_label("FVD", f"toy VAE encoder {_FVD_FEATURES}"),
    "KID": metric_label("KID", "toy VAE encoder features"),
    "KVD": metric_label("KVD", f"toy VAE encoder {_FVD_FEATURES}"),
    "Avg. flow magnitude": metric_label("Avg. flow magnitude", "OpenCV DIS"),
}


@dataclass(frozen=True, eq=False)
class Score:
    """A metric value with its label (:func:`metric_label`). ``per_frame``: the per-frame (or per frame pair)
    values the mean was taken over, where there are any; ``positions``: (L, 2) tracked / matched positions of
    the start point (MD metrics). ``float(score)`` is ``score.value``."""

    value: float
    label: str
    per_frame: np.ndarray | None = None
    positions: np.ndarray | None = None

    def __float__(self) -> float:
        return self.value


# --------------------------------------------------------------------------------------------- input checks
def _frames(video, name: str = "video", min_frames: int = 2) -> np.ndarray:
    return video_frames(video, name, min_frames)


def _trajectory(trajectory, shape, name: str = "trajectory") -> np.ndarray:
    """(L, 2) float64 (x, y), one point per frame, every point inside the (H, W) frame."""
    L, H, W = shape[:3]
    t = trajectory.detach().cpu().numpy() if torch.is_tensor(trajectory) else trajectory
    try:
        t = np.asarray(t, np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be an (L, 2) array of (x, y) points, got {type(trajectory).__name__}") from e
    if t.shape != (L, 2):
        raise ValueError(f"{name} must have shape (L, 2) = ({L}, 2), one (x, y) point per frame, got {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    inside = (t[:, 0] >= -0.5) & (t[:, 0] < W - 0.5) & (t[:, 1] >= -0.5) & (t[:, 1] < H - 0.5)
    if not inside.all():
        i = int(np.argmin(inside))
        raise ValueError(f"{name} must lie inside the {W}x{H} frame (x in [-0.5, {W - 0.5}), y in [-0.5, {H - 0.5}))"
                         f"; point {i} is ({t[i, 0]:g}, {t[i, 1]:g})")
    return t


def _weights_file(path, name: str, what: str) -> Path:
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(f"{name}: {what} weights file not found ({None if path is None else str(path)!r})")
    return Path(path)


# --------------------------------------------------------------------------------------------- MD-Vid, MD-Img
def md_vid(video, trajectory, tracker: str = "flow", checkpoint=None, radius: int = 2, upscale: int = 4) -> Score:
    """MD-Vid (Sec. 4.1, ReMoCo-Bench): the mean Euclidean distance (px) over frames 2..L between the drawn
    ``trajectory`` (one (x, y) point per frame) and its start point tracked through the generated ``video`` --
    :func:`remoco.tracking.motion_distance`, the project's one MD-Vid, with a (2 ``radius`` + 1)^2 block.

    The paper tracks with CoTracker (``tracker="cotracker"`` with the user's weights file ``checkpoint``). Here
    the default is ``"flow"`` (OpenCV DIS), the tracker that passes :func:`remoco.tracking.validate_motion_distance`
    on the toy benches; ``"lk"`` (pyramidal Lucas-Kanade) does not pass it and ``"ncc"`` (appearance) is kept as a
    cross-check. Returns a :class:`Score` with the per-frame distances and the track."""
    v = _frames(video)
    traj = _trajectory(trajectory, v.shape)
    if int(radius) != radius or radius < 0:
        raise ValueError(f"radius must be a non-negative int, got {radius!r}")
    md = motion_distance(v, traj, tracker=tracker, block=2 * int(radius) + 1, upscale=upscale, checkpoint=checkpoint,
                         timing="frames")
    return Score(md.value, metric_label("MD-Vid", TRACKERS[tracker]), per_frame=md.per_frame, positions=md.track)


def md_img(video, trajectory, matcher: str = "ncc", patch: int = 11) -> Score:
    """MD-Img (Sec. 4.1; the protocol of DragDiffusion, Shi et al. 2024b, applied to every frame): for each frame
    t = 2..L, the correspondence of the start point ``trajectory[0]`` (frame 1) is searched over the whole of
    frame t, and its distance to ``trajectory[t]`` is averaged.

    The paper matches DIFT diffusion features. Here (``matcher="ncc"``, the only one): the ``patch`` x
    ``patch`` RGB neighbourhood of the start point, matched by normalized cross-correlation at every pixel
    of frame t (reflected borders, parabolic sub-pixel peak). A uniform start patch is an error (no
    correspondence is defined). Returns a :class:`Score` with the per-frame distances and the matches."""
    v = _frames(video)
    traj = _trajectory(trajectory, v.shape)
    if matcher != "ncc":
        raise ValueError(f"matcher must be 'ncc' (DIFT weights are not available here), got {matcher!r}")
    check_int("patch", patch, minimum=3)
    if patch % 2 == 0 or patch > min(v.shape[1:3]):
        raise ValueError(f"patch must be an odd int no larger than the frame ({v.shape[2]}x{v.shape[1]}), "
                         f"got {patch}")
    matches = ncc_track(v, traj[0], patch)
    d = np.linalg.norm(matches[1:] - traj[1:], axis=-1)
    return Score(float(d.mean()), metric_label("MD-Img", f"NCC matcher, {patch}x{patch} patch"),
                 per_frame=d, positions=matches)


# --------------------------------------------------------------------------------------------- embedders
class Embedder:
    """A frame embedder: ``embedder(frames)`` with frames (N, H, W, 3) uint8 or float in [0, 1] returns
    (N, D) float64 features; ``label`` names the model (it goes into every metric label).

    ``encode`` maps a torch batch (B, 3, H, W) float in [0, 1] to (B, D); it runs under ``torch.no_grad``
    on batches of ``batch_size`` frames. Any callable with a ``label`` attribute can stand in."""

    def __init__(self, encode, label: str, batch_size: int = 16):
        if not callable(encode):
            raise ValueError(f"encode must be callable, got {type(encode).__name__}")
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"label must be a non-empty string naming the model, got {label!r}")
        check_int("batch_size", batch_size)
        self.encode, self.label, self.batch_size = encode, label, batch_size

    def __repr__(self) -> str:
        return f"Embedder({self.label!r})"

    @torch.no_grad()
    def __call__(self, frames) -> np.ndarray:
        x = torch.from_numpy(_frames(frames, "frames", min_frames=1)).permute(0, 3, 1, 2).float().div(255.0)
        out = []
        for i in range(0, len(x), self.batch_size):
            b = x[i:i + self.batch_size]
            out.append(self.encode(b).detach().float().cpu().reshape(len(b), -1))
        return torch.cat(out).double().numpy()


def _embed(embedder, frames: np.ndarray) -> np.ndarray:
    """``embedder(frames)`` checked: (N, D) finite features, one row per frame."""
    label = getattr(embedder, "label", None)
    if not callable(embedder) or not isinstance(label, str) or not label.strip():
        raise ValueError(f"embedder must be callable with a non-empty .label naming its model (see Embedder), "
                         f"got {type(embedder).__name__}")
    e = np.asarray(embedder(frames), np.float64)
    if e.ndim != 2 or e.shape[0] != len(frames) or e.shape[1] < 1:
        raise ValueError(f"embedder must return (N, D) = ({len(frames)}, D) features, got {e.shape}")
    if not np.isfinite(e).all():
        raise ValueError(f"embedder {label!r} returned NaN or inf features")
    return e


def vae_embedder(vae, grid: int = 4, name: str = "toy VAE", batch_size: int = 16) -> Embedder:
    """Frame features from a (KL) VAE's encoder, e.g. the project's toy
    :class:`~diffusers.AutoencoderKLTemporalDecoder` (:func:`remoco.models.build_toy_components`): the
    posterior mean of each frame (input scaled to [-1, 1]), average-pooled to ``grid`` x ``grid`` cells and
    flattened (latent channels x grid^2 features). The substitute for CLIP (frame consistency) and
    Inception (FID); label ``f"{name} encoder"``."""
    if not callable(getattr(vae, "encode", None)):
        raise ValueError(f"vae must have an encode method (a diffusers VAE), got {type(vae).__name__}")
    check_int("grid", grid)

    def encode(x):
        p = next(vae.parameters())
        lat = vae.encode(x.to(p.device, p.dtype) * 2.0 - 1.0).latent_dist.mean.float()
        if min(lat.shape[-2:]) < grid:
            raise ValueError(f"grid={grid} is larger than the latent ({tuple(lat.shape[-2:])}) of the frames")
        return torch.nn.functional.adaptive_avg_pool2d(lat, grid).flatten(1)

    return Embedder(encode, f"{name} encoder", batch_size)


#: OpenAI CLIP's normalisation (used when the model folder has no preprocessor_config.json).
_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def clip_embedder(path, batch_size: int = 16) -> Embedder:
    """The paper's frame-consistency features (Sec. 4.1; Qi et al. 2023): the image embedding of a local CLIP
    vision model folder ``path`` (``save_pretrained`` layout: ``config.json``, ``model.safetensors`` and
    optionally ``preprocessor_config.json``), loaded with transformers' :class:`CLIPVisionModelWithProjection`
    (``local_files_only``, safetensors only). Frames are resized to the model's input size and normalised
    as for SVD's reference image (:func:`remoco.models.encode_reference_image`). A missing folder or
    weights file raises FileNotFoundError naming ``path``."""
    from .models import encode_reference_image, quiet_transformers

    p = Path(path)
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"path: no CLIP vision model folder at {str(p)!r} (expected config.json and "
                                "model.safetensors, as written by save_pretrained)")
    with quiet_transformers():
        from transformers import CLIPVisionModelWithProjection

        try:
            model = CLIPVisionModelWithProjection.from_pretrained(p, local_files_only=True, use_safetensors=True)
        except OSError as e:
            raise FileNotFoundError(f"path: cannot load a CLIP vision model from {str(p)!r}: {e}") from e
    model.eval()
    pre = p / "preprocessor_config.json"
    cfg = json.loads(pre.read_text()) if pre.is_file() else {}
    proc = SimpleNamespace(image_mean=cfg.get("image_mean", _CLIP_MEAN), image_std=cfg.get("image_std", _CLIP_STD))
    holder = SimpleNamespace(image_encoder=model, feature_extractor=proc)
    return Embedder(lambda x: encode_reference_image(holder, x)[:, 0], f"CLIP vision ({p.name})", batch_size)


def inception_embedder(path, batch_size: int = 16) -> Embedder:
    """The paper's FID features (Heusel et al. 2017): the 2048-d pooled features of torchvision's
    ``inception_v3`` built with ``weights=None`` and loaded (strictly) from the user's safetensors file
    ``path`` (e.g. torchvision's IMAGENET1K_V1 state dict saved with :func:`safetensors.torch.save_file`;
    no pickle is ever read). Frames are resized to 299 x 299 and scaled to [-1, 1] (the input those
    weights expect with ``transform_input=False``). Missing file: FileNotFoundError naming ``path``;
    missing torchvision: ImportError."""
    p = _weights_file(path, "path", "Inception-v3 (torchvision state dict as .safetensors)")
    if p.suffix != ".safetensors":
        raise ValueError(f"path must be a .safetensors file (pickled weights are never loaded), got {p.name!r}")
    try:
        from torchvision.models import inception_v3
    except ImportError as e:  # pragma: no cover - torchvision is not a dependency of remoco
        raise ImportError("inception_embedder needs torchvision (pip install torchvision)") from e
    from safetensors.torch import load_file

    state = load_file(str(p))
    net = inception_v3(weights=None, aux_logits=any(k.startswith("AuxLogits.") for k in state),
                       transform_input=False, init_weights=False)
    net.load_state_dict(state)
    net.fc = torch.nn.Identity()
    net.eval()

    def encode(x):
        x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)
        return net(x * 2.0 - 1.0)

    return Embedder(encode, f"Inception-v3 ({p.name})", batch_size)


# --------------------------------------------------------------------------------------------- frame consistency
def frame_consistency(video, embedder) -> Score:
    """Frame Consistency (Sec. 4.1; Qi et al. 2023): the mean cosine similarity of the embeddings of
    consecutive frames, ``1/(L-1) sum_t cos(e_t, e_{t+1})``. The paper embeds with CLIP
    (:func:`clip_embedder`); ``embedder`` is any :class:`Embedder`, e.g. :func:`vae_embedder` of the toy VAE.
    Returns a :class:`Score` with the L - 1 similarities."""
    v = _frames(video)
    e = _embed(embedder, v)
    n = np.linalg.norm(e, axis=1)
    if (n == 0).any():
        raise ValueError(f"embedder {embedder.label!r} gave a zero embedding for frame {int(np.argmin(n))}; "
                         "its cosine similarity is undefined")
    cos = (e[:-1] * e[1:]).sum(1) / (n[:-1] * n[1:])
    return Score(float(cos.mean()), metric_label("Frame Consis.", embedder.label), per_frame=cos)


# --------------------------------------------------------------------------------------------- FID / FVD
def _matrix(a, name: str, shape: tuple) -> np.ndarray:
    a = np.asarray(a.detach().cpu().numpy() if torch.is_tensor(a) else a)
    if np.iscomplexobj(a):  # e.g. the output of a matrix square root elsewhere: a negligible imaginary part only
        if np.abs(a.imag).max(initial=0.0) > 1e-8 * max(1.0, np.abs(a.real).max(initial=0.0)):
            raise ValueError(f"{name} has a non-negligible imaginary part (max {np.abs(a.imag).max():g})")
        a = a.real
    try:
        a = a.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}") from e
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _covariance(s, name: str, d: int) -> np.ndarray:
    """A real symmetric positive semi-definite (d, d) matrix (within rounding), symmetrised."""
    s = _matrix(s, name, (d, d))
    scale = max(1.0, float(np.abs(s).max(initial=0.0)))
    if np.abs(s - s.T).max(initial=0.0) > 1e-6 * scale:
        raise ValueError(f"{name} must be symmetric (a covariance matrix)")
    s = (s + s.T) / 2
    low = float(np.linalg.eigvalsh(s).min(initial=0.0))
    if low < -1e-6 * scale:
        raise ValueError(f"{name} must be positive semi-definite, its smallest eigenvalue is {low:g}")
    return s


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, u = np.linalg.eigh(s)
    return (u * np.sqrt(np.clip(w, 0.0, None))) @ u.T  # rounding-level negative eigenvalues count as 0


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, the
    FID / FVD of Sec. 4.1): ``||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``.

    The trace of the matrix square root is computed as ``sum sqrt(eig(S1^(1/2) sigma2 S1^(1/2)))`` with
    symmetric eigendecompositions only (S1^(1/2) the PSD square root of sigma1), so singular covariances need
    no added epsilon and no complex parts arise. Covariances must be symmetric PSD within rounding."""
    m1 = _matrix(mu1, "mu1", np.shape(mu1)).reshape(-1)
    if m1.size < 1:
        raise ValueError("mu1 must hold at least one dimension")
    d = m1.size
    m2 = _matrix(mu2, "mu2", (d,))
    s1, s2 = _covariance(sigma1, "sigma1", d), _covariance(sigma2, "sigma2", d)
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum())
    dist = float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    return max(dist, 0.0)  # a distance: only rounding can make it negative


def gaussian_statistics(features, name: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) (unbiased, N - 1) of ``features`` (N, D), N >= 2."""
    f = _feature_matrix(features, name)
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_from_features(real, generated) -> float:
    """:func:`frechet_distance` of the Gaussians fitted to two feature sets (N1, D) and (N2, D)."""
    mu1, s1 = gaussian_statistics(real, "real")
    mu2, s2 = gaussian_statistics(generated, "generated")
    if mu1.shape != mu2.shape:
        raise ValueError(f"real and generated features must have the same dimension, got {mu1.size} and {mu2.size}")
    return frechet_distance(mu1, s1, mu2, s2)


def _clips(videos, name: str) -> list[np.ndarray]:
    """A set of clips: a sequence of (L, H, W, 3) clips or one (N, L, H, W, 3) array."""
    if torch.is_tensor(videos) or isinstance(videos, np.ndarray):
        if videos.ndim != 5:
            raise ValueError(f"{name} must be a list of (L, H, W, 3) clips or one (N, L, H, W, 3) array, "
                             f"got shape {tuple(videos.shape)}")
    elif not isinstance(videos, (list, tuple)):
        raise ValueError(f"{name} must be a list of (L, H, W, 3) clips, got {type(videos).__name__}")
    if len(videos) == 0:
        raise ValueError(f"{name} holds no clips")
    return [_frames(v, f"{name}[{i}]") for i, v in enumerate(videos)]


def _clip_embeddings(videos, embedder) -> list[np.ndarray]:
    """``embedder`` of every frame, one (L, D) array per clip of ``videos``: what both feature kinds are built from."""
    return [_embed(embedder, v) for v in _clips(videos, "videos")]


def _clip_statistics(e: np.ndarray) -> np.ndarray:
    return np.concatenate([e.mean(0), np.abs(np.diff(e, axis=0)).mean(0), e[-1] - e[0]])


#: How each feature kind is built from the clips' frame embeddings, and what its label says it is.
_FEATURE_KINDS = {"frames": (np.concatenate, "{} features"),
                  "clips": (lambda embs: np.stack([_clip_statistics(e) for e in embs]), "{} " + _FVD_FEATURES)}


def _features(kind: str, embeddings: list[np.ndarray]) -> np.ndarray:
    return _FEATURE_KINDS[kind][0](embeddings)


def _backend(kind: str, embedder) -> str:
    return _FEATURE_KINDS[kind][1].format(embedder.label)


def frame_features(videos, embedder) -> np.ndarray:
    """The FID features: ``embedder`` of every frame of every clip in ``videos``, (total frames, D)."""
    return _features("frames", _clip_embeddings(videos, embedder))


def video_features(videos, embedder) -> np.ndarray:
    """The FVD substitute's clip-level features (N, 3 D): for each clip's frame features e_1..e_L, the frame
    mean ``mean_t e_t`` (appearance), the mean temporal change ``mean_t |e_{t+1} - e_t|`` (how much moves)
    and the net change ``e_L - e_1`` (where it went). The paper's I3D features see motion too; these are
    invariant to the clip length but not to the frame order."""
    return _features("clips", _clip_embeddings(videos, embedder))


def fid(real_videos, generated_videos, embedder) -> Score:
    """FID (Sec. 4.1, WebVid-10M; Heusel et al. 2017): the Fréchet distance between the Gaussians of the
    per-frame features of the real and the generated clips (all frames pooled). The paper uses Inception
    (:func:`inception_embedder`); here any :class:`Embedder`, by default the toy VAE's
    (:func:`vae_embedder`). With fewer frames than feature dimensions the covariances are singular, which
    :func:`frechet_distance` handles, but the value is then a small-sample estimate."""
    value = frechet_from_features(frame_features(real_videos, embedder), frame_features(generated_videos, embedder))
    return Score(value, metric_label("FID", _backend("frames", embedder)))


def fvd(real_videos, generated_videos, embedder) -> Score:
    """FVD (Sec. 4.1, WebVid-10M; Unterthiner et al. 2019): the Fréchet distance between the Gaussians of
    clip-level features of the real and the generated clips. The paper uses I3D; here the clip features
    are built from ``embedder``'s frame features by :func:`video_features` (frame mean + temporal
    differences). Needs at least 2 clips a set (3 D feature dimensions: few clips give singular
    covariances and a small-sample estimate)."""
    value = frechet_from_features(video_features(real_videos, embedder), video_features(generated_videos, embedder))
    return Score(value, metric_label("FVD", _backend("clips", embedder)))


def kernel_distance_from_features(real, generated, degree: int = 3) -> float:
    """The kernel distance behind KID / KVD (Bińkowski et al. 2018, "Demystifying MMD GANs", Eq. 4 there): the
    unbiased estimate of the squared maximum mean discrepancy between feature sets X (m, D) and Y (n, D) with
    the polynomial kernel ``k(x, y) = (x . y / D + 1) ** degree``::

        1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j) - 2/(mn) sum_{i, j} k(x_i, y_j)

    Unlike the Fréchet distance it fits no covariance, so it has no rank condition and no small-sample bias:
    its expectation is 0 for two samples of one distribution, which is also why one estimate can come out
    slightly negative. Needs at least 2 samples a set."""
    check_int("degree", degree)
    x = _feature_matrix(real, "real")
    y = _feature_matrix(generated, "generated")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real and generated features must have the same dimension, got {x.shape[1]} and "
                         f"{y.shape[1]}")
    d, m, n = x.shape[1], len(x), len(y)
    kxx, kyy, kxy = ((a @ b.T / d + 1.0) ** degree for a, b in ((x, x), (y, y), (x, y)))
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def _feature_matrix(features, name: str) -> np.ndarray:
    f = np.asarray(features.detach().cpu().numpy() if torch.is_tensor(features) else features)
    if f.ndim != 2 or f.shape[0] < 2 or f.shape[1] < 1:
        raise ValueError(f"{name} must be (N, D) with N >= 2 samples, got shape {f.shape}")
    return _matrix(f, name, f.shape)


def kid(real_videos, generated_videos, embedder) -> Score:
    """KID (not in the paper; beside its FID): :func:`kernel_distance_from_features` of the per-frame features
    :func:`fid` uses. Unbiased whatever the number of frames against the feature dimension."""
    value = kernel_distance_from_features(frame_features(real_videos, embedder),
                                          frame_features(generated_videos, embedder))
    return Score(value, metric_label("KID", _backend("frames", embedder)))


def kvd(real_videos, generated_videos, embedder) -> Score:
    """KVD (not in the paper; beside its FVD): :func:`kernel_distance_from_features` of the clip features
    :func:`fvd` uses (:func:`video_features`), meaningful with fewer clips than feature dimensions."""
    value = kernel_distance_from_features(video_features(real_videos, embedder),
                                          video_features(generated_videos, embedder))
    return Score(value, metric_label("KVD", _backend("clips", embedder)))


#: The metrics of a set of generated clips against a set of real ones, and the features each compares:
#: per-frame (FID, KID; :func:`frame_features`) or per-clip (FVD, KVD; :func:`video_features`).
DISTRIBUTION_METRICS = {"FID": "frames", "FVD": "clips", "KID": "frames", "KVD": "clips"}


def distribution_scores(real_videos, generated_videos, embedder) -> tuple[dict, dict]:
    """:func:`fid`, :func:`fvd`, :func:`kid` and :func:`kvd` from one embedding of each set (the values equal
    those functions'). Returns ``({metric: Score}, {"frames": [N, D], "clips": [N, D]})``: the second says how
    many generated samples of how many feature dimensions each kind fitted (a Fréchet distance with N <= D
    fits a singular covariance, a small-sample estimate; the kernel distances have no such condition)."""
    embeddings = (_clip_embeddings(real_videos, embedder), _clip_embeddings(generated_videos, embedder))
    feats = {kind: tuple(_features(kind, e) for e in embeddings) for kind in _FEATURE_KINDS}
    scores = {}
    for m, kind in DISTRIBUTION_METRICS.items():
        fn = frechet_from_features if m in ("FID", "FVD") else kernel_distance_from_features
        scores[m] = Score(fn(*feats[kind]), metric_label(m, _backend(kind, embedder)))
    return scores, {kind: list(f[1].shape) for kind, f in feats.items()}


# --------------------------------------------------------------------------------------------- motion
_FLOW_BACKENDS = {None: "OpenCV DIS", "opencv": "OpenCV DIS", "dot": "DOT", "cotracker": "CoTracker"}


def average_flow_magnitude(video, backend: str | None = None, checkpoint=None) -> Score:
    """The average flow magnitude of a generated clip (Sec. 4.2: 4.95 for MOFA-Video against 8.95 for ReMoCo):
    ``1/(L-1) sum_{i=2..L} mean_p ||f^i(p)||_2`` over all pixels p, with ``f^i`` the flow from frame 1 to
    frame i (Eq. 4) from :func:`remoco.flow.estimate_flow`. The paper does not name its flow model for this
    number; here ``backend`` None (OpenCV DIS, no weights), or ``"dot"`` / ``"cotracker"`` with the user's
    ``checkpoint`` (a folder for DOT, a file for CoTracker). Returns a :class:`Score` with the per-frame means
    (frames 2..L)."""
    from .flow import estimate_flow

    v = _frames(video)
    if backend not in _FLOW_BACKENDS:
        raise ValueError(f"backend must be one of {tuple(_FLOW_BACKENDS)}, got {backend!r}")
    if backend in ("dot", "cotracker") and (checkpoint is None or not Path(checkpoint).exists()):
        raise FileNotFoundError(f"checkpoint: {_FLOW_BACKENDS[backend]} weights not found "
                                f"({None if checkpoint is None else str(checkpoint)!r})")
    flow, _ = estimate_flow(torch.from_numpy(v), backend=backend, checkpoint=checkpoint)
    per = flow[1:].double().norm(dim=-1).mean(dim=(1, 2)).numpy()
    return Score(float(per.mean()), metric_label("Avg. flow magnitude", _FLOW_BACKENDS[backend]), per_frame=per)
