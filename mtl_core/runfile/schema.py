"""What a run file holds: format name and version, column names, containers, size limit.

Plain names only (no parsing), so every other module of :mod:`mtl_core.runfile` can import
them without an import cycle. Direction everywhere: ``affinity`` in row ``(source, target)``
is ``A[i, j]`` with ``i = source``, ``j = target`` (rows = sources).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

# one definition, below both this package and the store (mtl_core.measures); re-exported here
from mtl_core.measures import DEFAULT_MEASURE as DEFAULT_MEASURE

FORMAT_NAME = "task-affinity-lab/run"
FORMAT_VERSION = 1

AFFINITY_COLUMNS = ["step", "source", "target", "affinity", "measure"]  # minimal log (CLI)
AFFINITY_REQUIRED = ("step", "source", "target", "affinity")
AFFINITY_OPTIONAL = ("measure", "run", "wall_time")
METRIC_REQUIRED = ("step", "task", "split", "metric", "value")
METRIC_OPTIONAL = ("run",)
#: Names the affinity table's reader knows (long form, plus the wide layout's row-label column):
#: matched ignoring case and surrounding spaces. A wide matrix's task columns keep their case.
AFFINITY_NAMES = (*AFFINITY_REQUIRED, *AFFINITY_OPTIONAL, "task")

#: Canonical column order of ``ParsedRun`` frames.
AFFINITY_FRAME = ["run", "step", "measure", "source", "target", "affinity", "wall_time"]
METRIC_FRAME = ["run", "step", "task", "split", "metric", "value"]
GROUPING_FRAME = ["run", "step", "groups"]
_DTYPES = {
    "run": object,
    "step": np.int64,
    "measure": object,
    "source": object,
    "target": object,
    "affinity": np.float64,
    "wall_time": np.float64,
    "task": object,
    "split": object,
    "metric": object,
    "value": np.float64,
    "groups": object,
}

#: Table containers the lab writes (and reads).
TABLE_EXTENSIONS = (".csv", ".parquet", ".jsonl")
#: Table containers the lab reads, alone or inside a zip: also tab-separated text and a JSON
#: array of row objects, as other tools write them.
READ_TABLE_EXTENSIONS = (".csv", ".tsv", ".parquet", ".jsonl", ".json")
#: Delimited text read only as a file of its own (R's ``write.table`` default extension):
#: never picked from a folder or bundle, where a ``.txt`` is usually notes.
TEXT_EXTENSIONS = (".txt",)
#: NumPy matrices (:mod:`mtl_core.runfile.arrays`), read as a file of their own.
ARRAY_EXTENSIONS = (".npy", ".npz")
#: What ``write_run_file`` writes.
FILE_EXTENSIONS = (*TABLE_EXTENSIONS, ".zip")
#: What ``read_run_file`` reads (plus TensorBoard event files and log folders).
READ_EXTENSIONS = (*READ_TABLE_EXTENSIONS, *TEXT_EXTENSIONS, *ARRAY_EXTENSIONS, ".zip")


def run_name(file_name: str) -> str:
    """The default name of a run read from ``file_name`` (the Upload page and ``import``
    alike): the file name without a known extension (``a.csv`` -> ``a``); a TensorBoard file
    keeps its whole name (``events.out.tfevents.1796067895.vm.11421.0`` and ``...11421.2``
    from one folder must not both become ``events.out.tfevents.1796067895.vm.11421``)."""
    low = file_name.lower()
    for ext in (*READ_EXTENSIONS, ".txt", ".tfevents"):
        if low.endswith(ext) and len(file_name) > len(ext):
            return file_name[: -len(ext)]
    return file_name


#: CSV delimiters told apart by the header line, in order of preference on a tie.
DELIMITERS = (",", ";", "\t")

DEFAULT_MAX_MB = 200.0
#: The environment variable that raises (or lowers) the size limit, in megabytes.
MAX_MB_VARIABLE = "MTL_LAB_MAX_FILE_MB"


def max_file_bytes() -> int:
    """Upload/import size limit in bytes: ``MTL_LAB_MAX_FILE_MB`` (megabytes) or 200 MB.

    An unreadable value falls back to the default rather than failing an upload.
    """
    raw = os.environ.get(MAX_MB_VARIABLE, "")
    try:
        mb = float(raw) if raw else DEFAULT_MAX_MB
    except ValueError:
        mb = DEFAULT_MAX_MB
    return int(mb * 1024 * 1024)


def empty_frame(columns: list[str]) -> pd.DataFrame:
    """An empty frame with ``columns`` (from the ``*_FRAME`` lists) in their canonical dtypes."""
    return pd.DataFrame({c: pd.Series([], dtype=_DTYPES[c]) for c in columns})
