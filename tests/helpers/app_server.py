"""A real ``streamlit run`` of the app on a free local port, for the browser tests and the
benchmarks that drive it: started, waited for (``/_stcore/health``), stopped."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fake_train_env(store_path: Path, settings: Path | None = None) -> dict[str, str]:
    """The environment of a test server over the store at ``store_path`` (and the settings
    file ``settings``): no standby workers, no lessons held ahead, and runs trained by the
    tests' fast fake."""
    import os

    env = {
        **os.environ,
        "MTL_LAB_STORE": str(store_path),
        "MTL_LAB_WARM_WORKERS": "0",
        "MTL_LAB_TRAIN_FN": "tests.helpers.app_fixtures:fake_train",
        "MTL_LAB_LESSON_AHEAD": "off",  # no lessons ahead in a test's run lists
    }
    if settings is not None:
        env["MTL_LAB_SETTINGS"] = str(settings)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(
    env: Mapping[str, str], log_path: Path, *, timeout_s: float = 60.0
) -> Iterator[str]:
    """Yield the base URL of the app started with ``env``; its output goes to ``log_path``.
    RuntimeError (with the log's tail) when it is not healthy within ``timeout_s``."""
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "app" / "streamlit_app.py"),
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=str(ROOT),
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + timeout_s
            while not _healthy(url):
                if time.time() > deadline:
                    raise RuntimeError(
                        "streamlit did not become healthy: " + Path(log_path).read_text()[-2000:]
                    )
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False
