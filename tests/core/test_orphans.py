"""No orphans (issue 23, item 5): when the process holding a Runner is killed (SIGKILL, as
when the app's server is killed), its worker, its standby workers and multiprocessing's
resource tracker all stop within a few seconds. Real processes, real kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtl_core.runner.procs import pid_alive

pytestmark = pytest.mark.slow  # SIGKILLs parent processes and watches their children

ROOT = Path(__file__).resolve().parents[2]

# The runner's process: one run training (slowly) in a worker, two standbys waiting; it writes
# the pids of all three and of the resource tracker, then sleeps until it is killed.
SCRIPT = """
import json, sys, time
import multiprocessing.resource_tracker as rt
from mtl_core.config import RunConfig, TrainConfig
from mtl_core.runner import Runner

if __name__ == "__main__":
    store, out = sys.argv[1], sys.argv[2]
    runner = Runner(store, train_fn="tests.helpers.store_faults:slow_train", warm=2,
                    max_workers=1, poll_s=0.05)
    rid = runner.submit(RunConfig(train=TrainConfig(steps=100000, eval_every=100000,
                                                    device="cpu")))
    end = time.monotonic() + 150
    while time.monotonic() < end:
        info = runner.store.get_run(rid)
        standby = runner._standby.pids()
        if info.worker_pid and info.steps_done >= 1 and len(standby) >= 2:
            break
        time.sleep(0.1)
    pids = {"worker": info.worker_pid, "standby": standby, "tracker": rt._resource_tracker._pid}
    Path = __import__("pathlib").Path
    Path(out + ".tmp").write_text(json.dumps(pids))
    Path(out + ".tmp").rename(out)
    time.sleep(600)
"""


def _wait(pred, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkilled_runner_leaves_no_worker_standby_or_resource_tracker(tmp_path):
    script = tmp_path / "runner_main.py"
    script.write_text(SCRIPT)
    out = tmp_path / "pids.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MTL_TEST_SLEEP="0.2")
    with open(tmp_path / "err.txt", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "s.sqlite"), str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    children: list[int] = []
    try:

        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "err.txt").read_text()[-2000:]
            return out.exists()

        _wait(ready, 180, "the worker and two standbys")
        pids = json.loads(out.read_text())
        children = [pids["worker"], *pids["standby"], pids["tracker"]]
        assert len(pids["standby"]) == 2 and all(children), pids
        assert all(pid_alive(p) for p in children), pids
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        started = time.monotonic()
        _wait(lambda: not any(pid_alive(p) for p in children), 10, f"children to stop: {pids}")
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for pid in children:
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


POOL_SCRIPT = """
import json, sys, time
from pathlib import Path
from mtl_core.experiments.executors import LocalProcessExecutor

if __name__ == "__main__":
    out = sys.argv[1]
    with LocalProcessExecutor(2) as ex:
        futures = [ex._pool.submit(time.sleep, 600) for _ in range(2)]
        while len(ex._pool._processes) < 2:
            time.sleep(0.05)
        time.sleep(0.5)
        Path(out + ".tmp").write_text(json.dumps(list(ex._pool._processes)))
        Path(out + ".tmp").rename(out)
        time.sleep(600)
"""


@pytest.mark.slow
def test_sigkilled_evaluation_leaves_no_pool_worker(tmp_path):
    """``evaluate``'s local worker processes (a ProcessPoolExecutor) busy in a job: killing
    the process that started them ends them too."""
    script = tmp_path / "pool_main.py"
    script.write_text(POOL_SCRIPT)
    out = tmp_path / "pids.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(tmp_path / "err.txt", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(out)], cwd=ROOT, env=env, stderr=err
        )
    children: list[int] = []
    try:

        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "err.txt").read_text()[-2000:]
            return out.exists()

        _wait(ready, 120, "two busy pool workers")
        children = json.loads(out.read_text())
        assert len(children) == 2 and all(pid_alive(p) for p in children), children
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        _wait(lambda: not any(pid_alive(p) for p in children), 5, f"workers to stop: {children}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for pid in children:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
