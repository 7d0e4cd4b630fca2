"""The open file format for logged affinity runs (read, validate, write). Torch-free.

A run file holds a long-form **affinity table** (one row per measured cell), optionally a
long-form **metrics table**, a **groupings** list and a JSON **metadata** part. Direction:
``affinity`` is the effect of an update on ``source``'s loss on ``target``'s loss (positive =
helps), i.e. ``A[i, j]`` with ``i = source``, ``j = target``. The full specification, with an
example, is docs/run-format.md.

Affinity table columns: ``step, source, target, affinity`` (required), ``measure`` (default
``lookahead``), ``run`` (several runs in one file), ``wall_time`` (optional, seconds since the
epoch). The affinity table may also be a square **matrix** (task names as header, one row per
source, optionally stacked over steps), read by :mod:`mtl_core.fileformat_wide` into the same
long form. Metrics table: ``step, task, split, metric, value`` (+ optional ``run``).

Containers, chosen by the file name: ``.csv``/``.tsv`` (comma, semicolon or tab, detected from
the header line), ``.parquet``, ``.jsonl`` and ``.json`` (one array of row objects) hold the
affinity table only; ``.zip`` bundles ``affinity.<ext>``, ``metrics.<ext>`` (optional),
``groupings.jsonl`` (optional) and ``meta.json`` (optional), ``<ext>`` any of those table
extensions. NumPy ``.npy``/``.npz`` matrices are read by :mod:`mtl_core.fileformat_arrays`,
TensorBoard event files (``*tfevents*``) by :mod:`mtl_core.tbimport`. Known column names are
matched ignoring case and surrounding spaces (``Step`` is ``step``).

One entry point reads everything, for the CLI and the app's upload page alike::

    parsed = read_run_file(path_or_bytes, filename)   # -> ParsedRun, or LabError

Every problem (missing or misnamed column, non-numeric or non-finite affinity, bad step, unknown
task, duplicated cell, empty or oversized file, wrong extension, corrupt container) raises one
``LabError`` naming what is wrong and where (file, row, column). Nothing is unpickled: CSV and
JSON are parsed as text, Parquet by pyarrow without pandas metadata objects, NumPy files with
``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.jsonio import atomic_write_bytes

FORMAT_NAME = "task-affinity-lab/run"
FORMAT_VERSION = 1
DEFAULT_MEASURE = "lookahead"
#: The split under which the training loop's per-step minibatch loss is stored.
BATCH_SPLIT = "batch"

AFFINITY_COLUMNS = ["step", "source", "target", "affinity", "measure"]  # minimal log (CLI)
AFFINITY_REQUIRED = ("step", "source", "target", "affinity")
AFFINITY_OPTIONAL = ("measure", "run", "wall_time")
METRIC_REQUIRED = ("step", "task", "split", "metric", "value")
METRIC_OPTIONAL = ("run",)
#: Added to the long form's missing-column message: the other layout the reader accepts.
WIDE_NOTE = "; a square matrix with task names as header is accepted too (docs/run-format.md)"
#: Table containers the lab writes (and reads).
TABLE_EXTENSIONS = (".csv", ".parquet", ".jsonl")
#: Table containers the lab reads, alone or inside a zip: also tab-separated text and a JSON
#: array of row objects, as other tools write them.
READ_TABLE_EXTENSIONS = (".csv", ".tsv", ".parquet", ".jsonl", ".json")
#: NumPy matrices (:mod:`mtl_core.fileformat_arrays`), read as a file of their own.
ARRAY_EXTENSIONS = (".npy", ".npz")
#: What ``write_run_file`` writes.
FILE_EXTENSIONS = (*TABLE_EXTENSIONS, ".zip")
#: What ``read_run_file`` reads (plus TensorBoard event files and log folders).
READ_EXTENSIONS = (*READ_TABLE_EXTENSIONS, *ARRAY_EXTENSIONS, ".zip")
#: CSV delimiters told apart by the header line, in order of preference on a tie.
DELIMITERS = (",", ";", "\t")
#: Names the affinity table's reader knows (long form, plus the wide layout's row-label column):
#: matched ignoring case and surrounding spaces. A wide matrix's task columns keep their case.
AFFINITY_NAMES = (*AFFINITY_REQUIRED, *AFFINITY_OPTIONAL, "task")
#: Canonical column order of ``ParsedRun`` frames.
AFFINITY_FRAME = ["run", "step", "measure", "source", "target", "affinity", "wall_time"]
METRIC_FRAME = ["run", "step", "task", "split", "metric", "value"]
GROUPING_FRAME = ["run", "step", "groups"]
DEFAULT_MAX_MB = 200.0


def max_file_bytes() -> int:
    """Upload/import size limit: ``MTL_LAB_MAX_FILE_MB`` (megabytes) or 200 MB."""
    raw = os.environ.get("MTL_LAB_MAX_FILE_MB", "")
    try:
        mb = float(raw) if raw else DEFAULT_MAX_MB
    except ValueError:
        mb = DEFAULT_MAX_MB
    return int(mb * 1024 * 1024)


# --------------------------------------------------------------------------------------------
# The minimal long-form log used by the training CLI (kept with the same signatures).
# --------------------------------------------------------------------------------------------


def affinity_rows(step: int, tasks: list[str], matrix: np.ndarray, measure: str) -> pd.DataFrame:
    """Long-form rows for one measured matrix (``matrix[i, j]``: source i, target j)."""
    n = len(tasks)
    src = np.repeat(np.asarray(tasks, dtype=object), n)
    tgt = np.tile(np.asarray(tasks, dtype=object), n)
    return pd.DataFrame(
        {
            "step": np.full(n * n, int(step), dtype=np.int64),
            "source": src,
            "target": tgt,
            "affinity": np.asarray(matrix, dtype=np.float64).reshape(-1),
            "measure": measure,
        }
    )


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a long-form table; the container follows the file's extension.

    Floats are written exactly (shortest round-trip text in CSV and JSON Lines).
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in TABLE_EXTENSIONS:
        raise LabError(
            f"cannot write {p.name}: unknown extension {ext or '(none)'}; "
            f"use one of {', '.join(TABLE_EXTENSIONS)}"
        )
    # a ParsedRun-style frame: leave out a blank run column and an empty wall_time column
    if "run" in df.columns and (df["run"].astype(str).str.strip() == "").all():
        df = df.drop(columns=["run"])
    if "wall_time" in df.columns and df["wall_time"].isna().all():
        df = df.drop(columns=["wall_time"])
    return atomic_write_bytes(p, _table_bytes(df, ext))  # a reader never sees half a file


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a long-form table written by ``write_table`` (no validation beyond the container)."""
    p = Path(path)
    ext = p.suffix.lower()
    if not p.exists():
        raise LabError(f"file not found: {p}")
    if ext not in TABLE_EXTENSIONS:
        raise LabError(
            f"cannot read {p.name}: unknown extension {ext or '(none)'}; "
            f"use one of {', '.join(TABLE_EXTENSIONS)}"
        )
    try:
        if ext == ".csv":
            return pd.read_csv(p)  # pandas >= 3 parses floats exactly by default
        if ext == ".parquet":
            return pd.read_parquet(p)
        rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line]
        return pd.DataFrame.from_records(rows)
    except (ValueError, OSError) as exc:
        raise LabError(f"cannot read {p.name}: {exc}") from None


def mean_matrix(
    df: pd.DataFrame, measure: str | None = None, tasks: list[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """Time-averaged affinity matrix of one measure from a long-form table.

    Returns ``(tasks, A)`` with ``A[i, j]`` the mean over logged steps of source i -> target j.
    """
    if "measure" in df.columns:
        measures = sorted(df["measure"].dropna().unique())
        if measure is None:
            if len(measures) > 1:
                raise LabError(
                    f"the log holds several measures ({', '.join(measures)}); "
                    "pick one with --measure"
                )
            measure = measures[0] if measures else None
        if measure is not None:
            if measure not in measures:
                raise LabError(f"measure {measure!r} not in the log; it has: {', '.join(measures)}")
            df = df[df["measure"] == measure]
    if tasks is None:
        tasks = list(dict.fromkeys(list(df["source"]) + list(df["target"])))
    table = df.groupby(["source", "target"])["affinity"].mean().unstack()
    table = table.reindex(index=tasks, columns=tasks)
    return list(tasks), table.to_numpy(dtype=np.float64)


# --------------------------------------------------------------------------------------------
# The full run file.
# --------------------------------------------------------------------------------------------


@dataclass
class ParsedRun:
    """A validated run file (one or several runs), ready for ``Store.import_parsed``.

    Attributes
    ----------
    tasks : ordered task names (from ``meta.json`` or first appearance in the tables).
    task_types : task -> type (e.g. ``"regression"``, ``"binary"``), possibly partial.
    affinity : columns ``run, step, measure, source, target, affinity, wall_time``;
        ``run`` is ``""`` when the file has no run column, ``wall_time`` NaN when not logged.
    metrics : columns ``run, step, task, split, metric, value``.
    groupings : columns ``run, step, groups`` (``groups`` a tuple of frozensets).
    meta : the metadata object (``config``, ``notes``, ``name``, and any other keys).
    runs : distinct run labels in file order (``[""]`` for a single-run file).
    tasks_declared : whether ``tasks`` came from the metadata (then every run uses it).
    """

    tasks: list[str]
    task_types: dict[str, str] = field(default_factory=dict)
    affinity: pd.DataFrame = field(default_factory=lambda: _empty(AFFINITY_FRAME))
    metrics: pd.DataFrame = field(default_factory=lambda: _empty(METRIC_FRAME))
    groupings: pd.DataFrame = field(default_factory=lambda: _empty(GROUPING_FRAME))
    meta: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=lambda: [""])
    tasks_declared: bool = False

    def run_tasks(self, run: str) -> list[str]:
        """Task order of one run: the declared task list, else the tasks that run mentions."""
        if self.tasks_declared or self.runs == [run]:
            return list(self.tasks)
        a = self.affinity[self.affinity["run"] == run]
        m = self.metrics[self.metrics["run"] == run]
        return _first_seen(a["source"], a["target"], m["task"])

    def matrices(self, run: str, measure: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        """``(steps, tasks, A)`` of one run and measure; ``A[s, i, j]``, NaN where not logged."""
        tasks = self.run_tasks(run)
        a = self.affinity[(self.affinity["run"] == run) & (self.affinity["measure"] == measure)]
        return long_to_matrices(a, tasks)

    def measures(self, run: str) -> list[str]:
        """Measures logged for one run, in file order."""
        a = self.affinity[self.affinity["run"] == run]
        return [str(m) for m in pd.unique(a["measure"].to_numpy(dtype=object))]


def long_to_matrices(
    df: pd.DataFrame, tasks: list[str]
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Stack long-form cells of one run and measure into ``(steps, tasks, A[s, i, j])``."""
    steps, s_idx = np.unique(df["step"].to_numpy(dtype=np.int64), return_inverse=True)
    index = pd.Index(list(tasks), dtype=object)
    i = index.get_indexer(df["source"].to_numpy(dtype=object))
    j = index.get_indexer(df["target"].to_numpy(dtype=object))
    if (i < 0).any() or (j < 0).any():
        raise LabError("affinity cells name a task outside the run's task list")
    out = np.full((len(steps), len(tasks), len(tasks)), np.nan)
    out[s_idx, i, j] = df["affinity"].to_numpy(dtype=np.float64)
    return steps, list(tasks), out


def matrices_to_long(
    steps: np.ndarray, tasks: list[str], mats: np.ndarray, measure: str, run: str = "",
    wall_times: np.ndarray | None = None,
) -> pd.DataFrame:
    """Inverse of :func:`long_to_matrices`: one row per logged (non-NaN) cell, row-major."""
    s_count, n = len(steps), len(tasks)
    flat = np.asarray(mats, dtype=np.float64).reshape(-1)
    keep = ~np.isnan(flat)
    tk = np.asarray(tasks, dtype=object)
    wt = np.full(s_count, np.nan) if wall_times is None else np.asarray(wall_times, np.float64)
    return pd.DataFrame(
        {
            "run": run,
            "step": np.repeat(np.asarray(steps, dtype=np.int64), n * n)[keep],
            "measure": measure,
            "source": np.tile(np.repeat(tk, n), s_count)[keep],
            "target": np.tile(tk, n * s_count)[keep],
            "affinity": flat[keep],
            "wall_time": np.repeat(wt, n * n)[keep],
        },
        columns=AFFINITY_FRAME,
    )


def read_run_file(
    source: str | Path | bytes,
    filename: str | None = None,
    *,
    max_bytes: int | None = None,
) -> ParsedRun:
    """Read and fully validate a run file.

    Parameters
    ----------
    source : a path, or the file's bytes (e.g. from ``st.file_uploader(...).getvalue()``).
    filename : the file's name, which selects the container; defaults to the path's name.
    max_bytes : size limit; defaults to :func:`max_file_bytes` (``MTL_LAB_MAX_FILE_MB``).

    Raises
    ------
    LabError
        With one message naming what is wrong and where.
    """
    try:
        return _read_run_file(source, filename, max_bytes)
    except LabError as exc:
        msg = str(exc)
        raise LabError(msg if msg.startswith("cannot import") else f"cannot import {msg}") from None


def _read_run_file(
    source: str | Path | bytes, filename: str | None, max_bytes: int | None
) -> ParsedRun:
    limit = max_file_bytes() if max_bytes is None else int(max_bytes)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data: bytes | None = bytes(source)
        name = filename or "upload"
        size = len(data)
        path = None
    else:
        path = Path(source)
        name = filename or path.name
        if not path.exists():
            raise LabError(f"{path}: file not found")
        if path.is_dir():
            return _read_tensorboard(path, name, limit)
        size = path.stat().st_size
        data = None
    ext = Path(name).suffix.lower()
    if "tfevents" in name:
        ext = ".tfevents"
    if ext not in (*READ_EXTENSIONS, ".tfevents"):
        raise LabError(
            f"{name}: unsupported file type {ext or '(no extension)'}; use "
            f"{', '.join(READ_EXTENSIONS)} or a TensorBoard event file (events.out.tfevents.*)"
        )
    if size > limit:
        raise LabError(
            f"{name}: the file is {_mb(size)}, over the {_mb(limit)} limit "
            "(raise it with MTL_LAB_MAX_FILE_MB)"
        )
    if size == 0:
        raise LabError(f"{name}: the file is empty")
    if ext == ".tfevents":
        return _read_tensorboard(path if data is None else data, name, limit)
    if data is None:
        data = path.read_bytes()  # type: ignore[union-attr]
    if ext == ".zip":
        return _read_zip(data, name, limit)
    if ext in ARRAY_EXTENSIONS:
        from mtl_core.fileformat_arrays import read_array_file  # it imports this module

        aff, tasks = read_array_file(data, ext, name, limit)
        return _assemble(aff, _empty(METRIC_FRAME), _empty(GROUPING_FRAME), {}, tasks)
    cols, locate = _parse_table(data, ext, name)
    aff, tasks = _read_affinity(cols, locate, name, tasks=None)
    return _assemble(aff, _empty(METRIC_FRAME), _empty(GROUPING_FRAME), {}, tasks)


def write_run_file(parsed: ParsedRun, path: str | Path, *, table_ext: str = ".parquet") -> Path:
    """Write a run file; ``.zip`` keeps everything, a table extension the affinity table only.

    ``table_ext`` is the container of the tables inside a ``.zip``. The file appears atomically.
    """
    p = Path(path)
    data = run_file_bytes(parsed, p.name, table_ext=table_ext)
    return atomic_write_bytes(p, data)


def run_file_bytes(parsed: ParsedRun, filename: str, *, table_ext: str = ".parquet") -> bytes:
    """The bytes of a run file named ``filename`` (for downloads without touching disk)."""
    ext = Path(filename).suffix.lower()
    if ext not in FILE_EXTENSIONS:
        raise LabError(
            f"cannot write {filename}: unknown extension {ext or '(none)'}; "
            f"use one of {', '.join(FILE_EXTENSIONS)}"
        )
    multi = parsed.runs != [""]
    aff = parsed.affinity
    aff_cols = ["run"] if multi else []
    aff_cols += ["step", "source", "target", "affinity", "measure"]
    if aff["wall_time"].notna().any():
        aff_cols.append("wall_time")
    aff = aff[aff_cols]
    if ext != ".zip":
        return _table_bytes(aff, ext)
    if table_ext not in TABLE_EXTENSIONS:
        raise LabError(f"table format inside a zip must be one of {', '.join(TABLE_EXTENSIONS)}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"affinity{table_ext}", _table_bytes(aff, table_ext))
        if len(parsed.metrics):
            mcols = (["run"] if multi else []) + list(METRIC_REQUIRED)
            zf.writestr(f"metrics{table_ext}", _table_bytes(parsed.metrics[mcols], table_ext))
        if len(parsed.groupings):
            lines = []
            for run, step, groups in parsed.groupings[GROUPING_FRAME].itertuples(index=False):
                rec: dict[str, Any] = {"run": run} if multi else {}
                rec.update(step=int(step), groups=[sorted(g) for g in groups])
                lines.append(json.dumps(rec))
            zf.writestr("groupings.jsonl", "\n".join(lines) + "\n")
        meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **parsed.meta}
        meta["tasks"] = list(parsed.tasks)
        if parsed.task_types:
            meta["task_types"] = dict(parsed.task_types)
        zf.writestr("meta.json", json.dumps(meta, indent=2, allow_nan=False) + "\n")
    return buf.getvalue()


def dropped_parts(parsed: ParsedRun, filename: str) -> list[str]:
    """Parts of ``parsed`` a container named ``filename`` cannot hold (single tables: all but
    the affinity table), so callers can tell the user to use ``.zip``."""
    if Path(filename).suffix.lower() == ".zip":
        return []
    out = []
    if len(parsed.metrics):
        out.append("metrics")
    if len(parsed.groupings):
        out.append("groupings")
    if parsed.task_types or parsed.meta.get("config") or parsed.meta.get("notes"):
        out.append("metadata")
    return out


# --------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------

Locate = Callable[[int], str]


def _table_bytes(df: pd.DataFrame, ext: str) -> bytes:
    """Serialize a table exactly (float64 round-trips in every container)."""
    if ext == ".csv":
        # pandas writes float64 as the shortest text that parses back to the same value
        return df.to_csv(index=False, lineterminator="\n").encode("utf-8")
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


def _parse_table(data: bytes, ext: str, name: str) -> tuple[dict[str, np.ndarray], Locate]:
    """Container -> ``{column: values}`` plus a function naming row ``i`` for messages."""
    if ext in (".csv", ".tsv"):
        return _parse_csv(data, name, default="\t" if ext == ".tsv" else ",")
    if ext == ".jsonl":
        return _parse_jsonl(data, name)
    if ext == ".json":
        return _parse_json(data, name)
    return _parse_parquet(data, name)


def _delimiter(text: str, default: str) -> str:
    """The delimiter of a delimited text table, from its header line.

    The candidate (comma, semicolon, tab) occurring most often outside quotes wins; a tie, or a
    one-column header, keeps ``default``.
    """
    end = text.find("\n")
    # drop quoted names first: they may hold any delimiter
    line = re.sub(r'"[^"]*"?', "", text if end < 0 else text[:end])
    counts = {d: line.count(d) for d in DELIMITERS}
    best = max(counts.values())
    if best == 0 or counts[default] == best:
        return default
    return next(d for d in DELIMITERS if counts[d] == best)


def _decode_text(data: bytes, name: str) -> str:
    """A text table's bytes as str (UTF-8, a leading BOM dropped), or a LabError naming the
    first undecodable byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def _parse_csv(
    data: bytes, name: str, default: str = ","
) -> tuple[dict[str, np.ndarray], Locate]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    text = _decode_text(data, name)
    if not text.strip():
        raise LabError(f"{name}: the file is empty")
    delim = _delimiter(text, default)
    header = next(csv.reader(io.StringIO(text), delimiter=delim), [])
    _check_header([h.strip() for h in header], name)
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        # every column as text: numbers are converted (exactly) and checked afterwards
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=delim),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, ValueError) as exc:
        kind = {",": "CSV", ";": "semicolon-separated", "\t": "tab-separated"}[delim]
        raise LabError(f"{name}: not a readable {kind} table ({_short(exc)})") from None
    if table.num_rows == 0:
        raise LabError(f"{name}: has a header but no rows")
    cols = {
        h.strip(): pc.utf8_trim_whitespace(table.column(k)).to_numpy(zero_copy_only=False)
        for k, h in enumerate(header)
    }
    return cols, lambda i: f"row {i + 1} (line {i + 2})"


def _parse_jsonl(data: bytes, name: str) -> tuple[dict[str, np.ndarray], Locate]:
    text = _decode_text(data, name)
    fast = _fast_jsonl(text)
    if fast is not None:
        cols, lines = fast
        _check_header(list(cols), name)
        return cols, lambda i: f"line {lines[i]}"
    records: list[dict[str, Any]] = []
    lines = []
    for k, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LabError(
                f"{name}: line {k} is not valid JSON ({exc.msg}, column {exc.colno})"
            ) from None
        if not isinstance(rec, dict):
            raise LabError(f"{name}: line {k} must be a JSON object like "
                           '{"step": 0, "source": "a", "target": "b", "affinity": 0.1}')
        records.append(rec)
        lines.append(k)
    if not records:
        raise LabError(f"{name}: the file is empty")
    cols = _record_columns(records)
    _check_header(list(cols), name)
    return cols, lambda i: f"line {lines[i]}"


def _record_columns(records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
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


def _fast_jsonl(text: str) -> tuple[dict[str, np.ndarray], list[int]] | None:
    """One C-speed parse of the whole file when every line is a complete, flat record;
    None sends the file down the line-by-line path that names the offending line."""
    numbered = [(k, ln) for k, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if not numbered:
        return None
    try:
        records = json.loads("[" + ",".join(ln for _, ln in numbered) + "]")
    except (json.JSONDecodeError, RecursionError):
        return None
    if len(records) != len(numbered):
        return None
    cols = _fast_record_columns(records)
    return None if cols is None else (cols, [k for k, _ in numbered])


def _fast_record_columns(records: list[Any]) -> dict[str, np.ndarray] | None:
    """Columns of flat, complete row objects at C speed; None for anything else (a missing
    key, a null, a non-object row), which the slow path then reports with its place."""
    if set(map(type, records)) != {dict}:
        return None
    df = pd.DataFrame.from_records(records)
    if df.isna().to_numpy().any():  # a missing key or a null/NaN: let the slow path say where
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


#: The row object a JSON affinity table holds, for messages.
JSON_ROW = '{"step": 0, "source": "a", "target": "b", "affinity": 0.1}'


def _parse_json(data: bytes, name: str) -> tuple[dict[str, np.ndarray], Locate]:
    """A JSON document holding one array of row objects (long or wide rows), as
    ``json.dump(df.to_dict("records"))`` and many tools write it."""
    text = _decode_text(data, name)
    if not text.strip():
        raise LabError(f"{name}: the file is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = ("; one object per line is JSON Lines: name the file .jsonl"
                if exc.msg == "Extra data" else "")
        raise LabError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno}, column "
                       f"{exc.colno}){hint}") from None
    except RecursionError:
        raise LabError(f"{name}: not valid JSON (nested too deeply)") from None
    want = f"expected a JSON array of row objects like [{JSON_ROW}, ...]"
    if isinstance(doc, dict):
        keys = ", ".join(map(repr, list(doc)[:8])) or "none"
        raise LabError(f"{name}: {want}; found an object (keys: {keys}). Put the affinity rows "
                       "in a top-level array; metrics, groupings and metadata go in a .zip")
    if not isinstance(doc, list):
        raise LabError(f"{name}: {want}; found {_json_kind(doc)}")
    if not doc:
        raise LabError(f"{name}: the array has no rows")
    for k, rec in enumerate(doc):
        if not isinstance(rec, dict):
            raise LabError(f"{name}: row {k + 1} is {_json_kind(rec)}; {want}")
    cols = _fast_record_columns(doc)
    if cols is None:
        cols = _record_columns(doc)
    _check_header(list(cols), name)
    return cols, lambda i: f"row {i + 1}"


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


def _parse_parquet(data: bytes, name: str) -> tuple[dict[str, np.ndarray], Locate]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise LabError(f"{name}: not a readable Parquet file ({_short(exc)})") from None
    if table.num_rows == 0:
        raise LabError(f"{name}: the table has no rows")
    _check_header(table.column_names, name)
    cols = {}
    for cname, col in zip(table.column_names, table.columns):
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            arr = col.to_numpy(zero_copy_only=False)
            if col.null_count:
                arr = np.array(col.to_pylist(), dtype=object)
        else:
            arr = np.empty(table.num_rows, dtype=object)
            arr[:] = col.to_pylist()
        cols[cname] = arr
    return cols, lambda i: f"row {i + 1}"


def _read_zip(data: bytes, name: str, limit: int) -> ParsedRun:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise LabError(f"{name}: not a readable zip file ({_short(exc)})") from None
    # a zip may hold one top-level folder (zipping a folder); ignore OS junk files
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        base = info.filename.rsplit("/", 1)[-1]
        if info.filename.startswith("__MACOSX/") or base.startswith("."):
            continue
        if base in members:
            raise LabError(f"{name}: holds two files named {base}")
        members[base] = info
    total = sum(i.file_size for i in members.values())
    if total > limit:
        raise LabError(f"{name}: unpacks to {_mb(total)}, over the {_mb(limit)} limit")

    def pick(stem: str) -> str | None:
        found = [m for m in members if m.rsplit(".", 1)[0] == stem
                 and "." + m.rsplit(".", 1)[-1].lower() in READ_TABLE_EXTENSIONS]
        if len(found) > 1:
            raise LabError(f"{name}: holds several {stem} tables ({', '.join(sorted(found))})")
        return found[0] if found else None

    def read(member: str) -> bytes:
        try:
            return zf.read(members[member])
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise LabError(f"{name}: cannot unpack {member} ({_short(exc)})") from None

    aff_name = pick("affinity")
    if aff_name is None:
        listed = ", ".join(sorted(members)) or "nothing"
        tables = ", ".join(f"affinity{e}" for e in READ_TABLE_EXTENSIONS)
        raise LabError(f"{name}: no affinity table ({tables}); the zip holds: {listed}")
    meta: dict[str, Any] = {}
    if "meta.json" in members:
        meta = _parse_meta(read("meta.json"), f"{name} › meta.json")
    tasks = meta.get("tasks")
    label = f"{name} › {aff_name}"
    data_a = read(aff_name)
    if not data_a.strip():
        raise LabError(f"{label}: the file is empty")
    cols, locate = _parse_table(data_a, "." + aff_name.rsplit(".", 1)[-1].lower(), label)
    aff, order = _read_affinity(cols, locate, label, tasks=tasks)
    metrics = _empty(METRIC_FRAME)
    met_name = pick("metrics")
    if met_name is not None:
        mlabel = f"{name} › {met_name}"
        data_m = read(met_name)
        if data_m.strip():
            mcols, mlocate = _parse_table(data_m, "." + met_name.rsplit(".", 1)[-1].lower(), mlabel)
            metrics = _validate_metrics(mcols, mlocate, mlabel, tasks=tasks)
    groupings = _empty(GROUPING_FRAME)
    if "groupings.jsonl" in members:
        groupings = _parse_groupings(read("groupings.jsonl"), f"{name} › groupings.jsonl", tasks)
    if tasks is None:
        tasks = _first_seen(order, metrics["task"])
    return _assemble(aff, metrics, groupings, meta, list(tasks))


def _read_tensorboard(src: Path | bytes | None, name: str, limit: int) -> ParsedRun:
    from mtl_core.tbimport import (
        read_tensorboard,  # lazy: tensorboard is a heavy import
    )

    return read_tensorboard(src, name, max_bytes=limit)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _known_names(
    cols: dict[str, np.ndarray], known: tuple[str, ...], name: str
) -> dict[str, np.ndarray]:
    """Rename columns that are a known name up to case and surrounding spaces (``" Step"`` ->
    ``step``); every other column (a wide matrix's task names) keeps its name as written."""
    out: dict[str, np.ndarray] = {}
    seen: dict[str, str] = {}
    for c, v in cols.items():
        low = c.strip().lower()
        key = low if low in known else c
        if key in out:
            raise LabError(f"{name}: columns {seen[key]!r} and {c!r} are both {key!r}")
        out[key] = v
        seen[key] = c
    return out


def _check_header(columns: list[str], name: str) -> None:
    seen = set()
    for c in columns:
        if c in seen:
            raise LabError(f"{name}: column {c!r} appears twice")
        seen.add(c)


def _require_columns(
    cols: dict[str, np.ndarray], required: tuple[str, ...], optional: tuple[str, ...], name: str,
    note: str = "",
) -> None:
    """Missing or misnamed columns, with a suggestion when a present column is close."""
    present = list(cols)
    known = set(required) | set(optional)
    unknown = [c for c in present if c not in known]
    for want in required:
        if want in cols:
            continue
        close = _close(want, unknown)
        hint = f"; found {close!r} — rename it to {want!r}" if close else ""
        raise LabError(
            f"{name}: missing column {want!r}{hint} (required: {', '.join(required)}; "
            f"found: {', '.join(map(repr, present)) or 'none'}){note}"
        )
    for c in unknown:  # an extra column is fine unless it looks like a misspelt optional one
        close = _close(c, [o for o in optional if o not in cols])
        if close:
            raise LabError(f"{name}: unknown column {c!r}; did you mean {close!r}?")


def _close(word: str, candidates: list[str]) -> str | None:
    norm = {c.strip().lower().replace(" ", "_").replace("-", "_"): c for c in candidates}
    key = word.lower()
    if key in norm:
        return norm[key]
    hit = difflib.get_close_matches(key, list(norm), n=1, cutoff=0.75)
    return norm[hit[0]] if hit else None


def _fail(name: str, locate: Locate, col: str, rows: np.ndarray, what: str) -> LabError:
    """One message for the first bad row, counting the others."""
    idx = np.flatnonzero(rows)
    more = f" (and {len(idx) - 1} more rows like it)" if len(idx) > 1 else ""
    return LabError(f"{name}: {locate(int(idx[0]))}, column {col!r}: {what(int(idx[0]))}{more}")


def _numbers(
    vals: np.ndarray, col: str, name: str, locate: Locate, *, allow_empty: bool = False
) -> np.ndarray:
    """Values -> float64 exactly; a LabError naming the first non-numeric cell."""
    if vals.dtype != object:
        if vals.dtype.kind in "iuf":
            return vals.astype(np.float64)
        if vals.dtype.kind == "b":
            raise _fail(name, locate, col, np.ones(len(vals), bool), lambda i: "not a number")
    fast = _fast_numbers(vals)
    if fast is not None:
        return fast
    # slow path: empty cells, odd spellings, or an error to locate
    out = np.empty(len(vals), dtype=np.float64)
    bad = np.zeros(len(vals), dtype=bool)
    for k, v in enumerate(vals):
        if isinstance(v, bool):
            bad[k] = True
            continue
        if v is None or (isinstance(v, str) and v == ""):
            if allow_empty:
                out[k] = np.nan
            else:
                bad[k] = True
            continue
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            bad[k] = True
    if bad.any():
        def what(i: int) -> str:
            v = vals[i]
            if v is None or v == "":
                return "is empty"
            return f"{_show(v)} is not a number{_decimal_hint(v)}"

        raise _fail(name, locate, col, bad, what)
    return out


#: A number written with a decimal comma (``0,1``, ``-1,5e-3``, ``1.234,5``), as European
#: spreadsheets write them.
_DECIMAL_COMMA = re.compile(r"[+-]?(\d{1,3}(\.\d{3})+|\d*),\d+([eE][+-]?\d+)?")


def is_decimal_comma(v: Any) -> bool:
    """Whether ``v`` is text of a number written with a decimal comma."""
    return isinstance(v, str) and _DECIMAL_COMMA.fullmatch(v.strip()) is not None


def _decimal_hint(v: Any) -> str:
    return " (use '.' as the decimal point)" if is_decimal_comma(v) else ""


def _fast_numbers(vals: np.ndarray) -> np.ndarray | None:
    """Vectorized exact conversion of an all-number or all-text column, else None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kinds = set(map(type, vals))
    if kinds and kinds <= {float, int, np.float64, np.int64}:
        return np.array(vals.tolist(), dtype=np.float64)  # int/float -> float64 is exact
    if kinds == {str}:
        try:  # Arrow parses decimal text to the correctly rounded double
            return pc.cast(pa.array(vals, type=pa.string()), pa.float64()).to_numpy(
                zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return None


def _steps(vals: np.ndarray, name: str, locate: Locate) -> np.ndarray:
    x = _numbers(vals, "step", name, locate)
    bad = ~np.isfinite(x) | (x != np.floor(np.where(np.isfinite(x), x, 0)))
    if bad.any():
        raise _fail(name, locate, "step", bad,
                    lambda i: f"{_show(vals[i])} is not a whole number (steps are 0, 1, 2, ...)")
    neg = x < 0
    if neg.any():
        raise _fail(name, locate, "step", neg, lambda i: f"{_show(vals[i])} is negative")
    if (x > 2**62).any():
        raise _fail(name, locate, "step", x > 2**62, lambda i: "is too large")
    return x.astype(np.int64)


def _labels(vals: np.ndarray, col: str, name: str, locate: Locate) -> np.ndarray:
    """Non-empty text labels (numbers in JSON/Parquet are accepted and turned into text)."""
    if set(map(type, vals)) == {str}:
        import pyarrow as pa
        import pyarrow.compute as pc

        blank = pc.utf8_length(pc.utf8_trim_whitespace(pa.array(vals, type=pa.string())))
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
            return "is empty" if v is None or v == "" else f"{_show(v)} is not a name"

        raise _fail(name, locate, col, bad, what)
    return out


def _drop_blank_run(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A ``run`` column left blank everywhere means one unnamed run: as if it were absent."""
    run = cols.get("run")
    if run is not None and all(v is None or (isinstance(v, str) and not v.strip()) for v in run):
        cols = {k: v for k, v in cols.items() if k != "run"}
    return cols


def _read_affinity(
    cols: dict[str, np.ndarray], locate: Locate, name: str, tasks: list[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    """The affinity table in the long or the wide (matrix) layout -> (long frame, task order)."""
    from mtl_core.fileformat_wide import read_wide  # it imports this module's helpers

    cols = _known_names(cols, AFFINITY_NAMES, name)
    wide = read_wide(cols, locate, name, tasks)
    if wide is not None:
        return wide
    aff = _validate_affinity(cols, locate, name, tasks)
    return aff, _first_seen(aff["source"], aff["target"])


def _validate_affinity(
    cols: dict[str, np.ndarray], locate: Locate, name: str, tasks: list[str] | None
) -> pd.DataFrame:
    _require_columns(cols, AFFINITY_REQUIRED, AFFINITY_OPTIONAL, name, note=WIDE_NOTE)
    cols = _drop_blank_run(cols)
    n = len(cols["step"])
    step = _steps(cols["step"], name, locate)
    src = _labels(cols["source"], "source", name, locate)
    tgt = _labels(cols["target"], "target", name, locate)
    aff = _numbers(cols["affinity"], "affinity", name, locate)
    nonfinite = ~np.isfinite(aff)
    if nonfinite.any():
        raise _fail(name, locate, "affinity", nonfinite,
                    lambda i: f"{aff[i]} is not a finite number (leave unmeasured cells out)")
    measure = (_labels(cols["measure"], "measure", name, locate) if "measure" in cols
               else np.full(n, DEFAULT_MEASURE, dtype=object))
    run = (_labels(cols["run"], "run", name, locate) if "run" in cols
           else np.full(n, "", dtype=object))
    wall = (_numbers(cols["wall_time"], "wall_time", name, locate, allow_empty=True)
            if "wall_time" in cols else np.full(n, np.nan))
    if "wall_time" in cols and np.isinf(wall).any():
        raise _fail(name, locate, "wall_time", np.isinf(wall), lambda i: "is infinite")
    df = pd.DataFrame(
        {"run": run, "step": step, "measure": measure, "source": src, "target": tgt,
         "affinity": aff, "wall_time": wall},
        columns=AFFINITY_FRAME,
    )
    if tasks is not None:
        known = set(tasks)
        for col in ("source", "target"):
            bad = ~df[col].isin(known).to_numpy()
            if bad.any():
                vals = df[col].to_numpy()
                raise _fail(name, locate, col, bad, lambda i, v=vals: (
                    f"task {v[i]!r} is not in meta.json's task list ({', '.join(tasks)})"))
    key = ["run", "step", "measure", "source", "target"]
    codes = pd.DataFrame({c: pd.factorize(df[c])[0] for c in key})  # hashing ints is fast
    dup = codes.duplicated(keep="first").to_numpy()
    if dup.any():
        gid = codes.groupby(key, sort=False).ngroup().to_numpy()

        def what(i: int) -> str:
            r = df.iloc[i]
            twin = int(np.flatnonzero(gid == gid[i])[0])
            runs = f"run {r['run']!r}, " if r["run"] else ""
            return (f"duplicated cell ({runs}step {r['step']}, measure {r['measure']!r}, "
                    f"{r['source']!r} -> {r['target']!r}), first at {locate(twin)}")

        raise _fail(name, locate, "affinity", dup, what)
    return df


def _validate_metrics(
    cols: dict[str, np.ndarray], locate: Locate, name: str, tasks: list[str] | None
) -> pd.DataFrame:
    cols = _known_names(cols, (*METRIC_REQUIRED, *METRIC_OPTIONAL), name)
    _require_columns(cols, METRIC_REQUIRED, METRIC_OPTIONAL, name)
    cols = _drop_blank_run(cols)
    n = len(cols["step"])
    df = pd.DataFrame(
        {
            "run": (_labels(cols["run"], "run", name, locate) if "run" in cols
                    else np.full(n, "", dtype=object)),
            "step": _steps(cols["step"], name, locate),
            "task": _labels(cols["task"], "task", name, locate),
            "split": _labels(cols["split"], "split", name, locate),
            "metric": _labels(cols["metric"], "metric", name, locate),
            # metric values may be NaN/inf (a diverging loss, an undefined accuracy)
            "value": _numbers(cols["value"], "value", name, locate, allow_empty=True),
        },
        columns=METRIC_FRAME,
    )
    if tasks is not None:
        bad = ~df["task"].isin(set(tasks)).to_numpy()
        if bad.any():
            vals = df["task"].to_numpy()
            raise _fail(name, locate, "task", bad, lambda i: (
                f"task {vals[i]!r} is not in meta.json's task list ({', '.join(tasks)})"))
    key = ["run", "step", "task", "split", "metric"]
    dup = df.duplicated(key, keep="first").to_numpy()
    if dup.any():
        raise _fail(name, locate, "value", dup, lambda i: (
            f"duplicated metric (step {df['step'].iat[i]}, task {df['task'].iat[i]!r}, "
            f"{df['split'].iat[i]}/{df['metric'].iat[i]})"))
    return df


def _parse_meta(data: bytes, name: str) -> dict[str, Any]:
    try:
        meta = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise LabError(f"{name}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise LabError(
            f"{name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(meta, dict):
        raise LabError(f"{name}: must be a JSON object like {{\"tasks\": [\"a\", \"b\"]}}")
    version = meta.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise LabError(f"{name}: format_version {version!r} is newer than this lab reads "
                       f"({FORMAT_VERSION}); update Task Affinity Lab")
    tasks = meta.get("tasks")
    if tasks is not None:
        if not isinstance(tasks, list) or not tasks or not all(
            isinstance(t, str) and t.strip() for t in tasks
        ):
            raise LabError(f"{name}: 'tasks' must be a non-empty list of task names")
        dup = [t for t in dict.fromkeys(tasks) if tasks.count(t) > 1]
        if dup:
            raise LabError(f"{name}: task {dup[0]!r} is listed twice in 'tasks'")
    types = meta.get("task_types", {})
    if not isinstance(types, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in types.items()
    ):
        raise LabError(f"{name}: 'task_types' must map task names to type names")
    if tasks is not None:
        extra = [k for k in types if k not in tasks]
        if extra:
            raise LabError(f"{name}: 'task_types' names {extra[0]!r}, which is not in 'tasks'")
    if "config" in meta and not isinstance(meta["config"], dict):
        raise LabError(f"{name}: 'config' must be a JSON object")
    if "notes" in meta and not isinstance(meta["notes"], str):
        raise LabError(f"{name}: 'notes' must be text")
    if "name" in meta and not isinstance(meta["name"], str):
        raise LabError(f"{name}: 'name' must be text")
    return meta


def _parse_groupings(data: bytes, name: str, tasks: list[str] | None) -> pd.DataFrame:
    rows = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LabError(f"{name}: not UTF-8 text") from None
    for k, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LabError(f"{name}: line {k} is not valid JSON ({exc.msg})") from None
        where = f"{name}: line {k}"
        if not isinstance(rec, dict) or "step" not in rec or "groups" not in rec:
            raise LabError(f'{where}: expected {{"step": 0, "groups": [["a", "b"], ["c"]]}}')
        step = rec["step"]
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step < 0 \
                or step != int(step):
            raise LabError(f"{where}: step {_show(step)} is not a whole number >= 0")
        groups = rec["groups"]
        if not isinstance(groups, list) or not all(
            isinstance(g, list) and g and all(isinstance(t, str) for t in g) for g in groups
        ):
            raise LabError(f"{where}: 'groups' must be a list of non-empty lists of task names")
        if tasks is not None:
            unknown = [t for g in groups for t in g if t not in tasks]
            if unknown:
                raise LabError(f"{where}: task {unknown[0]!r} is not in meta.json's task list")
        run = rec.get("run", "")
        if not isinstance(run, str):
            raise LabError(f"{where}: 'run' must be text")
        rows.append((run, int(step), tuple(frozenset(g) for g in groups)))
    df = pd.DataFrame(rows, columns=GROUPING_FRAME)
    if df.duplicated(["run", "step"]).any():
        raise LabError(f"{name}: a step has two groupings")
    df["step"] = df["step"].astype(np.int64)
    return df


def _assemble(
    aff: pd.DataFrame, metrics: pd.DataFrame, groupings: pd.DataFrame, meta: dict[str, Any],
    tasks: list[str],
) -> ParsedRun:
    runs = _first_seen(aff["run"], metrics["run"], groupings["run"])
    if "" in runs and len(runs) > 1:
        raise LabError("some rows name a run and others do not; fill the run column everywhere")
    declared = bool(meta.get("tasks"))
    types = dict(meta.get("task_types") or {})
    meta = {k: v for k, v in meta.items()
            if k not in ("format", "format_version", "tasks", "task_types")}
    return ParsedRun(
        tasks=list(tasks), task_types=types,
        affinity=aff.reset_index(drop=True), metrics=metrics.reset_index(drop=True),
        groupings=groupings.reset_index(drop=True), meta=meta, runs=runs or [""],
        tasks_declared=declared,
    )


def _first_seen(*cols: Any) -> list[str]:
    """Names in order of first appearance, column by column (sources, then targets, ...).

    Sources first: a row-major export lists every task as a source in task order, so the
    order survives even when some cells were not measured.
    """
    arrays = [np.asarray(c, dtype=object) for c in cols]
    if not arrays:
        return []
    return [str(v) for v in pd.unique(np.concatenate(arrays))]  # order of first appearance


def _empty(columns: list[str]) -> pd.DataFrame:
    dtypes = {"run": object, "step": np.int64, "measure": object, "source": object,
              "target": object, "affinity": np.float64, "wall_time": np.float64,
              "task": object, "split": object, "metric": object, "value": np.float64,
              "groups": object}
    return pd.DataFrame({c: pd.Series([], dtype=dtypes[c]) for c in columns})


def _show(v: Any) -> str:
    s = repr(v) if isinstance(v, str) else str(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _short(exc: BaseException) -> str:
    s = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return s if len(s) <= 160 else s[:157] + "..."


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"
