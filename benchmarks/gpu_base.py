"""Does training compute make the toy base move? Long toy-base UNet runs on a lent GPU, packed for the trip back.

The toy base trained on 2 CPU cores (2,400 steps of 4 clips) renders almost none of its clips' object motion by
appearance, and restarted from sigma = 1 it underfits its own training clips as much as new ones
(``benchmarks/restart_seen.py``). This trains the same ``unet`` stage (the ``toy-cpu`` preset plus overrides, on a
finished toy VAE) for far more samples on a GPU, then packs each finished pipeline folder so that it comes back
through the device tool's limits (files of at most 16 MB): ``NAME.tgz`` (everything but the UNet's weights) and the
weights cut into ``NAME.partK.safetensors``. ``unpack`` rebuilds the folder here; ``benchmarks/motion_sampling.py``
then measures it like every other base.

    python3 benchmarks/gpu_base.py train --vae runs/train-plain/vae/final --work /tmp/gb \\
        --run "attn:unet_attention=all,p_mean=0.0,batch_size=128" --set max_steps=4000 num_workers=6
    python3 benchmarks/gpu_base.py pack --work /tmp/gb --name attn --out $OUT
    .venv/bin/python benchmarks/gpu_base.py unpack --src DIR --name attn --into runs/gpu-base

GPU weights are not bit-identical to a CPU run (bf16 autocast, other kernels): a measurement of what more
training does, not a shipped base.
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

from base_levers import use_vae
from control_levers import parse_run

PART_BYTES = 15_000_000


def train_run(vae: Path, work: Path, run: str, sets: list[str]) -> Path:
    from remoco import config
    from remoco.train import train

    name, over = parse_run(run)
    over.update(parse_run("sets:" + ",".join(sets))[1])
    run_dir = work / name
    use_vae(vae, run_dir)
    cfg = config.preset_config("toy-cpu", "unet", out_dir=str(run_dir), progress=False, **over)
    res = train(cfg)
    if res.final_path is None:
        raise SystemExit(f"run {name} did not finish")
    print(f"{name}: final loss {res.final_loss}, {res.seconds}")
    return Path(res.final_path)


def pack(work: Path, name: str, out: Path) -> list[Path]:
    """``NAME.tgz`` (the pipeline folder without the UNet's weights, the run's log and config) and the UNet's
    weights in parts of at most ``PART_BYTES``."""
    from safetensors.torch import load_file, save_file

    final = work / name / "unet" / "final"
    weights = final / "unet" / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing: run {name!r} did not finish")
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"{name}.tgz"]
    with tarfile.open(written[0], "w:gz") as tar:
        tar.add(final, arcname="final", filter=lambda t: None if t.name.endswith("unet/diffusion_pytorch_model"
                                                                                 ".safetensors") else t)
        for extra in (work / name / "unet" / "log.csv", work / name / "config.yaml"):
            if extra.is_file():
                tar.add(extra, arcname=extra.name)
    state = load_file(str(weights))
    part, size = {}, 0
    for key in sorted(state):
        nbytes = state[key].numel() * state[key].element_size()
        if part and size + nbytes > PART_BYTES:
            written.append(out / f"{name}.part{len(written) - 1}.safetensors")
            save_file(part, str(written[-1]))
            part, size = {}, 0
        part[key], size = state[key].contiguous(), size + nbytes
    written.append(out / f"{name}.part{len(written) - 1}.safetensors")
    save_file(part, str(written[-1]))
    return written


def unpack(src: Path, name: str, into: Path) -> Path:
    """Rebuild run ``name``'s pipeline folder under ``into/name`` from :func:`pack`'s files in ``src``."""
    from safetensors.torch import load_file, save_file

    parts = sorted(src.glob(f"{name}.part*.safetensors"), key=lambda p: int(p.suffixes[0][5:]))
    if not (src / f"{name}.tgz").is_file() or not parts:
        raise FileNotFoundError(f"src={str(src)!r} lacks {name}.tgz or {name}.partK.safetensors")
    dest = into / name
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(src / f"{name}.tgz") as tar:
        tar.extractall(dest, filter="data")
    state = {}
    for p in parts:
        state.update(load_file(str(p)))
    save_file(state, str(dest / "final" / "unet" / "diffusion_pytorch_model.safetensors"))
    return dest / "final"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    t = sub.add_parser("train")
    t.add_argument("--vae", required=True, type=Path)
    t.add_argument("--work", required=True, type=Path)
    t.add_argument("--run", required=True, help="NAME:field=value,... (the toy-cpu unet preset's overrides)")
    t.add_argument("--set", nargs="*", default=[], help="field=value applied after --run's (steps, workers)")
    p = sub.add_parser("pack")
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True, type=Path)
    u = sub.add_parser("unpack")
    u.add_argument("--src", required=True, type=Path)
    u.add_argument("--name", required=True)
    u.add_argument("--into", required=True, type=Path)
    args = ap.parse_args(argv)
    if args.verb == "train":
        print(train_run(args.vae, args.work, args.run, args.set))
    elif args.verb == "pack":
        print("\n".join(str(w) for w in pack(args.work, args.name, args.out)))
    else:
        print(unpack(args.src, args.name, args.into))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
