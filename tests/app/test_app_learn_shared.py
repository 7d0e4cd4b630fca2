"""Learn page (AppTest), a class at once: two sessions pressing Train on the same lesson queue
one set of runs and the second follows the first's; a queued lesson shows its place in the
queue and a wait measured from this server's recent lesson runs (never a promise)."""

from __future__ import annotations

import time

import pytest

from app import auth, data
from mtl_core.lesson import workflow as lesson
from tests.helpers.app_fixtures import open_app


class _QueueOnly:
    """The runner without a supervisor: queues runs in the store, trains nothing (the page's
    submit path, owner and limits included, stays the real one)."""

    def __init__(self, store) -> None:
        self.store = store

    def submit(self, cfg, *, name=None, **kw):
        return self.store.create_run(
            name=name or cfg.name, config=cfg.to_dict(), steps_total=cfg.train.steps, **kw
        )


@pytest.fixture
def queue_only(store, monkeypatch):
    def runner():
        dep = auth.deployment()
        return data.SessionRunner(_QueueOnly(store), auth.current_actor(dep), dep.limits)

    monkeypatch.setattr(data, "get_runner", runner)
    return store


def _train(at):
    at.button(key="learn_train").click().run()
    assert not at.exception
    return at


def _infos(at) -> str:
    return " | ".join(i.value for i in at.info)


def test_two_sessions_train_one_lesson_and_the_second_follows(queue_only, monkeypatch):
    store = queue_only
    first = _train(open_app("learn", store.path, monkeypatch).run())
    runs = store.list_runs()
    assert [r.config["train"]["mode"] for r in runs] == ["together", "single"]
    second = _train(open_app("learn", store.path, monkeypatch).run())
    assert len(store.list_runs()) == 2  # no second set of runs
    assert second.query_params["lesson"] == first.query_params["lesson"]
    assert len({r.owner for r in runs}) == 1
    text = _infos(second)
    assert "Shared: this exact lesson (same knobs, seed, steps and code) was started at" in text
    assert f"(run #{runs[0].id}); you follow its runs live" in text
    assert "Shared:" not in _infos(first.run())  # the first session trained it
    # a finished lesson is replayed, saying when it was trained
    for r in runs:
        store.set_status(r.id, "finished")
    # ... but the session that followed it live says so, not "Replay"
    text = _infos(second.run())
    assert f"(run #{runs[0].id}); you followed its runs live, and they have finished" in text
    assert "Replay:" not in text
    third = _train(open_app("learn", store.path, monkeypatch).run())
    when = time.strftime("%H:%M UTC", time.gmtime(store.get_run(runs[0].id).created))
    assert "Replay: this exact lesson" in _infos(third) and when in _infos(third)
    assert len(store.list_runs()) == 2


def test_private_visibility_trains_its_own_copy(queue_only, monkeypatch):
    store = queue_only
    a = open_app("learn", store.path, monkeypatch)
    a.secrets["lab"] = {"visibility": "private"}
    _train(a.run())
    b = open_app("learn", store.path, monkeypatch)
    b.secrets["lab"] = {"visibility": "private"}
    _train(b.run())
    runs = store.list_runs()
    assert len(runs) == 4 and len({r.owner for r in runs}) == 2
    assert "Shared:" not in _infos(b)
    assert b.query_params["lesson"] != a.query_params["lesson"]


def test_queued_lesson_shows_its_place_and_a_measured_wait(queue_only, monkeypatch):
    store = queue_only
    monkeypatch.setenv("MTL_LAB_WORKERS", "2")
    # the idle page has nothing measured: it says so instead of promising seconds
    at = open_app("learn", store.path, monkeypatch).run()
    assert "no measured time to quote" in _infos(at) and "few seconds" not in _infos(at)
    # a finished lesson run of 300 steps that took 60 s: 0.2 s per step here
    done = store.create_run(
        name="old", config=lesson.base_config("single", {}).to_dict(), steps_total=300
    )
    store.set_status(done, "finished")
    store._write(
        lambda con: con.execute(
            "UPDATE runs SET started = finished - 60, steps_done = 300 WHERE id = ?", (done,)
        )
    )
    # two other students' runs queued first (fair queue: one per owner per round)
    for owner in ("browser:x", "browser:y"):
        store.create_run(name="other", config={}, steps_total=300, owner=owner)
    at = open_app("learn", store.path, monkeypatch).run()
    assert "takes about 1 min 00 s on this server (median over its last 1 lesson run" in _infos(at)
    _train(at)
    text = _infos(at)
    # 2 workers, 2 runs ahead of 60 s each, no run running: it starts in about 60 s
    assert "The all-together run is queued (2 queued runs ahead)" in text
    assert "start in about 1 min 00 s" in text


def test_a_lesson_trained_ahead_is_replayed_saying_so(queue_only, monkeypatch):
    """The idle runner held the default lesson (``LessonsAhead``); a press replays it and
    the page says it was trained ahead, and when."""
    from mtl_core.lesson.passes import LessonsAhead

    store = queue_only
    (together,) = LessonsAhead((1.0,)).pass_(_QueueOnly(store), store)
    for rid in store.run_ids():
        store.set_status(rid, "finished")
    at = _train(open_app("learn", store.path, monkeypatch).run())
    assert at.query_params["lesson"].startswith(f"{together},")
    when = time.strftime("%H:%M UTC", time.gmtime(store.get_run(together).finished))
    text = _infos(at)
    assert f"was trained ahead at {when} (run #{together}) by the server while it was idle" in text
    assert "replayed: nothing new was trained for this press" in text
    assert len(store.list_runs()) == 2  # nothing queued for the press


def test_the_apps_runner_holds_the_class_positions_unless_told_off(monkeypatch):
    from mtl_core.accounts.quota import Limits

    limits = Limits.none()
    monkeypatch.delenv("MTL_LAB_LESSON_AHEAD", raising=False)
    assert data.lessons_ahead(limits) == (1.0, 0.0, 0.25, 0.5, 0.75)
    offered = Limits.from_dict({**limits.to_dict(), "scenarios": ["synthetic", "csv"]})
    assert data.lessons_ahead(offered) == ()  # no lesson scenario, no lessons ahead
    monkeypatch.setenv("MTL_LAB_LESSON_AHEAD", "off")
    assert data.lessons_ahead(limits) == ()
    monkeypatch.setenv("MTL_LAB_LESSON_AHEAD", "1,2")
    assert data.lessons_ahead(limits) == ()  # malformed: logged, off


def test_a_page_opened_on_a_lesson_the_server_trains_ahead_says_it_is_the_servers(
    queue_only, monkeypatch
):
    """A page opened (Train not pressed) while the idle runner trains the default lesson
    ahead follows it live and names the server, not "another session"."""
    from mtl_core.lesson.passes import LessonsAhead

    store = queue_only
    (together,) = LessonsAhead((1.0,)).pass_(_QueueOnly(store), store)
    store.set_status(together, "running")
    at = open_app("learn", store.path, monkeypatch).run()
    assert not at.exception
    text = _infos(at)
    at_ = time.strftime("%H:%M UTC", time.gmtime(lesson.trained_ahead_at(store, together)))
    assert (
        f"is training now ahead by the server while it is idle (run #{together}, queued at "
        f"{at_})" in text
    )
    assert "another session" not in text
