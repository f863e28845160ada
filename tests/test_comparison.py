"""Tests of remoco.comparison: per-entry scores on videos whose answer is known, paired decisions on constructed
results, and clear errors for missing systems."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from remoco import comparison as C
from remoco import tracking
from remoco import verdicts as V
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
    assert V.claim_verdict(rows, "C1") == "inconclusive"
    assert V.claim_verdict(rows, "C2") == "reproduced"
    assert V.claim_verdict(rows, "C6") == "mixed"
    assert V.claim_verdict(rows[3:4], "C6") == "contradicted"
    assert V.claim_verdict(rows, "C3") == "not measured"
    by_set = [dict(claim="C1", bench_set="fine", verdict="contradicted"),
              dict(claim="C1", bench_set="object", verdict="reproduced"),
              dict(claim="C1", bench_set="object", verdict="reproduced")]
    assert V.claim_verdict(by_set, "C1") == "mixed"
    assert V.claim_verdict(by_set, "C1", "object") == "reproduced"
    assert V.claim_verdict(by_set, "C1", "fine") == "contradicted"


def test_decisions_cover_the_questions_whose_systems_exist():
    rng = np.random.default_rng(1)
    rows = {}
    for name, level in (("remoco", 0.6), ("base", 0.1), ("gaussian", 0.4)):
        rows[name] = [{"set": s, "entry": f"{i:04d}", "kind": "camera" if i % 4 == 3 else "object",
                       **{k: level + 0.05 * rng.standard_normal() for k in C.SCORES}}
                      for s in ("fine", "object") for i in range(20)]
    d = V.decisions({"rows": rows})
    claims = {r["claim"] for r in d}
    assert "C1" in claims and "control" in claims and "C1 (same regime)" not in claims and "C2" not in claims
    c1 = [r for r in d if r["claim"] == "C1"]
    assert len(c1) == 2 and all(r["verdict"] == "reproduced" and r["n"] == 20 for r in c1)
    # a seed of ReMoCo whose baseline seed is missing is not paired with another seed of the baseline
    rows["remoco_s1"] = [dict(r, **{"share of the way": r["share of the way"] - 0.4}) for r in rows["remoco"]]
    d = V.decisions({"rows": rows})
    assert {(r["a"], r["b"]) for r in d if r["claim"] == "C1"} == {("remoco", "gaussian")}
    assert {(r["a"], r["b"], r["seed"]) for r in d if r["claim"] == "control"} == {("remoco", "base", 0),
                                                                                   ("remoco_s1", "base", 1)}
    # with the baseline's second seed present, the second seeds are paired with each other
    rows["gaussian_s1"] = [dict(r, **{"share of the way": r["share of the way"] - 0.4}) for r in rows["gaussian"]]
    pairs = {(r["a"], r["b"]) for r in V.decisions({"rows": rows}) if r["claim"] == "C1"}
    assert pairs == {("remoco", "gaussian"), ("remoco_s1", "gaussian_s1")}
    means = {r["system"]: r for r in V.system_means({"rows": rows}, "fine")}
    assert means["remoco"]["share of the way"] == pytest.approx(0.6, abs=0.05)
    # C5: ReMoCo against the concatenation variant, seed by seed; claims= keeps only the questions asked for
    rows["concat"] = [dict(r, **{"share of the way": r["share of the way"] + 0.3}) for r in rows["remoco"]]
    c5 = V.decisions({"rows": rows}, claims=("C5",))
    assert {r["claim"] for r in c5} == {"C5 (concat)"} and {(r["a"], r["b"]) for r in c5} == {("remoco", "concat")}
    assert all(r["verdict"] == "contradicted" for r in c5)  # the variant is clearly ahead here
    assert not any(r["claim"].startswith("C5") for r in V.decisions({"rows": rows}, claims=("C1", "control")))
    with pytest.raises(ValueError, match="claims"):
        V.decisions({"rows": rows}, claims="C5")
    assert V.entries_for_effect({"rows": rows}, "remoco", "gaussian", effect=0.1) >= 2


def test_seed_names_and_families():
    names = ["remoco", "remoco_s1", "remoco_s3", "gaussian_dense", "gaussian_dense_s1", "gaussian_s1"]
    assert V.seed_systems(names, "remoco") == ["remoco", "remoco_s1"]  # stops at the missing seed 2
    assert V.seed_systems(names, "gaussian") == []  # no seed 0: gaussian_dense is another system
    assert V.seed_systems(names, "gaussian_dense") == ["gaussian_dense", "gaussian_dense_s1"]
    assert V.seed_name("traj_only", 0) == "traj_only" and V.seed_name("traj_only", 2) == "traj_only_s2"
    with pytest.raises(ValueError, match="seed"):
        V.seed_name("remoco", -1)
    for name in C.SYSTEMS:  # every seed in SYSTEMS belongs to a system whose seed 0 is there too
        if "_s" in name and name.rsplit("_s", 1)[1].isdigit():
            assert name.rsplit("_s", 1)[0] in C.SYSTEMS


def _seeded_result(seed_effects, n=30, sd=0.05):
    """ReMoCo and the sparse Gaussian baseline, one training seed per effect: ReMoCo is better by that seed's
    effect on every entry (plus noise)."""
    rng = np.random.default_rng(2)
    rows = {}
    for seed, effect in enumerate(seed_effects):
        for name, level in (("remoco", 0.3 + effect), ("gaussian", 0.3)):
            rows[V.seed_name(name, seed)] = [
                {"set": "object", "entry": f"{i:04d}", "kind": "object",
                 **{k: level + 0.01 * (i % 5) + sd * rng.standard_normal() for k in C.SCORES}} for i in range(n)]
    return {"rows": rows}


def test_over_seeds_decides_from_the_spread_between_training_seeds():
    # three seeds that agree: the interval over seeds excludes zero
    agree = [r for r in V.over_seeds(V.decisions(_seeded_result([0.2, 0.22, 0.18]))) if r["claim"] == "C1"]
    assert len(agree) == 1 and agree[0]["seeds"] == 3 and agree[0]["df"] == 2
    assert agree[0]["verdict"] == "reproduced" and agree[0]["low"] > 0
    assert agree[0]["diff"] == pytest.approx(np.mean(agree[0]["per_seed"]))
    # each seed alone is clear, but they disagree in size and sign: across training seeds it is inconclusive, and
    # the smallest detectable difference says how large an effect three such seeds could have shown
    split = V.decisions(_seeded_result([0.3, -0.25, 0.2]))
    assert {r["verdict"] for r in split if r["claim"] == "C1"} == {"reproduced", "contradicted"}
    pooled = [r for r in V.over_seeds(split) if r["claim"] == "C1"][0]
    assert pooled["verdict"] == "inconclusive" and pooled["detectable"] > abs(pooled["diff"])
    assert V.claim_verdict(V.over_seeds(split), "C1") == "inconclusive"
    # one seed: the interval over entries is kept, and marked as one seed
    one = [r for r in V.over_seeds(V.decisions(_seeded_result([0.2]))) if r["claim"] == "C1"][0]
    assert one["seeds"] == 1 and one["df"] == 29 and one["verdict"] == "reproduced"


def test_run_keeps_stored_systems_whose_settings_match(tmp_path):
    out = tmp_path / "comparison.json"
    first = C.run(["ground_truth"], work=tmp_path / "w1", out=out, entries=2)
    assert len(first["rows"]["ground_truth"]) == 4 and first["machines"]["ground_truth"]
    stored = C.load(out)
    fake = [dict(r, **{"share of the way": 0.5}) for r in stored["rows"]["ground_truth"]]
    for key, value in (("rows", fake), ("seconds", 1.0), ("threads", 1), ("systems", "x")):
        stored[key]["base"] = value
    stored["settings"]["trajectory_fill_of"]["remoco_s7"] = "block"  # another system's fill changes nothing here
    out.write_text(__import__("json").dumps(stored))
    # a fresh work folder: ground_truth and base both come from the stored result (base is not sampled again)
    again = C.run(["ground_truth"], work=tmp_path / "w2", out=out, entries=2)
    assert again["rows"]["base"] == fake and again["rows"]["ground_truth"] == first["rows"]["ground_truth"]
    assert list(again["rows"]) == ["ground_truth", "base"]  # in SYSTEMS' order
    # other settings: nothing stored is reused, and base (not asked for) is gone
    other = C.run(["ground_truth"], work=tmp_path / "w3", out=out, entries=1)
    assert list(other["rows"]) == ["ground_truth"] and len(other["rows"]["ground_truth"]) == 2


def test_camera_entries_are_brushed_on_the_object_only():
    from remoco import benchset, reproduce

    bench = benchset.load_bench(reproduce.BENCH_SETS["object"])
    cams = C.camera_object_entries(bench)
    assert len(cams) == sum(e.camera for e in bench) > 0 and {e.set for e in cams} == {"camera"}
    for e in cams[:4]:
        old = bench[e.name].example.brush_mask
        new = np.asarray(e.example.brush_mask, bool)
        x, y = np.round(e.example.trajectories[0][0]).astype(int)
        # the dragged point is on the object; the object is a small part of the old motion-mask brush
        assert new[y, x] and (new & ~old).sum() == 0 and new.sum() < 0.5 * old.sum()
        assert e.example.seed == bench[e.name].example.seed  # sampled with the same seed as in the object set
    # on the ground-truth clip the camera moves, so there is motion outside the object's brush
    gt = benchset.ground_truth_clip(cams[0].truth).video
    scores = C.entry_scores(gt, cams[0].example)
    assert scores["motion outside brush"] > 0.3 and scores["share of the way"] > 0.5
    with pytest.raises(ValueError, match="sets"):
        C.run(["ground_truth"], sets=("camera", "everything"))
    with pytest.raises(ValueError, match="systems"):
        C.run(["dragnuwa"])


def test_c2_is_decided_on_the_camera_set_only():
    rng = np.random.default_rng(3)
    rows = {name: [{"set": s, "entry": f"{i:04d}", "kind": "camera",
                    **{k: level + 0.05 * rng.standard_normal() for k in C.SCORES}}
                   for s in ("object", "camera") for i in range(12)]
            for name, level in (("remoco", 0.2), ("traj_only", 0.6))}
    d = V.decisions({"rows": rows, "settings": {"sets": ["object", "camera"]}})
    assert {(r["claim"], r["bench_set"]) for r in d} == {("C2", "camera"), ("C2 (outside)", "camera")}
    verdicts = {r["claim"]: r["verdict"] for r in d}
    # ReMoCo lower on both: behind on share of the way, ahead on motion outside the brush (lower is better)
    assert verdicts == {"C2": "contradicted", "C2 (outside)": "reproduced"}
    table = V.verdict_rows(V.over_seeds(d), {"C2": "the mask separates object and camera motion"})
    assert [r["claim"] for r in table] == ["C2", "C2 (outside)"]
    assert table[0]["the paper says"].startswith("the mask")
    assert table[1]["the paper says"].startswith("with the motion mask")
    assert (table[0]["camera set"], table[0]["fine set"], table[1]["camera set"]) == ("contradicted", "—", "reproduced")
    assert [r["verdict"] for r in V.decision_rows(V.over_seeds(d))] == ["contradicted", "reproduced"]
    assert V.claim_key("C1 (same regime)") == "C1_same_regime"


def test_seeds_for_effect_grows_with_the_spread_between_seeds():
    tight = [r for r in V.over_seeds(V.decisions(_seeded_result([0.2, 0.22, 0.18]))) if r["claim"] == "C1"][0]
    wide = [r for r in V.over_seeds(V.decisions(_seeded_result([0.3, -0.25, 0.2]))) if r["claim"] == "C1"][0]
    assert 2 <= V.seeds_for_effect(tight, 0.1) < V.seeds_for_effect(wide, 0.1)
    one = [r for r in V.over_seeds(V.decisions(_seeded_result([0.2]))) if r["claim"] == "C1"][0]
    with pytest.raises(ValueError, match="one training seed"):
        V.seeds_for_effect(one)


def test_every_training_seed_of_a_system_is_driven_like_it():
    from remoco.shipped import SHIPPED_TRAJECTORY_FILL

    assert C.trajectory_fill_of("gaussian") == "block"
    assert C.trajectory_fill_of("gaussian_s2") == C.trajectory_fill_of("gaussian_s9") == "block"
    # the dense Gaussian baseline is another system, not a seed of the sparse one
    assert C.trajectory_fill_of("gaussian_dense_s1") == C.trajectory_fill_of("remoco_s3") == SHIPPED_TRAJECTORY_FILL
    # stored settings may name single seeds: the name wins over its system
    assert C.trajectory_fill_of("gaussian_s1", {"gaussian_s1": "brush", "gaussian": "block"}, "brush") == "brush"


def test_seed_run_targets_are_the_trained_systems_in_the_makefiles_naming():
    import re

    targets = C.seed_run_targets()
    trained = [n for n, (_, how) in C.SYSTEMS.items() if how[0] == "run"]
    assert len(targets) == len(trained) == len(set(targets))
    for t in targets:
        # the Makefile's pattern rule reads the recipe from <variant>-s<seed>
        m = re.fullmatch(r"runs/seeds/(remoco|gaussian|gaussian_dense|traj_only|concat|sum)-s(\d+)/controller/final/"
                         r"controller/config\.json", t)
        assert m, t
    # every C5 variant has the training seeds ReMoCo has, so that decisions() can pair them seed by seed
    for v in ("concat", "sum"):
        assert V.seed_systems(C.SYSTEMS, v) == [v] + [f"{v}_s{i}" for i in range(1, 4)]
    assert "remoco_s3" in C.SYSTEMS


def test_same_photos_drops_only_the_pairs_trained_on_different_photographs():
    # the shipped controllers' config files give the bench's seven photographs; the seed runs the preset's
    assert C.training_photos("remoco") == C.training_photos("gaussian") == "bench"
    from remoco.config import preset_config

    assert C.training_photos("concat") == C.training_photos("remoco_s1") == preset_config("toy-cpu").photos != "bench"
    assert C.training_photos("base") is None and C.training_photos("ground_truth") is None
    with pytest.raises(ValueError, match="name"):
        C.training_photos("nobody")
    rng = np.random.default_rng(2)
    rows = {n: [{"set": "object", "entry": f"{i:04d}", "kind": "object",
                 **{k: lvl + 0.05 * rng.standard_normal() for k in C.SCORES}} for i in range(12)]
            for n, lvl in (("remoco", 0.6), ("remoco_s1", 0.5), ("concat", 0.2), ("concat_s1", 0.1), ("base", 0.0),
                           ("gaussian", 0.3))}
    every = {(r["claim"], r["seed"]) for r in V.decisions({"rows": rows})}
    same = {(r["claim"], r["seed"]) for r in V.decisions({"rows": rows}, same_photos=True)}
    # C5's seed 0 pairs the shipped ReMoCo (bench) with a seed run (train): dropped; seed 1 and the base stay
    assert every - same == {("C5 (concat)", 0)}
    assert ("C5 (concat)", 1) in same and ("control", 0) in same and ("C1", 0) in same
    a = V.over_seeds(V.decisions({"rows": rows}))
    b = V.over_seeds(V.decisions({"rows": rows}, same_photos=True))
    assert V.verdict_changes(a, a) == []
    changed = V.verdict_changes(a, [dict(d, verdict="contradicted") if d["claim"] == "C1" else d for d in b])
    assert [(c["claim"], c["other_verdict"]) for c in changed] == [("C1", "contradicted")]
    assert V.verdict_changes(a, [])[0]["other_verdict"] is None
    assert V.verdict_changes_text([]) == "every verdict is the same"
    assert V.verdict_changes_text(changed) == "C1 on the object set turns contradicted"
