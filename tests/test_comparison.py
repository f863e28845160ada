"""Tests of remoco.comparison: per-entry scores on videos whose answer is known, paired decisions on constructed
results, and clear errors for missing systems."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from remoco import comparison as C
from remoco import tracking
from remoco.bench import BenchExample

torch.set_num_threads(1)


def _example(seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur((rng.random((64, 64, 3)) * 120 + 60).astype(np.uint8), (0, 0), 6)
    img[20:34, 12:26] = cv2.GaussianBlur((rng.random((14, 14, 3)) * 255).astype(np.uint8), (3, 3), 0)
    brush = np.zeros((64, 64), bool)
    brush[20:34, 12:26] = True
    traj = tracking.target_positions([[19.0, 27.0], [39.0, 33.0]], 8, 64, 64)
    return BenchExample(image=img, brush_mask=brush, trajectories=[traj])


def test_entry_scores_on_known_answers():
    ex = _example()
    along = C.entry_scores(tracking.known_path_video(ex.image, ex.brush_mask, ex.trajectories[0], 8), ex)
    frozen = C.entry_scores(tracking.known_path_video(ex.image, ex.brush_mask, ex.trajectories[0], 8, speed=0), ex)
    assert set(along) == set(C.SCORES)
    assert along["share of the way"] > 0.9 and abs(frozen["share of the way"]) < 1e-9
    assert along["MD-Vid ceiling"] == pytest.approx(frozen["MD-Vid ceiling"])
    assert along["motion inside brush"] > 3 * along["motion outside brush"]
    assert frozen["motion inside brush"] == pytest.approx(0.0, abs=1e-6) and frozen["warping error"] == 0.0
    # the warping error does not penalise correct motion: a moving object is still warped back almost exactly,
    # while a frame-to-frame flicker of the same size is not
    noisy = tracking.known_path_video(ex.image, ex.brush_mask, ex.trajectories[0], 8, speed=0).astype(np.int16)
    noisy[1::2] += 12
    flicker = C.entry_scores(np.clip(noisy, 0, 255).astype(np.uint8), ex)
    assert along["warping error"] < 4 < flicker["warping error"]


def _result(diffs_by_entry, score="share of the way"):
    rows = {"a": [], "b": []}
    for i, d in enumerate(diffs_by_entry):
        base = 0.3 + 0.01 * (i % 7)
        for name, v in (("a", base + d), ("b", base)):
            rows[name].append({"set": "object", "entry": f"{i:04d}", "kind": "object", score: v})
    return {"rows": rows}


def test_paired_decides_in_both_directions_and_says_what_it_could_detect():
    rng = np.random.default_rng(0)
    better = C.paired(_result(0.2 + 0.05 * rng.standard_normal(40)), "a", "b")
    assert better["verdict"] == "reproduced" and better["low"] > 0 and better["n"] == 40 and better["df"] == 39
    worse = C.paired(_result(-0.2 + 0.05 * rng.standard_normal(40)), "a", "b")
    assert worse["verdict"] == "contradicted" and worse["high"] < 0
    noise = C.paired(_result(0.3 * rng.standard_normal(10)), "a", "b")
    assert noise["verdict"] == "inconclusive" and noise["detectable"] > abs(noise["diff"])
    # MD-Vid: lower is better, so a lower a reproduces "a is better"
    md = C.paired(_result(-0.5 + 0.05 * rng.standard_normal(20), "MD-Vid"), "a", "b", score="MD-Vid")
    assert md["verdict"] == "reproduced"


def test_paired_uses_only_entries_both_systems_have():
    r = _result(np.full(6, 0.1))
    r["rows"]["a"] = r["rows"]["a"][:4]
    assert C.paired(r, "a", "b")["n"] == 4
    with pytest.raises(ValueError, match="fewer than two paired entries"):
        C.paired(r, "a", "b", bench_set="fine")
    with pytest.raises(ValueError, match="system"):
        C.values(r, "c", "share of the way")
    with pytest.raises(ValueError, match="score"):
        C.values(r, "a", "FVD")


def test_missing_systems_are_named(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="ground_truth is not sampled"):
        C.load_system("ground_truth")
    with pytest.raises(ValueError, match="name must be one of"):
        C.load_system("dragnuwa")
    monkeypatch.setitem(C.SYSTEMS, "remoco_s1", ("a run", ("run", "remoco", tmp_path / "nothing")))
    with pytest.raises(FileNotFoundError, match="remoco_s1"):
        C.load_system("remoco_s1")
    assert "remoco_s1" not in C.available_systems()
    with pytest.raises(FileNotFoundError, match="comparison"):
        C.load(tmp_path / "none.json")


def test_claim_verdict_needs_every_set():
    rows = [dict(claim="C1", verdict="reproduced"), dict(claim="C1", verdict="inconclusive"),
            dict(claim="C2", verdict="reproduced"), dict(claim="C6", verdict="contradicted"),
            dict(claim="C6", verdict="reproduced")]
    assert C.claim_verdict(rows, "C1") == "inconclusive"
    assert C.claim_verdict(rows, "C2") == "reproduced"
    assert C.claim_verdict(rows, "C6") == "mixed"
    assert C.claim_verdict(rows[3:4], "C6") == "contradicted"
    assert C.claim_verdict(rows, "C3") == "not measured"
    by_set = [dict(claim="C1", bench_set="fine", verdict="contradicted"),
              dict(claim="C1", bench_set="object", verdict="reproduced"),
              dict(claim="C1", bench_set="object", verdict="reproduced")]
    assert C.claim_verdict(by_set, "C1") == "mixed"
    assert C.claim_verdict(by_set, "C1", "object") == "reproduced"
    assert C.claim_verdict(by_set, "C1", "fine") == "contradicted"


def test_decisions_cover_the_questions_whose_systems_exist():
    rng = np.random.default_rng(1)
    rows = {}
    for name, level in (("remoco", 0.6), ("base", 0.1), ("gaussian", 0.4)):
        rows[name] = [{"set": s, "entry": f"{i:04d}", "kind": "camera" if i % 4 == 3 else "object",
                       **{k: level + 0.05 * rng.standard_normal() for k in C.SCORES}}
                      for s in ("fine", "object") for i in range(20)]
    d = C.decisions({"rows": rows})
    claims = {r["claim"] for r in d}
    assert "C1" in claims and "control" in claims and "C1 (same regime)" not in claims and "C2" not in claims
    c1 = [r for r in d if r["claim"] == "C1"]
    assert len(c1) == 2 and all(r["verdict"] == "reproduced" and r["n"] == 20 for r in c1)
    rows["remoco_s1"] = [dict(r, **{"share of the way": r["share of the way"] - 0.4}) for r in rows["remoco"]]
    d = C.decisions({"rows": rows})
    c1 = {(r["a"], r["bench_set"]): r["verdict"] for r in d if r["claim"] == "C1"}
    assert c1[("remoco_s1", "fine")] == "contradicted" and C.claim_verdict(d, "C1") == "mixed"
    # with the baseline's second seed present, the second seeds are paired with each other
    rows["gaussian_s1"] = [dict(r, **{"share of the way": r["share of the way"] - 0.4}) for r in rows["gaussian"]]
    pairs = {(r["a"], r["b"]) for r in C.decisions({"rows": rows}) if r["claim"] == "C1"}
    assert pairs == {("remoco", "gaussian"), ("remoco_s1", "gaussian_s1")}
    means = {r["system"]: r for r in C.system_means({"rows": rows}, "fine")}
    assert means["remoco"]["share of the way"] == pytest.approx(0.6, abs=0.05)
    assert C.entries_for_effect({"rows": rows}, "remoco", "gaussian", effect=0.1) >= 2
