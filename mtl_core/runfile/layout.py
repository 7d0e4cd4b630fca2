"""Which layout an affinity table is in, and reading it in that layout.

A parsed table (``{column: values}``, :mod:`mtl_core.runfile.tables`) holds the affinity either
as a square matrix (:mod:`mtl_core.runfile.wide`) or one row per cell
(:mod:`mtl_core.runfile.validate`). Both end as the same long-form frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_core.runfile.long import first_seen
from mtl_core.runfile.messages import Locate
from mtl_core.runfile.schema import AFFINITY_NAMES
from mtl_core.runfile.validate import known_names, validate_affinity
from mtl_core.runfile.wide import read_wide


def read_affinity(
    cols: dict[str, np.ndarray], locate: Locate, name: str, tasks: list[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    """An affinity table in the wide or the long layout -> ``(frame, task order)``.

    Parameters
    ----------
    cols, locate : a parsed table and its row naming.
    name : the file's name for messages.
    tasks : ``meta.json``'s task list, if any.

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
    cols = known_names(cols, AFFINITY_NAMES, name)
    wide = read_wide(cols, locate, name, tasks)
    if wide is not None:
        return wide
    aff = validate_affinity(cols, locate, name, tasks)
    return aff, first_seen(aff["source"], aff["target"])
