"""Plotly figures made safe to show: user text in a figure renders as text, never as markup.

Plotly draws titles, tick labels, legend names and hover labels through its own HTML subset
(``<b>``, ``<i>``, ``<a href>``, ``<span style>``, ``<br>``, entities). Task and run names are
data in most of those places (category axes, hover sentences, legend names), so
:func:`escape_figure` escapes ``&``, ``<`` and ``>`` in every text field of a finished figure
(``app.charts.chart`` calls it for every chart, so no figure builder can forget). Plotly turns
the entities back into the characters when it draws them: ``<b>x</b>`` shows as written.

Data fields (``x``, ``y``, ``customdata``, ``text``, names) are escaped completely; in the
app's own template strings (titles, ``hovertemplate``) only the line break ``<br>`` and
plotly's ``<extra>`` box survive. Clicked points come back escaped: :func:`unescape` undoes it
exactly.
"""

from __future__ import annotations

import html
import re
import weakref
from typing import Any

import plotly.graph_objects as go

#: The app's own markup that survives in template strings.
_KEEP = re.compile(r"&lt;(br ?/?|/?extra)&gt;")
#: Trace fields holding data (user strings as categories, hover sentences, legend names).
_DATA = ("x", "y", "text", "hovertext", "customdata", "name", "legendgroup", "ids")
#: Trace fields holding the app's templates.
_TEMPLATES = ("hovertemplate", "texttemplate")


def escape_text(s: str) -> str:
    """``s`` with ``&``, ``<`` and ``>`` as entities (plotly shows them as the characters)."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(value: Any) -> Any:
    """Undo :func:`escape_text` (e.g. on a clicked point's ``x``); non-strings unchanged."""
    return html.unescape(value) if isinstance(value, str) else value


def _template(s: str) -> str:
    return _KEEP.sub(lambda m: f"<{m.group(1)}>", escape_text(s))


def _data(value: Any) -> Any:
    """Escape every string inside ``value`` (lists and arrays of any depth; numbers kept)."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, (list, tuple)):
        return [_data(v) for v in value]
    dtype = getattr(value, "dtype", None)
    if dtype is not None and dtype.kind in "OUS":  # numpy arrays of strings / objects
        return _data(value.tolist())
    return value


def _texts(node: Any) -> Any:
    """Template-escape every ``text``/``label``/``prefix`` string in a layout subtree."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if isinstance(v, str) and k in ("text", "label", "prefix", "suffix"):
                out[k] = _template(v)
            elif k in ("ticktext", "tickvals", "categoryarray"):
                out[k] = _data(v)
            else:
                out[k] = _texts(v)
        return out
    if isinstance(node, list):
        return [_texts(v) for v in node]
    return node


def _trace(t: dict) -> dict:
    out = dict(t)
    for k in _DATA:
        if k in out:
            out[k] = _data(out[k])
    for k in _TEMPLATES:
        if isinstance(out.get(k), str):
            out[k] = _template(out[k])
    for k in ("colorbar", "marker", "legendgrouptitle", "header", "cells"):
        if k in out:
            out[k] = _texts(out[k])
    return out


#: Figures already escaped (by id; weak, so a figure's entry goes when the figure does).
_ESCAPED: weakref.WeakValueDictionary[int, go.Figure] = weakref.WeakValueDictionary()


def mark_escaped(fig: go.Figure) -> go.Figure:
    """Record that ``fig``'s text is already escaped (a builder that escaped its parts, e.g.
    an animation whose frames hold only numbers); returns ``fig``."""
    _ESCAPED[id(fig)] = fig
    return fig


def escape_figure(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` whose every text field is escaped for plotly (see the module doc);
    ``fig`` itself when it is marked escaped (:func:`mark_escaped`).

    The input is not changed (figures are cached and shared between sessions).
    """
    if _ESCAPED.get(id(fig)) is fig:
        return fig
    out = go.Figure(
        {
            "data": [_trace(t.to_plotly_json()) for t in fig.data],
            "layout": _texts(fig.layout.to_plotly_json()),
        },
        _validate=False,
    )
    if fig.frames:
        out.frames = [
            {
                **f,
                "data": [_trace(t) for t in f.get("data", [])],
                "layout": _texts(f.get("layout", {})),
            }
            for f in (fr.to_plotly_json() for fr in fig.frames)
        ]
    return mark_escaped(out)
