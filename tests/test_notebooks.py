"""Every chapter executes under papermill with its quick (default) parameters."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def _has_parameters_cell(nb) -> bool:
    return any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells if c.cell_type == "code")


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_executes_with_quick_parameters(path, tmp_path):
    import nbformat
    import papermill

    nb = nbformat.read(path, as_version=4)
    assert _has_parameters_cell(nb), f"{path.name} has no cell tagged 'parameters'"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.lstrip().startswith("# "), \
        f"{path.name} must open with a markdown title"
    papermill.execute_notebook(str(path), str(tmp_path / path.name), cwd=str(path.parent),
                               kernel_name="python3", progress_bar=False)


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
