"""Explore's control panels. Each draws its widgets and returns one frozen dataclass of plain
values (hashable, so it can key a cache), remembering the choices in the URL and the session."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from app import layout, regroup, session, words
from app.data import RunView
from mtl_core.store import RunInfo
from mtl_core.text import units

#: Smoothing choices for the matrices (``mtl_core.series`` definitions).
SMOOTHING = {how: words.SMOOTHING_LABELS[how] for how in ("none", "window", "ema")}
MATRIX = {"average": "time-averaged up to the step", "step": "at the step (smoothed)"}


@dataclass(frozen=True)
class ViewControls:
    """Which matrix the heatmap shows: a logged step, time-averaged up to it or smoothed."""

    step_idx: int  # index into the run's logged steps
    matrix_mode: str  # "average" (running mean up to the step) or "step" (smoothed by how)
    how: str  # "none", "window" or "ema"
    window: int  # logged steps in the moving window
    beta: float  # EMA weight of history
    hide_diag: bool

    @property
    def heatmap_smoothing(self) -> str:
        """The smoothing of the heatmap's (and the animation's) matrices."""
        return "running" if self.matrix_mode == "average" else self.how

    @property
    def series_smoothing(self) -> str:
        """The smoothing of the pair view and the group timeline (the running average when
        the controls say none: a single step is too noisy to follow or group over time)."""
        return self.how if self.how != "none" else "running"


@dataclass(frozen=True)
class GroupControls:
    """How the shown matrix is grouped."""

    method: str  # a key of ``regroup.METHODS``
    k: int  # group budget (TAG, hierarchical)
    tau: float  # threshold on the mutual affinity, in the measure's own units (fraction)
    tau_note: bool = False  # the threshold is the data-driven default, not 0 (say why)


def measure_picker(info: RunInfo) -> str | None:
    """The affinity measure to explore (None while the run has logged none)."""
    measures = info.measures
    if not measures:
        return None
    # in the URL as ?measure= (bind; the first measure is the default, left out of the URL)
    session.seed_bound("measure", measures[0], valid=lambda m: m in measures)
    measure = st.selectbox("Affinity measure", measures, key="measure", bind="query-params")
    session.remember_value("measure")
    return measure


def view_controls(view: RunView, info: RunInfo) -> ViewControls:
    """Step, matrix, smoothing and display options above the heatmap."""
    # the smoothing select shows "none (as logged)" whole: 1024 px with the sidebar open gave
    # it 61 px in plain columns; here a column narrower than 180 px wraps to the next line
    c1, c2, c3, c4 = layout.field_columns([4, 2, 2, 1.2], "explore_view", min_px=180)
    step_idx = _step_slider(view, info, c1, c4)
    session.keep_value("explore_matrix", "average", "matrix", valid=lambda m: m in MATRIX)
    matrix_mode = c2.radio("Matrix", list(MATRIX), format_func=MATRIX.get, key="explore_matrix")
    session.remember_value("explore_matrix")
    session.keep_value("explore_smooth", "none", "smooth", valid=lambda h: h in SMOOTHING)
    how = c3.selectbox(
        "Smoothing",
        list(SMOOTHING),
        format_func=SMOOTHING.get,
        key="explore_smooth",
        help="Smooths the matrices over steps for 'at the step', the pair view "
        "and the group timeline (the time average needs none)",
    )
    session.remember_value("explore_smooth")
    session.qp_set(
        matrix=matrix_mode if matrix_mode != "average" else None,
        smooth=how if how != "none" else None,
    )
    with st.expander("Smoothing and display options", icon=":material/tune:"):
        o1, o2, o3 = st.columns(3)
        window = o1.number_input("window (logged steps)", 1, 10_000, 20, key="explore_window")
        beta = o2.slider("EMA beta", 0.0, 0.99, 0.9, key="explore_beta")
        hide = o3.toggle(
            "Hide the diagonal (a task on itself)",
            value=True,
            key="explore_hide_diag",
            help="Self-affinity is large and would wash out the colour scale",
        )
    return ViewControls(step_idx, matrix_mode, how, int(window), float(beta), bool(hide))


def _step_slider(view: RunView, info: RunInfo, col, live_col) -> int:
    """The logged step to show (following the newest one while a live run trains)."""
    steps = [int(s) for s in view.steps]
    follow = False
    if info.is_active:
        follow = live_col.toggle(
            "Live",
            value=True,
            key="explore_follow",
            help="Keep showing the latest logged step while the run trains",
        )
    else:
        live_col.write("")
    # in the URL as ?step= (bind; the newest step is the default, left out of the URL)
    session.seed_bound("step", steps[-1], valid=lambda s: s in steps)
    if follow:
        st.session_state["step"] = steps[-1]
    gaps = np.diff(view.steps)
    if len(steps) > 1 and (gaps == gaps[0]).all():
        # Evenly logged (every trained run): a plain slider, no option list to send on every
        # live refresh (a long run has thousands of logged steps).
        step = col.slider(
            "Step",
            steps[0],
            steps[-1],
            steps[-1],
            step=int(gaps[0]),
            key="step",
            bind="query-params",
            help="Logged steps of this run",
        )
    elif len(steps) > 1:
        step = col.select_slider(
            "Step",
            options=steps,
            value=steps[-1],
            key="step",
            bind="query-params",
            help="Logged steps of this run",
        )
    else:
        step = steps[0]
        col.caption(f"One logged step: {step}")
    session.remember_value("step")
    # a link's step between two logged ones (?step=7 of 1, 6, 11) shows the nearest logged one
    return int(np.argmin(np.abs(np.asarray(steps) - int(step))))


def group_controls(view: RunView, M: np.ndarray, measure: str) -> GroupControls:
    """Grouping method, k and threshold for the shown matrix ``M`` ``(n, n)``."""
    n = len(view.tasks)
    methods = list(regroup.METHODS)
    c1, c2, c3 = layout.field_columns([2, 2, 3], "explore_group", min_px=200)
    session.keep_value("explore_method", "threshold", "method", valid=lambda m: m in methods)
    method = c1.selectbox(
        "Grouping", methods, format_func=regroup.METHODS.get, key="explore_method"
    )
    session.remember_value("explore_method")
    kmax = max(1, n)
    # in the URL as ?k= (bind; 2 is the default, left out of the URL)
    session.seed_bound("k", min(2, kmax), valid=lambda k: 1 <= k <= kmax)
    k = c2.slider(
        "k (number of groups)",
        1,
        kmax,
        min(2, kmax),
        key="k",
        bind="query-params",
        disabled=method not in ("tag", "hierarchical"),
        help="TAG picks at most k groups (they may overlap); hierarchical cuts the "
        "tree into k clusters",
    )
    session.remember_value("k")
    tau, tau_u, note = _tau_slider(c3, M, measure, disabled=method != "threshold")
    if method == "tag" and n > regroup.TAG_INTERACTIVE_MAX:
        st.caption(words.tag_slow(n))
    # The URL carries the threshold in the slider's unit (% for loss-change measures), the
    # same number the CLI's --tau takes.
    session.qp_set(
        method=method,
        tau=float(f"{tau_u:.6g}") if method == "threshold" else None,
    )
    return GroupControls(method, int(k), tau, note and method == "threshold")


def _tau_slider(col, M: np.ndarray, measure: str, *, disabled: bool) -> tuple[float, float, bool]:
    """The threshold, over the range of ``M``'s mutual affinities, in the measure's display
    unit (``mtl_core.text.units``: percent for loss-change measures, as in the URL and the CLI's
    ``--tau``). Returns ``(tau in the measure's own units, tau as shown, is the default)``;
    the default is ``regroup.default_tau`` (0 unless 0 would link every pair)."""
    lo, hi = regroup.tau_range(M)
    lo_u, hi_u = (
        _nice(units.to_display(lo, measure), "floor"),
        _nice(units.to_display(hi, measure), "ceil"),
    )
    if hi_u <= lo_u:
        hi_u = lo_u + 1.0
    key_u = "explore_tau_ui"
    if key_u not in st.session_state or st.session_state.get("_explore_tau_measure") != measure:
        shown = session.qp_get("tau", float) if key_u not in st.session_state else None
        if shown is None and "_keep_explore_tau" in st.session_state:
            shown = units.to_display(st.session_state["_keep_explore_tau"], measure)
        if shown is None:
            best = regroup.default_tau(M)
            shown = units.to_display(best or 0.0, measure)
            st.session_state["_explore_tau_auto"] = float(shown) if best is not None else None
        st.session_state[key_u] = float(shown)
        st.session_state["_explore_tau_measure"] = measure
    st.session_state[key_u] = float(np.clip(st.session_state[key_u], lo_u, hi_u))
    tau_u = col.slider(
        f"threshold ({units.unit_name(measure)}): link tasks whose mutual affinity is at least",
        lo_u,
        hi_u,
        step=(hi_u - lo_u) / 200,
        key=key_u,
        format="%.3f" + units.suffix(measure).replace("%", "%%"),
        disabled=disabled,
        help="Tasks i and j are linked when (A[i,j] + A[j,i]) / 2 >= threshold; groups are the "
        "connected components of the links. The same number works as the CLI's --tau "
        "(group --method threshold --tau).",
    )
    tau = units.from_display(float(tau_u), measure)
    st.session_state["_keep_explore_tau"] = tau
    is_default = st.session_state.get("_explore_tau_auto") == float(tau_u)
    return tau, float(tau_u), is_default


def _nice(x: float, how: str) -> float:
    """Round a slider bound outward to 3 significant digits."""
    if x == 0 or not np.isfinite(x):
        return 0.0
    mag = 10 ** (np.floor(np.log10(abs(x))) - 2)
    f = np.floor if how == "floor" else np.ceil
    return float(f(x / mag) * mag)
