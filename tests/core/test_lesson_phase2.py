"""Phase 2 of the lesson runs in the core (issue 19): the grouped run is queued exactly once,
by whoever gets there first (two tabs, a shared link, the runner), in one store transaction;
the runner's supervisor queues it when the together run ends, with no page open."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from mtl_core.accounts.quota import Limits
from mtl_core.errors import LabError
from mtl_core.events import StepEvent
from mtl_core.lesson import passes
from mtl_core.lesson import workflow as lesson
from mtl_core.runner import Runner
from mtl_core.store import TERMINAL, Store

FAKE = "tests.helpers.app_fixtures:fake_train"
TASKS = [f"t{i}" for i in range(6)]


def _finish_together(store: Store, rid: int, steps: int = 40) -> None:
    """The together run as a worker would leave it: planted-block lookahead, finished."""
    store.claim_queued(10, runner_pid=1)
    c = np.array([0, 0, 0, 1, 1, 1])
    A = np.where(c[:, None] == c[None, :], 0.01, -0.01)
    for s in range(1, steps + 1):
        store.append_step(
            rid,
            StepEvent(
                step=s,
                total_steps=steps,
                tasks=TASKS,
                train_loss={t: 1.0 for t in TASKS},
                metrics=[],
                affinity={"lookahead": A},
            ),
        )
    store.set_status(rid, "finished")


def _modes(store: Store) -> list[str]:
    return [r.config["train"]["mode"] for r in store.list_runs()]


def test_two_viewers_racing_on_one_finished_lesson_queue_one_grouped_run(store, monkeypatch):
    """Two callers (two tabs on one lesson) both find the together run finished and the
    grouped run not started; both pick groups at the same moment. Exactly one grouped run
    is queued and both callers get its id."""
    runner = Runner(store, train_fn=FAKE, start=False)
    ids = lesson.start(runner, store, {}, steps=40)
    _finish_together(store, ids.together)
    barrier = threading.Barrier(2, timeout=5)
    select = lesson.select_groups

    def select_together(*a, **kw):  # both callers have passed every check before either submits
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return select(*a, **kw)

    monkeypatch.setattr(lesson, "select_groups", select_together)
    got: list[int | None] = []

    def viewer() -> None:
        tab = lesson.LessonIds(together=ids.together, single=ids.single)
        got.append(lesson.maybe_start_groups(runner, store, tab))

    threads = [threading.Thread(target=viewer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert _modes(store) == ["together", "single", "groups"]
    grouped = store.list_runs()[2].id
    assert got == [grouped, grouped]
    assert store.get_note(ids.together, lesson.NOTE_GROUPS_RUN)["run_id"] == grouped
    assert store.get_note(grouped, lesson.NOTE_GROUPS)["source"] == lesson.GROUP_SOURCES["tag"]


def test_a_lost_claim_inserts_nothing(store):
    """The compare-and-set itself: a second claim on a claimed note inserts no run, and a
    claim on a run without the note inserts none either."""
    first = store.create_run(name="together")
    store.save_note(first, "next", {"run_id": None, "keep": 7})
    a = store.create_run(name="a", claim=(first, "next"), run_notes={"why": {"x": 1}})
    b = store.create_run(name="b", claim=(first, "next"), run_notes={"why": {"x": 2}})
    assert a is not None and b is None
    assert [r.name for r in store.list_runs()] == ["together", "a"]
    assert store.get_note(first, "next") == {"run_id": a, "keep": 7}
    assert store.get_note(a, "why") == {"x": 1}
    assert store.create_run(name="c", claim=(a, "next")) is None
    assert store.open_claims("next", TERMINAL) == []


def test_the_runner_queues_the_grouped_run_as_the_owner_within_the_kept_limits(store):
    """The supervisor's pass (no page): owner of the together run, the lesson's limits kept
    from its start; a quota that is full makes it wait (one message, not one per pass)."""
    runner = Runner(store, train_fn=FAKE, start=False, limits=Limits(queued_per_user=3))
    ids = lesson.start(runner, store, {}, steps=40)
    note = store.get_note(ids.together, lesson.NOTE_GROUPS_RUN)
    assert note["run_id"] is None and note["steps"] == 40 and note["seed"] == 0
    assert note["limits"]["queued_per_user"] == 3 and note["knobs"]["data_seed"] == 0
    for rid in (ids.together, ids.single):
        store.set_owner(rid, "ann")
    blocker = [store.create_run(name=f"ann's {i}", owner="ann") for i in range(2)]
    _finish_together(store, ids.together)
    said: list[str] = []
    advancer = passes.LessonAdvancer(retry_s=0.0, warn=said.append)
    assert store.open_claims(lesson.NOTE_GROUPS_RUN, TERMINAL) == [ids.together]
    assert advancer.pass_(runner, store) == []  # ann has single + 2 queued = 3: at quota
    assert advancer.pass_(runner, store) == []
    assert said == [
        f"lesson {ids.together}: the grouped run waits: you already have 3 runs queued or "
        "running, this lab's limit per user is 3: wait for one to finish or cancel one (an "
        "admin can raise it: [lab.limits] in .streamlit/secrets.toml)"
    ]
    store.set_status(blocker[0], "cancelled")
    (grouped,) = advancer.pass_(runner, store)
    info = store.get_run(grouped)
    assert info.owner == "ann" and info.config["train"]["mode"] == "groups"
    assert info.config["train"]["steps"] == 40
    assert info.config["train"]["groups"] == [["t0", "t1", "t2"], ["t3", "t4", "t5"]]
    assert advancer.pass_(runner, store) == []  # once
    assert store.open_claims(lesson.NOTE_GROUPS_RUN, TERMINAL) == []


def test_the_lesson_limits_travel_with_the_lesson(store):
    """A grouped run over the limits the lesson started under is refused (LabError), even
    though the runner that queues it has none."""
    strict = Runner(store, train_fn=FAKE, start=False, limits=Limits(steps=50))
    ids = lesson.start(strict, store, {}, steps=40)
    note = store.get_note(ids.together, lesson.NOTE_GROUPS_RUN)
    store.save_note(ids.together, lesson.NOTE_GROUPS_RUN, {**note, "steps": 80})
    _finish_together(store, ids.together)
    free = Runner(store, train_fn=FAKE, start=False)
    with pytest.raises(LabError, match="steps 80 is over this lab's limit of 50"):
        lesson.advance(free, store, ids.together)
    assert _modes(store) == ["together", "single"]


def test_tick_advances_lessons(store, monkeypatch):
    """``Runner.tick`` runs the lesson pass (guarded: a failing pass does not stop it)."""
    runner = Runner(store, train_fn=FAKE, start=False)
    calls: list[Store] = []
    monkeypatch.setattr(runner._lessons, "pass_", lambda r, s: calls.append(s) or 1 / 0)
    runner.tick()
    runner.tick()
    assert calls == [store, store]


@pytest.mark.slow
def test_a_lesson_finishes_all_three_runs_with_no_page_open(store):
    """Started as the app starts it (``workflow.start`` on a runner with its supervisor
    thread), then nobody looks: all three runs finish, the grouped one on TAG's groups."""
    runner = Runner(store, train_fn=FAKE, max_workers=2)
    try:
        ids = lesson.start(runner, store, {}, steps=30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = store.list_runs()
            if len(runs) == 3 and all(r.status in TERMINAL for r in runs):
                break
            time.sleep(0.2)
    finally:
        runner.shutdown()
    runs = store.list_runs()
    assert [(r.config["train"]["mode"], r.status) for r in runs] == [
        ("together", "finished"),
        ("single", "finished"),
        ("groups", "finished"),
    ]
    assert store.get_note(ids.together, lesson.NOTE_GROUPS_RUN)["run_id"] == runs[2].id
    assert runs[2].config["train"]["groups"] == [["t0", "t1", "t2"], ["t3", "t4", "t5"]]


def test_a_store_the_lesson_pass_cannot_read_is_said_once(store, monkeypatch):
    """The supervisor's lesson pass never raises, and a fault that lasts is one message,
    not one per pass; once the store reads again, a new fault is said again."""
    runner = Runner(store, train_fn=FAKE, start=False)
    said: list[str] = []
    advancer = passes.LessonAdvancer(warn=said.append)

    def broken(*a, **kw):
        raise LabError("the run store s.sqlite is damaged")

    monkeypatch.setattr(store, "open_claims", broken)
    assert advancer.pass_(runner, store) == [] and advancer.pass_(runner, store) == []
    assert said == ["lessons cannot be read: the run store s.sqlite is damaged"]
    monkeypatch.undo()
    assert advancer.pass_(runner, store) == []
    monkeypatch.setattr(store, "open_claims", broken)
    advancer.pass_(runner, store)
    assert len(said) == 2


def test_a_fault_of_the_store_file_is_left_to_the_supervisor(store, monkeypatch):
    """A damaged file (a StoreFault) is the supervisor's to report, once for the runner; the
    lesson pass says nothing of it (it said it a second time, in other words, before)."""
    from mtl_core.store.faults import StoreFault

    runner = Runner(store, train_fn=FAKE, start=False)
    said: list[str] = []
    advancer = passes.LessonAdvancer(warn=said.append)

    def damaged(*a, **kw):
        raise StoreFault("the run store s.sqlite is damaged", "damaged")

    monkeypatch.setattr(store, "open_claims", damaged)
    assert advancer.pass_(runner, store) == [] and said == []
