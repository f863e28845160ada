"""Time overhead of ReMoCoPipeline over diffusers' plain StableVideoDiffusionPipeline (toy preset).

Both pipelines share the same toy components (UNet, VAE, CLIP, scheduler) built from the same seed; the ReMoCo
one adds the motion controller (motion encoder + Eq. 8 modulation at every UNet scale, via forward hooks).
Same image, same number of steps, same generator seed; runs alternate between the two pipelines and the
median wall time per clip is reported. Target: <= 10 % overhead.

    python benchmarks/bench_pipeline.py --runs 5 --steps 25
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import PIL.Image
import torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--injection", default="modulation", choices=["modulation", "concat", "sum"])
    ap.add_argument("--sites", default="paper", choices=["paper", "release"])
    ap.add_argument("--lora-rank", type=int, default=0, help="also add LoRA (rank) on attention; 0 = none")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from remoco import lora as LR
    from remoco import models
    from remoco.pipeline import ReMoCoPipeline

    base = models.build_toy_pipeline(seed=0)
    remoco = ReMoCoPipeline.from_base(models.build_toy_pipeline(seed=0), injection=args.injection, sites=args.sites)
    if args.lora_rank:
        LR.add_lora(remoco.unet, rank=args.lora_rank)
    for p in (base, remoco):
        p.set_progress_bar_config(disable=True)

    rng = np.random.default_rng(0)
    image = PIL.Image.fromarray((rng.random((args.size, args.size, 3)) * 255).astype("uint8"))
    L, H, W = args.frames, args.size, args.size
    rt = torch.zeros(L, H, W, 2)
    rt[:, H // 4: H // 2, W // 4: W // 2, 0] = torch.linspace(0, W / 4, L).view(L, 1, 1)
    mm = torch.zeros(L, H, W, 1, dtype=torch.bool)
    mm[:, H // 8: H // 2 + H // 8, W // 8: W // 2 + W // 8] = True
    kw = dict(num_inference_steps=args.steps, output_type="pt")

    def run_base():
        return base(image, height=H, width=W, num_frames=L, generator=torch.Generator().manual_seed(0), **kw).frames

    def run_remoco():
        return remoco(image, region_trajectory=rt, motion_mask=mm, generator=torch.Generator().manual_seed(0),
                      **kw).frames

    a, b = run_base(), run_remoco()  # warm-up (kernel selection, lazy imports)
    same = torch.equal(a, b)
    times = {"svd": [], "remoco": []}
    for _ in range(args.runs):
        for name, fn in (("svd", run_base), ("remoco", run_remoco)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    over = 100.0 * (med["remoco"] / med["svd"] - 1.0)
    print(f"toy preset: {L} frames, {H}x{W} px, {args.steps} steps, {args.runs} runs each, "
          f"{torch.get_num_threads()} thread(s), injection={args.injection}, sites={args.sites}, "
          f"lora_rank={args.lora_rank}")
    print(f"StableVideoDiffusionPipeline  median {med['svd']:.3f} s/clip  (runs: "
          + ", ".join(f"{t:.2f}" for t in times["svd"]) + ")")
    print(f"ReMoCoPipeline                median {med['remoco']:.3f} s/clip  (runs: "
          + ", ".join(f"{t:.2f}" for t in times["remoco"]) + ")")
    print(f"overhead: {over:+.1f} % (target <= 10 %)")
    if not args.lora_rank:
        print(f"zero-initialised ReMoCo output identical to SVD: {same}")
    return med, over


if __name__ == "__main__":
    main()
