"""The Explore page, top to bottom: pick a run and measure; then, polling while the run trains,
its status, the view controls, the heatmap beside its groups, and the tabs under them."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from app import captions, data, nav, regroup, session, words
from app.charts import chart_with_export, clicked_point
from app.escape import md
from app.figures import heatmaps
from app.views.explore import controls, groups, tabs
from app.views.explore.ground_truth import ground_truth_tab
from mtl_core.runner.worker import TABLE_NOTE
from mtl_core.store import RunInfo
from mtl_core.text import units

POLL_S = 2.0


def render() -> None:
    st.title("Explore a run")
    runs = data.list_runs()
    if not runs:
        st.info("No runs yet: run the lesson, queue a run on the Train page, or upload a log.")
        nav.link("learn", "Start the lesson", icon=":material/school:")
        return
    c1, c2 = st.columns([3, 1])
    with c1:
        info = session.run_picker("Run", "explore_run", runs, qp_key="run", need_measure=True)
    if info is None:
        return
    with c2:
        measure = controls.measure_picker(info)
    active = info.is_active
    st.fragment(run_every=POLL_S if active else None)(_body)(info.id, measure, active)


def _body(run_id: int, measure: str | None, was_active: bool) -> None:
    info = data.get_run(run_id)
    if measure is None and info.measures:
        st.rerun()  # the first matrix just landed: rebuild the page with its measure picker
    _status(info)
    view = data.run_view(info, measure) if measure else None
    if view is None:
        _no_matrix_yet(info, measure)
        tabs.loss_tab(info)
        _stop_polling_if_done(info, was_active)
        return
    vc = controls.view_controls(view, info)
    M, zmax = heatmap_matrix(view, vc)
    gc = controls.group_controls(view, M, view.measure)
    result, pending = groups.group(M, view.tasks, gc)
    left, right = st.columns([3, 2])
    with left:
        wrap_below(1280)
        _heatmap(info, view, vc, M, zmax, result.groups if result else None)
    with right:
        groups.groups_panel(result, pending, M, view.tasks, gc, view.measure)
    _tabs(info, view, vc, gc, result.groups if result else None)
    _stop_polling_if_done(info, was_active)
    if pending:
        time.sleep(0.3)
        st.rerun()  # check back (a full rerun of this page costs well under 100 ms)


def heatmap_matrix(view: data.RunView, vc: controls.ViewControls) -> tuple[np.ndarray, float]:
    """The ``(n, n)`` matrix the heatmap shows and groups, and its colour limit: the step's
    matrix smoothed like the pair view and the group timeline (``data.smoothed``)."""
    shown = data.smoothed(view, vc.heatmap_smoothing, vc.window, vc.beta)
    return shown.stack[vc.step_idx], shown.zmax


def _status(info: RunInfo) -> None:
    """The run's name, status and origin; its progress while it trains; why it stopped."""
    st.markdown(
        f"{words.colour_dot(info.id)} **{md(words.run_label(info))}** · "
        f"{words.status_text(info, data.queue_ahead(info))} · {info.origin}",
        unsafe_allow_html=True,
    )
    if info.status == "running" and info.steps_total:
        st.progress(float(info.progress or 0.0))
    if (info.config or {}).get("scenario") == "csv":  # your table: what it trained on
        note = data.get_store().get_note(info.id, TABLE_NOTE)
        if note:
            st.caption(words.table_features(note))
    if info.error:
        verb = {
            "cancelled": "was cancelled",
            "interrupted": "was interrupted",
            "failed": "failed",
        }.get(info.status, info.status)
        (st.warning if info.status in ("cancelled", "interrupted") else st.error)(
            f"This run {verb}: {md(info.error)}"
            if info.status != "cancelled"
            else f"This run was cancelled; the {info.steps_done} steps logged before are kept."
        )


def _no_matrix_yet(info: RunInfo, measure: str | None) -> None:
    planned = ((info.config or {}).get("affinity") or {}).get("measure", "none")
    if measure is None and not (info.is_active and planned != "none"):
        st.info(
            "This run logged no affinity (e.g. a grouped or single-task run); its loss "
            "curves are below."
        )
    else:
        st.info("No affinity matrix logged yet — it appears here as soon as the first one lands.")


def wrap_below(min_width_px: int) -> None:
    """Stack the columns of the row this is called in (full width each) when the window is
    narrower than ``min_width_px``: at projector width (1024 px) a heatmap beside a panel
    gets a sliver; stacked it gets the page's width and keeps square cells."""
    st.markdown(
        "<span class='mtl-wrap-row'></span><style>@media (max-width: "
        f"{int(min_width_px) - 1}px) {{"
        "div[data-testid='stHorizontalBlock']:has(> div .mtl-wrap-row) {flex-wrap: wrap;}"
        "div[data-testid='stHorizontalBlock']:has(> div .mtl-wrap-row) > "
        "div[data-testid='stColumn'] {width: 100% !important; flex: 1 1 100% !important;"
        " min-width: 100% !important;}}</style>",
        unsafe_allow_html=True,
    )


def _heatmap(
    info: RunInfo,
    view: data.RunView,
    vc: controls.ViewControls,
    M: np.ndarray,
    zmax: float,
    grouping,
) -> None:
    """The shown matrix, rows in group order with each group outlined; a click on a cell
    opens that pair in the pair tab."""
    step = int(view.steps[vc.step_idx])
    order = regroup.group_order(view.tasks, view.order, grouping)
    title = words.heatmap_title(vc.matrix_mode, int(view.steps[0]), step, vc.how)
    fig = _heatmap_cached(
        M, tuple(view.tasks), view.measure, float(zmax), tuple(order), grouping, vc.hide_diag, title
    )
    first = int(view.steps[0]) if vc.matrix_mode == "average" else step
    steps = captions.steps_range(first, step)
    export = captions.export_title(title, words.run_label(info), view.measure, steps)
    name = captions.export_name(
        f"run{info.id}",
        info.name,
        view.measure,
        "avg" if vc.matrix_mode == "average" else vc.how,
        steps.replace(" ", "-"),
        units.suffix(view.measure),
    )
    # centred in a box as wide as the square plot needs (as on Learn): the column's full width
    # left the colour bar ~330 px right of the plot at 1920 px; a narrower column narrows it
    with st.container(horizontal=True, horizontal_alignment="center"):
        with st.container(width=heatmaps.box_width(int(fig.layout.height))):
            event = chart_with_export(
                fig, name, "explore_heatmap", select=True, export_title=export
            )
    _open_clicked_pair(clicked_point(event), view.tasks)
    n = len(view.tasks)
    missing = int((~np.isfinite(M[~np.eye(n, dtype=bool)])).sum()) if n > 1 else 0
    st.caption(captions.heatmap_caption(vc.hide_diag, missing))
    with st.expander("How to read this heatmap", icon=":material/help:"):
        st.markdown(captions.READING_GUIDE)


@st.cache_resource(show_spinner=False, max_entries=256)
def _heatmap_cached(
    M: np.ndarray,
    tasks: tuple[str, ...],
    measure: str,
    zmax: float,
    order: tuple[int, ...],
    grouping,
    hide_diag: bool,
    title: str,
):
    """The main heatmap, shared by sessions looking at the same matrix and settings (the
    key hashes the small matrix; plotly's figure building costs more than that)."""
    return heatmaps.heatmap(
        M,
        list(tasks),
        measure=measure,
        zmax=zmax,
        order=list(order),
        grouping=grouping,
        hide_diagonal=hide_diag,
        title=title,
        clickable=True,
    )


def _open_clicked_pair(point: tuple | None, tasks: list[str]) -> None:
    """A newly clicked cell (target = x, source = y) opens its pair in the pair tab."""
    if point is None or point == st.session_state.get("_explore_clicked"):
        return
    tgt, src = point
    if src in tasks and tgt in tasks:
        st.session_state["_explore_clicked"] = point
        st.session_state["src"], st.session_state["tgt"] = src, tgt  # bound: the URL follows
        st.session_state["explore_tab"] = tabs.TABS[2]
        session.qp_set(tab=tabs.TAB_KEYS[2])


def _tabs(
    info: RunInfo,
    view: data.RunView,
    vc: controls.ViewControls,
    gc: controls.GroupControls,
    grouping,
) -> None:
    # Lazy tabs: only the open tab's content is computed and sent (the animation and the
    # timeline are the heaviest parts of the page). The open tab lives in the URL (?tab=).
    tabs.seed_tab()
    shown = st.tabs(tabs.TABS, key="explore_tab", on_change="rerun")
    tabs.remember_tab()
    fill = (
        lambda: tabs.loss_tab(info),
        lambda: tabs.play_tab(view, vc),
        lambda: tabs.pair_tab(view, vc),
        lambda: tabs.timeline_tab(view, vc, gc, grouping),
        lambda: ground_truth_tab(info, gc),
    )
    for tab, body in zip(shown, fill):
        if tab.open:
            with tab:
                body()


def _stop_polling_if_done(info: RunInfo, was_active: bool) -> None:
    if was_active and not info.is_active:
        st.rerun()
