"""Affinity heatmaps: one matrix, a play-over-steps animation, and the difference of two.

Rows are the source task (whose training step), columns the target task (whose loss changes);
blue helps, red hurts, on a symmetric range around zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go

from app import words
from app.figures.colours import DIVERGING, group_colour
from app.figures.style import layout
from mtl_core.series import sample_indices

MAX_FRAMES = 60  # animation frames for a whole run


def masked(A: np.ndarray, hide_diagonal: bool) -> np.ndarray:
    """A float copy of ``A`` ``(n, n)`` with the diagonal set to NaN when hidden."""
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
    ordered_tasks: Sequence[str],
    grouping: Iterable[Iterable[str]],
    xref: str = "x",
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
                shapes.append(
                    dict(
                        type="rect",
                        xref=xref,
                        yref=yref,
                        x0=c0 - 0.5,
                        x1=c1 + 0.5,
                        y0=r0 - 0.5,
                        y1=r1 + 0.5,
                        line=dict(color=group_colour(g), width=3),
                        fillcolor="rgba(0,0,0,0)",
                    )
                )
    return shapes


def _zmax(Z: np.ndarray, zmax: float | None) -> float:
    """The colour limit: ``zmax`` when usable, else the largest finite ``|Z|``, else 1."""
    if zmax is None:
        finite = np.abs(Z[np.isfinite(Z)])
        zmax = float(finite.max()) if finite.size else 1.0
    return zmax if zmax and np.isfinite(zmax) and zmax > 0 else 1.0


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
    """Affinity heatmap of ``A`` ``(n, n)``: rows = source, columns = target, blue helps.

    ``order`` permutes rows and columns together (e.g. the hierarchical leaf order);
    ``grouping`` outlines each group's block; ``zmax`` fixes the symmetric colour range.
    ``clickable`` lays an invisible marker on each cell (it carries the hover text), so a
    click selects the cell: Streamlit's chart selections ignore heatmap traces.
    """
    A = np.asarray(A, dtype=np.float64)
    idx = np.arange(len(tasks)) if order is None else np.asarray(order, dtype=np.intp)
    names = [str(tasks[i]) for i in idx]
    M = A[np.ix_(idx, idx)]
    Z = masked(M, hide_diagonal)
    zmax = _zmax(Z, zmax)
    hover = words.cell_sentences(M, names, measure)
    fig = go.Figure(
        go.Heatmap(
            z=Z,
            x=names,
            y=names,
            zmin=-zmax,
            zmax=zmax,
            zmid=0.0,
            colorscale=DIVERGING,
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            xgap=1,
            ygap=1,
            showscale=colorbar,
            colorbar=dict(
                title=dict(text="blue helps<br>red hurts", side="top"),
                thickness=14,
                tickformat=".1%" if words.is_percent(measure) else ".2f",
            ),
        )
    )
    fig.update_yaxes(
        title_text="source: a step on this task…",
        autorange="reversed",
        type="category",
        tickson="labels",
    )
    fig.update_xaxes(title_text="…changes this target task's loss", type="category", side="bottom")
    if grouping:
        fig.update_layout(shapes=group_shapes(names, grouping))
    if clickable:
        _add_click_targets(fig, names, hover)
    n = len(names)
    tick, row_px = label_size(n)
    fig.update_xaxes(tickfont=dict(size=tick), tickangle=-60 if n > 16 else None, nticks=n + 1)
    fig.update_yaxes(tickfont=dict(size=tick), nticks=n + 1)
    return layout(fig, title, height or max(380, min(1100, 140 + row_px * n)))


def label_size(n: int) -> tuple[int, int]:
    """Tick font size and pixels per row for an ``n``-task heatmap: every task keeps its
    label (no thinning), smaller type and taller figures as n grows (50 tasks: 9 px type,
    18 px rows)."""
    if n <= 16:
        return 12, 40
    if n <= 30:
        return 11, 24
    return (10, 20) if n <= 40 else (9, 18)


def _add_click_targets(fig: go.Figure, names: list[str], hover: np.ndarray) -> None:
    """One invisible marker per cell carrying its hover text (the heatmap's own hover off)."""
    n = len(names)
    fig.data[0].hoverinfo = "skip"
    fig.data[0].hovertemplate = None
    fig.add_trace(
        go.Scatter(
            x=[c for _ in names for c in names],
            y=[r for r in names for _ in names],
            mode="markers",
            marker=dict(size=max(8, min(40, 360 // max(n, 1))), opacity=0),
            customdata=hover.reshape(-1),
            hovertemplate="%{customdata}<extra></extra>",
            showlegend=False,
            name="cells",
        )
    )
    fig.update_layout(hovermode="closest", clickmode="event+select")


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
    """A play button and a step slider over ``stack`` ``(S, n, n)`` (one matrix per entry of
    ``steps``) on one fixed colour range; long runs are shown at evenly spaced steps (first
    and last always included).

    Built for speed (the page rebuilds it on every rerun): the frames are plain lists and the
    figure skips plotly's per-property validation; the hover reads the value from ``z`` (one
    template for all frames) instead of one sentence per cell and frame.
    """
    sel = sample_indices(len(steps), max_frames)
    idx = np.arange(len(tasks)) if order is None else np.asarray(order, dtype=np.intp)
    first = stack[sel[0]] if len(sel) else np.zeros((len(tasks),) * 2)
    base = heatmap(
        first,
        tasks,
        measure=measure,
        zmax=zmax,
        order=order,
        hide_diagonal=hide_diagonal,
        title=title,
    ).to_dict()
    trace = base["data"][0]
    trace.pop("customdata", None)
    trace["hovertemplate"] = words.cell_template(measure)
    frames = []
    for s in sel:
        Z = masked(np.asarray(stack[s], dtype=np.float64)[np.ix_(idx, idx)], hide_diagonal)
        z = [[None if not np.isfinite(v) else float(f"{v:.5g}") for v in row] for row in Z]
        frames.append({"name": str(int(steps[s])), "data": [{"type": "heatmap", "z": z}]})
    fig_layout = base["layout"]
    fig_layout.update(
        updatemenus=[_play_buttons()],
        sliders=[_step_slider([f["name"] for f in frames])],
        margin=dict(l=10, r=10, t=50, b=150),
        height=(fig_layout.get("height") or 400) + 130,
    )
    return go.Figure(
        {"data": base["data"], "layout": fig_layout, "frames": frames}, _validate=False
    )


def _play_buttons() -> dict:
    """Play (from the current frame) and pause, below the heatmap."""
    return dict(
        type="buttons",
        showactive=False,
        direction="left",
        x=0.1,
        y=0,
        xanchor="right",
        yanchor="top",
        pad=dict(r=10, t=95),
        buttons=[
            dict(
                label="▶",
                method="animate",
                args=[
                    None,
                    dict(
                        frame=dict(duration=120, redraw=True),
                        fromcurrent=True,
                        transition=dict(duration=0),
                    ),
                ],
            ),
            dict(
                label="❚❚",
                method="animate",
                args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))],
            ),
        ],
    )


def _step_slider(names: list[str]) -> dict:
    """A slider with one stop per frame, labelled with its step."""
    stops = [
        dict(
            method="animate",
            label=name,
            args=[
                [name],
                dict(
                    mode="immediate",
                    frame=dict(duration=0, redraw=True),
                    transition=dict(duration=0),
                ),
            ],
        )
        for name in names
    ]
    return dict(
        active=0,
        x=0.1,
        len=0.9,
        y=0,
        xanchor="left",
        yanchor="top",
        pad=dict(b=10, t=75),
        currentvalue=dict(prefix="step ", xanchor="right"),
        steps=stops,
    )


def difference_heatmap(
    A: np.ndarray,
    B: np.ndarray,
    tasks: Sequence[str],
    *,
    label_a: str,
    label_b: str,
    hide_diagonal: bool = True,
    title: str | None = None,
) -> go.Figure:
    """``B - A`` (both ``(n, n)``, same task order): blue where B's transfer is better."""
    D = np.asarray(B, dtype=np.float64) - np.asarray(A, dtype=np.float64)
    Z = masked(D, hide_diagonal)
    finite = np.abs(Z[np.isfinite(Z)])
    zmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    names = [str(t) for t in tasks]
    hover = np.empty(D.shape, dtype=object)
    for i, s in enumerate(names):
        for j, t in enumerate(names):
            hover[i, j] = words.describe_difference(s, t, A[i, j], B[i, j], label_a, label_b)
    fig = go.Figure(
        go.Heatmap(
            z=Z,
            x=names,
            y=names,
            zmin=-zmax,
            zmax=zmax,
            zmid=0.0,
            colorscale=DIVERGING,
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            xgap=1,
            ygap=1,
            colorbar=dict(
                title=dict(text=f"{label_b}<br>minus {label_a}", side="top"),
                thickness=14,
                tickformat=".1%",
            ),
        )
    )
    fig.update_yaxes(title_text="source", autorange="reversed", type="category")
    fig.update_xaxes(title_text="target", type="category")
    return layout(fig, title, max(320, min(720, 120 + 32 * len(names))))
