"""Tests of remoco.video: read/write round trips, the paper's resize + centre crop, errors."""

import numpy as np
import pytest
import torch

from remoco import data
from remoco import video as V


@pytest.fixture(scope="module")
def clip():
    return data.make_clip(0, num_frames=6, height=48, width=64).video


def test_folder_round_trip_is_lossless(clip, tmp_path):
    V.write_video(tmp_path / "frames", clip, fps=4)
    assert torch.equal(V.read_video(tmp_path / "frames"), clip)
    assert V.read_video(tmp_path / "frames", num_frames=3).shape[0] == 3


@pytest.mark.parametrize("suffix,tol", [(".mp4", 8.0), (".gif", 6.0)])
def test_lossy_round_trips(clip, tmp_path, suffix, tol):
    p = V.write_video(tmp_path / f"clip{suffix}", clip, fps=8)
    back = V.read_video(p)
    assert back.shape == clip.shape and back.dtype == torch.uint8
    err = (back.float() - clip.float()).abs().mean()
    assert err < tol  # lossy codecs; a shifted / reordered clip would give tens of levels
    assert err < (clip[1:].float() - clip[:-1].float()).abs().mean() + tol


def test_resize_center_crop_paper_scale():
    x = torch.zeros(2, 400, 400, 3, dtype=torch.uint8)
    x[:, :, 195:205] = 255  # vertical bar at the centre
    out = V.resize_center_crop(x, 320, 512)
    assert out.shape == (2, 320, 512, 3)
    # 400x400 -> 512x512 (short side fits the width 512), crop rows 96:416; the bar stays centred
    cols = out[0, 160, :, 0].float()
    centre = (cols * torch.arange(512)).sum() / cols.sum()
    assert abs(centre.item() - 255.5) < 1.0
    y = torch.arange(6 * 10 * 3, dtype=torch.uint8).reshape(1, 6, 10, 3)
    assert torch.equal(V.resize_center_crop(y, 6, 4), y[:, :, 3:7])  # pure crop when sizes fit


def test_errors(tmp_path, clip):
    with pytest.raises(FileNotFoundError, match="path"):
        V.read_video(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 50)
    with pytest.raises(ValueError, match="path"):
        V.read_video(bad)
    V.write_video(tmp_path / "one.gif", clip[:1])
    with pytest.raises(ValueError, match="at least 2"):
        V.read_video(tmp_path / "one.gif")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image frames"):
        V.read_video(tmp_path / "empty")
    with pytest.raises(ValueError, match="num_frames"):
        V.read_video(V.write_video(tmp_path / "f", clip), num_frames=10)
    with pytest.raises(ValueError, match="dtype"):
        V.write_video(tmp_path / "x.gif", clip.float())
    with pytest.raises(ValueError, match="even"):
        V.write_video(tmp_path / "x.mp4", clip[:, :47])
    with pytest.raises(ValueError, match="suffix"):
        V.write_video(tmp_path / "x.xyz", clip)
    with pytest.raises(ValueError, match="height"):
        V.resize_center_crop(clip, 0, 10)


def test_as_uint8_image_and_frames_share_one_conversion():
    # the one rounding rule of remoco: clip to [0, 1], x 255, round half UP (np.rint would give 0, 2)
    ties = np.array([0.5, 2.5]) / 255
    img = np.broadcast_to(ties[None, :, None], (1, 2, 3)).copy()
    np.testing.assert_array_equal(V.as_uint8_image(img)[0, :, 0], [1, 3])
    np.testing.assert_array_equal(V.as_uint8_frames(img[None])[0], V.as_uint8_image(img))
    # out-of-range floats are clipped; channel-first tensors and grey frames are accepted
    chw = torch.tensor([[[-0.2, 1.3]]]).expand(3, 1, 2)
    np.testing.assert_array_equal(V.as_uint8_image(chw)[0], [[0, 0, 0], [255, 255, 255]])
    assert V.as_uint8_image(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    u8 = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    np.testing.assert_array_equal(V.as_uint8_image(u8), u8)


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 2, 3)), np.full((4, 4, 3), np.nan), np.zeros((4, 4, 3), np.int64),
                                 np.zeros((4, 4, 5))])
def test_as_uint8_image_rejects_bad_frames(bad):
    with pytest.raises(ValueError, match="frame"):
        V.as_uint8_image(bad)
