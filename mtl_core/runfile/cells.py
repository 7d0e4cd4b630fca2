"""Cells of a parsed table checked and converted, column by column: numbers, steps, names.

Each converter takes one column's values as a container parser left them (CSV cells as trimmed
text; JSON and Parquet values as Python/NumPy scalars), converts them exactly, and raises one
``LabError`` naming the first bad cell (file, row, column) and counting the others. The fast
paths are vectorized (Arrow casts text to the correctly rounded double); the slow path runs only
to find and name a bad cell.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile.coded import (
    as_text,
    coded,
    numbers_first,
    remember_factors,
    remembered_factors,
)
from mtl_core.runfile.jsontext import check_text
from mtl_core.runfile.messages import Locate, fail, show
from mtl_core.runfile.sheet_habits import MISSING_MARKS

#: A number written with a decimal comma (``0,1``, ``-1,5e-3``, ``1.234,5``), as European
#: spreadsheets write them.
_DECIMAL_COMMA = re.compile(r"[+-]?(\d{1,3}(\.\d{3})+|\d*),\d+([eE][+-]?\d+)?")
#: The largest step the reader accepts: 2**53 - 1, the largest whole number every reader
#: keeps exactly (text cells parse through float64, which rounds 2**53 + 1 to 2**53; a value
#: at or above 2**53 may be one that was rounded, so it is refused, never stored wrong).
MAX_STEP = 2**53 - 1
#: What a refused step is.
STEP_TOO_LARGE = f"above {MAX_STEP:,} (2**53 - 1), the largest step the lab keeps exactly"


def is_decimal_comma(v: Any) -> bool:
    """Whether ``v`` is text of a number written with a decimal comma (``"0,1"``)."""
    return isinstance(v, str) and _DECIMAL_COMMA.fullmatch(v.strip()) is not None


def to_numbers(
    vals: np.ndarray, col: str, name: str, locate: Locate, *, allow_empty: bool = False
) -> np.ndarray:
    """A column's values as float64, exactly; NaN and inf pass (callers refuse them if needed).

    Parameters
    ----------
    vals : (rows,) values; text, ints or floats.
    col, name, locate : the column, file and row naming used in messages.
    allow_empty : read an empty cell (``""`` or None), or a missing-value mark (``NA``,
        ``#N/A``, ``#DIV/0!``, ``null``, ``None``: pandas' defaults and Excel's errors,
        :data:`~mtl_core.runfile.sheet_habits.MISSING_MARKS`), as NaN instead of refusing it.

    Raises
    ------
    LabError
        At the first cell that is not a number (booleans included), with a hint when it is
        written with a decimal comma.
    """
    nf = numbers_first(vals)
    if nf is not None:  # parsed from its text already (coded_column)
        if allow_empty or not nf.missing:
            return vals.astype(np.float64)
        vals = as_text(vals)  # an empty cell where a value is required: named below
    if vals.dtype != object:
        if vals.dtype.kind in "iuf":
            return vals.astype(np.float64)
        if vals.dtype.kind == "b":
            raise fail(name, locate, col, np.ones(len(vals), bool), lambda i: "not a number")
    fast = _fast_numbers(vals, allow_empty)
    if fast is not None:
        return fast
    # slow path: empty cells, odd spellings, or an error to locate (a CSV column: once per
    # distinct text, then spread to its rows)
    known = coded(vals)
    if known is not None:
        out, bad = _each_number(known.uniques, allow_empty)
        out, bad = known.spread(out), known.spread(bad)
    else:
        out, bad = _each_number(vals, allow_empty)
    if bad.any():

        def what(i: int) -> str:
            v = vals[i]
            if v is None or v == "":
                return "is empty"
            if isinstance(v, str) and v.strip() in MISSING_MARKS:
                return f"{show(v)} is a missing-value mark where a value is required"
            return f"{show(v)} is not a number{_decimal_hint(v)}"

        raise fail(name, locate, col, bad, what)
    return out


def _each_number(vals: np.ndarray, allow_empty: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cell by cell: ``(float64 values, bad mask)`` (both (rows,)); an empty cell or a
    missing-value mark is NaN when ``allow_empty``, else bad."""
    out = np.empty(len(vals), dtype=np.float64)
    bad = np.zeros(len(vals), dtype=bool)
    for k, v in enumerate(vals):
        if isinstance(v, bool):
            bad[k] = True
            continue
        if v is None or (isinstance(v, str) and v.strip() in MISSING_MARKS):
            if allow_empty:
                out[k] = np.nan
            else:
                bad[k] = True
            continue
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            bad[k] = True
    return out, bad


def _decimal_hint(v: Any) -> str:
    if isinstance(v, str) and "#" in v.strip()[1:]:  # '0.2#note': a comment glued to a value
        return " (an end-of-row '#' comment must be parted from the last value by a blank)"
    return " (use '.' as the decimal point)" if is_decimal_comma(v) else ""


def _fast_numbers(vals: np.ndarray, allow_empty: bool = False) -> np.ndarray | None:
    """Vectorized exact conversion of an all-number or all-text column, else None.

    A CSV column (coded, its cells trimmed): each distinct text parsed once by Arrow; with
    ``allow_empty``, empty cells and missing-value marks become NaN first.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    known = coded(vals)
    if known is not None:
        text = known.arrow
        if allow_empty:
            missing = pc.is_in(text, value_set=pa.array(["", *sorted(MISSING_MARKS)]))
            text = pc.if_else(missing, pa.scalar(None, pa.string()), text)
        try:
            parsed = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        return known.spread(parsed)
    kinds = set(map(type, vals))
    if kinds and kinds <= {float, int, np.float64, np.int64}:
        return np.array(vals.tolist(), dtype=np.float64)  # int/float -> float64 is exact
    if kinds == {str}:
        try:  # Arrow parses decimal text to the correctly rounded double
            return pc.cast(pa.array(vals, type=pa.string()), pa.float64()).to_numpy(
                zero_copy_only=False
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return None


def to_steps(vals: np.ndarray, name: str, locate: Locate) -> np.ndarray:
    """The ``step`` column as int64 (rows,): whole numbers from 0 to :data:`MAX_STEP`
    (2**53 - 1).

    A coded CSV column (:mod:`mtl_core.runfile.coded`) is converted and checked once per
    distinct text, and the result remembers its :func:`~mtl_core.runfile.coded.factor_codes`
    (read-only), so the duplicate check hashes no row.

    Raises
    ------
    LabError
        At the first cell that is not a number, not whole, negative or too large.
    """
    if numbers_first(vals) is not None:
        try:
            return _to_steps(vals, name, locate)
        except LabError:
            vals = as_text(vals)  # the message shows the cell as written
    known = coded(vals)
    if known is not None and known.codes is not None:
        try:
            per = _to_steps(known.uniques, name, locate)
        except LabError:
            pass  # the pass over the rows below names the first bad row
        else:
            ucodes, distinct = pd.factorize(per)
            return remember_factors(
                per[known.codes], ucodes.astype(np.int64)[known.codes], len(distinct)
            )
    steps = _to_steps(vals, name, locate)
    factors = remembered_factors(vals)  # equal steps are equal values: the codes still hold
    return steps if factors is None else remember_factors(steps, *factors)


def _to_steps(vals: np.ndarray, name: str, locate: Locate) -> np.ndarray:
    if vals.dtype.kind in "iu":  # whole numbers already (a tracker's steps, Parquet)
        x = vals
    else:
        x = to_numbers(vals, "step", name, locate)
        bad = ~np.isfinite(x) | (x != np.floor(np.where(np.isfinite(x), x, 0)))
        if bad.any():
            raise fail(
                name,
                locate,
                "step",
                bad,
                lambda i: f"{show(vals[i])} is not a whole number (steps are 0, 1, 2, ...)",
            )
    neg = x < 0
    if neg.any():
        raise fail(name, locate, "step", neg, lambda i: f"{show(vals[i])} is negative")
    if (x > MAX_STEP).any():
        raise fail(
            name, locate, "step", x > MAX_STEP, lambda i: f"{show(vals[i])} is {STEP_TOO_LARGE}"
        )
    return x.astype(np.int64)


def to_labels(vals: np.ndarray, col: str, name: str, locate: Locate) -> np.ndarray:
    """A column of names (tasks, measures, runs) as an object array of non-empty ``str``.

    Whole numbers (as JSON and Parquet hold them) become their text; anything else that is not
    text (a float, a boolean, null) or blank text raises a ``LabError`` at the first such cell.
    """
    vals = as_text(vals)  # names are text, even where a column was parsed numbers first
    # checked on the distinct values: a name column repeats a few names many times (a str
    # never equals a non-str, so every type present keeps a distinct value)
    known = coded(vals)
    if known is not None:
        distinct = known.uniques
    else:
        distinct = pd.unique(vals) if vals.dtype == object else vals
    if set(map(type, distinct)) == {str}:
        import pyarrow as pa
        import pyarrow.compute as pc

        blank = pc.utf8_length(pc.utf8_trim_whitespace(pa.array(distinct, type=pa.string())))
        if not np.any(blank.to_numpy(zero_copy_only=False) == 0):
            return vals
    out = np.empty(len(vals), dtype=object)
    bad = np.zeros(len(vals), dtype=bool)
    for k, v in enumerate(vals):
        if isinstance(v, str):
            s = v
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            s = str(v)
        else:
            bad[k] = True
            continue
        if not s.strip():
            bad[k] = True
        out[k] = s
    if bad.any():

        def what(i: int) -> str:
            v = vals[i]
            return "is empty" if v is None or v == "" else f"{show(v)} is not a name"

        raise fail(name, locate, col, bad, what)
    return out


def drop_blank_run(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A ``run`` column left blank everywhere means one unnamed run: as if it were absent."""
    run = cols.get("run")
    if run is not None and all(_blank(v) for v in _distinct(run)):
        cols = {k: v for k, v in cols.items() if k != "run"}
    return cols


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _distinct(vals: np.ndarray) -> Any:
    """The distinct values of a column, or the column itself: a coded column's texts, a
    column whose first value is not blank as that value (enough for "all blank"), else
    hashed by ``pandas.unique`` (unhashable values: every row)."""
    known = coded(vals)
    if known is not None:
        return known.uniques
    if len(vals) == 0 or not _blank(vals[0]):
        return vals[:1]
    try:
        return pd.unique(np.asarray(vals, dtype=object))
    except TypeError:
        return vals


def check_names(parsed: Any, name: str) -> None:
    """The task list, groupings and metadata of a parsed run hold text a UTF-8 store can
    hold (no lone surrogates). The frames' name columns need no check: pandas' text dtype
    refuses such text when they are built, and every container reader checks its own
    (JSON at parse time, ``.npz`` task names when read).

    ``parsed``: a :class:`~mtl_core.runfile.model.ParsedRun`. Raises ``LabError``.
    """
    groups = parsed.groupings["groups"].tolist()
    check_text([list(parsed.tasks), parsed.meta, parsed.task_types, groups], name)
