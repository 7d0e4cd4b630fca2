"""Issue 23 item 7: every table a page shows goes through app.tables, whose cells, labels and
index are formula-escaped, so Streamlit's own "Download as CSV" is as safe as the lab's."""

from __future__ import annotations

import pathlib

import pandas as pd

from app.tables import safe_frame

APP = pathlib.Path(__file__).resolve().parents[2] / "app"


def test_no_page_calls_st_dataframe_directly():
    offenders = [
        str(p.relative_to(APP))
        for p in APP.rglob("*.py")
        if p.name != "tables.py"
        and ("st.dataframe(" in p.read_text() or "st.data_editor(" in p.read_text())
    ]
    assert offenders == []


def test_formula_cells_labels_and_index_are_escaped_numbers_untouched():
    df = pd.DataFrame(
        {"task": ['=HYPERLINK("http://x")', "depth", "@SUM(A1)"], "=cmd": [1.5, -2.0, 3.0]},
        index=["+a", "b", "c"],
    )
    out = safe_frame(df)
    assert list(out["'=cmd"]) == [1.5, -2.0, 3.0]
    assert list(out["task"]) == ['\'=HYPERLINK("http://x")', "depth", "'@SUM(A1)"]
    assert list(out.index) == ["'+a", "b", "c"]
    assert list(df.columns) == ["task", "=cmd"]  # the caller's frame is not changed


def test_numbers_as_pages_write_them_show_without_a_quote():
    """``+0.92%`` (a group's mean), ``-3`` and ``1e-3`` are numbers to a spreadsheet: no
    quote shown; a formula that merely starts like one (``-1+2``, ``+1%|cmd``) is escaped."""
    df = pd.DataFrame({"mean": ["+0.92%", "-3", "1e-3", "-1+2", "+1%|cmd", "+"]})
    assert list(safe_frame(df)["mean"]) == ["+0.92%", "-3", "1e-3", "'-1+2", "'+1%|cmd", "'+"]
