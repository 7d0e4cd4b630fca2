"""Reading a run file: :func:`read_run_file`, the one entry every reader of the lab goes through.

The CLI's ``import`` and ``group``, the app's upload page and :func:`read_table` all call it,
so a file reads the same, and fails with the same message, wherever it is opened. The file's
name picks the container:

- ``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``, ``.json``: the affinity table alone, long or
  wide (:mod:`mtl_core.runfile.tables`, :mod:`mtl_core.runfile.layout`);
- ``.zip``: a bundle with metrics, groupings and metadata (:mod:`mtl_core.runfile.bundle`);
- ``.npy``, ``.npz``: NumPy matrices (:mod:`mtl_core.runfile.arrays`);
- ``*tfevents*`` files: TensorBoard logs (:mod:`mtl_core.runfile.tensorboard`);
- a folder, or a ``.zip`` that is a zipped folder rather than a bundle: the runs inside
  (MLflow runs, tracker tables, event files; :mod:`mtl_core.runfile.folders`).

Every problem raises one ``LabError`` line starting ``cannot import <file>: ``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile.arrays import read_array_file
from mtl_core.runfile.bounds import check_run_sizes
from mtl_core.runfile.bundle import read_bundle
from mtl_core.runfile.cells import check_names
from mtl_core.runfile.folders import read_folder, read_tree, zip_tree
from mtl_core.runfile.layout import read_affinity
from mtl_core.runfile.messages import one_line, over_limit
from mtl_core.runfile.model import ParsedRun, affinity_only
from mtl_core.runfile.report import ReadOptions, collecting, json_object_text
from mtl_core.runfile.schema import (
    AFFINITY_COLUMNS,
    ARRAY_EXTENSIONS,
    READ_EXTENSIONS,
    max_file_bytes,
)
from mtl_core.runfile.tables import parse_table
from mtl_core.runfile.tensorboard import read_tensorboard
from mtl_core.runfile.threads import arrow_threads
from mtl_core.runfile.units import (
    canonical_measure,
    convert_affinity,
    impossible_count,
    rename_measures,
    unit_factor,
)

_log = logging.getLogger(__name__)
#: What every reader error starts with.
PREFIX = "cannot import "
#: The last net's words, for a failure no reader guard named (never expected).
UNREADABLE = "the file could not be read (an unexpected reader failure; please report it)"
_TFEVENTS = ".tfevents"
#: What a read that ran out of memory says.
OUT_OF_MEMORY = "reading it ran out of memory"


class ReadMemoryError(LabError):
    """A read ran out of memory (a ``LabError``: one line, ``cannot import <file>: ...``)."""


#: How libraries say they ran out of memory without a ``MemoryError`` (Arrow's C++ pool, a
#: thread pool that cannot get a stack under ``RLIMIT_AS``).
_MEMORY_WORDS = (
    "out of memory",
    "cannot allocate",
    "failed to allocate",
    "bad_alloc",
    "malloc",
    "failed to launch worker thread",
)


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says the process ran out of memory: a ``MemoryError`` (Arrow's
    ``ArrowMemoryError`` is one), or a library's words for it (:data:`_MEMORY_WORDS`)."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or any(w in text for w in _MEMORY_WORDS)


def read_run_file(
    source: str | Path | bytes,
    filename: str | None = None,
    *,
    max_bytes: int | None = None,
    rows: str | None = None,
    measure: str | None = None,
    tag_pattern: str | None = None,
    unit: str | None = None,
    threads: bool = False,
) -> ParsedRun:
    """Read and fully validate a run file.

    Parameters
    ----------
    source : a path (a file, or a folder of TensorBoard event files), or the file's bytes
        (e.g. from ``st.file_uploader(...).getvalue()``).
    filename : the file's name, which selects the container; defaults to the path's name.
    max_bytes : size limit in bytes; defaults to :func:`max_file_bytes`
        (``MTL_LAB_MAX_FILE_MB``).
    rows : ``"source"`` or ``"target"``: which way a matrix's rows run, as the user declares
        it (``--rows``, the Upload page's toggle); None = as the file says (a corner cell
        ``target``/``recipient``/``source``), else sources. Never guessed.
    measure : the measure of a file that names none (no ``measure`` column, a matrix, an
        array); None = ``lookahead``, and ``ParsedRun.measure_assumed`` says so.
    tag_pattern : a TensorBoard tag pattern such as ``aff/{source}->{target}``; None = the
        known conventions (docs/run-format.md). It applies to tracker keys and table columns
        too.
    unit : the unit of the file's affinity values (``fraction``, ``percent``,
        ``tag-lr:LR``; :mod:`mtl_core.runfile.units`), converted to the lab's fractions;
        None = fraction. Values impossible for their measure (a lookahead above 1) are
        counted in a note either way.
    threads : let Arrow parse on its thread pool (CSV blocks, Parquet columns): the CLI's
        ``import``, a process that reads one file and exits. False (the default) keeps the
        read on the calling thread, as the app's capped upload child needs
        (:mod:`mtl_core.runfile.threads` says why). The result is the same either way.

    Returns
    -------
    The validated :class:`ParsedRun` (affinity rows = sources: ``A[i, j]`` is source i onto
    target j), with its ``notes`` and the count of non-finite cells it left out as
    unmeasured (``left_out``, ``first_left_out``).

    Raises
    ------
    LabError
        One line, ``"cannot import <file>: <what is wrong and where>"``
        (:class:`ReadMemoryError` when the read ran out of memory).
    """
    factor = unit_factor(unit)  # a bad unit fails before the file is read
    if measure is not None:
        measure = canonical_measure(measure)
    options = ReadOptions(rows=rows, measure=measure, tag_pattern=tag_pattern)
    raw = isinstance(source, (bytes, bytearray, memoryview))
    name = filename or ("upload" if raw else Path(source).name)
    try:
        with collecting() as report, arrow_threads(threads):
            parsed = _read(source, filename, max_bytes, options)
            check_parsed(parsed, name)
            if tag_pattern is not None and not report.pattern_used:
                raise LabError(
                    f"{name}: the tag pattern {tag_pattern!r} named no cell: it is for "
                    "TensorBoard tags, tracker keys and per-step table columns, and this "
                    "file names its cells itself (drop the pattern)"
                )
    except LabError as exc:
        msg = str(exc)
        if not msg.startswith(PREFIX):
            msg = PREFIX + (msg if msg.startswith(name) else f"{name}: {msg}")
        raise LabError(one_line(msg)) from None
    except Exception as exc:  # noqa: BLE001
        if out_of_memory(exc):
            # a read within the limits fits in a few hundred MB; a process with a memory cap
            # (an upload read in the app: mtl_core.runner.upload_read) words this with its cap
            raise ReadMemoryError(one_line(f"{PREFIX}{name}: {OUT_OF_MEMORY}")) from None
        # The last net, so no upload ever ends in a traceback (or "something went wrong" in
        # the shared app): every failure a file can cause is guarded at its root in the
        # readers, and the generated-corpus test asserts this line is never reached.
        _log.debug("reader failure on %s", name, exc_info=True)
        raise LabError(one_line(f"{PREFIX}{name}: {UNREADABLE} ({type(exc).__name__})")) from None
    parsed.affinity, named = rename_measures(parsed.affinity)
    if measure is not None and not report.measure_assumed and options.measure:
        _check_measure_applies(parsed, measure)
    if report.percent:
        if factor != 1.0:
            raise LabError(
                f"{PREFIX}{name}: its values are written with '%' and were read as percent "
                f"already; drop --unit {str(unit).strip().lower()} (or the Upload unit choice)"
            )
        named.append("values written as percent ('4.1%') read as fractions (4.1% = 0.041)")
    if factor != 1.0:
        parsed.affinity = convert_affinity(parsed.affinity, unit)
        declared = str(unit).strip().lower()
        named.append(f"values declared in {declared}: multiplied by {factor:g} to fractions")
    n_bad, bad_text = impossible_count(parsed.affinity)
    parsed.notes = list(report.notes) + named + ([bad_text] if n_bad else [])
    if report.json_object:  # first: the one reading a square JSON matrix cannot show itself
        parsed.notes = [
            json_object_text(rows, *_orientation_example(parsed.affinity, parsed.tasks))
        ] + [n for n in parsed.notes if not n.startswith("rows are targets (declared)")]
        parsed.json_object = True
    parsed.left_out = report.left_out
    parsed.first_left_out = report.first_left_out
    parsed.measure_assumed = report.measure_assumed
    parsed.is_matrix = report.matrix
    return parsed


def _orientation_example(
    aff: pd.DataFrame, tasks: list[str]
) -> tuple[tuple[str, str, float] | None, bool, int, int | None]:
    """``(an off-diagonal cell (source, target, value), whether every matrix is symmetric,
    how many matrices (run, measure, step) the file held, the cell's step)``: what the JSON
    object note shows its reading with. The cell is the first asymmetric one in task order
    (row, then column) of the first matrix holding one (else the first matrix's first
    off-diagonal cell), so both readings show the same pair; each matrix was read the same
    way round, so one cell shows the reading of all."""
    rank = {t: k for k, t in enumerate(tasks)}
    blocks = list(aff.groupby(["run", "measure", "step"], sort=False))
    first_off = first_odd = None
    symmetric = bool(blocks)
    for (_, _, step), block in blocks:
        values = dict(zip(zip(block["source"], block["target"]), block["affinity"]))
        off = sorted(
            ((s, t) for s, t in values if s != t),
            key=lambda c: (rank.get(c[0], 0), rank.get(c[1], 0)),
        )
        odd = [(s, t) for s, t in off if values.get((t, s)) != values[(s, t)]]
        symmetric = symmetric and bool(off) and not odd
        if off and first_off is None:
            first_off = (off[0], values, step)
        if odd and first_odd is None:
            first_odd = (odd[0], values, step)
    pick = first_odd or first_off
    if pick is None:
        return None, False, len(blocks), None
    (s, t), values, step = pick
    return (str(s), str(t), float(values[(s, t)])), symmetric, len(blocks), int(step)


def check_parsed(parsed: ParsedRun, name: str) -> None:
    """What every container is checked for once parsed: run sizes within the limits
    (:mod:`mtl_core.runfile.bounds`; counts only, before any matrix is built) and names
    that are text the store can hold.

    Raises ``LabError``.
    """
    check_run_sizes(parsed.affinity, parsed.metrics, parsed.tasks, parsed.tasks_declared, name)
    check_names(parsed, name)


def _check_measure_applies(parsed: ParsedRun, measure: str) -> None:
    """A measure given for a file that names its own measures must be one of them."""
    logged = sorted({m for r in parsed.runs for m in parsed.measures(r)})
    if logged != [measure]:
        raise LabError(
            f"{PREFIX}the file names its measures ({', '.join(logged)}); the measure option is "
            "for files that name none"
        )


def _read(
    source: str | Path | bytes, filename: str | None, max_bytes: int | None, options: ReadOptions
) -> ParsedRun:
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
            return read_folder(path, name, limit, options)
        size = path.stat().st_size
        data = None
    ext = _TFEVENTS if "tfevents" in name else Path(name).suffix.lower()
    _check_file(name, ext, size, limit)
    if ext == _TFEVENTS:
        return read_tensorboard(
            path if data is None else data, name, max_bytes=limit, options=options
        )
    if data is None:
        data = path.read_bytes()  # type: ignore[union-attr]
    if ext == ".zip":
        tree = zip_tree(data, name, limit)
        if tree is not None:  # a zipped log folder, not a lab bundle
            return read_tree(tree, name, options)
        return read_bundle(data, name, limit, options)
    if ext in ARRAY_EXTENSIONS:
        return affinity_only(*read_array_file(data, ext, name, limit, options))
    cols, locate = parse_table(data, ext, name, numbers=True)
    return affinity_only(*read_affinity(cols, locate, name, tasks=None, options=options))


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
