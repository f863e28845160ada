"""The faster path against today's, side by side in one process: training steps and sampled videos.

Training (``--stages controller unet``): the shipped recipes (``data/checkpoints/remoco-toy/config.yaml``; the base
UNet stage of ``data/checkpoints/toy-base/config.yaml``) built twice, with :data:`remoco.config.BASELINE_PATH`
(fp32, foreach AdamW: every checkpoint so far) and with :data:`remoco.config.FAST_PATH` (bf16 autocast where the CPU
computes bf16 natively, fused AdamW). ``--runs`` rounds alternate the two paths, ``--steps`` optimizer steps each
after a warm-up on the same batches (the clips' latents cached, as after a run's first epoch); the figure of a run
is its median seconds per step, and the report gives the median of the runs with their min-max.

Sampling (``--sampling``): chapter 5's held-out object clips (seeds 20000+, brush fill, 15 sampler steps) through
the shipped ReMoCo pipeline, today's way (one video per call, fp32) against :func:`remoco.sampling.sample_videos`
(8 videos per call, bf16 UNet where native): seconds per video, same rounds.

On a CUDA GPU (when there is one) the training comparison runs there too, and ``--paper-step`` times one paper-scale
controller step (random-initialised SVD-size UNet, 14 frames at 320x512, LoRA rank 32, bf16) with its peak memory.
Nothing here needs a GPU.

    .venv/bin/python benchmarks/bench_speed.py --threads 1 --runs 5 --steps 6 --sampling
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from remoco import config, runs, shipped, speed
from remoco import train as T
from remoco.clips import StepBatchSampler, collate_clips

REPO = Path(__file__).resolve().parent.parent
STAGE_CONFIG = {"controller": REPO / "data/checkpoints/remoco-toy/config.yaml",
                "unet": REPO / "data/checkpoints/toy-base/config.yaml"}


def _summary(run_medians: list) -> dict:
    return {"median": statistics.median(run_medians), "min": min(run_medians), "max": max(run_medians),
            "runs": run_medians}


class _Trainer:
    """One training setup of ``stage`` on ``path`` that times optimizer steps on given batches."""

    def __init__(self, stage: str, path: dict, out_dir: Path, device: str):
        cfg = config.TrainConfig.from_yaml(STAGE_CONFIG[stage])
        extra = {"vae_steps": 0} if stage == "unet" else {"base": str(shipped.SHIPPED_DIR / "toy-base")}
        self.cfg = cfg.replace(out_dir=str(out_dir), progress=False, stage="unet" if stage == "unet" else cfg.stage,
                               **extra, **path)
        self.stage, self.device = stage, torch.device(device)
        self.setup = T.denoiser_setup(self.cfg, stage, self.device)
        self.setup.module.to(self.device)
        self.optimizer = T.make_optimizer(self.cfg, self.setup.params, self.cfg.lr)
        params = self.setup.params
        self.flat = [p for g in params for p in g["params"]] if isinstance(params[0], dict) else params
        self.precision = speed.resolve_mixed_precision(self.cfg.mixed_precision, self.device)

    def step(self, batch, step: int) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            loss = self.setup.loss_fn(self.setup.module, batch, runs.step_generator(0, self.stage, step))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.flat, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0


def training_side_by_side(stage: str, n_runs: int, steps: int, warmup: int, device: str = "cpu") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {name: _Trainer(stage, path, Path(tmp) / name, device)
                    for name, path in (("today", config.BASELINE_PATH), ("fast", config.FAST_PATH))}
        ds = trainers["today"].setup.dataset
        sampler = StepBatchSampler(len(ds), trainers["today"].cfg.batch_size, 1, 0, warmup + steps)
        batches = [collate_clips([ds[i] for i in idx]) for idx in sampler]
        for tr in trainers.values():  # the clips' latents, as after a run's first epoch
            for b in batches:
                for i, v in zip(b["index"], b["video"]):
                    tr.setup.frozen.clip_stats(int(i), v)
        for tr in trainers.values():
            for s in range(warmup):
                tr.step(batches[s], s)
        medians = {name: [] for name in trainers}
        for _ in range(n_runs):
            for name, tr in trainers.items():
                times = [tr.step(batches[warmup + s], warmup + s) for s in range(steps)]
                medians[name].append(statistics.median(times))
        out = {name: _summary(m) for name, m in medians.items()}
        out["precision_used"] = trainers["fast"].precision
        out["speedup"] = out["today"]["median"] / out["fast"]["median"]
        return out


def sampling_side_by_side(n_runs: int, videos: int) -> dict:
    import PIL.Image

    from remoco import data, evaluate
    from remoco.sampling import sample_videos

    pipe = shipped.load_shipped_pipeline("remoco")
    clips = [data.make_clip(evaluate.CHAPTER5_CLIP_SEED + i, kind="object") for i in range(videos)]
    conds = []
    for c in clips:
        traj, brush = evaluate.object_trajectory(c)
        conds.append(dict(trajectories=[torch.as_tensor(traj, dtype=torch.float32)], brush_mask=brush,
                          k=shipped.shipped_drag_settings()["k"], trajectory_fill="brush"))
    firsts = [c.video[0].numpy() for c in clips]
    seeds = [21000 + i for i in range(videos)]
    kw = dict(num_frames=8, num_inference_steps=15)

    def today():
        for im, s, c in zip(firsts, seeds, conds):
            pipe(PIL.Image.fromarray(im), generator=torch.Generator().manual_seed(s), output_type="np", **kw, **c)

    def fast():
        sample_videos(pipe, firsts, seeds, conds, batch_size=8, precision="auto", **kw)

    today()  # warm-up
    per_video = {"today": [], "fast": []}
    for _ in range(n_runs):
        for name, fn in (("today", today), ("fast", fast)):
            t0 = time.perf_counter()
            fn()
            per_video[name].append((time.perf_counter() - t0) / videos)
    out = {name: _summary(m) for name, m in per_video.items()}
    out["speedup"] = out["today"]["median"] / out["fast"]["median"]
    out["precision_used"] = speed.resolve_mixed_precision("auto")
    return out


def paper_scale_step(device: str = "cuda", frames: int = 14, height: int = 320, width: int = 512) -> dict:
    """One controller training step at paper scale on random weights: forward, backward, AdamW, in bf16."""
    from remoco import edm, models
    from remoco.controller import ReMoCoController
    from remoco.lora import add_lora

    dev = torch.device(device)
    unet = models.build_unet(models.svd_unet_config(num_frames=frames)).to(dev)
    unet.requires_grad_(False)
    ctrl = ReMoCoController.from_unet(unet, vae_scale_factor=8, generator=torch.Generator().manual_seed(0))
    add_lora(unet, rank=32, generator=torch.Generator().manual_seed(1))
    params = list(ctrl.parameters()) + [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, fused=dev.type == "cuda")
    h, w = height // 8, width // 8
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(1, frames, 4, h, w, generator=g).to(dev)
    ref = torch.randn(1, frames, 4, h, w, generator=g).to(dev)
    emb = torch.randn(1, 1, unet.config.cross_attention_dim, generator=g).to(dev)
    ids = torch.tensor([[7.0, 127.0, 0.02]], device=dev)
    cond = torch.randn(1, frames, 3, height, width, generator=g).to(dev)
    sigma = torch.tensor([1.0], device=dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(3):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16), ctrl.conditioned(cond):
            z = z0 + sigma.view(-1, 1, 1, 1, 1) * torch.randn_like(z0)
            loss = edm.denoising_loss(edm.predict_x0(unet, z, sigma, ref, emb, ids).float(), z0, sigma)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    out = {"frames": frames, "size": [height, width], "seconds_per_step": statistics.median(times[1:]),
           "trainable_params": sum(p.numel() for p in params)}
    if dev.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
        out["device"] = torch.cuda.get_device_name(dev)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--stages", nargs="*", default=["controller", "unet"], choices=["controller", "unet"])
    ap.add_argument("--sampling", action="store_true")
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--paper-step", action="store_true", help="one paper-scale controller step (a CUDA GPU only)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = {"machine": speed.machine_summary(), "threads": a.threads, "paths": {"today": config.BASELINE_PATH,
                                                                             "fast": config.FAST_PATH}}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        for stage in a.stages:
            r = training_side_by_side(stage, a.runs, a.steps, a.warmup, dev)
            out[f"train {stage} ({dev})"] = r
            print(f"{stage:10s} {dev}: today {r['today']['median']:.3f} s/step ({r['today']['min']:.3f}-"
                  f"{r['today']['max']:.3f}), fast {r['fast']['median']:.3f} ({r['fast']['min']:.3f}-"
                  f"{r['fast']['max']:.3f}) [{r['precision_used']}]: {r['speedup']:.2f}x", flush=True)
    if a.sampling:
        r = sampling_side_by_side(a.runs, a.videos)
        out["sampling (cpu)"] = r
        print(f"sampling   cpu: today {r['today']['median']:.3f} s/video ({r['today']['min']:.3f}-"
              f"{r['today']['max']:.3f}), fast {r['fast']['median']:.3f} ({r['fast']['min']:.3f}-"
              f"{r['fast']['max']:.3f}) [{r['precision_used']}]: {r['speedup']:.2f}x", flush=True)
    if a.paper_step:
        if "cuda" not in devices:
            print("paper-scale step: no CUDA device here (it needs a GPU's memory); skipped")
        else:
            out["paper-scale controller step (cuda)"] = r = paper_scale_step("cuda")
            print(f"paper-scale controller step on {r['device']}: {r['seconds_per_step']:.2f} s, peak memory "
                  f"{r['peak_memory_gib']:.1f} GiB, {r['trainable_params'] / 1e6:.0f} M trainable")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
