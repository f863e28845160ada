"""Where along the noise scale does the toy base lose the object? The sampler restarted from noised real clips.

For each ``--system NAME=FOLDER`` (a base pipeline folder) and each starting level ``sigma_start`` in ``--sigmas``,
chapter 5's 24 held-out object clips (seed 12345, as ``benchmarks/motion_sampling.py``) are encoded by the base's own
autoencoder, noised to ``sigma_start`` (Eq. 1, one noise draw per clip) and sampled back to zero noise over a
15-step Karras schedule (:func:`remoco.restart.restarted_videos`; SVD's guidance ramp 1 -> 3, motion bucket 127,
noise augmentation 0.02), conditioned on each clip's first frame. Measured per clip: whether the moving object is
found again by its frame-1 look (:func:`remoco.evaluate.object_appearance_motion`), the video's PSNR to the real
clip, and the final latents' RMS error to the clip's latents per frame. ``sigma_start = 700`` is ordinary sampling
from pure noise (SVD's sigma_max).

Two references per system, measured on the same clips: the real clips through the autoencoder with Gaussian noise
of RMS ``delta`` added to their latents (``"decoder alone"``: what latent error of that size costs without any
denoiser), and ``"copy frame 1"``: the latent error of a video that repeats frame 1 (the conditioning image the
base is given), the error of a denoiser that ignores the noisy clip.

    .venv/bin/python benchmarks/restart_noise.py --system plain=runs/plain-ship/toy-base \\
        --system shipped=data/checkpoints/toy-base --out results/restart_noise.json
    .venv/bin/python benchmarks/restart_noise.py --merge --reference "plain (retrained, AMD EPYC)" \\
        --system "attention at every level=runs/base-attn/unet/final"   # paired with a base retrained beside it

Each base records the processor it was measured on; ``--merge`` keeps the bases already in ``--out`` as they are.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from remoco import evaluate, fidelity, restart, runs, shipped, speed
from remoco.data import make_clip

REPO = Path(__file__).resolve().parent.parent
SIGMAS = (0.05, 0.1, 0.25, 0.5, 1.0, 4.0, 700.0)
DELTAS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)


def measure(videos, latents, clips, clip_lat, brushes) -> dict:
    found = [evaluate.object_appearance_motion(v, b)[1] for v, b in zip(videos, brushes)]
    err = (latents.float() - clip_lat).pow(2).mean(dim=(2, 3, 4)).sqrt()  # (N, L)
    return {"appearance found": found,
            "psnr": [fidelity.psnr(c.video.numpy(), v) for c, v in zip(clips, videos)],
            "last frame psnr": [fidelity.psnr(c.video[-1].numpy(), v[-1]) for c, v in zip(clips, videos)],
            "latent rmse": err.mean(dim=1).tolist(), "latent rmse per frame": err.mean(dim=0).tolist()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", action="append", required=True, help="NAME=FOLDER (a base pipeline folder)")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--sigmas", type=float, nargs="+", default=list(SIGMAS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "results" / "restart_noise.json"))
    ap.add_argument("--merge", action="store_true", help="keep the systems already in --out")
    ap.add_argument("--reference", default="plain",
                    help="the base these systems are paired with clip by clip where they share its autoencoder "
                         "(chapter 5's gaps; a base retrained on another machine needs its own reference)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    seed = 12345
    clips = [make_clip(seed + i, 8, 64, 64, kind="object") for i in range(a.clips)]
    brushes = [evaluate.object_trajectory(c)[1] for c in clips]
    vids = [c.video.numpy() for c in clips]
    seeds = [seed + 1000 + i for i in range(a.clips)]
    out = {"what": __doc__.split("\n\n")[0], "machine": speed.machine_summary(), "clips": a.clips, "seed": seed,
           "sigmas": a.sigmas, "deltas": list(DELTAS), "sampler steps": 15,
           "real found": [evaluate.object_appearance_motion(v, b)[1] for v, b in zip(vids, brushes)], "systems": {}}
    if a.merge and Path(a.out).is_file():
        old = json.loads(Path(a.out).read_text())
        if (old["clips"], old["seed"], old["sigmas"]) != (a.clips, seed, a.sigmas):
            raise SystemExit(f"--merge: {a.out} was measured on other clips or levels")
        out["systems"] = runs.merged_systems(old)
        out["machine"] = old["machine"]
    names = [text.partition("=")[0] for text in a.system]
    if a.reference not in {*out["systems"], *names}:
        raise SystemExit(f"--reference {a.reference!r} is not a base of this study: expected one of "
                         f"{sorted({*out['systems'], *names})}")
    for text in a.system:
        name, _, folder = text.partition("=")
        base = shipped.load_shipped_base(Path(folder))
        trained = json.loads((Path(folder) / "provenance.json").read_text())["config"]
        lat = torch.stack([restart.clip_latents(base.vae, v) for v in vids])  # (N, L, C, h, w)
        copy = (lat[:, :1] - lat).pow(2).mean(dim=(2, 3, 4)).sqrt()
        trained = {k: trained.get(k) for k in ("max_steps", "p_mean", "vae_kind", "unet_channels", "unet_attention")}
        res = {"folder": folder, "trained": trained, "machine": speed.machine_summary(), "reference": a.reference,
               "unet parameters": sum(p.numel() for p in base.unet.parameters()),
               "latent rms": float(lat.pow(2).mean().sqrt()),
               "copy frame 1": {"latent rmse": copy.mean(dim=1).tolist(),
                                "latent rmse per frame": copy.mean(dim=0).tolist()},
               "decoder alone": {}, "restart": {}}
        g = torch.Generator().manual_seed(seed)
        for d in DELTAS:
            noisy = lat + d * torch.randn(lat.shape, generator=g)
            res["decoder alone"][str(d)] = measure(restart.decoded_videos(base, noisy), noisy, clips, lat, brushes)
            print(f"{name:>10s}  decoder alone, latent noise {d:5.2f}: found "
                  f"{100 * np.mean(res['decoder alone'][str(d)]['appearance found']):5.1f} %", flush=True)
        for s in a.sigmas:
            t = time.perf_counter()
            videos, finals = restart.restarted_videos(base, vids, seeds, s)
            r = res["restart"][str(s)] = measure(videos, finals, clips, lat, brushes)
            r["seconds"] = time.perf_counter() - t
            print(f"{name:>10s}  restart from sigma {s:7.2f}: found {100 * np.mean(r['appearance found']):5.1f} %  "
                  f"PSNR {np.mean(r['psnr']):5.2f} dB  latent RMSE {np.mean(r['latent rmse']):.3f}  "
                  f"({r['seconds']:.0f} s)", flush=True)
        out["systems"][name] = res
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        runs.write_json(a.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
