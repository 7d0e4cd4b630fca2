"""Explore's tabs under the heatmap: loss curves, the play-over-steps animation, one pair over
time, and the group timeline. Figures are cached per run version and settings (building a
plotly figure costs more than reading the data)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import captions, data, regroup, session, words
from app.charts import chart_with_export
from app.colours import group_colours, run_colour
from app.escape import md
from app.figures import animation, lines, timeline
from app.guard import show_error
from app.views.explore.controls import GroupControls, ViewControls
from mtl_core.store import RunInfo

TABS = ["Loss curves", "Play over steps", "A pair over time", "Groups over time", "Ground truth"]
#: The tabs as the URL names them (``?tab=pair``).
TAB_KEYS = ["loss", "play", "pair", "timeline", "truth"]
SPLITS = ("val", "test", "train", "batch")


def seed_tab() -> None:
    """Open the tab the URL names (``?tab=pair``) when the page is first drawn."""
    if "explore_tab" not in st.session_state:
        want = session.qp_get("tab")
        if want in TAB_KEYS:
            st.session_state["explore_tab"] = TABS[TAB_KEYS.index(want)]


def remember_tab() -> None:
    """Write the open tab to the URL (the first tab is the default: no key)."""
    tab = st.session_state.get("explore_tab")
    key = TAB_KEYS[TABS.index(tab)] if tab in TABS else None
    session.qp_set(tab=key if key != TAB_KEYS[0] else None)


# ----------------------------------------------------------------------------- loss curves


def loss_tab(info: RunInfo) -> None:
    """Per-task loss curves of the run, one split at a time."""
    df = data.metrics(info)
    have = [] if df is None or df.empty else [s for s in SPLITS if (df["split"] == s).any()]
    if not have:
        st.info(captions.no_losses(info.status, info.origin, info.is_active))
        return
    c1, c2, c3 = st.columns([2, 1, 1])
    session.keep_value("explore_split", have[0], valid=lambda s: s in have)
    if st.session_state.get("explore_split") not in have:
        st.session_state["explore_split"] = have[0]
    split = c1.radio(
        "Split",
        have,
        horizontal=True,
        key="explore_split",
        format_func=lambda s: {"batch": "train minibatch"}.get(s, s),
    )
    session.remember_value("explore_split")
    mean_only = c2.toggle("Mean over tasks", key="explore_mean_only")
    log_y = c3.toggle("Log scale", key="explore_log")
    fig = _loss_figure(data.store_path(), info.id, data.version(info), split, mean_only, log_y)
    chart_with_export(
        fig,
        captions.export_name(f"run{info.id}", info.name, "loss", split),
        "explore_loss",
        export_title=captions.export_title(
            f"Per-task {split} loss", words.run_label(info), None, None
        ),
    )


@st.cache_resource(show_spinner=False, max_entries=64)
def _loss_figure(path: str, run_id: int, ver: tuple, split: str, mean_only: bool, log_y: bool):
    """Per-task loss curves of a run, built once per run version and shared by every session
    (figure building, not the data, is the costly part of a live refresh)."""
    info = data.get_run(run_id)
    label = words.run_label(info)
    return lines.loss_curves(
        {label: data.metrics(info)},
        split=split,
        tasks=info.tasks or None,
        mean_only=mean_only,
        log_y=log_y,
        colours={label: run_colour(info.id)},
        title=f"Per-task {split} loss",
    )


# ----------------------------------------------------------------------------- play


def play_tab(view: data.RunView, vc: ViewControls) -> None:
    """The heatmap over the whole run, with a play button, on a fixed colour scale."""
    anim = _animation(
        data.store_path(),
        view.run_id,
        view.measure,
        view.version,
        vc.heatmap_smoothing,
        vc.window,
        vc.beta,
        vc.hide_diag,
    )
    chart_with_export(
        anim, captions.export_name(f"run{view.run_id}", view.measure, "animation"), "explore_anim"
    )


@st.cache_resource(show_spinner=False, max_entries=8)
def _animation(
    path: str,
    run_id: int,
    measure: str,
    ver: tuple,
    how: str,
    window: int,
    beta: float,
    hide_diag: bool,
):
    """The play-over-steps figure, built once per run version and view settings: it does not
    depend on the grouping controls, so moving them never rebuilds it."""
    view = data.run_view(data.get_run(run_id), measure)
    sm = data.smoothed(view, how, window, beta)
    return animation.animated_heatmap(
        view.steps,
        sm.stack,
        view.tasks,
        measure=measure,
        zmax=sm.zmax,
        order=view.order,
        hide_diagonal=hide_diag,
        title="Press ▶ to play (fixed colour scale)",
    )


# ----------------------------------------------------------------------------- one pair


def pair_tab(view: data.RunView, vc: ViewControls) -> None:
    """One source→target cell over the run: as logged and smoothed."""
    tasks = view.tasks
    if len(tasks) < 2:
        st.info("A pair needs two tasks.")
        return
    if len(view.steps) < 2:
        st.info(
            "This run logged one step: there is no time series to follow (the heatmap "
            "above shows every pair at that step)."
        )
        return
    avg = np.nan_to_num(view.running[-1], nan=np.inf)
    np.fill_diagonal(avg, np.inf)
    i, j = np.unravel_index(int(np.argmin(avg)), avg.shape)
    c1, c2 = st.columns(2)
    # in the URL as ?src=&tgt= (bind; the default is the most harmful pair; they leave the
    # URL with the tab, as widgets no longer drawn)
    session.seed_bound("src", tasks[i], valid=lambda t: t in tasks)
    session.seed_bound("tgt", tasks[j], valid=lambda t: t in tasks)
    src = c1.selectbox(
        "Source (the task that takes the step)", tasks, int(i), key="src", bind="query-params"
    )
    tgt = c2.selectbox(
        "Target (the task whose loss changes)", tasks, int(j), key="tgt", bind="query-params"
    )
    session.remember_value("src")
    session.remember_value("tgt")
    a, b = tasks.index(src), tasks.index(tgt)
    smoothed = data.smoothed(view, vc.series_smoothing, vc.window, vc.beta).stack[:, a, b]
    fig = lines.pair_series(
        view.steps,
        view.raw[:, a, b],
        smoothed,
        source=src,
        target=tgt,
        measure=view.measure,
        smoothed_label="smoothed" if vc.how != "none" else "running average",
    )
    last = int(view.steps[-1])
    chart_with_export(
        fig,
        captions.export_name(f"run{view.run_id}", view.measure, "pair", src, "to", tgt),
        "explore_pair",
        export_title=captions.export_title(
            words.pair_title(src, tgt),
            f"run #{view.run_id}",
            view.measure,
            captions.steps_range(int(view.steps[0]), last),
        ),
    )
    st.caption(
        md(
            captions.pair_caption(
                src,
                tgt,
                float(view.running[-1][a, b]),
                view.measure,
                default=(a, b) == (i, j),
                worst=float(view.running[-1][i, j]),
            )
        )
    )


# ----------------------------------------------------------------------------- groups over time


def timeline_tab(view: data.RunView, vc: ViewControls, gc: GroupControls, shown=None) -> None:
    """The grouping at every logged step of the smoothed matrices, with its change points."""
    if gc.method == "none":
        st.info("Pick a grouping method to see how the groups change over training.")
        return
    if len(view.steps) < 2:
        st.info(
            "This run logged one step: the groups cannot change over training (they are "
            "the ones shown beside the heatmap)."
        )
        return
    try:
        tl = group_timeline(view, vc, gc)
    except Exception as exc:
        show_error(exc)
        return
    if tl is None:
        return
    fig = timeline.group_timeline(
        tl.steps,
        tl.groupings,
        view.tasks,
        order=view.order,
        changes=tl.change_steps,
        colours=group_colours(shown, *tl.groupings),
        current_step=int(view.steps[vc.step_idx]),
        title="Group of each task over training (colour = group)",
    )
    chart_with_export(
        fig,
        captions.export_name(f"run{view.run_id}", view.measure, "groups", gc.method),
        "explore_timeline",
    )
    st.caption(
        words.timeline_caption(
            vc.series_smoothing, vc.window, vc.beta, tl.change_steps, len(tl.steps), len(view.steps)
        )
    )


def group_timeline(
    view: data.RunView, vc: ViewControls, gc: GroupControls
) -> regroup.Timeline | None:
    """The group timeline of the matrices the controls describe, cached per run version."""
    return _timeline_cached(
        data.store_path(),
        view.run_id,
        view.version,
        view.measure,
        gc.method,
        gc.k,
        gc.tau,
        vc.series_smoothing,
        vc.window,
        vc.beta,
    )


@st.cache_resource(show_spinner="Grouping every step…", max_entries=64)
def _timeline_cached(
    path: str,
    run_id: int,
    ver: tuple,
    measure: str,
    method: str,
    k: int,
    tau: float,
    how: str,
    window: int,
    beta: float,
):
    """Keyed by the run's version, not by the matrices (hashing 2,000 matrices per rerun
    would cost more than the lookup saves)."""
    view = data.run_view(data.get_run(run_id), measure)
    if view is None:
        return None
    stack = data.smoothed(view, how, window, beta).stack
    return regroup.timeline(view.steps, stack, view.tasks, method, k, tau)
