"""Issue 23 item 8: ground-truth evaluations go through the runner's worker slots and quotas
with their starter's identity: queued in the store, one slot each out of MTL_LAB_WORKERS
(counted with runner-started runs both ways), in the fair order shared with queued runs,
counted in the starter's quota, started by the runner's EvaluationQueue as one process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from mtl_core.accounts.quota import Limits
from mtl_core.errors import LabError
from mtl_core.experiments import background as bg
from mtl_core.jsonio import write_json
from mtl_core.store import Store


def _run(store: Store, owner: str | None, status: str = "queued") -> int:
    first = "finished" if status == "finished" else "queued"
    rid = store.create_run(name="r", status=first, owner=owner, config={"scenario": "x"})
    if status == "running":
        assert store.claim_queued(99, runner_pid=os.getpid()) == rid
    return rid


def _queue(store: Store, run_id: int, k: int, owner: str, limits: Limits | None = None) -> dict:
    record = {"spec": {"k": k}, "folder": f"/nowhere/{run_id}_{k}", "k": k, "owner": owner}
    return store.queue_ground_truth(run_id, k, record, limits=limits)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "s.sqlite")


def test_an_evaluation_takes_a_slot_and_a_running_run_holds_one(store):
    target = _run(store, None, "running")  # one slot busy (max 2)
    _queue(store, target, 2, "user:ann")
    _queue(store, target, 3, "user:bob")
    first = store.claim_ground_truth(2, runner_pid=os.getpid())
    assert first is not None and first[2]["status"] == "running"
    assert store.claim_ground_truth(2, runner_pid=os.getpid()) is None  # both slots busy
    queued = _run(store, "user:cy")
    assert store.claim_queued(2, runner_pid=os.getpid()) is None  # a run waits for it too
    store.save_ground_truth(first[0], first[1], {**first[2], "status": "done"})
    assert store.claim_queued(2, runner_pid=os.getpid()) == queued  # cy: fewer running
    assert store.claim_ground_truth(3, runner_pid=os.getpid())[2]["owner"] == "user:bob"


def test_the_fair_order_is_shared_by_runs_and_evaluations(store):
    anchor = _run(store, "user:ann", "running")  # ann has one running
    _queue(store, anchor, 2, "user:ann")
    _run(store, "user:bob")  # bob: nothing running
    # bob's queued run has fewer running than ann's evaluation: it goes first
    assert store.claim_ground_truth(4, runner_pid=os.getpid()) is None
    assert store.claim_queued(4, runner_pid=os.getpid()) is not None
    _run(store, "user:bob")  # bob has 1 running, and a second run queued after ann's job
    claimed = store.claim_ground_truth(4, runner_pid=os.getpid())
    assert claimed is not None and claimed[2]["owner"] == "user:ann"  # a tie: queued first


def test_a_run_queued_in_the_background_waits_for_evaluations_and_runs(store):
    """A lesson held ahead (``NOTE_BACKGROUND``) would go first by the fair order (nothing
    of its owner running), but waits for a queued evaluation and a queued run."""
    from mtl_core.store.notes import NOTE_BACKGROUND

    anchor = _run(store, "user:ann", "running")  # ann has one running
    held = store.create_run(
        name="held", config={"scenario": "x"}, run_notes={NOTE_BACKGROUND: {"why": "ahead"}}
    )
    _queue(store, anchor, 2, "user:ann")
    claimed = store.claim_ground_truth(4, runner_pid=os.getpid())
    assert claimed is not None and claimed[2]["owner"] == "user:ann"
    later = _run(store, "user:ann")  # ann: 2 running now, and queued after the held run
    assert store.queue_order() == [later, held]
    assert store.claim_queued(4, runner_pid=os.getpid()) == later
    assert store.claim_queued(4, runner_pid=os.getpid()) == held  # nothing else queued


def test_evaluations_count_in_the_starters_quota_both_ways(store):
    limits = Limits(queued_per_user=2)
    run_id = _run(
        store, None, "finished"
    )  # an unowned run: the starter's quota counts, not its owner's
    _queue(store, run_id, 2, "user:ann", limits)
    store.create_run(name="a", owner="user:ann", limits=limits)
    with pytest.raises(LabError, match="you already have 2 runs queued or running"):
        _queue(store, run_id, 3, "user:ann", limits)
    with pytest.raises(LabError, match="you already have 2 runs queued or running"):
        store.create_run(name="b", owner="user:ann", limits=limits)
    assert store.running_ground_truths("user:ann") == 1 and store.active_count("user:ann") == 2
    _queue(store, run_id, 3, "user:bob", limits)  # another user's quota is their own


def test_one_evaluation_per_run_and_k_at_a_time(store):
    run_id = _run(store, None)
    _queue(store, run_id, 2, "user:ann")
    with pytest.raises(LabError) as exc:
        _queue(store, run_id, 2, "user:bob")
    assert str(exc.value) == f"a ground truth of run #{run_id} for k=2 is already queued or running"


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_the_queue_starts_one_process_per_free_slot_and_frees_it_when_done(
    store, tmp_path, monkeypatch
):
    started = []

    def fake_start(spec, folder, *, workers=2, nice=0):
        assert nice == 10
        started.append((spec.k, workers))
        os.makedirs(folder, exist_ok=True)
        write_json(os.path.join(folder, bg.STATUS_FILE), {"status": "running", "message": "m"})
        return bg.BackgroundJob(folder=str(folder), pid=os.getpid(), started=time.time())

    monkeypatch.setattr(bg, "start", fake_start)
    from mtl_core.experiments.spec import EvalSpec

    monkeypatch.setattr(EvalSpec, "from_dict", classmethod(lambda cls, d: type("S", (), d)))
    run_id = _run(store, None, "finished")  # the trained run the evaluations retrain
    for k in (2, 3):
        store.queue_ground_truth(
            run_id, k, {"spec": {"k": k}, "folder": str(tmp_path / f"k{k}"), "owner": "user:a"}
        )
    queue = bg.EvaluationQueue(nice=10)
    queue.tick(store, 1, os.getpid())
    assert started == [(2, 0)]  # one slot: one evaluation, one process (no pool of its own)
    job = store.get_ground_truth(run_id, 2)
    assert job["status"] == "running" and job["pid"] == os.getpid()
    assert store.get_ground_truth(run_id, 3)["status"] == "queued"
    queue.tick(store, 1, os.getpid())
    assert started == [(2, 0)]  # still busy
    # its process ends (gone without a status): the runner's pass records it, frees the slot
    store.save_ground_truth(run_id, 2, {**job, "pid": _dead_pid()})
    queue.tick(store, 1, os.getpid())
    assert store.get_ground_truth(run_id, 2)["status"] == "failed"
    assert started == [(2, 0), (3, 0)]


def test_a_claim_whose_runner_died_before_starting_it_fails(store):
    run_id = _run(store, None, "finished")
    _queue(store, run_id, 2, "user:ann")
    run_id, k, _ = store.claim_ground_truth(1, runner_pid=_dead_pid())
    job = bg.refresh(store, run_id, k)
    assert job["status"] == "failed" and job["error"] == "the lab stopped before it started"


@pytest.mark.slow
def test_a_real_evaluation_runs_in_the_runners_only_slot_while_a_run_waits(tmp_path):
    """One worker slot (MTL_LAB_WORKERS=1): the queued evaluation trains in it, a run queued
    after it waits until it is done, then trains; the report lands in the store with no page
    open (the runner records it)."""
    from mtl_core.experiments import EvalSpec
    from mtl_core.runner import Runner
    from tests.helpers.app_fixtures import config_dict

    store = Store(tmp_path / "s.sqlite")
    target = _run(store, None, "finished")
    spec = EvalSpec.for_scenario(
        "synthetic",
        {"tasks": 3, "samples": 150},
        1,
        seeds=1,
        steps=3,
        random_groupings=1,
        device="cpu",
        threads=1,
    )
    folder = tmp_path / "evaluations" / "job"
    store.queue_ground_truth(
        target, 1, {"spec": spec.to_dict(), "folder": str(folder), "owner": "user:ann"}
    )
    runner = Runner(
        store,
        max_workers=1,
        poll_s=0.05,
        train_fn="tests.helpers.app_fixtures:fake_train",
        evaluations=bg.EvaluationQueue(),
        start=False,
    )
    try:
        runner.tick()  # the evaluation claims the only slot before the run is queued
        assert store.get_ground_truth(target, 1)["status"] == "running"
        rid = runner.submit(config_dict(train__steps=3), owner="user:bob")
        runner.tick()
        assert store.get_run(rid).status == "queued"  # no second process beside it
        runner.start()
        info = runner.wait(rid, timeout=240)
    finally:
        runner.shutdown(timeout=5)
    job = store.get_ground_truth(target, 1)
    assert job["status"] == "done", job.get("error")
    assert job["report"]["approaches"]["tag"]["groupings"] == [[["t0", "t1", "t2"]]]
    assert info.status == "finished" and info.started >= job["finished"] - 1.0
