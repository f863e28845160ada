"""The drag demo driven through JupyterLab by a real headless Chromium (``make test-browser``).

The test starts JupyterLab on 127.0.0.1 (free port, random token, no network: news, update checks,
announcements and the extension manager are switched off) on a temporary copy of
``notebooks/08_drag_demo.ipynb``, runs all cells from the *Run* menu, brushes the motion region and
draws a trajectory with the mouse on the widget's canvas (switching modes with the widget's buttons),
clicks *Animate*, and checks that a ``<video>`` appears and that the kernel's state (written by the
widget to ``$REMOCO_DEMO_STATE_FILE``) holds the drawn trajectory at the expected model coordinates.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``) and the ``playwright`` Python package (no
``playwright install``: the system Chromium is used). Skips when they are missing, unless
``REMOCO_REQUIRE_BROWSER=1``, where it fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, free_port, launch_chromium, missing_browser, require

pytestmark = pytest.mark.browser

NOTEBOOK = ROOT / "notebooks" / "08_drag_demo.ipynb"
MAGNIFICATION = 6  # remoco.drag.DEFAULT_MAGNIFICATION (the notebook's default)
TIME_LIMIT_S = 180
# REMOCO_UPDATE_ASSETS=1: also save the screenshot of the widget as the book's shipped asset
ASSET = ROOT / "data" / "demo" / "drag_demo_widget.png"


def _require_browser():
    require(missing_browser("jupyterlab"))


def _start_lab(tmp: Path, state_file: Path):
    port, token = free_port(), secrets.token_hex(16)
    cfg = tmp / "jupyter_config"
    (cfg / "labconfig").mkdir(parents=True)
    # no "news?" pop-up, no announcement fetches
    (cfg / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    # render every cell (no windowing: off-screen cells would otherwise be hidden from the test)
    tracker = tmp / "lab_settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(cfg), JUPYTERLAB_SETTINGS_DIR=str(tmp / "lab_settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "lab_workspaces"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               REMOCO_DEMO_STATE_FILE=str(state_file), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--port-retries=0",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp / 'work'}",
           "--ServerApp.open_browser=False", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers / CI run as root
        cmd.append("--allow-root")
    log = open(tmp / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp / "work")
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited early:\n{(tmp / 'jupyterlab.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            proc.terminate()
            raise RuntimeError("JupyterLab did not answer within 60 s")
        time.sleep(0.5)
    return proc, base, token, log


def _save_asset(png: Path, dest: Path, max_bytes: int = 300_000) -> None:
    """Copy the widget screenshot to the shipped asset path, quantised to a palette if it is too big."""
    from PIL import Image

    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, dest)
    if dest.stat().st_size > max_bytes:
        img = Image.open(png).convert("RGB")
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(dest, optimize=True)
    if dest.stat().st_size > max_bytes:
        raise AssertionError(f"{dest} is {dest.stat().st_size} bytes even quantised (limit {max_bytes})")


def _wait_state(state_file: Path, predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if state_file.exists():
            try:
                last = json.loads(state_file.read_text())
            except json.JSONDecodeError:
                last = None
            if last is not None and predicate(last):
                return last
        time.sleep(0.25)
    raise AssertionError(f"kernel state never showed {what}; last state: {last}")


def _drag(page, points, steps=6):
    page.mouse.move(*points[0])
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*p, steps=steps)
    page.mouse.up()


def _run_all_cells(page, attempts=3):
    """Run > Run All Cells; retried if no cell starts (a click can land before the panel is ready)."""
    for _ in range(attempts):
        page.click(".jp-NotebookPanel .jp-Cell")  # focus the notebook
        page.click(".lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
        try:
            page.wait_for_function(
                "document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output').length > 0"
                " || document.querySelector(\".jp-Notebook-ExecutionIndicator[data-status='busy']\") !== null",
                timeout=15_000)
            return
        except Exception:  # noqa: BLE001 - playwright TimeoutError: try again
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells did not start the notebook")


def test_drag_demo_in_jupyterlab(tmp_path):
    _require_browser()
    from playwright.sync_api import sync_playwright

    t0 = time.time()
    assert NOTEBOOK.exists(), f"missing {NOTEBOOK}"
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)  # JupyterLab may autosave: never touch the repo copy
    state_file = tmp_path / "demo_state.json"
    shot = tmp_path / "drag_demo.png"
    widget_shot = tmp_path / "drag_demo_widget.png"
    proc, base, token, log = _start_lab(tmp_path, state_file)
    console: list[str] = []
    page = None
    try:
        with sync_playwright() as pw:
            try:
                browser = launch_chromium(pw)
                # twice the pixels per CSS px: the widget's screenshot stays sharp at the book's column width
                page = browser.new_page(viewport={"width": 1400, "height": 1500}, device_scale_factor=2)
                page.set_default_timeout(60_000)
                page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
                page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
                page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
                _run_all_cells(page)

                demo = page.wait_for_selector(".remoco-drag-demo", state="attached", timeout=120_000)
                demo.scroll_into_view_if_needed()
                canvas = page.locator(".remoco-drag-demo canvas").last
                canvas.scroll_into_view_if_needed()
                page.wait_for_timeout(500)
                box = canvas.bounding_box()
                assert box and box["width"] > 100, f"canvas not laid out: {box}"
                scale = box["width"] / (64 * MAGNIFICATION)  # CSS px per canvas px (1 unless zoomed)

                def at(u, v):  # canvas pixel -> page coordinates
                    return box["x"] + u * scale, box["y"] + v * scale

                def model(u, v):
                    return u / MAGNIFICATION - 0.5, v / MAGNIFICATION - 0.5

                # 1. brush the motion region
                page.click(".remoco-drag-demo button:has-text('Brush')")
                _drag(page, [at(150, 120), at(190, 130), at(230, 140)])
                st = _wait_state(state_file, lambda s: s["state"]["brush_pixels"] > 0, 30, "a brushed region")

                # 2. draw a trajectory
                page.click(".remoco-drag-demo button:has-text('Trajectory')")
                start, mid, end = (190, 130), (250, 130), (300, 190)
                _drag(page, [at(*start), at(*mid), at(*end)])
                st = _wait_state(state_file, lambda s: len(s["state"]["drawn_trajectories"]) == 1, 30,
                                 "one drawn trajectory")
                traj = st["state"]["drawn_trajectories"][0]
                for got, want in ((traj[0], model(*start)), (traj[-1], model(*end))):
                    assert abs(got[0] - want[0]) <= 0.5 and abs(got[1] - want[1]) <= 0.5, (traj, start, end)

                # 3. animate: from the click to the video on screen
                t_click = time.time()
                page.click(".remoco-drag-demo button:has-text('Animate')")
                page.wait_for_selector(".remoco-drag-demo video", timeout=120_000)
                animate_s = time.time() - t_click
                st = _wait_state(state_file, lambda s: s["video_frames_shape"] is not None, 30, "a generated video")
                assert st["video_frames_shape"][1:] == [64, 64, 3]
                assert st["video_frames_shape"][0] == st["num_frames"]
                assert st["message_kind"] in ("info", "warning"), st["message"]
                assert "Unexpected error" not in page.inner_text(".remoco-drag-demo")
                assert page.locator(".remoco-drag-demo a[download='inputs.json']").count() == 1

                demo.scroll_into_view_if_needed()
                page.screenshot(path=str(shot), full_page=True)
                # the widget alone (brushed region, trajectory, generated video): the book's figure of it, laid
                # out at about the book's column width so that its text is read at its own size there
                page.evaluate("el => { el.style.maxWidth = '800px'; }", demo)
                page.wait_for_timeout(1500)  # let the looping video show a frame
                page.locator(".remoco-drag-demo").first.screenshot(path=str(widget_shot))
                browser.close()
            except Exception:
                if page is not None and not page.is_closed():
                    try:
                        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                        print(f"\nfailure screenshot: {tmp_path / 'failure.png'}")
                    except Exception as shot_exc:  # noqa: BLE001 - never mask the test's own error
                        print(f"\n(no failure screenshot: {shot_exc})")
                print("browser console (last 30):\n" + "\n".join(console[-30:]))
                print(f"JupyterLab log: {tmp_path / 'jupyterlab.log'}\n"
                      + (tmp_path / "jupyterlab.log").read_text()[-2000:])
                raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    out = ROOT / "_build" / "screenshots" / "drag_demo.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, out)
    if os.environ.get("REMOCO_UPDATE_ASSETS") == "1":
        _save_asset(widget_shot, ASSET)
        print(f"\nasset updated: {ASSET} ({ASSET.stat().st_size // 1024} KB)")
    wall = time.time() - t0
    timing = ROOT / "_build" / "browser" / "animate_latency.json"
    timing.parent.mkdir(parents=True, exist_ok=True)
    timing.write_text(json.dumps({"animate_click_to_video_s": round(animate_s, 2), "cpu_count": os.cpu_count()}) + "\n")
    print(f"\nscreenshot: {shot}\nscreenshot: {out}\nAnimate, click to video on screen: {animate_s:.2f} s"
          f"\nbrowser test wall time: {wall:.1f} s")
    assert wall < TIME_LIMIT_S, f"browser test took {wall:.0f} s (limit {TIME_LIMIT_S} s)"
