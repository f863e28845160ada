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
