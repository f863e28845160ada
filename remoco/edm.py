"""The EDM training objective of Stable Video Diffusion (Section 3.1, Eq. 1-3).

SVD (Blattmann et al. 2023) trains its 3D-UNet ``F_theta`` in the EDM framework of Karras et al. 2022
("Elucidating the Design Space of Diffusion-Based Generative Models", Table 1) with v-prediction and
``sigma_data = 1``:

* Eq. 1, forward noising: ``z = z0 + n``, ``n ~ N(0, sigma^2 I)``, ``sigma ~ p(sigma)`` with
  ``log sigma ~ N(P_mean, P_std^2)`` (EDM's log-normal noise distribution).
* Eq. 2, preconditioned denoiser: ``z0_hat = c_skip(sigma) z + c_out(sigma) F(c_in(sigma) z; c_noise(sigma))`` with
  ``c_skip = 1 / (sigma^2 + 1)``, ``c_out = -sigma / sqrt(sigma^2 + 1)`` (the minus sign is SVD's
  v-prediction convention; EDM's own F has ``+sigma``), ``c_in = 1 / sqrt(sigma^2 + 1)``,
  ``c_noise = 0.25 ln sigma``. diffusers reproduces exactly these in ``EulerDiscreteScheduler`` with
  ``prediction_type="v_prediction"``, ``timestep_type="continuous"`` (SVD's scheduler config):
  ``scale_model_input`` divides by ``sqrt(sigma^2 + 1)``, the timestep is ``0.25 * log(sigma)`` and
  ``step`` forms ``model_output * (-sigma / sqrt(sigma^2 + 1)) + sample / (sigma^2 + 1)``.
* Eq. 3, loss: ``L = E[lambda_sigma ||z0_hat - z0||^2]`` with EDM's weighting
  ``lambda_sigma = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 = (sigma^2 + 1) / sigma^2``.

Constants: EDM's image defaults ``P_mean = -1.2, P_std = 1.2`` (Karras et al. 2022, Table 1); SVD's
video fine-tuning and the authors' release (MotionPro) use ``P_mean = 0.7, P_std = 1.6`` (the defaults here,
shifted to higher noise because video latents at high resolution need more noise to be destroyed).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "SIGMA_DATA",
    "P_MEAN",
    "P_STD",
    "EDM_P_MEAN",
    "EDM_P_STD",
    "c_skip",
    "c_out",
    "c_in",
    "c_noise",
    "sample_log_sigma",
    "sample_sigma",
    "share_below",
    "add_noise",
    "loss_weight",
    "precondition",
    "predict_x0",
    "log_normal_pdf",
    "denoise",
    "denoising_loss",
]

#: sigma_data of SVD's latents (SVD's ``VScalingWithEDMcNoise`` / EDM with unit-variance data)
SIGMA_DATA = 1.0
#: log-normal p(sigma) used for SVD fine-tuning and in the MotionPro release
P_MEAN = 0.7
P_STD = 1.6
#: EDM's original values (Karras et al. 2022, Table 1)
EDM_P_MEAN = -1.2
EDM_P_STD = 1.2


def _as_tensor(sigma, like: torch.Tensor | None = None) -> torch.Tensor:
    if torch.is_tensor(sigma):
        t = sigma
    else:
        t = torch.as_tensor(sigma, dtype=torch.float64 if isinstance(sigma, float) else None)
    if not torch.is_floating_point(t):
        t = t.float()
    if like is not None:
        t = t.to(device=like.device, dtype=like.dtype)
    return t


def _check_positive(sigma: torch.Tensor, name: str = "sigma") -> None:
    if sigma.device.type != "meta" and bool((sigma <= 0).any()):
        raise ValueError(f"{name} must be > 0, got min {float(sigma.min())}")


def c_skip(sigma, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """Skip scaling of Eq. 2: ``sigma_data^2 / (sigma^2 + sigma_data^2)`` (= 1 / (sigma^2 + 1) in SVD)."""
    s = _as_tensor(sigma)
    return sigma_data**2 / (s**2 + sigma_data**2)


def c_out(sigma, sigma_data: float = SIGMA_DATA, v_prediction: bool = True) -> torch.Tensor:
    """Output scaling of Eq. 2: ``-sigma sigma_data / sqrt(sigma^2 + sigma_data^2)`` for SVD's v-prediction
    (``+`` for EDM's original parameterisation, ``v_prediction=False``)."""
    s = _as_tensor(sigma)
    out = s * sigma_data / torch.sqrt(s**2 + sigma_data**2)
    return -out if v_prediction else out


def c_in(sigma, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """Input scaling of Eq. 2: ``1 / sqrt(sigma^2 + sigma_data^2)`` (unit-variance network input)."""
    s = _as_tensor(sigma)
    return 1.0 / torch.sqrt(s**2 + sigma_data**2)


def c_noise(sigma) -> torch.Tensor:
    """Noise conditioning of Eq. 2: ``0.25 ln sigma`` — the UNet's ``timestep`` input in SVD."""
    s = _as_tensor(sigma)
    _check_positive(s)
    return 0.25 * torch.log(s)


def sample_log_sigma(batch_size: int, p_mean: float = P_MEAN, p_std: float = P_STD,
                     generator: torch.Generator | None = None, device=None,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``log sigma ~ N(p_mean, p_std^2)`` — EDM's log-normal p(sigma) of Eq. 1, shape (batch_size,)."""
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not p_std > 0:
        raise ValueError(f"p_std must be > 0, got {p_std}")
    eps = torch.randn(int(batch_size), generator=generator, device=device, dtype=dtype)
    return p_mean + p_std * eps


def sample_sigma(batch_size: int, p_mean: float = P_MEAN, p_std: float = P_STD,
                 generator: torch.Generator | None = None, device=None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Noise levels ``sigma = exp(log sigma)`` drawn from the log-normal p(sigma) of Eq. 1, shape (batch_size,)."""
    return torch.exp(sample_log_sigma(batch_size, p_mean, p_std, generator, device, dtype))


def share_below(sigma: float, p_mean: float = P_MEAN, p_std: float = P_STD) -> float:
    """The share of training noise levels below ``sigma`` under the log-normal p(sigma) of Eq. 1:
    ``Phi((ln sigma - p_mean) / p_std)``, Phi the standard normal CDF."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if not p_std > 0:
        raise ValueError(f"p_std must be > 0, got {p_std}")
    return 0.5 * (1.0 + math.erf((math.log(sigma) - p_mean) / (p_std * math.sqrt(2.0))))


def log_normal_pdf(sigma, p_mean: float = P_MEAN, p_std: float = P_STD) -> torch.Tensor:
    """Density of p(sigma) in sigma: ``N(ln sigma; p_mean, p_std^2) / sigma`` (for plots)."""
    s = _as_tensor(sigma)
    _check_positive(s)
    return torch.exp(-((torch.log(s) - p_mean) ** 2) / (2 * p_std**2)) / (s * p_std * math.sqrt(2 * math.pi))


def _broadcast(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-sample sigma of shape () or (B,) -> shape (B, 1, 1, ...) matching ``like``."""
    sigma = _as_tensor(sigma, like)
    if sigma.ndim == 0:
        return sigma
    if sigma.ndim != 1 or sigma.shape[0] != like.shape[0]:
        raise ValueError(
            f"sigma must be a scalar or have shape (batch,)=({like.shape[0]},), got {tuple(sigma.shape)}"
        )
    return sigma.view(-1, *([1] * (like.ndim - 1)))


def add_noise(z0: torch.Tensor, sigma, noise: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward diffusion of Eq. 1: ``z = z0 + n`` with ``n = sigma * eps``, ``eps ~ N(0, I)``.

    ``z0``: clean latents (B, L, C, h, w) (any shape with batch first); ``sigma``: scalar or (B,);
    ``noise``: optional standard-normal ``eps`` of z0's shape. Returns ``(z, n)``; z0 is not modified."""
    if noise is None:
        noise = torch.randn(z0.shape, generator=generator, device=z0.device, dtype=z0.dtype)
    elif noise.shape != z0.shape:
        raise ValueError(f"noise must have z0's shape {tuple(z0.shape)}, got {tuple(noise.shape)}")
    s = _broadcast(sigma, z0)
    _check_positive(s)
    n = s * noise
    return z0 + n, n


def loss_weight(sigma, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """EDM weighting lambda_sigma of Eq. 3: ``(sigma^2 + sigma_data^2) / (sigma sigma_data)^2``
    (= 1 / c_out^2, so every sigma contributes a unit-scale loss at initialisation)."""
    s = _as_tensor(sigma)
    _check_positive(s)
    return (s**2 + sigma_data**2) / (s * sigma_data) ** 2


def precondition(z: torch.Tensor, sigma) -> tuple[torch.Tensor, torch.Tensor]:
    """The UNet inputs of Eq. 2: ``(c_in(sigma) z, c_noise(sigma))`` — the scaled noised latents and the
    UNet timestep, one per sample (shape (B,))."""
    t = _as_tensor(sigma, z)
    t = t.expand(z.shape[0]) if t.ndim == 0 else t
    return c_in(_broadcast(sigma, z)) * z, c_noise(t)


def predict_x0(unet, z: torch.Tensor, sigma, image_latents: torch.Tensor, image_embeddings: torch.Tensor,
               added_time_ids: torch.Tensor) -> torch.Tensor:
    """Eq. 2 with SVD's 3D-UNet: ``z0_hat = c_skip z + c_out F(c_in z ++ c_I latent, c_I CLIP; c_noise)``.

    ``z``: noised latents (B, L, 4, h, w); ``image_latents``: reference-frame latents (B, L, 4, h, w)
    (pathway a: channel concatenation, not scaled by c_in, as in SVD); ``image_embeddings``: CLIP embeddings
    (B, 1, D) (pathway b: cross-attention); ``added_time_ids``: (B, 3) = (fps-1, motion bucket, noise aug)."""
    if image_latents.shape != z.shape:
        raise ValueError(f"image_latents must have z's shape {tuple(z.shape)}, got {tuple(image_latents.shape)}")
    z_in, t = precondition(z, sigma)
    unet_in = torch.cat([z_in, image_latents.to(z_in.dtype)], dim=2)
    out = unet(unet_in, t, encoder_hidden_states=image_embeddings, added_time_ids=added_time_ids,
               return_dict=False)[0]
    return denoise(out, z, sigma)


def denoise(model_output: torch.Tensor, z: torch.Tensor, sigma) -> torch.Tensor:
    """Eq. 2: ``z0_hat = c_skip(sigma) z + c_out(sigma) F``, where ``model_output`` is ``F(c_in z; c_noise)``."""
    if model_output.shape != z.shape:
        raise ValueError(f"model_output must have z's shape {tuple(z.shape)}, got {tuple(model_output.shape)}")
    s = _broadcast(sigma, z)
    return c_skip(s) * z + c_out(s) * model_output


def denoising_loss(z0_hat: torch.Tensor, z0: torch.Tensor, sigma, reduction: str = "mean") -> torch.Tensor:
    """Eq. 3: ``lambda_sigma ||z0_hat - z0||^2``, squared error averaged over all non-batch elements
    (as SVD/sgm does), weighted per sample; ``reduction`` "mean" (scalar) or "none" (per sample, (B,))."""
    if z0_hat.shape != z0.shape:
        raise ValueError(f"z0_hat must have z0's shape {tuple(z0.shape)}, got {tuple(z0_hat.shape)}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    se = ((z0_hat.float() - z0.float()) ** 2).reshape(z0.shape[0], -1).mean(dim=1)
    w = _as_tensor(sigma, se)
    w = loss_weight(w.expand(se.shape[0]) if w.ndim == 0 else w)
    if w.shape != se.shape:
        raise ValueError(f"sigma must be a scalar or have shape ({z0.shape[0]},), got {tuple(w.shape)}")
    per_sample = w * se
    return per_sample.mean() if reduction == "mean" else per_sample
