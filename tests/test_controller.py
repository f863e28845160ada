"""The motion controller (Eq. 8), its injection sites and variants, LoRA (Eq. 9) and save/load."""

import pytest
import torch
import torch.nn.functional as F

from remoco import controller as C
from remoco import lora as LR
from remoco import models

# one intra-op thread: on the shared 2-core machine OpenMP spin-waiting makes 2 threads ~10x slower
torch.set_num_threads(1)

B, L = 2, 8


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return models.build_toy_pipeline(seed=0).unet


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, L, 8, 16, 16, generator=g)
    ehs = torch.randn(B, 1, 32, generator=g)
    ids = torch.tensor([[6.0, 127.0, 0.02]] * B)
    cond = torch.randn(B, L, 3, 64, 64, generator=g)
    return x, torch.tensor(0.3), ehs, ids, cond


@pytest.fixture(scope="module")
def base_out(unet, inputs):
    x, t, ehs, ids, _ = inputs
    with torch.no_grad():
        return unet(x, t, ehs, ids).sample


def _run(unet, inputs, ctrl=None, cond=None):
    x, t, ehs, ids, c = inputs
    with torch.no_grad():
        if ctrl is None:
            return unet(x, t, ehs, ids).sample
        with ctrl.conditioned(c if cond is None else cond):
            return unet(x, t, ehs, ids).sample


def _perturb_zero_layers(ctrl, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in ctrl.named_parameters():
            if "temporal" in n or "fuse" in n:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def test_site_specs_match_unet_scales(unet):
    shapes = models.unet_scale_shapes(unet, num_frames=L, height=64, width=64, latent_factor=4)
    n = len(unet.down_blocks)
    paper = C.site_specs(unet, "paper")
    release = C.site_specs(unet, "release")
    assert len(paper) == 2 * n + 1 and len(release) == 2 * n
    assert not any("mid" in s["module"] for s in release)
    for s in paper:  # each site's level gives exactly the hooked feature's resolution and channels
        _, ch, h, w = shapes[s["module"]]
        assert ch == s["channels"] and h == 16 // 2 ** s["level"] and w == h
    for s in release:
        assert s["module"].endswith("resnets.0.spatial_res_block.conv1")
    with pytest.raises(ValueError, match="sites"):
        C.site_specs(unet, "everywhere")


def test_motion_encoder_scales():
    enc = C.MotionEncoder(channels=(32, 64, 64), latent_factor=4)
    feats = enc(torch.randn(3, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(3, 32, 16, 16), (3, 64, 8, 8), (3, 64, 4, 4)]
    enc8 = C.MotionEncoder(channels=(32, 32), latent_factor=8)
    assert tuple(enc8(torch.randn(1, 3, 40, 48))[0].shape) == (1, 32, 5, 6)
    with pytest.raises(ValueError, match="multiples of 4"):
        enc(torch.randn(1, 3, 62, 64))
    with pytest.raises(ValueError, match="condition"):
        enc(torch.randn(1, 2, 64, 64))


def test_modulation_equation_8():
    torch.manual_seed(0)
    mod = C.FeatureModulation(feature_channels=16, channels=64, injection="modulation")
    _perturb_zero_layers(mod)
    h = torch.randn(2 * 4, 64, 8, 8)
    feat = torch.randn(2 * 4, 16, 8, 8)
    gamma, beta = mod.condition_terms(feat, num_frames=4)
    # independent recomputation of the spatio-temporal conv and Eq. 8
    def st(spatial, temporal):
        s = F.conv2d(feat, spatial.weight, spatial.bias, padding=1)
        s5 = s.reshape(2, 4, 64, 8, 8).permute(0, 2, 1, 3, 4)
        t5 = F.conv3d(s5, temporal.conv.weight, temporal.conv.bias, padding=(1, 0, 0))
        return t5.permute(0, 2, 1, 3, 4).reshape(8, 64, 8, 8)
    g_ref = st(mod.gamma_spatial, mod.gamma_temporal)
    b_ref = st(mod.beta_spatial, mod.beta_temporal)
    assert torch.allclose(gamma, g_ref, atol=1e-5) and torch.allclose(beta, b_ref, atol=1e-5)
    hg = h.reshape(8, 32, 2, 8, 8)
    gn = ((hg - hg.mean(dim=(2, 3, 4), keepdim=True)) / torch.sqrt(hg.var(dim=(2, 3, 4), unbiased=False,
                                                                         keepdim=True) + 1e-5)).reshape(h.shape)
    assert torch.allclose(mod(h, (gamma, beta)), gn * g_ref + b_ref + h, atol=1e-4)


@pytest.mark.parametrize("sites", C.SITES)
@pytest.mark.parametrize("injection", C.INJECTIONS)
def test_zero_init_is_exactly_the_base_model_and_training_changes_it(unet, inputs, base_out, injection, sites):
    ctrl = C.ReMoCoController.from_unet(unet, vae_scale_factor=4, injection=injection, sites=sites)
    try:
        assert torch.equal(_run(unet, inputs, ctrl), base_out)
        _perturb_zero_layers(ctrl)
        out = _run(unet, inputs, ctrl)
        assert (out - base_out).abs().max() > 1e-3
        # the condition matters once the zero layers are trained
        assert not torch.equal(out, _run(unet, inputs, ctrl, cond=torch.zeros_like(inputs[-1])))
    finally:
        ctrl.detach()
    assert torch.equal(_run(unet, inputs), base_out)  # hook removal restores the base model
    assert not ctrl.is_attached


def test_condition_is_required_and_checked(unet, inputs):
    x, t, ehs, ids, cond = inputs
    ctrl = C.ReMoCoController.from_unet(unet, vae_scale_factor=4)
    try:
        with pytest.raises(RuntimeError, match="set_condition"):
            with torch.no_grad():
                unet(x, t, ehs, ids)
        with pytest.raises(ValueError, match="frames"):  # batch mismatch (e.g. forgot CFG doubling)
            with torch.no_grad(), ctrl.conditioned(cond[:1]):
                unet(x, t, ehs, ids)
        with pytest.raises(ValueError, match="pixel size"):  # condition at the wrong spatial size
            with torch.no_grad(), ctrl.conditioned(cond[..., :32, :32]):
                unet(x, t, ehs, ids)
        with pytest.raises(ValueError, match="num_frames"):
            ctrl.set_condition(cond.flatten(0, 1))
        with pytest.raises(ValueError, match="condition"):
            ctrl.set_condition(torch.zeros(B, L, 2, 64, 64))
    finally:
        ctrl.detach()


def test_cfg_batch_uses_zero_condition_for_uncond_half(unet, inputs):
    x, t, ehs, ids, cond = inputs
    ctrl = C.ReMoCoController.from_unet(unet, vae_scale_factor=4)
    _perturb_zero_layers(ctrl)
    try:
        with torch.no_grad():
            with ctrl.conditioned(cond[:1], do_classifier_free_guidance=True):
                both = unet(x, t, ehs, ids).sample
            with ctrl.conditioned(torch.zeros_like(cond[:1])):
                u = unet(x[:1], t, ehs[:1], ids[:1]).sample
            with ctrl.conditioned(cond[:1].flatten(0, 1), num_frames=L):
                c = unet(x[1:], t, ehs[1:], ids[1:]).sample
        assert torch.allclose(both[:1], u, atol=1e-5) and torch.allclose(both[1:], c, atol=1e-5)
    finally:
        ctrl.detach()


def _lora_count(unet, names, rank):
    mods = dict(unet.named_modules())
    return sum(rank * (mods[n].base_layer.in_features + mods[n].base_layer.out_features) for n in names)


def test_lora_targets_and_trainable_set():
    pipe = models.build_toy_pipeline(seed=0)
    unet = pipe.unet
    n_attention = sum(1 for n, m in unet.named_modules() if type(m).__name__ == "Attention")
    ctrl = C.ReMoCoController.from_unet(unet, vae_scale_factor=4)
    names = LR.add_lora(unet, rank=4)
    assert len(names) == 4 * n_attention
    assert all(n.rsplit(".", 1)[-1] in ("to_q", "to_k", "to_v") or n.endswith("to_out.0") for n in names)
    assert any("temporal_transformer_blocks" in n for n in names) and any(".transformer_blocks." in n for n in names)
    lora = LR.lora_parameters(unet)
    assert sum(p.numel() for p in lora) == _lora_count(unet, names, 4)
    trainable_unet = {id(p) for p in unet.parameters() if p.requires_grad}
    assert trainable_unet == {id(p) for p in lora}  # pre-trained UNet frozen, only LoRA trains
    assert all(p.requires_grad for p in ctrl.parameters())
    assert len(C.trainable_parameters(ctrl, unet)) == len(lora) + len(list(ctrl.parameters()))
    with pytest.raises(ValueError, match="already"):
        LR.add_lora(unet, rank=4)
    # all_linear covers every nn.Linear of a fresh UNet
    unet2 = models.build_unet(models.toy_unet_config())
    n_linear = sum(1 for m in unet2.modules() if isinstance(m, torch.nn.Linear))
    assert len(LR.add_lora(unet2, rank=2, targets="all_linear")) == n_linear
    with pytest.raises(ValueError, match="targets"):
        LR.add_lora(unet2, rank=2, targets="convs")
    ctrl.detach()


def test_lora_zero_init_then_eq9_changes_output(inputs):
    unet = models.build_toy_pipeline(seed=0).unet
    ctrl = C.ReMoCoController.from_unet(unet, vae_scale_factor=4)
    ref = _run(unet, inputs, ctrl)
    LR.add_lora(unet, rank=4)
    assert torch.equal(_run(unet, inputs, ctrl), ref)  # B = 0 at init
    with torch.no_grad():
        for p in LR.lora_parameters(unet):
            p.normal_(0, 0.05)
    assert not torch.equal(_run(unet, inputs, ctrl), ref)


def test_save_load_controller_and_lora_roundtrip(tmp_path, inputs):
    unet = models.build_toy_pipeline(seed=0).unet
    ctrl = C.ReMoCoController.from_unet(unet, vae_scale_factor=4, injection="concat", sites="release")
    LR.add_lora(unet, rank=4, targets="all_linear")
    _perturb_zero_layers(ctrl, seed=3)
    with torch.no_grad():
        for p in LR.lora_parameters(unet):
            p.normal_(0, 0.05)
    ref = _run(unet, inputs, ctrl)
    C.save_controller(tmp_path / "ctrl", ctrl, unet)
    files = {p.name for p in (tmp_path / "ctrl").rglob("*") if p.is_file()}
    assert files == {"config.json", "diffusion_pytorch_model.safetensors", "lora.safetensors", "lora_config.json"}
    unet2 = models.build_toy_pipeline(seed=0).unet
    ctrl2 = C.load_controller(tmp_path / "ctrl", unet2)
    assert ctrl2.config.injection == "concat" and ctrl2.config.sites == "release"
    assert torch.equal(_run(unet2, inputs, ctrl2), ref)
    with pytest.raises(FileNotFoundError, match="path"):
        C.load_controller(tmp_path / "nothing", unet2)


def test_jointly_trained_unet_weights_roundtrip(tmp_path, inputs):
    # TrainConfig.unet_lr > 0 (a departure from the paper): the UNet's own weights change and travel too
    unet = models.build_toy_pipeline(seed=0).unet
    ctrl = C.ReMoCoController.from_unet(unet, vae_scale_factor=4)
    LR.add_lora(unet, rank=4)
    _perturb_zero_layers(ctrl, seed=5)
    with torch.no_grad():
        for n, p in unet.named_parameters():
            if "lora_" not in n:
                p.add_(0.01 * torch.randn_like(p))
    ref = _run(unet, inputs, ctrl)
    C.save_controller(tmp_path / "joint", ctrl, unet, unet_weights=True)
    assert (tmp_path / "joint" / LR.UNET_WEIGHTS).is_file()
    unet2 = models.build_toy_pipeline(seed=0).unet
    w = "conv_in.weight"
    assert not torch.equal(dict(unet2.named_parameters())[w], dict(unet.named_parameters())[w])
    ctrl2 = C.load_controller(tmp_path / "joint", unet2)
    assert torch.equal(_run(unet2, inputs, ctrl2), ref)
    # a frozen-base controller folder leaves the UNet's weights alone
    C.save_controller(tmp_path / "frozen", ctrl, unet)
    assert not LR.load_unet_weights(tmp_path / "frozen", models.build_toy_pipeline(seed=0).unet)
    # weights of another UNet are refused
    other = models.build_unet(dict(models.toy_unet_config(), block_out_channels=(64, 96, 128)))
    with pytest.raises(ValueError, match="does not fit"):
        LR.load_unet_weights(tmp_path / "joint", other)


def test_paper_scale_controller_and_lora_on_meta():
    unet = models.build_unet(models.svd_unet_config(), device="meta")
    ctrl = C.ReMoCoController.from_unet(unet, vae_scale_factor=8, attach=False)
    assert next(ctrl.parameters()).device.type == "meta"
    assert len(ctrl.modulations) == 9
    names = LR.add_lora(unet, rank=32)
    assert sum(p.numel() for p in LR.lora_parameters(unet)) == _lora_count(unet, names, 32)


def test_motion_encoder_keeps_the_condition_signal_to_the_deepest_scale():
    torch.manual_seed(0)
    enc = C.MotionEncoder((32, 64, 64), latent_factor=4)
    assert all(m.bias.abs().max() == 0 for m in enc.modules() if isinstance(m, torch.nn.Conv2d))
    cond = torch.zeros(4, 3, 64, 64)
    cond[:, :2, 16:40, 16:40] = torch.randn(4, 2, 1, 1)  # a displaced block, as a region-wise trajectory
    cond[:, 2, 12:44, 12:44] = 1.0                       # its motion mask
    with torch.no_grad():
        with_c, without = enc(cond), enc(torch.zeros_like(cond))
    deepest = (with_c[-1] - without[-1]).pow(2).mean().sqrt()
    # PyTorch's default init left an r.m.s. of ~3e-4 here (the biases dominate); He init keeps ~1e-1
    assert deepest > 1e-2, float(deepest)


def test_from_unet_generator_draws_the_same_weights_and_leaves_the_global_rng():
    unet = models.build_unet(models.toy_unet_config())
    state = torch.random.get_rng_state()
    make = lambda s: C.ReMoCoController.from_unet(unet, 4, attach=False, generator=torch.Generator().manual_seed(s))
    a, b, c = make(3), make(3), make(4)
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))
    with pytest.raises(ValueError, match="generator"):
        C.ReMoCoController.from_unet(unet, 4, attach=False, generator=3)


def test_add_lora_generator_draws_the_same_weights_and_leaves_the_global_rng():
    def lora_weights(seed):
        unet = models.build_unet(models.toy_unet_config())
        state = torch.random.get_rng_state()
        LR.add_lora(unet, rank=4, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(state, torch.random.get_rng_state()), "add_lora drew from the global RNG"
        return [p.detach().clone() for p in LR.lora_parameters(unet)]

    a, b, c = lora_weights(1), lora_weights(1), lora_weights(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    with pytest.raises(ValueError, match="generator"):
        LR.add_lora(models.build_unet(models.toy_unet_config()), rank=4, generator=1)
