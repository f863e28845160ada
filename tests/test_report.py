"""Tests of remoco.report: tables beside the paper's numbers, the comparison behind each verdict, and the
verdicts of the claims on results whose answer is known by construction."""

from __future__ import annotations

import copy
import math

import matplotlib
import numpy as np
import pytest

from remoco import report
from remoco import reproduce as R

matplotlib.use("Agg")


def _eval(md: dict, fc: float = 0.99, flow: float = 1.0) -> dict:
    """A fake evaluation: MD-Vid / MD-Img per set from ``md`` ({set: value}); camera entries 1 px farther."""
    labels = {m: f"{m} (sub; paper: y)" for m in ("MD-Img", "MD-Vid", "Frame Consis.", "Avg. flow magnitude",
                                                   "FID", "FVD")}
    sets = {}
    for s, v in md.items():
        rows = [{"entry": "a", "kind": "object", "MD-Vid": v}, {"entry": "b", "kind": "camera", "MD-Vid": v + 1.0}]
        sets[s] = dict(mean={"MD-Img": v, "MD-Vid": v, "Frame Consis.": fc, "Avg. flow magnitude": flow},
                       distribution={"FID": 10.0, "FVD": 20.0}, labels=labels, rows=rows)
    return {"sets": sets}


def _results(md_of, fc_of=lambda e: 0.99, flow_of=lambda e: 1.0) -> dict:
    """Tables of the whole grid with MD-Vid = md_of(experiment) on both sets."""
    exps = R.experiment_table()
    evals = {e.name: _eval({"fine": md_of(e), "object": md_of(e)}, fc_of(e), flow_of(e)) for e in exps}
    return R.build_tables(exps, evals, settings={"quick": False})


# seed-dependent noise of +-0.1 px around each system's level
def _noise(e):
    return 0.1 * (e.seed - 0.5)


LEVELS = {"ground_truth": 1.0, "base": 8.0, "gaussian": 7.0, "traj_only": 6.0, "remoco": 5.0, "concat": 6.5, "sum": 6.6}


def _paper_like(e):
    over = dict(e.overrides)
    if "k" in over and over.get("r_min") == 0.95 and e.rows[0][0] == "fig7a":
        return 5.5 - 0.5 * math.log2(over["k"]) + _noise(e)  # k = 2 (shared with Fig. 7b's r_min = 0.95): 5.0
    if e.rows[0][0] == "fig7b" or ("r_min" in over and over["r_min"] != 0.95):
        return 5.0 + 10.0 * abs(over["r_min"] - 0.95) + _noise(e)
    return LEVELS[e.system] + _noise(e)


def test_comparison_is_paired_by_seed_with_a_t_interval():
    res = _results(_paper_like)["table2"]
    c = report.comparison(res, "remoco", "gaussian", "MD-Vid (fine)")
    # per seed: remoco 5 + 0.1 (s - 0.5) = 4.95, 5.05, 5.15; gaussian the same + 2: every paired difference is -2
    assert c["mean_a"] == pytest.approx(5.05) and c["mean_b"] == pytest.approx(7.05)
    assert c["diff"] == pytest.approx(-2.0) and c["n"] == 3 and c["df"] == 2
    assert c["low"] == pytest.approx(-2.0) and c["high"] == pytest.approx(-2.0) and c["detectable"] == 0.0
    cam = report.comparison(res, "remoco", "traj_only", "MD-Vid (fine)", kind="camera")
    assert cam["mean_a"] == pytest.approx(6.05) and cam["diff"] == pytest.approx(-1.0)
    # seed-dependent differences: the interval is the t interval of the per-seed differences (df 2)
    noisy = copy.deepcopy(res)
    for i, (s, v) in enumerate(report.row(noisy, "remoco")["per_seed"].items()):
        v["MD-Vid (fine)"] += (0.0, 0.6, -0.3)[i]
    c = report.comparison(noisy, "remoco", "gaussian", "MD-Vid (fine)")
    d = [-2.0, -1.4, -2.3]
    sd = float(np.std(d, ddof=1))
    assert c["diff"] == pytest.approx(np.mean(d))
    assert c["high"] - c["diff"] == pytest.approx(4.302653 * sd / math.sqrt(3), rel=1e-5)  # t(0.975, 2)
    assert c["detectable"] > abs(c["diff"]) * 0.5
    with pytest.raises(ValueError, match="rows"):
        report.row(res, "nobody")
    with pytest.raises(ValueError, match="column"):
        report.comparison(res, "remoco", "gaussian", "MD-Vid (fine)", kind="nothing")


def test_verdict_of_needs_an_interval_that_excludes_zero():
    clear = dict(diff=-1.0, low=-1.5, high=-0.5)
    unclear = dict(diff=-1.0, low=-2.0, high=0.1)
    against = dict(diff=+1.0, low=0.5, high=1.5)
    assert report.verdict_of([clear, clear]) == "reproduced"
    assert report.verdict_of([clear, unclear]) == "inconclusive"
    assert report.verdict_of([clear, against]) == "not reproduced"
    assert report.verdict_of([dict(diff=-1.0, low=None, high=None)]) == "inconclusive"  # one seed: no interval
    assert report.verdict_of([against], lower=False) == "reproduced"
    assert report.verdict_of([dict(clear, unvalidated=True)]) == "inconclusive"


def test_an_unvalidated_tracker_decides_nothing():
    res = _results(_paper_like)
    for t in ("table2", "table3"):
        for col in res[t]["labels"]:
            if col.startswith("MD-Vid"):
                res[t]["labels"][col] = "MD-Vid (LK tracker; paper: CoTracker)"
    v = {d["claim"]: d for d in report.claim_verdicts(res)}
    assert v["C1"]["verdict"] == "inconclusive" and v["C1"]["tally"]["for"] == 0
    assert all("failed validation" in e for e in v["C1"]["evidence"])
    assert report.claim_verdicts(_results(_paper_like))[0]["verdict"] == "reproduced"  # C1, validated labels


def test_claims_reproduced_when_the_data_say_so():
    v = {d["claim"]: d for d in report.claim_verdicts(_results(_paper_like, flow_of=lambda e: 2.0 if e.system ==
                                                                 "remoco" else 1.0 + _noise(e)))}
    assert set(v) == set(report.CLAIMS)
    assert v["C1"]["verdict"] == "reproduced" and len(v["C1"]["comparisons"]) == 2
    assert v["C6"]["tally"] == {"for": 2, "against": 0, "of": 2}  # the flow comparisons only
    assert v["C3"]["verdict"] == "reproduced"  # MD-Vid falls with k
    assert v["C4"]["verdict"] == "reproduced"  # r_min = 0.95 at the bottom of a V
    assert v["C5"]["verdict"] == "reproduced"
    assert v["C6"]["verdict"] == "reproduced"  # same frame consistency, more flow
    assert v["C2"]["verdict"] == "reproduced"  # remoco 1 px below trajectory-only on the camera entries too
    assert all(v[c]["evidence"] for c in v)


def test_claims_not_reproduced_or_inconclusive():
    flipped = {"remoco": 7.0, "gaussian": 5.0}

    def md(e):
        return flipped.get(e.system, LEVELS.get(e.system, 6.0)) + _noise(e)
    v = {d["claim"]: d for d in report.claim_verdicts(_results(md))}
    assert v["C1"]["verdict"] == "not reproduced"
    assert v["C1"]["tally"] == {"for": 0, "against": 2, "of": 2}
    assert report.tally_text(v["C1"]) == "clear for the paper in 0 of 2 comparisons, against it in 2"
    assert v["C3"]["verdict"] == "inconclusive"  # flat in k: no clear difference
    assert v["C6"]["verdict"] == "inconclusive"  # equal flow: "moves more" not shown

    def md_r(e):  # r_min = 0.5 clearly best: C4 goes against the paper
        over = dict(e.overrides)
        return (3.0 if over.get("r_min") == 0.5 else 6.0) + _noise(e)
    assert {d["claim"]: d for d in report.claim_verdicts(_results(md_r))}["C4"]["verdict"] == "not reproduced"
    fc = {d["claim"]: d for d in report.claim_verdicts(_results(_paper_like, fc_of=lambda e: 0.95 if e.system ==
                                                                  "remoco" else 0.99))}
    assert fc["C6"]["verdict"] == "not reproduced"  # frame consistency 0.04 lower


def test_tables_carry_labels_and_the_paper_numbers():
    res = _results(_paper_like)
    rows, cols = report.result_rows(res["table2"], rows=["base", "remoco"])
    assert cols[:3] == ["system", "seeds", "training steps"]
    assert all("paper:" in c and c.endswith("[fine]") for c in cols[3:])
    assert rows[1]["system"] == "ReMoCo" and rows[1]["seeds"] == 3
    md_col = next(c for c in cols if c.startswith("MD-Vid"))
    assert rows[1][md_col] == "5.05 ± 0.10"
    paper = report.paper_rows(res["table2"])
    remoco = next(r for r in paper if r["system"].startswith("paper: ReMoCo"))
    assert remoco[md_col] == "8.34"  # Table 2 of the paper, data/paper_results.csv
    assert next(c for c in cols if c.startswith("Avg. flow")) in remoco and \
        remoco[next(c for c in cols if c.startswith("Avg. flow"))] == "8.95"  # Sec. 4.2's text
    krows, kcols = report.kind_rows(res["table3"], "MD-Vid (object)", rows=["remoco"])
    assert kcols == ["system", "camera entries", "object entries"]
    assert krows[0]["camera entries"] == "6.05 ± 0.10"
    srows, scols = report.result_rows(res["fig7a"], label_by="row")
    assert scols[0] == "setting" and {r["setting"] for r in srows} == {"k=1", "k=2", "k=4", "k=8"}
    with pytest.raises(ValueError, match="label_by"):
        report.result_rows(res["fig7a"], label_by="seed")


def test_plots_draw_every_setting():
    res = _results(_paper_like)
    axes = report.plot_sweep(res["fig7a"])
    line = axes[0].lines[0]
    assert list(line.get_xdata()) == [1.0, 2.0, 4.0, 8.0]
    assert line.get_ydata()[0] > line.get_ydata()[-1]  # the constructed fall with k
    axes = report.plot_sweep(res["fig7b"])  # r_min: evenly spaced positions, the values as tick labels
    assert list(axes[0].lines[0].get_xdata()) == [0, 1, 2, 3, 4]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["0.5", "0.8", "0.9", "0.95", "0.99"]
    ax = report.plot_injection(res["fig9"])
    assert len(ax.patches) == 6  # 3 injections x 2 sets
    t = copy.deepcopy(res["fig9"])
    t["rows"] = t["rows"][:2]
    assert len(report.plot_injection(t).patches) == 4
    # a reference (e.g. the base) is one grey line per set at its value, and the y axis names the unit
    ref = {"base": {"MD-Vid (fine)": 6.5, "MD-Vid (object)": 10.5}}
    axes = report.plot_sweep(res["fig7a"], reference=ref)
    grey = [ln for ln in axes[0].lines if ln.get_color() == "0.5"]
    assert sorted(ln.get_ydata()[0] for ln in grey) == [6.5, 10.5] and "px" in axes[0].get_ylabel()
    assert not [ln for ln in axes[1].lines if ln.get_color() == "0.5"]  # no reference for frame consistency
    ax = report.plot_injection(res["fig9"], reference=ref)
    assert sorted(ln.get_ydata()[0] for ln in ax.lines if ln.get_color() == "0.5") == [6.5, 10.5]


def test_entry_mean_reads_a_row_on_other_entries_and_seeds():
    # entry a: v (+ seed), entry b (camera): v + 1 (+ seed); base seeds 0, 1, 2 sample with +0, +1, +2 px
    res = _results(lambda e: 5.0 + e.seed if e.system == "base" else 3.0)
    t2 = res["table2"]
    assert report.entry_mean(t2, "base", "MD-Vid (fine)", ["a"]) == pytest.approx(5.0 + 1.0)  # mean over seeds 0-2
    assert report.entry_mean(t2, "base", "MD-Vid (fine)", ["a", "b"], seeds=[0, 1]) == pytest.approx(5.5 + 0.5)
    assert report.entry_mean(t2, "remoco", "MD-Vid (fine)", ["b"]) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="entries"):
        report.entry_mean(t2, "base", "MD-Vid (fine)", ["zz"])
    with pytest.raises(ValueError, match="entries"):
        report.entry_mean(t2, "base", "MD-Vid (fine)", [])
    with pytest.raises(ValueError, match="seed 7"):
        report.entry_mean(t2, "base", "MD-Vid (fine)", ["a"], seeds=[7])


def test_scale_rows_read_the_base_on_the_ablations_seeds():
    res = _results(lambda e: 5.0 + e.seed if e.system == "base" else 3.0)
    rows, own = report.scale_rows(res)
    assert [r["system"] for r in rows][:2] == [report.SYSTEM_LABELS["ground_truth"], report.SYSTEM_LABELS["base"]]
    # the ablations have seeds 0 and 1: the base's entries a (5 + s) and b (6 + s) over seeds 0, 1 -> 6.0
    assert own == {"MD-Vid (fine)": pytest.approx(6.0), "MD-Vid (object)": pytest.approx(6.0)}
    assert rows[1]["MD-Vid fine (px)"] == pytest.approx(6.0)  # the stored mean of sampling seeds 0-2: 5, 6, 7
    assert rows[2]["sampling seeds"] == 2 and rows[1]["sampling seeds"] == 3
