"""What one training step minimises (Sec. 3.1-3.3): the EDM inputs of Eq. 1-3 with SVD's conditioning
(:func:`edm_training_batch`) and the controller's motion condition of Sec. 3.2 (:func:`motion_condition`).

Training and evaluation share this file: the condition ablation of chapter 5 draws its inputs exactly as a
training step does."""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import TrainConfig

__all__ = ["to_pixels", "FrozenEncoders", "Denoiser", "motion_bucket_from_flow", "edm_training_batch",
           "motion_condition"]


def to_pixels(video_uint8: torch.Tensor) -> torch.Tensor:
    """(B, L, H, W, 3) uint8 -> (B, L, 3, H, W) float in [-1, 1] (SVD's pixel range)."""
    return video_uint8.permute(0, 1, 4, 2, 3).float().div(127.5).sub(1.0)


class FrozenEncoders:
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
        x = to_pixels(video[None].to(self.device))[0]  # (L, 3, H, W)
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


class Denoiser(nn.Module):
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


def motion_bucket_from_flow(flow: torch.Tensor, scale: float = 40.0) -> float:
    """SVD's motion score of a clip from its optical flow (SVD conditions its UNet on a motion bucket
    computed from flow, its ``motion_bucket_id`` micro-conditioning): ``round(mean_{i,p} ||f^i(p)||_2 *
    scale)``, at most 255. ``flow``: (L, H, W, 2) pixels from the first frame. The toy rule: ``scale = 40``
    puts a clip whose pixels move 1 px on average at bucket 40 and SVD's default 127 at ~3.2 px."""
    if not isinstance(flow, torch.Tensor) or flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be an (L, H, W, 2) tensor, got {getattr(flow, 'shape', type(flow))}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    mag = float(flow.float().norm(dim=-1).mean())
    if not math.isfinite(mag):
        raise ValueError("flow contains NaN or inf values")
    return float(min(255.0, round(mag * scale)))


def edm_training_batch(cfg: TrainConfig, stage: str, frozen: FrozenEncoders, batch: dict, gen: torch.Generator,
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
    x = to_pixels(video[:, :1].to(dev))[:, 0]  # (B, 3, H, W) reference frame
    ref = x + cond_aug.view(B, 1, 1, 1) * torch.randn(x.shape, generator=gen).to(dev)
    image_latents = frozen.encode_reference(ref)[:, None].expand(B, L, *z0.shape[2:])
    keep = (torch.rand(B, generator=gen) >= cfg.cond_dropout).float().to(dev)
    image_latents = image_latents * keep.view(B, 1, 1, 1, 1)
    emb = emb * keep.view(B, 1, 1)
    if cfg.motion_bucket == "flow":
        bucket = torch.tensor([motion_bucket_from_flow(f, cfg.motion_bucket_scale) for f in batch["flow"]])
    else:
        bucket = torch.full((B,), float(cfg.motion_bucket_id))
    ids = torch.stack([torch.full((B,), float(cfg.fps - 1)), bucket, cond_aug.cpu()], dim=1).to(dev)
    out = dict(z=z, z0=z0, sigma=sigma, image_latents=image_latents, image_embeddings=emb, added_time_ids=ids)
    if stage == "controller":
        conds = [motion_condition(cfg, batch["flow"][b], batch["visibility"][b], gen) for b in range(B)]
        out["condition"] = torch.stack(conds).to(dev) * keep.view(B, 1, 1, 1, 1)
    return out


def motion_condition(cfg: TrainConfig, flow: torch.Tensor, visibility: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
    """The controller input (L, 3, H, W) of one training clip for ``cfg.variant`` (Sec. 3.2-3.3).

    ``remoco`` / ``concat`` / ``sum``: ``T_s`` (Eq. 5-7, ``r_m ~ U[r_min, r_max]``, the paper's r_max = 1)
    and ``M_mot`` via :func:`remoco.conditions.training_conditions`; ``traj_only``: ``T_s`` and a zero mask channel;
    ``gaussian``: the Gaussian-filtered flow at the centres of the same kind of sampled regions
    (:func:`remoco.gaussian.gaussian_trajectory_from_flow`) and a zero mask channel (DragNUWA-style, the
    trajectory is the sole signal). Displacements are divided by ``cfg.displacement_scale``."""
    from . import conditions as C
    from .gaussian import gaussian_trajectory_from_flow

    if cfg.variant == "gaussian":
        L, H, W = visibility.shape
        sel = C.sample_region_selection(H, W, cfg.k, cfg.r_min, generator=generator, r_max=cfg.r_max)
        traj = gaussian_trajectory_from_flow(flow, visibility, sel, cfg.k)
        mask = torch.zeros(L, H, W, 1)
    else:
        traj, mask = C.training_conditions(flow, visibility, k=cfg.k, r_min=cfg.r_min, generator=generator,
                                           variant=cfg.condition_variant, threshold=cfg.motion_threshold,
                                           r_max=cfg.r_max)
        if cfg.variant == "traj_only":
            mask = torch.zeros(mask.shape)
    return C.to_model_input(traj, mask, scale=cfg.displacement_scale)
