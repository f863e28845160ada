"""Tests of remoco.decide on known answers: intervals cover what they claim, verdicts follow the interval, the
smallest detectable effect is detected as often as the power says."""

import numpy as np
import pytest

from remoco import decide


def test_t_interval_matches_its_definition_and_covers_the_mean_at_its_level():
    v = np.array([1.0, 2.0, 3.0, 4.0])
    r = decide.t_interval(v)
    # t_{0.975, 3} = 3.182; sd = 1.291; se = 0.6455
    assert r["mean"] == 2.5 and r["df"] == 3 and r["se"] == pytest.approx(0.6455, abs=1e-4)
    assert r["high"] - r["mean"] == pytest.approx(3.182 * 0.6455, abs=2e-3)
    rng = np.random.default_rng(0)
    cover = 0
    for _ in range(2000):
        r = decide.t_interval(rng.normal(1.0, 2.0, 8))
        cover += r["low"] <= 1.0 <= r["high"]
    assert 0.93 <= cover / 2000 <= 0.97


def test_bootstrap_interval_widens_with_seed_spread_and_covers():
    rng = np.random.default_rng(1)
    entries = rng.normal(0.0, 1.0, (1, 100))
    calm = decide.bootstrap_interval(np.repeat(entries, 3, axis=0) + 0.5)
    noisy = decide.bootstrap_interval(np.repeat(entries, 3, axis=0) + 0.5 + rng.normal(0, 3.0, (3, 1)))
    assert calm["low"] < 0.5 < calm["high"]
    assert noisy["high"] - noisy["low"] > 2 * (calm["high"] - calm["low"])  # seed spread is not ignored
    one_seed = decide.bootstrap_interval(entries + 2.0)
    assert one_seed["seeds"] == 1 and one_seed["low"] > 1.0


@pytest.mark.parametrize("shift, lower, expected", [(-1.0, True, "reproduced"), (1.0, True, "contradicted"),
                                                    (0.0, True, "inconclusive"), (1.0, False, "reproduced"),
                                                    (-1.0, False, "contradicted")])
def test_verdict_follows_the_interval(shift, lower, expected):
    d = np.random.default_rng(2).normal(0.0, 0.2, 60)
    d = d - d.mean() + shift
    assert decide.verdict(decide.t_interval(d), paper_says_lower=lower) == expected


def test_the_smallest_detectable_effect_is_detected_with_the_stated_power():
    sd, n = 1.0, 30
    effect = decide.smallest_detectable_effect(sd, n)
    rng = np.random.default_rng(3)
    detected = np.mean([decide.verdict(decide.t_interval(rng.normal(-effect, sd, n))) == "reproduced"
                        for _ in range(2000)])
    assert 0.76 <= detected <= 0.84
    assert decide.entries_for_power(sd, effect) == n
    assert decide.entries_for_power(sd, effect / 2) > 3 * n  # half the effect needs about four times the entries


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="values"):
        decide.t_interval([1.0])
    with pytest.raises(ValueError, match="NaN"):
        decide.t_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="differences"):
        decide.bootstrap_interval([1.0, 2.0])
    with pytest.raises(ValueError, match="confidence"):
        decide.t_interval([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="effect"):
        decide.entries_for_power(1.0, 0.0)
    with pytest.raises(ValueError, match="interval"):
        decide.verdict({"low": 1.0, "high": 0.0})


def test_interval_text_prints_a_signed_interval():
    i = {"mean": 0.1, "low": -0.024, "high": 0.181}
    assert decide.interval_text(i, scale=100) == "+10 [-2, +18]"
    assert decide.interval_text({"mean": -1.234, "low": -2.0, "high": 0.5}, digits=2) == "-1.23 [-2.00, +0.50]"


def test_welch_interval_matches_scipy_and_covers_a_known_difference_at_its_level():
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 1.0, 30), rng.normal(0.4, 3.0, 12)
    w = decide.welch_interval(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert w["mean"] == pytest.approx(a.mean() - b.mean())
    assert (w["low"], w["high"]) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert w["n"] == (30, 12) and 11 < w["df"] < 40  # Welch's df lies between the smaller n - 1 and n_a + n_b - 2
    # coverage of the true difference 0.6 over many draws, at about the stated level
    hits = 0
    for _ in range(400):
        x, y = rng.normal(1.0, 1.0, 10), rng.normal(0.4, 3.0, 6)
        iv = decide.welch_interval(x, y, confidence=0.9)
        hits += iv["low"] <= 0.6 <= iv["high"]
    assert 0.85 <= hits / 400 <= 0.95
    same = decide.welch_interval([1.0, 1.0, 1.0], [0.0, 0.0])
    assert (same["low"], same["high"]) == (1.0, 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        decide.welch_interval([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="b must be"):
        decide.welch_interval([1.0, 2.0], [[1.0, 2.0]])


def test_controller_seeds_benchmark_rejects_a_pair_outside_its_systems():
    """``benchmarks/controller_seeds.py --pair A-B`` exits naming the argument and the systems when A or B is not
    one of the ``--system`` names, also inside a ``+`` group of seeds (checked before any model loads), and goes on
    when all are; a system name with a '-' (which a pair could not name) is refused."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "controller_seeds.py"
    cmd = [sys.executable, str(script), "--clips", "2", "--system", "a=/nonexistent/base:/nonexistent/ctrl",
           "--system", "b=/nonexistent/base:/nonexistent/ctrl2"]
    bad = subprocess.run([*cmd, "--pair", "a-c"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--pair" in bad.stderr and "'a-c'" in bad.stderr and "['a', 'b']" in bad.stderr
    bad_group = subprocess.run([*cmd, "--pair", "a+c-b"], capture_output=True, text=True)
    assert bad_group.returncode == 2 and "'a+c-b'" in bad_group.stderr
    dashed = subprocess.run([sys.executable, str(script), "--system", "a-1=/x:/y"], capture_output=True, text=True)
    assert dashed.returncode == 2 and "'a-1'" in dashed.stderr and "--system" in dashed.stderr
    good = subprocess.run([*cmd, "--pair", "a+b-b"], capture_output=True, text=True)
    assert good.returncode != 0 and "--pair" not in good.stderr and "model_index.json" in good.stderr


def test_controller_seeds_benchmark_pairs_stored_systems_and_rejects_another_protocol(tmp_path):
    """``--stored FILE`` brings an earlier run's systems into the pairs without loading a model: a-b over clips
    where a is 3 and 4 px and b is 1 and 1 px is 2.5 px on average; the stored systems and their old pairs are kept;
    a file scored on another number of clips, or a new system named like a stored one, exits naming the field."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "controller_seeds.py"
    old = dict(clips=2, seed=20000, k=2, num_inference_steps=15, trajectory_fill="brush", threads=1, machine="m",
               bases={"B": {"distances": [9.0, 9.0]}}, pairs={"old": {"mean": 1.0}},
               systems={"a": {"base": "B", "distances": [3.0, 4.0]}, "b": {"base": "B", "distances": [1.0, 1.0]}})
    (tmp_path / "old.json").write_text(json.dumps(old))
    out = tmp_path / "new.json"
    run = subprocess.run([sys.executable, str(script), "--clips", "2", "--stored", str(tmp_path / "old.json"),
                          "--pair", "a-b", "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    new = json.loads(out.read_text())
    assert new["pairs"]["a-b"]["mean"] == pytest.approx(2.5) and new["pairs"]["old"] == {"mean": 1.0}
    assert new["systems"]["a"]["stored"] == str(tmp_path / "old.json") and new["systems"]["a"]["machine"] == "m"
    assert new["bases"] == old["bases"]
    other = subprocess.run([sys.executable, str(script), "--clips", "3", "--stored", str(tmp_path / "old.json"),
                            "--pair", "a-b"], capture_output=True, text=True)
    assert other.returncode == 2 and "clips=2" in other.stderr and "--stored" in other.stderr
    clash = subprocess.run([sys.executable, str(script), "--clips", "2", "--stored", str(tmp_path / "old.json"),
                            "--system", "a=/x:/y"], capture_output=True, text=True)
    assert clash.returncode == 2 and "['a']" in clash.stderr


@pytest.mark.parametrize("name", ["controller_photos.json", "controller_seeds.json", "controller_seeds_plain.json"])
def test_stored_controller_intervals_follow_from_their_per_clip_distances(name):
    """Every figure of a stored ``benchmarks/controller_seeds.py`` result that a chapter quotes is recomputed from
    the per-clip distances it stores: each system's mean, ratio to its base and share of clips closer than the base,
    and each pair's paired interval (seeds averaged clip by clip), overall and split by clips with a held-out
    photograph. A pair or system stored from other distances, or a split by other clips, fails."""
    import json
    from pathlib import Path

    from remoco import photos

    study = json.loads((Path(__file__).resolve().parent.parent / "results" / name).read_text())
    systems, bases = study["systems"], study["bases"]
    for s in systems.values():
        d, b = np.asarray(s["distances"]), np.asarray(bases[s["base"]]["distances"])
        assert len(d) == len(b) == study["clips"]
        assert s["mean"] == pytest.approx(d.mean()) and s["ratio"] == pytest.approx(d.mean() / b.mean())
        assert s["closer"] == pytest.approx(np.mean(d < b))
    held = np.array([photos.shows_held_out(ps) for ps in study["photographs"]]) if "photographs" in study else None
    assert study.get("pairs") or name != "controller_photos.json"  # chapter 1 quotes its pairs
    for pair, stored in study.get("pairs", {}).items():
        a, b = (np.mean([systems[n]["distances"] for n in side.split("+")], axis=0) for side in pair.split("-"))
        for key in ("mean", "low", "high"):
            assert stored[key] == pytest.approx(decide.t_interval(a - b)[key], abs=1e-9), (pair, key)
        for label, rows in (("with a held-out photograph", held), ("without", None if held is None else ~held)):
            split = study.get("pairs_by_photograph", {}).get(pair, {}).get(label)
            if split is not None:
                assert split["n"] == rows.sum()
                for key in ("mean", "low", "high"):
                    assert split[key] == pytest.approx(decide.t_interval((a - b)[rows])[key], abs=1e-9), (pair, key)
