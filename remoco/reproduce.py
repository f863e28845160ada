"""The experiment runner behind ``make reproduce``: train the controllers of the evaluation chapters, evaluate
them on the toy ReMoCo-Bench and write one ``results/<table>.json`` per table or figure of the paper's Sec. 4.

The experiments are data (:data:`GRID`, expanded by :func:`experiment_table`), not code branches:

* Tables 1-3 (``main``): the base model (reference image only), the Gaussian-trajectory baseline, ReMoCo and
  ReMoCo without the motion mask (``traj_only``) x training seeds 0, 1, 2, each controller trained with the
  toy controller preset (:func:`remoco.config.preset_config`: dense T_s at k = 2, except the Gaussian baseline)
  on the paper's frozen base (:data:`FROZEN_BASE`: the shipped controllers also train the toy UNet, these do not),
  plus the ground-truth clips as the trackers' error floor (Tables 2-3).
* Fig. 7 (``fig7``): ReMoCo with k in {1, 2, 4, 8} (at r_min = 0.95) and r_min in {0.5, 0.8, 0.9, 0.95, 0.99}
  (at k = 2), r_max = 1, seeds 0, 1. The toy preset trains dense T_s, where k and r_min change nothing; these
  sweeps therefore train in the paper's *sparse* regime (r_m ~ U[r_min, 1], Sec. 3.2), which the results say.
* Fig. 9 (``fig9``): the injections remoco / concat / sum (toy preset), seeds 0, 1.

Ablation controllers (Fig. 7, Fig. 9) train fewer steps than the main ones (``max_steps`` of each experiment,
written in every result row). Every controller trains on the shipped toy base (``data/checkpoints/toy-base``).

Evaluation (:func:`remoco.bench_eval.evaluate_system`): for every bench entry one seeded video; MD-Img, MD-Vid, frame
consistency and average flow magnitude with :mod:`remoco.metrics`' substitutes (each result names them next to the
paper's models), and for Table 1 FID / FVD against the entries' ground-truth clips
(:func:`remoco.benchset.ground_truth_clip`; the paper's Table 1 is WebVid-10M with 15 % of the trajectories as input,
here the bench's single drag). The drag is given as the shipped controller is driven (``trajectory_fill`` =
:data:`remoco.shipped.SHIPPED_TRAJECTORY_FILL`) with the k of each controller's training config. A replicate with seed
s trains with seed s and samples entry i with generator seed ``s * 2**16 + i``; the base model (not trained) varies
its sampling seed only.

``data/paper_results.csv`` holds the numbers the paper's text reports (Tables 1-3, Sec. 4.2's flow magnitudes,
Fig. 7(a)'s bound on the frame-consistency range; Fig. 7 and Fig. 9 plot their values without printing them).
:func:`check_results` compares a fresh run with stored results within :data:`TOLERANCES` (the book's tolerance table,
:mod:`remoco.tolerances`).

Command line::

    python -m remoco.reproduce plan  [--quick] [--only main fig7 fig9]    # the experiment table, CPU estimates
    python -m remoco.reproduce run   [--quick] [--jobs 2] [--work runs/reproduce] [--only ...] [--out DIR]
    python -m remoco.reproduce check [--quick] [--work runs/reproduce] [--fresh DIR] [--stored results]

``run`` is resumable (trainings resume from their checkpoints, finished evaluations are cached under WORK/evals)
and writes WORK/results/<table>.json (``--out results`` makes them the stored results); ``check`` compares them
with ``results/`` (``--quick``: WORK/quick/results with results/quick).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bench_eval import MD_METRICS, evaluate_ground_truth, evaluate_system
from .config import SHIPPED_DIR, VARIANTS, preset_config
from .metrics import DISTRIBUTION_METRICS
from .shipped import FROZEN_BASE_RECIPE, SHIPPED_TRAJECTORY_FILL, run_jobs, train_in_worker
from .tolerances import QUANTITIES, RESULT_METRICS

__all__ = ["ROOT", "BENCH_SETS", "PAPER_RESULTS", "SYSTEMS", "GRID", "TABLES", "QUICK", "EVALUATION",
           "MAIN_STEPS", "ABLATION_STEPS", "MAIN_ENTRIES", "ABLATION_ENTRIES",
           "TOLERANCES", "SECONDS_PER_STEP", "SECONDS_PER_SAMPLE", "Experiment",
           "experiment_table", "plan", "run_training", "evaluate_in_worker", "run_evaluations", "build_tables",
           "write_results", "load_results", "load_paper_results", "CheckReport", "check_results", "run", "main"]

ROOT = Path(__file__).resolve().parent.parent
BENCH_SETS = {"fine": ROOT / "data" / "bench" / "fine", "object": ROOT / "data" / "bench" / "object"}
PAPER_RESULTS = ROOT / "data" / "paper_results.csv"

#: What each system is, and its nearest counterpart in the paper's tables.
SYSTEMS = {
    "ground_truth": "the entry's ground-truth clip (no model: the trackers' error floor)",
    "base": "toy SVD base, reference image only (no motion control)",
    "gaussian": "Gaussian-filtered point trajectory (the DragNUWA / DragAnything / MotionCtrl condition)",
    "remoco": "ReMoCo: region-wise trajectory + motion mask, adaptive feature modulation",
    "traj_only": "ReMoCo without the motion mask (region-wise trajectory only)",
    "concat": "ReMoCo^C: encoder features concatenated to the latents (Fig. 9)",
    "sum": "ReMoCo^+: encoder features added to the latents (Fig. 9)",
}
#: The 2.5 h budget of ``make reproduce`` on 2 CPU cores sets the step counts: the main controllers train 400
#: optimizer steps at the preset's batch of 4 (the shipped ones 1,800), the 22 ablation controllers 200 steps at a
#: batch of 2 (a quarter of the main controllers' clips). Entries: how many of each bench set's 100 are evaluated,
#: spread evenly over the set (so every kind of entry is in).
_ABLATION = {"batch_size": 2}
_SPARSE = dict(_ABLATION, k=2, r_min=0.95, r_max=1.0)  # the paper's regime (Sec. 4.1) at the toy's paper_k
MAIN_STEPS, ABLATION_STEPS, MAIN_ENTRIES, ABLATION_ENTRIES = 400, 200, 24, 12
#: The experiment grid: each entry = tables x systems x (sweep values) x seeds; ``fixed`` / the swept field are
#: Every experiment keeps the paper's frozen base (Sec. 3.3) at the frozen-base controller's lr
#: (:data:`remoco.shipped.FROZEN_BASE_RECIPE`), unlike the shipped toy controller (chapter 5: joint UNet training,
#: lr 3e-4); the grid sets its own step counts.
FROZEN_BASE = {k: v for k, v in FROZEN_BASE_RECIPE.items() if k != "max_steps"}

#: TrainConfig overrides of the toy-cpu controller preset, ``max_steps`` its optimizer steps (None: not trained),
#: ``entries`` the bench entries evaluated per set.
GRID = (
    dict(group="main", tables=("table1", "table2", "table3"), systems=("base", "gaussian", "remoco", "traj_only"),
         seeds=(0, 1, 2), max_steps=MAIN_STEPS, fixed={}, sweep=None, entries=MAIN_ENTRIES),
    dict(group="main", tables=("table2", "table3"), systems=("ground_truth",), seeds=(0,), max_steps=None,
         fixed={}, sweep=None, entries=MAIN_ENTRIES),
    dict(group="fig7", tables=("fig7a",), systems=("remoco",), seeds=(0, 1), max_steps=ABLATION_STEPS,
         fixed=_SPARSE, sweep=("k", (1, 2, 4, 8)), entries=ABLATION_ENTRIES),
    dict(group="fig7", tables=("fig7b",), systems=("remoco",), seeds=(0, 1), max_steps=ABLATION_STEPS,
         fixed=_SPARSE, sweep=("r_min", (0.5, 0.8, 0.9, 0.95, 0.99)), entries=ABLATION_ENTRIES),
    dict(group="fig9", tables=("fig9",), systems=("remoco", "concat", "sum"), seeds=(0, 1), max_steps=ABLATION_STEPS,
         fixed=_ABLATION, sweep=None, entries=ABLATION_ENTRIES),
)
GROUPS = ("main", "fig7", "fig9")
_MD = MD_METRICS
#: The results files: which bench sets and metrics, and the paper's table they stand for.
TABLES = {
    "table1": dict(sets=("fine",), metrics=("FVD", "FID", "KVD", "KID", "Frame Consis."), paper=("Table 1",),
                   title="Table 1 (Sec. 4.2): fine-grained motion control on WebVid-10M. Here: the toy fine bench, "
                         "FVD / FID (and, not in the paper, KVD / KID) against the entries' ground-truth clips, the "
                         "bench's drag as input"),
    "table2": dict(sets=("fine",), metrics=_MD, paper=("Table 2", "Sec. 4.2"),
                   title="Table 2 (Sec. 4.2): fine-grained motion control on ReMoCo-Bench (here the toy fine bench)"),
    "table3": dict(sets=("object",), metrics=_MD, paper=("Table 3",),
                   title="Table 3 (Sec. 4.3): object-level motion control on ReMoCo-Bench (here the toy object "
                         "bench)"),
    "fig7a": dict(sets=("fine", "object"), metrics=("MD-Vid", "Frame Consis."), paper=("Fig. 7a",),
                  title="Fig. 7(a) (Sec. 4.4): local region size k; sparse regime r_m ~ U[0.95, 1]"),
    "fig7b": dict(sets=("fine", "object"), metrics=("MD-Vid", "Frame Consis."), paper=("Fig. 7b",),
                  title="Fig. 7(b) (Sec. 4.4): minimal mask ratio r_min (r_max = 1) at k = 2"),
    "fig9": dict(sets=("fine", "object"), metrics=("MD-Vid",), paper=("Fig. 9",),
                 title="Fig. 9 (Sec. 4.4): multi-scale feature injection (modulation / concatenation / sum)"),
}
#: What ``--quick`` changes: one seed, a few training and sampler steps, 4 entries per bench set (one of each kind
#: at least: the spread selection takes entries 0, 25, 50, 75), two values
#: of each Fig. 7 sweep (one of them the setting both sweeps share).
QUICK = dict(seeds=1, max_steps=2, entries=4, num_inference_steps=2, sweeps={"k": (1, 2), "r_min": (0.5, 0.95)})
#: Evaluation settings of a full run (``entries`` None: each experiment's own, from :data:`GRID`).
EVALUATION = dict(entries=None, num_inference_steps=8, trajectory_fill=SHIPPED_TRAJECTORY_FILL)
#: ``|fresh - stored| <= atol + rtol * |stored|`` per metric (on a row's mean over seeds), ``{metric: (atol, rtol)}``:
#: the book's one tolerance table (:data:`remoco.tolerances.QUANTITIES`, whose entries say why); a rerun on the same
#: machine at 1 thread is bit-identical.
TOLERANCES = {m: (QUANTITIES[m].atol, QUANTITIES[m].rtol) for m in RESULT_METRICS}
# Measured by `make reproduce` on a 2-core AMD EPYC, two 1-thread processes, the faster training step (results/*.json
# 'evaluation' / 'wall_seconds': 36 min training, 11 min evaluation): one optimizer step of 4 clips 0.53-0.85 s (2 clips
# 0.36-0.62 s); one 8-step 64 x 64 x 8 video with its metrics ~1.1 s (35 evaluations, ~1,150 videos, 1,260 CPU s).
SECONDS_PER_STEP = 0.6
SECONDS_PER_SAMPLE = 1.1


# ------------------------------------------------------------------------------------------------ experiments
@dataclass(frozen=True)
class Experiment:
    """One training (or, for ``base`` / ``ground_truth``, one evaluation) of the grid; ``rows``: the
    ``(table, row label)`` pairs it fills; ``overrides``: sorted ``(field, value)`` pairs on the toy-cpu
    controller preset."""

    name: str
    system: str
    seed: int
    overrides: tuple = ()
    max_steps: int | None = None
    rows: tuple = ()
    entries: int | None = None

    @property
    def trained(self) -> bool:
        return self.max_steps is not None

    @property
    def sets(self) -> tuple:
        return tuple(s for s in BENCH_SETS if any(s in TABLES[t]["sets"] for t, _ in self.rows))

    def config(self, work, base=None, **runtime):
        """The :class:`~remoco.config.TrainConfig` of a trained experiment, in ``work/<name>``."""
        if not self.trained:
            raise ValueError(f"experiment {self.name!r} ({self.system}) is not trained")
        kw = dict(variant=self.system, seed=self.seed, max_steps=self.max_steps, out_dir=str(Path(work) / self.name),
                  progress=False, **FROZEN_BASE, **({"base": str(base)} if base is not None else {}))
        kw.update(dict(self.overrides))
        kw.update(runtime)
        return preset_config("toy-cpu", "controller", **kw)


def _name(system: str, overrides: tuple, steps, seed: int) -> str:
    parts = [system] + [f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in overrides]
    return "-".join(parts + ([f"{steps}st"] if steps is not None else []) + [f"s{seed}"])


def experiment_table(quick: bool = False, only=None, grid=GRID) -> list[Experiment]:
    """The experiments of ``grid`` (groups ``only``, default all), identical trainings merged (one experiment
    filling several rows, e.g. k = 2, r_min = 0.95 in both Fig. 7 sweeps). ``quick``: :data:`QUICK`'s seeds and
    steps."""
    only = tuple(GROUPS if only is None else ([only] if isinstance(only, str) else only))
    bad = sorted(set(only) - {g["group"] for g in grid})
    if bad:
        raise ValueError(f"only: unknown group(s) {bad}; expected some of {GROUPS}")
    merged: dict = {}
    for spec in grid:
        if spec["group"] not in only:
            continue
        field, values = spec["sweep"] or (None, (None,))
        values = QUICK["sweeps"].get(field, values) if quick else values
        for system in spec["systems"]:
            trained = system in VARIANTS
            steps = (QUICK["max_steps"] if quick else spec["max_steps"]) if trained else None
            for value in values:
                over = dict(spec["fixed"], **({field: value} if field else {})) if trained else {}
                row = f"{field}={value:g}" if field else system
                for seed in spec["seeds"][:QUICK["seeds"]] if quick else spec["seeds"]:
                    key = (system, tuple(sorted(over.items())), steps, seed)
                    e = merged.get(key) or Experiment(_name(*key), system, seed, key[1], steps,
                                                      entries=QUICK["entries"] if quick else spec.get("entries"))
                    merged[key] = dataclasses.replace(e, rows=e.rows + tuple((t, row) for t in spec["tables"]))
    return list(merged.values())


def plan(experiments, jobs: int = 2, entries: int | None = None) -> dict:
    """Estimated CPU seconds per experiment (:data:`SECONDS_PER_STEP` scaled by the batch size,
    :data:`SECONDS_PER_SAMPLE`; ``entries`` per bench set, default each experiment's, else 100) and the totals,
    at ``jobs`` processes of one thread."""
    rows = []
    for e in experiments:
        batch = dict(e.overrides).get("batch_size", 4)
        train_s = (e.max_steps or 0) * SECONDS_PER_STEP * batch / 4 + (10.0 if e.trained else 0.0)
        n = entries or e.entries or 100
        eval_s = len(e.sets) * n * (SECONDS_PER_SAMPLE if e.system != "ground_truth" else 0.5)
        rows.append(dict(name=e.name, system=e.system, seed=e.seed, overrides=dict(e.overrides), max_steps=e.max_steps,
                         rows=[f"{t}:{r}" for t, r in e.rows], train_s=train_s, eval_s=eval_s))
    total = sum(r["train_s"] + r["eval_s"] for r in rows)
    return dict(rows=rows, trainings=sum(e.trained for e in experiments), cpu_hours=total / 3600,
                wall_hours=total / 3600 / jobs)


# ------------------------------------------------------------------------------------------------ training
def run_training(experiments, work, jobs: int = 2, base=None, **runtime) -> dict:
    """Train every trained experiment in ``work/<name>`` (:func:`remoco.train.train`: a rerun resumes from the
    last checkpoint, a finished run returns at once), ``jobs`` at a time, each process with one thread on a
    2-core machine (:func:`remoco.shipped.run_jobs`). ``runtime``: further TrainConfig fields (``stop_after``).
    Returns ``{name: summary}`` (final_path None when stopped early)."""
    exps = [e for e in experiments if e.trained]
    if len({e.name for e in exps}) != len(exps):
        raise ValueError("experiments: two trained experiments share a name")
    todo = {e.name: (e.config(work, base, **runtime),) for e in exps}
    return run_jobs(train_in_worker, todo, max(1, min(int(jobs), len(todo)))) if todo else {}


# ------------------------------------------------------------------------------------------------ evaluation
def evaluate_in_worker(job: dict, threads: int) -> dict:
    """One experiment's evaluation on its bench sets (a :func:`run_jobs` worker); cached in ``job["out"]``."""
    import torch

    from . import metrics, runs
    from .benchset import load_bench
    from .shipped import load_shipped_base, load_shipped_pipeline

    out = Path(job["out"])
    if out.is_file():
        return json.loads(out.read_text())
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    if job["controller"]:
        pipe = load_shipped_pipeline(job["system"], base_path=job["base"], controller_path=job["controller"])
    else:
        pipe = load_shipped_base(job["base"])
    emb = metrics.vae_embedder(pipe.vae)
    res = dict(experiment=job["name"], settings=job["settings"], sets={})
    for s in job["sets"]:
        bench = load_bench(BENCH_SETS[s])
        if job["system"] == "ground_truth":
            res["sets"][s] = evaluate_ground_truth(bench, emb, job["settings"]["entries"])
        else:
            st = job["settings"]
            res["sets"][s] = evaluate_system(pipe, bench, st["entries"], st["k"], st["trajectory_fill"],
                                             st["num_inference_steps"], st["sample_seed"], emb)
    res["seconds"] = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    runs.write_json(out, res)
    return res


def run_evaluations(experiments, trained: dict, work, jobs: int = 2, base=None, entries=None,
                    num_inference_steps: int = 8, trajectory_fill: str = SHIPPED_TRAJECTORY_FILL) -> dict:
    """Evaluate every experiment (trained ones from ``trained[name]["final_path"]``, with the k of their training
    config), ``jobs`` at a time; cached under ``work/evals`` by a hash of the settings and the controller's
    fingerprint. Returns ``{name: evaluation}``."""
    base = str(base or SHIPPED_DIR / "toy-base")
    jobs_ = {}
    for e in experiments:
        settings = dict(entries=entries if entries is not None else e.entries,
                        num_inference_steps=num_inference_steps, trajectory_fill=trajectory_fill,
                        sample_seed=e.seed, k=None, sets=list(e.sets))
        controller, fp = None, None
        if e.trained:
            final = trained[e.name]["final_path"]
            if final is None:
                raise RuntimeError(f"experiment {e.name!r} did not finish training")
            prov = json.loads((Path(final) / "provenance.json").read_text())
            controller, fp, settings["k"] = str(final), prov["fingerprint"], prov["config"]["k"]
        key = hashlib.sha256(json.dumps([e.system, fp, base, settings], sort_keys=True).encode()).hexdigest()[:12]
        jobs_[e.name] = (dict(name=e.name, system=e.system, controller=controller, base=base, settings=settings,
                              sets=list(e.sets), out=str(Path(work) / "evals" / f"{e.name}-{key}.json")),)
    return run_jobs(evaluate_in_worker, jobs_, max(1, min(int(jobs), len(jobs_)))) if jobs_ else {}


# ------------------------------------------------------------------------------------------------ results
def _relative(d: dict) -> dict:
    return {k: (v[len(str(ROOT)) + 1:] if isinstance(v, str) and v.startswith(str(ROOT) + "/") else v)
            for k, v in d.items()}


def load_paper_results(path=PAPER_RESULTS) -> list[dict]:
    """The rows of ``data/paper_results.csv`` (table, row, column, value as float, relation, source)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["value"] = float(r["value"])
    return rows


def build_tables(experiments, evaluations: dict, training: dict | None = None, settings: dict | None = None,
                 work=None, base=None) -> dict:
    """One result dict per table of :data:`TABLES` that ``experiments`` fill: per row the per-seed values
    (each seed's mean over entries; FID / FVD / KID / KVD over the set, with ``distribution_samples``
    ``{set: {"frames": [N, D], "clips": [N, D]}}`` saying how many samples of how many feature dimensions they
    fitted), their mean and spread (standard deviation over
    seeds, ddof = 1; None with one seed), the metric labels, configs, paper values and provenance."""
    from . import runs

    training = training or {}
    paper = load_paper_results()
    ref = preset_config("toy-cpu", "controller", **FROZEN_BASE, **({"base": str(base)} if base else {}))
    prov = runs.provenance(ref)
    prov["config"] = _relative(prov["config"])
    prov["config_note"] = "the toy-cpu controller preset; each experiment's config is under 'configs'"
    out = {}
    for table, spec in TABLES.items():
        groups: dict = {}
        for e in experiments:
            for t, r in e.rows:
                if t == table:
                    groups.setdefault(r, []).append(e)
        if not groups:
            continue
        columns = [f"{m} ({s})" for s in spec["sets"] for m in spec["metrics"]]
        labels, rows, configs = {}, [], {}
        for r, exps in groups.items():
            per_seed, train_s, kinds, per_entry, samples = {}, {}, {}, {}, {}
            for e in sorted(exps, key=lambda e: e.seed):
                vals = {}
                for s in spec["sets"]:
                    ev = evaluations[e.name]["sets"][s]
                    if "distribution_samples" in ev and set(spec["metrics"]) & set(DISTRIBUTION_METRICS):
                        samples.setdefault(s, ev["distribution_samples"])
                    keep = ("entry", "kind", *spec["metrics"])
                    per_entry.setdefault(str(e.seed), {})[s] = [{k: x[k] for k in keep if k in x}
                                                                for x in ev.get("rows", ())]
                    entry_kinds = sorted({x.get("kind") for x in ev.get("rows", ())} - {None})
                    for m in spec["metrics"]:
                        for kind in entry_kinds:
                            v = [x[m] for x in ev["rows"] if x.get("kind") == kind and x.get(m) is not None]
                            if v:
                                kinds.setdefault(f"{m} ({s})", {}).setdefault(kind, []).append(float(np.mean(v)))
                        src = ev.get("distribution", {}) if m in DISTRIBUTION_METRICS else ev["mean"]
                        vals[f"{m} ({s})"] = src.get(m)
                        labels.setdefault(f"{m} ({s})", ev["labels"].get(m))
                per_seed[str(e.seed)] = vals
                if e.trained:
                    cfg = e.config(work or "runs/reproduce", base)
                    configs[e.name] = _relative(cfg.to_dict())
                    log = (training.get(e.name) or {}).get("logs", {}).get("controller")
                    if log and Path(log).is_file():
                        train_s[e.name] = float(runs.read_log(log)["seconds"][-1])
            mean, spread = {}, {}
            for c in columns:
                v = [x[c] for x in per_seed.values() if x.get(c) is not None]
                mean[c] = float(np.mean(v)) if v else None
                spread[c] = float(np.std(v, ddof=1)) if len(v) > 1 else None
            e0 = exps[0]
            rows.append(dict(row=r, system=e0.system, description=SYSTEMS[e0.system], trained=e0.trained,
                             max_steps=e0.max_steps, overrides=dict(e0.overrides), seeds=sorted(e.seed for e in exps),
                             inference_k=evaluations[e0.name].get("settings", {}).get("k"),
                             experiments=[e.name for e in exps], train_seconds=train_s, per_seed=per_seed,
                             mean=mean, spread=spread,
                             by_kind={c: {k: float(np.mean(v)) for k, v in d.items()} for c, d in kinds.items()},
                             by_kind_per_seed=kinds, per_entry=per_entry, distribution_samples=samples))
        notes = ["values: each seed's mean over the bench entries (FID / FVD: over the whole set); 'mean' and "
                 "'spread' (sample standard deviation, ddof = 1) over seeds",
                 "a replicate with seed s trains with seed s and samples entry i with generator seed s * 2**16 + i; "
                 "'base' is not trained (its seeds vary the sampling only); 'ground_truth' is not sampled",
                 "'by_kind': the mean over seeds of each seed's mean over the entries of one kind (e.g. the object "
                 "set's 'camera' entries, where the camera moves too); 'by_kind_per_seed': those per-seed means",
                 "'per_entry': every entry's values per seed and set (results written before it existed lack it)",
                 "inference k: each controller's training k; trajectory_fill as in 'evaluation'"]
        if table.startswith("fig7"):
            notes.append("the toy controller preset trains dense T_s (r_min = r_max = 0), where k and r_min do not "
                         "matter; these controllers train in the paper's sparse regime r_m ~ U[r_min, 1] instead")
        if table == "table1":
            notes.append("the paper's Table 1 is WebVid-10M with 15 % of the trajectories sampled from each video as "
                         "input; here the toy fine bench's single drag, against its ground-truth clips")
            notes.append("KID / KVD (not in the paper): the unbiased polynomial-kernel MMD^2 of the same features "
                         "as FID / FVD (metrics.kernel_distance_from_features), valid with fewer samples than "
                         "feature dimensions, where a Frechet distance fits a singular covariance; "
                         "'distribution_samples' gives N and D per row")
        out[table] = dict(table=table, title=spec["title"], columns=columns, labels=labels, rows=rows,
                          evaluation=settings or {}, configs=configs, quick=bool((settings or {}).get("quick")),
                          paper_values=[p for p in paper if p["table"] in spec["paper"]],
                          tolerances={m: TOLERANCES[m] for m in spec["metrics"]}, notes=notes, provenance=prov)
    return out


def write_results(tables: dict, folder) -> list[Path]:
    """``folder/<table>.json`` for each table (atomic writes)."""
    from .runs import write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, res in tables.items():
        write_json(folder / f"{name}.json", res)
        paths.append(folder / f"{name}.json")
    return paths


def load_results(folder) -> dict:
    """``{table: result}`` of the ``<table>.json`` files of :data:`TABLES` in ``folder`` (missing ones left out)."""
    folder = Path(folder)
    return {t: json.loads((folder / f"{t}.json").read_text()) for t in TABLES if (folder / f"{t}.json").is_file()}


# ------------------------------------------------------------------------------------------------ check
@dataclass
class CheckReport:
    """The outcome of :func:`check_results`: ``ok``, one ``comparisons`` dict per number, printable ``lines``."""

    ok: bool
    comparisons: list
    lines: list

    def __str__(self) -> str:
        return "\n".join(self.lines)


def check_results(fresh: dict, stored: dict, tolerances: dict | None = None) -> CheckReport:
    """Compare every row mean of the tables in both ``fresh`` and ``stored`` (``{table: result}``): a number
    passes when ``|fresh - stored| <= atol + rtol * |stored|`` (``tolerances`` ``{metric: (atol, rtol)}``,
    default :data:`TOLERANCES`). A missing row or value, a quick run against a full one, or no table in common
    fails."""
    tol = dict(TOLERANCES, **(tolerances or {}))
    comps, lines = [], []
    ok = True
    common = [t for t in stored if t in fresh]
    for t in sorted(set(stored) ^ set(fresh)):
        lines.append(f"skip {t}: only in the {'stored' if t in stored else 'fresh'} results")
    if not common:
        return CheckReport(False, [], lines + ["FAIL no table in common: nothing compared"])
    for t in common:
        f, s = fresh[t], stored[t]
        if bool(f.get("quick")) != bool(s.get("quick")):
            ok = False
            lines.append(f"FAIL {t}: a {'quick' if f.get('quick') else 'full'} run against a "
                         f"{'quick' if s.get('quick') else 'full'} one, not compared")
            continue
        frows = {r["row"]: r for r in f["rows"]}
        for srow in s["rows"]:
            frow = frows.get(srow["row"])
            if frow is None:
                ok = False
                lines.append(f"FAIL {t} {srow['row']}: row missing in the fresh results")
                continue
            for col, sv in srow["mean"].items():
                fv = frow["mean"].get(col)
                atol, rtol = tol[col.rsplit(" (", 1)[0]]
                bound = atol + rtol * abs(sv) if sv is not None else 0.0
                if sv is None or fv is None:
                    passed, diff = sv is None and fv is None, None
                    text = f"fresh {fv} stored {sv}"
                else:
                    diff = abs(fv - sv)
                    passed = diff <= bound
                    text = f"fresh {fv:.4f} stored {sv:.4f} |diff| {diff:.4f} {'<=' if passed else '>'} tol {bound:.4f}"
                ok &= passed
                comps.append(dict(table=t, row=srow["row"], column=col, fresh=fv, stored=sv, diff=diff,
                                  tolerance=bound, passed=passed))
                lines.append(f"{'ok  ' if passed else 'FAIL'} {t} {srow['row']} {col}: {text}")
    return CheckReport(ok, comps, lines)


# ------------------------------------------------------------------------------------------------ run / CLI
def _add_wall_time(work: Path, training: float, evaluation: float) -> dict:
    """Wall seconds summed over every ``run`` on ``work`` (kept in ``work/wall_seconds.json``): a run killed and
    resumed counts each part once, a finished run called again adds only its few seconds of reading caches."""
    from .runs import write_json

    path = work / "wall_seconds.json"
    tot = json.loads(path.read_text()) if path.is_file() else dict(training=0.0, evaluation=0.0, invocations=0)
    tot = dict(training=tot["training"] + training, evaluation=tot["evaluation"] + evaluation,
               invocations=tot["invocations"] + 1)
    work.mkdir(parents=True, exist_ok=True)
    write_json(path, tot)
    return tot


def run(work="runs/reproduce", quick: bool = False, jobs: int = 2, only=None, out=None, base=None,
        entries=None, num_inference_steps=None) -> dict:
    """Train (resumably), evaluate and write the results of the groups ``only`` (default all) to ``out``
    (default ``work/results``; ``quick``: in ``work/quick``). Returns ``{table: result}``."""
    work = Path(work) / "quick" if quick else Path(work)
    exps = experiment_table(quick, only)
    ev = dict(EVALUATION, quick=quick, jobs=jobs)
    if quick:
        ev.update(entries=QUICK["entries"], num_inference_steps=QUICK["num_inference_steps"])
    if entries is not None:
        ev["entries"] = entries
    if num_inference_steps is not None:
        ev["num_inference_steps"] = num_inference_steps
    t0 = time.perf_counter()
    trained = run_training(exps, work, jobs, base)
    t1 = time.perf_counter()
    evals = run_evaluations(exps, trained, work, jobs, base, ev["entries"], ev["num_inference_steps"],
                            ev["trajectory_fill"])
    ev["wall_seconds"] = _add_wall_time(work, t1 - t0, time.perf_counter() - t1)
    tables = build_tables(exps, evals, trained, ev, work, base)
    for p in write_results(tables, out or work / "results"):
        print(f"wrote {p}")
    return tables


def _table_text(res: dict) -> str:
    lines = [res["title"], "  " + " | ".join(["row"] + res["columns"])]
    for r in res["rows"]:
        cells = [("-" if r["mean"][c] is None else f"{r['mean'][c]:.4g}") +
                 ("" if r["spread"][c] is None else f" ± {r['spread'][c]:.2g}") for c in res["columns"]]
        lines.append("  " + " | ".join([r["row"]] + cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m remoco.reproduce", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("plan", "run", "check"):
        p = sub.add_parser(name)
        p.add_argument("--quick", action="store_true", help=f"{QUICK}")
        p.add_argument("--work", default="runs/reproduce")
        if name != "check":
            p.add_argument("--only", nargs="+", choices=GROUPS, default=None)
            p.add_argument("--jobs", type=int, default=2)
    r = sub.choices["run"]
    r.add_argument("--out", default=None, help="results folder (default WORK/results; 'results' stores them)")
    r.add_argument("--base", default=None, help="base pipeline folder (default data/checkpoints/toy-base)")
    r.add_argument("--entries", type=int, default=None, help="N entries of each bench set, spread evenly "
                   "(default: each experiment's, main 24, ablations 12)")
    r.add_argument("--steps", type=int, default=None, help="sampler steps")
    c = sub.choices["check"]
    c.add_argument("--fresh", default=None, help="default WORK/results (--quick: WORK/quick/results)")
    c.add_argument("--stored", default=None, help="default results (--quick: results/quick)")
    args = ap.parse_args(argv)
    if args.command == "plan":
        p = plan(experiment_table(args.quick, args.only), args.jobs)
        for row in p["rows"]:
            print(f"{row['name']:<44s} steps {str(row['max_steps']):>5s}  train {row['train_s'] / 60:6.1f} min  "
                  f"eval {row['eval_s'] / 60:5.1f} min  {' '.join(row['rows'])}")
        print(f"{p['trainings']} trainings, {len(p['rows'])} evaluations: ~{p['cpu_hours']:.1f} CPU hours, "
              f"~{p['wall_hours']:.1f} h at --jobs {args.jobs}")
        return 0
    if args.command == "run":
        tables = run(args.work, args.quick, args.jobs, args.only, args.out, args.base, args.entries, args.steps)
        for res in tables.values():
            print(_table_text(res))
        return 0
    work = Path(args.work) / "quick" if args.quick else Path(args.work)
    fresh_dir = Path(args.fresh or work / "results")
    stored_dir = Path(args.stored or (ROOT / "results" / "quick" if args.quick else ROOT / "results"))
    stored = load_results(stored_dir)
    if not stored:
        print(f"no stored results in {stored_dir}: nothing to compare (store a run with `run --out {stored_dir}`)")
        return 0
    report = check_results(load_results(fresh_dir), stored)
    print(report)
    print(f"check: {'passed' if report.ok else 'FAILED'} ({sum(c['passed'] for c in report.comparisons)}/"
          f"{len(report.comparisons)} numbers within tolerance; tolerances {TOLERANCES})")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
