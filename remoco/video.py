"""Video input/output and the paper's frame preprocessing.

The paper trains on 16-frame clips "centrally cropped from the resized video" at 320 x 512
(Section 4, implementation details). :func:`resize_center_crop` does exactly that: resize so the
frame covers the target size (short side fits), then cut the centre. Clips are ``(L, H, W, 3)``
uint8 torch tensors everywhere in :mod:`remoco`.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import torch

__all__ = [
    "read_video",
    "write_video",
    "resize_center_crop",
    "as_uint8_frames",
    "as_uint8_image",
    "png_bytes",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".gif", ".webm", ".mov", ".avi", ".mkv")


def _float_to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """The one float -> uint8 conversion of :mod:`remoco`: clip to [0, 1], times 255, round half up.

    (``floor(255 * x + 0.5)``; ties such as 127.5 go up, unlike ``np.rint``'s round-half-to-even.)
    NaN or inf values raise ValueError naming ``name``.
    """
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def as_uint8_frames(frames, name: str = "frames") -> np.ndarray:
    """Convert a clip to ``(L, H, W, 3) uint8`` numpy.

    Accepts torch tensors or numpy arrays shaped ``(L, H, W, 3)`` (uint8, or float in [0, 1]) or
    ``(L, 3, H, W)``; a list of PIL images is accepted too. Grey ``(L, H, W)`` clips are repeated to RGB.
    Floats are clipped to [0, 1] and rounded half up (:func:`as_uint8_image` shares the conversion).
    """
    if isinstance(frames, (list, tuple)) and frames and hasattr(frames[0], "convert"):
        frames = np.stack([np.asarray(f.convert("RGB")) for f in frames])
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().numpy()
    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 4:
        raise ValueError(f"{name}: expected a clip of shape (L, H, W, 3) or (L, 3, H, W), got {arr.shape}")
    if arr.shape[-1] != 3 and arr.shape[1] == 3:
        arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected 3 colour channels, got shape {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"{name}: the clip has no frames")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"{name}: expected uint8 or float in [0, 1], got dtype {arr.dtype}")
        arr = _float_to_uint8(arr, name)
    return np.ascontiguousarray(arr)


def as_uint8_image(image, name: str = "frame") -> np.ndarray:
    """Convert one frame to ``(H, W, 3) uint8`` numpy (the single-frame form of :func:`as_uint8_frames`).

    Accepts a torch tensor or numpy array shaped ``(H, W, 3)`` or ``(3, H, W)`` (uint8, or float in
    [0, 1], rounded half up), a grey ``(H, W)`` frame, or a PIL image. Errors name ``name``.
    """
    if hasattr(image, "convert") and not hasattr(image, "detach"):
        image = np.asarray(image.convert("RGB"))
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name}: expected one frame of shape (H, W, 3), (3, H, W) or (H, W), got {arr.shape}")
    return as_uint8_frames(arr[None], name)[0]


def png_bytes(image) -> bytes:
    """PNG file bytes of one image: ``(H, W, 3)`` RGB or ``(H, W)`` grey uint8 (bool / float are converted)."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if not (arr.ndim == 2 and arr.dtype == np.uint8):  # grey uint8 stays grey; the rest becomes RGB
        arr = as_uint8_image(arr, "image")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise ValueError(f"unsupported frame shape {frame.shape}")
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    frame = frame[..., :3]
    if frame.dtype != np.uint8:
        if frame.dtype == bool:
            frame = frame.astype(np.uint8) * 255
        elif np.issubdtype(frame.dtype, np.floating):
            frame = _float_to_uint8(frame, "frame")
        else:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
    return frame


def read_video(path, num_frames: int | None = None) -> torch.Tensor:
    """Read a clip as an ``(L, H, W, 3)`` uint8 tensor.

    ``path``: an ``.mp4`` (or other ffmpeg-readable video), an animated ``.gif``, or a folder of
    image frames (sorted by file name). ``num_frames``: keep the first ``num_frames`` frames (the file
    must have at least that many). Missing path -> FileNotFoundError; unreadable / corrupt file,
    fewer than 2 frames, or frames of different sizes -> ValueError.
    """
    import imageio.v3 as iio

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"path: no such video file or frame folder: {str(p)!r}")
    if num_frames is not None and (not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames < 2):
        raise ValueError(f"num_frames must be None or an int >= 2, got {num_frames!r}")
    frames = []
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"path: folder {str(p)!r} holds no image frames ({', '.join(IMAGE_SUFFIXES)})")
        if num_frames is not None:
            files = files[:num_frames]
        for f in files:
            try:
                frames.append(_to_rgb(iio.imread(f)))
            except Exception as e:
                raise ValueError(f"path: cannot read frame {str(f)!r}: {e}") from e
    else:
        suffix = p.suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise ValueError(f"path: unsupported video suffix {suffix!r}; "
                             f"expected one of {VIDEO_SUFFIXES} or a frame folder")
        try:
            if suffix == ".gif":
                arr = iio.imread(p, index=None)
                if arr.ndim == 3 and arr.shape[-1] not in (3, 4):  # one gray frame per index
                    arr = arr[..., None]
                if arr.ndim == 3:  # single frame
                    arr = arr[None]
                frames = [_to_rgb(f) for f in arr[:num_frames]]
            else:
                import imageio.v2 as iio2

                with iio2.get_reader(str(p), format="FFMPEG") as reader:
                    for k, f in enumerate(reader):
                        if num_frames is not None and k >= num_frames:
                            break
                        frames.append(_to_rgb(f))
        except (OSError, RuntimeError, ValueError, IndexError, KeyError) as e:
            raise ValueError(f"path: cannot decode video {str(p)!r} (corrupt or unsupported): {e}") from e
    if len(frames) < 2:
        raise ValueError(f"path: {str(p)!r} has {len(frames)} frame(s); a clip needs at least 2")
    if num_frames is not None and len(frames) < num_frames:
        raise ValueError(f"num_frames: asked for {num_frames} frames but {str(p)!r} has only {len(frames)}")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"path: frames of {str(p)!r} have different sizes {sorted(shapes)}")
    return torch.from_numpy(np.stack(frames))


def _check_frames(frames, name="frames") -> np.ndarray:
    if not isinstance(frames, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (L, H, W, 3) uint8, got {type(frames).__name__}")
    if frames.dtype != torch.uint8:
        raise ValueError(f"{name} must have dtype torch.uint8, got {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"{name} must have shape (L, H, W, 3) with L >= 1, got {tuple(frames.shape)}")
    return frames.detach().cpu().numpy()


def write_video(path, frames: torch.Tensor, fps: float = 8) -> Path:
    """Write an ``(L, H, W, 3)`` uint8 clip. The suffix picks the format: ``.mp4`` (H.264, yuv420p,
    browser friendly; height and width must be even), ``.gif`` (looping), or no suffix / an existing
    folder: one PNG per frame (``00000.png``, ...; lossless). Returns the path written."""
    import imageio.v3 as iio

    arr = _check_frames(frames)
    if not (isinstance(fps, (int, float)) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    p = Path(path)
    suffix = p.suffix.lower()
    if p.is_dir() or suffix == "":
        p.mkdir(parents=True, exist_ok=True)
        for k, f in enumerate(arr):
            iio.imwrite(p / f"{k:05d}.png", f)
        return p
    p.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        iio.imwrite(p, arr, extension=".gif", duration=1000.0 / fps, loop=0)
    elif suffix == ".mp4":
        if arr.shape[1] % 2 or arr.shape[2] % 2:
            raise ValueError(f"frames: mp4 (yuv420p) needs even height and width, "
                             f"got {arr.shape[1]}x{arr.shape[2]}; crop first or write a .gif")
        import imageio.v2 as iio2

        with iio2.get_writer(str(p), format="FFMPEG", fps=fps, codec="libx264", quality=8, pixelformat="yuv420p",
                             macro_block_size=1, ffmpeg_log_level="error") as w:
            for f in arr:
                w.append_data(f)
    else:
        raise ValueError(f"path: unsupported suffix {suffix!r}; use .mp4, .gif or a folder")
    return p


def resize_center_crop(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize so the clip covers ``height x width`` (the short side fits), then centre crop
    (the paper's preprocessing to 320 x 512). Area interpolation when shrinking, bilinear when
    enlarging. Returns a new ``(L, height, width, 3)`` uint8 tensor."""
    arr = _check_frames(frames)
    for name, v in (("height", height), ("width", width)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    H, W = arr.shape[1:3]
    s = max(height / H, width / W)
    nh, nw = max(height, int(round(H * s))), max(width, int(round(W * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    y0, x0 = (nh - height) // 2, (nw - width) // 2
    out = np.empty((arr.shape[0], height, width, 3), np.uint8)
    for k, f in enumerate(arr):
        r = f if (nh, nw) == (H, W) else cv2.resize(f, (nw, nh), interpolation=interp)
        out[k] = r[y0 : y0 + height, x0 : x0 + width]
    return torch.from_numpy(out)
