"""Following a live log folder inside the runner (``Runner.follow_folder``, a thread per folder,
``mtl_core.live.importer.LiveImport`` as ``watch`` uses it), and the check of a folder path a
user typed (``allowed_folder``). Torch-free: the folder is written by ``FolderSink``."""

from __future__ import annotations

import time

import pytest

from mtl_core.errors import LabError
from mtl_core.live.importer import allowed_folder
from mtl_core.runner.follows import FolderFollows
from tests.helpers.live_logs import start_sink, write_steps


def _sink(folder):
    return start_sink(folder, "far away")


_write = write_steps


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_typed_paths_are_resolved_and_kept_inside_the_roots(tmp_path):
    root = tmp_path / "runs"
    _sink(root / "live1")
    (tmp_path / "outside").mkdir()
    _sink(tmp_path / "outside" / "log")
    assert allowed_folder("runs/live1", [root], tmp_path) == (root / "live1").resolve()
    assert allowed_folder(str(root / "live1"), [root], "/") == (root / "live1").resolve()
    with pytest.raises(LabError, match=r"^runs/\.\./outside/log: outside the folders"):
        allowed_folder("runs/../outside/log", [root], tmp_path)
    (root / "link").symlink_to(tmp_path / "outside" / "log")  # a link out is refused too
    with pytest.raises(LabError, match="outside the folders"):
        allowed_folder("runs/link", [root], tmp_path)
    with pytest.raises(LabError, match="outside the folders this server may follow \\(none"):
        allowed_folder("runs/live1", [], tmp_path)
    with pytest.raises(LabError, match="^runs/nope: no such folder"):
        allowed_folder("runs/nope", [root], tmp_path)
    (root / "plain").mkdir()
    with pytest.raises(LabError, match="^runs/plain: not a live log folder"):
        allowed_folder("runs/plain", [root], tmp_path)
    for bad in ("", "   ", "runs/\x00x"):
        with pytest.raises(LabError, match="path"):
            allowed_folder(bad, [root], tmp_path)


def test_a_followed_folder_grows_its_run_and_ends_finished(store, tmp_path):
    sink = _sink(tmp_path / "live1")
    follows = FolderFollows(store, poll_s=0.05)
    try:
        rid = follows.follow(tmp_path / "live1", owner="user:ann")
        info = store.get_run(rid)  # created before any step, so the app can link to it
        assert (info.status, info.origin, info.owner, info.name) == (
            "running", "logged", "user:ann", "far away",
        )  # fmt: skip
        assert info.steps_done == 0 and follows.run_ids() == [rid]
        assert follows.follow(str(tmp_path / "live1" / ".")) == rid  # the same folder: same run
        _write(sink, [1, 3])
        assert _wait(lambda: store.get_run(rid).last_step == 3)
        _write(sink, [5])
        sink.close("finished")
        assert _wait(lambda: store.get_run(rid).status == "finished")
        assert list(store.affinity_steps(rid, "lookahead")[0]) == [1, 3, 5]
        assert _wait(lambda: follows.run_ids() == [])
    finally:
        follows.stop()


def test_stopping_leaves_the_run_interrupted_and_following_again_resumes(store, tmp_path):
    sink = _sink(tmp_path / "live1")
    _write(sink, [1])
    follows = FolderFollows(store, poll_s=0.05)
    rid = follows.follow(tmp_path / "live1")
    assert store.get_run(rid).last_step == 1  # the first poll ran in follow()
    follows.stop()
    assert store.get_run(rid).status == "interrupted"
    _write(sink, [2])
    again = FolderFollows(store, poll_s=0.05)
    try:
        assert again.follow(tmp_path / "live1") == rid
        assert store.get_run(rid).status == "running"
        assert list(store.affinity_steps(rid, "lookahead")[0]) == [1, 2]
    finally:
        again.stop()


def test_a_log_that_turns_malformed_fails_its_run_with_the_message(store, tmp_path):
    sink = _sink(tmp_path / "live1")
    follows = FolderFollows(store, poll_s=0.05)
    try:
        rid = follows.follow(tmp_path / "live1")
        with open(tmp_path / "live1" / "affinity.csv", "a") as fh:
            fh.write("x,lookahead,a,b,0.1,0\n")
        assert _wait(lambda: store.get_run(rid).status == "failed")
        assert "step 'x' is not a whole number" in store.get_run(rid).error
    finally:
        follows.stop()
    sink.close()


def test_runner_follow_folder_takes_no_worker_slot(tmp_path):
    from mtl_core.runner import Runner

    _sink(tmp_path / "live1")
    runner = Runner(tmp_path / "s.sqlite", max_workers=1, start=False)
    try:
        rid = runner.follow_folder(tmp_path / "live1")
        assert runner.followed_runs() == [rid]
        assert runner.store.get_run(rid).status == "running"
        with pytest.raises(LabError, match="not a live log folder"):
            runner.follow_folder(tmp_path)
    finally:
        runner.shutdown()
    assert runner.store.get_run(rid).status == "interrupted"


def test_a_cancel_ends_the_follow_and_the_folder_is_not_taken_up_again(store, tmp_path):
    sink = _sink(tmp_path / "live1")
    follows = FolderFollows(store, poll_s=0.05)
    try:
        rid = follows.follow(tmp_path / "live1")
        assert store.request_cancel(rid) == "running"  # Explore's cancel button
        assert _wait(lambda: store.get_run(rid).status == "cancelled")
        assert store.get_run(rid).error == "cancelled while its folder was followed"
        assert _wait(lambda: follows.run_ids() == [])
        with pytest.raises(LabError, match=f"its run #{rid} was cancelled; delete that run"):
            follows.follow(tmp_path / "live1")
    finally:
        follows.stop()
    sink.close()


def test_a_followed_run_whose_process_died_is_marked_interrupted(store, tmp_path, monkeypatch):
    import os
    import socket

    import mtl_core.runner.supervisor as supervisor
    from mtl_core.runner import Runner

    _sink(tmp_path / "live1")
    follows = FolderFollows(store, poll_s=30)
    rid = follows.follow(tmp_path / "live1")
    info = store.get_run(rid)
    assert (info.worker_pid, info.host) == (os.getpid(), socket.gethostname())
    runner = Runner(store, start=False)
    try:
        assert runner.recover() == []  # this process is alive: left running
        monkeypatch.setattr(supervisor, "pid_alive", lambda pid: False)
        assert runner.recover() == [rid]
        assert store.get_run(rid).status == "interrupted"
    finally:
        runner.shutdown()
        follows.stop()


def test_watch_stops_on_a_cancel_and_refuses_the_cancelled_folder(tmp_path, capsys):
    from mtl_core.commands.cli import main
    from mtl_core.store import Store

    sink = _sink(tmp_path / "live1")
    _write(sink, [1])
    args = ["watch", str(tmp_path / "live1"), "--store", str(tmp_path / "w.sqlite")]
    assert main([*args, "--once"]) == 0
    store = Store(tmp_path / "w.sqlite")
    (rid,) = store.run_ids()
    assert store.get_run(rid).status == "running"
    store.request_cancel(rid)
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"run {rid}: cancelled"
    assert store.get_run(rid).status == "cancelled"
    assert main(args) == 2
    assert f"its run #{rid} was cancelled" in capsys.readouterr().err


def test_a_folder_another_live_process_imports_is_refused(store, tmp_path, capsys):
    import os
    import socket

    from mtl_core.commands.cli import main

    sink = _sink(tmp_path / "live1")
    _write(sink, [1])
    args = ["watch", str(tmp_path / "live1"), "--store", str(store.path), "--once"]
    assert main(args) == 0
    (rid,) = store.run_ids()
    store.set_worker(rid, os.getppid(), host=socket.gethostname())  # a live importer elsewhere
    follows = FolderFollows(store, poll_s=0.05)
    with pytest.raises(LabError, match=f"process {os.getppid()} is importing it already"):
        follows.follow(tmp_path / "live1")
    assert main(args) == 2
    assert f"(run #{rid}); open that run" in capsys.readouterr().err
    store.set_worker(rid, os.getpid(), host=socket.gethostname())  # that one is us: resumes
    try:
        assert follows.follow(tmp_path / "live1") == rid
    finally:
        follows.stop()
