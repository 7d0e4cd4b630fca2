"""Text columns with their Arrow codes: each distinct cell converted once.

A CSV column parsed by pyarrow and dictionary-encoded holds each distinct text once plus one
code per row. :func:`coded_column` turns it into the object array the readers work on
(``uniques[codes]``: every row a reference to one shared ``str``, no string made per row) and
remembers its codes and Arrow dictionary, so :func:`coded` hands them to the converters
(:mod:`mtl_core.runfile.cells`): a step or task column of 900k rows and 10k distinct values
is converted and checked 10k times, not 900k.

The array is read-only, so its remembered codes can never go stale; a slice or a changed copy
is a new array and simply has none (the converters then work on its rows, as before).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Coded:
    """The codes behind a column: ``values[k] == uniques[codes[k]]``.

    ``uniques``: (u,) object array of ``str`` (a text may repeat); ``codes``: (rows,) int
    array into it, or None when every row is its own value (``values`` is ``uniques``);
    ``arrow``: the same ``uniques`` as an Arrow string array.
    """

    uniques: np.ndarray
    codes: np.ndarray | None
    arrow: Any

    def spread(self, per_unique: np.ndarray) -> np.ndarray:
        """Values given per distinct text (u,) -> per row (rows,)."""
        return per_unique if self.codes is None else per_unique[self.codes]


_KNOWN: dict[int, tuple[weakref.ref, Coded]] = {}


#: Rows sampled to tell a name column (few distinct texts) from a number column.
_SAMPLE = 4096


def coded_column(column: Any, *, trim: bool = True) -> np.ndarray:
    """An Arrow text column (an array or chunked array of ``string``, as
    ``pyarrow.csv.read_csv`` gives) -> a read-only object array of ``str`` (rows,), its codes
    remembered for :func:`coded`.

    A column of few distinct texts (in its first :data:`_SAMPLE` rows at most a quarter are
    distinct: steps, task names, measures) is dictionary-encoded, so each distinct text
    becomes one Python ``str``; any other column keeps one code per row and its Arrow text,
    so numbers are parsed by Arrow straight from it.

    ``trim``: strip surrounding whitespace from every cell. A column with null cells (none
    when read with ``strings_can_be_null=False``) is returned as a plain object array,
    ``None`` at each null.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if trim:
        text = pc.utf8_trim_whitespace(text)
    if text.null_count:
        return text.to_numpy(zero_copy_only=False)
    head = text.slice(0, _SAMPLE)
    if len(head) and 4 * len(pc.unique(head)) <= len(head):
        encoded = pc.dictionary_encode(text)
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        dictionary = encoded.dictionary
        uniques = dictionary.to_numpy(zero_copy_only=False).astype(object, copy=False)
        return remember(uniques, codes, dictionary)
    return remember(text.to_numpy(zero_copy_only=False).astype(object, copy=False), None, text)


def remember(uniques: np.ndarray, codes: np.ndarray | None, arrow: Any) -> np.ndarray:
    """``uniques[codes]`` as a read-only object array whose codes :func:`coded` returns.

    ``uniques``: (u,) object array of ``str``; ``codes``: (rows,) ints in ``[0, u)``, or None
    for ``uniques`` itself (which is then made read-only); ``arrow``: ``uniques`` as an
    Arrow string array.
    """
    if codes is None:
        values = uniques
    else:
        values = uniques[codes] if len(uniques) else np.empty(len(codes), dtype=object)
    values.flags.writeable = False
    key = id(values)
    ref = weakref.ref(values, lambda _ref, k=key, known=_KNOWN: known.pop(k, None))
    _KNOWN[key] = (ref, Coded(uniques, codes, arrow))
    return values


def coded(values: np.ndarray) -> Coded | None:
    """The codes behind ``values`` if it came from :func:`coded_column` or :func:`remember`
    (this very array, not a slice or copy), else None."""
    entry = _KNOWN.get(id(values))
    if entry is None or entry[0]() is not values:
        return None
    return entry[1]


def equals_text(values: np.ndarray, text: str) -> np.ndarray:
    """``values == text`` as a (rows,) bool array, compared once per distinct value when
    ``values`` is coded."""
    c = coded(values)
    if c is None:
        return np.asarray(values == text, dtype=bool)
    import pyarrow.compute as pc

    return c.spread(pc.equal(c.arrow, text).to_numpy(zero_copy_only=False))


def head(values: np.ndarray, rows: int) -> np.ndarray:
    """The first ``rows`` values, still coded when ``values`` is."""
    c = coded(values)
    if c is None:
        return values[:rows]
    if c.codes is None:
        return remember(c.uniques[:rows], None, c.arrow.slice(0, rows))
    return remember(c.uniques, c.codes[:rows], c.arrow)


def frame_text(values: np.ndarray) -> Any:
    """A column of names for a frame: a coded column as pandas' own text array (Arrow-backed
    ``str``, built from the codes without a Python string per row), else ``values`` as is.
    Either way the frame column is the same ``str`` column pandas makes from the values."""
    c = coded(values)
    if c is None or len(values) == 0:
        return values
    import pandas as pd
    import pyarrow as pa

    if c.codes is None:
        text = c.arrow.cast(pa.large_string())
    else:
        codes = pa.array(c.codes.astype(np.int32, copy=False))
        text = pa.DictionaryArray.from_arrays(codes, c.arrow).cast(pa.large_string())
    # the dtype pandas infers for an object array of str (``str`` since pandas 3)
    return pd.array(text, dtype=pd.Series(np.array([""], dtype=object)).dtype)
