"""MD-Vid validated on every entry of both toy bench sets (chapter 6 runs the same on a subset).

For each entry: its ground-truth clip and the known-answer videos of :data:`remoco.tracking.KNOWN_CASES` (the
brushed region moved along the bench's exact path at full, half, zero and reversed speed, blurring or changing
colour), scored by every tracker of :data:`remoco.bench_eval.VALIDATED_TRACKERS`. Prints each tracker's summary and
writes every row (entry x case x tracker) to ``--out``.

    .venv/bin/python benchmarks/md_validation.py --out results/md_validation.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from remoco import bench_eval, benchset, reproduce


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=None, help="entries per set, spread over it (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    benches = {s: benchset.load_bench(reproduce.BENCH_SETS[s]) for s in ("fine", "object")}
    t0 = time.perf_counter()
    result = bench_eval.validate_md_vid(benches, entries=args.entries)
    seconds = time.perf_counter() - t0
    for s in result["summary"]:
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.items()})
    print(f"{len(result['rows'])} rows in {seconds:.0f} s ({args.threads} thread(s))")
    if args.out:
        result.update(entries_per_set=args.entries, seconds=seconds, threads=args.threads,
                      machine=platform.processor() or platform.machine(), torch=torch.__version__)
        with open(args.out, "w") as f:
            json.dump(result, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
