"""Rows of form fields that stay readable at any width.

``st.columns(4)`` at 1024 px with the sidebar open gives each field about 130 px, so a select
shows "together — c" and a number "0.000". :func:`field_columns` draws the same columns with a
minimum width: a row whose columns would be narrower wraps (the columns that do not fit move
to the next line and share it), measured on the row itself, not on the window, so the sidebar
counts. Streamlit has no minimum column width, so the row's box carries a key and one CSS rule
(Streamlit's own ``st.html``, a style-only element that takes no space) sets it.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

#: Default minimum width (CSS px) of a form field's column: a select's value of about 25
#: characters, or a number input's value and its two step buttons, fit.
FIELD_PX = 240

_PREFIX = "mtl-wrap"


def style_rule(min_px: int) -> str:
    """The CSS rule that gives the columns of every row keyed ``mtl-wrap-<min_px>-…`` a
    minimum width of ``min_px`` px and lets those rows wrap."""
    box = f"div[class*='st-key-{_PREFIX}-{int(min_px)}-']"
    row = f"{box} div[data-testid='stHorizontalBlock']"  # inside Streamlit's layout wrapper
    return (
        f"<style>{row} {{flex-wrap: wrap;}} "
        f"{row} > div[data-testid='stColumn'] {{min-width: min({int(min_px)}px, 100%);}}</style>"
    )


def field_columns(
    spec: int | Sequence[float], key: str, *, min_px: int = FIELD_PX, **kwargs
) -> list:
    """``st.columns(spec, **kwargs)`` whose columns are at least ``min_px`` px wide (CSS px):
    where the row is narrower than that many columns need, it wraps onto further lines
    instead of cutting the fields' values. ``key`` names the row (unique on the page)."""
    st.html(style_rule(min_px))
    box = st.container(key=f"{_PREFIX}-{int(min_px)}-{key}")
    return box.columns(spec, **kwargs)
