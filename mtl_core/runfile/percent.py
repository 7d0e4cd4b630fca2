"""Affinity values written as percent text (``4.1%``), as spreadsheets format them (issue 21,
kind 3). Torch-free.

A table whose value cells carry a ``%`` sign says its unit itself: ``4.1%`` is read as 0.041,
the lab's fraction, exactly (the decimal text shifted two places, then rounded once to the
nearest double), and the read notes it. Every value cell of the table (all task columns of a
matrix, the ``affinity`` column of a long table, every cell column of a tracker table) must
then be written so: a plain number among them (``4.1`` beside ``2.3%``) could be a fraction
or a percent, so the file is refused, naming the first such cell, rather than read at a
guess. Empty cells and missing-value marks stay unmeasured either way.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile.cells import to_numbers
from mtl_core.runfile.coded import coded, numbers_first
from mtl_core.runfile.messages import Locate, fail, show
from mtl_core.runfile.report import percent_read
from mtl_core.runfile.sheet_habits import MISSING_MARKS

#: What a mixed table is told.
MIXED = (
    "has no '%' while other values are written as percent (e.g. {example}): write every value "
    "the same way (all with '%', or all as plain numbers with --unit)"
)


def value_columns(
    cols: dict[str, np.ndarray], names: list[str], name: str, locate: Locate
) -> list[np.ndarray]:
    """The value columns ``names`` of ``cols`` as float64 (rows,) arrays, in the lab's
    fractions: percent text (``4.1%`` -> 0.041) when any cell of them carries ``%``, else
    as :func:`mtl_core.runfile.cells.to_numbers` reads them (empty cells and missing-value
    marks are NaN).

    Raises
    ------
    LabError
        A cell that is not a number, or (when some cell carries ``%``) a plain number beside
        percent cells, named by row and column.
    """
    example = next((e for c in names if (e := _percent_example(cols[c])) is not None), None)
    if example is None:
        return [to_numbers(cols[c], c, name, locate, allow_empty=True) for c in names]
    percent_read()
    return [_fractions(cols[c], c, name, locate, example) for c in names]


def _distinct(vals: np.ndarray) -> np.ndarray:
    known = coded(vals)
    if known is not None:
        return known.uniques
    try:
        return pd.unique(vals)
    except TypeError:  # unhashable cells (a JSON list or object in a cell): scanned as they are
        return vals


def _percent_example(vals: np.ndarray) -> str | None:
    """The first cell written as percent text, or None (a numbers column has none)."""
    if numbers_first(vals) is not None or vals.dtype != object:
        return None
    for v in _distinct(vals):
        if isinstance(v, str) and v.strip().endswith("%"):
            return v.strip()
    return None


def _fraction(v: Any) -> tuple[float, str]:
    """One cell -> ``(fraction, "")`` or ``(nan, what is wrong)``."""
    if v is None or (isinstance(v, float) and v != v):
        return np.nan, ""
    if isinstance(v, str):
        text = v.strip()
        if text in MISSING_MARKS:
            return np.nan, ""
        if text.endswith("%"):
            try:
                d = Decimal(text[:-1].strip())
            except InvalidOperation:
                return np.nan, "bad"
            return (float(d.scaleb(-2)), "") if d.is_finite() else (np.nan, "bad")
        try:
            float(text)
        except ValueError:
            return np.nan, "bad"
        return np.nan, "plain"
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return np.nan, "plain"
    return np.nan, "bad"


def _fast_fractions(cells: Any) -> np.ndarray | None:
    """Every cell percent text or missing, at Arrow speed: ``4.1%`` parsed as the text
    ``4.1e-2`` (correctly rounded, as the slow path's decimal shift); None when some cell is
    anything else (or not text), for the cell-by-cell path to read or name."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(cells, (pa.Array, pa.ChunkedArray)):
        if set(map(type, cells)) != {str}:
            return None
        cells = pa.array(cells, type=pa.string())
    text = pc.utf8_trim_whitespace(cells)
    missing = pc.is_in(text, value_set=pa.array(["", *sorted(MISSING_MARKS)]))
    if not pc.all(pc.or_(missing, pc.ends_with(text, "%"))).as_py():
        return None
    body = pc.replace_substring_regex(text, r"\s*%$", "e-2")
    body = pc.if_else(missing, pa.scalar(None, pa.string()), body)
    try:
        return pc.cast(body, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _fractions(vals: np.ndarray, col: str, name: str, locate: Locate, example: str) -> np.ndarray:
    if numbers_first(vals) is not None or vals.dtype.kind in "iuf":
        nums = np.asarray(vals, dtype=np.float64)
        plain = np.isfinite(nums)
        if plain.any():
            words = MIXED.format(example=show(example))
            raise fail(name, locate, col, plain, lambda i: f"{show(vals[i])} {words}")
        return np.full(len(vals), np.nan)
    if vals.dtype != object:
        raise LabError(f"{name}: column {col!r} is not numbers")
    known = coded(vals)
    cells = known.uniques if known is not None else vals
    fast = _fast_fractions(known.arrow if known is not None else cells)
    if fast is not None:
        return known.spread(fast) if known is not None else fast
    got = [_fraction(v) for v in cells]
    out = np.array([g[0] for g in got], dtype=np.float64)
    why = np.array([g[1] for g in got], dtype=object)
    if known is not None:
        out, why = known.spread(out), known.spread(why)
    for kind, words in (
        ("plain", MIXED.format(example=show(example))),
        ("bad", "is not a number (nor a percent such as '4.1%')"),
    ):
        rows = why == kind
        if rows.any():
            raise fail(name, locate, col, rows, lambda i, w=words: f"{show(vals[i])} {w}")
    return out
