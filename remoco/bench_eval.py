"""Measuring a system on a bench set (the paper's Sec. 4.1 protocol): one seeded video per entry, then MD-Img,
MD-Vid, frame consistency and average flow magnitude per entry with :mod:`remoco.metrics`' labelled substitutes,
and FID / FVD against the entries' ground-truth clips where the bench has them (the toy ReMoCo-Bench,
:mod:`remoco.benchset`). :mod:`remoco.reproduce` runs these for every experiment of chapters 6-7."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .shipped import SHIPPED_TRAJECTORY_FILL

__all__ = ["MD_METRICS", "SAMPLE_SEED_STRIDE", "sample_examples", "sample_video", "example_following",
           "select_entries", "VALIDATED_TRACKERS", "validation_entries", "validate_md_vid",
           "evaluate_videos", "evaluate_system", "evaluate_ground_truth", "validate_distribution_metrics",
           "DISTRIBUTION_LADDER", "distribution_validation_summary"]

#: The per-entry metrics of Tables 2-3 (and the average flow magnitude of Sec. 4.2).
MD_METRICS = ("MD-Img", "MD-Vid", "Frame Consis.", "Avg. flow magnitude")
SAMPLE_SEED_STRIDE = 2**16  # sampling seed of entry i in replicate s: s * stride + i (bench indices < 2**16)


def sample_examples(pipeline, examples, seeds, k: int | None = None, trajectory_fill: str = SHIPPED_TRAJECTORY_FILL,
                    num_inference_steps: int = 8, batch_size: int = 8, precision: str = "auto") -> list[np.ndarray]:
    """One video (L, H, W, 3) uint8 per bench example, batched (:func:`remoco.sampling.sample_videos`): a pipeline
    with a ``controller`` gets each example's drag (:func:`remoco.bench.example_condition`, with ``k`` — default
    the example's — and ``trajectory_fill``), a plain SVD pipeline the reference images only. ``seeds``: one
    generator seed per example. Examples of one size and length are sampled together."""
    from .bench import example_condition
    from .sampling import sample_videos

    examples, seeds = list(examples), [int(s) for s in seeds]
    if not examples:
        raise ValueError("examples: expected at least one bench example")
    if len(seeds) != len(examples):
        raise ValueError(f"seeds: expected one per example ({len(examples)}), got {len(seeds)}")
    groups: dict = {}
    for i, e in enumerate(examples):
        groups.setdefault((e.height, e.width, int(e.num_frames)), []).append(i)
    out: list = [None] * len(examples)
    for (_, _, frames), idx in groups.items():
        conditions = None
        if getattr(pipeline, "controller", None) is not None:
            conditions = [example_condition(dataclasses.replace(examples[i], k=int(k or examples[i].k)),
                                            trajectory_fill=trajectory_fill) for i in idx]
        videos = sample_videos(pipeline, [np.asarray(examples[i].image, np.uint8) for i in idx],
                               [seeds[i] for i in idx], conditions, batch_size=batch_size, precision=precision,
                               num_frames=frames, num_inference_steps=num_inference_steps)
        for i, v in zip(idx, videos):
            out[i] = v
    return out


def sample_video(pipeline, example, k: int | None = None, trajectory_fill: str = SHIPPED_TRAJECTORY_FILL,
                 num_inference_steps: int = 8, seed: int | None = None, precision: str = "auto") -> np.ndarray:
    """One video (L, H, W, 3) uint8 of a bench example (:func:`sample_examples` of one); ``seed``: the generator
    seed (default the example's)."""
    return sample_examples(pipeline, [example], [example.seed if seed is None else seed], k, trajectory_fill,
                           num_inference_steps, precision=precision)[0]


def example_following(pipelines: dict, example, seeds=(0, 1, 2, 3), num_inference_steps: int | None = None,
                      trajectory_fill: str | None = None) -> dict:
    """Does a drag move what it drags? For each pipeline of ``{name: pipeline}`` (see :func:`sample_video`: a
    ReMoCo pipeline gets the drag, a plain SVD the image only) and each generator seed, the distance between the
    drawn path and the tracked start point of the example's first trajectory
    (:func:`remoco.evaluate.trajectory_distance`, OpenCV DIS flow; paper: CoTracker).
    ``num_inference_steps`` / ``trajectory_fill``: default the example's (8 steps if it names none).
    Returns ``{name: [px per seed]}``."""
    from .evaluate import trajectory_distance

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: expected at least one generator seed, got none")
    if not example.trajectories:
        raise ValueError("example: expected at least one trajectory, got none")
    drawn = (example.drawn_trajectories or example.trajectories)[0]
    steps = num_inference_steps or example.num_inference_steps or 8
    fill = trajectory_fill or example.trajectory_fill
    out = {}
    for name, p in pipelines.items():
        videos = sample_examples(p, [example] * len(seeds), seeds, trajectory_fill=fill, num_inference_steps=steps)
        out[name] = [trajectory_distance(v, np.asarray(drawn, float))[0] for v in videos]
    return out


def select_entries(bench, entries) -> list:
    """The entries of ``bench`` to evaluate: all (``entries`` None), ``n`` spread evenly over the set (entry
    ``floor(i * len / n)`` for i < n, so every kind of entry is drawn where kinds alternate), or a list of names."""
    if entries is None:
        return list(bench)
    if isinstance(entries, int):  # spread evenly over the set: every kind of entry is drawn
        items = list(bench)
        if not 0 < entries <= len(items):
            raise ValueError(f"entries: expected 1..{len(items)} (the bench's size), got {entries}")
        return [items[int(i * len(items) / entries)] for i in range(entries)]
    return [bench[n] for n in entries]


#: The MD-Vid tracker configurations :func:`validate_md_vid` scores by default: the tracker every chapter uses (DIS
#: flow, median of a 5 x 5 block), the same with the release's 8 x 8 block, the LK tracker the first evaluation used
#: and an appearance tracker (NCC) as a cross-check.
VALIDATED_TRACKERS = {
    "DIS flow, 5x5 block": dict(tracker="flow", block=5),
    "DIS flow, 8x8 block": dict(tracker="flow", block=8),
    "LK, 5x5 block": dict(tracker="lk", block=5),
    "NCC appearance, 11x11 patch": dict(tracker="ncc", patch=11),
}


def validation_entries(bench, entries=None) -> list[dict]:
    """The known-answer material of :func:`remoco.tracking.validate_motion_distance` for the chosen entries of a
    bench (:func:`select_entries`): each entry's image, brush, first trajectory and, for the toy benches, its
    ground-truth clip (rendered again from its truth)."""
    from .benchset import ground_truth_clip

    return [dict(name=f"{bench.set}/{e.name}", set=bench.set, kind=e.kind, image=np.asarray(e.example.image),
                 region=np.asarray(e.example.brush_mask, bool), trajectory=np.asarray(e.example.trajectories[0]),
                 truth=None if e.truth is None else ground_truth_clip(e.truth).video)
            for e in select_entries(bench, entries)]


def validate_md_vid(benches, entries=None, trackers=None) -> dict:
    """MD-Vid validated on the bench's exact paths: :func:`remoco.tracking.validate_motion_distance` of every
    tracker of ``trackers`` (default :data:`VALIDATED_TRACKERS`) on the ``entries`` of each bench of ``benches``
    (``{set: Bench}``). Returns ``{"rows": per entry x case x tracker, "summary": per tracker (all sets),
    "by_set": {set: per-tracker summary}}``."""
    from .tracking import validate_motion_distance, validation_summary

    trackers = VALIDATED_TRACKERS if trackers is None else trackers
    rows = []
    for s, bench in benches.items():
        for r in validate_motion_distance(validation_entries(bench, entries), trackers):
            rows.append({"set": s, **r})
    by_set = {s: validation_summary([r for r in rows if r["set"] == s]) for s in benches}
    return dict(rows=rows, summary=validation_summary(rows), by_set=by_set, trackers=trackers)


def _summary(values) -> tuple:
    v = np.asarray([x for x in values if x is not None], float)
    if not v.size:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None)


def evaluate_videos(videos: dict, examples: dict, embedder, real: dict | None = None) -> dict:
    """Metrics of ``videos`` ``{entry: (L, H, W, 3)}`` against the drags of ``examples`` ``{entry: BenchExample}``
    (MD over the entry's trajectories, averaged): per-entry ``rows``, ``mean`` and ``sem`` over entries,
    ``undefined`` counts (MD-Img of a uniform start patch) and ``labels``; with ``real`` clips ``{entry: clip}``
    also ``distribution`` = FID, FVD, KID and KVD of the videos against them
    (:func:`remoco.metrics.distribution_scores`) and ``distribution_samples`` = how many samples of how many feature
    dimensions each fitted, ``{"frames": [N, D], "clips": [N, D]}`` (a Fréchet distance with N <= D fits a singular
    covariance; the kernel distances do not need N > D)."""
    from . import metrics

    rows, labels = [], {}
    undefined = {m: 0 for m in MD_METRICS}
    for name, video in videos.items():
        ex = examples[name]
        row = {"entry": name}
        for metric, fn in (("MD-Img", metrics.md_img), ("MD-Vid", metrics.md_vid)):
            vals = []
            for t in ex.trajectories:
                try:
                    s = fn(video, t)
                except ValueError as exc:  # NCC is undefined on a uniform start patch: counted, not hidden
                    if "uniform" not in str(exc):
                        raise
                    continue
                vals.append(s.value)
                labels[metric] = s.label
            row[metric] = float(np.mean(vals)) if vals else None
            undefined[metric] += not vals
        for metric, s in (("Frame Consis.", metrics.frame_consistency(video, embedder)),
                          ("Avg. flow magnitude", metrics.average_flow_magnitude(video))):
            row[metric], labels[metric] = s.value, s.label
        rows.append(row)
    out = dict(entries=list(videos), rows=rows, labels=labels, undefined=undefined, mean={}, sem={})
    for m in MD_METRICS:
        out["mean"][m], out["sem"][m] = _summary(r[m] for r in rows)
    if real is not None:
        gen, ref = list(videos.values()), [real[n] for n in videos]
        scores, samples = metrics.distribution_scores(ref, gen, embedder)
        out["distribution"] = {m: s.value for m, s in scores.items()}
        out["distribution_samples"] = samples
        out["labels"].update({m: s.label for m, s in scores.items()})
    return out


def _truth_clips(entries) -> dict:
    from .benchset import ground_truth_clip
    from .video import as_uint8_frames

    return {e.name: as_uint8_frames(ground_truth_clip(e.truth).video) for e in entries if e.truth is not None}


def evaluate_system(pipeline, bench, entries=None, k: int | None = None,
                    trajectory_fill: str = SHIPPED_TRAJECTORY_FILL, num_inference_steps: int = 8,
                    sample_seed: int = 0, embedder=None) -> dict:
    """Sample one video per entry of ``bench`` (a :class:`remoco.benchset.Bench`; ``entries``: n spread over the set
    (:func:`select_entries`), a list of names, or None for all) with generator seed ``sample_seed * 2**16 +
    example.seed`` and measure it (:func:`evaluate_videos`; ``embedder`` default:
    :func:`remoco.metrics.vae_embedder` of the pipeline's VAE); each row carries its entry's ``kind``.
    When the entries carry ground truth, ``distribution`` holds FID / FVD against their ground-truth clips.
    ``k``: the drag's region size (the controller's training k; default each example's)."""
    from . import metrics

    chosen = select_entries(bench, entries)
    embedder = embedder or metrics.vae_embedder(pipeline.vae)
    sampled = sample_examples(pipeline, [e.example for e in chosen],
                              [sample_seed * SAMPLE_SEED_STRIDE + int(e.example.seed) for e in chosen], k,
                              trajectory_fill, num_inference_steps)
    videos = {e.name: v for e, v in zip(chosen, sampled)}
    real = _truth_clips(chosen)
    out = evaluate_videos(videos, {e.name: e.example for e in chosen}, embedder,
                          real if len(real) == len(chosen) and len(chosen) >= 2 else None)
    _add_kinds(out, chosen)
    out["settings"] = dict(bench=bench.name, set=bench.set, k=k, trajectory_fill=trajectory_fill,
                           num_inference_steps=num_inference_steps, sample_seed=sample_seed,
                           conditioned=getattr(pipeline, "controller", None) is not None)
    return out


def _add_kinds(out: dict, chosen) -> None:
    kinds = {e.name: e.kind for e in chosen}
    for row in out["rows"]:
        row["kind"] = kinds[row["entry"]]


def evaluate_ground_truth(bench, embedder, entries=None) -> dict:
    """:func:`evaluate_videos` of the entries' ground-truth clips: what the trackers measure on perfect motion."""
    chosen = select_entries(bench, entries)
    out = evaluate_videos(_truth_clips(chosen), {e.name: e.example for e in chosen}, embedder)
    _add_kinds(out, chosen)
    out["settings"] = dict(bench=bench.name, set=bench.set, ground_truth=True)
    return out


def validate_distribution_metrics(bench, embedder, entries=None, cases=None) -> list[dict]:
    """FID / FVD / KID / KVD (:func:`remoco.metrics.distribution_scores`) on known answers: for each case of
    ``cases`` (default :data:`remoco.tracking.KNOWN_CASES`: the brushed region moved along the drawn path at full,
    half, zero or reversed speed, some blurring or changing colour) one known-answer clip per chosen entry of
    ``bench`` (:func:`remoco.tracking.known_path_video`), the set scored against the entries' ground-truth clips
    as a system's videos are. A metric that tells motion apart ranks "along the path" lowest and "frozen first
    frame" / "wrong way" highest. Returns one row per case: ``case, speed``, the four values and ``samples``
    (``{"frames": [N, D], "clips": [N, D]}``)."""
    from . import metrics
    from .tracking import KNOWN_CASES, known_case_videos

    cases = KNOWN_CASES if cases is None else cases
    chosen = [e for e in validation_entries(bench, entries) if e["truth"] is not None]
    if len(chosen) < 2:
        raise ValueError(f"bench: needs at least 2 chosen entries with ground-truth clips, got {len(chosen)}")
    real = [np.asarray(e["truth"]) for e in chosen]
    known = [known_case_videos(e, len(t), cases) for e, t in zip(chosen, real)]
    rows = []
    for case, (speed, _, _) in cases.items():
        scores, samples = metrics.distribution_scores(real, [k[case] for k in known], embedder)
        rows.append(dict(case=case, speed=speed, **{m: s.value for m, s in scores.items()}, samples=samples))
    return rows


#: The known cases whose distribution-metric values must rise in this order (:func:`distribution_validation_summary`).
DISTRIBUTION_LADDER = ("along the path", "half speed", "frozen first frame", "wrong way")


def distribution_validation_summary(rows, spread: dict, factor: float = 2.0) -> list[dict]:
    """Can each metric of :func:`validate_distribution_metrics`' ``rows`` rank systems by their motion? Per metric:
    whether its values rise along :data:`DISTRIBUTION_LADDER` (along the path lowest, the wrong way highest), the
    gap between the wrong way and along the path, and whether that gap exceeds ``factor`` x ``spread[metric]`` (e.g.
    one system's standard deviation over sampling seeds): ``ranks`` when both hold."""
    by_case = {r["case"]: r for r in rows}
    missing = [c for c in DISTRIBUTION_LADDER if c not in by_case]
    if missing:
        raise ValueError(f"rows: the known cases {missing} are missing")
    out = []
    for m in (m for m in rows[0] if m not in ("case", "speed", "samples")):
        if m not in spread or spread[m] is None:
            raise ValueError(f"spread: expected a value for {m!r}, got {spread.get(m)!r}")
        v = [by_case[c][m] for c in DISTRIBUTION_LADDER]
        ordered = all(a < b for a, b in zip(v, v[1:]))
        gap = v[-1] - v[0]
        out.append(dict(metric=m, ordered=ordered, gap=gap, spread=float(spread[m]),
                        ranks=ordered and gap > factor * float(spread[m])))
    return out
