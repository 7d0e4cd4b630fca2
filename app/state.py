"""Shared state of the app: the cached store and runner, cached reads, and URL query sync.

The store on disk is the truth. ``st.session_state`` only holds ids and selections (which
runs this browser session started, widget values); everything shown is read from the store.
Reads are cached per run *version* (status + steps done), so a finished run is read once and
a running one once per new step, whichever page or session asks.
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

from mtl_core.runner import default_max_workers
from mtl_core.store import ACTIVE, RunInfo, Store, default_store_path

log = logging.getLogger("task_affinity_lab.app")

#: Query parameters kept in the URL so a view can be shared or reloaded.
QUERY_KEYS = ("run", "runs", "step", "measure", "method", "k", "tau")
MY_RUNS = "my_runs"  # session_state key: ids of the runs this browser session started


# ----------------------------------------------------------------------------- resources


def store_path() -> str:
    """The store file this app uses (``$MTL_LAB_STORE`` or ``./.lab/store.sqlite``)."""
    return str(default_store_path().resolve())


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return Store(path)


#: Workers train at a lower CPU priority, so pages stay responsive on the same cores.
WORKER_NICENESS = 10


@st.cache_resource(show_spinner=False)
def _runner(path: str, workers: int, train_fn: str | None, warm: int) -> Any:
    from mtl_core.runner import Runner

    return Runner(_store(path), max_workers=workers, train_fn=train_fn, warm=warm,
                  preload=("mtl_core.training:warmup",) if warm else (), nice=WORKER_NICENESS)


def get_store() -> Store:
    """The process-wide store handle (thread-safe; one connection per thread)."""
    return _store(store_path())


def get_runner() -> Any:
    """The process-wide runner (its supervisor thread launches queued runs as workers)."""
    # MTL_LAB_TRAIN_FN ("module:function") swaps the training function, e.g. a fast fake in
    # tests and load benchmarks; unset means the core's train.
    custom = os.environ.get("MTL_LAB_TRAIN_FN") or None
    return _runner(store_path(), default_max_workers(), custom, warm_workers(custom))


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
    """Every run, oldest first (not cached: one small query, and it must be fresh)."""
    return get_store().list_runs()


def get_run(run_id: int) -> RunInfo:
    return get_store().get_run(int(run_id))


@st.cache_resource(show_spinner=False, max_entries=24)
def _affinity(path: str, run_id: int, measure: str, ver: tuple) -> tuple:
    steps, tasks, A = _store(path).affinity_steps(run_id, measure)
    A.setflags(write=False)  # shared between sessions: nobody may modify it
    steps.setflags(write=False)
    return steps, list(tasks), A


def affinity(info: RunInfo, measure: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(steps, tasks, A (S, n, n))`` of one measure, read-only and shared."""
    return _affinity(store_path(), info.id, measure, version(info))


@st.cache_data(show_spinner=False, max_entries=48)
def _metrics(path: str, run_id: int, ver: tuple) -> pd.DataFrame:
    return _store(path).metrics(run_id)


def metrics(info: RunInfo) -> pd.DataFrame:
    """Long-form ``step, task, split, metric, value``."""
    return _metrics(store_path(), info.id, version(info))


# ----------------------------------------------------------------------------- derived, cached


@dataclass(frozen=True)
class RunView:
    """What the affinity views need of one run and measure, computed once per version."""

    run_id: int
    measure: str
    steps: np.ndarray
    tasks: list[str]
    raw: np.ndarray  # (S, n, n) as logged
    running: np.ndarray  # (S, n, n) time-averaged up to each step
    order: np.ndarray  # hierarchical leaf order of the whole-run average
    zmax: float  # fixed colour limit for single-step matrices of this run
    zmax_avg: float  # fixed colour limit for its time averages


@st.cache_resource(show_spinner=False, max_entries=16)
def _run_view(path: str, run_id: int, measure: str, ver: tuple) -> RunView | None:
    from app.analysis import robust_zmax, running_mean

    steps, tasks, A = _affinity(path, run_id, measure, ver)
    if len(steps) == 0:
        return None
    run = running_mean(A)
    for a in (run,):
        a.setflags(write=False)
    # Early running averages rest on a handful of noisy matrices: leave the first tenth out
    # of the time-average colour limit so the settled picture uses the whole scale.
    settled = run[len(run) // 10:]
    return RunView(run_id, measure, steps, tasks, A, run, leaf_order_safe(run[-1], tasks),
                   robust_zmax(A), robust_zmax(settled))


def run_view(info: RunInfo, measure: str) -> RunView | None:
    """Cached :class:`RunView`, or None while the run has no matrix of ``measure`` yet."""
    return _run_view(store_path(), info.id, measure, version(info))


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


# ----------------------------------------------------------------------------- runs & names


def run_label(info: RunInfo) -> str:
    """Stable display name: ``#id name`` (the id keeps equal names apart)."""
    return f"#{info.id} {info.name or 'run'}"


def my_runs() -> list[int]:
    """Ids of the runs this browser session started or uploaded (most recent last)."""
    return list(st.session_state.get(MY_RUNS, []))


def remember(*run_ids: int) -> None:
    """Mark runs as this session's own, so they are listed first."""
    mine = list(st.session_state.get(MY_RUNS, []))
    for rid in run_ids:
        if int(rid) not in mine:
            mine.append(int(rid))
    st.session_state[MY_RUNS] = mine


def ordered_runs(runs: Iterable[RunInfo], mine_only: bool = False) -> list[RunInfo]:
    """This session's runs first (newest first), then everyone else's (newest first)."""
    runs = list(runs)
    mine = set(my_runs())
    own = sorted((r for r in runs if r.id in mine), key=lambda r: -r.id)
    if mine_only:
        return own
    rest = sorted((r for r in runs if r.id not in mine), key=lambda r: -r.id)
    return own + rest


def any_active(runs: Iterable[RunInfo]) -> bool:
    return any(r.status in ACTIVE for r in runs)


# ----------------------------------------------------------------------------- URL sync


def qp_get(key: str, kind: type = str, default: Any = None) -> Any:
    """A typed query parameter (``default`` when absent or unparsable)."""
    raw = st.query_params.get(key)
    if raw is None or raw == "":
        return default
    try:
        if kind is bool:
            return raw.lower() in ("1", "true", "yes")
        value = kind(raw)
    except (TypeError, ValueError):
        return default
    if kind is float and not np.isfinite(value):  # ?tau=nan or inf: not a usable value
        return default
    return value


def qp_get_ints(key: str) -> list[int]:
    """A comma-separated list of ints (e.g. ``runs=3,5``); bad items are skipped."""
    raw = st.query_params.get(key) or ""
    out = []
    for part in str(raw).split(","):
        try:
            out.append(int(part))
        except ValueError:
            continue
    return out


def qp_set(**values: Any) -> None:
    """Write values to the URL (None removes a key); only touches keys that changed."""
    for key, value in values.items():
        if value is None:
            if key in st.query_params:
                del st.query_params[key]
            continue
        if isinstance(value, (list, tuple)):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, float):
            text = f"{value:.6g}"
        else:
            text = str(value)
        if st.query_params.get(key) != text:
            st.query_params[key] = text


def init_widget(key: str, value: Any) -> None:
    """Seed a widget's state once (e.g. from the URL) without fighting the user later."""
    if key not in st.session_state:
        st.session_state[key] = value
