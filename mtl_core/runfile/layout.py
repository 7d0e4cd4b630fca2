"""Which layout an affinity table is in, and reading it in that layout.

A parsed table (``{column: values}``, :mod:`mtl_core.runfile.tables`) holds the affinity either
as a square matrix (:mod:`mtl_core.runfile.wide`) or one row per cell
(:mod:`mtl_core.runfile.validate`). Both end as the same long-form frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile.coded import text_columns
from mtl_core.runfile.long import first_seen
from mtl_core.runfile.messages import Locate
from mtl_core.runfile.report import ReadOptions
from mtl_core.runfile.schema import AFFINITY_NAMES
from mtl_core.runfile.trackers import read_step_columns
from mtl_core.runfile.validate import known_names, validate_affinity
from mtl_core.runfile.wide import read_wide

DEFAULTS = ReadOptions()


def read_affinity(
    cols: dict[str, np.ndarray],
    locate: Locate,
    name: str,
    tasks: list[str] | None,
    options: ReadOptions = DEFAULTS,
) -> tuple[pd.DataFrame, list[str]]:
    """An affinity table in the wide or the long layout -> ``(frame, task order)``.

    Parameters
    ----------
    cols, locate : a parsed table and its row naming; columns may be numbers first
        (``parse_table(..., numbers=True)``): the per-step reader and the long form's
        ``affinity`` and ``wall_time`` take them as they are, every other reader gets text.
    name : the file's name for messages.
    tasks : ``meta.json``'s task list, if any.
    options : what the user declared: which way a matrix's rows run, the measure of a table
        that names none.

    Returns
    -------
    The frame in ``AFFINITY_FRAME`` columns (rows = sources: ``source`` is ``i`` of
    ``A[i, j]``) and the tasks in the table's order (a matrix's header; else first appearance,
    sources first).

    Raises
    ------
    LabError
        From the layout's reader, naming row and column.
    """
    steps = read_step_columns(cols, name, options, locate)
    if steps is not None:
        aff = validate_affinity(steps, _cell_locate, name, tasks, measure=options.measure)
        return aff, first_seen(aff["source"], aff["target"])
    try:
        cols = known_names(cols, AFFINITY_NAMES, name)
        # a long form's step and value columns stay numbers first: with source and target
        # columns no wide layout reads them (the table is long), only the converters do
        keep = ("step", "affinity", "wall_time") if {"source", "target"} <= set(cols) else ()
        cols = text_columns(cols, keep)
        wide = read_wide(cols, locate, name, tasks, rows=options.rows, measure=options.measure)
        if wide is not None:
            return wide
        if options.rows == "target":
            raise LabError(
                f"{name}: rows were declared targets (--rows target), but this is a long table "
                "whose source and target columns say which is which; drop the declaration"
            )
        aff = validate_affinity(cols, locate, name, tasks, measure=options.measure)
    except LabError as exc:
        if _per_step_shaped(cols) and options.tag_pattern is None:
            raise LabError(
                f"{exc}; if each column beside the step is one cell, give a tag pattern for "
                "their names, e.g. '{source}->{target}' (--tag-pattern)"
            ) from None
        raise
    return aff, first_seen(aff["source"], aff["target"])


def _per_step_shaped(cols: dict[str, np.ndarray]) -> bool:
    """A step column, no source/target or row-label column, and more columns than a small
    square matrix would need: what a per-step logger's table looks like."""
    names = set(cols)
    return "step" in names and not names & {"source", "target", "", "task"} and len(names) - 1 > 2


def _cell_locate(i: int) -> str:
    return f"logged cell {i + 1}"
