"""The open long-form affinity log: one row per measured cell.

Columns ``step, source, target, affinity, measure``; ``affinity`` is the effect of an update on
``source``'s loss on ``target``'s loss (positive = helps). Containers by extension: ``.csv``,
``.parquet``, ``.jsonl``. See docs/run-format.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mtl_core.errors import LabError

AFFINITY_COLUMNS = ["step", "source", "target", "affinity", "measure"]
TABLE_EXTENSIONS = (".csv", ".parquet", ".jsonl")


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
    """Write a long-form table; the container follows the file's extension."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in TABLE_EXTENSIONS:
        raise LabError(
            f"cannot write {p.name}: unknown extension {ext or '(none)'}; "
            f"use one of {', '.join(TABLE_EXTENSIONS)}"
        )
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    if ext == ".csv":
        df.to_csv(tmp, index=False)
    elif ext == ".parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_json(tmp, orient="records", lines=True)
    tmp.replace(p)  # atomic: a reader never sees half a file
    return p


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a long-form table written by ``write_table`` (no validation beyond the container)."""
    p = Path(path)
    ext = p.suffix.lower()
    if not p.exists():
        raise LabError(f"file not found: {p}")
    try:
        if ext == ".csv":
            return pd.read_csv(p)
        if ext == ".parquet":
            return pd.read_parquet(p)
        if ext == ".jsonl":
            return pd.read_json(p, orient="records", lines=True)
    except (ValueError, OSError) as exc:
        raise LabError(f"cannot read {p.name}: {exc}") from None
    raise LabError(
        f"cannot read {p.name}: unknown extension {ext or '(none)'}; "
        f"use one of {', '.join(TABLE_EXTENSIONS)}"
    )


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
                    f"the log holds several measures ({', '.join(measures)}); pick one with --measure"
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
