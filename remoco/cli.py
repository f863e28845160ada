"""Command line entry point: ``remoco train ...``, ``remoco demo``, ``remoco book``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="remoco", description="ReMoCo Book command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train the toy base or a controller (see `remoco train --help`)",
                   add_help=False)
    demo = sub.add_parser("demo", help="open the interactive drag demo in JupyterLab")
    demo.add_argument("--port", type=int, default=8888)
    demo.add_argument("--no-browser", action="store_true")
    args, rest = parser.parse_known_args(argv)

    if args.command == "train":
        from remoco.train import main as train_main

        return int(train_main(rest) or 0)
    if args.command == "demo":
        if rest:
            parser.error(f"unrecognised arguments: {' '.join(rest)}")
        notebook = _repo_root() / "notebooks" / "08_drag_demo.ipynb"
        if not notebook.exists():
            raise FileNotFoundError(f"the demo notebook is missing: {notebook}")
        cmd = [sys.executable, "-m", "jupyterlab", str(notebook), f"--port={args.port}",
               "--ServerApp.ip=127.0.0.1"]
        if args.no_browser:
            cmd.append("--no-browser")
        return subprocess.call(cmd)
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
