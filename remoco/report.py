"""Reading the reproduction's results (``results/<table>.json``, written by :mod:`remoco.reproduce`): the tables
beside the paper's numbers, the Fig. 7 / Fig. 9 plots, and a verdict on each claim of the paper's Sec. 4.

A verdict compares two rows of a table on one column, paired by seed (replicate s of both rows samples the same
entries with the same generator seeds): the per-seed differences give a 95 % Student-t interval with
``seeds - 1`` degrees of freedom (:func:`remoco.decide.t_interval`), and a difference is *clear* when that interval
excludes zero. A claim is *reproduced* when every comparison it names is clear in the paper's direction, *not
reproduced* when one is clear in the other direction, and *inconclusive* otherwise; each comparison also carries
the smallest difference its seeds could have detected (:func:`remoco.decide.smallest_detectable_effect`). An MD-Vid
column scored by a tracker that fails the known-answer validation (:data:`UNVALIDATED_TRACKERS`,
:func:`remoco.tracking.validate_motion_distance`) decides nothing: its comparisons are never clear.
"""

from __future__ import annotations

import numpy as np

from .decide import smallest_detectable_effect, t_interval
from .metrics import PAPER_MODELS

__all__ = ["SYSTEM_LABELS", "CLAIMS", "VERDICTS", "UNVALIDATED_TRACKERS", "metric_of", "set_of", "row", "entry_mean",
           "scale_rows",
           "result_rows", "paper_rows",
           "kind_rows", "tally_text",
           "unvalidated", "comparison", "verdict_of", "claim_verdicts", "plot_sweep", "plot_injection"]

#: How the systems of :data:`remoco.reproduce.SYSTEMS` are named in tables and plots.
SYSTEM_LABELS = {
    "ground_truth": "ground-truth clip (trackers' floor)",
    "base": "toy SVD, image only",
    "gaussian": "Gaussian trajectory (DragNUWA-style)",
    "traj_only": "ReMoCo, trajectory only (no mask)",
    "remoco": "ReMoCo",
    "concat": "ReMoCo^C (concatenation)",
    "sum": "ReMoCo^+ (summation)",
}
#: The claims of the paper's Sec. 4 that the evaluation chapters test, in the paper's words where it has them.
CLAIMS = {
    "C1": "region-wise trajectories beat Gaussian-filtered point trajectories on mean distance (Tables 2-3)",
    "C2": "the motion mask separates object motion from camera motion (Sec. 4.3, Fig. 5)",
    "C3": "MD-Vid decreases when using larger k (Fig. 7a)",
    "C4": "r_min = 0.95 gives the best motion-trajectory alignment; a small r_min widens the gap between "
          "training and inference (Fig. 7b)",
    "C5": "adaptive feature modulation beats concatenation and summation on MD-Vid (Fig. 9)",
    "C6": "frame consistency stays about equal while ReMoCo moves more (Sec. 4.2: average flow magnitude)",
}
VERDICTS = ("reproduced", "not reproduced", "inconclusive")
#: Trackers that fail :func:`remoco.tracking.validate_motion_distance` on the toy benches (chapter 6,
#: ``results/md_validation.json``): an MD column whose label names one of them decides no claim.
UNVALIDATED_TRACKERS = ("LK tracker",)
_PAPER_COLUMNS = set(PAPER_MODELS)  # the metric columns data/paper_results.csv can fill


def metric_of(column: str) -> str:
    """``"MD-Vid (object)"`` -> ``"MD-Vid"``."""
    return column.rsplit(" (", 1)[0]


def set_of(column: str) -> str:
    """``"MD-Vid (object)"`` -> ``"object"``."""
    return column.rsplit(" (", 1)[1].rstrip(")")


def row(result: dict, name: str) -> dict:
    """The row called ``name`` of a result table (ValueError naming the rows there are)."""
    for r in result["rows"]:
        if r["row"] == name:
            return r
    raise ValueError(f"name: no row {name!r} in {result['table']}; rows are {[r['row'] for r in result['rows']]}")


def entry_mean(result: dict, name: str, column: str, entries, seeds=None) -> float:
    """Row ``name``'s ``column`` (e.g. ``"MD-Vid (object)"``) restricted to the bench ``entries`` (names): for each
    seed of ``seeds`` (default all the row has) the mean over those entries of its ``per_entry`` values, then the
    mean over seeds. So a row scored on more entries can be read on another row's entries and sampling seeds (the
    generator seed of entry i under sampling seed s is the same for every row). ValueError when a seed or an entry
    is missing."""
    r = row(result, name)
    metric, s = metric_of(column), set_of(column)
    seeds = [str(x) for x in (r["seeds"] if seeds is None else seeds)]
    entries = list(entries)
    if not entries:
        raise ValueError("entries: expected at least one bench entry name")
    means = []
    for seed in seeds:
        per = {x["entry"]: x.get(metric) for x in r.get("per_entry", {}).get(seed, {}).get(s, [])}
        missing = [e for e in entries if per.get(e) is None]
        if missing:
            raise ValueError(f"entries: row {name!r} has no {column} for seed {seed} on {missing[:3]}")
        means.append(float(np.mean([per[e] for e in entries])))
    return float(np.mean(means))


def scale_rows(results: dict, ablation: str = "fig9") -> tuple[list[dict], dict]:
    """What the ablations' MD-Vid is read against: the first grid's ground-truth clips and image-only base (Tables
    2-3, their own entries and seeds), and that base read on the entries and sampling seeds of ``results[ablation]``
    (:func:`entry_mean`). Returns the table rows and ``{"MD-Vid (fine)": px, "MD-Vid (object)": px}`` of the latter."""
    first = results[ablation]["rows"][0]
    seed0 = str(first["seeds"][0])
    tables = {"fine": "table2", "object": "table3"}
    own = {f"MD-Vid ({s})": entry_mean(results[t], "base", f"MD-Vid ({s})",
                                       [x["entry"] for x in first["per_entry"][seed0][s]], seeds=first["seeds"])
           for s, t in tables.items()}
    rows = [{"system": SYSTEM_LABELS[n], "entries per set": len(row(results["table2"], n)["per_entry"]["0"]["fine"]),
             "sampling seeds": len(row(results["table2"], n)["seeds"]),
             **{f"MD-Vid {s} (px)": row(results[t], n)["mean"][f"MD-Vid ({s})"] for s, t in tables.items()}}
            for n in ("ground_truth", "base")]
    rows.append({"system": SYSTEM_LABELS["base"] + ", the ablations' entries",
                 "entries per set": len(first["per_entry"][seed0]["fine"]), "sampling seeds": len(first["seeds"]),
                 **{f"MD-Vid {s} (px)": own[f"MD-Vid ({s})"] for s in tables}})
    return rows, own


def _fmt(mean, sd, digits: int) -> str | None:
    if mean is None:
        return None
    return f"{mean:.{digits}f}" + ("" if sd is None else f" ± {sd:.{digits}f}")


def _digits(metric: str) -> int:
    return 4 if metric == "Frame Consis." else 2


def _header(result: dict, column: str) -> str:
    label = result["labels"].get(column) or column
    return f"{label} [{set_of(column)}]"


def result_rows(result: dict, rows=None, label_by=None) -> tuple[list[dict], list[str]]:
    """``(rows, columns)`` for :func:`remoco.book_utils.show_table`: one row per table row (``rows``: the names
    to keep, in order; default all), each column ``"mean ± sd"`` over seeds with the metric's label (substitute
    and paper's model) and the bench set as header; ``label_by``: ``"system"`` (default; :data:`SYSTEM_LABELS`)
    or ``"row"`` (the row's name, e.g. ``k=2``)."""
    names = [r["row"] for r in result["rows"]] if rows is None else list(rows)
    by_system = (label_by or "system") == "system"
    if not by_system and label_by != "row":
        raise ValueError(f"label_by: expected 'system' or 'row', got {label_by!r}")
    first = "system" if by_system else "setting"
    columns = [first, "seeds", "training steps"] + [_header(result, c) for c in result["columns"]]
    out = []
    for name in names:
        r = row(result, name)
        d = {first: SYSTEM_LABELS.get(r["system"], r["system"]) if by_system else name,
             "seeds": len(r["seeds"]), "training steps": r["max_steps"]}
        for c in result["columns"]:
            d[_header(result, c)] = _fmt(r["mean"][c], r["spread"][c], _digits(metric_of(c)))
        out.append(d)
    return out, columns


def paper_rows(result: dict, sources=None) -> list[dict]:
    """The paper's numbers for the same columns as :func:`result_rows` (``"paper: <method> (<table>)"``); the
    average flow magnitude comes from Sec. 4.2's text. ``sources``: the paper tables to take (default: the
    result's own, e.g. ``("Table 2", "Sec. 4.2")``)."""
    values = [p for p in result["paper_values"] if sources is None or p["table"] in sources]
    methods: dict = {}
    for p in values:
        if p["column"] in _PAPER_COLUMNS:
            methods.setdefault(p["row"], {})[p["column"]] = p
    out = []
    for method, cols in methods.items():
        tables = sorted({p["table"] for p in cols.values()})
        d = {"system": f"paper: {method} ({', '.join(tables)})", "seeds": None, "training steps": None}
        for c in result["columns"]:
            p = cols.get(metric_of(c))
            d[_header(result, c)] = None if p is None else f"{p['value']:g}"
        out.append(d)
    return out


def kind_rows(result: dict, column: str, rows=None) -> tuple[list[dict], list[str]]:
    """``(rows, columns)``: ``column`` per kind of bench entry (e.g. the object set's ``object`` and ``camera``
    entries), ``"mean ± sd"`` over seeds of each seed's mean over the entries of that kind."""
    names = [r["row"] for r in result["rows"]] if rows is None else list(rows)
    kinds = sorted({k for n in names for k in row(result, n).get("by_kind_per_seed", {}).get(column, {})})
    out = []
    for name in names:
        r = row(result, name)
        d = {"system": SYSTEM_LABELS.get(r["system"], r["system"])}
        for k in kinds:
            v = r.get("by_kind_per_seed", {}).get(column, {}).get(k) or []
            d[f"{k} entries"] = _fmt(float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else None,
                                     _digits(metric_of(column))) if v else None
        out.append(d)
    return out, ["system"] + [f"{k} entries" for k in kinds]


def _seed_values(result: dict, name: str, column: str, kind: str | None = None) -> dict:
    """``{seed: value}`` of one row and column (``kind``: the mean over that kind of entry)."""
    r = row(result, name)
    if kind is None:
        return {str(k): float(v[column]) for k, v in r["per_seed"].items() if v.get(column) is not None}
    vals = (r.get("by_kind_per_seed", {}).get(column, {}).get(kind)) or []
    if len(vals) != len(r["seeds"]):  # one value per seed, in seed order (remoco.reproduce.build_tables)
        return {}
    return {str(s): float(v) for s, v in zip(r["seeds"], vals)}


def unvalidated(result: dict, column: str) -> bool:
    """Whether ``column`` of ``result`` was scored by a tracker of :data:`UNVALIDATED_TRACKERS`."""
    label = (result.get("labels") or {}).get(column) or ""
    return any(t in label for t in UNVALIDATED_TRACKERS)


def comparison(result: dict, a: str, b: str, column: str, kind: str | None = None) -> dict:
    """Row ``a`` minus row ``b`` on ``column`` (``kind``: only the bench entries of that kind, e.g. the object set's
    ``"camera"`` entries), paired by seed: ``diff`` (mean of the per-seed differences), its 95 % t interval ``low`` /
    ``high`` with ``df`` = seeds - 1 and ``se``, ``detectable`` (the smallest difference these seeds would detect at
    power 0.8), ``unvalidated`` (the column's tracker failed validation). ``low`` / ``high`` are None with fewer
    than two common seeds."""
    va, vb = _seed_values(result, a, column, kind), _seed_values(result, b, column, kind)
    if not va or not vb:
        raise ValueError(f"column: no values of {column!r}{'' if kind is None else f' ({kind} entries)'} for "
                         f"rows {a!r} and {b!r} of {result['table']}")
    seeds = sorted(va.keys() & vb.keys(), key=int)
    d = np.array([va[s] - vb[s] for s in seeds])
    out = dict(a=a, b=b, column=column, kind=kind, mean_a=float(np.mean(list(va.values()))),
               mean_b=float(np.mean(list(vb.values()))), n=len(seeds),
               diff=float(d.mean()) if len(d) else float(np.mean(list(va.values())) - np.mean(list(vb.values()))),
               low=None, high=None, se=None, df=None, detectable=None, unvalidated=unvalidated(result, column))
    if len(d) > 1:
        ci = t_interval(d)
        sd = float(d.std(ddof=1))
        out.update(low=ci["low"], high=ci["high"], se=ci["se"], df=ci["df"],
                   detectable=smallest_detectable_effect(sd, len(d)) if sd > 0 else 0.0)
    return out


def _direction(c: dict, lower: bool) -> int:
    """+1: clearly in the expected direction (a lower than b when ``lower``: the interval below zero), -1: clearly
    against, 0: not clear (no interval, an interval containing zero, or a column scored by an unvalidated tracker)."""
    if c.get("unvalidated") or c.get("low") is None:
        return 0
    eps = 1e-9 * max(1.0, abs(c["mean_a"]) if "mean_a" in c else 1.0)  # rounding dust is not a difference
    if c["high"] < -eps or c["low"] > eps:
        return 1 if (c["high"] < 0) == lower else -1
    return 0


def verdict_of(comparisons, lower: bool = True) -> str:
    """:data:`VERDICTS` of a claim that every comparison (row a vs row b) goes a < b (``lower``) or a > b."""
    signs = [_direction(c, lower) for c in comparisons]
    if signs and all(s == 1 for s in signs):
        return "reproduced"
    if any(s == -1 for s in signs):
        return "not reproduced"
    return "inconclusive"


def _evidence(c: dict, unit: str = "") -> str:
    what = f"{c['column']}{'' if c['kind'] is None else ', ' + c['kind'] + ' entries'}"
    ci = "" if c.get("low") is None else (f" [{c['low']:+.3g}, {c['high']:+.3g}], df {c['df']}"
                                          f", detectable {c['detectable']:.3g}")
    flag = " (tracker failed validation: not used)" if c.get("unvalidated") else ""
    return (f"{what}: {c['a']} {c['mean_a']:.4g} vs {c['b']} {c['mean_b']:.4g}{unit}, difference {c['diff']:+.3g}"
            f"{ci}{flag}")


def _sweep_rows(result: dict) -> list[str]:
    """The row names of a sweep table (``"k=2"``, ``"r_min=0.95"``) in the order of their values."""
    return sorted((r["row"] for r in result["rows"]), key=lambda n: float(n.split("=", 1)[1]))


def _sweep_ends(result: dict) -> tuple[str, str]:
    names = _sweep_rows(result)
    return names[0], names[-1]


def claim_verdicts(results: dict) -> list[dict]:
    """One dict per claim of :data:`CLAIMS` whose tables are in ``results`` (``{table: result}``): ``claim``,
    ``statement``, ``verdict``, ``evidence`` (one sentence per comparison), ``comparisons``, and ``tally``: how
    many of the claim's directional comparisons are clear in the paper's direction (``for``), clear against it
    (``against``), and how many there are (``of``) — a "not reproduced" with clear comparisons on both sides is
    mixed evidence, and the tally says so."""
    out = []

    def add(cid, comps, verdict, extra=(), directional=None, lower=True):
        signs = [_direction(c, lower) for c in (comps if directional is None else directional)]
        out.append(dict(claim=cid, statement=CLAIMS[cid], verdict=verdict, comparisons=comps,
                        evidence=[_evidence(c) for c in comps] + list(extra),
                        tally={"for": signs.count(1), "against": signs.count(-1), "of": len(signs)}))

    t2, t3 = results.get("table2"), results.get("table3")
    if t2 and t3:
        comps = [comparison(t, "remoco", "gaussian", f"MD-Vid ({s})") for t, s in ((t2, "fine"), (t3, "object"))]
        add("C1", comps, verdict_of(comps))
        try:
            cam = [comparison(t3, "remoco", "traj_only", "MD-Vid (object)", kind="camera")]
            add("C2", cam, verdict_of(cam))
        except ValueError:
            add("C2", [], "inconclusive", ["no camera-motion entry of the object set was evaluated"])
        fc = [comparison(t, "remoco", other, f"Frame Consis. ({s})") for t, s in ((t2, "fine"), (t3, "object"))
              for other in ("base", "gaussian")]
        flow = [comparison(t, "remoco", "base", f"Avg. flow magnitude ({s})")
                for t, s in ((t2, "fine"), (t3, "object"))]
        fc_equal = all(abs(c["diff"]) < 0.01 for c in fc)
        moves = verdict_of(flow, lower=False)
        verdict = ("reproduced" if fc_equal and moves == "reproduced" else
                   "not reproduced" if not fc_equal or moves == "not reproduced" else "inconclusive")
        add("C6", fc + flow, verdict, [f"frame consistency within 0.01 of the base and the Gaussian baseline on "
                                       f"both sets: {'yes' if fc_equal else 'no'} (the paper's bound in Fig. 7a)"],
            directional=flow, lower=False)
    if "fig7a" in results:
        lo, hi = _sweep_ends(results["fig7a"])
        comps = [comparison(results["fig7a"], hi, lo, f"MD-Vid ({s})") for s in ("fine", "object")]
        add("C3", comps, verdict_of(comps))
    if "fig7b" in results:
        t = results["fig7b"]
        others = [r["row"] for r in t["rows"] if r["row"] != "r_min=0.95"]
        comps = [comparison(t, "r_min=0.95", o, f"MD-Vid ({s})") for s in ("fine", "object") for o in others]
        against = [c for c in comps if _direction(c, True) == -1]
        small = [c for c in comps if c["b"] == _sweep_ends(t)[0]]
        verdict = ("not reproduced" if against else
                   "reproduced" if all(_direction(c, True) == 1 for c in small) else "inconclusive")
        add("C4", comps, verdict)
    if "fig9" in results:
        comps = [comparison(results["fig9"], "remoco", o, f"MD-Vid ({s})") for s in ("fine", "object")
                 for o in ("concat", "sum")]
        add("C5", comps, verdict_of(comps))
    return sorted(out, key=lambda d: d["claim"])


def tally_text(verdict: dict) -> str:
    """``"clear for the paper in 1 of 4 comparisons, against it in 1"`` (see :func:`claim_verdicts`)."""
    t = verdict["tally"]
    return f"clear for the paper in {t['for']} of {t['of']} comparisons, against it in {t['against']}"


_UNITS = {"MD-Vid": "px, lower is better", "MD-Img": "px, lower is better", "Frame Consis.": "cosine similarity"}


def _reference_lines(ax, reference, metric: str) -> None:
    """Horizontal lines of ``reference`` (``{label: {column: value}}``, e.g. the image-only base's means) for
    ``metric``: solid for the fine set, dashed for the object set, grey."""
    for label, values in (reference or {}).items():
        for s, ls in (("fine", "-"), ("object", "--")):
            v = values.get(f"{metric} ({s})")
            if v is not None:
                ax.axhline(v, color="0.5", ls=ls, lw=1, label=f"{label}, {s} set")


def plot_sweep(result: dict, metrics=("MD-Vid", "Frame Consis."), axes=None, log_x: bool | None = None,
               reference: dict | None = None):
    """Fig. 7 analogue: each metric against the swept value, one line per bench set, error bars = standard
    deviation over training seeds; axis titles carry the metric's label (substitute; paper's model) and y labels
    its unit; ``reference``: ``{label: {column: value}}`` drawn as grey lines (e.g. the image-only base)."""
    import matplotlib.pyplot as plt

    names = _sweep_rows(result)
    field = names[0].split("=", 1)[0]
    values = [float(n.split("=", 1)[1]) for n in names]
    log = log_x if log_x is not None else field == "k"
    x = values if log else list(range(len(values)))  # evenly spaced settings (r_min: 0.95 and 0.99 stay apart)
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2))
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, metrics):
        for s, style in (("fine", "o-"), ("object", "s--")):
            col = f"{metric} ({s})"
            if col not in result["columns"]:
                continue
            m = [row(result, n)["mean"][col] for n in names]
            sd = [row(result, n)["spread"][col] or 0.0 for n in names]
            ax.errorbar(x, m, yerr=sd, fmt=style, capsize=3, label=f"{s} set")
        ax.set_xlabel(field)
        if log:
            ax.set_xscale("log", base=2)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{v:g}" for v in values])
        _reference_lines(ax, reference, metric)
        label = result["labels"].get(f"{metric} (fine)", metric)
        ax.set_title(label.replace(" (", "\n(", 1), fontsize=9)
        ax.set_ylabel(f"{metric} ({_UNITS.get(metric, 'value')})", fontsize=8)
        ax.legend(fontsize=7)
    return axes


def plot_injection(result: dict, ax=None, metric: str = "MD-Vid", reference: dict | None = None):
    """Fig. 9 analogue: ``metric`` per injection (bars; error bars = standard deviation over seeds), per set;
    ``reference`` as in :func:`plot_sweep`."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.2))
    names = [r["row"] for r in result["rows"]]
    width = 0.38
    for i, s in enumerate(("fine", "object")):
        col = f"{metric} ({s})"
        m = [row(result, n)["mean"][col] for n in names]
        sd = [row(result, n)["spread"][col] or 0.0 for n in names]
        ax.bar(np.arange(len(names)) + (i - 0.5) * width, m, width, yerr=sd, capsize=3, label=f"{s} set")
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels([SYSTEM_LABELS.get(n, n) for n in names], fontsize=8)
    _reference_lines(ax, reference, metric)
    ax.set_ylabel(f"{metric} ({_UNITS.get(metric, 'value')})")
    ax.set_title(result["labels"].get(f"{metric} (fine)", metric), fontsize=9)
    ax.legend(fontsize=7)
    return ax

