"""ReMoCo inference pipeline (Section 3.4): Stable Video Diffusion + region-wise motion control.

:class:`ReMoCoPipeline` subclasses diffusers' :class:`~diffusers.StableVideoDiffusionPipeline` and registers
a :class:`remoco.controller.ReMoCoController` as a sixth component. A call takes the reference image and either
ready conditions (region-wise trajectory ``T_s`` (L, H, W, 2) and motion mask ``M_mot`` (L, H, W, 1)) or the
user's input (``trajectories`` + ``brush_mask``, turned into ``T_s``/``M_mot`` by
:func:`remoco.user_conditions.conditions_from_user`: the user trajectory is padded into its k x k region, the brush
becomes the motion mask). The condition is set on the controller for the whole denoising loop, which is SVD's
own (same scheduler, same min/max classifier-free guidance ramp over frames); the unconditional half of the
guidance batch gets a zero motion condition (as it gets a zero image embedding and zero image latents in SVD).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from .models import build_toy_components, quiet_transformers, vae_scale_factor

with quiet_transformers():
    from diffusers import StableVideoDiffusionPipeline
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
        StableVideoDiffusionPipelineOutput,
        _resize_with_antialiasing,
    )

from .controller import ReMoCoController, match_device_dtype
from .lora import load_lora, plain_unet_name, save_lora

__all__ = ["ReMoCoPipeline", "StableVideoDiffusionPipelineOutput", "build_toy_remoco_pipeline"]


def _base_state_dict_hook(module, state_dict, prefix, local_metadata):
    """state_dict post-hook: drop peft's LoRA tensors and undo its ``base_layer`` renaming, so a UNet with LoRA
    saves as a plain diffusers UNet (the LoRA is saved separately, next to the controller)."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        plain = plain_unet_name(key)
        value = state_dict.pop(key)
        if plain is not None:
            state_dict[plain] = value


class ReMoCoPipeline(StableVideoDiffusionPipeline):
    r"""Image-to-video generation with region-wise motion control (ReMoCo, Sec. 3.4).

    Components: SVD's ``vae``, ``image_encoder``, ``unet``, ``scheduler``, ``feature_extractor`` plus
    ``controller`` (:class:`~remoco.controller.ReMoCoController`, attached to ``unet`` by forward hooks).
    Build one with :func:`build_toy_remoco_pipeline`, :meth:`from_base` (any SVD pipeline) or
    :meth:`from_pretrained` (a folder written by :meth:`save_pretrained`).
    """

    def __init__(self, vae, image_encoder, unet, scheduler, feature_extractor, controller: ReMoCoController):
        super().__init__(vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler,
                         feature_extractor=feature_extractor)
        self.register_modules(controller=controller)
        if controller is not None and not controller.is_attached:
            controller.attach(unet)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_base(cls, base: StableVideoDiffusionPipeline, controller: ReMoCoController | None = None,
                  **controller_kwargs) -> "ReMoCoPipeline":
        """Wrap an SVD pipeline's components (shared, not copied) with ``controller`` (default: a fresh,
        zero-initialised controller fitted to ``base.unet``; ``controller_kwargs`` go to
        :meth:`ReMoCoController.from_unet`)."""
        if controller is None:
            factor = 2 ** (len(base.vae.config.block_out_channels) - 1)
            controller = ReMoCoController.from_unet(base.unet, vae_scale_factor=factor, **controller_kwargs)
        elif controller_kwargs:
            raise ValueError(f"controller_kwargs {sorted(controller_kwargs)} given together with a controller")
        comps = {k: getattr(base, k) for k in ("vae", "image_encoder", "unet", "scheduler", "feature_extractor")}
        return cls(controller=controller, **comps)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a folder written by :meth:`save_pretrained` (base components + ``controller/`` with the LoRA).

        A plain SVD folder/hub id works too when ``controller=...`` is passed. ``local_files_only`` defaults to
        True (no network)."""
        kwargs.setdefault("local_files_only", True)
        path = Path(str(pretrained_model_name_or_path))
        ctrl_dir = path / "controller"
        if "controller" not in kwargs:
            if not (ctrl_dir / "config.json").is_file():
                raise FileNotFoundError(
                    f"pretrained_model_name_or_path={str(path)!r} has no controller/config.json: pass a folder "
                    "written by ReMoCoPipeline.save_pretrained, or give controller=... explicitly")
            kwargs["controller"] = ReMoCoController.from_pretrained(ctrl_dir)
        pipe = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        load_lora(ctrl_dir, pipe.unet)
        match_device_dtype(pipe.controller, next(pipe.unet.parameters()))
        pipe.controller.eval()
        return pipe

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs):
        """Save like any diffusers pipeline; the UNet is saved without LoRA (plain SVD layout) and the LoRA
        weights go to ``controller/lora.safetensors`` + ``lora_config.json`` (safetensors only)."""
        kwargs.setdefault("safe_serialization", True)
        if not kwargs["safe_serialization"]:
            raise ValueError("safe_serialization must be True: remoco saves safetensors only")
        handle = self.unet.register_state_dict_post_hook(_base_state_dict_hook)
        try:
            super().save_pretrained(save_directory, **kwargs)
        finally:
            handle.remove()
        save_lora(Path(save_directory) / "controller", self.unet)

    # ------------------------------------------------------------------ inputs
    def _encode_image(self, image, device, num_videos_per_prompt, do_classifier_free_guidance):
        # SVD resizes PIL images to the CLIP input size but passes tensors through unresized; resize tensors the
        # same way so that a tensor and the equivalent PIL image give the same embedding.
        if isinstance(image, torch.Tensor):
            size = self.image_encoder.config.image_size
            if tuple(image.shape[-2:]) != (size, size):
                x = image.float() * 2.0 - 1.0
                x = _resize_with_antialiasing(x, (size, size))
                image = (x + 1.0) / 2.0
        return super()._encode_image(image, device, num_videos_per_prompt, do_classifier_free_guidance)

    @staticmethod
    def _prepare_image(image):
        """PIL / np (H, W, 3) uint8|float / tensor (3, H, W), (B, 3, H, W) in [0, 1] or (H, W, 3) uint8 -> what
        SVD accepts: uint8 images become PIL images (SVD's PIL path), float ones a (B, 3, H, W) tensor in [0, 1]."""
        if isinstance(image, PIL.Image.Image):
            return image.convert("RGB")
        if isinstance(image, list):
            if not image or not all(isinstance(i, PIL.Image.Image) for i in image):
                raise ValueError("image as a list must be a non-empty list of PIL images")
            return [i.convert("RGB") for i in image]
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(np.ascontiguousarray(image))
        if not isinstance(image, torch.Tensor):
            raise ValueError(f"image must be a PIL image, numpy array or torch tensor, got {type(image)}")
        x = image
        if x.ndim == 3 and x.shape[-1] in (1, 3) and x.shape[0] not in (1, 3):  # (H, W, C)
            x = x.permute(2, 0, 1)
        if x.ndim == 3:
            x = x.unsqueeze(0)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"image tensor must be (3, H, W), (B, 3, H, W) or (H, W, 3), got {tuple(image.shape)}")
        if x.dtype == torch.uint8:  # 8-bit images take SVD's PIL path (identical preprocessing)
            pils = [PIL.Image.fromarray(f.permute(1, 2, 0).cpu().numpy()) for f in x]
            return pils[0] if len(pils) == 1 else pils
        elif not x.is_floating_point():
            raise ValueError(f"image tensor must be uint8 or float in [0, 1], got {x.dtype}")
        else:
            x = x.float()
            if x.numel() and (x.min() < 0 or x.max() > 1):
                raise ValueError("float image must have values in [0, 1]")
        return x

    def prepare_condition(self, region_trajectory=None, motion_mask=None, trajectories=None, brush_mask=None,
                          k: int = 8, num_frames: int | None = None, height: int | None = None,
                          width: int | None = None, empty_brush: str = "error",
                          trajectory_fill: str = "block") -> torch.Tensor:
        """The controller input ``[T_s, M_mot]`` as (B, L, 3, H, W) from ready conditions or user input.

        Exactly one of (``region_trajectory`` + ``motion_mask``) or (``trajectories`` + ``brush_mask``) must be
        given. ``region_trajectory``: (L, H, W, 2) or (B, L, H, W, 2) pixel displacements; ``motion_mask``:
        (L, H, W, 1) or (B, L, H, W, 1). Their L must equal ``num_frames`` and H x W ``height`` x ``width``.

        User input becomes the kind of input the controller was trained on (its ``condition_type``):
        ``"region"`` — :func:`remoco.user_conditions.conditions_from_user` (each drag moves the k x k block of its
        start pixel; the brush is the motion mask; ``empty_brush`` says what an empty brush means);
        ``"trajectory_only"`` — the same trajectory, mask channel zero; ``"gaussian"`` —
        :func:`remoco.gaussian.gaussian_trajectory` (DragNUWA / MotionCtrl: each drag's displacement on its start
        pixel, Gaussian-filtered; the brush only gives the frame size), mask channel zero; with
        ``trajectory_fill="brush"`` the drag's displacement on every k x k cell centre inside the brush, filtered
        the same way (:func:`remoco.gaussian.gaussian_trajectory_from_flow`: what a Gaussian baseline trained on
        dense regions saw, so it can be driven like ReMoCo's brush fill)."""
        from . import conditions, user_conditions

        ready = region_trajectory is not None or motion_mask is not None
        user = trajectories is not None or brush_mask is not None
        if ready == user:
            raise ValueError("give either region_trajectory and motion_mask, or trajectories and brush_mask "
                             "(exactly one of the two pairs)")
        if ready:
            if region_trajectory is None or motion_mask is None:
                raise ValueError("region_trajectory and motion_mask must be given together")
        else:
            if trajectories is None or brush_mask is None:
                raise ValueError("trajectories and brush_mask must be given together")
            if num_frames is None:
                raise ValueError("num_frames is needed to build conditions from trajectories")
            kind = self.controller.config.condition_type
            if kind == "gaussian":
                from .checks import check_bool_mask
                from .gaussian import cell_centers, gaussian_trajectory, gaussian_trajectory_from_flow

                check_bool_mask(brush_mask, "brush_mask", "(H, W)")  # it gives the frame size
                H, W = brush_mask.shape
                if trajectory_fill == "brush":  # the dense Gaussian baseline's training input, on the brushed region
                    field, _ = user_conditions.conditions_from_user(trajectories, brush_mask, num_frames, k,
                                                                    empty_brush=empty_brush, fill="brush")
                    rows, cols = cell_centers(H, W, k)
                    cells = torch.as_tensor(brush_mask, dtype=torch.bool)[rows][:, cols]
                    region_trajectory = gaussian_trajectory_from_flow(
                        field, torch.ones(num_frames, H, W, dtype=torch.bool), cells, k)
                else:
                    region_trajectory = gaussian_trajectory(trajectories, H, W, num_frames)
                motion_mask = torch.zeros(num_frames, H, W, 1, dtype=torch.bool)
            else:
                region_trajectory, motion_mask = user_conditions.conditions_from_user(
                    trajectories, brush_mask, num_frames, k,
                    empty_brush="trajectory_blocks" if kind == "trajectory_only" else empty_brush,
                    fill=trajectory_fill)
                if kind == "trajectory_only":
                    motion_mask = torch.zeros_like(motion_mask)
        for name, t, c in (("region_trajectory", region_trajectory, 2), ("motion_mask", motion_mask, 1)):
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"{name} must be a torch.Tensor, got {type(t)}")
            if t.ndim not in (4, 5) or t.shape[-1] != c:
                raise ValueError(f"{name} must be (L, H, W, {c}) or (B, L, H, W, {c}), got {tuple(t.shape)}")
        if region_trajectory.ndim != motion_mask.ndim:
            raise ValueError(f"region_trajectory {tuple(region_trajectory.shape)} and motion_mask "
                             f"{tuple(motion_mask.shape)} must both be batched or both unbatched")
        rt = region_trajectory if region_trajectory.ndim == 5 else region_trajectory.unsqueeze(0)
        mm = motion_mask if motion_mask.ndim == 5 else motion_mask.unsqueeze(0)
        if rt.shape[:4] != mm.shape[:4]:
            raise ValueError(f"motion_mask {tuple(motion_mask.shape)} does not match region_trajectory "
                             f"{tuple(region_trajectory.shape)} in (B,) L, H, W")
        L, H, W = rt.shape[1:4]
        if num_frames is not None and L != num_frames:
            raise ValueError(f"num_frames={num_frames} but region_trajectory/motion_mask have {L} frames")
        if height is not None and width is not None and (H, W) != (height, width):
            raise ValueError(f"region_trajectory/motion_mask are {H}x{W} but height x width is {height}x{width}: "
                             "the condition's spatial size must equal the video's")
        scale = self.controller.config.displacement_scale
        cond = torch.stack([conditions.to_model_input(rt[b], mm[b], scale=scale) for b in range(rt.shape[0])])
        return cond

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(
        self,
        image,
        region_trajectory: torch.Tensor | None = None,
        motion_mask: torch.Tensor | None = None,
        trajectories=None,
        brush_mask: torch.Tensor | None = None,
        k: int = 8,
        condition: torch.Tensor | None = None,
        empty_brush: str = "error",
        trajectory_fill: str = "block",
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 25,
        sigmas: list[float] | None = None,
        min_guidance_scale: float = 1.0,
        max_guidance_scale: float = 3.0,
        fps: int = 7,
        motion_bucket_id: int = 127,
        noise_aug_strength: float = 0.02,
        decode_chunk_size: int | None = None,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
        return_dict: bool = True,
    ):
        r"""Generate a video from ``image`` that follows the motion condition.

        Args:
            image: reference frame ``c_I`` — PIL image, numpy (H, W, 3), tensor (3, H, W) / (B, 3, H, W) in [0, 1]
                or (H, W, 3) uint8.
            region_trajectory, motion_mask: ready conditions ``T_s`` (L, H, W, 2) and ``M_mot`` (L, H, W, 1)
                (optionally with a leading batch dim equal to the number of images).
            trajectories, brush_mask, k: user input instead — a list of (P, 2) (x, y) polylines and an (H, W) bool
                brush; converted with :func:`remoco.user_conditions.conditions_from_user` (k x k region padding) or
                as the controller's ``condition_type`` says (:meth:`prepare_condition`).
            condition: instead of both, the controller input ``[T_s, M_mot]`` as :meth:`prepare_condition` returns
                it, (B, L, 3, H, W) with B the number of images (:func:`remoco.sampling.sample_videos` batches videos
                with their own conditions this way).
            empty_brush: ``"error"`` (the paper: an empty brush with a drag is an error) or
                ``"trajectory_blocks"`` (the authors' release: the dragged k x k blocks become the mask).
            trajectory_fill: ``"block"`` (the paper: each drag fills its k x k block) or ``"brush"`` (the drag
                also fills the brushed region nearest its start; :func:`remoco.user_conditions.conditions_from_user`).
            height, width: output size in pixels, multiples of 8 (default: the condition's size, else
                ``unet.config.sample_size * vae_scale_factor``).
            num_frames: L (default: the condition's L, else ``unet.config.num_frames``).
            Other arguments: as :class:`StableVideoDiffusionPipeline` (SVD's defaults: 25 steps, guidance ramp
            1.0 -> 3.0 over frames, fps 7, motion bucket 127, noise augmentation 0.02).

        Returns:
            ``StableVideoDiffusionPipelineOutput`` with ``.frames`` (or a tuple if ``return_dict=False``).
        """
        image = self._prepare_image(image)
        if condition is not None:
            if any(v is not None for v in (region_trajectory, motion_mask, trajectories, brush_mask)):
                raise ValueError("condition is the prepared controller input: give it alone, without "
                                 "region_trajectory/motion_mask or trajectories/brush_mask")
            if not isinstance(condition, torch.Tensor) or condition.ndim != 5 or condition.shape[2] != 3:
                raise ValueError(f"condition must be a (B, L, 3, H, W) tensor (prepare_condition's output), got "
                                 f"{getattr(condition, 'shape', type(condition))}")
            L0, _, H0, W0 = condition.shape[1:]
            num_frames = L0 if num_frames is None else num_frames
            height = H0 if height is None else height
            width = W0 if width is None else width
            if (num_frames, height, width) != (L0, H0, W0):
                raise ValueError(f"condition is {L0} frames of {H0}x{W0} but num_frames, height, width are "
                                 f"{num_frames}, {height}, {width}")
        # default sizes from the condition
        if isinstance(region_trajectory, torch.Tensor) and region_trajectory.ndim in (4, 5):
            L0, H0, W0 = region_trajectory.shape[-4:-1]
            num_frames = L0 if num_frames is None else num_frames
            height = H0 if height is None else height
            width = W0 if width is None else width
        elif brush_mask is not None and isinstance(brush_mask, torch.Tensor) and brush_mask.ndim == 2:
            height = brush_mask.shape[0] if height is None else height
            width = brush_mask.shape[1] if width is None else width
        height = height or self.unet.config.sample_size * self.vae_scale_factor
        width = width or self.unet.config.sample_size * self.vae_scale_factor
        num_frames = num_frames if num_frames is not None else self.unet.config.num_frames
        for name, v in (("height", height), ("width", width)):
            if int(v) != v or v <= 0 or v % 8:
                raise ValueError(f"{name} must be a positive multiple of 8 (SVD's VAE and UNet), got {v}")
        if int(num_frames) != num_frames or num_frames < 2:
            raise ValueError(f"num_frames must be an int >= 2 (a one-frame video cannot follow a motion), "
                             f"got {num_frames}")

        if condition is None:
            cond = self.prepare_condition(region_trajectory, motion_mask, trajectories, brush_mask, k, num_frames,
                                          height, width, empty_brush, trajectory_fill)
        else:
            p = next(self.controller.parameters())
            cond = condition.to(device=p.device, dtype=p.dtype)
        if isinstance(image, PIL.Image.Image):
            n_images = 1
        else:
            n_images = len(image) if isinstance(image, list) else image.shape[0]
        if cond.shape[0] == 1 and n_images > 1:
            cond = cond.expand(n_images, *cond.shape[1:])
        elif cond.shape[0] != n_images:
            raise ValueError(f"the condition has batch {cond.shape[0]} but {n_images} images were given")
        cond = cond.repeat_interleave(num_videos_per_prompt, dim=0)

        # SVD decides classifier-free guidance from max_guidance_scale > 1 and doubles the batch [uncond, cond].
        do_cfg = max_guidance_scale > 1
        with self.controller.conditioned(cond, do_classifier_free_guidance=do_cfg):
            return super().__call__(
                image, height=height, width=width, num_frames=num_frames, num_inference_steps=num_inference_steps,
                sigmas=sigmas, min_guidance_scale=min_guidance_scale, max_guidance_scale=max_guidance_scale,
                fps=fps, motion_bucket_id=motion_bucket_id, noise_aug_strength=noise_aug_strength,
                decode_chunk_size=decode_chunk_size, num_videos_per_prompt=num_videos_per_prompt,
                generator=generator, latents=latents, output_type=output_type,
                callback_on_step_end=callback_on_step_end,
                callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs, return_dict=return_dict,
            )


def build_toy_remoco_pipeline(seed: int = 0, **controller_kwargs):
    """A :class:`remoco.pipeline.ReMoCoPipeline` on the toy backbone with a fresh (zero-initialised)
    :class:`remoco.controller.ReMoCoController`; ``controller_kwargs`` go to the controller
    (``injection``, ``sites``, ``encoder_channels``...)."""
    comps = build_toy_components(seed)
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed + 3)
        controller = ReMoCoController.from_unet(
            comps["unet"], vae_scale_factor=vae_scale_factor(comps["vae"]), **controller_kwargs
        )
    finally:
        torch.random.set_rng_state(gen_state)
    pipe = ReMoCoPipeline(controller=controller, **comps)
    pipe.set_progress_bar_config(disable=True)
    return pipe
