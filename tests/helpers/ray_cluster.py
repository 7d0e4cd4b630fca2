"""A local Ray cluster for the tests: ``ray start --head --block`` on 127.0.0.1 (a free port,
two CPUs, no dashboard) in its own process group, stopped by that group's id at the end.

Everything stays on the loopback interface (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray
use 127.0.0.1 as the node address; it is read when Ray is imported, so it is set first).
Workers import the lab and the test fakes (``tests.helpers.runner_fakes``) through
``PYTHONPATH`` (the project root).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRayCluster:
    """A Ray head on this machine; :attr:`address` is ``127.0.0.1:PORT``."""

    def __init__(self, cpus: int = 2) -> None:
        os.environ.update(LOOPBACK_ENV)  # before this process imports Ray
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = tempfile.mkdtemp(prefix="mtl-ray-")
        self.log = Path(self.temp) / "head.log"
        paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, **LOOPBACK_ENV, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        ray_cli = Path(sys.executable).with_name("ray")
        cmd = [
            str(ray_cli) if ray_cli.exists() else "ray",
            "start",
            "--head",
            "--block",
            f"--port={self.port}",
            f"--num-cpus={cpus}",
            "--num-gpus=0",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self.temp}",
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def connect(self, timeout: float = 180.0) -> None:
        """Connect this process (the driver) once the head answers."""
        import ray

        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > end:
                    raise RuntimeError(f"no Ray head after {timeout:.0f} s") from None
                time.sleep(0.5)
        while True:  # the GCS port opens before the head's node has registered
            try:
                ray.init(address=self.address, logging_level="WARNING", log_to_driver=False)
                return
            except ConnectionError:
                if time.monotonic() > end:
                    raise
                time.sleep(1.0)

    def stop(self) -> None:
        """Disconnect, then stop the head's process group (SIGTERM, then SIGKILL)."""
        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
        try:  # the group: raylet, GCS and the workers it started
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        shutil.rmtree(self.temp, ignore_errors=True)
