"""Figures of the book: loss curves, and trajectories / drag inputs drawn over frames.

One drawing primitive (:func:`_draw_trajectory`, PIL) draws every trajectory of the book: the Fig. 1-style
overlay of :func:`overlay_trajectory`, the drag demo's canvas and figures (:func:`render_inputs`) and the
generated last frame (:func:`render_last_frame`). A polyline of model-pixel points ``(x, y)`` (pixel
centres at integers) is drawn on the image magnified ``m`` times at ``(x + 0.5) * m - 0.5``, the centre
of the magnified pixel, as a line with a disc at its start and an arrow head at its end.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .drag import DEFAULT_MAGNIFICATION, check_magnification
from .runs import read_log
from .user_conditions import user_block
from .video import as_uint8_frames, as_uint8_image

__all__ = ["plot_loss_curves", "overlay_trajectory", "render_inputs", "render_last_frame", "plot_conditions",
           "plot_flow_estimate", "plot_vae_sweep", "plot_keep_the_input", "plot_known_answers", "TRAJECTORY_COLOURS"]

#: the default colour of trajectory n is ``TRAJECTORY_COLOURS[n % 5]`` (RGB)
TRAJECTORY_COLOURS = [(255, 60, 60), (60, 220, 90), (255, 220, 0), (230, 80, 255), (0, 230, 230)]
_MASK_TINT = (40, 120, 255)
_OUTLINE = (20, 20, 20)
_BLOCK_COLOUR = (255, 170, 0)


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


def _magnify(img: np.ndarray, m: int) -> np.ndarray:
    return img.repeat(m, axis=0).repeat(m, axis=1)


def _to_canvas(points, m: int) -> np.ndarray:
    """Model-pixel ``(x, y)`` -> coordinates on the ``m`` times magnified image (centre of the block)."""
    return (np.asarray(points, dtype=np.float64) + 0.5) * m - 0.5


def _draw_trajectory(draw, pts_canvas: np.ndarray, colour, width: int, head: float, dot: float) -> None:
    """THE trajectory primitive: polyline of ``width`` px, a disc of radius ``dot`` at the start and a
    filled arrow head (``head`` px long) along the last non-degenerate segment, all over a one-pixel dark
    outline so that the path stands out on any frame (a red path on a red object, a yellow one on sand).
    ``draw``: a PIL ImageDraw."""
    pts = [tuple(map(float, p)) for p in pts_canvas]
    colour = tuple(int(c) for c in colour)
    end = np.asarray(pts[-1])
    arrow = None
    for prev in reversed(pts[:-1]):
        d = end - np.asarray(prev)
        n = float(np.linalg.norm(d))
        if n > 1e-6:
            d /= n
            perp = np.array([-d[1], d[0]])
            a = end - head * d + 0.55 * head * perp
            b = end - head * d - 0.55 * head * perp
            arrow = [tuple(end), tuple(a), tuple(b)]
            break
    x0, y0 = pts[0]
    for fill, grow in ((_OUTLINE, 1), (colour, 0)):  # the outline first, the colour on top
        if len(pts) >= 2:
            draw.line(pts, fill=fill, width=int(width) + 2 * grow, joint="curve")
        draw.ellipse([x0 - dot - grow, y0 - dot - grow, x0 + dot + grow, y0 + dot + grow], fill=fill)
        if arrow is not None:
            draw.polygon(arrow, fill=fill, outline=fill if grow else None, width=1 + grow)


def _head_length(m: int) -> float:
    return max(6.0, 2.2 * m)


def _dot_radius(m: int) -> int:
    return max(2, m // 2 + 1)


def overlay_trajectory(frame, trajectories, colors=None, scale: int = 4, thickness: int = 1) -> np.ndarray:
    """Draw polylines with an arrow head on a frame, as the paper's Fig. 1 shows trajectories on the last
    frame. ``frame``: (H, W, 3) uint8 (or float in [0, 1]); ``trajectories``: one or a list of (P, 2)
    (x, y) pixel polylines; ``colors``: RGB tuples (default :data:`TRAJECTORY_COLOURS`). The frame is
    enlarged ``scale`` times (nearest) first so thin lines stay visible at 64 px; lines are ``thickness``
    px wide. Returns a new (H*scale, W*scale, 3) uint8 array."""
    from PIL import Image, ImageDraw

    img = as_uint8_image(frame, "frame")
    if isinstance(scale, bool) or int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    if isinstance(thickness, bool) or int(thickness) != thickness or thickness < 1:
        raise ValueError(f"thickness must be a positive int, got {thickness!r}")
    scale = int(scale)
    if hasattr(trajectories, "detach") or (isinstance(trajectories, np.ndarray) and trajectories.ndim == 2):
        trajectories = [trajectories]
    colors = colors or TRAJECTORY_COLOURS
    canvas = Image.fromarray(np.ascontiguousarray(_magnify(img, scale)))
    draw = ImageDraw.Draw(canvas)
    for n, t in enumerate(trajectories):
        pts = np.asarray(t.detach().cpu() if hasattr(t, "detach") else t, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 1:
            raise ValueError(f"trajectories[{n}] must be (P, 2) (x, y) points, got shape {pts.shape}")
        _draw_trajectory(draw, _to_canvas(pts, scale), colors[n % len(colors)], int(thickness),
                         _head_length(scale), _dot_radius(scale))
    return np.asarray(canvas, dtype=np.uint8)


def render_inputs(image, brush_mask=None, trajectories=(), magnification: int = DEFAULT_MAGNIFICATION,
                  region_trajectory=None, motion_mask=None, k: int | None = None,
                  current_stroke=None, brush_radius: float | None = None) -> np.ndarray:
    """Draw the drag demo's user inputs (and optionally the derived conditions) over the magnified image.

    * the brush mask (or, if given, the motion mask ``M`` of frame 1) as a blue tint;
    * each trajectory as a polyline with an arrow head (model-pixel coordinates);
    * if ``region_trajectory`` (``(L, H, W, 2)``) is given: the ``k x k`` block around each trajectory's
      start (where the region-wise trajectory is non-zero) outlined in orange, with the block's mean
      last-frame displacement as a thin orange arrow — i.e. what the controller actually receives.

    ``image``: (H, W, 3) uint8 or float in [0, 1] (numpy, torch or PIL). Returns ``(H*m, W*m, 3)`` uint8.
    """
    from PIL import Image, ImageDraw

    m = check_magnification(magnification)
    img = as_uint8_image(image, "image")
    h, w = img.shape[:2]
    base = img.astype(np.float32)
    tint = None
    if motion_mask is not None:
        mm = motion_mask.detach().cpu().numpy() if hasattr(motion_mask, "detach") else np.asarray(motion_mask)
        tint = mm.reshape(-1, h, w)[0] > 0.5
    elif brush_mask is not None:
        tint = np.asarray(brush_mask, dtype=bool)
        if tint.shape != (h, w):
            raise ValueError(f"brush_mask: expected shape {(h, w)}, got {tint.shape}")
    if tint is not None:
        base[tint] = 0.55 * base[tint] + 0.45 * np.array(_MASK_TINT, dtype=np.float32)
    canvas = Image.fromarray(_magnify(base.round().astype(np.uint8), m))
    draw = ImageDraw.Draw(canvas)
    line, head, dot = max(2, m // 2), _head_length(m), _dot_radius(m)
    if region_trajectory is not None:
        if hasattr(region_trajectory, "detach"):
            rt = region_trajectory.detach().cpu().numpy()
        else:
            rt = np.asarray(region_trajectory)
        support = np.abs(rt).sum(axis=(0, 3)) > 0
        kk = int(k or 1)
        for t in trajectories:
            x0, y0 = (int(math.floor(v + 0.5)) for v in np.asarray(t)[0])
            top, left = user_block(y0, x0, kk, h, w)
            xs, ys = slice(left, left + kk), slice(top, top + kk)
            block = support[ys, xs]
            if not block.any():
                continue
            draw.rectangle([xs.start * m, ys.start * m, xs.stop * m - 1, ys.stop * m - 1],
                           outline=_BLOCK_COLOUR, width=2)
            disp = rt[-1, ys, xs][block].mean(axis=0)
            c = np.array([(xs.start + xs.stop - 1) / 2, (ys.start + ys.stop - 1) / 2])
            _draw_trajectory(draw, _to_canvas(np.stack([c, c + disp]), m), _BLOCK_COLOUR, 1, max(4.0, 1.2 * m), 1)
    for i, t in enumerate(trajectories):
        _draw_trajectory(draw, _to_canvas(t, m), TRAJECTORY_COLOURS[i % len(TRAJECTORY_COLOURS)], line, head, dot)
    if current_stroke is not None:
        mode, pts = current_stroke
        if mode == "trajectory":
            _draw_trajectory(draw, _to_canvas(pts, m), (255, 255, 255), line, head, dot)
        elif brush_radius:
            r = brush_radius * m
            for p in _to_canvas(pts, m):
                draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r],
                             outline=(255, 255, 255) if mode == "brush" else (0, 0, 0))
    return np.asarray(canvas, dtype=np.uint8)


def render_last_frame(frames, trajectories, magnification: int = DEFAULT_MAGNIFICATION,
                      brush_mask=None) -> np.ndarray:
    """The generated video's last frame with the input trajectories drawn on it (as in the paper's Fig. 1)."""
    last = as_uint8_frames(frames)[-1]
    if brush_mask is not None:
        # outline only (no tint) so the generated content stays visible
        edge = np.asarray(brush_mask, dtype=bool)
        inner = edge.copy()
        inner[1:-1, 1:-1] = edge[1:-1, 1:-1] & edge[:-2, 1:-1] & edge[2:, 1:-1] & edge[1:-1, :-2] & edge[1:-1, 2:]
        border = edge & ~inner
        last = last.copy()
        last[border] = (0.5 * last[border] + 0.5 * np.array(_MASK_TINT)).astype(np.uint8)
    return render_inputs(last, None, trajectories, magnification)


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
    img = as_uint8_image(first_frame, "first_frame")
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


def plot_flow_estimate(clip, flow_est, visibility_est, title: str, estimator: str = "OpenCV DIS"):
    """Ground truth (top row) next to an estimate (bottom row) at the last frame L of a :mod:`remoco.data` clip:
    frame 1 and L, the flow ``f^L`` (one colour scale for both), the visibility ``M^L``, the moving objects and
    the estimate's end-point error on visible pixels. ``flow_est`` (L, H, W, 2) and ``visibility_est`` (L, H, W)
    as :func:`remoco.flow.estimate_flow` returns them; ``estimator`` names it in the panel titles. Returns the
    matplotlib Figure."""
    import matplotlib.pyplot as plt

    from .flow import flow_to_color

    flow_est, vis_est = torch.as_tensor(flow_est), torch.as_tensor(visibility_est)
    if tuple(flow_est.shape) != tuple(clip.flow.shape):
        raise ValueError(f"flow_est must be {tuple(clip.flow.shape)} like the clip's flow, got {tuple(flow_est.shape)}")
    if tuple(vis_est.shape) != tuple(clip.visibility.shape):
        raise ValueError(f"visibility_est must be {tuple(clip.visibility.shape)}, got {tuple(vis_est.shape)}")
    L = clip.video.shape[0]
    m = float(clip.flow.norm(dim=-1).max())
    grey = dict(cmap="gray", vmin=0, vmax=1)
    fig, ax = plt.subplots(2, 4, figsize=(7.5, 4.4))
    panels = [(0, 0, clip.video[0], "frame 1", {}), (1, 0, clip.video[-1], f"frame {L}", {}),
              (0, 1, flow_to_color(clip.flow[-1], m), "exact flow f^L", {}),
              (1, 1, flow_to_color(flow_est[-1], m), f"{estimator} f^L", {}),
              (0, 2, clip.visibility[-1], "exact M^L", grey), (1, 2, vis_est[-1], f"{estimator} M^L", grey),
              (0, 3, clip.object_mask, "moving objects", dict(cmap="gray"))]
    for r, c, img, t, kw in panels:
        ax[r, c].imshow(img, **kw)
        ax[r, c].set_title(t)
    err = (flow_est[-1] - clip.flow[-1]).norm(dim=-1) * clip.visibility[-1]
    im = ax[1, 3].imshow(err, cmap="magma", vmin=0, vmax=3)
    ax[1, 3].set_title("EPE (px, visible)")
    fig.colorbar(im, ax=ax[1, 3], fraction=0.046)
    for a in ax.flat:
        a.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_vae_sweep(sweep: dict, goal_db: float | None = 25.0, key: str = "all psnr", longer: dict | None = None,
                   probe: dict | None = None):
    """PSNR of held-out reconstructions against training minutes, one line per variant of a VAE sweep
    (``results/vae_sweep.json``, ``benchmarks/vae_sweep.py``), with the goal as a dashed line. ``longer``: a second
    sweep of some of the same variants trained for more steps (``results/vae_sweep_long.json``), drawn dashed in its
    variant's colour. ``probe``: the architecture probe on 8 full frames a step (``results/vae_plain_probe.json``,
    ``benchmarks/vae_arch_probe.py``), each run drawn with triangles (its ``"all"`` PSNR). Returns the matplotlib
    Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.5, 4.2) if probe else (7.5, 3.6), dpi=90)
    if probe:  # more lines than the default ten colours
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    colours = {}
    for name, v in sweep["variants"].items():
        c = v["curve"]
        (line,) = ax.plot([p["minutes"] for p in c], [p[key] for p in c], marker="o", ms=4, label=name)
        colours[name] = line.get_color()
    for name, v in (longer or {}).get("variants", {}).items():
        c = v["curve"]
        ax.plot([p["minutes"] for p in c], [p[key] for p in c], marker="s", ms=3, ls="--", color=colours.get(name),
                label=f"{name}, {longer['steps']:,} steps")
    for name, r in (probe or {}).get("runs", {}).items():
        pts = r["points"]
        ax.plot([p["minutes"] for p in pts], [p["all"] for p in pts], marker="^", ms=5,
                lw=2.2 if r["kind"] == "plain" else 1.0, label=f"probe: {name}")
    if goal_db is not None:
        ax.axhline(goal_db, color="k", ls="--", lw=0.8, label=f"goal {goal_db:g} dB")
    ax.set_xlabel(f"training minutes (one thread, {sweep.get('runs at once', 1)} runs at once)")
    ax.set_ylabel("PSNR (dB), held-out clips")
    ax.grid(alpha=0.3)
    if probe:  # many lines: the legend beside the axes, not over the curves
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    else:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_keep_the_input(rows: list, titles=("input (frame 1)", "VAE reconstruction", "generated frame 1"),
                        scale: int = 3):
    """A grid, one row per clip, of images side by side (e.g. the conditioning frame, its VAE reconstruction
    and the model's generated first frame). ``rows``: ``[(images, labels)]`` with uint8 (H, W, 3) images and
    one caption per image (e.g. the PSNR to the input). Nearest-neighbour magnified ``scale`` times so 64-px
    frames stay sharp. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    n, m = len(rows), len(titles)
    fig, axes = plt.subplots(n, m, figsize=(2.6 * m, 2.75 * n), dpi=90, squeeze=False)
    for r, (images, labels) in enumerate(rows):
        for c, (img, lab) in enumerate(zip(images, labels)):
            ax = axes[r, c]
            ax.imshow(_magnify(as_uint8_image(img), scale), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(lab, fontsize=9)
            if r == 0:
                ax.set_title(titles[c], fontsize=10)
    fig.tight_layout()
    return fig


def plot_known_answers(image, region, trajectory, num_frames: int, cases: dict, tracker: dict | None = None,
                       truth=None, scale: int = 3, columns: int = 4):
    """The known-answer videos of MD-Vid's validation for one bench entry (:func:`remoco.tracking.known_path_video`,
    ``cases`` ``{name: (speed, blur sigma as a share of the height, colour)}``), and the entry's ground-truth clip
    ``truth`` when given: each video's last frame with the drawn path (red) and the start point as tracked (green,
    ``tracker``: :func:`remoco.tracking.motion_distance` keyword arguments), titled with its normalised score and
    the expected one, ``columns`` panels a row."""
    import matplotlib.pyplot as plt

    from .tracking import known_path_video, motion_distance, video_frames

    H = np.asarray(image).shape[0]
    videos = [("ground-truth clip", truth, None)] if truth is not None else []
    videos += [(name, known_path_video(image, region, trajectory, num_frames, sp, blur * H, colour), 1 - abs(1 - sp))
               for name, (sp, blur, colour) in cases.items()]
    rows = -(-len(videos) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(8.4, 2.45 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, v, expected) in zip(axes.flat, videos):
        md = motion_distance(v, trajectory, **(tracker or {}))
        ax.imshow(overlay_trajectory(video_frames(v, name)[-1], [md.target, md.track],
                                     colors=[(255, 40, 40), (40, 255, 40)], scale=scale))
        exp = "" if expected is None else f" (expect {expected:+.1f})"
        ax.set_title(name.replace(", ", ",\n", 1) + f"\nscore {md.normalised:+.2f}{exp}", fontsize=8)
    fig.tight_layout()
    return fig
