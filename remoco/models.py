"""The Stable Video Diffusion backbone (Section 3.1 of the paper), built from diffusers' real classes.

Two presets share one code path:

* **toy** — a randomly initialised, CPU-trainable SVD: the same classes as SVD
  (:class:`~diffusers.UNetSpatioTemporalConditionModel`, :class:`~diffusers.AutoencoderKLTemporalDecoder`,
  :class:`~transformers.CLIPVisionModelWithProjection` + :class:`~transformers.CLIPImageProcessor`,
  :class:`~diffusers.EulerDiscreteScheduler` configured exactly as SVD's) at 8 frames, 64x64 pixels,
  16x16 latents (the toy VAE downsamples by 4 instead of 8).
* **svd** — ``from_pretrained`` of a local folder or hub id
  (``stabilityai/stable-video-diffusion-img2vid``) for users who have the weights.

The reference frame enters the 3D-UNet along the two pathways of Section 3.1: (a) its VAE latent is
concatenated channel-wise with the noised video latents (hence ``in_channels = 2 x latent channels``) and
(b) its CLIP image embedding is the key/value of every cross-attention (``cross_attention_dim`` = CLIP
``projection_dim``).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import torch

__all__ = [
    "TOY_NUM_FRAMES",
    "TOY_HEIGHT",
    "TOY_WIDTH",
    "toy_unet_config",
    "svd_unet_config",
    "toy_vae_config",
    "toy_clip_vision_config",
    "svd_scheduler_config",
    "build_toy_components",
    "init_temporal_decoder_identity",
    "build_toy_pipeline",
    "load_svd_pipeline",
    "build_unet",
    "count_parameters",
    "unet_scale_shapes",
    "reference_pathway_shapes",
    "encode_reference_image",
    "vae_scale_factor",
    "quiet_transformers",
]

TOY_NUM_FRAMES = 8
TOY_HEIGHT = 64
TOY_WIDTH = 64

SVD_HUB_ID = "stabilityai/stable-video-diffusion-img2vid"


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' one-time "CLIPImageProcessor requires torchvision" notice (torchvision is not a
    dependency; the PIL image processor it falls back to gives the same CLIP preprocessing)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


# --------------------------------------------------------------------------------------------- configs
def toy_unet_config(latent_channels: int = 4, block_out_channels=(64, 64, 64), attention: str = "middle") -> dict:
    """Config of the toy 3D-UNet: 3 levels of 64 channels, attention only at the middle level (the toy preset;
    ``block_out_channels`` and ``attention="all"``, attention at every level, are the ``unet_channels`` and
    ``unet_attention`` of :class:`~remoco.config.TrainConfig`, a capacity lever chapter 5 measures).

    Constraints kept from SVD: every channel count is a multiple of 32 (GroupNorm with 32 groups),
    ``in_channels`` = 2 x ``latent_channels`` (noised latents ++ reference-frame latent, pathway a; SVD: 2 x 4),
    ``out_channels`` = ``latent_channels`` (the toy VAE's, :func:`toy_vae_config`),
    ``projection_class_embeddings_input_dim`` = 3 x ``addition_time_embed_dim`` (fps, motion bucket,
    noise augmentation), ``cross_attention_dim`` = CLIP ``projection_dim`` (pathway b).

    Why 64 and not 32 channels at the first level: the UNet's output passes through
    ``conv_norm_out = GroupNorm(32, block_out_channels[0])``. With 32 channels that is one channel per
    group, i.e. an instance norm, which removes every channel's spatial mean before ``conv_out``, so the
    network can hardly output a frame's mean colour at high noise. With 64 channels (two per group) it
    can; measured here with the same VAE and 1000 steps, the training loss after 1000 steps was 0.27
    with (64, 64, 64) against 0.40 with (32, 64, 64), for 0.35 s against 0.29 s per step.
    """
    from .config import UNET_ATTENTIONS, level_channels

    if level_channels(block_out_channels) is None:
        raise ValueError(f"block_out_channels must be 3 multiples of 32, got {block_out_channels!r}")
    block_out_channels = level_channels(block_out_channels)
    if attention not in UNET_ATTENTIONS:
        raise ValueError(f"attention must be 'middle' or 'all', got {attention!r}")
    every = attention == "all"
    return dict(
        sample_size=TOY_HEIGHT // 4,
        in_channels=2 * int(latent_channels),
        out_channels=int(latent_channels),
        down_block_types=(
            "CrossAttnDownBlockSpatioTemporal" if every else "DownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal" if every else "DownBlockSpatioTemporal",
        ),
        up_block_types=(
            "CrossAttnUpBlockSpatioTemporal" if every else "UpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal" if every else "UpBlockSpatioTemporal",
        ),
        block_out_channels=block_out_channels,
        addition_time_embed_dim=32,
        projection_class_embeddings_input_dim=3 * 32,
        layers_per_block=1,
        cross_attention_dim=32,
        transformer_layers_per_block=1,
        num_attention_heads=(2, 2, 2),
        num_frames=TOY_NUM_FRAMES,
    )


def svd_unet_config(num_frames: int = 14) -> dict:
    """Config of the real SVD img2vid 3D-UNet (``unet/config.json`` of
    ``stabilityai/stable-video-diffusion-img2vid``, which is also diffusers'
    ``UNetSpatioTemporalConditionModel`` default): block_out_channels (320, 640, 1280, 1280),
    cross_attention_dim 1024 (OpenCLIP ViT-H/14 projection), in_channels 8 (4 noised + 4 reference
    latents), out_channels 4, num_attention_heads (5, 10, 20, 20), addition_time_embed_dim 256,
    projection_class_embeddings_input_dim 768 = 3 x 256, layers_per_block 2, sample_size 96,
    num_frames 14 (25 for img2vid-xt).
    """
    return dict(
        sample_size=96,
        in_channels=8,
        out_channels=4,
        down_block_types=(
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "DownBlockSpatioTemporal",
        ),
        up_block_types=(
            "UpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
        ),
        block_out_channels=(320, 640, 1280, 1280),
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=768,
        layers_per_block=2,
        cross_attention_dim=1024,
        transformer_layers_per_block=1,
        num_attention_heads=(5, 10, 20, 20),
        num_frames=num_frames,
    )


def toy_vae_config(block_out_channels=(32, 32, 32), layers_per_block: int = 1, latent_channels: int = 4,
                   norm_channels_per_group: int | None = None, kind: str = "temporal") -> dict:
    """Toy :class:`AutoencoderKLTemporalDecoder`: 3 levels -> spatial factor 2**2 = 4 (64 px -> 16 latents).

    The widths, layers per block and latent channels are the toy preset's ``vae_channels``,
    ``vae_layers_per_block`` and ``vae_latent_channels`` (chapter 1 shows the sweep that chose them; the
    defaults are the first toy VAE's). ``scaling_factor`` 0.18215 is SVD's VAE value (``vae/config.json``);
    training replaces it by the measured ``1 / std`` of the latents. ``norm_channels_per_group`` (set: the VAE is a
    :class:`remoco.toy_vae.ToyAutoencoderKLTemporalDecoder`) sizes its GroupNorm groups; ``None`` keeps diffusers'
    32 groups (one channel per group at 32 channels). The toy UNet's channels follow ``latent_channels``
    (:func:`toy_unet_config`).

    ``kind="plain"`` configures a :class:`remoco.toy_vae.ToyAutoencoder` instead (the same widths, layers per
    block and latent channels; it has no normalisation, so ``norm_channels_per_group`` must stay ``None``)."""
    block_out_channels = tuple(int(c) for c in block_out_channels)
    if len(block_out_channels) != 3:
        raise ValueError(f"block_out_channels must have 3 levels (spatial factor 4), got {block_out_channels!r}")
    if kind not in ("temporal", "plain"):
        raise ValueError(f"kind must be 'temporal' or 'plain', got {kind!r}")
    if kind == "plain":
        if norm_channels_per_group is not None:
            raise ValueError("norm_channels_per_group must be None for kind='plain' (it has no normalisation), "
                             f"got {norm_channels_per_group!r}")
        return dict(in_channels=3, out_channels=3, block_out_channels=block_out_channels,
                    layers_per_block=int(layers_per_block), latent_channels=int(latent_channels),
                    sample_size=TOY_HEIGHT, scaling_factor=0.18215, force_upcast=True)
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        block_out_channels=block_out_channels,
        layers_per_block=int(layers_per_block),
        latent_channels=int(latent_channels),
        sample_size=TOY_HEIGHT,
        scaling_factor=0.18215,
        force_upcast=True,
        **({} if norm_channels_per_group is None else {"norm_channels_per_group": int(norm_channels_per_group)}),
    )


def toy_clip_vision_config() -> dict:
    """Tiny CLIP vision tower. It keeps SVD's 224-px input (the SVD pipeline resizes the reference image to
    224x224 before CLIP) but uses 32-px patches (7x7 tokens), width 32, 2 layers, projection_dim 32."""
    return dict(
        hidden_size=32,
        intermediate_size=64,
        projection_dim=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=224,
        patch_size=32,
        hidden_act="gelu",
    )


def svd_scheduler_config() -> dict:
    """SVD's sampler: ``scheduler/scheduler_config.json`` of stable-video-diffusion-img2vid.

    EDM-style Euler sampler (Karras et al. 2022) with v-prediction, continuous timesteps
    ``c_noise = 0.25 ln(sigma)``, Karras sigmas between sigma_min 0.002 and sigma_max 700."""
    return dict(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )


# --------------------------------------------------------------------------------------------- builders
def build_unet(config: dict | None = None, device: str | torch.device | None = None):
    """Instantiate a :class:`UNetSpatioTemporalConditionModel` from a config dict (default: toy).

    ``device="meta"`` builds it without allocating memory (used for the paper-scale UNet)."""
    from diffusers import UNetSpatioTemporalConditionModel

    config = toy_unet_config() if config is None else config
    if device is not None and str(device) == "meta":
        with torch.device("meta"):
            unet = UNetSpatioTemporalConditionModel(**config)
        # AlphaBlender builds its mix factor with the legacy torch.Tensor([...]) constructor, which ignores
        # the device context: move those few CPU scalars to meta as well.
        return unet.to("meta")
    unet = UNetSpatioTemporalConditionModel(**config)
    return unet.to(device) if device is not None else unet


def build_toy_components(seed: int = 0, vae_config: dict | None = None, unet_config: dict | None = None) -> dict:
    """The five SVD components of the toy preset, randomly initialised from ``seed`` (deterministic).
    ``vae_config``: the VAE's :func:`toy_vae_config` (default: its defaults); ``unet_config``: the UNet's
    :func:`toy_unet_config` (default: the toy preset's, with the VAE's latent channels)."""
    with quiet_transformers():
        from diffusers import (
            EulerDiscreteScheduler,
            StableVideoDiffusionPipeline,  # noqa: F401  (imports CLIPImageProcessor)
        )
        from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

        from .toy_vae import toy_vae_class

    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        vae_config = vae_config or toy_vae_config()
        unet = build_unet(unet_config or toy_unet_config(vae_config["latent_channels"]))
        torch.manual_seed(seed + 1)
        vae = toy_vae_class(vae_config)(**vae_config)
        torch.manual_seed(seed + 2)
        image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**toy_clip_vision_config()))
    finally:
        torch.random.set_rng_state(gen_state)
    if hasattr(vae.decoder, "time_conv_out"):
        init_temporal_decoder_identity(vae)
    scheduler = EulerDiscreteScheduler(**svd_scheduler_config())
    # SVD's feature_extractor: OpenAI CLIP mean/std, 224 px.
    feature_extractor = CLIPImageProcessor(
        crop_size={"height": 224, "width": 224},
        size={"shortest_edge": 224},
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
    )
    for m in (unet, vae, image_encoder):
        m.eval()
    return dict(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=scheduler,
        feature_extractor=feature_extractor,
    )


def init_temporal_decoder_identity(vae) -> None:
    """Make the last layer of an :class:`AutoencoderKLTemporalDecoder`'s decoder (``time_conv_out``, a 3x1x1
    convolution over frames) the identity, in place, so a freshly initialised temporal decoder starts as a
    per-frame decoder. SVD's decoder got there by fine-tuning an image decoder; a random temporal conv
    instead mixes neighbouring frames (and darkens the first and last frames, whose neighbours are
    zero padding). Measured on this machine: +1.2 dB PSNR of the toy VAE after 150 s of training."""
    conv = vae.decoder.time_conv_out
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        centre = conv.kernel_size[0] // 2
        for c in range(min(conv.in_channels, conv.out_channels)):
            conv.weight[c, c, centre, 0, 0] = 1.0


def build_toy_pipeline(seed: int = 0):
    """The toy preset assembled into diffusers' :class:`StableVideoDiffusionPipeline` (random init).

    8 frames, 64x64 pixels, 16x16x4 latents. Call it like SVD, e.g.
    ``pipe(image, height=64, width=64, num_frames=8, num_inference_steps=25, generator=g)``."""
    with quiet_transformers():
        from diffusers import StableVideoDiffusionPipeline

    pipe = StableVideoDiffusionPipeline(**build_toy_components(seed))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_svd_pipeline(path_or_hub_id: str | os.PathLike = SVD_HUB_ID, *, local_files_only: bool = True,
                      pipeline_class=None, **kwargs):
    """Load SVD (or any saved pipeline of the same layout) with ``from_pretrained``.

    ``path_or_hub_id``: a local folder (``save_pretrained`` output or a downloaded
    ``stable-video-diffusion-img2vid``) or a hub id. With ``local_files_only=True`` (default) the network
    is never reached: a hub id must already be in the local cache. Raises :class:`FileNotFoundError`
    naming ``path_or_hub_id`` when nothing can be found. ``kwargs`` go to ``from_pretrained``
    (e.g. ``torch_dtype=torch.float16, variant="fp16"``)."""
    with quiet_transformers():
        from diffusers import StableVideoDiffusionPipeline

    cls = StableVideoDiffusionPipeline if pipeline_class is None else pipeline_class
    p = str(path_or_hub_id)
    is_hub_id = re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", p) is not None
    if os.path.isdir(p):
        if not (Path(p) / "model_index.json").is_file():
            raise FileNotFoundError(
                f"path_or_hub_id={p!r} is a folder but has no model_index.json: expected a diffusers pipeline "
                "folder (save_pretrained output or a download of stabilityai/stable-video-diffusion-img2vid)."
            )
    elif not is_hub_id or os.path.exists(p):
        raise FileNotFoundError(
            f"path_or_hub_id={p!r}: no such pipeline folder. Download the SVD weights (e.g. "
            f"`huggingface-cli download {SVD_HUB_ID} --local-dir {p}`) or pass an existing folder."
        )
    from . import toy_vae  # noqa: F401 - a toy pipeline folder names this module's VAE class; diffusers only
    #                                    loads classes from modules already imported
    try:
        pipe = cls.from_pretrained(p, local_files_only=local_files_only, **kwargs)
    except (OSError, EnvironmentError, ValueError) as err:  # hub id not in cache / not reachable
        raise FileNotFoundError(
            f"path_or_hub_id={p!r} could not be loaded (local_files_only={local_files_only}): {err}. "
            "Pass a local folder with the weights, or download them first."
        ) from err
    return pipe


# --------------------------------------------------------------------------------------------- helpers
def vae_scale_factor(vae) -> int:
    """Spatial down-sampling factor of a (KL) VAE: 2 ** (levels - 1) (8 for SVD, 4 for the toy)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def count_parameters(module: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def unet_scale_shapes(unet, batch_size: int = 1, num_frames: int | None = None, height: int = 64,
                      width: int = 64, latent_factor: int = 4) -> dict:
    """Shapes of the feature map at every UNet scale (output of conv_in, each down block, the mid block
    and each up block) for a clip of ``num_frames`` x ``height`` x ``width`` pixels.

    Runs a real forward pass; on a meta-device UNet it costs no memory (meta tensors carry only shapes).
    Returns ``{name: (B*F, C, h, w)}`` plus ``"input"`` and ``"encoder_hidden_states"``."""
    cfg = unet.config
    num_frames = cfg.num_frames if num_frames is None else num_frames
    if height % latent_factor or width % latent_factor:
        raise ValueError(f"height/width must be multiples of latent_factor={latent_factor}, got {height}x{width}")
    device = next(unet.parameters()).device
    dtype = next(unet.parameters()).dtype
    h, w = height // latent_factor, width // latent_factor
    sample = torch.zeros(batch_size, num_frames, cfg.in_channels, h, w, device=device, dtype=dtype)
    ehs = torch.zeros(batch_size, 1, cfg.cross_attention_dim if isinstance(cfg.cross_attention_dim, int)
                      else cfg.cross_attention_dim[0], device=device, dtype=dtype)
    ids = torch.zeros(batch_size, 3, device=device, dtype=dtype)
    shapes: dict = {"input": tuple(sample.shape), "encoder_hidden_states": tuple(ehs.shape)}
    handles = []

    def grab(name):
        def hook(_m, _a, out):
            t = out[0] if isinstance(out, tuple) else out
            shapes[name] = tuple(t.shape)
        return hook

    handles.append(unet.conv_in.register_forward_hook(grab("conv_in")))
    for i, b in enumerate(unet.down_blocks):
        handles.append(b.register_forward_hook(grab(f"down_blocks.{i}")))
    handles.append(unet.mid_block.register_forward_hook(grab("mid_block")))
    for i, b in enumerate(unet.up_blocks):
        handles.append(b.register_forward_hook(grab(f"up_blocks.{i}")))
    try:
        # on the meta device, tensors the UNet creates internally must be meta too
        ctx = torch.device("meta") if device.type == "meta" else contextlib.nullcontext()
        with torch.no_grad(), ctx:
            out = unet(sample, torch.zeros((), device=device), ehs, ids, return_dict=False)[0]
        shapes["output"] = tuple(out.shape)
    finally:
        for hd in handles:
            hd.remove()
    return shapes


def reference_pathway_shapes(pipe, image, num_frames: int, height: int, width: int, seed: int = 0) -> dict:
    """How the reference frame enters SVD's 3D-UNet (Sec. 3.1), as shapes recorded by forward hooks during one
    real denoising step of ``pipe`` on the PIL ``image``: the VAE encoder's output (pathway a: the reference
    latent is concatenated to the noised latents, so ``conv_in`` sees twice the latent channels), the CLIP image
    embedding and the cross-attention keys it becomes (pathway b), and the UNet's input. The hooks only read
    (each returns None) and are removed afterwards. Returns ``{description: shape}`` in recording order; shapes
    inside the UNet are ``(batch x frames, ...)`` with the batch doubled by classifier-free guidance."""
    if not hasattr(image, "size") or torch.is_tensor(image):
        raise ValueError(f"image must be a PIL image, got {type(image).__name__}")
    seen: dict = {}

    def record(name, get):
        def hook(module, args, *rest):
            if name not in seen:
                seen[name] = get(args, *rest)
        return hook

    def unet_input(args, kwargs):
        return tuple((args[0] if args else kwargs["sample"]).shape)

    unet = pipe.unet
    attn2 = next(m for n, m in unet.named_modules() if n.endswith("transformer_blocks.0.attn2"))
    hooks = [
        pipe.vae.encoder.register_forward_hook(
            record("VAE encoder output (mean, logvar)", lambda a, o: tuple(o.shape))),
        pipe.image_encoder.register_forward_hook(
            record("CLIP image_embeds", lambda a, o: tuple(o.image_embeds.shape))),
        unet.register_forward_pre_hook(record("UNet sample input (B, L, C, h, w)", unet_input), with_kwargs=True),
        unet.conv_in.register_forward_hook(
            record("UNet conv_in: in -> out", lambda a, o: (tuple(a[0].shape), tuple(o.shape)))),
        attn2.to_k.register_forward_hook(
            record("cross-attention keys from CLIP (B*L, tokens, dim)", lambda a, o: tuple(a[0].shape))),
    ]
    try:
        pipe(image, height=height, width=width, num_frames=num_frames, num_inference_steps=1,
             generator=torch.Generator().manual_seed(seed), output_type="pt")
    finally:
        for h in hooks:
            h.remove()
    return seen


def encode_reference_image(pipe, image: torch.Tensor) -> torch.Tensor:
    """CLIP image embedding of reference frames (pathway b), as SVD's pipeline computes it for PIL input.

    ``image``: (B, 3, H, W) float in [0, 1]. Resized (anti-aliased) to the CLIP tower's input size, normalised
    with the feature extractor's mean/std. Returns (B, 1, projection_dim)."""
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
        _resize_with_antialiasing,
    )

    if not torch.is_tensor(image) or image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be a (B, 3, H, W) tensor in [0, 1], got {getattr(image, 'shape', type(image))}")
    enc = pipe.image_encoder
    size = enc.config.image_size
    dtype = next(enc.parameters()).dtype
    x = image.float() * 2.0 - 1.0
    if tuple(x.shape[-2:]) != (size, size):
        x = _resize_with_antialiasing(x, (size, size))
    x = (x + 1.0) / 2.0
    mean = torch.tensor(pipe.feature_extractor.image_mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(pipe.feature_extractor.image_std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    x = ((x - mean) / std).to(device=enc.device, dtype=dtype)
    return enc(x).image_embeds.unsqueeze(1)
