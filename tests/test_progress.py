"""REMOCO_PROGRESS: the book build turns tqdm bars off (no ipywidgets state in the executed chapters)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, mode: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("REMOCO_PROGRESS", "TQDM_DISABLE")}
    if mode is not None:
        env["REMOCO_PROGRESS"] = mode
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


PROBE = """
import tqdm.notebook, tqdm.std
{imports}
import tqdm.auto
bar = tqdm.auto.tqdm(total=3, disable=False)   # asked for explicitly, as diffusers' set_progress_bar_config does
nb = tqdm.notebook.tqdm(total=3, disable=False, display=False)
print(type(bar).__module__, bar.disable, nb.disable)
"""


@pytest.mark.parametrize("first_remoco", [True, False])
def test_off_disables_every_bar_even_explicitly_enabled_ones(first_remoco):
    imports = "import remoco" if first_remoco else "from tqdm.auto import tqdm as early; import remoco"
    out = _run(PROBE.format(imports=imports), "off")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[1:] == ["True", "True"], out.stdout


def test_text_makes_auto_bars_plain_text_and_auto_leaves_tqdm_alone():
    out = _run(PROBE.format(imports="import remoco"), "text")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["tqdm.std", "False"], out.stdout
    out = _run(PROBE.format(imports="import remoco"), None)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[1:] == ["False", "False"], out.stdout


def test_unknown_mode_is_an_error():
    out = _run("import remoco", "sometimes")
    assert out.returncode != 0 and "REMOCO_PROGRESS" in out.stderr
