"""The EMA of trained weights (remoco.ema) and its place in a training run (remoco.train.run_loop)."""

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from remoco import config, ema, models
from remoco import train as T

torch.set_num_threads(1)


def test_decay_warms_up_then_caps():
    assert ema.ema_decay_at(0.999, 1) == pytest.approx(2 / 11)
    assert ema.ema_decay_at(0.999, 90) == pytest.approx(91 / 100)
    assert ema.ema_decay_at(0.9, 1000) == 0.9  # capped
    for bad in (0, 1, 1.5, True, "0.9"):
        with pytest.raises(ValueError, match="decay"):
            ema.ema_decay_at(bad, 3)
    with pytest.raises(ValueError, match="step"):
        ema.ema_decay_at(0.9, 0)


def test_shadows_follow_the_recursion_and_are_saved_with_the_module():
    m = nn.Linear(3, 2)
    params = list(m.parameters())
    start = [p.detach().clone() for p in params]
    shadows = ema.attach_ema(m, params)
    assert set(m.state_dict()) == {"weight", "bias", "ema_shadow_0", "ema_shadow_1"}  # checkpoints carry them
    expected = [s.clone() for s in start]
    for step in (1, 2, 3):
        with torch.no_grad():
            for p in params:
                p.add_(1.0)  # an "optimizer step"
        d = ema.update_ema(shadows, params, 0.5, step)
        assert d == min(0.5, (1 + step) / (10 + step))
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, params)]
    assert all(torch.allclose(s, e) for s, e in zip(shadows, expected))
    # the average lags the last iterate: after three +1 steps it lies strictly between the start and the end
    assert all(((s > st) & (s < p)).all() for s, st, p in zip(shadows, start, params))
    ema.copy_ema_to(params, shadows)
    assert all(torch.equal(p, s) for p, s in zip(params, shadows))
    with pytest.raises(ValueError, match="twice"):
        ema.attach_ema(m, params)
    with pytest.raises(ValueError, match="params"):
        ema.update_ema(shadows, params[:1], 0.5, 4)
    with pytest.raises(ValueError, match="params"):
        ema.attach_ema(nn.Linear(2, 2), [])


def test_ema_decay_config_is_checked_and_keeps_older_fingerprints():
    cfg = config.preset_config("toy-cpu", "unet")
    assert cfg.ema_decay is None
    assert cfg.replace(ema_decay=0.999).fingerprint("unet") != cfg.fingerprint("unet")
    assert cfg.replace(ema_decay=0.999).fingerprint("vae") == cfg.fingerprint("vae")  # the VAE stage keeps none
    for bad in (0, 1.0, -0.5, True, "0.9"):
        with pytest.raises(ValueError, match="ema_decay"):
            cfg.replace(ema_decay=bad)


def _tiny(out, **kw):
    base = dict(out_dir=str(out), num_clips=6, num_frames=4, height=32, width=32, batch_size=2, max_steps=5,
                checkpoint_every=2, warmup_steps=1, vae_steps=0, progress=False, base="random:0")
    return config.preset_config("toy-cpu", "unet", **{**base, **kw})


def test_a_run_with_ema_saves_the_average_and_resumes_it_exactly(tmp_path):
    name = "unet/diffusion_pytorch_model.safetensors"
    plain = T.train(_tiny(tmp_path / "plain"))
    a = T.train(_tiny(tmp_path / "a", ema_decay=0.9))
    b1 = T.train(_tiny(tmp_path / "b", ema_decay=0.9, stop_after=3))  # killed after step 3, checkpoint at 2
    assert b1.interrupted
    b2 = T.train(_tiny(tmp_path / "b", ema_decay=0.9))
    wp, wa, wb = (load_file(str(r.final_path / name)) for r in (plain, a, b2))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # the resumed run continued the same average
    assert any(not torch.equal(wa[k], wp[k]) for k in wa)  # and the saved weights are the average, not the iterate
    # the average of five steps lies closer to the initial weights than the last iterate does
    cfg = _tiny(tmp_path / "unused")
    w0 = models.build_toy_components(cfg.seed, vae_config=T.toy_vae_config_of(cfg),
                                     unet_config=T.toy_unet_config_of(cfg))["unet"].state_dict()
    far = sum((wp[k] - w0[k]).norm() for k in w0)
    near = sum((wa[k] - w0[k]).norm() for k in w0)
    assert near < far
