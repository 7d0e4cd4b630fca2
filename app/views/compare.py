"""Compare two or more runs: heatmaps on one colour scale, their difference, per-task losses
with one colour per run, a config diff, and groupings side by side with an agreement score."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app import captions, charts, colours, data, nav, regroup, session, tables, words
from app.escape import md
from app.figures import heatmaps, lines
from app.guard import show_error
from mtl_core.store import RunInfo
from mtl_core.text import units
from mtl_core.text.labels import short_labels


def comparable(runs: list[RunInfo]) -> list[RunInfo]:
    """The runs worth offering: not the empty ones (cancelled or failed before logging a
    step, no matrix and no loss)."""
    return [r for r in runs if r.measures or r.steps_done or r.is_active or r.status == "finished"]


def default_pair(runs: list[RunInfo]) -> list[int]:
    """Two runs to open on: the first two (in ``runs``' order) that share a measure, else the
    first two with any matrix, else the one with a matrix and the next run (right after a
    lesson: its together run beside its grouped run, not the grouped and the alone runs,
    neither of which has a heatmap), else the first two."""
    with_m = [r for r in runs if r.measures]
    for i, a in enumerate(with_m):
        for b in with_m[i + 1 :]:
            if set(a.measures) & set(b.measures):
                return [a.id, b.id]
    if len(with_m) >= 2:
        return [r.id for r in with_m][:2]
    if with_m:
        return [with_m[0].id] + [r.id for r in runs if r.id != with_m[0].id][:1]
    return [r.id for r in runs[:2]]


def no_affinity_reason(r: RunInfo) -> str:
    """Why run ``r`` (which has logged no affinity matrix) has no heatmap, in one sentence."""
    cfg = r.config or {}
    mode = (cfg.get("train") or {}).get("mode")
    planned = (cfg.get("affinity") or {}).get("measure", "none")
    if r.is_active and mode not in ("groups", "single") and planned != "none":
        return "it has not logged its first matrix yet; its heatmap appears when it does."
    if mode == "groups":
        return (
            "it was trained in groups, one network per group: no network is shared between "
            "groups, so there is no transfer between them to measure. Its losses are in Loss "
            "curves."
        )
    if mode == "single":
        return (
            "it was trained with each task alone: no network is shared, so there is no "
            "transfer to measure. Its losses are in Loss curves."
        )
    return "it logged no affinity matrix (a log of losses only, or affinity was off)."


def render() -> None:
    st.title("Compare runs")
    runs = data.list_runs()
    if len(runs) < 2:
        st.info("Comparing needs at least two runs: run the lesson, or upload two logs.")
        nav.link("learn", "Start the lesson", icon=":material/school:")
        return
    ordered = comparable(session.ordered_runs(runs)) or session.ordered_runs(runs)
    by_id = {r.id: r for r in ordered}
    if "compare_runs" not in st.session_state:
        asked = list(dict.fromkeys(session.qp_get_ints("runs")))  # in order, once each
        want = [i for i in asked if i in by_id]
        missing = [i for i in asked if i not in by_id]
        if missing:
            st.warning(
                "The link names runs that are not in this store: "
                + ", ".join(f"#{i}" for i in missing)
                + ".",
                icon=":material/link_off:",
            )
        if len(want) == 1:  # keep the valid one, add another
            want += [r.id for r in ordered if r.measures and r.id != want[0]][:1]
        if len(want) < 2:
            want = [i for i in st.session_state.get("_keep_compare_runs", []) if i in by_id]
        if len(want) < 2:
            want = default_pair(ordered)
        st.session_state["compare_runs"] = want
    st.session_state["compare_runs"] = [i for i in st.session_state["compare_runs"] if i in by_id]
    mine = session.mine(ordered)
    chosen = st.multiselect(
        "Runs to compare",
        [r.id for r in ordered],
        key="compare_runs",
        format_func=lambda i: f"{words.run_label(by_id[i])}{' · yours' if i in mine else ''}",
    )
    st.session_state["_keep_compare_runs"] = list(chosen)
    session.qp_set(runs=list(chosen) or None)
    if len(chosen) < 2:
        st.info("Pick at least two runs.")
        return
    infos = [by_id[i] for i in chosen]
    palette = colours.distinct_run_colours([r.id for r in infos])
    st.markdown(
        " ".join(
            f"{words.colour_dot(r.id, palette[r.id])} {md(words.run_label(r))}" for r in infos
        ),
        unsafe_allow_html=True,
    )
    tabs = st.tabs(["Affinity", "Loss curves", "Groupings", "Config diff"])
    # the heatmaps and groupings are of the runs with a matrix; each other run says why not
    with_aff = [r for r in infos if r.measures]
    common = sorted(set.intersection(*(set(r.measures) for r in with_aff))) if with_aff else []
    with tabs[0]:
        _no_heatmap_notes(infos)
        if with_aff:
            _affinity_tab(with_aff, common, palette)
    with tabs[1]:
        _loss_tab(infos, palette)
    with tabs[2]:
        if with_aff:
            _grouping_tab(with_aff, common)
        else:
            st.info("None of these runs logged affinity, so there is nothing to group.")
    with tabs[3]:
        _config_tab(infos)


def _no_heatmap_notes(infos: list[RunInfo]) -> None:
    """One line per chosen run without an affinity matrix: why it has no heatmap."""
    for r in infos:
        if not r.measures:
            st.info(
                f"No heatmap for {md(words.run_label(r))}: {no_affinity_reason(r)}",
                icon=":material/info:",
            )


def _measure_picker(common: list[str], key: str, infos: list[RunInfo] | None = None) -> str | None:
    if not common:
        logged = [f"#{r.id}: {', '.join(r.measures) or 'none'}" for r in infos or []]
        st.info(
            "These runs share no affinity measure, so their heatmaps cannot be put on one "
            "scale"
            + (f" (measures logged — {'; '.join(logged)})" if logged else "")
            + ". A run trained in groups or alone logs none. The loss curves and config "
            "diff still compare them."
        )
        return None
    if st.session_state.get(key) not in common:
        st.session_state[key] = common[0]
    return st.selectbox("Affinity measure", common, key=key)


def _averages(
    infos: list[RunInfo], measure: str
) -> tuple[dict[int, tuple[list[str], np.ndarray, np.ndarray]], dict[int, str]]:
    """Each run's whole-run average ``(tasks, A: (n, n), order)`` and the step range it
    covers (for the exported PNG's title), by run id; runs without a matrix are left out."""
    out, steps = {}, {}
    for r in infos:
        view = data.run_view(r, measure)
        if view is not None:
            out[r.id] = (view.tasks, view.running[-1], view.order)
            steps[r.id] = captions.steps_range(int(view.steps[0]), int(view.steps[-1]))
    return out, steps


def _measure_and_averages(infos: list[RunInfo], common: list[str], key: str):
    """The picked measure and each run's whole-run average, or None (with the reason shown)
    when none of the runs has a matrix to show."""
    measure = _measure_picker(common, key, infos)
    if measure is None:
        return None
    avgs, steps = _averages(infos, measure)
    if not avgs:
        st.info("None of these runs has logged a matrix yet.")
        return None
    return measure, avgs, steps


def _affinity_tab(infos: list[RunInfo], common: list[str], palette: dict[int, str]) -> None:
    picked = _measure_and_averages(infos, common, "compare_measure")
    if picked is None:
        return
    measure, avgs, steps = picked
    zmax = max(colours.robust_zmax(M) for _, M, _ in avgs.values())
    hide = st.toggle("Hide the diagonal", value=True, key="compare_hide_diag")
    first = next(iter(avgs.values()))
    st.caption(captions.scale_caption(zmax, measure))
    ids = list(avgs)
    n_max = max(len(t) for t, _, _ in avgs.values())  # one height: the same size everywhere
    height = heatmaps.heatmap_height(n_max)
    box = heatmaps.box_width(height)
    # a long run name is cut to its box (it would run past the box's edge into the next
    # one); the full names are in the line of coloured dots above and in the exports
    titles = dict(
        zip(
            ids,
            short_labels(
                [words.run_label(next(r for r in infos if r.id == i)) for i in ids],
                heatmaps.title_chars(box),
            ),
        )
    )
    # Streamlit cannot tell the page's width: each heatmap gets a fixed-width box in a
    # wrapping row, so as many fit side by side as the screen allows and the rest stack
    # (columns would shrink each heatmap to about 100 px at 1024 px with the sidebar open).
    row = st.container(horizontal=True, wrap=True, gap="medium")
    for rid in ids:
        tasks, M, order = avgs[rid]
        if tasks == first[0]:
            order = first[2]
        info = next(r for r in infos if r.id == rid)
        with row:
            with st.container(width=box):
                fig = heatmaps.heatmap(
                    M,
                    tasks,
                    measure=measure,
                    zmax=zmax,
                    order=order,
                    hide_diagonal=hide,
                    title=titles[rid],
                    height=height,
                )
                fig.update_layout(title_font_color=palette[rid])
                charts.chart_with_export(
                    fig,
                    captions.export_name(f"run{rid}", info.name, measure, "average"),
                    f"compare_hm_{rid}",
                    export_title=captions.export_title(
                        "Affinity averaged over the run",
                        words.run_label(info),
                        measure,
                        steps.get(rid),
                    ),
                )
    st.subheader("Difference")
    if len(ids) < 2:
        st.caption("The difference needs two runs with an affinity matrix; pick another above.")
        return
    c1, c2 = st.columns(2)
    label = {r.id: words.run_label(r) for r in infos}
    a = c1.selectbox("Baseline (A)", ids, format_func=label.get, key="compare_a")
    rest = [i for i in ids if i != a]
    if st.session_state.get("compare_b") not in rest:
        st.session_state["compare_b"] = rest[0]
    b = c2.selectbox("Other (B)", rest, format_func=label.get, key="compare_b")
    ta, Ma, oa = avgs[a]
    tb, Mb, _ = avgs[b]
    shared = [t for t in (ta[i] for i in oa) if t in tb]
    if len(shared) < 2:
        st.info("These two runs share fewer than two tasks, so there is no difference to show.")
        return
    ia = [ta.index(t) for t in shared]
    ib = [tb.index(t) for t in shared]
    fig = heatmaps.difference_heatmap(
        Ma[np.ix_(ia, ia)],
        Mb[np.ix_(ib, ib)],
        shared,
        label_a=f"#{a}",
        label_b=f"#{b}",
        hide_diagonal=hide,
        title=f"B − A: blue where #{b} transfers better than #{a}",
        measure=measure,
    )
    # in a box like the runs' (full width left its colour bar ~1000 px from the plot at 1920)
    with st.container(width=heatmaps.box_width(heatmaps.heatmap_height(len(shared)))):
        charts.chart_with_export(
            fig, captions.export_name(f"run{b}-minus-run{a}", measure), "compare_diff"
        )
    if len(shared) < max(len(ta), len(tb)):
        st.caption(captions.shared_tasks(len(shared)))


def _loss_tab(infos: list[RunInfo], palette: dict[int, str]) -> None:
    frames = {words.run_label(r): data.metrics(r) for r in infos}
    splits = [
        s
        for s in ("val", "test", "train", "batch")
        if any((df["split"] == s).any() for df in frames.values() if not df.empty)
    ]
    if not splits:
        st.info("None of these runs logged losses.")
        return
    c1, c2 = st.columns([3, 1])
    if st.session_state.get("compare_split") not in splits:
        st.session_state["compare_split"] = splits[0]
    split = c1.radio("Split", splits, horizontal=True, key="compare_split")
    mean_only = c2.toggle("Mean over tasks", key="compare_mean")
    colours = {words.run_label(r): palette[r.id] for r in infos}
    fig = lines.loss_curves(
        frames,
        colours=colours,
        split=split,
        mean_only=mean_only,
        title=f"{split} loss: one colour per run, one dash per task",
    )
    charts.chart_with_export(fig, "compare_losses", "compare_losses")


def _grouping_tab(infos: list[RunInfo], common: list[str]) -> None:
    picked = _measure_and_averages(infos, common, "compare_measure_g")
    if picked is None:
        return
    measure, avgs, steps = picked
    methods = [m for m in regroup.METHODS if m != "none"]
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox(
        "Grouping", methods, format_func=regroup.METHODS.get, key="compare_method"
    )
    n = max(len(t) for t, _, _ in avgs.values())
    k = c2.slider(
        "k",
        1,
        max(n, 1),
        min(2, n),
        key="compare_k",
        disabled=method not in ("tag", "hierarchical"),
    )
    tau_u = c3.number_input(
        f"threshold ({units.unit_name(measure)})",
        value=0.0,
        format="%.4f",
        key="compare_tau",
        disabled=method != "threshold",
        help="In the same unit as Explore's slider and the CLI's --tau",
    )
    tau = units.from_display(tau_u, measure)
    groupings: dict[int, Any] = {}
    rows = []
    for rid, (tasks, M, _) in avgs.items():
        info = next(r for r in infos if r.id == rid)
        try:
            res = regroup.regroup(M, tasks, method, int(k), float(tau))
        except Exception as exc:
            show_error(exc)
            continue
        groupings[rid] = (tasks, res.groups)
        rows.append(
            {
                "run": words.run_label(info),
                "groups": words.format_grouping(res.groups),
                f"TAG value ({units.unit_name(measure)})": words.format_value(res.score, measure),
            }
        )
    tables.show_table(pd.DataFrame(rows), hide_index=True, width="stretch")
    if len(groupings) >= 2:
        st.markdown(
            "**Agreement** (adjusted Rand index on the tasks both runs have: 1 = the "
            "same groups, 0 = no more alike than chance; empty when they share fewer "
            "than two tasks)"
        )
        agree = []
        for (ra, (ta, ga)), (rb, (tb, gb)) in itertools.combinations(groupings.items(), 2):
            shared = [t for t in ta if t in tb]
            agree.append(
                {
                    "run A": f"#{ra}",
                    "run B": f"#{rb}",
                    "shared tasks": len(shared),
                    "adjusted Rand": regroup.agreement(ga, gb, shared)
                    if len(shared) >= 2
                    else None,
                }
            )  # no pairs to agree on: n/a
        tables.show_table(
            pd.DataFrame(agree),
            hide_index=True,
            width="stretch",
            column_config={"adjusted Rand": st.column_config.NumberColumn(format="%.3f")},
        )


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested config dict -> ``{"train.steps": 300, ...}`` (lists shown as text)."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        key = prefix[:-1]
        if isinstance(d, (list, tuple)):
            d = "; ".join(
                ",".join(map(str, x)) if isinstance(x, (list, tuple)) else str(x) for x in d
            )
        out[key] = d
    return out


def config_diff(infos: list[RunInfo], differences_only: bool) -> pd.DataFrame:
    """One row per config field, one column per run."""
    flat = {words.run_label(r): flatten(r.config or {}) for r in infos}
    keys = sorted(set().union(*(f.keys() for f in flat.values())))
    rows = []
    for key in keys:
        vals = {label: f.get(key, "—") for label, f in flat.items()}
        same = len({repr(v) for v in vals.values()}) == 1
        if differences_only and same:
            continue
        rows.append({"field": key, **{k: str(v) for k, v in vals.items()}})
    return pd.DataFrame(rows)


def _config_tab(infos: list[RunInfo]) -> None:
    only = st.toggle("Differences only", value=True, key="compare_diff_only")
    df = config_diff(infos, only)
    if df.empty:
        st.info(
            "The configs are identical."
            if only
            else "These runs have no config (uploaded logs without one)."
        )
        return
    tables.show_table(df, hide_index=True, width="stretch")
