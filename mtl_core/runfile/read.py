"""Reading a run file: :func:`read_run_file`, the one entry every reader of the lab goes through.

The CLI's ``import`` and ``group``, the app's upload page and :func:`read_table` all call it,
so a file reads the same, and fails with the same message, wherever it is opened. The file's
name picks the container:

- ``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``, ``.json``: the affinity table alone, long or
  wide (:mod:`mtl_core.runfile.tables`, :mod:`mtl_core.runfile.layout`);
- ``.zip``: a bundle with metrics, groupings and metadata (:mod:`mtl_core.runfile.bundle`);
- ``.npy``, ``.npz``: NumPy matrices (:mod:`mtl_core.runfile.arrays`);
- ``*tfevents*`` files and folders of them: TensorBoard logs
  (:mod:`mtl_core.runfile.tensorboard`).

Every problem raises one ``LabError`` line starting ``cannot import <file>: ``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile.arrays import read_array_file
from mtl_core.runfile.bundle import read_bundle
from mtl_core.runfile.layout import read_affinity
from mtl_core.runfile.messages import over_limit
from mtl_core.runfile.model import ParsedRun, affinity_only
from mtl_core.runfile.schema import (
    AFFINITY_COLUMNS,
    ARRAY_EXTENSIONS,
    READ_EXTENSIONS,
    max_file_bytes,
)
from mtl_core.runfile.tables import parse_table
from mtl_core.runfile.tensorboard import read_tensorboard

#: What every reader error starts with.
PREFIX = "cannot import "
_TFEVENTS = ".tfevents"


def read_run_file(
    source: str | Path | bytes,
    filename: str | None = None,
    *,
    max_bytes: int | None = None,
) -> ParsedRun:
    """Read and fully validate a run file.

    Parameters
    ----------
    source : a path (a file, or a folder of TensorBoard event files), or the file's bytes
        (e.g. from ``st.file_uploader(...).getvalue()``).
    filename : the file's name, which selects the container; defaults to the path's name.
    max_bytes : size limit in bytes; defaults to :func:`max_file_bytes`
        (``MTL_LAB_MAX_FILE_MB``).

    Returns
    -------
    The validated :class:`ParsedRun` (affinity rows = sources: ``A[i, j]`` is source i onto
    target j).

    Raises
    ------
    LabError
        One line, ``"cannot import <file>: <what is wrong and where>"``.
    """
    try:
        return _read(source, filename, max_bytes)
    except LabError as exc:
        msg = str(exc)
        raise LabError(msg if msg.startswith(PREFIX) else PREFIX + msg) from None


def _read(source: str | Path | bytes, filename: str | None, max_bytes: int | None) -> ParsedRun:
    limit = max_file_bytes() if max_bytes is None else int(max_bytes)
    path: Path | None = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data: bytes | None = bytes(source)
        name = filename or "upload"
        size = len(data)
    else:
        path = Path(source)
        name = filename or path.name
        if not path.exists():
            raise LabError(f"{path}: file not found")
        if path.is_dir():
            return read_tensorboard(path, name, max_bytes=limit)
        size = path.stat().st_size
        data = None
    ext = _TFEVENTS if "tfevents" in name else Path(name).suffix.lower()
    _check_file(name, ext, size, limit)
    if ext == _TFEVENTS:
        return read_tensorboard(path if data is None else data, name, max_bytes=limit)
    if data is None:
        data = path.read_bytes()  # type: ignore[union-attr]
    if ext == ".zip":
        return read_bundle(data, name, limit)
    if ext in ARRAY_EXTENSIONS:
        return affinity_only(*read_array_file(data, ext, name, limit))
    cols, locate = parse_table(data, ext, name)
    return affinity_only(*read_affinity(cols, locate, name, tasks=None))


def _check_file(name: str, ext: str, size: int, limit: int) -> None:
    """Refuse an unknown extension, a file over the size limit, and an empty file."""
    if ext not in (*READ_EXTENSIONS, _TFEVENTS):
        raise LabError(
            f"{name}: unsupported file type {ext or '(no extension)'}; use "
            f"{', '.join(READ_EXTENSIONS)} or a TensorBoard event file (events.out.tfevents.*)"
        )
    if size > limit:
        raise over_limit(name, "the file is", size, limit)
    if size == 0:
        raise LabError(f"{name}: the file is empty")


def read_table(path: str | Path) -> pd.DataFrame:
    """The affinity table of a run file as a plain long-form frame (read by
    :func:`read_run_file`, so fully validated).

    Columns: ``step, source, target, affinity, measure`` (as ``write_table`` writes a
    training log), then ``run`` when the file holds several runs and ``wall_time`` when any
    was logged; rows in file order (a matrix: row-major, rows = sources).

    Raises
    ------
    LabError
        Whatever :func:`read_run_file` raises.
    """
    parsed = read_run_file(path)
    aff = parsed.affinity
    cols = list(AFFINITY_COLUMNS)
    if parsed.runs != [""]:
        cols.append("run")
    if aff["wall_time"].notna().any():
        cols.append("wall_time")
    return aff[cols].reset_index(drop=True)
