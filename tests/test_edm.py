"""Closed-form tests of the EDM objective (Eq. 1-3) and agreement with diffusers' SVD scheduler."""

import math

import pytest
import torch

from remoco import edm

# one intra-op thread: on the shared 2-core machine OpenMP spin-waiting makes 2 threads ~10x slower
torch.set_num_threads(1)

SIGMAS = [0.002, 0.05, 0.3, 1.0, 2.5, 14.6, 700.0]


@pytest.mark.parametrize("s", SIGMAS)
def test_preconditioning_closed_forms(s):
    assert edm.c_skip(s).item() == pytest.approx(1.0 / (s * s + 1.0), rel=1e-12)
    assert edm.c_out(s).item() == pytest.approx(-s / math.sqrt(s * s + 1.0), rel=1e-12)
    assert edm.c_out(s, v_prediction=False).item() == pytest.approx(s / math.sqrt(s * s + 1.0), rel=1e-12)
    assert edm.c_in(s).item() == pytest.approx(1.0 / math.sqrt(s * s + 1.0), rel=1e-12)
    assert edm.c_noise(s).item() == pytest.approx(0.25 * math.log(s), rel=1e-12, abs=1e-15)
    assert edm.loss_weight(s).item() == pytest.approx((s * s + 1.0) / (s * s), rel=1e-12)
    # EDM identities: c_skip^2 + c_out^2 = ... = 1 and lambda = 1 / c_out^2 (sigma_data = 1)
    assert (edm.c_skip(s) + edm.c_out(s) ** 2).item() == pytest.approx(1.0, rel=1e-12)
    assert (edm.loss_weight(s) * edm.c_out(s) ** 2).item() == pytest.approx(1.0, rel=1e-12)


def test_sigma_data_general_form():
    s, d = 0.8, 0.5
    assert edm.c_skip(s, d).item() == pytest.approx(d * d / (s * s + d * d))
    assert edm.c_out(s, d, v_prediction=False).item() == pytest.approx(s * d / math.sqrt(s * s + d * d))
    assert edm.c_in(s, d).item() == pytest.approx(1 / math.sqrt(s * s + d * d))
    assert edm.loss_weight(s, d).item() == pytest.approx((s * s + d * d) / (s * d) ** 2)


def test_matches_diffusers_svd_scheduler():
    """SVD's EulerDiscreteScheduler (v_prediction, continuous timesteps) uses exactly c_in, c_noise and Eq. 2."""
    from diffusers import EulerDiscreteScheduler

    from remoco.models import svd_scheduler_config

    sch = EulerDiscreteScheduler(**svd_scheduler_config())
    sch.set_timesteps(10)
    g = torch.Generator().manual_seed(0)
    sigmas = sch.sigmas
    assert sigmas[0].item() == pytest.approx(700.0, rel=1e-4) and sigmas[-2].item() == pytest.approx(0.002, rel=1e-4)
    for i, t in enumerate(sch.timesteps):
        s = sigmas[i].double()
        assert t.item() == pytest.approx(edm.c_noise(s).item(), rel=1e-5, abs=1e-6)
        x = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
        assert torch.allclose(sch.scale_model_input(x.clone(), t), edm.c_in(s) * x)
        F = torch.randn(x.shape, generator=g, dtype=torch.float64)
        prev = sch.step(F, t, x).prev_sample
        # Euler: prev = x + (x - x0_hat) / sigma * (sigma_next - sigma)  =>  recover x0_hat
        dt = sigmas[i + 1].double() - s
        x0_hat_sched = x - (prev - x) * s / dt
        assert torch.allclose(x0_hat_sched, edm.denoise(F, x, s), rtol=1e-5, atol=1e-6)
    assert sch.init_noise_sigma.item() == pytest.approx(math.sqrt(700.0**2 + 1), rel=1e-5)


def test_log_normal_sampling():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    ls = edm.sample_log_sigma(200_000, generator=g1)
    eps = torch.randn(200_000, generator=g2)
    assert torch.allclose(ls, 0.7 + 1.6 * eps)
    assert ls.mean().item() == pytest.approx(0.7, abs=0.02)
    assert ls.std().item() == pytest.approx(1.6, abs=0.02)
    s = edm.sample_sigma(1000, p_mean=-1.2, p_std=1.2, generator=torch.Generator().manual_seed(0))
    assert (s > 0).all() and s.shape == (1000,)
    # median of a log-normal is exp(P_mean)
    big = edm.sample_sigma(100_000, generator=torch.Generator().manual_seed(1))
    assert big.median().item() == pytest.approx(math.exp(0.7), rel=0.03)
    # density integrates to one
    x = torch.logspace(-5, 5, 20001, dtype=torch.float64)
    assert torch.trapezoid(edm.log_normal_pdf(x), x).item() == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="p_std"):
        edm.sample_log_sigma(4, p_std=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        edm.sample_log_sigma(0)


def test_add_noise_eq1():
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(3, 2, 4, 5, 5, generator=g)
    z0_copy = z0.clone()
    sigma = torch.tensor([0.1, 1.0, 10.0])
    eps = torch.randn(z0.shape, generator=g)
    z, n = edm.add_noise(z0, sigma, noise=eps)
    assert torch.equal(z0, z0_copy)
    for b in range(3):
        assert torch.allclose(n[b], sigma[b] * eps[b])
        assert torch.allclose(z[b], z0[b] + sigma[b] * eps[b])
    # seeded noise is reproducible
    za, _ = edm.add_noise(z0, 0.5, generator=torch.Generator().manual_seed(7))
    zb, _ = edm.add_noise(z0, 0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(za, zb)
    with pytest.raises(ValueError, match="sigma"):
        edm.add_noise(z0, torch.ones(2))
    with pytest.raises(ValueError, match="sigma"):
        edm.add_noise(z0, torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="noise"):
        edm.add_noise(z0, 1.0, noise=torch.zeros(1))


def test_denoise_and_loss_eq2_eq3():
    g = torch.Generator().manual_seed(1)
    z0 = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.5, 3.0], dtype=torch.float64)
    z, _ = edm.add_noise(z0, sigma, generator=g)
    # the ideal v-prediction target makes Eq. 2 return z0 exactly: F* = (c_skip z - z0) / -c_out
    s = sigma.view(-1, 1, 1, 1)
    F_star = (z0 - z / (s * s + 1)) / (-s / torch.sqrt(s * s + 1))
    assert torch.allclose(edm.denoise(F_star, z, sigma), z0)
    assert edm.denoising_loss(edm.denoise(F_star, z, sigma), z0, sigma).item() == pytest.approx(0.0, abs=1e-20)
    # hand-computed loss
    z0_hat = z0 + 0.1
    per = edm.denoising_loss(z0_hat, z0, sigma, reduction="none")
    expected = torch.tensor([(0.25 + 1) / 0.25 * 0.01, (9 + 1) / 9 * 0.01], dtype=torch.float64)
    assert torch.allclose(per.double(), expected)
    assert edm.denoising_loss(z0_hat, z0, sigma).item() == pytest.approx(expected.mean().item())
    with pytest.raises(ValueError, match="z0_hat"):
        edm.denoising_loss(z0_hat[:1], z0, sigma)
    with pytest.raises(ValueError, match="reduction"):
        edm.denoising_loss(z0_hat, z0, sigma, reduction="sum")


def test_predict_x0_composition():
    """predict_x0 feeds c_in z ++ image latents and c_noise to the UNet and applies Eq. 2."""
    seen = {}

    def fake_unet(x, t, encoder_hidden_states, added_time_ids, return_dict=False):
        seen["x"], seen["t"] = x, t
        return (x[:, :, :4] * 2.0,)

    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, 4, 2, 2, generator=g)
    img = torch.randn(2, 3, 4, 2, 2, generator=g)
    sigma = torch.tensor([0.5, 2.0])
    out = edm.predict_x0(fake_unet, z, sigma, img, torch.zeros(2, 1, 8), torch.zeros(2, 3))
    s = sigma.view(-1, 1, 1, 1, 1)
    cin = 1 / torch.sqrt(s * s + 1)
    assert torch.allclose(seen["x"][:, :, 4:], img) and torch.allclose(seen["x"][:, :, :4], cin * z)
    assert torch.allclose(seen["t"], 0.25 * torch.log(sigma))
    assert torch.allclose(out, z / (s * s + 1) - s / torch.sqrt(s * s + 1) * (2 * cin * z), atol=1e-6)


def test_share_below_matches_the_sampled_noise_levels():
    g = torch.Generator().manual_seed(3)
    for p_mean in (1.5, 0.7, 0.0):
        drawn = edm.sample_sigma(200_000, p_mean=p_mean, p_std=1.6, generator=g)
        for sigma in (0.1, 0.5, 2.0):
            assert edm.share_below(sigma, p_mean, 1.6) == pytest.approx(float((drawn < sigma).float().mean()),
                                                                         abs=0.005)
    assert edm.share_below(math.exp(0.7), 0.7, 1.6) == pytest.approx(0.5)  # the median is exp(p_mean)
    with pytest.raises(ValueError, match="sigma"):
        edm.share_below(0.0)
    with pytest.raises(ValueError, match="p_std"):
        edm.share_below(1.0, p_std=0.0)
