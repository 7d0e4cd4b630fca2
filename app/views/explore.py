"""Explore one run, live while it trains.

Heatmap at a step (or time-averaged up to it) with smoothing, rows in hierarchical leaf order;
grouping controls that regroup at once and outline the groups on the heatmap; a play
animation on a fixed colour scale; any pair over time; the group timeline with its change
points; per-task loss curves; and the ground-truth evaluation, run in the background.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd
import streamlit as st

from app import analysis, figures, grouping_view, jobs, nav, state, widgets
from app.state import RunView
from mtl_core.store import RunInfo

POLL_S = 2.0
SMOOTHING = {"none": "none (as logged)", "window": "moving window", "ema": "EMA"}
MATRIX = {"average": "time-averaged up to the step", "step": "at the step (smoothed)"}
SPLITS = ("val", "test", "train", "batch")
TABS = ["Loss curves", "Play over steps", "A pair over time", "Groups over time", "Ground truth"]


def render() -> None:
    st.title("Explore a run")
    runs = state.list_runs()
    if not runs:
        st.info("No runs yet: run the lesson, queue a run on the Train page, or upload a log.")
        nav.link("learn", "Start the lesson", icon=":material/school:")
        return
    c1, c2 = st.columns([3, 1])
    with c1:
        info = widgets.run_picker("Run", "explore_run", runs, qp_key="run", need_measure=True)
    if info is None:
        return
    measures = info.measures
    with c2:
        measure = None
        if measures:
            widgets.keep_value("explore_measure", measures[0], "measure",
                               valid=lambda m: m in measures)
            if st.session_state.get("explore_measure") not in measures:
                st.session_state["explore_measure"] = measures[0]
            measure = st.selectbox("Affinity measure", measures, key="explore_measure")
            widgets.remember_value("explore_measure")
            state.qp_set(measure=measure)
    active = info.is_active
    st.fragment(run_every=POLL_S if active else None)(_body)(info.id, measure, active)


def _body(run_id: int, measure: str | None, was_active: bool) -> None:
    info = state.get_run(run_id)
    if measure is None and info.measures:
        st.rerun()  # the first matrix just landed: rebuild the page with its measure picker
    st.markdown(f"{widgets.colour_dot(info.id)} **{state.run_label(info)}** · "
                f"{widgets.status_text(info)} · {info.origin}", unsafe_allow_html=True)
    if info.status == "running" and info.steps_total:
        st.progress(float(info.progress or 0.0))
    if info.error:
        verb = {"cancelled": "was cancelled", "interrupted": "was interrupted",
                "failed": "failed"}.get(info.status, info.status)
        (st.warning if info.status in ("cancelled", "interrupted") else st.error)(
            f"This run {verb}: {info.error}" if info.status != "cancelled"
            else f"This run was cancelled; the {info.steps_done} steps logged before are kept.")
    view = state.run_view(info, measure) if measure else None
    if view is None:
        planned = ((info.config or {}).get("affinity") or {}).get("measure", "none")
        if measure is None and not (info.is_active and planned != "none"):
            st.info("This run logged no affinity (e.g. a grouped or single-task run); its loss "
                    "curves are below.")
        else:
            st.info("No affinity matrix logged yet — it appears here as soon as the first one "
                    "lands.")
        _loss_tab(info)
        _stop_polling_if_done(info, was_active)
        return
    step_idx, matrix_mode, how, window, beta, hide_diag = _view_controls(view, info)
    stack = analysis.smooth(view.raw, how, window, beta) if how != "none" else view.raw
    if matrix_mode == "average":
        M = view.running[step_idx]
        zmax = view.zmax_avg
    else:
        M = stack[step_idx]
        zmax = view.zmax if how == "none" else analysis.robust_zmax(stack)
    step = int(view.steps[step_idx])
    method, k, tau = _group_controls(view, M, measure)
    result, pending = None, False
    try:
        if method == "tag" and len(view.tasks) > grouping_view.TAG_INTERACTIVE_MAX:
            # Exact TAG on many tasks takes seconds: search in the background and keep the
            # page responsive; this fragment checks back until the answer is there.
            job = _tag_background(np.ascontiguousarray(M).tobytes(), M.shape[0],
                                  tuple(view.tasks), k)
            pending = not job.done()
            if not pending:
                result = job.result()
        else:
            result = _regroup_cached(M, tuple(view.tasks), method, k, tau)
    except Exception as exc:
        widgets.show_error(exc)
    grouping = result.groups if result else None
    order = analysis.group_order(view.tasks, view.order, grouping)
    left, right = st.columns([3, 2])
    with left:
        title = (f"Averaged over steps {int(view.steps[0])}–{step}" if matrix_mode == "average"
                 else f"Step {step}" + (f" ({SMOOTHING[how]})" if how != "none" else ""))
        fig = _heatmap_cached(M, tuple(view.tasks), measure, float(zmax), tuple(order),
                              grouping, hide_diag, title)
        event = widgets.chart_with_export(fig, f"run{info.id}_{measure}_step{step}",
                                          "explore_heatmap", select=True)
        _open_clicked_pair(widgets.clicked_point(event), view.tasks)
        st.caption("Click a cell to see that pair over time.")
    with right:
        if pending:
            st.info(f"TAG is searching for the best {k} groups of {len(view.tasks)} tasks "
                    "(exact search; a few seconds)…", icon=":material/hourglass_top:")
        else:
            _groups_panel(result, M, view.tasks, method)
    # Lazy tabs: only the open tab's content is computed and sent (the animation and the
    # timeline are the heaviest parts of the page).
    tabs = st.tabs(TABS, key="explore_tab", on_change="rerun")
    if tabs[0].open:
        with tabs[0]:
            _loss_tab(info)
    if tabs[1].open:
        with tabs[1]:
            anim = _animation(state.store_path(), info.id, state.version(info), measure,
                              matrix_mode, how, window, beta, hide_diag)
            widgets.chart_with_export(anim, f"run{info.id}_{measure}_animation", "explore_anim")
    if tabs[2].open:
        with tabs[2]:
            _pair_tab(view, stack, measure, how)
    if tabs[3].open:
        with tabs[3]:
            _timeline_tab(view, method, k, tau, how, window, beta, step_idx)
    if tabs[4].open:
        with tabs[4]:
            _ground_truth_tab(info, method, k)
    _stop_polling_if_done(info, was_active)
    if pending:
        time.sleep(0.3)
        st.rerun()  # check back (a full rerun of this page costs well under 100 ms)


def _stop_polling_if_done(info: RunInfo, was_active: bool) -> None:
    if was_active and not info.is_active:
        st.rerun()


# ----------------------------------------------------------------------------- controls


def _view_controls(view: RunView, info: RunInfo) -> tuple:
    steps = [int(s) for s in view.steps]
    c1, c2, c3, c4 = st.columns([4, 2, 2, 1.2])
    follow = False
    if info.is_active:
        follow = c4.toggle("Live", value=True, key="explore_follow",
                           help="Keep showing the latest logged step while the run trains")
    else:
        c4.write("")
    widgets.keep_value("explore_step", steps[-1], "step", int, valid=lambda s: s in steps)
    if follow or st.session_state.get("explore_step") not in steps:
        st.session_state["explore_step"] = steps[-1]
    gaps = np.diff(view.steps)
    if len(steps) > 1 and (gaps == gaps[0]).all():
        # Evenly logged (every trained run): a plain slider, no option list to send on every
        # live refresh (a long run has thousands of logged steps).
        step = c1.slider("Step", steps[0], steps[-1], step=int(gaps[0]), key="explore_step",
                         help="Logged steps of this run")
    elif len(steps) > 1:
        step = c1.select_slider("Step", options=steps, key="explore_step",
                                help="Logged steps of this run")
    else:
        step = steps[0]
        c1.caption(f"One logged step: {step}")
    widgets.remember_value("explore_step")
    state.qp_set(step=step)
    widgets.keep_value("explore_matrix", "average", "matrix", valid=lambda m: m in MATRIX)
    matrix_mode = c2.radio("Matrix", list(MATRIX), format_func=MATRIX.get, key="explore_matrix")
    widgets.remember_value("explore_matrix")
    widgets.keep_value("explore_smooth", "none", "smooth", valid=lambda h: h in SMOOTHING)
    how = c3.selectbox("Smoothing", list(SMOOTHING), format_func=SMOOTHING.get,
                       key="explore_smooth",
                       help="Smooths the matrices over steps for 'at the step', the pair view "
                            "and the group timeline (the time average needs none)")
    widgets.remember_value("explore_smooth")
    state.qp_set(matrix=matrix_mode if matrix_mode != "average" else None,
                 smooth=how if how != "none" else None)
    window, beta = 20, 0.9
    with st.expander("Smoothing and display options", icon=":material/tune:"):
        o1, o2, o3 = st.columns(3)
        window = o1.number_input("window (logged steps)", 1, 10_000, 20, key="explore_window")
        beta = o2.slider("EMA beta", 0.0, 0.99, 0.9, key="explore_beta")
        hide = o3.toggle("Hide the diagonal (a task on itself)", value=True,
                         key="explore_hide_diag",
                         help="Self-affinity is large and would wash out the colour scale")
    return steps.index(step), matrix_mode, how, int(window), float(beta), bool(hide)


def _group_controls(view: RunView, M: np.ndarray, measure: str) -> tuple[str, int, float]:
    n = len(view.tasks)
    methods = list(grouping_view.METHODS)
    c1, c2, c3 = st.columns([2, 2, 3])
    widgets.keep_value("explore_method", "threshold", "method", valid=lambda m: m in methods)
    method = c1.selectbox("Grouping", methods, format_func=grouping_view.METHODS.get,
                          key="explore_method")
    widgets.remember_value("explore_method")
    kmax = max(1, n)
    widgets.keep_value("explore_k", min(2, kmax), "k", int, valid=lambda k: 1 <= k <= kmax)
    if st.session_state.get("explore_k", 1) > kmax:
        st.session_state["explore_k"] = kmax
    k = c2.slider("k (number of groups)", 1, kmax, key="explore_k",
                  disabled=method not in ("tag", "hierarchical"),
                  help="TAG picks at most k groups (they may overlap); hierarchical cuts the "
                       "tree into k clusters")
    widgets.remember_value("explore_k")
    lo, hi = grouping_view.tau_range(M)
    pct = measure in ("lookahead", "proximal")
    unit = 100.0 if pct else 1.0
    lo_u, hi_u = _nice(lo * unit, "floor"), _nice(hi * unit, "ceil")
    if hi_u <= lo_u:
        hi_u = lo_u + 1.0
    key_u = "explore_tau_ui"  # the slider shows percent for loss-change measures
    if key_u not in st.session_state or st.session_state.get("_explore_tau_unit") != unit:
        raw = state.qp_get("tau", float) if key_u not in st.session_state else None
        if raw is None:
            raw = float(st.session_state.get("_keep_explore_tau", 0.0))
        st.session_state[key_u] = raw * unit
        st.session_state["_explore_tau_unit"] = unit
    st.session_state[key_u] = float(np.clip(st.session_state[key_u], lo_u, hi_u))
    tau_u = c3.slider(
        "threshold: link tasks whose mutual affinity is at least"
        + (" (% loss change)" if pct else ""),
        lo_u, hi_u, step=(hi_u - lo_u) / 200, key=key_u, format="%.3f",
        disabled=method != "threshold",
        help="Tasks i and j are linked when (A[i,j] + A[j,i]) / 2 >= threshold; groups are the "
             "connected components of the links",
    )
    tau = float(tau_u) / unit
    st.session_state["_keep_explore_tau"] = tau
    if method == "tag" and n > grouping_view.TAG_INTERACTIVE_MAX:
        st.caption(f":material/timer: Exact TAG on {n} tasks takes seconds: it searches in "
                   "the background (the exact search stops after 1 s and reports the best "
                   "grouping found with its proven gap).")
    state.qp_set(method=method, k=k if method in ("tag", "hierarchical") else None,
                 tau=round(tau, 8) if method == "threshold" else None)
    return method, int(k), tau


def _nice(x: float, how: str) -> float:
    """Round a slider bound outward to 3 significant digits."""
    if x == 0 or not np.isfinite(x):
        return 0.0
    mag = 10 ** (np.floor(np.log10(abs(x))) - 2)
    f = np.floor if how == "floor" else np.ceil
    return float(f(x / mag) * mag)


_TAG_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tag-search")


@st.cache_resource(show_spinner=False, max_entries=128)
def _tag_background(matrix: bytes, n: int, tasks: tuple[str, ...], k: int) -> Future:
    """One background TAG search per (matrix, k), shared by every session that asks. The
    thread only computes (no Streamlit calls); pages poll the future."""
    M = np.frombuffer(matrix, dtype=np.float64).reshape(n, n).copy()
    return _TAG_POOL.submit(grouping_view.regroup, M, list(tasks), "tag", k, 0.0,
                            time_limit=1.0)


@st.cache_data(show_spinner=False, max_entries=256)
def _regroup_cached(M: np.ndarray, tasks: tuple[str, ...], method: str, k: int, tau: float):
    return grouping_view.regroup(M, list(tasks), method, k, tau)


# ----------------------------------------------------------------------------- panels


def groups_frame(result, M: np.ndarray, tasks: list[str]) -> pd.DataFrame:
    """One row per group: members and the mean affinity inside the group."""
    rows = []
    index = {t: i for i, t in enumerate(tasks)}
    for g, members in enumerate(result.groups):
        idx = [index[t] for t in sorted(members)]
        sub = M[np.ix_(idx, idx)]
        off = sub[~np.eye(len(idx), dtype=bool)] if len(idx) > 1 else np.array([np.nan])
        rows.append({"group": g + 1, "tasks": ", ".join(sorted(members)), "size": len(idx),
                     "mean affinity inside": f"{float(np.nanmean(off)):.4f}" if len(idx) > 1
                     else "– (alone)"})
    return pd.DataFrame(rows)


def _groups_panel(result, M: np.ndarray, tasks: list[str], method: str) -> None:
    st.markdown("**Groups**")
    if result is None:
        st.caption("Pick a grouping method to outline groups on the heatmap.")
        return
    st.markdown(analysis.format_grouping(result.groups))
    st.dataframe(groups_frame(result, M, tasks), hide_index=True, width="stretch")
    extra = ""
    if method == "tag":
        extra = " · proven optimal" if result.optimal else f" · {result.note}"
    st.caption(f"TAG value of this grouping: {result.score:.4g} (mean over tasks of the best "
               f"in-group affinity onto the task){extra} · regrouped in "
               f"{result.seconds * 1000:.0f} ms")


def _pair_tab(view: RunView, stack: np.ndarray, measure: str, how: str) -> None:
    tasks = view.tasks
    if len(tasks) < 2:
        st.info("A pair needs two tasks.")
        return
    if len(view.steps) < 2:
        st.info("This run logged one step: there is no time series to follow (the heatmap "
                "above shows every pair at that step).")
        return
    avg = np.nan_to_num(view.running[-1], nan=np.inf)
    np.fill_diagonal(avg, np.inf)
    i, j = np.unravel_index(int(np.argmin(avg)), avg.shape)
    c1, c2 = st.columns(2)
    widgets.keep_value("explore_src", tasks[i], valid=lambda t: t in tasks)
    widgets.keep_value("explore_tgt", tasks[j], valid=lambda t: t in tasks)
    src = c1.selectbox("Source (the task that takes the step)", tasks, key="explore_src")
    tgt = c2.selectbox("Target (the task whose loss changes)", tasks, key="explore_tgt")
    widgets.remember_value("explore_src")
    widgets.remember_value("explore_tgt")
    a, b = tasks.index(src), tasks.index(tgt)
    smoothed = stack[:, a, b] if how != "none" else analysis.running_mean(view.raw)[:, a, b]
    label = "smoothed" if how != "none" else "running average"
    fig = figures.pair_series(view.steps, view.raw[:, a, b], smoothed, source=src, target=tgt,
                              measure=measure)
    fig.data[-1].name = label
    widgets.chart_with_export(fig, f"pair_{src}_{tgt}", "explore_pair")
    worst = float(view.running[-1][i, j])
    lead = ("Default pair: the most harmful one on average. " if worst < 0 else
            "Default pair: the least helpful one on average (no pair hurts here). ")
    st.caption(lead + figures.describe_cell(src, tgt, float(view.running[-1][a, b]), measure)
               + " on average over the run.")


def _timeline_tab(view: RunView, method: str, k: int, tau: float, how: str, window: int,
                  beta: float, step_idx: int) -> None:
    if method == "none":
        st.info("Pick a grouping method to see how the groups change over training.")
        return
    if len(view.steps) < 2:
        st.info("This run logged one step: the groups cannot change over training (they are "
                "the ones shown beside the heatmap).")
        return
    info = state.get_run(view.run_id)
    try:
        tl = _timeline_cached(state.store_path(), info.id, state.version(info), view.measure,
                              method, k, tau, how if how != "none" else "running", window, beta)
    except Exception as exc:
        widgets.show_error(exc)
        return
    if tl is None:
        return
    fig = figures.group_timeline(tl.steps, tl.labels, view.tasks, order=view.order,
                                 changes=tl.change_steps,
                                 title="Group of each task over training (colour = group)")
    widgets.chart_with_export(fig, "group_timeline", "explore_timeline")
    smoothing = {"none": "running average", "running": "running average",
                 "window": f"moving window of {window}", "ema": f"EMA (beta {beta})"}[
        how if how != "none" else "running"]
    n_changes = len(tl.change_steps)
    shown = ", ".join(map(str, tl.change_steps[:12])) + (" …" if n_changes > 12 else "")
    st.caption(
        f"Grouped on the {smoothing} of the matrices; colours keep their group across steps. "
        + (f"The grouping changes {n_changes} time(s), at steps {shown} (dotted lines)."
           if n_changes else "The grouping never changes.")
        + (f" {tl.note}." if tl.note else "")
    )


@st.cache_resource(show_spinner="Grouping every step…", max_entries=64)
def _timeline_cached(path: str, run_id: int, ver: tuple, measure: str, method: str, k: int,
                     tau: float, how: str, window: int, beta: float):
    """Keyed by the run's version, not by the matrices (hashing 2,000 matrices per rerun
    would cost more than the lookup saves)."""
    view = state.run_view(state.get_run(run_id), measure)
    if view is None:
        return None
    return grouping_view.timeline(view.steps, view.raw, view.tasks, method, k, tau, how,
                                  window, beta)


@st.cache_resource(show_spinner=False, max_entries=8)
def _animation(path: str, run_id: int, ver: tuple, measure: str, matrix_mode: str, how: str,
               window: int, beta: float, hide_diag: bool):
    """The play-over-steps figure, built once per run version and view settings: it does not
    depend on the grouping controls, so moving them never rebuilds it."""
    view = state.run_view(state.get_run(run_id), measure)
    stack = view.running if matrix_mode == "average" else analysis.smooth(view.raw, how,
                                                                           window, beta)
    zmax = view.zmax_avg if matrix_mode == "average" else (
        view.zmax if how == "none" else analysis.robust_zmax(stack))
    return figures.animated_heatmap(view.steps, stack, view.tasks, measure=measure, zmax=zmax,
                                    order=view.order, hide_diagonal=hide_diag,
                                    title="Press ▶ to play (fixed colour scale)")


def _loss_tab(info: RunInfo) -> None:
    df = state.metrics(info)
    if df is None or df.empty:
        st.info("No losses logged yet.")
        return
    have = [s for s in SPLITS if (df["split"] == s).any()]
    if not have:
        st.info("No losses logged yet.")
        return
    c1, c2, c3 = st.columns([2, 1, 1])
    widgets.keep_value("explore_split", have[0], valid=lambda s: s in have)
    if st.session_state.get("explore_split") not in have:
        st.session_state["explore_split"] = have[0]
    split = c1.radio("Split", have, horizontal=True, key="explore_split",
                     format_func=lambda s: {"batch": "train minibatch"}.get(s, s))
    widgets.remember_value("explore_split")
    mean_only = c2.toggle("Mean over tasks", key="explore_mean_only")
    log_y = c3.toggle("Log scale", key="explore_log")
    fig = _loss_figure(state.store_path(), info.id, state.version(info), split, mean_only,
                       log_y)
    widgets.chart_with_export(fig, f"run{info.id}_loss_{split}", "explore_loss")


@st.cache_resource(show_spinner=False, max_entries=64)
def _loss_figure(path: str, run_id: int, ver: tuple, split: str, mean_only: bool,
                 log_y: bool):
    """Per-task loss curves of a run, built once per run version and shared by every session
    (figure building, not the data, is the costly part of a live refresh)."""
    info = state.get_run(run_id)
    label = state.run_label(info)
    return figures.loss_curves({label: state.metrics(info)}, split=split,
                               tasks=info.tasks or None, mean_only=mean_only, log_y=log_y,
                               colours={label: figures.run_colour(info.id)},
                               title=f"Per-task {split} loss")


@st.cache_resource(show_spinner=False, max_entries=256)
def _heatmap_cached(M: np.ndarray, tasks: tuple[str, ...], measure: str, zmax: float,
                    order: tuple[int, ...], grouping, hide_diag: bool, title: str):
    """The main heatmap, shared by sessions looking at the same matrix and settings (the
    key hashes the small matrix; plotly's figure building costs more than that)."""
    return figures.heatmap(M, list(tasks), measure=measure, zmax=zmax, order=list(order),
                           grouping=grouping, hide_diagonal=hide_diag, title=title,
                           clickable=True)


def _open_clicked_pair(point: tuple | None, tasks: list[str]) -> None:
    """A newly clicked cell (target = x, source = y) opens its pair in the pair tab."""
    if point is None or point == st.session_state.get("_explore_clicked"):
        return
    tgt, src = point
    if src in tasks and tgt in tasks:
        st.session_state["_explore_clicked"] = point
        st.session_state["explore_src"], st.session_state["explore_tgt"] = src, tgt
        st.session_state["explore_tab"] = TABS[2]


def _ground_truth_tab(info: RunInfo, method: str, k: int) -> None:
    jobs.ground_truth_panel(info, k)
