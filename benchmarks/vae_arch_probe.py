"""Is the toy VAE's ceiling its temporal decoder, or its latent size? Same batches, same loss, one variable each.

Trains from scratch, one thread each, on identical batches drawn from the toy preset's training clips (4 clips x 2
consecutive full 64-px frames per step, L1 + MSE, AdamW lr 1e-3 constant, no weight decay, widths 32/64/64, one
layer per block, 4 channels per GroupNorm group in the toy classes):

- ``temporal``: SVD's temporal-decoder VAE as the toy builds it
  (:class:`remoco.toy_vae.ToyAutoencoderKLTemporalDecoder`, its last temporal conv started at the identity,
  :func:`remoco.models.init_temporal_decoder_identity`);
- ``frame``: diffusers' image :class:`~diffusers.AutoencoderKL` (each frame decoded alone, as Stability's
  ``svd_image_decoder`` release; 8 GroupNorm groups in every layer), 0.95 M parameters;
- ``--latent-channels 8 / 16`` beside the toy's 4 (SVD's) for the temporal one;
- ``plain``: :class:`remoco.toy_vae.ToyAutoencoder` (no normalisation, no attention, 0.78 M parameters) and
  ``tiny``: diffusers' :class:`~diffusers.AutoencoderTiny` (64/64/64: it needs equal widths), with ``--no-norm`` /
  ``--no-attention`` / ``--layers`` to take the diffusers VAEs apart, and ``--clips`` / ``--frames`` for the batch
  (``results/vae_plain_probe.json``: 8 clips x 1 frame).

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


def build(kind: str, latent_channels: int, attention: bool = True, layers: int = 1):
    torch.manual_seed(0)
    if kind == "plain":
        return toy_vae.ToyAutoencoder(block_out_channels=CHANNELS, layers_per_block=2, latent_channels=latent_channels)
    if kind == "tiny":
        from diffusers import AutoencoderTiny

        class _Tiny(AutoencoderTiny):  # the posterior-mean interface the scoring reads
            def encode(self, x):
                z = super().encode(x).latents
                return type("Out", (), {"latent_dist": type("D", (), {"mean": z, "mode": staticmethod(lambda: z)})})

        return _Tiny(encoder_block_out_channels=(64, 64, 64), decoder_block_out_channels=(64, 64, 64),
                     num_encoder_blocks=(1, 2, 2), num_decoder_blocks=(2, 2, 1), latent_channels=latent_channels,
                     upsampling_scaling_factor=2)
    if kind == "temporal":
        vae = toy_vae.ToyAutoencoderKLTemporalDecoder(
            down_block_types=("DownEncoderBlock2D",) * 3, block_out_channels=CHANNELS, layers_per_block=layers,
            latent_channels=latent_channels, sample_size=64, norm_channels_per_group=4)
        init_temporal_decoder_identity(vae)
        return vae
    from diffusers import AutoencoderKL

    return AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                         block_out_channels=CHANNELS, layers_per_block=layers, latent_channels=latent_channels,
                         sample_size=64, norm_num_groups=8, mid_block_add_attention=attention)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=("temporal", "frame", "plain", "tiny"))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=200)
    ap.add_argument("--latent-channels", type=int, default=4)
    ap.add_argument("--clips", type=int, default=4, help="clips per step")
    ap.add_argument("--frames", type=int, default=2, help="consecutive frames of each clip per step")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layers", type=int, default=1, help="temporal / frame: layers per block")
    ap.add_argument("--no-norm", action="store_true", help="GroupNorm layers replaced by the identity")
    ap.add_argument("--no-attention", action="store_true", help="frame: no mid-block attention")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = config.preset_config("toy-cpu", "vae", vae_channels=CHANNELS, vae_crop=None, vae_batch_size=a.clips,
                               vae_frames=a.frames, vae_loss="l1+mse",
                               out_dir="/tmp/vae_arch_probe")
    vae = build(a.kind, a.latent_channels, attention=not a.no_attention, layers=a.layers)
    if a.no_norm:
        toy_vae.replace_norms(vae, lambda norm, name: torch.nn.Identity())
    ds = TrainClips(cfg, with_flow=False)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)
    clips = fidelity.held_out_clips()
    points, t0 = [], time.perf_counter()
    for step in range(1, a.steps + 1):
        idx = torch.randint(0, len(ds), (a.clips,), generator=gen).tolist()
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
