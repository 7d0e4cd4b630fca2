"""The one way a page shows a table: ``show_table`` instead of ``st.dataframe``.

Streamlit's table toolbar offers its own "Download as CSV", which writes cells as they are;
a task or run named ``=HYPERLINK(...)`` would reach a spreadsheet as a formula (issue 23,
item 7). Every text cell and column label is passed through the lab's CSV formula escaping
(:func:`mtl_core.runfile.formula_escape.escape_cell`: one ``'`` before a formula trigger,
plain numbers untouched), so what the toolbar downloads is as safe as the lab's own exports.
A number as a table shows it, sign and percent included (``+0.92%``, ``-3``), is left as it
is: a spreadsheet reads it as a number, and a quote there would show on every value.
"""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from mtl_core.runfile.formula_escape import escape_cell, escape_frame

#: A signed number, or a percentage, as the pages write them: not a formula to a spreadsheet.
_SHOWN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?\Z")


def escape_shown(text: str) -> str:
    """``text`` as a table shows it: :func:`~mtl_core.runfile.formula_escape.escape_cell`,
    except a number with its sign or percent sign (``+0.92%``), which stays as it is."""
    return text if _SHOWN_NUMBER.match(text) else escape_cell(text)


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with text cells, column labels and a text index escaped; ``df`` unchanged."""
    out = escape_frame(df, escape_shown)
    labels = [escape_shown(c) if isinstance(c, str) else c for c in out.columns]
    if labels != list(out.columns):
        out = out.copy() if out is df else out
        out.columns = labels
    if out.index.dtype.kind not in "biufcmM":
        index = [escape_shown(i) if isinstance(i, str) else i for i in out.index]
        if index != list(out.index):
            out = out.copy() if out is df else out
            out.index = index
    return out


def show_table(df, **kwargs):
    """``st.dataframe`` of :func:`safe_frame` (``df``: a DataFrame, or a pandas ``Styler``
    whose data is escaped before its styles are computed); ``column_config`` keys are
    escaped the same way so they still name their columns."""
    config = kwargs.pop("column_config", None)
    if config:
        kwargs["column_config"] = {
            (escape_shown(k) if isinstance(k, str) else k): v for k, v in config.items()
        }
    if isinstance(df, Styler):
        df.data = safe_frame(df.data)
        return st.dataframe(df, **kwargs)
    return st.dataframe(safe_frame(df), **kwargs)
