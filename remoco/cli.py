"""The ``remoco`` command line: every command of the project, each with its own ``--help``.

::

    remoco train      --preset toy-cpu --stage controller --out runs/remoco [--config run.yaml] [--set k=4]
    remoco ship       [--variants remoco gaussian traj_only] [--jobs 2]  # retrain every shipped toy checkpoint
    remoco conditions --video clip.mp4 --out cond.safetensors --preview cond.png      # Sec. 3.2 (training)
    remoco conditions --example data/demo/example.json --out cond.safetensors          # Sec. 3.4 (a drag)
    remoco demo       [--port 8888]                     # the drag demo in JupyterLab
    remoco bench toy  --set fine --n 100 --seed 0 --out data/bench/fine     # the toy ReMoCo-Bench (Sec. 4.1)
    remoco bench dragbench SRC --out OUT | bench mcbench SRC --out OUT | bench check FOLDER

``python -m remoco.train ARGS`` is ``remoco train ARGS``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------------- train
def _add_train(sub) -> None:
    from .config import add_train_arguments

    p = sub.add_parser(
        "train", help="train the toy base or a controller",
        description="Train the toy base (VAE + UNet) or a ReMoCo controller; resumable (run the same command "
                    "again). Precedence: preset < --config file < --set < the named flags below.")
    add_train_arguments(p)


def _run_train(args) -> int:
    from .train import run_from_args

    return run_from_args(args)


# ------------------------------------------------------------------------------------------------- ship
def _add_ship(sub) -> None:
    from .config import PRESETS

    p = sub.add_parser("ship", help="train the toy base + controller(s) and copy them to data/checkpoints",
                       description="Train the toy base and the controller variants from scratch (resumable in "
                                   "--work) and copy their weights, configs and logs to --dest.")
    p.add_argument("--preset", default="toy-cpu", choices=tuple(PRESETS))
    p.add_argument("--variants", nargs="+", default=["remoco", "gaussian", "traj_only"],
                   help="controller variants to ship (default: ReMoCo, the Gaussian-trajectory baseline and ReMoCo "
                        "without the motion mask)")
    p.add_argument("--work", default="runs/ship", help="work folder (resumable)")
    p.add_argument("--dest", default=None, help="default: data/checkpoints")
    p.add_argument("--base", default=None,
                   help="a finished toy base folder (e.g. data/checkpoints/toy-base): train only the controllers")
    p.add_argument("--no-frozen-base", dest="frozen_base", action="store_false",
                   help="skip the paper's frozen-base ReMoCo controller (data/checkpoints/remoco-frozen-toy), which "
                        "otherwise trains in the same pool of --jobs processes")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--jobs", type=int, default=2,
                   help="controller variants trained at once, one process each (default 2: both cores busy)")


def _run_ship(args) -> int:
    from .config import SHIPPED_DIR, VARIANTS
    from .shipped import ship

    bad = [v for v in args.variants if v not in VARIANTS]
    if bad:
        raise ValueError(f"--variants: unknown {bad}; choose from {VARIANTS}")
    summary = ship(args.work, args.dest or SHIPPED_DIR, args.preset, tuple(args.variants),
                   progress=not args.no_progress, jobs=args.jobs, base=args.base, frozen_base=args.frozen_base)
    print(json.dumps(summary, indent=2, default=str))
    return 0


# ------------------------------------------------------------------------------------------------- conditions
def _add_conditions(sub) -> None:
    p = sub.add_parser(
        "conditions", help="motion conditions (T_s, M_mot) of a video or a drag, saved + previewed",
        description="From a video (--video: optical flow, Eq. 4, then the region-wise trajectory of Eq. 5-7 "
                    "with r_m ~ U[r_min, 1] and the motion mask, Sec. 3.2) or from a drag (--example: a bench "
                    "example JSON with image, brush and trajectories, Sec. 3.4), write the controller input "
                    "(L, 3, H, W) as safetensors (keys condition, region_trajectory, motion_mask) and a preview.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="a video file or a folder of frames")
    src.add_argument("--example", help="a bench example JSON (remoco.bench schema)")
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.add_argument("--preview", default=None, help="optional PNG preview (frame, |T_s|, M_mot)")
    p.add_argument("--k", type=int, default=8, help="region size k (paper: 8 at 320x512)")
    p.add_argument("--r-min", type=float, default=0.95, help="--video: minimal mask ratio r_min (paper: 0.95)")
    p.add_argument("--num-frames", type=int, default=None, help="--video: first frames to use; --example: L")
    p.add_argument("--variant", default="paper", choices=("paper", "release"))
    p.add_argument("--seed", type=int, default=0, help="--video: seed of the region selection")


def _run_conditions(args) -> int:
    import torch
    from safetensors.torch import save_file

    from . import conditions as C
    from .user_conditions import conditions_from_user

    if args.video:
        from .flow import estimate_flow
        from .video import read_video

        video = read_video(args.video, num_frames=args.num_frames)
        flow, vis = estimate_flow(video)
        traj, mask = C.training_conditions(flow, vis, k=args.k, r_min=args.r_min, variant=args.variant,
                                           generator=torch.Generator().manual_seed(args.seed))
        first = video[0]
    else:
        from .bench import load_bench_example

        ex = load_bench_example(args.example)
        num_frames = args.num_frames or ex.num_frames
        traj, mask = conditions_from_user(ex.trajectories, torch.as_tensor(ex.brush_mask), num_frames, k=args.k)
        first = torch.as_tensor(ex.image)
    cond = C.to_model_input(traj, mask)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({"condition": cond, "region_trajectory": traj.contiguous(),
               "motion_mask": mask.to(torch.uint8).contiguous()}, str(out))
    print(f"wrote {out}: condition {tuple(cond.shape)}, {int(mask[0].sum())} masked pixels, "
          f"{int((traj.abs().sum(-1) > 0).any(0).sum())} pixels with a trajectory")
    if args.preview:
        from .drawing import plot_conditions

        fig = plot_conditions(first, traj, mask)
        fig.savefig(args.preview, dpi=100, bbox_inches="tight")
        print(f"wrote {args.preview}")
    return 0


# ------------------------------------------------------------------------------------------------- demo
def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="open the interactive drag demo in JupyterLab")
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--no-browser", action="store_true")


def _run_demo(args) -> int:
    notebook = _repo_root() / "notebooks" / "08_drag_demo.ipynb"
    if not notebook.exists():
        raise FileNotFoundError(f"the demo notebook is missing: {notebook}")
    cmd = [sys.executable, "-m", "jupyterlab", str(notebook), f"--port={args.port}", "--ServerApp.ip=127.0.0.1"]
    if args.no_browser:
        cmd.append("--no-browser")
    return subprocess.call(cmd)


# ------------------------------------------------------------------------------------------------- bench
def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="benchmark sets: build the toy ReMoCo-Bench, convert DragBench / MC-Bench",
                       description="Benchmark sets on disk (remoco.benchset, Sec. 4.1 and Appendix A of the paper).")
    acts = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    toy = acts.add_parser("toy", help="generate a toy set (held-out synthetic clips with ground truth)")
    toy.add_argument("--set", required=True, choices=("fine", "object"))
    toy.add_argument("--n", type=int, default=100, help="number of entries")
    toy.add_argument("--seed", type=int, default=0)
    for name, what in (("dragbench", "a DragBench-style folder (drag_instruction.json + mask.png + "
                                     "original_image.png per sample)"),
                       ("mcbench", "MotionPro's MC-Bench folder (<category>/<sample>/meta_data.json ...)")):
        c = acts.add_parser(name, help=f"convert {what}")
        c.add_argument("src")
        c.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("HEIGHT", "WIDTH"))
        c.add_argument("--num-frames", type=int, default=8)
        c.add_argument("--k", type=int, default=8)
        c.add_argument("--fit", default="crop", choices=("crop", "stretch"))
        c.add_argument("--skip-bad", action="store_true", help="list bad samples in index.json instead of failing")
        if name == "mcbench":
            c.add_argument("--category", default=None, help="e.g. Fine_grained_control or object_control")
    for a in (toy, acts.choices["dragbench"], acts.choices["mcbench"]):
        a.add_argument("--out", required=True, help="output bench folder")
        a.add_argument("--overwrite", action="store_true", help="replace an existing bench folder")
    check = acts.add_parser("check", help="load a bench folder and verify every file against index.json")
    check.add_argument("folder")


def _run_bench(args) -> int:
    from . import benchset as S

    if args.action == "toy":
        bench = S.build_toy_bench(args.out, args.set, n=args.n, seed=args.seed, overwrite=args.overwrite)
    elif args.action == "check":
        bench = S.load_bench(args.folder)
    else:
        kw = dict(height=args.size[0], width=args.size[1], num_frames=args.num_frames, k=args.k, fit=args.fit,
                  on_error="skip" if args.skip_bad else "raise", overwrite=args.overwrite)
        if args.action == "mcbench":
            kw["category"] = args.category
        bench = getattr(S, f"convert_{args.action}")(args.src, args.out, **kw)
    cams = sum(bool(e.camera) for e in bench)
    print(f"{bench.folder}: {bench.name!r}, set {bench.set!r}, {len(bench)} entries ({cams} with camera motion), "
          f"{len(bench.skipped)} skipped")
    return 0


# ------------------------------------------------------------------------------------------------- main
_COMMANDS = {"train": (_add_train, _run_train), "ship": (_add_ship, _run_ship),
             "conditions": (_add_conditions, _run_conditions), "demo": (_add_demo, _run_demo),
             "bench": (_add_bench, _run_bench)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remoco", description="ReMoCo Book command line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in _COMMANDS.values():
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(_COMMANDS[args.command][1](args) or 0)
    except (ValueError, FileNotFoundError) as exc:  # bad input: one clear line, exit status 2
        parser.exit(2, f"remoco {args.command}: error: {exc}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
