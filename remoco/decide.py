"""Deciding a claim from paired per-entry values: an interval for the difference, a verdict, and the power.

Two systems scored on the same bench entries with the same sampling seeds give *paired* values: entry ``e`` of
training seed ``s`` has a score ``a[s, e]`` for one system and ``b[s, e]`` for the other, and their difference
``d = a - b`` removes what the entry itself contributes (an easy drag, a textureless object). A claim "a is lower
than b" is then decided on the mean difference:

* :func:`t_interval` — the Student-t interval of the mean of independent values (``n - 1`` degrees of freedom);
  used on the per-entry differences averaged over seeds when seeds are few.
* :func:`welch_interval` — the Welch interval of a difference of means between two *unpaired* samples (different
  clips, e.g. a model's training clips against unseen ones), where no pairing removes the entries' spread.
* :func:`bootstrap_interval` — a two-level percentile bootstrap of the mean of a (seeds, entries) matrix of
  differences: seeds and entries are resampled with replacement independently, so both sources of spread (which
  training run, which entry) widen the interval.
* :func:`verdict` — *reproduced* when the interval excludes zero in the paper's direction, *contradicted* when it
  excludes zero the other way, *inconclusive* otherwise.
* :func:`smallest_detectable_effect` / :func:`entries_for_power` — the difference a two-sided test at level
  ``1 - confidence`` detects with probability ``power`` given the spread of the differences, and the number of
  entries a wanted effect needs: an inconclusive verdict is reported with the smallest effect the experiment could
  have detected.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["VERDICTS", "t_interval", "welch_interval", "interval_text", "bootstrap_interval", "verdict",
           "smallest_detectable_effect", "entries_for_power"]

#: The verdicts of :func:`verdict`.
VERDICTS = ("reproduced", "contradicted", "inconclusive")


def _level(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be a number in [0.5, 1), got {confidence!r}")
    return float(confidence)


def _values(values, name: str, ndim: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != ndim or v.size == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-d array of numbers, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} holds NaN or inf values (a lost track must be scored, not left out)")
    return v


def t_interval(values, confidence: float = 0.95) -> dict:
    """Mean of the independent ``values`` (1-d, at least 2) with its Student-t interval: ``{"mean", "low",
    "high", "se", "df", "n"}`` (``se`` = sd / sqrt(n) with ddof = 1, ``df`` = n - 1)."""
    from scipy import stats

    level = _level(confidence)
    v = _values(values, "values", 1)
    if v.size < 2:
        raise ValueError(f"values must hold at least 2 numbers for an interval, got {v.size}")
    n = v.size
    se = float(v.std(ddof=1) / math.sqrt(n))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    m = float(v.mean())
    return {"mean": m, "low": m - half, "high": m + half, "se": se, "df": n - 1, "n": n}


def welch_interval(a, b, confidence: float = 0.95) -> dict:
    """Difference of the means of two independent samples, ``mean(a) - mean(b)`` (1-d, at least 2 values each),
    with Welch's t interval (unequal variances; Welch-Satterthwaite degrees of freedom): ``{"mean", "low", "high",
    "se", "df", "n"}`` (``n`` = the two sizes)."""
    from scipy import stats

    level = _level(confidence)
    x, y = _values(a, "a", 1), _values(b, "b", 1)
    if x.size < 2 or y.size < 2:
        raise ValueError(f"a and b must hold at least 2 numbers each, got {x.size} and {y.size}")
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    m = float(x.mean() - y.mean())
    if se == 0:
        return {"mean": m, "low": m, "high": m, "se": 0.0, "df": float(x.size + y.size - 2), "n": (x.size, y.size)}
    df = (vx + vy) ** 2 / (vx ** 2 / (x.size - 1) + vy ** 2 / (y.size - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return {"mean": m, "low": m - half, "high": m + half, "se": se, "df": float(df), "n": (x.size, y.size)}


def interval_text(interval: dict, digits: int = 0, scale: float = 1.0) -> str:
    """An interval of :func:`t_interval` (``mean``, ``low``, ``high``) as the page prints it: ``"+m [+l, +h]"``,
    signed, with ``digits`` decimals, each value times ``scale`` (e.g. 100 for a share in percentage points)."""
    m, lo, hi = (scale * interval[k] for k in ("mean", "low", "high"))
    return f"{m:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def bootstrap_interval(differences, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> dict:
    """Mean of a (seeds, entries) matrix of paired differences with a two-level percentile bootstrap interval
    (seeds and entries resampled with replacement, independently; ``resamples`` draws from ``seed``):
    ``{"mean", "low", "high", "seeds", "entries", "resamples"}``. With one seed only the entries are resampled."""
    level = _level(confidence)
    d = _values(differences, "differences", 2)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ValueError(f"resamples must be an int >= 100, got {resamples!r}")
    S, E = d.shape
    if E < 2:
        raise ValueError(f"differences must hold at least 2 entries per seed, got {E}")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for i in range(resamples):
        rows = rng.integers(0, S, S) if S > 1 else np.zeros(1, int)
        cols = rng.integers(0, E, E)
        means[i] = d[np.ix_(rows, cols)].mean()
    lo, hi = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return {"mean": float(d.mean()), "low": float(lo), "high": float(hi), "seeds": S, "entries": E,
            "resamples": resamples}


def verdict(interval: dict, paper_says_lower: bool = True) -> str:
    """:data:`VERDICTS` of an interval of ``a - b`` when the paper says a is lower than b (``paper_says_lower``,
    e.g. ReMoCo's MD-Vid below the baseline's) or higher."""
    lo, hi = float(interval["low"]), float(interval["high"])
    if lo > hi:
        raise ValueError(f"interval: low {lo} is above high {hi}")
    if hi < 0:
        return "reproduced" if paper_says_lower else "contradicted"
    if lo > 0:
        return "contradicted" if paper_says_lower else "reproduced"
    return "inconclusive"


def smallest_detectable_effect(sd: float, n: int, confidence: float = 0.95, power: float = 0.8) -> float:
    """The mean difference a two-sided paired t test at level ``1 - confidence`` detects with probability ``power``
    from ``n`` paired values whose differences have standard deviation ``sd``:
    ``(t_{1 - alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n)`` (the usual approximation, exact in the limit)."""
    from scipy import stats

    level = _level(confidence)
    if not 0.5 <= power < 1:
        raise ValueError(f"power must be in [0.5, 1), got {power!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    if not sd >= 0:
        raise ValueError(f"sd must be >= 0, got {sd!r}")
    df = n - 1
    return float((stats.t.ppf(0.5 + level / 2, df) + stats.t.ppf(power, df)) * sd / math.sqrt(n))


def entries_for_power(sd: float, effect: float, confidence: float = 0.95, power: float = 0.8,
                      limit: int = 100_000) -> int:
    """The smallest number of paired values whose :func:`smallest_detectable_effect` is at most ``effect``."""
    if not effect > 0:
        raise ValueError(f"effect must be > 0, got {effect!r}")
    n = 2
    while smallest_detectable_effect(sd, n, confidence, power) > effect:
        n += 1
        if n > limit:
            raise ValueError(f"effect={effect!r} needs more than limit={limit} values at sd={sd!r}")
    return n
