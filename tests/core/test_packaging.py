"""The distribution: what `pip install .` puts into site-packages, and that it runs from there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds and installs a wheel

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "mtl_core" / "scenarios" / "definitions"


def test_wheel_ships_the_library_its_scenarios_and_the_command(tmp_path):
    # Build from a copy holding only what the build reads, so the checkout gets no build/.
    src = tmp_path / "src"
    for pkg in ("mtl_core", "app"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    dist = tmp_path / "dist"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = dist.glob("task_affinity_lab-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = next(
            z.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt")
        )
        z.extractall(tmp_path / "site")
    shipped = {
        n.rsplit("/", 1)[1] for n in names if n.startswith("mtl_core/scenarios/definitions/")
    }
    assert shipped == {p.name for p in DEFINITIONS.glob("*.json")} and shipped
    assert "task-affinity-lab = mtl_core.commands.cli:main" in entry_points
    # the library and the app: tests and benchmarks stay in the checkout
    tops = {n.split("/", 1)[0] for n in names}
    assert {"mtl_core", "app"} <= tops
    assert all(t in ("mtl_core", "app") or t.endswith(".dist-info") for t in tops)
    assert "app/streamlit_app.py" in names and "app/views/explore/page.py" in names

    # The installed copy finds its definitions from another folder (no checkout around).
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    r = subprocess.run(
        [sys.executable, "-m", "mtl_core", "scenarios", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(r.stdout)) == sorted(p.stem for p in DEFINITIONS.glob("*.json"))
    r = subprocess.run(
        [sys.executable, "-c", "import mtl_core; print(mtl_core.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(r.stdout.strip()).is_relative_to(tmp_path / "site")
    # `app` finds the installed app's script (not the checkout's)
    r = subprocess.run(
        [sys.executable, "-c", "from mtl_core.commands.app import app_script; print(app_script())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(r.stdout.strip()) == tmp_path / "site" / "app" / "streamlit_app.py", r.stderr


def test_help_names_the_command_that_was_typed(monkeypatch):
    from mtl_core.commands.cli import build_parser

    monkeypatch.setattr(sys, "argv", ["/venv/bin/task-affinity-lab", "--help"])
    assert build_parser().format_usage().startswith("usage: task-affinity-lab ")
    monkeypatch.setattr(sys, "argv", ["/src/mtl_core/__main__.py", "--help"])
    assert build_parser().format_usage().startswith("usage: python -m mtl_core ")
