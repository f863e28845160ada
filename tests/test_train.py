"""Tests of remoco.train (with remoco.clips and remoco.runs): lr schedule, data order, exact resume after a
kill, the trainable set, CSV logs and provenance, atomic checkpoints."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from remoco import clips, config, runs
from remoco import train as T

torch.set_num_threads(1)


def tiny(stage, out, **kw):
    """A few-second configuration: 4 frames at 32x32, 6 clips, 5 steps, checkpoints every 2 steps."""
    base = dict(out_dir=str(out), num_clips=6, num_frames=4, height=32, width=32, batch_size=2, max_steps=5,
                checkpoint_every=2, warmup_steps=1, vae_steps=0, progress=False, base="random:0")
    base.update(kw)
    return config.preset_config("toy-cpu", stage, **base)


def test_lr_schedule_closed_form():
    c = config.preset_config("toy-cpu", "base", warmup_steps=10, lr_schedule="cosine")
    assert T.lr_at(c, 0, 110, 1.0) == pytest.approx(0.1)
    assert T.lr_at(c, 9, 110, 1.0) == pytest.approx(1.0)
    assert T.lr_at(c, 10, 110, 1.0) == pytest.approx(1.0)
    assert T.lr_at(c, 60, 110, 1.0) == pytest.approx(0.1 + 0.9 * 0.5)
    assert T.lr_at(c, 110, 110, 1.0) == pytest.approx(0.1)
    c2 = c.replace(lr_schedule="constant", warmup_steps=0)
    assert T.lr_at(c2, 57, 110, 2e-4) == 2e-4


# ------------------------------------------------------------------------------------------ data order
def test_step_sampler_is_a_function_of_the_step():
    n, bs = 10, 3
    s = clips.StepBatchSampler(n, bs, seed=5, start=0, stop=20)
    flat = [i for b in s for i in b]
    # every epoch (n consecutive positions) is a permutation of the clips
    assert sorted(flat[:n]) == list(range(n)) and sorted(flat[n:2 * n]) == list(range(n))
    assert flat[:n] != flat[n:2 * n]
    # a sampler started at micro-batch 7 yields exactly the tail
    s7 = clips.StepBatchSampler(n, bs, seed=5, start=7, stop=20)
    assert [b for b in s7] == [b for b in s][7:]
    # two processes split each global micro-batch without overlap
    r0 = clips.StepBatchSampler(n, 2, 5, 0, 5, process_index=0, num_processes=2)
    r1 = clips.StepBatchSampler(n, 2, 5, 0, 5, process_index=1, num_processes=2)
    single = clips.StepBatchSampler(n, 4, 5, 0, 5)
    for a, b, c in zip(r0, r1, single):
        assert a + b == c


def test_step_generator_deterministic():
    a = torch.randn(5, generator=runs.step_generator(0, "unet", 3))
    b = torch.randn(5, generator=runs.step_generator(0, "unet", 3))
    c = torch.randn(5, generator=runs.step_generator(0, "unet", 4))
    d = torch.randn(5, generator=runs.step_generator(0, "controller", 3))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, d)


# ------------------------------------------------------------------------------------------ resume
def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("stage", ["unet", "controller"])
def test_resume_after_kill_gives_identical_weights(tmp_path, stage):
    a = T.train(tiny(stage, tmp_path / "a"))
    assert not a.interrupted and a.final_path is not None
    # simulated kill after 3 steps: checkpoint at step 2 exists, step 3 was done but not saved
    b1 = T.train(tiny(stage, tmp_path / "b", stop_after=3))
    assert b1.interrupted and b1.final_path is None
    assert [s for s, _ in runs.list_checkpoints(tmp_path / "b" / stage / "checkpoints")] == [2]
    assert len(_read_csv(tmp_path / "b" / stage / "log.csv")) == 3
    b2 = T.train(tiny(stage, tmp_path / "b"))  # the same command again
    assert not b2.interrupted and b2.steps_this_run[stage] == 3  # resumed at step 2
    name = "unet/diffusion_pytorch_model.safetensors" if stage == "unet" else "lora.safetensors"
    wa, wb = load_file(str(a.final_path / name)), load_file(str(b2.final_path / name))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    if stage == "controller":
        ca = load_file(str(a.final_path / "controller" / "diffusion_pytorch_model.safetensors"))
        cb = load_file(str(b2.final_path / "controller" / "diffusion_pytorch_model.safetensors"))
        assert all(torch.equal(ca[k], cb[k]) for k in ca)
        # training moved the zero-initialised modulation (otherwise the equality above would be vacuous)
        assert any(v.abs().sum() > 0 for k, v in ca.items() if "modulations" in k)
    # the logs agree step for step (losses of the resumed steps are recomputed identically)
    la, lb = _read_csv(a.logs[stage]), _read_csv(b2.logs[stage])
    assert [r["step"] for r in lb] == [str(i) for i in range(1, 6)]
    assert [r["loss"] for r in la] == [r["loss"] for r in lb]
    # a finished run given again returns at once
    again = T.train(tiny(stage, tmp_path / "b"))
    assert again.final_path == b2.final_path and again.steps_this_run == {}


def test_prefill_draws_the_clips_a_lazy_read_gives(tmp_path):
    cfg = tiny("controller", tmp_path / "c")
    filled, lazy = clips.TrainClips(cfg), clips.TrainClips(cfg.replace(cache_clips=False))
    filled.prefill(2)
    assert sorted(filled._clip_cache) == list(range(len(filled)))
    for i in (0, len(lazy) - 1):
        for key in ("video", "flow", "visibility"):
            assert torch.equal(filled[i][key], lazy[i][key]), (i, key)
    with pytest.raises(ValueError, match="cache_clips"):
        lazy.prefill(2)
    with pytest.raises(ValueError, match="processes"):
        filled.prefill(0)


def test_clip_cache_does_not_change_items_or_weights(tmp_path):
    cfg = tiny("controller", tmp_path / "c")
    cached, fresh = clips.TrainClips(cfg), clips.TrainClips(cfg.replace(cache_clips=False))
    first = cached[3]
    again = cached[3]
    assert again["video"] is first["video"]  # served from memory the second time
    other = fresh[3]
    assert not fresh._clip_cache
    for key in ("video", "flow", "visibility"):
        assert torch.equal(first[key], other[key])
    # cache_clips is a runtime switch: same fingerprint, bit-identical weights (6 clips, 5 steps of 2: re-reads)
    assert cfg.replace(cache_clips=False).fingerprint() == cfg.fingerprint()
    a = T.train(cfg)
    b = T.train(tiny("controller", tmp_path / "d", cache_clips=False))
    wa, wb = load_file(str(a.final_path / "lora.safetensors")), load_file(str(b.final_path / "lora.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


_CLI_TINY = ["--preset", "toy-cpu", "--stage", "unet", "--no-progress", "--set", "num_clips=6", "num_frames=4",
             "height=32", "width=32", "batch_size=2", "max_steps=14", "checkpoint_every=1", "warmup_steps=1",
             "vae_steps=0"]


def _cli(out, **popen_kw):
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "remoco.train", *_CLI_TINY, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen_kw)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_same_command_gives_identical_weights(tmp_path):
    """A real kill (SIGKILL of `python -m remoco.train`, no clean-up code runs) at three random moments, the
    last while checkpoints are being written every step; the same command then finishes the run, whose
    weights and log equal those of a run that was never interrupted."""
    import signal
    import time

    ref = _cli(tmp_path / "ref")
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    rng = np.random.default_rng(0)
    ckpts = tmp_path / "run" / "unet" / "checkpoints"
    kills = 0
    for attempt in range(3):
        proc = _cli(tmp_path / "run")
        # wait until this run has written a checkpoint of its own, then kill it a random moment later
        start = {s for s, _ in runs.list_checkpoints(ckpts)}
        t0 = time.monotonic()
        while (proc.poll() is None and {s for s, _ in runs.list_checkpoints(ckpts)} <= start
               and time.monotonic() - t0 < 120):
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.4)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 1, "the run finished before it could be killed: make it longer"
    final = _cli(tmp_path / "run")
    assert final.wait(timeout=300) == 0, final.stderr.read()
    name = "unet/final/unet/diffusion_pytorch_model.safetensors"
    wa, wb = load_file(str(tmp_path / "ref" / name)), load_file(str(tmp_path / "run" / name))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    la, lb = _read_csv(tmp_path / "ref" / "unet" / "log.csv"), _read_csv(tmp_path / "run" / "unet" / "log.csv")
    assert [r["step"] for r in lb] == [str(i) for i in range(1, 15)]
    assert [r["loss"] for r in la] == [r["loss"] for r in lb]
    # no half-written folder is left behind
    assert not [p for p in ckpts.iterdir() if p.name.startswith(".tmp")]


def test_resume_refuses_other_config(tmp_path):
    T.train(tiny("unet", tmp_path / "r", stop_after=2, max_steps=4))
    with pytest.raises(ValueError, match="different config"):
        T.train(tiny("unet", tmp_path / "r", max_steps=4, lr=1e-3))
    T.train(tiny("unet", tmp_path / "r", max_steps=4))  # finish it
    with pytest.raises(ValueError, match="different config"):  # a finished model is not silently reused
        T.train(tiny("unet", tmp_path / "r", max_steps=4, lr=1e-3))


# ------------------------------------------------------------------------------------------ trainable set
def test_controller_trains_only_encoder_modulation_and_lora(tmp_path):
    from remoco import models
    from remoco.controller import ReMoCoController
    from remoco.lora import lora_target_modules

    # the paper's recipe (unet_lr = 0); the toy preset's departure (the UNet trains too) is tested below
    r = T.train(tiny("controller", tmp_path / "c", max_steps=2, checkpoint_every=1, lora_rank=4, unet_lr=0.0))
    comps = models.build_toy_components(0)
    unet = comps["unet"]
    # independent count: controller parameters + LoRA r * (in + out) on each adapted attention projection
    ctrl = ReMoCoController.from_unet(unet, vae_scale_factor=4, attach=False, displacement_scale=8.0)
    n_ctrl = sum(p.numel() for p in ctrl.parameters())
    mods = dict(unet.named_modules())
    n_lora = sum(4 * (mods[n].in_features + mods[n].out_features) for n in lora_target_modules(unet, "attention"))
    assert r.trainable_parameters["controller"] == n_ctrl + n_lora
    # the base UNet is frozen: its weights in the last checkpoint equal the random:0 base exactly
    ck = runs.list_checkpoints(tmp_path / "c" / "controller" / "checkpoints")[-1][1]
    sd = load_file(str(ck / "model.safetensors"))
    base = unet.state_dict()
    checked = 0
    for k, v in sd.items():
        if not k.startswith("unet.") or "lora_" in k:
            continue
        kb = k[len("unet."):].replace(".base_layer.", ".")
        assert torch.equal(v, base[kb]), k
        checked += 1
    assert checked == len(base)
    # LoRA weights moved (B starts at zero)
    lora = load_file(str(r.final_path / "lora.safetensors"))
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in lora.items())


# ------------------------------------------------------------------------------------------ logs, provenance
def test_csv_log_and_provenance(tmp_path):
    r = T.train(tiny("unet", tmp_path / "p", max_steps=3, checkpoint_every=3))
    rows = _read_csv(r.logs["unet"])
    assert list(rows[0].keys()) == ["step", "loss", "lr", "seconds"]
    assert [int(x["step"]) for x in rows] == [1, 2, 3]
    assert all(math.isfinite(float(x["loss"])) and float(x["loss"]) > 0 for x in rows)
    secs = [float(x["seconds"]) for x in rows]
    assert secs == sorted(secs)
    d = runs.read_log(r.logs["unet"])
    assert d["loss"].shape == (3,)
    ck = runs.list_checkpoints(tmp_path / "p" / "unet" / "checkpoints")[-1][1]
    for folder in (ck, r.final_path):
        prov = json.loads((folder / "provenance.json").read_text())
        assert prov["config"]["max_steps"] == 3 and prov["seed"] == 0
        assert {"git", "versions", "fingerprint"} <= set(prov)
        assert prov["versions"]["torch"].startswith(torch.__version__.split("+")[0])
    assert (tmp_path / "p" / "config.yaml").is_file()
    assert config.TrainConfig.from_yaml(tmp_path / "p" / "config.yaml") == r.config


# ------------------------------------------------------------------------------------------ atomic checkpoints
class _FakeAccelerator:
    is_main_process = True

    def __init__(self, fail=False):
        self.fail = fail

    def wait_for_everyone(self):
        pass

    def save_state(self, output_dir, safe_serialization=True):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "model.safetensors").write_bytes(b"partial")
        if self.fail:
            raise KeyboardInterrupt("killed while writing")


def test_atomic_checkpoint_leaves_no_partial_dir(tmp_path):
    root = tmp_path / "ck"
    runs.save_checkpoint(_FakeAccelerator(), root, 1, {"global_step": 1}, {"p": 1})
    with pytest.raises(KeyboardInterrupt):
        runs.save_checkpoint(_FakeAccelerator(fail=True), root, 2, {"global_step": 2}, {"p": 2})
    names = sorted(p.name for p in root.iterdir())
    assert names == ["checkpoint-000001"]
    assert [s for s, _ in runs.list_checkpoints(root)] == [1]
    # a folder without train_state.json (e.g. copied by hand, half written) is never resumed from
    (root / "checkpoint-000009").mkdir()
    assert [s for s, _ in runs.list_checkpoints(root)] == [1]
    # keep only the newest `keep`
    for s in (3, 4, 5):
        runs.save_checkpoint(_FakeAccelerator(), root, s, {"global_step": s}, {}, keep=2)
    assert [s for s, _ in runs.list_checkpoints(root)] == [4, 5]
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp")]


def test_vae_training_frames_windows_and_crops():
    cfg = tiny("vae", "unused", num_frames=4, vae_frames=2, vae_crop=16)
    x = torch.arange(2 * 4 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 4, 3, 32, 32)
    out = T.vae_training_frames(cfg, x, torch.Generator().manual_seed(0))
    assert out.shape == (2, 2, 3, 16, 16)
    for b in range(2):  # consecutive frames of the same clip, the same crop in both
        t = int((out[b, 0, 0, 0, 0] - x[b, 0, 0, 0, 0]) // (3 * 32 * 32))
        assert torch.equal(out[b, 1] - out[b, 0], x[b, t + 1, :, :16, :16] - x[b, t, :, :16, :16])
    full = T.vae_training_frames(cfg.replace(vae_frames=None, vae_crop=None), x, torch.Generator().manual_seed(0))
    assert torch.equal(full, x)


class VAEModuleProbe(torch.nn.Module):
    """A stand-in VAE for :class:`remoco.train.VAEModule`: latents 2x, decoded by the identity."""

    class _Dist:
        def __init__(self, z):
            self.mean, self.std = z, torch.zeros_like(z)

        def kl(self):
            return torch.zeros(self.mean.shape[0])

    def encode(self, x):
        return type("Out", (), {"latent_dist": self._Dist(2 * x)})()

    def decode(self, z, num_frames=None):
        return type("Out", (), {"sample": z})()


def test_vae_latent_noise_reaches_the_decoder_only_when_set(tmp_path):
    vae = VAEModuleProbe()
    x, eps, noise = torch.arange(8.0).reshape(2, 1, 2, 2), torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.5)
    clean, _ = T.VAEModule(vae)(x, 1, eps)
    noisy, _ = T.VAEModule(vae)(x, 1, eps, noise)
    assert torch.allclose(noisy - clean, 0.5 * (2 * x).std())  # in units of the batch's latent std
    # the stage trains differently with the noise, identically without it
    runs_ = {}
    for name, value in (("a", 0.0), ("b", 0.0), ("c", 0.5)):
        cfg = tiny("vae", tmp_path / name, vae_steps=2, vae_batch_size=1, vae_latent_noise=value)
        res = T.train(cfg)
        runs_[name] = load_file(str(res.final_path / "diffusion_pytorch_model.safetensors"))
    same = all(torch.equal(v, runs_["b"][k]) for k, v in runs_["a"].items())
    assert same and not all(torch.equal(v, runs_["c"][k]) for k, v in runs_["a"].items())


def test_vae_loss_and_checkpoint_loading(tmp_path):
    x, y = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    cfg = tiny("vae", tmp_path / "v", vae_steps=2, vae_channels=(32, 32, 64), vae_batch_size=1, vae_loss="mse")
    assert float(T.vae_reconstruction_loss(cfg, y, x)) == pytest.approx(0.25)
    assert float(T.vae_reconstruction_loss(cfg.replace(vae_loss="l1+mse"), y, x)) == pytest.approx(0.75)
    res = T.train(cfg)
    (step, ckpt), = runs.list_checkpoints(tmp_path / "v" / "vae" / "checkpoints")[-1:]
    vae = T.vae_from_checkpoint(cfg, ckpt)
    assert list(vae.config.block_out_channels) == [32, 32, 64]
    saved = load_file(str(res.final_path / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(v, vae.state_dict()[k]) for k, v in saved.items())
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        T.vae_from_checkpoint(cfg, tmp_path)


def test_synthetic_clip_is_the_rule_behind_the_training_items(tmp_path):
    cfg = tiny("unet", tmp_path / "s")
    ds = clips.TrainClips(cfg, with_flow=True)
    for i in (0, 5):
        clip, item = ds.synthetic_clip(i), ds[i]
        assert torch.equal(clip.video, item["video"]) and torch.equal(clip.flow, item["flow"])
        assert clip.object_mask.shape == clip.video.shape[1:3]  # what the items leave out, for a probe
    with pytest.raises(IndexError, match="out of range"):
        ds.synthetic_clip(6)
    folder = tmp_path / "videos"
    folder.mkdir()
    from remoco import video as vio

    vio.write_video(folder / "a.mp4", torch.zeros((4, 32, 32, 3), dtype=torch.uint8), fps=4)
    with pytest.raises(ValueError, match="data="):
        clips.TrainClips(cfg.replace(data=str(folder), flow_source="opencv")).synthetic_clip(0)
