"""The open file format for logged affinity runs: read, validate, write. Torch-free.

A run file holds a long-form **affinity table** (one row per measured cell), optionally a
long-form **metrics table**, a **groupings** list and a JSON **metadata** part. Direction:
``affinity`` is the effect of an update on ``source``'s loss on ``target``'s loss (positive =
helps), i.e. ``A[i, j]`` with ``i = source``, ``j = target`` (rows = sources). The full
specification, with examples, is docs/run-format.md.

One entry point reads everything, for the CLI and the app's upload page alike::

    parsed = read_run_file(path_or_bytes, filename)   # -> ParsedRun, or LabError

Every problem raises one ``LabError`` naming what is wrong and where (file, row, column).
Nothing is unpickled: CSV and JSON are parsed as text, Parquet by pyarrow without pandas
metadata objects, NumPy files with ``allow_pickle=False``.

Modules, one job each (lower ones never import higher ones):

- ``schema``: format name and version, column names, containers, the size limit;
- ``messages``: how a problem is worded (row/column places, sizes, did-you-mean);
- ``cells``: cells checked and converted (numbers, steps, names);
- ``long``: long form <-> matrices of one measure (picked by :func:`mtl_core.measures.pick_measure`,
  the rule the store uses too); the mean over steps;
- ``model``: :class:`ParsedRun`;
- ``tables``: CSV/TSV, JSON Lines, JSON, Parquet bytes <-> columns;
- ``validate``: the long layout's affinity and metrics tables;
- ``wide``: the square-matrix layouts;
- ``layout``: which of the two an affinity table is in;
- ``arrays``: NumPy ``.npy``/``.npz``; ``tensorboard``: event files; ``bundle``: ``.zip``;
- ``encoding``: text encodings; ``json_layouts``: matrices saved as JSON objects;
- ``report``: :class:`ReadOptions` (what the user declares) and the read's notes;
- ``tfrecord``: event-file records and CRCs; ``tb_conventions``: TensorBoard tag conventions;
- ``read``: :func:`read_run_file`; ``write``: :func:`write_run_file` and friends.
"""

from mtl_core.measures import pick_measure
from mtl_core.runfile.cells import is_decimal_comma
from mtl_core.runfile.long import (
    affinity_rows,
    first_seen,
    long_to_matrices,
    matrices_to_long,
    mean_matrix,
    measure_matrices,
    step_mean,
)
from mtl_core.runfile.model import ParsedRun
from mtl_core.runfile.read import read_run_file, read_table
from mtl_core.runfile.report import ReadOptions, left_out_text
from mtl_core.runfile.schema import (
    AFFINITY_COLUMNS,
    AFFINITY_FRAME,
    ARRAY_EXTENSIONS,
    DEFAULT_MEASURE,
    FILE_EXTENSIONS,
    FORMAT_NAME,
    FORMAT_VERSION,
    GROUPING_FRAME,
    METRIC_FRAME,
    READ_EXTENSIONS,
    READ_TABLE_EXTENSIONS,
    TABLE_EXTENSIONS,
    max_file_bytes,
)
from mtl_core.runfile.tensorboard import tag_for
from mtl_core.runfile.write import (
    check_out_path,
    dropped_parts,
    prepare_out_path,
    run_file_bytes,
    write_run_file,
    write_table,
)

__all__ = [
    "AFFINITY_COLUMNS",
    "AFFINITY_FRAME",
    "ARRAY_EXTENSIONS",
    "DEFAULT_MEASURE",
    "FILE_EXTENSIONS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "GROUPING_FRAME",
    "METRIC_FRAME",
    "READ_EXTENSIONS",
    "READ_TABLE_EXTENSIONS",
    "TABLE_EXTENSIONS",
    "ParsedRun",
    "ReadOptions",
    "affinity_rows",
    "check_out_path",
    "dropped_parts",
    "first_seen",
    "is_decimal_comma",
    "left_out_text",
    "long_to_matrices",
    "matrices_to_long",
    "max_file_bytes",
    "mean_matrix",
    "measure_matrices",
    "pick_measure",
    "prepare_out_path",
    "read_run_file",
    "read_table",
    "run_file_bytes",
    "step_mean",
    "tag_for",
    "write_run_file",
    "write_table",
]
