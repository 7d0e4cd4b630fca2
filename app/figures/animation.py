"""The play-over-steps animation of an affinity heatmap: one frame per sampled step, a play
button and a step slider. Rows = source task (whose step), columns = target task (whose loss
changes); blue helps, red hurts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app import captions, words
from app.figures.escape import escape_figure, mark_escaped
from app.figures.heatmaps import MAX_FRAMES, heatmap, masked
from mtl_core.series import sample_indices


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
    # escaped here, once (names live in the base trace; the frames hold only numbers)
    base = escape_figure(
        heatmap(
            first,
            tasks,
            measure=measure,
            zmax=zmax,
            order=order,
            hide_diagonal=hide_diagonal,
            title=title,
        )
    ).to_dict()
    # The × marks of unlogged cells belong to one frame: leave them out of the animation.
    base["data"] = [t for t in base["data"] if t.get("name") != captions.MISSING_LEGEND]
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
    return mark_escaped(
        go.Figure({"data": base["data"], "layout": fig_layout, "frames": frames}, _validate=False)
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
