"""Training of the toy SVD base model and of the ReMoCo controller (Sections 3.1-3.3, 4.1) with ``accelerate``.

One entry point trains every model of the book, selected by a :class:`TrainConfig`:

* ``stage="base"`` — the toy image-to-video model ("toy SVD") from scratch on synthetic clips: first the
  toy VAE (``AutoencoderKLTemporalDecoder``; pixel reconstruction + a small KL term), then the 3D-UNet with
  SVD's EDM objective (Eq. 1-3): log-normal p(sigma), v-prediction preconditioning, weight
  ``lambda_sigma = (sigma^2 + 1) / sigma^2``, conditioned on the first frame exactly as SVD (its VAE latent
  concatenated to the noised latents, its CLIP image embedding in cross-attention, added time ids
  fps / motion bucket / noise augmentation). The CLIP tower stays frozen (as in SVD).
* ``stage="controller"`` — ReMoCo on top of the frozen base: motion encoder + adaptive feature modulation
  (Eq. 8) + LoRA on every attention of the transformer blocks (Eq. 9); only those are trained (Sec. 3.3).
  The motion conditions are computed on the fly from each clip as Sec. 3.2 says (Eq. 4-7, k = 8,
  ``r_m ~ U[r_min, 1]`` drawn per sample): region-wise trajectory ``T_s`` + motion mask ``M_mot``.
  ``variant`` selects the baselines of the evaluation: ``"gaussian"`` (Gaussian-filtered point trajectory,
  DragNUWA-style, no motion mask), ``"traj_only"`` (``T_s`` without the motion mask), ``"concat"`` /
  ``"sum"`` (the injection ablations ReMoCo^C / ReMoCo^+ of Fig. 9).

Fine-tuning recipe (SVD / the authors' MotionPro release): ``log sigma ~ N(0.7, 1.6^2)``, conditioning
augmentation ``exp(N(-3, 0.5^2))`` on the reference frame (also fed as the ``noise_aug`` time id), 10 %
condition dropout for classifier-free guidance (image embedding, image latent and motion condition dropped
together, as the unconditional branch of the sampler sees them), AdamW.

Reproducibility: every random draw of step ``s`` comes from a generator seeded with ``(seed, stage, s,
micro-batch, process)``, and the clip order of epoch ``e`` is a permutation seeded with ``(seed, e)``; a run
killed at any moment and restarted with the same command resumes from its last checkpoint
(``accelerator.save_state``, written atomically) and ends with bit-identical weights.

Command line::

    python -m remoco.train --preset toy-cpu --stage base --out runs/base
    python -m remoco.train --preset toy-cpu --stage controller --out runs/remoco [--variant gaussian]
    python -m remoco.train --preset toy-cpu --ship          # regenerate data/checkpoints/
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "STAGES",
    "VARIANTS",
    "PRESETS",
    "TrainConfig",
    "TrainResult",
    "preset_config",
    "train",
    "read_log",
    "track_points",
    "trajectory_distance",
    "object_trajectory",
    "trajectory_following",
    "condition_ablation",
    "ABLATION_CONDITIONS",
    "count_trainable",
    "recipe_table",
    "main",
]

STAGES = ("base", "vae", "unet", "controller")
VARIANTS = ("remoco", "gaussian", "traj_only", "concat", "sum")
_INJECTION = {"remoco": "modulation", "gaussian": "modulation", "traj_only": "modulation",
              "concat": "concat", "sum": "sum"}
_KINDS = ("object", "camera", "part", "occlusion", "exit")
_STAGE_ID = {"vae": 1, "unet": 2, "controller": 3}

#: Folder of the shipped toy checkpoints (``data/checkpoints`` at the repository root).
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "data" / "checkpoints"


# ============================================================================================ config
@dataclass
class TrainConfig:
    """Every setting of a training run. Build one with :func:`preset_config` (``"toy-cpu"`` or ``"paper"``)
    and override fields; invalid values raise :class:`ValueError` naming the field.

    Fields that do not change the trained weights (``out_dir``, ``stop_after``, ``progress``, ``num_workers``,
    ``cache_clips``) are left out of the run fingerprint that a resumed run must match."""

    preset: str = "toy-cpu"
    stage: str = "controller"          # base (= vae then unet) | vae | unet | controller
    variant: str = "remoco"            # controller stage: remoco | gaussian | traj_only | concat | sum
    out_dir: str = "runs/toy"
    seed: int = 0
    # ---- data (Sec. 4.1: 16 frames at 320x512 in the paper)
    data: str = "synthetic"            # synthetic (remoco.data clips) | a folder of videos (paper scale)
    num_clips: int = 1024
    data_seed: int = 0
    num_frames: int = 8
    height: int = 64
    width: int = 64
    clip_kinds: dict | None = None     # {kind: weight} for the synthetic clips; None = remoco.data's mixture
    flow_source: str = "gt"            # gt (generator's exact flow) | opencv | dot | cotracker (remoco.flow)
    # ---- motion conditions (Sec. 3.2)
    k: int = 8
    r_min: float = 0.95
    condition_variant: str = "paper"   # paper | release (remoco.conditions)
    motion_threshold: float = 1.0
    displacement_scale: float | None = None
    # ---- models
    base: str = "data/checkpoints/toy-base"  # controller stage: base pipeline folder / hub id / "random:SEED"
    lora_rank: int = 32
    lora_targets: str = "attention"    # attention (paper) | all_linear (release)
    sites: str = "paper"               # paper | release (remoco.controller)
    # ---- optimisation
    batch_size: int = 8                # clips per process per micro-batch
    grad_accum: int = 1
    max_steps: int = 1000              # optimizer steps (unet / controller)
    lr: float = 1e-5
    lr_schedule: str = "constant"      # constant | cosine (to 10 % of lr)
    warmup_steps: int = 0
    weight_decay: float = 1e-2
    adam_betas: tuple = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float | None = 1.0
    mixed_precision: str = "no"        # no | fp16 | bf16 (accelerate)
    # ---- EDM recipe (SVD / MotionPro)
    p_mean: float = 0.7
    p_std: float = 1.6
    cond_aug_mean: float = -3.0
    cond_aug_std: float = 0.5
    cond_dropout: float = 0.1
    fps: int = 7
    motion_bucket_id: int = 127
    # ---- VAE (toy base only)
    vae_steps: int = 0
    vae_batch_size: int = 2
    vae_crop: int | None = None
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-6
    vae_sample_posterior: bool = True  # False: deterministic autoencoder (z = posterior mean), toy scale
    # ---- bookkeeping
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 1
    cache_latents: bool = True
    cache_clips: bool = True           # keep generated synthetic clips in memory (~0.4 MB each at toy size)
    num_workers: int = 0
    stop_after: int | None = None      # stop this run after N optimizer steps (simulated kill, tests)
    progress: bool = True

    _RUNTIME = ("out_dir", "stop_after", "progress", "num_workers", "cache_clips")

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> "TrainConfig":
        def fail(name, expected):
            raise ValueError(f"TrainConfig.{name} must be {expected}, got {getattr(self, name)!r}")

        def pos_int(name, zero_ok=False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if zero_ok else 1):
                fail(name, "a non-negative int" if zero_ok else "a positive int")

        def num(name, lo=None, hi=None, lo_open=False, optional=False):
            v = getattr(self, name)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                fail(name, "a finite number")
            if lo is not None and (v <= lo if lo_open else v < lo):
                fail(name, f"{'>' if lo_open else '>='} {lo}")
            if hi is not None and v > hi:
                fail(name, f"<= {hi}")

        if self.preset not in PRESETS and self.preset != "custom":
            fail("preset", f"one of {tuple(PRESETS)} or 'custom'")
        if self.stage not in STAGES:
            fail("stage", f"one of {STAGES}")
        if self.variant not in VARIANTS:
            fail("variant", f"one of {VARIANTS}")
        if not isinstance(self.out_dir, (str, os.PathLike)) or not str(self.out_dir):
            fail("out_dir", "a non-empty path")
        for n in ("num_clips", "num_frames", "height", "width", "k", "lora_rank", "batch_size", "grad_accum",
                  "max_steps", "vae_batch_size", "checkpoint_every", "keep_checkpoints", "log_every"):
            pos_int(n)
        for n in ("seed", "data_seed", "warmup_steps", "vae_steps", "num_workers"):
            pos_int(n, zero_ok=True)
        if self.height % 8 or self.width % 8:
            fail("height" if self.height % 8 else "width", "a multiple of 8 (SVD's VAE and UNet)")
        if self.height % self.k or self.width % self.k:
            fail("k", f"a divisor of height={self.height} and width={self.width}")
        num("r_min", 0.0, 1.0)
        num("motion_threshold", 0.0)
        num("displacement_scale", 0.0, lo_open=True, optional=True)
        num("lr", 0.0, lo_open=True)
        num("vae_lr", 0.0, lo_open=True)
        num("weight_decay", 0.0)
        num("adam_eps", 0.0, lo_open=True)
        num("max_grad_norm", 0.0, lo_open=True, optional=True)
        num("p_mean")
        num("p_std", 0.0, lo_open=True)
        num("cond_aug_mean")
        num("cond_aug_std", 0.0)
        num("cond_dropout", 0.0, 1.0)
        num("vae_kl_weight", 0.0)
        pos_int("fps")
        pos_int("motion_bucket_id", zero_ok=True)
        if (not isinstance(self.adam_betas, (tuple, list)) or len(self.adam_betas) != 2
                or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.adam_betas)):
            fail("adam_betas", "two numbers in [0, 1)")
        self.adam_betas = tuple(float(b) for b in self.adam_betas)
        if self.lr_schedule not in ("constant", "cosine"):
            fail("lr_schedule", "'constant' or 'cosine'")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            fail("mixed_precision", "'no', 'fp16' or 'bf16'")
        if self.flow_source not in ("gt", "opencv", "dot", "cotracker"):
            fail("flow_source", "'gt', 'opencv', 'dot' or 'cotracker'")
        if self.flow_source == "gt" and self.data != "synthetic":
            fail("flow_source", "an estimator ('opencv', 'dot', 'cotracker') when data is a video folder")
        if self.condition_variant not in ("paper", "release"):
            fail("condition_variant", "'paper' or 'release'")
        if self.lora_targets not in ("attention", "all_linear"):
            fail("lora_targets", "'attention' or 'all_linear'")
        if self.sites not in ("paper", "release"):
            fail("sites", "'paper' or 'release'")
        if self.clip_kinds is not None:
            if (not isinstance(self.clip_kinds, dict) or not self.clip_kinds
                    or any(kd not in _KINDS for kd in self.clip_kinds)
                    or any(not isinstance(w, (int, float)) or w < 0 for w in self.clip_kinds.values())
                    or sum(self.clip_kinds.values()) <= 0):
                fail("clip_kinds", f"None or a dict {{kind: weight >= 0}} over {_KINDS} with a positive sum")
        if self.vae_crop is not None:
            pos_int("vae_crop")
            if self.vae_crop % 8 or self.vae_crop > min(self.height, self.width):
                fail("vae_crop", "None or a multiple of 8 not larger than the frame")
        if self.stop_after is not None:
            pos_int("stop_after")
        if not isinstance(self.data, str) or not self.data:
            fail("data", "'synthetic' or a folder of videos")
        if not isinstance(self.base, str) or not self.base:
            fail("base", "a pipeline folder, a hub id or 'random:SEED'")
        return self

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        return d

    def fingerprint(self) -> str:
        """Hash of the fields that determine the trained weights (not out_dir / stop_after / progress)."""
        d = {k: v for k, v in self.to_dict().items() if k not in self._RUNTIME}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_yaml(self, path=None) -> str:
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ValueError(f"config must be a mapping of field names, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; valid fields: {sorted(names)}")
        d = dict(d)
        if "adam_betas" in d and isinstance(d["adam_betas"], list):
            d["adam_betas"] = tuple(d["adam_betas"])
        return cls(**d)

    @classmethod
    def from_yaml(cls, path) -> "TrainConfig":
        import yaml

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config path {str(p)!r} does not exist")
        return cls.from_dict(yaml.safe_load(p.read_text()) or {})

    def replace(self, **changes) -> "TrainConfig":
        d = self.to_dict()
        d.update(changes)
        return TrainConfig.from_dict(d)


#: Controller-stage clip mixture at toy scale: mostly static-camera object motion, some camera motion.
TOY_CONTROLLER_KINDS = {"object": 0.45, "part": 0.15, "occlusion": 0.1, "exit": 0.1, "camera": 0.2}

#: The two presets. ``paper`` = Sec. 4.1 + the SVD/MotionPro fine-tuning recipe (6 GPUs x 8 clips = 48);
#: ``toy-cpu`` changes only what training from scratch in minutes on a CPU needs (see chapter 5).
PRESETS: dict[str, dict] = {
    "toy-cpu": dict(
        num_clips=1024, num_frames=8, height=64, width=64, k=8, r_min=0.95,
        displacement_scale=8.0, base=str(SHIPPED_DIR / "toy-base"), lora_rank=8,
        batch_size=4, grad_accum=1, max_steps=1200, lr=2e-4, lr_schedule="cosine", warmup_steps=50,
        mixed_precision="no", p_mean=0.7, p_std=1.6, cond_dropout=0.1, fps=7, motion_bucket_id=127,
        vae_steps=1000, vae_batch_size=2, vae_crop=32, vae_lr=1e-3, vae_kl_weight=1e-6,
        vae_sample_posterior=False,
        checkpoint_every=100, flow_source="gt",
    ),
    "paper": dict(
        num_clips=10_000_000, num_frames=16, height=320, width=512, k=8, r_min=0.95,
        displacement_scale=None, base="stabilityai/stable-video-diffusion-img2vid", lora_rank=32,
        batch_size=8, grad_accum=1, max_steps=100_000, lr=1e-5, lr_schedule="constant", warmup_steps=0,
        mixed_precision="bf16", p_mean=0.7, p_std=1.6, cond_dropout=0.1, fps=8, motion_bucket_id=127,
        vae_steps=0, checkpoint_every=1000, flow_source="dot", cache_latents=False, cache_clips=False, num_workers=8,
    ),
}


def preset_config(preset: str = "toy-cpu", stage: str = "controller", **overrides) -> TrainConfig:
    """The :class:`TrainConfig` of a preset (``"toy-cpu"`` or ``"paper"``) for ``stage``, with overrides.

    At the toy preset the base stage uses 1000 VAE steps at lr 1e-3, then ``max_steps=1200`` UNet steps at lr
    2e-4, and the controller 1000 steps at lr 1e-3 (much higher than the paper's 1e-5: trained in minutes, from a toy base); the controller stage
    draws its clips from :data:`TOY_CONTROLLER_KINDS`."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    if preset == "paper" and stage in ("base", "vae", "unet"):
        raise ValueError(f"stage={stage!r} is not available with preset='paper': the paper starts from the "
                         "pretrained SVD (use stage='controller')")
    d = dict(PRESETS[preset])
    if preset == "toy-cpu" and stage == "controller":
        d.update(max_steps=1000, clip_kinds=dict(TOY_CONTROLLER_KINDS), lr=1e-3)
    d.update(preset=preset, stage=stage)
    d.update(overrides)
    return TrainConfig.from_dict(d)


#: Why the toy preset departs from the paper, field by field (chapter 5's recipe table).
TOY_CHANGES = {
    "num_frames": "8 frames keep a CPU step well under a second",
    "height": "64 px: the toy base is trained from scratch in minutes",
    "width": "64 px (square synthetic clips)",
    "lora_rank": "rank 8 keeps LoRA low-rank w.r.t. the toy widths 32-64 (paper: 32 vs 320-1280)",
    "lr": "controller 1e-3, UNet 2e-4, VAE 1e-3: toy models from scratch in minutes need larger steps than fine-tuning SVD",
    "lr_schedule": "cosine decay to 10 % over the short run (paper: constant)",
    "warmup_steps": "short warm-up: the larger lr on random weights",
    "batch_size": "4 clips per step on one CPU process (paper: 8 per GPU x 6 GPUs = 48)",
    "mixed_precision": "fp32 on CPU (bf16 autocast on CPU is slower here and not bit-reproducible across machines)",
    "displacement_scale": "pixel displacements / 8 so the encoder sees O(1) inputs (paper: not stated)",
    "flow_source": "the generator's exact flow (OpenCV DIS: 0.25 s/clip at 64 px, EPE 0.33 px; paper: DOT)",
    "vae_sample_posterior": "deterministic toy VAE: an untrained log-variance head's noise swamps the latents",
    "vae_steps": "the toy VAE is trained first (SVD's VAE is pretrained)",
    "max_steps": "minutes of CPU (paper: not stated)",
    "fps": "the paper samples clips at 8 fps; the synthetic clips have no frame rate, SVD's default 7 is used",
    "base": "our toy SVD instead of stabilityai/stable-video-diffusion-img2vid",
}


def recipe_table(stage: str = "controller") -> list[dict]:
    """Rows ``{setting, paper, toy, why}`` comparing the ``paper`` preset (controller stage) with the
    ``toy-cpu`` preset of ``stage`` on the settings of the training recipe."""
    paper = preset_config("paper", "controller")
    toy = preset_config("toy-cpu", stage)
    keys = ["num_frames", "height", "width", "k", "r_min", "lora_rank", "lora_targets", "lr", "lr_schedule",
            "warmup_steps", "batch_size", "grad_accum", "weight_decay", "max_grad_norm", "mixed_precision",
            "p_mean", "p_std", "cond_aug_mean", "cond_aug_std", "cond_dropout", "fps", "motion_bucket_id",
            "displacement_scale", "flow_source", "max_steps", "vae_steps", "vae_sample_posterior", "base"]
    rows = []
    for k in keys:
        pv, tv = getattr(paper, k), getattr(toy, k)
        if k == "base":
            tv = "toy-base (this chapter)" if stage == "controller" else "-"
        rows.append({"setting": k, "paper": pv, "toy": tv,
                     "why": "" if pv == tv else TOY_CHANGES.get(k, "")})
    return rows


# ============================================================================================ results
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


# ============================================================================================ utilities
def _seed_int(*parts: int) -> int:
    """A 63-bit seed from integers (numpy SeedSequence: well mixed, platform independent)."""
    s = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint32)
    return int((int(s[0]) << 31) ^ int(s[1])) & 0x7FFFFFFFFFFFFFFF


def step_generator(seed: int, stage: str, step: int, micro: int = 0, process: int = 0) -> torch.Generator:
    """The generator of every random draw of one micro-batch: a pure function of
    (seed, stage, optimizer step, micro-batch, process) — so a resumed run draws the same numbers."""
    return torch.Generator().manual_seed(_seed_int(seed, _STAGE_ID[stage], step, micro, process))


def peak_rss_mb() -> float:
    """Peak resident set size of this process (and finished children), MiB (Linux ru_maxrss is in KiB)."""
    import resource

    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024.0


def _git_info() -> dict:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    return {"commit": None, "dirty": None}


def _versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("torch", "diffusers", "transformers", "peft", "accelerate", "numpy", "opencv-python-headless",
                "safetensors", "remoco"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def provenance(config: TrainConfig, **extra) -> dict:
    """Seeds, config, git commit and package versions of a run (written beside every checkpoint as JSON)."""
    return {
        "config": config.to_dict(),
        "fingerprint": config.fingerprint(),
        "seed": config.seed,
        "data_seed": config.data_seed,
        "git": _git_info(),
        "versions": _versions(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


# ============================================================================================ data
class TrainClips(torch.utils.data.Dataset):
    """Clips for training: item ``i`` is a dict with ``index``, ``video`` (L, H, W, 3) uint8, ``flow``
    (L, H, W, 2) and ``visibility`` (L, H, W) (Eq. 4), deterministic in ``(data_seed, i)``.

    Synthetic data: clip ``i`` is :func:`remoco.data.make_clip` with seed ``data_seed * 1_000_003 + i`` (as
    :class:`remoco.data.SyntheticClipDataset`), its kind drawn from ``clip_kinds`` with a generator seeded by
    ``(data_seed, i)``. ``flow_source="gt"`` keeps the generator's exact flow, otherwise
    :func:`remoco.flow.estimate_flow` (DOT's role in Eq. 4) labels the clip (cached per clip).
    A folder of videos (paper scale): ``*.mp4|*.gif|*.webm`` read with :func:`remoco.video.read_video`,
    resized/centre-cropped to ``height x width``."""

    def __init__(self, config: TrainConfig, with_flow: bool = True):
        self.cfg = config
        self.with_flow = with_flow
        self._flow_cache: dict = {}
        self._clip_cache: dict = {}
        if config.data == "synthetic":
            self.files = None
            self.n = config.num_clips
        else:
            root = Path(config.data)
            if not root.is_dir():
                raise FileNotFoundError(f"TrainConfig.data={config.data!r}: expected 'synthetic' or a folder of videos")
            self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".mp4", ".gif", ".webm", ".avi"))
            if not self.files:
                raise FileNotFoundError(f"TrainConfig.data={config.data!r} holds no .mp4/.gif/.webm/.avi videos")
            self.n = min(len(self.files), config.num_clips)
        if config.clip_kinds:
            names = sorted(config.clip_kinds)
            w = np.array([config.clip_kinds[n] for n in names], float)
            self._kinds, self._kind_p = names, w / w.sum()
        else:
            self._kinds = None

    def __len__(self):
        return self.n

    def kind_of(self, i: int) -> str | None:
        if self._kinds is None:
            return None
        rng = np.random.default_rng(np.random.SeedSequence([self.cfg.data_seed, 7919, int(i)]))
        return self._kinds[int(rng.choice(len(self._kinds), p=self._kind_p))]

    def __getitem__(self, i: int) -> dict:
        from . import data

        cfg = self.cfg
        i = int(i)
        if not 0 <= i < self.n:
            raise IndexError(f"clip index {i} out of range for {self.n} clips")
        if self.files is None:
            # a synthetic clip costs ~80 ms to draw and is read ~5 times in a toy run: keep it (same tensors,
            # so the trained weights do not depend on cache_clips)
            if i in self._clip_cache:
                video, flow, vis = self._clip_cache[i]
            else:
                clip = data.make_clip(cfg.data_seed * 1_000_003 + i, cfg.num_frames, cfg.height, cfg.width,
                                      kind=self.kind_of(i))
                video, flow, vis = clip.video, clip.flow, clip.visibility
                if cfg.cache_clips:
                    self._clip_cache[i] = (video, flow, vis)
        else:
            from . import video as vio

            v = vio.read_video(self.files[i], num_frames=cfg.num_frames)
            video = vio.resize_center_crop(v, cfg.height, cfg.width)
            flow = vis = None
        item = {"index": i, "video": video}
        if self.with_flow:
            if cfg.flow_source != "gt":
                if i not in self._flow_cache:
                    from . import flow as fl

                    backend = None if cfg.flow_source == "opencv" else cfg.flow_source
                    self._flow_cache[i] = fl.estimate_flow(video, backend=backend)
                flow, vis = self._flow_cache[i]
            item["flow"], item["visibility"] = flow, vis
        return item


class StepBatchSampler(torch.utils.data.Sampler):
    """Index lists of the micro-batches ``start .. stop-1`` for one process.

    The global stream of sample positions is cut into micro-batches of ``batch_size * num_processes``;
    process ``r`` takes its slice. Position ``p`` reads clip ``perm_e[p mod N]`` where ``perm_e`` is the
    permutation of epoch ``e = p // N`` seeded by ``(seed, e)``. So the data order depends only on the
    seed and the step — the dataloader "position" after a resume is the step itself."""

    def __init__(self, num_items: int, batch_size: int, seed: int, start: int, stop: int,
                 process_index: int = 0, num_processes: int = 1):
        self.n, self.bs, self.seed = int(num_items), int(batch_size), int(seed)
        self.start, self.stop = int(start), int(stop)
        self.rank, self.world = int(process_index), int(num_processes)
        self._perm: dict = {}

    def _clip_at(self, pos: int) -> int:
        e = pos // self.n
        if e not in self._perm:
            self._perm = {e: np.random.default_rng(np.random.SeedSequence([self.seed, 104729, e])).permutation(self.n)}
        return int(self._perm[e][pos % self.n])

    def indices(self, micro: int) -> list[int]:
        base = (micro * self.world + self.rank) * self.bs
        return [self._clip_at(base + j) for j in range(self.bs)]

    def __iter__(self):
        for m in range(self.start, self.stop):
            yield self.indices(m)

    def __len__(self):
        return max(0, self.stop - self.start)


def _collate(items: list[dict]) -> dict:
    out = {"index": torch.tensor([it["index"] for it in items])}
    for key in ("video", "flow", "visibility"):
        if key in items[0] and items[0][key] is not None:
            out[key] = torch.stack([torch.as_tensor(it[key]) for it in items])
    return out


def _to_pixels(video_uint8: torch.Tensor) -> torch.Tensor:
    """(B, L, H, W, 3) uint8 -> (B, L, 3, H, W) float in [-1, 1] (SVD's pixel range)."""
    return video_uint8.permute(0, 1, 4, 2, 3).float().div(127.5).sub(1.0)


# ============================================================================================ models
class _Frozen:
    """The frozen SVD parts used to build the training inputs (not trained, not wrapped by accelerate)."""

    def __init__(self, vae, image_encoder, feature_extractor, device, cache: bool):
        self.vae, self.image_encoder, self.feature_extractor = vae, image_encoder, feature_extractor
        self.device = device
        self.cache = cache
        self._lat: dict = {}
        for m in (vae, image_encoder):
            m.requires_grad_(False)
            m.eval()
            m.to(device)

    @torch.no_grad()
    def clip_stats(self, index: int, video: torch.Tensor):
        """Posterior mean/std of the VAE latents of one clip (L frames encoded together, always the same way,
        so cached and recomputed values agree bit for bit) and the CLIP embedding of its first frame."""
        from .models import encode_reference_image

        key = int(index)
        if self.cache and key in self._lat:
            return self._lat[key]
        x = _to_pixels(video[None].to(self.device))[0]  # (L, 3, H, W)
        dist = self.vae.encode(x).latent_dist
        emb = encode_reference_image(self, (x[:1] + 1.0) / 2.0)[0]  # (1, D)
        out = (dist.mean.float(), dist.std.float(), emb.float())
        if self.cache:
            self._lat[key] = out
        return out

    @torch.no_grad()
    def encode_reference(self, ref: torch.Tensor) -> torch.Tensor:
        """SVD's pathway (a): mode of the VAE posterior of the (noise-augmented) reference frame, unscaled."""
        return self.vae.encode(ref).latent_dist.mode().float()


class _Denoiser(nn.Module):
    """The module accelerate wraps: the 3D-UNet (plus the controller, whose hooks sit on the UNet) returning
    ``z0_hat`` of Eq. 2 for noised latents ``z`` at noise level ``sigma``."""

    def __init__(self, unet, controller=None):
        super().__init__()
        self.unet = unet
        self.controller = controller

    def forward(self, z, sigma, image_latents, image_embeddings, added_time_ids, condition=None):
        from . import edm

        if self.controller is None:
            return edm.predict_x0(self.unet, z, sigma, image_latents, image_embeddings, added_time_ids)
        with self.controller.conditioned(condition):
            return edm.predict_x0(self.unet, z, sigma, image_latents, image_embeddings, added_time_ids)


class _VAEModule(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x, num_frames, eps):
        dist = self.vae.encode(x).latent_dist
        z = dist.mean + dist.std * eps
        rec = self.vae.decode(z, num_frames=num_frames).sample
        return rec, dist.kl()


def count_trainable(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts of a module."""
    tr = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return tr, sum(p.numel() for p in module.parameters())


def _load_base_components(config: TrainConfig, path_override: str | None = None) -> dict:
    from . import models

    base = path_override or config.base
    if base.startswith("random:"):
        return models.build_toy_components(int(base.split(":", 1)[1]))
    pipe = models.load_svd_pipeline(base)
    return {k: getattr(pipe, k) for k in ("vae", "image_encoder", "unet", "scheduler", "feature_extractor")}


# ============================================================================================ losses
def _edm_batch(cfg: TrainConfig, stage: str, frozen: _Frozen, batch: dict, gen: torch.Generator,
               scaling_factor: float) -> dict:
    """The inputs of one EDM training step (Eq. 1-3) with SVD's conditioning, all drawn from ``gen``:
    z0 from the VAE posterior, sigma ~ log-normal(p_mean, p_std), conditioning augmentation
    exp(N(cond_aug_mean, cond_aug_std)) on the reference frame, joint condition dropout, and (controller
    stage) the motion condition of Sec. 3.2 with r_m drawn per sample."""
    from . import edm

    dev = frozen.device
    video = batch["video"]
    B, L = video.shape[:2]
    stats = [frozen.clip_stats(int(i), v) for i, v in zip(batch["index"], video)]
    mean = torch.stack([s[0] for s in stats])
    std = torch.stack([s[1] for s in stats])
    emb = torch.stack([s[2] for s in stats])  # (B, 1, D)
    eps_post = torch.randn(mean.shape, generator=gen).to(dev)
    if not cfg.vae_sample_posterior:  # toy: the VAE was trained as a deterministic autoencoder
        eps_post = torch.zeros_like(eps_post)
    z0 = (mean + std * eps_post) * scaling_factor  # (B, L, 4, h, w)
    sigma = edm.sample_sigma(B, cfg.p_mean, cfg.p_std, generator=gen).to(dev)
    noise = torch.randn(z0.shape, generator=gen).to(dev)
    z, _ = edm.add_noise(z0, sigma, noise=noise)
    cond_aug = torch.exp(cfg.cond_aug_mean + cfg.cond_aug_std * torch.randn(B, generator=gen)).to(dev)
    x = _to_pixels(video[:, :1].to(dev))[:, 0]  # (B, 3, H, W) reference frame
    ref = x + cond_aug.view(B, 1, 1, 1) * torch.randn(x.shape, generator=gen).to(dev)
    image_latents = frozen.encode_reference(ref)[:, None].expand(B, L, *z0.shape[2:])
    keep = (torch.rand(B, generator=gen) >= cfg.cond_dropout).float().to(dev)
    image_latents = image_latents * keep.view(B, 1, 1, 1, 1)
    emb = emb * keep.view(B, 1, 1)
    ids = torch.stack([torch.full((B,), float(cfg.fps - 1)), torch.full((B,), float(cfg.motion_bucket_id)),
                       cond_aug.cpu()], dim=1).to(dev)
    out = dict(z=z, z0=z0, sigma=sigma, image_latents=image_latents, image_embeddings=emb, added_time_ids=ids)
    if stage == "controller":
        conds = [motion_condition(cfg, batch["flow"][b], batch["visibility"][b], gen) for b in range(B)]
        out["condition"] = torch.stack(conds).to(dev) * keep.view(B, 1, 1, 1, 1)
    return out


def motion_condition(cfg: TrainConfig, flow: torch.Tensor, visibility: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
    """The controller input (L, 3, H, W) of one training clip for ``cfg.variant`` (Sec. 3.2-3.3).

    ``remoco`` / ``concat`` / ``sum``: ``T_s`` (Eq. 5-7, ``r_m ~ U[r_min, 1]``) and ``M_mot`` via
    :func:`remoco.conditions.training_conditions`; ``traj_only``: ``T_s`` and a zero mask channel;
    ``gaussian``: the Gaussian-filtered flow at the centres of the same kind of sampled regions
    (:func:`remoco.conditions.gaussian_trajectory_from_flow`) and a zero mask channel (DragNUWA-style, the
    trajectory is the sole signal). Displacements are divided by ``cfg.displacement_scale``."""
    from . import conditions as C

    if cfg.variant == "gaussian":
        L, H, W = visibility.shape
        sel = C.sample_region_selection(H, W, cfg.k, cfg.r_min, generator=generator)
        traj = C.gaussian_trajectory_from_flow(flow, visibility, sel, cfg.k)
        mask = torch.zeros(L, H, W, 1)
    else:
        traj, mask = C.training_conditions(flow, visibility, k=cfg.k, r_min=cfg.r_min, generator=generator,
                                           variant=cfg.condition_variant, threshold=cfg.motion_threshold)
        if cfg.variant == "traj_only":
            mask = torch.zeros(mask.shape)
    return C.to_model_input(traj, mask, scale=cfg.displacement_scale)


def _lr_at(cfg: TrainConfig, step: int, total: int, base_lr: float) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warmup, then constant or cosine to 10 %."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return base_lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "cosine":
        t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))
    return base_lr


# ============================================================================================ checkpoints
_CKPT_PREFIX = "checkpoint-"
_TMP_PREFIX = ".tmp-"


def list_checkpoints(ckpt_root) -> list[tuple[int, Path]]:
    """Complete checkpoints (visible ``checkpoint-NNNNNN`` folders with ``train_state.json``), by step."""
    root = Path(ckpt_root)
    out = []
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and p.name.startswith(_CKPT_PREFIX) and (p / "train_state.json").is_file():
                try:
                    out.append((int(p.name[len(_CKPT_PREFIX):]), p))
                except ValueError:
                    continue
    return sorted(out)


def save_checkpoint(accelerator, ckpt_root, step: int, state: dict, prov: dict, keep: int = 2) -> Path:
    """``accelerator.save_state`` into a hidden temporary folder, then an atomic rename to
    ``checkpoint-{step:06d}``: a kill at any moment leaves either no new checkpoint or a complete one
    (``train_state.json`` and ``provenance.json`` are written last inside the temporary folder)."""
    root = Path(ckpt_root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{_CKPT_PREFIX}{step:06d}"
    tmp = root / f"{_TMP_PREFIX}{_CKPT_PREFIX}{step:06d}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp), safe_serialization=True)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            _write_json(tmp / "provenance.json", prov)
            _write_json(tmp / "train_state.json", state)
            if final.exists():  # a re-save of the same step (resumed run): replace it atomically
                old = root / f"{_TMP_PREFIX}old-{final.name}"
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
            for _, p in list_checkpoints(root)[:-keep]:
                trash = root / f"{_TMP_PREFIX}del-{p.name}"
                os.replace(p, trash)
                shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    accelerator.wait_for_everyone()
    return final


def _clean_tmp(root: Path) -> None:
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(_TMP_PREFIX):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


# ============================================================================================ CSV log
_LOG_FIELDS = ("step", "loss", "lr", "seconds")


def _truncate_log(path: Path, last_step: int) -> None:
    """Keep the header and the rows of steps <= last_step (a killed run may have logged steps beyond its
    last checkpoint; the resumed run logs them again)."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= last_step]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=_LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def read_log(path) -> dict[str, np.ndarray]:
    """A training CSV log (step, loss, lr, seconds) as numpy arrays."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"log path {str(p)!r} does not exist")
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in _LOG_FIELDS}


# ============================================================================================ loop
def _run_loop(cfg: TrainConfig, stage: str, stage_dir: Path, accelerator, model: nn.Module,
              params: list, base_lr: float, total_steps: int, loss_fn, dataset) -> dict:
    """The accelerate training loop shared by every stage, with resume, CSV log and atomic checkpoints.

    ``loss_fn(model, batch, generator) -> scalar loss``. Returns a dict with the final loss, seconds,
    steps done in this run and whether the run stopped early (``stop_after``)."""
    from tqdm.auto import tqdm

    stage_dir.mkdir(parents=True, exist_ok=True)
    ckpt_root = stage_dir / "checkpoints"
    log_path = stage_dir / "log.csv"
    if accelerator.is_main_process:
        _clean_tmp(ckpt_root)
    optimizer = torch.optim.AdamW(params, lr=base_lr, betas=cfg.adam_betas, eps=cfg.adam_eps,
                                  weight_decay=cfg.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    start, elapsed = 0, 0.0
    ckpts = list_checkpoints(ckpt_root)
    if ckpts:
        step0, path = ckpts[-1]
        state = json.loads((path / "train_state.json").read_text())
        if state.get("fingerprint") != cfg.fingerprint():
            raise ValueError(
                f"out_dir={str(cfg.out_dir)!r} holds a {stage} run with a different config (fingerprint "
                f"{state.get('fingerprint')} != {cfg.fingerprint()}): use another out_dir or the same config")
        accelerator.load_state(str(path))
        start, elapsed = int(state["global_step"]), float(state["seconds"])
        if accelerator.is_main_process:
            _truncate_log(log_path, start)
    elif accelerator.is_main_process and log_path.exists():
        log_path.unlink()
    if accelerator.is_main_process and not log_path.exists():
        with open(log_path, "w", newline="") as f:
            csv.DictWriter(f, fieldnames=_LOG_FIELDS).writeheader()

    accum = cfg.grad_accum
    bs = cfg.vae_batch_size if stage == "vae" else cfg.batch_size
    sampler = StepBatchSampler(len(dataset), bs, _seed_int(cfg.seed, _STAGE_ID[stage]), start * accum,
                               total_steps * accum, accelerator.process_index, accelerator.num_processes)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=_collate,
                                         num_workers=cfg.num_workers)
    it = iter(loader)
    model.train()
    last_loss = float("nan")
    done = 0
    interrupted = False
    bar = tqdm(total=total_steps, initial=start, desc=f"train {stage}", disable=not (cfg.progress and accelerator.is_main_process))
    t_run = time.perf_counter()
    for step in range(start, total_steps):
        lr = _lr_at(cfg, step, total_steps, base_lr)
        for g in optimizer.param_groups:
            g["lr"] = lr
        losses = []
        for micro in range(accum):
            batch = next(it)
            gen = step_generator(cfg.seed, stage, step, micro, accelerator.process_index)
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss = loss_fn(model, batch, gen)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm:
                    accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach().float())
        loss_v = accelerator.gather(torch.stack(losses).mean()[None]).mean().item()
        if not math.isfinite(loss_v):
            raise FloatingPointError(f"{stage} loss became {loss_v} at step {step + 1}")
        last_loss = loss_v
        done += 1
        gstep = step + 1
        secs = elapsed + (time.perf_counter() - t_run)
        if accelerator.is_main_process and (gstep % cfg.log_every == 0 or gstep == total_steps):
            with open(log_path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=_LOG_FIELDS).writerow(
                    {"step": gstep, "loss": f"{loss_v:.6g}", "lr": f"{lr:.6g}", "seconds": f"{secs:.2f}"})
        bar.update(1)
        bar.set_postfix(loss=f"{loss_v:.4f}")
        if gstep % cfg.checkpoint_every == 0 or gstep == total_steps:
            state = {"global_step": gstep, "seconds": secs, "fingerprint": cfg.fingerprint(), "stage": stage,
                     "loss": loss_v}
            save_checkpoint(accelerator, ckpt_root, gstep, state,
                            provenance(cfg, stage=stage, global_step=gstep,
                                       num_processes=accelerator.num_processes), cfg.keep_checkpoints)
        if cfg.stop_after is not None and done >= cfg.stop_after and gstep < total_steps:
            interrupted = True
            break
    bar.close()
    if done == 0 and ckpts:
        state = json.loads((ckpts[-1][1] / "train_state.json").read_text())
        last_loss = float(state.get("loss", float("nan")))
    return dict(loss=last_loss, seconds=elapsed + (time.perf_counter() - t_run), steps=done,
                interrupted=interrupted, model=model, log=log_path)


# ============================================================================================ stages
def _make_accelerator(cfg: TrainConfig, accum: int):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    return Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=accum,
                       project_config=ProjectConfiguration(project_dir=str(cfg.out_dir)))


def _vae_latent_scale(vae, dataset: TrainClips, n: int = 32) -> float:
    """``1 / std`` of the VAE latents over ``n`` clips — how SD's 0.18215 was chosen (unit-variance latents
    for EDM's sigma_data = 1)."""
    vals = []
    with torch.no_grad():
        for i in range(min(n, len(dataset))):
            x = _to_pixels(dataset[i]["video"][None])[0]
            vals.append(vae.encode(x.to(vae.device)).latent_dist.mode().flatten().cpu())
    return float(1.0 / torch.cat(vals).std())


def _stage_vae(cfg: TrainConfig, root: Path) -> tuple[Path | None, dict]:
    from . import models

    sdir = root / "vae"
    final = sdir / "final"
    if _finished(final, cfg, "vae"):
        return final, {"skipped": True, "log": sdir / "log.csv"}
    acc = _make_accelerator(cfg, cfg.grad_accum)
    comps = models.build_toy_components(cfg.seed)
    vae = comps["vae"]
    vae.train()
    module = _VAEModule(vae)
    ds = TrainClips(cfg, with_flow=False)
    crop = cfg.vae_crop

    def loss_fn(model, batch, gen):
        x = _to_pixels(batch["video"])  # (B, L, 3, H, W)
        B, L, _, H, W = x.shape
        if crop is not None and crop < min(H, W):
            ys = torch.randint(0, H - crop + 1, (B,), generator=gen)
            xs = torch.randint(0, W - crop + 1, (B,), generator=gen)
            x = torch.stack([x[b, :, :, ys[b]:ys[b] + crop, xs[b]:xs[b] + crop] for b in range(B)])
        x = x.flatten(0, 1).to(acc.device)
        h, w = x.shape[-2] // 4, x.shape[-1] // 4
        eps = torch.randn(x.shape[0], vae.config.latent_channels, h, w, generator=gen).to(acc.device)
        rec, kl = model(x, L, eps if cfg.vae_sample_posterior else torch.zeros_like(eps))
        return torch.nn.functional.mse_loss(rec.float(), x) + cfg.vae_kl_weight * kl.mean() / x[0].numel()

    params = [p for p in vae.parameters() if p.requires_grad]
    res = _run_loop(cfg, "vae", sdir, acc, module, params, cfg.vae_lr, cfg.vae_steps, loss_fn, ds)
    if res["interrupted"]:
        return None, res
    vae = acc.unwrap_model(res["model"]).vae.eval()
    if acc.is_main_process:
        sf = _vae_latent_scale(vae, ds)
        vae.register_to_config(scaling_factor=sf)
        _save_atomic(final, lambda p: vae.save_pretrained(p, safe_serialization=True),
                     provenance(cfg, stage="vae", scaling_factor=sf, loss=res["loss"]))
    acc.wait_for_everyone()
    res["model"] = None
    return final, res


def _finished(final: Path, cfg: TrainConfig, stage: str) -> bool:
    """True if ``final`` holds the finished model of this very config (a different config raises)."""
    prov_path = final / "provenance.json"
    if not prov_path.is_file():
        return False
    fp = json.loads(prov_path.read_text()).get("fingerprint")
    if fp != cfg.fingerprint():
        raise ValueError(
            f"out_dir={str(cfg.out_dir)!r} holds a finished {stage} model of a different config (fingerprint "
            f"{fp} != {cfg.fingerprint()}): use another out_dir or the same config")
    return True


def _save_atomic(final: Path, writer, prov: dict) -> None:
    """Write a model folder through a temporary sibling, provenance last, then rename."""
    tmp = final.with_name(_TMP_PREFIX + final.name)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writer(tmp)
    _write_json(tmp / "provenance.json", prov)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def _stage_denoiser(cfg: TrainConfig, root: Path, stage: str, vae_path: Path | None = None):
    """UNet stage (toy base) or controller stage; returns (final folder or None, loop result)."""
    from diffusers import AutoencoderKLTemporalDecoder, StableVideoDiffusionPipeline

    from . import edm, models

    sdir = root / stage
    final = sdir / "final"
    if _finished(final, cfg, stage):
        return final, {"skipped": True, "log": sdir / "log.csv"}
    acc = _make_accelerator(cfg, cfg.grad_accum)
    if stage == "unet":
        comps = models.build_toy_components(cfg.seed)
        if vae_path is not None:
            comps["vae"] = AutoencoderKLTemporalDecoder.from_pretrained(vae_path)
        unet = comps["unet"]
        unet.train()
        controller = None
        params = [p for p in unet.parameters() if p.requires_grad]
    else:
        from .controller import ReMoCoController, add_lora

        comps = _load_base_components(cfg)
        unet = comps["unet"]
        unet.requires_grad_(False)
        g = torch.random.get_rng_state()
        try:
            torch.manual_seed(_seed_int(cfg.seed, 17))
            controller = ReMoCoController.from_unet(
                unet, vae_scale_factor=models.vae_scale_factor(comps["vae"]), injection=_INJECTION[cfg.variant],
                sites=cfg.sites, displacement_scale=cfg.displacement_scale, attach=True)
            add_lora(unet, rank=cfg.lora_rank, targets=cfg.lora_targets)
        finally:
            torch.random.set_rng_state(g)
        unet.train()
        controller.train()
        params = [p for p in controller.parameters() if p.requires_grad] + \
                 [p for p in unet.parameters() if p.requires_grad]
    frozen = _Frozen(comps["vae"], comps["image_encoder"], comps["feature_extractor"], acc.device,
                     cfg.cache_latents)
    sf = float(comps["vae"].config.scaling_factor)
    module = _Denoiser(unet, controller)
    ds = TrainClips(cfg, with_flow=(stage == "controller"))

    def loss_fn(model, batch, gen):
        b = _edm_batch(cfg, stage, frozen, batch, gen, sf)
        z0_hat = model(b["z"], b["sigma"], b["image_latents"], b["image_embeddings"], b["added_time_ids"],
                       b.get("condition"))
        return edm.denoising_loss(z0_hat, b["z0"], b["sigma"])

    res = _run_loop(cfg, stage, sdir, acc, module, params, cfg.lr, cfg.max_steps, loss_fn, ds)
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
            _save_atomic(final, lambda p: pipe.save_pretrained(p, safe_serialization=True), prov)
        else:
            from .controller import save_controller

            mod.controller.eval()
            _save_atomic(final, lambda p: save_controller(p, mod.controller, mod.unet), prov)
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
            vae_path, res = _stage_vae(config, root)
            record("vae", res)
            if vae_path is None:
                result.peak_rss_mb = peak_rss_mb()
                return result
        if config.stage == "vae":
            result.final_path = vae_path
        else:
            result.final_path, res = _stage_denoiser(config, root, "unet", vae_path)
            record("unet", res)
    elif config.stage == "unet":
        vae_final = root / "vae" / "final"
        result.final_path, res = _stage_denoiser(config, root, "unet",
                                                 vae_final if (vae_final / "provenance.json").is_file() else None)
        record("unet", res)
    else:
        result.final_path, res = _stage_denoiser(config, root, "controller")
        record("controller", res)
    result.peak_rss_mb = peak_rss_mb()
    return result


def _as_uint8_np(frames) -> np.ndarray:
    a = frames.detach().cpu().numpy() if torch.is_tensor(frames) else np.asarray(frames)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return a


def track_points(video, points, upscale: int = 4, win: int = 21, levels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Track ``points`` (N, 2) (x, y) of frame 1 through ``video`` (L, H, W, 3) with OpenCV's pyramidal
    Lucas-Kanade (:func:`cv2.calcOpticalFlowPyrLK`; the paper uses CoTracker). Each frame is matched
    directly against frame 1, starting from the previous frame's estimate (no drift accumulation); frames
    are enlarged ``upscale`` times (bicubic) so the LK window covers enough texture at 64 px.

    Returns ``(tracks (L, N, 2) float, ok (L, N) bool)`` in input pixel coordinates."""
    import cv2

    v = _as_uint8_np(video)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"video must be (L, H, W, 3), got {v.shape}")
    p = np.asarray(points.detach().cpu() if torch.is_tensor(points) else points, np.float32).reshape(-1, 2)
    if not len(p):
        raise ValueError("points must hold at least one (x, y) point")
    L, H, W, _ = v.shape
    gray = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (W * upscale, H * upscale),
                       interpolation=cv2.INTER_CUBIC) for f in v]
    to_big = lambda q: ((q + 0.5) * upscale - 0.5).astype(np.float32)
    to_small = lambda q: (q + 0.5) / upscale - 0.5
    p0 = to_big(p).reshape(-1, 1, 2)
    tracks = np.zeros((L, len(p), 2), np.float64)
    ok = np.ones((L, len(p)), bool)
    tracks[0] = p
    prev = p0.copy()
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
    for i in range(1, L):
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(gray[0], gray[i], p0, prev.copy(), winSize=(win, win),
                                              maxLevel=levels, criteria=crit,
                                              flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
        st = st.reshape(-1).astype(bool)
        nxt = np.where(st[:, None, None], nxt, prev)
        tracks[i] = to_small(nxt.reshape(-1, 2))
        ok[i] = st
        prev = nxt.astype(np.float32)
    return tracks, ok


def trajectory_distance(video, trajectory, tracker: str = "flow", radius: int = 2,
                        upscale: int = 4) -> tuple[float, np.ndarray]:
    """Mean distance (pixels) between where the drawn trajectory's start point goes in ``video`` and the
    drawn trajectory — our stand-in for MD-Vid (the paper tracks with CoTracker).

    The drawn polyline (P, 2) is resampled to L positions equally spaced in arc length
    (:func:`remoco.conditions.resample_polyline`, the rule the conditions use). The start point is followed
    through the video by ``tracker``:

    * ``"flow"`` (default) — dense OpenCV DIS optical flow from frame 1 (:func:`remoco.flow.estimate_flow`),
      the median displacement over the (2 radius + 1)^2 pixels around the start point. Robust on the flat,
      texture-poor objects of the synthetic clips.
    * ``"lk"`` — pyramidal Lucas-Kanade (:func:`track_points`) of the same grid of points, median motion.
      Fails inside textureless regions (aperture problem).

    The distance is averaged over frames 2..L. Returns ``(distance, track (L, 2))``."""
    from .conditions import resample_polyline

    v = _as_uint8_np(video)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"video must be (L, H, W, 3), got {v.shape}")
    L, H, W, _ = v.shape
    if L < 2:
        raise ValueError("video must have at least 2 frames")
    if tracker not in ("flow", "lk"):
        raise ValueError(f"tracker must be 'flow' or 'lk', got {tracker!r}")
    if int(radius) != radius or radius < 0:
        raise ValueError(f"radius must be a non-negative int, got {radius!r}")
    traj = torch.as_tensor(np.asarray(trajectory, np.float32) if not torch.is_tensor(trajectory) else trajectory,
                           dtype=torch.float32)
    target = resample_polyline(traj, L).double().numpy()
    x0, y0 = target[0]
    if not (-0.5 <= x0 < W - 0.5 and -0.5 <= y0 < H - 0.5):
        raise ValueError(f"trajectory must start inside the {W}x{H} video, got start (x, y) = ({x0:.2f}, {y0:.2f})")
    if tracker == "lk":
        d = np.arange(-radius, radius + 1, dtype=np.float64)
        grid = np.stack(np.meshgrid(d, d), -1).reshape(-1, 2) + target[0]
        tracks, _ = track_points(v, grid, upscale=upscale)
        track = target[0] + np.median(tracks - grid[None], axis=1)
    else:
        from .flow import estimate_flow

        flow, _ = estimate_flow(torch.from_numpy(v))
        x, y = int(round(x0)), int(round(y0))  # inside the frame: checked above
        patch = flow[:, max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1]
        track = target[0] + np.median(patch.reshape(L, -1, 2).double().numpy(), axis=1)
    dist = np.linalg.norm(track[1:] - target[1:], axis=-1).mean()
    return float(dist), track


def object_trajectory(clip) -> tuple[np.ndarray, torch.Tensor]:
    """A drawn trajectory and brush for a synthetic test clip: the true path of the moving object's pixel
    nearest its centroid (``p + f^i(p)``, Eq. 4) and the object's frame-1 mask. The object is the front-most
    moving layer (nothing passes in front of it); the pixel is one visible in every frame.
    Returns ``(trajectory (L, 2) (x, y), brush (H, W) bool)``."""
    owner = np.asarray(clip.meta["owner"])
    obj = clip.object_mask.numpy()
    if not obj.any():
        raise ValueError(f"clip of kind {clip.kind!r} has no moving object")
    labels = [int(l) for l in np.unique(owner[obj])]
    # the front-most moving layer (layers are composited in index order): no other object occludes it
    lab = max(labels)
    m = (owner == lab) & obj & clip.visibility.all(0).numpy()
    if not m.any():
        m = (owner == lab) & obj
    ys, xs = np.nonzero(m)
    cy, cx = ys.mean(), xs.mean()
    j = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    y, x = int(ys[j]), int(xs[j])
    path = np.array([x, y], float)[None] + clip.flow[:, y, x].double().numpy()
    return path, torch.from_numpy((owner == lab) & obj)


def trajectory_following(pipelines: dict, num_clips: int = 3, seed: int = 12345, kind: str = "object",
                         num_inference_steps: int = 15, num_frames: int = 8, size: int = 64,
                         k: int = 8, tracker: str = "flow") -> dict:
    """Generate each of ``num_clips`` seeded test clips' first frame with every pipeline in ``pipelines``
    (``{name: pipeline}``; a :class:`~remoco.pipeline.ReMoCoPipeline` also gets the drawn trajectory and the
    object brush, a plain SVD pipeline gets the image only) and measure :func:`trajectory_distance` to the
    drawn trajectory. ``"data"`` is the real clip (the tracker's error floor). Test clips use seeds
    ``seed + i`` — disjoint from the training clips' seeds. Returns ``{name: [distance per clip]}`` and
    ``"videos"`` ``{name: [(L, H, W, 3) uint8]}``, ``"trajectories"``."""
    import PIL.Image

    from . import data
    from .pipeline import ReMoCoPipeline

    out = {name: [] for name in ["data", *pipelines]}
    videos = {name: [] for name in out}
    trajs = []
    for i in range(num_clips):
        clip = data.make_clip(seed + i, num_frames, size, size, kind=kind)
        traj, brush = object_trajectory(clip)
        trajs.append(traj)
        d, _ = trajectory_distance(clip.video, traj, tracker=tracker)
        out["data"].append(d)
        videos["data"].append(clip.video.numpy())
        for name, pipe in pipelines.items():
            g = torch.Generator().manual_seed(seed + 1000 + i)
            kw = dict(height=size, width=size, num_frames=num_frames, num_inference_steps=num_inference_steps,
                      generator=g, output_type="np")
            if isinstance(pipe, ReMoCoPipeline):
                kw.update(trajectories=[torch.as_tensor(traj, dtype=torch.float32)], brush_mask=brush, k=k)
            # a PIL reference image: SVD's own pipeline resizes only PIL images for its CLIP tower
            frames = pipe(PIL.Image.fromarray(clip.video[0].numpy()), **kw).frames[0]
            v = _as_uint8_np(frames)
            out[name].append(trajectory_distance(v, traj, tracker=tracker)[0])
            videos[name].append(v)
    out["videos"] = videos
    out["trajectories"] = trajs
    return out


ABLATION_CONDITIONS = ("full condition", "motion mask only", "trajectory only", "no condition")


@torch.no_grad()
def condition_ablation(pipe, config: TrainConfig | None = None, num_clips: int = 16, draws: int = 4,
                       seed: int = 0, data_seed: int = 777, kind: str = "object") -> dict:
    """Does a trained controller use its input? The held-out denoising loss (Eq. 3) of ``pipe`` (a
    :class:`~remoco.pipeline.ReMoCoPipeline` with a controller) with the motion condition of Sec. 3.2 as
    trained (``"full condition"``), with its trajectory channels ``T_s`` zeroed (``"motion mask only"``), with
    its mask channel ``M_mot`` zeroed (``"trajectory only"``) and all zero (``"no condition"``, what condition
    dropout trains). Every setting sees the same clips, noise levels, noises and sampled regions, so the
    differences come from the condition alone.

    Clips: ``num_clips`` synthetic clips of ``kind`` from ``data_seed`` (the training clips use ``data_seed=0``,
    so the default 777 gives unseen clips), ``draws`` EDM draws each, all seeded by ``seed``. Returns
    ``{setting: mean loss}`` plus ``"per_sample"`` ``{setting: (num_clips * draws,) array}``."""
    if getattr(pipe, "controller", None) is None:
        raise ValueError("pipe must be a ReMoCoPipeline with a controller (got one without `controller`)")
    if num_clips < 1 or draws < 1:
        raise ValueError(f"num_clips and draws must be >= 1, got num_clips={num_clips}, draws={draws}")
    from . import edm

    cfg = config or preset_config("toy-cpu", "controller")
    cfg = cfg.replace(data_seed=data_seed, num_clips=num_clips, clip_kinds={kind: 1.0}, cond_dropout=0.0)
    frozen = _Frozen(pipe.vae, pipe.image_encoder, pipe.feature_extractor, pipe.unet.device, cache=True)
    sf = float(pipe.vae.config.scaling_factor)
    model = _Denoiser(pipe.unet, pipe.controller).eval()
    ds = TrainClips(cfg, with_flow=True)
    per = {name: [] for name in ABLATION_CONDITIONS}
    for i in range(num_clips):
        batch = _collate([ds[i]])
        for d in range(draws):
            b = _edm_batch(cfg, "controller", frozen, batch, torch.Generator().manual_seed(_seed_int(seed, i, d)), sf)
            c = b["condition"]
            traj_off, mask_off = c.clone(), c.clone()
            traj_off[:, :, :2] = 0
            mask_off[:, :, 2:] = 0
            for name, cond in zip(ABLATION_CONDITIONS, (c, traj_off, mask_off, torch.zeros_like(c))):
                z0_hat = model(b["z"], b["sigma"], b["image_latents"], b["image_embeddings"],
                               b["added_time_ids"], cond)
                per[name].append(float(edm.denoising_loss(z0_hat, b["z0"], b["sigma"])))
    out = {name: float(np.mean(v)) for name, v in per.items()}
    out["per_sample"] = {name: np.asarray(v) for name, v in per.items()}
    return out


# ============================================================================================ CLI
def _parse_value(text: str):
    import yaml

    return yaml.safe_load(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m remoco.train", description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="toy-cpu", choices=tuple(PRESETS))
    p.add_argument("--stage", default="controller", choices=STAGES)
    p.add_argument("--variant", default="remoco", choices=VARIANTS)
    p.add_argument("--out", default=None, help="output folder (default runs/<stage>-<variant>)")
    p.add_argument("--config", default=None, help="YAML file with TrainConfig fields (applied after the preset)")
    p.add_argument("--base", default=None, help="controller stage: base pipeline folder, hub id or random:SEED")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="override any TrainConfig field")
    p.add_argument("--ship", action="store_true", help="train the toy base + controller(s) into data/checkpoints")
    p.add_argument("--variants", nargs="*", default=["remoco"], help="with --ship: controller variants to ship")
    p.add_argument("--ship-work", default="runs/ship", help="with --ship: work folder (resumable)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.ship:
        bad = [v for v in a.variants if v not in VARIANTS]
        if bad:
            p.error(f"--variants: unknown {bad}; choose from {VARIANTS}")
        from .shipped import ship

        summary = ship(a.ship_work, SHIPPED_DIR, a.preset, tuple(a.variants), progress=not a.no_progress)
        print(json.dumps(summary, indent=2, default=str))
        return 0
    over: dict[str, Any] = {}
    if a.config:
        over.update(TrainConfig.from_yaml(a.config).to_dict())
        for key in ("preset", "stage"):
            over.pop(key, None)
    for item in a.set:
        if "=" not in item:
            p.error(f"--set expects FIELD=VALUE, got {item!r}")
        key, val = item.split("=", 1)
        over[key] = _parse_value(val)
    over["variant"] = a.variant
    over["out_dir"] = a.out or f"runs/{a.stage}-{a.variant}"
    if a.base is not None:
        over["base"] = a.base
    if a.max_steps is not None:
        over["max_steps"] = a.max_steps
    if a.seed is not None:
        over["seed"] = a.seed
    if a.no_progress:
        over["progress"] = False
    if os.environ.get("REMOCO_STOP_AFTER"):
        over["stop_after"] = int(os.environ["REMOCO_STOP_AFTER"])
    cfg = preset_config(a.preset, a.stage, **over)
    res = train(cfg)
    print(json.dumps({"final_path": res.final_path, "final_loss": res.final_loss, "seconds": res.seconds,
                      "interrupted": res.interrupted, "peak_rss_mb": res.peak_rss_mb}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
