"""Where the pages get their data: the cached store and runner, and cached reads of runs.

The store on disk is the truth; everything shown is read from it here. Reads are cached per
run *version* (status + steps done), so a finished run is read once and a running one once
per refresh slot, whichever page or session asks; a running run's affinity and metrics reads
ask only for the steps after those already read, and its smoothings smooth only those
(:mod:`app.data_tail`). Cached arrays are shared between sessions and read-only.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app import auth
from app.colours import robust_zmax
from app.data_tail import AffinityTails, MetricsTails, SmoothTails
from app.storage import _store, get_store, store_path
from mtl_core.accounts.access import Actor
from mtl_core.accounts.quota import Limits
from mtl_core.errors import LabError
from mtl_core.runner import default_max_workers
from mtl_core.store import ACTIVE, RunInfo

log = logging.getLogger("task_affinity_lab.app")


# ----------------------------------------------------------------------------- the store and runner


#: Workers train at a lower CPU priority, so pages stay responsive on the same cores; only a
#: little lower (5, not 10): a class's pages are cheap now (``app.data_lesson``), and at 10
#: under a ``nice``-started server the workers fell to 19, level with every other job.
WORKER_NICENESS = 5


def lessons_ahead(limits: Limits) -> tuple[float, ...]:
    """The conflict levels the app's idle runner holds lessons at: ``$MTL_LAB_LESSON_AHEAD``
    (``off`` for none), by default the class's knob positions
    (:data:`mtl_core.lesson.passes.CLASS_POSITIONS`); none when the deployment does not offer
    the lesson scenario. A malformed value is logged and turns them off."""
    from mtl_core.lesson.passes import CLASS_POSITIONS, ahead_positions
    from mtl_core.lesson.workflow import SCENARIO

    if limits.scenarios is not None and SCENARIO not in limits.scenarios:
        return ()
    try:
        return ahead_positions(default=CLASS_POSITIONS)
    except LabError as exc:
        log.error("lessons ahead are off: %s", exc)
        return ()


@st.cache_resource(show_spinner=False)
def _runner(path: str, workers: int, train_fn: str | None, warm: int) -> Any:
    from mtl_core.experiments.background import EvaluationQueue
    from mtl_core.runner import Runner

    return Runner(
        _store(path),
        max_workers=workers,
        train_fn=train_fn,
        warm=warm,
        preload=("mtl_core.train.loop:warmup",) if warm else (),
        nice=WORKER_NICENESS,
        evaluations=EvaluationQueue(nice=WORKER_NICENESS),  # they take worker slots like runs
        lessons_ahead=lessons_ahead(auth.deployment().limits),
    )


class SessionRunner:
    """The process-wide runner as one browser session uses it: what it queues is owned by the
    session's user (``auth.current_actor``), checked against the deployment's limits and the
    user's queue quota; cancel, delete and rename are refused unless the user may
    (``mtl_core.accounts.access``). Everything else passes through to the runner."""

    def __init__(self, runner: Any, actor: Actor, limits: Limits) -> None:
        self._runner, self.actor, self.limits = runner, actor, limits

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)

    def submit(self, config: Any, **kw: Any) -> int:
        return self._runner.submit(config, owner=self.actor.id, limits=self.limits, **kw)

    def cancel(self, run_id: int) -> RunInfo:
        return self._runner.cancel(run_id, actor=self.actor)

    def delete(self, run_id: int) -> None:
        self._runner.delete(run_id, actor=self.actor)

    def rename(self, run_id: int, name: str) -> None:
        self._runner.store.rename_run(run_id, name, actor=self.actor)

    def follow_folder(self, folder: Any) -> int:
        return self._runner.follow_folder(folder, owner=self.actor.id, limits=self.limits)


def get_runner() -> SessionRunner:
    """The process-wide runner (its supervisor thread launches queued runs as workers), as
    this session's user uses it (:class:`SessionRunner`)."""
    # MTL_LAB_TRAIN_FN ("module:function") swaps the training function, e.g. a fast fake in
    # tests and load benchmarks; unset means the core's train.
    custom = os.environ.get("MTL_LAB_TRAIN_FN") or None
    dep = auth.deployment()
    return SessionRunner(
        _runner(store_path(), default_max_workers(), custom, warm_workers(custom)),
        auth.current_actor(dep),
        dep.limits,
    )


def wake_runner() -> None:
    """Start the process-wide runner if it is not running yet, and make it look at the queue
    now (a ground truth was queued)."""
    custom = os.environ.get("MTL_LAB_TRAIN_FN") or None
    _runner(store_path(), default_max_workers(), custom, warm_workers(custom)).wake()


def import_parsed(parsed: Any, name: str) -> list[int]:
    """Save an uploaded file's runs, owned by this session's user."""
    return get_store().import_parsed(parsed, name=name, owner=auth.current_actor().id)


def save_table(data: bytes, file_name: str) -> str:
    """Save an uploaded table beside the store (content-addressed), owned by this session's
    user; returns the reference a run's ``table`` knob holds."""
    from mtl_core.scenarios import table_files

    folder = table_files.tables_dir(store_path())
    return table_files.save_table(data, file_name, auth.current_actor().id, folder)


def warm_workers(custom_train_fn: str | None = None) -> int:
    """Standby workers with torch already imported, so Train starts training at once:
    ``$MTL_LAB_WARM_WORKERS``, else one per worker slot (none with a custom train function)."""
    raw = os.environ.get("MTL_LAB_WARM_WORKERS", "").strip()
    if raw:
        try:
            return max(0, int(raw))
        except ValueError:
            pass
    return 0 if custom_train_fn else default_max_workers()


# ----------------------------------------------------------------------------- cached reads


#: While a run trains, its data is re-read at most once per this many seconds, shared by every
#: session watching it (each session would otherwise see its own step count and miss).
LIVE_REFRESH_S = 1.0


def version(info: RunInfo) -> tuple[Any, ...]:
    """Cache key of a run's data. A finished run's key is fixed (read once); an active run's
    key is a time slot of ``LIVE_REFRESH_S``, so all sessions share one read per slot."""
    if info.status in ACTIVE:
        return ("live", int(time.time() // LIVE_REFRESH_S))
    return (info.status, info.steps_done, info.last_step, tuple(info.measures))


def list_runs() -> list[RunInfo]:
    """Every run this session may see (``auth.visible``), oldest first (not cached: one
    small query, and it must be fresh)."""
    return auth.visible(get_store().list_runs())


def get_run(run_id: int) -> RunInfo:
    """One run this session may see; LabError as if it did not exist otherwise."""
    info = get_store().get_run(int(run_id))
    if not auth.visible([info]):
        raise LabError(f"no run with id {int(run_id)} here")
    return info


@st.cache_resource(show_spinner=False)
def _tails(path: str) -> AffinityTails:
    return AffinityTails()


@st.cache_resource(show_spinner=False)
def _smooth_tails(path: str) -> SmoothTails:
    return SmoothTails()


@st.cache_resource(show_spinner=False, max_entries=24)
def _affinity(path: str, run_id: int, measure: str, ver: tuple) -> tuple:
    # one read per version (a live run's refresh slot) for all sessions; each read asks the
    # store only for the steps after the last one read (app.data_tail); the generation tags
    # the rows so smoothings extend instead of starting again
    return _tails(path).read_tagged(_store(path), run_id, measure)


def _smoothing(path: str, run_id: int, measure: str, ver: tuple, how: str, **kw: Any) -> Any:
    """``smooth(A, how, **kw)`` of the run's matrices at ``ver``, smoothing only the steps new
    since the last version (:class:`app.data_tail.SmoothTails`)."""
    _, _, A, gen = _affinity(path, run_id, measure, ver)
    window, beta = int(kw.get("window", 20)), float(kw.get("beta", 0.9))
    return _smooth_tails(path).smooth((run_id, measure), gen, A, how, window, beta)


def affinity(info: RunInfo, measure: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(steps, tasks, A (S, n, n))`` of one measure, read-only and shared."""
    return _affinity(store_path(), info.id, measure, version(info))[:3]


@st.cache_resource(show_spinner=False)
def _metrics_tails(path: str) -> MetricsTails:
    return MetricsTails()


@st.cache_data(show_spinner=False, max_entries=48)
def _metrics(path: str, run_id: int, ver: tuple) -> pd.DataFrame:
    # a live run's poll reads only the steps after those read before (app.data_tail);
    # cache_data hands every caller its own copy of the shared frame
    return _metrics_tails(path).read(_store(path), run_id)


def metrics(info: RunInfo) -> pd.DataFrame:
    """Long-form ``step, task, split, metric, value``."""
    return _metrics(store_path(), info.id, version(info))


def any_active(runs: Iterable[RunInfo]) -> bool:
    """Whether any of ``runs`` is queued or running."""
    return any(r.status in ACTIVE for r in runs)


def lesson_share() -> str:
    """Who shares a Learn lesson (``mtl_core.lesson.workflow.SHARES``): the deployment's
    visibility, so a student follows only lessons they may see (in private mode their own
    and unowned ones)."""
    return auth.deployment().visibility


#: The queue order is read at most once per this many seconds for all sessions (every queued
#: session's poll asks for its place), and again at once for a run not in it.
QUEUE_REFRESH_S = 2.0


def lesson_pace() -> Any:
    """Measured seconds per step of this server's recent lesson runs
    (``mtl_core.lesson.estimate.Pace``), None before any has finished; read once each
    time it changes (a run finished) for every session."""
    try:
        finished = get_store().run_ids("finished")
    except LabError:
        return None
    return _lesson_pace(store_path(), len(finished), finished[-1] if finished else None)


@st.cache_resource(show_spinner=False, max_entries=4)
def _lesson_pace(path: str, count: int, last: int | None) -> Any:
    from mtl_core.lesson.estimate import measured_pace

    try:
        return measured_pace(_store(path).list_runs())
    except LabError:
        return None


@st.cache_resource(show_spinner=False, max_entries=2)
def _queue_order(path: str, slot: int) -> tuple[int, ...]:
    return tuple(_store(path).queue_order())


def lesson_wait(ahead: int | None, steps: int) -> tuple[float, Any] | None:
    """``(seconds until a queued lesson run with ``ahead`` runs before it starts, pace)``
    from the measured pace, the running runs' remaining time and the worker count; None
    when nothing has been measured yet or the place is unknown."""
    from mtl_core.lesson.estimate import left_s, start_wait

    pace = lesson_pace()
    if pace is None or ahead is None:
        return None
    try:
        store = get_store()
        running = [store.get_run(i) for i in store.run_ids("running")]
    except LabError:
        return None
    busy = [left_s(r, pace) for r in running]
    return start_wait(ahead, busy, default_max_workers(), pace.s_per_step * steps), pace


def queue_ahead(info: RunInfo) -> int | None:
    """How many queued runs start before ``info`` (None unless it is queued, or unknown)."""
    if info.status != "queued":
        return None
    slot = int(time.time() // QUEUE_REFRESH_S)
    try:
        order = _queue_order(store_path(), slot)
        if info.id not in order:  # queued since the order was read
            order = tuple(get_store().queue_order())
        return order.index(info.id)
    except (ValueError, LabError):
        return None


class LessonReader:
    """The store as the Learn page reads a lesson (``mtl_core.lesson.state.LessonReader``):
    every run through :func:`get_run`'s visibility rule (LabError as if it did not exist),
    its metrics and affinity from the shared caches. One per page run (it keeps the records
    it has read, so one drawing sees one version of each run)."""

    def __init__(self) -> None:
        self._infos: dict[int, RunInfo] = {}

    def get_run(self, run_id: int) -> RunInfo:
        if int(run_id) not in self._infos:
            self._infos[int(run_id)] = get_run(run_id)
        return self._infos[int(run_id)]

    def metrics(self, run_id: int) -> pd.DataFrame:
        return metrics(self.get_run(run_id))

    def affinity_steps(self, run_id: int, measure: str) -> tuple[Any, list[str], Any]:
        return affinity(self.get_run(run_id), measure)

    def get_note(self, run_id: int, key: str) -> dict[str, Any] | None:
        self.get_run(run_id)  # a note of a run this session may not see is not there
        return get_store().get_note(int(run_id), key)


# ----------------------------------------------------------------------------- derived, cached


@dataclass(frozen=True)
class RunView:
    """What the affinity views need of one run and measure, computed once per version.

    Arrays are ``(S, n, n)`` with ``[s, i, j]`` = source i -> target j at ``steps[s]``.
    """

    run_id: int
    measure: str
    version: tuple  # the run version it was read at (a cache key for what derives from it)
    steps: np.ndarray
    tasks: list[str]
    raw: np.ndarray  # (S, n, n) as logged (NaN: not logged)
    running: np.ndarray  # (S, n, n) time-averaged up to each step
    order: np.ndarray  # hierarchical leaf order of the whole-run average
    zmax: float  # fixed colour limit for single-step matrices of this run
    zmax_avg: float  # fixed colour limit for its time averages


@st.cache_resource(show_spinner=False, max_entries=16)
def _run_view(path: str, run_id: int, measure: str, ver: tuple) -> RunView | None:
    steps, tasks, A, _ = _affinity(path, run_id, measure, ver)
    if len(steps) == 0:
        return None
    run = _smoothing(path, run_id, measure, ver, "running")
    # Early running averages rest on a handful of noisy matrices: leave the first tenth out
    # of the time-average colour limit so the settled picture uses the whole scale.
    settled = run[len(run) // 10 :]
    return RunView(
        run_id,
        measure,
        ver,
        steps,
        tasks,
        A,
        run,
        leaf_order_safe(run[-1], tasks),
        robust_zmax(A),
        robust_zmax(settled),
    )


def run_view(info: RunInfo, measure: str) -> RunView | None:
    """Cached :class:`RunView`, or None while the run has no matrix of ``measure`` yet."""
    return _run_view(store_path(), info.id, measure, version(info))


@dataclass(frozen=True)
class Smoothed:
    """A run's matrices smoothed over steps (``mtl_core.series.smooth``) and their colour
    limit: what the heatmap, the animation, the pair view and the group timeline all show."""

    stack: np.ndarray  # (S, n, n), read-only; NaN where nothing was logged yet
    zmax: float


def smoothed(view: RunView, how: str, window: int = 20, beta: float = 0.9) -> Smoothed:
    """``view``'s matrices smoothed by ``how`` (``none``, ``running``, ``window``, ``ema``),
    cached per run version and smoothing, shared by every page and session."""
    if how == "none":
        return Smoothed(view.raw, view.zmax)
    if how == "running":
        return Smoothed(view.running, view.zmax_avg)
    return _smoothed(
        store_path(), view.run_id, view.measure, view.version, how, int(window), float(beta)
    )


@st.cache_resource(show_spinner=False, max_entries=16)
def _smoothed(
    path: str, run_id: int, measure: str, ver: tuple, how: str, window: int, beta: float
) -> Smoothed:
    stack = _smoothing(path, run_id, measure, ver, how, window=window, beta=beta)
    return Smoothed(stack, robust_zmax(stack))


def leaf_order_safe(A: np.ndarray, tasks: list[str]) -> np.ndarray:
    """Hierarchical leaf order for heatmap rows; the identity if the matrix cannot be
    clustered yet (NaN cells early in a run)."""
    from mtl_core.grouping import leaf_order

    M = np.nan_to_num(np.asarray(A, dtype=np.float64))
    try:
        return np.asarray(leaf_order(M, tasks), dtype=np.intp)
    except Exception:  # an ordering is a nicety: never fail a page over it
        log.debug("leaf order failed", exc_info=True)
        return np.arange(len(tasks))
