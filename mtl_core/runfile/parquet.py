"""Parquet bytes -> columns: by pyarrow, without pandas metadata objects (nothing is
unpickled). Text columns are read dictionary-encoded, as Parquet stores them, so a name
column of 900k rows comes as its few texts and one code per row
(:mod:`mtl_core.runfile.coded`), never one Python ``str`` made per row.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.runfile.bounds import check_columns, check_rows
from mtl_core.runfile.coded import coded_column
from mtl_core.runfile.messages import Locate, short
from mtl_core.runfile.threads import use_threads

Columns = dict[str, np.ndarray]


def parse_parquet(
    data: bytes, name: str, limits: bool, check_header: Callable[[list[str], str], None]
) -> tuple[Columns, Locate]:
    """A Parquet file's bytes -> ``({column: values}, locate)`` (``row i``).

    ``limits``: check the footer's row and column counts against a run's limits before
    reading any data; ``check_header``: the tables' header check (names, duplicates).

    Raises ``LabError``: an unreadable file, no rows, a bad header, too many rows or columns.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if limits:  # counts from the footer, before reading any data
            footer = pq.ParquetFile(io.BytesIO(data)).metadata
            check_rows(footer.num_rows, name)
            check_columns(footer.num_columns, name)
        # text columns read as Parquet stores them, dictionary-encoded: codes, no str per row
        schema = pq.read_schema(io.BytesIO(data))
        texts = [
            f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        ]
        # one thread unless the CLI's import allows more (mtl_core.runfile.threads)
        table = pq.read_table(
            io.BytesIO(data), read_dictionary=texts or None, use_threads=use_threads()
        )
        if table.num_rows == 0:
            raise LabError(f"{name}: the table has no rows")
        check_header(table.column_names, name)
        return _parquet_columns(table), lambda i: f"row {i + 1}"
    # (a damaged file can hold names or text that are not UTF-8: UnicodeDecodeError)
    except (pa.ArrowException, OSError, ValueError, UnicodeDecodeError) as exc:
        raise LabError(f"{name}: not a readable Parquet file ({short(exc)})") from None


def _parquet_columns(table: Any) -> Columns:
    """A pyarrow table's columns as NumPy arrays: numbers as numbers (object when some are
    null), text as ``str`` with its Arrow codes (:func:`coded_column`, untrimmed: the
    values as stored), anything else as Python objects."""
    import pyarrow as pa

    cols = {}
    for cname, col in zip(table.column_names, table.columns):
        t = col.type
        if pa.types.is_dictionary(t) and (
            pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)
        ):
            t = pa.string()  # a pandas category column: its texts
        if pa.types.is_dictionary(col.type) and pa.types.is_string(t):
            cols[cname] = coded_column(col, trim=False)
            continue
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            cols[cname] = coded_column(col.cast(pa.string()), trim=False)
            continue
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            arr = col.to_numpy(zero_copy_only=False)
            if col.null_count:
                arr = np.array(col.to_pylist(), dtype=object)
        else:
            arr = np.empty(table.num_rows, dtype=object)
            arr[:] = col.to_pylist()
        cols[cname] = arr
    return cols
