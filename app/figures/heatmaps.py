"""Affinity heatmaps: one matrix and the difference of two (the animation is in
:mod:`app.figures.animation`). Rows = source task (whose step), columns = target task (whose
loss changes); blue helps, red hurts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go

from app import captions, words
from app.colours import DIVERGING, group_colours
from app.figures.style import layout

MAX_FRAMES = 60  # animation frames for a whole run
#: Cells with no colour of the scale: the hidden diagonal and cells with nothing logged.
DIAGONAL_GREY = "#9e9e9e"
MISSING_MARK = "#616161"


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
    colours: dict[frozenset[str], str] | None = None,
) -> list[dict]:
    """Rectangles outlining each group's block on a heatmap whose rows and columns are
    ``ordered_tasks`` (groups that are not contiguous get one box per contiguous piece), each
    in its group's colour (``colours.group_colours``: the same in every view)."""
    grouping = [tuple(g) for g in grouping]
    colours = colours or group_colours(grouping)
    pos = {t: i for i, t in enumerate(ordered_tasks)}
    shapes = []
    for members in grouping:
        colour = colours.get(frozenset(members), "#444444")
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
                        line=dict(color=colour, width=3),
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


#: Extra width (CSS px) of a square heatmap's box over its figure height: the row labels and
#: the colour bar take about this much more across than the title and the column labels take
#: down, so in a box :func:`box_width` wide the plot area is about as wide as it is tall.
BOX_EXTRA_PX = 40
#: Width (CSS px) budgeted per character of a figure title (13 px sans serif; 7 px on average,
#: wide letters included): how much of a title fits its box (:func:`title_chars`).
TITLE_CHAR_PX = 8


def box_width(height: int) -> int:
    """Width (CSS px) of the box for a square heatmap ``height`` px tall: its colour bar sits
    beside the plot (a full-width chart leaves empty space between them at 1920 px); Streamlit
    narrows a box wider than its column to the column."""
    return int(height) + BOX_EXTRA_PX


def title_chars(width_px: int) -> int:
    """Title characters that fit a figure ``width_px`` wide (10 px margins, :data:`TITLE_CHAR_PX`
    per character; at least 8)."""
    return max(8, (int(width_px) - 20) // TITLE_CHAR_PX)


def heatmap_height(n: int) -> int:
    """Figure height (px) for ``n`` tasks: room for square cells (``label_size``'s rows)."""
    return max(420, min(1100, 160 + label_size(n)[1] * n))


def label_font_size(n: int) -> int:
    """Tick label size for ``n`` tasks (``label_size``): every label kept, smaller type."""
    return label_size(n)[0]


def square_axes(fig: go.Figure, names: Sequence[str], xref: str = "x") -> None:
    """Square cells at any width (y scales with x), every task label drawn on both axes
    (no automatic skipping of crowded labels) in a size that fits ``len(names)``."""
    font = dict(size=label_font_size(len(names)))
    ticks = dict(
        type="category",
        tickmode="array",
        nticks=len(names) + 1,
        tickvals=list(names),
        ticktext=list(names),
        tickfont=font,
        automargin=True,
        showgrid=False,
    )
    n = len(names)
    # Fixed ranges: markers (click targets, × marks) would otherwise pad the autorange of one
    # axis more than the other and the cells would not be square.
    fig.update_xaxes(
        constrain="domain", constraintoward="left", range=[-0.5, n - 0.5], autorange=False, **ticks
    )
    fig.update_yaxes(
        scaleanchor=xref,
        scaleratio=1,
        constrain="domain",
        constraintoward="top",
        range=[n - 0.5, -0.5],
        autorange=False,
        **ticks,
    )


def heatmap(
    A: np.ndarray,
    tasks: Sequence[str],
    *,
    measure: str = "lookahead",
    zmax: float | None = None,
    order: Sequence[int] | None = None,
    grouping: Iterable[Iterable[str]] | None = None,
    group_colour_map: dict[frozenset[str], str] | None = None,
    hide_diagonal: bool = True,
    title: str | None = None,
    height: int | None = None,
    colorbar: bool = True,
    clickable: bool = False,
) -> go.Figure:
    """Affinity heatmap of ``A`` ``(n, n)``: rows = source, columns = target, blue helps.

    Cells are square at any width and every task is labelled on both axes. ``order``
    permutes rows and columns together (e.g. the hierarchical leaf order); ``grouping``
    outlines each group's block in its colour (``group_colour_map``, else
    ``colours.group_colours(grouping)``); ``zmax`` fixes the symmetric colour range. The
    hidden diagonal is drawn grey and cells with nothing logged carry a ×, both named in the
    legend: neither is the white of zero. ``clickable`` lays an invisible marker on each cell
    (it carries the hover text), so a click selects the cell: Streamlit's chart selections
    ignore heatmap traces.
    """
    A = np.asarray(A, dtype=np.float64)
    idx = np.arange(len(tasks)) if order is None else np.asarray(order, dtype=np.intp)
    names = [str(tasks[i]) for i in idx]
    M = A[np.ix_(idx, idx)]
    Z = masked(M, hide_diagonal)
    zmax = _zmax(Z, zmax)
    hover = words.cell_sentences(M, names, measure, hide_diagonal)
    fig = go.Figure(
        _diverging(
            Z,
            names,
            zmax,
            hover,
            showscale=colorbar,
            name="affinity",
            colorbar=_colorbar(measure, zmax),
        )
    )
    square_axes(fig, names)
    fig.update_yaxes(title_text="source: a step on this task…")
    fig.update_xaxes(title_text="…changes this target task's loss", side="bottom")
    _mark_uncoloured(fig, M, names, hide_diagonal)
    if grouping:
        fig.update_layout(
            shapes=list(fig.layout.shapes or ())
            + group_shapes(names, grouping, colours=group_colour_map)
        )
    if clickable:
        _add_click_targets(fig, names, hover)
    n = len(names)
    fig.update_xaxes(tickangle=-60 if n > 16 else None)
    layout(fig, title, height or heatmap_height(n))
    return _legend_on_top(fig, title)


def _legend_on_top(fig: go.Figure, title: str | None) -> go.Figure:
    """The legend (the grey diagonal, the × of cells not logged) in one row above the plot:
    plotly's default, at the right, lay over the colour bar (a 3-task difference heatmap at
    1024 px)."""
    fig.update_layout(
        legend=dict(
            orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", font=dict(size=11)
        ),
        margin=dict(t=(80 if title else 50)),
    )
    return fig


#: The top tick of a colour bar stays below this fraction of its range: a label at the very
#: top sticks out half its height above the bar and touched the title (measured at 1920 px).
TICK_ROOM = 0.85


def colorbar_ticks(zmax: float) -> list[float]:
    """Tick values of a colour bar on ``±zmax`` (the measure's own units): multiples of a
    round step (the largest of 1, 2 or 5 times a power of ten up to ``zmax / 3``) within
    ``±TICK_ROOM * zmax``, so no label sits at the bar's ends, where the top one runs into
    the bar's title. Always includes 0. ValueError for a ``zmax`` that is not positive."""
    zmax = float(zmax)
    if not (np.isfinite(zmax) and zmax > 0):
        raise ValueError(f"colour range must be positive, got {zmax}")
    raw = zmax / 3
    power = 10.0 ** np.floor(np.log10(raw))
    step = max(m * power for m in (1, 2, 5) if m * power <= raw * 1.001)
    k = int(np.floor(TICK_ROOM * zmax / step + 1e-9))
    return [float(round(i * step, 12)) for i in range(-k, k + 1)]


def _colorbar(measure: str, zmax: float) -> dict:
    """The colour bar on ``±zmax``: its unit in the title, ticks in that unit
    (:func:`colorbar_ticks`, apart from the title)."""
    unit = "" if words.is_percent(measure) else f"<br>({words.unit_name(measure)})"
    return dict(
        title=dict(text=f"blue helps<br>red hurts{unit}", side="top"),
        thickness=12,
        tickformat=".1%" if words.is_percent(measure) else ".2f",
        tickmode="array",
        tickvals=colorbar_ticks(zmax),
    )


def _mark_uncoloured(fig: go.Figure, M: np.ndarray, names: list[str], hide_diagonal: bool) -> None:
    """Draw the cells that carry no colour of the scale so nobody reads them as zero: the
    hidden diagonal grey (shown diagonal: outlined), cells with nothing logged with a ×."""
    n = len(names)
    if n > 1 and hide_diagonal:
        d = np.full((n, n), np.nan)
        np.fill_diagonal(d, 1.0)
        fig.add_trace(
            go.Heatmap(
                z=d,
                x=names,
                y=names,
                colorscale=[[0, DIAGONAL_GREY], [1, DIAGONAL_GREY]],
                showscale=False,
                hoverinfo="skip",
                xgap=1,
                ygap=1,
                name="diagonal",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=captions.DIAGONAL_LEGEND,
                marker=dict(symbol="square", size=12, color=DIAGONAL_GREY),
                hoverinfo="skip",
            )
        )
    elif n > 1:
        fig.update_layout(
            shapes=[
                dict(
                    type="rect",
                    xref="x",
                    yref="y",
                    x0=i - 0.5,
                    x1=i + 0.5,
                    y0=i - 0.5,
                    y1=i + 0.5,
                    line=dict(color="#222222", width=1.5, dash="dot"),
                    fillcolor="rgba(0,0,0,0)",
                )
                for i in range(n)
            ]
        )
    off = ~np.eye(n, dtype=bool) if hide_diagonal else np.ones((n, n), dtype=bool)
    rows, cols = np.nonzero(~np.isfinite(M) & off)
    if len(rows):
        fig.add_trace(
            go.Scatter(
                x=[names[c] for c in cols],
                y=[names[r] for r in rows],
                mode="markers",
                name=captions.MISSING_LEGEND,
                hoverinfo="skip",
                marker=dict(
                    symbol="x-thin-open",
                    size=10,
                    line=dict(width=2, color=MISSING_MARK),
                    color=MISSING_MARK,
                ),
            )
        )


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


def difference_heatmap(
    A: np.ndarray,
    B: np.ndarray,
    tasks: Sequence[str],
    *,
    label_a: str,
    label_b: str,
    hide_diagonal: bool = True,
    title: str | None = None,
    measure: str = "lookahead",
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
            hover[i, j] = words.describe_difference(
                s, t, A[i, j], B[i, j], label_a, label_b, measure
            )
    fig = go.Figure(
        _diverging(
            Z,
            names,
            zmax,
            hover,
            colorbar=dict(
                title=dict(
                    # the unit only where the ticks do not carry it (a % tick says it):
                    # a wide title narrowed the plot until the legend wrapped into the title
                    text=f"{label_b}<br>minus {label_a}"
                    + ("" if words.is_percent(measure) else f"<br>({words.unit_name(measure)})"),
                    side="top",
                ),
                thickness=12,
                tickformat=".1%" if words.is_percent(measure) else ".2f",
                tickmode="array",
                tickvals=colorbar_ticks(zmax),
            ),
        )
    )
    square_axes(fig, names)
    _mark_uncoloured(fig, D, names, hide_diagonal)
    fig.update_yaxes(title_text="source")
    fig.update_xaxes(title_text="target")
    return _legend_on_top(layout(fig, title, heatmap_height(len(names))), title)


def _diverging(Z: np.ndarray, names: list[str], zmax: float, hover, **extra) -> go.Heatmap:
    """The lab's heatmap trace: ``Z`` ``(n, n)`` (rows = source) on the diverging scale
    symmetric about 0 (``±zmax``), a sentence per cell on hover (``hover``), thin gaps."""
    return go.Heatmap(
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
        **extra,
    )
