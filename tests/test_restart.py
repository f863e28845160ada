"""The sampler restarted from a noised real clip (remoco.restart)."""

import numpy as np
import pytest
import torch

from remoco import fidelity, models, restart
from remoco.pipeline import build_toy_remoco_pipeline

torch.set_num_threads(1)

L = 4  # frames: keeps the tests fast


@pytest.fixture(scope="module")
def base():
    return models.build_toy_pipeline(seed=0)


@pytest.fixture(scope="module")
def videos():
    g = np.random.default_rng(0)
    out = []
    for _ in range(2):
        v = np.full((L, 64, 64, 3), 90, np.uint8)
        v[..., 2] = g.integers(0, 255, (64, 64), dtype=np.uint8)  # a textured background
        for t in range(L):
            v[t, 20:36, 10 + 5 * t:26 + 5 * t] = (230, 40, 40)  # a red square moving right
        out.append(v)
    return out


def test_karras_sigmas_match_svd_scheduler_at_sigma_max():
    from diffusers import EulerDiscreteScheduler

    sched = EulerDiscreteScheduler(**models.svd_scheduler_config())
    sched.set_timesteps(15)
    ours = restart.karras_sigmas(700.0, 15)
    assert len(ours) == 16 and ours[-1] == 0.0
    np.testing.assert_allclose(ours, sched.sigmas.numpy(), rtol=1e-4, atol=1e-6)


def test_karras_sigmas_run_from_start_to_min_then_zero():
    s = restart.karras_sigmas(2.0, 6)
    assert s[0] == pytest.approx(2.0) and s[-2] == pytest.approx(restart.SIGMA_MIN) and s[-1] == 0.0
    assert all(a > b for a, b in zip(s, s[1:]))
    assert restart.karras_sigmas(0.5, 1) == [0.5, 0.0]


@pytest.mark.parametrize("kw", [dict(sigma_start=0.001), dict(sigma_start=float("nan")),
                                dict(sigma_start=1.0, num_steps=0), dict(sigma_start=1.0, num_steps=True)])
def test_karras_sigmas_bad_input(kw):
    with pytest.raises(ValueError, match="sigma_start|num_steps"):
        restart.karras_sigmas(**kw)


def test_clip_latents_shape_and_bad_input(base, videos):
    z = restart.clip_latents(base.vae, videos[0])
    assert z.shape == (L, 4, 16, 16) and z.dtype == torch.float32
    with pytest.raises(ValueError, match="video"):
        restart.clip_latents(base.vae, videos[0].astype(np.float32))
    with pytest.raises(ValueError, match="video"):
        restart.clip_latents(base.vae, videos[0][:1])


def test_decoded_clip_latents_are_the_autoencoders_reconstruction(base, videos):
    dec = restart.decoded_videos(base, restart.clip_latents(base.vae, videos[0])[None])
    rec = fidelity.reconstruct(base.vae, videos[0])
    assert dec[0].shape == rec.shape
    assert np.abs(dec[0].astype(int) - rec.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="latents"):
        restart.decoded_videos(base, torch.zeros(L, 4, 16, 16))


def test_zero_denoiser_follows_the_euler_ode_from_the_noised_clip(videos):
    """With F = 0 the EDM denoiser is z / (sigma^2 + 1), so the Euler sampler's path from the noised clip can be
    written out by hand: a wrong initial scaling or schedule would end elsewhere."""
    pipe = models.build_toy_pipeline(seed=0)
    torch.nn.init.zeros_(pipe.unet.conv_out.weight)
    torch.nn.init.zeros_(pipe.unet.conv_out.bias)
    sigma_start, steps, seed = 2.0, 5, 7
    _, finals = restart.restarted_videos(pipe, videos[:1], [seed], sigma_start, num_steps=steps, precision="no")
    z0 = restart.clip_latents(pipe.vae, videos[0])
    z = z0 + sigma_start * torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed))
    sig = restart.karras_sigmas(sigma_start, steps)
    for s, s_next in zip(sig, sig[1:]):
        z = z + (s_next - s) * (z - z / (s * s + 1)) / s
    torch.testing.assert_close(finals[0], z, rtol=1e-4, atol=1e-4)


def test_tiny_restart_keeps_the_clip_and_pure_noise_does_not(base, videos):
    seeds = [1, 2]
    _, near = restart.restarted_videos(base, videos, seeds, 0.003, num_steps=3, precision="no")
    _, far = restart.restarted_videos(base, videos, seeds, 700.0, num_steps=3, precision="no")
    z0 = torch.stack([restart.clip_latents(base.vae, v) for v in videos])
    assert (near - z0).pow(2).mean().sqrt() < 0.02
    assert (far - z0).pow(2).mean().sqrt() > 0.3


def test_restarted_videos_bad_input(base, videos):
    with pytest.raises(ValueError, match="seeds"):
        restart.restarted_videos(base, videos, [1], 1.0)
    with pytest.raises(ValueError, match="sigmas"):
        restart.restarted_videos(base, videos, [1, 2], 1.0, sigmas=[1.0, 0.0])
    with pytest.raises(ValueError, match="ReMoCoPipeline"):
        restart.restarted_videos(build_toy_remoco_pipeline(seed=0), videos, [1, 2], 1.0)


def test_restart_rows_count_found_objects():
    def r(found, psnr):
        return {"appearance found": found, "psnr": psnr}

    study = {"sigmas": [0.1, 700.0],
             "systems": {"a": {"restart": {"0.1": r([True, True, False, True], [20, 22, 24, 26]),
                                           "700.0": r([False] * 4, [10] * 4)},
                               "decoder alone": {"0.0": r([True] * 4, [30] * 4)}},
                         "b": {"restart": {"0.1": r([True, False, False, False], [1] * 4),
                                           "700.0": r([False] * 4, [2] * 4)},
                               "decoder alone": {"0.0": r([True, True, False, False], [3] * 4)}}}}
    rows = restart.restart_rows(study, {"b": "B", "a": "A"})
    assert [row["base"] for row in rows] == ["B", "A"]
    assert list(rows[1]) == ["base", "autoencoder alone", "from σ = 0.1", "from σ = 700"]
    assert [rows[1][c] for c in list(rows[1])[1:]] == [100.0, 75.0, 0.0]
    assert [rows[0][c] for c in list(rows[0])[1:]] == [50.0, 25.0, 0.0]


def _study():
    def r(found, rmse):
        return {"appearance found": found, "psnr": [20.0] * len(found), "latent rmse": rmse,
            "latent rmse per frame": [0.1, 0.2, 0.3]}

    res = {"decoder alone": {"0.0": r([True, True, True, False], [0.0] * 4),
                             "0.25": r([True, False, False, False], [0.25] * 4)},
           "copy frame 1": {"latent rmse": [0.4, 0.6, 0.5, 0.5], "latent rmse per frame": [0.0, 0.5, 0.75]},
           "restart": {"0.05": r([True, True, False, False], [0.05, 0.05, 0.06, 0.04]),
                       "700.0": r([False] * 4, [0.5, 0.7, 0.6, 0.6])}}
    res["latent rms"] = 0.9
    other = {"decoder alone": res["decoder alone"], "copy frame 1": res["copy frame 1"], "latent rms": 0.9,
             "restart": {"0.05": r([True] * 4, [0.04, 0.02, 0.04, 0.02]),  # plain's minus 0.01, 0.03, 0.02, 0.02
                         "700.0": r([False] * 4, [0.5, 0.7, 0.6, 0.6])}}
    return {"clips": 4, "sigmas": [0.05, 700.0], "real found": [True, True, True, True],
            "systems": {"plain": res, "p_mean 0 base": other}}


def test_restart_figures_format_the_study():
    fig = restart.restart_figures(_study())
    assert fig["rs_real"] == "100" and fig["rs_clips"] == "4"
    assert fig["rs_ceil_plain"] == "75" and fig["rs_dec25_plain"] == "25" and fig["rs_copy_plain"] == "0.50"
    assert fig["rs_found_plain_0_05"] == "50" and fig["rs_found_plain_700"] == "0"
    assert fig["rs_rmse_plain_0_05"] == "0.05" and fig["rs_rmse_plain_700"] == "0.60"
    assert fig["rs_first_plain_700"] == "0.10" and fig["rs_last_plain_700"] == "0.30"
    assert fig["rs_copy_last_plain"] == "0.75"
    assert not any("shipped" in k for k in fig)  # a base not in the study is left out
    # paired over the 4 clips: mean -0.02, sd 0.00816, t(0.975, 3) = 3.182 -> half width 0.0130
    assert fig["rs_gap_pm00_0_05"] == "-0.020 [-0.033, -0.007]" and fig["rs_gap_pm00_700"] == "+0.000 [+0.000, +0.000]"
    assert "rs_gap_plain_0_05" not in fig
    # found: (T, T, T, T) against plain's (T, T, F, F) -> 0, 0, +100, +100 points; bootstrap means lie in [0, 100]
    low, high = (float(x) for x in fig["rs_foundgap_pm00_0_05"].split("[")[1].rstrip("]").split(","))
    assert fig["rs_foundgap_pm00_0_05"].startswith("+50 [") and 0 <= low < 50 < high <= 100


def test_restart_figures_pair_a_base_with_its_own_reference():
    study = _study()
    # the p_mean-0 record named as its own reference base, under another name: paired with that one instead
    study["systems"]["wide UNet (64, 128, 128)"] = dict(study["systems"]["p_mean 0 base"])
    study["systems"]["p_mean 0 base"]["reference"] = "wide UNet (64, 128, 128)"
    fig = restart.restart_figures(study)
    assert fig["rs_gap_pm00_0_05"] == "+0.000 [+0.000, +0.000]"  # against itself: no difference
    assert fig["rs_gap_wide_0_05"] == "-0.020 [-0.033, -0.007]"  # the default reference, plain, as before
    assert fig["rs_maxgap_wide"] == "0.030" and fig["rs_maxgap_pm00"] == "0.000"  # largest per-clip gap
    study["systems"]["plain"]["machine"] = {"cpu_model": "Intel(R) Xeon(R) Processor"}
    study["systems"]["plain"]["unet parameters"] = 3_047_891
    fig = restart.restart_figures(study)
    assert fig["rs_cpu_plain"] == "Intel Xeon" and fig["rs_params_plain"] == "3.0" and "rs_cpu_wide" not in fig
    study["systems"]["p_mean 0 base"]["latent rms"] = 0.8  # another autoencoder: not paired at all
    assert "rs_gap_pm00_0_05" not in restart.restart_figures(study)


def test_seen_figures_format_the_probe_per_clip_set():
    sets = {"training clips": {"1.0": {"appearance found": [True, False, False, False],
                                       "latent rmse": [.3, .4, .5, .4]}},
            "unseen clips, training photographs": {"1.0": {"appearance found": [False] * 4,
                                                           "latent rmse": [.4, .5, .4, .5]}},
            "chapter 5's held-out clips": {"1.0": {"appearance found": [True, True, False, False],
                                                   "latent rmse": [.2, .2, .2, .2]}}}
    study = {"clips": 4, "sigmas": [1.0], "systems": {"b": {"sets": sets}}}
    fig = restart.seen_figures(study, "b", "x")
    assert fig["seen_clips"] == "4"
    per_set = ("train", "unseen", "heldout")
    assert tuple(fig[f"seen_found_x_{k}_1"] for k in per_set) == ("25", "0", "50")
    assert tuple(fig[f"seen_rmse_x_{k}_1"] for k in per_set) == ("0.40", "0.45", "0.20")
    # training minus unseen: means 0.40 - 0.45; se sqrt(0.00667/4 + 0.00333/4) = 0.05; Welch df 5.4, t 2.51 -> +-0.125
    assert fig["seen_gap_x_1"] == "-0.050 [-0.176, +0.076]"
    with pytest.raises(KeyError):
        restart.seen_figures(study, "another base", "y")


def test_restart_plot_draws_one_line_per_base_and_level():
    import matplotlib

    matplotlib.use("Agg")
    fig = restart.restart_plot(_study(), {"plain": "plain autoencoder"})  # the other base left out
    a, b, c = fig.axes
    assert [tuple(line.get_xdata()) for line in a.lines if line.get_label() == "plain autoencoder"] == [(0.05, 700.0)]
    dashed = [line for line in b.lines if line.get_linestyle() == "--"]
    assert [list(line.get_ydata()) for line in dashed] == [[0.5, 0.5]]  # the repeat-frame-1 reference
    assert c.get_xlabel() == "final latent RMS error"


def test_restart_benchmark_rejects_a_reference_outside_the_study(tmp_path):
    """``benchmarks/restart_noise.py --reference NAME`` exits naming the argument when NAME is neither a stored base
    nor one being added (before, such a base was silently left unpaired and chapter 5 failed on a missing glue)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "restart_noise.py"
    out = tmp_path / "study.json"
    out.write_text(json.dumps({"clips": 1, "seed": 12345, "sigmas": [700.0], "machine": {},
                               "systems": {"plain": {"machine": {}}}}))
    cmd = [sys.executable, str(script), "--merge", "--out", str(out), "--clips", "1", "--sigmas", "700",
           "--system", f"new={tmp_path / 'missing'}"]
    bad = subprocess.run([*cmd, "--reference", "plian"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--reference 'plian'" in bad.stderr and "'plain'" in bad.stderr
    good = subprocess.run([*cmd, "--reference", "plain"], capture_output=True, text=True)
    assert "--reference" not in good.stderr and "model_index.json" in good.stderr  # went on to load the base
