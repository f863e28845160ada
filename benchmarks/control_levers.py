"""Which training choices make the toy controller follow the drawn path? (chapter 5's lever table)

Trains each ``--run NAME:field=value,...`` controller on ``--base`` (toy-cpu controller preset with
:data:`LEVER_DEFAULTS` -- frozen base, 1,000 steps, the recipe the stored lever table varies -- plus the
overrides; resumable, one folder per run under ``--work``), and/or takes finished controller folders
(``--controller NAME=PATH``), then measures on ``--clips`` held-out object clips (seeds 20000+, disjoint from
training) the distance between the drawn path and the tracked start point (``evaluate.trajectory_following``,
OpenCV DIS tracker; paper: CoTracker) with the paper's inference input: the drawn trajectory padded to one k x k
block plus the brushed object as motion mask, k from each controller's training config (``--k`` overrides it
for every controller). The base model, sampled from the same first frames with the image only, is the
reference; ``ratio`` = controller / base, ``closer`` = share of clips where the controller is closer.

    .venv/bin/python benchmarks/control_levers.py --base data/checkpoints/toy-base \\
        --run k2-frozen:k=2 --run k2-joint:k=2,unet_lr=1e-4 --clips 24 --out results/control_levers.json

Prints one row per controller and writes the per-clip distances, configs and provenance to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from remoco import config, evaluate, models, runs
from remoco.controller import load_controller
from remoco.pipeline import ReMoCoPipeline
from remoco.shipped import FROZEN_BASE_RECIPE
from remoco.train import train


def parse_run(text: str) -> tuple[str, dict]:
    name, _, fields = text.partition(":")
    over = {}
    for item in filter(None, fields.split(",")):
        key, _, value = item.partition("=")
        value = yaml.safe_load(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string: numbers without a dot
            try:
                value = float(value)
            except ValueError:
                pass
        over[key] = value
    return name, over


#: The stored lever tables vary one choice at a time from the frozen-base recipe (the shipped controller's preset
#: trains the toy UNet too, for 1,800 steps: give ``unet_lr=1e-4,max_steps=1800`` to reproduce it).
LEVER_DEFAULTS = FROZEN_BASE_RECIPE


def add_sampling_arguments(ap: argparse.ArgumentParser, out: str) -> None:
    """The options every lever script shares: sampler steps, motion bucket, threads, the result file."""
    ap.add_argument("--steps", type=int, default=15, help="sampler steps")
    ap.add_argument("--bucket", type=int, default=127, help="motion bucket id at sampling")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=out)


def summary(values, base) -> dict:
    v, b = np.asarray(values, float), np.asarray(base, float)
    return dict(mean=float(v.mean()), se=float(v.std(ddof=1) / np.sqrt(len(v))), ratio=float(v.mean() / b.mean()),
                closer=float(np.mean(v < b)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="base pipeline folder (a save_pretrained SVD pipeline)")
    ap.add_argument("--run", action="append", default=[], help="NAME:field=value,... controller to train")
    ap.add_argument("--controller", action="append", default=[], help="NAME=PATH finished controller folder")
    ap.add_argument("--work", default="runs/levers")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--k", type=int, default=None, help="inference block size for every controller")
    ap.add_argument("--fill", nargs="+", default=["block"], choices=["block", "brush"],
                    help="inference form(s): the paper's k x k block, and/or the drag filling the brush")
    add_sampling_arguments(ap, out="results/control_levers.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    folders, configs = {}, {}
    for text in args.run:
        name, over = parse_run(text)
        cfg = config.preset_config("toy-cpu", "controller", base=args.base, out_dir=str(Path(args.work) / name),
                                   progress=True, **{**LEVER_DEFAULTS, **over})
        res = train(cfg)
        if res.final_path is None:
            raise SystemExit(f"run {name} did not finish")
        folders[name], configs[name] = res.final_path, dict(over, train_seconds=res.seconds)
    for text in args.controller:
        name, _, path = text.partition("=")
        folders[name], configs[name] = Path(path), {}
    base = models.load_svd_pipeline(args.base)
    base.set_progress_bar_config(disable=True)
    dist: dict = {}
    t0 = time.perf_counter()
    for i, (name, folder) in enumerate(folders.items()):
        k = args.k or yaml.safe_load((folder / "provenance.json").read_text())["config"]["k"]
        b = models.load_svd_pipeline(args.base)
        pipe = ReMoCoPipeline.from_base(b, controller=load_controller(folder, b.unet, attach=True))
        pipe.set_progress_bar_config(disable=True)
        for j, fill in enumerate(args.fill):
            label = name if len(args.fill) == 1 else f"{name} ({fill})"
            pipes = {label: pipe, **({"base": base} if i == j == 0 else {})}
            res = evaluate.trajectory_following(pipes, num_clips=args.clips, seed=evaluate.CHAPTER5_CLIP_SEED, k=k,
                                                num_inference_steps=args.steps, motion_bucket_id=args.bucket,
                                                trajectory_fill=fill)
            for key in ["data", *pipes] if i == j == 0 else pipes:
                dist[key] = [float(x) for x in res[key]]
            configs[label] = dict(configs[name], inference_k=k, trajectory_fill=fill)
    rows = {name: summary(v, dist["base"]) for name, v in dist.items()}
    for name, r in rows.items():
        print(f"{name:>24s}  {r['mean']:6.2f} ± {r['se']:.2f} px   ratio {r['ratio']:.2f}   closer {r['closer']:.0%}")
    out = dict(summary=rows, distances=dist, configs=configs, clips=args.clips, seed=evaluate.CHAPTER5_CLIP_SEED,
               base=args.base, sampler_steps=args.steps, motion_bucket_id=args.bucket,
               tracker="OpenCV DIS (paper: CoTracker)",
               eval_seconds=time.perf_counter() - t0, provenance=runs.provenance(config.TrainConfig()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    runs.write_json(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
