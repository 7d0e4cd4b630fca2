"""The long form and affinity matrices, both ways: the one "log -> matrices of one measure".

Long form: one row per measured cell, columns ``step, source, target, affinity`` and
optionally ``measure`` (absent means ``lookahead``), ``run``, ``wall_time``. Matrices:
``(steps (S,), tasks, A (S, n, n))`` with ``A[s, i, j]`` the affinity of source ``tasks[i]``
onto target ``tasks[j]`` at ``steps[s]`` (rows = sources), NaN where a cell was not logged.

Every place that turns a long-form log into matrices of one measure goes through
:func:`measure_matrices` (and :func:`mean_matrix` for the average over steps): the file
reader's :class:`~mtl_core.runfile.model.ParsedRun` and the ``group`` command, so they pick
measures and order tasks the same way and say the same thing. The measure rule itself is
:func:`mtl_core.measures.pick_measure`, shared with the store's ``affinity_steps``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.measures import DEFAULT_MEASURE, pick_measure
from mtl_core.runfile.frame_names import known_distinct
from mtl_core.runfile.schema import AFFINITY_FRAME, AFFINITY_REQUIRED


def affinity_rows(step: int, tasks: list[str], matrix: np.ndarray, measure: str) -> pd.DataFrame:
    """Long-form rows (columns ``AFFINITY_COLUMNS``) of one measured matrix at one step.

    ``matrix``: (n, n), ``matrix[i, j]`` = source ``tasks[i]`` -> target ``tasks[j]``; rows
    come out row-major (every target of the first source first).
    """
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


def first_seen(*cols: Any) -> list[str]:
    """Names (as ``str``) in order of first appearance, column by column (sources, then
    targets, ...).

    Sources first: a row-major export lists every task as a source in task order, so the
    order survives even when some cells were not measured.
    """
    # each column's own first-seen order, then across columns: the same order as one pass
    # over the concatenation, hashing each column once rather than a copy of all of them
    arrays = [_distinct(c) for c in cols]
    if not arrays:
        return []
    return [str(v) for v in pd.unique(np.concatenate(arrays))]


def _distinct(col: Any) -> np.ndarray:
    """One column's names in order of first appearance (as an object array; a name may
    repeat): from the codes a reader built the column from, when known
    (:mod:`mtl_core.runfile.frame_names`), else hashed."""
    known = known_distinct(col)
    if known is not None:
        return known
    return np.asarray(pd.unique(_hashable(col)), dtype=object)


def _hashable(col: Any) -> Any:
    """A column as ``pd.unique`` hashes it fastest: a Series or pandas array as it is (an
    Arrow text column is hashed by Arrow), anything else as an object array."""
    if isinstance(col, (pd.Series, pd.api.extensions.ExtensionArray)):
        return col
    return np.asarray(col, dtype=object)


def long_to_matrices(
    df: pd.DataFrame, tasks: Sequence[str]
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Stack the long-form cells of one run and measure into matrices.

    Parameters
    ----------
    df : long-form rows (``step, source, target, affinity``) of ONE run and measure; a cell
        given twice at one step keeps its last value.
    tasks : the task order of the matrices' rows and columns; every cell's source and target
        must be in it.

    Returns
    -------
    ``(steps, tasks, A)``: ``steps`` int64 (S,) ascending, ``A`` float64 (S, n, n) with
    ``A[s, i, j]`` = source ``tasks[i]`` -> target ``tasks[j]`` at ``steps[s]``, NaN where not
    logged.

    Raises
    ------
    LabError
        A cell names a task outside ``tasks``.
    """
    index = _task_index(tasks)
    i, j = (_positions(index, df[c]) for c in ("source", "target"))
    if (i < 0).any() or (j < 0).any():
        col, pos = ("source", i) if (i < 0).any() else ("target", j)
        bad = df[col].to_numpy(dtype=object)[np.flatnonzero(pos < 0)[0]]
        raise LabError(f"affinity cells name a task outside the run's task list: {col} {bad!r}")
    return _stack(df, index, i, j)


def _task_index(tasks: Sequence[str]) -> pd.Index:
    return pd.Index([str(t) for t in tasks], dtype=object)


def _positions(index: pd.Index, names: pd.Series) -> np.ndarray:
    """Position of each name in ``index`` (-1 if absent); non-text names compare as text.

    Looked up once per distinct name (``pandas.factorize``: an Arrow-backed text column is
    hashed by Arrow), not one Python string per row.
    """
    codes, uniques = pd.factorize(names)
    if (codes < 0).any():  # a missing name: compared row by row, as text
        pos = index.get_indexer(names.to_numpy(dtype=object))
        if (pos < 0).any():
            pos = index.get_indexer(names.astype(str).to_numpy(dtype=object))
        return pos
    distinct = np.asarray(uniques, dtype=object)
    per = index.get_indexer(distinct)
    if (per < 0).any():  # e.g. integer task names from a hand-built frame
        per = index.get_indexer(np.array([str(v) for v in distinct], dtype=object))
    return per[codes]


def _stack(
    df: pd.DataFrame, index: pd.Index, i: np.ndarray, j: np.ndarray
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Cells at task positions ``(i, j)`` into ``(steps, tasks, A (S, n, n))``."""
    steps, s_idx = np.unique(df["step"].to_numpy(dtype=np.int64), return_inverse=True)
    out = np.full((len(steps), len(index), len(index)), np.nan)
    out[s_idx, i, j] = df["affinity"].to_numpy(dtype=np.float64)
    return steps, list(index), out


def matrices_to_long(
    steps: np.ndarray,
    tasks: list[str],
    mats: np.ndarray,
    measure: str,
    run: str = "",
    wall_times: np.ndarray | None = None,
) -> pd.DataFrame:
    """Inverse of :func:`long_to_matrices`: one row per logged (non-NaN) cell, row-major.

    ``steps``: (S,); ``mats``: (S, n, n), rows = sources; ``wall_times``: (S,) seconds since
    the epoch, or None (NaN). Returns a frame with the columns of ``ParsedRun.affinity``.
    """
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


def measure_matrices(
    df: pd.DataFrame,
    measure: str | None = None,
    tasks: Sequence[str] | None = None,
    *,
    where: str = "the log",
    hint: str = "pick one",
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """A long-form log of one run -> the matrices of one measure.

    Parameters
    ----------
    df : long-form rows ``step, source, target, affinity`` (+ ``measure``; a log without it
        holds ``lookahead`` only).
    measure : the measure to read; None picks the only one
        (:func:`mtl_core.measures.pick_measure`, the lab's one rule).
    tasks : task order of the result; cells of other tasks are left out (a sub-matrix).
        None: tasks in order of first appearance, sources first.
    where, hint : wording of the measure messages (see ``pick_measure``).

    Returns
    -------
    ``(steps, tasks, A)``: ``steps`` int64 (S,), ``A`` float64 (S, n, n), rows = sources,
    NaN where not logged.

    Raises
    ------
    LabError
        A required column is missing, or the measure cannot be picked.
    """
    missing = [c for c in AFFINITY_REQUIRED if c not in df.columns]
    if missing:
        raise LabError(f"affinity log lacks column(s): {', '.join(sorted(missing))}")
    if "measure" in df.columns:
        logged = [str(m) for m in pd.unique(df["measure"].dropna())]  # by Arrow, for text
        m = pick_measure(logged, measure, where, hint=hint)
        if len(logged) > 1 or df["measure"].isna().any():
            df = df[(df["measure"] == m).to_numpy(dtype=bool, na_value=False)]
    else:
        pick_measure([DEFAULT_MEASURE], measure, where, hint=hint)
    if tasks is None:
        tasks = first_seen(df["source"], df["target"])
    index = _task_index(tasks)
    i, j = (_positions(index, df[c]) for c in ("source", "target"))
    inside = (i >= 0) & (j >= 0)
    if not inside.all():
        df, i, j = df[inside], i[inside], j[inside]
    return _stack(df, index, i, j)


def mean_matrix(
    df: pd.DataFrame,
    measure: str | None = None,
    tasks: Sequence[str] | None = None,
    *,
    where: str = "the log",
    hint: str = "pick one with --measure",
) -> tuple[list[str], np.ndarray]:
    """Time-averaged affinity matrix of one measure of a long-form log.

    Same arguments and errors as :func:`measure_matrices`. Returns ``(tasks, A)`` with
    ``A`` float64 (n, n), ``A[i, j]`` the mean over the logged steps of source ``tasks[i]``
    -> target ``tasks[j]`` (rows = sources); NaN for a pair never logged.
    """
    _, names, mats = measure_matrices(df, measure, tasks, where=where, hint=hint)
    return names, step_mean(mats)


def step_mean(mats: np.ndarray) -> np.ndarray:
    """Mean over steps of ``mats`` (S, n, n), skipping NaN cells: (n, n), NaN where a cell
    was never logged (no warning)."""
    logged = ~np.isnan(mats)
    count = logged.sum(axis=0)
    total = np.where(logged, mats, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)
