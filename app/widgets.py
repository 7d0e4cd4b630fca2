"""Widgets shared by the pages: error guard, run picker, figure export, status badges."""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from app import state
from app.figures import run_colour
from mtl_core.errors import LabError
from mtl_core.store import RunInfo

log = logging.getLogger("task_affinity_lab.app")

#: Material icons (rendered by Streamlit's own font, so they show on any machine).
STATUS_ICONS = {
    "queued": ":material/hourglass_top:", "running": ":material/play_circle:",
    "finished": ":material/check_circle:", "failed": ":material/error:",
    "cancelled": ":material/stop_circle:", "interrupted": ":material/warning:",
}
#: Plotly toolbar: keep the camera button (PNG in the browser) and drop the clutter.
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def guard(fn: Callable[[], None]) -> Callable[[], None]:
    """Run a page body; a user error (LabError) shows its message, an internal error is logged
    with its traceback and shown as a short message — never a traceback on screen."""

    @functools.wraps(fn)
    def wrapper() -> None:
        t0 = time.perf_counter()
        try:
            fn()
        except LabError as exc:
            st.error(str(exc))
        except Exception as exc:  # noqa: BLE001 - the last line of defence for the UI
            log.exception("internal error on page %s", getattr(fn, "__name__", "?"))
            st.error(
                f"Something went wrong inside the app ({type(exc).__name__}). It has been "
                "logged; try again, or reload the page."
            )
        finally:
            _log_timing(fn.__module__.rsplit(".", 1)[-1], time.perf_counter() - t0)

    return wrapper


def _log_timing(page: str, seconds: float) -> None:
    """Append ``wall_time,page,ms`` of each full page run to ``$MTL_LAB_TIMING_LOG`` (when
    set): server-side timings for load tests, cheap enough to leave in."""
    path = os.environ.get("MTL_LAB_TIMING_LOG")
    if path:
        try:
            with open(path, "a") as fh:
                fh.write(f"{time.time():.3f},{page},{seconds * 1000:.1f}\n")
        except OSError:
            log.debug("timing log not writable", exc_info=True)


def show_error(exc: BaseException) -> None:
    """A caught error as a message: LabError verbatim, anything else logged + short text."""
    if isinstance(exc, LabError):
        st.error(str(exc))
    else:
        log.exception("internal error", exc_info=exc)
        st.error(f"Something went wrong inside the app ({type(exc).__name__}); it was logged.")


def chart(fig: go.Figure, key: str | None = None, *, select: bool = False) -> Any:
    """Show a plotly figure full width with the lab's toolbar config; with ``select`` a click
    on a point reruns and the selection event is returned."""
    if select:
        return st.plotly_chart(fig, width="stretch", config=PLOTLY_CONFIG, key=key,
                               on_select="rerun", selection_mode="points")
    return st.plotly_chart(fig, width="stretch", config=PLOTLY_CONFIG, key=key)


def status_text(info: RunInfo) -> str:
    """``▶️ running 120/300 · 45 step/s · ETA 4 s`` (what a person wants to know)."""
    icon = STATUS_ICONS.get(info.status, "")
    parts = [f"{icon} {info.status}"]
    if info.steps_total:
        parts.append(f"{info.steps_done}/{info.steps_total} steps")
    elif info.steps_done:
        parts.append(f"{info.steps_done} step{'s' if info.steps_done != 1 else ''}")
    if info.status == "queued":
        parts.append(queue_place(info.id))
    if info.status == "running":
        if info.steps_per_s:
            parts.append(f"{info.steps_per_s:.0f} step/s")
        if info.eta_s is not None:
            parts.append(f"ETA {format_seconds(info.eta_s)}")
    return " · ".join(parts)


def queue_place(run_id: int) -> str:
    """Where a queued run stands: runs start oldest first as workers free up."""
    try:
        ahead = state.get_store().run_ids("queued").index(run_id)
    except (ValueError, LabError):
        return "waiting for a free worker"
    if ahead == 0:
        return "starts when a worker is free"
    return f"{ahead} queued run{'s' if ahead > 1 else ''} ahead"


def format_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s // 60:.0f} min {s % 60:02.0f} s"
    return f"{s // 3600:.0f} h {(s % 3600) // 60:02.0f} min"


def ago(t: float | None) -> str:
    if not t:
        return "–"
    return format_seconds(time.time() - t) + " ago"


def colour_dot(run_id: int, colour: str | None = None) -> str:
    """A coloured dot in the run's colour, for markdown (run colours stay the same everywhere)."""
    return f"<span style='color:{colour or run_colour(run_id)}'>●</span>"


def run_picker(
    label: str,
    key: str,
    runs: Sequence[RunInfo],
    *,
    qp_key: str | None = "run",
    need_measure: bool = False,
    help: str | None = None,
) -> RunInfo | None:
    """Pick one run: this session's runs first, then everyone's. Seeds from the URL (``run``),
    then from this session's last pick; writes the pick back to the URL."""
    ordered = state.ordered_runs(runs)
    if need_measure:
        ordered = [r for r in ordered if r.measures] or ordered
    if not ordered:
        return None
    ids = [r.id for r in ordered]
    by_id = {r.id: r for r in ordered}
    keep = f"_keep_{key}"
    if key not in st.session_state or st.session_state[key] not in by_id:
        want = state.qp_get(qp_key, int) if qp_key else None
        if want is not None and want not in by_id:
            known = {r.id: r for r in runs}
            why = (f"run #{want} logged no affinity to explore ({known[want].status}, e.g. a "
                   "grouped or single-task run)" if want in known
                   else f"there is no run #{want} (deleted, or from another store)")
            st.warning(f"The link asked for a run that cannot be shown here: {why}. Showing "
                       "another run instead.", icon=":material/link_off:")
            want = None
        if want not in by_id:
            want = st.session_state.get(keep)
        if want not in by_id:
            want = ids[0]
        st.session_state[key] = want
    mine = set(state.my_runs())

    def fmt(rid: int) -> str:
        r = by_id[rid]
        own = "· yours" if rid in mine else ""
        return f"{state.run_label(r)} — {r.status} {own}".strip()

    rid = st.selectbox(label, ids, format_func=fmt, key=key, help=help)
    st.session_state[keep] = rid
    if qp_key:
        state.qp_set(**{qp_key: rid})
    return by_id[rid]


def keep_value(key: str, default: Any, qp_key: str | None = None, kind: type = str,
               valid: Callable[[Any], bool] | None = None) -> None:
    """Seed widget ``key`` from the URL, else this session's last value, else ``default``.

    Widget state disappears when a page is left; a plain ``_keep_`` copy carries it across.
    """
    if key in st.session_state:
        return
    value = state.qp_get(qp_key, kind) if qp_key else None
    if value is None or (valid and not valid(value)):
        value = st.session_state.get(f"_keep_{key}")
    if value is None or (valid and not valid(value)):
        value = default
    st.session_state[key] = value


def remember_value(key: str) -> None:
    if key in st.session_state:
        st.session_state[f"_keep_{key}"] = st.session_state[key]


def safe_filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "figure"


def for_export(fig: go.Figure) -> go.Figure:
    """A copy that looks right outside the app: Streamlit's plotly template holds placeholder
    colours its frontend swaps for the theme's, so exports use plotly's white template, with
    margins that grow to fit tick labels."""
    out = go.Figure(fig)
    out.update_layout(template="plotly_white", paper_bgcolor="white", plot_bgcolor="white",
                      title_pad_l=12)
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
        "⬇ HTML", data=lambda: figure_html(fig),
        file_name=f"{base}.html", mime="text/html", key=f"{key}_html", on_click="ignore",
        help="Interactive figure, opens in any browser (works offline)",
    )

    def png() -> bytes:
        try:
            return figure_png(fig)
        except LabError as exc:  # the download then holds the reason instead of an image
            return str(exc).encode()

    c2.download_button(
        "⬇ PNG", data=png, file_name=f"{base}.png", mime="image/png", key=f"{key}_png",
        on_click="ignore", help="Static image (rendered with kaleido + Chromium)",
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
