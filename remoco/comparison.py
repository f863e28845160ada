"""Which system follows the drag, entry by entry? The main comparison of chapter 6, scored with the validated MD-Vid
and decided with paired intervals.

Every system samples every entry of both toy bench sets (:mod:`remoco.benchset`) with the **same generator seed**
per entry (``sample_seed * 2**16 + example.seed``), the drag given as chapter 5 drives the shipped controllers
(k = 2, the drag filling the brushed region; the sparse Gaussian baseline its point Gaussian,
:data:`TRAJECTORY_FILL`). Each video gets the per-entry scores of :func:`entry_scores`; the
results keep every entry's values (``results/comparison.json``), so two systems are compared by their paired
per-entry differences (:func:`paired`): a 95 % Student-t interval with n - 1 degrees of freedom
(:func:`remoco.decide.t_interval`), the verdict of :func:`remoco.decide.verdict`, and the smallest effect the
comparison could have detected at power 0.8 (:func:`remoco.decide.smallest_detectable_effect`).

The systems (:data:`SYSTEMS`) are chapter 5's shipped toy models and controllers (training seed 0), plus
controllers trained with the same recipe and another seed or another condition where they exist on disk
(``runs/seeds``): those are what make a comparison symmetric (the Gaussian baseline trained in ReMoCo's dense regime)
and measure the spread over training seeds. A trained system's seed ``i`` is named ``<system>_s<i>``
(:func:`remoco.verdicts.seed_name`). Reading a result into decisions (ReMoCo's seed ``i`` paired with the baseline's
seed ``i``, a t interval over training seeds) is :mod:`remoco.verdicts`.

Command line (resumable: each system's scores are cached under ``--work``)::

    python -m remoco.comparison run [--systems base remoco ...] [--work runs/comparison] [--out results/comparison.json]

A system already in ``--out`` with the same settings (sampler seed and steps, k, tracker, its own trajectory fill) is
kept from there, so adding one system samples that system only.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from .bench_eval import SAMPLE_SEED_STRIDE, sample_examples
from .config import SHIPPED_DIR
from .decide import smallest_detectable_effect, t_interval, verdict
from .tracking import TRACKERS, motion_distance, video_frames

__all__ = ["ROOT", "SYSTEMS", "TRAJECTORY_FILL", "trajectory_fill_of", "SCORES", "LOWER_IS_BETTER", "entry_scores",
           "load_system", "score_pipeline", "training_photos", "seed_run_targets", "available_systems", "score_system",
           "run", "load", "values", "paired", "camera_object_entries", "SETS", "main"]

ROOT = Path(__file__).resolve().parent.parent
_SEEDS = ROOT / "runs" / "seeds"

#: name -> (what it is, how it is loaded: ``("base",)`` / ``("shipped", variant, folder or None)`` /
#: ``("run", variant, folder)`` / ``("truth",)``).
SYSTEMS = {
    "ground_truth": ("the entry's ground-truth clip (no model: the metric's floor)", ("truth",)),
    "base": ("toy SVD base, reference image only", ("base",)),
    "gaussian": ("Gaussian trajectory, shipped (sparse draws r_m ~ U[0.95, 1], as DragNUWA-style baselines train)",
                 ("shipped", "gaussian", None)),
    "gaussian_dense": ("Gaussian trajectory trained in ReMoCo's dense regime (same steps, trainable set, brush)",
                       ("run", "gaussian", _SEEDS / "gaussian_dense-s0")),
    "remoco": ("ReMoCo, shipped (seed 0)", ("shipped", "remoco", None)),
    "remoco_s1": ("ReMoCo, the shipped recipe with training seed 1", ("run", "remoco", _SEEDS / "remoco-s1")),
    "gaussian_s1": ("the shipped Gaussian baseline's recipe with training seed 1",
                    ("run", "gaussian", _SEEDS / "gaussian-s1")),
    "gaussian_dense_s1": ("the dense Gaussian baseline with training seed 1",
                          ("run", "gaussian", _SEEDS / "gaussian_dense-s1")),
    "remoco_s2": ("ReMoCo, the shipped recipe with training seed 2", ("run", "remoco", _SEEDS / "remoco-s2")),
    "gaussian_s2": ("the shipped Gaussian baseline's recipe with training seed 2",
                    ("run", "gaussian", _SEEDS / "gaussian-s2")),
    "gaussian_dense_s2": ("the dense Gaussian baseline with training seed 2",
                          ("run", "gaussian", _SEEDS / "gaussian_dense-s2")),
    "remoco_s3": ("ReMoCo, the shipped recipe with training seed 3", ("run", "remoco", _SEEDS / "remoco-s3")),
    "gaussian_dense_s3": ("the dense Gaussian baseline with training seed 3",
                          ("run", "gaussian", _SEEDS / "gaussian_dense-s3")),
    "traj_only": ("ReMoCo without the motion mask, shipped", ("shipped", "traj_only", None)),
    "traj_only_s1": ("ReMoCo without the motion mask, training seed 1", ("run", "traj_only", _SEEDS / "traj_only-s1")),
    "traj_only_s2": ("ReMoCo without the motion mask, training seed 2", ("run", "traj_only", _SEEDS / "traj_only-s2")),
    "remoco_frozen": ("ReMoCo with the paper's frozen base, shipped", ("shipped", "remoco",
                                                                        SHIPPED_DIR / "remoco-frozen-toy")),
}
# C5 (Fig. 9): ReMoCo's recipe with only the feature injection changed, training seeds 0-3 (seed 0 is not shipped)
SYSTEMS.update({(v if s == 0 else f"{v}_s{s}"): (f"ReMoCo's recipe with {how} instead of modulation, training seed {s}",
                                                ("run", v, _SEEDS / f"{v}-s{s}"))
                for v, how in (("concat", "concatenation"), ("sum", "summation")) for s in range(4)})

#: How a system is driven where it differs from the shipped ReMoCo's brush fill
#: (:data:`remoco.shipped.SHIPPED_TRAJECTORY_FILL`), for every training seed of it (:func:`trajectory_fill_of`): the
#: sparse Gaussian baseline gets its point Gaussian on the drag's start pixel (``"block"``), as it trained on a few
#: points and as chapter 5 drives it; the dense one gets the brush
#: (:meth:`remoco.pipeline.ReMoCoPipeline.prepare_condition`).
TRAJECTORY_FILL = {"gaussian": "block"}

#: The per-entry scores (:func:`entry_scores`) and what they mean.
SCORES = {
    "MD-Vid": "px between the tracked start point and the drawn path (DIS flow, 5x5 block; paper: CoTracker)",
    "MD-Vid ceiling": "px: the same for a video that does not move",
    "share of the way": "1 - MD-Vid / ceiling (1: along the path, 0: frozen, < 0: the wrong way)",
    "MD-Vid (NCC)": "px, the appearance tracker (cross-check; MD-Img's matcher)",
    "motion inside brush": "px: mean DIS flow magnitude from frame 1 inside the brush",
    "motion outside brush": "px: the same outside the brush",
    "warping error": "grey levels: frame t+1 warped back to frame t by DIS flow, mean |difference| (frame consistency)",
}
LOWER_IS_BETTER = {"MD-Vid": True, "MD-Vid (NCC)": True, "share of the way": False, "warping error": True,
                   "motion outside brush": True, "motion inside brush": False}


def _warping_error(v: np.ndarray) -> float:
    """Mean |frame t - frame t+1 warped back by the DIS flow t -> t+1| over consecutive pairs (grey levels): low for
    a video whose frames are consistent, whatever it moves (unlike an embedding's cosine similarity, correct motion
    is not penalised)."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    H, W = v.shape[1:3]
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    errs = []
    for a, b in zip(v[:-1], v[1:]):
        f = dis.calc(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), None)
        back = cv2.remap(b, gx + f[..., 0], gy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        errs.append(np.abs(back.astype(np.float32) - a.astype(np.float32)).mean())
    return float(np.mean(errs))


def entry_scores(video, example) -> dict:
    """The scores of :data:`SCORES` for one video (L, H, W, 3) of a bench ``example`` (its first trajectory and its
    brush). The NCC cross-check is None where the start patch is uniform (NCC undefined there)."""
    from .flow import estimate_flow

    v = video_frames(video)
    traj = np.asarray(example.trajectories[0], np.float64)
    flow, _ = estimate_flow(torch.from_numpy(v))  # once: MD-Vid's tracker and the motion inside / outside the brush
    md = motion_distance(v, traj, flow=flow)
    try:
        ncc = motion_distance(v, traj, tracker="ncc").value
    except ValueError as e:
        if "uniform" not in str(e):
            raise
        ncc = None
    mag = flow[1:].double().norm(dim=-1).mean(0).numpy()
    brush = np.asarray(example.brush_mask, bool)
    return {"MD-Vid": md.value, "MD-Vid ceiling": md.ceiling, "share of the way": md.normalised, "MD-Vid (NCC)": ncc,
            "motion inside brush": float(mag[brush].mean()),
            "motion outside brush": float(mag[~brush].mean()) if (~brush).any() else None,
            "warping error": _warping_error(v)}


def load_system(name: str):
    """The pipeline of system ``name`` (:data:`SYSTEMS`); FileNotFoundError when its weights are not on disk."""
    from .shipped import load_shipped_base, load_shipped_pipeline

    if name not in SYSTEMS:
        raise ValueError(f"name must be one of {tuple(SYSTEMS)}, got {name!r}")
    how = SYSTEMS[name][1]
    if how[0] == "truth":
        raise ValueError("ground_truth is not sampled: its videos are the entries' ground-truth clips")
    if how[0] == "base":
        return load_shipped_base()
    if how[0] == "run":
        folder = Path(how[2]) / "controller" / "final"
        if not (folder / "controller" / "config.json").is_file():
            raise FileNotFoundError(f"{name}: no trained controller at {folder} (train it first; chapter 6 says how)")
        return load_shipped_pipeline(how[1], controller_path=folder)
    return load_shipped_pipeline(how[1], controller_path=how[2])


def seed_run_targets() -> list[str]:
    """What ``make seed-runs`` trains: for each system of :data:`SYSTEMS` loaded from a training run (``runs/seeds/
    <variant>-s<seed>``), the path of its final controller's config.json relative to :data:`ROOT` (the Makefile's
    pattern rule derives the recipe from the folder name)."""
    return [str((Path(how[2]) / "controller" / "final" / "controller" / "config.json").relative_to(ROOT))
            for _, how in SYSTEMS.values() if how[0] == "run"]


def training_photos(name: str) -> str | None:
    """Which photographs the training scenes of system ``name`` drew from (``TrainConfig.photos``; None for a system
    that was not trained). The shipped controllers (seed 0 of ReMoCo, the Gaussian baseline and the trajectory-only
    controller) trained on the bench's seven (``"bench"``, their config files predate the field); the runs of
    ``make seed-runs`` are trained with the toy preset, whose scenes draw from every packaged photograph but the
    held-out ones (``"train"``). A run on disk is read from its provenance, one that is not from that recipe."""
    from .config import TrainConfig, preset_config
    from .shipped import shipped_controller_dir

    if name not in SYSTEMS:
        raise ValueError(f"name must be one of {tuple(SYSTEMS)}, got {name!r}")
    how = SYSTEMS[name][1]
    if how[0] in ("truth", "base"):
        return None
    if how[0] == "shipped":
        return TrainConfig.from_yaml(shipped_controller_dir(how[1], how[2]) / "config.yaml").photos
    prov = Path(how[2]) / "controller" / "final" / "provenance.json"
    if prov.is_file():
        return json.loads(prov.read_text())["config"].get("photos", "bench")
    return preset_config("toy-cpu", "controller").photos


def available_systems() -> list[str]:
    """The systems of :data:`SYSTEMS` whose weights are on disk, in :data:`SYSTEMS`' order."""
    out = []
    for name, (_, how) in SYSTEMS.items():
        if how[0] == "run" and not (Path(how[2]) / "controller" / "final" / "controller" / "config.json").is_file():
            continue
        out.append(name)
    return out


def score_system(name: str, benches: dict, sample_seed: int = 0, num_inference_steps: int = 8, k: int = 2,
                 entries=None) -> list[dict]:
    """One row per entry of every bench of ``benches`` (``{set: Bench}``; ``entries``: the first n per set, None all)
    with system ``name``'s video scored by :func:`entry_scores`."""
    pipe = None if name == "ground_truth" else load_system(name)
    return score_pipeline(pipe, benches, trajectory_fill_of(name), sample_seed, num_inference_steps, k, entries)


def score_pipeline(pipe, benches: dict, trajectory_fill: str, sample_seed: int = 0, num_inference_steps: int = 8,
                   k: int = 2, entries=None) -> list[dict]:
    """:func:`score_system` for a pipeline in hand (None: the entries' ground-truth clips), driven with
    ``trajectory_fill``; the same sampling seeds per entry as every system of the comparison."""
    from .benchset import ground_truth_clip

    rows = []
    for s, bench in benches.items():
        chosen = list(bench)[:entries] if entries else list(bench)
        if pipe is None:
            videos = [ground_truth_clip(e.truth).video for e in chosen]
        else:
            videos = sample_examples(pipe, [e.example for e in chosen],
                                     [sample_seed * SAMPLE_SEED_STRIDE + int(e.example.seed) for e in chosen], k,
                                     trajectory_fill, num_inference_steps)
        for e, v in zip(chosen, videos):
            rows.append(dict(set=s, entry=e.name, kind=e.kind, **entry_scores(v, e.example)))
    return rows


def trajectory_fill_of(name: str, fills: dict | None = None, default: str | None = None) -> str:
    """How system ``name`` is driven: its entry in ``fills`` (default :data:`TRAJECTORY_FILL`), else the entry of the
    system it is a training seed of (``gaussian_s2`` -> ``gaussian``, :func:`remoco.verdicts.seed_name`), else
    ``default`` (the shipped ReMoCo's fill)."""
    from .shipped import SHIPPED_TRAJECTORY_FILL

    fills = TRAJECTORY_FILL if fills is None else fills
    default = SHIPPED_TRAJECTORY_FILL if default is None else default
    return fills.get(name, fills.get(re.sub(r"_s\d+$", "", name), default))


def _system_key(settings: dict, name: str) -> dict:
    """What a system's scores depend on: the shared settings with the system's own trajectory fill (so adding a
    system, or changing one system's fill, leaves the others' scores valid)."""
    key = {k: v for k, v in settings.items() if k != "trajectory_fill_of"}
    key["sets"] = list(settings.get("sets", ("fine", "object")))  # results written before the camera set: both sets
    key["trajectory_fill"] = trajectory_fill_of(name, settings.get("trajectory_fill_of", {}),
                                                settings["trajectory_fill"])
    return key


def _machine() -> str:
    """Where a system was scored: the CPU model and core count (and the GPU where one is used)."""
    from .speed import machine_summary

    m = machine_summary()
    return f"{m['cpu_model']}, {m['cpu_count']} cores" + (f", {m['cuda']}" if m["cuda"] else "")


def camera_object_entries(bench) -> list:
    """The camera entries of a toy object ``bench`` (the camera pans / zooms while the object moves) with the brush
    on the dragged object only -- the object's layer in frame 1 of the re-rendered ground-truth clip -- instead of
    the bench's motion-mask brush, which covers the moving background too (so nothing moves "outside" it). C2 asks
    what the motion mask adds exactly here: only the object is brushed, the camera should not follow the drag.
    Their ``set`` is ``"camera"``."""
    from dataclasses import replace

    from .benchset import ground_truth_clip

    out = []
    for e in bench:
        if not e.camera:
            continue
        if e.truth is None or "moving_layer" not in e.truth:
            raise ValueError(f"bench: camera entry {e.name} has no ground truth naming its moving layer")
        clip = ground_truth_clip(e.truth)
        owner = np.asarray(clip.meta["owner"])
        brush = owner == list(clip.meta["layers"]).index(e.truth["moving_layer"])
        out.append(replace(e, example=replace(e.example, brush_mask=brush), set="camera"))
    return out


#: The sets :func:`run` can score: the two toy bench sets, and the object set's camera entries brushed on the object.
SETS = ("fine", "object", "camera")


def _benches(sets) -> dict:
    from . import benchset, reproduce

    benches = {s: benchset.load_bench(reproduce.BENCH_SETS["object" if s == "camera" else s]) for s in sets}
    if "camera" in benches:
        benches["camera"] = camera_object_entries(benches["camera"])
    return benches


def run(systems=None, work=ROOT / "runs" / "comparison", out=None, sample_seed: int = 0, num_inference_steps: int = 8,
        entries=None, threads: int = 1, sets=("fine", "object")) -> dict:
    """Score ``systems`` (default: every available one) on both toy bench sets. A system is taken, in this order,
    from ``work/<name>.json`` or from the result already at ``out`` when its settings (:func:`_system_key`) match,
    else sampled and scored and cached in ``work``. Returns (and writes to ``out``) the result: settings, per-system
    rows, seconds, thread count and machine per system; systems already at ``out`` and not asked for are kept.
    ``sets``: which of :data:`SETS` to score."""
    from .shipped import SHIPPED_TRAJECTORY_FILL

    sets = tuple(sets)
    if not sets or any(s not in SETS for s in sets):
        raise ValueError(f"sets must be a non-empty selection of {SETS}, got {sets!r}")

    torch.set_num_threads(threads)
    systems = available_systems() if systems is None else list(systems)
    unknown = [n for n in systems if n not in SYSTEMS]
    if unknown:
        raise ValueError(f"systems: {unknown} are not in SYSTEMS ({tuple(SYSTEMS)})")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    settings = dict(sample_seed=sample_seed, num_inference_steps=num_inference_steps, k=2, entries=entries, sets=sets,
                    tracker=TRACKERS["flow"] + ", 5x5 block", trajectory_fill=SHIPPED_TRAJECTORY_FILL,
                    trajectory_fill_of=dict(TRAJECTORY_FILL))
    machine = _machine()
    previous = load(out) if out is not None and Path(out).is_file() else None
    stored = {}
    if previous is not None:
        for name in previous["rows"]:
            if name in SYSTEMS and _system_key(previous["settings"], name) == _system_key(settings, name):
                stored[name] = dict(rows=previous["rows"][name], seconds=previous["seconds"][name],
                                    threads=previous["threads"].get(name),
                                    machine=previous.get("machines", {}).get(name, previous.get("machine")))
    result = dict(settings=settings, scores=SCORES, systems={}, rows={}, seconds={}, threads={}, machines={})
    benches = None
    for name in [n for n in SYSTEMS if n in systems or n in stored]:
        cache = work / f"{name}.json"
        cached = json.loads(cache.read_text()) if cache.is_file() else None
        if cached is None or cached.get("key") != _system_key(settings, name):
            cached = stored.get(name)
        if cached is None:
            if benches is None:
                benches = _benches(sets)
            t0 = time.perf_counter()
            rows = score_system(name, benches, sample_seed, num_inference_steps, entries=entries)
            cached = dict(key=_system_key(settings, name), rows=rows, seconds=time.perf_counter() - t0,
                          threads=threads, machine=machine)
            cache.write_text(json.dumps(cached))
            print(f"{name}: {len(rows)} entries in {cached['seconds']:.0f} s", flush=True)
        result["systems"][name] = SYSTEMS[name][0]
        result["rows"][name] = cached["rows"]
        result["seconds"][name] = cached["seconds"]
        result["threads"][name] = cached.get("threads")
        result["machines"][name] = cached.get("machine", machine)
    result.update(machine=machine, torch=torch.__version__)  # the machine of this invocation; per system: machines
    if out is not None:
        Path(out).write_text(json.dumps(result, separators=(",", ":")))
    return result


def load(path=ROOT / "results" / "comparison.json") -> dict:
    """A stored result of :func:`run`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no comparison result at {path} (run `python -m remoco.comparison run`)")
    return json.loads(path.read_text())


def values(result: dict, system: str, score: str, bench_set: str | None = None, kind: str | None = None) -> dict:
    """``{(set, entry): value}`` of one system's ``score`` (entries where it is defined), optionally one ``bench_set``
    (``"fine"`` / ``"object"``) and one ``kind`` of entry."""
    if system not in result["rows"]:
        raise ValueError(f"system: {system!r} is not in the result (has {sorted(result['rows'])})")
    if score not in SCORES:
        raise ValueError(f"score must be one of {tuple(SCORES)}, got {score!r}")
    return {(r["set"], r["entry"]): r[score] for r in result["rows"][system]
            if r[score] is not None and (bench_set is None or r["set"] == bench_set)
            and (kind is None or r["kind"] == kind)}


def paired(result: dict, a: str, b: str, score: str = "share of the way", bench_set: str | None = None,
           kind: str | None = None, paper_says_a_better: bool = True) -> dict:
    """System ``a`` minus system ``b`` on ``score``, paired entry by entry (the entries both have): the mean
    difference with its 95 % t interval (``low``, ``high``, ``df``), the verdict for "a is better than b" when
    ``paper_says_a_better`` (better: lower or higher by :data:`LOWER_IS_BETTER`), and ``detectable``: the smallest
    difference this many entries with this spread would detect at power 0.8."""
    va, vb = values(result, a, score, bench_set, kind), values(result, b, score, bench_set, kind)
    keys = sorted(va.keys() & vb.keys())
    if len(keys) < 2:
        raise ValueError(f"{a} vs {b} on {score!r}: fewer than two paired entries ({len(keys)})")
    d = np.array([va[k] - vb[k] for k in keys])
    ci = t_interval(d)
    lower = LOWER_IS_BETTER.get(score, True)
    v = verdict(ci, paper_says_lower=lower if paper_says_a_better else not lower)
    sd = float(d.std(ddof=1))
    return dict(a=a, b=b, score=score, bench_set=bench_set, kind=kind, n=len(keys),
                mean_a=float(np.mean([va[k] for k in keys])), mean_b=float(np.mean([vb[k] for k in keys])),
                diff=ci["mean"], low=ci["low"], high=ci["high"],
                df=ci["df"], sd=sd, verdict=v, detectable=smallest_detectable_effect(sd, len(keys)))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m remoco.comparison", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="score the systems on both toy bench sets (resumable)")
    r.add_argument("--systems", nargs="*", default=None, choices=tuple(SYSTEMS))
    r.add_argument("--work", default=str(ROOT / "runs" / "comparison"))
    r.add_argument("--out", default=str(ROOT / "results" / "comparison.json"))
    r.add_argument("--entries", type=int, default=None, help="first n entries per set (default: all 100)")
    r.add_argument("--sample-seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--sets", nargs="+", default=["fine", "object"], choices=SETS,
                   help="which sets to score (camera: the object set's camera entries brushed on the object only)")
    sub.add_parser("seed-runs", help="print the training runs the systems need (make seed-runs trains them)")
    args = ap.parse_args(argv)
    if args.cmd == "seed-runs":
        print("\n".join(seed_run_targets()))
        return
    run(args.systems, args.work, args.out, args.sample_seed, entries=args.entries, threads=args.threads,
        sets=args.sets)


if __name__ == "__main__":
    main()

