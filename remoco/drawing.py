"""Figures of the book: loss curves and trajectories drawn over frames (the paper's Fig. 1 layout)."""

from __future__ import annotations

import numpy as np
import torch

from .evaluate import _as_uint8_np
from .runs import read_log

__all__ = ["plot_loss_curves", "overlay_trajectory", "plot_conditions"]

def plot_loss_curves(logs: dict, ax=None, smooth: int = 25, title: str | None = None):
    """Loss against step for several CSV logs ``{label: path}`` (raw, faint, and a running mean of
    ``smooth`` steps); log-scale y. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2), dpi=80)
    for label, path in logs.items():
        d = read_log(path)
        line, = ax.plot(d["step"], d["loss"], alpha=0.25, lw=0.8)
        if len(d["loss"]) >= smooth > 1:
            k = np.ones(smooth) / smooth
            ax.plot(d["step"][smooth - 1:], np.convolve(d["loss"], k, mode="valid"), color=line.get_color(),
                    label=label)
        else:
            line.set_label(label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def overlay_trajectory(frame, trajectories, colors=None, scale: int = 4, thickness: int = 1) -> np.ndarray:
    """Draw polylines with an arrow head on a frame, as the paper's Fig. 1 shows trajectories on the last
    frame. ``frame``: (H, W, 3) uint8 (or float in [0, 1]); ``trajectories``: one or a list of (P, 2)
    (x, y) pixel polylines; ``colors``: RGB tuples. The frame is enlarged ``scale`` times (nearest) first so
    thin lines stay visible at 64 px. Returns a new (H*scale, W*scale, 3) uint8 array."""
    import cv2

    img = _as_uint8_np(frame)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"frame must be (H, W, 3), got {img.shape}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    img = np.ascontiguousarray(np.repeat(np.repeat(img, scale, 0), scale, 1))
    if torch.is_tensor(trajectories) or (isinstance(trajectories, np.ndarray) and trajectories.ndim == 2):
        trajectories = [trajectories]
    palette = [(255, 60, 60), (60, 220, 60), (60, 120, 255), (255, 220, 0)]
    colors = colors or palette
    for n, t in enumerate(trajectories):
        pts = np.asarray(t.detach().cpu() if torch.is_tensor(t) else t, float)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 1:
            raise ValueError(f"trajectories[{n}] must be (P, 2) (x, y) points, got shape {pts.shape}")
        q = np.rint((pts + 0.5) * scale - 0.5).astype(np.int32)
        c = tuple(int(v) for v in colors[n % len(colors)])
        cv2.circle(img, tuple(q[0]), max(2, scale // 2 + 1), c, -1, cv2.LINE_AA)
        if len(q) > 1:
            cv2.polylines(img, [q[:-1]], False, c, thickness, cv2.LINE_AA)
            cv2.arrowedLine(img, tuple(q[-2]), tuple(q[-1]), c, thickness, cv2.LINE_AA, tipLength=0.5)
    return img


def plot_conditions(first_frame, region_trajectory, motion_mask, frame: int = -1):
    """The controller's input at a glance (Sec. 3.2 / 3.4): the first frame, the region-wise trajectory's
    displacement magnitude ``|T_s|`` at ``frame`` (default the last) and the motion mask ``M_mot``.
    ``first_frame``: (H, W, 3); ``region_trajectory``: (L, H, W, 2); ``motion_mask``: (L, H, W, 1).
    Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    traj = torch.as_tensor(region_trajectory)
    mask = torch.as_tensor(motion_mask)
    if traj.ndim != 4 or traj.shape[-1] != 2:
        raise ValueError(f"region_trajectory must be (L, H, W, 2), got {tuple(traj.shape)}")
    if tuple(mask.shape) != tuple(traj.shape[:3]) + (1,):
        raise ValueError(f"motion_mask must be {tuple(traj.shape[:3]) + (1,)}, got {tuple(mask.shape)}")
    img = _as_uint8_np(first_frame)
    if img.shape != tuple(traj.shape[1:3]) + (3,):
        raise ValueError(f"first_frame must be {tuple(traj.shape[1:3]) + (3,)}, got {img.shape}")
    mag = traj[frame].norm(dim=-1).numpy()
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8), dpi=100)
    axes[0].imshow(img)
    axes[0].set_title("first frame", fontsize=10)
    im = axes[1].imshow(mag, cmap="magma")
    axes[1].set_title(f"|T_s| at frame {frame % traj.shape[0] + 1} (px)", fontsize=10)
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[2].imshow(mask[frame, ..., 0].numpy(), cmap="gray", vmin=0, vmax=1)
    axes[2].set_title("motion mask M_mot", fontsize=10)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
