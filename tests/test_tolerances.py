"""The tolerance table (remoco.tolerances): every tolerance bites, and the book's pages quote the table as it is."""

import re
from pathlib import Path

import pytest

from remoco import reproduce
from remoco import tolerances as T

ROOT = Path(__file__).resolve().parent.parent
COMPARED = [name for name, t in T.QUANTITIES.items() if t.compared and not t.exact]


@pytest.mark.parametrize("name", COMPARED)
def test_each_tolerance_bites(name):
    """A stored value moved within its tolerance passes, one moved beyond it fails (both directions)."""
    tol = T.QUANTITIES[name]
    stored = 8.65
    bound = tol.bound(stored, unit=0.01)
    assert bound > 0.01
    for sign in (1, -1):
        within = f"{stored + sign * 0.9 * bound:.2f}"
        beyond = f"{stored + sign * (bound + 0.02):.2f}"
        assert T.compare_number(f"{stored:.2f}", within, tol)[0], (name, within)
        assert not T.compare_number(f"{stored:.2f}", beyond, tol)[0], (name, beyond)


def test_exact_and_uncompared_quantities():
    exact, wall = T.QUANTITIES["exact"], T.QUANTITIES["wall_time"]
    assert T.compare_number("5.0", "5.0", exact)[0]
    assert not T.compare_number("5.0", "5.1", exact)[0]
    assert not T.compare_text("(30, 38)", "(30, 39)", exact)[0]
    assert T.compare_number("7.7", "12.0", wall)[0]  # a wall time is shown, never compared
    assert exact.describe() == "exact" and wall.describe() == "not compared"


def test_printed_unit_and_numbers():
    assert T.printed_unit("5.0") == pytest.approx(0.1)
    assert T.printed_unit("1,800") == 1
    assert T.printed_unit("5.9e-08") == pytest.approx(1e-9)
    assert T.printed_numbers("8.65 ± 0.74 px, 1,800 steps, -2.6 %") == ["8.65", "0.74", "1,800", "-2.6"]
    assert T.number_value("1,524.62") == pytest.approx(1524.62)
    assert T.number_value("\u22122.5") == -2.5
    with pytest.raises(ValueError, match="token"):
        T.printed_unit("abc")
    with pytest.raises(ValueError, match="token"):
        T.number_value("1.2.3")


def test_rounding_to_neighbouring_printed_values_is_not_a_failure():
    """5.04 and 5.06 print as 5.0 and 5.1: one printed unit is always allowed on top of the tolerance."""
    tol = T.Tolerance("a distance", atol=0.05)
    assert T.compare_number("5.0", "5.1", tol)[0]
    assert not T.compare_number("5.0", "5.2", tol)[0]


def test_compare_text_words_exact_numbers_within():
    tol = T.QUANTITIES["single_video_px"]
    assert T.compare_text("10.7, 13.8, 18.1", "10.9, 13.5, 18.4", tol)[0]
    assert not T.compare_text("10.7, 13.8, 18.1", "10.7, 13.8", tol)[0]  # a number missing: the words differ
    assert not T.compare_text("10.7 px", "10.7 mm", tol)[0]
    assert not T.compare_text("10.7", "20.7", tol)[0]


def test_tolerance_rejects_negative_or_infinite_bounds():
    with pytest.raises(ValueError, match="atol"):
        T.Tolerance("x", atol=-1)
    with pytest.raises(ValueError, match="atol"):
        T.Tolerance("x", rtol=float("inf"))


def test_quantity_of_patterns():
    assert T.quantity_of("05_lora_training", "glue:d_ReMoCo_brush") == "video_distance_px"
    assert T.quantity_of("05_lora_training", "glue:d_gap_gaussian") == "video_distance_gap_px"
    assert T.quantity_of("05_lora_training", "column:mean distance (px)") == "video_distance_px"
    assert T.quantity_of("05_lora_training", "glue:k") == "exact"  # unmatched: exact
    assert T.quantity_of("03_region_trajectory_and_motion_mask", "glue:threads") == "wall_time"
    assert T.quantity_of("no_such_chapter", "glue:anything") == "exact"
    with pytest.raises(ValueError, match="key"):
        T.quantity_of("05_lora_training", "d_ReMoCo_brush")


def test_every_pattern_names_a_known_quantity_and_chapter():
    chapters = {p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb")}
    assert set(T.CHAPTER_QUANTITIES) == chapters
    for chapter, patterns in T.CHAPTER_QUANTITIES.items():
        for pattern, quantity in patterns.items():
            assert pattern.startswith(("glue:", "column:")), (chapter, pattern)
            assert quantity in T.QUANTITIES, (chapter, pattern, quantity)


def test_reproduce_checker_uses_the_same_table():
    for metric in T.RESULT_METRICS:
        assert reproduce.TOLERANCES[metric] == (T.QUANTITIES[metric].atol, T.QUANTITIES[metric].rtol)


def test_stored_results_files_state_the_tables_tolerances():
    """Every stored results file names, per metric, the tolerance the checker applies to it."""
    import json

    files = sorted((ROOT / "results").glob("*.json")) + sorted((ROOT / "results" / "quick").glob("*.json"))
    checked = 0
    for f in files:
        d = json.loads(f.read_text())
        if "tolerances" not in d:
            continue
        for metric, (atol, rtol) in d["tolerances"].items():
            assert (atol, rtol) == reproduce.TOLERANCES[metric], (f.name, metric)
            checked += 1
    assert checked >= 6


def test_reproducing_page_carries_the_table():
    page = (ROOT / "book" / "reproducing.md").read_text()
    assert T.markdown_table() in page, "book/reproducing.md: paste `python -m remoco.tolerances` into it"
    assert re.search(r"python -m remoco\.tolerances", page)
