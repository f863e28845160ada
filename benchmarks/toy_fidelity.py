"""Does the toy video model keep what it is given? Every fidelity figure of a toy base (and its ReMoCo controller),
for one or more checkpoint folders side by side.

For each ``--system NAME=FOLDER`` (a folder holding ``toy-base`` and ``remoco-toy``, e.g. ``data/checkpoints`` or a
``remoco ship --dest`` folder; a folder with ``toy-base`` alone skips the rocket drag; ``--merge`` keeps the systems
already in ``--out``):

* VAE: PSNR / SSIM of held-out reconstructions (:func:`remoco.fidelity.vae_fidelity`: unseen object clips, both
  benches' scenes, every packaged photograph as a still);
* first frame: PSNR of the base's generated first frame to its conditioning image, and the object's colour shift
  from the first to the last frame, with the real clips' shift as the floor
  (:func:`remoco.fidelity.first_frame_fidelity`, ``--clips`` held-out object clips, 15 sampler steps);
* base motion: the object's displacement in the base's own videos as a share of the data's
  (:func:`remoco.evaluate.generated_motion`, 12 held-out clips, seeds 12345+; and ``--more-clips`` others from
  seed 54321), at the default motion bucket 127 and at the buckets of ``--buckets`` (a lever that needs no training);
* the rocket drag (``data/demo/rocket.json``, a photograph no training scene draws from at the retrained preset):
  distance of the tracked start point to the drawn path for 4 seeds, ReMoCo against the base.

Writes ``--out`` (default ``results/toy_fidelity.json``) and prints a summary.

    .venv/bin/python benchmarks/toy_fidelity.py --system first=data/checkpoints --system new=runs/ship-dest
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from remoco import bench, bench_eval, evaluate, fidelity, shipped, speed

REPO = Path(__file__).resolve().parent.parent


def measure(folder: Path, clips: int, more_clips: int, buckets: list[int], held: dict) -> dict:
    base = shipped.load_shipped_base(folder / "toy-base")
    has_controller = (folder / "remoco-toy").is_dir()
    out: dict = {"folder": str(folder)}
    t = time.perf_counter()
    v = fidelity.vae_fidelity(base.vae, held)
    out["vae"] = {name: {k: float(np.mean(x)) for k, x in d.items()} | {"lowest psnr": float(np.min(d["psnr"]))}
                  for name, d in v.items()}
    ff = fidelity.first_frame_fidelity({"base": base}, num_clips=clips)
    out["first_frame_psnr"] = ff["first_frame_psnr"]["base"]
    out["colour_shift"] = {"data": ff["colour_shift"]["data"], "base": ff["colour_shift"]["base"]}
    motion = {}
    for b in buckets:
        m = evaluate.generated_motion({"base": base}, motion_bucket_id=b)
        motion[str(b)] = {"ratio": m["ratio"]["base"], "data px": m["data"], "base px": m["base"]}
    out["motion (12 clips, seed 12345)"] = motion
    if more_clips:
        m = evaluate.generated_motion({"base": base}, num_clips=more_clips, seed=54321)
        out[f"motion ({more_clips} clips, seed 54321)"] = {"ratio": m["ratio"]["base"], "data px": m["data"],
                                                           "base px": m["base"]}
    if has_controller:  # a base trained alone (no remoco-toy beside it) has no drag to follow
        remoco = shipped.load_shipped_pipeline("remoco", base_path=folder / "toy-base",
                                               controller_path=folder / "remoco-toy")
        rocket = bench.load_bench_example(REPO / "data" / "demo" / "rocket.json")
        out["rocket"] = bench_eval.example_following({"base": base, "remoco": remoco}, rocket, seeds=range(4))
    out["seconds"] = time.perf_counter() - t
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", action="append", required=True, help="NAME=FOLDER (toy-base and remoco-toy inside)")
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--more-clips", type=int, default=12)
    ap.add_argument("--buckets", type=int, nargs="+", default=[127, 255])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "results" / "toy_fidelity.json"))
    ap.add_argument("--merge", action="store_true", help="keep the other systems already in --out")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    held = fidelity.held_out_clips()
    res = {"what": __doc__.split("\n\n")[0], "machine": speed.machine_summary(),
           "sampling precision": speed.resolve_mixed_precision("auto"), "systems": {}}
    if a.merge and Path(a.out).is_file():
        res["systems"] = json.loads(Path(a.out).read_text())["systems"]
    for spec in a.system:
        name, _, folder = spec.partition("=")
        r = measure(Path(folder), a.clips, a.more_clips, a.buckets, held)
        res["systems"][name] = r
        m127 = r["motion (12 clips, seed 12345)"]["127"]["ratio"]
        print(f"{name}: VAE PSNR {r['vae']['all']['psnr']:.2f} dB (objects {r['vae']['object clips']['psnr']:.2f}, "
              f"bench {r['vae']['bench scenes']['psnr']:.2f}, photos {r['vae']['photographs']['psnr']:.2f}), "
              f"SSIM {r['vae']['all']['ssim']:.3f}; first frame {np.mean(r['first_frame_psnr']):.2f} dB; "
              f"colour shift data {np.nanmean(r['colour_shift']['data']):.1f} "
              f"base {np.nanmean(r['colour_shift']['base']):.1f}; "
              f"motion {100 * m127:.0f} %" + (f"; rocket remoco {np.round(r['rocket']['remoco'], 1).tolist()} "
                                             f"base {np.round(r['rocket']['base'], 1).tolist()}" if "rocket" in r
                                             else ""), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
