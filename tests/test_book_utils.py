import inspect

import numpy as np
import pytest
import torch

from remoco import book_utils


def test_source_html_shows_the_functions_own_lines():
    html = book_utils.source_html(book_utils.video_html)
    lines, start = inspect.getsourcelines(book_utils.video_html)
    assert f"lines {start}–{start + len(lines) - 1}" in html
    assert "remoco/book_utils.py" in html
    # every identifier of the function's first line appears in the rendered HTML
    assert "video_html" in html


def test_source_html_rejects_objects_without_source():
    with pytest.raises(ValueError, match="obj"):
        book_utils.source_html(42)


def test_as_uint8_frames_layouts_and_ranges():
    clip = torch.rand(3, 3, 8, 10)
    out = book_utils.as_uint8_frames(clip)
    assert out.shape == (3, 8, 10, 3) and out.dtype == np.uint8
    expected = (clip.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    grey = np.zeros((2, 4, 4), dtype=np.uint8)
    assert book_utils.as_uint8_frames(grey).shape == (2, 4, 4, 3)


@pytest.mark.parametrize("bad, arg", [
    (np.zeros((4, 4)), "frames"),
    (np.zeros((2, 4, 4, 5)), "frames"),
    (np.full((2, 4, 4, 3), np.nan), "frames"),
    (np.zeros((2, 4, 4, 3), dtype=np.int64), "frames"),
])
def test_as_uint8_frames_rejects_bad_clips(bad, arg):
    with pytest.raises(ValueError, match=arg):
        book_utils.as_uint8_frames(bad)


def test_video_html_embeds_a_decodable_mp4(tmp_path):
    import base64
    import re

    import imageio.v2 as imageio

    frames = np.zeros((5, 15, 21, 3), dtype=np.uint8)
    frames[:, :, :, 0] = np.arange(5)[:, None, None] * 50
    html = book_utils.video_html(frames, fps=5, scale=2)
    data = re.search(r"base64,([A-Za-z0-9+/=]+)", html).group(1)
    path = tmp_path / "v.mp4"
    path.write_bytes(base64.b64decode(data))
    decoded = np.stack([f for f in imageio.get_reader(str(path), format="FFMPEG").iter_data()])
    assert decoded.shape[0] == 5
    assert decoded.shape[1:3] == (30, 42)  # ×2, already even
    # brightness of the red channel grows frame by frame as in the input
    reds = decoded[..., 0].mean(axis=(1, 2))
    assert np.all(np.diff(reds) > 20)


def test_video_html_rejects_bad_arguments():
    clip = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="fps"):
        book_utils.video_html(clip, fps=0)
    with pytest.raises(ValueError, match="scale"):
        book_utils.video_html(clip, scale=0)
