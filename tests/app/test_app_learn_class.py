"""Learn page (AppTest), a class following lessons live: a lesson is read and its figures
built once per version for every session following it (``app.data_lesson``), each session
still checks the runs against its own visibility, and the polls space out as more sessions
follow."""

from __future__ import annotations

import json
import os

import pytest

from app import data, data_lesson
from app.figures import heatmaps
from app.views import learn
from mtl_core.config import RunConfig
from mtl_core.lesson import workflow as lesson
from mtl_core.lesson.headless import _InProcess
from tests.helpers.app_fixtures import fake_train, open_app


@pytest.fixture
def live_lesson(store, monkeypatch):
    """A lesson whose together run is running (this process is its worker) with 150 of its
    steps stored; the page's runner queues nothing and trains nothing."""
    monkeypatch.setattr(data, "get_runner", lambda: None)
    ids = lesson.start(_InProcess(store), store, {"conflict": 1.0}, share="class")
    cfg = RunConfig.from_dict(store.get_run(ids.together).config)
    store.set_status(ids.together, "running")
    store.set_worker(ids.together, os.getpid())
    events: list = []
    fake_train(cfg, events.append)
    store.append_steps(ids.together, events[:150])
    data_lesson._lesson_state.clear()
    learn._figures.clear()
    data_lesson._followers().__init__()
    # one live slot for the whole test (the slot is what a poll of a running run reads at)
    monkeypatch.setattr(data, "LIVE_REFRESH_S", 3600.0)
    return store, ids, events


def _heatmap_title(at) -> str:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (heat,) = [s for s in specs if s["data"][0]["type"] == "heatmap"]
    return heat["layout"]["title"]["text"]


def _counting(monkeypatch, module, name) -> list:
    calls: list = []
    real = getattr(module, name)

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_sessions_following_one_lesson_read_and_draw_it_once_per_version(live_lesson, monkeypatch):
    store, ids, events = live_lesson
    reads = _counting(monkeypatch, data_lesson, "state")
    builds = _counting(monkeypatch, heatmaps, "heatmap")
    pages = [
        open_app("learn", store.path, monkeypatch, query={"lesson": ids.to_query()}).run()
        for _ in range(3)
    ]
    for at in pages:
        assert not at.exception
        assert _heatmap_title(at) == "Affinity, averaged over steps 1–150"
    assert (len(reads), len(builds)) == (1, 1)  # three sessions, one read and one figure
    for at in pages:
        at.run()  # a poll in the same version: nothing read or built again
    assert (len(reads), len(builds)) == (1, 1)
    # new steps and a new live slot: one more read and figure, every session sees step 200
    store.append_steps(ids.together, events[150:200])
    monkeypatch.setattr(data, "LIVE_REFRESH_S", 1800.0)
    for at in pages:
        at.run()
        assert _heatmap_title(at) == "Affinity, averaged over steps 1–200"
    assert (len(reads), len(builds)) == (2, 2)
    # all three sessions follow it live: each polls at the interval for three followers
    assert [at.session_state[learn.POLL_KEY] for at in pages] == [1.0] * 3
    assert data_lesson._followers().poll("someone else", 0.0) >= 3


def test_a_shared_lesson_read_is_still_checked_against_each_sessions_visibility(
    live_lesson, monkeypatch
):
    store, ids, _ = live_lesson
    store._write(lambda con: con.execute("UPDATE runs SET owner = 'browser:teacher'"))
    a = open_app("learn", store.path, monkeypatch, query={"lesson": ids.to_query()}).run()
    assert _heatmap_title(a) == "Affinity, averaged over steps 1–150"  # the read is cached
    b = open_app("learn", store.path, monkeypatch, query={"lesson": ids.to_query()})
    b.secrets["lab"] = {"visibility": "private"}
    b.run()
    assert not b.exception
    assert not b.get("plotly_chart")
    assert any(f"no run with id {ids.together} here" in e.value for e in b.error)


@pytest.mark.parametrize(
    ("followers", "seconds"), [(0, 1.0), (1, 1.0), (10, 1.0), (11, 1.5), (15, 1.5), (30, 3.0)]
)
def test_polls_space_out_as_more_sessions_follow(followers, seconds):
    assert data_lesson.poll_interval(followers) == seconds
    assert data_lesson.poll_interval(500) == data_lesson.POLL_MAX_S


def test_followers_count_only_sessions_that_polled_lately():
    f = data_lesson._Followers()
    assert [f.poll(s, 0.0) for s in ("a", "b", "c")] == [1, 2, 3]
    assert f.poll("a", data_lesson.FOLLOWING_S + 1.0) == 1  # b and c went quiet
    f.leave("a")
    assert f.poll("d", data_lesson.FOLLOWING_S + 2.0) == 1
