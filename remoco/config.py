"""What a training run is: :class:`TrainConfig`, the ``toy-cpu`` and ``paper`` presets, and the table of
how the toy recipe departs from the paper's (chapter 5).

The paper's recipe (Sec. 4.1, with the SVD / MotionPro fine-tuning choices) is the ``paper`` preset; the
``toy-cpu`` preset changes only what training from scratch in minutes on a CPU needs, and
:data:`TOY_CHANGES` says why, field by field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import KINDS

__all__ = [
    "STAGES",
    "VARIANTS",
    "VARIANT_INJECTION",
    "VARIANT_CONDITION",
    "SHIPPED_DIR",
    "PRESETS",
    "TOY_CONTROLLER_KINDS",
    "TOY_CHANGES",
    "FAST_PATH",
    "BASELINE_PATH",
    "TrainConfig",
    "preset_config",
    "paper_k",
    "add_train_arguments",
    "config_from_args",
    "recipe_table",
]

STAGES = ("base", "vae", "unet", "controller")
VARIANTS = ("remoco", "gaussian", "traj_only", "concat", "sum")
#: What each controller variant reads (remoco.controller ``condition_type``).
VARIANT_CONDITION = {"remoco": "region", "gaussian": "gaussian", "traj_only": "trajectory_only",
                     "concat": "region", "sum": "region"}
#: How each controller variant injects its features (remoco.controller ``injection``).
VARIANT_INJECTION = {"remoco": "modulation", "gaussian": "modulation", "traj_only": "modulation",
              "concat": "concat", "sum": "sum"}

#: Folder of the shipped toy checkpoints (``data/checkpoints`` at the repository root).
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "data" / "checkpoints"


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
    photos: str = "bench"              # synthetic scenes' photographs: bench (the 7 of data.PHOTO_NAMES) | train
    flow_source: str = "gt"            # gt (generator's exact flow) | opencv | dot | cotracker (remoco.flow)
    # ---- motion conditions (Sec. 3.2)
    k: int = 8
    r_min: float = 0.95
    r_max: float = 1.0                 # r_m ~ U[r_min, r_max] (paper: 1); r_min = r_max = 0: dense T_s
    condition_variant: str = "paper"   # paper | release (remoco.conditions)
    motion_threshold: float = 1.0
    displacement_scale: float | None = None
    # ---- models
    base: str = "data/checkpoints/toy-base"  # controller stage: base pipeline folder / hub id / "random:SEED"
    lora_rank: int = 32
    lora_targets: str = "attention"    # attention (paper) | all_linear (release)
    sites: str = "paper"               # paper | release (remoco.controller)
    unet_lr: float = 0.0               # controller stage: 0 = base UNet frozen (paper); > 0 = departure:
                                       # the toy UNet's own weights train too, at this lr
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
    mixed_precision: str = "no"        # no | fp16 | bf16 (accelerate) | auto (remoco.speed: bf16 where native)
    fused_adam: bool = False           # AdamW's fused kernel (one pass over all parameters) instead of foreach
    # ---- EDM recipe (SVD / MotionPro)
    p_mean: float = 0.7
    ema_decay: float | None = None     # None: save the last iterate; in (0, 1): an EMA of the weights (remoco.ema)
    p_std: float = 1.6
    cond_aug_mean: float = -3.0
    cond_aug_std: float = 0.5
    cond_dropout: float = 0.1
    fps: int = 7
    motion_bucket_id: int = 127        # SVD's motion score (micro-conditioning) when motion_bucket="fixed"
    motion_bucket: str = "fixed"       # fixed (motion_bucket_id for every clip) | flow (each clip's score)
    motion_bucket_scale: float = 40.0  # motion_bucket="flow": bucket = round(mean |f| * scale), <= 255
    # ---- toy UNet (toy base only; the controller stage reads the base's own)
    unet_channels: tuple = (64, 64, 64)  # toy 3D-UNet widths per level (models.toy_unet_config)
    unet_attention: str = "middle"     # middle (cross/temporal attention at the middle level only) | all (every level)
    # ---- VAE (toy base only)
    vae_steps: int = 0
    vae_batch_size: int = 2
    vae_crop: int | None = None
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-6
    vae_sample_posterior: bool = True  # False: deterministic autoencoder (z = posterior mean), toy scale
    vae_channels: tuple = (32, 32, 32)  # toy VAE widths per level (3 levels: spatial factor 4)
    vae_layers_per_block: int = 1
    vae_latent_channels: int = 4
    vae_loss: str = "mse"              # mse | l1+mse (reconstruction term of the toy VAE)
    vae_frames: int | None = None      # consecutive frames of each clip per VAE step (None: all num_frames)
    vae_norm_channels: int | None = None  # channels per GroupNorm group of the toy VAE (None: diffusers' 32 groups)
    vae_kind: str = "temporal"         # toy VAE: temporal (SVD's temporal-decoder VAE) | plain (toy_vae.ToyAutoencoder)
    vae_latent_noise: float = 0.0      # > 0: the decoder sees z + s * std(z) * N(0, I), s ~ U[0, this] per frame
    # ---- bookkeeping
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 1
    cache_latents: bool = True
    cache_clips: bool = True           # keep generated synthetic clips in memory (~0.4 MB each at toy size)
    num_workers: int = 0               # > 0: loader workers, and the synthetic clips drawn up front by that many
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
        num("r_max", 0.0, 1.0)
        num("unet_lr", 0.0, 1.0)
        if self.r_max < self.r_min:
            fail("r_max", f">= r_min={self.r_min}")
        if self.motion_bucket not in ("fixed", "flow"):
            fail("motion_bucket", "'fixed' or 'flow'")
        num("motion_bucket_scale", 0.0, lo_open=True)
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
        if self.mixed_precision not in ("no", "fp16", "bf16", "auto"):
            fail("mixed_precision", "'no', 'fp16', 'bf16' or 'auto'"
                 + (" (YAML reads an unquoted no as False: write 'no')" if self.mixed_precision is False else ""))
        if not isinstance(self.fused_adam, bool):
            fail("fused_adam", "True or False")
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
                    or any(kd not in KINDS for kd in self.clip_kinds)
                    or any(not isinstance(w, (int, float)) or w < 0 for w in self.clip_kinds.values())
                    or sum(self.clip_kinds.values()) <= 0):
                fail("clip_kinds", f"None or a dict {{kind: weight >= 0}} over {KINDS} with a positive sum")
        if self.photos not in ("bench", "train"):
            fail("photos", "'bench' (data.PHOTO_NAMES) or 'train' (data.TRAIN_PHOTOS)")
        if level_channels(self.vae_channels) is None:
            fail("vae_channels", "three multiples of 32 (the VAE's GroupNorm has 32 groups); 3 levels keep factor 4")
        self.vae_channels = level_channels(self.vae_channels)
        if level_channels(self.unet_channels) is None:
            fail("unet_channels", "three multiples of 32 (the UNet's GroupNorm has 32 groups), one per level")
        self.unet_channels = level_channels(self.unet_channels)
        if self.unet_attention not in UNET_ATTENTIONS:
            fail("unet_attention", "'middle' (the toy preset) or 'all'")
        ema = self.ema_decay
        if ema is not None and (isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 < ema < 1):
            fail("ema_decay", "None (the last iterate) or a number in (0, 1), e.g. 0.999")
        pos_int("vae_layers_per_block")
        pos_int("vae_latent_channels")
        if self.vae_loss not in ("mse", "l1+mse"):
            fail("vae_loss", "'mse' or 'l1+mse'")
        num("vae_latent_noise", 0.0)
        if self.vae_kind not in ("temporal", "plain"):
            fail("vae_kind", "'temporal' or 'plain'")
        if self.vae_kind == "plain" and self.vae_norm_channels is not None:
            fail("vae_norm_channels", "None with vae_kind='plain' (the plain autoencoder has no normalisation)")
        if self.vae_norm_channels is not None:
            pos_int("vae_norm_channels")
            if any(c % self.vae_norm_channels for c in self.vae_channels):
                fail("vae_norm_channels", f"None or a divisor of every vae_channels {self.vae_channels}")
        if self.vae_frames is not None:
            pos_int("vae_frames")
            if self.vae_frames > self.num_frames:
                fail("vae_frames", f"None or at most num_frames={self.num_frames}")
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
        d["vae_channels"] = list(self.vae_channels)
        d["unet_channels"] = list(self.unet_channels)
        return d

    def fingerprint(self, stage: str | None = None) -> str:
        """Hash of the fields that determine the trained weights (not out_dir / stop_after / progress).

        With ``stage`` ("vae", "unet", "controller") only the fields that stage reads count, so that a change
        to the controller's settings does not invalidate a finished base (and a UNet setting not the VAE)."""
        if stage is not None and stage not in _STAGE_IGNORES:
            raise ValueError(f"stage must be one of {sorted(_STAGE_IGNORES)} or None, got {stage!r}")
        skip = set(self._RUNTIME) | (_STAGE_IGNORES[stage] if stage else set())
        # a field added after runs were made counts only away from its default, so those runs still resume
        skip |= {k for k, v in _LATE_FIELDS.items() if getattr(self, k) == v}
        d = {k: v for k, v in self.to_dict().items() if k not in skip}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_yaml(self, path=None) -> str:
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def check_field_names(cls, d, source: str = "config") -> None:
        """Raise ``ValueError`` unless ``d`` is a mapping whose keys are all TrainConfig fields."""
        if not isinstance(d, dict):
            raise ValueError(f"{source} must be a mapping of field names, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"{source}: unknown TrainConfig field(s) {unknown}; valid fields: {sorted(names)}")

    @classmethod
    def fields_from_yaml(cls, path) -> dict:
        """The fields a YAML file names (only those: the others keep their defaults), checked by name."""
        import yaml

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config path {str(p)!r} does not exist")
        d = yaml.safe_load(p.read_text()) or {}
        cls.check_field_names(d, f"config file {str(p)!r}")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        cls.check_field_names(d)
        d = dict(d)
        for name in ("adam_betas", "vae_channels", "unet_channels"):
            if name in d and isinstance(d[name], list):
                d[name] = tuple(d[name])
        return cls(**d)

    @classmethod
    def from_yaml(cls, path) -> "TrainConfig":
        return cls.from_dict(cls.fields_from_yaml(path))

    def replace(self, **changes) -> "TrainConfig":
        d = self.to_dict()
        d.update(changes)
        return TrainConfig.from_dict(d)


#: Controller-stage clip mixture at toy scale: mostly static-camera object motion, some camera motion.
TOY_CONTROLLER_KINDS = {"object": 0.45, "part": 0.15, "occlusion": 0.1, "exit": 0.1, "camera": 0.2}

#: The faster training path (:mod:`remoco.speed`): bf16 autocast where the processor computes bf16 natively (fp32
#: elsewhere, chosen when the run starts and written into its provenance) and AdamW's fused kernel.
FAST_PATH = {"mixed_precision": "auto", "fused_adam": True}
#: The path every checkpoint and result before it was trained on (fp32, foreach AdamW): ``benchmarks/bench_speed.py``
#: times it beside :data:`FAST_PATH`.
BASELINE_PATH = {"mixed_precision": "no", "fused_adam": False}

#: The two presets. ``paper`` = Sec. 4.1 + the SVD/MotionPro fine-tuning recipe (6 GPUs x 8 clips = 48);
#: ``toy-cpu`` changes only what training from scratch in minutes on a CPU needs (see chapter 5).
PRESETS: dict[str, dict] = {
    "toy-cpu": dict(
        num_clips=1024, num_frames=8, height=64, width=64, k=8, r_min=0.95,
        displacement_scale=8.0, base=str(SHIPPED_DIR / "toy-base"), lora_rank=8,
        batch_size=4, grad_accum=1, max_steps=2400, lr=2e-4, lr_schedule="cosine", warmup_steps=50,
        **FAST_PATH, p_mean=1.5, p_std=1.6, cond_dropout=0.1, fps=7, motion_bucket_id=127,
        motion_bucket="flow", vae_steps=1500, vae_batch_size=8, vae_frames=1, vae_crop=None, vae_lr=1e-3,
        vae_kl_weight=1e-6, vae_sample_posterior=False, vae_kind="plain", vae_channels=(32, 64, 64),
        vae_layers_per_block=2, vae_loss="l1+mse", photos="train",
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


#: The toy UNet's attention layouts (``unet_attention``, :func:`remoco.models.toy_unet_config`).
UNET_ATTENTIONS = ("middle", "all")


def level_channels(value) -> tuple[int, int, int] | None:
    """``value`` as a tuple if it is three ints, each a multiple of 32 (diffusers' GroupNorm has 32 groups), one per
    level of a toy VAE or UNet (three levels keep the spatial factor 4); None otherwise. The one check behind
    ``vae_channels``, ``unet_channels`` and :func:`remoco.models.toy_unet_config`."""
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        return None
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 32 and c % 32 == 0 for c in value):
        return None
    return tuple(value)


def paper_k(height: int, width: int, paper_k_value: int = 8, paper_height: int = 320) -> int:
    """The region size k that keeps the paper's region-to-frame ratio at another frame size: the paper uses
    k = 8 at 320x512 (Sec. 4.1), so ``k = round(8 * H / 320)``, at least 1, lowered until it divides H and
    W. At the toy's 64x64 this gives k = 2 (1,024 regions, of which r_m ~ U[0.95, 1] keeps ~26 on
    average; the paper keeps ~64 of 2,560)."""
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    k = max(1, round(paper_k_value * height / paper_height))
    while height % k or width % k:
        k -= 1
    return k


#: Fields that only the controller stage reads.
_CONTROLLER_FIELDS = frozenset({"variant", "k", "r_min", "r_max", "condition_variant", "motion_threshold",
                                "displacement_scale", "base", "lora_rank", "lora_targets", "sites", "unet_lr"})
#: Fields the UNet and controller stages read but the VAE stage does not.
_DENOISER_FIELDS = frozenset({"max_steps", "lr", "batch_size", "grad_accum", "p_mean", "p_std", "cond_aug_mean",
                              "cond_aug_std", "cond_dropout", "fps", "motion_bucket_id", "motion_bucket",
                              "motion_bucket_scale", "cache_latents", "unet_channels", "unet_attention",
                              "ema_decay"})
#: ``TrainConfig.fingerprint(stage)``: the fields each stage ignores (the VAE/UNet fields stay in the
#: controller's fingerprint: they name the base it was trained on only through ``base``, but cost nothing).
_STAGE_IGNORES = {"vae": _CONTROLLER_FIELDS | _DENOISER_FIELDS | {"stage", "preset"},
                  "unet": _CONTROLLER_FIELDS | {"stage", "preset"},
                  "controller": frozenset({"stage", "preset"})}


#: Fields added after the first runs, with the default that reproduces those runs (fingerprint leaves them out there).
_LATE_FIELDS = {"photos": "bench", "vae_channels": (32, 32, 32), "vae_layers_per_block": 1, "vae_latent_channels": 4,
                "vae_loss": "mse", "vae_frames": None, "vae_norm_channels": None, "vae_kind": "temporal",
                "vae_latent_noise": 0.0, "unet_channels": (64, 64, 64), "unet_attention": "middle", "ema_decay": None}


def preset_config(preset: str = "toy-cpu", stage: str = "controller", **overrides) -> TrainConfig:
    """The :class:`TrainConfig` of a preset (``"toy-cpu"`` or ``"paper"``) for ``stage``, with overrides.

    At the toy preset the base stage uses 1500 steps of the plain toy autoencoder at lr 1e-3, then
    ``max_steps=2400`` UNet steps at lr 2e-4, and the controller 1800 steps at lr 3e-4 (higher than the paper's
    1e-5: trained in minutes, from a toy base) with the toy UNet itself training at ``unet_lr=1e-4`` (a departure:
    ``unet_lr=0`` freezes it as the paper does); the controller stage draws its clips from
    :data:`TOY_CONTROLLER_KINDS`."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    if preset == "paper" and stage in ("base", "vae", "unet"):
        raise ValueError(f"stage={stage!r} is not available with preset='paper': the paper starts from the "
                         "pretrained SVD (use stage='controller')")
    d = dict(PRESETS[preset])
    if preset == "toy-cpu" and stage == "controller":
        # unet_lr > 0: the toy UNet trains with the controller (a departure, chapter 5: the frozen toy base renders
        # too little motion to steer); unet_lr=0 gives the paper's frozen-base recipe
        d.update(max_steps=1800, clip_kinds=dict(TOY_CONTROLLER_KINDS), lr=3e-4, unet_lr=1e-4,
                 k=paper_k(d["height"], d["width"]))
        if overrides.get("variant", "remoco") != "gaussian":
            # dense T_s (every region kept): at 64 px the paper's sparse regime (r_m ~ U[0.95, 1]) does not
            # teach the controller the direction of a drag (chapter 5); the Gaussian baseline stays sparse
            d.update(r_min=0.0, r_max=0.0)
    d.update(preset=preset, stage=stage)
    d.update(overrides)
    return TrainConfig.from_dict(d)


#: Why the toy preset departs from the paper, field by field (chapter 5's recipe table).
TOY_CHANGES = {
    "num_frames": "8 frames keep a CPU step well under a second",
    "height": "64 px: the toy base is trained from scratch in minutes",
    "width": "64 px (square synthetic clips)",
    "lora_rank": "rank 8 keeps LoRA low-rank w.r.t. the toy widths 32-64 (paper: 32 vs 320-1280)",
    "lr": "controller 3e-4 (1e-3 with the frozen base), UNet 2e-4, VAE 1e-3: "
          "toy models from scratch in minutes need larger steps than fine-tuning SVD",
    "lr_schedule": "cosine decay to 10 % over the short run (paper: constant)",
    "warmup_steps": "short warm-up: the larger lr on random weights",
    "batch_size": "4 clips per step on one CPU process (paper: 8 per GPU x 6 GPUs = 48)",
    "mixed_precision": "auto: bf16 autocast for the UNet and controller stages where the CPU multiplies bf16 "
                       "natively (AVX-512 BF16 / AMX), fp32 elsewhere and for the toy VAE, which bf16 slows "
                       "(remoco.speed; the choice is in each run's provenance): 1.4-1.7x per step",
    "displacement_scale": "pixel displacements / 8 so the encoder sees O(1) inputs (paper: not stated)",
    "flow_source": "the generator's exact flow (OpenCV DIS: 0.25 s/clip at 64 px, EPE 0.33 px; paper: DOT)",
    "vae_sample_posterior": "deterministic toy VAE: an untrained log-variance head's noise swamps the latents",
    "vae_steps": "the toy VAE is trained first (SVD's VAE is pretrained)",
    "vae_norm_channels": "4 channels per GroupNorm group in the toy VAE (remoco.toy_vae; diffusers fixes 32 groups, "
                         "one channel each at the toy's width 32; SVD's widths give 4-16): +2 dB in chapter 1's sweep",
    "photos": "training scenes cut from every image the packages ship (scikit-image, matplotlib) but the rocket and "
              "the astronaut, kept for the bench and the demo (paper: WebVid-10M videos)",
    "max_steps": "minutes of CPU: UNet 2,400, controller 1,800 optimizer steps (paper: not stated)",
    "unet_lr": "the toy UNet trains with the controller at lr 1e-4 (paper: SVD frozen, only the controller and "
               "LoRA train): the frozen toy base renders too little motion for a drag to steer (chapter 5 shows "
               "the frozen-base controller beside it); unet_lr=0 restores the paper's recipe",
    "k": "k = round(8 x H / 320) = 2 (config.paper_k): the paper's region size relative to the frame",
    "r_min": "dense T_s (r_m = 0, every region kept): at 64 px the sparse regime does not carry the drag's "
             "direction (chapter 5); the Gaussian baseline keeps r_m ~ U[0.95, 1]",
    "p_mean": "log sigma ~ N(1.5, 1.6^2): more training at high noise, where a clip's motion is decided",
    "motion_bucket": "SVD's motion score from each clip's flow (mean |f| x 40), not a constant 127: "
                     "the toy base keeps SVD's motion knob",
    "fps": "the paper samples clips at 8 fps; the synthetic clips have no frame rate, SVD's default 7 is used",
    "base": "our toy SVD instead of stabilityai/stable-video-diffusion-img2vid",
}


def recipe_table(stage: str = "controller") -> list[dict]:
    """Rows ``{setting, paper, toy, why}`` comparing the ``paper`` preset (controller stage) with the
    ``toy-cpu`` preset of ``stage`` on the settings of the training recipe."""
    paper = preset_config("paper", "controller")
    toy = preset_config("toy-cpu", stage)
    keys = ["num_frames", "height", "width", "k", "r_min", "r_max", "lora_rank", "lora_targets", "lr", "unet_lr",
            "lr_schedule", "warmup_steps", "batch_size", "grad_accum", "weight_decay", "max_grad_norm",
            "mixed_precision", "p_mean", "p_std", "cond_aug_mean", "cond_aug_std", "cond_dropout", "fps",
            "motion_bucket", "motion_bucket_id",
            "displacement_scale", "flow_source", "max_steps", "vae_steps", "vae_sample_posterior", "base"]
    rows = []
    for k in keys:
        pv, tv = getattr(paper, k), getattr(toy, k)
        if k == "base":
            tv = "toy-base (this chapter)" if stage == "controller" else "-"
        rows.append({"setting": k, "paper": pv, "toy": tv,
                     "why": "" if pv == tv else TOY_CHANGES.get(k, "")})
    return rows


# ------------------------------------------------------------------------------------------------ command line
def add_train_arguments(parser) -> None:
    """The options of ``remoco train`` / ``python -m remoco.train`` on an ``argparse`` parser."""
    parser.add_argument("--preset", default=None, choices=tuple(PRESETS), help="default: the file's, else toy-cpu")
    parser.add_argument("--stage", default=None, choices=STAGES, help="default: the file's, else controller")
    parser.add_argument("--variant", default=None, choices=VARIANTS, help="default: the file's, else remoco")
    parser.add_argument("--out", default=None,
                        help="output folder (default: the file's out_dir, else runs/<stage>-<variant>)")
    parser.add_argument("--config", default=None,
                        help="YAML file of TrainConfig fields; only the fields it names apply")
    parser.add_argument("--base", default=None, help="controller stage: base pipeline folder, hub id or random:SEED")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="FIELD=VALUE",
                        help="override any TrainConfig field; repeatable (--set a=1 b=2 and --set a=1 --set b=2 agree)")
    parser.add_argument("--no-progress", action="store_true")


def _set_value(key: str, text: str, parsed):
    """The value of ``--set key=text``: what YAML reads, except that a field whose type is plain text keeps the
    text as typed when YAML would read something else (``mixed_precision=no`` is ``"no"``, not ``False``)."""
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    if types.get(key) in ("str", str) and not isinstance(parsed, str):
        return text
    return parsed


def config_from_args(args) -> TrainConfig:
    """The :class:`TrainConfig` that ``remoco train`` runs (arguments of :func:`add_train_arguments`). A field
    given in ``--config`` wins over the preset, ``--set`` over the file, and a named flag (``--variant``,
    ``--out``...) over both; a flag that is not given changes nothing."""
    import yaml

    over: dict = {}
    if args.config:
        over.update(TrainConfig.fields_from_yaml(args.config))
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        key, val = item.split("=", 1)
        over[key] = _set_value(key, val, yaml.safe_load(val))
    named = {"preset": args.preset, "stage": args.stage, "variant": args.variant, "out_dir": args.out,
             "base": args.base, "max_steps": args.max_steps, "seed": args.seed}
    over.update({k: v for k, v in named.items() if v is not None})
    if args.no_progress:
        over["progress"] = False
    if os.environ.get("REMOCO_STOP_AFTER"):
        over["stop_after"] = int(os.environ["REMOCO_STOP_AFTER"])
    preset = over.pop("preset", "toy-cpu")
    stage = over.pop("stage", "controller")
    over.setdefault("out_dir", f"runs/{stage}-{over.get('variant', 'remoco')}")
    return preset_config(preset, stage, **over)
