"""Table containers both ways: CSV/TSV, JSON Lines, JSON and Parquet bytes <-> columns.

Reading gives ``{column: values}`` (one NumPy array per column, in header order) plus a
:data:`~mtl_core.runfile.messages.Locate` naming row ``i`` the way the container numbers it
(``row 3 (line 4)`` in CSV, ``line 7`` in JSON Lines, ``row 3`` in JSON and Parquet). Which
layout the columns hold (long or wide) is decided later (:mod:`mtl_core.runfile.layout`).

- CSV/TSV: UTF-8 (a BOM is dropped); comma, semicolon or tab told apart from the header line;
  every cell read as trimmed text by pyarrow, so numbers are converted exactly afterwards.
  ``.txt``: runs of blanks separate, unless the header holds , or ;. Spreadsheet and R habits
  are undone first (:mod:`mtl_core.runfile.sheet_habits`).
- JSON Lines: one object per line; a whole-file fast parse, else line by line to name the bad
  line.
- JSON: one array of row objects.
- Parquet: by pyarrow, without pandas metadata objects (nothing is unpickled).

Writing (:func:`table_bytes`) is exact: float64 values round-trip in every container.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import operator
import re
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile import csv_numbers
from mtl_core.runfile import sheet_habits as habits
from mtl_core.runfile.bounds import check_columns, check_json_size, check_lines, check_rows
from mtl_core.runfile.encoding import decode, decode_text
from mtl_core.runfile.formula_escape import escape_cell, escape_frame, unescape_columns
from mtl_core.runfile.json_layouts import array_columns, flatten_records, object_columns
from mtl_core.runfile.jsontext import json_lines, load_json
from mtl_core.runfile.messages import JSON_ROW, Locate, short
from mtl_core.runfile.parquet import parse_parquet
from mtl_core.runfile.report import note
from mtl_core.runfile.schema import DELIMITERS

Columns = dict[str, np.ndarray]
_NON_BLANK = re.compile(r"\S")


def parse_table(
    data: bytes, ext: str, name: str, *, run_limits: bool = True, numbers: bool = False
) -> tuple[Columns, Locate]:
    """A table container's bytes -> ``({column: values}, locate)``.

    Parameters
    ----------
    data : the file's (or zip member's) bytes.
    ext : ``.csv``, ``.tsv``, ``.jsonl``, ``.json`` or ``.parquet`` (lower case).
    name : the file's name for messages.
    run_limits : count lines, rows and columns against a run's limits
        (:mod:`mtl_core.runfile.bounds`) before converting anything; False for a table that
        is not a run file (a training table, bounded by its own limits).
    numbers : for a reader that takes numbers-first columns (:func:`read_affinity`): a CSV
        column of many distinct texts that are all numbers (or missing-value marks) comes as
        float64 with its text kept beside it (:func:`mtl_core.runfile.coded.coded_column`),
        not as one Python ``str`` per cell. False: every CSV column is text.

    Raises
    ------
    LabError
        Undecodable text, a malformed container, no rows, a column named twice, or (with
        ``run_limits``) more rows or columns than a run may hold.
    """
    if ext in (".csv", ".tsv", ".txt"):
        default = {".csv": ",", ".tsv": "\t"}.get(ext, " ")  # .txt: R's write.table
        return _parse_csv(data, name, default, run_limits, numbers)
    if ext == ".jsonl":
        return _parse_jsonl(data, name, run_limits)
    if ext == ".json":
        return _parse_json(data, name, run_limits)
    return parse_parquet(data, name, run_limits, _check_header)


__all__ = ["decode_text", "parse_table", "sniff_delimiter", "table_bytes"]


def sniff_delimiter(text: str, default: str) -> str:
    """The delimiter of a delimited text table, from its header line.

    The candidate (comma, semicolon, tab) occurring most often outside quotes wins; a tie, or a
    one-column header, keeps ``default``.
    """
    end = first_line_end(text)
    # drop quoted names first: they may hold any delimiter
    line = re.sub(r'"[^"]*"?', "", text if end < 0 else text[:end])
    counts = {d: line.count(d) for d in DELIMITERS}
    best = max(counts.values())
    if best == 0 or counts[default] == best:
        return default
    return next(d for d in DELIMITERS if counts[d] == best)


def first_line_end(text: str) -> int:
    """Where the first line ends (``\n``, ``\r\n`` or an old Mac's lone ``\r``), or -1."""
    ends = [k for k in (text.find("\n"), text.find("\r")) if k >= 0]
    return min(ends) if ends else -1


def _delimited_header(text: str) -> bool:
    """Whether the header line holds a comma, semicolon or tab outside quotes."""
    end = first_line_end(text)
    line = re.sub(r'"[^"]*"?', "", text if end < 0 else text[:end])
    return any(d in line for d in DELIMITERS)


def _header(text: str, delim: str, name: str) -> list[str]:
    """The header row's cells (any line ending; a quoted name may hold one)."""
    try:
        # newline="" hands csv the raw line endings, which it reads in all three styles
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delim), [])
    except csv.Error as exc:
        raise LabError(f"{name}: the header row is not readable ({short(exc)})") from None


def _head(text: str, delim: str, rows: int) -> str:
    """A prefix of ``text`` holding its first ``rows`` rows whole (a quoted cell may span
    lines), or all of it: the header checks read a few rows, not a copy of the file."""
    size = 1 << 16
    while size < len(text):
        chunk = text[:size]
        try:
            got = sum(1 for _ in itertools.islice(_rows(chunk, delim), rows + 1))
        except csv.Error:
            got = 0
        if got > rows:  # a row began after the wanted ones: they are complete
            return chunk
        size *= 4
    return text


def _rows(text: str, delim: str) -> Any:
    return csv.reader(io.StringIO(text, newline=""), delimiter=delim)


def _check_header(columns: list[str], name: str) -> None:
    seen = set()
    for c in columns:
        if c in seen:
            raise LabError(f"{name}: column {c!r} appears twice")
        seen.add(c)


# ----------------------------------------------------------------------------- CSV / TSV


def _parse_csv(
    data: bytes, name: str, default: str, limits: bool, numbers: bool = False
) -> tuple[Columns, Locate]:
    import pyarrow as pa

    if limits:
        check_lines(data, name)  # before decoding: a zip member can unpack to many lines
    text, encoding = decode(data, name)
    if not text or text.isspace():  # (not strip(): no copy of the text)
        raise LabError(f"{name}: the file is empty")
    decoded = text
    text, _ = habits.unify_line_ends(text)  # old-Mac '\r' ends: as '\n'
    text, declared, skipped = habits.strip_preamble(text, name)
    if declared:
        delim = declared
    elif habits.r_space_delimited(text):
        delim = " "
    elif default == " ":  # a .txt: whitespace-separated unless its header holds , or ;
        delim = sniff_delimiter(text, ",") if _delimited_header(text) else " "
        delim = " " if delim == "\t" and not habits.tab_separated(text) else delim
    else:
        delim = sniff_delimiter(text, default)
    text, _ = habits.collapse_blanks(text, delim, name)  # padded space columns
    text, comments, _ = habits.strip_comment_lines(text, delim, name, skipped)
    top = _head(text, delim, 6)  # the header and R's row-name check need the first rows only
    header = habits.r_row_names(top, delim, _header(top, delim, name), name)
    headerless = habits.numeric_header(header)
    if headerless is None and len(header) == 1:  # np.savetxt's default: space-separated
        spaced = habits.numeric_header(header[0].split())
        if spaced is not None and len(spaced) > 1:
            delim, headerless = " ", spaced
    if headerless is not None:
        header = headerless
        note(
            f"the file has no header row (its first line is numbers): task names "
            f"{header[0]}..{header[-1]} were made up; add a header row to name them"
        )
    header, blank = habits.name_blank_tail(header)
    _check_header([h.strip() for h in header], name)
    if limits:
        check_columns(len(header), name)
    # pyarrow reads UTF-8 bytes: re-encode when the file was in another encoding (or its
    # text was changed above: each step returns the same text object when it changes nothing)
    body = data if encoding == "utf-8" and text is decoded else None
    body = text.encode("utf-8") if body is None else body
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    skip_rows = 0 if headerless else 1
    end = first_line_end(text)
    # (Arrow: "could not skip 1 rows"; a search, not text[end:].strip(): no copy of the text)
    if skip_rows and (end < 0 or _NON_BLANK.search(text, end) is None):
        raise LabError(f"{name}: has a header but no rows")
    # the columns of numbers read as float64 by Arrow (csv_numbers); a cell that is not a
    # number there, and every other column, read as text and converted exactly afterwards
    floats = set()
    if numbers and not headerless and not blank:
        floats = csv_numbers.float_columns(top, header, delim, skip_rows)
    table = None
    if floats:
        try:
            table = csv_numbers.read_arrow(body, header, delim, skip_rows, floats)
        except (pa.ArrowInvalid, ValueError):
            floats = set()  # some cell is not a number: the text read below names it
    if table is None:
        try:
            table = csv_numbers.read_arrow(body, header, delim, skip_rows, set())
        except (pa.ArrowInvalid, ValueError) as exc:
            kind = {",": "CSV", ";": "semicolon-separated", "\t": "tab-separated"}.get(
                delim, "space-separated"
            )
            raise LabError(f"{name}: not a readable {kind} table ({short(exc)})") from None
    if table.num_rows == 0:
        raise LabError(f"{name}: has a header but no rows")
    if limits:
        check_rows(table.num_rows, name)  # before every cell becomes a Python object
    text_table = functools.cache(
        lambda: csv_numbers.read_arrow(body, header, delim, skip_rows, set())
    )
    marks = habits.MISSING_MARKS if numbers else None
    cols = csv_numbers.columns(table, header, floats, text_table, marks)
    cols = habits.drop_blank_edges(cols, blank, name)
    cols = unescape_columns(cols)  # undo the writer's formula escaping (exact round trip)
    first = (1 if headerless else 2) + skipped
    if len(comments):  # rows keep the line numbers of the file, comment lines counted
        below = first - skipped

        def locate(i: int) -> str:
            return f"row {i + 1} (line {i + first + habits.line_shift(comments, i + below)})"

    else:
        locate = lambda i: f"row {i + 1} (line {i + first})"  # noqa: E731
    if header and not text.endswith(("\n", "\r")):
        habits.note_cut_end(cols, list(cols)[-1], locate)
    if delim == ";":
        cols = habits.decimal_commas(cols)
    return cols, locate


# ----------------------------------------------------------------------------- JSON (Lines)


def _parse_jsonl(data: bytes, name: str, limits: bool) -> tuple[Columns, Locate]:
    if limits:
        check_lines(data, name)  # before decoding: a zip member can unpack to many lines
    text = decode_text(data, name)
    fast = _fast_jsonl(text)
    if fast is not None:
        cols, lines = fast
        _check_header(list(cols), name)
        return cols, lambda i: f"line {lines[i]}"
    records: list[dict[str, Any]] = []
    lines = []
    for k, line in enumerate(json_lines(text), start=1):
        if not line.strip():
            continue
        try:
            rec = load_json(line, f"{name}: line {k}")
        except json.JSONDecodeError as exc:
            raise LabError(
                f"{name}: line {k} is not valid JSON ({exc.msg}, column {exc.colno})"
            ) from None
        if not isinstance(rec, dict):
            raise LabError(f"{name}: line {k} must be a JSON object like {JSON_ROW}")
        records.append(rec)
        lines.append(k)
    if not records:
        raise LabError(f"{name}: the file is empty")
    records = flatten_records(records)
    cols = _record_columns(records)
    _check_header(list(cols), name)
    return cols, lambda i: f"line {lines[i]}"


def _fast_jsonl(text: str) -> tuple[Columns, list[int]] | None:
    """One C-speed parse of the whole file when every line is a complete, flat record;
    None sends the file down the line-by-line path that names the offending line."""
    numbered = [(k, ln) for k, ln in enumerate(json_lines(text), start=1) if ln.strip()]
    if not numbered:
        return None
    try:
        records = load_json("[" + ",".join(ln for _, ln in numbered) + "]", "")
    except (json.JSONDecodeError, LabError):  # the line-by-line path names the line
        return None
    if len(records) != len(numbered):
        return None
    cols = _fast_record_columns(flatten_records(records))
    return None if cols is None else (cols, [k for k, _ in numbered])


def _parse_json(data: bytes, name: str, limits: bool) -> tuple[Columns, Locate]:
    """A JSON document holding one array of row objects (long or wide rows), as
    ``json.dump(df.to_dict("records"))`` and many tools write it, or a matrix saved as an
    object or an array of arrays (:mod:`mtl_core.runfile.json_layouts`)."""
    if limits:
        check_json_size(data, name)  # before decoding and parsing
    text = decode_text(data, name)
    if not text or text.isspace():  # (not strip(): no copy of the text)
        raise LabError(f"{name}: the file is empty")
    try:
        doc = load_json(text, name)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # one object per line (Ray Tune's result.json)
            cols, locate = _parse_jsonl(data, name, limits)
            note(f"{name}: read as JSON Lines (one object per line, as Ray Tune's result.json)")
            return cols, locate
        hint = ""
        raise LabError(
            f"{name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}){hint}"
        ) from None
    want = f"expected a JSON array of row objects like [{JSON_ROW}, ...]"
    if isinstance(doc, dict):
        return object_columns(doc, name)
    if not isinstance(doc, list):
        raise LabError(f"{name}: {want}; found {_json_kind(doc)}")
    if not doc:
        raise LabError(f"{name}: the array has no rows")
    if limits:
        check_rows(len(doc), name)
    matrix = array_columns(doc, name)
    if matrix is not None:
        return matrix
    if set(map(type, doc)) != {dict}:  # (JSON makes no dict subclass)
        for k, rec in enumerate(doc):
            if not isinstance(rec, dict):
                raise LabError(f"{name}: row {k + 1} is {_json_kind(rec)}; {want}")
    cols = _fast_record_columns(doc)
    if cols is None:
        cols = _record_columns(doc)
    _check_header(list(cols), name)
    return cols, lambda i: f"row {i + 1}"


def _record_columns(records: list[dict[str, Any]]) -> Columns:
    """Row objects -> ``{key: values}`` (object arrays, None where a row lacks the key)."""
    keys: dict[str, None] = {}
    for rec in records:
        keys.update(dict.fromkeys(rec))
    missing = object()
    cols = {}
    for key in keys:
        vals = [rec.get(key, missing) for rec in records]
        col = np.empty(len(vals), dtype=object)
        col[:] = [None if v is missing else v for v in vals]
        cols[key] = col
    return cols


def _fast_record_columns(records: list[Any]) -> Columns | None:
    """Columns of flat, complete row objects at C speed; None for anything else (a missing
    key, a null, a non-object row), which the slow path then reports with its place."""
    if set(map(type, records)) != {dict}:
        return None
    uniform = _uniform_record_columns(records)
    if uniform is not None:
        return uniform
    return _pandas_record_columns(records)


def _pandas_record_columns(records: list[dict[str, Any]]) -> Columns | None:
    """Row objects -> columns through ``pandas.DataFrame.from_records`` (numbers as their
    numpy arrays, anything else as object arrays); None when a key is missing or a value is
    null/NaN, so the slow path can say where. The reference that
    :func:`_uniform_record_columns` must match."""
    df = pd.DataFrame.from_records(records)
    if df.isna().to_numpy().any():
        return None
    cols = {}
    for c in df.columns:
        col = df[c]
        if col.dtype.kind in "iuf":
            cols[str(c)] = col.to_numpy()
        else:
            arr = np.empty(len(col), dtype=object)
            arr[:] = col.to_numpy(dtype=object)
            cols[str(c)] = arr
    return cols


def _uniform_record_columns(records: list[dict[str, Any]]) -> Columns | None:
    """Row objects that all hold the first row's keys, and no others -> columns, each taken
    by ``operator.itemgetter`` at C speed: whole numbers as int64, numbers as float64,
    anything else as the values themselves (the dtypes ``DataFrame.from_records`` gives
    such columns). None where the rows differ, a value is null or NaN, or a whole number
    is past int64: :func:`_fast_record_columns` then reads them as before."""
    keys = list(records[0])
    if not keys or set(map(len, records)) != {len(keys)}:
        return None
    cols: Columns = {}
    for key in keys:
        try:  # one list per key (no tuple per row)
            col = list(map(operator.itemgetter(key), records))
        except KeyError:
            return None
        kinds = set(map(type, col))
        if type(None) in kinds:
            return None
        try:
            if kinds == {int}:
                arr = np.array(col, dtype=np.int64)
            elif kinds <= {int, float}:
                arr = np.array(col, dtype=np.float64)
                if np.isnan(arr).any():
                    return None
            else:
                arr = np.empty(len(col), dtype=object)
                arr[:] = col
        except OverflowError:
            return None
        cols[key] = arr
    return cols


def _json_kind(v: Any) -> str:
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, str):
        return "a string"
    if v is None:
        return "null"
    return "true/false" if isinstance(v, bool) else "a number"


# ----------------------------------------------------------------------------- writing


def table_bytes(df: pd.DataFrame, ext: str) -> bytes:
    """Serialize a table as ``.csv``, ``.parquet`` or ``.jsonl``, exactly (float64 values
    round-trip; NaN is an empty CSV cell and ``null`` in JSON Lines)."""
    if ext == ".csv":
        # pandas writes float64 as the shortest text that parses back to the same value;
        # text cells are quoted, and formula-like ones escaped (``formula_escape``)
        head = io.StringIO()
        csv.writer(head, lineterminator="\n").writerow([escape_cell(str(c)) for c in df.columns])
        body = escape_frame(df).to_csv(
            index=False, header=False, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC
        )
        return (head.getvalue() + body).encode("utf-8")
    if ext == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
        return buf.getvalue()
    # JSON Lines, written by hand: pandas' to_json rounds floats to 10-15 digits
    cols = list(df.columns)
    frags = [_json_fragments(df[c]) for c in cols]
    keys = [json.dumps(c) + ": " for c in cols]
    lines = ["{" + ", ".join(k + v for k, v in zip(keys, row)) + "}" for row in zip(*frags)]
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def _json_fragments(s: pd.Series) -> list[str]:
    """Each value of a column as JSON text (floats exact via repr; NaN as null)."""
    if pd.api.types.is_integer_dtype(s.dtype):
        return [str(v) for v in s.to_numpy().tolist()]
    if pd.api.types.is_float_dtype(s.dtype):
        return ["null" if v != v else json.dumps(v) for v in s.to_numpy().tolist()]
    codes, uniques = pd.factorize(s.to_numpy(dtype=object), use_na_sentinel=True)
    texts = np.array([json.dumps(_plain(u)) for u in uniques] + ["null"], dtype=object)
    return texts[codes].tolist()  # code -1 (missing) picks the trailing "null"


def _plain(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v
