"""When, and with which condition, does a controller use its trajectory? Claims C3 (region size k) and C4 (minimal
mask ratio r_min) measured where the toy can measure them.

Fig. 7's sweeps train in the paper's sparse regime (Sec. 3.2: each k x k region's trajectory kept with probability
1 - r_m, r_m ~ U[r_min, 1]); at toy budget no such controller moves the object further than the base does, so
comparing their MD-Vid compares noise. Two measures that do not need a controller that steers:

* **Trajectory gain** (:func:`trajectory_gain`): the paired condition ablation of :func:`remoco.evaluate.
  condition_ablation` -- the held-out denoising loss of Eq. 3 with the condition as trained and with its trajectory
  channels T_s zeroed, on the same clips, noise levels and noises -- as the per-sample percentage by which the
  trajectory lowers the loss, by noise level. It says whether a controller reads its trajectory at all, long before
  the reading is strong enough to move a sampled object. :func:`ablation_grid` measures it for every Fig. 7
  controller of ``make reproduce``.
* **A steering curve** (:func:`score_curve`): chapter 5's recipe trained once in its dense regime and once in the
  paper's sparse regime (:data:`CURVE_REGIMES`, same seed, steps and everything else), a checkpoint every
  :data:`CURVE_EVERY` steps, and at each checkpoint the share of the way on bench entries
  (:func:`remoco.comparison.entry_scores`, the validated MD-Vid) together with the trajectory gain. It shows where
  on the way to 1,800 steps the dense controller starts to steer and whether the sparse one does.

Command line (resumable; each measured point is cached under ``--work``)::

    python -m remoco.steering train --regime dense|sparse   # chapter 5's recipe, checkpoints kept
    python -m remoco.steering curve --out results/steering_curve.json
    python -m remoco.steering ablation --out results/condition_ablation.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig
from .decide import t_interval
from .evaluate import ABLATION_CONDITIONS, SIGMA_EDGES, condition_ablation
from .runs import atomic_dir, list_checkpoints, write_json

__all__ = ["ROOT", "CURVE_WORK", "CURVE_REGIMES", "CURVE_EVERY", "CURVE_FILLS", "CURVE_ENTRIES", "ABLATION_DRAWS",
           "GRID_READS", "curve_config", "checkpoint_controller", "trajectory_gain", "gain_summary", "measure_gain",
           "ablation_grid", "score_curve", "curve_rows", "first_steering_step", "steps_to_gain", "grid_rows",
           "grid_summary", "curve_summary", "plot_curve", "plot_grid_gain", "main"]

ROOT = Path(__file__).resolve().parent.parent
CURVE_WORK = ROOT / "runs" / "curve"
#: The steering curve's two trainings: chapter 5's shipped ReMoCo recipe (``data/checkpoints/remoco-toy``: dense,
#: every region's trajectory kept) and the same recipe in the paper's sparse regime (Sec. 4.1, r_m ~ U[0.95, 1]).
CURVE_REGIMES = {"dense": {"r_min": 0.0, "r_max": 0.0}, "sparse": {"r_min": 0.95, "r_max": 1.0}}
#: Steps between the curve's checkpoints (all kept).
CURVE_EVERY = 300
#: How each regime's controller is driven at each checkpoint: the brush (every k x k cell inside it, as chapter 5
#: drives the shipped controllers) and, for the sparse one, also the paper's k x k block at the drag's start.
CURVE_FILLS = {"dense": ("brush",), "sparse": ("block", "brush")}
#: Bench entries per point: the first 48 of the object set (36 object drags, 12 camera entries, in the set's order).
CURVE_ENTRIES = ("object", 48)
#: How :func:`ablation_grid` draws each controller's conditions: as it trained (its k, r_min, r_max) and with every
#: region's trajectory kept (what it can read when the whole motion is given).
GRID_READS = ("as trained", "every region")
#: Condition-ablation size per controller: clips x EDM draws (each a paired sample).
ABLATION_DRAWS = (16, 4)


def curve_config(regime: str, seed: int = 0, work=CURVE_WORK) -> TrainConfig:
    """The :class:`TrainConfig` of one steering-curve training: the shipped ReMoCo recipe with ``regime``'s r_min /
    r_max, the faster step (bf16 autocast where native, fused AdamW) and every :data:`CURVE_EVERY`-th checkpoint
    kept, in ``work/<regime>-s<seed>``."""
    from .shipped import shipped_controller_dir

    if regime not in CURVE_REGIMES:
        raise ValueError(f"regime must be one of {tuple(CURVE_REGIMES)}, got {regime!r}")
    cfg = TrainConfig.from_yaml(shipped_controller_dir("remoco") / "config.yaml")
    return cfg.replace(**CURVE_REGIMES[regime], seed=int(seed), out_dir=str(Path(work) / f"{regime}-s{seed}"),
                       mixed_precision="auto", fused_adam=True, checkpoint_every=CURVE_EVERY,
                       keep_checkpoints=cfg.max_steps // CURVE_EVERY + 2, progress=False)


def checkpoint_controller(run_dir, step: int, out=None) -> Path:
    """The controller of training run ``run_dir`` at checkpoint ``step``, written as a :func:`remoco.controller.
    save_controller` folder (``out``, default ``run_dir/controller/step-NNNNNN``; kept if already there) so that
    :func:`remoco.shipped.load_shipped_pipeline` loads it like a final one. Only the checkpoint's
    ``model.safetensors`` is read (no pickled optimizer or RNG state)."""
    from safetensors.torch import load_file

    from .controller import save_controller
    from .objective import Denoiser
    from .train import controller_modules

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"run_dir={str(run_dir)!r} has no config.yaml: not a training run folder")
    ckpts = dict(list_checkpoints(run_dir / "controller" / "checkpoints"))
    if int(step) not in ckpts:
        raise FileNotFoundError(f"step={step}: run {run_dir} has checkpoints at steps {sorted(ckpts)} only")
    out = Path(out) if out is not None else run_dir / "controller" / f"step-{int(step):06d}"
    if (out / "controller" / "config.json").is_file():
        return out
    cfg = TrainConfig.from_yaml(run_dir / "config.yaml")
    _, unet, controller = controller_modules(cfg)
    Denoiser(unet, controller).load_state_dict(load_file(str(ckpts[int(step)] / "model.safetensors")), strict=True)
    with atomic_dir(out) as tmp:
        save_controller(tmp, controller.eval(), unet, unet_weights=cfg.unet_lr > 0)
    return out


def trajectory_gain(ablation: dict, edges=SIGMA_EDGES) -> list[dict]:
    """How much the trajectory lowers the denoising loss, from a :func:`remoco.evaluate.condition_ablation` result:
    per sample ``100 * (L(T_s zeroed) - L(full)) / L(T_s zeroed)`` (%; positive: the trajectory helps), its mean
    with a 95 % t interval over the samples of each noise-level bucket ``[lo, hi)`` of ``edges`` and over all
    (``sigma = "all"``), and the fraction of samples the trajectory helps."""
    per, sig = ablation["per_sample"], np.asarray(ablation["sigma"], dtype=float)
    full = np.asarray(per["full condition"], dtype=float)
    without = np.asarray(per["motion mask only"], dtype=float)
    if not (full.shape == without.shape == sig.shape) or full.ndim != 1:
        raise ValueError(f"ablation: per-sample losses and sigma must be 1-d of one length, got {full.shape}, "
                         f"{without.shape}, {sig.shape}")
    gain = 100 * (without - full) / without
    rows = []
    for label, m in [(f"[{lo:g}, {hi:g})", (sig >= lo) & (sig < hi)) for lo, hi in zip(edges, edges[1:])] + \
            [("all", np.ones_like(sig, dtype=bool))]:
        row = {"sigma": label, "samples": int(m.sum())}
        if m.sum() >= 2:
            ti = t_interval(gain[m])
            row.update(gain=ti["mean"], low=ti["low"], high=ti["high"], helps=float(np.mean(gain[m] > 0)))
        else:
            row.update(gain=float("nan"), low=float("nan"), high=float("nan"), helps=float("nan"))
        rows.append(row)
    return rows


def gain_summary(ablation: dict, min_sigma: float = 2.0) -> dict:
    """One controller's trajectory gain (%, :func:`trajectory_gain`) over all samples and over the samples at
    ``sigma >= min_sigma`` (where the motion of a sample is decided), with their intervals."""
    rows = trajectory_gain(ablation, edges=(0.0, float(min_sigma), float("inf")))
    high, every = rows[1], rows[2]
    return {"gain": every["gain"], "low": every["low"], "high": every["high"],
            "gain_high_sigma": high["gain"], "low_high_sigma": high["low"], "high_high_sigma": high["high"]}


def measure_gain(pipe, cfg: TrainConfig, seed: int = 0, dense: bool = False) -> dict:
    """The condition ablation of ``pipe`` with conditions drawn as ``cfg`` trains them (``dense=True``: with every
    region's trajectory kept instead), on :data:`ABLATION_DRAWS` held-out object clips x draws, as JSON-ready
    lists."""
    clips, draws = ABLATION_DRAWS
    ab = condition_ablation(pipe, cfg, num_clips=clips, draws=draws, seed=seed, dense=dense)
    return {"sigma": ab["sigma"].tolist(), **{k: ab["per_sample"][k].tolist() for k in ABLATION_CONDITIONS}}


def _as_ablation(stored: dict) -> dict:
    return {"sigma": np.asarray(stored["sigma"]),
            "per_sample": {k: np.asarray(stored[k]) for k in ABLATION_CONDITIONS}}


def _cached(path: Path, compute):
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, value)
    return value


def ablation_grid(work=ROOT / "runs" / "reproduce", out=None, cache=CURVE_WORK / "ablation", seed: int = 0,
                  progress: bool = True) -> dict:
    """The trajectory gain of every trained Fig. 7 controller of ``make reproduce`` (``work``: its run folders),
    each with its own k, r_min and r_max. Controllers not on disk are listed under ``"missing"``."""
    from tqdm.auto import tqdm

    from .reproduce import experiment_table
    from .shipped import load_shipped_pipeline

    rows, missing = [], []
    for e in tqdm(experiment_table(only=("fig7",)), desc="trajectory gain", disable=not progress):
        run = Path(work) / e.name
        final = run / "controller" / "final"
        if not (final / "controller" / "config.json").is_file():
            missing.append(e.name)
            continue
        cfg = TrainConfig.from_yaml(run / "config.yaml")

        def compute(cfg=cfg, final=final):
            torch.manual_seed(seed)
            pipe = load_shipped_pipeline(cfg.variant, controller_path=final)
            return {read: measure_gain(pipe, cfg, seed, dense=(read == "every region")) for read in GRID_READS}

        t0 = time.perf_counter()
        stored = _cached(Path(cache) / f"{e.name}.json", compute)
        rows.append(dict(experiment=e.name, seed=e.seed, k=cfg.k, r_min=cfg.r_min, r_max=cfg.r_max,
                         steps=e.max_steps, tables=sorted({t for t, _ in e.rows}), ablation=stored,
                         seconds=time.perf_counter() - t0))
    result = {"settings": {"clips_x_draws": list(ABLATION_DRAWS), "seed": seed, "threads": torch.get_num_threads()},
              "rows": rows, "missing": missing}
    if out is not None:
        write_json(Path(out), result)
    return result


def grid_rows(result: dict, table: str, field: str, read: str = GRID_READS[0]) -> list[dict]:
    """One row per value of ``field`` ("k" or "r_min") among ``result``'s controllers of ``table`` ("fig7a" /
    "fig7b"), conditions drawn as ``read`` says (:data:`GRID_READS`): the trajectory gain over all samples and at
    sigma >= 2, their mean over seeds and each controller's with its interval over samples."""
    by: dict = {}
    for r in result["rows"]:
        if table in r["tables"]:
            by.setdefault(r[field], []).append((r["seed"], gain_summary(_as_ablation(r["ablation"][read]))))
    out = []
    for value in sorted(by):
        seeds = sorted(by[value])
        out.append({field: value, "seeds": len(seeds),
                    "gain, all sigma (%)": float(np.mean([g["gain"] for _, g in seeds])),
                    "gain, sigma >= 2 (%)": float(np.mean([g["gain_high_sigma"] for _, g in seeds])),
                    "per seed, all sigma (%)": " ".join(f"{g['gain']:+.2f} [{g['low']:+.2f}, {g['high']:+.2f}]"
                                                        for _, g in seeds)})
    return out


def grid_summary(result: dict) -> dict:
    """What chapter 7 reads from an :func:`ablation_grid` result: ``tables`` (per swept field, one row per value with
    the gain as trained, at sigma >= 2, per seed, and read with every region), the range of the as-trained gains,
    the k and r_min with the largest one, whether it grows with k and falls as r_min rises, and, per setting
    (k = 2 / r_min = 0.95 is one run, counted once), the gain read with every region."""
    tables, trained = {}, {}
    for table, field in (("fig7a", "k"), ("fig7b", "r_min")):
        as_trained, dense = (grid_rows(result, table, field, read) for read in GRID_READS)
        trained[field] = as_trained
        tables[field] = [{field: f"{a[field]:g}", "seeds": a["seeds"], "as trained (%)": a["gain, all sigma (%)"],
                          "as trained, σ ≥ 2 (%)": a["gain, sigma >= 2 (%)"],
                          "per seed, as trained [95 %]": a["per seed, all sigma (%)"],
                          "every region (%)": b["gain, all sigma (%)"]} for a, b in zip(as_trained, dense)]
    every: dict = {}
    for r in result["rows"]:  # one setting per run, named by the r_min sweep when it is in both
        label = f"r_min = {r['r_min']:g}" if "fig7b" in r["tables"] else f"k = {r['k']:g}"
        every.setdefault(label, []).append(gain_summary(_as_ablation(r["ablation"][GRID_READS[1]]))["gain"])
    gains = [r["gain, all sigma (%)"] for rows in trained.values() for r in rows]
    k_gains, r_gains = ([r["gain, all sigma (%)"] for r in trained[f]] for f in ("k", "r_min"))
    return {"tables": tables, "gain_range": (min(gains), max(gains)),
            "best": {f: max(rows, key=lambda r: r["gain, all sigma (%)"])[f] for f, rows in trained.items()},
            "grows_with_k": all(b > a for a, b in zip(k_gains, k_gains[1:])),
            "falls_with_rmin": all(b < a for a, b in zip(r_gains, r_gains[1:])),
            "every_region": {label: float(np.mean(g)) for label, g in every.items()}}


def score_curve(regimes=tuple(CURVE_REGIMES), seed: int = 0, work=CURVE_WORK, out=None, sample_seed: int = 0,
                num_inference_steps: int = 8, k: int = 2, progress: bool = True) -> dict:
    """Every checkpoint of each regime's curve training (:func:`curve_config`; train it first) scored on
    :data:`CURVE_ENTRIES`: per entry the share of the way for each of :data:`CURVE_FILLS`, with the comparison's
    sampling seeds and settings, and the trajectory gain (:func:`measure_gain`). The image-only base is scored on
    the same entries as the reference (step 0)."""
    from tqdm.auto import tqdm

    from .benchset import load_bench
    from .comparison import score_pipeline
    from .reproduce import BENCH_SETS
    from .shipped import load_shipped_base, load_shipped_pipeline

    bench_set, n = CURVE_ENTRIES
    chosen = list(load_bench(BENCH_SETS[bench_set]))[:n]

    def shares(pipe, fill):
        rows = score_pipeline(pipe, {bench_set: chosen}, fill, sample_seed, num_inference_steps, k)
        return [float(r["share of the way"]) for r in rows]

    jobs = [("base", 0, None)]
    for regime in regimes:
        run = Path(curve_config(regime, seed, work).out_dir)
        steps = [s for s, _ in list_checkpoints(run / "controller" / "checkpoints")]
        if not steps:
            raise FileNotFoundError(f"regime={regime!r}: no checkpoints under {run} (python -m remoco.steering train "
                                    f"--regime {regime})")
        jobs += [(regime, s, run) for s in steps]
    points = []
    for regime, step, run in tqdm(jobs, desc="steering curve", disable=not progress):
        def compute(regime=regime, step=step, run=run):
            t0 = time.perf_counter()
            torch.manual_seed(sample_seed)
            if run is None:
                return {"share": {"none": shares(load_shipped_base(), None)}, "seconds": time.perf_counter() - t0}
            cfg = TrainConfig.from_yaml(run / "config.yaml")
            pipe = load_shipped_pipeline(cfg.variant, controller_path=checkpoint_controller(run, step))
            value = {"share": {f: shares(pipe, f) for f in CURVE_FILLS[regime]},
                     "ablation": measure_gain(pipe, cfg, sample_seed)}
            return dict(value, seconds=time.perf_counter() - t0)

        points.append(dict(regime=regime, step=step, **_cached(Path(work) / "scores" / f"{regime}-{step:06d}.json",
                                                                compute)))
    result = {"settings": {"entries": [e.name for e in chosen], "set": bench_set, "sample_seed": sample_seed,
                           "num_inference_steps": num_inference_steps, "k": k, "training_seed": seed,
                           "regimes": {r: CURVE_REGIMES[r] for r in regimes}, "threads": torch.get_num_threads()},
              "points": points}
    if out is not None:
        write_json(Path(out), result)
    return result


def curve_rows(result: dict) -> list[dict]:
    """One row per (regime, fill, step) of a :func:`score_curve` result: mean share of the way with its 95 % t
    interval over entries, the paired difference from the base on the same entries, and the trajectory gain."""
    base = np.asarray(next(p for p in result["points"] if p["regime"] == "base")["share"]["none"])
    rows = [{"regime": "base", "fill": "-", "step": 0, "share of the way": float(base.mean()),
             "vs base [95 %]": "-", "trajectory gain (%)": float("nan")}]
    for p in result["points"]:
        if p["regime"] == "base":
            continue
        g = gain_summary(_as_ablation(p["ablation"]))
        for fill, values in p["share"].items():
            v = np.asarray(values)
            d = t_interval(v - base)
            rows.append({"regime": p["regime"], "fill": fill, "step": p["step"], "share of the way": float(v.mean()),
                         "vs base [95 %]": f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]",
                         "vs base low": d["low"], "trajectory gain (%)": g["gain"]})
    return rows


def first_steering_step(rows: list[dict], regime: str, fill: str) -> int | None:
    """The first checkpoint (step) of ``regime`` driven with ``fill`` whose share of the way is above the base's on
    the same entries with the 95 % interval excluding zero (:func:`curve_rows`), or None if none is."""
    steps = sorted(r["step"] for r in rows if (r["regime"], r["fill"]) == (regime, fill) and r["vs base low"] > 0)
    return steps[0] if steps else None


def steps_to_gain(rows: list[dict], regime: str, target: float) -> float | None:
    """A linear extrapolation: the training step at which ``regime``'s trajectory gain (:func:`curve_rows`) would
    reach ``target`` (%), from a least-squares line through its checkpoints in the second half of the run (the
    latest trend), or None if that line does not rise. The step is returned as measured when a checkpoint already
    reached ``target``."""
    pts = sorted({(r["step"], r["trajectory gain (%)"]) for r in rows if r["regime"] == regime})
    if len(pts) < 2:
        raise ValueError(f"regime={regime!r}: expected at least 2 checkpoints in rows, got {len(pts)}")
    reached = [s for s, g in pts if g >= target]
    if reached:
        return float(reached[0])
    late = [(s, g) for s, g in pts if s >= pts[-1][0] / 2] or pts
    late = late if len(late) >= 2 else pts[-2:]
    slope, intercept = np.polyfit([s for s, _ in late], [g for _, g in late], 1)
    rise = slope * (late[-1][0] - late[0][0])  # over the fitted steps; float noise of a flat line is not a rise
    return float((target - intercept) / slope) if rise > 1e-9 else None


def curve_summary(result: dict) -> dict:
    """What chapter 7 reads from a :func:`score_curve` result: its rows (:func:`curve_rows`), the base's share, the
    dense run's first steering step, last share and gain range, the sparse run's share and gain ranges, the first
    step each sparse fill steers (None: never), the dense gain at its first steering step and the step a straight
    line through the sparse gains would reach it (:func:`steps_to_gain`)."""
    rows = curve_rows(result)
    dense = [r for r in rows if r["regime"] == "dense"]
    sparse = [r for r in rows if r["regime"] == "sparse"]
    first = first_steering_step(rows, "dense", "brush")
    target = next((r["trajectory gain (%)"] for r in dense if r["step"] == first), None)

    def span(rs, key):
        return (min(r[key] for r in rs), max(r[key] for r in rs))

    return {"rows": rows, "entries": len(result["settings"]["entries"]), "base": rows[0]["share of the way"],
            "dense_first": first, "dense_last": dense[-1]["share of the way"],
            "dense_gain": span(dense, "trajectory gain (%)"), "sparse_share": span(sparse, "share of the way"),
            "sparse_gain": span(sparse, "trajectory gain (%)"),
            "sparse_first": {f: first_steering_step(rows, "sparse", f) for f in CURVE_FILLS["sparse"]},
            "target_gain": target,
            "sparse_reach": steps_to_gain(rows, "sparse", target) if target is not None else None}


def plot_curve(result: dict, axes=None, label: str = ""):
    """Share of the way (left) and trajectory gain (right) against training steps, one line per regime and fill,
    the base as a dashed line."""
    import matplotlib.pyplot as plt

    rows = curve_rows(result)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    base = rows[0]["share of the way"]
    lines = sorted({(r["regime"], r["fill"]) for r in rows[1:]})
    for regime, fill in lines:
        pts = sorted((r["step"], r["share of the way"]) for r in rows[1:] if (r["regime"], r["fill"]) == (regime, fill))
        axes[0].plot(*zip(*pts), "o-" if regime == "dense" else "s--", label=f"{regime}, {fill} fill")
    axes[0].axhline(base, color="grey", ls=":", label="image-only base")
    axes[0].set(xlabel="training step", ylabel="share of the way", title=f"steering{label}")
    for regime in sorted({r for r, _ in lines}):
        pts = sorted({(r["step"], r["trajectory gain (%)"]) for r in rows[1:] if r["regime"] == regime})
        axes[1].plot(*zip(*pts), "o-" if regime == "dense" else "s--", label=regime)
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set(xlabel="training step", ylabel="loss lowered by T_s (%)", title="trajectory gain (as trained)")
    for ax in axes:
        ax.legend(fontsize=7)
    return axes


def plot_grid_gain(result: dict, axes=None):
    """Trajectory gain (%) of the Fig. 7 controllers against k (left) and r_min (right): each controller's mean with
    its 95 % interval over samples, one marker per read of :data:`GRID_READS` and training seed."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, (table, field) in zip(axes, (("fig7a", "k"), ("fig7b", "r_min"))):
        values = sorted({r[field] for r in result["rows"] if table in r["tables"]})
        for j, read in enumerate(GRID_READS):
            for seed in sorted({r["seed"] for r in result["rows"]}):
                pts = [(values.index(r[field]), gain_summary(_as_ablation(r["ablation"][read])))
                       for r in result["rows"] if table in r["tables"] and r["seed"] == seed]
                if not pts:
                    continue
                x = np.array([i for i, _ in pts]) + 0.15 * (2 * j + seed - 1.5)
                g = np.array([[s["gain"], s["gain"] - s["low"], s["high"] - s["gain"]] for _, s in pts])
                ax.errorbar(x, g[:, 0], yerr=g[:, 1:].T, fmt="os"[j], ms=4, capsize=2, color=f"C{j}",
                            alpha=1.0 if seed == 0 else 0.55, label=f"{read}, seed {seed}")
        ax.set_xticks(range(len(values)), [f"{v:g}" for v in values])
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(xlabel=field, ylabel="loss lowered by T_s (%)", title=f"{field} sweep (sparse regime, Fig. 7)")
    axes[0].legend(fontsize=7)
    return axes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m remoco.steering", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one steering-curve controller (resumable)")
    t.add_argument("--regime", choices=tuple(CURVE_REGIMES), required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--work", default=str(CURVE_WORK))
    c = sub.add_parser("curve", help="score every checkpoint of the curve trainings")
    c.add_argument("--regimes", nargs="+", default=list(CURVE_REGIMES), choices=tuple(CURVE_REGIMES))
    c.add_argument("--work", default=str(CURVE_WORK))
    c.add_argument("--out", default=str(ROOT / "results" / "steering_curve.json"))
    a = sub.add_parser("ablation", help="trajectory gain of every Fig. 7 controller of make reproduce")
    a.add_argument("--work", default=str(ROOT / "runs" / "reproduce"))
    a.add_argument("--out", default=str(ROOT / "results" / "condition_ablation.json"))
    args = p.parse_args(argv)
    if args.cmd == "train":
        from .train import train

        train(curve_config(args.regime, args.seed, args.work))
    elif args.cmd == "curve":
        score_curve(args.regimes, work=args.work, out=args.out)
    else:
        res = ablation_grid(args.work, out=args.out)
        if res["missing"]:
            print(f"not trained (run make reproduce first): {', '.join(res['missing'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
