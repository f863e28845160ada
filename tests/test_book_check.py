"""remoco.book_check: a re-executed chapter is compared with its stored outputs through the tolerance table."""

import copy
import json
from pathlib import Path

import nbformat
import pytest

from remoco import book_check as B
from remoco import tolerances as T

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


MIME = "application/papermill.record/"


def _glue_output(name, value):
    return nbformat.v4.new_output("display_data", data={MIME + "text/plain": repr(value)},
                                  metadata={"scrapbook": {"name": name, "mime_prefix": MIME}})


def _table_output(rows, header=("system", "mean distance (px)")):
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>" for r in rows)
    head = "".join(f"<th>{h}</th>" for h in header)
    html = (f'<table class="remoco-table"><caption>24 clips</caption><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table>')
    return nbformat.v4.new_output("display_data", data={"text/html": html, "text/plain": "<HTML>"})


def _chapter(distance="8.65", text="shape (8, 3, 64, 64)\n", table_value="4.70", source="x = 1"):
    nb = nbformat.v4.new_notebook()
    c1 = nbformat.v4.new_code_cell(source)
    c1.outputs = [_glue_output("d_ReMoCo_brush", distance), _glue_output("k", 2)]
    c2 = nbformat.v4.new_code_cell("show()")
    c2.metadata["tags"] = [B.CHECK_TAG]
    c2.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text),
                  _table_output([("ReMoCo", table_value)])]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), c1, c2]
    return nb


def test_identical_chapters_pass():
    check = B.compare_chapter(_chapter(), _chapter(), "05_lora_training")
    assert check.ok, check.lines(True)
    kinds = {c.key: c.quantity for c in check.comparisons}
    assert kinds["glue d_ReMoCo_brush"] == "video_distance_px" and kinds["glue k"] == "exact"
    assert any("table 1 row 1" in k and q == "video_distance_px" for k, q in kinds.items())


def test_sampled_numbers_pass_within_and_fail_beyond_their_tolerance():
    ch = "05_lora_training"
    assert B.compare_chapter(_chapter(), _chapter(distance="8.70", table_value="4.75"), ch).ok
    beyond = B.compare_chapter(_chapter(), _chapter(distance="9.90"), ch)
    assert not beyond.ok and [c.key for c in beyond.failures] == ["glue d_ReMoCo_brush"]
    cell = B.compare_chapter(_chapter(), _chapter(table_value="5.90"), ch)
    assert not cell.ok and "mean distance (px)" in cell.failures[0].key


def test_exact_outputs_must_print_the_same():
    check = B.compare_chapter(_chapter(), _chapter(text="shape (8, 3, 64, 65)\n"), "05_lora_training")
    assert not check.ok and "stdout" in check.failures[0].key
    # the same table in a chapter without tolerances: exact
    assert not B.compare_chapter(_chapter(), _chapter(table_value="4.71"), "03_region_trajectory_and_motion_mask").ok


def test_printed_text_split_into_several_stream_messages_compares_as_one():
    """The kernel may flush one cell's printed lines as one stream message or as two; the text is what counts."""
    split = _chapter(text="a = 1\n")
    split.cells[2].outputs.insert(1, nbformat.v4.new_output("stream", name="stdout", text="b = 2\n"))
    assert B.compare_chapter(_chapter(text="a = 1\nb = 2\n"), split, "05_lora_training").ok
    other = copy.deepcopy(split)
    other.cells[2].outputs[1].text = "b = 3\n"  # different text still fails
    assert not B.compare_chapter(_chapter(text="a = 1\nb = 2\n"), other, "05_lora_training").ok
    stderr = copy.deepcopy(split)
    stderr.cells[2].outputs[1].name = "stderr"  # another stream is another output
    assert not B.compare_chapter(_chapter(text="a = 1\nb = 2\n"), stderr, "05_lora_training").ok


def test_structural_problems_fail():
    changed_code = B.compare_chapter(_chapter(), _chapter(source="x = 2"), "05_lora_training")
    assert not changed_code.ok and "code differs" in changed_code.problems[0]
    fresh = _chapter()
    fresh.cells[1].outputs = fresh.cells[1].outputs[:1]  # a glued value gone
    missing = B.compare_chapter(_chapter(), fresh, "05_lora_training")
    assert not missing.ok and missing.failures[0].detail.startswith("only in the stored")
    err = _chapter()
    err.cells[2].outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[]))
    assert not B.compare_chapter(_chapter(), err, "05_lora_training").ok


def test_parse_tables():
    t = B.parse_tables(_table_output([("a", "1.00"), ("b &amp; c", "2,000")]).data["text/html"])
    assert t == [{"caption": "24 clips", "header": ["system", "mean distance (px)"],
                  "rows": [["a", "1.00"], ["b & c", "2,000"]]}]


def _moved(text: str, by: float) -> str:
    """``text`` with its first printed number moved by ``by`` (printed with the same decimals)."""
    token = T.printed_numbers(text)[0]
    decimals = len(token.partition(".")[2]) if "e" not in token.lower() else 6
    value = T.number_value(token) + by
    new = f"{value:,.{decimals}f}" if "," in token else f"{value:.{decimals}f}"
    return text.replace(token, new, 1)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_stored_chapters_each_quantity_bites(path):
    """On every stored chapter: one glued value of each quantity moved beyond its tolerance fails the check, moved
    within it passes (exact values: any change fails)."""
    stored = nbformat.read(path, as_version=4)
    assert B.compare_chapter(stored, copy.deepcopy(stored), path.stem).ok
    seen = set()
    for cell in stored.cells:
        for n, o in enumerate(cell.get("outputs", [])):
            g = B._glue(o)
            if g is None or not T.printed_numbers(g[1]):
                continue
            quantity = T.quantity_of(path.stem, f"glue:{g[0]}")
            tol = T.QUANTITIES[quantity]
            if quantity in seen or not tol.compared:
                continue
            seen.add(quantity)
            token = T.printed_numbers(g[1])[0]
            unit = T.printed_unit(token)
            bound = tol.bound(T.number_value(token), unit)
            for by, should_pass in ((0.0 if tol.exact else 0.5 * bound, True), (bound + 2 * unit, False)):
                fresh = copy.deepcopy(stored)
                idx = stored.cells.index(cell)
                value = _moved(g[1], by)
                fresh.cells[idx].outputs[n] = _glue_output(g[0], value)
                ok = B.compare_chapter(stored, fresh, path.stem).ok
                assert ok == should_pass, (path.stem, g[0], quantity, g[1], value)
    if any(q != "exact" for q in T.CHAPTER_QUANTITIES[path.stem].values()):
        assert len(seen) >= 2, f"{path.stem}: expected glued values of at least two quantities, got {seen}"


def test_stage_book(tmp_path):
    fresh = tmp_path / "executed"
    fresh.mkdir()
    for p in CHAPTERS:
        (fresh / p.name).write_text(p.read_text())
    out = B.stage_book(fresh, tmp_path / "src")
    import yaml

    cfg = yaml.safe_load((out / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert (out / "book" / "_toc.yml").is_file()
    assert sorted(p.name for p in (out / "notebooks").glob("*.ipynb")) == [p.name for p in CHAPTERS]
    (fresh / CHAPTERS[0].name).unlink()
    with pytest.raises(FileNotFoundError, match="executed chapters"):
        B.stage_book(fresh, tmp_path / "src2")


def test_compare_folders_reports_a_chapter_not_executed(tmp_path):
    checks = B.compare_folders(tmp_path, only=["01"])
    assert len(checks) == 1 and not checks[0].ok and "not executed" in checks[0].problems[0]
    with pytest.raises(ValueError, match="only"):
        B.compare_folders(tmp_path, only=["99"])


def test_drift_and_its_footnote(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, value in ((a, "8.65"), (b, "8.71")):
        d.mkdir()
        nbformat.write(_chapter(distance=value), d / "05_lora_training.ipynb")
    res = B.drift(a, b)
    q = res["05_lora_training"]["video_distance_px"]
    assert q["values"] == 1 and q["max_abs"] == pytest.approx(0.06)
    path = tmp_path / "drift.json"
    path.write_text(json.dumps({"measurements": [{"a": "one run at 1 thread", "b": "one at 2 threads", "chapters": res},
                                                 {"a": "x", "b": "y", "chapters": {"05_lora_training": {}}}]}))
    note = B.drift_note("05_lora_training", path)
    assert "Between one run at 1 thread and one at 2 threads, 1 printed number differed" in note and "0.06" in note
    assert "Between x and y, this chapter printed every number the same." in note
    with pytest.raises(ValueError, match="not measured"):
        B.drift_note("01_svd_preliminaries", path)
    with pytest.raises(FileNotFoundError):
        B.drift_note("05_lora_training", tmp_path / "none.json")


def test_every_chapter_footnote_is_measured():
    """The stored drift measurement covers every chapter (the footnotes read it)."""
    measurements = json.loads(B.DRIFT_FILE.read_text())["measurements"]
    assert set(measurements[0]["chapters"]) == {p.stem for p in CHAPTERS}, "the first measurement covers every chapter"
    for m in measurements:
        for chapter, moved in m["chapters"].items():
            assert "exact" not in moved, f"{chapter}: an exact value differed between {m['a']} and {m['b']}"


def test_execute_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="jobs"):
        B.execute_chapters(tmp_path, jobs=0)
    with pytest.raises(ValueError, match="threads"):
        B.execute_chapters(tmp_path, threads=0)
