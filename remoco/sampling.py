"""Many videos at once: the sampler behind the chapters' and the bench's evaluations.

:func:`sample_videos` generates one video per reference image, ``batch_size`` at a time through one pipeline call
(diffusers' SVD pipeline takes a list of images and one generator per image), with the UNet under
:func:`remoco.speed.autocast_module` (bf16 where the processor computes it natively, :func:`remoco.speed.
resolve_mixed_precision`). Video ``i`` is seeded by ``seeds[i]`` exactly as a call with
``generator=torch.Generator().manual_seed(seeds[i])`` for that image alone: the noise is the same, and in fp32 the
frames are too (batched convolutions give the same numbers here); bf16 changes them by about 0.01 of the pixel range.
A :class:`~remoco.pipeline.ReMoCoPipeline` gets each video's motion condition (a drag and a brush, or ready
conditions) through :meth:`~remoco.pipeline.ReMoCoPipeline.prepare_condition`; a plain SVD pipeline gets the images
only.
"""

from __future__ import annotations

import numpy as np
import torch

from .speed import sampler_autocast
from .video import as_uint8_frames

__all__ = ["sample_videos"]


def _image(x):
    import PIL.Image

    if isinstance(x, PIL.Image.Image):
        return x.convert("RGB")
    arr = np.asarray(x.numpy() if torch.is_tensor(x) else x)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"images: each must be a PIL image or an (H, W, 3) uint8 array, got {arr.dtype} {arr.shape}")
    return PIL.Image.fromarray(arr)  # SVD's pipeline resizes PIL images (anti-aliased) for its CLIP tower


def sample_videos(pipeline, images, seeds, conditions=None, batch_size: int = 8, precision: str = "auto",
                  **call_kwargs) -> list[np.ndarray]:
    """One video per reference image, ``batch_size`` per pipeline call; returns ``(L, H, W, 3)`` uint8 arrays.

    ``images``: PIL images or ``(H, W, 3)`` uint8 arrays, all of one size; ``seeds``: one int per image (its
    generator); ``conditions``: for a :class:`~remoco.pipeline.ReMoCoPipeline`, one dict per image of the keyword
    arguments of :meth:`~remoco.pipeline.ReMoCoPipeline.prepare_condition` (``trajectories`` + ``brush_mask`` +
    ``k`` [+ ``trajectory_fill``], or ``region_trajectory`` + ``motion_mask``); None for a plain SVD pipeline.
    ``precision``: ``"auto"`` (bf16 UNet where native), ``"bf16"`` or ``"no"`` (fp32). ``call_kwargs`` go to
    every call (``num_frames``, ``num_inference_steps``, ``motion_bucket_id``, ...; ``height``/``width`` default
    to the images' size)."""
    from .pipeline import ReMoCoPipeline

    images = [_image(x) for x in images]
    seeds = [int(s) for s in seeds]
    if not images:
        raise ValueError("images must hold at least one image")
    if len(seeds) != len(images):
        raise ValueError(f"seeds: expected one per image ({len(images)}), got {len(seeds)}")
    if len({im.size for im in images}) != 1:
        raise ValueError(f"images must all have one size, got {sorted({im.size for im in images})}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    is_remoco = isinstance(pipeline, ReMoCoPipeline)
    if is_remoco != (conditions is not None):
        raise ValueError("conditions: one dict per image for a ReMoCoPipeline, None for a plain SVD pipeline")
    if conditions is not None and len(conditions) != len(images):
        raise ValueError(f"conditions: expected one per image ({len(images)}), got {len(conditions)}")
    for key in ("image", "generator", "output_type", "condition"):
        if key in call_kwargs:
            raise ValueError(f"{key} is set by sample_videos; do not pass it in call_kwargs")
    W, H = images[0].size
    kw = dict(height=H, width=W, output_type="np", **call_kwargs)
    fast = sampler_autocast(getattr(pipeline, "unet", None), precision, call_kwargs)
    out = []
    with fast:
        for s in range(0, len(images), batch_size):
            idx = range(s, min(s + batch_size, len(images)))
            gens = [torch.Generator().manual_seed(seeds[i]) for i in idx]
            if is_remoco:
                L = kw.get("num_frames") or pipeline.unet.config.num_frames
                cond = torch.cat([pipeline.prepare_condition(num_frames=L, height=H, width=W, **conditions[i])
                                  for i in idx])
                frames = pipeline([images[i] for i in idx], condition=cond, generator=gens, **kw).frames
            else:
                frames = pipeline([images[i] for i in idx], generator=gens, **kw).frames
            if len(frames) != len(idx):
                raise ValueError(f"pipeline returned {len(frames)} videos for {len(idx)} images")
            out += [as_uint8_frames(f, "frames") for f in frames]
    return out
