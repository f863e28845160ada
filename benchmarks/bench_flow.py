"""Benchmark of the default flow estimator (OpenCV substitute for DOT, Eq. 4).

Prints frames/s and mean end-point error (EPE) on visible pixels of synthetic clips with exact
ground truth (remoco.data), over the whole frame and on the moving objects separately, for each
estimator variant asked for. Target: >= 30 frames/s at 320x512 with EPE <= 0.5 px.

    python benchmarks/bench_flow.py --clips 5 --frames 16 --height 320 --width 512
"""

import argparse
import time

import torch
from tqdm import tqdm

from remoco import data
from remoco import flow as F


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=5)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--height", type=int, default=320)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1, help="OpenCV/torch threads (1 = comparable single-core figure)")
    ap.add_argument("--variants", default="dis-hybrid:balanced",
                    help="comma list of method:quality, e.g. dis-hybrid:accurate,dis-chain:balanced")
    args = ap.parse_args(argv)
    import cv2

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    data.make_clip(0, 2, 16, 16)  # load the photographs once (not part of the timing)
    t0 = time.process_time()
    clips = [data.make_clip(args.seed + s, args.frames, args.height, args.width, kind=data.KINDS[s % len(data.KINDS)])
             for s in tqdm(range(args.clips), desc="clips")]
    gen = (time.process_time() - t0) / args.clips
    print(f"synthetic clips {args.clips} x {args.frames}x{args.height}x{args.width}: "
          f"{gen * 1e3:.0f} ms CPU/clip to generate")
    print(f"{'variant':24s} {'fps':>7s} {'fps/cpu':>7s} {'EPE all':>8s} {'EPE obj':>8s} {'occ P':>6s} {'occ R':>6s}")
    for spec in args.variants.split(","):
        method, quality = (spec.split(":") + ["balanced"])[:2]
        r = F.score_estimator(clips, method=method, quality=quality, progress=True)
        print(f"{spec:24s} {r['frames'] / r['seconds']:7.1f} {r['frames'] / r['cpu_seconds']:7.1f} "
              f"{r['epe_all']:8.3f} {r['epe_objects']:8.3f} {r['occluded_precision']:6.2f} "
              f"{r['occluded_recall']:6.2f}")
    print("fps = frames per wall-clock second; "
          "fps/cpu = frames per CPU second of this process (robust to a loaded machine)")
    print("target: >= 30 fps and EPE <= 0.5 px (EPE on visible pixels; 'obj' = moving objects only)")


if __name__ == "__main__":
    main()
