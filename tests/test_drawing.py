"""Tests of remoco.drawing: the one trajectory renderer behind overlay_trajectory / render_inputs /
render_last_frame."""

import numpy as np
import pytest
import torch

from remoco import drawing as R
from remoco.drag import DEFAULT_MAGNIFICATION as M
from remoco.drag import DragState


def test_render_inputs_marks_mask_and_block():
    img = np.full((64, 64, 3), 128, np.uint8)
    s = DragState(64, 64)
    s.add_brush_stroke([[10, 10]], 3)
    s.add_trajectory([[40, 40], [50, 40]])
    rt, mm = s.conditions(8, 8)
    pic = R.render_inputs(img, s.brush_mask, s.drawn_trajectories, M, rt, mm, 8)
    assert pic.shape == (384, 384, 3)
    # brushed pixel (10, 10) tinted blue, unbrushed far pixel unchanged
    c = pic[10 * M + 3, 10 * M + 3]
    assert c[2] > c[0] + 30
    assert tuple(pic[60 * M + 3, 5 * M + 3]) == (128, 128, 128)
    # the k x k block around (40, 40) starts at column 36: its outline is drawn at canvas x = 36*M
    assert tuple(pic[38 * M, 36 * M]) != (128, 128, 128)


def test_overlay_trajectory_draws_on_a_copy_and_names_bad_input():
    f = np.zeros((16, 16, 3), np.uint8)
    img = R.overlay_trajectory(f, [np.array([[2.0, 2.0], [12.0, 12.0]])], colors=[(255, 0, 0)], scale=4)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and f.sum() == 0
    assert img[..., 0].max() == 255 and img[..., 1].max() <= 20  # red, and the dark outline (20, 20, 20)
    assert img[10, 10, 0] == 255  # the start disc at (2 + 0.5) * 4 - 0.5 = 9.5
    assert img[49, 49, 0] == 255  # the end (arrow tip) at (12 + 0.5) * 4 - 0.5 = 49.5
    assert img[10, 49, 0] == 0  # away from the line
    # on a white frame the path keeps a dark outline: the pixel beside the start disc is dark, not red or white
    white = R.overlay_trajectory(np.full((16, 16, 3), 255, np.uint8), [np.array([[2.0, 2.0], [12.0, 12.0]])],
                                 colors=[(255, 0, 0)], scale=4)
    row = white[10, :, :].astype(int)
    dark = np.nonzero(row.sum(axis=1) < 100)[0]
    assert len(dark) and dark.min() < 10 and tuple(white[10, 10]) == (255, 0, 0)
    # float frames in [0, 1] and a single (P, 2) tensor are accepted
    t = torch.tensor([[2.0, 2.0], [12.0, 2.0]])
    assert R.overlay_trajectory(np.zeros((16, 16, 3), np.float32), t).shape == (64, 64, 3)
    with pytest.raises(ValueError, match="trajectories"):
        R.overlay_trajectory(f, [np.zeros((3, 3))])
    with pytest.raises(ValueError, match="frame"):
        R.overlay_trajectory(np.zeros((2, 16, 16, 3)), [np.ones((2, 2))], scale=4)  # a clip, not a frame
    with pytest.raises(ValueError, match="scale"):
        R.overlay_trajectory(f, [np.ones((2, 2))], scale=0)


def test_one_renderer_for_the_overlay_and_the_demo_figures():
    # the same trajectory with the same line width comes out pixel-identical from both public functions
    img = np.full((32, 32, 3), 90, np.uint8)
    traj = np.array([[5.0, 6.0], [12.0, 9.0], [20.0, 25.0]])
    a = R.overlay_trajectory(img, [traj], colors=[R.TRAJECTORY_COLOURS[0]], scale=M, thickness=max(2, M // 2))
    b = R.render_inputs(img, None, [traj], M)
    assert (a != 90).any()
    np.testing.assert_array_equal(a, b)


def test_render_last_frame_outlines_the_mask_and_draws_the_trajectory():
    frames = np.zeros((3, 16, 16, 3), np.float32)
    frames[-1] = 0.5
    mask = np.zeros((16, 16), bool)
    mask[4:10, 4:10] = True
    pic = R.render_last_frame(frames, [np.array([[12.0, 12.0], [14.0, 14.0]])], 4, mask)
    assert pic.shape == (64, 64, 3)
    assert tuple(pic[7 * 4 + 1, 7 * 4 + 1]) == (128, 128, 128)  # last frame (0.5 -> 128), mask inside untouched
    assert tuple(pic[4 * 4 + 1, 6 * 4 + 1]) != (128, 128, 128)  # the mask's border is tinted
    assert tuple(pic[12 * 4 + 1, 12 * 4 + 1]) == R.TRAJECTORY_COLOURS[0]


def test_plot_flow_estimate_panels_and_checks():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from remoco import data

    clip = data.make_clip(5, 4, 32, 32)
    fig = R.plot_flow_estimate(clip, clip.flow, clip.visibility, "exact against itself")
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert "OpenCV DIS f^L" in titles and "EPE (px, visible)" in titles
    err_panel = next(a for a in fig.axes if a.get_title() == "EPE (px, visible)")
    assert float(np.asarray(err_panel.images[0].get_array()).max()) == 0.0  # the exact flow has no error
    plt.close(fig)
    with pytest.raises(ValueError, match="flow_est"):
        R.plot_flow_estimate(clip, clip.flow[:2], clip.visibility, "t")
    with pytest.raises(ValueError, match="visibility_est"):
        R.plot_flow_estimate(clip, clip.flow, clip.visibility[:, :4], "t")


def test_vae_sweep_plot_draws_longer_runs_dashed_in_their_variant_colour():
    import matplotlib.pyplot as plt

    curve = [{"minutes": 1.0, "all psnr": 15.0}, {"minutes": 2.0, "all psnr": 17.0}]
    sweep = {"variants": {"a": {"curve": curve}, "b": {"curve": curve}}, "runs at once": 2}
    longer = {"steps": 2000, "variants": {"b": {"curve": curve + [{"minutes": 5.0, "all psnr": 20.0}]}}}
    fig = R.plot_vae_sweep(sweep, longer=longer)
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["a", "b", "b, 2,000 steps", "goal 25 dB"]
    assert lines[2].get_linestyle() == "--" and lines[2].get_color() == lines[1].get_color() != lines[0].get_color()
    assert list(lines[2].get_ydata()) == [15.0, 17.0, 20.0]
    plt.close(fig)
