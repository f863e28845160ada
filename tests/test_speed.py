"""remoco.speed and remoco.sampling: precision chosen by the processor, batched sampling equal to one-by-one."""

import types
from pathlib import Path

import numpy as np
import pytest
import torch

from remoco import config, speed


def test_cpu_bf16_native_reads_the_processor_flags():
    assert speed.cpu_bf16_native({"avx512_bf16", "avx2"}) == torch.backends.mkldnn.is_available()
    assert speed.cpu_bf16_native({"amx_bf16"}) == torch.backends.mkldnn.is_available()
    assert not speed.cpu_bf16_native({"avx2", "avx512f"})  # AVX-512 without BF16: emulated, slower than fp32
    assert not speed.cpu_bf16_native(set())


def test_resolve_mixed_precision():
    assert speed.resolve_mixed_precision("auto", "cpu", flags={"amx_bf16"}) == "bf16"
    assert speed.resolve_mixed_precision("auto", "cpu", flags={"avx2"}) == "no"
    assert speed.resolve_mixed_precision("no", "cpu", flags={"amx_bf16"}) == "no"
    assert speed.resolve_mixed_precision("bf16", "cpu", flags=set()) == "bf16"  # asked for explicitly
    with pytest.raises(ValueError, match="fp16"):
        speed.resolve_mixed_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="mixed_precision"):
        speed.resolve_mixed_precision("half", "cpu")


def test_precision_environment_variable_decides_auto(monkeypatch):
    monkeypatch.setenv(speed.PRECISION_ENV, "no")
    assert speed.resolve_mixed_precision("auto", "cpu", flags={"amx_bf16"}) == "no"
    assert speed.resolve_mixed_precision("bf16", "cpu") == "bf16"  # only "auto" follows it
    monkeypatch.setenv(speed.PRECISION_ENV, "fp8")
    with pytest.raises(ValueError, match=speed.PRECISION_ENV):
        speed.resolve_mixed_precision("auto", "cpu")


def test_autocast_module_wraps_only_that_module_and_restores_it():
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with speed.autocast_module(lin, "bf16") as chosen:
        assert chosen == "bf16" and lin(x).dtype == torch.bfloat16
        assert (x @ x.T).dtype == torch.float32  # outside the module: fp32
    assert "forward" not in vars(lin) and lin(x).dtype == torch.float32
    with speed.autocast_module(lin, "no") as chosen:
        assert chosen == "no" and lin(x).dtype == torch.float32


def test_autocast_module_output_dtype_casts_every_output_form():
    class Forms(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x, form):
            y = self.lin(x)
            if form == "tuple":
                return (y, torch.arange(3))
            if form == "output":
                return types.SimpleNamespace(sample=y)
            return y

    m, x = Forms(), torch.randn(2, 4)
    with speed.autocast_module(m, "bf16"):
        assert m(x, "tensor").dtype == torch.bfloat16  # without output_dtype: autocast's own dtype
    with speed.autocast_module(m, "bf16", output_dtype=torch.float32):
        assert m(x, "tensor").dtype == torch.float32
        y, idx = m(x, "tuple")
        assert y.dtype == torch.float32 and idx.dtype == torch.int64  # integer outputs untouched
        assert m(x, "output").sample.dtype == torch.float32
    assert "forward" not in vars(m)


def test_sampler_autocast_casts_outputs_back_only_without_guidance():
    lin, x = torch.nn.Linear(4, 4), torch.randn(2, 4)
    with speed.sampler_autocast(lin, "bf16", {"max_guidance_scale": 3.0}):
        assert lin(x).dtype == torch.bfloat16  # with guidance the pipeline's guidance sum returns fp32 itself
    with speed.sampler_autocast(lin, "bf16", {"max_guidance_scale": 1.0}):
        assert lin(x).dtype == torch.float32
    with speed.sampler_autocast(lin, "bf16", {}):  # SVD's default guidance, 3.0
        assert lin(x).dtype == torch.bfloat16
    assert "forward" not in vars(lin)
    with speed.sampler_autocast(None, "bf16") as chosen:  # a pipeline without a torch UNet runs as it is
        assert chosen is None


@pytest.mark.skipif(speed.resolve_mixed_precision("auto", "cpu") != "bf16", reason="needs native bf16")
def test_sampling_without_guidance_at_bf16_decodes(toy_pipes):
    """SVD's scheduler casts the latents to the UNet output's dtype: without guidance, a bf16 UNet would hand
    bf16 latents to the fp32 VAE (a dtype error before sample_videos cast the UNet's outputs back)."""
    from remoco import sampling

    base, _ = toy_pipes
    clips, _ = _clips(1)
    v = sampling.sample_videos(base, [clips[0].video[0].numpy()], [1], None, precision="auto", num_frames=4,
                               num_inference_steps=2, max_guidance_scale=1.0)[0]
    assert v.shape == (4, 32, 32, 3) and v.dtype == np.uint8


def test_config_accepts_auto_and_the_fast_path_is_the_toy_preset():
    cfg = config.preset_config("toy-cpu", "controller")
    assert {k: cfg.to_dict()[k] for k in config.FAST_PATH} == config.FAST_PATH
    with pytest.raises(ValueError, match="mixed_precision"):
        cfg.replace(mixed_precision="fp8")
    with pytest.raises(ValueError, match="fused_adam"):
        cfg.replace(fused_adam="yes")
    # the path is part of what a run's weights depend on
    assert cfg.fingerprint() != cfg.replace(**config.BASELINE_PATH).fingerprint()


def test_make_optimizer_fused_and_provenance_records_the_precision(tmp_path):
    from remoco import runs
    from remoco import train as T

    p = [torch.nn.Parameter(torch.randn(3))]
    cfg = config.preset_config("toy-cpu", "controller", out_dir=str(tmp_path))
    assert T.make_optimizer(cfg, p, 1e-3).defaults.get("fused") is True
    assert not T.make_optimizer(cfg.replace(fused_adam=False), p, 1e-3).defaults.get("fused")
    prov = runs.provenance(cfg)
    assert prov["mixed_precision_used"] == speed.resolve_mixed_precision("auto")
    assert prov["machine"]["cpu_bf16_native"] == speed.cpu_bf16_native()
    # the CPU's model is recorded (numbers from sampling and training differ between CPU models)
    model = prov["machine"]["cpu_model"]
    assert isinstance(model, str) and model and model == speed.cpu_model()
    if Path("/proc/cpuinfo").is_file():
        assert model in Path("/proc/cpuinfo").read_text()


@pytest.fixture(scope="module")
def toy_pipes():
    from remoco import models, pipeline

    base = models.build_toy_pipeline(seed=0)
    base.set_progress_bar_config(disable=True)
    rem = pipeline.build_toy_remoco_pipeline(seed=0)
    with torch.no_grad():  # a controller that does something
        for n, q in rem.controller.named_parameters():
            if "temporal" in n:
                q.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
    return base, rem


def _clips(n=3):
    from remoco import data, evaluate

    clips = [data.make_clip(500 + i, 4, 32, 32, kind="object") for i in range(n)]
    conds = []
    for c in clips:
        traj, brush = evaluate.object_trajectory(c)
        conds.append(dict(trajectories=[torch.as_tensor(traj, dtype=torch.float32)], brush_mask=brush, k=2))
    return clips, conds


def test_batched_sampling_equals_one_by_one(toy_pipes):
    """Video i of a batch is the video of image i sampled alone with seed i (fp32), for SVD and ReMoCo."""
    from remoco import sampling

    base, rem = toy_pipes
    clips, conds = _clips()
    imgs = [c.video[0].numpy() for c in clips]
    kw = dict(num_frames=4, num_inference_steps=2)
    for pipe, cond in ((base, None), (rem, conds)):
        batched = sampling.sample_videos(pipe, imgs, [7, 8, 9], cond, batch_size=2, precision="no", **kw)
        single = [sampling.sample_videos(pipe, [im], [s], None if cond is None else [c], precision="no", **kw)[0]
                  for im, s, c in zip(imgs, (7, 8, 9), cond or [None] * 3)]
        assert all(v.shape == (4, 32, 32, 3) and v.dtype == np.uint8 for v in batched)
        assert max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(batched, single)) <= 1
        assert not np.array_equal(batched[0], batched[1])  # different images, different seeds


def test_condition_changes_the_video_and_bad_input_is_refused(toy_pipes):
    from remoco import sampling

    base, rem = toy_pipes
    clips, conds = _clips(1)
    img = [clips[0].video[0].numpy()]
    kw = dict(num_frames=4, num_inference_steps=2, precision="no")
    moved = sampling.sample_videos(rem, img, [1], conds, **kw)[0]
    still = sampling.sample_videos(rem, img, [1], [dict(region_trajectory=torch.zeros(4, 32, 32, 2),
                                                        motion_mask=torch.zeros(4, 32, 32, 1, dtype=torch.bool))],
                                   **kw)[0]
    assert not np.array_equal(moved, still)
    with pytest.raises(ValueError, match="seeds"):
        sampling.sample_videos(base, img, [1, 2], None)
    with pytest.raises(ValueError, match="conditions"):
        sampling.sample_videos(rem, img, [1], None)
    with pytest.raises(ValueError, match="conditions"):
        sampling.sample_videos(base, img, [1], conds)
    with pytest.raises(ValueError, match="images"):
        sampling.sample_videos(base, [np.zeros((32, 32), np.uint8)], [1], None)
    with pytest.raises(ValueError, match="batch_size"):
        sampling.sample_videos(base, img, [1], None, batch_size=0)
    with pytest.raises(ValueError, match="generator"):
        sampling.sample_videos(base, img, [1], None, generator=torch.Generator())


def test_pipeline_condition_argument(toy_pipes):
    import PIL.Image

    _, rem = toy_pipes
    clips, conds = _clips(1)
    cond = rem.prepare_condition(num_frames=4, height=32, width=32, **conds[0])
    img = PIL.Image.fromarray(clips[0].video[0].numpy())
    kw = dict(num_inference_steps=2, output_type="np")
    a = rem(img, condition=cond, generator=torch.Generator().manual_seed(3), **kw).frames[0]
    b = rem(img, generator=torch.Generator().manual_seed(3), num_frames=4, **conds[0], **kw).frames[0]
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="condition"):
        rem(img, condition=cond, trajectories=conds[0]["trajectories"], brush_mask=conds[0]["brush_mask"], **kw)
    with pytest.raises(ValueError, match="condition"):
        rem(img, condition=cond[:, :, :2], **kw)
    with pytest.raises(ValueError, match="num_frames"):
        rem(img, condition=cond, num_frames=6, **kw)


def test_one_process_trains_both_paths_one_after_the_other(tmp_path):
    """accelerate keeps one state per process: a worker that ran an fp32 run must still run a bf16 one (and the
    provenance says which precision each used)."""
    import json

    from remoco import train as T
    from remoco.config import TrainConfig

    base = TrainConfig.from_yaml(config.SHIPPED_DIR / "remoco-toy" / "config.yaml").replace(
        max_steps=1, progress=False, base=str(config.SHIPPED_DIR / "toy-base"), num_clips=8)
    for name, path in (("a", config.BASELINE_PATH), ("b", config.FAST_PATH)):
        res = T.train(base.replace(out_dir=str(tmp_path / name), **path))
        prov = json.loads((res.final_path / "provenance.json").read_text())
        assert prov["mixed_precision_used"] == speed.resolve_mixed_precision(path["mixed_precision"])


def test_stage_precision_keeps_the_listed_stages_in_fp32(monkeypatch):
    assert speed.stage_precision("auto", "controller") == speed.resolve_mixed_precision("auto")
    assert speed.stage_precision("auto", "vae") == "no"  # the toy preset's VAE recipe: bf16 measured slower
    monkeypatch.setattr(speed, "FP32_STAGES", ())
    assert speed.stage_precision("auto", "vae") == speed.resolve_mixed_precision("auto")
    monkeypatch.setattr(speed, "FP32_STAGES", ("vae",))
    assert speed.stage_precision("bf16", "vae") == "bf16"  # asked for explicitly
    assert speed.stage_precision("auto", "unet") == speed.resolve_mixed_precision("auto")
