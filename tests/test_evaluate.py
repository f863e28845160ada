"""Tests of remoco.evaluate: tracking and the distance to the drawn path on videos with known motion, the
drawn trajectory of a synthetic clip, and the condition ablation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from remoco import config, tracking
from remoco import evaluate as T
from remoco import pipeline as pipeline_mod

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------ metric
def _moving_square_video(L=8, H=64, W=64, start=(20.0, 24.0), vel=(2.0, 1.0), seed=0):
    """A textured 16x16 square translating by `vel` px per frame over a smooth background."""
    rng = np.random.default_rng(seed)
    tex = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    import cv2

    tex = cv2.GaussianBlur(tex, (3, 3), 0)
    frames = []
    for i in range(L):
        f = np.full((H, W, 3), 90, np.uint8)
        x0, y0 = int(round(start[0] + vel[0] * i)), int(round(start[1] + vel[1] * i))
        f[y0:y0 + 16, x0:x0 + 16] = tex
        frames.append(f)
    return np.stack(frames)


@pytest.mark.parametrize("tracker", ["flow", "lk"])
def test_trajectory_distance_on_known_motion(tracker):
    v = _moving_square_video()
    p0 = np.array([28.0, 32.0])  # inside the square
    true = p0 + np.arange(8)[:, None] * np.array([2.0, 1.0])
    d, track = T.trajectory_distance(v, true, tracker=tracker)
    assert d < 0.5
    assert np.abs(track - true).max() < 1.0
    # a drawn trajectory going the other way: the distance is the gap between the two paths
    wrong = p0 - np.arange(8)[:, None] * np.array([2.0, 1.0])
    d_wrong, _ = T.trajectory_distance(v, wrong, tracker=tracker)
    expected = np.mean(np.linalg.norm(true[1:] - wrong[1:], axis=1))
    assert abs(d_wrong - expected) < 0.5
    # a still video: the distance equals the drawn path's mean displacement
    still = np.repeat(v[:1], 8, 0)
    d_still, _ = T.trajectory_distance(still, true, tracker=tracker)
    assert abs(d_still - np.mean(np.linalg.norm(true[1:] - p0, axis=1))) < 0.5


def test_trajectory_distance_bad_input():
    v = _moving_square_video()
    with pytest.raises(ValueError, match="video"):
        tracking.track_points(v[..., 0], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="tracker"):
        T.trajectory_distance(v, [[1.0, 2.0], [3.0, 4.0]], tracker="cotracker")
    H, W = v.shape[1:3]
    for start in ([-3.0, 5.0], [5.0, H + 2.0], [W - 0.5, 5.0]):  # outside the frame: an error, never clipped
        with pytest.raises(ValueError, match="trajectory must start inside"):
            T.trajectory_distance(v, [start, [10.0, 10.0]])


def test_object_trajectory_follows_ground_truth():
    from remoco import data

    clip = data.make_clip(4242, kind="object")
    traj, brush = T.object_trajectory(clip)
    x, y = int(traj[0][0]), int(traj[0][1])
    assert brush[y, x] and brush.dtype == torch.bool
    assert np.allclose(traj - traj[0], clip.flow[:, y, x].numpy(), atol=1e-5)
    # the ground-truth clip follows its own trajectory (tracker error floor, a few tenths of a pixel)
    d, _ = T.trajectory_distance(clip.video, traj)
    assert d < 1.5, d


# ------------------------------------------------------------------------------------------ condition ablation
def test_condition_ablation_zero_init_controller_ignores_condition_then_a_trained_one_does_not():
    """A fresh controller (zero-initialised modulation, LoRA B = 0) is the base model: the four settings give
    the same loss. With non-zero controller weights the condition changes the loss."""
    from remoco import models

    torch.manual_seed(0)
    pipe = pipeline_mod.build_toy_remoco_pipeline(seed=0)
    cfg = config.preset_config("toy-cpu", "controller", num_frames=4)
    r = T.condition_ablation(pipe, cfg, num_clips=2, draws=1, seed=3)
    assert set(T.ABLATION_CONDITIONS) <= set(r)
    vals = [r[n] for n in T.ABLATION_CONDITIONS]
    assert all(np.isfinite(vals)) and max(vals) - min(vals) < 1e-6 * max(vals)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in pipe.controller.named_parameters():
            if p.ndim > 1:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    r2 = T.condition_ablation(pipe, cfg, num_clips=2, draws=1, seed=3)
    assert abs(r2["full condition"] - r2["no condition"]) > 1e-4 * r2["no condition"]
    assert r2["per_sample"]["full condition"].shape == (2,)
    with pytest.raises(ValueError, match="num_clips"):
        T.condition_ablation(pipe, cfg, num_clips=0)
    with pytest.raises(ValueError, match="controller"):
        T.condition_ablation(models.build_toy_components(0)["unet"], cfg)


def test_motion_bucket_from_flow_known_values():
    from remoco.objective import motion_bucket_from_flow

    flow = torch.zeros(4, 8, 8, 2)
    flow[1:, ..., 0] = 3.0
    flow[1:, ..., 1] = 4.0  # |f| = 5 px on frames 2-4, 0 on frame 1: mean 3.75
    assert motion_bucket_from_flow(flow, scale=40.0) == 150.0
    assert motion_bucket_from_flow(flow * 10, scale=40.0) == 255.0  # SVD's range ends at 255
    assert motion_bucket_from_flow(torch.zeros(4, 8, 8, 2)) == 0.0
    with pytest.raises(ValueError, match="flow"):
        motion_bucket_from_flow(torch.zeros(8, 8, 2))


def test_object_displacement_of_a_moving_square():
    v = _moving_square_video()  # the square moves (2, 1) px per frame: sqrt(5) * 7 by frame 8
    region = torch.zeros(v.shape[1:3], dtype=torch.bool)
    region[27:37, 23:33] = True  # inside the square (x 20-35, y 24-39) in frame 1
    d = T.object_displacement(v, region)
    assert abs(d - 7 * 5 ** 0.5) < 1.0, d
    assert T.object_displacement(np.repeat(v[:1], 8, 0), region) < 0.2
    with pytest.raises(ValueError, match="region"):
        T.object_displacement(v, torch.zeros(3, 3, dtype=torch.bool))


def test_ablation_by_sigma_buckets_samples():
    per = {n: np.array([1.0, 2.0, 3.0, 4.0]) for n in T.ABLATION_CONDITIONS}
    per["trajectory only"] = np.array([1.0, 2.0, 1.5, 2.0])  # helps only at high sigma
    rows = T.ablation_by_sigma({"sigma": np.array([0.1, 0.5, 7.0, 10.0]), "per_sample": per},
                               edges=(0.0, 0.7, 6.0, float("inf")))
    assert [r["samples"] for r in rows] == [2, 0, 2]
    assert rows[0]["trajectory only vs none (%)"] == 0.0
    assert rows[2]["trajectory only vs none (%)"] == pytest.approx(100 * (1.75 / 3.5 - 1))
    assert rows[2]["trajectory only lower (%)"] == 100.0
    assert np.isnan(rows[1]["full condition"])
    with pytest.raises(ValueError, match="edges"):
        T.ablation_by_sigma({"sigma": np.zeros(1), "per_sample": per}, edges=(1.0, 0.5))


def test_following_table_ratio_closer_and_errors():
    d = {"base": [4.0, 6.0, 8.0, 10.0], "ctrl": [2.0, 7.0, 4.0, 3.0], "videos": {}}
    rows = T.following_table(d, "base", {"base": "toy SVD", "ctrl": "ReMoCo"})
    assert [r["system"] for r in rows] == ["toy SVD", "ReMoCo"]
    r = rows[1]
    assert r["mean distance (px)"] == pytest.approx(4.0)
    assert r["ratio to base"] == pytest.approx(4.0 / 7.0)
    assert r["closer than base (%)"] == pytest.approx(75.0)
    assert r["standard error"] == pytest.approx(np.std([2, 7, 4, 3], ddof=1) / 2)
    assert rows[0]["closer than base (%)"] == 0.0
    with pytest.raises(ValueError, match="reference"):
        T.following_table(d, "nope")
    with pytest.raises(ValueError, match="clips"):
        T.following_table({"base": [1.0, 2.0], "ctrl": [1.0]}, "base")


def test_motion_metric_check_known_answers():
    res = T.motion_metric_check(num_clips=3)
    assert set(res) == {"real clip", "frozen frame", "object flickers", "object recolours"}
    assert all(len(v) == 3 for v in res.values())
    assert max(res["frozen frame"]) < 0.05  # a still video: no motion
    real = float(np.mean(res["real clip"]))
    assert real > 3.0
    # the still, recoloured objects: what the metric credits them with, below the real motion
    for name in ("object flickers", "object recolours"):
        assert 0.0 <= float(np.mean(res[name])) < real


def test_motion_check_rows_side_by_side():
    checks = {"flow": {"real clip": [10.0, 20.0], "frozen frame": [0.0, 0.0], "base": [3.0, 6.0]},
              "look": {"real clip": [8.0, 12.0], "frozen frame": [0.0, 0.0], "base": [0.0, 2.0]}}
    rows = T.motion_check_rows(checks)
    assert [r["video"] for r in rows] == ["real clip", "frozen frame", "base"]
    assert rows[2]["flow (px)"] == 4.5 and rows[2]["flow (% of the real clip)"] == 30.0
    assert rows[2]["look (px)"] == 1.0 and rows[2]["look (% of the real clip)"] == 10.0
    with pytest.raises(ValueError, match="must hold 'real clip' and 'frozen frame'"):
        T.motion_check_rows({"flow": checks["flow"], "look": {"real clip": [1.0]}})
    with pytest.raises(ValueError, match="at least one"):
        T.motion_check_rows({})


def test_appearance_metric_credits_no_motion_to_recoloured_objects():
    """The same known answers through the appearance metric: the real objects' motion is found (their shifts
    agree with the flow metric's where found) and the still, recoloured objects get none; the flow metric gives
    them some (the reason the appearance metric exists)."""
    flow = T.motion_metric_check(num_clips=4)
    app = T.motion_metric_check(num_clips=4, metric=T.object_appearance_motion)
    assert max(app["frozen frame"]) == 0.0
    found = np.asarray(app["found"]["real clip"])
    assert found.sum() >= 3 and all(np.asarray(app["real clip"])[~found] == 0.0)
    assert not any(app["found"]["object flickers"]) and not any(app["found"]["object recolours"])
    assert "found" not in flow  # a metric of px only
    assert np.asarray(app["real clip"])[found] == pytest.approx(np.asarray(flow["real clip"])[found], abs=4.0)
    for name in ("object flickers", "object recolours"):
        assert max(app[name]) == 0.0 < min(flow[name])
    with pytest.raises(ValueError, match="min_score"):
        T.object_appearance_displacement(np.zeros((2, 64, 64, 3), np.uint8), np.ones((64, 64), bool), min_score=2)


def test_base_motion_check_puts_each_base_beside_the_known_answers(monkeypatch):
    """The base's own rows come from generated_motion on the same clips; the flow result passed in is reused (not
    sampled again), the appearance one is sampled with the appearance metric and brings its found flags."""
    calls = []

    def fake_generated_motion(pipelines, num_clips, seed, num_inference_steps, metric):
        calls.append(metric)
        return {"data": [9.0, 9.0], "toy": [2.0, 0.0], "found": {"data": [True, True], "toy": [True, False]}}

    monkeypatch.setattr(T, "generated_motion", fake_generated_motion)
    flow = {"data": [9.0, 9.0], "toy": [5.0, 3.0]}
    checks = T.base_motion_check({"toy": object()}, num_clips=2, seed=30000, flow=flow)
    assert calls == [T.object_appearance_motion]
    assert checks["flow"]["toy (its own motion)"] == [5.0, 3.0] and "found" not in checks["flow"]
    assert checks["appearance"]["toy (its own motion)"] == [2.0, 0.0]
    assert checks["appearance"]["found"]["toy (its own motion)"] == [True, False]
    rows = {r["video"]: r for r in T.motion_check_rows(checks)}
    assert rows["toy (its own motion)"]["appearance: object found (%)"] == 50.0
    assert "flow: object found (%)" not in rows["real clip"]
    f = T.motion_check_figures(list(rows.values()), num_clips=2)
    assert f["check_base"] == f"{100 * 4.0 / np.mean(checks['flow']['real clip']):.0f}"
    assert f["check_found"] == str(sum(checks["appearance"]["found"]["real clip"]))
    assert f["check_recolour_look"] == "0" and f["look_min_score"] == "0.7"
    with pytest.raises(ValueError, match="flow must hold"):
        T.base_motion_check({"other": object()}, num_clips=2, flow=flow)
    with pytest.raises(ValueError, match="num_clips=3"):
        T.base_motion_check({"toy": object()}, num_clips=3, flow=flow)
    with pytest.raises(ValueError, match="rows must be"):
        T.motion_check_figures(list(rows.values())[:2], num_clips=2)


def test_appearance_following_asks_whether_the_object_arrives():
    """A square dragged along the drawn path arrives; the same square left where it was is found but not at the
    drag's end; one that stays and turns to noise is not found at all (a flow tracker would still follow its
    pixels somewhere)."""
    moving = _moving_square_video()
    still = np.repeat(moving[:1], 8, axis=0)
    noise = still.copy()
    noise[-1, 24:40, 20:36] = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    brush = np.zeros((64, 64), bool)
    brush[24:40, 20:36] = True
    path = np.array([28.0, 32.0]) + np.arange(8)[:, None] * np.array([2.0, 1.0])  # 14 px right, 7 down
    res = T.appearance_following({"moving": [moving], "still": [still], "noise": [noise]}, [path], [brush])
    assert res["moving"]["found"] == [True] and res["moving"]["error"][0] < 1.0 and res["moving"]["at end"] == [True]
    assert res["still"]["found"] == [True] and res["still"]["at end"] == [False]
    assert res["still"]["error"][0] == pytest.approx(np.hypot(14.0, 7.0), abs=1.0)  # it stayed at the start
    assert res["noise"]["found"] == [False] and np.isnan(res["noise"]["error"][0])
    rows = {r["system"]: r for r in T.appearance_following_table(res, "still")}
    assert rows["moving"]["found at the drag's end (%)"] == 100.0 and rows["still"]["object found (%)"] == 100.0
    assert rows["noise"]["distance to the drag's end, found (px)"] is None
    assert rows["still"]["at the end vs still (points)"] == "reference"
    assert rows["moving"]["at the end vs still (points)"] == "+100 (one clip: no interval)"
    with pytest.raises(ValueError, match="holds 2 videos"):
        T.appearance_following({"moving": [moving, moving]}, [path], [brush])
    with pytest.raises(ValueError, match="at_end"):
        T.appearance_following({"moving": [moving]}, [path], [brush], at_end=0)
    with pytest.raises(ValueError, match="reference"):
        T.appearance_following_table(res, "nope")


def test_appearance_following_table_pairs_clips_with_the_reference():
    res = {"base": {"found": [True] * 4, "error": [9.0, 9.0, 1.0, 9.0], "at end": [False, False, True, False]},
           "ctrl": {"found": [True] * 4, "error": [1.0, 2.0, 1.0, 9.0], "at end": [True, True, True, False]}}
    rows = {r["system"]: r for r in T.appearance_following_table(res, "base", {"ctrl": "controller"})}
    assert list(rows) == ["controller"]
    same = {"base": res["base"], "copy": dict(res["base"])}
    assert T.appearance_following_table(same, "base")[1]["at the end vs base (points)"] == "+0 (no clip differs)"
    # paired differences 100, 100, 0, 0 points: mean +50
    assert rows["controller"]["at the end vs base (points)"].startswith("+50 [")
    assert rows["controller"]["distance to the drag's end, found (px)"] == pytest.approx(13 / 4)


def test_following_clips_are_the_clips_trajectory_following_draws_on():
    """:func:`following_clips` names the test clips of :func:`trajectory_following` (what a benchmark reads each
    clip's photographs from): consecutive seeds from ``seed``, of the asked kind, and the very clips whose object
    paths the evaluation draws."""
    clips = T.following_clips(3, seed=321, kind="object")
    assert [c.meta["seed"] for c in clips] == [321, 322, 323] and {c.kind for c in clips} == {"object"}
    assert all(c.meta["photographs"] for c in clips)
    res = T.trajectory_following({}, num_clips=3, seed=321)
    for clip, drawn in zip(clips, res["trajectories"]):
        np.testing.assert_array_equal(drawn, T.object_trajectory(clip)[0])
    assert T.following_clips(2, seed=322)[0].meta["seed"] == 322
