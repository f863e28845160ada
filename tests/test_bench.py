"""Tests of remoco.bench: the bench schema (remoco-bench/1) round trip, bad files, run_bench_example."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from remoco import bench as B
from remoco.drag import DragState


def _example(num_frames=8):
    img = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    s = DragState(64, 64)
    s.add_brush_stroke([[30, 30]], 8)
    s.add_trajectory([[30, 30], [40, 35]])
    return B.BenchExample(img, s.brush_mask, s.trajectories(num_frames), k=8, num_frames=num_frames, seed=3,
                          num_inference_steps=2, drawn_trajectories=s.drawn_trajectories)


def test_bench_roundtrip(tmp_path):
    ex = _example()
    path = B.save_bench_example(ex, tmp_path, "demo")
    d = json.loads(path.read_text())
    assert d["schema"] == B.BENCH_SCHEMA and d["image"] == "demo_image.png" and d["brush_mask"] == "demo_mask.png"
    assert {"height", "width", "trajectories", "k", "num_frames", "seed"} <= set(d)
    back = B.load_bench_example(path)
    np.testing.assert_array_equal(back.image, ex.image)
    np.testing.assert_array_equal(back.brush_mask, ex.brush_mask)
    np.testing.assert_allclose(back.trajectories, ex.trajectories, atol=1e-4)
    assert (back.k, back.num_frames, back.seed) == (8, 8, 3)
    np.testing.assert_array_equal(back.state().brush_mask, ex.brush_mask)


def test_bench_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        B.load_bench_example(tmp_path / "missing.json")
    path = B.save_bench_example(_example(), tmp_path, "demo")
    d = json.loads(path.read_text())
    d["trajectories"] = [[[1, 1], [2, 2]]]  # wrong number of points for num_frames=8
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"trajectories\[0\]"):
        B.load_bench_example(path)
    d["trajectories"] = [(np.array(t) + [0.5, 0]).tolist() for t in json.loads(B.dumps_bench_json(
        B.bench_json(_example())))["trajectories"]]  # no longer the resampling of the drawn polyline
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"drawn_trajectories\[0\]"):
        B.load_bench_example(path)
    del d["k"]
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="k"):
        B.load_bench_example(path)
    (tmp_path / "demo_mask.png").unlink()
    d["k"] = 8
    path.write_text(json.dumps(d))
    with pytest.raises(FileNotFoundError, match="demo_mask.png"):
        B.load_bench_example(path)


class _RecordingPipeline:
    def __init__(self):
        self.calls = []

    def __call__(self, image, **kw):
        self.calls.append(kw)
        ref = np.asarray(image, dtype=np.float32) / 255
        return SimpleNamespace(frames=np.stack([ref] * kw["num_frames"])[None])


def test_run_bench_example_passes_the_inputs_and_returns_uint8():
    ex, pipe = _example(), _RecordingPipeline()
    frames = B.run_bench_example(pipe, ex)
    assert frames.shape == (8, 64, 64, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[0], ex.image)
    (kw,) = pipe.calls
    assert torch.equal(kw["brush_mask"], torch.from_numpy(ex.brush_mask)) and kw["k"] == 8
    assert kw["generator"].initial_seed() == 3


def test_run_bench_example_empty_brush():
    ex, pipe = _example(), _RecordingPipeline()
    ex.brush_mask = np.zeros_like(ex.brush_mask)
    with pytest.raises(ValueError, match="brush_mask"):
        B.run_bench_example(pipe, ex)  # the paper: a drag without a brushed region is an error
    assert pipe.calls == []
    B.run_bench_example(pipe, ex, empty_brush="trajectory_blocks")  # MotionPro: the dragged block moves
    block = np.zeros((64, 64), bool)
    block[26:34, 26:34] = True  # 8x8 block around the start pixel (row 30, col 30)
    np.testing.assert_array_equal(pipe.calls[-1]["brush_mask"].numpy(), block)
    with pytest.raises(ValueError, match="empty_brush"):
        B.run_bench_example(pipe, ex, empty_brush="blocks")


def test_trajectory_fill_field_roundtrip_and_default(tmp_path):
    ex = _example()
    d = B.bench_json(ex)
    assert "trajectory_fill" not in d  # the paper's default is not written: older files stay byte-identical
    ex.trajectory_fill = "brush"
    back = B.load_bench_example(B.save_bench_example(ex, tmp_path, "fill"))
    assert back.trajectory_fill == "brush"
    pipe = _RecordingPipeline()
    B.run_bench_example(pipe, back)
    assert pipe.calls[-1]["trajectory_fill"] == "brush"  # the example's own field
    B.run_bench_example(pipe, back, trajectory_fill="block")
    assert pipe.calls[-1]["trajectory_fill"] == "block"  # the argument wins
    with pytest.raises(ValueError, match="trajectory_fill"):
        B.run_bench_example(pipe, back, trajectory_fill="region")
    back.trajectory_fill = "everywhere"
    with pytest.raises(ValueError, match="trajectory_fill"):
        back.validate()


def test_example_summary_rows():
    from remoco.bench import load_bench_example

    ex = load_bench_example(B.__file__.replace("remoco/bench.py", "data/demo/example.json"))
    rows = dict(ex.summary())
    assert rows["image (H × W)"] == f"{ex.height} × {ex.width} px, RGB"
    assert rows["brush mask"].startswith(f"{int(ex.brush_mask.sum()):,} of ")
    t = ex.trajectories[0]
    assert rows["trajectory 1"].startswith(f"{len(t)} points") and f"({t[0][0]:g}, {t[0][1]:g})" in rows["trajectory 1"]
    assert rows["k, frames"] == f"{ex.k}, {ex.num_frames}"


def test_example_condition_matches_what_run_bench_example_sends():
    from remoco.bench import example_condition, load_bench_example

    ex = load_bench_example(B.__file__.replace("remoco/bench.py", "data/demo/example.json"))
    cond = example_condition(ex)
    assert set(cond) == {"trajectories", "brush_mask", "k", "trajectory_fill"}
    assert cond["k"] == ex.k and cond["trajectory_fill"] == ex.trajectory_fill
    assert torch.equal(cond["brush_mask"], torch.from_numpy(np.asarray(ex.brush_mask, bool)))
    assert example_condition(ex, trajectory_fill="block")["trajectory_fill"] == "block"
    with pytest.raises(ValueError, match="empty_brush"):
        example_condition(ex, empty_brush="maybe")
    with pytest.raises(ValueError, match="trajectory_fill"):
        example_condition(ex, trajectory_fill="everywhere")
