"""The Gaussian-filtered point trajectory of DragNUWA / MotionCtrl, the baseline ReMoCo is compared with
(Sec. 2, 4.2): :func:`gaussian_trajectory` spreads a user polyline's displacement with an un-normalised
Gaussian of peak 1 around the start pixel; :func:`gaussian_trajectory_from_flow` does the same at training
time with the flow at the centre of each selected k x k cell. Sigma scales with the frame
(:func:`default_sigma`)."""

from __future__ import annotations

import math

import torch

from .checks import check_flow, check_int, check_k, check_selection, check_visibility
from .conditions import global_visibility
from .user_conditions import user_displacements

__all__ = [
    "GAUSSIAN_REF_SIGMA",
    "GAUSSIAN_REF_SIZE",
    "default_sigma",
    "default_kernel_size",
    "gaussian_trajectory",
    "gaussian_trajectory_from_flow",
    "cell_centers",
    "gaussian_1d",
]

#: Reference resolution and sigma of DragNUWA's Gaussian filter (199 px kernel, sigma 20 at 320x576).
GAUSSIAN_REF_SIGMA = 20.0
GAUSSIAN_REF_SIZE = (320, 576)


def default_sigma(height: int, width: int) -> float:
    """Gaussian sigma scaled with resolution: ``sigma = 20 * sqrt(H*W / (320*576))``.

    DragNUWA uses sigma = 20 at 320x576 (kernel 199 px); this rule keeps the blurred area a fixed
    fraction of the image (it gives 11.9 at 256x256, where MotionCtrl uses 10; 18.9 at 320x512;
    3.0 at 64x64).
    """
    check_int("height", height)
    check_int("width", width)
    return GAUSSIAN_REF_SIGMA * math.sqrt(height * width / (GAUSSIAN_REF_SIZE[0] * GAUSSIAN_REF_SIZE[1]))


def default_kernel_size(sigma: float) -> int:
    """Odd kernel size ``2 * round(5 * sigma) - 1`` (about 10 sigma), at least 3.

    Reproduces both references: sigma 20 -> 199 px (DragNUWA), sigma 10 -> 99 px (MotionCtrl).
    """
    return max(3, 2 * int(math.floor(5.0 * sigma + 0.5)) - 1)


def _gaussian_params(height, width, sigma, kernel_size):
    if sigma is None:
        sigma = default_sigma(height, width)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
    if kernel_size is None:
        kernel_size = default_kernel_size(sigma)
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
    return float(sigma), kernel_size // 2


def gaussian_1d(centres: torch.Tensor, length: int, sigma: float, half: int) -> torch.Tensor:
    """(n, length) un-normalised Gaussian ``exp(-d^2 / 2 sigma^2)`` (peak 1), 0 beyond ``half`` px."""
    d = torch.arange(length, dtype=torch.float32)[None, :] - centres.to(torch.float32)[:, None]
    g = torch.exp(-0.5 * (d / sigma) ** 2)
    return g.masked_fill_(d.abs() > half, 0.0)


def gaussian_trajectory(
    trajectories,
    height: int,
    width: int,
    num_frames: int,
    sigma: float | None = None,
    kernel_size: int | None = None,
) -> torch.Tensor:
    """Gaussian-filtered point trajectory (baseline of DragNUWA / MotionCtrl) from user polylines.

    Each polyline is resampled exactly as in :func:`conditions_from_user`; its displacement
    ``p_j - p_0`` is placed on the single start pixel and spread by the separable, un-normalised
    Gaussian ``G(dy, dx) = exp(-(dx^2 + dy^2) / (2 sigma^2))`` (peak 1, truncated to a square
    ``kernel_size`` window). Contributions of several trajectories add up (the filter is linear).
    So the field equals the displacement at the start pixel (for an isolated trajectory) and
    decays away from it.

    Args:
        trajectories: as in :func:`conditions_from_user`.
        height, width: image size H, W.
        num_frames: L.
        sigma: Gaussian sigma in pixels; default :func:`default_sigma` (``20 sqrt(HW / (320*576))``).
        kernel_size: odd window size; default :func:`default_kernel_size` (``2 round(5 sigma) - 1``).

    Returns:
        (L, H, W, 2) float32.
    """
    check_int("height", height)
    check_int("width", width)
    check_int("num_frames", num_frames)
    sigma, half = _gaussian_params(height, width, sigma, kernel_size)
    items = user_displacements(trajectories, height, width, num_frames)
    if not items:
        return torch.zeros(num_frames, height, width, 2, dtype=torch.float32)
    rows = torch.tensor([r for r, _, _ in items])
    cols = torch.tensor([c for _, c, _ in items])
    disp = torch.stack([d for _, _, d in items])  # (P, L, 2)
    gy = gaussian_1d(rows, height, sigma, half)  # (P, H)
    gx = gaussian_1d(cols, width, sigma, half)  # (P, W)
    # field[l, y, x, c] = sum_p gy[p, y] gx[p, x] disp[p, l, c]
    rhs = (gx[:, None, :, None] * disp[:, :, None, :]).reshape(len(items), -1)  # (P, L*W*2)
    field = gy.T @ rhs  # (H, L*W*2)
    return field.view(height, num_frames, width, 2).permute(1, 0, 2, 3).contiguous()


def cell_centers(height: int, width: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre pixel of every k x k cell: rows ``i*k + k//2`` and columns ``j*k + k//2``.

    This is the pixel whose centred block (:func:`user_block`) is exactly the cell, so the
    inference rule of Sec. 3.4 applied at a cell centre reproduces the training region.
    """
    check_k(k, height, width)
    return torch.arange(height // k) * k + k // 2, torch.arange(width // k) * k + k // 2


def gaussian_trajectory_from_flow(
    flow: torch.Tensor,
    visibility: torch.Tensor,
    selection: torch.Tensor,
    k: int,
    sigma: float | None = None,
    kernel_size: int | None = None,
) -> torch.Tensor:
    """Training version of the Gaussian baseline on the same sampled regions as Eq. 7.

    For every selected cell whose centre pixel (:func:`cell_centers`) is visible in all frames
    (``M_g`` = 1 there, Eq. 5), the flow at that centre pixel is splatted with the un-normalised
    Gaussian of :func:`gaussian_trajectory`; contributions add up. A Gaussian-baseline controller
    can therefore be trained on exactly the points the region-wise controller sees.

    Args:
        flow, visibility, selection, k: as in :func:`region_trajectory`.
        sigma, kernel_size: as in :func:`gaussian_trajectory`.

    Returns:
        (L, H, W, 2) float32.
    """
    check_flow(flow)
    L, H, W, _ = flow.shape
    check_visibility(visibility, (L, H, W))
    check_k(k, H, W)
    check_selection(selection, H, W, k)
    sigma, half = _gaussian_params(H, W, sigma, kernel_size)
    rows, cols = cell_centers(H, W, k)
    m_g = global_visibility(visibility)
    use = selection & m_g[rows][:, cols]  # (h, w)
    grid = flow[:, rows][:, :, cols].to(torch.float32) * use[None, :, :, None]  # (L, h, w, 2)
    gy = gaussian_1d(rows, H, sigma, half)  # (h, H)
    gx = gaussian_1d(cols, W, sigma, half)  # (w, W)
    # field[l, y, x, c] = sum_{i, j} gy[i, y] grid[l, i, j, c] gx[j, x]  (separable, exact)
    tmp = torch.einsum("iy,lijc->lyjc", gy, grid)  # (L, H, w, 2)
    return torch.einsum("lyjc,jx->lyxc", tmp, gx).contiguous()
