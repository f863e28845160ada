"""SVD's temporal-decoder VAE with a settable GroupNorm size, for toy widths.

diffusers' :class:`~diffusers.AutoencoderKLTemporalDecoder` normalises with 32 groups in every layer (not one of its
arguments). At SVD's widths (128-512 channels) a group holds 4-16 channels; at the toy's 32 channels each group is a
single channel, an instance norm that removes every channel's mean and scale per frame, which is what a
reconstruction needs most (colour, brightness). ``benchmarks/vae_norm_probe.py`` measured the cost: the toy VAE
trained 400 steps from the same seed on the same batches reaches 14.8 dB PSNR on held-out clips as diffusers builds
it and 18.5 dB with 4 channels per group.

:class:`ToyAutoencoderKLTemporalDecoder` extends the diffusers class by one config argument,
``norm_channels_per_group``; everything else (weights, ``encode`` / ``decode(num_frames=...)``, ``save_pretrained``)
is diffusers'. Its ``config.json`` names the class, and :func:`load_vae` reads a VAE folder with the class it names
(a diffusers-only loader would build 32 groups and load the weights without complaint, since GroupNorm's
parameters do not depend on the group count). A pipeline folder saved with it lists ``["remoco.toy_vae",
"ToyAutoencoderKLTemporalDecoder"]`` in ``model_index.json``; diffusers loads such a class only from a module already
imported, so :func:`remoco.models.load_svd_pipeline` imports this one first. :func:`decode_frames` decodes latents with
a temporal or a frame-wise VAE alike (``benchmarks/vae_arch_probe.py`` compares the two).

:class:`ToyAutoencoder` is the other toy VAE: a plain convolutional autoencoder (residual blocks of two 3x3
convolutions with SiLU, strided-convolution down, nearest-up + convolution, no normalisation, no attention, no
posterior noise) with :class:`~diffusers.AutoencoderKL`'s interface, so the SVD pipeline, training and scoring read it
unchanged. ``benchmarks/vae_arch_probe.py`` trained it beside diffusers' VAEs on identical batches (8 full 64-px
frames a step, L1 + MSE, one thread): 22.3 dB PSNR on the held-out clips after 250 steps, where diffusers' image
``AutoencoderKL`` of the same widths reached 17.1 dB (19.5 without its GroupNorm layers) and ``AutoencoderTiny``
19.7 dB (``results/vae_plain_probe.json``). At paper scale SVD's own VAE is used; this class is toy scale only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLTemporalDecoder,
    ModelMixin,  # a pipeline loading this module's classes finds its loader here
)
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from torch import nn

__all__ = ["ToyAutoencoderKLTemporalDecoder", "ToyAutoencoder", "toy_vae_class", "decode_frames", "replace_norms",
           "set_norm_groups", "load_vae"]


def replace_norms(module: torch.nn.Module, make) -> int:
    """Replace every :class:`torch.nn.GroupNorm` ``g`` of ``module`` (its attribute ``name`` on its parent) by
    ``make(g, name)``, in place. Returns how many were replaced."""
    n = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.GroupNorm):
                setattr(parent, name, make(child, name))
                n += 1
    return n


def set_norm_groups(module: torch.nn.Module, channels_per_group: int) -> int:
    """Replace every :class:`torch.nn.GroupNorm` of ``module`` by one with ``num_channels // channels_per_group``
    groups (at least 1; same eps and affine, fresh weights), in place. Returns how many were replaced."""
    if isinstance(channels_per_group, bool) or not isinstance(channels_per_group, int) or channels_per_group < 1:
        raise ValueError(f"channels_per_group must be a positive int, got {channels_per_group!r}")

    def regroup(norm: torch.nn.GroupNorm, name: str) -> torch.nn.GroupNorm:
        groups = max(1, norm.num_channels // channels_per_group)
        if norm.num_channels % groups:
            raise ValueError(f"channels_per_group={channels_per_group} does not divide the "
                             f"{norm.num_channels} channels of {name}")
        return torch.nn.GroupNorm(groups, norm.num_channels, norm.eps, norm.affine)

    return replace_norms(module, regroup)


class ToyAutoencoderKLTemporalDecoder(AutoencoderKLTemporalDecoder):
    """:class:`~diffusers.AutoencoderKLTemporalDecoder` whose GroupNorm layers hold ``norm_channels_per_group``
    channels per group (``None``: diffusers' 32 groups)."""

    @register_to_config
    def __init__(self, in_channels: int = 3, out_channels: int = 3,
                 down_block_types: tuple = ("DownEncoderBlock2D",), block_out_channels: tuple = (64,),
                 layers_per_block: int = 1, latent_channels: int = 4, sample_size: int = 32,
                 scaling_factor: float = 0.18215, force_upcast: float = True,
                 norm_channels_per_group: int | None = None):
        super().__init__(in_channels=in_channels, out_channels=out_channels, down_block_types=down_block_types,
                         block_out_channels=block_out_channels, layers_per_block=layers_per_block,
                         latent_channels=latent_channels, sample_size=sample_size, scaling_factor=scaling_factor,
                         force_upcast=force_upcast)
        if norm_channels_per_group is not None:
            set_norm_groups(self, int(norm_channels_per_group))


class _ResidualBlock(nn.Module):
    """``x + conv(silu(conv(silu(x))))``: a residual block without normalisation."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(nn.functional.silu(self.conv1(nn.functional.silu(x))))


class ToyAutoencoder(ModelMixin, ConfigMixin):
    """A plain convolutional autoencoder with :class:`~diffusers.AutoencoderKL`'s interface (toy scale only).

    ``len(block_out_channels)`` levels, spatial factor ``2 ** (levels - 1)`` (4 for the toy's three); each level
    holds ``layers_per_block`` residual blocks (:class:`_ResidualBlock`). ``encode(x).latent_dist`` is a
    deterministic :class:`~diffusers.models.autoencoders.vae.DiagonalGaussianDistribution` (``mode()`` = ``sample()``
    = the encoder's output, ``kl()`` = 0), ``decode(z).sample`` decodes each frame alone (``num_frames`` is accepted
    and unused, as a frame-wise decoder in SVD's pipeline). ``scaling_factor`` is replaced by the measured
    ``1 / std`` of the latents after training, as for the other toy VAEs."""

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(self, in_channels: int = 3, out_channels: int = 3, block_out_channels: tuple = (32, 64, 64),
                 layers_per_block: int = 2, latent_channels: int = 4, sample_size: int = 64,
                 scaling_factor: float = 0.18215, force_upcast: bool = True):
        super().__init__()
        ch = [int(c) for c in block_out_channels]
        enc = [nn.Conv2d(in_channels, ch[0], 3, padding=1)]
        for i, c in enumerate(ch):
            if i:
                enc.append(nn.Conv2d(ch[i - 1], c, 3, stride=2, padding=1))
            enc += [_ResidualBlock(c) for _ in range(layers_per_block)]
        self.encoder = nn.Sequential(*enc, nn.SiLU(), nn.Conv2d(ch[-1], latent_channels, 3, padding=1))
        dec = [nn.Conv2d(latent_channels, ch[-1], 3, padding=1)]
        for i, c in enumerate(reversed(ch)):
            if i:
                dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch[len(ch) - i], c, 3, padding=1)]
            dec += [_ResidualBlock(c) for _ in range(layers_per_block)]
        self.decoder = nn.Sequential(*dec, nn.SiLU(), nn.Conv2d(ch[0], out_channels, 3, padding=1))

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        z = self.encoder(x)
        dist = DiagonalGaussianDistribution(torch.cat([z, torch.zeros_like(z)], dim=1), deterministic=True)
        return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

    def decode(self, z: torch.Tensor, return_dict: bool = True, num_frames: int | None = None):
        x = self.decoder(z)
        return DecoderOutput(sample=x) if return_dict else (x,)

    def forward(self, sample: torch.Tensor, sample_posterior: bool = False, return_dict: bool = True,
                generator: torch.Generator | None = None):
        return self.decode(self.encode(sample).latent_dist.mode(), return_dict=return_dict)


class _PlainVaeTypeNote(logging.Filter):
    """Drops diffusers' "Expected types for vae: (AutoencoderKLTemporalDecoder,), got ToyAutoencoder" warning when a
    toy pipeline folder is loaded: the SVD pipeline annotates its VAE with the temporal-decoder class, and the plain
    toy autoencoder is a deliberate stand-in with the same interface. Every other message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("Expected types for vae:")
                    and msg.rstrip(".").endswith(ToyAutoencoder.__name__ + "'>"))


logging.getLogger("diffusers.pipelines.pipeline_utils").addFilter(_PlainVaeTypeNote())


def toy_vae_class(vae_config: dict):
    """The class a toy VAE config (:func:`remoco.models.toy_vae_config`) builds: :class:`ToyAutoencoder` for a
    plain one (no ``down_block_types``), :class:`ToyAutoencoderKLTemporalDecoder` when it sets
    ``norm_channels_per_group``, else diffusers' :class:`~diffusers.AutoencoderKLTemporalDecoder`."""
    if "down_block_types" not in vae_config:
        return ToyAutoencoder
    return ToyAutoencoderKLTemporalDecoder if "norm_channels_per_group" in vae_config else AutoencoderKLTemporalDecoder


def decode_frames(vae, latents: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``vae.decode`` of ``latents`` (frames stacked on the batch axis) to pixels: a temporal decoder is told the
    clip length ``num_frames``, a frame-wise one (an image :class:`~diffusers.AutoencoderKL`, as in Stability's
    ``svd_image_decoder`` release and ``benchmarks/vae_arch_probe.py``) decodes each frame alone; diffusers' SVD
    pipeline makes the same distinction."""
    if isinstance(vae, AutoencoderKLTemporalDecoder):
        return vae.decode(latents, num_frames=num_frames).sample
    return vae.decode(latents).sample


def load_vae(path):
    """The VAE saved in folder ``path`` (``config.json`` + weights), built by the class its config names
    (:class:`ToyAutoencoder`, :class:`ToyAutoencoderKLTemporalDecoder` or diffusers'
    :class:`~diffusers.AutoencoderKLTemporalDecoder`)."""
    f = Path(path) / "config.json"
    if not f.is_file():
        raise FileNotFoundError(f"path={str(path)!r} has no config.json: not a saved VAE folder")
    name = json.loads(f.read_text()).get("_class_name")
    classes = {c.__name__: c for c in (ToyAutoencoder, ToyAutoencoderKLTemporalDecoder, AutoencoderKLTemporalDecoder)}
    if name not in classes:
        raise ValueError(f"path={str(path)!r}: config.json names class {name!r}, expected one of {sorted(classes)}")
    return classes[name].from_pretrained(path)


def noise_robust_decoder(vae, frames, steps: int, latent_noise: float, lr: float = 3e-4, seed: int = 0,
                         progress: bool = True) -> list[float]:
    """Fine-tune ``vae``'s decoder (its encoder frozen, so the latents a UNet was trained on do not change) to
    decode latents with Gaussian noise added: each step decodes ``z + s * eps / scaling_factor`` with ``s ~
    U[0, latent_noise]`` per frame (``latent_noise`` in units of the scaled latents, whose std is 1) and ``eps ~
    N(0, I)``, against the clean frames, with the L1 + MSE loss of the toy VAE. A plain autoencoder's decoder is
    sharp on the latents it was trained on but answers small latent errors with saturated colour noise; this tests
    whether that is why a generated moving object breaks into colour patches. Measured on the plain-autoencoder
    base (``benchmarks/decoder_noise.py``, ``results/decoder_noise.json``, chapter 5): it tolerates noisy latents
    better, but the generated objects recolour as before, so the patches come from the UNet's latents.

    ``frames``: a callable ``step -> (B, 3, H, W)`` batch in [-1, 1]. Trains in place (AdamW at ``lr``, cosine to
    10 %); returns the loss per step."""
    import math

    from tqdm.auto import tqdm

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if not (isinstance(latent_noise, (int, float)) and latent_noise >= 0):
        raise ValueError(f"latent_noise must be a number >= 0, got {latent_noise!r}")
    sf = float(vae.config.scaling_factor)
    encoder_params = [p for name, p in vae.named_parameters() if not name.startswith("decoder")]
    decoder_params = [p for name, p in vae.named_parameters() if name.startswith("decoder")]
    if not decoder_params:
        raise ValueError("vae has no parameters named decoder.*: not a toy VAE with a decoder")
    for p in encoder_params:
        p.requires_grad_(False)
    opt = torch.optim.AdamW(decoder_params, lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    vae.train()
    for step in tqdm(range(steps), desc="decoder", disable=not progress):
        for group in opt.param_groups:
            group["lr"] = lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        x = frames(step)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()
        s = latent_noise * torch.rand(z.shape[0], 1, 1, 1, generator=gen)
        z = z + s * torch.randn(z.shape, generator=gen) / sf
        rec = decode_frames(vae, z, 1).float()
        loss = torch.nn.functional.mse_loss(rec, x) + torch.nn.functional.l1_loss(rec, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    for p in encoder_params:
        p.requires_grad_(True)
    return losses
