"""Tests of the drag demo's state (remoco.widgets.DragState & co.) and of the widget's handlers.

The widget's mouse handlers are called directly with canvas (CSS pixel) coordinates, as ipycanvas
would call them; no browser is needed (the real-browser test is tests/browser/test_drag_demo.py).
"""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from remoco import widgets as W

M = W.DEFAULT_MAGNIFICATION


# ------------------------------------------------------------------ coordinates
def test_canvas_model_mapping_roundtrip_and_pixel_centres():
    mp = W.CoordinateMapping.for_resize_crop((64, 64), (64, 64), magnification=6)
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
    img, mp = W.prepare_reference_image(orig, 64, 64)
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
        W.prepare_reference_image(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="image"):
        W.prepare_reference_image(b"not an image")
    with pytest.raises(FileNotFoundError, match="image"):
        W.prepare_reference_image("/nonexistent/x.png")


# ------------------------------------------------------------------ resampling / painting
def test_resample_straight_line_is_uniform():
    out = W.resample_polyline([[0, 0], [3, 0], [7, 0]], 8)
    np.testing.assert_allclose(out[:, 0], np.linspace(0, 7, 8))
    np.testing.assert_allclose(out[:, 1], 0)


def test_resample_l_shape_equal_arc_length():
    pts = [[0, 0], [10, 0], [10, 5]]  # total length 15
    out = W.resample_polyline(pts, 4)  # arc lengths 0, 5, 10, 15
    np.testing.assert_allclose(out, [[0, 0], [5, 0], [10, 0], [10, 5]], atol=1e-9)
    out = W.resample_polyline(pts, 7)  # spacing 2.5: the 5th point (s=10) is the corner
    np.testing.assert_allclose(out[4], [10, 0], atol=1e-9)
    np.testing.assert_allclose(out[5], [10, 2.5], atol=1e-9)


def test_resample_rejects_single_click():
    with pytest.raises(ValueError, match="single click"):
        W.resample_polyline([[3, 3], [3, 3], [3, 3]], 8)
    with pytest.raises(ValueError, match="num_points"):
        W.resample_polyline([[0, 0], [1, 1]], 1)


def test_paint_disk_counts_lattice_points_and_keeps_input():
    mask = np.zeros((32, 32), bool)
    out = W.paint_stroke(mask, [[15.0, 16.0]], radius=4.0)
    expected = sum((x - 15) ** 2 + (y - 16) ** 2 <= 16 for x in range(32) for y in range(32))
    assert out.sum() == expected
    assert mask.sum() == 0  # input untouched
    erased = W.paint_stroke(out, [[15.0, 16.0]], radius=2.0, value=False)
    assert erased.sum() == expected - sum((x - 15) ** 2 + (y - 16) ** 2 <= 4 for x in range(32) for y in range(32))


def test_paint_segment_is_a_capsule_and_off_image_part_is_dropped():
    out = W.paint_stroke(np.zeros((20, 20), bool), [[2, 10], [17, 10]], radius=1.0)
    # rows 9..11 between x=2 and x=17, plus the round caps (x=1 and x=18 on row 10)
    assert out[10, 1:19].all() and out[9, 2:18].all() and out[11, 2:18].all()
    assert out.sum() == 3 * 16 + 2
    edge = W.paint_stroke(np.zeros((20, 20), bool), [[-1.0, 5.0]], radius=2.0)
    assert edge.sum() == sum((x + 1) ** 2 + (y - 5) ** 2 <= 4 for x in range(20) for y in range(20))


# ------------------------------------------------------------------ DragState
def test_state_undo_is_exact_and_clear_is_undoable():
    s = W.DragState(32, 32)
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
    s = W.DragState(32, 32)
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
    s = W.DragState(64, 64)
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
    s = W.DragState(32, 32)
    s.add_brush_stroke([[10, 10], [12, 14]], 2.5)
    s.add_brush_stroke([[11, 12]], 1, erase=True)
    s.add_trajectory([[10, 10], [20, 15], [25, 25]])
    s2 = W.DragState.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(s2.brush_mask, s.brush_mask)
    np.testing.assert_allclose(s2.trajectories(8), s.trajectories(8))


def test_state_from_mask_is_pixel_exact():
    rng = np.random.default_rng(1)
    mask = rng.random((16, 16)) < 0.3
    np.testing.assert_array_equal(W.DragState.from_mask(mask).brush_mask, mask)


# ------------------------------------------------------------------ bench schema
def _example(num_frames=8):
    img = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    s = W.DragState(64, 64)
    s.add_brush_stroke([[30, 30]], 8)
    s.add_trajectory([[30, 30], [40, 35]])
    return W.BenchExample(img, s.brush_mask, s.trajectories(num_frames), k=8, num_frames=num_frames, seed=3,
                          num_inference_steps=2, drawn_trajectories=s.drawn_trajectories)


def test_bench_roundtrip(tmp_path):
    ex = _example()
    path = W.save_bench_example(ex, tmp_path, "demo")
    d = json.loads(path.read_text())
    assert d["schema"] == W.BENCH_SCHEMA and d["image"] == "demo_image.png" and d["brush_mask"] == "demo_mask.png"
    assert {"height", "width", "trajectories", "k", "num_frames", "seed"} <= set(d)
    back = W.load_bench_example(path)
    np.testing.assert_array_equal(back.image, ex.image)
    np.testing.assert_array_equal(back.brush_mask, ex.brush_mask)
    np.testing.assert_allclose(back.trajectories, ex.trajectories, atol=1e-4)
    assert (back.k, back.num_frames, back.seed) == (8, 8, 3)
    np.testing.assert_array_equal(back.state().brush_mask, ex.brush_mask)


def test_bench_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        W.load_bench_example(tmp_path / "missing.json")
    path = W.save_bench_example(_example(), tmp_path, "demo")
    d = json.loads(path.read_text())
    d["trajectories"] = [[[1, 1], [2, 2]]]  # wrong number of points for num_frames=8
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"trajectories\[0\]"):
        W.load_bench_example(path)
    d["trajectories"] = [(np.array(t) + [0.5, 0]).tolist() for t in json.loads(W._dump_json(
        W.bench_json(_example())))["trajectories"]]  # no longer the resampling of the drawn polyline
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"drawn_trajectories\[0\]"):
        W.load_bench_example(path)
    del d["k"]
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="k"):
        W.load_bench_example(path)
    (tmp_path / "demo_mask.png").unlink()
    d["k"] = 8
    path.write_text(json.dumps(d))
    with pytest.raises(FileNotFoundError, match="demo_mask.png"):
        W.load_bench_example(path)


# ------------------------------------------------------------------ the widget (fake mouse events)
class FakePipeline:
    """Records the call; returns a clip whose frame l is the reference image shifted by l pixels."""

    def __init__(self):
        self.calls = []

    def __call__(self, image, trajectories=None, brush_mask=None, k=8, height=64, width=64, num_frames=8,
                 num_inference_steps=2, generator=None, output_type="np", callback_on_step_end=None):
        self.calls.append(dict(trajectories=trajectories, brush_mask=brush_mask, k=k, num_frames=num_frames,
                               steps=num_inference_steps, seed=generator.initial_seed()))
        for i in range(num_inference_steps):
            if callback_on_step_end is not None:
                callback_on_step_end(self, i, 0, {})
        ref = np.asarray(image, dtype=np.float32) / 255
        frames = np.stack([np.roll(ref, l, axis=1) for l in range(num_frames)])[None]
        return SimpleNamespace(frames=frames)


@pytest.fixture
def demo(tmp_path):
    img = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (64, 1, 3))
    d = W.DragDemo(image=img, pipeline=FakePipeline(), state_file=tmp_path / "state.json",
                   output_dir=str(tmp_path / "out"), num_inference_steps=3)
    return d


def _drag(demo, pts):
    demo.on_mouse_down(*pts[0])
    for p in pts[1:-1]:
        demo.on_mouse_move(*p)
    demo.on_mouse_up(*pts[-1])


def test_widget_brush_and_trajectory_with_fake_mouse(demo, tmp_path):
    assert demo.canvas.width == 64 * M
    demo.mode.value = "brush"
    demo.radius.value = 4
    _drag(demo, [(120, 120), (150, 125), (180, 130)])
    mask = demo.state.brush_mask
    # canvas (150, 125) -> model (24.5, 20.33): painted; far corner not
    assert mask[20, 24] and not mask[60, 60]
    assert demo.message_kind == "info"
    demo.mode.value = "trajectory"
    _drag(demo, [(150, 123), (200, 123), (260, 153)])
    (traj,) = demo.state.drawn_trajectories
    np.testing.assert_allclose(traj[0], [150 / M - 0.5, 123 / M - 0.5])
    np.testing.assert_allclose(traj[-1], [260 / M - 0.5, 153 / M - 0.5])
    saved = json.loads((tmp_path / "state.json").read_text())
    np.testing.assert_allclose(saved["state"]["drawn_trajectories"][0], traj, atol=1e-4)
    assert saved["state"]["brush_pixels"] == int(mask.sum())


def test_widget_bad_input_shows_message_not_traceback(demo):
    demo.mode.value = "trajectory"
    demo.on_mouse_down(100, 100)
    demo.on_mouse_up(100, 100)  # a single click
    assert demo.message_kind == "error" and "single click" in demo.message_text
    assert demo.state.num_trajectories == 0
    # a trajectory that leaves the canvas (mouse out while drawing)
    demo.on_mouse_down(100, 100)
    demo.on_mouse_move(300, 100)
    demo.on_mouse_out(390, 100)
    assert demo.message_kind == "error" and "left the image" in demo.message_text
    assert demo.state.num_trajectories == 0
    # a move event reported outside the canvas
    demo.on_mouse_down(100, 100)
    demo.on_mouse_move(400, 100)
    assert demo.message_kind == "error" and "outside" in demo.message_text
    demo.on_mouse_up(410, 100)  # no stroke any more: ignored
    assert demo.state.num_trajectories == 0
    # animate without a trajectory
    demo.on_animate()
    assert demo.message_kind == "error" and "at least one trajectory" in demo.message_text
    assert demo.pipeline.calls == []
    # a broken upload
    demo._on_upload({"new": ({"name": "x.png", "content": memoryview(b"garbage")},)})
    assert demo.message_kind == "error" and "image" in demo.message_text
    # nothing to undo
    demo.on_undo()
    assert "Nothing to undo" in demo.message_text
    assert demo.last_traceback is None


def test_widget_undo_clear_buttons(demo):
    demo.mode.value = "brush"
    _drag(demo, [(60, 60), (90, 60)])
    m1 = demo.state.brush_mask
    demo.mode.value = "erase"
    _drag(demo, [(60, 60), (61, 60)])
    assert demo.state.brush_mask.sum() < m1.sum()
    demo.on_undo()
    np.testing.assert_array_equal(demo.state.brush_mask, m1)
    demo.on_clear()
    assert demo.state.brush_mask.sum() == 0
    demo.on_undo()
    np.testing.assert_array_equal(demo.state.brush_mask, m1)


def test_widget_animate_and_save(demo, tmp_path):
    demo.mode.value = "brush"
    _drag(demo, [(150, 150), (170, 150)])
    demo.mode.value = "trajectory"
    _drag(demo, [(160, 150), (220, 150), (250, 200)])
    demo.seed.value = 7
    demo.on_animate()
    assert demo.message_kind == "info", demo.message_text
    (call,) = demo.pipeline.calls
    assert call["seed"] == 7 and call["k"] == 8 and call["steps"] == 3
    # the drawn polyline goes to the pipeline (which resamples it to the frames, Sec. 3.4)
    (sent,) = call["trajectories"]
    np.testing.assert_allclose(sent.numpy(), [[160 / M - 0.5, 150 / M - 0.5], [220 / M - 0.5, 150 / M - 0.5],
                                              [250 / M - 0.5, 200 / M - 0.5]], atol=1e-9)
    assert torch.equal(call["brush_mask"], torch.from_numpy(demo.state.brush_mask))
    assert demo.progress.value == demo.progress.max == 3
    assert "<video" in demo.video.value and len(demo.last_frame.value) > 100
    for name in ("video.mp4", "video.gif", "inputs.json", "image.png", "mask.png"):
        assert f'download="{name}"' in demo.downloads.value
    assert json.loads((tmp_path / "state.json").read_text())["video_frames_shape"] == [8, 64, 64, 3]
    demo.on_save()
    out = tmp_path / "out"
    ex = W.load_bench_example(out / "inputs.json")
    assert ex.seed == 7 and ex.num_frames == 8
    np.testing.assert_array_equal(ex.brush_mask, demo.state.brush_mask)
    assert (out / "video.mp4").stat().st_size > 0 and (out / "video.gif").stat().st_size > 0


def test_render_inputs_marks_mask_and_block():
    img = np.full((64, 64, 3), 128, np.uint8)
    s = W.DragState(64, 64)
    s.add_brush_stroke([[10, 10]], 3)
    s.add_trajectory([[40, 40], [50, 40]])
    rt, mm = s.conditions(8, 8)
    pic = W.render_inputs(img, s.brush_mask, s.drawn_trajectories, M, rt, mm, 8)
    assert pic.shape == (384, 384, 3)
    # brushed pixel (10, 10) tinted blue, unbrushed far pixel unchanged
    c = pic[10 * M + 3, 10 * M + 3]
    assert c[2] > c[0] + 30
    assert tuple(pic[60 * M + 3, 5 * M + 3]) == (128, 128, 128)
    # the k x k block around (40, 40) starts at column 36: its outline is drawn at canvas x = 36*M
    assert tuple(pic[38 * M, 36 * M]) != (128, 128, 128)


def test_widget_upload_valid_png_resets_and_maps(demo):
    import io

    from PIL import Image

    demo.state.add_trajectory([[10, 10], [20, 20]])
    buf = io.BytesIO()
    Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(buf, format="PNG")
    demo._on_upload({"new": ({"name": "wide.png", "content": memoryview(buf.getvalue())},)})
    assert demo.message_kind == "info", demo.message_text
    assert demo.mapping.original_size == (100, 200) and demo.image.shape == (64, 64, 3)
    assert demo.state.num_trajectories == 0 and demo.image_name == "wide.png"
    # the model's centre pixel maps back to the original's centre
    np.testing.assert_allclose(demo.mapping.model_to_original([31.5, 31.5]), [99.5, 49.5])


def test_load_demo_pipeline_fallback(monkeypatch):
    import remoco.pipeline
    import remoco.shipped

    sentinel = object()

    def broken():
        raise FileNotFoundError("no checkpoints here")

    monkeypatch.setattr(remoco.shipped, "load_shipped_pipeline", broken, raising=False)
    monkeypatch.setattr(remoco.pipeline, "build_toy_remoco_pipeline", lambda seed=0: sentinel)
    pipe, note = W.load_demo_pipeline()
    assert pipe is sentinel and "UNTRAINED" in note and "no checkpoints here" in note
    shipped = object()
    monkeypatch.setattr(remoco.shipped, "load_shipped_pipeline", lambda: shipped, raising=False)
    assert W.load_demo_pipeline() == (shipped, "")


def test_launch_demo_returns_a_widget():
    fake = FakePipeline()
    d = W.launch_demo(image=np.zeros((32, 48, 3), np.uint8), pipeline=fake, display=False)
    assert isinstance(d, W.DragDemo) and d.pipeline is fake and d.mapping.original_size == (32, 48)
