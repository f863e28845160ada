"""Does the toy video model keep what it is given? Reconstruction through the VAE, the generated first frame
against the conditioning image, and the colour of the dragged object over the clip.

SVD's VAE reconstructs a frame closely and SVD's first generated frame closely matches its conditioning
image; a toy trained from scratch has to earn both. These are the measurements chapter 1 and the shipping
recipe use to check it:

* :func:`vae_fidelity` — PSNR and SSIM of clips encoded and decoded by a VAE (``z = mean``), per set of
  held-out clips (:func:`held_out_clips`: unseen synthetic object clips, both benches' scenes, every packaged
  photograph as a still clip);
* :func:`first_frame_fidelity` — PSNR of a generated video's first frame against its conditioning image, and
  the mean colour of the brushed object in the last generated frame against the first
  (:func:`object_colour_shift`); the real clips give that colour distance's floor;
* :func:`vae_study_figures` — the figures chapter 1 quotes from the stored VAE sweep and probe;
* :func:`sampling_lever_figures` — the figures chapter 5 quotes from the stored sampling levers of base motion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import decide

__all__ = ["FIDELITY_SEED", "psnr", "ssim", "held_out_clips", "reconstruct", "vae_fidelity", "vae_table",
           "object_colour_shift", "first_frame_fidelity", "vae_study_figures", "fidelity_rows",
           "LEVER_SLUGS", "sampling_lever_figures", "CEILING", "CEILING_GAP", "base_motion_rows"]

#: Seed of the held-out synthetic clips (training draws clip seeds ``data_seed * 1_000_003 + i`` with data_seed 0
#: and i < num_clips, far below it).
FIDELITY_SEED = 900_001


def _uint8_video(video, name: str) -> np.ndarray:
    v = video.numpy() if isinstance(video, torch.Tensor) else np.asarray(video)
    if v.dtype != np.uint8 or v.ndim not in (3, 4) or v.shape[-1] != 3:
        raise ValueError(f"{name} must be a uint8 array (H, W, 3) or (L, H, W, 3), got {v.dtype} {v.shape}")
    return v


def psnr(reference, estimate) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images or videos of the same shape (peak 255), over all
    pixels; ``inf`` when they are identical."""
    a, b = _uint8_video(reference, "reference"), _uint8_video(estimate, "estimate")
    if a.shape != b.shape:
        raise ValueError(f"reference and estimate must have the same shape, got {a.shape} and {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def ssim(reference, estimate) -> float:
    """Structural similarity (scikit-image, 7 x 7 windows, colour channels averaged) of two uint8 images, or
    its mean over the frames of two videos."""
    from skimage.metrics import structural_similarity

    a, b = _uint8_video(reference, "reference"), _uint8_video(estimate, "estimate")
    if a.shape != b.shape:
        raise ValueError(f"reference and estimate must have the same shape, got {a.shape} and {b.shape}")
    a, b = (a[None], b[None]) if a.ndim == 3 else (a, b)
    return float(np.mean([structural_similarity(x, y, channel_axis=-1, data_range=255) for x, y in zip(a, b)]))


def held_out_clips(num_clips: int = 16, seed: int = FIDELITY_SEED, num_frames: int = 8, size: int = 64,
                   bench_root=None) -> dict:
    """``{set: [uint8 (L, size, size, 3) clips]}`` no training run has seen: ``"object clips"`` (``num_clips``
    synthetic object clips, seeds ``seed + i``), ``"bench scenes"`` (the ground-truth clips of the first
    ``num_clips // 2`` entries of each toy bench set, ``data/bench``) and ``"photographs"`` (every image of
    :data:`remoco.data.ALL_PHOTOS`, resized and centre-cropped, as a still clip)."""
    from . import data
    from .benchset import ground_truth_clip, load_bench
    from .config import SHIPPED_DIR
    from .video import resize_center_crop

    if isinstance(num_clips, bool) or not isinstance(num_clips, int) or num_clips < 2:
        raise ValueError(f"num_clips must be an int >= 2, got {num_clips!r}")
    out = {"object clips": [data.make_clip(seed + i, num_frames, size, size, kind="object").video.numpy()
                            for i in range(num_clips)]}
    root = SHIPPED_DIR.parent / "bench" if bench_root is None else Path(bench_root)
    scenes = []
    for set_name in ("fine", "object"):
        bench = load_bench(root / set_name, verify=False)
        for e in bench.entries[:num_clips // 2]:
            scenes.append(ground_truth_clip(e.truth).video.numpy())
    out["bench scenes"] = scenes
    # each photograph resized to cover size x size and centre-cropped (the paper's preprocessing), as a still clip
    out["photographs"] = [np.repeat(resize_center_crop(torch.from_numpy(img[None]), size, size).numpy(), num_frames,
                                    axis=0) for img in data.sample_images(data.ALL_PHOTOS).values()]
    return out


@torch.no_grad()
def reconstruct(vae, video) -> np.ndarray:
    """A uint8 clip (L, H, W, 3) encoded (posterior mean) and decoded by ``vae`` (an
    :class:`AutoencoderKLTemporalDecoder`, all L frames decoded together, or a frame-wise one)."""
    v = _uint8_video(video, "video")
    v = v[None] if v.ndim == 3 else v
    p = next(vae.parameters())
    x = torch.from_numpy(v).permute(0, 3, 1, 2).to(p.device, p.dtype) / 127.5 - 1.0
    z = vae.encode(x).latent_dist.mode()
    from .toy_vae import decode_frames

    rec = decode_frames(vae, z, x.shape[0])
    return ((rec.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def vae_fidelity(vae, clips: dict) -> dict:
    """``{set: {"psnr": [dB per clip], "ssim": [...], "psnr_frame1": [...]}}`` of ``vae``'s reconstructions of
    ``clips`` (:func:`held_out_clips`), plus ``"all"`` pooling the sets."""
    out = {}
    for name, vids in clips.items():
        recs = [reconstruct(vae, v) for v in vids]
        out[name] = {"psnr": [psnr(v, r) for v, r in zip(vids, recs)],
                     "ssim": [ssim(v, r) for v, r in zip(vids, recs)],
                     "psnr_frame1": [psnr(v[0], r[0]) for v, r in zip(vids, recs)]}
    out["all"] = {k: [x for name in clips for x in out[name][k]] for k in ("psnr", "ssim", "psnr_frame1")}
    return out


def vae_table(scores: dict) -> list[dict]:
    """Rows ``{held-out set, clips, PSNR (dB), lowest PSNR (dB), SSIM}`` of :func:`vae_fidelity`'s scores."""
    return [{"held-out set": name, "clips": len(v["psnr"]), "PSNR (dB)": float(np.mean(v["psnr"])),
             "lowest PSNR (dB)": float(np.min(v["psnr"])), "SSIM": float(np.mean(v["ssim"]))}
            for name, v in scores.items()]


def object_colour_shift(video, region) -> float:
    """Mean |difference| over RGB (grey levels) between the mean colour of the object in the first frame (the
    pixels of ``region``, a (H, W) bool mask) and in the last frame, where each of those pixels is followed by
    the clip's own flow from the first to the last frame (OpenCV DIS, :func:`remoco.flow.estimate_flow`)."""
    from .flow import estimate_flow

    v = _uint8_video(video, "video")
    m = region.numpy() if isinstance(region, torch.Tensor) else np.asarray(region)
    if m.dtype != bool or m.shape != v.shape[1:3] or not m.any():
        raise ValueError(f"region must be a non-empty bool mask of shape {v.shape[1:3]}, got {m.dtype} {m.shape}")
    flow, _ = estimate_flow(torch.from_numpy(v))
    H, W = m.shape
    ys, xs = np.nonzero(m)
    d = flow[-1].numpy()[ys, xs]  # each object pixel's displacement to the last frame
    ys2, xs2 = np.round(ys + d[:, 1]).astype(int), np.round(xs + d[:, 0]).astype(int)
    keep = (ys2 >= 0) & (ys2 < H) & (xs2 >= 0) & (xs2 < W)
    if not keep.any():
        return float("nan")
    first = v[0][ys, xs].astype(np.float64).mean(axis=0)
    last = v[-1][ys2[keep], xs2[keep]].astype(np.float64).mean(axis=0)
    return float(np.abs(first - last).mean())


def first_frame_fidelity(pipelines: dict, num_clips: int = 8, seed: int = FIDELITY_SEED,
                         num_inference_steps: int = 15, num_frames: int = 8, size: int = 64,
                         batch_size: int = 8, precision: str = "auto") -> dict:
    """Does generation keep the conditioning image? For ``num_clips`` held-out object clips, each pipeline's
    video from the clip's first frame (no motion condition, generator seeds ``seed + 1000 + i``): PSNR of the
    generated first frame against that frame (``"first_frame_psnr"``) and the brushed object's colour shift
    from the first to the last frame (:func:`object_colour_shift`), with the real clips' shift under
    ``"data"`` as the floor. Returns ``{"first_frame_psnr": {name: [dB]}, "colour_shift": {name or "data": [grey
    levels]}, "inputs": [first frames], "videos": {name: [generated videos]}}``."""
    from . import data
    from .evaluate import generated_videos_from_first_frames, object_trajectory

    clips = [data.make_clip(seed + i, num_frames, size, size, kind="object") for i in range(num_clips)]
    brushes = [object_trajectory(c)[1] for c in clips]
    videos = generated_videos_from_first_frames(pipelines, clips, [seed + 1000 + i for i in range(num_clips)],
                                                num_inference_steps=num_inference_steps, batch_size=batch_size,
                                                precision=precision)
    firsts = [c.video[0].numpy() for c in clips]
    out = {"first_frame_psnr": {}, "colour_shift": {"data": [object_colour_shift(c.video, b)
                                                             for c, b in zip(clips, brushes)]},
           "inputs": firsts, "videos": videos}
    for name, vids in videos.items():
        out["first_frame_psnr"][name] = [psnr(f, v[0]) for f, v in zip(firsts, vids)]
        out["colour_shift"][name] = [object_colour_shift(v, b) for v, b in zip(vids, brushes)]
    return out


def vae_study_figures(sweep: dict, longer: dict, arch_probe: dict, plain_probe: dict | None = None) -> dict[str, str]:
    """The figures chapter 1 quotes from the stored VAE studies, formatted for the page: the sweep's last points
    (``results/vae_sweep.json``), the longer runs' (``results/vae_sweep_long.json``) and the decoder / latent
    probe's (``results/vae_arch_probe.json``: temporal vs frame-wise decoder at the temporal run's last step, and
    the gain of 8 / 16 latent channels over 4 at the last step the larger latents reached) and, given
    ``plain_probe`` (``results/vae_plain_probe.json``), each of its runs at the first step they all reached
    (``plain_<kind>`` keys: plain, frame, frame_nonorm, tiny) and the plain autoencoder's last point."""
    last = {name: v["curve"][-1]["all psnr"] for name, v in sweep["variants"].items()}
    first4 = longer["variants"]["first toy VAE, 4 ch/group"]["curve"][-1]
    arch = {name: {p["step"]: p["all"] for p in r["points"]} for name, r in arch_probe["runs"].items()}
    temporal = arch["temporal, 4 latent channels"]
    lat_step = max(arch["temporal, 8 latent channels"])
    out = {"sweep_steps": f"{sweep['steps']:,}", "sweep_first": f"{last['first toy VAE']:.1f}",
           "sweep_wide": f"{last['wide, 2x4, L1+MSE']:.1f}", "sweep_first4": f"{last['first toy VAE, 4 ch/group']:.1f}",
           "sweep_wide4": f"{last['wide, 2x4, L1+MSE, 4 ch/group']:.1f}", "long_steps": f"{longer['steps']:,}",
           "long_first4": f"{first4['all psnr']:.1f}", "long_first4_min": f"{first4['minutes']:.0f}",
           "arch_steps": f"{max(temporal):,}", "arch_temporal": f"{temporal[max(temporal)]:.1f}",
           "arch_frame": f"{arch['frame, 4 latent channels'][max(temporal)]:.1f}", "arch_lat_steps": f"{lat_step:,}"}
    for n in (8, 16):
        out[f"arch_lat{n}_gain"] = f"{arch[f'temporal, {n} latent channels'][lat_step] - temporal[lat_step]:+.1f}"
    if plain_probe is not None:
        runs = plain_probe["runs"]
        step = min(max(p["step"] for p in r["points"]) for r in runs.values())
        at = {name: next(p["all"] for p in r["points"] if p["step"] == step) for name, r in runs.items()}

        def arm(kind: str, **options) -> str:  # the run of ``kind`` with exactly these probe options
            return next(name for name, r in runs.items() if r["kind"] == kind and options ==
                        {k: v for k, v in r.items() if k not in ("kind", "clips", "frames", "points")})

        plain, frame, nonorm, tiny = arm("plain"), arm("frame"), arm("frame", no_norm=True), arm("tiny")
        last = runs[plain]["points"][-1]
        out.update(plain_step=f"{step:,}", plain_plain=f"{at[plain]:.1f}", plain_frame=f"{at[frame]:.1f}",
                   plain_frame_nonorm=f"{at[nonorm]:.1f}", plain_tiny=f"{at[tiny]:.1f}",
                   plain_last=f"{last['all']:.1f}", plain_last_steps=f"{last['step']:,}",
                   plain_last_min=f"{last['minutes']:.0f}")
    return out


def fidelity_rows(systems: dict, names=None) -> list[dict]:
    """One row per toy of ``benchmarks/toy_fidelity.py``'s ``systems`` (``results/toy_fidelity.json``; ``names``:
    which, in order): VAE PSNR / SSIM on the held-out clips, the generated first frame's PSNR to its input, the
    object's colour shift first -> last frame (the real clips' beside it) and the base's object motion as a share of
    the data's at motion bucket 127 (12 clips, seed 12345)."""
    rows = []
    for name in names or list(systems):
        if name not in systems:
            raise ValueError(f"names: {name!r} is not one of the measured systems {sorted(systems)}")
        s = systems[name]
        rows.append({"toy": name, "VAE PSNR (dB)": s["vae"]["all"]["psnr"], "VAE SSIM": s["vae"]["all"]["ssim"],
                     "first frame PSNR (dB)": float(np.mean(s["first_frame_psnr"])),
                     "colour shift, generated": float(np.nanmean(s["colour_shift"]["base"])),
                     "colour shift, real clips": float(np.nanmean(s["colour_shift"]["data"])),
                     "base motion (% of data's)": 100 * s["motion (12 clips, seed 12345)"]["127"]["ratio"]})
    return rows


#: The bases of ``benchmarks/motion_sampling.py``'s stored result that chapter 5 quotes, and the slug of each in
#: :func:`sampling_lever_figures`' glue names (``ms_look_<slug>``, ``ms_ceil_<slug>``, ...).
LEVER_SLUGS = {"shipped": "shipped", "plain": "plain", "plain, noise-robust decoder": "robust",
               "noisy-latent VAE base": "noisy", "noisy-latent VAE base (0.15)": "noisy15",
               "p_mean 0.7 base": "pm07", "p_mean 0 base": "pm00"}


def sampling_lever_figures(levers: dict) -> dict[str, str]:
    """The figures chapter 5 quotes from ``benchmarks/motion_sampling.py``'s stored result (``levers``: systems
    ``shipped`` and ``plain`` always, the others of :data:`LEVER_SLUGS` where measured), formatted for the page:
    motion in % of the real clips' (by flow, ``ms_<slug>``, and by appearance where measured: ``ms_look_<slug>``,
    with the share of objects found, ``ms_found_<slug>``, and the autoencoder's ceiling, ``ms_ceil_<slug>``),
    colour shift in grey levels, first-frame PSNR in dB, the paired gap of bucket 255 to the default arm in
    percentage points."""
    arms = list(levers["arms"])
    default, no_guidance = arms[0], next(a for a in arms if a.startswith("no guidance"))
    systems = levers["systems"]

    def arm(system: str, name: str) -> dict:
        return systems[system]["arms"][name]

    def motion(system: str, name: str) -> float:
        return 100 * arm(system, name)["ratio"]

    def colour(system: str, name: str) -> str:
        return f"{np.nanmean(arm(system, name)['colour shift']):.0f}"

    b255, b35 = "bucket 255", next(a for a in arms if a.startswith("bucket 35"))
    gap = arm("shipped", b255)["paired vs default"]["motion (share of data)"]
    plain = [motion("plain", a) for a in systems["plain"]["arms"]]
    out = {"ms_clips": str(levers["clips"]), "ms_data_bucket": f"{np.median(levers['data buckets']):.0f}",
           "ms_data_colour": f"{np.nanmean(levers['data colour shift']):.0f}",
           "ms_shipped_255": f"{motion('shipped', b255):.0f}", "ms_shipped_35": f"{motion('shipped', b35):.0f}",
           "ms_shipped_255_gap": decide.interval_text(gap, scale=100),
           "ms_plain_min": f"{min(plain):.0f}", "ms_plain_max": f"{max(plain):.0f}"}
    real = np.mean(levers["data appearance px"]) if "data appearance px" in levers else None
    if real is not None:
        out["ms_data_found"] = f"{100 * np.mean(levers['data appearance found']):.0f}"
        looks = [np.mean(r["appearance px"]) for res in systems.values() for r in res["arms"].values()
                 if "appearance px" in r]
        out["ms_look_max"] = f"{100 * max(looks) / real:.0f}"
    for system, slug in LEVER_SLUGS.items():
        if system not in systems:
            continue
        out |= {f"ms_{slug}": f"{motion(system, default):.0f}", f"ms_{slug}_colour": colour(system, default)}
        if "first frame psnr" in arm(system, default):
            out[f"ms_{slug}_frame1"] = f"{np.mean(arm(system, default)['first frame psnr']):.1f}"
        if no_guidance in systems[system]["arms"]:
            out |= {f"ms_{slug}_noguid": f"{motion(system, no_guidance):.0f}",
                    f"ms_{slug}_noguid_colour": colour(system, no_guidance)}
        if real is None:
            continue
        if "appearance px" in arm(system, default):
            out[f"ms_look_{slug}"] = f"{100 * np.mean(arm(system, default)['appearance px']) / real:.0f}"
            out[f"ms_found_{slug}"] = f"{100 * np.mean(arm(system, default)['appearance found']):.0f}"
        ceiling = systems[system].get("through its autoencoder")
        if ceiling is not None:
            out[f"ms_ceil_{slug}"] = f"{100 * np.mean(ceiling['appearance px']) / real:.0f}"
            out[f"ms_ceil_found_{slug}"] = f"{100 * np.mean(ceiling['appearance found']):.0f}"
    return out


#: The "sampling" of :func:`base_motion_rows`' ceiling rows: no sampling, the real clips through the base's autoencoder.
CEILING = "ceiling: the real clips through its autoencoder"


#: :func:`base_motion_rows`' column of each arm's paired gap to its own ceiling by appearance.
CEILING_GAP = "by appearance minus ceiling (points, 95 % CI)"


def base_motion_rows(levers: dict, labels: dict[str, str]) -> list[dict]:
    """Chapter 5's table of what each base renders, from ``benchmarks/motion_sampling.py``'s stored result: for
    the real clips and then each system of ``labels`` (``{system key: row label}``) in each arm measured by
    appearance, and its ceiling (:data:`CEILING`, where measured; the "frame 1" column is then the
    reconstruction's), the motion as a share of the real clips' by flow and by appearance, the share of clips whose
    object is found by appearance, the object's colour shift (grey levels) and the first frame's PSNR to the
    conditioning image (dB; None for the real clips). Where the ceiling is measured, each arm's row also gives
    its motion by appearance minus the ceiling's, paired clip by clip (:data:`CEILING_GAP`: mean and 95 % percentile
    bootstrap interval over the clips, :func:`remoco.decide.bootstrap_interval`, in percentage points of the real
    clips' motion, as text; None elsewhere). A percentile bootstrap, not a t interval: the per-clip differences are
    far from normal (for the plain base's default arm 9 of 24 are exactly 0 and the rest spread down to -207
    points), which a normal approximation on 24 values does not describe."""
    flow, look = "motion by flow (%)", "motion by appearance (%)"
    found, colour, frame1 = "object found (%)", "colour shift", "frame 1 (dB)"
    real_flow, real_look = np.mean(levers["data px"]), np.mean(levers["data appearance px"])
    rows = [{"base": "real clips", "sampling": "", flow: 100.0, look: 100.0,
             found: 100 * np.mean(levers["data appearance found"]),
             colour: float(np.nanmean(levers["data colour shift"])), frame1: None, CEILING_GAP: None}]
    for key, label in labels.items():
        res = levers["systems"][key]
        measured = [(arm, r) for arm, r in res["arms"].items() if "appearance px" in r]
        ceiling = res.get("through its autoencoder")
        if ceiling is not None:
            measured.append((CEILING, ceiling))
        for arm, r in measured:
            gap = None
            if ceiling is not None and arm != CEILING:
                d = 100 * (np.asarray(r["appearance px"]) - ceiling["appearance px"]) / real_look
                gap = decide.interval_text(decide.bootstrap_interval(d[None, :]))
            rows.append({"base": label, "sampling": arm, flow: 100 * np.mean(r["base px"]) / real_flow,
                         look: 100 * np.mean(r["appearance px"]) / real_look,
                         found: 100 * np.mean(r["appearance found"]),
                         colour: float(np.nanmean(r["colour shift"])),
                         frame1: float(np.mean(r["first frame psnr"])), CEILING_GAP: gap})
    return rows
