"""Tests of remoco.steering: a checkpoint's controller equals the final one at the last step, the trajectory gain on
known losses, the curve's configurations, and the summary rows on hand-made results."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from remoco import config, steering
from remoco import train as T
from remoco.evaluate import ABLATION_CONDITIONS

torch.set_num_threads(1)


def _tiny_run(out, **kw):
    cfg = config.preset_config("toy-cpu", "controller", out_dir=str(out), num_clips=4, num_frames=4, height=32,
                               width=32, batch_size=2, max_steps=2, checkpoint_every=1, keep_checkpoints=5,
                               warmup_steps=1, vae_steps=0, progress=False, base="random:0", lora_rank=4, **kw)
    T.train(cfg)
    return out


@pytest.mark.parametrize("unet_lr", [0.0, 1e-4])
def test_checkpoint_controller_at_last_step_equals_final(tmp_path, unet_lr):
    run = _tiny_run(tmp_path / "c", unet_lr=unet_lr)
    final = run / "controller" / "final"
    at2 = steering.checkpoint_controller(run, 2)
    at1 = steering.checkpoint_controller(run, 1)
    names = ["controller/diffusion_pytorch_model.safetensors", "lora.safetensors"]
    if unet_lr > 0:
        names.append("unet_weights.safetensors")
    for name in names:
        a, b, c = (load_file(str(p / name)) for p in (at2, final, at1))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
        # one step earlier the trained weights differ (the controller learned something in step 2)
        if name.startswith("controller"):
            assert any(not torch.equal(a[k], c[k]) for k in a)
    assert not (at1 / "unet_weights.safetensors").exists() or unet_lr > 0
    with pytest.raises(FileNotFoundError, match="step=7"):
        steering.checkpoint_controller(run, 7)
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        steering.checkpoint_controller(tmp_path / "nowhere", 1)


def _ablation(full, without, sigma):
    per = {"full condition": np.asarray(full, float), "motion mask only": np.asarray(without, float)}
    per.update({k: np.ones(len(full)) for k in ABLATION_CONDITIONS if k not in per})
    return {"per_sample": per, "sigma": np.asarray(sigma, float)}


def test_trajectory_gain_on_known_losses():
    # at sigma >= 2 the trajectory halves the loss on every sample, below it does nothing
    sigma = [0.5, 1.0, 3.0, 4.0, 10.0, 20.0]
    without = [1.0, 2.0, 1.0, 2.0, 4.0, 8.0]
    full = [1.0, 2.0, 0.5, 1.0, 2.0, 4.0]
    rows = steering.trajectory_gain(_ablation(full, without, sigma), edges=(0.0, 2.0, float("inf")))
    low, high, every = rows
    assert (low["samples"], high["samples"], every["samples"]) == (2, 4, 6)
    assert low["gain"] == pytest.approx(0.0) and low["helps"] == 0.0
    assert high["gain"] == pytest.approx(50.0) and high["helps"] == 1.0
    assert high["low"] == pytest.approx(50.0) and high["high"] == pytest.approx(50.0)  # no spread
    assert every["gain"] == pytest.approx(200 / 6)
    assert every["low"] < every["gain"] < every["high"]
    s = steering.gain_summary(_ablation(full, without, sigma))
    assert s["gain_high_sigma"] == pytest.approx(50.0) and s["gain"] == pytest.approx(200 / 6)
    # a trajectory that hurts gives a negative gain
    hurt = steering.trajectory_gain(_ablation(without, full, sigma), edges=(2.0, float("inf")))[0]
    assert hurt["gain"] == pytest.approx(-100.0) and hurt["helps"] == 0.0
    with pytest.raises(ValueError, match="ablation"):
        steering.trajectory_gain(_ablation(full, without, sigma[:-1]))


def test_curve_configs_differ_from_the_shipped_recipe_only_in_the_regime():
    shipped = config.TrainConfig.from_yaml(config.SHIPPED_DIR / "remoco-toy" / "config.yaml")
    dense, sparse = steering.curve_config("dense"), steering.curve_config("sparse", seed=3)
    bookkeeping = {"out_dir", "checkpoint_every", "keep_checkpoints", "progress"}
    d, want = dense.to_dict(), shipped.replace(mixed_precision="auto", fused_adam=True).to_dict()
    assert {k: v for k, v in d.items() if k not in bookkeeping} == \
        {k: v for k, v in want.items() if k not in bookkeeping}
    assert (sparse.r_min, sparse.r_max, sparse.seed) == (0.95, 1.0, 3)
    assert sparse.replace(r_min=0.0, r_max=0.0, seed=0).fingerprint("controller") == dense.fingerprint("controller")
    # every checkpoint is kept: max_steps / CURVE_EVERY of them plus a spare
    assert dense.keep_checkpoints * steering.CURVE_EVERY > dense.max_steps
    assert dense.out_dir.endswith("dense-s0") and sparse.out_dir.endswith("sparse-s3")
    with pytest.raises(ValueError, match="regime"):
        steering.curve_config("medium")


def test_curve_rows_pair_with_the_base_on_the_same_entries():
    abl = {"sigma": [1.0, 3.0, 5.0], **{k: [1.0, 1.0, 1.0] for k in ABLATION_CONDITIONS}}
    abl["full condition"] = [1.0, 0.8, 0.9]
    result = {"points": [
        {"regime": "base", "step": 0, "share": {"none": [0.0, 0.1, -0.1, 0.2]}},
        {"regime": "dense", "step": 300, "share": {"brush": [0.5, 0.6, 0.4, 0.7]}, "ablation": abl},
        {"regime": "sparse", "step": 300, "share": {"block": [0.0, 0.1, -0.1, 0.2], "brush": [0.1, 0.2, 0.0, 0.3]},
         "ablation": abl}]}
    rows = steering.curve_rows(result)
    assert [(r["regime"], r["fill"]) for r in rows] == [("base", "-"), ("dense", "brush"), ("sparse", "block"),
                                                          ("sparse", "brush")]
    assert rows[0]["share of the way"] == pytest.approx(0.05)
    # the dense controller is 0.5 above the base on every entry: a paired interval of zero width
    assert rows[1]["vs base [95 %]"] == "+0.50 [+0.50, +0.50]"
    assert rows[2]["vs base [95 %]"] == "+0.00 [+0.00, +0.00]"
    assert rows[1]["trajectory gain (%)"] == pytest.approx(100 * (0.0 + 0.2 + 0.1) / 3)
    assert steering.first_steering_step(rows, "dense", "brush") == 300
    assert steering.first_steering_step(rows, "sparse", "block") is None  # equal to the base: not above it


def test_grid_rows_average_over_seeds():
    def row(k, seed, gain):
        abl = {"sigma": [1.0, 3.0, 4.0], **{c: [1.0] * 3 for c in ABLATION_CONDITIONS},
               "full condition": [1 - gain] * 3}
        return {"k": k, "r_min": 0.95, "seed": seed, "tables": ["fig7a"],
                "ablation": {"as trained": abl, "every region": dict(abl, **{"full condition": [1.0] * 3})}}

    result = {"rows": [row(1, 0, 0.1), row(1, 1, 0.3), row(8, 0, 0.0), row(8, 1, 0.0)]}
    rows = steering.grid_rows(result, "fig7a", "k")
    assert [r["k"] for r in rows] == [1, 8] and rows[0]["seeds"] == 2
    assert rows[0]["gain, all sigma (%)"] == pytest.approx(20.0)
    assert rows[1]["gain, sigma >= 2 (%)"] == pytest.approx(0.0)
    assert steering.grid_rows(result, "fig7b", "r_min") == []
    # read with every region, the same controllers gain nothing here
    assert steering.grid_rows(result, "fig7a", "k", read="every region")[0]["gain, all sigma (%)"] == 0.0


def test_plots_draw_one_series_per_regime_fill_and_read():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    abl = {"sigma": [1.0, 3.0, 5.0], **{k: [1.0, 1.0, 1.0] for k in ABLATION_CONDITIONS}}
    curve = {"points": [
        {"regime": "base", "step": 0, "share": {"none": [0.0, 0.1]}},
        *[{"regime": "dense", "step": s, "share": {"brush": [0.2, 0.3]}, "ablation": abl} for s in (300, 600)],
        *[{"regime": "sparse", "step": s, "share": {"block": [0.0, 0.1], "brush": [0.1, 0.1]}, "ablation": abl}
          for s in (300, 600)]]}
    ax = steering.plot_curve(curve)
    # three share lines (dense brush, sparse block, sparse brush) + the base line; two gain lines + the zero line
    assert len(ax[0].get_lines()) == 4 and len(ax[1].get_lines()) == 3
    grid = {"rows": [{"k": k, "r_min": 0.95, "seed": s, "tables": ["fig7a"], "ablation": {r: abl for r in
                      steering.GRID_READS}} for k in (1, 2) for s in (0, 1)]}
    ax = steering.plot_grid_gain(grid)
    assert len(ax[0].containers) == 2 * len(steering.GRID_READS) and len(ax[1].containers) == 0
    plt.close("all")


def test_steps_to_gain_extrapolates_the_late_trend():
    rows = [{"regime": "sparse", "step": s, "trajectory gain (%)": g}
            for s, g in ((300, 0.15), (600, 0.2), (900, 0.3), (1200, 0.4))]
    # the late line (steps >= 600) rises 0.1 % per 300 steps from 0.2 % at 600: 1 % at step 3,000 (the early
    # point, off that line, is left out)
    assert steering.steps_to_gain(rows, "sparse", 1.0) == pytest.approx(3000.0)
    assert steering.steps_to_gain(rows, "sparse", 0.3) == 900.0  # already reached: as measured
    flat = [dict(r, **{"trajectory gain (%)": 0.1}) for r in rows]
    assert steering.steps_to_gain(flat, "sparse", 1.0) is None
    with pytest.raises(ValueError, match="regime"):
        steering.steps_to_gain(rows, "dense", 1.0)


def test_summaries_read_the_hand_made_results():
    def abl(gain):
        return {"sigma": [1.0, 3.0, 4.0], **{c: [1.0] * 3 for c in ABLATION_CONDITIONS},
                "full condition": [1 - gain / 100] * 3}

    rows = [{"k": k, "r_min": 0.95, "seed": s, "tables": ["fig7a"] + (["fig7b"] if k == 2 else []),
             "ablation": {"as trained": abl(g), "every region": abl(-g)}} for k, g in ((1, 0.1), (2, 0.3), (4, 0.2))
            for s in (0, 1)]
    rows += [{"k": 2, "r_min": 0.5, "seed": s, "tables": ["fig7b"],
              "ablation": {"as trained": abl(1.0), "every region": abl(2.0)}} for s in (0, 1)]
    gs = steering.grid_summary({"rows": rows})
    assert gs["gain_range"] == (pytest.approx(0.1), pytest.approx(1.0))
    assert gs["best"] == {"k": 2, "r_min": 0.5} and gs["grows_with_k"] is False
    assert gs["falls_with_rmin"] is True  # r_min 0.5 -> 0.95: +1.0 % -> +0.3 %
    # k = 2 and r_min = 0.95 are one run: four settings, one of which gains from every region's trajectory
    assert set(gs["every_region"]) == {"k = 1", "r_min = 0.95", "k = 4", "r_min = 0.5"}
    assert [s for s, g in gs["every_region"].items() if g > 0] == ["r_min = 0.5"]
    assert [r["k"] for r in gs["tables"]["k"]] == ["1", "2", "4"]

    curve = {"settings": {"entries": ["a", "b", "c"]}, "points": [
        {"regime": "base", "step": 0, "share": {"none": [0.0, 0.1, -0.1]}},
        *[{"regime": "dense", "step": s, "share": {"brush": [v, v + 0.1, v - 0.05]}, "ablation": abl(g)}
          for s, v, g in ((300, 0.0, 5.0), (600, 0.3, 15.0))],
        *[{"regime": "sparse", "step": s, "share": {"block": [0.0, 0.1, -0.1], "brush": [0.01, 0.1, -0.1]},
           "ablation": abl(g)} for s, g in ((300, 0.5), (600, 1.0))]]}
    cs = steering.curve_summary(curve)
    assert cs["entries"] == 3 and cs["dense_first"] == 600 and cs["target_gain"] == pytest.approx(15.0)
    assert cs["sparse_first"] == {"block": None, "brush": None}
    # the sparse gain rises 0.5 % per 300 steps from 0.5 % at 300: 15 % at step 9,000
    assert cs["sparse_reach"] == pytest.approx(9000.0)
    assert cs["dense_gain"] == (pytest.approx(5.0), pytest.approx(15.0))
