"""Does a toy autoencoder reconstruct the photographs it was trained without worse than those it saw?

For each ``--vae NAME=FOLDER`` (a saved VAE folder: ``runs/X/vae/final`` or a base's ``toy-base/vae``): PSNR and SSIM
of its reconstructions (:func:`remoco.fidelity.vae_fidelity`, all 8 frames) of chapter 5's held-out object clips
(:func:`remoco.evaluate.following_clips`, seeds 20000 + i, the clips ``benchmarks/controller_seeds.py`` scores),
split into the clips with a photograph that ``photos="train"`` holds out (``data.HELD_OUT_PHOTOS``: the rocket, the
astronaut) and the others. Each ``--pair A-B`` adds the paired 95 % t interval of A's PSNR minus B's on each split
(``remoco.decide``). Per-clip values go to ``--out``.

    .venv/bin/python benchmarks/vae_by_photograph.py --clips 72 --vae shipped=data/checkpoints/toy-base/vae \\
        --vae plain7=runs/bench-plain/vae/final --pair plain7-shipped --out results/vae_by_photograph.json
"""

from __future__ import annotations

import argparse
import json
import platform

import numpy as np
import torch

from remoco import data, decide, evaluate, fidelity, photos, toy_vae

SPLITS = ("with a held-out photograph", "without")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vae", action="append", required=True, help="NAME=VAE_FOLDER")
    ap.add_argument("--clips", type=int, default=72)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pair", action="append", default=[], help="A-B: paired interval of A's PSNR minus B's")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    names = [spec.split("=", 1)[0] for spec in args.vae]
    for p in args.pair:
        if len(p.split("-")) != 2 or not set(p.split("-")) <= set(names):
            ap.error(f"--pair must be A-B with A and B among the --vae names {names}, got {p!r}")
    torch.set_num_threads(args.threads)
    clips = evaluate.following_clips(args.clips, seed=evaluate.CHAPTER5_CLIP_SEED)
    held = [photos.shows_held_out(c.meta["photographs"]) for c in clips]
    sets = {SPLITS[0]: [c.video.numpy() for c, h in zip(clips, held) if h],
            SPLITS[1]: [c.video.numpy() for c, h in zip(clips, held) if not h]}
    out = dict(clips=args.clips, seed=evaluate.CHAPTER5_CLIP_SEED, threads=args.threads,
               machine=platform.processor() or platform.machine(), held_out=list(data.HELD_OUT_PHOTOS),
               photographs=[c.meta["photographs"] for c in clips], vaes={})
    for spec in args.vae:
        name, folder = spec.split("=", 1)
        with torch.no_grad():
            scores = fidelity.vae_fidelity(toy_vae.load_vae(folder).eval(), sets)
        out["vaes"][name] = dict(folder=folder, **{s: scores[s] for s in (*SPLITS, "all")})
        print(f"{name}: " + ", ".join(f"{s} ({len(scores[s]['psnr'])}) {np.mean(scores[s]['psnr']):.2f} dB / SSIM "
                                      f"{np.mean(scores[s]['ssim']):.3f}" for s in SPLITS), flush=True)
    for p in args.pair:
        a, b = p.split("-")
        for s in (s for s in SPLITS if len(sets[s]) >= 2):
            iv = decide.t_interval(np.subtract(out["vaes"][a][s]["psnr"], out["vaes"][b][s]["psnr"]))
            out.setdefault("pairs", {}).setdefault(p, {})[s] = iv
            print(f"{p}, clips {s}: {decide.interval_text(iv, digits=2)} dB", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
