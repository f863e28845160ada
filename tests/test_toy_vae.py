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
