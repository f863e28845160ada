"""Why does the toy VAE learn so slowly? A probe of one suspect: its GroupNorm layers.

diffusers' ``AutoencoderKLTemporalDecoder`` normalises with 32 groups everywhere (not a config option). At SVD's
widths (128-512 channels) a group holds 4-16 channels; at the toy's 32 channels every group is one channel, i.e. an
instance norm that removes each channel's mean and scale per frame — the information a reconstruction needs most
(colour, brightness) then survives only through the residual paths. This probe trains the toy preset's VAE stage
twice from the same seed on the same batches — as diffusers builds it, and with every GroupNorm of the VAE given
``channels // 4`` groups instead (4 channels per group, SVD's smallest: ``vae_norm_channels=4``, the
:class:`remoco.toy_vae.ToyAutoencoderKLTemporalDecoder` this probe led to) — and scores both on the held-out clips of
:func:`remoco.fidelity.held_out_clips` every ``--every`` steps.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/vae_norm_probe.py --steps 400 --every 100
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from remoco import config, fidelity, models, speed
from remoco import train as T
from remoco.clips import StepBatchSampler, TrainClips, collate_clips
from remoco.objective import to_pixels
from remoco.runs import STAGE_ID, seed_int, step_generator

REPO = Path(__file__).resolve().parent.parent


def run(cfg: config.TrainConfig, patched: bool, steps: int, every: int, clips: dict) -> list[dict]:
    torch.manual_seed(0)
    vae = models.build_toy_components(cfg.seed, vae_config=T.toy_vae_config_of(
        cfg.replace(vae_norm_channels=4 if patched else None)))["vae"]
    changed = sum(isinstance(m, torch.nn.GroupNorm) and m.num_groups != 32 for m in vae.modules())
    vae.train()
    module = T.VAEModule(vae)
    opt = torch.optim.AdamW(vae.parameters(), cfg.vae_lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay,
                            eps=cfg.adam_eps)
    ds = TrainClips(cfg, with_flow=False)
    sampler = StepBatchSampler(len(ds), cfg.vae_batch_size, seed_int(cfg.seed, STAGE_ID["vae"]), 0, steps, 0, 1)
    loader = iter(torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate_clips))
    points, t0 = [], time.perf_counter()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = T.lr_at(cfg, step, steps, cfg.vae_lr)
        gen = step_generator(cfg.seed, "vae", step, 0, 0)
        x = T.vae_training_frames(cfg, to_pixels(next(loader)["video"]), gen)
        L = x.shape[1]
        x = x.flatten(0, 1)
        eps = torch.zeros(x.shape[0], vae.config.latent_channels, x.shape[-2] // 4, x.shape[-1] // 4)
        rec, _ = module(x, L, eps)
        loss = T.vae_reconstruction_loss(cfg, rec.float(), x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), cfg.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (step + 1) % every == 0:
            train_s = time.perf_counter() - t0
            vae.eval()
            r = fidelity.vae_fidelity(vae, clips)
            vae.train()
            points.append({"step": step + 1, "train minutes": train_s / 60, "groupnorms changed": changed,
                           **{f"{k} psnr": float(np.mean(v["psnr"])) for k, v in r.items()}})
            print(("patched" if patched else "as shipped"), points[-1], flush=True)
            t0 = time.perf_counter() - train_s
    return points


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--set", nargs="+", action="extend", default=[],
                    help="FIELD=VALUE overrides of the VAE stage (YAML); repeatable")
    ap.add_argument("--out", default=str(REPO / "results" / "vae_norm_probe.json"))
    a = ap.parse_args(argv)
    import yaml

    over = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)}
    cfg = config.preset_config("toy-cpu", "vae", out_dir="unused", progress=False, **over)
    clips = fidelity.held_out_clips()
    res = {"what": __doc__.split("\n\n")[0], "config": over, "machine": speed.machine_summary(),
           "as shipped": run(cfg, False, a.steps, a.every, clips), "4 channels per group": run(cfg, True, a.steps,
                                                                                              a.every, clips)}
    Path(a.out).write_text(json.dumps(res, indent=1))
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
