"""Explore's groups: regrouping the shown matrix (cached; exact TAG on many tasks in the
background) and the groups panel beside the heatmap."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd
import streamlit as st

from app import regroup, words
from app.guard import show_error
from app.views.explore.controls import GroupControls

_TAG_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tag-search")


def group(M: np.ndarray, tasks: list[str], gc: GroupControls) -> tuple[
        regroup.GroupResult | None, bool]:
    """Group the shown matrix ``M`` ``(n, n)``: ``(result, pending)``; ``pending`` while a
    background TAG search is still running (then ``result`` is None). An error is shown and
    gives no groups."""
    try:
        if gc.method == "tag" and len(tasks) > regroup.TAG_INTERACTIVE_MAX:
            # Exact TAG on many tasks takes seconds: search in the background and keep the
            # page responsive; the page checks back until the answer is there.
            job = _tag_background(np.ascontiguousarray(M).tobytes(), M.shape[0], tuple(tasks),
                                  gc.k)
            if not job.done():
                return None, True
            return job.result(), False
        return _regroup_cached(M, tuple(tasks), gc.method, gc.k, gc.tau), False
    except Exception as exc:
        show_error(exc)
        return None, False


@st.cache_resource(show_spinner=False, max_entries=128)
def _tag_background(matrix: bytes, n: int, tasks: tuple[str, ...], k: int) -> Future:
    """One background TAG search per (matrix, k), shared by every session that asks. The
    thread only computes (no Streamlit calls); pages poll the future."""
    M = np.frombuffer(matrix, dtype=np.float64).reshape(n, n).copy()
    return _TAG_POOL.submit(regroup.regroup, M, list(tasks), "tag", k, 0.0, time_limit=1.0)


@st.cache_data(show_spinner=False, max_entries=256)
def _regroup_cached(M: np.ndarray, tasks: tuple[str, ...], method: str, k: int, tau: float):
    return regroup.regroup(M, list(tasks), method, k, tau)


def groups_frame(result: regroup.GroupResult, M: np.ndarray, tasks: list[str]) -> pd.DataFrame:
    """One row per group: members and the mean affinity inside the group."""
    rows = [{"group": r["group"], "tasks": r["tasks"], "size": r["size"],
             "mean affinity inside": words.group_mean(r["mean"])}
            for r in regroup.group_table(result.groups, M, tasks)]
    return pd.DataFrame(rows)


def groups_panel(result: regroup.GroupResult | None, pending: bool, M: np.ndarray,
                 tasks: list[str], gc: GroupControls) -> None:
    """The groups of the shown matrix: as text, as a table, and how good they are."""
    if pending:
        st.info(words.tag_searching(gc.k, len(tasks)), icon=":material/hourglass_top:")
        return
    st.markdown("**Groups**")
    if result is None:
        st.caption("Pick a grouping method to outline groups on the heatmap.")
        return
    st.markdown(words.format_grouping(result.groups))
    st.dataframe(groups_frame(result, M, tasks), hide_index=True, width="stretch")
    st.caption(words.groups_caption(result, gc.method))
