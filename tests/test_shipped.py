"""Tests of remoco.shipped.ship with a given base: only the controllers train, the toy preset's joint recipe
(the UNet's own weights train too) reaches the shipped folder and the loaded pipeline, the summary keeps the
entries it does not retrain."""

from __future__ import annotations

import json

import pytest
import torch

from remoco import config, models, shipped
from remoco.lora import UNET_WEIGHTS, plain_unet_state

torch.set_num_threads(1)

TINY = dict(num_clips=4, num_frames=4, height=32, width=32, batch_size=2, max_steps=2, checkpoint_every=1,
            warmup_steps=1, lora_rank=4)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "toy-base"
    models.build_toy_pipeline(seed=0).save_pretrained(path, safe_serialization=True)
    return path


def test_ship_with_a_given_base_trains_only_the_controllers(tmp_path, base_dir):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "ship_summary.json").write_text(json.dumps({"base": {"seconds": {"unet": 1.0}},
                                                        "gaussian": {"seconds": {"controller": 2.0}}}))
    summary = shipped.ship(tmp_path / "work", dest, variants=("remoco",), progress=False, base=base_dir,
                           overrides=TINY)
    assert not (dest / "toy-base").exists()  # the given base is not copied
    assert not (tmp_path / "work" / "toy-base").exists()  # nor trained
    # the variant not retrained and the base's figures keep their entries
    assert summary["gaussian"] == {"seconds": {"controller": 2.0}}
    assert summary["base"]["seconds"] == {"unet": 1.0} and "given" in summary["base"]["note"]
    assert json.loads((dest / "ship_summary.json").read_text())["remoco"]["final_loss"]["controller"] > 0
    cfg = config.TrainConfig.from_yaml(dest / "remoco-toy" / "config.yaml")
    # the toy preset's departure: the UNet trains with the controller, and its weights ship with it
    assert cfg.unet_lr == config.preset_config("toy-cpu", "controller").unet_lr > 0
    assert cfg.base == "data/checkpoints/toy-base" and cfg.max_steps == TINY["max_steps"]
    assert (dest / "remoco-toy" / UNET_WEIGHTS).is_file()
    pipe = shipped.load_shipped_pipeline("remoco", base_path=base_dir, controller_path=dest / "remoco-toy")
    before, after = (plain_unet_state(u)["conv_in.weight"] for u in (models.build_toy_pipeline(seed=0).unet,
                                                                      pipe.unet))
    assert not torch.equal(before, after)


def test_ship_refuses_a_base_folder_without_a_pipeline(tmp_path):
    with pytest.raises(FileNotFoundError, match="base="):
        shipped.ship(tmp_path / "work", tmp_path / "dest", base=tmp_path / "nothing")


def test_ship_trains_the_frozen_base_controller_in_the_same_pool(tmp_path, base_dir):
    dest = tmp_path / "dest"
    summary = shipped.ship(tmp_path / "work", dest, variants=("gaussian",), progress=False, base=base_dir,
                           overrides=TINY, frozen_base=True)
    assert set(summary) >= {"gaussian", "remoco-frozen"}
    assert summary["remoco-frozen"]["jobs"] == summary["gaussian"]["jobs"] == 1
    frozen = config.TrainConfig.from_yaml(dest / "remoco-frozen-toy" / "config.yaml")
    assert frozen.unet_lr == 0.0 and frozen.variant == "remoco"
    assert config.TrainConfig.from_yaml(dest / "gaussian-toy" / "config.yaml").unet_lr > 0
    assert not (dest / "remoco-frozen-toy" / UNET_WEIGHTS).exists()


def test_evaluation_experiments_keep_the_frozen_base():
    # the shipped recipe trains the toy UNet; the evaluation chapters' controllers must not
    from remoco import reproduce

    exp = next(e for e in reproduce.experiment_table() if e.trained)
    assert exp.config("runs/x").unet_lr == 0.0


def test_frozen_base_controller_keeps_the_paper_trainable_set(tmp_path, base_dir):
    dest = tmp_path / "dest"
    summary = shipped.ship_frozen_base_controller(tmp_path / "work", dest, base=base_dir, progress=False,
                                                  overrides=TINY)
    cfg = config.TrainConfig.from_yaml(dest / "remoco-frozen-toy" / "config.yaml")
    assert cfg.unet_lr == 0.0 and cfg.variant == "remoco"
    assert not (dest / "remoco-frozen-toy" / UNET_WEIGHTS).exists()  # nothing of the UNet's own weights ships
    assert summary["remoco-frozen"]["final_loss"]["controller"] > 0
    pipe = shipped.load_shipped_pipeline("remoco", base_path=base_dir, controller_path=dest / "remoco-frozen-toy")
    before, after = (plain_unet_state(u)["conv_in.weight"] for u in (models.build_toy_pipeline(seed=0).unet,
                                                                      pipe.unet))
    assert torch.equal(before, after)


@pytest.mark.parametrize("folder, variant, recipe", [("remoco-toy", "remoco", {}), ("gaussian-toy", "gaussian", {}),
                                                     ("traj_only-toy", "traj_only", {}),
                                                     ("remoco-frozen-toy", "remoco", shipped.FROZEN_BASE_RECIPE)])
def test_shipped_checkpoints_match_the_command_that_ships_them(folder, variant, recipe):
    # `remoco ship` (and `--frozen-base`) must reproduce what data/checkpoints holds: a preset changed without
    # retraining the shipped controllers fails here
    # -- except the settings listed in shipped.PENDING_RETRAIN, which must differ exactly as listed there
    stored = config.TrainConfig.from_yaml(shipped.SHIPPED_DIR / folder / "config.yaml")
    today = config.preset_config("toy-cpu", "controller", variant=variant, base=stored.base, **recipe)
    differs = {k: (v, today.to_dict()[k]) for k, v in stored.to_dict().items()
               if k not in ("out_dir", "progress", "stop_after") and today.to_dict()[k] != v}
    assert differs == {k: (v, today.to_dict()[k]) for k, v in shipped.PENDING_RETRAIN.items()}, \
        "a preset changed without retraining (or a retrained checkpoint still listed in PENDING_RETRAIN)"
    assert today.replace(**shipped.PENDING_RETRAIN).fingerprint() == stored.fingerprint()


def test_shipped_controller_dir_defaults_to_the_shipped_folder_of_the_variant(tmp_path):
    assert shipped.shipped_controller_dir() == shipped.SHIPPED_DIR / "remoco-toy"
    assert shipped.shipped_controller_dir("gaussian") == shipped.SHIPPED_DIR / "gaussian-toy"
    assert shipped.shipped_controller_dir("gaussian", tmp_path) == tmp_path
    # a folder without a controller is named in the error of both readers
    with pytest.raises(FileNotFoundError, match="controller_path"):
        shipped.load_shipped_pipeline("remoco", controller_path=tmp_path)
    with pytest.raises(FileNotFoundError, match="controller_path"):
        shipped.shipped_drag_settings(tmp_path)
