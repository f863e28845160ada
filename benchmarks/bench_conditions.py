"""Benchmark of remoco.conditions on a paper-size clip (16 x 320 x 512, Sec. 4.1).

Prints the median (and, as a robust figure on a busy machine, the minimum) wall time of ``training_conditions``
(Sec. 3.2 end to end), of ``region_trajectory`` (Eq. 6-7) and ``motion_mask`` separately, and their ratio to one
``clone()`` of the flow tensor measured in the same run (target: training_conditions <= 3x clone).

Two random flows are timed:

* ``objects``: static background and a few random rectangles translating at a random constant
  velocity (displacement from frame 1 grows linearly), plus an occluding bar in the visibility --
  the structure of real clips;
* ``iid``: i.i.d. Gaussian flow (sigma 3 px) everywhere -- a worst case for the motion mask,
  where almost every pixel's average magnitude is close enough to the threshold that the exact
  mean of the square roots has to be evaluated for it.

Usage: python benchmarks/bench_conditions.py [--repeats 31] [--threads 1] [--variant paper]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from remoco import conditions as C


def random_object_clip(num_frames, height, width, generator, num_objects=4):
    flow = torch.zeros(num_frames, height, width, 2)
    vis = torch.ones(num_frames, height, width, dtype=torch.bool)
    t = torch.arange(num_frames, dtype=torch.float32)[:, None]
    for _ in range(num_objects):
        h = int(torch.randint(height // 8, height // 2, (), generator=generator))
        w = int(torch.randint(width // 8, width // 2, (), generator=generator))
        y = int(torch.randint(0, height - h, (), generator=generator))
        x = int(torch.randint(0, width - w, (), generator=generator))
        vel = (torch.rand(2, generator=generator) * 2 - 1) * 3.0  # px / frame
        flow[:, y : y + h, x : x + w, :] = (t * vel)[:, None, None, :]
    # an occluder covering a vertical bar from the middle of the clip on
    x0 = int(torch.randint(0, width - width // 10, (), generator=generator))
    vis[num_frames // 2 :, :, x0 : x0 + width // 10] = False
    return flow, vis


def iid_clip(num_frames, height, width, generator):
    flow = torch.randn(num_frames, height, width, 2, generator=generator) * 3.0
    vis = torch.rand(num_frames, height, width, generator=generator) > 0.001
    return flow, vis


def median_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--variant", default="paper", choices=C.VARIANTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    L, H, W, k = args.frames, args.height, args.width, 8
    print(f"clip {L}x{H}x{W}, k={k}, r_min=0.95, variant={args.variant}, torch threads={args.threads}, "
          f"median of {args.repeats} runs")
    for name, make in (("objects", random_object_clip), ("iid", iid_clip)):
        g = torch.Generator().manual_seed(0)
        flow, vis = make(L, H, W, g)
        sel = C.sample_region_selection(H, W, k, 0.95, generator=g)
        t_clone, m_clone = median_time(lambda: flow.clone(), args.repeats)
        t_tc, m_tc = median_time(lambda: C.training_conditions(flow, vis, k=k, r_min=0.95, generator=g,
                                                               variant=args.variant), args.repeats)
        t_rt, m_rt = median_time(lambda: C.region_trajectory(flow, vis, sel, k, variant=args.variant), args.repeats)
        t_mm, m_mm = median_time(lambda: C.motion_mask(flow, variant=args.variant), args.repeats)
        print(f"[{name:7s}] median: clone {t_clone * 1e3:6.2f} ms | training_conditions {t_tc * 1e3:6.2f} ms "
              f"({t_tc / t_clone:4.1f}x clone) | region_trajectory {t_rt * 1e3:6.2f} ms "
              f"({t_rt / t_clone:4.1f}x) | motion_mask {t_mm * 1e3:6.2f} ms ({t_mm / t_clone:4.1f}x)")
        print(f"[{name:7s}] min:    clone {m_clone * 1e3:6.2f} ms | training_conditions {m_tc * 1e3:6.2f} ms "
              f"({m_tc / m_clone:4.1f}x clone) | region_trajectory {m_rt * 1e3:6.2f} ms "
              f"({m_rt / m_clone:4.1f}x) | motion_mask {m_mm * 1e3:6.2f} ms ({m_mm / m_clone:4.1f}x)")


if __name__ == "__main__":
    main()
