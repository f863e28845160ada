"""How much does a ReMoCo controller's steering vary with its training seed alone? Chapter 5's distance protocol for
controllers trained with one recipe and different seeds, each beside its own base.

For each ``--system NAME=BASE:CONTROLLER`` (a ``toy-base`` pipeline folder and a controller folder with
``controller/config.json``): the 24 held-out object clips of chapter 5 (seed 20000, 15 sampler steps, k = 2, the drag
filling the brush, :func:`remoco.evaluate.trajectory_following`), the mean distance of the tracked start point to the
drawn path, the base's on the same clips and the ratio of the two. Per-clip distances go to ``--out``; each
``--pair A-B`` adds the paired 95 % t interval of A's distance minus B's over the clips (``remoco.decide``); either side
may be ``A1+A2+...``, several systems (say, seeds of one recipe) whose distances are averaged clip by clip first,
and the same interval is stored for the clips with and without a photograph held out of ``photos="train"``
(``data.HELD_OUT_PHOTOS``; each clip's photographs are stored under ``"photographs"``). ``--stored FILE`` takes the
systems and bases of an earlier run of this script (same clips, seed, k, steps and fill, else it exits naming the
field) into the output and the pairs without re-scoring them, so a new system can be paired with stored ones.

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

from remoco import decide, evaluate, photos, shipped

CLIP_SEED = evaluate.CHAPTER5_CLIP_SEED  # chapter 5's held-out object clips: seeds CLIP_SEED + i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--system", action="append", default=[], help="NAME=BASE_FOLDER:CONTROLLER_FOLDER")
    ap.add_argument("--stored", action="append", default=[],
                    help="an earlier --out file of this script: its systems join the output and the pairs unscored")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pair", action="append", default=[],
                    help="A-B: paired interval of A's distances minus B's; A1+A2-B1+B2 averages seeds per clip first")
    ap.add_argument("--note", action="append", default=[], help="a sentence stored under 'notes'")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    names = [spec.split("=", 1)[0] for spec in args.system]
    for name in names:
        if not name or "-" in name or "+" in name:
            ap.error(f"--system names must be non-empty and free of '-' and '+' (the --pair syntax), got {name!r}")
    protocol = dict(clips=args.clips, seed=CLIP_SEED, k=2, num_inference_steps=15, trajectory_fill="brush")
    stored = [_read_stored(ap, path, protocol) for path in args.stored]
    for path, old in zip(args.stored, stored):
        clash = sorted(set(old["systems"]) & set(names))
        if clash:
            ap.error(f"--stored {path!r} already has the systems {clash}: give the new ones other names")
        names += list(old["systems"])
    if not names:
        ap.error("give at least one --system NAME=BASE_FOLDER:CONTROLLER_FOLDER or --stored FILE")
    pairs = [[side.split("+") for side in p.split("-")] for p in args.pair]
    for p, pair in zip(args.pair, pairs):
        if len(pair) != 2 or not {n for side in pair for n in side} <= set(names):
            ap.error(f"--pair must be A-B (or A1+A2-B1+B2) with every name among the --system names {names}, got {p!r}")
    torch.set_num_threads(args.threads)
    out = dict(**protocol, threads=args.threads, machine=platform.processor() or platform.machine(), systems={},
               bases={})
    out["photographs"] = [c.meta["photographs"] for c in evaluate.following_clips(args.clips, seed=CLIP_SEED)]
    for path, old in zip(args.stored, stored):
        out["bases"].update(old["bases"])
        for name, system in old["systems"].items():
            out["systems"][name] = {"machine": old.get("machine"), "threads": old.get("threads"), **system,
                                    "stored": path}
        for key in ("pairs", "pairs_by_photograph"):  # derived from the stored distances: still valid
            out.setdefault(key, {}).update(old.get(key, {}))
        out["notes"] = out.get("notes", []) + old.get("notes", [])
    held = np.array([photos.shows_held_out(ps) for ps in out["photographs"]])
    for spec in args.system:
        name, folders = spec.split("=", 1)
        base_dir, ctrl_dir = folders.split(":", 1)
        t0 = time.perf_counter()
        if base_dir not in out["bases"]:
            base = shipped.load_shipped_base(base_dir)
            res = evaluate.trajectory_following({"base": base}, num_clips=args.clips, seed=CLIP_SEED, k=2,
                                                num_inference_steps=15, trajectory_fill="brush")
            out["bases"][base_dir] = dict(distances=res["base"], data=res["data"])
        pipe = shipped.load_shipped_pipeline("remoco", base_path=base_dir, controller_path=ctrl_dir)
        res = evaluate.trajectory_following({"remoco": pipe}, num_clips=args.clips, seed=CLIP_SEED, k=2,
                                            num_inference_steps=15, trajectory_fill="brush")
        b = np.asarray(out["bases"][base_dir]["distances"])
        d = np.asarray(res["remoco"])
        out["systems"][name] = dict(base=base_dir, controller=ctrl_dir, distances=d.tolist(), mean=float(d.mean()),
                                    base_mean=float(b.mean()), ratio=float(d.mean() / b.mean()),
                                    closer=float(np.mean(d < b)), seconds=time.perf_counter() - t0)
        print(f"{name}: {d.mean():.2f} px vs base {b.mean():.2f} px, ratio {d.mean() / b.mean():.2f}, "
              f"closer on {100 * np.mean(d < b):.0f} %", flush=True)
    for p, sides in zip(args.pair, pairs):
        a, b = (np.mean([out["systems"][n]["distances"] for n in side], axis=0) for side in sides)
        out.setdefault("pairs", {})[p] = iv = decide.t_interval(a - b)
        print(f"{p}: {decide.interval_text(iv, digits=2)} px", flush=True)
        for label, rows in (("with a held-out photograph", held), ("without", ~held)):
            if rows.sum() >= 2:
                iv = decide.t_interval((a - b)[rows])
                out.setdefault("pairs_by_photograph", {}).setdefault(p, {})[label] = iv
                print(f"  clips {label} ({rows.sum()}): {decide.interval_text(iv, digits=2)} px")
    if args.note:
        out["notes"] = out.get("notes", []) + list(args.note)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)


def _read_stored(ap: argparse.ArgumentParser, path: str, protocol: dict) -> dict:
    """An earlier output of this script, checked to have scored the same clips the same way as ``protocol``."""
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        ap.error(f"--stored {path!r} is not a readable JSON file: {err}")
    if not isinstance(old, dict) or not isinstance(old.get("systems"), dict):
        ap.error(f"--stored {path!r} has no 'systems': not an output of this script")
    for field, want in protocol.items():
        if old.get(field) != want:
            ap.error(f"--stored {path!r} has {field}={old.get(field)!r}, this run {want!r}: its distances do not pair")
    return old


if __name__ == "__main__":
    main()
