"""The group timeline: which group each task is in at each step, with the change points."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app import words
from app.figures.colours import group_colour
from app.figures.style import layout
from mtl_core.series import sample_indices

MAX_TIMELINE_COLUMNS = 300


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
            hover[r, c] = words.timeline_cell(x, t, L[r, c])
    fig = go.Figure(
        go.Heatmap(
            z=L,
            x=xs,
            y=names,
            zmin=lo - 0.5,
            zmax=lo - 0.5 + span + 1,
            colorscale=scale,
            showscale=False,
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    # One shapes list (add_vline re-validates every shape on each call: quadratic).
    fig.update_layout(
        shapes=[
            dict(
                type="line",
                xref="x",
                yref="paper",
                x0=c,
                x1=c,
                y0=0,
                y1=1,
                line=dict(color="#222", width=1, dash="dot"),
            )
            for c in changes
        ]
    )
    fig.update_yaxes(title_text="task", autorange="reversed", type="category")
    fig.update_xaxes(title_text="step")
    return layout(fig, title, max(220, 60 + 26 * len(names)))
