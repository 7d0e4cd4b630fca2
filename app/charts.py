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

from mtl_core.errors import LabError

log = logging.getLogger("task_affinity_lab.app")

#: Plotly toolbar: keep the camera button (PNG in the browser) and drop the clutter.
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def chart(fig: go.Figure, key: str | None = None, *, select: bool = False) -> Any:
    """Show a plotly figure full width with the lab's toolbar config; with ``select`` a click
    on a point reruns and the selection event is returned."""
    if select:
        return st.plotly_chart(
            fig,
            width="stretch",
            config=PLOTLY_CONFIG,
            key=key,
            on_select="rerun",
            selection_mode="points",
        )
    return st.plotly_chart(fig, width="stretch", config=PLOTLY_CONFIG, key=key)


def safe_filename(text: str) -> str:
    """``text`` reduced to a safe file name (letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "figure"


def for_export(fig: go.Figure) -> go.Figure:
    """A copy that looks right outside the app: Streamlit's plotly template holds placeholder
    colours its frontend swaps for the theme's, so exports use plotly's white template, with
    margins that grow to fit tick labels."""
    out = go.Figure(fig)
    out.update_layout(
        template="plotly_white", paper_bgcolor="white", plot_bgcolor="white", title_pad_l=12
    )
    out.update_xaxes(automargin=True)
    out.update_yaxes(automargin=True)
    return out


def figure_html(fig: go.Figure) -> str:
    """A self-contained interactive HTML page (plotly.js inlined: works offline)."""
    return for_export(fig).to_html(include_plotlyjs=True, full_html=True)


def figure_png(fig: go.Figure, scale: float = 2.0) -> bytes:
    """PNG bytes through kaleido (which drives the system Chromium headless)."""
    try:
        return for_export(fig).to_image(format="png", scale=scale)
    except Exception as exc:  # kaleido without a browser, or a browser crash
        log.exception("PNG export failed")
        raise LabError(
            "PNG export needs Chromium (Debian package `chromium`); download the HTML "
            f"version instead ({type(exc).__name__})"
        ) from None


def export_buttons(fig: go.Figure, name: str, key: str) -> None:
    """Download the figure as interactive HTML or as a PNG (rendered only when clicked)."""
    base = safe_filename(name)
    c1, c2 = st.columns(2)
    c1.download_button(
        "⬇ HTML",
        data=lambda: figure_html(fig),
        file_name=f"{base}.html",
        mime="text/html",
        key=f"{key}_html",
        on_click="ignore",
        help="Interactive figure, opens in any browser (works offline)",
    )

    def png() -> bytes:
        try:
            return figure_png(fig)
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


def chart_with_export(fig: go.Figure, name: str, key: str, *, select: bool = False) -> Any:
    """A chart with its export buttons folded underneath (returns the selection event when
    ``select``)."""
    event = chart(fig, key=f"{key}_chart", select=select)
    with st.popover("Export figure", icon=":material/download:"):
        export_buttons(fig, name, key)
    return event if select else None


def clicked_point(event: Any) -> tuple[Any, Any] | None:
    """``(x, y)`` of the first selected point of a chart selection event, if any."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    if not points:
        return None
    return points[0].get("x"), points[0].get("y")
