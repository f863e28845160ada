"""Inference conditions of ReMoCo (paper Sec. 3.4, Fig. 3 bottom): what a user's drags and brush become.

A user draws trajectories (polylines of (x, y) pixel points, each describing the motion of its start pixel) and
brushes the region that should move. :func:`conditions_from_user` turns them into the two control signals the
controller was trained on (:mod:`remoco.conditions`, Sec. 3.2): the region-wise trajectory ``T_s`` -- each drag's
displacement from its start, resampled to the frame count at constant speed (:func:`resample_polyline`), fills the
k x k block around its start pixel (:func:`user_block`) -- and the motion mask ``M_mot``, the brush repeated over
the frames. ``fill="brush"`` (a departure for small frames, chapter 5) also fills the brushed region
(:func:`fill_brush`); ``empty_brush="trajectory_blocks"`` is the authors' release's reading of an empty brush.

Conventions as in :mod:`remoco.conditions`: flow channels are (dx, dy) in pixels, x = column, y = row.
"""

from __future__ import annotations

import math

import torch

from .checks import check_bool_mask, check_int

__all__ = [
    "TRAJECTORY_FILL",
    "EMPTY_BRUSH",
    "resample_polyline",
    "user_block",
    "user_displacements",
    "fill_brush",
    "conditions_from_user",
]


def _as_points(points, name):
    if isinstance(points, torch.Tensor):
        pts = points.detach().to(torch.float64)
    else:
        try:
            pts = torch.as_tensor(points, dtype=torch.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a sequence of (x, y) points: {exc}") from None
    if pts.numel() == 0:
        raise ValueError(f"{name} is empty: a trajectory needs at least one (x, y) point")
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{name} must have shape (P, 2) of (x, y) points, got {tuple(pts.shape)}")
    if not bool(torch.isfinite(pts).all()):
        raise ValueError(f"{name} contains NaN or inf coordinates")
    return pts


def resample_polyline(points, num_frames: int, require_motion: bool = False) -> torch.Tensor:
    """Resample a polyline of (x, y) points to ``num_frames`` positions equally spaced in arc length.

    This is the one resampling rule of :mod:`remoco` (the pipeline's user conditions, the drag demo's
    :class:`remoco.drag.DragState`, the bench examples and the trajectory metric all use it). A user
    trajectory "describes the movement of a single pixel" (Sec. 3.4): position j is where that pixel
    is in frame j, moving at constant speed along the drawn path.

    Position j (0-based) lies at arc length ``s_j = j / (num_frames - 1) * total_length`` along the
    polyline, so position 0 is the first point and position ``num_frames - 1`` the last one; the
    vertices in between are not necessarily hit. Consecutive duplicate points (zero-length segments)
    are harmless.

    Args:
        points: (P, 2) (x, y) pixel coordinates (tensor, numpy or nested sequence), P >= 1.
        num_frames: L >= 1 (L >= 2 with ``require_motion``).
        require_motion: ``False`` (default): a single point or a zero-length polyline gives
            ``num_frames`` copies of its start, and ``num_frames = 1`` gives the start only.
            ``True`` (the rule for a *drawn* trajectory): a polyline without two distinct points
            (a single click, which has no direction) and ``num_frames < 2`` raise ValueError.

    Returns:
        (L, 2) float64 positions (a torch tensor; ``.numpy()`` for numpy).
    """
    check_int("num_frames", num_frames, minimum=2 if require_motion else 1)
    pts = _as_points(points, "points")
    if require_motion and not bool(((pts[1:] - pts[:-1]).norm(dim=1) > 0).any()):
        raise ValueError(
            "points: a trajectory needs at least two distinct points (a single click has no direction); "
            "press the mouse at the start and release it at the end")
    if num_frames == 1:
        return pts[:1].clone()
    seg = (pts[1:] - pts[:-1]).norm(dim=1)  # (P-1,)
    cum = torch.cat([pts.new_zeros(1), seg.cumsum(0)])  # (P,) arc length at each vertex
    total = cum[-1]
    if pts.shape[0] == 1 or total <= 0:
        return pts[:1].expand(num_frames, 2).clone()
    s = torch.linspace(0.0, 1.0, num_frames, dtype=torch.float64) * total
    s[-1] = total
    # segment index: the last vertex whose arc length is <= s (clamped to a valid segment)
    idx = (torch.searchsorted(cum, s, right=True) - 1).clamp(0, pts.shape[0] - 2)
    seg_len = seg[idx]
    t = torch.where(seg_len > 0, (s - cum[idx]) / seg_len.clamp_min(1e-300), torch.zeros_like(s))
    t = t.clamp(0.0, 1.0)
    return pts[idx] + t[:, None] * (pts[idx + 1] - pts[idx])


def _start_pixel(pts, height, width, name):
    x0, y0 = float(pts[0, 0]), float(pts[0, 1])
    if not (-0.5 <= x0 < width - 0.5 and -0.5 <= y0 < height - 0.5):
        raise ValueError(
            f"{name} starts at (x, y) = ({x0:g}, {y0:g}), outside the {height}x{width} image "
            f"(needs -0.5 <= x < {width - 0.5}, -0.5 <= y < {height - 0.5})"
        )
    return int(math.floor(y0 + 0.5)), int(math.floor(x0 + 0.5))


def user_block(row: int, col: int, k: int, height: int, width: int) -> tuple[int, int]:
    """Top-left corner (top, left) of the k x k block "around" pixel (row, col) (Sec. 3.4).

    The block is centred on the pixel: rows ``row - k//2 .. row - k//2 + k - 1`` (for even k the
    pixel is the lower/right of the two central rows/columns), same for columns. Near the border
    the block is *shifted* inside the image (never clipped, so it always holds k x k pixels and
    always contains the start pixel): ``top = min(max(row - k//2, 0), H - k)``.
    """
    check_int("k", k)
    if k > height or k > width:
        raise ValueError(f"k={k} must not exceed the image size (H, W) = ({height}, {width})")
    top = min(max(row - k // 2, 0), height - k)
    left = min(max(col - k // 2, 0), width - k)
    return top, left


def _check_brush(brush_mask):
    check_bool_mask(brush_mask, "brush_mask", "(H, W)")


def _trajectory_list(trajectories):
    if not isinstance(trajectories, (torch.Tensor, list, tuple)) and hasattr(trajectories, "__array__"):
        trajectories = torch.as_tensor(trajectories)  # numpy (N, P, 2) or (P, 2)
    if isinstance(trajectories, torch.Tensor):
        if trajectories.ndim == 2:  # a single polyline (P, 2)
            return [trajectories]
        if trajectories.ndim != 3:
            raise ValueError(f"trajectories tensor must have shape (N, P, 2), got {tuple(trajectories.shape)}")
        return list(trajectories)
    if not isinstance(trajectories, (list, tuple)):
        raise ValueError(f"trajectories must be a list of (P, 2) polylines, got {type(trajectories).__name__}")
    return list(trajectories)


def user_displacements(trajectories, height, width, num_frames):
    """[(row, col, (L, 2) displacement)] for every user polyline."""
    out = []
    for n, traj in enumerate(_trajectory_list(trajectories)):
        name = f"trajectories[{n}]"
        pts = _as_points(traj, name)
        row, col = _start_pixel(pts, height, width, name)
        pos = resample_polyline(pts, num_frames)
        out.append((row, col, (pos - pos[:1]).to(torch.float32)))
    return out


EMPTY_BRUSH = ("error", "trajectory_blocks")
#: How a drag fills the region-wise trajectory: the paper's k x k block, or the whole brushed region.
TRAJECTORY_FILL = ("block", "brush")


def fill_brush(traj: torch.Tensor, brush_mask: torch.Tensor, displacements: list) -> None:
    """Write into ``traj`` (L, H, W, 2), in place, at every brushed pixel the displacement of the trajectory
    whose start (row, col) is nearest (ties: the earlier one). ``displacements``: :func:`user_displacements`."""
    ys, xs = brush_mask.nonzero(as_tuple=True)
    if ys.numel() == 0:
        return
    starts = torch.tensor([[row, col] for row, col, _ in displacements], dtype=torch.float32)
    d2 = (ys[:, None].float() - starts[None, :, 0]) ** 2 + (xs[:, None].float() - starts[None, :, 1]) ** 2
    nearest = d2.argmin(dim=1)
    disps = torch.stack([d for _, _, d in displacements])  # (N, L, 2)
    traj[:, ys, xs, :] = disps[nearest].transpose(0, 1)


def conditions_from_user(
    trajectories,
    brush_mask: torch.Tensor,
    num_frames: int,
    k: int = 8,
    empty_brush: str = "error",
    fill: str = "block",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Region-wise trajectory and motion mask from user input (Sec. 3.4, Fig. 3 bottom).

    Each trajectory is a polyline of (x, y) pixel points describing the motion of its start pixel.
    It is resampled to ``num_frames`` positions equally spaced in arc length
    (:func:`resample_polyline`: first = start point, last = end point) and its displacement from the
    start, ``p_j - p_0``, fills the k x k block around the start pixel (the start point rounded to
    the nearest pixel) in every frame j. The block is centred on the pixel (rows
    ``y - k//2 .. y - k//2 + k - 1``) and, at the border, shifted inside the image (never clipped;
    see :func:`user_block`). Where blocks of several trajectories overlap, the later trajectory in
    the list wins. The brush mask becomes the motion mask, repeated over the frames.

    Args:
        trajectories: list of (P_n, 2) polylines (tensors or sequences) or an (N, P, 2) tensor;
            an empty list gives a zero trajectory field.
        brush_mask: (H, W) bool brushed motion region; fixes the image size.
        num_frames: L >= 2 (a one-frame video has no motion to control).
        k: region size (1 <= k <= min(H, W); it need not divide H, W here).
        empty_brush: what an all-False ``brush_mask`` together with at least one trajectory means.
            ``"error"`` (default, the paper: the user brushes the motion region) raises ValueError.
            ``"trajectory_blocks"`` (the authors' public release, MotionPro) lets the k x k block of
            every trajectory join the motion mask, so the dragged blocks move and the rest stays.
        fill: ``"block"`` (default, the paper) writes each displacement into its k x k block only.
            ``"brush"`` (a departure for small frames, see chapter 5) also writes it into every brushed
            pixel whose nearest trajectory start it is (ties: the earlier trajectory), i.e. the brushed
            region moves rigidly with its drag; the k x k blocks are written last, as in ``"block"``.

    Returns:
        ``(T_s, M_mot)``: (L, H, W, 2) float32 and (L, H, W, 1) bool.
    """
    _check_brush(brush_mask)
    check_int("num_frames", num_frames, minimum=2)
    if empty_brush not in EMPTY_BRUSH:
        raise ValueError(f"empty_brush must be one of {EMPTY_BRUSH}, got {empty_brush!r}")
    if fill not in TRAJECTORY_FILL:
        raise ValueError(f"fill must be one of {TRAJECTORY_FILL}, got {fill!r}")
    H, W = brush_mask.shape
    check_int("k", k)
    if k > H or k > W:
        raise ValueError(f"k={k} must not exceed the brush_mask size (H, W) = ({H}, {W})")
    traj = torch.zeros(num_frames, H, W, 2, dtype=torch.float32)
    blocks = torch.zeros(H, W, dtype=torch.bool)
    displacements = user_displacements(trajectories, H, W, num_frames)
    if fill == "brush" and displacements:
        fill_brush(traj, brush_mask, displacements)
    for row, col, disp in displacements:
        top, left = user_block(row, col, k, H, W)
        traj[:, top : top + k, left : left + k, :] = disp[:, None, None, :]
        blocks[top : top + k, left : left + k] = True
    mask = brush_mask
    if displacements and not bool(brush_mask.any()):
        if empty_brush == "error":
            raise ValueError(
                "brush_mask is empty (no pixel brushed) but a trajectory was given: brush the motion region "
                "(the motion mask of Sec. 3.4), or pass empty_brush='trajectory_blocks' to move only the "
                f"{k}x{k} blocks of the trajectories")
        mask = blocks
    mot = mask[None, :, :, None].repeat(num_frames, 1, 1, 1)
    return traj, mot
