"""Per-step tracker tables: one row per step, one column per affinity cell.

This is how experiment trackers export what a run logged, and how hand-rolled loggers write it:

- W&B ``run.history()`` to CSV/Parquet: ``_step`` plus ``affinity/<source>/<target>`` columns,
  NaN where a step did not log the key;
- Lightning ``CSVLogger`` ``metrics.csv``: ``step`` (and ``epoch``), sparse rows;
- Ray Tune ``progress.csv`` / ``result.json``: ``training_iteration`` and flattened keys
  (the ``step`` column is used when the trial logged one);
- any table with a ``step`` column whose cell columns follow the lab's tag conventions
  (:mod:`mtl_core.runfile.tb_conventions`) or the user's ``--tag-pattern`` (e.g.
  ``{source}->{target}``).

An empty cell (NaN) in such a table means "not logged at this step" and is skipped, not counted
as unmeasured; every other column is ignored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile import tb_conventions as conv
from mtl_core.runfile.report import ReadOptions, note

#: Step columns, in order of preference (the tracker's own step first).
STEP_COLUMNS = ("step", "_step", "global_step", "trainer/global_step", "training_iteration")


def read_step_columns(
    cols: dict[str, np.ndarray], name: str, options: ReadOptions
) -> dict[str, np.ndarray] | None:
    """A per-step wide table -> long columns ``step, source, target, affinity, measure``.

    Parameters
    ----------
    cols : the parsed table, ``{column: values}``.
    name : the file's name for messages.
    options : ``tag_pattern`` (cell columns named by the user's pattern) and ``measure``.

    Returns
    -------
    The long columns (one row per logged cell, row-major by step), or None when the table has
    no step column or no column names an affinity cell (then it is some other layout).

    Raises
    ------
    LabError
        A tag pattern that matches no column although the table has a step column, or a step
        that is not a whole number.
    """
    step_col = next((c for c in STEP_COLUMNS if c in cols), None)
    if step_col is None:
        return None
    pattern = conv.compile_pattern(options.tag_pattern) if options.tag_pattern else None
    cells: list[tuple[str, conv.Cell]] = []
    for col in cols:
        cell = _cell(col, pattern, options)
        if cell is not None:
            cells.append((col, cell))
    if not cells:
        if pattern is not None and len(cols) > 2:
            raise LabError(
                f"{name}: the tag pattern {options.tag_pattern!r} matches none of the columns "
                f"beside {step_col!r} (e.g. {', '.join(repr(c) for c in list(cols)[:3])})"
            )
        return None
    steps = pd.to_numeric(pd.Series(cols[step_col]), errors="coerce").to_numpy(float)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("step", "source", "target", "affinity",
                                                        "measure", "order")}  # fmt: skip
    for k, (col, cell) in enumerate(cells):
        vals = pd.to_numeric(pd.Series(cols[col]), errors="coerce").to_numpy(float)
        rows = np.flatnonzero(~np.isnan(vals) & ~np.isnan(steps))
        parts["step"].append(steps[rows])
        parts["affinity"].append(vals[rows])
        parts["source"].append(np.full(rows.size, cell.source, dtype=object))
        parts["target"].append(np.full(rows.size, cell.target, dtype=object))
        parts["measure"].append(np.full(rows.size, cell.measure, dtype=object))
        parts["order"].append(rows * len(cells) + k)
    order = np.argsort(np.concatenate(parts.pop("order")), kind="stable")
    out = {k: np.concatenate(v)[order] for k, v in parts.items()}
    if out["step"].size and not np.all(out["step"] == np.round(out["step"])):
        raise LabError(f"{name}: column {step_col!r} holds steps that are not whole numbers")
    out["step"] = out["step"].astype(np.int64)
    how = "your tag pattern" if pattern is not None else "the lab's affinity/<source>/<target>"
    note(
        f"{name}: read as a per-step table: {len(cells)} cell columns named by {how}, "
        f"steps from {step_col!r}; empty cells = not logged at that step"
    )
    return out


def _cell(col: str, pattern: object, options: ReadOptions) -> conv.Cell | None:
    if pattern is not None:
        m = pattern.fullmatch(col)  # type: ignore[attr-defined]
        if m is None:
            return None
        g = m.groupdict()
        measure = g.get("measure") or options.measure or conv.DEFAULT_MEASURE
        return conv.Cell(measure, g["source"], g["target"])
    cell = conv.lab_cell(col)
    if cell is not None and options.measure and col.count("/") == 2:
        return conv.Cell(options.measure, cell.source, cell.target)
    return cell
