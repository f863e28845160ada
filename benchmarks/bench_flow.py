"""Benchmark of the default flow estimator (OpenCV substitute for DOT, Eq. 4).

Prints frames/s and mean end-point error (EPE) on visible pixels of synthetic clips with exact
ground truth (remoco.data), over the whole frame and on the moving objects separately, for each
estimator variant asked for. Target: >= 30 frames/s at 320x512 with EPE <= 0.5 px.

    python benchmarks/bench_flow.py --clips 5 --frames 16 --height 320 --width 512
"""

import argparse
import time

import numpy as np
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
        ew, eo, P, R, t, cpu = [], [], [], [], 0.0, 0.0
        for c in tqdm(clips, desc=spec, leave=False):
            s, sc = time.perf_counter(), time.process_time()
            fl, vis = F.estimate_flow(c.video, method=method, quality=quality)
            t += time.perf_counter() - s
            cpu += time.process_time() - sc
            gv = c.visibility[1:]
            ew.append(F.end_point_error(fl[1:], c.flow[1:], gv))
            om = gv & c.object_mask[None]
            if om.any():
                eo.append(F.end_point_error(fl[1:], c.flow[1:], om))
            occ, pocc = ~gv, ~vis[1:]
            tp = (occ & pocc).sum().item()
            P.append(tp / max(pocc.sum().item(), 1))
            R.append(tp / max(occ.sum().item(), 1))
        fps = args.clips * args.frames / t
        fps_cpu = args.clips * args.frames / cpu
        eo_mean = np.mean(eo) if eo else float("nan")
        print(f"{spec:24s} {fps:7.1f} {fps_cpu:7.1f} {np.mean(ew):8.3f} {eo_mean:8.3f} "
              f"{np.mean(P):6.2f} {np.mean(R):6.2f}")
    print("fps = frames per wall-clock second; "
          "fps/cpu = frames per CPU second of this process (robust to a loaded machine)")
    print("target: >= 30 fps and EPE <= 0.5 px (EPE on visible pixels; 'obj' = moving objects only)")


if __name__ == "__main__":
    main()
