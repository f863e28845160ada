"""Tests of the drag demo's ipywidgets front end (remoco.widgets.DragDemo & co.).

The widget's mouse handlers are called directly with canvas (CSS pixel) coordinates, as ipycanvas
would call them; no browser is needed (the real-browser test is tests/browser/test_drag_demo.py).
The browser-free state is tested in tests/test_drag.py, the bench schema in tests/test_bench.py.
"""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from remoco import bench as B
from remoco import widgets as W
from remoco.drag import DEFAULT_MAGNIFICATION as M


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
        frames = np.stack([np.roll(ref, shift, axis=1) for shift in range(num_frames)])[None]
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
    ex = B.load_bench_example(out / "inputs.json")
    assert ex.seed == 7 and ex.num_frames == 8
    np.testing.assert_array_equal(ex.brush_mask, demo.state.brush_mask)
    assert (out / "video.mp4").stat().st_size > 0 and (out / "video.gif").stat().st_size > 0


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


def test_widget_animate_without_brush_is_an_error_unless_trajectory_blocks(demo, tmp_path):
    demo.mode.value = "trajectory"
    _drag(demo, [(160, 150), (220, 150)])
    demo.on_animate()
    assert demo.message_kind == "error" and "brush_mask" in demo.message_text
    assert demo.pipeline.calls == [] and demo.last_traceback is None
    img = np.zeros((64, 64, 3), np.uint8)
    d = W.DragDemo(image=img, pipeline=FakePipeline(), num_inference_steps=1, empty_brush="trajectory_blocks")
    d.mode.value = "trajectory"
    _drag(d, [(160, 150), (220, 150)])
    d.on_animate()
    assert d.message_kind in ("info", "warning") and d.last_traceback is None, d.message_text
    (call,) = d.pipeline.calls
    assert int(call["brush_mask"].sum()) == 8 * 8  # the dragged block is the motion region
    with pytest.raises(ValueError, match="empty_brush"):
        W.DragDemo(image=img, pipeline=FakePipeline(), empty_brush="nope")


def test_menu_offers_the_recorded_example_and_loads_it_whole(demo):
    label = next(iter(W.RECORDED_EXAMPLES))
    assert label in demo.picker.options
    ex = B.load_bench_example(W.RECORDED_EXAMPLES[label])
    demo.picker.value = label
    assert np.array_equal(demo.image, ex.image)
    assert np.array_equal(demo.state.brush_mask, ex.brush_mask)
    assert demo.state.num_trajectories == len(ex.drawn_trajectories or ex.trajectories)
    assert (demo.k.value, demo.seed.value) == (ex.k, ex.seed)
    loaded = demo.current_example()
    assert np.allclose(loaded.drawn_trajectories[0], (ex.drawn_trajectories or ex.trajectories)[0])
    demo.on_animate()  # the recorded drawing animates as it is
    assert demo.last_frames is not None and demo.message_kind != "error"
    with pytest.raises(ValueError, match="example"):
        demo.load_example(42)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        demo.load_example("missing.json")
