"""Tests of remoco.drag: coordinates, image preparation, brush painting and DragState (no browser)."""

import json

import numpy as np
import pytest
import torch

from remoco import drag as D
from remoco import user_conditions as UC


def _resample(points, num_frames):
    """The rule DragState.trajectories uses: remoco.user_conditions.resample_polyline for a drawn trajectory."""
    return UC.resample_polyline(points, num_frames, require_motion=True).numpy()


def test_canvas_model_mapping_roundtrip_and_pixel_centres():
    mp = D.CoordinateMapping.for_resize_crop((64, 64), (64, 64), magnification=6)
    # the canvas point in the middle of the 6x6 block of model pixel (row 3, col 5) is (x=5, y=3)
    np.testing.assert_allclose(mp.canvas_to_model([5 * 6 + 3, 3 * 6 + 3]), [5, 3])
    # canvas edge -> pixel edge -0.5
    np.testing.assert_allclose(mp.canvas_to_model([0, 0]), [-0.5, -0.5])
    np.testing.assert_allclose(mp.canvas_to_model([384, 384]), [63.5, 63.5])
    pts = np.random.default_rng(0).uniform(0, 384, size=(50, 2))
    np.testing.assert_allclose(mp.model_to_canvas(mp.canvas_to_model(pts)), pts)
    assert mp.canvas_size == (384, 384)


def test_original_to_model_matches_the_prepared_image():
    # a 128x256 original with a bright 4x4 square: after the cover-resize (x0.5) and centre crop
    # (32 px off the left) the square must land where original_to_model says
    orig = np.zeros((128, 256, 3), np.uint8)
    orig[40:44, 160:164] = 255
    img, mp = D.prepare_reference_image(orig, 64, 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert mp.scale == (0.5, 0.5) and mp.crop_offset == (0, 32)
    centre_orig = np.array([161.5, 41.5])  # (x, y) of the square's centre, pixel centres at integers
    expected = mp.original_to_model(centre_orig)
    lum = img.astype(float).sum(-1)
    ys, xs = np.mgrid[0:64, 0:64]
    centroid = np.array([(xs * lum).sum() / lum.sum(), (ys * lum).sum() / lum.sum()])
    np.testing.assert_allclose(centroid, expected, atol=0.25)
    np.testing.assert_allclose(expected, [(161.5 + 0.5) * 0.5 - 32 - 0.5, (41.5 + 0.5) * 0.5 - 0.5])
    np.testing.assert_allclose(mp.model_to_original(expected), centre_orig)


def test_prepare_reference_image_rejects_bad_input():
    with pytest.raises(ValueError, match="image"):
        D.prepare_reference_image(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="image"):
        D.prepare_reference_image(b"not an image")
    with pytest.raises(FileNotFoundError, match="image"):
        D.prepare_reference_image("/nonexistent/x.png")


def test_resample_straight_line_is_uniform():
    out = _resample([[0, 0], [3, 0], [7, 0]], 8)
    np.testing.assert_allclose(out[:, 0], np.linspace(0, 7, 8))
    np.testing.assert_allclose(out[:, 1], 0)


def test_resample_l_shape_equal_arc_length():
    pts = [[0, 0], [10, 0], [10, 5]]  # total length 15
    out = _resample(pts, 4)  # arc lengths 0, 5, 10, 15
    np.testing.assert_allclose(out, [[0, 0], [5, 0], [10, 0], [10, 5]], atol=1e-9)
    out = _resample(pts, 7)  # spacing 2.5: the 5th point (s=10) is the corner
    np.testing.assert_allclose(out[4], [10, 0], atol=1e-9)
    np.testing.assert_allclose(out[5], [10, 2.5], atol=1e-9)


def test_resample_rejects_single_click():
    with pytest.raises(ValueError, match="single click"):
        _resample([[3, 3], [3, 3], [3, 3]], 8)
    with pytest.raises(ValueError, match="num_frames"):
        _resample([[0, 0], [1, 1]], 1)


def test_paint_disk_counts_lattice_points_and_keeps_input():
    mask = np.zeros((32, 32), bool)
    out = D.paint_stroke(mask, [[15.0, 16.0]], radius=4.0)
    expected = sum((x - 15) ** 2 + (y - 16) ** 2 <= 16 for x in range(32) for y in range(32))
    assert out.sum() == expected
    assert mask.sum() == 0  # input untouched
    erased = D.paint_stroke(out, [[15.0, 16.0]], radius=2.0, value=False)
    assert erased.sum() == expected - sum((x - 15) ** 2 + (y - 16) ** 2 <= 4 for x in range(32) for y in range(32))


def test_paint_segment_is_a_capsule_and_off_image_part_is_dropped():
    out = D.paint_stroke(np.zeros((20, 20), bool), [[2, 10], [17, 10]], radius=1.0)
    # rows 9..11 between x=2 and x=17, plus the round caps (x=1 and x=18 on row 10)
    assert out[10, 1:19].all() and out[9, 2:18].all() and out[11, 2:18].all()
    assert out.sum() == 3 * 16 + 2
    edge = D.paint_stroke(np.zeros((20, 20), bool), [[-1.0, 5.0]], radius=2.0)
    assert edge.sum() == sum((x + 1) ** 2 + (y - 5) ** 2 <= 4 for x in range(20) for y in range(20))


def test_state_undo_is_exact_and_clear_is_undoable():
    s = D.DragState(32, 32)
    s.add_brush_stroke([[10, 10], [20, 10]], 3)
    m1 = s.brush_mask
    s.add_brush_stroke([[12, 10]], 2, erase=True)
    assert s.brush_mask.sum() < m1.sum()
    s.add_trajectory([[10, 10], [25, 20]])
    assert s.num_trajectories == 1
    assert s.undo() and s.num_trajectories == 0
    assert s.undo()
    np.testing.assert_array_equal(s.brush_mask, m1)
    s.clear()
    assert s.brush_mask.sum() == 0 and s.is_empty
    assert s.undo()
    np.testing.assert_array_equal(s.brush_mask, m1)
    assert s.undo() and not s.undo()  # empty history


def test_state_bad_strokes():
    s = D.DragState(32, 32)
    # a single click in trajectory mode: rejected, nothing committed
    s.begin_stroke("trajectory", 5, 5)
    with pytest.raises(ValueError, match="single click"):
        s.end_stroke(5, 5)
    assert s.num_trajectories == 0 and not s.in_stroke
    # too short
    with pytest.raises(ValueError, match="min_trajectory_length"):
        s.add_trajectory([[5, 5], [5.5, 5]])
    # a trajectory stroke leaving the image is discarded with a message naming the point
    s.begin_stroke("trajectory", 5, 5)
    s.extend_stroke(20, 5)
    with pytest.raises(ValueError, match="outside the 32x32 image"):
        s.extend_stroke(32.0, 5)
    assert not s.in_stroke and s.num_trajectories == 0
    with pytest.raises(ValueError, match="outside"):
        s.begin_stroke("trajectory", -1, 5)
    with pytest.raises(ValueError, match="finite"):
        s.begin_stroke("brush", float("nan"), 5, radius=2)
    with pytest.raises(ValueError, match="mode"):
        s.begin_stroke("spray", 5, 5, radius=2)
    with pytest.raises(ValueError, match="radius"):
        s.begin_stroke("brush", 5, 5, radius=0)
    with pytest.raises(ValueError, match="no stroke"):
        s.end_stroke()
    # a brush stroke may run off the edge; only in-image pixels are painted
    s.begin_stroke("brush", 30, 30, radius=2)
    s.extend_stroke(40, 30)
    assert s.end_stroke() == "brush"
    assert s.brush_mask[30, 31] and s.brush_mask.sum() > 0


def test_state_conditions_follow_sec_3_4():
    s = D.DragState(64, 64)
    s.add_brush_stroke([[20, 20]], 6)
    s.add_trajectory([[20, 20], [30, 20], [30, 26]])
    rt, mm = s.conditions(num_frames=8, k=8)
    assert rt.shape == (8, 64, 64, 2) and mm.shape == (8, 64, 64, 1)
    # motion mask = brush mask in every frame
    assert torch.equal(mm[:, :, :, 0], torch.from_numpy(s.brush_mask)[None].expand(8, -1, -1))
    # the k x k block around the start pixel (rows/cols 16..23) carries end - start in the last frame
    np.testing.assert_allclose(rt[-1, 16:24, 16:24].numpy(), np.broadcast_to([10, 6], (8, 8, 2)))
    assert rt[-1].abs().sum() == pytest.approx(64 * 16)
    assert torch.all(rt[0] == 0)


def test_state_dict_roundtrip():
    s = D.DragState(32, 32)
    s.add_brush_stroke([[10, 10], [12, 14]], 2.5)
    s.add_brush_stroke([[11, 12]], 1, erase=True)
    s.add_trajectory([[10, 10], [20, 15], [25, 25]])
    s2 = D.DragState.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(s2.brush_mask, s.brush_mask)
    np.testing.assert_allclose(s2.trajectories(8), s.trajectories(8))


def test_state_from_mask_is_pixel_exact():
    rng = np.random.default_rng(1)
    mask = rng.random((16, 16)) < 0.3
    np.testing.assert_array_equal(D.DragState.from_mask(mask).brush_mask, mask)


def test_state_conditions_empty_brush_error_or_trajectory_blocks():
    s = D.DragState(32, 32)
    s.add_trajectory([[10, 10], [20, 12]])
    with pytest.raises(ValueError, match="brush_mask"):
        s.conditions(num_frames=4, k=8)  # the paper: brush the motion region first
    rt, mm = s.conditions(num_frames=4, k=8, empty_brush="trajectory_blocks")  # MotionPro
    block = np.zeros((32, 32), bool)
    block[6:14, 6:14] = True  # the 8x8 block around the start pixel (row 10, col 10)
    np.testing.assert_array_equal(mm[:, :, :, 0].numpy(), np.broadcast_to(block, (4, 32, 32)))
    np.testing.assert_allclose(rt[-1, 6:14, 6:14].numpy(), np.broadcast_to([10, 2], (8, 8, 2)))
    with pytest.raises(ValueError, match="num_frames"):
        s.trajectories(1)  # one frame: no motion to follow


def test_check_points_inside_names_the_argument():
    np.testing.assert_array_equal(D.check_points_inside([[0, 0], [31.4, 3]], 32, 32), [[0, 0], [31.4, 3]])
    with pytest.raises(ValueError, match=r"trajectories\[2\].*outside the 32x16 image"):
        D.check_points_inside([[0, 0], [32.0, 3]], 16, 32, "trajectories[2]")
    with pytest.raises(ValueError, match="finite"):
        D.check_points_inside([[np.nan, 0]], 16, 32)
