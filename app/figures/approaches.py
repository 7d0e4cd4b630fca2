"""The lesson's figure: per-task held-out loss of its three ways of training, side by side,
each bar the mean over the replicas with its 95% interval as an error bar."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from app import words
from app.colours import APPROACH_COLOURS
from app.figures.style import layout
from mtl_core.lesson.report import Interval


def lesson_losses(
    losses: Mapping[str, Mapping[str, Interval]], tasks: Sequence[str], title: str | None = None
) -> go.Figure:
    """Per-task held-out loss side by side for the lesson's approaches (grouped bars), with
    the 95% interval over replicas as error bars (none for a run without replicas)."""
    fig = go.Figure()
    nan = Interval(np.nan, np.nan, np.nan)
    for key in ("together", "groups", "single"):
        vals = losses.get(key) or {}
        if not vals:
            continue
        ivs = [vals.get(t, nan) for t in tasks]
        mean = np.array([iv.mean for iv in ivs], dtype=float)
        fig.add_trace(
            go.Bar(
                x=list(tasks),
                y=mean,
                name=words.APPROACH_LABELS[key],
                marker_color=APPROACH_COLOURS[key],
                hovertemplate=words.approach_template(key),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    thickness=1.5,
                    width=3,
                    array=np.array([iv.high for iv in ivs], dtype=float) - mean,
                    arrayminus=mean - np.array([iv.low for iv in ivs], dtype=float),
                ),
            )
        )
    ns = sorted({iv.n for v in losses.values() for iv in v.values() if iv.n >= 2})
    if ns:  # say on the chart what the whiskers are (they are not the spread of the replicas)
        fig.add_annotation(
            text=error_bar_note(ns),
            xref="paper",
            yref="paper",
            x=0,
            y=1.0,
            xanchor="left",
            yanchor="bottom",
            align="left",
            showarrow=False,
            font=dict(size=11),
        )
    fig.update_layout(
        barmode="group", legend=dict(orientation="h", y=-0.3, yanchor="top", x=0, xanchor="left")
    )
    fig.update_xaxes(title_text="task", type="category")
    fig.update_yaxes(title_text="held-out loss (lower is better)")
    layout(fig, title, 380)
    if ns:  # the title at the top, the two-line note between it and the plot
        fig.update_layout(margin=dict(t=(84 if title else 40)))
        if title:
            fig.update_layout(title=dict(y=1, yref="container", yanchor="top", pad=dict(t=12)))
    return fig


def error_bar_note(replica_counts: Sequence[int]) -> str:
    """The chart's line on its whiskers: each is the 95% Student-t interval of the task's mean
    held-out loss over the run's replicas (``mtl_core.lesson.report.interval``), with the
    replica counts ``replica_counts`` (sorted ints >= 2) it rests on, in two lines (about 40
    characters each: they fit a 300 px chart)."""
    counts = "/".join(str(n) for n in replica_counts)
    # two short lines: one line ran past the chart's right edge in a 270 px column
    return (
        f"whiskers: 95% t-interval of the mean<br>over {counts} replicas (random init, batch order)"
    )
