"""Tests of remoco.fidelity: PSNR / SSIM on known answers, reconstruction, object colour shift."""

import math

import numpy as np
import pytest
import torch

from remoco import data, fidelity, models
from remoco.evaluate import object_trajectory


def test_psnr_and_ssim_known_answers():
    rng = np.random.default_rng(0)
    a = rng.integers(20, 230, (4, 16, 16, 3)).astype(np.uint8)
    assert fidelity.psnr(a, a) == math.inf
    b = (a.astype(int) + 10).astype(np.uint8)  # every pixel off by 10 grey levels
    assert fidelity.psnr(a, b) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)
    assert fidelity.ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    assert fidelity.ssim(a, b) > fidelity.ssim(a, noisy)  # a constant shift keeps the structure, noise does not
    with pytest.raises(ValueError, match="same shape"):
        fidelity.psnr(a, a[:2])
    with pytest.raises(ValueError, match="uint8"):
        fidelity.psnr(a.astype(np.float32), a)


def test_reconstruct_and_vae_fidelity_shapes():
    vae = models.build_toy_components(0)["vae"].eval()
    clip = data.make_clip(1).video.numpy()
    rec = fidelity.reconstruct(vae, clip)
    assert rec.shape == clip.shape and rec.dtype == np.uint8
    r = fidelity.vae_fidelity(vae, {"a": [clip], "b": [clip, clip]})
    assert len(r["all"]["psnr"]) == 3 and r["a"]["psnr"][0] == pytest.approx(r["b"]["psnr"][1])
    assert r["a"]["psnr"][0] < 20  # an untrained VAE does not reconstruct


def test_held_out_clips():
    clips = fidelity.held_out_clips(num_clips=2)
    assert [len(clips[k]) for k in ("object clips", "bench scenes")] == [2, 2]
    assert len(clips["photographs"]) == len(data.ALL_PHOTOS)
    for vids in clips.values():
        for v in vids:
            assert v.shape == (8, 64, 64, 3) and v.dtype == np.uint8
    with pytest.raises(ValueError, match="num_clips"):
        fidelity.held_out_clips(num_clips=1)


def test_object_colour_shift_floor_and_recoloured_object():
    clip = data.make_clip(2, kind="object")
    _, region = object_trajectory(clip)
    v = clip.video.numpy()
    floor = fidelity.object_colour_shift(v, region)
    assert floor < 8
    recoloured = v.copy()
    recoloured[-1] = np.clip(recoloured[-1].astype(int) + np.array([60, -60, 0]), 0, 255).astype(np.uint8)
    assert fidelity.object_colour_shift(recoloured, region) > floor + 25
    with pytest.raises(ValueError, match="region"):
        fidelity.object_colour_shift(v, torch.zeros(64, 64, dtype=torch.bool))


def test_vae_study_figures_read_the_stored_studies():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "results"
    studies = [json.loads((root / f"{n}.json").read_text()) for n in ("vae_sweep", "vae_sweep_long", "vae_arch_probe")]
    f = fidelity.vae_study_figures(*studies)
    runs = studies[2]["runs"]
    t4 = {p["step"]: p["all"] for p in runs["temporal, 4 latent channels"]["points"]}
    t8 = {p["step"]: p["all"] for p in runs["temporal, 8 latent channels"]["points"]}
    assert float(f["arch_lat8_gain"]) == pytest.approx(t8[max(t8)] - t4[max(t8)], abs=0.051)
    assert f["arch_steps"] == f"{max(t4):,}" and f["long_steps"] == "2,000"
    assert float(f["long_first4"]) == pytest.approx(
        studies[1]["variants"]["first toy VAE, 4 ch/group"]["curve"][-1]["all psnr"], abs=0.051)


def test_vae_study_figures_read_the_plain_probe():
    # each arm is read at the first step every arm reached, whatever order the runs are stored in
    probe = {"runs": {
        "tiny": {"kind": "tiny", "clips": 8, "frames": 1, "points": [{"step": 250, "minutes": 5.0, "all": 19.0}]},
        "plain": {"kind": "plain", "clips": 8, "frames": 1,
                  "points": [{"step": 250, "minutes": 3.0, "all": 22.0}, {"step": 500, "minutes": 6.2, "all": 24.04}]},
        "frame": {"kind": "frame", "clips": 8, "frames": 1, "points": [{"step": 250, "minutes": 4.0, "all": 17.0}]},
        "frame, no norm, no attention": {"kind": "frame", "clips": 8, "frames": 1, "no_norm": True,
                                         "no_attention": True, "points": [{"step": 250, "minutes": 4, "all": 1.0}]},
        "frame, no norm": {"kind": "frame", "clips": 8, "frames": 1, "no_norm": True,
                           "points": [{"step": 250, "minutes": 4.0, "all": 19.5}]}}}
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "results"
    studies = [json.loads((root / f"{n}.json").read_text()) for n in ("vae_sweep", "vae_sweep_long", "vae_arch_probe")]
    f = fidelity.vae_study_figures(*studies, plain_probe=probe)
    assert (f["plain_step"], f["plain_plain"], f["plain_frame"], f["plain_frame_nonorm"], f["plain_tiny"]) == \
        ("250", "22.0", "17.0", "19.5", "19.0")
    assert (f["plain_last"], f["plain_last_steps"], f["plain_last_min"]) == ("24.0", "500", "6")


def test_fidelity_rows_one_per_system_in_order():
    def system(psnr, ff, shift, ratio):
        return {"vae": {"all": {"psnr": psnr, "ssim": 0.5}}, "first_frame_psnr": ff,
                "colour_shift": {"base": shift, "data": [1.0, float("nan"), 3.0]},
                "motion (12 clips, seed 12345)": {"127": {"ratio": ratio}}}

    systems = {"a": system(20.0, [18.0, 20.0], [10.0, 30.0], 0.25), "b": system(26.0, [24.0], [5.0], 0.5)}
    rows = fidelity.fidelity_rows(systems, names=["b", "a"])
    assert [r["toy"] for r in rows] == ["b", "a"]
    assert rows[1]["first frame PSNR (dB)"] == 19.0 and rows[1]["colour shift, generated"] == 20.0
    assert rows[0]["colour shift, real clips"] == 2.0 and rows[0]["base motion (% of data's)"] == 50.0
    with pytest.raises(ValueError, match="names"):
        fidelity.fidelity_rows(systems, names=["c"])


def test_sampling_lever_figures_reads_each_arm():
    from remoco import fidelity

    def arm(ratio, colours, gap=(0.0, 0.0, 0.0)):
        return {"ratio": ratio, "colour shift": colours,
                "paired vs default": {"motion (share of data)": dict(zip(("mean", "low", "high"), gap))}}

    names = ["default", "bucket 35 (object clips' median)", "bucket 255", "no guidance (1 → 1)"]
    levers = {"clips": 3, "arms": {n: {} for n in names}, "data buckets": [10, 30, 50],
              "data colour shift": [4.0, float("nan"), 6.0],
              "systems": {"shipped": {"arms": {"default": arm(0.4, [20.0]), names[1]: arm(0.2, [19.0]),
                                               "bucket 255": arm(0.5, [24.0], (0.1, 0.02, 0.18)),
                                               names[3]: arm(0.37, [25.0])}},
                          "plain": {"arms": {"default": arm(0.3, [40.0, float("nan")]), names[1]: arm(0.19, [36.0]),
                                             "bucket 255": arm(0.29, [39.0]), names[3]: arm(0.32, [35.0])}},
                          "plain, noise-robust decoder": {"arms": {"default": arm(0.48, [39.0])}}}}
    assert "ms_noisy" not in fidelity.sampling_lever_figures(levers)  # a system not measured: no figures
    levers["systems"]["plain"]["arms"]["default"]["first frame psnr"] = [23.0, 25.0]
    levers["systems"]["noisy-latent VAE base"] = {"arms": {"default": arm(0.13, [28.0]) | {"first frame psnr": [18.1]},
                                                           names[3]: arm(0.14, [10.0])}}
    f = fidelity.sampling_lever_figures(levers)
    assert (f["ms_noisy"], f["ms_noisy_noguid_colour"], f["ms_noisy_frame1"], f["ms_plain_frame1"]) == \
        ("13", "10", "18.1", "24.0")
    assert f["ms_data_bucket"] == "30" and f["ms_data_colour"] == "5"  # NaN colour shifts are left out
    assert (f["ms_shipped"], f["ms_shipped_255"], f["ms_shipped_35"]) == ("40", "50", "20")
    assert f["ms_shipped_255_gap"] == "+10 [+2, +18]"
    assert (f["ms_plain_min"], f["ms_plain_max"], f["ms_plain_colour"]) == ("19", "32", "40")
    assert (f["ms_plain_noguid"], f["ms_plain_noguid_colour"], f["ms_robust"]) == ("32", "35", "48")
    assert "ms_look_max" not in f and "ms_noisy15" not in f
    levers |= {"data appearance px": [10.0, 30.0], "data appearance found": [True, True, False, True]}
    levers["systems"]["shipped"]["arms"]["default"] |= {"appearance px": [4.0, 0.0], "appearance found": [1, 0]}
    levers["systems"]["plain"]["arms"]["bucket 255"] |= {"appearance px": [12.0, 0.0], "appearance found": [1, 0]}
    f = fidelity.sampling_lever_figures(levers)
    assert (f["ms_data_found"], f["ms_look_shipped"], f["ms_found_shipped"], f["ms_look_max"]) == \
        ("75", "10", "50", "30")
    assert "ms_look_plain" not in f  # its default arm was not measured by appearance
    assert "ms_ceil_shipped" not in f
    levers["systems"]["shipped"]["through its autoencoder"] = {"appearance px": [16.0, 4.0],
                                                               "appearance found": [True, False]}
    f = fidelity.sampling_lever_figures(levers)
    assert (f["ms_ceil_shipped"], f["ms_ceil_found_shipped"]) == ("50", "50")


def test_base_motion_rows_real_clips_first_then_each_appearance_arm():
    from remoco import fidelity

    def arm(flow, look=None, found=None):
        r = {"base px": flow, "colour shift": [10.0, float("nan")], "first frame psnr": [20.0, 22.0]}
        return r if look is None else r | {"appearance px": look, "appearance found": found}

    levers = {"data px": [10.0, 30.0], "data appearance px": [8.0, 12.0], "data appearance found": [True, False],
              "data colour shift": [4.0, 6.0],
              "systems": {"a": {"arms": {"default": arm([5.0, 15.0], [0.0, 2.0], [True, False]),
                                         "bucket 35": arm([1.0, 1.0])}},
                          "b": {"arms": {"default": arm([20.0, 20.0], [10.0, 10.0], [True, True])},
                                "through its autoencoder": arm([10.0, 10.0], [4.0, 6.0], [True, False])}}}
    rows = fidelity.base_motion_rows(levers, {"b": "base B", "a": "base A"})
    assert [(r["base"], r["sampling"]) for r in rows] == [
        ("real clips", ""), ("base B", "default"), ("base B", fidelity.CEILING),
        ("base A", "default")]  # arms without appearance and ceilings not measured: left out
    assert rows[2]["motion by flow (%)"] == 50.0 and rows[2]["motion by appearance (%)"] == 50.0
    # B's default arm against its own ceiling, clip by clip: (10 - 4, 10 - 6) / mean real 10 -> +60, +40 points
    # a percentile bootstrap over the two clips: resampled means 40, 50 or 60 -> [+40, +60]
    assert rows[1][fidelity.CEILING_GAP] == "+50 [+40, +60]" and rows[2][fidelity.CEILING_GAP] is None
    assert rows[3][fidelity.CEILING_GAP] is None  # base A: no ceiling measured
    del rows[2]
    assert rows[0]["object found (%)"] == 50.0 and rows[0]["colour shift"] == 5.0 and rows[0]["frame 1 (dB)"] is None
    assert rows[1]["motion by flow (%)"] == 100.0 and rows[1]["motion by appearance (%)"] == 100.0
    assert rows[2]["motion by flow (%)"] == 50.0 and rows[2]["motion by appearance (%)"] == 10.0
    assert rows[2]["object found (%)"] == 50.0 and rows[2]["colour shift"] == 10.0 and rows[2]["frame 1 (dB)"] == 21.0
