"""How much does a ReMoCo controller's steering vary with its training seed alone? Chapter 5's distance protocol for
controllers trained with one recipe and different seeds, each beside its own base.

For each ``--system NAME=BASE:CONTROLLER`` (a ``toy-base`` pipeline folder and a controller folder with
``controller/config.json``): the 24 held-out object clips of chapter 5 (seed 20000, 15 sampler steps, k = 2, the drag
filling the brush, :func:`remoco.evaluate.trajectory_following`), the mean distance of the tracked start point to the
drawn path, the base's on the same clips and the ratio of the two. Per-clip distances go to ``--out``.

    .venv/bin/python benchmarks/controller_seeds.py --system s0=data/checkpoints/toy-base:data/checkpoints/remoco-toy \\
        --system s1=data/checkpoints/toy-base:runs/seeds/remoco-s1/controller/final --out results/controller_seeds.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from remoco import evaluate, shipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--system", action="append", required=True, help="NAME=BASE_FOLDER:CONTROLLER_FOLDER")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = dict(clips=args.clips, seed=20000, k=2, num_inference_steps=15, trajectory_fill="brush",
               threads=args.threads, machine=platform.processor() or platform.machine(), systems={}, bases={})
    for spec in args.system:
        name, folders = spec.split("=", 1)
        base_dir, ctrl_dir = folders.split(":", 1)
        t0 = time.perf_counter()
        if base_dir not in out["bases"]:
            base = shipped.load_shipped_base(base_dir)
            res = evaluate.trajectory_following({"base": base}, num_clips=args.clips, seed=20000, k=2,
                                                num_inference_steps=15, trajectory_fill="brush")
            out["bases"][base_dir] = dict(distances=res["base"], data=res["data"])
        pipe = shipped.load_shipped_pipeline("remoco", base_path=base_dir, controller_path=ctrl_dir)
        res = evaluate.trajectory_following({"remoco": pipe}, num_clips=args.clips, seed=20000, k=2,
                                            num_inference_steps=15, trajectory_fill="brush")
        b = np.asarray(out["bases"][base_dir]["distances"])
        d = np.asarray(res["remoco"])
        out["systems"][name] = dict(base=base_dir, controller=ctrl_dir, distances=d.tolist(), mean=float(d.mean()),
                                    base_mean=float(b.mean()), ratio=float(d.mean() / b.mean()),
                                    closer=float(np.mean(d < b)), seconds=time.perf_counter() - t0)
        print(f"{name}: {d.mean():.2f} px vs base {b.mean():.2f} px, ratio {d.mean() / b.mean():.2f}, "
              f"closer on {100 * np.mean(d < b):.0f} %", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
