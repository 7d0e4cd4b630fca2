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
            showarrow=False,
            font=dict(size=11),
        )
    fig.update_layout(
        barmode="group", legend=dict(orientation="h", y=-0.3, yanchor="top", x=0, xanchor="left")
    )
    fig.update_xaxes(title_text="task", type="category")
    fig.update_yaxes(title_text="held-out loss (lower is better)")
    layout(fig, title, 380)
    if ns:
        fig.update_layout(margin=dict(t=(70 if title else 30)))
    return fig


def error_bar_note(replica_counts: Sequence[int]) -> str:
    """The chart's line on its whiskers: each is the 95% Student-t interval of the task's mean
    held-out loss over the run's replicas (``mtl_core.lesson.report.interval``), with the
    replica counts ``replica_counts`` (sorted ints >= 2) it rests on."""
    counts = "/".join(str(n) for n in replica_counts)
    return f"bars: 95% t-interval of the mean over {counts} replicas (random init and batch order)"
