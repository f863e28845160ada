"""Where one training step's time goes, phase by phase, at the shipped toy recipe.

Builds the run exactly as ``remoco train`` does (:func:`remoco.train.denoiser_setup` on the given config), then
times ``--steps`` optimizer steps with wall-clock timers around each phase, and reports the median over the steps
after ``--warmup``:

* data: the next batch from the loader (synthetic clips and their flow; cached after a clip's first read);
* clip latents + CLIP: VAE posterior and CLIP embedding of each clip (cached per clip after its first read);
* reference VAE encode: the noise-augmented reference frame through the VAE encoder (every step);
* motion condition: T_s and M_mot from each clip's flow (Sec. 3.2, every step);
* rest of the batch: noise, sigma, conditioning augmentation, dropout (what edm_training_batch does besides);
* motion encoder / modulation terms: the controller's encoder and its gamma/beta convolutions (forward);
* UNet forward: the 3D-UNet with the controller's hooks and LoRA, less the two above;
* backward, optimizer: ``loss.backward()``, gradient clipping, AdamW step and zero_grad.

``--ab`` also times a forward + backward of the UNet alone, with LoRA, and with LoRA + controller hooks on one
batch (the cost of the wrappers). ``--path fast`` / ``--path baseline`` profiles the config with
:data:`remoco.config.FAST_PATH` / :data:`remoco.config.BASELINE_PATH` (bf16 where native, fused AdamW / fp32,
foreach AdamW) instead of as it is.

    .venv/bin/python benchmarks/profile_step.py --config data/checkpoints/remoco-toy/config.yaml --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch

from remoco import config, objective, runs, speed
from remoco import train as T
from remoco.clips import StepBatchSampler, collate_clips
from remoco.config import TrainConfig

PHASES = ["data", "clip latents + CLIP", "reference VAE encode", "motion condition", "rest of the batch",
          "motion encoder", "modulation terms", "UNet forward", "backward", "optimizer"]


class PhaseTimer:
    def __init__(self):
        self.step: dict = defaultdict(float)
        self.steps: list = []

    @contextmanager
    def time(self, phase: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.step[phase] += time.perf_counter() - t0

    def wrap(self, obj, name: str, phase: str):
        fn = getattr(obj, name)

        def timed(*a, **kw):
            with self.time(phase):
                return fn(*a, **kw)

        setattr(obj, name, timed)

    def hook_module(self, module, phase: str):
        """Time a module's forward with pre/post hooks (nested phases are subtracted by the report)."""
        start = {}

        def pre(_m, _a):
            start["t"] = time.perf_counter()

        def post(_m, _a, _o):
            self.step[phase] += time.perf_counter() - start.pop("t")

        return [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]

    def end_step(self):
        self.steps.append(dict(self.step))
        self.step = defaultdict(float)


def profile(cfg: TrainConfig, stage: str, steps: int, warmup: int, warm_cache: bool = True) -> dict:
    """Median seconds per phase over ``steps - warmup`` steps of ``stage``. ``warm_cache``: encode the clips of
    those steps beforehand (a run encodes each clip once, at its first visit, ~1/7 of the visits at the toy
    recipe: :func:`first_visit_cost` measures that separately)."""
    setup = T.denoiser_setup(cfg, stage, torch.device("cpu"))
    tm = PhaseTimer()
    tm.wrap(setup.frozen, "clip_stats", "clip latents + CLIP")
    tm.wrap(setup.frozen, "encode_reference", "reference VAE encode")
    original_condition = objective.motion_condition

    def timed_condition(*a, **kw):
        with tm.time("motion condition"):
            return original_condition(*a, **kw)

    objective.motion_condition = timed_condition
    handles = tm.hook_module(setup.unet, "UNet forward (total)")
    if setup.controller is not None:
        handles += tm.hook_module(setup.controller.encoder, "motion encoder")
        for m in setup.controller.modulations.values():
            tm.wrap(m, "condition_terms", "modulation terms")
    optimizer = T.make_optimizer(cfg, setup.params, cfg.lr)
    flat = [p for g in setup.params for p in g["params"]] if isinstance(setup.params[0], dict) else setup.params
    sampler = StepBatchSampler(len(setup.dataset), cfg.batch_size, runs.seed_int(cfg.seed, runs.STAGE_ID[stage]),
                                 0, steps)
    loader = torch.utils.data.DataLoader(setup.dataset, batch_sampler=sampler, collate_fn=collate_clips)
    if warm_cache:
        for idx in sampler:
            for i in idx:
                setup.frozen.clip_stats(i, setup.dataset[i]["video"])
    it = iter(loader)
    setup.module.train()
    precision = speed.resolve_mixed_precision(cfg.mixed_precision)
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    try:
        for step in range(steps):
            t0 = time.perf_counter()
            with tm.time("data"):
                batch = next(it)
            gen = runs.step_generator(cfg.seed, stage, step)
            with amp:
                t_loss = time.perf_counter()
                loss = setup.loss_fn(setup.module, batch, gen)
                tm.step["loss (total)"] += time.perf_counter() - t_loss
            with tm.time("backward"):
                loss.backward()
            with tm.time("optimizer"):
                torch.nn.utils.clip_grad_norm_(flat, cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            tm.step["step (total)"] = time.perf_counter() - t0
            tm.end_step()
    finally:
        objective.motion_condition = original_condition
        for h in handles:
            h.remove()
    rows = []
    for s in tm.steps[warmup:]:
        r = dict(s)
        enc, mod = r.get("motion encoder", 0.0), r.get("modulation terms", 0.0)
        r["UNet forward"] = r.pop("UNet forward (total)") - enc - mod
        inside = sum(r.get(k, 0.0) for k in ("clip latents + CLIP", "reference VAE encode", "motion condition",
                                             "UNet forward")) + enc + mod
        r["rest of the batch"] = r.pop("loss (total)") - inside
        rows.append(r)
    med = {p: statistics.median(r.get(p, 0.0) for r in rows) for p in PHASES + ["step (total)"]}
    med["step (min)"] = min(r["step (total)"] for r in rows)
    med["step (max)"] = max(r["step (total)"] for r in rows)
    return med


def wrapper_costs(cfg: TrainConfig, repeats: int = 5) -> dict:
    """Forward + backward of one batch: the bare UNet, with LoRA, with LoRA and the controller's hooks."""
    from remoco import edm

    setup = T.denoiser_setup(cfg, "controller", torch.device("cpu"))
    batch = collate_clips([setup.dataset[i] for i in range(cfg.batch_size)])
    b = objective.edm_training_batch(cfg, "controller", setup.frozen, batch, torch.Generator().manual_seed(0),
                                     setup.scaling_factor)
    bare = T.load_base_components(cfg)["unet"].train()
    args = (b["z"], b["sigma"], b["image_latents"], b["image_embeddings"], b["added_time_ids"])
    out = {}
    for label, unet, ctrl in (("bare UNet", bare, None), ("UNet + LoRA + controller", setup.unet, setup.controller),
                              ("UNet + LoRA", setup.unet, None)):
        if label == "UNet + LoRA":
            setup.controller.detach()
        unet.requires_grad_(True)
        times = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            if ctrl is not None:
                with ctrl.conditioned(b["condition"]):
                    z = edm.predict_x0(unet, *args)
            else:
                z = edm.predict_x0(unet, *args)
            edm.denoising_loss(z, b["z0"], b["sigma"]).backward()
            times.append(time.perf_counter() - t0)
        out[label] = statistics.median(times[1:])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="data/checkpoints/remoco-toy/config.yaml")
    ap.add_argument("--stage", default=None, help="unet or controller (default: the config's)")
    ap.add_argument("--steps", type=int, default=14)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--path", choices=("as-is", "fast", "baseline"), default="as-is",
                    help="the config as it is, or with config.FAST_PATH / config.BASELINE_PATH")
    ap.add_argument("--ab", action="store_true", help="also time the LoRA and hook wrappers")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = TrainConfig.from_yaml(a.config)
    stage = a.stage or ("unet" if cfg.stage == "base" else cfg.stage)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = cfg.replace(out_dir=str(Path(tmp) / "run"), progress=False)
        if a.path != "as-is":
            cfg = cfg.replace(**(config.FAST_PATH if a.path == "fast" else config.BASELINE_PATH))
        med = profile(cfg, stage, a.steps, a.warmup)
        total = med["step (total)"]
        print(f"{stage} step, {a.threads} thread(s), mixed_precision={cfg.mixed_precision} "
              f"({speed.resolve_mixed_precision(cfg.mixed_precision)}), fused_adam={cfg.fused_adam}: median over "
              f"{a.steps - a.warmup} steps {total:.3f} s (min {med['step (min)']:.3f}, max {med['step (max)']:.3f})")
        print(f"{'phase':28s} {'s/step':>8s} {'share':>6s}")
        for p in PHASES:
            print(f"{p:28s} {med[p]:8.4f} {100 * med[p] / total:5.1f}%")
        res = {"stage": stage, "threads": a.threads, "path": a.path, "mixed_precision": cfg.mixed_precision,
               "fused_adam": cfg.fused_adam, "machine": speed.machine_summary(), "phases": med}
        if a.ab:
            costs = wrapper_costs(cfg)
            res["wrappers"] = costs
            for k, v in costs.items():
                print(f"forward + backward, {k:26s} {v:.3f} s")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
