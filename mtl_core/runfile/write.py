"""Writing run files and training logs. Every file appears atomically (written beside, then
renamed), so a reader never sees half a file; floats are written exactly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtl_core.errors import LabError
from mtl_core.jsonio import atomic_write_bytes
from mtl_core.runfile.bundle import bundle_bytes
from mtl_core.runfile.model import ParsedRun
from mtl_core.runfile.schema import AFFINITY_COLUMNS, FILE_EXTENSIONS, TABLE_EXTENSIONS
from mtl_core.runfile.tables import table_bytes


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a long-form table (e.g. a training log of :func:`affinity_rows` frames); the
    container follows the extension (``.csv``, ``.parquet``, ``.jsonl``).

    A ``ParsedRun``-style frame leaves out a blank ``run`` column and an all-NaN
    ``wall_time`` column. Returns the path.

    Raises
    ------
    LabError
        Another extension.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in TABLE_EXTENSIONS:
        raise LabError(
            f"cannot write {p.name}: unknown extension {ext or '(none)'}; "
            f"use one of {', '.join(TABLE_EXTENSIONS)}"
        )
    if "run" in df.columns and (df["run"].astype(str).str.strip() == "").all():
        df = df.drop(columns=["run"])
    if "wall_time" in df.columns and df["wall_time"].isna().all():
        df = df.drop(columns=["wall_time"])
    return atomic_write_bytes(p, table_bytes(df, ext))


def write_run_file(parsed: ParsedRun, path: str | Path, *, table_ext: str = ".parquet") -> Path:
    """Write a run file; ``.zip`` keeps everything, a table extension the affinity table only.

    ``table_ext`` is the container of the tables inside a ``.zip``. Returns the path.

    Raises
    ------
    LabError
        An unknown extension (see :func:`run_file_bytes`).
    """
    p = Path(path)
    return atomic_write_bytes(p, run_file_bytes(parsed, p.name, table_ext=table_ext))


def run_file_bytes(parsed: ParsedRun, filename: str, *, table_ext: str = ".parquet") -> bytes:
    """The bytes of a run file named ``filename`` (for downloads without touching disk).

    The affinity table is written as ``[run,] step, source, target, affinity, measure
    [, wall_time]`` (``run`` when the file holds several runs, ``wall_time`` when any was
    logged).

    Raises
    ------
    LabError
        ``filename``'s extension is not one of ``FILE_EXTENSIONS``, or ``table_ext`` not a
        table extension.
    """
    ext = Path(filename).suffix.lower()
    if ext not in FILE_EXTENSIONS:
        raise LabError(
            f"cannot write {filename}: unknown extension {ext or '(none)'}; "
            f"use one of {', '.join(FILE_EXTENSIONS)}"
        )
    aff_cols = (["run"] if parsed.runs != [""] else []) + AFFINITY_COLUMNS
    if parsed.affinity["wall_time"].notna().any():
        aff_cols.append("wall_time")
    aff = parsed.affinity[aff_cols]
    if ext != ".zip":
        return table_bytes(aff, ext)
    return bundle_bytes(parsed, aff, table_ext)


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


def check_out_path(path: str | Path, what: str = "--out") -> Path:
    """Refuse an output path whose folder does not exist (never create a folder tree from a
    typo) or is not a folder.

    Raises ``LabError``: ``"--out runs/x/a.csv: the folder runs/x does not exist; create it
    first"``.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise LabError(f"{what} {p}: the folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise LabError(f"{what} {p}: {parent} is not a folder")
    if p.is_dir():
        raise LabError(f"{what} {p}: is a folder; give a file name")
    return p


def prepare_out_path(path: str | Path, what: str = "--out") -> tuple[Path, Path | None]:
    """:func:`check_out_path`, except that one missing folder level is created: ``--out
    runs/a.csv`` works on a fresh clone (``runs/`` made), ``runs/x/a.csv`` without ``runs/``
    is still refused (a typo must not grow a folder tree). Call it before any work.

    Returns ``(path, the folder created or None)``; the caller says that it made a folder.

    Raises ``LabError`` as :func:`check_out_path` (also when the folder cannot be created).
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    created = None
    if not parent.exists() and parent.parent.is_dir():
        try:
            parent.mkdir()
        except FileExistsError:
            pass  # made meanwhile by someone else: check_out_path looks at what is there
        except OSError as exc:
            raise LabError(
                f"{what} {p}: cannot create the folder {parent}: {exc.strerror or exc}"
            ) from None
        else:
            created = parent
    return check_out_path(p, what), created
