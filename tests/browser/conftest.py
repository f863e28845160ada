"""Shared helpers of the browser tests: the system Chromium driven by the ``playwright`` package.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``) and the ``playwright`` Python package (no
``playwright install``: the system Chromium is used). A test skips when they are missing, unless
``REMOCO_REQUIRE_BROWSER=1``, where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# no background fetches of its own (component updates, sync, first-run pages): every request a page
# makes is the page's
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def require(missing: list[str], what: str = "browser test") -> None:
    """Skip (or fail with ``REMOCO_REQUIRE_BROWSER=1``) when anything in ``missing`` is missing."""
    if missing:
        msg = f"{what} needs " + ", ".join(missing)
        if os.environ.get("REMOCO_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " (REMOCO_REQUIRE_BROWSER=1)")
        pytest.skip(msg)


def missing_browser(*modules: str) -> list[str]:
    """What the browser tests need and this machine lacks (plus the Python ``modules`` named)."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    for mod in ("playwright", *modules):
        if importlib.util.find_spec(mod) is None:
            missing.append(f"the {mod} Python package (pip install {mod})")
    return missing


def launch_chromium(pw):
    """Launch the system Chromium headless with the project's arguments."""
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
