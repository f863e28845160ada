"""Static checks of the chapters (execution and output checks: ``remoco.book_check`` in ``make test``)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def _has_parameters_cell(nb) -> bool:
    return any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells if c.cell_type == "code")


def _read(path):
    import nbformat

    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_structure_as_a_reader_gets_it(path):
    """Title and question first, a papermill parameters cell, the set-up cell hidden and fixing seeds and threads
    (``setup_chapter``), output-check markers as tags (not comments, and not nbval's tag), an **Answer.** at the
    end, and no word of the project's bookkeeping in the prose."""
    import re

    nb = _read(path)
    assert _has_parameters_cell(nb), f"{path.name} has no cell tagged 'parameters'"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), \
        f"{path.name} must open with a markdown title"
    assert "**Question.**" in first.source, f"{path.name}: the first cell must state the chapter's question"
    last_md = [c for c in nb.cells if c.cell_type == "markdown"][-1]
    assert last_md.source.lstrip().startswith("**Answer.**"), f"{path.name} must end with an **Answer.** paragraph"
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = next(c for c in code if "parameters" not in c.metadata.get("tags", []))
    assert {"remove-input", "hide-input"} & set(setup.metadata.get("tags", [])), \
        f"{path.name}: the set-up cell (first code cell after the parameters) must be hidden"
    assert "setup_chapter(" in setup.source, f"{path.name}: the set-up cell must call setup_chapter (seeds, threads)"
    assert not [c for c in code if "NBVAL_CHECK_OUTPUT" in c.source], f"{path.name}: use the check-output tag"
    assert not [c for c in code if "nbval-check-output" in c.metadata.get("tags", [])], \
        f"{path.name}: outputs are checked by remoco.book_check: tag cells 'check-output', not 'nbval-check-output'"
    prose = " ".join(c.source for c in nb.cells if c.cell_type == "markdown")
    prose = re.sub(r"```.*?```|`[^`]*`", " ", prose, flags=re.S)  # code (argument names) is not prose
    words = re.findall(r"\b(issues?|targets?|sessions?)\b", prose, flags=re.I)
    assert not words, f"{path.name}: the book speaks of the paper and the project, not of {sorted(set(words))}"


def _code_cells(path):
    import nbformat

    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def _remoco_names_used(source: str):
    """``(module, name)`` for every ``from remoco.M import name`` and every ``alias.name`` where ``alias`` is
    bound to a remoco module in this code (``from remoco import M as alias``, ``import remoco.M as alias``)."""
    import ast

    tree = ast.parse(source)
    aliases, used = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "remoco":
            for a in node.names:
                if node.module == "remoco":
                    aliases[a.asname or a.name] = f"remoco.{a.name}"
                else:
                    used.append((node.module, a.name))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("remoco.") and a.asname:
                    aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            used.append((aliases[node.value.id], node.attr))
    return used


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapters_use_public_names_only(path):
    """A chapter calls no ``_private`` helper, reads no private attribute, and every remoco name it uses is
    in its module's ``__all__`` (so the book shows the library's public API)."""
    import importlib
    import re

    bad, cells = [], []
    for n, src in enumerate(_code_cells(path)):
        code = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
        bad += [f"cell {n}: .{m}" for m in re.findall(r"\.(_[A-Za-z]\w*)", code) if not m.startswith("__")]
        cells.append(code)
    for module, name in sorted(set(_remoco_names_used("\n".join(cells)))):  # aliases bound in any cell
        mod = importlib.import_module(module)
        if name not in getattr(mod, "__all__", ()) and not isinstance(getattr(mod, name, None), type(mod)):
            bad.append(f"{module}.{name} is not in {module}.__all__")
    assert not bad, f"{path.name}: " + "; ".join(bad)


def test_public_name_check_catches_private_use():
    """The check above can fail: a private helper, a private attribute and a name missing from __all__."""
    assert _remoco_names_used("from remoco import train as T\nT._x()\nT.train(1)") == \
        [("remoco.train", "_x"), ("remoco.train", "train")]
    assert _remoco_names_used("from remoco.evaluate import trajectory_distance") == \
        [("remoco.evaluate", "trajectory_distance")]


def test_book_pages_quote_only_values_the_chapters_glue():
    """Every ``{glue:text}`path::key:fmt``` in the book's own pages names a chapter and a value it glues (the
    book build would otherwise leave a blank with only a warning)."""
    import re

    from remoco.book_check import glued_values

    refs = 0
    for page in sorted((ROOT / "book").glob("*.md")):
        for rel, key in re.findall(r"\{glue:text\}`([^`:]+\.ipynb)::([A-Za-z0-9_]+)(?::[^`]*)?`", page.read_text()):
            nb = (page.parent / rel).resolve()
            assert nb.is_file(), f"{page.name}: no chapter {rel}"
            assert key in glued_values(_read(nb)), f"{page.name}: {rel} glues no {key!r}"
            refs += 1
    assert refs >= 10, "the introduction's summary quotes the chapters' results"
