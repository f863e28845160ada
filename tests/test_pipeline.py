"""ReMoCoPipeline: sampling, equality with SVD at zero init, guidance, save/load, input validation."""

import numpy as np
import PIL.Image
import pytest
import torch

from remoco import controller as C
from remoco import lora as LR
from remoco import models
from remoco import pipeline as pipeline_mod
from remoco.pipeline import ReMoCoPipeline

# one intra-op thread: on the shared 2-core machine OpenMP spin-waiting makes 2 threads ~10x slower
torch.set_num_threads(1)

L, H, W = 4, 64, 64  # 4 frames keep the tests fast; the toy default is 8
KW = dict(num_inference_steps=1, output_type="pt")


@pytest.fixture(scope="module")
def pipe():
    return pipeline_mod.build_toy_remoco_pipeline(seed=0)


@pytest.fixture(scope="module")
def cond():
    g = torch.Generator().manual_seed(0)
    rt = torch.zeros(L, H, W, 2)
    rt[:, 16:32, 16:32] = torch.linspace(0, 12, L).view(L, 1, 1, 1) * torch.tensor([1.0, -0.5])
    mm = torch.zeros(L, H, W, 1, dtype=torch.bool)
    mm[:, 8:40, 8:40] = True
    img = torch.rand(3, H, W, generator=g)
    return img, rt, mm


def _pil(img):
    return PIL.Image.fromarray((img.permute(1, 2, 0) * 255).round().byte().numpy())


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_is_an_svd_pipeline_with_a_controller(pipe):
    from diffusers import StableVideoDiffusionPipeline

    assert isinstance(pipe, StableVideoDiffusionPipeline)
    assert isinstance(pipe.controller, C.ReMoCoController)
    assert pipe.controller.attached_unet is pipe.unet
    assert "controller" in pipe.components


def test_samples_shapes_seed_and_zero_init_equals_svd(pipe, cond):
    img, rt, mm = cond
    a = pipe(_pil(img), region_trajectory=rt, motion_mask=mm, generator=_gen(0), **KW).frames
    assert a.shape == (1, L, 3, H, W)
    # at initialisation (zero-init modulation) ReMoCo is exactly the base SVD pipeline (same seed, same steps;
    # equality across two separately built pipelines also shows seeded sampling is deterministic)
    base = models.build_toy_pipeline(seed=0)
    ref = base(_pil(img), height=H, width=W, num_frames=L, generator=_gen(0), **KW).frames
    assert torch.equal(a, ref)
    assert not pipe.controller.is_attached or pipe.controller._condition is None  # condition cleared after call


def test_image_formats_agree(pipe, cond):
    img, rt, mm = cond
    pil = _pil(img)
    as_uint8 = torch.from_numpy(np.array(pil))  # (H, W, 3) uint8
    outs = [pipe(x, region_trajectory=rt, motion_mask=mm, generator=_gen(1), **KW).frames
            for x in (pil, np.array(pil))]
    assert torch.equal(outs[0], outs[1])
    assert pipe._prepare_image(as_uint8).tobytes() == pil.tobytes()
    # a float tensor in [0, 1] equal to the PIL image gives (numerically) the same video
    t = pipe(as_uint8.permute(2, 0, 1).float() / 255, region_trajectory=rt, motion_mask=mm, generator=_gen(1),
             **KW).frames
    assert torch.allclose(t, outs[0], atol=1e-4)


def test_controller_changes_video_and_uncond_gets_zero_condition():
    pipe = pipeline_mod.build_toy_remoco_pipeline(seed=0)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for n, p in pipe.controller.named_parameters():
            if "temporal" in n:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    img = torch.rand(3, H, W, generator=g)
    rt = torch.randn(L, H, W, 2, generator=g) * 4
    mm = torch.ones(L, H, W, 1, dtype=torch.bool)
    zero_rt, zero_mm = torch.zeros_like(rt), torch.zeros_like(mm)
    # record the condition the UNet sees: [zero, cond] in a guided call, cond alone without guidance
    seen = []
    orig = pipe.controller.set_condition

    def spy(c, num_frames=None, do_classifier_free_guidance=False):
        orig(c, num_frames, do_classifier_free_guidance)
        seen.append(pipe.controller._condition.clone())

    pipe.controller.set_condition = spy
    try:
        pipe(_pil(img), region_trajectory=rt, motion_mask=mm, generator=_gen(0), max_guidance_scale=3.0, **KW)
        a = pipe(_pil(img), region_trajectory=rt, motion_mask=mm, generator=_gen(0), max_guidance_scale=1.0,
                 **KW).frames
        z = pipe(_pil(img), region_trajectory=zero_rt, motion_mask=zero_mm, generator=_gen(0),
                 max_guidance_scale=1.0, **KW).frames
    finally:
        del pipe.controller.set_condition
    assert (a - z).abs().max() > 1e-4  # a trained (non-zero) controller makes the condition matter
    assert seen[0].shape[0] == 2 * L and torch.equal(seen[0][:L], torch.zeros_like(seen[0][:L]))
    assert torch.equal(seen[0][L:], seen[1]) and seen[1].shape[0] == L
    assert torch.equal(seen[2], torch.zeros_like(seen[2]))


def test_user_trajectories_path(pipe, cond):
    img = cond[0]
    brush = torch.zeros(H, W, dtype=torch.bool)
    brush[10:30, 10:30] = True
    traj = [torch.tensor([[20.0, 20.0], [30.0, 24.0], [40.0, 26.0]])]
    out = pipe(_pil(img), trajectories=traj, brush_mask=brush, k=8, num_frames=L, generator=_gen(0), **KW).frames
    assert out.shape == (1, L, 3, H, W)
    c = pipe.prepare_condition(trajectories=traj, brush_mask=brush, k=8, num_frames=L, height=H, width=W)
    assert c.shape == (1, L, 3, H, W)
    assert torch.equal(c[0, :, 2].bool(), brush.expand(L, H, W))  # mask channel = brush
    # trajectory_fill="brush": the drag's displacement also fills the brushed region (the paper: its block only)
    moved = c[0, -1, :2].abs().sum(0) > 0
    assert int(moved.sum()) == 64
    cf = pipe.prepare_condition(trajectories=traj, brush_mask=brush, k=8, num_frames=L, height=H, width=W,
                                trajectory_fill="brush")
    moved_f = cf[0, -1, :2].abs().sum(0) > 0
    assert torch.equal(moved_f & brush, brush) and int(moved_f.sum()) == int((brush | moved).sum())


def test_bad_inputs_name_the_argument(pipe, cond):
    img, rt, mm = cond
    pil = _pil(img)
    with pytest.raises(ValueError, match="height"):
        pipe(pil, region_trajectory=rt, motion_mask=mm, height=60, width=64, **KW)
    with pytest.raises(ValueError, match="width"):
        pipe(pil, region_trajectory=rt, motion_mask=mm, height=64, width=36, **KW)
    with pytest.raises(ValueError, match="num_frames"):
        pipe(pil, region_trajectory=rt, motion_mask=mm, num_frames=L + 2, **KW)
    with pytest.raises(ValueError, match="height x width"):
        pipe(pil, region_trajectory=rt, motion_mask=mm, height=48, width=64, **KW)
    with pytest.raises(ValueError, match="motion_mask"):
        pipe(pil, region_trajectory=rt, motion_mask=mm[:, :32], **KW)
    with pytest.raises(ValueError, match="region_trajectory"):
        pipe(pil, region_trajectory=rt[..., :1], motion_mask=mm, **KW)
    with pytest.raises(ValueError, match="exactly one"):
        pipe(pil, **KW)
    with pytest.raises(ValueError, match="together"):
        pipe(pil, region_trajectory=rt, **KW)
    with pytest.raises(ValueError, match="image"):
        pipe("not an image", region_trajectory=rt, motion_mask=mm, **KW)
    with pytest.raises(FileNotFoundError, match="pretrained_model_name_or_path"):
        ReMoCoPipeline.from_pretrained("/nonexistent/remoco")


def test_save_load_roundtrip_with_lora(tmp_path, cond):
    img, rt, mm = cond
    pipe = pipeline_mod.build_toy_remoco_pipeline(seed=0, injection="sum")
    LR.add_lora(pipe.unet, rank=4)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in list(pipe.controller.parameters()) + LR.lora_parameters(pipe.unet):
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    ref = pipe(_pil(img), region_trajectory=rt, motion_mask=mm, generator=_gen(0), **KW).frames
    pipe.save_pretrained(tmp_path / "rp")
    assert (tmp_path / "rp" / "controller" / "lora.safetensors").is_file()
    assert not list((tmp_path / "rp").rglob("*.bin"))
    loaded = ReMoCoPipeline.from_pretrained(tmp_path / "rp")
    assert loaded.controller.config.injection == "sum"
    out = loaded(_pil(img), region_trajectory=rt, motion_mask=mm, generator=_gen(0), **KW).frames
    assert torch.equal(ref, out)
    # the saved UNet is a plain SVD UNet: it loads in diffusers' SVD pipeline without LoRA keys
    base = models.load_svd_pipeline(tmp_path / "rp")
    assert not LR.has_lora(base.unet)
    # LoRA weights that do not fit the UNet are refused on load (one loader: remoco.lora.load_lora)
    from safetensors.torch import load_file, save_file

    lora = tmp_path / "rp" / "controller" / "lora.safetensors"
    sd = load_file(str(lora))
    key = next(iter(sd))
    sd[key.replace("lora_A", "lora_Z")] = sd[key].clone()
    save_file(sd, str(lora))
    with pytest.raises(ValueError, match="do not fit"):
        ReMoCoPipeline.from_pretrained(tmp_path / "rp")


def test_one_frame_video_is_an_error_not_a_dropped_drag(pipe, cond):
    img = cond[0]
    brush = torch.zeros(H, W, dtype=torch.bool)
    brush[10:30, 10:30] = True
    traj = [torch.tensor([[20.0, 20.0], [40.0, 26.0]])]
    with pytest.raises(ValueError, match="num_frames"):
        pipe(_pil(img), trajectories=traj, brush_mask=brush, k=8, num_frames=1, generator=_gen(0), **KW)
    # an empty brush with a drag: the paper's error, naming the argument
    with pytest.raises(ValueError, match="brush_mask"):
        pipe(_pil(img), trajectories=traj, brush_mask=torch.zeros(H, W, dtype=torch.bool), k=8, num_frames=L,
             generator=_gen(0), **KW)


@pytest.mark.parametrize("kind", ["gaussian", "trajectory_only", "region"])
def test_a_drag_becomes_the_input_the_controller_was_trained_on(kind):
    from remoco import user_conditions
    from remoco.gaussian import gaussian_trajectory

    p = pipeline_mod.build_toy_remoco_pipeline(seed=0, condition_type=kind)
    traj = [torch.tensor([[20.0, 20.0], [40.0, 26.0]])]
    brush = torch.zeros(H, W, dtype=torch.bool)
    brush[10:30, 10:30] = True
    c = p.prepare_condition(trajectories=traj, brush_mask=brush, k=4, num_frames=L)[0]  # (L, 3, H, W)
    region, mask = user_conditions.conditions_from_user(traj, brush, L, 4)
    expected = {"gaussian": gaussian_trajectory(traj, H, W, L), "trajectory_only": region, "region": region}[kind]
    assert torch.allclose(c[:, :2].permute(0, 2, 3, 1), expected)
    assert bool(c[:, 2].any()) == (kind == "region")
    if kind != "region":  # the brush is not read: an empty one is fine
        p.prepare_condition(trajectories=traj, brush_mask=torch.zeros(H, W, dtype=torch.bool), k=4, num_frames=L)
    with pytest.raises(ValueError, match="condition_type"):
        pipeline_mod.build_toy_remoco_pipeline(seed=0, condition_type="dense")


def test_a_gaussian_controller_driven_with_the_brush_fill_sees_its_dense_training_input():
    from remoco import user_conditions
    from remoco.gaussian import cell_centers, gaussian_trajectory, gaussian_trajectory_from_flow

    p = pipeline_mod.build_toy_remoco_pipeline(seed=0, condition_type="gaussian")
    traj = [torch.tensor([[20.0, 20.0], [40.0, 26.0]])]
    brush = torch.zeros(H, W, dtype=torch.bool)
    brush[10:30, 10:30] = True
    c = p.prepare_condition(trajectories=traj, brush_mask=brush, k=4, num_frames=L, trajectory_fill="brush")[0]
    field, _ = user_conditions.conditions_from_user(traj, brush, L, 4, fill="brush")
    rows, cols = cell_centers(H, W, 4)
    # independently: the training construction with every cell centre inside the brush selected
    sel = torch.zeros(H // 4, W // 4, dtype=torch.bool)
    for i, r in enumerate(rows.tolist()):
        for j, q in enumerate(cols.tolist()):
            sel[i, j] = bool(brush[r, q])
    expected = gaussian_trajectory_from_flow(field, torch.ones(L, H, W, dtype=torch.bool), sel, 4)
    got = c[:, :2].permute(0, 2, 3, 1)
    assert torch.allclose(got, expected) and not torch.allclose(got, gaussian_trajectory(traj, H, W, L))
    # many cells each add a Gaussian: the field far exceeds the drag's own displacement at the brush centre
    assert got[-1, 20, 20, 0] > 3 * (40.0 - 20.0)
    assert not c[:, 2].any()


def test_shipped_drag_settings_read_the_controller_config(tmp_path):
    from remoco import config, shipped

    config.preset_config("toy-cpu", "controller").to_yaml(tmp_path / "config.yaml")
    s = shipped.shipped_drag_settings(tmp_path)
    assert s == {"k": config.paper_k(64, 64), "trajectory_fill": shipped.SHIPPED_TRAJECTORY_FILL}
    with pytest.raises(FileNotFoundError, match="controller_path"):
        shipped.shipped_drag_settings(tmp_path / "missing")
