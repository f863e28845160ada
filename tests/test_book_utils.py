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


# --- show_source / source_html folding -------------------------------------------------------------

def _check_positive(x):
    if x <= 0:
        raise ValueError("x")


def _sample_with_checks(x, n=2):
    """Scale ``x`` by ``n``.

    A docstring long enough to be worth folding.
    """
    if n < 1:
        raise ValueError(f"n: expected >= 1, got {n}")
    elif n > 100:
        raise ValueError("n: too large")
    _check_positive(x)
    assert isinstance(n, int)
    # the method: equation (1)
    y = x * n
    if y > 10:
        raise ValueError("not a leading check: it follows the method's first statement")
    return y


def _sample_plain(x):
    y = x + 1
    return y


def _sample_if_not_a_check(x):
    """Doc."""
    if x > 0:
        x = -x
    return x


def _text(fragment: str) -> str:
    import html as _html
    import re

    return _html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _file_line(func, needle: str) -> int:
    lines, start = inspect.getsourcelines(func)
    hits = [start + i for i, line in enumerate(lines) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def _numbered(text: str, lineno: int, code: str) -> bool:
    """``code`` is shown right after line number ``lineno`` (pygments' inline line numbers)."""
    import re

    return re.search(rf"(^|\n)\s*{lineno}\s*{re.escape(code)}", text) is not None


def test_preamble_lines_finds_docstring_and_leading_checks():
    first = _file_line(_sample_with_checks, '"""Scale')
    last = _file_line(_sample_with_checks, "assert isinstance(n, int)")
    assert book_utils.preamble_lines(_sample_with_checks) == (first, last)
    assert book_utils.preamble_lines(_sample_plain) is None  # nothing to fold
    doc = _file_line(_sample_if_not_a_check, '"""Doc."""')
    assert book_utils.preamble_lines(_sample_if_not_a_check) == (doc, doc)  # `if` that does not raise stays


def test_source_html_folds_docstring_and_checks_with_file_line_numbers():
    out = book_utils.source_html(_sample_with_checks)
    assert out.count("<details") == 1
    before, rest = out.split("<details", 1)
    folded, after = rest.split("</details>", 1)
    first = _file_line(_sample_with_checks, '"""Scale')
    last = _file_line(_sample_with_checks, "assert isinstance(n, int)")
    # the signature stays visible, numbered with its line in this file
    assert _numbered(_text(before.split("</div>", 1)[1]), first - 1, "def _sample_with_checks(x, n=2):")
    # docstring and argument checks are behind the toggle, with their own line numbers
    ft = _text(folded)
    assert f"docstring and argument checks (lines {first}–{last})" in ft
    assert "Scale ``x`` by ``n``." in ft and 'raise ValueError("n: too large")' in ft
    assert _numbered(ft, _file_line(_sample_with_checks, "_check_positive(x)"), "_check_positive(x)")
    assert "y = x * n" not in ft
    # the method is shown unfolded, starting with the comment above its first statement
    at = _text(after)
    assert "Scale ``x``" not in at and "_check_positive(x)" not in at
    assert _numbered(at, _file_line(_sample_with_checks, "# the method"), "# the method: equation (1)")
    assert _numbered(at, _file_line(_sample_with_checks, "y = x * n"), "y = x * n")
    assert "not a leading check" in at  # a raise after the method started is part of the method
    lines, start = inspect.getsourcelines(_sample_with_checks)
    assert f"lines {start}–{start + len(lines) - 1}" in out
    # every source line is rendered exactly once (folded or not): nothing pasted, nothing lost
    assert _text(out).count("return y") == 1


def test_source_html_without_anything_to_fold_has_no_toggle():
    out = book_utils.source_html(_sample_plain)
    assert "<details" not in out
    assert _numbered(_text(out), _file_line(_sample_plain, "y = x + 1"), "y = x + 1")
    assert "<details" not in book_utils.source_html(_sample_with_checks, fold=False)


def test_source_html_explicit_lines_fold_the_rest():
    a = _file_line(_sample_with_checks, "y = x * n")
    b = _file_line(_sample_with_checks, 'raise ValueError("not a leading check')
    out = book_utils.source_html(_sample_with_checks, lines=(a, b))
    assert out.count("<details") == 2  # what comes before and what comes after
    shown = _text(out.split("</details>", 1)[1].split("<details", 1)[0])
    assert _numbered(shown, a, "y = x * n") and "return y" not in shown and "_check_positive" not in shown
    lines, start = inspect.getsourcelines(_sample_with_checks)
    end = start + len(lines) - 1
    assert "<details" not in book_utils.source_html(_sample_with_checks, lines=(start, end))


@pytest.mark.parametrize("lines", [(0, 5), (10**6, 10**6 + 1), "ab", (5,)])
def test_source_html_rejects_lines_outside_the_object(lines):
    with pytest.raises(ValueError, match="lines"):
        book_utils.source_html(_sample_with_checks, lines=lines)


def test_source_html_folds_a_library_functions_checks():
    out = book_utils.source_html(book_utils.video_html)
    folded, after = out.split("<details", 1)[1].split("</details>", 1)
    assert "fps: expected a positive number" in _text(folded)
    assert "as_uint8_frames(frames)" in _text(after)
    assert "scale: expected a positive integer" in _text(after)  # after the first real statement: shown


def test_table_html_formats_escapes_and_checks_rows():
    from remoco.book_utils import table_html

    out = table_html([{"model": "toy <UNet>", "params": 3047891, "loss": 0.123456, "note": None}],
                     formats={"params": ",d", "loss": ".3f"}, caption="sizes")
    assert "<th>model</th>" in out and "toy &lt;UNet&gt;" in out
    assert ">3,047,891</td>" in out and ">0.123</td>" in out and ">–</td>" in out
    assert out.count("<tr>") == 2 and "<caption>sizes</caption>" in out
    assert table_html([(1, 2.5)], columns=["a", "b"], formats={"b": ".1f"}).count('text-align:right') == 2
    with pytest.raises(ValueError, match="rows\\[0\\]"):
        table_html([(1, 2, 3)], columns=["a", "b"])
    with pytest.raises(ValueError, match="formats"):
        table_html([{"a": 1}], formats={"b": "d"})
    with pytest.raises(ValueError, match="columns"):
        table_html([(1, 2)])


def _validated(x, k, validate=True):
    """Doc."""
    if validate:
        if k < 1:
            raise ValueError("k")
        _check_positive(x)
    y = x * k
    return y


def _check_positive(x):
    if x <= 0:
        raise ValueError("x")


def test_preamble_folds_an_if_validate_block_of_checks():
    first, last = book_utils.preamble_lines(_validated)
    lines, start = inspect.getsourcelines(_validated)
    folded = "".join(lines[first - start:last - start + 1])
    assert "if validate:" in folded and "_check_positive(x)" in folded and "y = x * k" not in folded


def test_setup_chapter_fixes_seeds_and_threads(monkeypatch):
    import random

    import torch

    from remoco.book_utils import THREADS_ENV, setup_chapter

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv(THREADS_ENV, raising=False)
        from remoco.speed import PRECISION_ENV

        monkeypatch.setenv(PRECISION_ENV, "no")  # recorded, so the test leaves the environment as it found it
        assert setup_chapter(3, threads=1)["precision"] == "no"  # a reviewer's choice is kept
        monkeypatch.delenv(PRECISION_ENV)
        assert setup_chapter(3, threads=1) == {"seed": 3, "threads": 1, "precision": "bf16"}
        assert torch.get_num_threads() == 1
        a = (random.random(), np.random.rand(), torch.rand(1).item())
        setup_chapter(3, threads=1)
        assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
        monkeypatch.setenv(THREADS_ENV, "2")  # the environment overrides the chapter's own count
        assert setup_chapter(0, threads=1)["threads"] == 2 and torch.get_num_threads() == 2
        for bad in ("0", "two", "-1"):
            monkeypatch.setenv(THREADS_ENV, bad)
            with pytest.raises(ValueError, match=THREADS_ENV):
                setup_chapter(0)
        monkeypatch.delenv(THREADS_ENV)
        with pytest.raises(ValueError, match="threads"):
            setup_chapter(0, threads=0)
        with pytest.raises(ValueError, match="seed"):
            setup_chapter(-1)
    finally:
        torch.set_num_threads(before)
