"""How much one run file may ask for: tasks and affinity-matrix cells, checked before allocating.

A small file can describe a huge run: 3,000 rows naming 3,000 tasks at 3,000 steps ask whoever
views the run for ``3000 x 3000 x 3000`` matrix cells (201 GiB as float64); a 150 KB ``.npz``
of zeros unpacks to a 4,400-task matrix. In the app every read runs inside the one shared
server process, so the readers check these counts from headers and counts (a ``.npy`` header's
shape, ``meta.json``'s task list, the distinct steps and tasks of a parsed table) before any
matrix is built, and refuse with the limit and how to raise it:

- :func:`max_tasks`: tasks in one run (``MTL_LAB_MAX_TASKS``, default 1,000);
- :func:`max_cells`: matrix cells of one run and measure, ``steps x tasks x tasks``
  (``MTL_LAB_MAX_CELLS``, default 2,000,000: 16 MB as one float64 array, 140 tasks
  at 100 steps or 20 tasks at 5,000 steps; reading and importing that many costs about
  half a gigabyte);
- :func:`max_runs`: runs in one file (``MTL_LAB_MAX_RUNS``, default 100): a 79 KB CSV can name
  5,000 one-cell runs, and every run costs the preview, the import and the store a fixed
  amount, so 5,000 of them held the server for minutes;
- :func:`max_tags`: distinct tags in one TensorBoard event file (``MTL_LAB_MAX_TAGS``,
  default 50,000: a 223-task matrix logged as one tag per pair); each tag costs a series of
  its own while the file is scanned, so 100,000 of them in a 6 MB file took 84 s to refuse;
- :data:`MAX_META_BYTES`: a bundle's ``meta.json`` (names, config, notes) is at most 1 MB,
  checked from the zip's directory before the member is unpacked or parsed.

The counts are environment variables (for the app: set them where the server starts); ``0`` lifts a
limit. The file-size limit is :func:`mtl_core.runfile.schema.max_file_bytes`.
"""

from __future__ import annotations

import os

import pandas as pd

from mtl_core.errors import LabError

TASKS_VARIABLE = "MTL_LAB_MAX_TASKS"
CELLS_VARIABLE = "MTL_LAB_MAX_CELLS"
DEFAULT_MAX_TASKS = 1_000
DEFAULT_MAX_CELLS = 2_000_000
RUNS_VARIABLE = "MTL_LAB_MAX_RUNS"
DEFAULT_MAX_RUNS = 100
TAGS_VARIABLE = "MTL_LAB_MAX_TAGS"
DEFAULT_MAX_TAGS = 50_000
#: Largest ``meta.json`` a bundle may hold (bytes, unpacked): a run's names, config and notes
#: take kilobytes; 150 MB of spaces took 42 s to parse in the shared server.
MAX_META_BYTES = 1_000_000


def max_tasks() -> int | None:
    """Most tasks one run may have (``MTL_LAB_MAX_TASKS``; None = no limit)."""
    return _env_int(TASKS_VARIABLE, DEFAULT_MAX_TASKS)


def max_cells() -> int | None:
    """Most matrix cells (steps x tasks x tasks) of one run and measure
    (``MTL_LAB_MAX_CELLS``; None = no limit)."""
    return _env_int(CELLS_VARIABLE, DEFAULT_MAX_CELLS)


def max_runs() -> int | None:
    """Most runs one file may hold (``MTL_LAB_MAX_RUNS``; None = no limit)."""
    return _env_int(RUNS_VARIABLE, DEFAULT_MAX_RUNS)


def max_tags() -> int | None:
    """Most distinct tags one TensorBoard event file may hold (``MTL_LAB_MAX_TAGS``;
    None = no limit)."""
    return _env_int(TAGS_VARIABLE, DEFAULT_MAX_TAGS)


def check_tags_count(n: int, name: str) -> None:
    """Refuse an event file once its scan meets more than :func:`max_tags` distinct tags
    (called as each new tag appears, so the refusal costs at most that many).

    Raises ``LabError`` naming the limit and ``MTL_LAB_MAX_TAGS``.
    """
    limit = max_tags()
    if limit is not None and n > limit:
        raise LabError(
            f"{name}: more than {limit:,} distinct tags (a run of n tasks logs n x n "
            f"affinity tags); raise the limit with {TAGS_VARIABLE}"
        )


def check_runs_count(n: int, name: str) -> None:
    """Refuse a file of more than :func:`max_runs` runs, counted from its run labels before
    any per-run work (preview, matrices, import). ``name`` may be ``""`` (the caller
    prefixes the file's name).

    Raises ``LabError`` naming the count, the limit and ``MTL_LAB_MAX_RUNS``.
    """
    limit = max_runs()
    if limit is not None and n > limit:
        raise LabError(
            f"{name + ': ' if name else ''}{n:,} runs, over the limit of {limit:,} runs per file "
            f"(split the file, or raise it with {RUNS_VARIABLE})"
        )


def check_member_size(size: int, name: str, limit: int = MAX_META_BYTES) -> None:
    """Refuse a zip member (``meta.json``) whose unpacked size, as the zip's directory
    declares it, is over ``limit`` bytes, before it is unpacked or parsed (the unpacking
    stops at the declared size too, so a lying directory cannot pass more).

    Raises ``LabError``.
    """
    if size > limit:
        raise LabError(
            f"{name}: {size:,} bytes, over the {limit:,} bytes a meta.json may hold (it holds "
            "task names, the config and notes)"
        )


def _env_int(variable: str, default: int) -> int | None:
    """A whole-number setting; an unreadable value falls back to the default (as the size
    limit does), 0 means no limit."""
    raw = os.environ.get(variable, "").strip().replace("_", "")
    try:
        value = int(float(raw)) if raw else default
    except (ValueError, OverflowError):
        value = default
    return None if value <= 0 else value


def check_tasks_count(n: int, name: str) -> None:
    """Refuse a run of more than :func:`max_tasks` tasks.

    Raises ``LabError`` naming the count, the limit and ``MTL_LAB_MAX_TASKS``.
    """
    limit = max_tasks()
    if limit is not None and n > limit:
        raise LabError(
            f"{name}: {n:,} tasks, over the limit of {limit:,} tasks per run "
            f"(raise it with {TASKS_VARIABLE})"
        )


def check_cells(steps: int, n: int, name: str, where: str = "") -> None:
    """Refuse ``steps`` matrices of ``n x n`` tasks over :func:`max_cells` (and ``n`` over
    :func:`max_tasks`). ``where`` names a run or an array (``"run 'a', "``).

    Raises ``LabError`` naming the counts, the limit and the variable that raises it.
    """
    check_tasks_count(n, name)
    limit = max_cells()
    cells = int(steps) * int(n) * int(n)
    if limit is not None and cells > limit:
        raise LabError(
            f"{name}: {where}{steps:,} step{'' if steps == 1 else 's'} x {n:,} x {n:,} tasks = "
            f"{cells:,} matrix cells, "
            f"over the limit of {limit:,} (raise it with {CELLS_VARIABLE})"
        )


#: Columns a table may hold besides one per task (long-form names, row labels, an index).
EXTRA_COLUMNS = 16
#: Values a JSON document may hold per matrix cell (a row object's step, names, value, ...).
JSON_VALUES_PER_CELL = 8


def check_rows(rows: int, name: str, what: str = "rows") -> None:
    """Refuse a table of more rows (lines, records) than a run may hold matrix cells
    (:func:`max_cells`; every row holds at least one cell), counted before its values are
    converted: a compressed container (a zip member, a Parquet column) can unpack to far
    more rows than its bytes suggest.

    Raises ``LabError`` naming the count, the limit and ``MTL_LAB_MAX_CELLS``.
    """
    limit = max_cells()
    if limit is not None and rows > limit:
        raise LabError(
            f"{name}: {rows:,} {what}, more than the {limit:,} matrix cells a run may hold "
            f"(raise it with {CELLS_VARIABLE})"
        )


def check_lines(data: bytes, name: str) -> None:
    """Refuse a text table of more lines than a run may hold cells, counted in its bytes
    before they are decoded or parsed (``\n``, ``\r\n`` and an old Mac's ``\r``; a line is at
    most one row).

    Raises ``LabError`` naming the count, the limit and ``MTL_LAB_MAX_CELLS``.
    """
    limit = max_cells()
    if limit is None:  # no limit: nothing to count
        return
    # every line end: \n, \r\n and an old Mac's lone \r, alone or mixed
    lines = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    if limit is not None and lines > limit + 1:  # a header line besides a row per cell
        raise LabError(
            f"{name}: {lines:,} lines, more than the {limit:,} matrix cells a run may hold "
            f"(raise it with {CELLS_VARIABLE})"
        )


#: Files a zip (a bundle, an ``.npz``) may hold: a run needs a handful.
MAX_MEMBERS = 1_000


#: Files a log folder (or a zipped one) may hold: an MLflow experiment keeps one file per
#: metric per run (400 for 20 tasks), a Hydra multirun a few per job.
MAX_FOLDER_FILES = 20_000


def check_folder_files(count: int, name: str) -> None:
    """Refuse a log folder (or a zipped one) of more than :data:`MAX_FOLDER_FILES` files,
    before any is read.

    Raises ``LabError``.
    """
    if count > MAX_FOLDER_FILES:
        raise LabError(
            f"{name}: holds {count:,} files; a log folder may hold at most {MAX_FOLDER_FILES:,}"
        )


def check_zip_members(data: bytes, name: str, *, folder: bool = False) -> None:
    """Refuse a zip whose central directory lists more than :data:`MAX_MEMBERS` files
    (:data:`MAX_FOLDER_FILES` for a zipped log folder), counted in its bytes before
    ``zipfile`` builds an object per entry (a 200 MB zip can list millions of empty files).

    Raises ``LabError``.
    """
    entries = data.count(b"PK\x01\x02")  # central-directory headers (an upper bound)
    if folder:
        check_folder_files(entries, name)
    elif entries > MAX_MEMBERS:
        raise LabError(
            f"{name}: lists about {entries:,} files; a run file holds a few (affinity, "
            f"metrics, groupings, meta.json; an .npz: affinity, tasks, steps), at most "
            f"{MAX_MEMBERS:,}"
        )


def check_columns(columns: int, name: str) -> None:
    """Refuse a table header of more columns than a run may have tasks (plus a few for the
    long form's and a matrix's other columns), before the table is read.

    Raises ``LabError`` naming the count, the limit and ``MTL_LAB_MAX_TASKS``.
    """
    limit = max_tasks()
    if limit is not None and columns > limit + EXTRA_COLUMNS:
        raise LabError(
            f"{name}: {columns:,} columns, more than a run's {limit:,} tasks "
            f"(raise it with {TASKS_VARIABLE})"
        )


def check_json_size(data: bytes, name: str) -> None:
    """Refuse a JSON document with far more values than a run may hold cells, before it is
    decoded and parsed (each value becomes a Python object): its commas bound its values
    from below.

    Raises ``LabError`` naming the count, the limit and ``MTL_LAB_MAX_CELLS``.
    """
    limit = max_cells()
    if limit is None:
        return
    commas = data.count(b",")
    if commas > JSON_VALUES_PER_CELL * limit:
        raise LabError(
            f"{name}: about {commas:,} JSON values, more than {JSON_VALUES_PER_CELL} per "
            f"matrix cell for the {limit:,} cells a run may hold (raise it with "
            f"{CELLS_VARIABLE})"
        )


def check_table_cells(
    rows: int,
    columns: int,
    name: str,
    *,
    words: tuple[str, str, str] = ("rows", "columns", "matrix cells"),
) -> None:
    """Refuse a table of ``rows x columns`` cells to be built from a sparser source (a JSON
    object of objects, a ground-truth table's networks x tasks) over :func:`max_cells`, or
    with more task columns than :func:`max_tasks`. ``words`` name the rows, the columns and
    the cells in the message.

    Raises ``LabError`` naming the counts, the limit and the variable that raises it.
    """
    check_tasks_count(columns, name)
    limit = max_cells()
    if limit is not None and rows * columns > limit:
        r, c, cells = words
        raise LabError(
            f"{name}: {rows:,} {r} x {columns:,} {c} = {rows * columns:,} {cells}, "
            f"over the limit of {limit:,} (raise it with {CELLS_VARIABLE})"
        )


def check_run_sizes(
    affinity: pd.DataFrame, metrics: pd.DataFrame, tasks: list[str], declared: bool, name: str
) -> None:
    """Refuse a parsed file whose runs would need matrices over the limits: per run and
    measure, distinct steps x tasks of that run squared (the declared task list when
    ``declared``). Counts only: nothing dense is built.

    ``affinity``/``metrics``: frames in ``AFFINITY_FRAME``/``METRIC_FRAME`` columns.
    """
    check_tasks_count(len(tasks), name)
    limit = max_cells()
    if not len(affinity) or limit is None:
        return
    # an upper bound first (all steps x all tasks squared), so a file well inside the limit
    # costs one hash of its step column; the exact count per run only when it is needed
    n_steps = len(pd.unique(affinity["step"].to_numpy()))
    if n_steps * len(tasks) ** 2 <= limit:
        return
    steps = affinity.groupby(["run", "measure"], sort=False)["step"].nunique()
    per_run = steps.groupby(level=0, sort=False).max()
    if declared:
        counts = pd.Series(len(tasks), index=per_run.index)
    else:
        names = pd.concat(
            [
                pd.DataFrame({"run": affinity["run"], "t": affinity["source"]}),
                pd.DataFrame({"run": affinity["run"], "t": affinity["target"]}),
                pd.DataFrame({"run": metrics["run"], "t": metrics["task"]}),
            ],
            ignore_index=True,
        )
        counts = names.groupby("run", sort=False)["t"].nunique()
    for run, s in per_run.items():
        where = f"run {run!r}: " if run else ""
        check_cells(int(s), int(counts.get(run, 0)), name, where)
