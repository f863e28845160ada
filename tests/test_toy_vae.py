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
