"""Explore's groups: regrouping the shown matrix (cached; TAG on many tasks in the
background, with progress) and the groups panel beside the heatmap."""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import streamlit as st

from app import captions, regroup, tables, words
from app.colours import group_colours
from app.escape import md
from app.guard import show_error
from app.views.explore.controls import GroupControls

_TAG_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tag-search")


@dataclass
class TagJob:
    """A background TAG search: its future and how far it got (written by the search's
    thread, read by pages; a tuple assignment is atomic)."""

    future: Future
    progress: tuple[float, str] = field(default=(0.0, "queued"))


_JOBS: OrderedDict[tuple, TagJob] = OrderedDict()
_JOBS_LOCK = threading.Lock()
_JOBS_MAX = 64


def tag_job(M: np.ndarray, tasks: tuple[str, ...], k: int) -> TagJob:
    """The background TAG search for (matrix, k), shared by every session that asks.

    A new search cancels the ones still queued behind the running one (the newest request
    wins: a moved slider or a new live step makes them stale); a page still waiting for a
    cancelled search submits it again on its next check. The thread only computes (no
    Streamlit calls); pages poll the job.
    """
    key = (np.ascontiguousarray(M).tobytes(), tasks, int(k))
    with _JOBS_LOCK:
        job = _JOBS.get(key)
        if job is not None and not job.future.cancelled():
            _JOBS.move_to_end(key)
            return job
        for other in _JOBS.values():
            other.future.cancel()  # no-op for the running and finished ones
        job = TagJob(Future())
        matrix = np.array(M, dtype=np.float64)

        def report(fraction: float, stage: str) -> None:
            job.progress = (float(fraction), stage)

        job.future = _TAG_POOL.submit(
            regroup.regroup, matrix, list(tasks), "tag", int(k), 0.0, progress=report
        )
        _JOBS[key] = job
        while len(_JOBS) > _JOBS_MAX:
            _JOBS.popitem(last=False)
        return job


def group(
    M: np.ndarray, tasks: list[str], gc: GroupControls
) -> tuple[regroup.GroupResult | None, TagJob | None]:
    """Group the shown matrix ``M`` ``(n, n)``: ``(result, pending job)``; the job while a
    background TAG search is still running (then ``result`` is None). An error is shown and
    gives no groups."""
    try:
        if gc.method == "tag" and len(tasks) > regroup.TAG_INTERACTIVE_MAX:
            # TAG on many tasks takes seconds: search in the background and keep the page
            # responsive; the page checks back (showing the progress) until the answer lands.
            job = tag_job(np.nan_to_num(np.asarray(M, dtype=np.float64)), tuple(tasks), gc.k)
            if not job.future.done():
                return None, job
            return job.future.result(), None
        return _regroup_cached(M, tuple(tasks), gc.method, gc.k, gc.tau), None
    except Exception as exc:
        show_error(exc)
        return None, None


@st.cache_data(show_spinner=False, max_entries=256)
def _regroup_cached(M: np.ndarray, tasks: tuple[str, ...], method: str, k: int, tau: float):
    return regroup.regroup(M, list(tasks), method, k, tau)


def groups_frame(
    result: regroup.GroupResult, M: np.ndarray, tasks: list[str], measure: str = "lookahead"
) -> pd.DataFrame:
    """One row per group: members and the mean affinity inside the group, in the measure's
    unit (the column says which)."""
    col = f"mean affinity inside ({words.unit_name(measure)})"
    rows = [
        {
            "group": r["group"],
            "tasks": r["tasks"],
            "size": r["size"],
            col: words.group_mean(r["mean"], measure),
        }
        for r in regroup.group_table(result.groups, M, tasks)
    ]
    return pd.DataFrame(rows)


def coloured(df: pd.DataFrame, groups) -> object:
    """The groups table with each group's number on its colour (the heatmap outline's)."""
    colours = group_colours(groups)
    fill = [colours.get(frozenset(g), "#888888") for g in groups]

    def paint(col: pd.Series) -> list[str]:
        return [
            f"background-color: {fill[i]}; color: white; font-weight: bold"
            if col.name == "group"
            else ""
            for i in range(len(col))
        ]

    return df.style.apply(paint, axis=0)


def groups_panel(
    result: regroup.GroupResult | None,
    pending: TagJob | None,
    M: np.ndarray,
    tasks: list[str],
    gc: GroupControls,
    measure: str = "lookahead",
) -> None:
    """The groups of the shown matrix: as text, as a table, and how good they are; while a
    background TAG search runs, its progress."""
    if pending is not None:
        fraction, stage = pending.progress
        st.info(words.tag_searching(gc.k, len(tasks)), icon=":material/hourglass_top:")
        st.progress(min(1.0, max(0.0, fraction)), text=words.tag_stage(stage))
        return
    st.markdown("**Groups**")
    if result is None:
        st.caption("Pick a grouping method to outline groups on the heatmap.")
        return
    if result.warning:
        st.warning(words.grouper_warning(result.warning), icon=":material/warning:")
        if gc.method == "affinity-propagation" and result.converged is False:
            st.button(
                words.NEXT_METHOD_BUTTON,
                key="explore_try_hierarchical",
                on_click=_switch_method,
                args=("hierarchical",),
                icon=":material/account_tree:",
            )
    st.markdown(md(words.format_grouping(result.groups)))
    tables.show_table(
        coloured(groups_frame(result, M, tasks, measure), result.groups),
        hide_index=True,
        width="stretch",
    )
    st.caption(words.groups_caption(result, gc.method, measure))
    if gc.tau_note:
        st.caption(captions.default_tau_note(gc.tau, measure))
    caveat = regroup.separation(M, tasks, result.groups)
    text = captions.separation_caveat(*caveat, measure) if caveat else None
    if text:
        st.warning(text, icon=":material/info:")


def _switch_method(method: str) -> None:
    """Button callback: group by ``method`` on the next run (before its widget is drawn)."""
    st.session_state["explore_method"] = method
