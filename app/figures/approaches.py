"""The lesson's figure: per-task held-out loss of its three ways of training, side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from app import words
from app.figures.colours import APPROACH_COLOURS
from app.figures.style import layout


def lesson_losses(
    losses: Mapping[str, Mapping[str, float]], tasks: Sequence[str], title: str | None = None
) -> go.Figure:
    """Per-task held-out loss side by side for the lesson's approaches (grouped bars)."""
    fig = go.Figure()
    for key in ("together", "groups", "single"):
        vals = losses.get(key) or {}
        if not vals:
            continue
        fig.add_trace(
            go.Bar(
                x=list(tasks),
                y=[vals.get(t, np.nan) for t in tasks],
                name=words.APPROACH_LABELS[key],
                marker_color=APPROACH_COLOURS[key],
                hovertemplate=words.approach_template(key),
            )
        )
    fig.update_layout(
        barmode="group", legend=dict(orientation="h", y=-0.3, yanchor="top", x=0, xanchor="left")
    )
    fig.update_xaxes(title_text="task", type="category")
    fig.update_yaxes(title_text="held-out loss (lower is better)")
    return layout(fig, title, 380)
