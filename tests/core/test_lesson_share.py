"""Shared lessons: identical lessons (scenario, knobs, seed, steps, code version) are trained
once per visibility scope; a second press follows the first press's runs."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from mtl_core.config import RunConfig
from mtl_core.errors import LabError
from mtl_core.lesson import passes
from mtl_core.lesson import workflow as lesson


class SessionRunner:
    """A browser session's runner: queues runs owned by its actor, trains nothing."""

    def __init__(self, store, owner: str) -> None:
        self.store, self.actor = store, SimpleNamespace(id=owner)

    def submit(self, cfg: RunConfig, **kw) -> int | None:
        return self.store.create_run(
            name=cfg.name,
            config=cfg.to_dict(),
            steps_total=cfg.train.steps,
            owner=self.actor.id,
            **kw,
        )


def _press(store, owner, share, **kw):
    return lesson.start(SessionRunner(store, owner), store, {"conflict": 1.0}, share=share, **kw)


@pytest.mark.parametrize("share", ["class", "private"])
def test_second_press_follows_the_first_lessons_runs(store, share):
    first = _press(store, "browser:a", share)
    again = _press(store, "browser:a", share)
    assert not first.followed and again.followed
    assert (again.together, again.single, again.groups) == (first.together, first.single, None)
    assert len(store.run_ids()) == 2  # together and single, queued once


def test_class_mode_shares_between_students_private_mode_does_not(store):
    a = _press(store, "browser:a", "class")
    b = _press(store, "browser:b", "class")
    assert b.followed and b.ids() == a.ids()
    c = _press(store, "browser:c", "private")  # c cannot see a's runs: trains its own
    assert not c.followed and c.together not in a.ids()
    assert store.get_run(c.together).owner == "browser:c"
    d = _press(store, "browser:c", "private")
    assert d.followed and d.ids() == c.ids()
    assert len(store.run_ids()) == 4


def test_private_mode_shares_an_unowned_lesson(store):
    """Unowned runs (the teacher's, from the command line) are visible to all in private mode."""
    t = lesson.start(SessionRunner(store, None), store, {"conflict": 1.0}, share="private")
    s = _press(store, "browser:s", "private")
    assert s.followed and s.together == t.together


def test_other_knobs_seed_steps_or_source_are_another_lesson(store):
    base = _press(store, "browser:a", "class")
    others = [
        lesson.start(SessionRunner(store, "browser:b"), store, {"conflict": 0.5}, share="class"),
        _press(store, "browser:b", "class", seed=1),
        _press(store, "browser:b", "class", steps=100),
        _press(store, "browser:b", "class", groups_from="planted"),
    ]
    assert not any(o.followed for o in others)
    assert len({o.together for o in others} | {base.together}) == 5


def test_key_fills_in_defaults_and_changes_with_code(monkeypatch):
    noise = lesson.knob_specs()["noise"]["default"]
    assert lesson.lesson_key({"conflict": 1}) == lesson.lesson_key(
        {"conflict": 1.0, "noise": noise}
    )
    assert lesson.lesson_key({"conflict": 1}) != lesson.lesson_key({"conflict": 0.95})
    before = lesson.lesson_key({"conflict": 1})
    monkeypatch.setattr(lesson, "code_version", lambda: "another build")
    assert lesson.lesson_key({"conflict": 1}) != before


@pytest.mark.parametrize("status", ["failed", "cancelled", "interrupted"])
def test_a_failed_lesson_is_trained_again(store, status):
    first = _press(store, "browser:a", "class")
    store.set_status(first.together, status, error="x" if status == "failed" else None)
    again = _press(store, "browser:b", "class")
    assert not again.followed and again.together != first.together


def test_a_finished_lesson_is_replayed_with_its_grouped_run(store):
    first = _press(store, "browser:a", "class", groups_from="planted")
    for rid in first.ids():
        store.set_status(rid, "finished")
    again = _press(store, "browser:b", "class", groups_from="planted")
    assert again.followed and again.ids() == first.ids() and again.groups is not None


def test_racing_presses_queue_one_lesson(store):
    """Eight sessions press Train at the same moment: one set of runs."""
    gate = threading.Barrier(8)
    got: list = []

    def press(i: int) -> None:
        gate.wait()
        got.append(_press(store, f"browser:{i}", "class"))

    threads = [threading.Thread(target=press, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and sum(not g.followed for g in got) == 1
    assert {g.together for g in got} == {got[0].together}
    assert len(store.run_ids()) == 2


def test_unknown_share_is_one_line(store):
    with pytest.raises(LabError, match="unknown lesson sharing 'all'; use one of class, private"):
        _press(store, "browser:a", "all")


class _Unowned:
    """The runner's own submits (no owner), trains nothing."""

    def __init__(self, store) -> None:
        self.store = store

    def submit(self, cfg: RunConfig, **kw) -> int | None:
        return self.store.create_run(
            name=cfg.name, config=cfg.to_dict(), steps_total=cfg.train.steps, **kw
        )


def test_lessons_ahead_queue_one_level_per_idle_pass_and_students_follow_them(store):
    ahead = passes.LessonsAhead((1.0, 0.5), warn=lambda m: pytest.fail(m))
    runner = _Unowned(store)
    (first,) = ahead.pass_(runner, store)
    assert store.get_run(first).config["knobs"]["conflict"] == 1.0
    assert ahead.pass_(runner, store) == []  # not idle: its runs are queued
    for rid in store.run_ids():
        store.set_status(rid, "finished")
    (second,) = ahead.pass_(runner, store)
    assert store.get_run(second).config["knobs"]["conflict"] == 0.5
    assert ahead.pass_(runner, store) == []  # every level held
    # unowned: a student follows it in both visibilities
    for share in ("class", "private"):
        got = _press(store, f"browser:{share}", share)
        assert got.followed and got.together == first
    assert store.get_run(first).owner is None


def test_lessons_ahead_skip_a_level_a_student_already_trained(store):
    mine = _press(store, "browser:a", "class")
    for rid in store.run_ids():
        store.set_status(rid, "finished")
    ahead = passes.LessonsAhead((1.0,))
    assert ahead.pass_(_Unowned(store), store) == []
    assert store.run_ids() == sorted(mine.ids())


def test_ahead_positions_from_the_environment(monkeypatch):
    monkeypatch.delenv(passes.AHEAD_ENV, raising=False)
    assert passes.ahead_positions() == ()  # a bare runner: off by default
    # the app's default: the class's five knob positions, the default knob first
    assert passes.ahead_positions(default=passes.CLASS_POSITIONS) == (1.0, 0.0, 0.25, 0.5, 0.75)
    assert passes.ahead_positions("", default=(0.5,)) == (0.5,)
    assert passes.ahead_positions(" OFF ", default=passes.CLASS_POSITIONS) == ()
    assert passes.ahead_positions("none", default=passes.CLASS_POSITIONS) == ()
    assert passes.ahead_positions("0", default=passes.CLASS_POSITIONS) == (0.0,)  # a level
    monkeypatch.setenv(passes.AHEAD_ENV, "0.25,1")
    assert passes.ahead_positions(default=passes.CLASS_POSITIONS) == (0.25, 1.0)
    assert passes.ahead_positions(" 1, 0,0.25 ,") == (1.0, 0.0, 0.25)
    with pytest.raises(LabError, match=r"MTL_LAB_LESSON_AHEAD: '1.5' is no conflict level"):
        passes.ahead_positions("1,1.5")
    with pytest.raises(LabError, match=r"'x' is no conflict level in \[0, 1\]"):
        passes.ahead_positions("x")


def test_a_follower_who_came_before_the_single_run_finds_it_through_the_state(store):
    """A press that lands between the together run's insert and the single run's: its ids
    lack the single run; the lesson state names it from the together run's note."""
    from mtl_core.lesson.state import state

    first = _press(store, "browser:a", "class")
    early = lesson.LessonIds(together=first.together)  # what that follower got
    assert store.get_note(first.together, lesson.NOTE_LESSON)["single"] == first.single
    s = state(store, early)
    assert s.ids.single == first.single and set(s.runs) == {"together", "single"}


def test_distinct_lessons_queue_fairly_between_students(store):
    """Student a presses three lessons first, then b one: b's runs start in the first
    rounds (one run per student per round, FAIR_ORDER), not after a's six."""
    a = [_press(store, "browser:a", "class", seed=s) for s in range(3)]
    b = _press(store, "browser:b", "class", seed=9)
    order = store.queue_order()
    assert order[:4] == [a[0].together, b.together, a[0].single, b.single]
    assert order[4:] == [a[1].together, a[1].single, a[2].together, a[2].single]


def _background(store) -> set[int]:
    from mtl_core.store.notes import NOTE_BACKGROUND

    return {rid for rid in store.run_ids() if store.get_note(rid, NOTE_BACKGROUND) is not None}


def test_a_students_run_queued_after_a_lesson_ahead_starts_first(store):
    """Lessons ahead yield: their queued runs start only when no student's run is queued,
    whatever the fair order between owners would say; a student joining one promotes it."""
    ahead = passes.LessonsAhead((1.0, 0.5), warn=lambda m: pytest.fail(m))
    held = lesson.find_lesson(_Unowned(store), store, lesson.lesson_key({"conflict": 1.0}), False)
    assert held is None
    (together,) = ahead.pass_(_Unowned(store), store)
    held = lesson.find_lesson(_Unowned(store), store, lesson.lesson_key({"conflict": 1.0}), False)
    assert _background(store) == {held.together, held.single}
    assert lesson.trained_ahead_at(store, together) == pytest.approx(time.time(), abs=60)
    # a student presses a different lesson (seed 7) after the runner queued the one ahead
    mine = _press(store, "browser:a", "class", seed=7)
    assert lesson.trained_ahead_at(store, mine.together) is None
    assert store.queue_order() == [mine.together, mine.single, held.together, held.single]
    assert store.claim_queued(2, runner_pid=1) == mine.together
    assert store.claim_queued(2, runner_pid=1) == mine.single
    assert store.claim_queued(2, runner_pid=1) is None  # both slots busy: nothing ahead starts
    for rid in (mine.together, mine.single):
        store.set_status(rid, "finished")
    assert store.claim_queued(1, runner_pid=1) == held.together  # no student's run queued
    # the grouped run of a lesson ahead is queued in the background too
    store.set_status(held.together, "finished")
    groups = lesson.advance(_Unowned(store), store, held.together)
    assert groups in _background(store)
    # a student who presses the held lesson joins it: its queued runs lose the background
    other = _press(store, "browser:b", "class", seed=8)
    joined = _press(store, "browser:c", "class")
    assert joined.followed and joined.together == held.together
    assert _background(store) == set()
    # now the held runs take turns with b's (one run per owner per round; b has never
    # started a run, so b goes first in each round) instead of waiting behind them
    assert store.queue_order() == [other.together, held.single, other.single, groups]


def _held_and_finished(store) -> lesson.LessonIds:
    """The lesson at conflict 1 held ahead by an idle runner, its together run finished."""
    ahead = passes.LessonsAhead((1.0,), warn=lambda m: pytest.fail(m))
    ahead.pass_(_Unowned(store), store)
    held = lesson.find_lesson(_Unowned(store), store, lesson.lesson_key({"conflict": 1.0}), False)
    store.set_status(held.together, "finished")
    return held


def test_a_grouped_run_queued_while_a_student_joins_loses_the_background_note(store, monkeypatch):
    """The race: phase 2 reads the together run's background note, a student's press then
    lifts the notes (its ids do not have the grouped run yet), and only then phase 2 inserts
    the grouped run. It must not stay at the back of the queue behind every other run."""
    held = _held_and_finished(store)
    joined = lesson.LessonIds(together=held.together, single=held.single, followed=True)
    real = lesson._submit_groups

    def press_lands_first(*args, **kwargs):
        lesson.foreground(store, joined)
        return real(*args, **kwargs)

    monkeypatch.setattr(lesson, "_submit_groups", press_lands_first)
    groups = lesson.advance(_Unowned(store), store, held.together)
    assert groups is not None
    assert _background(store) == set()


def test_a_student_who_read_the_lesson_before_its_grouped_run_also_lifts_that_run(store):
    """The other order: phase 2 queues the grouped run (in the background) after the press
    read the lesson's ids but before it lifted the notes; the press finds it through the
    together run's note."""
    held = _held_and_finished(store)
    joined = lesson.LessonIds(together=held.together, single=held.single, followed=True)
    groups = lesson.advance(_Unowned(store), store, held.together)
    assert groups in _background(store)
    assert sorted(lesson.foreground(store, joined)) == sorted([*held.ids(), groups])
    assert _background(store) == set()


@pytest.mark.slow
def test_an_idle_runner_holds_the_class_lessons_and_a_queued_run_goes_first(fake_runner):
    """A real runner (fake training in worker processes): idle, it trains the lessons at the
    given levels one after the other, unowned; a run queued while one is held starts before
    the held lesson's remaining queued runs."""
    runner = fake_runner(max_workers=1, lessons_ahead=(1.0, 0.0))
    store = runner.store
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not store.run_ids():
        time.sleep(0.02)
    # unowned, like the held lessons (the command line's runs): the fair order alone would
    # start the held lesson's single run (queued earlier, same owner) before it
    mine = runner.submit(lesson.base_config("single", {"conflict": 0.5}, steps=20, seed=3))
    while time.monotonic() < deadline and (
        store.run_ids("queued", "running") or len(store.run_ids("finished")) < 7
    ):
        time.sleep(0.1)
    runs = {r.id: r for r in store.list_runs()}
    assert all(r.status == "finished" for r in runs.values()), [r.status for r in runs.values()]
    held = sorted(rid for rid in runs if rid != mine)
    assert len(held) == 6  # two lessons, three runs each
    assert sorted(runs[rid].config["knobs"]["conflict"] for rid in held) == [
        0.0,
        0.0,
        0.0,
        1.0,
        1.0,
        1.0,
    ]
    # the student's run started before every held run but the one already running
    started_before = [rid for rid in held if runs[rid].started < runs[mine].started]
    assert len(started_before) <= 1
