"""CSV columns Arrow reads as float64 outright, for speed: a per-step tracker table's columns
and the long form's value columns.

Every CSV column is otherwise read as text and converted afterwards
(:mod:`mtl_core.runfile.coded`, :mod:`mtl_core.runfile.cells`). For the layouts whose
columns are numbers (W&B's ``run.history()``, Lightning's ``metrics.csv``: a step column and
one column per cell; a long form's ``step``, ``affinity`` and ``wall_time``),
:func:`float_columns` picks the columns whose first rows are numbers or empty, and
:func:`read_arrow` reads them as float64 in one pass, an empty cell as null (NaN). Arrow
parses a number in the CSV exactly as it casts the trimmed text (surrounding spaces and tabs
allowed, the correctly rounded double), so the values are those of the text path. A cell
that is anything else (a missing-value mark such as ``NA``, a blank cell of spaces, a quoted
empty cell, text) fails that read, and the file is read as text instead, whose converters
name the cell. Each such column keeps a way to its text
(:func:`mtl_core.runfile.coded.typed_numbers`): the rare reader that looks at the cells as
text reads the file again as text, once.
"""

from __future__ import annotations

import contextvars
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mtl_core.runfile.coded import coded_column, typed_numbers
from mtl_core.runfile.threads import use_threads

#: Step columns of per-step tracker tables (as :data:`mtl_core.runfile.trackers.STEP_COLUMNS`).
_STEPS = ("step", "_step", "global_step", "trainer/global_step", "training_iteration")
#: Columns that make a table something other than a per-step table of numbers: a long form,
#: row labels, a metric history, runs.
_NOT_PER_STEP = ("source", "target", "", "task", "unnamed: 0", "key", "value", "measure", "run")
#: A long form's columns of numbers: its steps (whole numbers, checked as such by
#: :func:`mtl_core.runfile.cells.to_steps`, which reads the text again to name a bad one) and
#: its values. Read as float64 they need no per-row text (no dictionary pass over the step).
_LONG_VALUES = ("step", "affinity", "wall_time")


def float_columns(top: str, header: list[str], delim: str, skip_rows: int) -> set[str]:
    """The header names to read as float64: those the layout holds numbers in (see the module
    docstring) whose cells in the first rows of ``top`` (the file's head, header included
    when ``skip_rows``) are all numbers or empty; an empty set when none, or when the head
    does not parse."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lows = [h.strip().lower() for h in header]
    if {"source", "target", "affinity"} <= set(lows):
        wanted = [h for h, low in zip(header, lows) if low in _LONG_VALUES]
    elif any(low in _STEPS for low in lows) and not set(lows) & set(_NOT_PER_STEP):
        wanted = list(header)
    else:
        return set()
    head = top[: top.rfind("\n") + 1].encode("utf-8")  # whole rows (a cut one would not parse)
    try:
        sample = read_arrow(head, header, delim, skip_rows, set())
    except (pa.ArrowInvalid, ValueError):
        return set()
    if sample.num_rows == 0:
        return set()
    try:  # every wanted column at once (a tracker table: all of them)
        read_arrow(head, header, delim, skip_rows, set(wanted))
        return set(wanted)
    except (pa.ArrowInvalid, ValueError):
        pass  # some are not: column by column
    out = set()
    for h in wanted:
        cells = pc.utf8_trim_whitespace(sample.column(header.index(h)).combine_chunks())
        cells = pc.if_else(pc.equal(cells, ""), pa.scalar(None, pa.string()), cells)
        try:
            pc.cast(cells, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        out.add(h)
    return out


def read_arrow(body: bytes, header: list[str], delim: str, skip_rows: int, floats: set[str]) -> Any:
    """``body`` read by pyarrow: the columns in ``floats`` as float64 (an empty cell null),
    every other column as text (never null).

    One thread unless within :func:`mtl_core.runfile.threads.arrow_threads` (the CLI's
    ``import``; why not always: that module). Raises
    ``pyarrow.ArrowInvalid`` (or ``ValueError``) for a malformed table or a cell of a float
    column that is not a number.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.read_csv(
        io.BytesIO(body),
        read_options=pacsv.ReadOptions(
            column_names=header, skip_rows=skip_rows, use_threads=use_threads()
        ),
        parse_options=pacsv.ParseOptions(delimiter=delim),
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.float64() if h in floats else pa.string() for h in header},
            null_values=[""],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def numbers_column(table: Any, k: int, text: Callable[[], Any]) -> np.ndarray:
    """Column ``k`` of ``table`` (read as float64) as a numbers-first column: float64 (rows,),
    NaN where empty; ``text()`` gives the file read as text (its column ``k`` is trimmed on
    demand)."""
    import pyarrow.compute as pc

    col = table.column(k)  # (chunked: to_numpy joins the chunks, NaN where null, one copy)
    values = col.to_numpy()
    empty = col.is_null().to_numpy() if col.null_count else np.zeros(len(values), dtype=bool)
    return typed_numbers(
        values, empty, lambda: pc.utf8_trim_whitespace(text().column(k).combine_chunks())
    )


def columns(
    table: Any,
    header: list[str],
    floats: set[str],
    text: Callable[[], Any],
    missing: frozenset[str] | None,
) -> dict[str, np.ndarray]:
    """Every column of the CSV ``table`` as the readers take it: those in ``floats`` numbers
    first (:func:`numbers_column`), the others coded text
    (:func:`mtl_core.runfile.coded.coded_column`, ``missing`` its missing-value marks);
    keyed by the trimmed header names, in header order.

    Within :func:`mtl_core.runfile.threads.arrow_threads` (the CLI's ``import``) a few text
    columns are converted side by side on threads: Arrow's dictionary encoding and casts let
    go of the GIL, and the columns share nothing but the caches they are remembered in.
    """

    def convert(k: int, h: str) -> np.ndarray:
        if h in floats:
            return numbers_column(table, k, text)
        return coded_column(table.column(k), missing=missing)

    texts = [k for k, h in enumerate(header) if h not in floats]
    if not use_threads() or len(texts) < 2 or len(texts) > _THREADED_TEXT_COLUMNS:
        return {h.strip(): convert(k, h) for k, h in enumerate(header)}
    with ThreadPoolExecutor(max_workers=min(4, len(texts))) as pool:
        # each in a copy of this context: the read's report and thread choice go along
        jobs = {
            k: pool.submit(contextvars.copy_context().run, convert, k, header[k]) for k in texts
        }
        # (the float columns, a cast each, here meanwhile; every result in header order)
        done = {k: convert(k, h) for k, h in enumerate(header) if k not in jobs}
        return {h.strip(): jobs[k].result() if k in jobs else done[k] for k, h in enumerate(header)}


#: Up to this many text columns are converted on threads (a long form's name columns); a
#: table of many (a wide matrix's) converts them in turn: a thread per cheap column costs
#: more than it saves.
_THREADED_TEXT_COLUMNS = 16
