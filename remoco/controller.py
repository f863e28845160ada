"""Motion control learning (Section 3.3): motion encoder and adaptive feature modulation (Eq. 8).

* :class:`MotionEncoder` — a lightweight conv network over the channel-wise concatenation of the
  region-wise trajectory ``T_s`` and the motion mask ``M_mot`` (3 channels per frame at pixel resolution,
  layout ``(B*L, 3, H, W)`` from :func:`remoco.conditions.to_model_input`). Its first stage brings pixels to
  latent resolution (a pixel-unshuffle by the VAE factor: x8 for SVD, x4 for the toy), then every further
  stage halves the resolution, giving one feature map ``l_s`` per UNet scale.
* :class:`FeatureModulation` — one injection site: a spatio-temporal conv (3x3 spatial conv, then a
  zero-initialised temporal conv over frames) predicts ``gamma_s`` and ``beta_s`` from ``l_s`` and
  ``h'_s = GN(h_s) * gamma_s + beta_s + h_s`` (Eq. 8). Two ablation variants of the paper's Fig. 9:
  ``injection="concat"`` (ReMoCo^C: ``h' = h + Conv1x1_zero([h, f_s])``) and ``injection="sum"``
  (ReMoCo^+: ``h' = h + f_s`` with a zero-initialised projection ``f_s``).
* :class:`ReMoCoController` — the encoder plus one site per UNet scale, attached to a diffusers
  :class:`~diffusers.UNetSpatioTemporalConditionModel` with forward hooks (the UNet's forward is not copied).
  ``sites="paper"`` modulates the output of every down block, the mid block and every up block ("each feature
  scale", Sec. 3.3); ``sites="release"`` follows the authors' public release (MotionPro): inside the first
  ResNet of each down and up level, after its first conv and before the time embedding is added.
* LoRA (Eq. 9) lives in :mod:`remoco.lora`; :func:`trainable_parameters` is the paper's trainable set.
* :func:`save_controller` / :func:`load_controller` — only the controller and the LoRA weights (safetensors +
  JSON), to put on top of any base pipeline.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .lora import UNET_WEIGHTS, load_lora, load_unet_weights, lora_parameters, plain_unet_state, save_lora

__all__ = [
    "INJECTIONS",
    "CONDITION_TYPES",
    "SITES",
    "MotionEncoder",
    "FeatureModulation",
    "ReMoCoController",
    "site_specs",
    "match_device_dtype",
    "trainable_parameters",
    "save_controller",
    "load_controller",
]

#: What a controller reads (its ``condition_type``): see :class:`ReMoCoController`.
CONDITION_TYPES = ("region", "trajectory_only", "gaussian")
INJECTIONS = ("modulation", "concat", "sum")
SITES = ("paper", "release")


# ============================================================================ sites in the UNet
def _resnet_out_channels(block) -> int:
    return block.resnets[-1].spatial_res_block.conv2.out_channels


def site_specs(unet, sites: str = "paper") -> list[dict]:
    """Where the controller injects features into a :class:`UNetSpatioTemporalConditionModel`.

    Returns a list of ``{"name", "module", "kind", "channels", "level"}``: ``module`` is the dotted path of
    the hooked submodule, ``kind`` "down" (output ``(h, residuals)``) or "plain" (output ``h``),
    ``channels`` the feature channels there and ``level`` the UNet scale (0 = latent resolution, each level
    halves it), i.e. which motion-encoder feature map ``l_s`` is used.

    ``sites="paper"``: output of every ``down_blocks[i]`` (after its down-sampler: level i+1), ``mid_block``
    and every ``up_blocks[i]`` (after its up-sampler) — 2n+1 sites for n levels.
    ``sites="release"`` (MotionPro): ``resnets[0].spatial_res_block.conv1`` of every down and up block — 2n
    sites, none in the middle block.
    """
    if sites not in SITES:
        raise ValueError(f"sites must be one of {SITES}, got {sites!r}")
    n = len(unet.down_blocks)
    specs = []
    if sites == "paper":
        for i, b in enumerate(unet.down_blocks):
            level = i + 1 if getattr(b, "downsamplers", None) is not None else i
            specs.append(dict(name=f"down_blocks_{i}", module=f"down_blocks.{i}", kind="down",
                              channels=_resnet_out_channels(b), level=level))
        specs.append(dict(name="mid_block", module="mid_block", kind="plain",
                          channels=_resnet_out_channels(unet.mid_block), level=n - 1))
        for i, b in enumerate(unet.up_blocks):
            level_in = n - 1 - i
            level = level_in - 1 if getattr(b, "upsamplers", None) is not None else level_in
            specs.append(dict(name=f"up_blocks_{i}", module=f"up_blocks.{i}", kind="plain",
                              channels=_resnet_out_channels(b), level=level))
    else:
        for i, b in enumerate(unet.down_blocks):
            conv1 = b.resnets[0].spatial_res_block.conv1
            specs.append(dict(name=f"down_blocks_{i}_resnets_0",
                              module=f"down_blocks.{i}.resnets.0.spatial_res_block.conv1",
                              kind="plain", channels=conv1.out_channels, level=i))
        for i, b in enumerate(unet.up_blocks):
            conv1 = b.resnets[0].spatial_res_block.conv1
            specs.append(dict(name=f"up_blocks_{i}_resnets_0",
                              module=f"up_blocks.{i}.resnets.0.spatial_res_block.conv1",
                              kind="plain", channels=conv1.out_channels, level=n - 1 - i))
    return specs


# ============================================================================ building blocks
def _zero_(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def _num_groups(channels: int) -> int:
    return math.gcd(32, channels)


class TemporalConv(nn.Module):
    """A 1-D convolution over frames applied at every pixel: (B*F, C, H, W) -> (B*F, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, zero_init: bool = False):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"temporal kernel_size must be a positive odd int, got {kernel_size}")
        self.conv = nn.Conv3d(in_channels, out_channels, (kernel_size, 1, 1), padding=(kernel_size // 2, 0, 0))
        if zero_init:
            _zero_(self.conv)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        bf, c, h, w = x.shape
        x = x.reshape(bf // num_frames, num_frames, c, h, w).permute(0, 2, 1, 3, 4)
        x = self.conv(x)
        return x.permute(0, 2, 1, 3, 4).reshape(bf, -1, h, w)


class MotionEncoder(nn.Module):
    """Lightweight motion encoder (Sec. 3.3, Fig. 2): condition ``[T_s, M_mot]`` (N, 3, H, W) -> feature maps
    ``l_s`` at every UNet scale, ``[(N, C_0, H/f, W/f), (N, C_1, H/2f, W/2f), ...]`` with ``f`` the VAE factor.

    Stage 0 pixel-unshuffles by ``latent_factor`` (exact, no information lost) then applies two 3x3 convs;
    stage j >= 1 is a stride-2 3x3 conv then a 3x3 conv (the same ceil-halving as the UNet's down-samplers).
    Frames are encoded independently; temporal mixing happens in the modulation layers.

    Initialisation: He (Kaiming) normal weights with zero biases, so that the condition's signal keeps its
    scale through the SiLU stack. With PyTorch's default conv initialisation each stage shrinks it about
    ten-fold and the biases dominate: measured on a synthetic clip's dense ``[T_s, M_mot]``, the part of the
    deepest feature map that depends on the condition had an r.m.s. of 0.0003 (0.11 with He init), so the
    coarse UNet scales, where an object can be moved by a whole cell, could not learn from the trajectory.
    """

    def __init__(self, channels=(32, 64, 64), latent_factor: int = 4, in_channels: int = 3):
        super().__init__()
        if latent_factor < 1:
            raise ValueError(f"latent_factor must be >= 1, got {latent_factor}")
        self.latent_factor = int(latent_factor)
        self.in_channels = int(in_channels)
        stages = []
        prev = in_channels * latent_factor**2
        for j, c in enumerate(channels):
            first = nn.Conv2d(prev, c, 3, padding=1, stride=1 if j == 0 else 2)
            stages.append(nn.Sequential(first, nn.SiLU(), nn.Conv2d(c, c, 3, padding=1), nn.SiLU()))
            prev = c
        self.stages = nn.ModuleList(stages)
        self.unshuffle = nn.PixelUnshuffle(latent_factor) if latent_factor > 1 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, condition: torch.Tensor) -> list[torch.Tensor]:
        if condition.ndim != 4 or condition.shape[1] != self.in_channels:
            raise ValueError(
                f"condition must be (N, {self.in_channels}, H, W), got {tuple(condition.shape)}")
        H, W = condition.shape[-2:]
        if H % self.latent_factor or W % self.latent_factor:
            raise ValueError(f"condition height/width must be multiples of {self.latent_factor}, got {H}x{W}")
        x = self.unshuffle(condition)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class FeatureModulation(nn.Module):
    """One injection site (Eq. 8 and the Fig. 9 ablation variants).

    ``injection="modulation"``: ``gamma_s = T_g(S_g(l_s))``, ``beta_s = T_b(S_b(l_s))`` with ``S`` a 3x3 spatial
    conv and ``T`` a temporal conv over frames, zero-initialised; ``h' = GN(h) * gamma_s + beta_s + h``.
    ``injection="concat"`` (ReMoCo^C): ``f_s = T(S(l_s))``, ``h' = h + Conv1x1_zero([h, f_s])``.
    ``injection="sum"`` (ReMoCo^+): ``h' = h + T_zero(S(l_s))``.
    The zero-initialised last layers make ``h' = h`` exactly at initialisation.
    """

    def __init__(self, feature_channels: int, channels: int, injection: str = "modulation",
                 temporal_kernel_size: int = 3):
        super().__init__()
        if injection not in INJECTIONS:
            raise ValueError(f"injection must be one of {INJECTIONS}, got {injection!r}")
        self.injection = injection
        self.channels = channels
        self.num_groups = _num_groups(channels)
        k = temporal_kernel_size
        if injection == "modulation":
            self.gamma_spatial = nn.Conv2d(feature_channels, channels, 3, padding=1)
            self.gamma_temporal = TemporalConv(channels, channels, k, zero_init=True)
            self.beta_spatial = nn.Conv2d(feature_channels, channels, 3, padding=1)
            self.beta_temporal = TemporalConv(channels, channels, k, zero_init=True)
        elif injection == "concat":
            self.spatial = nn.Conv2d(feature_channels, channels, 3, padding=1)
            self.temporal = TemporalConv(channels, channels, k, zero_init=False)
            self.fuse = _zero_(nn.Conv2d(2 * channels, channels, 1))
        else:  # sum
            self.spatial = nn.Conv2d(feature_channels, channels, 3, padding=1)
            self.temporal = TemporalConv(channels, channels, k, zero_init=True)

    def condition_terms(self, feature: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, ...]:
        """The h-independent part of the site (depends only on the motion condition; cached over steps):
        ``(gamma_s, beta_s)`` for modulation, ``(f_s,)`` otherwise."""
        if self.injection == "modulation":
            gamma = self.gamma_temporal(self.gamma_spatial(feature), num_frames)
            beta = self.beta_temporal(self.beta_spatial(feature), num_frames)
            return gamma, beta
        return (self.temporal(self.spatial(feature), num_frames),)

    def forward(self, h: torch.Tensor, terms: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Inject the condition terms into the UNet feature ``h`` (B*F, C, h, w) (Eq. 8)."""
        if self.injection == "modulation":
            gamma, beta = terms
            normed = F.group_norm(h, self.num_groups, eps=1e-5)
            return normed * gamma.to(h.dtype) + beta.to(h.dtype) + h
        (f,) = terms
        f = f.to(h.dtype)
        if self.injection == "concat":
            return h + self.fuse(torch.cat([h, f], dim=1))
        return h + f


# ============================================================================ the controller
def match_device_dtype(module: nn.Module, like: torch.Tensor) -> None:
    """Move ``module`` to ``like``'s device and dtype, calling ``.to`` only for what differs."""
    q = next(module.parameters())
    if q.device != like.device:
        module.to(like.device)
    if q.dtype != like.dtype:
        module.to(dtype=like.dtype)


def _default_encoder_channels(block_out_channels) -> list[int]:
    return [c // 4 if c // 4 >= 32 else c for c in block_out_channels]


class ReMoCoController(ModelMixin, ConfigMixin):
    """Region-wise motion controller: motion encoder + adaptive feature modulation at every UNet scale (Eq. 8).

    Build it for a UNet with :meth:`from_unet`, then :meth:`attach` it (forward hooks). Before each UNet
    forward give it the motion condition with :meth:`set_condition` (or the :meth:`conditioned` context
    manager). The condition's per-site terms (``gamma_s, beta_s``) are computed once per condition and
    reused across denoising steps (they do not depend on the noisy latents).

    Config (JSON-serialisable, saved with the weights): ``site_names``, ``site_channels``, ``site_levels``,
    ``site_modules``, ``site_kinds`` (see :func:`site_specs`), ``encoder_channels`` (one per UNet level),
    ``latent_factor`` (VAE factor), ``injection`` ("modulation" | "concat" | "sum"), ``sites``
    ("paper" | "release"), ``temporal_kernel_size``, ``displacement_scale`` (the ``scale`` passed to
    :func:`remoco.conditions.to_model_input` by the pipeline; ``None`` = pixels as they are),
    ``condition_type``: what the controller was trained to read, so the pipeline turns a drag into the same
    kind of input (:data:`CONDITION_TYPES`: ``"region"`` — ReMoCo's k x k region trajectory + brush mask;
    ``"trajectory_only"`` — the region trajectory, mask channel zero; ``"gaussian"`` — the Gaussian-filtered
    point trajectory of DragNUWA / MotionCtrl, mask channel zero).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, site_names=(), site_channels=(), site_levels=(), site_modules=(), site_kinds=(),
                 encoder_channels=(32, 64, 64), latent_factor: int = 4, injection: str = "modulation",
                 sites: str = "paper", temporal_kernel_size: int = 3, condition_channels: int = 3,
                 displacement_scale: float | None = None, condition_type: str = "region"):
        super().__init__()
        if condition_type not in CONDITION_TYPES:
            raise ValueError(f"condition_type must be one of {CONDITION_TYPES}, got {condition_type!r}")
        if injection not in INJECTIONS:
            raise ValueError(f"injection must be one of {INJECTIONS}, got {injection!r}")
        if sites not in SITES:
            raise ValueError(f"sites must be one of {SITES}, got {sites!r}")
        lens = {len(site_names), len(site_channels), len(site_levels), len(site_modules), len(site_kinds)}
        if len(lens) != 1:
            raise ValueError("site_names, site_channels, site_levels, site_modules, site_kinds must have equal length")
        if any(lv >= len(encoder_channels) or lv < 0 for lv in site_levels):
            raise ValueError(f"site_levels {list(site_levels)} exceed the encoder's {len(encoder_channels)} levels")
        self.encoder = MotionEncoder(tuple(encoder_channels), latent_factor, condition_channels)
        self.modulations = nn.ModuleDict({
            name: FeatureModulation(encoder_channels[lv], ch, injection, temporal_kernel_size)
            for name, ch, lv in zip(site_names, site_channels, site_levels)
        })
        # runtime state (not parameters, not saved)
        self._handles: list = []
        self._unet_ref: list = []  # the attached UNet, kept out of the module tree
        self._condition: torch.Tensor | None = None
        self._num_frames: int | None = None
        self._features: list[torch.Tensor] | None = None
        self._terms: dict = {}
        self.cache_condition_terms = True

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_unet(cls, unet, vae_scale_factor: int = 8, injection: str = "modulation", sites: str = "paper",
                  encoder_channels=None, temporal_kernel_size: int = 3, displacement_scale: float | None = None,
                  attach: bool = True, condition_type: str = "region",
                  generator: torch.Generator | None = None) -> "ReMoCoController":
        """A zero-initialised controller fitted to ``unet`` (channel counts and scales read from it).

        ``vae_scale_factor``: pixels per latent (8 for SVD, 4 for the toy; see :func:`remoco.models.vae_scale_factor`).
        ``encoder_channels``: one per UNet level (default: block_out_channels // 4, at least 32, else unchanged).
        ``generator``: draws the initial weights of the layers that are not zero-initialised (the same weights for
        the same generator state, and the global RNG is left untouched); None draws them from torch's global RNG.
        The controller is put on the UNet's device/dtype and attached unless ``attach=False``."""
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        specs = site_specs(unet, sites)
        boc = list(unet.config.block_out_channels)
        enc = _default_encoder_channels(boc) if encoder_channels is None else list(encoder_channels)
        if len(enc) != len(boc):
            raise ValueError(f"encoder_channels must have one entry per UNet level ({len(boc)}), got {enc}")
        p = next(unet.parameters())
        ctx = torch.device("meta") if p.device.type == "meta" else contextlib.nullcontext()
        rng = contextlib.nullcontext() if generator is None else torch.random.fork_rng(devices=[])
        with rng, ctx:  # a meta-device UNet (paper scale without memory) gets a meta-device controller
            if generator is not None:  # inside fork_rng: the global RNG is restored afterwards
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
            ctrl = cls(
                site_names=[s["name"] for s in specs], site_channels=[s["channels"] for s in specs],
                site_levels=[s["level"] for s in specs], site_modules=[s["module"] for s in specs],
                site_kinds=[s["kind"] for s in specs], encoder_channels=enc, latent_factor=int(vae_scale_factor),
                injection=injection, sites=sites, temporal_kernel_size=temporal_kernel_size,
                displacement_scale=displacement_scale, condition_type=condition_type,
            )
        if p.device.type != "meta":
            match_device_dtype(ctrl, p)
        if attach:
            ctrl.attach(unet)
        return ctrl

    # ------------------------------------------------------------------ hooks
    @property
    def attached_unet(self):
        return self._unet_ref[0] if self._unet_ref else None

    def attach(self, unet) -> "ReMoCoController":
        """Register the forward hooks on ``unet`` (the UNet is neither copied nor registered as a submodule)."""
        if self._handles:
            if self.attached_unet is unet:
                return self
            raise RuntimeError("controller is already attached to another UNet: call detach() first")
        for name, module_path, kind in zip(self.config.site_names, self.config.site_modules, self.config.site_kinds):
            try:
                module = unet.get_submodule(module_path)
            except AttributeError as err:
                raise ValueError(f"unet has no submodule {module_path!r} (site {name}): wrong UNet?") from err
            self._handles.append(module.register_forward_hook(self.make_hook(name, kind)))
        self._unet_ref[:] = [unet]
        return self

    def detach(self) -> None:
        """Remove every hook: the UNet is the base model again."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._unet_ref[:] = []

    @property
    def is_attached(self) -> bool:
        return bool(self._handles)

    def make_hook(self, name: str, kind: str):
        """The forward hook of site ``name``: it replaces the block's output by its modulated version
        (Eq. 8, :meth:`_inject`); on a down block also the last residual, the copy the skip connection
        carries to the up path."""

        def hook(_module, _args, output):
            if kind == "down":
                h, residuals = output
                h2 = self._inject(name, h)
                if residuals and residuals[-1] is not h:
                    raise RuntimeError(f"{name}: expected the last residual of a down block to be its output")
                return h2, tuple(residuals[:-1]) + (h2,)
            return self._inject(name, output)
        return hook

    def _inject(self, name: str, h: torch.Tensor) -> torch.Tensor:
        if self._condition is None:
            raise RuntimeError(
                "ReMoCoController is attached but no motion condition is set: call controller.set_condition(...) "
                "(or use `with controller.conditioned(...)`) before the UNet forward, or controller.detach()."
            )
        if h.shape[0] != self._condition.shape[0]:
            raise ValueError(
                f"motion condition has {self._condition.shape[0]} frames in total (batch x num_frames) but the UNet "
                f"runs on {h.shape[0]}: with classifier-free guidance use set_condition(..., "
                "do_classifier_free_guidance=True)"
            )
        terms = self._terms.get(name) if self.cache_condition_terms else None
        if terms is None:
            idx = self.config.site_names.index(name)
            feat = self.encoded_features()[self.config.site_levels[idx]]
            if tuple(feat.shape[-2:]) != tuple(h.shape[-2:]):
                raise ValueError(
                    f"site {name}: motion feature {tuple(feat.shape[-2:])} does not match UNet feature "
                    f"{tuple(h.shape[-2:])}: the condition's H x W must equal the video's pixel size"
                )
            terms = self.modulations[name].condition_terms(feat, self._num_frames)
            if self.cache_condition_terms:
                self._terms[name] = terms
        return self.modulations[name](h, terms)

    # ------------------------------------------------------------------ condition
    def set_condition(self, condition: torch.Tensor, num_frames: int | None = None,
                      do_classifier_free_guidance: bool = False) -> None:
        """Set the motion condition ``[T_s, M_mot]`` for the next UNet forward passes.

        ``condition``: (B, L, 3, H, W), or (B*L, 3, H, W) with ``num_frames=L``, H x W in pixels (the video's
        size). With ``do_classifier_free_guidance=True`` a zero condition is prepended for the unconditional
        half of SVD's doubled batch ``[uncond, cond]``. Not modified in place."""
        if not torch.is_tensor(condition):
            raise ValueError(f"condition must be a torch.Tensor, got {type(condition)}")
        c = self.config.condition_channels
        if condition.ndim == 5:
            if condition.shape[2] != c:
                raise ValueError(f"condition must be (B, L, {c}, H, W), got {tuple(condition.shape)}")
            if num_frames is not None and num_frames != condition.shape[1]:
                raise ValueError(f"num_frames={num_frames} but condition has {condition.shape[1]} frames")
            num_frames = condition.shape[1]
            condition = condition.flatten(0, 1)
        elif condition.ndim == 4:
            if condition.shape[1] != c:
                raise ValueError(f"condition must be (B*L, {c}, H, W), got {tuple(condition.shape)}")
            if num_frames is None or num_frames < 1 or condition.shape[0] % num_frames:
                raise ValueError(
                    f"num_frames must divide the condition's first dimension {condition.shape[0]} "
                    f"for a (B*L, {c}, H, W) condition, got {num_frames}")
        else:
            raise ValueError(f"condition must be (B, L, {c}, H, W) or (B*L, {c}, H, W), got {tuple(condition.shape)}")
        p = next(self.parameters())
        condition = condition.to(device=p.device, dtype=p.dtype)
        if do_classifier_free_guidance:
            condition = torch.cat([torch.zeros_like(condition), condition], dim=0)
        self._condition = condition
        self._num_frames = int(num_frames)
        self._features = None
        self._terms = {}

    def clear_condition(self) -> None:
        """Forget the condition and its cached features."""
        self._condition = None
        self._num_frames = None
        self._features = None
        self._terms = {}

    @contextlib.contextmanager
    def conditioned(self, condition: torch.Tensor, num_frames: int | None = None,
                    do_classifier_free_guidance: bool = False):
        """``with controller.conditioned(cond): unet(...)`` — set_condition, then clear_condition on exit."""
        self.set_condition(condition, num_frames, do_classifier_free_guidance)
        try:
            yield self
        finally:
            self.clear_condition()

    def encoded_features(self) -> list[torch.Tensor]:
        """The motion encoder's multi-scale features ``l_s`` of the current condition (computed once)."""
        if self._condition is None:
            raise RuntimeError("no condition set: call set_condition(...) first")
        if self._features is None or not self.cache_condition_terms:
            self._features = self.encoder(self._condition)
        return self._features

    def forward(self, condition: torch.Tensor) -> list[torch.Tensor]:
        """Motion-encoder features ``l_s`` for a (N, 3, H, W) condition (no hooks involved)."""
        return self.encoder(condition)


# ============================================================================ trainable set (Sec. 3.3)
def trainable_parameters(controller: ReMoCoController, unet) -> list[nn.Parameter]:
    """The trainable set of Sec. 3.3: motion encoder + modulation layers + LoRA (the base UNet is frozen)."""
    return list(controller.parameters()) + lora_parameters(unet)


# ============================================================================ save / load
def save_controller(path, controller: ReMoCoController, unet=None, unet_weights: bool = False) -> Path:
    """Save only the controller (``controller/``: config.json + safetensors) and, if ``unet`` carries LoRA,
    the LoRA weights (:func:`remoco.lora.save_lora`: ``lora.safetensors`` + ``lora_config.json``) into the
    folder ``path``.
    ``unet_weights=True`` also writes the UNet's own (non-LoRA) weights to ``unet_weights.safetensors``: a
    controller trained together with its UNet (``TrainConfig.unet_lr > 0``, a departure from the paper)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    controller.save_pretrained(path / "controller", safe_serialization=True)
    if unet is not None:
        save_lora(path, unet)
        if unet_weights:
            sd = {n: p.detach().contiguous().cpu() for n, p in plain_unet_state(unet).items()}
            save_file(sd, str(path / UNET_WEIGHTS))
    return path


def load_controller(path, unet=None, attach: bool = True) -> ReMoCoController:
    """Load a controller saved by :func:`save_controller`; with ``unet``, also add and load its LoRA into
    ``unet`` (in place, :func:`remoco.lora.load_lora`) and attach the controller to it."""
    path = Path(path)
    if not (path / "controller" / "config.json").is_file():
        raise FileNotFoundError(f"path={str(path)!r} has no controller/config.json: not a save_controller folder")
    controller = ReMoCoController.from_pretrained(path / "controller")
    if unet is not None:
        match_device_dtype(controller, next(unet.parameters()))
        load_unet_weights(path, unet)
        load_lora(path, unet)
        if attach:
            controller.attach(unet)
    controller.eval()
    return controller
