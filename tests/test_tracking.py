"""Tests of remoco.tracking: the one MD-Vid (distance, no-motion ceiling, normalised score), its trackers, the
known-answer videos and the validation that decides which tracker may be used."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from remoco import tracking as T

torch.set_num_threads(1)
L = 8


def _scene(seed=0, H=64, W=64):
    """A smooth background with a textured 14 x 14 object; its mask and a drawn path (20 px right, 6 down)."""
    import cv2

    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur((rng.random((H, W, 3)) * 120 + 60).astype(np.uint8), (0, 0), 6)
    img = bg.copy()
    tex = cv2.GaussianBlur((rng.random((14, 14, 3)) * 255).astype(np.uint8), (3, 3), 0)
    img[20:34, 12:26] = tex
    region = np.zeros((H, W), bool)
    region[20:34, 12:26] = True
    path = np.array([[19.0, 27.0], [29.0, 30.0], [39.0, 33.0]])  # a polyline, resampled to L frames
    return img, region, path


def test_known_path_video_moves_the_region_as_asked():
    img, region, path = _scene()
    target = T.target_positions(path, L, 64, 64)
    assert np.allclose(target[0], path[0]) and np.allclose(target[-1], path[-1])
    v = T.known_path_video(img, region, path, L, speed=1.0)
    assert v.shape == (L, 64, 64, 3) and v.dtype == np.uint8
    assert np.array_equal(v[0][region], img[region])  # frame 1 is the image where the region is
    dx, dy = np.round(target[-1] - target[0]).astype(int)
    assert np.abs(v[-1][20 + dy:34 + dy, 12 + dx:26 + dx].astype(int) - img[20:34, 12:26]).mean() < 12
    frozen = T.known_path_video(img, region, path, L, speed=0.0)
    assert all(np.array_equal(f, frozen[0]) for f in frozen)


@pytest.mark.parametrize("tracker", ["flow", "ncc"])
def test_motion_distance_ladder_on_known_answers(tracker):
    img, region, path = _scene(1)
    scores = {s: T.motion_distance(T.known_path_video(img, region, path, L, speed=s), path, tracker=tracker)
              for s in (1.0, 0.5, 0.0, -1.0)}
    ceiling = scores[0.0].ceiling
    target = T.target_positions(path, L, 64, 64)
    assert ceiling == pytest.approx(np.linalg.norm(target[1:] - target[0], axis=1).mean())
    # a frozen video: the ceiling (exactly for flow; NCC's sub-pixel peak of an asymmetric patch is off by < 0.1 px)
    assert scores[0.0].value == pytest.approx(ceiling, abs=1e-6 if tracker == "flow" else 0.1)
    for s, md in scores.items():  # a perfect tracker: |1 - s| x the ceiling, normalised score 1 - |1 - s|
        assert md.normalised == pytest.approx(1 - abs(1 - s), abs=0.1), (s, md.normalised)
    assert scores[1.0].value < scores[0.5].value < scores[0.0].value < scores[-1.0].value


def test_an_unvalidated_tracker_fails_the_validation():
    img, region, path = _scene(2)
    # a flat, textureless object: LK of a 5 x 5 block inside it cannot see it move (aperture problem)
    flat = img.copy()
    flat[region] = (200, 40, 40)
    entries = [dict(name="flat", image=flat, region=region, trajectory=path)]
    cases = {k: T.KNOWN_CASES[k] for k in ("along the path", "half speed", "frozen first frame", "wrong way")}
    rows = T.validate_motion_distance(entries, {"lk": dict(tracker="lk"), "flow": dict(tracker="flow")}, cases)
    assert {r["case"] for r in rows} == set(cases) and len(rows) == 2 * len(cases)
    summary = {s["tracker"]: s for s in T.validation_summary(rows)}
    assert summary["lk"]["passes"] is False and summary["lk"]["largest |mean - expected|"] > 0.3
    frozen = [r for r in rows if r["case"] == "frozen first frame"]
    assert all(r["normalised"] == pytest.approx(0.0, abs=1e-9) for r in frozen)


def test_validation_summary_rule():
    rows = []
    for entry in ("a", "b"):
        for case, got in (("along the path", 0.95), ("half speed", 0.52), ("frozen first frame", 0.0),
                          ("wrong way", -0.97)):
            ceiling = 4.0
            exp = {"along the path": 1.0, "half speed": 0.5, "frozen first frame": 0.0, "wrong way": -1.0}[case]
            rows.append(dict(entry=entry, case=case, tracker="good", md=(1 - got) * ceiling, ceiling=ceiling,
                             normalised=got, expected=exp))
            rows.append(dict(entry=entry, case=case, tracker="lazy", md=(1 - 0.2 * exp) * ceiling, ceiling=ceiling,
                             normalised=0.2 * exp, expected=exp))
    s = {r["tracker"]: r for r in T.validation_summary(rows)}
    assert s["good"]["ladder holds (share of entries)"] == 1.0 and s["good"]["largest |mean - expected|"] < 0.06
    # the appearance ladder's cases are absent: its share is undefined and the tracker cannot pass
    assert np.isnan(s["good"]["ladder holds, appearance changing"]) and s["good"]["passes"] is False
    assert s["lazy"]["largest |mean - expected|"] == pytest.approx(0.8)


def test_block_and_timing():
    img, region, path = _scene(3)
    v = T.known_path_video(img, region, path, L, speed=1.0)
    per_frame = T.target_positions(path, L, 64, 64)
    a = T.motion_distance(v, per_frame, timing="frames")
    b = T.motion_distance(v, path)  # the polyline resampled by arc length: the same positions
    assert a.value == pytest.approx(b.value, abs=1e-9)
    assert "5x5 block" in a.label and "8x8 block" in T.motion_distance(v, path, block=8).label
    with pytest.raises(ValueError, match="one point per frame"):
        T.motion_distance(v, path, timing="frames")


def test_bad_input_is_named():
    img, region, path = _scene()
    v = T.known_path_video(img, region, path, L)
    with pytest.raises(ValueError, match="video must be"):
        T.motion_distance(v[..., 0], path)
    with pytest.raises(ValueError, match="at least 2 frame"):
        T.motion_distance(v[:1], path)
    with pytest.raises(ValueError, match="dtype"):
        T.motion_distance(v.astype(np.int32), path)
    with pytest.raises(ValueError, match="start inside"):
        T.motion_distance(v, [[-3.0, 5.0], [10.0, 10.0]])
    with pytest.raises(ValueError, match="does not move"):
        T.motion_distance(v, [[5.0, 5.0], [5.0, 5.0]])
    with pytest.raises(ValueError, match="tracker"):
        T.motion_distance(v, path, tracker="raft")
    with pytest.raises(ValueError, match="block"):
        T.motion_distance(v, path, block=0)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        T.motion_distance(v, path, tracker="cotracker")
    with pytest.raises(ValueError, match="region"):
        T.known_path_video(img, region[:10], path, L)
    with pytest.raises(ValueError, match="colour"):
        T.known_path_video(img, region, path, L, colour=2.0)


def test_a_flow_already_estimated_is_used_not_estimated_again(monkeypatch):
    from remoco import flow as F

    img, region, path = _scene(4)
    v = T.known_path_video(img, region, path, L, speed=0.5)
    est, _ = F.estimate_flow(torch.from_numpy(v))
    fresh = T.motion_distance(v, path)
    calls = []
    monkeypatch.setattr(F, "estimate_flow", lambda *a, **k: calls.append(1))
    given = T.motion_distance(v, path, flow=est)
    assert calls == [] and given.value == fresh.value
    with pytest.raises(ValueError, match="flow must be"):
        T.motion_distance(v, path, flow=est[:, :10])
    with pytest.raises(ValueError, match="flow must be"):
        T.motion_distance(v, path, tracker="ncc", flow=est)


# ------------------------------------------------------------------------------------------ appearance match
def _textured_object_video(shift=(9.0, -6.0), angle_deg=20.0, L=4, size=64, seed=3):
    """A textured disc on a textured background; by the last frame it has moved by ``shift`` and turned by
    ``angle_deg`` (rendered by warping frame 1's object). Returns (video (L, H, W, 3) uint8, frame-1 mask)."""
    import cv2

    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur((rng.random((size, size, 3)) * 255).astype(np.float32), (0, 0), 4)
    bg = ((bg - bg.mean()) * 3 + 110).clip(0, 255)
    tex = cv2.GaussianBlur((rng.random((size, size, 3)) * 255).astype(np.float32), (0, 0), 1.5)
    tex = ((tex - tex.mean()) * 4 + 150).clip(0, 255)
    yy, xx = np.mgrid[:size, :size]
    mask = (xx - 28) ** 2 + (yy - 32) ** 2 <= 10 ** 2
    frames = []
    for t in np.linspace(0, 1, L):
        warp = cv2.getRotationMatrix2D((28.0, 32.0), angle_deg * t, 1.0)
        warp[:, 2] += np.asarray(shift) * t
        obj = cv2.warpAffine(tex, warp, (size, size), flags=cv2.INTER_LINEAR)
        m = cv2.warpAffine(mask.astype(np.float32), warp, (size, size), flags=cv2.INTER_LINEAR)[..., None]
        frames.append((bg * (1 - m) + obj * m).round().astype(np.uint8))
    return np.stack(frames), mask


def test_appearance_match_finds_a_moved_and_turned_object():
    video, mask = _textured_object_video(shift=(9.0, -6.0), angle_deg=20.0)
    m = T.appearance_match(video, mask)
    assert m.shift == pytest.approx((9.0, -6.0), abs=1.01)
    assert abs(m.angle - np.radians(20.0)) <= 0.1  # the nearest angle of the search grid
    assert m.score > 0.9 and m.found(0.7, 0.05)
    assert m.distractor < m.score
    assert m.distance == pytest.approx(np.hypot(9.0, -6.0), abs=1.5)


def test_appearance_match_does_not_follow_a_still_object_that_changes_colour():
    """Where flow credits motion, appearance does not: the object stays, its pixels turn into colour noise."""
    import cv2

    from remoco import evaluate

    video, mask = _textured_object_video(shift=(0.0, 0.0), angle_deg=0.0)
    rng = np.random.default_rng(0)
    for t in range(1, len(video)):
        noise = cv2.GaussianBlur((rng.random(video.shape[1:]) * 255).astype(np.float32), (0, 0), 2)
        video[t][mask] = ((noise - noise.mean()) * 5 + 128).clip(0, 255).astype(np.uint8)[mask]
    m = T.appearance_match(video, mask)
    assert not m.found(0.7, 0.05)
    assert evaluate.object_appearance_displacement(video, mask) == 0.0
    assert evaluate.object_displacement(video, torch.from_numpy(mask)) > 0.5  # what the flow metric credits
    frozen = np.repeat(video[:1], 4, axis=0)
    still = T.appearance_match(frozen, mask)
    assert still.shift == (0.0, 0.0) and still.score == pytest.approx(1.0, abs=1e-4)
    assert evaluate.object_appearance_motion(frozen, mask) == (0.0, True)  # found, and still
    assert evaluate.object_appearance_motion(video, mask) == (0.0, False)  # not found


def test_appearance_match_rejects_bad_input():
    video, mask = _textured_object_video()
    with pytest.raises(ValueError, match="region"):
        T.appearance_match(video, mask[:-1])
    with pytest.raises(ValueError, match="region"):
        T.appearance_match(video, np.zeros_like(mask))
    with pytest.raises(ValueError, match="region"):
        T.appearance_match(video, mask.astype(np.uint8))
    with pytest.raises(ValueError, match="frame"):
        T.appearance_match(video, mask, frame=4)
    with pytest.raises(ValueError, match="max_shift"):
        T.appearance_match(video, mask, max_shift=0)
    with pytest.raises(ValueError, match="video"):
        T.appearance_match(video[:1], mask)


def test_appearance_match_does_not_take_a_lookalike_in_the_background_for_the_object():
    """The scene holds a copy of the object 20 px to its right; the object itself turns grey. The copy matches the
    object's template perfectly, but it did so in frame 1 already (the distractor score), so it is not found."""
    video, mask = _textured_object_video(shift=(0.0, 0.0), angle_deg=0.0)
    ys, xs = np.nonzero(mask)
    for t in range(len(video)):
        video[t][ys, xs + 20] = video[0][ys, xs]  # the look-alike, in every frame
    video[1:, mask] = 128
    m = T.appearance_match(video, mask)
    assert m.shift == pytest.approx((20.0, 0.0), abs=0.5) and m.score > 0.99  # the best match is the copy ...
    assert m.distractor > 0.99 and not m.found(0.7, 0.05)  # ... which frame 1 already held
    assert m.found(0.7, -0.01)  # (without the margin, rounding alone could credit the copy)
    moved = video.copy()
    moved[-1] = np.roll(video[0], 6, axis=0)  # the whole scene, object and copy, moved 6 px down
    assert T.appearance_match(moved, mask).shift == pytest.approx((0.0, 6.0), abs=0.5)
