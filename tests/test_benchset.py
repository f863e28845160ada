"""Tests of remoco.benchset: the bench folder schema, the toy ReMoCo-Bench (data/bench/) and its ground truth, the
seed ranges, and the DragBench / MC-Bench converters on fixture folders."""

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from remoco import benchset as S
from remoco import data
from remoco.conditions import motion_mask
from remoco.config import PRESETS, preset_config
from remoco.user_conditions import resample_polyline

ROOT = Path(__file__).resolve().parent.parent / "data" / "bench"


@pytest.fixture(scope="module")
def committed():
    return {s: S.load_bench(ROOT / s) for s in S.SETS}


def _files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _start_pixel(t):
    return int(math.floor(t[0, 1] + 0.5)), int(math.floor(t[0, 0] + 0.5))


# ------------------------------------------------------------------------------------------- schema, determinism
def test_schema_round_trip(tmp_path):
    b = S.build_toy_bench(tmp_path / "a", "fine", n=3, seed=5)
    idx = json.loads((tmp_path / "a" / "index.json").read_text())
    assert idx["schema"] == S.BENCHSET_SCHEMA and idx["set"] == "fine" and len(idx["entries"]) == 3
    assert sorted(p.name for p in (tmp_path / "a" / "0000").iterdir()) == ["example.json", "image.png", "mask.png",
                                                                            "truth.json"]
    assert json.loads((tmp_path / "a" / "0000" / "example.json").read_text())["schema"] == "remoco-bench/1"
    S.save_bench(b, tmp_path / "b")  # what load_bench read, written again, is the same folder byte for byte
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    back = S.load_bench(tmp_path / "b")
    assert [e.name for e in back] == ["0000", "0001", "0002"] and back["0001"].truth == b[1].truth
    np.testing.assert_array_equal(back[2].example.brush_mask, b[2].example.brush_mask)


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    S.build_toy_bench(tmp_path / "a", "object", n=4, seed=1)
    S.build_toy_bench(tmp_path / "b", "object", n=4, seed=1)
    S.build_toy_bench(tmp_path / "c", "object", n=4, seed=2)
    a, c = _files(tmp_path / "a"), _files(tmp_path / "c")
    assert a == _files(tmp_path / "b")
    assert a["0000/image.png"] != c["0000/image.png"]


def test_committed_bench_matches_regeneration(committed, tmp_path):
    # load_bench has checked every committed file against its sha256 in index.json; the first entries of each set
    # must come out of build_toy_bench byte for byte (entry i does not depend on n)
    for s, bench in committed.items():
        assert len(bench) >= 100 and bench.build["n"] == len(bench)
        S.build_toy_bench(tmp_path / s, s, n=3, seed=bench.build["seed"])
        new, old = _files(tmp_path / s), _files(ROOT / s)
        for name in ("0000", "0001", "0002"):
            for f in ("example.json", "image.png", "mask.png", "truth.json"):
                assert new[f"{name}/{f}"] == old[f"{name}/{f}"], f"data/bench/{s}/{name}/{f} is not regenerated"
    assert (ROOT / "README.md").is_file()


# --------------------------------------------------------------------------------------------------------- seeds
def test_bench_seeds_are_disjoint_from_training_and_evaluation_seeds(committed):
    seeds = [e.truth["generator"]["seed"] for b in committed.values() for e in b]
    assert len(set(seeds)) == len(seeds)
    assert all(S.BENCH_SEED_BASE <= s < 2**53 for s in seeds)
    # the training rule (data.clip_seed) stays below the range for every data_seed and index < 2**32 ...
    assert data.clip_seed(2**32 - 1, 2**32 - 1) < S.BENCH_SEED_BASE
    # ... so a data_seed that gives a bench seed (with an index < 2**32) is >= 2**32
    for s in seeds:
        assert math.ceil((s - (2**32 - 1)) / 1_000_003) >= 2**32
    # directly: every preset's training clips (data_seed 0) and the condition-ablation clips (data_seed 777), and
    # evaluate.py's held-out 12345 + i / 20000 + i
    train = {data.clip_seed(d, i) for d in (0, 777) for p in PRESETS if p != "paper"
             for i in range(preset_config(p, "controller").num_clips)}
    held_out = {b + i for b in (12345, 20000) for i in range(10_000)}
    assert not (set(seeds) & (train | held_out))
    with pytest.raises(ValueError, match="seed"):
        S.bench_seed(-1, "fine", 0)
    with pytest.raises(ValueError, match="index"):
        S.bench_seed(0, "fine", 2**16)


# ----------------------------------------------------------------------------------------------- the committed sets
def test_every_trajectory_starts_in_its_brush_and_stays_inside(committed):
    for bench in committed.values():
        for e in bench:
            ex = e.example
            for t in ex.trajectories:
                assert t.shape == (ex.num_frames, 2)
                assert ((t >= -0.5) & (t < np.array([ex.width, ex.height]) - 0.5)).all(), e.name
                assert ex.brush_mask[_start_pixel(t)], f"{bench.name} {e.name}: the start is not brushed"


def test_ground_truth_track_matches_the_regenerated_clip(committed):
    picks = [committed["fine"][i] for i in (0, 1, 3)] + [committed["object"][i] for i in (0, 3)]
    assert {e.kind for e in picks} == {"part", "photo-part", "object", "camera"}
    for e in picks:
        clip = S.ground_truth_clip(e.truth)
        np.testing.assert_array_equal(clip.video[0].numpy(), e.example.image)  # the reference image is frame 1
        track = np.asarray(e.truth["tracks"][0])
        x, y = track[0].astype(int)
        np.testing.assert_allclose(track, track[0] + clip.flow[:, y, x].double().numpy(), atol=1e-3)  # Eq. 4
        assert clip.visibility[:, y, x].all() and all(e.truth["visible"][0])
        owner = clip.meta["owner"].numpy()
        assert clip.meta["layers"][owner[y, x]] == e.truth["moving_layer"]
        # the brush: the moving layer's frame-1 pixels, or (camera entries) the motion mask of the true flow
        brush = (motion_mask(clip.flow, 1.0)[0, :, :, 0].numpy() if e.truth["brush"] == "motion_mask"
                 else owner == clip.meta["layers"].index(e.truth["moving_layer"]))
        np.testing.assert_array_equal(e.example.brush_mask, brush)
        # the drawn path is the true path; trajectories are its constant-speed samples
        np.testing.assert_allclose(e.example.drawn_trajectories[0], track, atol=1e-4)
        if e.truth["camera"]:
            bx, by = e.truth["camera"]["background_pixel"]
            np.testing.assert_allclose(e.truth["camera"]["displacement"], clip.flow[:, by, bx].numpy(), atol=1e-3)


def test_fine_and_object_sets_differ_in_what_moves(committed):
    fine, obj = committed["fine"], committed["object"]
    assert {e.kind for e in fine} == {"part", "photo-part"} and {e.kind for e in obj} == {"object", "camera"}
    for e in fine:  # a part moving on (relative to) the object or photograph it belongs to
        assert e.truth["moving_layer"] in ("object0.part", "region") and e.truth["brush"] == "layer"
        assert e.truth["parent"]["layer"] in ("object0", "background")
        glued, track = np.asarray(e.truth["parent"]["track"]), np.asarray(e.truth["tracks"][0])
        assert np.linalg.norm(track - glued, axis=1).max() >= 1.5
    for e in obj:  # a whole object, not attached to anything
        assert e.truth["parent"] is None and e.truth["moving_layer"].startswith("object")
        assert not e.truth["moving_layer"].endswith(".part")
    area = lambda b: np.median([e.example.brush_mask.sum() for e in b if not e.camera])
    assert area(fine) < area(obj) / 2


def test_camera_entries_are_flagged(committed):
    obj = committed["object"]
    cams = [e for e in obj if e.camera]
    assert 0.15 <= len(cams) / len(obj) <= 0.4
    for e in obj:
        assert e.camera == (e.truth["generator"]["kind"] == "camera") == (e.truth["camera"] is not None)
    for e in cams:  # the camera moved, and the brush (motion mask of the true flow) covers the moving background
        assert np.linalg.norm(np.asarray(e.truth["camera"]["displacement"]), axis=1).max() >= 1.0
        assert e.truth["brush"] == "motion_mask" and e.example.brush_mask.mean() > 0.5
    assert not any(e.camera for e in committed["fine"])


# --------------------------------------------------------------------------------------------------- bad input
def test_malformed_benches_raise_naming_the_file_and_field(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder"):
        S.load_bench(tmp_path / "nope")
    good = tmp_path / "good"
    S.build_toy_bench(good, "object", n=2)

    def broken(edit):
        d = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        shutil.copytree(good, d)
        edit(d)
        return d

    def edit_json(rel, fn):
        def run(d):
            obj = json.loads((d / rel).read_text())
            fn(obj)
            (d / rel).write_text(json.dumps(obj))
        return run

    with pytest.raises(FileNotFoundError, match="index.json"):
        S.load_bench(broken(lambda d: (d / "index.json").unlink()))
    with pytest.raises(ValueError, match="index.json.*not valid JSON"):
        S.load_bench(broken(lambda d: (d / "index.json").write_text("{")))
    with pytest.raises(ValueError, match="'schema'"):
        S.load_bench(broken(edit_json("index.json", lambda o: o.update(schema="x/1"))))
    with pytest.raises(ValueError, match="'entries'"):
        S.load_bench(broken(edit_json("index.json", lambda o: o.pop("entries"))))
    with pytest.raises(ValueError, match=r"entries\[1\].*'example'"):
        S.load_bench(broken(edit_json("index.json", lambda o: o["entries"][1].pop("example"))))
    with pytest.raises(ValueError, match=r"entries\[0\].*'camera'"):
        S.load_bench(broken(edit_json("index.json", lambda o: o["entries"][0].update(camera="yes"))))
    with pytest.raises(ValueError, match="image.png.*sha256"):
        S.load_bench(broken(lambda d: (d / "0000" / "image.png").write_bytes(b"x")))
    with pytest.raises(FileNotFoundError, match="mask.png"):
        S.load_bench(broken(lambda d: (d / "0001" / "mask.png").unlink()), verify=False)
    with pytest.raises(ValueError, match="example.json.*'k'"):
        S.load_bench(broken(edit_json("0000/example.json", lambda o: o.pop("k"))), verify=False)
    with pytest.raises(ValueError, match=r"truth.json.*'tracks'.*\(1, 8, 2\)"):
        S.load_bench(broken(edit_json("0001/truth.json", lambda o: o["tracks"][0].pop())), verify=False)
    with pytest.raises(ValueError, match="truth.json.*'generator'"):
        S.load_bench(broken(edit_json("0000/truth.json", lambda o: o.pop("generator"))), verify=False)
    with pytest.raises(ValueError, match="'camera'"):
        S.load_bench(broken(edit_json("index.json", lambda o: o["entries"][0].update(camera=True))), verify=False)


def test_bad_arguments_raise_naming_them(tmp_path):
    with pytest.raises(ValueError, match="set"):
        S.build_toy_bench(tmp_path / "x", "camera", n=1)
    with pytest.raises(ValueError, match="n:"):
        S.build_toy_bench(tmp_path / "x", "fine", n=0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="out.*overwrite"):
        S.build_toy_bench(tmp_path / "busy", "fine", n=1)
    with pytest.raises(ValueError, match="not a bench folder"):
        S.build_toy_bench(tmp_path / "busy", "fine", n=1, overwrite=True)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="generator 'function'"):
        S.ground_truth_clip({"generator": {"function": "os.system"}})


# ---------------------------------------------------------------------------------------------------- converters
def _png(path: Path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path)


def _dragbench(root: Path, name: str, points, size=(96, 128), mask_box=(20, 60, 30, 90), mask=True):
    d = root / name
    h, w = size
    _png(d / "original_image.png", (np.random.default_rng(0).random((h, w, 3)) * 255))
    if mask:
        m = np.zeros((h, w), np.uint8)
        y0, y1, x0, x1 = mask_box
        m[y0:y1, x0:x1] = 255
        _png(d / "mask.png", m)
    (d / "drag_instruction.json").write_text(json.dumps({"prompt": "a photo", "points": points}))
    return d


def test_convert_dragbench(tmp_path):
    src = tmp_path / "drag_bench_data"
    _dragbench(src, "animals/s1", [[40, 30], [70, 50], [60, 40], [60, 20]])  # flat: two handle -> target pairs
    _dragbench(src, "art_work/s2", [[[40, 30], [60, 30]]], size=(64, 64), mask_box=(0, 0, 0, 0))  # nested, empty
    b = S.convert_dragbench(src, tmp_path / "out", height=48, width=48, num_frames=5, fit="stretch")
    assert [e.name for e in b] == ["animals__s1", "art_work__s2"] and b.set == "dragbench" and b[0].truth is None
    e = b["animals__s1"]
    ex = e.example
    assert ex.image.shape == (48, 48, 3) and len(ex.trajectories) == 2 and ex.num_frames == 5
    src_map = ex.source
    assert src_map["original_size"] == [96, 128] and src_map["fit"] == "stretch" and src_map["prompt"] == "a photo"
    sy, sx = src_map["scale"]
    handle = np.array([(40 + 0.5) * sx - 0.5, (30 + 0.5) * sy - 0.5])
    target = np.array([(70 + 0.5) * sx - 0.5, (50 + 0.5) * sy - 0.5])
    np.testing.assert_allclose(ex.trajectories[0], np.linspace(handle, target, 5), atol=1e-4)  # straight, uniform
    assert e.extra["start_in_brush"] == [True, True] and e.extra["source_name"] == "animals/s1"
    assert b["art_work__s2"].extra["start_in_brush"] == [False] and not b["art_work__s2"].example.brush_mask.any()
    # crop (the default): a 96 x 128 image covers 48 x 48 at scale 0.5, x offset 8: a handle at x = 4 is cut off
    _dragbench(src, "animals/s3", [[4, 30], [70, 50]])
    with pytest.raises(ValueError, match=r"s3/drag_instruction.json: points pair\[0\] \(at the model size, fit='crop"):
        S.convert_dragbench(src, tmp_path / "crop", height=48, width=48)
    b = S.convert_dragbench(src, tmp_path / "crop", height=48, width=48, on_error="skip")
    assert len(b) == 2 and b.skipped[0]["sample"] == "animals/s3" and "outside" in b.skipped[0]["error"]


@pytest.mark.parametrize("points, match", [
    ([[40, 30], [70, 50], [60, 40]], "even number"),
    ([[40, 30], [40, 30]], "points that move"),
    ([[40, 30], [700, 50]], r"points pair\[0\]: the point \(700.0, 50.0\) is outside"),
    ([["a", 1], [2, 3]], "finite"),
])
def test_convert_dragbench_rejects_bad_points(tmp_path, points, match):
    _dragbench(tmp_path / "src", "cat/s", points)
    with pytest.raises(ValueError, match=match) as info:
        S.convert_dragbench(tmp_path / "src", tmp_path / "out", fit="stretch")
    assert re.search(r"cat/s/drag_instruction.json: points", str(info.value)), str(info.value)


def test_convert_dragbench_missing_files(tmp_path):
    _dragbench(tmp_path / "src", "cat/s", [[1, 1], [5, 5]], mask=False)
    with pytest.raises(FileNotFoundError, match="mask.png"):
        S.convert_dragbench(tmp_path / "src", tmp_path / "out")
    pkl = tmp_path / "pkl" / "cat" / "s"
    pkl.mkdir(parents=True)
    (pkl / "meta_data.pkl").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="meta_data.pkl, which is not read"):
        S.convert_dragbench(tmp_path / "pkl", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="src"):
        S.convert_dragbench(tmp_path / "none", tmp_path / "out")
    with pytest.raises(ValueError, match="fit"):
        S.convert_dragbench(tmp_path / "src", tmp_path / "out", fit="pad")


def _mcbench(root: Path, category: str, name: str, tracks, size=(80, 128), meta="meta_data.json"):
    d = root / category / name
    h, w = size
    _png(d / "first_frame.png", np.random.default_rng(1).random((h, w, 3)) * 255)
    m = np.zeros((h, w, 3), np.uint8)
    m[10:70, 40:100] = 255  # MotionPro's brush: an RGB PNG, brushed where a channel is non-zero
    _png(d / "first_frame_mask.png", m)
    _png(d / "user_drag.png", np.zeros((h, w, 3)))
    (d / meta).write_text(json.dumps({"traj_key_points": tracks}))


def test_convert_mcbench(tmp_path):
    src = tmp_path / "MC-Bench"
    _mcbench(src, "Fine_grained_control", "a_01", [[[60, 40], [64, 36], [70, 30]]])
    _mcbench(src, "object_control", "b_02", [[[50, 20], [80, 20]], [[90, 60], [90, 40], [70, 40]]],
             meta="meta_data_new.json")
    b = S.convert_mcbench(src, tmp_path / "out", height=40, width=64, num_frames=6)
    assert b.set == "mixed" and [(e.name, e.set) for e in b] == [("Fine_grained_control__a_01", "fine"),
                                                                   ("object_control__b_02", "object")]
    ex = b["object_control__b_02"].example
    assert ex.source["meta_data"] == "meta_data_new.json" and ex.source["category"] == "object_control"
    # 80 x 128 -> 40 x 64 is a plain half-size resize with "crop" (no crop needed): key points map to (p + .5)/2 - .5
    np.testing.assert_allclose(ex.drawn_trajectories[1], (np.array([[90, 60], [90, 40], [70, 40]]) + 0.5) / 2 - 0.5)
    assert ex.brush_mask[5:35, 20:50].all() and ex.brush_mask.sum() == 30 * 30
    # constant speed along straight segments between the key points (arc length; MotionPro: PCHIP), 6 frames
    np.testing.assert_allclose(ex.trajectories[1], resample_polyline(ex.drawn_trajectories[1], 6).numpy(), atol=1e-4)
    np.testing.assert_allclose(ex.trajectories[1], [[44.75, 29.75], [44.75, 25.75], [44.75, 21.75], [42.75, 19.75],
                                                    [38.75, 19.75], [34.75, 19.75]], atol=1e-4)
    fine = S.convert_mcbench(src, tmp_path / "fine", height=40, width=64, category="Fine_grained_control")
    assert fine.set == "fine" and len(fine) == 1 and fine[0].extra["source_name"] == "a_01"
    assert fine[0].example.source["category"] == "Fine_grained_control"


def test_convert_mcbench_rejects_bad_samples(tmp_path):
    src = tmp_path / "MC-Bench"
    _mcbench(src, "object_control", "one", [[[50, 20]]])
    with pytest.raises(ValueError, match=r"meta_data.json: traj_key_points\[0\] has a single key point"):
        S.convert_mcbench(src, tmp_path / "out")
    shutil.rmtree(src)
    _mcbench(src, "object_control", "none", [])
    with pytest.raises(ValueError, match="'traj_key_points' holds no trajectory"):
        S.convert_mcbench(src, tmp_path / "out")
    (src / "object_control" / "none" / "meta_data.json").write_text(json.dumps({"tracks": []}))
    with pytest.raises(ValueError, match="lacks the field 'traj_key_points'"):
        S.convert_mcbench(src, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="category"):
        S.convert_mcbench(src, tmp_path / "out", category="Fine_grained_control")


def test_cli_bench_check_and_toy(tmp_path, capsys):
    from remoco.cli import main

    assert main(["bench", "check", str(ROOT / "object")]) == 0
    assert "100 entries (25 with camera motion)" in capsys.readouterr().out
    assert main(["bench", "toy", "--set", "fine", "--n", "2", "--out", str(tmp_path / "t")]) == 0
    assert S.load_bench(tmp_path / "t").build["n"] == 2
