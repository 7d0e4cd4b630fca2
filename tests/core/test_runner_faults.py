"""Faults during training (issue 13, items 11 and 12): the store's disk fills up mid-run, the
command line is killed (SIGKILL) or stopped (SIGTERM). Local worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtl_core.commands.cli import main
from mtl_core.config import RunConfig, TrainConfig
from mtl_core.runner import Runner
from mtl_core.runner.procs import pid_alive
from mtl_core.store import TERMINAL, Store
from tests.helpers.store_faults import full_disk_train, make_full, slow_train

pytestmark = pytest.mark.slow  # every test starts worker or CLI processes

ROOT = Path(__file__).resolve().parents[2]


def wait_for(pred, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def count_passes(runner: Runner) -> list[float]:
    """Record each supervisor pass of ``runner`` (its ``tick``, ended well or not) as the
    time it ended: a test waits for passes, not for a guessed number of seconds."""
    passes: list[float] = []
    tick = runner.tick

    def counted() -> None:
        try:
            tick()
        finally:
            passes.append(time.monotonic())

    runner.tick = counted  # the supervisor thread looks it up on every pass
    return passes


def cfg(steps: int = 8) -> RunConfig:
    return RunConfig(train=TrainConfig(steps=steps, eval_every=5, device="cpu"))


# ----------------------------------------------------------------------------- disk full


@pytest.mark.parametrize("all_writes", [False, True], ids=["steps-fail", "every-write-fails"])
def test_full_disk_fails_the_run_and_the_cli_says_so_once(tmp_path, monkeypatch, capfd, all_writes):
    """``train --store`` into a store whose disk fills at step 3: the run ends ``failed``
    with the reason, steps 1-2 kept, one ``error:`` line, exit 2, no supervisor noise."""
    monkeypatch.setattr(
        "mtl_core.runner.worker.DEFAULT_TRAIN", f"{full_disk_train.__module__}:full_disk_train"
    )
    monkeypatch.setenv("MTL_TEST_FULL_AT", "3")
    monkeypatch.setenv("MTL_TEST_FULL_ALL", "1" if all_writes else "0")
    store = tmp_path / "s.sqlite"
    argv = ["train", "--scenario", "synthetic", "--steps", "6", "--store", str(store)]
    code = main(argv)
    err = capfd.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(errors) == 1, err
    assert "Traceback" not in err and "supervisor error" not in err, err
    info = Store(store).get_run(1)
    assert info.status == "failed" and info.steps_done == 2
    assert ("disk is full" in info.error) and ("disk is full" in errors[0])
    assert Store(store).affinity_steps(1, "lookahead")[0].tolist() == [1, 2]


def test_runner_that_cannot_write_either_fails_the_run_in_memory(tmp_path, monkeypatch, capfd):
    """Nothing can be written, not even by the supervisor: the run's outcome is kept in the
    runner (``wait`` returns it ``failed``), the supervisor does not spin or repeat itself,
    and the outcome reaches the store once space is back."""
    monkeypatch.setenv("MTL_TEST_FULL_AT", "3")
    monkeypatch.setenv("MTL_TEST_FULL_ALL", "1")
    monkeypatch.setenv("MTL_TEST_SLEEP", "0.3")
    runner = Runner(tmp_path / "s.sqlite", train_fn=full_disk_train, poll_s=0.05, max_workers=1)
    passes = count_passes(runner)
    try:
        rid = runner.submit(cfg())
        wait_for(lambda: runner.status(rid).steps_done >= 1, what="the first step")
        undo = make_full(path=runner.store.path)  # this process too, from now on
        try:
            info = runner.wait(rid, timeout=60)
            assert info.status == "failed" and "disk is full" in info.error
            assert runner.store.get_run(rid).status == "running"  # not written (yet)
            seen = len(passes)
            # several supervisor passes after the outcome: none may retry or print
            wait_for(lambda: len(passes) >= seen + 3, 30, "three more supervisor passes")
            assert runner.store.get_run(rid).status == "running"  # still not retried
        finally:
            undo()
        runner._pending.retry_s = 0.0
        wait_for(lambda: runner.store.get_run(rid).status == "failed", 30, "the saved outcome")
    finally:
        runner.shutdown(timeout=5)
    err = capfd.readouterr().err
    assert "supervisor error" not in err and "Traceback" not in err, err
    saved = Store(tmp_path / "s.sqlite").get_run(rid)
    assert saved.steps_done == 2 and "disk is full" in saved.error


# ----------------------------------------------------------------------------- killed CLI


def _start_cli(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """``train --store`` in a subprocess; its output goes to files (an orphaned worker
    holding a pipe open would hang the test instead of failing it)."""
    store = tmp_path / "s.sqlite"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MTL_LAB_WORKERS="1")
    argv = [sys.executable, "-m", "mtl_core", "train", "--scenario", "synthetic"]
    argv += ["--steps", "200000", "--eval-every", "100000", "--store", str(store)]
    with open(tmp_path / "out.txt", "wb") as out, open(tmp_path / "err.txt", "wb") as err:
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=err)
    return proc, store


def _first_step(proc: subprocess.Popen, store: Path) -> tuple[int, int]:
    """Wait until run 1 logged a step; returns its worker's pid and the steps done."""

    def logged() -> bool:
        assert proc.poll() is None, (store.parent / "err.txt").read_text()[-2000:]
        if not store.exists():
            return False
        try:
            info = Store(store).get_run(1)
        except Exception:
            return False
        return info.steps_done >= 1 and bool(info.worker_pid)

    wait_for(logged, 180, "the first logged step")
    return Store(store).get_run(1).worker_pid, Store(store).get_run(1).steps_done


def _stop(proc: subprocess.Popen, worker: int | None) -> None:
    """Clean up whatever is left (also after a failed assertion)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    if worker and pid_alive(worker):
        os.kill(worker, signal.SIGKILL)


def test_sigkilled_cli_stops_its_worker_and_the_run_is_interrupted(tmp_path):
    proc, store = _start_cli(tmp_path)
    worker = None
    try:
        worker, _ = _first_step(proc, store)
        assert pid_alive(worker)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: not pid_alive(worker), 10, "the orphaned worker to stop")
    finally:
        _stop(proc, worker)
    Runner(store, start=False).shutdown()  # the next runner to open the store: nothing left
    info = Store(store).get_run(1)
    assert info.status == "interrupted", info
    assert info.steps_done >= 1 and "gone" in info.error


def test_sigterm_on_the_cli_cancels_like_ctrl_c(tmp_path):
    proc, store = _start_cli(tmp_path)
    worker = None
    try:
        worker, _ = _first_step(proc, store)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        wait_for(lambda: not pid_alive(worker), 10, "the worker to stop")
    finally:
        _stop(proc, worker)
    err_text = (tmp_path / "err.txt").read_text()
    assert proc.returncode == 143, err_text[-2000:]
    assert "terminated (SIGTERM)" in err_text and "run 1 cancelled after" in err_text
    assert "Traceback" not in err_text
    info = Store(store).get_run(1)
    assert info.status == "cancelled" and info.steps_done >= 1


def test_supervisor_thread_ending_does_not_stop_workers(tmp_path, monkeypatch):
    """The kernel's parent-death signal also fires when the parent's *thread* that started
    the worker ends (here: the supervisor thread, at shutdown without interrupting); the
    worker must check that its parent process is really gone, and train on."""
    monkeypatch.setenv("MTL_TEST_SLEEP", "0.1")
    runner = Runner(tmp_path / "s.sqlite", train_fn=slow_train, poll_s=0.05, max_workers=1)
    rid = runner.submit(cfg(steps=20))
    wait_for(lambda: runner.status(rid).steps_done >= 1, what="the first step")
    runner.shutdown(interrupt_running=False)  # the supervisor thread ends; the worker not
    wait_for(lambda: runner.store.get_run(rid).status in TERMINAL, 60, "the run to end")
    assert runner.store.get_run(rid).status == "finished"


@pytest.mark.ray
def test_full_disk_on_ray_fails_the_run_and_stops_its_task(tmp_path, ray_cluster):
    """On Ray the runner writes the streamed steps: a full disk there fails the run with
    the reason, keeps the steps before, and the Ray task is stopped."""
    from tests.helpers.runner_fakes import fake_train

    runner = Runner(
        tmp_path / "s.sqlite", train_fn=fake_train, poll_s=0.05, ray_address=ray_cluster
    )
    undo = None
    try:
        rid = runner.submit(RunConfig(knobs={"sleep": 0.2}, train=TrainConfig(steps=200)))
        wait_for(lambda: runner.status(rid).steps_done >= 2, 120, "the first steps")
        undo = make_full(all_writes=False, path=runner.store.path)  # step writes fail
        info = runner.wait(rid, timeout=60)
        assert rid not in runner._ray.runs  # its task was stopped, not left streaming
    finally:
        if undo:
            undo()
        runner.shutdown(timeout=5)
    assert info.status == "failed" and "disk is full" in info.error
    assert Store(tmp_path / "s.sqlite").get_run(rid).steps_done >= 2
