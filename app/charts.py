"""Showing plotly figures: the lab's chart call, figure export (HTML, PNG) and clicks.

Every figure goes through :func:`chart` (or :func:`chart_with_export`), so the toolbar, the
width and the export look the same on every page.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from app.figures.escape import escape_figure, escape_text, unescape
from mtl_core.errors import LabError

log = logging.getLogger("task_affinity_lab.app")

#: Plotly toolbar: keep the camera button (PNG in the browser) and drop the clutter.
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


#: Exported figures: at least this wide (CSS px) and rendered at this scale (PNG px per px).
EXPORT_WIDTH = 1000
EXPORT_SCALE = 2.0
#: A square heatmap's export: this much wider (CSS px) than tall (row labels, colour bar).
SQUARE_EXTRA_PX = 260


def chart_config(name: str | None = None) -> dict:
    """The toolbar config; its camera button saves a ``EXPORT_SCALE``x PNG named ``name``."""
    image = {"format": "png", "scale": EXPORT_SCALE}
    if name:
        image["filename"] = safe_filename(name)
    return {**PLOTLY_CONFIG, "toImageButtonOptions": image}


def chart(
    fig: go.Figure, key: str | None = None, *, select: bool = False, name: str | None = None
) -> Any:
    """Show a plotly figure full width with the lab's toolbar config; with ``select`` a click
    on a point reruns and the selection event is returned."""
    fig = escape_figure(fig)  # names in a figure are data, never markup
    config = chart_config(name)
    if select:
        return st.plotly_chart(
            fig, width="stretch", config=config, key=key, on_select="rerun", selection_mode="points"
        )
    return st.plotly_chart(fig, width="stretch", config=config, key=key)


def safe_filename(text: str) -> str:
    """``text`` reduced to a safe file name (letters, digits, ``._-``; dashes kept, en dashes
    become ``-``)."""
    text = text.replace("–", "-").replace("—", "-")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "figure"


def for_export(fig: go.Figure, title: str | None = None) -> go.Figure:
    """A copy that looks right outside the app: Streamlit's plotly template holds placeholder
    colours its frontend swaps for the theme's, so exports use plotly's white template, with
    margins that grow to fit tick labels, at least ``EXPORT_WIDTH`` wide, titled ``title``
    (the run, the measure with its unit, the steps) when given. User text is escaped
    (``escape_figure``), the title included."""
    out = go.Figure(escape_figure(fig))
    out.update_layout(
        template="plotly_white", paper_bgcolor="white", plot_bgcolor="white", title_pad_l=12
    )
    if not out.layout.width:
        # a square heatmap (y scaled to x) in a wide page leaves a blank right half: as wide
        # as its height plus room for the row labels and the colour bar
        square = out.layout.yaxis.scaleanchor is not None
        height = out.layout.height or 450
        out.update_layout(width=max(600, height + SQUARE_EXTRA_PX) if square else EXPORT_WIDTH)
    if title:
        out.update_layout(
            title=dict(text=escape_text(title), x=0, xanchor="left", font=dict(size=15))
        )
        out.update_layout(margin=dict(t=max(80, (out.layout.margin.t or 0))))
    out.update_xaxes(automargin=True)
    out.update_yaxes(automargin=True)
    return out


def figure_html(fig: go.Figure, title: str | None = None) -> str:
    """A self-contained interactive HTML page (plotly.js inlined: works offline)."""
    return for_export(fig, title).to_html(include_plotlyjs=True, full_html=True)


def figure_png(fig: go.Figure, scale: float = EXPORT_SCALE, title: str | None = None) -> bytes:
    """PNG bytes through kaleido (which drives the system Chromium headless), at ``scale``
    (>= 2: publication-ready) and at least ``EXPORT_WIDTH`` wide."""
    try:
        return for_export(fig, title).to_image(format="png", scale=scale)
    except Exception as exc:  # kaleido without a browser, or a browser crash
        log.exception("PNG export failed")
        raise LabError(
            "PNG export needs Chromium (Debian package `chromium`); download the HTML "
            f"version instead ({type(exc).__name__})"
        ) from None


def export_buttons(fig: go.Figure, name: str, key: str, title: str | None = None) -> None:
    """Download the figure as interactive HTML or as a PNG (rendered only when clicked),
    titled ``title`` and named ``name``."""
    base = safe_filename(name)
    c1, c2 = st.columns(2)
    c1.download_button(
        "⬇ HTML",
        data=lambda: figure_html(fig, title),
        file_name=f"{base}.html",
        mime="text/html",
        key=f"{key}_html",
        on_click="ignore",
        help="Interactive figure, opens in any browser (works offline)",
    )

    def png() -> bytes:
        try:
            return figure_png(fig, title=title)
        except LabError as exc:  # the download then holds the reason instead of an image
            return str(exc).encode()

    c2.download_button(
        "⬇ PNG",
        data=png,
        file_name=f"{base}.png",
        mime="image/png",
        key=f"{key}_png",
        on_click="ignore",
        help="Static image (rendered with kaleido + Chromium)",
    )


def chart_with_export(
    fig: go.Figure, name: str, key: str, *, select: bool = False, export_title: str | None = None
) -> Any:
    """A chart with its export buttons folded underneath (returns the selection event when
    ``select``); exports carry ``export_title`` (``captions.export_title``) and file ``name``."""
    event = chart(fig, key=f"{key}_chart", select=select, name=name)
    with st.popover("Export figure", icon=":material/download:"):
        export_buttons(fig, name, key, export_title)
    return event if select else None


def clicked_point(event: Any) -> tuple[Any, Any] | None:
    """``(x, y)`` of the first selected point of a chart selection event, if any."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    if not points:
        return None
    # the chart shows escaped names (app.figures.escape): give back the names themselves
    return unescape(points[0].get("x")), unescape(points[0].get("y"))
