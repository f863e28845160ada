"""Motion conditions of ReMoCo: region-wise trajectory and motion mask (paper Sec. 3.2 and 3.4).

Training (Sec. 3.2, Fig. 3 top), for one clip with flow maps ``f`` (L, H, W, 2) and visibility masks
``M`` (L, H, W) measured from the first frame (Eq. 4):

1. :func:`global_visibility` -- ``M_g = prod_i M^i`` (Eq. 5), the pixels visible in every frame.
2. :func:`sample_region_selection` -- the region selection mask ``M_sel`` on the (H/k, W/k) grid of
   k x k regions, with a mask ratio ``r_m ~ U[r_min, 1]`` of the regions dropped.
3. :func:`pad_selection` -- ``Pad(M_sel)``: every grid cell fills its k x k block of pixels.
4. :func:`region_trajectory` -- ``f_m = f * M_g`` (Eq. 6) and ``T_s = f_m * Pad(M_sel)`` (Eq. 7).
5. :func:`motion_mask` -- ``M_mot = [ (1/L) sum_i ||f^i||_2 > 1 ]`` repeated over the L frames.

:func:`training_conditions` chains the five steps. Inference (Sec. 3.4, Fig. 3 bottom) is
:func:`remoco.user_conditions.conditions_from_user`: a user polyline moves the k x k block around its start
pixel, and the brush mask is the motion mask. :func:`to_model_input` packs both into the (L, 3, H, W) tensor
the motion encoder consumes (channels dx, dy, mask; Sec. 3.3).

The Gaussian-filtered point-trajectory baseline (DragNUWA / MotionCtrl) lives in :mod:`remoco.gaussian`.
:func:`trajectory_field_error` measures how far a condition field departs from the true flow (the paper's
motivation).

Two variants (argument ``variant``):

* ``"paper"`` (default) -- the text of the paper: motion mask thresholds the mean of ``||f^i||_2``;
  the flow is multiplied by the per-pixel global visibility ``M_g`` (Eq. 6).
* ``"release"`` -- the authors' public code (published as MotionPro): the motion mask thresholds the
  mean of the *squared* magnitude ``||f^i||_2^2``; and instead of multiplying by ``M_g`` per pixel,
  a region is dropped unless it is visible on ``M_g`` resized to the k-grid with nearest-neighbour
  interpolation (for an integer factor this reads the top-left pixel ``(i*k, j*k)`` of each cell).
  Pixels of a kept region keep their flow even where ``M_g`` is 0.

Conventions: flow channels are (dx, dy) in pixels, x = column, y = row; frame 1 has zero flow.
All functions are pure (inputs are never modified) and vectorised (no Python loop over pixels).
"""

from __future__ import annotations

import math

import torch

from .checks import check_flow, check_int, check_k, check_r, check_selection, check_visibility

__all__ = [
    "VARIANTS",
    "global_visibility",
    "sample_region_selection",
    "pad_selection",
    "masked_flow",
    "region_visibility",
    "trajectory_support",
    "region_trajectory",
    "motion_mask",
    "motion_mask_and_energy",
    "training_conditions",
    "to_model_input",
    "trajectory_field_error",
]

VARIANTS = ("paper", "release")



def _check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")



# ----------------------------------------------------------------------------------------------
# training conditions (Sec. 3.2)
# ----------------------------------------------------------------------------------------------
def global_visibility(visibility: torch.Tensor, *, validate: bool = True) -> torch.Tensor:
    """Global visibility mask ``M_g = prod_{i=1}^{L} M^i`` (Eq. 5).

    Args:
        visibility: (L, H, W) bool, ``M^i`` = pixel of frame 1 visible in frame i (Eq. 4).
        validate: check the argument (callers that already did pass False).

    Returns:
        (H, W) bool: True where the pixel is visible in every frame (logical AND over frames).
    """
    if validate:
        check_visibility(visibility)
    # AND over dim 0 as a min over the uint8 view of the bool tensor (much faster than .all(0) on CPU)
    return visibility.view(torch.uint8).amin(dim=0).view(torch.bool)


def sample_region_selection(
    height: int,
    width: int,
    k: int,
    r_min: float,
    generator: torch.Generator | None = None,
    ratio: float | None = None,
    r_max: float = 1.0,
) -> torch.Tensor:
    """Region selection mask ``M_sel`` of Eq. 7 on the (H/k, W/k) grid of k x k regions.

    The mask ratio ``r_m`` is drawn uniformly from ``[r_min, r_max]`` (paper: ``r_max = 1``; one
    ``torch.rand`` draw), then
    exactly ``n_drop = floor(r_m * N + 0.5)`` of the ``N = (H/k)(W/k)`` regions are dropped (set to
    False), chosen uniformly without replacement (``torch.randperm``); the others are kept (True).
    ``r_m = 1`` therefore drops every region (an empty selection is allowed and returned as is).

    Args:
        height, width: image size H, W (k must divide both).
        k: region size.
        r_min: minimal mask ratio in [0, 1] (paper: 0.95).
        generator: torch.Generator for reproducibility (CPU).
        ratio: if given, use this fixed ``r_m`` in [0, 1] instead of drawing it (``r_min`` is then
            only validated).
        r_max: upper end of the ratio's range, ``r_min <= r_max <= 1`` (1 in the paper; ``r_min =
            r_max = 0`` keeps every region: dense trajectories).

    Returns:
        (H//k, W//k) bool, True = region kept.
    """
    check_int("height", height)
    check_int("width", width)
    check_k(k, height, width)
    check_r("r_min", r_min)
    check_r("r_max", r_max)
    if r_max < r_min:
        raise ValueError(f"r_max must be >= r_min={r_min}, got {r_max!r}")
    if ratio is None:
        u = torch.rand((), generator=generator).item()
        r_m = float(r_min) + (float(r_max) - float(r_min)) * u
    else:
        check_r("ratio", ratio)
        r_m = float(ratio)
    gh, gw = height // k, width // k
    n = gh * gw
    n_drop = min(n, int(math.floor(r_m * n + 0.5)))
    keep = torch.ones(n, dtype=torch.bool)
    keep[torch.randperm(n, generator=generator)[:n_drop]] = False
    return keep.view(gh, gw)


def pad_selection(selection: torch.Tensor, k: int) -> torch.Tensor:
    """``Pad(M_sel)`` of Eq. 7: each grid cell (i, j) fills pixels ``[i*k:(i+1)*k, j*k:(j+1)*k]``.

    Args:
        selection: (h, w) bool grid.
        k: region size.

    Returns:
        (h*k, w*k) bool.
    """
    if not isinstance(selection, torch.Tensor) or selection.ndim != 2:
        raise ValueError("selection must be a 2-D bool torch.Tensor (H//k, W//k)")
    if selection.dtype != torch.bool:
        raise ValueError(f"selection must have dtype torch.bool, got {selection.dtype}")
    check_int("k", k)
    h, w = selection.shape
    return selection[:, None, :, None].expand(h, k, w, k).reshape(h * k, w * k)


def region_visibility(global_vis: torch.Tensor, k: int) -> torch.Tensor:
    """Release (MotionPro) variant: ``M_g`` resized to the k-grid by nearest neighbour.

    For an integer down-scaling factor, nearest-neighbour resizing (as OpenCV's ``INTER_NEAREST``)
    reads the top-left pixel of every cell, ``M_g[i*k, j*k]``.

    Args:
        global_vis: (H, W) bool ``M_g``.
        k: region size (divides H and W).

    Returns:
        (H//k, W//k) bool.
    """
    if not isinstance(global_vis, torch.Tensor) or global_vis.ndim != 2 or global_vis.dtype != torch.bool:
        raise ValueError("global_vis must be an (H, W) bool torch.Tensor")
    check_k(k, *global_vis.shape)
    return global_vis[::k, ::k].clone()


def masked_flow(flow: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
    """Masked flow maps ``f_m = {f^i * M_g}`` (Eq. 6).

    Args:
        flow: (L, H, W, 2) float. visibility: (L, H, W) bool.

    Returns:
        (L, H, W, 2) new tensor, zero where ``M_g`` is False.
    """
    check_flow(flow)
    check_visibility(visibility, flow.shape[:3])
    m_g = global_visibility(visibility, validate=False)
    return flow * m_g[None, :, :, None].to(flow.dtype)


def trajectory_support(visibility: torch.Tensor, selection: torch.Tensor, k: int, variant: str = "paper",
                       ) -> torch.Tensor:
    """(H, W) bool of the pixels whose flow survives Eq. 6-7: ``M_g * Pad(M_sel)`` (paper), or the
    release's rule (a selected region is kept whole iff its grid-resized visibility is True). Inputs are
    not validated here (:func:`region_trajectory` does)."""
    m_g = global_visibility(visibility, validate=False)
    if variant == "paper":
        return m_g & pad_selection(selection, k)
    return pad_selection(selection & m_g[::k, ::k], k)


def region_trajectory(
    flow: torch.Tensor,
    visibility: torch.Tensor,
    selection: torch.Tensor,
    k: int,
    variant: str = "paper",
    *,
    validate: bool = True,
) -> torch.Tensor:
    """Region-wise trajectory ``T_s = {f^i * M_g * Pad(M_sel)}_{i=1}^L`` (Eq. 6-7).

    Args:
        flow: (L, H, W, 2) float flow maps ``f^i`` from frame 1 to frame i (Eq. 4).
        visibility: (L, H, W) bool visibility masks ``M^i`` (Eq. 4); ``M_g`` is their AND (Eq. 5).
        selection: (H//k, W//k) bool region selection mask ``M_sel`` (True = keep).
        k: region size (must divide H and W).
        variant: ``"paper"`` multiplies by the per-pixel ``M_g`` (Eq. 6); ``"release"`` (MotionPro)
            keeps a whole selected region iff its grid-resized visibility is True
            (:func:`region_visibility`) and does not apply ``M_g`` per pixel.
        validate: check the arguments (callers that already did pass False).

    Returns:
        (L, H, W, 2) tensor of flow's dtype; zero outside the kept pixels.
    """
    if validate:
        _check_variant(variant)
        check_flow(flow)
        check_visibility(visibility, flow.shape[:3])
        check_k(k, flow.shape[1], flow.shape[2])
        check_selection(selection, flow.shape[1], flow.shape[2], k)
    L, H, W, _ = flow.shape
    keep = trajectory_support(visibility, selection, k, variant)
    if flow.dtype.itemsize == 4:
        # sparse path (the paper's regime: r_m >= 0.95 drops most regions): start from zeros and
        # copy the kept pixels verbatim, moving each (dx, dy) float32 pair as one int64 word
        words = flow.contiguous().view(torch.int64).view(L, H * W)
        idx = keep.view(-1).nonzero().squeeze(1)
        out = torch.zeros((L, H * W), dtype=torch.int64)
        out.index_copy_(1, idx, words.index_select(1, idx))
        return out.view(flow.dtype).view(L, H, W, 2)
    # (H, W*2) mask matching the interleaved (dx, dy) layout; multiplying frame by frame into a
    # fresh output keeps each step in cache (no broadcast over a size-2 inner dim, no temporary)
    keep2 = keep[:, :, None].expand(H, W, 2).reshape(H, W * 2).to(flow.dtype)
    src = flow.reshape(L, H, W * 2)
    out = torch.empty((L, H, W * 2), dtype=flow.dtype)
    for i in range(L):  # loop over frames only
        torch.mul(src[i], keep2, out=out[i])
    return out.view(L, H, W, 2)


def motion_mask(flow: torch.Tensor, threshold: float = 1.0, variant: str = "paper") -> torch.Tensor:
    """Motion mask ``M_mot`` (Sec. 3.2, "Motion Mask").

    ``f_avg = (1/L) sum_i ||f^i||_2`` and ``M_mot = f_avg > threshold`` (strictly greater: a pixel
    whose average magnitude equals the threshold is *not* moving), repeated over the L frames.
    The release variant (MotionPro) averages the *squared* magnitude ``||f^i||_2^2`` instead.

    Args:
        flow: (L, H, W, 2) float flow maps.
        threshold: 1.0 in the paper (pixels).
        variant: ``"paper"`` or ``"release"``.

    Returns:
        (L, H, W, 1) bool (the same (H, W) mask in every frame; a fresh, writable tensor).
    """
    _check_variant(variant)
    check_flow(flow)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return motion_mask_and_energy(flow, float(threshold), variant)[0]


#: relative safety margin of the bounds used by :func:`motion_mask_and_energy` (float32 rounding is ~1e-6)
_BOUND_MARGIN = 1e-4


def motion_mask_and_energy(flow: torch.Tensor, threshold: float,
                           variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The vectorised motion mask of :func:`motion_mask` (inputs not validated here) and the per-pixel
    energy ``S = sum_i ||f^i||^2`` (H*W,) it computes on the way (a non-finite ``S`` reveals bad flow
    without another pass over it).

    ``S = sum_i ||f^i||^2`` is accumulated frame by frame (one pass over the flow). The release
    variant is then just ``S / L > threshold``. For the paper variant, ``a_i = ||f^i||`` satisfies
    ``sqrt(S) <= sum_i a_i <= sqrt(L * S)`` (Cauchy-Schwarz), so ``sum_i a_i > L * t`` is certain
    when ``S > (L t)^2`` and impossible when ``S <= L t^2``; the exact mean of the magnitudes
    (square roots) is computed only for the pixels in between (with a 1e-4 relative margin on both
    bounds, far above float rounding). The result equals ``mean_i ||f^i||_2 > t`` computed directly.
    """
    L, H, W, _ = flow.shape
    f = flow if flow.dtype in (torch.float32, torch.float64) else flow.to(torch.float32)
    f = f.reshape(L, H * W * 2)
    acc = f[0] * f[0]
    for i in range(1, L):  # loop over frames only
        acc.addcmul_(f[i], f[i])
    s = acc[0::2] + acc[1::2]  # (H*W,) S = sum_i ||f^i||_2^2
    if variant == "release":
        m = s / L > threshold  # mean over frames of the squared magnitude
    elif threshold < 0:
        m = torch.ones(H * W, dtype=torch.bool)
    elif threshold == 0:
        m = s > 0
    else:
        lt = L * threshold
        m = s > lt * lt * (1 + _BOUND_MARGIN)  # certainly moving
        undecided = (~m) & (s > L * threshold * threshold * (1 - _BOUND_MARGIN))
        idx = undecided.nonzero().squeeze(1)
        if idx.numel() > H * W // 2:  # mostly undecided: the dense computation is cheaper
            sq = torch.empty(H * W * 2, dtype=f.dtype)
            mag = torch.empty(H * W, dtype=f.dtype)
            total = torch.zeros(H * W, dtype=f.dtype)
            for i in range(L):  # loop over frames only
                torch.mul(f[i], f[i], out=sq)
                torch.add(sq[0::2], sq[1::2], out=mag)
                total += mag.sqrt_()
            m = total / L > threshold
        elif idx.numel():
            sub = f.view(L, H * W, 2).index_select(1, idx)  # (L, n, 2)
            sub.mul_(sub)
            mag = (sub[..., 0] + sub[..., 1]).sqrt_()  # (L, n) = ||f^i||_2
            m[idx] = mag.mean(dim=0) > threshold
    return m.view(1, H, W, 1).expand(L, H, W, 1).clone(), s


def training_conditions(
    flow: torch.Tensor,
    visibility: torch.Tensor,
    k: int = 8,
    r_min: float = 0.95,
    generator: torch.Generator | None = None,
    variant: str = "paper",
    threshold: float = 1.0,
    ratio: float | None = None,
    r_max: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sec. 3.2 end to end for one clip: Eq. 5-7 and the motion mask.

    Args:
        flow: (L, H, W, 2) float. visibility: (L, H, W) bool.
        k: region size (paper: 8). r_min: minimal mask ratio (paper: 0.95).
        generator: torch.Generator for the region selection.
        variant: ``"paper"`` or ``"release"`` (see the module docstring).
        threshold: motion-mask threshold (paper: 1).
        ratio: optional fixed mask ratio ``r_m`` (see :func:`sample_region_selection`).
        r_max: upper end of ``r_m``'s range (paper: 1).

    Returns:
        ``(T_s, M_mot)``: (L, H, W, 2) float region-wise trajectory and (L, H, W, 1) bool motion mask.
    """
    _check_variant(variant)
    check_flow(flow, finite=False)  # finiteness is checked below on S = sum_i ||f^i||^2 (one pass less)
    L, H, W, _ = flow.shape
    check_visibility(visibility, (L, H, W))
    check_k(k, H, W)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    selection = sample_region_selection(H, W, k, r_min, generator=generator, ratio=ratio, r_max=r_max)
    # inputs validated once above; the cores skip re-validation
    traj = region_trajectory(flow, visibility, selection, k, variant, validate=False)
    mot, s = motion_mask_and_energy(flow, float(threshold), variant)
    # S is non-finite if flow holds NaN/inf (or overflows when squared: then look closer)
    if flow.numel() and not bool(torch.isfinite(s.sum())) and not bool(torch.isfinite(flow).all()):
        raise ValueError("flow contains NaN or inf values")
    return traj, mot


# ----------------------------------------------------------------------------------------------
# model input and metrics
# ----------------------------------------------------------------------------------------------
def to_model_input(
    region_trajectory: torch.Tensor,
    motion_mask: torch.Tensor,
    scale: float | None = None,
) -> torch.Tensor:
    """Concatenate ``T_s`` and ``M_mot`` along channels (Sec. 3.3): (L, 3, H, W) float32.

    Channels: 0 = dx, 1 = dy (pixels, divided by ``scale`` if given; default: no normalisation),
    2 = motion mask as 0/1.

    Args:
        region_trajectory: (L, H, W, 2) float. motion_mask: (L, H, W, 1) bool (or 0/1 float).
        scale: optional positive number dividing the displacements.
    """
    check_flow(region_trajectory, "region_trajectory")
    if not isinstance(motion_mask, torch.Tensor):
        raise ValueError("motion_mask must be an (L, H, W, 1) torch.Tensor")
    if tuple(motion_mask.shape) != tuple(region_trajectory.shape[:3]) + (1,):
        raise ValueError(
            f"motion_mask must have shape {tuple(region_trajectory.shape[:3]) + (1,)} to match "
            f"region_trajectory, got {tuple(motion_mask.shape)}"
        )
    if motion_mask.dtype != torch.bool and not motion_mask.is_floating_point():
        raise ValueError(f"motion_mask must be bool or float, got dtype {motion_mask.dtype}")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number or None, got {scale!r}")
    traj = region_trajectory.to(torch.float32)
    if scale is not None:
        traj = traj / float(scale)
    out = torch.cat([traj, motion_mask.to(torch.float32)], dim=-1)  # (L, H, W, 3)
    return out.permute(0, 3, 1, 2).contiguous()


def trajectory_field_error(
    condition: torch.Tensor,
    flow: torch.Tensor,
    region: torch.Tensor,
    relative: bool = False,
) -> torch.Tensor:
    """Mean end-point error between a trajectory condition field and the true flow inside a region.

    ``EPE = mean over frames i and pixels p in region of ||condition^i(p) - f^i(p)||_2``. With
    ``relative=True`` it is divided by the mean ``||f^i(p)||_2`` over the same set (so 1.0 means
    "as wrong as a zero field"). Used to quantify the paper's motivation (Sec. 3.2): a
    Gaussian-filtered point trajectory departs from the flow, a region-wise one does not where it is
    defined.

    Args:
        condition: (L, H, W, 2) float, e.g. ``T_s`` or a Gaussian field.
        flow: (L, H, W, 2) float reference flow.
        region: (H, W) or (L, H, W) bool, the pixels evaluated (must be non-empty).

    Returns:
        0-d float tensor.
    """
    check_flow(condition, "condition")
    check_flow(flow)
    if condition.shape != flow.shape:
        raise ValueError(f"condition shape {tuple(condition.shape)} differs from flow shape {tuple(flow.shape)}")
    if not isinstance(region, torch.Tensor) or region.dtype != torch.bool:
        raise ValueError("region must be a bool torch.Tensor of shape (H, W) or (L, H, W)")
    L, H, W, _ = flow.shape
    if tuple(region.shape) == (H, W):
        region = region[None].expand(L, H, W)
    elif tuple(region.shape) != (L, H, W):
        raise ValueError(f"region must have shape (H, W) = {(H, W)} or (L, H, W) = {(L, H, W)}, "
                         f"got {tuple(region.shape)}")
    if not bool(region.any()):
        raise ValueError("region is empty: no pixel to evaluate")
    err = (condition.to(torch.float64) - flow.to(torch.float64)).norm(dim=-1)[region].mean()
    if relative:
        ref = flow.to(torch.float64).norm(dim=-1)[region].mean()
        if ref <= 0:
            raise ValueError("relative=True needs non-zero flow inside region")
        err = err / ref
    return err.to(torch.float32)
