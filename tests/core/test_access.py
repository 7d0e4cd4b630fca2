"""Ownership, limits and the queue between users (issue 13, items 2 and 4): who may change
a run, the owner column's migration, fair claim order, the per-user quota, run limits, the
ground truth's limits, password hashes, and a background job that stops with its parent."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from mtl_core.accounts import quota as L
from mtl_core.accounts.access import Actor, can_modify, can_see
from mtl_core.accounts.passwords import hash_password, verify_password
from mtl_core.config import RunConfig
from mtl_core.errors import LabError
from mtl_core.store import SCHEMA_VERSION, Store
from tests.core.test_store_migrations import old_store

ALICE, BOB = Actor("user:alice"), Actor("user:bob")
TEACHER = Actor("user:teacher", admin=True)
LAPTOP = Actor("browser:1", manage_unowned=True)


def test_rules_owner_admin_unowned_and_visibility():
    assert can_modify("user:alice", ALICE) and not can_modify("user:alice", BOB)
    assert can_modify("user:alice", TEACHER) and can_modify("user:alice", None)  # CLI
    assert not can_modify(None, ALICE) and can_modify(None, LAPTOP)
    assert can_see("user:alice", BOB, "class") and not can_see("user:alice", BOB, "private")
    assert can_see(None, BOB, "private") and can_see("user:alice", TEACHER, "private")
    with pytest.raises(LabError, match="unknown visibility"):
        can_see(None, BOB, "public")


def test_only_the_owner_or_an_admin_cancels_renames_deletes(store):
    rid = store.create_run(name="a's", owner=ALICE.id)
    for fn, verb in (
        (lambda a: store.request_cancel(rid, actor=a), "cancel"),
        (lambda a: store.rename_run(rid, "mine now", actor=a), "rename"),
        (lambda a: store.delete_run(rid, actor=a), "delete"),
    ):
        with pytest.raises(LabError, match=f"cannot {verb} run #{rid}: it is another user's"):
            fn(BOB)
    info = store.get_run(rid)
    assert (info.status, info.name, info.owner) == ("queued", "a's", "user:alice")
    store.rename_run(rid, "renamed", actor=ALICE)
    assert store.request_cancel(rid, actor=TEACHER) == "cancelled"
    store.delete_run(rid, actor=ALICE)
    assert store.list_runs() == []
    cli = store.create_run(name="from the CLI")  # no owner: a laptop session may, a user not
    with pytest.raises(LabError, match="nobody's"):
        store.delete_run(cli, actor=BOB)
    store.delete_run(cli, actor=LAPTOP)


def test_owner_column_migration_keeps_old_runs_unowned(tmp_path):
    path = tmp_path / "old.sqlite"
    old_store(path)
    st = Store(path)
    assert [r.owner for r in st.list_runs()] == [None, None]
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "runs_owner_status" in {
        r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    con.close()
    rid = st.create_run(name="new", owner="user:x")
    assert st.get_run(rid).owner == "user:x"


def test_fair_order_round_robin_between_owners(store):
    a = [store.create_run(name=f"a{i}", owner="user:a") for i in range(3)]
    b = [store.create_run(name=f"b{i}", owner="user:b") for i in range(2)]
    c = store.create_run(name="c0", owner="user:c")
    assert store.queue_order()[:3] == [a[0], b[0], c]  # first of each before anyone's second
    started = []
    for _ in range(6):  # one worker: each run finishes before the next starts
        rid = store.claim_queued(1, runner_pid=os.getpid())
        started.append(rid)
        store.set_status(rid, "finished")
        time.sleep(0.002)  # distinct start times
    assert started == [a[0], b[0], c, a[1], b[1], a[2]]
    assert store.claim_queued(1, runner_pid=os.getpid()) is None


def test_fewest_running_first(store):
    a = [store.create_run(name=f"a{i}", owner="user:a") for i in range(3)]
    b = store.create_run(name="b0", owner="user:b")
    assert store.claim_queued(2, runner_pid=os.getpid()) == a[0]
    assert store.claim_queued(2, runner_pid=os.getpid()) == b  # a has one running already


def test_queue_quota_is_checked_in_the_insert(store):
    lim = L.Limits(queued_per_user=2)
    store.create_run(owner="user:a", limits=lim)
    store.create_run(owner="user:a", limits=lim)
    with pytest.raises(LabError, match=r"2 runs queued or running.*limit per user is 2"):
        store.create_run(owner="user:a", limits=lim)
    store.create_run(owner="user:b", limits=lim)  # another user's quota is their own
    assert store.active_count("user:a") == 2


def test_run_limits_name_the_limit_and_where_to_raise_it():
    lim = L.Limits()
    L.check_config(RunConfig(), lim)
    cases = [
        (RunConfig.for_scenario("synthetic", {}, {"train.steps": 10**6}), "steps 1000000"),
        (RunConfig.for_scenario("synthetic", {}, {"train.batch_size": 10**5}), "batch size"),
        (RunConfig.for_scenario("synthetic", {}, {"model.hidden": "64,100000"}), "layer width"),
        (
            RunConfig.for_scenario("synthetic", {}, {"model.hidden": "8,8,8,8,8,8,8"}),
            "hidden layers 7",
        ),
        (RunConfig.for_scenario("synthetic", {"samples": 1_000_000}), "samples"),
        (RunConfig.for_scenario("synthetic", {"features": 4096}), "features"),
    ]
    for cfg, what in cases:
        with pytest.raises(LabError, match=f"{what}.*over this lab's limit.*secrets.toml"):
            L.check_config(cfg, lim)
    with pytest.raises(LabError, match="scenario 'csv' is not offered here"):
        L.check_config(RunConfig(scenario="csv"), L.Limits(scenarios=("synthetic",)))
    with pytest.raises(LabError, match="path on the server is for the command line only"):
        L.check_config(RunConfig(scenario="csv", knobs={"path": "/etc/passwd"}), lim)
    L.check_config(RunConfig.for_scenario("synthetic", {}, {"train.steps": 10**6}), L.Limits.none())


def test_limits_from_settings():
    lim = L.Limits.from_mapping({"steps": 100, "width": 0, "scenarios": "synthetic, digits"})
    assert (lim.steps, lim.width, lim.scenarios) == (100, None, ("synthetic", "digits"))
    with pytest.raises(LabError, match="unknown limit 'step'"):
        L.Limits.from_mapping({"step": 1})
    with pytest.raises(LabError, match="whole number"):
        L.Limits.from_mapping({"steps": "many"})
    assert L.task_count({"attributes": ["a", "b"], "random_tasks": 3}) == 5
    assert L.task_count({"tasks": 7}) == 7 and L.task_count({"targets": "a,b"}) == 2


def test_ground_truth_of_an_uploaded_config_is_checked_before_anything_loads(monkeypatch):
    from mtl_core import scenarios
    from mtl_core.experiments import background

    def no_load(*a, **k):
        raise AssertionError("the scenario was loaded")

    monkeypatch.setattr(scenarios, "load_dataset", no_load)
    lim = L.Limits()
    forged = {"scenario": "csv", "knobs": {"path": "/etc/passwd", "targets": "x"}}
    with pytest.raises(LabError, match="path on the server is for the command line only"):
        background.spec_for_run(forged, 2, 2, limits=lim)
    for cfg, seeds, what in (
        ({"scenario": "synthetic", "train": {"steps": 10**7}}, 2, "steps"),
        ({"scenario": "synthetic"}, 50, "seeds 50"),
        ({"scenario": "synthetic", "knobs": {"tasks": 500}}, 2, "tasks 500"),
        ({"scenario": "synthetic", "train": {"steps": "lots"}}, 2, "not one the lab wrote"),
    ):
        with pytest.raises(LabError, match=what):
            background.spec_for_run(cfg, 2, seeds, limits=lim)


def test_password_hashes():
    h = hash_password("correct horse")
    assert h.startswith("scrypt$14$8$1$") and h != hash_password("correct horse")  # salted
    assert verify_password("correct horse", h)
    assert not verify_password("correct hors", h)
    for bad in ("", "plain", "scrypt$99$8$1$AA==$AA==", "scrypt$14$8$1$!!$AA=="):
        assert not verify_password("x", bad)


@pytest.mark.slow
def test_a_background_job_stops_when_the_process_that_started_it_is_gone(tmp_path):
    # the parent starts a (long) evaluation and exits at once, as an app that is killed
    parent = textwrap.dedent(f"""
        from mtl_core.experiments import background as bg
        spec = bg.spec_for_run({{"scenario": "synthetic", "knobs": {{"samples": 300}},
                                "train": {{"steps": 100000}}}}, 2, 3)
        job = bg.start(spec, {str(tmp_path / "job")!r}, workers=0)
        print(job.pid, flush=True)
    """)
    out = subprocess.run(
        [sys.executable, "-c", parent],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.getcwd(),
        env={**os.environ},
    )
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[-1])
    deadline = time.monotonic() + 60  # the job notices within a second once it has started
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    assert not _alive(pid), "the evaluation outlived the process that started it"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
