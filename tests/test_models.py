"""The SVD backbone presets (remoco.models): toy build, sampling, save/load, paper-scale UNet on meta."""

import math

import pytest
import torch

from remoco import models

# one intra-op thread: on the shared 2-core machine OpenMP spin-waiting makes 2 threads ~10x slower
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(1234)
    return models.build_toy_pipeline(seed=0)


def _pil(seed=0, size=64):
    import numpy as np
    import PIL.Image

    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray((rng.random((size, size, 3)) * 255).astype("uint8"))


def test_toy_config_constraints():
    cfg = models.toy_unet_config()
    clip = models.toy_clip_vision_config()
    assert all(c % 32 == 0 for c in cfg["block_out_channels"])
    assert cfg["projection_class_embeddings_input_dim"] == 3 * cfg["addition_time_embed_dim"]
    assert cfg["cross_attention_dim"] == clip["projection_dim"]
    assert cfg["in_channels"] == 2 * cfg["out_channels"]  # noised latents ++ reference latent (pathway a)
    vae = models.toy_vae_config()
    assert 2 ** (len(vae["block_out_channels"]) - 1) * cfg["sample_size"] == models.TOY_HEIGHT
    svd = models.svd_unet_config()
    assert svd["projection_class_embeddings_input_dim"] == 3 * svd["addition_time_embed_dim"]
    assert svd["block_out_channels"] == (320, 640, 1280, 1280) and svd["num_frames"] == 14


def test_toy_unet_size_lever_builds_and_keeps_the_interface():
    import torch

    wide = models.toy_unet_config(4, (64, 128, 128), attention="all")
    assert wide["block_out_channels"] == (64, 128, 128)
    assert all(t.startswith("CrossAttn") for t in wide["down_block_types"] + wide["up_block_types"])
    preset = models.toy_unet_config()
    assert [t.startswith("CrossAttn") for t in preset["down_block_types"]] == [False, True, False]
    small, big = models.build_unet(preset), models.build_unet(wide)
    assert models.count_parameters(big) > 2 * models.count_parameters(small)
    torch.manual_seed(0)
    x, ehs, ids = torch.randn(1, 2, 8, 16, 16), torch.randn(1, 1, 32), torch.randn(1, 3)
    with torch.no_grad():
        assert big(x, torch.tensor([0.5]), ehs, ids).sample.shape == (1, 2, 4, 16, 16)
    with pytest.raises(ValueError, match="block_out_channels"):
        models.toy_unet_config(4, (64, 100, 128))
    with pytest.raises(ValueError, match="attention"):
        models.toy_unet_config(4, attention="everywhere")


def test_toy_components_are_svd_classes(toy):
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPVisionModelWithProjection

    assert isinstance(toy, StableVideoDiffusionPipeline)
    assert isinstance(toy.unet, UNetSpatioTemporalConditionModel)
    assert isinstance(toy.vae, AutoencoderKLTemporalDecoder)
    assert isinstance(toy.image_encoder, CLIPVisionModelWithProjection)
    assert isinstance(toy.scheduler, EulerDiscreteScheduler)
    assert toy.scheduler.config.prediction_type == "v_prediction"
    assert toy.scheduler.config.timestep_type == "continuous"
    assert toy.vae_scale_factor == 4 == models.vae_scale_factor(toy.vae)


def test_toy_build_is_deterministic(toy):
    again = models.build_toy_pipeline(seed=0)
    other = models.build_toy_pipeline(seed=1)
    for (n, a), b, c in zip(toy.unet.state_dict().items(), again.unet.state_dict().values(),
                            other.unet.state_dict().values()):
        assert torch.equal(a, b), n
    assert any(not torch.equal(a, c) for a, c in zip(toy.unet.parameters(), other.unet.parameters()))


def test_toy_scale_shapes_follow_the_unet_formula(toy):
    shapes = models.unet_scale_shapes(toy.unet, num_frames=8, height=64, width=64, latent_factor=4)
    boc = models.toy_unet_config()["block_out_channels"]
    assert shapes["conv_in"] == (8, boc[0], 16, 16)
    assert shapes["down_blocks.0"] == (8, boc[0], 8, 8)
    assert shapes["down_blocks.1"] == (8, boc[1], 4, 4)
    assert shapes["down_blocks.2"] == (8, boc[2], 4, 4)  # last level: no down-sampler
    assert shapes["mid_block"] == (8, boc[2], 4, 4)
    assert shapes["up_blocks.0"] == (8, boc[2], 8, 8)
    assert shapes["up_blocks.2"] == (8, boc[0], 16, 16)
    assert shapes["output"] == (1, 8, 4, 16, 16)


def test_toy_sampling_shapes_and_seed(toy):
    kw = dict(height=64, width=64, num_frames=8, num_inference_steps=2, output_type="pt")
    a = toy(_pil(), generator=torch.Generator().manual_seed(0), **kw).frames
    b = toy(_pil(), generator=torch.Generator().manual_seed(0), **kw).frames
    c = toy(_pil(), generator=torch.Generator().manual_seed(1), **kw).frames
    assert a.shape == (1, 8, 3, 64, 64)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all() and a.min() >= 0 and a.max() <= 1


def test_save_and_load_offline_roundtrip(toy, tmp_path):
    kw = dict(height=64, width=64, num_frames=8, num_inference_steps=2, output_type="pt")
    ref = toy(_pil(3), generator=torch.Generator().manual_seed(0), **kw).frames
    toy.save_pretrained(tmp_path / "svd")
    loaded = models.load_svd_pipeline(tmp_path / "svd")
    out = loaded(_pil(3), generator=torch.Generator().manual_seed(0), **kw).frames
    assert torch.equal(ref, out)


def test_missing_weights_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="path_or_hub_id"):
        models.load_svd_pipeline(tmp_path / "no_such_folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        models.load_svd_pipeline(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="path_or_hub_id"):
        models.load_svd_pipeline("remoco-tests/this-repo-is-not-cached")


def test_svd_unet_on_meta_device():
    unet = models.build_unet(models.svd_unet_config(), device="meta")
    assert next(unet.parameters()).device.type == "meta"
    n = models.count_parameters(unet)
    assert 1.50e9 < n < 1.54e9  # SVD's UNet: ~1.52 B parameters
    # independent closed form for two layers
    assert unet.conv_in.weight.numel() + unet.conv_in.bias.numel() == 8 * 320 * 9 + 320
    assert sum(p.numel() for p in unet.add_embedding.parameters()) == 768 * 1280 + 1280 + 1280 * 1280 + 1280
    # per-scale shapes of a 16 x 320 x 512 clip (latents 40 x 64), no memory used
    shapes = models.unet_scale_shapes(unet, num_frames=16, height=320, width=512, latent_factor=8)
    expected = {
        "conv_in": (16, 320, 40, 64), "down_blocks.0": (16, 320, 20, 32), "down_blocks.1": (16, 640, 10, 16),
        "down_blocks.2": (16, 1280, 5, 8), "down_blocks.3": (16, 1280, 5, 8), "mid_block": (16, 1280, 5, 8),
        "up_blocks.0": (16, 1280, 10, 16), "up_blocks.1": (16, 1280, 20, 32), "up_blocks.2": (16, 640, 40, 64),
        "up_blocks.3": (16, 320, 40, 64), "output": (1, 16, 4, 40, 64),
    }
    for k, v in expected.items():
        assert shapes[k] == v, k


def test_encode_reference_image_matches_pipeline_pil_path(toy):
    import numpy as np

    pil = _pil(5)
    x = torch.from_numpy(np.array(pil)).permute(2, 0, 1).float().div(255).unsqueeze(0)
    ours = models.encode_reference_image(toy, x)
    theirs = toy._encode_image(pil, "cpu", 1, False)
    assert ours.shape == (1, 1, 32)
    assert torch.allclose(ours, theirs, atol=1e-5)
    with pytest.raises(ValueError, match="image"):
        models.encode_reference_image(toy, x[0])
    assert math.isfinite(float(ours.detach().sum()))


def test_toy_temporal_decoder_starts_as_a_per_frame_decoder():
    vae = models.build_toy_components(seed=0)["vae"]
    conv = vae.decoder.time_conv_out  # (3, 1, 1) convolution over frames
    x = torch.randn(1, conv.in_channels, 5, 4, 4)
    with torch.no_grad():
        y = conv(x)
    # each frame passes through unchanged: no mixing with neighbours, no darkened first/last frame
    assert torch.allclose(y, x, atol=1e-6)
    assert conv.bias.abs().max() == 0


def test_reference_pathway_shapes_of_the_toy_pipeline():
    """Pathway (a): conv_in sees the noised latents and the reference latent (2 x 4 channels); pathway (b): one CLIP
    token per frame as the cross-attention's keys; the hooks are gone afterwards."""
    import PIL.Image

    pipe = models.build_toy_pipeline(seed=0)
    pipe.set_progress_bar_config(disable=True)
    img = PIL.Image.new("RGB", (32, 32), (120, 60, 30))
    shapes = models.reference_pathway_shapes(pipe, img, num_frames=4, height=32, width=32)
    conv_in, _ = shapes["UNet conv_in: in -> out"]
    assert conv_in[1] == 2 * pipe.unet.config.out_channels
    assert shapes["UNet sample input (B, L, C, h, w)"][1:] == (4, 8, 8, 8)
    keys = shapes["cross-attention keys from CLIP (B*L, tokens, dim)"]
    assert keys[1] == 1 and keys[0] == 2 * 4  # classifier-free guidance doubles the batch
    assert not pipe.unet._forward_pre_hooks and not pipe.unet.conv_in._forward_hooks
    with pytest.raises(ValueError, match="PIL"):
        models.reference_pathway_shapes(pipe, torch.zeros(3, 32, 32), 4, 32, 32)
