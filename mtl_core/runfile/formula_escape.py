r"""Spreadsheet formula injection in the CSV files the lab writes, and its exact undoing.

A spreadsheet opening a CSV runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and,
in some, a tab or carriage return before them, or the full-width forms ``＝ ＋ － ＠``) as a
formula: a task named ``=HYPERLINK(...)`` or ``@SUM(1+1)*cmd|' /C calc'!A0`` in an exported
run would act when a colleague opens the file. Following OWASP's "CSV Injection" guidance,
the writer prefixes such *text* cells with a single quote (spreadsheets show the text as is)
and quotes every text field; numbers (``-0.01``, a task named ``-1``) are left alone, since a
spreadsheet reads them as numbers, not formulas.

The lab's own CSV reader undoes exactly what the writer added, so a round trip is exact:

- write: a text cell matching ``'*\s*[trigger]`` (any number of quotes and blanks, then a
  trigger: `` =1+1`` too) that is not a plain number gets one more leading ``'``;
- read: a cell matching ``'+\s*[trigger]`` loses one leading ``'``.

A name that really starts with quotes before a trigger (``'=x``) is written with one more
(``''=x``) and read back as itself; ``'abc`` is written and read unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from mtl_core.runfile.coded import coded, remember

#: First characters a spreadsheet may treat as the start of a formula (OWASP's list plus the
#: full-width forms some spreadsheets accept).
TRIGGERS = "=+-@\t\r\uff1d\uff0b\uff0d\uff20"

#: Blanks a spreadsheet may skip before a formula (ASCII only: the same set in Python's and
#: RE2's patterns, so writer and reader agree).
_BLANKS = "[ \\t\\n\\r\\x0b\\x0c]*"
_CLASS = "[" + re.escape(TRIGGERS) + "]"
_NEEDS_QUOTE = re.compile("'*" + _BLANKS + _CLASS)
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")
#: RE2 (pyarrow) pattern of a cell the writer escaped, with the text to keep in group 1.
ESCAPED_CELL_RE2 = "^'('*" + _BLANKS + _CLASS + ")"


def escape_cell(text: str) -> str:
    """``text`` as it is written into a CSV cell: one ``'`` added before a formula trigger
    (see the module docstring); plain numbers and other text unchanged."""
    if _NEEDS_QUOTE.match(text) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def unescape_cell(text: str) -> str:
    """The inverse of :func:`escape_cell` (the reader's side): one leading ``'`` removed
    from a cell that is quotes followed by a formula trigger."""
    if text[:1] == "'" and _NEEDS_QUOTE.match(text, 1):
        return text[1:]
    return text


def escape_frame(df: pd.DataFrame, escape: Callable[[str], str] | None = None) -> pd.DataFrame:
    """``df`` with every text cell passed through ``escape`` (default :func:`escape_cell`;
    numeric columns and missing values untouched); the input frame is not changed."""
    escape = escape or escape_cell
    out = df
    for c in df.columns:
        col = df[c]
        if col.dtype.kind in "biufcmM":
            continue
        codes, uniques = pd.factorize(col.to_numpy(dtype=object), use_na_sentinel=True)
        fixed = [escape(u) if isinstance(u, str) else u for u in uniques]
        if all(a is b for a, b in zip(fixed, uniques)):
            continue  # nothing to escape: keep the column (and its dtype) as it was
        values = np.empty(len(fixed) + 1, dtype=object)
        values[:-1] = fixed
        values[-1] = None
        if out is df:
            out = df.copy()
        out[c] = values[codes]  # code -1 (missing) picks the trailing None
    return out


def unescape_columns(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Text columns read from a CSV (object arrays of ``str``) with :func:`unescape_cell`
    applied to every cell, vectorized; other columns as they are."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = {}
    for name, v in cols.items():
        if v.dtype == object and len(v):
            # on the distinct values only: a task or step column repeats a few names
            known = coded(v)
            if known is not None:
                codes, arr = known.codes, known.arrow
            else:
                codes, uniques = pd.factorize(v, use_na_sentinel=False)
                try:
                    arr = pa.array(uniques, type=pa.string())
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    out[name] = v
                    continue
            if pc.any(pc.starts_with(arr, "'")).as_py():
                fixed = pc.replace_substring_regex(arr, ESCAPED_CELL_RE2, r"\1", max_replacements=1)
                uniques = fixed.to_numpy(zero_copy_only=False).astype(object, copy=False)
                v = remember(uniques, codes, fixed)
        out[name] = v
    return out


__all__ = [
    "ESCAPED_CELL_RE2",
    "TRIGGERS",
    "escape_cell",
    "escape_frame",
    "unescape_cell",
    "unescape_columns",
]
