"""Line charts over steps: one source→target pair, and per-task loss curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app import words
from app.colours import RUN_COLOURS, task_colour
from app.figures.style import layout
from mtl_core.series import bucket_mean

MAX_POINTS = 400  # points per line trace


def pair_series(
    steps: np.ndarray,
    raw: np.ndarray,
    smoothed: np.ndarray | None,
    *,
    source: str,
    target: str,
    measure: str = "lookahead",
    title: str | None = None,
    smoothed_label: str = "smoothed",
) -> go.Figure:
    """One source→target cell over the run, ``raw`` and ``smoothed`` both ``(S,)`` over
    ``steps``: raw (thin) and smoothed (bold, named ``smoothed_label``), zero marked."""
    fig = go.Figure()
    x, y = bucket_mean(steps, raw, MAX_POINTS)
    fig.add_trace(
        go.Scatter(x=x, y=y, mode="lines", name="as logged", line=dict(color="#999999", width=1))
    )
    if smoothed is not None:
        xs, ys = bucket_mean(steps, smoothed, MAX_POINTS)
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", name=smoothed_label, line=dict(color="#0072B2", width=3)
            )
        )
    fig.add_hline(y=0, line=dict(color="#444", width=1, dash="dot"))
    fig.update_xaxes(title_text="step")
    fmt = ".1%" if words.is_percent(measure) else ".2f"
    fig.update_yaxes(title_text=f"{source} → {target} ({measure})", tickformat=fmt)
    return layout(fig, title or words.pair_title(source, target), 320)


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
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines+markers" if len(x) < 40 else "lines",
                    name=label,
                    line=dict(color=colour, width=3),
                )
            )
            continue
        names = list(tasks) if tasks is not None else list(dict.fromkeys(sel["task"]))
        by_task = dict(tuple(sel.groupby("task", sort=False)))  # one pass, not one per task
        for j, t in enumerate(names):
            part = by_task.get(t)
            if part is None or part.empty:
                continue
            part = part.sort_values("step")
            x, y = bucket_mean(part["step"].to_numpy(), part["value"].to_numpy(), MAX_POINTS)
            line = (
                dict(color=task_colour(t, names), width=2)
                if single
                else dict(color=colour, width=2, dash=dashes[j % len(dashes)])
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    name=t if single else f"{label} · {t}",
                    legendgroup=label,
                    line=line,
                    hovertemplate=words.loss_template(label, t),
                )
            )
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text=f"{split} loss", type="log" if log_y else "linear")
    return layout(fig, title, 360)
