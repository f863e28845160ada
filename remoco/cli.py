"""The ``remoco`` command line: every command of the project, each with its own ``--help``.

::

    remoco train      --preset toy-cpu --stage controller --out runs/remoco [--config run.yaml] [--set k=4]
    remoco ship       [--variants remoco gaussian]      # retrain the shipped toy checkpoints (data/checkpoints)
    remoco conditions --video clip.mp4 --out cond.safetensors --preview cond.png      # Sec. 3.2 (training)
    remoco conditions --example data/demo/example.json --out cond.safetensors          # Sec. 3.4 (a drag)
    remoco demo       [--port 8888]                     # the drag demo in JupyterLab

``python -m remoco.train ARGS`` is ``remoco train ARGS``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["main", "build_parser", "train_config_from_args"]


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------------- train
def _add_train(sub) -> None:
    from .config import PRESETS, STAGES, VARIANTS

    p = sub.add_parser(
        "train", help="train the toy base or a controller",
        description="Train the toy base (VAE + UNet) or a ReMoCo controller; resumable (run the same command "
                    "again). Precedence: preset < --config file < --set < the named flags below.")
    p.add_argument("--preset", default=None, choices=tuple(PRESETS), help="default: the file's, else toy-cpu")
    p.add_argument("--stage", default=None, choices=STAGES, help="default: the file's, else controller")
    p.add_argument("--variant", default=None, choices=VARIANTS, help="default: the file's, else remoco")
    p.add_argument("--out", default=None,
                   help="output folder (default: the file's out_dir, else runs/<stage>-<variant>)")
    p.add_argument("--config", default=None, help="YAML file of TrainConfig fields; only the fields it names apply")
    p.add_argument("--base", default=None, help="controller stage: base pipeline folder, hub id or random:SEED")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="override any TrainConfig field")
    p.add_argument("--no-progress", action="store_true")


def train_config_from_args(args: argparse.Namespace):
    """The :class:`~remoco.config.TrainConfig` that ``remoco train`` runs. A field given in ``--config``
    wins over the preset, ``--set`` over the file, and a named flag (``--variant``, ``--out``...) over
    both; a flag that is not given changes nothing."""
    import yaml

    from .config import TrainConfig, preset_config

    over: dict = {}
    if args.config:
        over.update(TrainConfig.fields_from_yaml(args.config))
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        key, val = item.split("=", 1)
        over[key] = yaml.safe_load(val)
    named = {"preset": args.preset, "stage": args.stage, "variant": args.variant, "out_dir": args.out,
             "base": args.base, "max_steps": args.max_steps, "seed": args.seed}
    over.update({k: v for k, v in named.items() if v is not None})
    if args.no_progress:
        over["progress"] = False
    if os.environ.get("REMOCO_STOP_AFTER"):
        over["stop_after"] = int(os.environ["REMOCO_STOP_AFTER"])
    preset = over.pop("preset", "toy-cpu")
    stage = over.pop("stage", "controller")
    over.setdefault("out_dir", f"runs/{stage}-{over.get('variant', 'remoco')}")
    return preset_config(preset, stage, **over)


def _run_train(args) -> int:
    from .train import train

    res = train(train_config_from_args(args))
    print(json.dumps({"final_path": res.final_path, "final_loss": res.final_loss, "seconds": res.seconds,
                      "interrupted": res.interrupted, "peak_rss_mb": res.peak_rss_mb}, indent=2, default=str))
    return 0


# ------------------------------------------------------------------------------------------------- ship
def _add_ship(sub) -> None:
    from .config import PRESETS

    p = sub.add_parser("ship", help="train the toy base + controller(s) and copy them to data/checkpoints",
                       description="Train the toy base and the controller variants from scratch (resumable in "
                                   "--work) and copy their weights, configs and logs to --dest.")
    p.add_argument("--preset", default="toy-cpu", choices=tuple(PRESETS))
    p.add_argument("--variants", nargs="+", default=["remoco"], help="controller variants to ship")
    p.add_argument("--work", default="runs/ship", help="work folder (resumable)")
    p.add_argument("--dest", default=None, help="default: data/checkpoints")
    p.add_argument("--no-progress", action="store_true")


def _run_ship(args) -> int:
    from .config import SHIPPED_DIR, VARIANTS
    from .shipped import ship

    bad = [v for v in args.variants if v not in VARIANTS]
    if bad:
        raise ValueError(f"--variants: unknown {bad}; choose from {VARIANTS}")
    summary = ship(args.work, args.dest or SHIPPED_DIR, args.preset, tuple(args.variants),
                   progress=not args.no_progress)
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
        traj, mask = C.conditions_from_user(ex.trajectories, torch.as_tensor(ex.brush_mask), num_frames, k=args.k)
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


# ------------------------------------------------------------------------------------------------- main
_COMMANDS = {"train": (_add_train, _run_train), "ship": (_add_ship, _run_ship),
             "conditions": (_add_conditions, _run_conditions), "demo": (_add_demo, _run_demo)}


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
