"""``app``: start the Streamlit app (``python -m streamlit run <app>/streamlit_app.py``) in a
subprocess, from the checkout or from the installed wheel (which ships the ``app`` package).

The library never imports the app or Streamlit: the app is found by ``importlib.util.find_spec``
(which locates the package without running it) and run in its own process.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from mtl_core.errors import LabError


def add_parser(sub) -> None:
    p = sub.add_parser("app", help="start the Streamlit app (needs the [app] extra)")
    p.add_argument("--port", type=int, default=None, help="port (Streamlit's default: 8501)")
    p.add_argument("--store", default=None, help="store path (sets MTL_LAB_STORE for the app)")
    p.set_defaults(func=run)


def app_script() -> Path:
    """Path of the app's ``streamlit_app.py``; LabError when the app is not installed."""
    spec = importlib.util.find_spec("app")
    locs = list(spec.submodule_search_locations or []) if spec else []
    for loc in locs:
        script = Path(loc) / "streamlit_app.py"
        if script.is_file():
            return script
    raise LabError("the app is not installed here (pip install 'task-affinity-lab[app]')")


def command(args: argparse.Namespace) -> list[str]:
    """The argv that starts the app."""
    if importlib.util.find_spec("streamlit") is None:
        raise LabError("Streamlit is not installed (pip install 'task-affinity-lab[app]')")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_script())]
    if args.port is not None:
        if not 0 < int(args.port) < 65536:
            raise LabError(f"--port must be 1..65535, got {args.port}")
        cmd += ["--server.port", str(int(args.port))]
    return cmd


def run(args: argparse.Namespace) -> int:
    import os

    env = dict(os.environ)
    if args.store:
        env["MTL_LAB_STORE"] = str(Path(args.store).resolve())
    cmd = command(args)
    print(f"starting the app: {' '.join(cmd[1:])}", flush=True)
    return subprocess.call(cmd, env=env)
