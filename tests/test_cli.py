"""Tests of the ``remoco`` command line: every command has --help, the config-file precedence of
``remoco train``, and ``remoco conditions`` on a video."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from remoco import cli, config


@pytest.mark.parametrize("command", ["train", "ship", "conditions", "demo", "bench"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0
    assert f"usage: remoco {command}" in capsys.readouterr().out


def _args(*argv):
    return cli.build_parser().parse_args(["train", *argv])


def test_config_file_values_win_over_defaults_and_flags_win_over_the_file(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("variant: gaussian\nout_dir: runs/from-file\nlr: 0.0003\nstage: unet\n")
    cfg = config.config_from_args(_args("--config", str(f)))
    assert (cfg.variant, cfg.out_dir, cfg.lr, cfg.stage) == ("gaussian", "runs/from-file", 3e-4, "unet")
    cfg = config.config_from_args(_args("--config", str(f), "--variant", "sum", "--out", "runs/x",
                                           "--set", "lr=0.01"))
    assert (cfg.variant, cfg.out_dir, cfg.lr) == ("sum", "runs/x", 0.01)
    # no file, no flag: the preset and the default folder name
    cfg = config.config_from_args(_args())
    assert (cfg.variant, cfg.out_dir, cfg.stage) == ("remoco", "runs/controller-remoco", "controller")


def test_set_given_twice_keeps_both_overrides():
    # a second --set used to replace the first one's list, silently dropping its overrides
    one = config.config_from_args(_args("--set", "unet_attention=all", "p_mean=0.0"))
    two = config.config_from_args(_args("--set", "unet_attention=all", "--set", "p_mean=0.0"))
    assert (one.unet_attention, one.p_mean) == (two.unet_attention, two.p_mean) == ("all", 0.0)
    assert config.config_from_args(_args("--set", "lr=0.1", "--set", "lr=0.2")).lr == 0.2  # the last one wins


def test_set_keeps_a_text_field_as_typed():
    # YAML reads an unquoted `no` as False, which mixed_precision refused; a text field keeps the text typed
    assert config.config_from_args(_args("--set", "mixed_precision=no")).mixed_precision == "no"
    assert config.config_from_args(_args("--set", "mixed_precision='no'")).mixed_precision == "no"
    assert config.config_from_args(_args("--set", "mixed_precision=no", "fused_adam=no")).fused_adam is False
    with pytest.raises(ValueError, match="mixed_precision.*fp8"):
        config.config_from_args(_args("--set", "mixed_precision=fp8"))
    with pytest.raises(ValueError, match="write 'no'"):
        config.TrainConfig(mixed_precision=False)


def test_config_file_errors_name_the_problem(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("learning_rate: 0.1\n")
    with pytest.raises(ValueError, match="learning_rate"):
        config.config_from_args(_args("--config", str(f)))
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        config.config_from_args(_args("--config", str(tmp_path / "missing.yaml")))
    with pytest.raises(ValueError, match="--set"):
        config.config_from_args(_args("--set", "lr"))
    r = subprocess.run([sys.executable, "-m", "remoco.cli", "train", "--config", str(f)], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "learning_rate" in r.stderr and "Traceback" not in r.stderr


def test_conditions_from_a_video(tmp_path):
    from remoco import conditions as C
    from remoco.data import make_clip
    from remoco.video import write_video

    clip = make_clip(3, kind="object")
    write_video(tmp_path / "clip", clip.video)  # lossless PNG frames
    out, preview = tmp_path / "cond.safetensors", tmp_path / "cond.png"
    code = cli.main(["conditions", "--video", str(tmp_path / "clip"), "--out", str(out), "--preview",
                     str(preview), "--k", "8", "--r-min", "0.0", "--seed", "1"])
    assert code == 0 and preview.stat().st_size > 1000
    t = load_file(str(out))
    L, H, W = clip.video.shape[:3]
    assert t["condition"].shape == (L, 3, H, W)
    assert torch.equal(t["condition"], C.to_model_input(t["region_trajectory"], t["motion_mask"].bool()))
    # the moving object carries a non-zero trajectory and lies inside the motion mask
    obj = clip.object_mask
    assert t["motion_mask"][1, ..., 0][obj].float().mean() > 0.5
    assert t["region_trajectory"][-1][obj].abs().sum() > 0
    assert np.isfinite(t["condition"].numpy()).all()


def test_conditions_rejects_a_one_frame_video(tmp_path):
    from remoco.data import make_clip
    from remoco.video import write_video

    write_video(tmp_path / "one", make_clip(0).video[:1])
    with pytest.raises(SystemExit) as e:
        cli.main(["conditions", "--video", str(tmp_path / "one"), "--out", str(tmp_path / "c.safetensors")])
    assert e.value.code == 2
