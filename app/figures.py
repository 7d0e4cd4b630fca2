"""Plotly figure builders for every page (no Streamlit here, so they are easy to test and time).

Reading aids shared by all affinity figures:

- one diverging, colour-blind-safe scale (ColorBrewer RdBu) centred on zero: **blue helps,
  red hurts**, white is neutral;
- rows are the **source** task (whose training step), columns the **target** task (whose loss
  changes), both axes labelled so;
- hovering a cell says it in words ("a step on task t0 lowers task t3's loss by 3.1%");
- animations and side-by-side views use one fixed colour range, so colours are comparable;
- long runs are downsampled (evenly spaced steps, always keeping the last), never truncated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.analysis import bucket_mean, sample_indices

#: ColorBrewer RdBu (colour-blind safe), red = hurts (negative), blue = helps (positive).
DIVERGING = [
    [0.0, "#b2182b"],
    [0.17, "#d6604d"],
    [0.33, "#f4a582"],
    [0.45, "#fbe3d6"],
    [0.5, "#f7f7f7"],
    [0.55, "#d8e9f2"],
    [0.67, "#92c5de"],
    [0.83, "#4393c3"],
    [1.0, "#2166ac"],
]
#: Okabe–Ito (colour-blind safe) for runs and approaches; black last.
RUN_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999",
               "#000000"]
#: Carto "Safe" qualitative palette (colour-blind safe) for groups and tasks.
GROUP_COLOURS = ["#332288", "#CC6677", "#117733", "#DDCC77", "#88CCEE", "#AA4499", "#44AA99",
                 "#999933", "#882255", "#661100", "#6699CC", "#888888"]
APPROACH_COLOURS = {"together": "#D55E00", "groups": "#0072B2", "single": "#009E73"}
APPROACH_LABELS = {"together": "all together", "groups": "in groups", "single": "each alone"}
MAX_FRAMES = 60  # animation frames for a whole run
MAX_POINTS = 400  # points per line trace
MAX_TIMELINE_COLUMNS = 300
FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13)


def run_colour(run_id: int) -> str:
    """The colour of a run in every view: consecutive ids get different colours."""
    return RUN_COLOURS[(int(run_id) - 1) % len(RUN_COLOURS)]


def distinct_run_colours(run_ids: Sequence[int]) -> dict[int, str]:
    """Colours for runs shown together: each keeps its own colour unless an earlier one in
    the list has it already (ids 8 apart share one), then it takes the next free colour."""
    palette = RUN_COLOURS + GROUP_COLOURS
    out: dict[int, str] = {}
    for rid in run_ids:
        colour = run_colour(rid)
        if colour in out.values():
            colour = next((c for c in palette if c not in out.values()), colour)
        out[rid] = colour
    return out


def group_colour(group_id: int) -> str:
    return GROUP_COLOURS[int(group_id) % len(GROUP_COLOURS)]


def task_colour(task: str, tasks: Sequence[str]) -> str:
    try:
        i = list(tasks).index(task)
    except ValueError:
        i = int(hashlib.md5(task.encode()).hexdigest(), 16)
    return GROUP_COLOURS[i % len(GROUP_COLOURS)]


# ----------------------------------------------------------------------------- words


def _pct(v: float) -> str:
    p = abs(float(v)) * 100
    if p < 0.05:
        return f"{p:.2f}%"
    return f"{p:.2g}%" if p < 10 else f"{p:.0f}%"


def describe_cell(source: str, target: str, value: float, measure: str = "lookahead") -> str:
    """One affinity cell in words, e.g. "A step on task a lowers task b's loss by 3.1%"."""
    if not np.isfinite(value):
        return f"{source} → {target}: not logged"
    if measure in ("lookahead", "proximal"):
        own = source == target
        whose = "its own" if own else f"task {target}'s"
        verb = "lowers" if value >= 0 else "raises"
        return f"A step on task {source} {verb} {whose} loss by {_pct(value)}"
    if measure == "cosine":
        how = "with" if value >= 0 else "against"
        return f"Task {source}'s gradient points {how} task {target}'s (cosine {value:+.2f})"
    return f"Affinity of task {source} onto task {target}: {value:+.3g} ({measure})"


def _hover(A: np.ndarray, rows: Sequence[str], cols: Sequence[str], measure: str) -> np.ndarray:
    out = np.empty(A.shape, dtype=object)
    for i, s in enumerate(rows):
        for j, t in enumerate(cols):
            out[i, j] = describe_cell(s, t, float(A[i, j]), measure)
    return out


def _layout(fig: go.Figure, title: str | None, height: int | None = None) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left") if title else None,
        font=FONT,
        margin=dict(l=10, r=10, t=50 if title else 20, b=10),
    )
    if height:
        fig.update_layout(height=height)
    return fig


# ----------------------------------------------------------------------------- heatmaps


def _masked(A: np.ndarray, hide_diagonal: bool) -> np.ndarray:
    Z = np.array(A, dtype=np.float64)
    if hide_diagonal and Z.shape[0] > 1:
        np.fill_diagonal(Z, np.nan)
    return Z


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs ``[(start, end), ...]`` of sorted positions."""
    out: list[tuple[int, int]] = []
    for p in sorted(positions):
        if out and p == out[-1][1] + 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return out


def group_shapes(
    ordered_tasks: Sequence[str], grouping: Iterable[Iterable[str]], xref: str = "x",
    yref: str = "y",
) -> list[dict]:
    """Rectangles outlining each group's block on a heatmap whose rows and columns are
    ``ordered_tasks`` (groups that are not contiguous get one box per contiguous piece)."""
    pos = {t: i for i, t in enumerate(ordered_tasks)}
    shapes = []
    for g, members in enumerate(grouping):
        idx = [pos[t] for t in members if t in pos]
        for r0, r1 in _runs(idx):
            for c0, c1 in _runs(idx):
                shapes.append(dict(
                    type="rect", xref=xref, yref=yref,
                    x0=c0 - 0.5, x1=c1 + 0.5, y0=r0 - 0.5, y1=r1 + 0.5,
                    line=dict(color=group_colour(g), width=3),
                    fillcolor="rgba(0,0,0,0)",
                ))
    return shapes


def heatmap(
    A: np.ndarray,
    tasks: Sequence[str],
    *,
    measure: str = "lookahead",
    zmax: float | None = None,
    order: Sequence[int] | None = None,
    grouping: Iterable[Iterable[str]] | None = None,
    hide_diagonal: bool = True,
    title: str | None = None,
    height: int | None = None,
    colorbar: bool = True,
    clickable: bool = False,
) -> go.Figure:
    """Affinity heatmap: rows = source, columns = target, blue helps, red hurts.

    ``order`` permutes rows and columns together (e.g. the hierarchical leaf order);
    ``grouping`` outlines each group's block; ``zmax`` fixes the symmetric colour range.
    ``clickable`` lays an invisible marker on each cell (it carries the hover text), so a
    click selects the cell: Streamlit's chart selections ignore heatmap traces.
    """
    A = np.asarray(A, dtype=np.float64)
    idx = np.arange(len(tasks)) if order is None else np.asarray(order, dtype=np.intp)
    names = [str(tasks[i]) for i in idx]
    M = A[np.ix_(idx, idx)]
    Z = _masked(M, hide_diagonal)
    if zmax is None:
        finite = np.abs(Z[np.isfinite(Z)])
        zmax = float(finite.max()) if finite.size else 1.0
    zmax = zmax if zmax and np.isfinite(zmax) and zmax > 0 else 1.0
    fig = go.Figure(go.Heatmap(
        z=Z, x=names, y=names, zmin=-zmax, zmax=zmax, zmid=0.0, colorscale=DIVERGING,
        customdata=_hover(M, names, names, measure),
        hovertemplate="%{customdata}<extra></extra>",
        xgap=1, ygap=1, showscale=colorbar,
        colorbar=dict(
            title=dict(text="blue helps<br>red hurts", side="top"), thickness=14,
            tickformat=".1%" if measure in ("lookahead", "proximal") else ".2f",
        ),
    ))
    fig.update_yaxes(title_text="source: a step on this task…", autorange="reversed",
                     type="category", tickson="labels")
    fig.update_xaxes(title_text="…changes this target task's loss", type="category",
                     side="bottom")
    if grouping:
        fig.update_layout(shapes=group_shapes(names, grouping))
    n = len(names)
    if clickable:
        hover = _hover(M, names, names, measure)
        fig.data[0].hoverinfo = "skip"
        fig.data[0].hovertemplate = None
        fig.add_trace(go.Scatter(
            x=[c for _ in names for c in names], y=[r for r in names for _ in names],
            mode="markers", marker=dict(size=max(8, min(40, 360 // max(n, 1))), opacity=0),
            customdata=hover.reshape(-1), hovertemplate="%{customdata}<extra></extra>",
            showlegend=False, name="cells",
        ))
        fig.update_layout(hovermode="closest", clickmode="event+select")
    return _layout(fig, title, height or max(380, min(760, 140 + 40 * n)))


def animated_heatmap(
    steps: np.ndarray,
    stack: np.ndarray,
    tasks: Sequence[str],
    *,
    measure: str = "lookahead",
    zmax: float,
    order: Sequence[int] | None = None,
    hide_diagonal: bool = True,
    max_frames: int = MAX_FRAMES,
    title: str | None = None,
) -> go.Figure:
    """A play button and a step slider over the run, on one fixed colour range; long runs
    are shown at evenly spaced steps (first and last always included).

    Built for speed (the page rebuilds it on every rerun): the frames are plain lists and the
    figure skips plotly's per-property validation; the hover reads the value from ``z`` (one
    template for all frames) instead of one sentence per cell and frame.
    """
    sel = sample_indices(len(steps), max_frames)
    idx = np.arange(len(tasks)) if order is None else np.asarray(order, dtype=np.intp)
    first = stack[sel[0]] if len(sel) else np.zeros((len(tasks),) * 2)
    base = heatmap(first, tasks, measure=measure, zmax=zmax, order=order,
                   hide_diagonal=hide_diagonal, title=title).to_dict()
    trace = base["data"][0]
    trace.pop("customdata", None)
    pct = measure in ("lookahead", "proximal")
    trace["hovertemplate"] = (
        "a step on task %{y} → task %{x}'s loss: "
        + ("%{z:+.2%} (+ means it went down)" if pct else "%{z:+.3f}") + "<extra></extra>")
    frames = []
    for s in sel:
        M = np.asarray(stack[s], dtype=np.float64)[np.ix_(idx, idx)]
        Z = _masked(M, hide_diagonal)
        z = [[None if not np.isfinite(v) else float(f"{v:.5g}") for v in row] for row in Z]
        frames.append({"name": str(int(steps[s])), "data": [{"type": "heatmap", "z": z}]})
    slider_steps = [
        dict(method="animate", label=f["name"],
             args=[[f["name"]], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                     transition=dict(duration=0))])
        for f in frames
    ]
    layout = base["layout"]
    layout.update(
        updatemenus=[dict(
            type="buttons", showactive=False, direction="left", x=0.1, y=0, xanchor="right",
            yanchor="top", pad=dict(r=10, t=95),
            buttons=[
                dict(label="▶", method="animate",
                     args=[None, dict(frame=dict(duration=120, redraw=True), fromcurrent=True,
                                      transition=dict(duration=0))]),
                dict(label="❚❚", method="animate",
                     args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))]),
            ],
        )],
        sliders=[dict(active=0, x=0.1, len=0.9, y=0, xanchor="left", yanchor="top",
                      pad=dict(b=10, t=75), currentvalue=dict(prefix="step ", xanchor="right"),
                      steps=slider_steps)],
        margin=dict(l=10, r=10, t=50, b=150), height=(layout.get("height") or 400) + 130,
    )
    return go.Figure({"data": base["data"], "layout": layout, "frames": frames},
                     _validate=False)


def difference_heatmap(
    A: np.ndarray, B: np.ndarray, tasks: Sequence[str], *, label_a: str, label_b: str,
    hide_diagonal: bool = True, title: str | None = None,
) -> go.Figure:
    """``B - A`` on the same task order: blue where B's transfer is better than A's."""
    D = np.asarray(B, dtype=np.float64) - np.asarray(A, dtype=np.float64)
    Z = _masked(D, hide_diagonal)
    finite = np.abs(Z[np.isfinite(Z)])
    zmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    names = [str(t) for t in tasks]
    hover = np.empty(D.shape, dtype=object)
    for i, s in enumerate(names):
        for j, t in enumerate(names):
            hover[i, j] = (f"{s} → {t}: {label_b} {B[i, j]:+.2%} vs {label_a} {A[i, j]:+.2%} "
                           f"(difference {D[i, j]:+.2%})")
    fig = go.Figure(go.Heatmap(
        z=Z, x=names, y=names, zmin=-zmax, zmax=zmax, zmid=0.0, colorscale=DIVERGING,
        customdata=hover, hovertemplate="%{customdata}<extra></extra>", xgap=1, ygap=1,
        colorbar=dict(title=dict(text=f"{label_b}<br>minus {label_a}", side="top"),
                      thickness=14, tickformat=".1%"),
    ))
    fig.update_yaxes(title_text="source", autorange="reversed", type="category")
    fig.update_xaxes(title_text="target", type="category")
    return _layout(fig, title, max(320, min(720, 120 + 32 * len(names))))


# ----------------------------------------------------------------------------- lines


def pair_series(
    steps: np.ndarray, raw: np.ndarray, smoothed: np.ndarray | None, *, source: str,
    target: str, measure: str = "lookahead", title: str | None = None,
) -> go.Figure:
    """One source→target cell over the run: raw (thin) and smoothed (bold), zero marked."""
    fig = go.Figure()
    x, y = bucket_mean(steps, raw, MAX_POINTS)
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="as logged",
                             line=dict(color="#999999", width=1)))
    if smoothed is not None:
        xs, ys = bucket_mean(steps, smoothed, MAX_POINTS)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="smoothed",
                                 line=dict(color="#0072B2", width=3)))
    fig.add_hline(y=0, line=dict(color="#444", width=1, dash="dot"))
    fig.update_xaxes(title_text="step")
    fmt = ".1%" if measure in ("lookahead", "proximal") else ".2f"
    fig.update_yaxes(title_text=f"{source} → {target} ({measure})", tickformat=fmt)
    return _layout(fig, title or f"A step on {source}: effect on {target}'s loss", 320)


def loss_curves(
    frames: Mapping[str, pd.DataFrame],
    *,
    colours: Mapping[str, str] | None = None,
    split: str = "val",
    tasks: Sequence[str] | None = None,
    mean_only: bool = False,
    title: str | None = None,
    log_y: bool = False,
) -> go.Figure:
    """Per-task loss over steps for one or more runs (long-form metric frames by label).

    With several runs each run keeps one colour and tasks differ by dash; with one run each
    task gets its own colour. ``mean_only`` draws one mean-over-tasks line per run.
    """
    fig = go.Figure()
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    single = len(frames) == 1
    for k, (label, df) in enumerate(frames.items()):
        if df is None or df.empty:
            continue
        sel = df[(df["split"] == split) & (df["metric"] == "loss")]
        if sel.empty:
            continue
        colour = (colours or {}).get(label, RUN_COLOURS[k % len(RUN_COLOURS)])
        if mean_only:
            m = sel.groupby("step")["value"].mean()
            x, y = bucket_mean(m.index.to_numpy(), m.to_numpy(), MAX_POINTS)
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers" if len(x) < 40 else "lines",
                                     name=label, line=dict(color=colour, width=3)))
            continue
        names = list(tasks) if tasks is not None else list(dict.fromkeys(sel["task"]))
        for j, t in enumerate(names):
            part = sel[sel["task"] == t].sort_values("step")
            if part.empty:
                continue
            x, y = bucket_mean(part["step"].to_numpy(), part["value"].to_numpy(), MAX_POINTS)
            line = (dict(color=task_colour(t, names), width=2) if single
                    else dict(color=colour, width=2, dash=dashes[j % len(dashes)]))
            fig.add_trace(go.Scatter(
                x=x, y=y, mode="lines", name=t if single else f"{label} · {t}",
                legendgroup=label, line=line,
                hovertemplate=f"{label} · {t}<br>step %{{x}}<br>loss %{{y:.4g}}<extra></extra>",
            ))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text=f"{split} loss", type="log" if log_y else "linear")
    return _layout(fig, title, 360)


def lesson_losses(
    losses: Mapping[str, Mapping[str, float]], tasks: Sequence[str], title: str | None = None
) -> go.Figure:
    """Per-task held-out loss side by side for the lesson's approaches (grouped bars)."""
    fig = go.Figure()
    for key in ("together", "groups", "single"):
        vals = losses.get(key) or {}
        if not vals:
            continue
        fig.add_trace(go.Bar(
            x=list(tasks), y=[vals.get(t, np.nan) for t in tasks],
            name=APPROACH_LABELS[key], marker_color=APPROACH_COLOURS[key],
            hovertemplate=f"{APPROACH_LABELS[key]}<br>task %{{x}}: held-out loss "
                          "%{y:.4g}<extra></extra>",
        ))
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.3, yanchor="top",
                                                   x=0, xanchor="left"))
    fig.update_xaxes(title_text="task", type="category")
    fig.update_yaxes(title_text="held-out loss (lower is better)")
    return _layout(fig, title, 380)


# ----------------------------------------------------------------------------- timelines


def group_timeline(
    steps: Sequence[int],
    labels: np.ndarray,
    tasks: Sequence[str],
    *,
    order: Sequence[int] | None = None,
    changes: Sequence[int] = (),
    title: str | None = None,
) -> go.Figure:
    """Task-by-step band chart: each cell coloured by the (stable) id of the task's group at
    that step; change points marked with dotted lines. ``labels``: ``(S, n)`` int, -1 = none.
    """
    labels = np.asarray(labels)
    sel = sample_indices(len(steps), MAX_TIMELINE_COLUMNS)
    idx = np.arange(len(tasks)) if order is None else np.asarray(order, dtype=np.intp)
    L = labels[sel][:, idx].T.astype(np.float64)  # (n, S')
    L[L < 0] = np.nan
    ids = sorted({int(v) for v in np.unique(L[np.isfinite(L)])})
    if not ids:
        ids = [0]
    # A discrete colour scale: one flat band per group id.
    lo, hi = min(ids), max(ids)
    span = max(hi - lo, 1)
    scale = []
    for g in range(lo, hi + 1):
        a, b = (g - lo) / (span + 1), (g - lo + 1) / (span + 1)
        scale += [[a, group_colour(g)], [b, group_colour(g)]]
    xs = [int(steps[s]) for s in sel]
    names = [str(tasks[i]) for i in idx]
    hover = np.empty(L.shape, dtype=object)
    for r, t in enumerate(names):
        for c, x in enumerate(xs):
            v = L[r, c]
            hover[r, c] = f"step {x}: {t} in group {int(v)}" if np.isfinite(v) else f"step {x}"
    fig = go.Figure(go.Heatmap(
        z=L, x=xs, y=names, zmin=lo - 0.5, zmax=lo - 0.5 + span + 1, colorscale=scale,
        showscale=False, customdata=hover, hovertemplate="%{customdata}<extra></extra>",
    ))
    # One shapes list (add_vline re-validates every shape on each call: quadratic).
    fig.update_layout(shapes=[
        dict(type="line", xref="x", yref="paper", x0=c, x1=c, y0=0, y1=1,
             line=dict(color="#222", width=1, dash="dot"))
        for c in changes
    ])
    fig.update_yaxes(title_text="task", autorange="reversed", type="category")
    fig.update_xaxes(title_text="step")
    return _layout(fig, title, max(220, 60 + 26 * len(names)))
