import subprocess
import sys

import pytest

import remoco


def test_lazy_submodules_are_listed_and_unknown_names_fail():
    assert "conditions" in dir(remoco)
    with pytest.raises(AttributeError, match="no_such_thing"):
        remoco.no_such_thing


def test_import_is_cheap():
    # importing the package must not pull torch or diffusers in (chapters import submodules explicitly)
    code = "import sys, remoco; print('torch' in sys.modules, 'diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_cli_rejects_unknown_command():
    from remoco.cli import main

    with pytest.raises(SystemExit):
        main(["no-such-command"])
