"""The Learn page's reads, shared by every session following the same lesson.

A class follows a handful of lessons from many sessions at once (issue 22.3). Per session
and poll the page used to read the lesson again, rebuild its three plotly figures (about
40 ms for the heatmap alone on an idle core) and poll every 0.5 s: 30 sessions asked for
more CPU than two cores have, and the training workers (at a lower priority) starved.

Here a lesson is read once per *version* (its runs' :func:`app.data.version`: fixed once a
run has ended, one :data:`app.data.LIVE_REFRESH_S` slot while one is active) for all
sessions (:func:`lesson_state`, ``st.cache_resource``, bounded); the page caches what it
draws from it under the same key (:func:`state_key`). Each session still checks every run
of the lesson against its own visibility (:func:`app.data.get_run`). :func:`poll_interval`
spaces a session's polls out as more sessions follow lessons live.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import streamlit as st

from app import data
from app.storage import _store, store_path
from mtl_core.lesson.state import LessonState, state
from mtl_core.lesson.workflow import LessonIds

#: Fastest poll (s): new data arrives at most once per ``app.data.LIVE_REFRESH_S`` anyway.
POLL_MIN_S = 1.0
#: Slowest poll (s) while a lesson is live, however many sessions follow.
POLL_MAX_S = 3.0
#: Each session following a lesson live adds this much (s) to every session's poll, so the
#: page's polls together stay near ``1 / POLL_PER_SESSION_S`` per second (10/s).
POLL_PER_SESSION_S = 0.1
#: A session counts as following while it polled within this many seconds.
FOLLOWING_S = 10.0


def state_key(ids: LessonIds) -> tuple:
    """The lesson's version as this session may see it: ``(store, ids, each run's version,
    live slot)``. LabError (as if it did not exist) for a run this session may not see.

    The live slot is there while the grouped run's id is not known yet (the runner names it
    when the together run ends, which changes no version of the runs known so far)."""
    infos = [data.get_run(i) for i in ids.ids()]  # the visibility rule, per session
    slot = int(time.time() // data.LIVE_REFRESH_S) if ids.groups is None else None
    return (store_path(), ids.to_query(), tuple(data.version(i) for i in infos), slot)


def lesson_state(ids: LessonIds) -> tuple[tuple, LessonState]:
    """``(state_key(ids), LessonState)``: the lesson read once per version for every session
    (:func:`mtl_core.lesson.state.state` over the shared run caches), its runs (the grouped
    one found since included) checked against this session's visibility. LabError as
    :func:`state_key`."""
    key = state_key(ids)
    s = _lesson_state(key)
    for run_id in s.ids.ids():
        if run_id not in ids.ids():
            data.get_run(run_id)  # a run found since: this session must be allowed it too
    return key, s


class _StoreReads:
    """``mtl_core.lesson.state.LessonReader`` over the store itself and the app's shared
    run caches (no session's visibility: :func:`lesson_state` checks that per session)."""

    def __init__(self, path: str) -> None:
        self.store = _store(path)
        self._infos: dict[int, Any] = {}

    def get_run(self, run_id: int) -> Any:
        if int(run_id) not in self._infos:
            self._infos[int(run_id)] = self.store.get_run(int(run_id))
        return self._infos[int(run_id)]

    def metrics(self, run_id: int) -> Any:
        return data.metrics(self.get_run(run_id))

    def affinity_steps(self, run_id: int, measure: str) -> Any:
        return data.affinity(self.get_run(run_id), measure)

    def get_note(self, run_id: int, key: str) -> Any:
        return self.store.get_note(int(run_id), key)


@st.cache_resource(show_spinner=False, max_entries=64)
def _lesson_state(key: tuple) -> LessonState:
    path, text = key[0], key[1]
    ids = LessonIds.from_query(text)
    assert ids is not None
    return state(_StoreReads(path), ids)


class _Followers:
    """Which sessions polled a live lesson lately (thread-safe; sessions are threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}

    def poll(self, session: str, now: float) -> int:
        """Note that ``session`` polls at ``now``; how many sessions polled within
        :data:`FOLLOWING_S` (it included)."""
        with self._lock:
            self._seen[session] = now
            for k in [k for k, t in self._seen.items() if now - t > FOLLOWING_S]:
                del self._seen[k]
            return len(self._seen)

    def leave(self, session: str) -> None:
        with self._lock:
            self._seen.pop(session, None)


@st.cache_resource(show_spinner=False)
def _followers() -> _Followers:
    return _Followers()


def poll_interval(followers: int) -> float:
    """Seconds between a live lesson's polls with ``followers`` sessions following lessons
    live: :data:`POLL_PER_SESSION_S` each, between :data:`POLL_MIN_S` and
    :data:`POLL_MAX_S`, rounded up to half seconds (so it changes in few steps)."""
    raw = POLL_PER_SESSION_S * max(1, int(followers))
    return min(POLL_MAX_S, max(POLL_MIN_S, math.ceil(raw * 2) / 2))


def following(session: str, live: bool) -> int:
    """Record whether ``session`` (a per-session token) follows a lesson live now; how many
    sessions do (0 when it does not)."""
    if not live:
        _followers().leave(session)
        return 0
    return _followers().poll(session, time.monotonic())
