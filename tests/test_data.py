"""Tests of the synthetic clip generator (remoco.data): exact ground truth for Eq. 4."""

import numpy as np
import pytest
import torch

from remoco import data
from remoco.flow import warp_by_flow


@pytest.mark.parametrize("kind", data.KINDS)
def test_shapes_dtypes(kind):
    c = data.make_clip(3, num_frames=6, height=48, width=80, kind=kind)
    assert c.video.shape == (6, 48, 80, 3) and c.video.dtype == torch.uint8
    assert c.flow.shape == (6, 48, 80, 2) and c.flow.dtype == torch.float32
    assert c.visibility.shape == (6, 48, 80) and c.visibility.dtype == torch.bool
    assert c.object_mask.shape == (48, 80) and c.object_mask.dtype == torch.bool
    assert c.kind == kind
    assert torch.all(c.flow[0] == 0) and torch.all(c.visibility[0])


def test_deterministic():
    a, b = data.make_clip(11), data.make_clip(11)
    for f in ("video", "flow", "visibility", "object_mask"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    assert a.kind == b.kind
    c = data.make_clip(12)
    assert not torch.equal(a.video, c.video)


def test_kind_mix_and_moving_objects():
    kinds = [data.make_clip(s).kind for s in range(60)]
    assert set(kinds) == set(data.KINDS)
    assert kinds.count("object") >= 10  # static-camera object motion is the most common kind
    for s in range(10):
        c = data.make_clip(s, kind="object")
        assert c.object_mask.sum() > 0.02 * 64 * 64
        travel = c.flow[-1][c.object_mask].norm(dim=-1).mean()
        assert 2.0 < travel < 40.0  # clearly visible motion at 64x64


@pytest.mark.parametrize("kind", data.KINDS)
def test_flow_is_exact_by_warping(kind):
    """Frame i sampled at p + f^i(p) reproduces frame 1 on visible pixels (interior of layers)."""
    for seed in range(3):
        c = data.make_clip(seed, num_frames=8, height=64, width=64, kind=kind)
        owner = c.meta["owner"].numpy()
        # exclude pixels at layer boundaries (alpha blending there) via a 1-px erosion of each owner region
        interior = np.ones_like(owner, bool)
        interior[1:-1, 1:-1] = (
            (owner[1:-1, 1:-1] == owner[:-2, 1:-1]) & (owner[1:-1, 1:-1] == owner[2:, 1:-1])
            & (owner[1:-1, 1:-1] == owner[1:-1, :-2]) & (owner[1:-1, 1:-1] == owner[1:-1, 2:])
        )
        f1 = c.video[0].numpy().astype(np.float32)
        for i in range(1, 8):
            vis = c.visibility[i].numpy() & interior
            # also drop pixels whose target is next to an occluder boundary in frame i: erode visibility
            v = vis.copy()
            v[1:-1, 1:-1] &= vis[:-2, 1:-1] & vis[2:, 1:-1] & vis[1:-1, :-2] & vis[1:-1, 2:]
            if v.sum() < 50:
                continue
            w = warp_by_flow(c.video[i].numpy().astype(np.float32), c.flow[i].numpy())
            err = np.abs(w - f1)[v].mean()
            # a wrong flow (e.g. zero flow) gives tens of grey levels; bilinear resampling a few
            assert err < 8.0, (kind, seed, i, err)
            if c.flow[i][torch.from_numpy(v)].norm(dim=-1).mean() > 2:
                wrong = np.abs(c.video[i].numpy().astype(np.float32) - f1)[v].mean()
                assert wrong > err


def test_visibility_marks_exit_and_occlusion():
    c = data.make_clip(5, kind="exit")
    q = c.flow[-1] + torch.stack(torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="xy"), -1)
    outside = (q[..., 0] < 0) | (q[..., 0] > 63) | (q[..., 1] < 0) | (q[..., 1] > 63)
    assert outside.any()
    assert not c.visibility[-1][outside].any()
    occ = [data.make_clip(s, kind="occlusion") for s in range(5)]
    # in occlusion clips some in-frame pixels are hidden by the occluder at some frame
    assert any(((~c.visibility[1:]) & c.object_mask[None]).any() for c in occ)


def test_camera_moves_background():
    c = data.make_clip(2, kind="camera")
    bg = c.meta["owner"] == 0
    assert c.flow[-1][bg].norm(dim=-1).mean() > 1.0
    c = data.make_clip(2, kind="object")
    assert c.flow[-1][c.meta["owner"] == 0].abs().max() == 0  # static camera


def test_dataset():
    ds = data.SyntheticClipDataset(4, seed=1)
    assert len(ds) == 4
    assert torch.equal(ds[2].video, data.make_clip(1 * 1_000_003 + 2).video)
    dl = torch.utils.data.DataLoader(data.SyntheticClipDataset(4, seed=0, as_dict=True), batch_size=2)
    batch = next(iter(dl))
    assert batch["video"].shape == (2, 8, 64, 64, 3)
    with pytest.raises(IndexError):
        ds[4]


def test_photo_clip_and_sample_images():
    imgs = data.sample_images(["astronaut", "coffee"])
    assert imgs["astronaut"].shape == (512, 512, 3) and imgs["astronaut"].dtype == np.uint8
    c = data.photo_clip(0, num_frames=4, height=64, width=96)
    assert c.video.shape == (4, 64, 96, 3) and c.kind == "photo-part" and c.object_mask.any()
    c2 = data.photo_clip(0, num_frames=4, height=64, width=96, kind="camera")
    assert c2.kind == "photo-camera" and c2.flow[-1].norm(dim=-1).mean() > 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        data.make_clip(0, kind="nope")
    with pytest.raises(ValueError, match="num_frames"):
        data.make_clip(0, num_frames=1)
    with pytest.raises(ValueError, match="height"):
        data.make_clip(0, height=4)
    with pytest.raises(ValueError, match="seed"):
        data.make_clip(1.5)
    with pytest.raises(ValueError, match="num_clips"):
        data.SyntheticClipDataset(0)
    with pytest.raises(ValueError, match="photo"):
        data.photo_clip(0, photo="nope")


def test_occluded_pixels_show_something_else():
    """Independent check of M^i: at in-frame pixels marked occluded, frame i shows a different
    surface, so warping frame i back by the exact flow does NOT reproduce frame 1 there."""
    vis_err, occ_err = [], []
    for s in range(4):
        c = data.make_clip(s, kind="occlusion")
        f1 = c.video[0].numpy().astype(np.float32)
        grid = np.stack(np.meshgrid(np.arange(64.0), np.arange(64.0)), -1)
        for i in range(1, 8):
            q = grid + c.flow[i].numpy()
            inside = (q[..., 0] >= 0) & (q[..., 0] <= 63) & (q[..., 1] >= 0) & (q[..., 1] <= 63)
            err = np.abs(warp_by_flow(c.video[i].numpy().astype(np.float32), c.flow[i].numpy()) - f1).mean(-1)
            v = c.visibility[i].numpy()
            vis_err.append(err[v & inside])
            occ_err.append(err[~v & inside])
    vis_err, occ_err = np.concatenate(vis_err), np.concatenate(occ_err)
    assert occ_err.size > 100
    assert np.median(occ_err) > 4 * np.median(vis_err) + 5


def test_every_packaged_photo_loads_and_training_photos_hold_two_out():
    imgs = data.sample_images(data.ALL_PHOTOS)
    assert len(imgs) == len(data.ALL_PHOTOS) >= 15
    for name, img in imgs.items():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 100, name
        assert img.std() > 10, name  # a picture, not a blank page
    assert set(data.HELD_OUT_PHOTOS) <= set(data.ALL_PHOTOS)
    assert not set(data.HELD_OUT_PHOTOS) & set(data.TRAIN_PHOTOS)
    assert set(data.TRAIN_PHOTOS) | set(data.HELD_OUT_PHOTOS) == set(data.ALL_PHOTOS)


def test_make_clip_photos():
    default = data.make_clip(5, kind="object")
    same = data.make_clip(5, kind="object", photos=data.PHOTO_NAMES)
    assert torch.equal(default.video, same.video)  # the bench's clips do not change
    grey = data.make_clip(5, kind="object", photos=("moon",))
    assert not torch.equal(default.video, grey.video)
    # a grey photograph gets a colour cast: the channels differ
    v = grey.video.float()
    assert (v[..., 0] - v[..., 2]).abs().mean() > 3
    with pytest.raises(ValueError, match="photos"):
        data.make_clip(5, photos=("no-such-photo",))
    with pytest.raises(ValueError, match="photos"):
        data.make_clip(5, photos=())


def test_clip_meta_names_the_photograph_of_every_layer():
    """``meta["photographs"]`` lists, layer by layer, the photograph each texture was cut from: only photographs of
    the ``photos`` a clip was drawn from, and the one photograph of a :func:`photo_clip`."""
    from remoco.data import ALL_PHOTOS, make_clip, photo_clip

    for seed, kind in ((3, "object"), (4, "camera"), (5, "part")):
        clip = make_clip(seed, 4, 32, 32, kind=kind, photos=("coffee", "retina"))
        assert len(clip.meta["photographs"]) == len(clip.meta["layers"])
        assert set(clip.meta["photographs"]) <= {"coffee", "retina"}
    seen = {p for s in range(12) for p in make_clip(s, 4, 32, 32, kind="object").meta["photographs"]}
    assert len(seen) > 2 and seen <= set(ALL_PHOTOS)
    assert photo_clip(0, 4, 32, 48, photo="rocket").meta["photographs"] == ["rocket", "rocket"]
