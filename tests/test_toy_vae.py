"""Tests of remoco.toy_vae: the GroupNorm size is a config argument that survives save / load, also in a pipeline."""

import json

import pytest
import torch

from remoco import models
from remoco.toy_vae import ToyAutoencoderKLTemporalDecoder, load_vae, set_norm_groups


def _groups(vae):
    return sorted({(m.num_groups, m.num_channels) for m in vae.modules() if isinstance(m, torch.nn.GroupNorm)})


def test_norm_groups_follow_the_config_and_survive_save_and_load(tmp_path):
    cfg = models.toy_vae_config((32, 64, 64), norm_channels_per_group=4)
    vae = models.build_toy_components(0, vae_config=cfg)["vae"]
    assert isinstance(vae, ToyAutoencoderKLTemporalDecoder)
    assert _groups(vae) == [(8, 32), (16, 64)]
    plain = models.build_toy_components(0)["vae"]
    assert type(plain).__name__ == "AutoencoderKLTemporalDecoder" and _groups(plain) == [(32, 32)]
    vae.save_pretrained(tmp_path / "vae")
    assert json.loads((tmp_path / "vae" / "config.json").read_text())["norm_channels_per_group"] == 4
    back = load_vae(tmp_path / "vae")
    assert type(back) is ToyAutoencoderKLTemporalDecoder and _groups(back) == _groups(vae)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        a = vae.decode(vae.encode(x).latent_dist.mode(), num_frames=2).sample
        b = back.decode(back.encode(x).latent_dist.mode(), num_frames=2).sample
    assert torch.equal(a, b)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_vae(tmp_path)


def test_pipeline_folder_loads_the_toy_vae_class(tmp_path):
    pipe = models.build_toy_pipeline(seed=0)
    pipe.vae = models.build_toy_components(0, vae_config=models.toy_vae_config(norm_channels_per_group=4))["vae"]
    pipe.register_modules(vae=pipe.vae)
    pipe.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    assert index["vae"] == ["remoco.toy_vae", "ToyAutoencoderKLTemporalDecoder"]
    again = models.load_svd_pipeline(tmp_path / "p")
    assert type(again.vae) is ToyAutoencoderKLTemporalDecoder and _groups(again.vae) == [(8, 32)]


def test_set_norm_groups_checks_its_argument():
    m = torch.nn.Sequential(torch.nn.GroupNorm(32, 32))
    assert set_norm_groups(m, 8) == 1 and m[0].num_groups == 4
    with pytest.raises(ValueError, match="channels_per_group"):
        set_norm_groups(m, 0)
    with pytest.raises(ValueError, match="divide"):
        set_norm_groups(torch.nn.Sequential(torch.nn.GroupNorm(7, 7)), 3)  # 2 groups of 7 channels


def test_temporal_decoder_sees_neighbouring_frames():
    from remoco.toy_vae import decode_frames

    vae = models.build_toy_components(0, vae_config=models.toy_vae_config(norm_channels_per_group=4))["vae"]
    for p in vae.decoder.time_conv_out.parameters():  # identity at init: make it mix frames
        torch.nn.init.normal_(p, std=0.3)
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode()
        assert not torch.allclose(decode_frames(vae, z, 3)[1:2], decode_frames(vae, z[1:2], 1), atol=1e-3)


def test_frame_wise_vae_decodes_each_frame_alone():
    from diffusers import AutoencoderKL

    from remoco.toy_vae import decode_frames

    torch.manual_seed(0)
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        block_out_channels=(32, 32, 32), latent_channels=4, norm_num_groups=8).eval()
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode()
        assert torch.allclose(decode_frames(vae, z, 3)[1:2], decode_frames(vae, z[1:2], 1), atol=1e-5)


def test_toy_unet_follows_the_vae_latent_channels():
    cfg = models.toy_vae_config(latent_channels=8, norm_channels_per_group=4)
    comps = models.build_toy_components(0, vae_config=cfg)
    assert comps["vae"].config.latent_channels == 8
    assert (comps["unet"].config.in_channels, comps["unet"].config.out_channels) == (16, 8)
    assert models.build_toy_components(0)["unet"].config.in_channels == 8  # SVD's 4 + 4


def test_a_fresh_process_loads_a_pipeline_folder_with_the_toy_vae(tmp_path):
    # diffusers loads a component class only from a module already imported: load_svd_pipeline must import
    # remoco.toy_vae itself (a `remoco ship` worker process crashed on this)
    import subprocess
    import sys

    pipe = models.build_toy_pipeline(seed=0)
    pipe.register_modules(vae=models.build_toy_components(
        0, vae_config=models.toy_vae_config(norm_channels_per_group=4))["vae"])
    pipe.save_pretrained(tmp_path / "p")
    code = ("import sys; from remoco import models; assert 'remoco.toy_vae' not in sys.modules; "
            f"p = models.load_svd_pipeline({str(tmp_path / 'p')!r}); print(type(p.vae).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ToyAutoencoderKLTemporalDecoder")


def test_plain_autoencoder_has_the_kl_interface_and_survives_save_and_load(tmp_path):
    from remoco.toy_vae import ToyAutoencoder, decode_frames

    cfg = models.toy_vae_config((32, 64, 64), layers_per_block=2, kind="plain")
    comps = models.build_toy_components(0, vae_config=cfg)
    vae = comps["vae"].eval()
    assert type(vae) is ToyAutoencoder and not _groups(vae)  # no normalisation at all
    assert not any(isinstance(m, torch.nn.MultiheadAttention) for m in vae.modules())
    assert models.vae_scale_factor(vae) == 4 and comps["unet"].config.in_channels == 8
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        dist = vae.encode(x).latent_dist
        z = dist.mode()
        assert z.shape == (3, 4, 16, 16)
        assert torch.equal(dist.sample(), z) and float(dist.kl().abs().sum()) == 0.0  # deterministic
        # each frame decoded alone, whatever num_frames says
        assert torch.allclose(decode_frames(vae, z, 3)[1:2], decode_frames(vae, z[1:2], 1), atol=1e-6)
        assert torch.equal(vae.decode(z, num_frames=3).sample, vae.decode(z).sample)
    vae.save_pretrained(tmp_path / "vae")
    back = load_vae(tmp_path / "vae")
    assert type(back) is ToyAutoencoder
    with torch.no_grad():
        assert torch.equal(back.decode(back.encode(x).latent_dist.mode()).sample, vae.decode(z).sample)


def test_plain_autoencoder_learns_a_reconstruction():
    # a few steps on one batch must lower the reconstruction error (the class trains as the VAE stage does)
    from remoco.toy_vae import ToyAutoencoder

    torch.manual_seed(0)
    vae = ToyAutoencoder(block_out_channels=(32, 32, 32), layers_per_block=1)
    # smooth images (8 x 8 detail) a factor-4 bottleneck can hold
    x = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8) * 2 - 1, size=32, mode="bilinear")
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(vae(x).sample, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_pipeline_folder_loads_the_plain_autoencoder(tmp_path):
    from remoco.toy_vae import ToyAutoencoder

    pipe = models.build_toy_pipeline(seed=0)
    pipe.register_modules(vae=models.build_toy_components(0, vae_config=models.toy_vae_config(kind="plain"))["vae"])
    pipe.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    assert index["vae"] == ["remoco.toy_vae", "ToyAutoencoder"]
    again = models.load_svd_pipeline(tmp_path / "p")
    assert type(again.vae) is ToyAutoencoder
    g = torch.Generator().manual_seed(0)
    from PIL import Image

    img = Image.fromarray((torch.rand(64, 64, 3) * 255).to(torch.uint8).numpy())
    frames = again(img, height=64, width=64, num_frames=4, num_inference_steps=2, generator=g, output_type="np").frames
    assert frames[0].shape == (4, 64, 64, 3)


def test_loading_a_plain_toy_pipeline_logs_no_type_warning(tmp_path, caplog):
    # the SVD pipeline annotates its VAE as the temporal-decoder class; the plain stand-in is deliberate and
    # must not print a warning in every chapter that loads the toy (other warnings still pass)
    import logging

    pipe = models.build_toy_pipeline(seed=0)
    pipe.register_modules(vae=models.build_toy_components(0, vae_config=models.toy_vae_config(kind="plain"))["vae"])
    pipe.save_pretrained(tmp_path / "p")
    lg = logging.getLogger("diffusers.pipelines.pipeline_utils")
    lg.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="diffusers.pipelines.pipeline_utils"):
            models.load_svd_pipeline(tmp_path / "p")
            assert not [r for r in caplog.records if "Expected types" in r.getMessage()]
            lg.warning("Expected types for unet: (<class 'X'>,), got <class 'Y'>.")
            assert [r for r in caplog.records if "Expected types for unet" in r.getMessage()]
    finally:
        lg.removeHandler(caplog.handler)


def test_plain_kind_rejects_a_norm_size():
    with pytest.raises(ValueError, match="norm_channels_per_group"):
        models.toy_vae_config(norm_channels_per_group=4, kind="plain")
    with pytest.raises(ValueError, match="kind"):
        models.toy_vae_config(kind="tiny")


def test_noise_robust_decoder_trains_only_the_decoder_and_tolerates_noise():
    import copy

    from remoco.toy_vae import ToyAutoencoder, decode_frames, noise_robust_decoder

    torch.manual_seed(0)
    vae = ToyAutoencoder(block_out_channels=(32, 32, 32), layers_per_block=1)
    vae.register_to_config(scaling_factor=1.0)
    x = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8) * 2 - 1, size=32, mode="bilinear")
    noise_robust_decoder(vae, lambda step: x, 80, latent_noise=0.0, lr=1e-3, progress=False)  # a fitted autoencoder
    clean, robust = vae, copy.deepcopy(vae)
    enc = {n: p.detach().clone() for n, p in robust.named_parameters() if not n.startswith("decoder")}
    dec = {n: p.detach().clone() for n, p in robust.named_parameters() if n.startswith("decoder")}
    noise = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(1))

    def noisy_error(v):
        with torch.no_grad():
            z = v.encode(x).latent_dist.mode()
            return float(torch.nn.functional.mse_loss(decode_frames(v, z + 0.5 * noise, 1), x))

    # the same further steps, with and without latent noise: only the noise-trained decoder learns to tolerate it
    noise_robust_decoder(clean, lambda step: x, 60, latent_noise=0.0, lr=1e-3, progress=False)
    losses = noise_robust_decoder(robust, lambda step: x, 60, latent_noise=1.0, lr=1e-3, progress=False)
    assert len(losses) == 60 and noisy_error(robust) < 0.8 * noisy_error(clean)
    assert all(torch.equal(p, enc[n]) for n, p in robust.named_parameters() if n in enc)  # the latents stay
    assert any(not torch.equal(p, dec[n]) for n, p in robust.named_parameters() if n in dec)
    assert all(p.requires_grad for p in robust.parameters())  # the encoder is handed back trainable
    with pytest.raises(ValueError, match="steps"):
        noise_robust_decoder(vae, lambda step: x, 0, latent_noise=0.5)
    with pytest.raises(ValueError, match="latent_noise"):
        noise_robust_decoder(vae, lambda step: x, 2, latent_noise=-1.0)


def test_vae_by_photograph_benchmark_splits_clips_by_held_out_photograph(tmp_path):
    """``benchmarks/vae_by_photograph.py`` scores each VAE on chapter 5's clips split by whether a held-out photograph
    is in them: the splits hold every clip once, a clip's stored PSNR is that of its reconstruction, A-B is minus
    B-A, and a pair naming an unknown VAE exits naming the argument."""
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np

    from remoco import data, evaluate, fidelity
    from remoco.toy_vae import ToyAutoencoder

    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        ToyAutoencoder(block_out_channels=(8, 8, 8), layers_per_block=1).save_pretrained(tmp_path / name)
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "vae_by_photograph.py"
    cmd = [sys.executable, str(script), "--clips", "6", "--threads", "1", "--vae", f"a={tmp_path / 'a'}",
           "--vae", f"b={tmp_path / 'b'}"]
    run = subprocess.run([*cmd, "--pair", "a-b", "--pair", "b-a", "--out", str(tmp_path / "o.json")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = json.loads((tmp_path / "o.json").read_text())
    clips = evaluate.following_clips(6, seed=evaluate.CHAPTER5_CLIP_SEED)
    held = [i for i, c in enumerate(clips) if set(c.meta["photographs"]) & set(data.HELD_OUT_PHOTOS)]
    split = out["vaes"]["a"]
    assert len(split["with a held-out photograph"]["psnr"]) == len(held)
    assert len(split["with a held-out photograph"]["psnr"]) + len(split["without"]["psnr"]) == 6
    if held:
        with torch.no_grad():
            rec = fidelity.reconstruct(load_vae(tmp_path / "a").eval(), clips[held[0]].video.numpy())
        assert split["with a held-out photograph"]["psnr"][0] == pytest.approx(
            fidelity.psnr(clips[held[0]].video.numpy(), rec), abs=1e-4)
    for s in out["pairs"]["a-b"]:
        assert out["pairs"]["a-b"][s]["mean"] == pytest.approx(-out["pairs"]["b-a"][s]["mean"])
        assert out["pairs"]["a-b"][s]["mean"] == pytest.approx(
            np.mean(np.subtract(out["vaes"]["a"][s]["psnr"], out["vaes"]["b"][s]["psnr"])))
    bad = subprocess.run([*cmd, "--pair", "a-c"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--pair" in bad.stderr and "'a-c'" in bad.stderr
