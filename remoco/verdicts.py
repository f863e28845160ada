"""What does the main comparison decide? Reading ``results/comparison.json`` (:mod:`remoco.comparison`) into the
questions of chapters 6 and 7, their verdicts per training seed and over seeds, and the tables and figure that show
them.

A trained system's seed ``i`` is named ``<system>_s<i>`` (:func:`seed_name`); :func:`decisions` pairs ReMoCo's seed
``i`` with the baseline's seed ``i`` (:func:`remoco.comparison.paired`, per entry) and :func:`over_seeds` decides each
question from the per-seed mean differences with a t interval over training seeds (df = seeds - 1), so the spread
between training seeds is part of every verdict.
"""

from __future__ import annotations

import numpy as np

from .comparison import LOWER_IS_BETTER, SCORES, SETS, paired, training_photos, values
from .decide import smallest_detectable_effect, t_interval, verdict

__all__ = ["UNTRAINED", "seed_name", "seed_systems", "QUESTIONS", "decisions", "over_seeds", "verdict_changes",
           "verdict_changes_text", "seeds_for_effect", "claim_verdict", "claim_key", "decision_rows", "per_seed_rows",
           "verdict_rows", "system_means", "entries_for_effect", "plot_share"]

#: The questions chapter 6 decides from the comparison: (claim, question, a, b, score, entries' kind or None, the
#: sets it is asked on), each in the paper's direction "a better than b". C2 on the camera set
#: (:func:`remoco.comparison.camera_object_entries`); C6 as "no worse frame consistency while moving more inside the
#: brush".
QUESTIONS = (
    ("control", "does ReMoCo move the dragged point further along the path than the image-only base?",
     "remoco", "base", "share of the way", None, ("fine", "object")),
    ("C1", "region-wise trajectory beats the Gaussian-trajectory baseline as shipped (sparse)",
     "remoco", "gaussian", "share of the way", None, ("fine", "object")),
    ("C1 (same regime)", "region-wise trajectory beats the Gaussian trajectory trained in ReMoCo's dense regime",
     "remoco", "gaussian_dense", "share of the way", None, ("fine", "object")),
    ("C2", "with the motion mask the brushed object follows the drag better while the camera moves",
     "remoco", "traj_only", "share of the way", None, ("camera",)),
    ("C2 (outside)", "with the motion mask less moves outside the brushed object while the camera moves",
     "remoco", "traj_only", "motion outside brush", None, ("camera",)),
    ("C5 (concat)", "adaptive feature modulation beats concatenation (Fig. 9), trained with the steering recipe",
     "remoco", "concat", "share of the way", None, ("fine", "object")),
    ("C5 (sum)", "adaptive feature modulation beats summation (Fig. 9), trained with the steering recipe",
     "remoco", "sum", "share of the way", None, ("fine", "object")),
    ("C6 (moves)", "ReMoCo moves more inside the brush than the base", "remoco", "base", "motion inside brush", None,
     ("fine", "object")),
    ("C6 (consistency)", "at no worse frame consistency (warping error) than the base", "remoco", "base",
     "warping error", None, ("fine", "object")),
)


#: Systems with no training seed: every seed of a trained system is compared with the same one.
UNTRAINED = ("ground_truth", "base")


def seed_name(system: str, seed: int) -> str:
    """The name of training seed ``seed`` of ``system`` in :data:`SYSTEMS`: the shipped one (seed 0) keeps the plain
    name, seed i > 0 is ``<system>_s<i>``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return system if seed == 0 else f"{system}_s{seed}"


def seed_systems(names, system: str) -> list[str]:
    """The training seeds of ``system`` among ``names`` (e.g. a result's systems), in seed order from 0, stopping at
    the first seed that is missing."""
    names, out = set(names), []
    while seed_name(system, len(out)) in names:
        out.append(seed_name(system, len(out)))
    return out


def decisions(result: dict, bench_sets=None, claims=None, same_photos: bool = False) -> list[dict]:
    """:func:`paired` for every question of :data:`QUESTIONS` (``claims``: only those whose claim starts with one of
    these strings, e.g. ``("C5",)``) whose systems are in ``result``, per set the question
    is asked on and ``result`` scored (``bench_sets``: default all of its sets; C2 on the camera set), and per
    training seed: ReMoCo's seed i against the baseline's
    seed i (the same base for every seed, :data:`UNTRAINED`); a seed the baseline lacks is skipped, and with
    ``same_photos`` also a pair whose controllers trained on different photographs (:func:`training_photos`: the
    shipped seed 0 against a seed run). Each row carries its ``seed``. C6's consistency half is read as "ReMoCo's
    warping error is lower": *contradicted* when it is clearly higher. :func:`over_seeds` turns the rows into one
    decision per question and set."""
    out = []
    names = result["rows"]
    if bench_sets is None:
        bench_sets = result.get("settings", {}).get("sets", ("fine", "object"))
    if isinstance(claims, str):
        raise ValueError(f"claims must be a sequence of claim prefixes such as ('C5',), got {claims!r}")
    photos = {n: training_photos(n) for n in names} if same_photos else {}
    for claim, question, a, b, score, kind, asked_on in QUESTIONS:
        if claims is not None and not claim.startswith(tuple(claims)):
            continue
        for seed, a_i in enumerate(seed_systems(names, a)):
            b_i = b if b in UNTRAINED else seed_name(b, seed)
            if b_i not in names or (same_photos and b not in UNTRAINED and photos[a_i] != photos[b_i]):
                continue
            for s in (s for s in bench_sets if s in asked_on):
                pairs = values(result, a_i, score, s, kind).keys() & values(result, b_i, score, s, kind).keys()
                if len(pairs) < 2:  # e.g. no camera entry in the fine set; a brush covering the frame has no outside
                    continue
                out.append(dict(claim=claim, question=question, seed=seed, **paired(result, a_i, b_i, score, s, kind)))
    return out


def over_seeds(rows: list[dict]) -> list[dict]:
    """One decision per (claim, bench set) from the per-seed rows of :func:`decisions`: the mean over training seeds
    of each seed's mean paired difference, with a 95 % t interval over seeds (df = seeds - 1) -- so a verdict needs
    the difference to hold across training seeds, not only across entries of one seed -- its verdict, and the
    smallest difference that many seeds with that spread would detect at power 0.8. With one seed the row keeps
    that seed's interval over entries and says so (``seeds`` = 1). ``sd``: the spread of the per-seed means
    (:func:`seeds_for_effect` turns it into the seeds a given difference needs)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["claim"], r["bench_set"]), []).append(r)
    out = []
    for (claim, s), group in groups.items():
        group = sorted(group, key=lambda r: r["seed"])
        first = group[0]
        row = dict(claim=claim, question=first["question"], bench_set=s, score=first["score"], kind=first["kind"],
                   a=first["a"], b=first["b"], seeds=len(group), per_seed=[r["diff"] for r in group],
                   per_seed_verdicts=[r["verdict"] for r in group], entries=first["n"])
        if len(group) == 1:
            row.update({k: first[k] for k in ("diff", "low", "high", "df", "verdict", "detectable")}, sd=None)
        else:
            d = np.array(row["per_seed"])
            ci, sd = t_interval(d), float(d.std(ddof=1))
            row.update(diff=ci["mean"], low=ci["low"], high=ci["high"], df=ci["df"], sd=sd,
                       verdict=verdict(ci, paper_says_lower=LOWER_IS_BETTER.get(first["score"], True)),
                       detectable=smallest_detectable_effect(sd, len(d)))
        out.append(row)
    return out


def verdict_changes(decided: list[dict], other: list[dict]) -> list[dict]:
    """The (claim, bench set) decisions of :func:`over_seeds` whose verdict differs between ``decided`` and ``other``
    (e.g. the same questions over the seed pairs trained on the same photographs only), with both verdicts and seed
    counts; a decision missing from ``other`` is listed with verdict None."""
    theirs = {(d["claim"], d["bench_set"]): d for d in other}
    out = []
    for d in decided:
        o = theirs.get((d["claim"], d["bench_set"]))
        if o is None or o["verdict"] != d["verdict"]:
            out.append(dict(claim=d["claim"], bench_set=d["bench_set"], verdict=d["verdict"], seeds=d["seeds"],
                            other_verdict=None if o is None else o["verdict"],
                            other_seeds=None if o is None else o["seeds"]))
    return out


def verdict_changes_text(changes: list[dict]) -> str:
    """:func:`verdict_changes` in words, for a chapter's prose: "every verdict is the same" or which ones turn."""
    if not changes:
        return "every verdict is the same"
    return "; ".join(f"{c['claim']} on the {c['bench_set']} set turns {c['other_verdict']}" for c in changes)


def seeds_for_effect(decided: dict, effect: float = 0.1, power: float = 0.8) -> int:
    """How many training seeds a decision of :func:`over_seeds` would need to detect a difference of ``effect`` at
    ``power`` (95 % two-sided t over seeds), from the spread of its per-seed means."""
    from .decide import entries_for_power

    if decided.get("sd") is None:
        raise ValueError(f"decided: {decided.get('claim')!r} has one training seed: no spread between seeds to use")
    return entries_for_power(decided["sd"], effect, power=power)


def claim_verdict(rows: list[dict], claim: str, bench_set: str | None = None) -> str:
    """One verdict of a claim from its rows (of :func:`over_seeds`: one per bench set; or any rows with ``claim``,
    ``bench_set`` and ``verdict``): *reproduced* when every row's interval goes the paper's way, *contradicted*
    when one goes the other way and none the paper's, *mixed* when rows go both ways, else *inconclusive*; *not
    measured* when the claim has no row (a system it needs is missing). ``bench_set``: only that set's rows."""
    vs = [r["verdict"] for r in rows if r["claim"] == claim and bench_set in (None, r.get("bench_set"))]
    if not vs:
        return "not measured"
    if "contradicted" in vs:
        return "mixed" if "reproduced" in vs else "contradicted"
    return "reproduced" if all(v == "reproduced" for v in vs) else "inconclusive"


def claim_key(claim: str) -> str:
    """A name-safe key of a claim of :data:`QUESTIONS` (``"C1 (same regime)"`` -> ``"C1_same_regime"``)."""
    return claim.replace(" (", "_").replace(")", "").replace(" ", "_")


def decision_rows(decided: list[dict]) -> list[dict]:
    """The table of :func:`over_seeds`' decisions: claim, set, seeds, the interval over seeds, the per-seed means,
    the smallest detectable difference and the verdict."""
    return [{"claim": d["claim"], "set": d["bench_set"], "seeds": d["seeds"],
             "a - b over seeds [95 %]": f"{d['diff']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]",
             "per seed": " ".join(f"{x:+.2f}" for x in d["per_seed"]), "detectable": d["detectable"],
             "verdict": d["verdict"]} for d in decided]


def per_seed_rows(rows: list[dict]) -> list[dict]:
    """The table of :func:`decisions`' per-seed rows: which systems, the per-entry interval, detectable, verdict."""
    return [{"claim": d["claim"], "set": d["bench_set"], "a - b": f"{d['a']} - {d['b']}",
             "a - b [95 %]": f"{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]",
             "detectable": d["detectable"], "verdict": d["verdict"]} for d in rows]


def verdict_rows(decided: list[dict], statements: dict | None = None, sets=SETS) -> list[dict]:
    """One row per claim of :func:`over_seeds`' decisions: what the paper says (``statements`` by claim, else the
    question of :data:`QUESTIONS`) and :func:`claim_verdict` per set ("—" where the claim is not asked on it)."""
    out = []
    for c in dict.fromkeys(d["claim"] for d in decided):
        asked = {d["bench_set"] for d in decided if d["claim"] == c}
        says = (statements or {}).get(c) or next(d["question"] for d in decided if d["claim"] == c)
        out.append({"claim": c, "the paper says": says,
                    **{f"{s} set": claim_verdict(decided, c, s) if s in asked else "—" for s in sets}})
    return out


def system_means(result: dict, bench_set: str, systems=None) -> list[dict]:
    """One row per system: the mean of every score of :data:`SCORES` over the entries of ``bench_set``."""
    rows = []
    for name in systems or result["rows"]:
        row = {"system": name}
        for score in SCORES:
            v = list(values(result, name, score, bench_set).values())
            row[score] = float(np.mean(v)) if v else None
        rows.append(row)
    return rows


def entries_for_effect(result: dict, a: str, b: str, effect: float = 0.1, score: str = "share of the way",
                       power: float = 0.8) -> int:
    """How many paired entries would detect a difference of ``effect`` in ``score`` between ``a`` and ``b`` at
    ``power`` (95 % two-sided), from the spread of their per-entry differences in ``result``."""
    from .decide import entries_for_power

    d = paired(result, a, b, score)
    return entries_for_power(d["sd"], effect, power=power)


def plot_share(result: dict, systems, labels: dict | None = None, axes=None):
    """The per-entry "share of the way" of each system, one panel per bench set (box and points; 1: along the
    path, 0: a frozen video); the ground-truth clips' median as the floor line where present."""
    import matplotlib.pyplot as plt

    sets = ("fine", "object")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(8.4, 1.4 + 0.24 * len(systems)), sharey=True)
    rng = np.random.default_rng(0)
    for ax, s in zip(axes, sets):
        data = [list(values(result, n, "share of the way", s).values()) for n in systems]
        ax.boxplot(data, vert=False, widths=0.6, showfliers=False)
        for i, v in enumerate(data, start=1):
            ax.plot(v, i + 0.15 * rng.standard_normal(len(v)), ".", ms=2, alpha=0.4, color="C0")
        ax.axvline(0, color="k", lw=0.8)
        ax.axvline(1, color="k", lw=0.8, ls=":")
        ax.set_xlim(-1.5, 1.2)
        ax.set_title(f"{s} set ({len(data[0])} entries)")
        ax.set_xlabel("share of the way (1 - MD-Vid / frozen)")
    axes[0].set_yticks(range(1, len(systems) + 1), [(labels or {}).get(n, n) for n in systems])
    axes[0].invert_yaxis()
    return axes
