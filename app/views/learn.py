"""Learn (landing page): "Negative transfer in one minute".

One knob (how much the two task clusters conflict), a Train button, then live: the affinity
heatmap filling in, per-task held-out loss for all-together vs TAG groups vs each task alone,
and a few sentences written from the numbers. Three runs go to the runner (which also queues
the grouped run when the together run ends); this page only draws
``mtl_core.lesson.state.state(...)``, read through ``app.data``'s visibility-checked access,
polling in a fragment while a run is active. Viewing never queues anything.

A class follows a few lessons from many sessions: the lesson is read once per version for
all of them (``app.data_lesson.lesson_state``), its figures are built once per version
(:func:`_figures`), and the polls space out as more sessions follow live
(``app.data_lesson.poll_interval``).
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import charts, colours, data, data_lesson, lesson_words, nav, regroup, session, words
from app.escape import md
from app.figures import approaches, heatmaps
from app.figures.escape import escape_figure
from app.guard import show_error
from mtl_core.errors import LabError
from mtl_core.lesson import workflow as lesson
from mtl_core.lesson.state import LessonState
from mtl_core.lesson.workflow import LessonIds

POLL_KEY = "_learn_poll_s"  # session_state: the poll interval the live fragment runs at
TOKEN = "_learn_token"  # session_state: this session's token among the lessons' followers
DOUBLE_CLICK_S = 2.0  # a second Train within this many seconds is the same click
#: The Learn heatmap's figure height (px): a plot area of about 420 px where the width allows
#: (1920 px screens); at 1024 px with the sidebar open the width limits it to about 380 px.
LEARN_HEATMAP_HEIGHT = 600
#: Width (CSS px) of each of the two loss charts' boxes: side by side where two fit (1920 px),
#: stacked at full column width where they do not (1024 px with the sidebar open), instead of
#: two 270 px columns whose whisker note ran past the chart's edge.
LOSS_BOX_PX = 560
KEY = "lesson_ids"  # session_state: the lesson's run ids as "together,groups,single"
FOLLOWED = "_learn_followed"  # session_state: the together run of a lesson Train found, not queued
FOLLOWED_AHEAD = "_learn_followed_ahead"  # session_state: when that lesson was queued ahead
FOLLOWED_LIVE = "_learn_followed_live"  # session_state: that lesson was training when found
FOUND = "_learn_found"  # session_state: the together run of a running lesson shown unpressed
FOUND_AHEAD = "_learn_found_ahead"  # session_state: when that lesson was queued ahead

INTRO = lesson_words.LESSON_INTRO


def render() -> None:
    st.title("Negative transfer in one minute")
    st.markdown(INTRO)
    shown = _current_ids()
    if shown is not None and "learn_conflict" not in st.session_state:
        # a shared lesson link: the knob starts where that lesson was trained
        trained = _trained_conflict(shown)
        if trained is not None:
            st.session_state["learn_conflict"] = trained
    asked = _knob_controls(lesson.knob_specs())
    ids = _current_ids()
    if ids is None and _follow_running(asked):
        ids = _current_ids()  # through the visibility rule, like every id
    if ids is None:
        st.info(_idle_text())
        _how_to_read()
        return
    _live(ids.to_query())
    _how_to_read(expanded=False)  # still reachable once the results are there


def _knob_controls(specs: dict) -> dict:
    """The knob, the advanced knobs and Train (which starts or joins the lesson). Returns
    the lesson the controls describe: ``{"knobs", "steps", "seed", "groups_from"}``."""
    c = specs["conflict"]
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    session.keep_value("learn_conflict", float(c.get("default", 1.0)))
    conflict = left.slider(
        "How much do the two task clusters conflict?",
        float(c.get("min", 0.0)),
        float(c.get("max", 1.0)),
        step=0.05,
        key="learn_conflict",
        help=lesson_words.LESSON_CONFLICT_HELP,
    )
    session.remember_value("learn_conflict")
    knobs: dict = {"conflict": float(conflict)}
    with st.expander("Advanced knobs", icon=":material/tune:"):
        groups_from = st.radio(
            "Groups for the grouped run",
            list(lesson.GROUP_SOURCES),
            horizontal=True,
            format_func=lambda k: lesson.GROUP_SOURCES[k],
            key="learn_groups_from",
            help="TAG selects groups from the all-together run's affinity (averaged over its "
            "steps and replicas), as the TAG paper does; the grouped run starts when the "
            "all-together run ends. The planted clusters are the known answer.",
        )
        cols = st.columns(4)
        for i, name in enumerate(("relatedness", "noise")):
            spec = specs[name]
            knobs[name] = cols[i].slider(
                name,
                float(spec.get("min", 0.0)),
                float(spec.get("max", 1.0)),
                float(spec.get("default", 0.0)),
                step=0.05,
                key=f"learn_{name}",
                help=spec.get("help"),
            )
        steps = cols[2].number_input("steps", 50, 3000, lesson.STEPS, step=50, key="learn_steps")
        seed = cols[3].number_input("seed", 0, 10_000, 0, key="learn_seed")
    pressed = right.button(
        "Train", type="primary", icon=":material/play_arrow:", key="learn_train", width="stretch"
    )
    now = time.monotonic()
    if pressed and now - st.session_state.get("_learn_last_train", -1e9) < DOUBLE_CLICK_S:
        pressed = False  # a double click starts one lesson, not two
    if pressed:
        st.session_state["_learn_last_train"] = now
        st.session_state.pop(FOUND, None)  # pressed: the followed/queued note says the rest
        runner = data.get_runner()
        ids = lesson.start(
            runner,
            data.get_store(),
            knobs,
            steps=int(steps),
            seed=int(seed),
            groups_from=groups_from,
            share=data.lesson_share(),
        )
        _set_ids(ids)
        st.session_state[FOLLOWED] = ids.together if ids.followed else None
        st.session_state[FOLLOWED_AHEAD] = (
            lesson.trained_ahead_at(data.get_store(), ids.together) if ids.followed else None
        )
        st.session_state[FOLLOWED_LIVE] = (
            ids.followed and data.get_run(ids.together).status != "finished"
        )
    return {"knobs": knobs, "steps": int(steps), "seed": int(seed), "groups_from": groups_from}


def _follow_running(asked: dict) -> bool:
    """A session with no lesson yet (a student just opened the page) shows the shared lesson
    for the controls' knobs that is training now, live, instead of an empty page until Train
    (issue 22: class sharing). Only a running one: a finished one is replayed on Train, and a
    lesson held ahead that has not started is not shown. Queues nothing. True if one was
    found (its ids are this session's now)."""
    try:
        key = lesson.lesson_key(
            asked["knobs"],
            steps=asked["steps"],
            seed=asked["seed"],
            groups_from=asked["groups_from"],
        )
        found = lesson.find_lesson(
            data.get_runner(), data.get_store(), key, data.lesson_share() == "private"
        )
        if found is None or data.get_run(found.together).status != "running":
            return False
    except LabError:
        return False
    _set_ids(found)
    st.session_state[FOUND] = found.together
    st.session_state[FOUND_AHEAD] = lesson.trained_ahead_at(data.get_store(), found.together)
    return True


def _idle_text() -> str:
    """What Train will cost here, measured (never a promise)."""
    pace = data.lesson_pace()
    if pace is None:
        return (
            "Set the conflict, then press **Train**. No lesson run has finished on this "
            "server yet, so there is no measured time to quote; the page shows the queue and "
            "each run's progress once you press Train."
        )
    return "Set the conflict, then press **Train**. " + lesson_words.lesson_pace_text(
        pace.s_per_step * lesson.STEPS, pace.runs, lesson.STEPS
    )


def _trained_conflict(ids: LessonIds) -> float | None:
    """The conflict level the shown lesson was trained at (None if its run is gone)."""
    try:
        return data_lesson.lesson_state(ids)[1].conflict
    except LabError:
        return None


def _current_ids() -> LessonIds | None:
    text = st.session_state.get(KEY)
    if not text:
        text = session.qp_get("lesson")
        if text:
            st.session_state[KEY] = text
    ids = LessonIds.from_query(text)
    if ids is None:
        return None
    try:  # every id, from the URL or the session, goes through the visibility rule
        for run_id in ids.ids():
            data.get_run(run_id)
    except LabError as exc:
        st.session_state.pop(KEY, None)
        show_error(exc)
        return None
    return ids


def _set_ids(ids: LessonIds) -> None:
    st.session_state[KEY] = ids.to_query()
    session.remember(*ids.ids())
    session.qp_set(lesson=ids.to_query())


def _live(ids_text: str) -> None:
    """Poll the store while any lesson run is active (or the grouped run is still to start)."""
    ids = LessonIds.from_query(ids_text)
    assert ids is not None
    try:
        active = data_lesson.lesson_state(ids)[1].active
    except LabError as exc:
        show_error(exc)
        return
    every = _poll_s(active)
    st.session_state[POLL_KEY] = every
    st.fragment(run_every=every)(_live_body)(was_active=active)


def _poll_s(active: bool) -> float | None:
    """This session's poll interval while its lesson is live (None: not live), from how many
    sessions follow lessons live now (``app.data_lesson.poll_interval``)."""
    token = st.session_state.setdefault(TOKEN, uuid.uuid4().hex)
    followers = data_lesson.following(token, active)
    return data_lesson.poll_interval(followers) if active else None


def _live_body(was_active: bool) -> None:
    ids = _current_ids()
    if ids is None:
        return
    try:
        key, s = data_lesson.lesson_state(ids)
    except LabError as exc:
        show_error(exc)
        return
    heat, losses, curves = _figures(key, s)
    if (s.ids.groups, s.ids.single) != (ids.groups, ids.single):  # ids found since: keep them
        _set_ids(s.ids)
    _conflict_header(s.conflict)
    if st.session_state.get(FOUND) == s.runs["together"].id:
        text = lesson_words.found_running_text(
            s.runs["together"].id, ahead_at=st.session_state.get(FOUND_AHEAD)
        )
        st.info(text, icon=":material/group:")
    _shared_note(s)
    _status_row(s)
    # The picture first: the heatmap gets its own full-width row (a half-width column left it
    # about 100 px wide on a 1024 px projector with the sidebar open); the losses go below.
    _affinity_so_far(s, heat)
    if losses is not None:
        row = st.container(horizontal=True, wrap=True, gap="medium", horizontal_alignment="center")
        with row:
            with st.container(width=LOSS_BOX_PX):
                charts.chart(losses, key="learn_losses")
        with row:
            with st.container(width=LOSS_BOX_PX):
                charts.chart(curves, key="learn_curves")
    else:
        st.info("Held-out losses appear after the first evaluation (every 10 steps).")
    if s.grouping and s.planted:
        st.markdown(lesson_words.lesson_groups_note(s.grouping, s.planted, s.grouping_source))
    sentences = lesson_words.explain_lesson(
        s.affinity, s.tasks, s.planted, s.loss, s.finished, diff=s.diff
    )
    if sentences:
        st.info(" ".join(sentences), icon=":material/lightbulb:")
    for info in s.runs.values():
        if info.status in ("failed", "interrupted") and info.error:
            st.error(f"{md(words.run_label(info))} {info.status}: {md(info.error)}")
    nav.link(
        "explore",
        "Explore the all-together run in detail",
        icon=":material/grid_on:",
        run=ids.together,
    )
    if was_active and not s.active:
        st.rerun()  # stop polling: the next full run draws the final state without a timer
    if s.active and _poll_s(True) != st.session_state.get(POLL_KEY):
        st.rerun()  # more (or fewer) sessions follow now: a full run sets the new interval


@st.cache_resource(show_spinner=False, max_entries=64)
def _figures(key: tuple, _s: LessonState) -> tuple[go.Figure | None, go.Figure | None, go.Figure]:
    """The lesson's heatmap (None before its first matrix), loss bars (None before the first
    evaluation) and loss curves, built and escaped once per lesson version ``key``
    (``app.data_lesson.state_key``) for every session showing it; read-only, shared."""
    s = _s
    heat = None
    if s.affinity is not None:
        together = s.runs["together"]
        grouping = s.grouping if together.status == "finished" else None
        identity = np.arange(len(s.tasks))
        order = regroup.group_order(list(s.tasks), identity, grouping) if grouping else identity
        height = max(heatmaps.heatmap_height(len(s.tasks)), LEARN_HEATMAP_HEIGHT)
        heat = heatmaps.heatmap(
            s.affinity,
            list(s.tasks),
            order=order,
            grouping=grouping,
            zmax=lesson.AFFINITY_ZMAX,
            title=f"Affinity, averaged over steps 1–{int(s.affinity_step or 0)}",
            height=height,
        )
        heat = escape_figure(heat)
    losses = None
    if s.task_loss:
        title = "Held-out loss per task"
        losses = escape_figure(approaches.lesson_losses(s.task_loss, s.tasks, title=title))
    return heat, losses, escape_figure(_mean_curves(s.curves))


def _conflict_header(trained: float | None) -> None:
    """Which conflict level the shown results are for (and whether the knob moved since)."""
    if trained is None:
        return
    knob = float(st.session_state.get("learn_conflict", trained))
    if abs(knob - trained) > 1e-9:
        st.info(
            f"These results are for conflict **{trained:.2f}**; the knob now reads "
            f"{knob:.2f}. Press **Train** to run the lesson at the new level.",
            icon=":material/history:",
        )
    else:
        st.markdown(f"**The lesson at conflict {trained:.2f}**")


def _shared_note(s: LessonState) -> None:
    """Whether this lesson was found (followed live or replayed) rather than queued, and
    where its all-together run stands in the queue with a measured wait."""
    together = s.runs["together"]
    if st.session_state.get(FOLLOWED) == together.id:
        st.info(
            lesson_words.followed_text(
                together.id,
                together.created,
                together.status,
                ahead_at=st.session_state.get(FOLLOWED_AHEAD),
                finished=together.finished,
                joined_live=bool(st.session_state.get(FOLLOWED_LIVE)),
            ),
            icon=":material/group:",
        )
    if together.status == "queued":
        ahead = data.queue_ahead(together)
        wait = data.lesson_wait(ahead, int(together.steps_total or lesson.STEPS))
        st.info(
            lesson_words.queue_text(
                ahead, None if wait is None else wait[0], None if wait is None else wait[1].runs
            ),
            icon=":material/hourglass_top:",
        )


def _affinity_so_far(s: LessonState, fig: go.Figure | None) -> None:
    """The together run's running-average heatmap ``fig`` (:func:`_figures`) on one fixed
    colour scale from the first frame; rows in task order while it trains, in the grouped
    run's groups once it has ended (the order settles once)."""
    if s.affinity is None or fig is None:
        st.info("Waiting for the first affinity matrix… (the worker is starting)")
        return
    together = s.runs["together"]
    last = int(s.affinity_step or 0)
    height = max(heatmaps.heatmap_height(len(s.tasks)), LEARN_HEATMAP_HEIGHT)
    # centred in a box as wide as the square plot needs: full width left it at the left of a
    # 1920 px screen with its colour bar ~840 px away; a narrower column narrows the box
    with st.container(horizontal=True, horizontal_alignment="center"):
        with st.container(width=heatmaps.box_width(height)):
            charts.chart(fig, key="learn_heatmap")
    st.caption(
        lesson_words.lesson_heatmap_caption(
            last, together.steps_total, lesson.AFFINITY_ZMAX, settling=last < lesson.SETTLE_STEPS
        )
    )


def _status_row(s: LessonState) -> None:
    cols = st.columns(3)
    for col, key in zip(cols, lesson.APPROACHES):
        label = words.APPROACH_LABELS[key]
        info = s.runs.get(key)
        with col:
            st.markdown(
                f"<span style='color:{colours.APPROACH_COLOURS[key]}'>■</span> **{label}**",
                unsafe_allow_html=True,
            )
            if info is None:
                st.progress(0.0, text="waiting for the groups…")
            else:
                st.progress(
                    float(info.progress or 0.0),
                    text=words.status_text(info, data.queue_ahead(info)),
                )


def _mean_curves(curves: dict[str, pd.Series]) -> go.Figure:
    fig = go.Figure()
    for key in lesson.APPROACHES:
        s = curves.get(key)
        if s is None or s.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=s.index,
                y=s.values,
                mode="lines",
                name=words.APPROACH_LABELS[key],
                line=dict(color=colours.APPROACH_COLOURS[key], width=3),
            )
        )
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="mean held-out loss")
    fig.update_layout(
        title=dict(text="Mean held-out loss while training", x=0),
        height=340,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", y=-0.3, yanchor="top", x=0),
    )
    return fig


def _how_to_read(expanded: bool = True) -> None:
    with st.expander("How to read an affinity heatmap", expanded=expanded, icon=":material/help:"):
        st.markdown(
            "- Each **row** is a *source* task: what happens when the network takes one "
            "training step on that task alone.\n"
            "- Each **column** is a *target* task: whose loss we watch.\n"
            "- **Blue** means the step lowered the target's loss (it helps), **red** means it "
            "raised it (it hurts). Hover over a cell to read it in words.\n"
            "- Blocks of blue along the diagonal are tasks that should be trained together; "
            "red between blocks is **negative transfer**."
        )
