"""Which training choices make the toy base render motion? (chapter 5's base-motion measurement)

Trains each ``--run NAME:field=value,...`` toy 3D-UNet (the ``toy-cpu`` preset's ``unet`` stage plus the
overrides; resumable, one folder per run under ``--work``) on the VAE of ``--base`` (copied into the run folder,
so only the UNet trains), then measures on ``--clips`` held-out object clips (seeds 30000+, chapter 5's) how far
the moving object has moved by the last frame in the real clip and in the video each model generates from the
same first frame (``evaluate.generated_motion``, OpenCV DIS flow). ``--base`` itself is measured too; ``ratio`` =
generated / real displacement.

    .venv/bin/python benchmarks/base_levers.py --base data/checkpoints/toy-base \\
        --run ref:max_steps=1200 --run bs16:max_steps=1200,batch_size=16 --out /tmp/base_levers.json

Prints one row per model and writes the per-clip displacements and configs to ``--out``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from control_levers import add_sampling_arguments, parse_run

from remoco import config, evaluate, models, runs
from remoco.train import train


def use_vae(vae: Path, run_dir: Path) -> None:
    """Put the finished VAE folder ``vae`` where the ``unet`` stage looks for one (``run_dir/vae/final``)."""
    final = run_dir / "vae" / "final"
    if (final / "provenance.json").is_file():
        return
    if not (vae / "config.json").is_file():
        raise FileNotFoundError(f"vae={str(vae)!r} has no config.json: expected a finished toy VAE folder")
    shutil.copytree(vae, final, dirs_exist_ok=True)
    runs.write_json(final / "provenance.json", {"copied_from": str(vae)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="base pipeline folder (its VAE is reused, the base is measured)")
    ap.add_argument("--run", action="append", default=[], help="NAME:field=value,... toy UNet to train")
    ap.add_argument("--work", default="runs/base_levers")
    ap.add_argument("--clips", type=int, default=12)
    add_sampling_arguments(ap, out="results/base_levers.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = Path(args.base)
    pipes, configs = {}, {}
    for text in args.run:
        name, over = parse_run(text)
        run_dir = Path(args.work) / name
        use_vae(base / "vae", run_dir)
        cfg = config.preset_config("toy-cpu", "unet", out_dir=str(run_dir), progress=True, **over)
        res = train(cfg)
        if res.final_path is None:
            raise SystemExit(f"run {name} did not finish")
        pipes[name] = models.load_svd_pipeline(str(res.final_path))
        configs[name] = dict(over, train_seconds=res.seconds, final_loss=res.final_loss)
    pipes["base"] = models.load_svd_pipeline(str(base))
    for p in pipes.values():
        p.set_progress_bar_config(disable=True)
    t0 = time.perf_counter()
    mot = evaluate.generated_motion(pipes, num_clips=args.clips, seed=30000, num_inference_steps=args.steps,
                                    motion_bucket_id=args.bucket)
    real = float(np.mean(mot["data"]))
    print(f"{'real clips':>16s}  {real:6.2f} px")
    for name in pipes:
        print(f"{name:>16s}  {np.mean(mot[name]):6.2f} px   ratio {mot['ratio'][name]:.2f}")
    out = dict(ratio=mot["ratio"], displacement={k: [float(x) for x in v] for k, v in mot.items() if k != "ratio"},
               configs=configs, clips=args.clips, seed=30000, base=str(base), sampler_steps=args.steps,
               motion_bucket_id=args.bucket, flow="OpenCV DIS", eval_seconds=time.perf_counter() - t0,
               provenance=runs.provenance(config.TrainConfig()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    runs.write_json(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
