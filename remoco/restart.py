"""Where along the noise scale does the toy base lose the object? Sampling restarted from a noised real clip.

The toy base's videos keep the background but the moving object dissolves (chapter 5). Sampling from pure noise
(sigma_max = 700) asks the model for everything at once; restarting the sampler from the real clip's own latents
noised to a level ``sigma_start`` (Eq. 1, ``z = z0 + sigma_start * eps``) asks it only for what noise of that level
destroys (SDEdit, Meng et al. 2022, run in reverse as a probe). At a small ``sigma_start`` the real object is still
in the latents and the sampler only has to keep it; at a large one it has to make it. The level where the object
stops being found by its look (:func:`remoco.evaluate.recognised_object`) is where the denoiser fails: at high
noise (the layout and the motion are never decided) or at low noise (it cannot keep a moving object that is
already there).

:func:`karras_sigmas` is the sampler's schedule (Karras et al. 2022, Eq. 5) between ``sigma_min`` and
``sigma_start``; :func:`restarted_videos` runs diffusers' SVD pipeline on it with the noised clip latents as its
initial latents, so everything else (guidance ramp, noise augmentation, the conditioning image) is the pipeline's
own.
"""

from __future__ import annotations

import numpy as np
import torch

from . import decide
from .models import vae_scale_factor
from .speed import sampler_autocast
from .video import as_uint8_frames, as_uint8_image

__all__ = ["SIGMA_MIN", "RESTART_SLUGS", "karras_sigmas", "clip_latents", "decoded_videos", "restarted_videos",
           "restart_rows", "restart_figures", "seen_figures", "restart_plot"]

#: SVD's smallest sampling noise level (``scheduler_config.json``, :func:`remoco.models.svd_scheduler_config`)
SIGMA_MIN = 0.002


def karras_sigmas(sigma_start: float, num_steps: int = 15, sigma_min: float = SIGMA_MIN, rho: float = 7.0) -> list:
    """The ``num_steps + 1`` noise levels of a Karras et al. (2022, Eq. 5) schedule from ``sigma_start`` down to
    ``sigma_min``, then 0 (SVD's sampler ends at zero noise): ``sigma_i = (s^(1/rho) + i/(N-1) (m^(1/rho) -
    s^(1/rho)))^rho``."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
    if not (np.isfinite(sigma_start) and sigma_start > sigma_min > 0):
        raise ValueError(f"sigma_start must be a finite level above sigma_min={sigma_min}, got {sigma_start!r}")
    if num_steps == 1:
        return [float(sigma_start), 0.0]
    ramp = np.linspace(0, 1, num_steps)
    hi, lo = sigma_start ** (1 / rho), sigma_min ** (1 / rho)
    return [float(s) for s in (hi + ramp * (lo - hi)) ** rho] + [0.0]


def clip_latents(vae, video) -> torch.Tensor:
    """A uint8 clip (L, H, W, 3) encoded by ``vae`` (posterior mean) into the UNet's latents (L, C, h, w): times
    ``vae.config.scaling_factor``, as the pipeline's decoder expects them."""
    v = np.asarray(video.numpy() if torch.is_tensor(video) else video)
    if v.dtype != np.uint8 or v.ndim != 4 or v.shape[-1] != 3 or v.shape[0] < 2:
        raise ValueError(f"video must be an (L, H, W, 3) uint8 clip with L >= 2, got {v.dtype} {v.shape}")
    p = next(vae.parameters())
    x = torch.from_numpy(v).permute(0, 3, 1, 2).to(p.device, p.dtype) / 127.5 - 1.0
    with torch.no_grad():
        return vae.encode(x).latent_dist.mode().float() * float(vae.config.scaling_factor)


def decoded_videos(pipeline, latents: torch.Tensor) -> list[np.ndarray]:
    """UNet latents (B, L, C, h, w), scaled as the pipeline's, decoded by ``pipeline``'s own decoder (as its
    ``output_type="np"`` does) into ``(L, H, W, 3)`` uint8 videos."""
    if latents.ndim != 5:
        raise ValueError(f"latents must be (B, L, C, h, w), got shape {tuple(latents.shape)}")
    with torch.no_grad():
        frames = pipeline.decode_latents(latents.to(pipeline.vae.dtype), latents.shape[1], latents.shape[1])
    frames = pipeline.video_processor.postprocess_video(video=frames, output_type="np")
    return [as_uint8_frames(f, "frames") for f in frames]


def restarted_videos(pipeline, videos, seeds, sigma_start: float, num_steps: int = 15, batch_size: int = 8,
                     precision: str = "auto", **call_kwargs) -> tuple[list[np.ndarray], torch.Tensor]:
    """One video per real clip: its latents noised to ``sigma_start`` (Eq. 1, noise drawn from ``seeds[i]``) and
    sampled back to zero noise by the base ``pipeline`` (a diffusers SVD pipeline) over :func:`karras_sigmas`,
    conditioned on the clip's first frame. ``call_kwargs`` (``motion_bucket_id``, ``max_guidance_scale``, ...) go
    to every call. Returns the ``(L, H, W, 3)`` uint8 videos and their final latents (N, L, C, h, w), to compare
    with :func:`clip_latents` of the clips."""
    import PIL.Image

    from .pipeline import ReMoCoPipeline

    if isinstance(pipeline, ReMoCoPipeline):
        raise ValueError("pipeline: restarted_videos probes a base (plain SVD) pipeline, got a ReMoCoPipeline")
    if len(seeds) != len(videos) or not len(videos):
        raise ValueError(f"seeds: expected one per video ({len(videos)}), got {len(seeds)}")
    for key in ("image", "generator", "latents", "sigmas", "num_inference_steps", "output_type"):
        if key in call_kwargs:
            raise ValueError(f"{key} is set by restarted_videos; do not pass it in call_kwargs")
    sigmas = karras_sigmas(float(sigma_start), num_steps)
    lat = [clip_latents(pipeline.vae, v) for v in videos]
    if len({tuple(z.shape) for z in lat}) != 1:
        raise ValueError("videos must all have one shape")
    L, _, h, w = lat[0].shape
    f = vae_scale_factor(pipeline.vae)
    # the pipeline multiplies given latents by init_noise_sigma = sqrt(sigma_start^2 + 1) (spacing "leading")
    scale = (float(sigma_start) ** 2 + 1) ** 0.5
    fast = sampler_autocast(pipeline.unet, precision, call_kwargs)
    finals = []
    with fast:
        for s in range(0, len(videos), batch_size):
            idx = range(s, min(s + batch_size, len(videos)))
            eps = torch.stack([torch.randn(lat[i].shape, generator=torch.Generator().manual_seed(int(seeds[i])))
                               for i in idx])
            z = (torch.stack([lat[i] for i in idx]) + float(sigma_start) * eps) / scale
            images = [PIL.Image.fromarray(as_uint8_image(videos[i][0], "videos")) for i in idx]
            gens = [torch.Generator().manual_seed(int(seeds[i])) for i in idx]
            finals.append(pipeline(images, height=h * f, width=w * f, num_frames=L, latents=z, sigmas=sigmas,
                                   generator=gens, output_type="latent", **call_kwargs).frames.float())
    finals = torch.cat(finals)
    return decoded_videos(pipeline, finals), finals


def restart_rows(study: dict, labels: dict[str, str]) -> list[dict]:
    """One row per base of ``labels`` (``{name: label}``) in a restart study (``{"sigmas": [...], "systems": {name:
    {"restart": {str(sigma): {"appearance found": [bool per clip]}}, "decoder alone": {"0.0": ...}}}}``): the share
    of clips whose object is found (%) through its autoencoder alone, then after a restart from each starting level
    (columns ``"from σ = <level>"``)."""
    rows = []
    for name, label in labels.items():
        res = study["systems"][name]
        alone = res["decoder alone"]["0.0"]["appearance found"]
        row = {"base": label, "autoencoder alone": 100 * float(np.mean(alone))}
        for sigma in study["sigmas"]:
            row[f"from σ = {float(sigma):g}"] = 100 * float(np.mean(res["restart"][str(sigma)]["appearance found"]))
        rows.append(row)
    return rows


#: The bases of ``benchmarks/restart_noise.py``'s stored study and the short names chapter 5's glue uses for them.
RESTART_SLUGS = {"plain": "plain", "shipped": "shipped", "p_mean 0 base": "pm00", "6,000-step base": "long6k",
                 "plain, noise-robust decoder": "robust", "noisy-latent VAE base (0.15)": "noisy15",
                 "wide UNet (64, 128, 128)": "wide", "plain (retrained, AMD EPYC)": "replain",
                 "attention at every level": "attn",
                 "attention at every level, noise-robust decoder (U[0, 1])": "attnrobust",
                 "p_mean 0 (retrained, AMD EPYC)": "repm00", "attention at every level, p_mean 0": "attnpm0",
                 "EMA of the UNet weights (0.999)": "ema"}


def _level_name(sigma) -> str:
    """A noise level as the glue names of chapter 5 spell it: ``0.25`` -> ``"0_25"``, ``700.0`` -> ``"700"``."""
    return f"{float(sigma):g}".replace(".", "_")


def restart_figures(study: dict) -> dict[str, str]:
    """The figures chapter 5 quotes from a stored restart study, formatted for the page: the share of real clips
    whose object is found (``rs_real``); per base (slug of :data:`RESTART_SLUGS`) the share found through its
    autoencoder alone (``rs_ceil_<slug>``) and with latent noise 0.25 (``rs_dec25_<slug>``), found after a restart
    from each level (``rs_found_<slug>_<level>``, level as in ``0_05``), the final latent RMS error at the smallest
    level (``rs_rmse_<slug>_<level>``; its first and last frame's: ``rs_first_...``, ``rs_last_...``) and that of
    repeating frame 1 (``rs_copy_<slug>``; its last frame's: ``rs_copy_last_<slug>``); for a base on the same
    autoencoder as its reference base (the record's ``"reference"``, by default ``plain``), its paired gap in that
    error to the reference, clip by clip (95 % t interval, ``rs_gap_<slug>_<level>``), and in the share of objects
    found (points, 95 % percentile bootstrap over the clips, ``rs_foundgap_<slug>_<level>``) and the largest
    difference in that error on any clip and level (``rs_maxgap_<slug>``); where recorded, its UNet's parameters in
    millions (``rs_params_<slug>``) and the processor it was measured on (``rs_cpu_<slug>``)."""
    out = {"rs_real": f"{100 * np.mean(study['real found']):.0f}", "rs_clips": str(study["clips"])}
    for name, slug in RESTART_SLUGS.items():
        res = study["systems"].get(name)
        if res is None:
            continue
        dec = res["decoder alone"]
        out[f"rs_ceil_{slug}"] = f"{100 * np.mean(dec['0.0']['appearance found']):.0f}"
        out[f"rs_dec25_{slug}"] = f"{100 * np.mean(dec['0.25']['appearance found']):.0f}"
        out[f"rs_copy_{slug}"] = f"{np.mean(res['copy frame 1']['latent rmse']):.2f}"
        out[f"rs_copy_last_{slug}"] = f"{res['copy frame 1']['latent rmse per frame'][-1]:.2f}"
        if "unet parameters" in res:
            out[f"rs_params_{slug}"] = f"{res['unet parameters'] / 1e6:.1f}"
        machine = res.get("machine", study.get("machine"))
        if machine:
            out[f"rs_cpu_{slug}"] = " ".join(w for w in machine["cpu_model"].replace("(R)", "").split()
                                             if w != "Processor")
        for s in study["sigmas"]:
            r = res["restart"][str(s)]
            out[f"rs_found_{slug}_{_level_name(s)}"] = f"{100 * np.mean(r['appearance found']):.0f}"
            out[f"rs_rmse_{slug}_{_level_name(s)}"] = f"{np.mean(r['latent rmse']):.2f}"
            out[f"rs_first_{slug}_{_level_name(s)}"] = f"{r['latent rmse per frame'][0]:.2f}"
            out[f"rs_last_{slug}_{_level_name(s)}"] = f"{r['latent rmse per frame'][-1]:.2f}"
        ref_name = res.get("reference", "plain")
        ref = study["systems"].get(ref_name)
        if name != ref_name and ref is not None and res["latent rms"] == ref["latent rms"]:
            # the same autoencoder (its latents are the same numbers), clips and noise draws: paired clip by clip
            largest = 0.0
            for s in study["sigmas"]:
                d = np.subtract(res["restart"][str(s)]["latent rmse"], ref["restart"][str(s)]["latent rmse"])
                largest = max(largest, float(np.max(np.abs(d))))
                out[f"rs_gap_{slug}_{_level_name(s)}"] = decide.interval_text(decide.t_interval(d), digits=3)
                f = 100 * np.subtract(res["restart"][str(s)]["appearance found"],
                                      ref["restart"][str(s)]["appearance found"], dtype=float)
                found_gap = decide.bootstrap_interval(f[None, :])
                out[f"rs_foundgap_{slug}_{_level_name(s)}"] = decide.interval_text(found_gap)
            out[f"rs_maxgap_{slug}"] = f"{largest:.3f}"
    return out


def seen_figures(study: dict, system: str, slug: str) -> dict[str, str]:
    """The figures chapter 5 quotes from a stored seen-clips probe (``benchmarks/restart_seen.py``: one base
    restarted from three sets of clips, its training clips among them) for base ``system``, formatted for the page:
    per set (``train``, ``unseen``, ``heldout``) and level the share of objects found
    (``seen_found_<slug>_<set>_<level>``) and the mean final latent RMS error (``seen_rmse_...``), and at each level
    the difference in that error between the training clips and the unseen ones cut from the same photographs (Welch
    95 % interval, different clips, so not paired: ``seen_gap_<slug>_<level>``); the number of clips a set
    (``seen_clips``)."""
    keys = {"training clips": "train", "unseen clips, training photographs": "unseen",
            "chapter 5's held-out clips": "heldout"}
    sets = study["systems"][system]["sets"]
    out = {"seen_clips": str(study["clips"])}
    for s in study["sigmas"]:
        lv = _level_name(s)
        for name, key in keys.items():
            r = sets[name][str(s)]
            out[f"seen_found_{slug}_{key}_{lv}"] = f"{100 * np.mean(r['appearance found']):.0f}"
            out[f"seen_rmse_{slug}_{key}_{lv}"] = f"{np.mean(r['latent rmse']):.2f}"
        gap = decide.welch_interval(sets["training clips"][str(s)]["latent rmse"],
                                    sets["unseen clips, training photographs"][str(s)]["latent rmse"])
        out[f"seen_gap_{slug}_{lv}"] = decide.interval_text(gap, digits=3)
    return out


def restart_plot(study: dict, labels: dict[str, str] | None = None):
    """Three panels of a stored restart study: (a) objects found against the starting noise level, each base's
    autoencoder alone (dotted) and the real clips (grey) for reference; (b) the final latents' RMS error against the
    starting level, beside the noise left undenoised (sigma itself, up to 1) and each base's error of repeating frame 1
    (dashed); (c) objects found against that error, for the restarts (markers) and for the autoencoder alone with
    random latent noise of the same size (lines). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    labels = labels or {name: name for name in study["systems"]}
    sig = [float(s) for s in study["sigmas"]]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
    real = 100 * np.mean(study["real found"])
    axes[0].axhline(real, color="0.6", lw=3, alpha=0.6, label="real clips")
    low = [s for s in sig if s <= 1]
    axes[1].plot(low, low, color="0.6", lw=3, alpha=0.6, label="noise left as it is (σ)")
    for i, (name, label) in enumerate(labels.items()):
        res, c = study["systems"][name], f"C{i}"
        found = [100 * np.mean(res["restart"][str(s)]["appearance found"]) for s in study["sigmas"]]
        rmse = [np.mean(res["restart"][str(s)]["latent rmse"]) for s in study["sigmas"]]
        axes[0].plot(sig, found, "o-", color=c, label=label)
        axes[0].axhline(100 * np.mean(res["decoder alone"]["0.0"]["appearance found"]), color=c, ls=":")
        axes[1].plot(sig, rmse, "o-", color=c, label=label)
        axes[1].axhline(np.mean(res["copy frame 1"]["latent rmse"]), color=c, ls="--")
        deltas = sorted(res["decoder alone"], key=float)
        axes[2].plot([np.mean(res["decoder alone"][d]["latent rmse"]) for d in deltas],
                     [100 * np.mean(res["decoder alone"][d]["appearance found"]) for d in deltas], "-", color=c)
        axes[2].plot(rmse, found, "o", color=c, label=label)
    for ax in axes[:2]:
        ax.set_xscale("log")
        ax.set_xlabel("starting noise level σ (700 = pure noise)")
    axes[1].set_yscale("log")
    axes[1].set_ylim(0.03, 1.2)
    axes[0].set_ylabel("object found (%)")
    axes[1].set_ylabel("final latent RMS error")
    axes[2].set_xlabel("final latent RMS error")
    axes[2].set_ylabel("object found (%)")
    axes[0].set_title("(a) found after a restart (dotted: its autoencoder)", fontsize=9)
    axes[1].set_title("(b) error left (dashed: repeat frame 1)", fontsize=9)
    axes[2].set_title("(c) restarts (dots), random latent noise (lines)", fontsize=9)
    axes[0].legend(fontsize=7, loc="upper right")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
