"""Training of the toy SVD base model and of the ReMoCo controller (Sections 3.1-3.3, 4.1) with ``accelerate``.

One entry point, :func:`train`, trains every model of the book, selected by a
:class:`~remoco.config.TrainConfig`:

* ``stage="base"`` — the toy image-to-video model ("toy SVD") from scratch on synthetic clips: first the
  toy VAE (``vae_kind``: the plain autoencoder :class:`remoco.toy_vae.ToyAutoencoder` at the toy preset, or SVD's
  ``AutoencoderKLTemporalDecoder``; pixel reconstruction + a small KL term, zero for the plain one), then the
  3D-UNet with SVD's EDM objective (Eq. 1-3, :mod:`remoco.objective`), conditioned on the first frame exactly as SVD.
  The CLIP tower stays frozen (as in SVD).
* ``stage="controller"`` — ReMoCo on top of the frozen base: motion encoder + adaptive feature modulation
  (Eq. 8) + LoRA on every attention of the transformer blocks (Eq. 9); only those are trained (Sec. 3.3).
  The motion conditions are computed on the fly from each clip (:func:`remoco.objective.motion_condition`).
  ``variant`` selects the baselines of the evaluation: ``"gaussian"``, ``"traj_only"``, ``"concat"``,
  ``"sum"``.

Reproducibility: every random draw of step ``s`` comes from :func:`remoco.runs.step_generator`, and the
clip order from :class:`remoco.clips.StepBatchSampler`; a run killed at any moment and restarted with the
same command resumes from its last checkpoint (``accelerator.save_state``, written atomically) and ends with
bit-identical weights.

Command line (``python -m remoco.train ARGS`` is ``remoco train ARGS``, :mod:`remoco.cli`)::

    python -m remoco.train --preset toy-cpu --stage base --out runs/base
    python -m remoco.train --preset toy-cpu --stage controller --out runs/remoco [--variant gaussian]
    remoco ship                                   # regenerate data/checkpoints/
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .clips import StepBatchSampler, TrainClips, collate_clips
from .config import VARIANT_CONDITION, VARIANT_INJECTION, TrainConfig, add_train_arguments, config_from_args
from .ema import attach_ema, copy_ema_to, update_ema
from .objective import Denoiser, FrozenEncoders, edm_training_batch, to_pixels
from .runs import (
    LOG_FIELDS,
    STAGE_ID,
    atomic_dir,
    clean_tmp,
    is_finished,
    list_checkpoints,
    peak_rss_mb,
    provenance,
    read_log,
    save_checkpoint,
    seed_int,
    step_generator,
    truncate_log,
    write_json,
)

__all__ = [
    "TrainResult",
    "DenoiserSetup",
    "denoiser_setup",
    "controller_modules",
    "train",
    "count_trainable",
    "load_base_components",
    "lr_at",
    "make_optimizer",
    "make_accelerator",
    "run_loop",
    "run_from_args",
    "main",
]


@dataclass
class TrainResult:
    """What :func:`train` returns: the final model folder (``None`` when stopped early), the CSV logs, the
    last losses, wall times (s) per sub-stage, steps done in this run and whether the run was stopped."""

    config: TrainConfig
    final_path: Path | None
    logs: dict = field(default_factory=dict)
    final_loss: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    steps_this_run: dict = field(default_factory=dict)
    interrupted: bool = False
    peak_rss_mb: float | None = None
    trainable_parameters: dict = field(default_factory=dict)
    total_parameters: dict = field(default_factory=dict)


class VAEModule(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x, num_frames, eps, latent_noise=None):
        dist = self.vae.encode(x).latent_dist
        z = dist.mean + dist.std * eps
        if latent_noise is not None:  # TrainConfig.vae_latent_noise: noise in units of the batch's latent std
            z = z + latent_noise * z.detach().std()
        from .toy_vae import decode_frames

        rec = decode_frames(self.vae, z, num_frames)
        return rec, dist.kl()


def count_trainable(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts of a module."""
    tr = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return tr, sum(p.numel() for p in module.parameters())


def load_base_components(config: TrainConfig, path_override: str | None = None) -> dict:
    from . import models

    base = path_override or config.base
    if base.startswith("random:"):
        return models.build_toy_components(int(base.split(":", 1)[1]))
    pipe = models.load_svd_pipeline(base)
    return {k: getattr(pipe, k) for k in ("vae", "image_encoder", "unet", "scheduler", "feature_extractor")}


def lr_at(cfg: TrainConfig, step: int, total: int, base_lr: float) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warmup, then constant or cosine to 10 %."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return base_lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "cosine":
        t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))
    return base_lr


def run_loop(cfg: TrainConfig, stage: str, stage_dir: Path, accelerator, model: nn.Module,
              params: list, base_lr: float, total_steps: int, loss_fn, dataset) -> dict:
    """The accelerate training loop shared by every stage, with resume, CSV log and atomic checkpoints.

    ``loss_fn(model, batch, generator) -> scalar loss``. Returns a dict with the final loss, seconds,
    steps done in this run and whether the run stopped early (``stop_after``)."""
    from tqdm.auto import tqdm

    stage_dir.mkdir(parents=True, exist_ok=True)
    ckpt_root = stage_dir / "checkpoints"
    log_path = stage_dir / "log.csv"
    if accelerator.is_main_process:
        clean_tmp(ckpt_root)
    flat_params = [p for g in params for p in g["params"]] if params and isinstance(params[0], dict) else params
    # an EMA of the weights (remoco.ema): buffers of the model, so checkpoints carry it; the VAE stage keeps none
    shadows = attach_ema(model, flat_params) if cfg.ema_decay is not None and stage != "vae" else None
    optimizer = make_optimizer(cfg, params, base_lr)
    model, optimizer = accelerator.prepare(model, optimizer)
    start, elapsed = 0, 0.0
    ckpts = list_checkpoints(ckpt_root)
    if ckpts:
        step0, path = ckpts[-1]
        state = json.loads((path / "train_state.json").read_text())
        if state.get("fingerprint") != cfg.fingerprint(stage):
            raise ValueError(
                f"out_dir={str(cfg.out_dir)!r} holds a {stage} run with a different config (fingerprint "
                f"{state.get('fingerprint')} != {cfg.fingerprint(stage)}): use another out_dir or the same config")
        accelerator.load_state(str(path))
        start, elapsed = int(state["global_step"]), float(state["seconds"])
        if accelerator.is_main_process:
            truncate_log(log_path, start)
    elif accelerator.is_main_process and log_path.exists():
        log_path.unlink()
    if accelerator.is_main_process and not log_path.exists():
        with open(log_path, "w", newline="") as f:
            csv.DictWriter(f, fieldnames=LOG_FIELDS).writeheader()

    accum = cfg.grad_accum
    bs = cfg.vae_batch_size if stage == "vae" else cfg.batch_size
    sampler = StepBatchSampler(len(dataset), bs, seed_int(cfg.seed, STAGE_ID[stage]), start * accum,
                               total_steps * accum, accelerator.process_index, accelerator.num_processes)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_clips,
                                         num_workers=cfg.num_workers)
    it = iter(loader)
    model.train()
    last_loss = float("nan")
    done = 0
    interrupted = False
    bar = tqdm(total=total_steps, initial=start, desc=f"train {stage}",
               disable=not (cfg.progress and accelerator.is_main_process))
    t_run = time.perf_counter()
    for step in range(start, total_steps):
        lr = lr_at(cfg, step, total_steps, base_lr)
        for g in optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        losses = []
        for micro in range(accum):
            batch = next(it)
            gen = step_generator(cfg.seed, stage, step, micro, accelerator.process_index)
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss = loss_fn(model, batch, gen)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm:
                    accelerator.clip_grad_norm_(flat_params, cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach().float())
        if shadows is not None:
            update_ema(shadows, flat_params, cfg.ema_decay, step + 1)
        loss_v = accelerator.gather(torch.stack(losses).mean()[None]).mean().item()
        if not math.isfinite(loss_v):
            raise FloatingPointError(f"{stage} loss became {loss_v} at step {step + 1}")
        last_loss = loss_v
        done += 1
        gstep = step + 1
        secs = elapsed + (time.perf_counter() - t_run)
        if accelerator.is_main_process and (gstep % cfg.log_every == 0 or gstep == total_steps):
            with open(log_path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=LOG_FIELDS).writerow(
                    {"step": gstep, "loss": f"{loss_v:.6g}", "lr": f"{lr:.6g}", "seconds": f"{secs:.2f}"})
        bar.update(1)
        bar.set_postfix(loss=f"{loss_v:.4f}")
        if gstep % cfg.checkpoint_every == 0 or gstep == total_steps:
            state = {"global_step": gstep, "seconds": secs, "fingerprint": cfg.fingerprint(stage), "stage": stage,
                     "loss": loss_v}
            save_checkpoint(accelerator, ckpt_root, gstep, state,
                            provenance(cfg, stage=stage, global_step=gstep,
                                       num_processes=accelerator.num_processes), cfg.keep_checkpoints)
        if cfg.stop_after is not None and done >= cfg.stop_after and gstep < total_steps:
            interrupted = True
            break
    bar.close()
    if shadows is not None and not interrupted:
        copy_ema_to(flat_params, shadows)  # the run's weights are the average (its checkpoints keep both)
    if done == 0 and ckpts:
        state = json.loads((ckpts[-1][1] / "train_state.json").read_text())
        last_loss = float(state.get("loss", float("nan")))
    return dict(loss=last_loss, seconds=elapsed + (time.perf_counter() - t_run), steps=done,
                interrupted=interrupted, model=model, log=log_path)


def make_optimizer(cfg: TrainConfig, params: list, base_lr: float):
    """AdamW with the config's settings; ``cfg.fused_adam``: its fused kernel (one pass over every parameter, on the
    CPU or a GPU) instead of the foreach one."""
    kw = {"fused": True} if cfg.fused_adam else {}
    return torch.optim.AdamW(params, lr=base_lr, betas=cfg.adam_betas, eps=cfg.adam_eps,
                             weight_decay=cfg.weight_decay, **kw)


def make_accelerator(cfg: TrainConfig, accum: int, stage: str | None = None):
    """accelerate's Accelerator for a run of ``stage``; ``mixed_precision="auto"`` is resolved here for the device it
    picks (:func:`remoco.speed.stage_precision`) and recorded by :func:`remoco.runs.provenance`."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    from .speed import stage_precision

    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = stage_precision(cfg.mixed_precision, stage, device)
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and AcceleratorState().mixed_precision != precision:
        # accelerate keeps one state per process; a worker that trained another run at another precision must
        # start afresh (remoco.shipped.run_jobs hands several runs to one process)
        AcceleratorState._reset_state(True)
    return Accelerator(mixed_precision=precision, gradient_accumulation_steps=accum,
                       project_config=ProjectConfiguration(project_dir=str(cfg.out_dir)))


def vae_latent_scale(vae, dataset: TrainClips, n: int = 32) -> float:
    """``1 / std`` of the VAE latents over ``n`` clips — how SD's 0.18215 was chosen (unit-variance latents
    for EDM's sigma_data = 1)."""
    vals = []
    with torch.no_grad():
        for i in range(min(n, len(dataset))):
            x = to_pixels(dataset[i]["video"][None])[0]
            vals.append(vae.encode(x.to(vae.device)).latent_dist.mode().flatten().cpu())
    return float(1.0 / torch.cat(vals).std())


def toy_vae_config_of(cfg: TrainConfig) -> dict:
    """The toy VAE architecture a config asks for (:func:`remoco.models.toy_vae_config`)."""
    from .models import toy_vae_config

    return toy_vae_config(cfg.vae_channels, cfg.vae_layers_per_block, cfg.vae_latent_channels, cfg.vae_norm_channels,
                          kind=cfg.vae_kind)


def toy_unet_config_of(cfg: TrainConfig) -> dict:
    """The toy 3D-UNet architecture a config asks for (:func:`remoco.models.toy_unet_config`)."""
    from .models import toy_unet_config

    return toy_unet_config(cfg.vae_latent_channels, cfg.unet_channels, cfg.unet_attention)


def vae_from_checkpoint(cfg: TrainConfig, checkpoint) -> nn.Module:
    """The toy VAE of a VAE-stage training checkpoint folder (``.../vae/checkpoints/checkpoint-NNNNNN``, its
    ``model.safetensors``), in eval mode; ``cfg`` names its architecture."""
    from safetensors.torch import load_file

    from . import models

    f = Path(checkpoint) / "model.safetensors"
    if not f.is_file():
        raise FileNotFoundError(f"checkpoint={str(checkpoint)!r} has no model.safetensors (a VAE training checkpoint)")
    vae = models.build_toy_components(cfg.seed, vae_config=toy_vae_config_of(cfg))["vae"]
    module = VAEModule(vae)
    module.load_state_dict(load_file(f))
    return vae.eval()


def vae_training_frames(cfg: TrainConfig, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """What one VAE step reconstructs from a batch of clips ``x`` (B, L, 3, H, W): ``cfg.vae_frames`` consecutive
    frames of each clip from a random start (all L when None; the temporal decoder needs neighbouring frames),
    cropped to ``cfg.vae_crop`` pixels at a random place when set."""
    B, L, _, H, W = x.shape
    n = cfg.vae_frames or L
    if n < L:
        t0 = torch.randint(0, L - n + 1, (B,), generator=gen)
        x = torch.stack([x[b, t0[b]:t0[b] + n] for b in range(B)])
    crop = cfg.vae_crop
    if crop is not None and crop < min(H, W):
        ys = torch.randint(0, H - crop + 1, (B,), generator=gen)
        xs = torch.randint(0, W - crop + 1, (B,), generator=gen)
        x = torch.stack([x[b, :, :, ys[b]:ys[b] + crop, xs[b]:xs[b] + crop] for b in range(B)])
    return x


def vae_reconstruction_loss(cfg: TrainConfig, rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The toy VAE's reconstruction term: MSE, or L1 + MSE (``cfg.vae_loss``; L1 keeps pushing once the errors
    are small, where MSE's gradient fades)."""
    mse = torch.nn.functional.mse_loss(rec, x)
    return mse + torch.nn.functional.l1_loss(rec, x) if cfg.vae_loss == "l1+mse" else mse


def train_vae_stage(cfg: TrainConfig, root: Path) -> tuple[Path | None, dict]:
    from . import models

    sdir = root / "vae"
    final = sdir / "final"
    if is_finished(final, cfg, "vae"):
        return final, {"skipped": True, "log": sdir / "log.csv"}
    acc = make_accelerator(cfg, cfg.grad_accum, "vae")
    comps = models.build_toy_components(cfg.seed, vae_config=toy_vae_config_of(cfg))
    vae = comps["vae"]
    vae.train()
    module = VAEModule(vae)
    ds = TrainClips(cfg, with_flow=False)

    def loss_fn(model, batch, gen):
        x = vae_training_frames(cfg, to_pixels(batch["video"]), gen).to(acc.device)  # (B, L', 3, h, w)
        L = x.shape[1]
        x = x.flatten(0, 1)
        h, w = x.shape[-2] // 4, x.shape[-1] // 4
        eps = torch.randn(x.shape[0], vae.config.latent_channels, h, w, generator=gen).to(acc.device)
        noise = None
        if cfg.vae_latent_noise > 0:  # drawn only then, so runs without it keep their random stream
            s = cfg.vae_latent_noise * torch.rand(x.shape[0], 1, 1, 1, generator=gen)
            noise = (s * torch.randn(eps.shape, generator=gen)).to(acc.device)
        rec, kl = model(x, L, eps if cfg.vae_sample_posterior else torch.zeros_like(eps), noise)
        return vae_reconstruction_loss(cfg, rec.float(), x) + cfg.vae_kl_weight * kl.mean() / x[0].numel()

    params = [p for p in vae.parameters() if p.requires_grad]
    res = run_loop(cfg, "vae", sdir, acc, module, params, cfg.vae_lr, cfg.vae_steps, loss_fn, ds)
    if res["interrupted"]:
        return None, res
    vae = acc.unwrap_model(res["model"]).vae.eval()
    if acc.is_main_process:
        sf = vae_latent_scale(vae, ds)
        vae.register_to_config(scaling_factor=sf)
        with atomic_dir(final) as tmp:
            vae.save_pretrained(tmp, safe_serialization=True)
            write_json(tmp / "provenance.json", provenance(cfg, stage="vae", scaling_factor=sf, loss=res["loss"]))
    acc.wait_for_everyone()
    res["model"] = None
    return final, res


@dataclass
class DenoiserSetup:
    """What one UNet or controller training run is built from (:func:`denoiser_setup`)."""

    components: dict
    unet: nn.Module
    controller: nn.Module | None
    params: list
    frozen: FrozenEncoders
    scaling_factor: float
    module: Denoiser
    dataset: TrainClips
    loss_fn: object


def controller_modules(cfg: TrainConfig) -> tuple[dict, nn.Module, nn.Module]:
    """The base components of ``cfg.base``, its UNet with LoRA added and a new controller of ``cfg.variant`` attached
    to it, initialised as a controller run of ``cfg`` starts (seeded by ``cfg.seed``; the global RNG is left as it
    was). The UNet's own weights are frozen; the caller decides what trains."""
    from . import models
    from .controller import ReMoCoController
    from .lora import add_lora

    comps = load_base_components(cfg)
    unet = comps["unet"]
    unet.requires_grad_(False)
    g = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed_int(cfg.seed, 17))
        controller = ReMoCoController.from_unet(
            unet, vae_scale_factor=models.vae_scale_factor(comps["vae"]), injection=VARIANT_INJECTION[cfg.variant],
            sites=cfg.sites, displacement_scale=cfg.displacement_scale, attach=True,
            condition_type=VARIANT_CONDITION[cfg.variant])
        add_lora(unet, rank=cfg.lora_rank, targets=cfg.lora_targets)
    finally:
        torch.random.set_rng_state(g)
    return comps, unet, controller


def denoiser_setup(cfg: TrainConfig, stage: str, device, vae_path: Path | None = None) -> DenoiserSetup:
    """The models, trainable parameters, frozen encoders, clips and loss of a ``stage`` ("unet": the toy base's
    3D-UNet; "controller": ReMoCo on ``cfg.base``) training run, as :func:`train` builds them (the profiler in
    ``benchmarks/`` builds the same). ``loss_fn(model, batch, generator)`` is Eq. 3 on one micro-batch."""
    from . import edm, models

    if stage == "unet":
        comps = models.build_toy_components(cfg.seed, vae_config=toy_vae_config_of(cfg),
                                            unet_config=toy_unet_config_of(cfg))
        if vae_path is not None:
            from .toy_vae import load_vae

            comps["vae"] = load_vae(vae_path)
        unet = comps["unet"]
        unet.train()
        controller = None
        params = [p for p in unet.parameters() if p.requires_grad]
    elif stage == "controller":
        comps, unet, controller = controller_modules(cfg)
        unet.train()
        controller.train()
        params = [p for p in controller.parameters() if p.requires_grad] + \
                 [p for p in unet.parameters() if p.requires_grad]
        if cfg.unet_lr > 0:  # departure from the paper: the base UNet's own weights train too
            base_params = [p for n, p in unet.named_parameters() if "lora_" not in n]
            for p in base_params:
                p.requires_grad_(True)
            params = [{"params": params, "lr_scale": 1.0},
                      {"params": base_params, "lr_scale": cfg.unet_lr / cfg.lr}]
    else:
        raise ValueError(f"stage must be 'unet' or 'controller', got {stage!r}")
    frozen = FrozenEncoders(comps["vae"], comps["image_encoder"], comps["feature_extractor"], device,
                            cfg.cache_latents)
    sf = float(comps["vae"].config.scaling_factor)
    ds = TrainClips(cfg, with_flow=(stage == "controller" or cfg.motion_bucket == "flow"))
    if cfg.num_workers > 0 and cfg.cache_clips and cfg.data == "synthetic":
        ds.prefill(cfg.num_workers)  # the loader's workers then fork with every clip drawn

    def loss_fn(model, batch, gen):
        b = edm_training_batch(cfg, stage, frozen, batch, gen, sf)
        z0_hat = model(b["z"], b["sigma"], b["image_latents"], b["image_embeddings"], b["added_time_ids"],
                       b.get("condition"))
        return edm.denoising_loss(z0_hat, b["z0"], b["sigma"])

    return DenoiserSetup(comps, unet, controller, params, frozen, sf, Denoiser(unet, controller), ds, loss_fn)


def train_denoiser_stage(cfg: TrainConfig, root: Path, stage: str, vae_path: Path | None = None):
    """UNet stage (toy base) or controller stage; returns (final folder or None, loop result)."""
    from diffusers import StableVideoDiffusionPipeline

    sdir = root / stage
    final = sdir / "final"
    if is_finished(final, cfg, stage):
        return final, {"skipped": True, "log": sdir / "log.csv"}
    acc = make_accelerator(cfg, cfg.grad_accum, stage)
    setup = denoiser_setup(cfg, stage, acc.device, vae_path)
    comps, sf, module, params, ds, loss_fn = (setup.components, setup.scaling_factor, setup.module, setup.params,
                                              setup.dataset, setup.loss_fn)
    res = run_loop(cfg, stage, sdir, acc, module, params, cfg.lr, cfg.max_steps, loss_fn, ds)
    res["trainable"], res["total_params"] = count_trainable(module)
    if res["interrupted"]:
        return None, res
    mod = acc.unwrap_model(res["model"])
    res["model"] = None
    if acc.is_main_process:
        prov = provenance(cfg, stage=stage, loss=res["loss"], trainable_parameters=res["trainable"],
                          scaling_factor=sf)
        if stage == "unet":
            mod.unet.eval()
            pipe = StableVideoDiffusionPipeline(vae=comps["vae"], image_encoder=comps["image_encoder"],
                                                unet=mod.unet, scheduler=comps["scheduler"],
                                                feature_extractor=comps["feature_extractor"])
            with atomic_dir(final) as tmp:
                pipe.save_pretrained(tmp, safe_serialization=True)
                write_json(tmp / "provenance.json", prov)
        else:
            from .controller import save_controller

            mod.controller.eval()
            with atomic_dir(final) as tmp:
                save_controller(tmp, mod.controller, mod.unet, unet_weights=cfg.unet_lr > 0)
                write_json(tmp / "provenance.json", prov)
    acc.wait_for_everyone()
    return final, res


def train(config: TrainConfig) -> TrainResult:
    """Train what ``config.stage`` says and return a :class:`TrainResult`.

    ``base``: the toy VAE (``config.vae_steps`` steps; skipped when 0) then the toy 3D-UNet; the final model
    is a diffusers pipeline folder ``OUT/unet/final``. ``vae`` / ``unet``: one of the two. ``controller``:
    ReMoCo (``config.variant``) on ``config.base``; the final folder ``OUT/controller/final`` holds
    :func:`remoco.controller.save_controller`'s output. Re-running the same config in the same ``out_dir``
    resumes (or returns at once if finished). ``config.yaml`` is written in ``out_dir``."""
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    config.validate()
    root = Path(config.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    config.to_yaml(root / "config.yaml")
    result = TrainResult(config=config, final_path=None)

    def record(name, res):
        if res.get("skipped"):
            result.logs[name] = res["log"]
            try:
                result.final_loss[name] = float(read_log(res["log"])["loss"][-1])
            except (FileNotFoundError, IndexError, KeyError):
                pass
            return
        result.logs[name] = res["log"]
        result.final_loss[name] = res["loss"]
        result.seconds[name] = res["seconds"]
        result.steps_this_run[name] = res["steps"]
        result.interrupted = result.interrupted or res["interrupted"]
        if "trainable" in res:
            result.trainable_parameters[name] = res["trainable"]
            result.total_parameters[name] = res["total_params"]

    if config.stage in ("base", "vae"):
        if config.preset == "paper":
            raise ValueError("stage must be 'controller' with preset='paper' (the paper starts from SVD)")
        vae_path = None
        if config.vae_steps > 0:
            vae_path, res = train_vae_stage(config, root)
            record("vae", res)
            if vae_path is None:
                result.peak_rss_mb = peak_rss_mb()
                return result
        if config.stage == "vae":
            result.final_path = vae_path
        else:
            result.final_path, res = train_denoiser_stage(config, root, "unet", vae_path)
            record("unet", res)
    elif config.stage == "unet":
        vae_final = root / "vae" / "final"
        result.final_path, res = train_denoiser_stage(config, root, "unet",
                                                 vae_final if (vae_final / "provenance.json").is_file() else None)
        record("unet", res)
    else:
        result.final_path, res = train_denoiser_stage(config, root, "controller")
        record("controller", res)
    result.peak_rss_mb = peak_rss_mb()
    return result


def run_from_args(args) -> int:
    """Train the :func:`remoco.config.config_from_args` config and print the result as JSON."""
    res = train(config_from_args(args))
    print(json.dumps({"final_path": res.final_path, "final_loss": res.final_loss, "seconds": res.seconds,
                      "interrupted": res.interrupted, "peak_rss_mb": res.peak_rss_mb}, indent=2, default=str))
    return 0


def main(argv=None) -> int:
    """``python -m remoco.train ARGS``: the same as ``remoco train ARGS``."""
    parser = argparse.ArgumentParser(prog="python -m remoco.train", description="Train a toy model or a controller.")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except (ValueError, FileNotFoundError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
