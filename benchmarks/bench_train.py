"""Training throughput at the toy preset: seconds per optimizer step and samples (clips) per second for the
VAE, the base UNet and the ReMoCo controller, peak RSS, and (``--full``) the wall time of a full toy training
(base + default controller, what ``remoco ship`` does).

    .venv/bin/python benchmarks/bench_train.py [--steps 20] [--threads 2] [--full]

Timings on a shared machine are pessimistic (other processes compete for the cores).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from remoco import config, runs
from remoco import shipped as S
from remoco import train as T


def bench_stage(stage: str, steps: int, root: Path, base: str | None = None) -> dict:
    over = dict(out_dir=str(root / stage), progress=False, checkpoint_every=10_000, warmup_steps=0)
    if stage == "vae":
        cfg = config.preset_config("toy-cpu", "vae", vae_steps=steps, **over)
        clips = cfg.vae_batch_size
    else:
        cfg = config.preset_config("toy-cpu", "unet" if stage == "unet" else "controller", max_steps=steps, vae_steps=0,
                              **({"base": base} if base else {}), **over)
        clips = cfg.batch_size * cfg.grad_accum
    t0 = time.perf_counter()
    res = T.train(cfg)
    wall = time.perf_counter() - t0
    log = runs.read_log(res.logs[stage])
    # drop the first step (allocations, lazy imports) from the per-step figure
    secs = log["seconds"]
    per_step = (secs[-1] - secs[0]) / max(1, len(secs) - 1)
    return {"stage": stage, "steps": steps, "clips_per_step": clips, "s_per_step": per_step,
            "samples_per_s": clips / per_step, "wall_s": wall, "final_loss": float(log["loss"][-1]),
            "final_path": str(res.final_path)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--full", action="store_true", help="also time a full toy training (base + controller)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"torch threads: {torch.get_num_threads()}  (shared machine: timings are pessimistic)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows.append(bench_stage("vae", a.steps, root))
        unet = bench_stage("unet", a.steps, root)
        rows.append(unet)
        # the controller on the base just trained (weights do not matter for speed)
        rows.append(bench_stage("controller", a.steps, root, base=unet["final_path"]))
        print(f"{'stage':<11}{'clips/step':>11}{'s/step':>9}{'clips/s':>9}{'wall s':>9}")
        for r in rows:
            print(f"{r['stage']:<11}{r['clips_per_step']:>11}{r['s_per_step']:>9.3f}{r['samples_per_s']:>9.2f}"
                  f"{r['wall_s']:>9.1f}")
        out = {"stages": rows, "peak_rss_mb": runs.peak_rss_mb()}
        if a.full:
            t0 = time.perf_counter()
            summary = S.ship(root / "ship", root / "shipped", progress=False)
            out["full"] = {"wall_s": time.perf_counter() - t0, **summary}
            print(f"full toy training (base + controller): {out['full']['wall_s']:.0f} s")
        out["peak_rss_mb"] = runs.peak_rss_mb()
    print(f"peak RSS: {out['peak_rss_mb']:.0f} MiB")
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
