"""The distinct names of a frame's text column, known from the codes it was built from.

A long form's name columns (``source``, ``target``, ``measure``, ``run``) are built from
dictionary codes (:func:`mtl_core.runfile.coded.frame_text`), and the readers then ask for
their distinct values in order of first appearance (the task order, the runs, the measures):
hashed again row by row, that is one pass over 900k strings per column. The column's codes
already say it: :func:`remember_distinct` keeps them beside the column's Arrow data, and
:func:`known_distinct` answers from them (one pass over small integers).

The key is the column's immutable Arrow data (``ChunkedArray``), which pandas keeps as it is
through a frame's construction, a shallow copy or ``reset_index``; any changed, filtered or
re-sorted column holds new Arrow data and simply has no entry (its values are hashed, as
before).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

_KNOWN: dict[int, tuple[weakref.ref, np.ndarray, np.ndarray, bool]] = {}


def _data(column: Any) -> Any:
    """The Arrow data behind a Series or pandas Arrow-backed array, or None."""
    array = getattr(column, "array", column)
    return getattr(array, "_pa_array", None)


def remember_distinct(
    column: Any, uniques: np.ndarray, codes: np.ndarray, *, ordered: bool = False
) -> Any:
    """Remember that ``column`` (a pandas Arrow-backed text array, (rows,)) holds
    ``uniques[codes]`` (``uniques`` (u,) object array of ``str``, a text may repeat;
    ``codes`` (rows,) ints; ``ordered``: they first appear in increasing order, 0, 1, ...,
    as Arrow's dictionary encoding numbers them); returns ``column``."""
    data = _data(column)
    if data is None:
        return column
    key = id(data)
    try:
        ref = weakref.ref(data, lambda _ref, k=key, known=_KNOWN: known.pop(k, None))
    except TypeError:  # (no weak references: nothing remembered)
        return column
    _KNOWN[key] = (ref, uniques, codes, ordered)
    return column


def known_distinct(column: Any) -> np.ndarray | None:
    """The distinct texts of ``column`` (a Series or pandas array) in order of first
    appearance, as an object array (a text may repeat when the dictionary held it twice: a
    caller that needs each once removes the repeats), when :func:`remember_distinct`
    knows its codes; else None."""
    data = _data(column)
    entry = None if data is None else _KNOWN.get(id(data))
    if entry is None or entry[0]() is not data:
        return None
    _, uniques, codes, ordered = entry
    if not len(codes):
        return uniques[:0]
    if ordered:  # codes 0..max appear, in that order: no pass but the max
        return uniques[: int(codes.max()) + 1]
    return uniques[_first_seen_codes(codes, len(uniques))]


def _first_seen_codes(codes: np.ndarray, count: int) -> list[int]:
    """The distinct ``codes`` (ints in ``[0, count)``) in order of first appearance, read a
    block at a time until all ``count`` have appeared (a few names over many rows: mostly
    the first block only)."""
    import pandas as pd

    seen: dict[int, None] = {}
    for start in range(0, len(codes), _BLOCK):
        seen.update(dict.fromkeys(pd.unique(codes[start : start + _BLOCK]).tolist()))
        if len(seen) >= count:
            break
    return list(seen)


#: Rows read at a time by :func:`_first_seen_codes`.
_BLOCK = 1 << 16
