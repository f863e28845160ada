"""Is the toy VAE's ceiling its temporal decoder, or its latent size? Same batches, same loss, one variable each.

Trains from scratch, one thread each, on identical batches drawn from the toy preset's training clips (4 clips x 2
consecutive full 64-px frames per step, L1 + MSE, AdamW lr 1e-3 constant, no weight decay, widths 32/64/64, one
layer per block, 4 channels per GroupNorm group in the toy classes):

- ``temporal``: SVD's temporal-decoder VAE as the toy builds it
  (:class:`remoco.toy_vae.ToyAutoencoderKLTemporalDecoder`, its last temporal conv started at the identity,
  :func:`remoco.models.init_temporal_decoder_identity`);
- ``frame``: diffusers' image :class:`~diffusers.AutoencoderKL` (each frame decoded alone, as Stability's
  ``svd_image_decoder`` release; 8 GroupNorm groups in every layer), 0.95 M parameters;
- ``--latent-channels 8 / 16`` beside the toy's 4 (SVD's) for the temporal one.

Every 200 steps each VAE reconstructs the held-out clips of :func:`remoco.fidelity.held_out_clips` (posterior mean)
and the mean PSNR per set is printed and written to ``--out`` (a list of points per run name).

    .venv/bin/python benchmarks/vae_arch_probe.py temporal --steps 600 --out /tmp/temporal.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from remoco import config, fidelity, speed, toy_vae
from remoco.clips import TrainClips
from remoco.models import init_temporal_decoder_identity
from remoco.objective import to_pixels
from remoco.train import vae_training_frames

CHANNELS = (32, 64, 64)


def build(kind: str, latent_channels: int):
    torch.manual_seed(0)
    if kind == "temporal":
        vae = toy_vae.ToyAutoencoderKLTemporalDecoder(
            down_block_types=("DownEncoderBlock2D",) * 3, block_out_channels=CHANNELS, layers_per_block=1,
            latent_channels=latent_channels, sample_size=64, norm_channels_per_group=4)
        init_temporal_decoder_identity(vae)
        return vae
    from diffusers import AutoencoderKL

    return AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                         block_out_channels=CHANNELS, layers_per_block=1, latent_channels=latent_channels,
                         sample_size=64, norm_num_groups=8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=("temporal", "frame"))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=200)
    ap.add_argument("--latent-channels", type=int, default=4)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = config.preset_config("toy-cpu", "vae", vae_channels=CHANNELS, vae_crop=None, vae_batch_size=4,
                               vae_frames=2, vae_loss="l1+mse", vae_norm_channels=4, out_dir="/tmp/vae_arch_probe")
    vae = build(a.kind, a.latent_channels)
    ds = TrainClips(cfg, with_flow=False)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)
    clips = fidelity.held_out_clips()
    points, t0 = [], time.perf_counter()
    for step in range(1, a.steps + 1):
        idx = torch.randint(0, len(ds), (4,), generator=gen).tolist()
        x = vae_training_frames(cfg, to_pixels(torch.stack([ds[i]["video"] for i in idx])), gen)
        n = x.shape[1]
        x = x.flatten(0, 1)
        rec = toy_vae.decode_frames(vae, vae.encode(x).latent_dist.mean, n)
        loss = torch.nn.functional.mse_loss(rec, x) + torch.nn.functional.l1_loss(rec, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % a.every == 0 or step == a.steps:
            vae.eval()
            with torch.no_grad():
                r = fidelity.vae_fidelity(vae, clips)
            vae.train()
            points.append({"step": step, "minutes": (time.perf_counter() - t0) / 60,
                           **{k: float(np.mean(v["psnr"])) for k, v in r.items()}})
            print(a.kind, a.latent_channels, points[-1], flush=True)
    out = {"kind": a.kind, "latent_channels": a.latent_channels,
           "parameters_millions": sum(p.numel() for p in vae.parameters()) / 1e6,
           "machine": speed.machine_summary(), "points": points}
    Path(a.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
