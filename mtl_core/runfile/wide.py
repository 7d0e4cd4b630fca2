"""The wide (matrix) layout of the affinity table, read into the long form. Torch-free.

Practitioners often hold an affinity matrix as a square table: task names across the header,
one row per **source** task, the cell in column ``j`` the affinity of that source onto target
``j`` (``A[i, j]``, rows = sources). Three layouts are accepted, in every table container:

1. labelled square matrix: the row labels sit in a column headed ``""`` (pandas' ``to_csv``
   of a matrix), ``Unnamed: 0`` (the same file read back with ``pd.read_csv`` and saved again),
   ``source`` or ``task`` (``__index_level_0__`` in Parquet written by pandas); rows match
   columns by name, in any order; step 0;
2. unlabelled square matrix: header = task names, exactly one row per column, row ``i`` is the
   source named by column ``i``; step 0;
3. stacked matrices: a labelled matrix with extra ``step`` (and optional ``measure``, ``run``)
   columns; each ``(run, measure, step)`` block holds each source row at most once.

Detection: a table is wide only when it has none of the long-form-only columns ``target``,
``affinity``, ``wall_time`` (nor a misspelling of one) and its header fits a layout (a labelled
table: some row label names a task column; an unlabelled one: no ``step``/``measure``/``run``
column and its first column does not hold names). Anything else goes to the long-form reader,
whose errors (with the misspelt-column hints) stay as they are. Once a table is read as wide,
every problem raises a ``LabError`` naming the row and column. Empty (or NaN) cells are
unmeasured and become absent cells in the long form.

The container parser has already told comma, semicolon and tab apart, and ``step``, ``measure``,
``run``, ``source`` and ``task`` have been matched ignoring case (``Step`` is ``step``); task
columns keep their names exactly as written.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile.cells import (
    drop_blank_run,
    is_decimal_comma,
    to_labels,
    to_steps,
)
from mtl_core.runfile.messages import Locate, close, names
from mtl_core.runfile.percent import value_columns
from mtl_core.runfile.report import left_out, matrix_read, measure_assumed, note
from mtl_core.runfile.schema import AFFINITY_FRAME, DEFAULT_MEASURE

#: Headers of the row-label column (pandas writes ``""`` for an unnamed index in CSV,
#: ``Unnamed: 0`` when such a file is read back and saved again, and ``__index_level_0__`` in
#: Parquet).
LABEL_COLUMNS = ("", "Unnamed: 0", "source", "task", "__index_level_0__")
#: Corner cells that declare which way the rows run (matched ignoring case).
CORNER_ROWS = {"source": "source", "target": "target", "recipient": "target"}
#: Headers an extra integer index column goes by (pandas' default RangeIndex written out).
INDEX_COLUMNS = ("", "Unnamed: 0", "index", "__index_level_0__")
#: Columns that split a labelled table into one matrix per (run, measure, step).
BLOCK_COLUMNS = ("step", "measure", "run")
#: Columns only the long form has: their presence (or a misspelling) means "long form".
LONG_ONLY = ("target", "affinity", "wall_time")


class _Rows(NamedTuple):
    """Per table row: the source's task-column index, and the block it belongs to."""

    src_idx: np.ndarray
    step: np.ndarray
    measure: np.ndarray
    run: np.ndarray


def read_wide(
    cols: dict[str, np.ndarray],
    locate: Locate,
    name: str,
    tasks: list[str] | None,
    rows: str | None = None,
    measure: str | None = None,
) -> tuple[pd.DataFrame, list[str]] | None:
    """Read a wide affinity table into the long form, or None when the table is not wide.

    Parameters
    ----------
    cols : ``{column: values}`` from the container parser (CSV cells as trimmed text).
    locate : names row ``i`` for messages (``"row 3 (line 4)"``).
    name : the file's name for messages.
    tasks : ``meta.json``'s task list, if any; every task column must be in it.
    rows : ``"source"``/``"target"`` as the user declared (``--rows``), or None: as the corner
        cell says (``source``, ``target``/``recipient``), else sources. Rows of targets are
        transposed into the lab's orientation.
    measure : the measure of a table without a ``measure`` column (None: ``lookahead``,
        noted as assumed).

    Returns
    -------
    ``(affinity, task_order)``: a frame with the columns of ``ParsedRun.affinity`` (blocks in
    order of first appearance, sources and targets in column order, unmeasured cells left out)
    and the task columns in header order; None when the table is not in a wide layout.

    Raises
    ------
    LabError
        A task column outside ``tasks``, an unlabelled matrix that is not square, an unknown or
        repeated row label, a missing source row, a cell that is not a finite number, or no
        values at all.
    """
    cols = _drop_index_column(cols)
    layout = _layout(cols)
    if layout is None:
        return None
    label, task_cols = layout
    matrix_read()
    as_targets = _rows_are_targets(label, rows, name)
    if tasks is not None:
        known = set(tasks)
        for c in task_cols:
            if c not in known:
                raise LabError(
                    f"{name}: column {c!r}: task {c!r} is not in meta.json's task "
                    f"list ({names(tasks)})"
                )
    if label is None:
        blocks = _unlabelled_rows(cols, task_cols, name)
    else:
        cols = drop_blank_run(cols)
        blocks = _labelled_rows(cols, label, task_cols, locate, name)
    values = np.column_stack(value_columns(cols, task_cols, name, locate))  # (or percent text)
    values[np.isinf(values)] = np.nan  # one rule: a non-finite cell is unmeasured
    _report_unmeasured(values, locate, task_cols)
    frame = _long_frame(values, blocks, task_cols, name)
    if as_targets:
        frame = frame.rename(columns={"source": "target", "target": "source"})[AFFINITY_FRAME]
    if "measure" not in cols:
        if measure is None:
            measure_assumed()
        frame["measure"] = measure or DEFAULT_MEASURE
    return frame, list(task_cols)


def _rows_are_targets(label: str | None, rows: str | None, name: str) -> bool:
    """Whether the matrix's rows are targets: the user's ``rows``, else the corner cell."""
    corner = CORNER_ROWS.get((label or "").strip().lower())
    if rows is not None and corner is not None and rows != corner:
        raise LabError(
            f"{name}: the corner cell {label!r} says the rows are {corner}s but the rows were "
            f"declared {rows}s (--rows {rows}); correct one of them"
        )
    said = rows or corner or "source"
    if said == "target":
        how = f"the corner cell says {label!r}" if rows is None else "declared"
        note(f"rows are targets ({how}): the matrix was transposed to rows = sources")
    return said == "target"


def _report_unmeasured(values: np.ndarray, locate: Locate, task_cols: list[str]) -> None:
    """Count the empty and non-finite cells (left out as unmeasured) for the read's report."""
    bad = ~np.isfinite(values)
    if bad.any():
        r, k = np.argwhere(bad)[0]  # the first one in reading order
        left_out(int(bad.sum()), f"{locate(int(r))}, column {task_cols[k]!r}")


def _drop_index_column(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Leave out a first column holding 0..n-1 (or 1..n) that names no task column: a
    pandas index written out beside the row labels or above an unlabelled matrix."""
    header = list(cols)
    if len(header) < 3 or header[0] not in INDEX_COLUMNS:
        return cols
    vals = [_text(v) for v in cols[header[0]]]
    if any(v is None or not v.strip().lstrip("-").isdigit() for v in vals):
        return cols
    ints = [int(v) for v in vals]  # type: ignore[union-attr]
    start = ints[0] if ints else 0
    if start not in (0, 1) or ints != list(range(start, start + len(ints))):
        return cols
    if set(vals) & set(header[1:]):
        return cols  # task names that are numbers: row labels, not an index
    seq = ", ".join(str(start + k) for k in range(3))
    who = "pandas" if start == 0 else "R's row names"
    note(f"column {header[0]!r} holds {seq}, ... (a saved index: {who}) and was left out")
    return {k: v for k, v in cols.items() if k != header[0]}


def _long_frame(values: np.ndarray, rows: _Rows, task_cols: list[str], name: str) -> pd.DataFrame:
    """Table rows x task columns -> long-form cells, one matrix per block, sources in column
    order (a permuted matrix gives the same frame); empty cells left out."""
    n_rows, t = values.shape
    block = (
        pd.DataFrame({"r": rows.run, "m": rows.measure, "s": rows.step})
        .groupby(["r", "m", "s"], sort=False)
        .ngroup()
        .to_numpy()
    )
    order = np.lexsort((rows.src_idx, block))
    flat = values[order].reshape(-1)
    keep = ~np.isnan(flat)
    if not keep.any():
        raise LabError(f"{name}: the matrix has no values (every cell is empty)")
    task_names = np.asarray(task_cols, dtype=object)
    return pd.DataFrame(
        {
            "run": np.repeat(rows.run[order], t)[keep],
            "step": np.repeat(rows.step[order], t)[keep],
            "measure": np.repeat(rows.measure[order], t)[keep],
            "source": np.repeat(task_names[rows.src_idx[order]], t)[keep],
            "target": np.tile(task_names, n_rows)[keep],
            "affinity": flat[keep],
            "wall_time": np.full(int(keep.sum()), np.nan),
        },
        columns=AFFINITY_FRAME,
    )


def _layout(cols: dict[str, np.ndarray]) -> tuple[str | None, list[str]] | None:
    """``(row-label column or None, task columns)`` when the header fits a wide layout."""
    header = list(cols)
    if not header:
        return None
    label = _label_column(cols)
    others = [c for c in header if c != label]
    if any(c in LONG_ONLY or close(c, LONG_ONLY) for c in others):
        return None
    if label is not None:
        task_cols = [c for c in others if c not in BLOCK_COLUMNS]
        wanted = set(task_cols)
        # at least one row must name a column, else this is a long table with odd columns
        if not task_cols or not any(_text(v) in wanted for v in cols[label]):
            return None
        return label, task_cols
    if any(c in BLOCK_COLUMNS for c in header):
        return None  # stacked matrices need row labels to say which row is which
    if all(_is_name(v) for v in cols[header[0]]):
        return None  # a first column of names that are not the columns: not a matrix
    return None, header


def _label_column(cols: dict[str, np.ndarray]) -> str | None:
    """The row-label column: a known label header, a corner cell that declares the rows
    (``target``), or a first column whose every value names another column."""
    header = list(cols)
    first = header[0]
    if first.strip().lower() in CORNER_ROWS and "affinity" not in header:
        return first
    known = next((c for c in header if c in LABEL_COLUMNS), None)
    if known is not None:
        return known
    rest = set(header[1:])
    vals = [_text(v) for v in cols[first]]
    if first not in BLOCK_COLUMNS and vals and all(v in rest for v in vals):
        return first
    return None


def _unlabelled_rows(cols: dict[str, np.ndarray], task_cols: list[str], name: str) -> _Rows:
    """Layout 2: row ``i`` is the source named by column ``i``, at step 0."""
    n_rows, t = len(next(iter(cols.values()))), len(task_cols)
    if n_rows != t:
        raise LabError(
            f"{name}: a matrix without row labels must be square, one row per task column: "
            f"{t} columns ({names(task_cols)}) but {n_rows} rows; or put the row labels "
            "in a first column headed '', 'source' or 'task'"
        )
    return _Rows(
        np.arange(t),
        np.zeros(n_rows, dtype=np.int64),
        np.full(n_rows, DEFAULT_MEASURE, dtype=object),
        np.full(n_rows, "", dtype=object),
    )


def _labelled_rows(
    cols: dict[str, np.ndarray], label: str, task_cols: list[str], locate: Locate, name: str
) -> _Rows:
    """Layouts 1 and 3: validate the row labels and block columns."""
    where = f"column {label!r}" if label in ("source", "task") else "row-label column"
    n = len(cols[label])
    try:
        src = to_labels(cols[label], label, name, locate)
    except LabError as exc:  # say "row-label column" when the header is blank
        raise LabError(str(exc).replace(f"column {label!r}", where, 1)) from None
    src_idx = pd.Index(task_cols, dtype=object).get_indexer(
        np.asarray([str(s) for s in src], dtype=object)
    )
    unknown = np.flatnonzero(src_idx < 0)
    if len(unknown):
        i = int(unknown[0])
        raise LabError(
            f"{name}: {locate(i)}, {where}: task {src[i]!r} is not one of the "
            f"matrix's columns ({names(task_cols)})"
        )
    rows = _Rows(
        src_idx,
        to_steps(cols["step"], name, locate) if "step" in cols else np.zeros(n, dtype=np.int64),
        (
            to_labels(cols["measure"], "measure", name, locate)
            if "measure" in cols
            else np.full(n, DEFAULT_MEASURE, dtype=object)
        ),
        (
            to_labels(cols["run"], "run", name, locate)
            if "run" in cols
            else np.full(n, "", dtype=object)
        ),
    )
    _refuse_repeated_sources(rows, cols, task_cols, locate, name, where)
    missing = sorted(set(range(len(task_cols))) - set(src_idx.tolist()))
    if missing:
        c = task_cols[missing[0]]
        near = close(c, BLOCK_COLUMNS)
        hint = f"; if it is not a task, did you mean {near!r}?" if near else ""
        raise LabError(
            f"{name}: column {c!r} has no row labelled {c!r} (every task column "
            f"needs a row for that task as a source){hint}"
        )
    return rows


def _refuse_repeated_sources(
    rows: _Rows,
    cols: dict[str, np.ndarray],
    task_cols: list[str],
    locate: Locate,
    name: str,
    where: str,
) -> None:
    """Each block (run, measure, step) holds each source row at most once."""
    key = pd.DataFrame({"r": rows.run, "m": rows.measure, "s": rows.step, "i": rows.src_idx})
    dup = np.flatnonzero(key.duplicated(keep="first").to_numpy())
    if not len(dup):
        return
    i = int(dup[0])
    same = (key == key.iloc[i]).all(axis=1).to_numpy()
    first = int(np.flatnonzero(same)[0])
    block = [f"step {rows.step[i]}"] if "step" in cols else []
    block += [f"measure {rows.measure[i]!r}"] if "measure" in cols else []
    block += [f"run {rows.run[i]!r}"] if "run" in cols else []
    within = f" in {', '.join(block)}" if block else ""
    raise LabError(
        f"{name}: {locate(i)}, {where}: source {task_cols[rows.src_idx[i]]!r} has "
        f"two rows{within} (first at {locate(first)})"
    )


def _text(v: Any) -> str | None:
    """A row label as the text ``to_labels`` would make of it (None if it cannot be one)."""
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(v)
    return None


def _is_name(v: Any) -> bool:
    """Non-empty text that is not a number: a row label, not a matrix cell.

    A decimal-comma number (``0,1``) counts as a cell, so the reader says how to write it.
    """
    if not isinstance(v, str) or not v.strip() or is_decimal_comma(v):
        return False
    try:
        float(v)
    except ValueError:
        return True
    return False
