"""The background runner: real worker processes; finished, failed, cancelled, interrupted.

Tests taking ``backend`` run twice: with local worker processes and on a local Ray cluster
(the runs train in Ray tasks and stream their steps back to the runner, which writes them)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mtl_core.config import AffinityConfig, RunConfig, TrainConfig
from mtl_core.errors import LabError
from mtl_core.runner import Runner, check_finished
from mtl_core.store import Store

pytestmark = pytest.mark.slow  # every test starts worker processes


def cfg(steps: int = 12, **knobs) -> RunConfig:
    return RunConfig(knobs=knobs, train=TrainConfig(steps=steps, eval_every=5, device="cpu"))


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def backend(request) -> str:
    """ "" = local worker processes, else the address of the session's Ray cluster."""
    return request.getfixturevalue("ray_cluster") if request.param == "ray" else ""


@pytest.fixture
def make_runner(fake_runner, request):
    """``fake_runner`` (tests/conftest.py) on the test's ``backend`` (local unless asked)."""
    address = request.getfixturevalue("backend") if "backend" in request.fixturenames else ""

    def make(**kw) -> Runner:
        kw.setdefault("ray_address", address)
        return fake_runner(**kw)

    return make


def wait_for(pred, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_outcomes_from_several_threads(make_runner, backend):
    runner = make_runner(max_workers=3)
    configs = {
        "ok": cfg(),
        "nan": cfg(nan_at=5),
        "diverge": cfg(diverge_at=6),
        "crash": cfg(crash_at=4),
    }
    ids: dict[str, int] = {}

    def submit(key):  # several Streamlit sessions share one Runner
        ids[key] = runner.submit(configs[key], name=key)

    threads = [threading.Thread(target=submit, args=(k,)) for k in configs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = []
    ok = runner.wait(
        ids["ok"], on_progress=lambda i: seen.append((i.status, i.steps_done)), timeout=120
    )
    assert ok.status == "finished" and ok.error is None
    assert ok.steps_done == 12 and ok.progress == 1.0 and ok.finished >= ok.started
    assert ok.task_types == {"t0": "regression", "t1": "regression", "t2": "regression"}
    assert seen[-1] == ("finished", 12)
    assert [s for _, s in seen] == sorted(s for _, s in seen)
    steps, tasks, a = runner.store.affinity_steps(ids["ok"], "lookahead")
    np.testing.assert_array_equal(steps, np.arange(1, 13))
    assert a[4, 0, 0] == 5.0
    assert check_finished(ok) is ok

    nan = runner.wait(ids["nan"], timeout=120)
    assert nan.status == "failed" and "NaN" in nan.error and "step 5" in nan.error
    assert nan.steps_done == 4 and len(runner.store.affinity_steps(ids["nan"])[0]) == 4
    div = runner.wait(ids["diverge"], timeout=120)
    assert div.status == "failed" and "loss became NaN at step 6" in div.error
    assert div.steps_done == 5
    crash = runner.wait(ids["crash"], timeout=120)
    assert crash.status == "failed" and crash.error == "RuntimeError: boom at step 4"
    assert "Traceback" in crash.error_detail and crash.steps_done == 3
    with pytest.raises(LabError, match="failed: RuntimeError: boom"):
        check_finished(crash)
    assert [r.id for r in runner.list()] == sorted(ids.values())


def test_queue_and_cancel(make_runner, backend):
    runner = make_runner(max_workers=1, cancel_grace_s=5)
    slow = runner.submit(cfg(steps=5000, sleep=0.01))
    waiting = runner.submit(cfg())
    wait_for(lambda: runner.status(slow).steps_done >= 3)
    assert runner.status(waiting).status == "queued"  # the limit is 1
    assert runner.cancel(waiting).status == "cancelled"
    info = runner.cancel(slow)
    assert info.cancel_requested
    info = runner.wait(slow, timeout=30)
    assert info.status == "cancelled" and info.error == "cancelled by the user"
    assert 3 <= info.steps_done < 5000
    assert len(runner.store.affinity_steps(slow)[0]) == info.steps_done  # earlier steps kept
    assert runner.cancel(slow).status == "cancelled"  # cancelling again changes nothing


def test_stuck_worker_is_terminated_after_the_grace_period(make_runner, backend):
    runner = make_runner(cancel_grace_s=0.5)
    rid = runner.submit(cfg(steps=10, stall_at=3))
    wait_for(lambda: runner.status(rid).steps_done >= 2)
    runner.cancel(rid)
    info = runner.wait(rid, timeout=30)
    assert info.status == "cancelled" and "grace period" in info.error
    assert info.steps_done == 2


def test_sigkilled_worker_is_interrupted(make_runner, backend):
    runner = make_runner()
    assert runner.on_ray == bool(backend)
    rid = runner.submit(cfg(steps=5000, sleep=0.01))
    wait_for(lambda: runner.status(rid).steps_done >= 3)
    host, pid = runner.worker_location(rid)
    assert host == socket.gethostname() and pid != os.getpid()
    if not backend:
        assert pid == runner.status(rid).worker_pid
    os.kill(pid, signal.SIGKILL)
    info = runner.wait(rid, timeout=60)
    assert info.status == "interrupted" and "steps logged are kept" in info.error
    assert ("the Ray worker on " if backend else "was killed (SIGKILL)") in info.error
    steps, _, _ = runner.store.affinity_steps(rid)
    assert len(steps) == info.steps_done >= 3
    assert runner.worker_location(rid) is None


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_restart_recovers_from_the_store(tmp_path, make_runner):
    """A runner that died left one run 'running' (its worker gone) and one 'queued'."""
    store = Store(tmp_path / "store.sqlite")
    orphan = store.create_run(name="orphan", config=cfg().to_dict(), steps_total=12)
    store.claim_queued(5, runner_pid=dead_pid())
    store.set_worker(orphan, dead_pid())
    alive = store.create_run(name="alive elsewhere", steps_total=12)
    store.claim_queued(5, runner_pid=os.getpid())
    store.set_worker(alive, os.getpid())  # a live process: must be left alone
    external = store.create_run(name="written by a user's script", status="running")
    left = store.create_run(name="left queued", config=cfg().to_dict(), steps_total=12)
    assert store.get_run(orphan).host == socket.gethostname()

    runner = make_runner(store=store, max_workers=2)
    info = runner.status(orphan)
    assert info.status == "interrupted" and "found at restart" in info.error
    assert runner.status(alive).status == "running"
    assert runner.status(external).status == "running"  # not the runner's to judge
    assert runner.wait(left, timeout=60).status == "finished"
    store.set_status(alive, "finished")
    store.set_status(external, "finished")


def test_wait_without_supervisor_thread_and_timeout(make_runner, backend):
    runner = make_runner(start=False)
    rid = runner.submit(cfg(steps=3))
    assert runner.wait(rid, timeout=60).status == "finished"  # wait() drives the queue itself
    rid2 = runner.submit(cfg(steps=1000, sleep=0.05))
    with pytest.raises(LabError, match="still"):
        runner.wait(rid2, timeout=0.3, cancel_on_interrupt=False)
    runner.cancel(rid2)
    assert runner.wait(rid2, timeout=30).status == "cancelled"


def test_train_fn_must_be_importable(tmp_path):
    with pytest.raises(LabError, match="module-level"):
        Runner(tmp_path / "s.sqlite", train_fn=lambda cfg, on_step: None, start=False)
    with pytest.raises(LabError, match="module:function|package.module:function"):
        Runner(tmp_path / "s.sqlite", train_fn="no_colon", start=False)


def test_real_training_run_end_to_end(make_runner, backend):
    """The lab's own training through the runner, on a tiny config."""
    pytest.importorskip("torch")
    runner = make_runner(train_fn=None)
    rid = runner.submit(
        RunConfig(train=TrainConfig(steps=30, device="cpu"), affinity=AffinityConfig(every=5)),
        name="tiny",
    )
    info = check_finished(runner.wait(rid, timeout=300))
    assert info.steps_done == 30 and len(info.tasks) >= 2 and info.task_types
    steps, tasks, a = runner.store.affinity_steps(rid, "lookahead")
    np.testing.assert_array_equal(steps, [1, 6, 11, 16, 21, 26])
    assert np.isfinite(a).all()
    m = runner.store.metrics(rid)
    assert {"batch", "train", "val", "test"} <= set(m["split"])


def test_warm_standby_trains_the_next_run_niced_and_is_replaced(make_runner):
    runner = make_runner(
        warm=1, nice=3, preload=("tests.helpers.runner_fakes", "no_such_module_here")
    )
    wait_for(lambda: len(runner.standby_pids()) == 1)
    standby = runner.standby_pids()[0]
    base = os.getpriority(os.PRIO_PROCESS, 0)
    wait_for(lambda: os.getpriority(os.PRIO_PROCESS, standby) == base + 3)  # once it started
    rid = runner.submit(cfg())
    info = runner.wait(rid, timeout=60)
    assert info.status == "finished" and info.steps_done == 12  # a bad preload is harmless
    assert info.worker_pid == standby  # the waiting process trained it
    wait_for(lambda: runner.standby_pids() and runner.standby_pids()[0] != standby)
    # a standby-started worker that dies is reported like any other
    slow = runner.submit(cfg(steps=5000, sleep=0.01))
    wait_for(lambda: runner.status(slow).steps_done >= 3)
    os.kill(runner.status(slow).worker_pid, signal.SIGKILL)
    assert runner.wait(slow, timeout=30).status == "interrupted"
    waiting = runner.standby_pids()
    runner.shutdown(timeout=5)
    assert waiting and runner.standby_pids() == []
    for pid in waiting:
        wait_for(
            lambda pid=pid: (
                not Path(f"/proc/{pid}").exists()
                or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
            ),
            timeout=10,
        )
