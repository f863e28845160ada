"""Which toy VAE keeps the image? A small measured sweep of the toy VAE's recipe, PSNR against training minutes.

Each variant is the toy preset's VAE stage (``remoco train --stage vae``) with a few fields changed — width and
depth of the encoder/decoder, the reconstruction loss, what a batch holds (crops or full frames, how many clips
and how many consecutive frames of each) — trained ``--steps`` optimizer steps (cosine schedule, as the preset)
two runs at a time, one thread each. Every ``--every`` steps a checkpoint is kept; afterwards each checkpoint's
VAE reconstructs the held-out clips of :func:`remoco.fidelity.held_out_clips` (unseen synthetic object clips, both
benches' scenes, every packaged photograph as a still) and its PSNR / SSIM is recorded beside the training
seconds the log gives for that step. The latent channels stay 4: the toy UNet's input layout (SVD's 4 + 4
channels) is kept.

Writes ``--out`` (default ``results/vae_sweep.json``), which chapter 1 plots. Resumable: finished runs in
``--work`` are reused. Stored beside it: ``results/vae_sweep_long.json`` (two recipes, 2,000 steps) and
``results/vae_sweep_4x2.json`` (the wide recipe on 4 clips x 2 frames per step, 4 vs 32 channels per GroupNorm group,
600 steps).

    .venv/bin/python benchmarks/vae_sweep.py --steps 1200 --every 300 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from remoco import config, fidelity, runs, shipped, speed, train

REPO = Path(__file__).resolve().parent.parent

FIRST = {"vae_channels": (32, 32, 32), "vae_layers_per_block": 1, "vae_crop": 32, "vae_batch_size": 2,
         "vae_frames": None, "vae_loss": "mse", "vae_norm_channels": None}
WIDE = {**FIRST, "vae_channels": (32, 64, 64), "vae_crop": None}
#: name -> (what it is, TrainConfig overrides of the toy preset's VAE stage: every swept field is set, so a variant
#: does not change when the preset does)
VARIANTS = {
    "first toy VAE": ("32/32/32, 32-px crops, 2 clips x 8 frames, MSE (the first shipped recipe)", FIRST),
    "wide, 1x8, L1+MSE": ("32/64/64, full frames, 1 clip x 8 frames, L1 + MSE",
                          {**WIDE, "vae_batch_size": 1, "vae_loss": "l1+mse"}),
    "wide, 2x4, L1+MSE": ("32/64/64, full frames, 2 clips x 4 frames, L1 + MSE",
                          {**WIDE, "vae_batch_size": 2, "vae_frames": 4, "vae_loss": "l1+mse"}),
    "first toy VAE, 4 ch/group": ("the first recipe with 4 channels per GroupNorm group (toy_vae)",
                                  {**FIRST, "vae_norm_channels": 4}),
    "wide, 2x4, L1+MSE, 4 ch/group": ("32/64/64, full frames, 2 clips x 4 frames, L1 + MSE, 4 channels per group",
                                      {**WIDE, "vae_batch_size": 2, "vae_frames": 4, "vae_loss": "l1+mse",
                                       "vae_norm_channels": 4}),
    "wide, 4x2, L1+MSE, 4 ch/group": ("32/64/64, full frames, 4 clips x 2 frames, L1 + MSE, 4 channels per group",
                                      {**WIDE, "vae_batch_size": 4, "vae_frames": 2, "vae_loss": "l1+mse",
                                       "vae_norm_channels": 4}),
    "wide, 4x2, L1+MSE, 32 ch/group": ("32/64/64, full frames, 4 clips x 2 frames, L1 + MSE, 32 channels per group",
                                       {**WIDE, "vae_batch_size": 4, "vae_frames": 2, "vae_loss": "l1+mse",
                                        "vae_norm_channels": 32}),
    "wide, 1x8, MSE": ("32/64/64, full frames, 1 clip x 8 frames, MSE",
                       {**WIDE, "vae_batch_size": 1, "vae_loss": "mse"}),
    "wide x2 layers, 1x8, L1+MSE": ("32/64/64 with 2 layers per block, full frames, 1 clip x 8 frames, L1 + MSE",
                                    {**WIDE, "vae_layers_per_block": 2, "vae_batch_size": 1, "vae_loss": "l1+mse"}),
}


def run_config(name: str, overrides: dict, steps: int, every: int, work: Path, photos: str) -> config.TrainConfig:
    return config.preset_config("toy-cpu", "vae", out_dir=str(work / name.replace(" ", "_").replace(",", "")),
                                vae_steps=steps, checkpoint_every=every, keep_checkpoints=1000, progress=False,
                                photos=photos, **overrides)


def curve(cfg: config.TrainConfig, clips: dict) -> list[dict]:
    """PSNR / SSIM of every kept checkpoint of a finished VAE run, with the log's training seconds."""
    log = runs.read_log(Path(cfg.out_dir) / "vae" / "log.csv")
    seconds = dict(zip(log["step"], log["seconds"]))
    points = []
    for step, path in runs.list_checkpoints(Path(cfg.out_dir) / "vae" / "checkpoints"):
        vae = train.vae_from_checkpoint(cfg, path)
        r = fidelity.vae_fidelity(vae, clips)
        points.append({"step": step, "minutes": float(seconds[step]) / 60,
                       **{f"{k} {m}": float(np.mean(v[m])) for k, v in r.items() for m in ("psnr", "ssim")},
                       "min psnr object clips": float(np.min(r["object clips"]["psnr"]))})
    return points


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--every", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--photos", default="train", choices=("bench", "train"))
    ap.add_argument("--only", nargs="*", default=None, help="variant names (default: all)")
    ap.add_argument("--work", default="runs/vae_sweep")
    ap.add_argument("--out", default=str(REPO / "results" / "vae_sweep.json"))
    a = ap.parse_args(argv)
    work = Path(a.work)
    chosen = {n: v for n, v in VARIANTS.items() if a.only is None or n in a.only}
    cfgs = {n: run_config(n, ov, a.steps, a.every, work, a.photos) for n, (_, ov) in chosen.items()}
    t0 = time.perf_counter()
    torch.set_num_threads(a.jobs)  # run_jobs gives each of the `jobs` processes one thread
    shipped.run_jobs(shipped.train_in_worker, {n: (c,) for n, c in cfgs.items()}, jobs=a.jobs)
    train_minutes = (time.perf_counter() - t0) / 60
    torch.set_num_threads(max(1, a.jobs))
    clips = fidelity.held_out_clips()
    out = {"what": __doc__.split("\n\n")[0], "steps": a.steps, "threads per run": 1, "runs at once": a.jobs,
           "photos": a.photos, "machine": speed.machine_summary(),
           "held-out clips": {k: len(v) for k, v in clips.items()}, "wall minutes (training)": train_minutes,
           "variants": {}}
    for n, cfg in cfgs.items():
        out["variants"][n] = {"description": chosen[n][0], "overrides": {k: (list(v) if isinstance(v, tuple) else v)
                                                                         for k, v in chosen[n][1].items()},
                              "curve": curve(cfg, clips)}
        last = out["variants"][n]["curve"][-1]
        print(f"{n:32s} {last['minutes']:5.1f} min  PSNR {last['all psnr']:.2f} dB "
              f"(objects {last['object clips psnr']:.2f}, bench {last['bench scenes psnr']:.2f}, "
              f"photos {last['photographs psnr']:.2f})  SSIM {last['all ssim']:.3f}", flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
