"""A user's table for the ``csv`` scenario: bytes -> typed columns, and which columns look
like a row index.

Reading goes through the run-file reader's table containers
(:func:`mtl_core.runfile.tables.parse_table`), so the encoding detection (UTF-8, UTF-16, a
legacy code page), the delimiter sniffing (comma, semicolon, tab) and the decimal commas of a
European spreadsheet are the importer's, in the CLI and the app alike.

Index-like columns (a saved row index is not a feature: a shuffled table's index is noise, an
unshuffled one leaks row order):

- a column with no name, or pandas' ``Unnamed: <k>`` (``DataFrame.to_csv()`` kept its index);
- a column named like an identifier: ``id``, ``index``, ``idx``, ``row``, ``row_id``, ... or
  ending in ``_id``;
- a whole-number column holding every value of 0..n-1 (or 1..n) once, in any order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from mtl_core.errors import LabError

#: Cell texts read as a missing value.
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?"})
_ID_NAMES = frozenset({"id", "index", "idx", "row", "rowid", "row_id", "row_number", "#", "no"})
_UNNAMED = re.compile(r"^Unnamed: \d+$")
#: Said instead of a reader's own message in a run's error text: a reader may quote a line
#: of the file, and a run's error is shown to everyone who sees the run.
UNREADABLE = "cannot be read as a table (open it on the Train page or with the CLI to see why)"


@dataclass(frozen=True)
class Table:
    """A table's columns: ``numeric`` (float64, NaN = missing) and ``text`` (object) ones,
    in file order (``columns``), with ``rows`` rows and the reader's ``notes``."""

    columns: tuple[str, ...]
    numeric: dict[str, np.ndarray]
    text: dict[str, np.ndarray]
    rows: int
    notes: tuple[str, ...] = ()


def read_table_bytes(data: bytes, file_name: str, *, detail: bool = True) -> Table:
    """Parse a table's bytes (CSV/TSV/TXT, Parquet, JSON Lines, JSON rows).

    Parameters
    ----------
    data : the file's bytes.
    file_name : its name (the extension picks the container; anything else reads as CSV).
    detail : keep the reader's own message on failure (it may quote the file: only for the
        person who supplied it); False says only that the table is unreadable.

    Raises
    ------
    LabError
        An unreadable table, or one without rows.
    """
    from mtl_core.runfile.report import collecting
    from mtl_core.runfile.tables import parse_table

    ext = file_name[file_name.rfind(".") :].lower() if "." in file_name else ""
    if ext not in (".csv", ".tsv", ".parquet", ".jsonl", ".json"):
        ext = ".csv"
    try:
        with collecting() as report:
            cols, _ = parse_table(data, ext, file_name, run_limits=False)
    except LabError:
        if detail:
            raise
        raise LabError(f"csv scenario: {file_name} {UNREADABLE}") from None
    except RecursionError:
        raise LabError(f"csv scenario: {file_name} {UNREADABLE}") from None
    numeric: dict[str, np.ndarray] = {}
    text: dict[str, np.ndarray] = {}
    for name, values in cols.items():
        nums = _as_numbers(np.asarray(values))
        if nums is None:
            text[str(name)] = np.asarray(values, dtype=object)
        else:
            numeric[str(name)] = nums
    rows = len(next(iter(cols.values()))) if cols else 0
    if rows == 0:
        raise LabError(f"csv scenario: {file_name} has no rows")
    return Table(tuple(map(str, cols)), numeric, text, rows, tuple(report.notes))


def _as_numbers(values: np.ndarray) -> np.ndarray | None:
    """float64 with NaN for missing cells when every other cell is a number, else None."""
    if values.dtype.kind in "iuf":
        return values.astype(np.float64)
    if values.dtype.kind == "b":
        return None
    out = np.empty(len(values), dtype=np.float64)
    for k, v in enumerate(values):
        if v is None or (isinstance(v, str) and v.strip().lower() in MISSING):
            out[k] = np.nan
            continue
        if isinstance(v, bool):
            return None
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            return None
    return out


def index_reason(name: str, values: np.ndarray | None) -> str | None:
    """Why column ``name`` looks like a saved row index (a short phrase), or None.

    ``values``: the column as float64 (None for a text column, judged by its name only).
    """
    if not name.strip() or _UNNAMED.match(name):
        return "a row index (unnamed, as pandas' to_csv() writes it)"
    low = name.strip().lower()
    if low in _ID_NAMES or low.endswith("_id") or low.endswith(" id"):
        return "a row index (named like an identifier)"
    if values is not None and is_row_numbers(values):
        return "a row index (the whole numbers 0..n-1 or 1..n, each once)"
    return None


def is_row_numbers(values: np.ndarray) -> bool:
    """Whether ``values`` (float64) hold every whole number of 0..n-1, or of 1..n, once."""
    n = len(values)
    if n < 3 or not np.isfinite(values).all() or not np.all(values == np.round(values)):
        return False
    lo = values.min()
    if lo not in (0.0, 1.0) or values.max() != lo + n - 1:
        return False
    return len(np.unique(values)) == n
