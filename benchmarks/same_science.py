"""Does the faster training path train to the same place? Side by side from the same seed at the shipped recipe.

Trains the shipped ReMoCo controller's recipe (``data/checkpoints/remoco-toy/config.yaml``, on the shipped base) for
``--steps`` optimizer steps on today's path (:data:`remoco.config.BASELINE_PATH`: fp32, foreach AdamW) with seeds
0, 1, 2 and on the faster path (:data:`remoco.config.FAST_PATH`: bf16 where native, fused AdamW) with seed 0 (and
``--fast-seeds`` more), two processes of one thread at a time, then

* compares the loss curves: the fast run's loss, averaged over windows of ``--window`` steps, against the range of
  the three baseline seeds in the same windows (how many windows fall inside, and by how much the others miss);
* samples chapter 5's 24 held-out object clips (seeds 20000+, brush fill, 15 sampler steps) with every trained
  controller and the base, and reports each one's mean distance to the drawn path and its ratio to the base's
  (OpenCV DIS flow tracker; the paper uses CoTracker).

Writes ``--out`` (default ``results/speed_same_science.json``). Resumable: finished runs in ``--work`` are reused.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/same_science.py --steps 600 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from remoco import config, evaluate, runs, shipped

REPO = Path(__file__).resolve().parent.parent


def recipe(path: dict, seed: int, steps: int, work: Path, name: str) -> config.TrainConfig:
    stored = config.TrainConfig.from_yaml(shipped.SHIPPED_DIR / "remoco-toy" / "config.yaml")
    return stored.replace(out_dir=str(work / name), seed=seed, max_steps=steps, progress=False,
                          base=str(shipped.SHIPPED_DIR / "toy-base"), **path)


def window_means(values: np.ndarray, window: int) -> np.ndarray:
    n = len(values) // window
    return values[: n * window].reshape(n, window).mean(axis=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--fast-seeds", type=int, nargs="*", default=[0])
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--work", default="runs/same_science")
    ap.add_argument("--out", default=str(REPO / "results" / "speed_same_science.json"))
    a = ap.parse_args(argv)
    work = Path(a.work)
    cfgs = {f"baseline-seed{s}": recipe(config.BASELINE_PATH, s, a.steps, work, f"baseline-seed{s}") for s in (0, 1, 2)}
    cfgs.update({f"fast-seed{s}": recipe(config.FAST_PATH, s, a.steps, work, f"fast-seed{s}") for s in a.fast_seeds})
    t0 = time.perf_counter()
    torch.set_num_threads(a.jobs)  # run_jobs gives each of the `jobs` processes one thread
    trained = shipped.run_jobs(shipped.train_in_worker, {n: (c,) for n, c in cfgs.items()}, jobs=a.jobs)
    train_wall = time.perf_counter() - t0
    logs = {n: runs.read_log(Path(c.out_dir) / "controller" / "log.csv") for n, c in cfgs.items()}
    curves = {n: window_means(np.asarray(d["loss"], float), a.window) for n, d in logs.items()}
    base = np.stack([curves[f"baseline-seed{s}"] for s in (0, 1, 2)])
    lo, hi = base.min(axis=0), base.max(axis=0)
    loss_check = {}
    for n in (k for k in curves if k.startswith("fast")):
        c = curves[n]
        outside = np.maximum(lo - c, 0) + np.maximum(c - hi, 0)
        loss_check[n] = {"windows": int(len(c)), "inside_baseline_range": int((outside == 0).sum()),
                         "largest_miss": float(outside.max()), "baseline_range_mean_width": float((hi - lo).mean())}
        same_seed = f"baseline-{n.split('-', 1)[1]}"
        if same_seed in curves:  # the same seed on today's path: same batches, noise levels and noises
            loss_check[n]["largest_difference_to_same_seed"] = float(np.abs(c - curves[same_seed]).max())
    torch.set_num_threads(2)
    pipes = {"toy SVD": shipped.load_shipped_base()}
    for n, c in cfgs.items():
        pipes[n] = shipped.load_shipped_pipeline("remoco", controller_path=Path(trained[n]["final_path"]))
    t1 = time.perf_counter()
    res = evaluate.trajectory_following(pipes, num_clips=a.clips, seed=evaluate.CHAPTER5_CLIP_SEED,
                                        k=cfgs["fast-seed0"].k, num_inference_steps=15, trajectory_fill="brush")
    rows = evaluate.following_table({k: v for k, v in res.items() if k in pipes or k == "data"}, "toy SVD")
    out = {
        "what": "controller recipe of data/checkpoints/remoco-toy at --steps steps, today's path vs the faster one",
        "steps": a.steps, "window": a.window, "paths": {"baseline": config.BASELINE_PATH, "fast": config.FAST_PATH},
        "seconds_per_step": {n: float(np.median(np.diff(np.asarray(d["seconds"], float)))) for n, d in logs.items()},
        "train_wall_s": train_wall, "eval_wall_s": time.perf_counter() - t1,
        "loss_windows": {n: [float(x) for x in c] for n, c in curves.items()},
        "loss_check": loss_check,
        "following": rows, "per_clip": {k: [float(x) for x in v] for k, v in res.items() if k in pipes or k == "data"},
        "tracker": "OpenCV DIS flow (paper: CoTracker)", "clips": a.clips, "machine": runs.provenance(
            cfgs["fast-seed0"])["machine"],
    }
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    for n, r in loss_check.items():
        print(f"{n}: {r['inside_baseline_range']} of {r['windows']} loss windows inside the baseline seeds' range "
              f"(largest miss {r['largest_miss']:.5f}; range width {r['baseline_range_mean_width']:.4f}); largest "
              f"difference to the same seed on today's path {r.get('largest_difference_to_same_seed', np.nan):.5f}")
    for r in rows:
        print(f"{r['system']:16s} {r['mean distance (px)']:6.2f} px  ratio {r['ratio to toy SVD']:.2f}  "
              f"closer {r['closer than toy SVD (%)']:.0f} %")
    print(f"training {train_wall / 60:.1f} min, evaluation {out['eval_wall_s'] / 60:.1f} min -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
