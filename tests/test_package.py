import subprocess
import sys

import pytest

import remoco


def test_import_is_cheap():
    # importing the package must not pull torch or diffusers in (chapters import submodules explicitly)
    code = "import sys, remoco; print('torch' in sys.modules, 'diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_package_docstring_lists_every_module():
    from pathlib import Path

    names = {p.stem for p in Path(remoco.__file__).parent.glob("*.py") if not p.stem.startswith("_")}
    listed = {n for n in names if f"``{n}``" in remoco.__doc__}
    assert listed == names, f"modules missing from remoco/__init__.py's table: {sorted(names - listed)}"


def test_cli_rejects_unknown_command():
    from remoco.cli import main

    with pytest.raises(SystemExit):
        main(["no-such-command"])
