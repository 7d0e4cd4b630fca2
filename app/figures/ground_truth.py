"""The ground-truth page's figures: every estimator's measured score against k or the budget
(HOA's Figure 3 layout), and one estimator's predictions against the measured values."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from app.figures.style import layout

#: Estimator keys of the ``select`` document, in the order they are drawn, with their labels.
ESTIMATOR_LABELS = {
    "optimal": "optimal (exact)",
    "hoa": "HOA approximation",
    "affinity": "TAG (affinity)",
    "estimate": "uploaded estimate",
    "random": "random (mean ± sd)",
    "worst": "worst",
}
_DASH = {"optimal": "solid", "worst": "dot", "random": "dash"}


def limit_key(doc: dict) -> str:
    """``"k"`` or ``"budget"``: what the document's rows are indexed by."""
    return "k" if doc["rows"] and "k" in doc["rows"][0] else "budget"


def score_lines(doc: dict, title: str | None = None) -> go.Figure:
    """Total measured score (scoring table) of each estimator's networks against k or the
    budget; random as its mean with the sd as error bars. ``doc``: the ``select --json``
    document."""
    key = limit_key(doc)
    fig = go.Figure()
    for name, label in ESTIMATOR_LABELS.items():
        xs, ys, sds = [], [], []
        for row in doc["rows"]:
            s = row.get(name)
            if s is None:
                continue
            xs.append(row[key])
            if name == "random":
                ys.append(s["mean"])
                sds.append(s["sd"])
            else:
                ys.append(s["score"])
        if not xs:
            continue
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name=label,
                mode="lines+markers",
                line=dict(dash=_DASH.get(name, "solid")),
                error_y=dict(type="data", array=sds, visible=True) if name == "random" else None,
                hovertemplate=f"{label}<br>{key} %{{x}}<br>score %{{y:.5g}}<extra></extra>",
            )
        )
    better = "lower" if doc["direction"] == "lower" else "higher"
    fig.update_xaxes(title_text="at most k networks" if key == "k" else "budget B")
    fig.update_yaxes(title_text=f"total score on the scoring table ({better} is better)")
    return layout(fig, title, height=420)


def prediction_scatter(
    cells: Sequence[dict], estimator: str, direction: str, title: str | None = None
) -> go.Figure:
    """One point per cell (network of 2+ tasks, task): the estimator's prediction against the
    measured value. ``cells``: :func:`mtl_core.groundtruth.compare.prediction_cells` rows."""
    pts = [c for c in cells if c["estimator"] == estimator]
    fig = go.Figure(
        go.Scatter(
            x=[c["predicted"] for c in pts],
            y=[c["measured"] for c in pts],
            mode="markers",
            marker=dict(size=6, opacity=0.6),
            customdata=[[c["network"], c["task"]] for c in pts],
            hovertemplate="%{customdata[1]} in %{customdata[0]}<br>predicted %{x:.4g}"
            "<br>measured %{y:.4g}<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_xaxes(title_text=f"predicted ({ESTIMATOR_LABELS.get(estimator, estimator)})")
    fig.update_yaxes(
        title_text=f"measured ({'lower' if direction == 'lower' else 'higher'} is better)"
    )
    return layout(fig, title, height=420)
