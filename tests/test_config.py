"""Tests of remoco.config: presets, YAML round trip, validation naming the field."""

from __future__ import annotations

import pytest

from remoco import config as T


def test_presets_load_and_match_paper():
    p = T.preset_config("paper", "controller")
    # Sec. 4.1: 16 frames at 320x512, k = 8, r_min = 0.95, LoRA rank 32, lr 1e-5, batch 48 (8 per GPU x 6)
    assert (p.num_frames, p.height, p.width, p.k, p.r_min, p.lora_rank, p.lr) == (16, 320, 512, 8, 0.95, 32, 1e-5)
    assert p.batch_size * 6 == 48
    # SVD / MotionPro recipe
    assert (p.p_mean, p.p_std, p.cond_aug_mean, p.cond_aug_std, p.cond_dropout) == (0.7, 1.6, -3.0, 0.5, 0.1)
    toy = T.preset_config("toy-cpu", "base")
    assert (toy.num_frames, toy.height, toy.width) == (8, 64, 64) and toy.vae_steps > 0
    assert (toy.p_std, toy.cond_dropout) == (1.6, 0.1) and toy.p_mean == 1.5  # more high-noise training (ch. 5)
    ctrl = T.preset_config("toy-cpu", "controller", variant="gaussian")
    assert ctrl.k == T.paper_k(64, 64) == 2 and ctrl.r_min == 0.95 and ctrl.variant == "gaussian"
    dense = T.preset_config("toy-cpu", "controller")  # ReMoCo at toy scale: dense T_s (chapter 5)
    assert (dense.k, dense.r_min, dense.r_max) == (2, 0.0, 0.0)
    with pytest.raises(ValueError, match="paper"):
        T.preset_config("paper", "base")
    with pytest.raises(ValueError, match="preset"):
        T.preset_config("nope")


def test_yaml_roundtrip(tmp_path):
    c = T.preset_config("toy-cpu", "controller", variant="sum", lr=3e-4)
    c.to_yaml(tmp_path / "c.yaml")
    d = T.TrainConfig.from_yaml(tmp_path / "c.yaml")
    assert d == c and d.fingerprint() == c.fingerprint()
    # runtime fields do not change the fingerprint, training fields do
    assert c.replace(out_dir="elsewhere", stop_after=3).fingerprint() == c.fingerprint()
    assert c.replace(lr=1e-3).fingerprint() != c.fingerprint()
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        T.TrainConfig.from_yaml(tmp_path / "missing.yaml")


@pytest.mark.parametrize("field,value", [
    ("lr", -1.0), ("lr", 0.0), ("r_min", 1.5), ("k", 7), ("stage", "decoder"), ("variant", "magic"),
    ("batch_size", 0), ("p_std", 0.0), ("cond_dropout", 1.2), ("height", 60), ("mixed_precision", "fp8"),
    ("flow_source", "raft"), ("clip_kinds", {"dragons": 1.0}), ("max_grad_norm", -1.0), ("max_steps", 2.5),
    ("adam_betas", (0.9, 1.5)), ("displacement_scale", 0.0), ("photos", "everything"),
    ("vae_channels", (32, 64)), ("vae_channels", (32, 60, 64)), ("vae_loss", "l2"), ("vae_frames", 9),
    ("vae_layers_per_block", 0), ("vae_kind", "tiny"), ("vae_norm_channels", 4),  # the preset's VAE is plain
    ("vae_latent_noise", -0.1),
])
def test_bad_values_raise_naming_field(field, value):
    d = T.preset_config("toy-cpu", "controller").to_dict()
    d[field] = value
    with pytest.raises(ValueError, match=field):
        T.TrainConfig.from_dict(d)


def test_unknown_field_named():
    with pytest.raises(ValueError, match="learning_rate"):
        T.TrainConfig.from_dict({"learning_rate": 1e-3})


def test_motion_bucket_and_ratio_range_fields():
    c = T.preset_config("toy-cpu", "unet", motion_bucket="flow", r_min=0.0, r_max=0.0)
    assert (c.motion_bucket, c.r_max) == ("flow", 0.0)
    with pytest.raises(ValueError, match="motion_bucket"):
        T.preset_config("toy-cpu", "unet", motion_bucket="optical")
    with pytest.raises(ValueError, match="r_max"):
        T.preset_config("toy-cpu", "controller", r_min=0.9, r_max=0.5)


def test_paper_k_keeps_the_region_to_frame_ratio():
    assert T.paper_k(320, 512) == 8  # the paper's own setting
    assert T.paper_k(64, 64) == 2
    assert T.paper_k(640, 1024) == 16
    assert T.paper_k(48, 64) == 1  # round(1.2) = 1
    assert T.paper_k(72, 72) == 2  # round(1.8) = 2 divides 72
    with pytest.raises(ValueError, match="height"):
        T.paper_k(0, 64)


def test_stage_fingerprint_ignores_later_stages():
    c = T.preset_config("toy-cpu", "base")
    # a controller setting does not touch the base's stages; a UNet setting does not touch the VAE
    for stage in ("vae", "unet"):
        assert c.replace(k=2, r_min=0.5, unet_lr=1e-4).fingerprint(stage) == c.fingerprint(stage)
    assert c.replace(p_mean=0.9).fingerprint("vae") == c.fingerprint("vae")
    assert c.replace(p_mean=0.9).fingerprint("unet") != c.fingerprint("unet")
    assert c.replace(vae_lr=5e-4).fingerprint("vae") != c.fingerprint("vae")
    # the UNet's size is the UNet's: a wider or all-attention UNet reuses the VAE, not the UNet
    for change in ({"unet_channels": (64, 128, 128)}, {"unet_attention": "all"}):
        assert c.replace(**change).fingerprint("vae") == c.fingerprint("vae"), change
        assert c.replace(**change).fingerprint("unet") != c.fingerprint("unet"), change
    # the controller's fingerprint sees everything but the stage name
    assert c.replace(k=2).fingerprint("controller") != c.fingerprint("controller")
    assert c.replace(stage="unet").fingerprint("unet") == c.fingerprint("unet")
    with pytest.raises(ValueError, match="stage"):
        c.fingerprint("base")


def test_fields_added_later_keep_older_fingerprints_until_set():
    c = T.preset_config("toy-cpu", "controller").replace(photos="bench", vae_channels=(32, 32, 32),
                                                        vae_loss="mse", vae_frames=None, vae_norm_channels=None,
                                                        vae_crop=32, vae_batch_size=2, vae_kind="temporal",
                                                        vae_layers_per_block=1)
    # the fingerprint of a config at the late fields' defaults is the hash without them (older runs resume)
    d = {k: v for k, v in c.to_dict().items() if k not in set(c._RUNTIME) | set(T._LATE_FIELDS)}
    import hashlib
    import json

    assert c.fingerprint() == hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
    for change in ({"photos": "train"}, {"vae_channels": (32, 64, 64)}, {"vae_loss": "l1+mse"}, {"vae_frames": 4},
                   {"vae_norm_channels": 4}, {"vae_kind": "plain"}, {"vae_latent_noise": 0.5},
                   {"unet_channels": (64, 128, 128)}, {"unet_attention": "all"}):
        assert c.replace(**change).fingerprint() != c.fingerprint(), change
    assert c.replace(vae_frames=4).fingerprint("controller") != c.fingerprint("controller")
    assert c.replace(vae_frames=4).fingerprint("unet") != c.fingerprint("unet")  # the UNet learns the VAE's latents


@pytest.mark.parametrize("bad", [dict(unet_channels=(64, 64)), dict(unet_channels=(64, 48, 64)),
                                 dict(unet_channels=(64, True, 64)), dict(unet_attention="top")])
def test_unet_size_fields_are_checked(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        T.preset_config("toy-cpu", "base", **bad)


def test_level_channels_is_the_one_width_check():
    assert T.level_channels([32, 64, 96]) == (32, 64, 96)
    for bad in ((32, 64), (32, 64, 64, 64), (32, 48, 64), (0, 32, 32), (32.0, 64, 64), (True, 64, 64), "abc", None):
        assert T.level_channels(bad) is None
    from remoco import models

    with pytest.raises(ValueError, match="block_out_channels"):
        models.toy_unet_config(4, (64, 64.0, 64))


def test_unet_channels_round_trip_through_yaml(tmp_path):
    c = T.preset_config("toy-cpu", "base", unet_channels=[64, 128, 128], unet_attention="all")
    assert c.unet_channels == (64, 128, 128)
    c.to_yaml(tmp_path / "c.yaml")
    back = T.TrainConfig.from_yaml(tmp_path / "c.yaml")
    assert back == c and back.fingerprint("unet") == c.fingerprint("unet")
