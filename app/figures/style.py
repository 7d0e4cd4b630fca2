"""The layout every figure shares: font, title placement, margins."""

from __future__ import annotations

import plotly.graph_objects as go

FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13)


def layout(fig: go.Figure, title: str | None, height: int | None = None) -> go.Figure:
    """Apply the shared font, a left-aligned title and tight margins (in place); returns
    ``fig``."""
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left") if title else None,
        font=FONT,
        margin=dict(l=10, r=10, t=50 if title else 20, b=10),
    )
    if height:
        fig.update_layout(height=height)
    return fig
