"""The group timeline: which group each task is in at each step, with the change points.

Groups keep the colour they have everywhere else (``colours.group_colours``: keyed by the
group's members, the shown grouping first), the step shown above is marked, and a task in two
overlapping (TAG) groups carries a dot in its second group's colour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from app import words
from app.colours import group_colours
from app.figures.style import layout
from mtl_core.series import sample_indices
from mtl_core.types import Grouping

MAX_TIMELINE_COLUMNS = 300


def membership(grouping: Grouping, tasks: Sequence[str]) -> list[list[frozenset[str]]]:
    """For each task, the groups holding it (in the grouping's order; empty: none)."""
    out: list[list[frozenset[str]]] = [[] for _ in tasks]
    pos = {t: i for i, t in enumerate(tasks)}
    for members in grouping:
        key = frozenset(members)
        for t in members:
            if t in pos:
                out[pos[t]].append(key)
    return out


def group_timeline(
    steps: Sequence[int],
    groupings: Sequence[Grouping],
    tasks: Sequence[str],
    *,
    colours: Mapping[frozenset[str], str] | None = None,
    order: Sequence[int] | None = None,
    changes: Sequence[int] = (),
    current_step: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """Task-by-step band chart of ``groupings`` (one per entry of ``steps``): each cell in
    the colour of the task's group at that step (``colours``: member set -> colour, default
    ``group_colours(*groupings)``), change points as dotted lines, ``current_step`` as a solid
    line, a task in a second overlapping group with a dot in that group's colour."""
    sel = sample_indices(len(steps), MAX_TIMELINE_COLUMNS)
    colours = dict(colours or group_colours(*groupings))
    idx = np.arange(len(tasks)) if order is None else np.asarray(order, dtype=np.intp)
    names = [str(tasks[i]) for i in idx]
    xs = [int(steps[s]) for s in sel]
    palette = list(dict.fromkeys(colours.values())) or ["#888888"]
    slot = {c: k for k, c in enumerate(palette)}
    Z = np.full((len(names), len(xs)), np.nan)
    hover = np.empty(Z.shape, dtype=object)
    extra_x, extra_y, extra_c = [], [], []
    for c, s in enumerate(sel):
        held = membership(groupings[s], names)
        for r, t in enumerate(names):
            hover[r, c] = words.timeline_cell(xs[c], t, [sorted(g) for g in held[r]])
            if held[r]:
                Z[r, c] = slot.get(colours.get(held[r][0], ""), np.nan)
            for g in held[r][1:2]:  # a second (overlapping) group: a dot in its colour
                extra_x.append(xs[c])
                extra_y.append(t)
                extra_c.append(colours.get(g, "#888888"))
    k = len(palette)
    scale = []
    for i, col in enumerate(palette):
        scale += [[i / k, col], [(i + 1) / k, col]]
    fig = go.Figure(
        go.Heatmap(
            z=Z,
            x=xs,
            y=names,
            zmin=-0.5,
            zmax=k - 0.5,
            colorscale=scale,
            showscale=False,
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            name="groups",
        )
    )
    if extra_x:
        fig.add_trace(
            go.Scatter(
                x=extra_x,
                y=extra_y,
                mode="markers",
                name="also in a second (overlapping) group",
                marker=dict(
                    color=extra_c, size=7, symbol="circle", line=dict(color="white", width=1)
                ),
                hoverinfo="skip",
            )
        )
    shapes = [_vline(c, color="#222", width=1, dash="dot") for c in changes]
    if current_step is not None:
        shapes.append(_vline(current_step, color="#000", width=2.5))
        fig.add_annotation(
            x=current_step,
            y=1,
            yref="paper",
            yanchor="bottom",
            text=f"shown: step {current_step}",
            showarrow=False,
            font=dict(size=11),
        )
    fig.update_layout(shapes=shapes, legend=dict(orientation="h", x=0, y=-0.25, yanchor="top"))
    fig.update_yaxes(
        title_text="task",
        autorange="reversed",
        type="category",
        tickmode="array",
        tickvals=names,
        ticktext=names,
    )
    fig.update_xaxes(title_text="step")
    return layout(fig, title, max(240, 80 + 26 * len(names)))


def _vline(x: float, **line: object) -> dict:
    """A full-height vertical line at step ``x`` (a layout shape)."""
    return dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1, line=line)
