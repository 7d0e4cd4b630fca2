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

import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtl_core.runfile.frame_names import remember_distinct


@dataclass(frozen=True)
class Coded:
    """The codes behind a column: ``values[k] == uniques[codes[k]]``.

    ``uniques``: (u,) object array of ``str`` (a text may repeat); ``codes``: (rows,) int
    array into it, or None when every row is its own value (``values`` is ``uniques``);
    ``arrow``: the same ``uniques`` as an Arrow string array; ``rows``: the values
    themselves as an Arrow string array (rows,) when the reader had them (a CSV column
    whose cells needed no trimming), else None; ``ordered``: the codes first appear in
    increasing order (0, then 1, ...), as Arrow's dictionary encoding numbers them.
    """

    uniques: np.ndarray
    codes: np.ndarray | None
    arrow: Any
    rows: Any = None
    ordered: bool = False

    def spread(self, per_unique: np.ndarray) -> np.ndarray:
        """Values given per distinct text (u,) -> per row (rows,)."""
        return per_unique if self.codes is None else per_unique[self.codes]


_KNOWN: dict[int, tuple[weakref.ref, Coded]] = {}


#: Rows sampled to tell a name column (few distinct texts) from a number column.
_SAMPLE = 4096


def coded_column(
    column: Any, *, trim: bool = True, missing: frozenset[str] | None = None
) -> np.ndarray:
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

    ``missing``: the missing-value marks (``""``, ``NA``, ...). Given, a column of many
    distinct texts that are all numbers or such marks is returned *numbers first*: the
    float64 values (NaN at each mark) as Arrow parses them from the trimmed text (exactly
    what :func:`mtl_core.runfile.cells.to_numbers` makes of that text), its text kept
    beside them (:func:`numbers_first`, :func:`as_text`), so no Python ``str`` is made per
    cell. Only readers that take such columns ask for them.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(text.type) and not text.null_count:
        return _dictionary_column(text, trim)
    if pa.types.is_dictionary(text.type):
        text = text.cast(pa.string())
    if text.null_count:
        text = pc.utf8_trim_whitespace(text) if trim else text
        return text.to_numpy(zero_copy_only=False)
    head = text.slice(0, _SAMPLE)
    distinct = pc.unique(head) if len(head) else None
    if distinct is not None and 4 * len(distinct) <= len(head):
        if len(distinct) == 1 and pc.all(pc.equal(text, distinct[0])).as_py():
            # one text on every row (a measure, a run): compared, not hashed, row by row
            codes, dictionary = np.zeros(len(text), dtype=np.int32), distinct
        else:  # (codes numbered in order of first appearance)
            encoded = pc.dictionary_encode(text)
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            dictionary = encoded.dictionary
        rows = text
        if trim:  # trimmed once per distinct text; texts equal once trimmed share a code
            before = dictionary
            codes, dictionary = _trimmed_codes(codes, dictionary)
            rows = text if dictionary is before else None  # (trimmed: the cells changed)
        uniques = dictionary.to_numpy(zero_copy_only=False).astype(object, copy=False)
        return remember(uniques, codes, dictionary, rows=rows, ordered=True)
    if missing is not None:
        # untrimmed first: Arrow parses no number with spaces around it, so when every cell
        # parses (or is a mark, matched exactly) no cell had any to trim
        numbers = _parse_numbers(text, missing)
        if numbers is not None:
            return numbers
    if trim:
        text = pc.utf8_trim_whitespace(text)
        if missing is not None:
            numbers = _parse_numbers(text, missing)
            if numbers is not None:
                return numbers
    return remember(text.to_numpy(zero_copy_only=False).astype(object, copy=False), None, text)


def _trimmed_codes(codes: np.ndarray, dictionary: Any) -> tuple[np.ndarray, Any]:
    """Row ``codes: (rows,)`` into an Arrow text ``dictionary`` -> the same rows coded into
    the dictionary of its whitespace-trimmed texts (texts equal once trimmed share a code);
    unchanged when no text had spaces to trim."""
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(dictionary)
    if pc.all(pc.equal(trimmed, dictionary)).as_py():
        return codes, dictionary
    again = pc.dictionary_encode(trimmed)
    return again.indices.to_numpy(zero_copy_only=False)[codes], again.dictionary


def _dictionary_column(text: Any, trim: bool) -> np.ndarray:
    """A dictionary-encoded Arrow text array without nulls (as Parquet stores a name
    column, read with ``read_dictionary``) -> the coded object array of
    :func:`coded_column`, from its own codes: no text hashed per row. Its dictionary may
    hold a text no row uses (a category column's unused category); readers that go by the
    rows (first appearance, duplicates) use the codes."""
    import pyarrow as pa

    dictionary = text.dictionary.cast(pa.string())
    codes = text.indices.to_numpy(zero_copy_only=False)
    if trim:  # as coded_column: texts equal once trimmed share a code
        codes, dictionary = _trimmed_codes(codes, dictionary)
    uniques = dictionary.to_numpy(zero_copy_only=False).astype(object, copy=False)
    return remember(uniques, codes, dictionary)


class Numbers:
    """The text behind a numbers-first column (:func:`coded_column`, or a CSV column Arrow
    read as float64 outright: :func:`typed_numbers`).

    ``text``: the trimmed cells as an Arrow string array (rows,), made by ``load`` on first
    use when not given; ``missing``: whether some cell may be empty or a missing-value mark
    (NaN in the values); ``empty``: (rows,) bool, the cells that are ``""``, when known
    without the text.
    """

    def __init__(
        self,
        text: Any = None,
        missing: bool = False,
        *,
        empty: np.ndarray | None = None,
        load: Callable[[], Any] | None = None,
    ) -> None:
        self._text, self.missing, self._empty, self._load = text, missing, empty, load

    @property
    def text(self) -> Any:
        if self._text is None:
            self._text = self._load()  # type: ignore[misc]
        return self._text

    def equals(self, value: str) -> np.ndarray:
        """(rows,) bool: which cells are the text ``value``."""
        if value == "" and self._empty is not None:
            return self._empty
        import pyarrow.compute as pc

        return pc.equal(self.text, value).to_numpy(zero_copy_only=False)

    def head(self, rows: int) -> Numbers:
        """The text of the first ``rows`` cells."""
        return Numbers(
            None if self._text is None else self._text.slice(0, rows),
            self.missing,
            empty=None if self._empty is None else self._empty[:rows],
            load=lambda: self.text.slice(0, rows),
        )


def typed_numbers(values: np.ndarray, empty: np.ndarray, load: Callable[[], Any]) -> np.ndarray:
    """A CSV column Arrow read as float64 (``values`` (rows,), NaN where the cell was empty,
    ``empty`` (rows,) bool those cells) as a numbers-first column whose text ``load()``
    makes (the trimmed cells as an Arrow string array) when some reader asks for it."""
    missing = bool(empty.any() or np.isnan(values).any())  # "nan" is a mark, as text
    return remember_numbers(values, Numbers(None, missing, empty=empty, load=load))


_NUMBERS: dict[int, tuple[weakref.ref, Numbers]] = {}
#: Numbers-first columns whose text was asked for: made once.
_AS_TEXT: dict[int, np.ndarray] = {}


@functools.lru_cache(maxsize=4)
def _mark_set(missing: frozenset[str]) -> Any:
    import pyarrow as pa

    return pa.array(sorted(missing), type=pa.string())


def _parse_numbers(text: Any, missing: frozenset[str]) -> np.ndarray | None:
    """A trimmed Arrow text column as numbers-first float64 values, or None when some cell is
    neither a number nor a missing-value mark."""
    import pyarrow as pa
    import pyarrow.compute as pc

    marks = pc.is_in(text, value_set=_mark_set(missing))
    has_marks = bool(pc.any(marks).as_py())
    target = pc.if_else(marks, pa.scalar(None, pa.string()), text) if has_marks else text
    try:
        values = pc.cast(target, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return remember_numbers(values, Numbers(text, has_marks))


def remember_numbers(values: np.ndarray, numbers: Numbers) -> np.ndarray:
    """Make the float64 ``values`` read-only and numbers-first, ``numbers`` its text."""
    values.flags.writeable = False
    key = id(values)

    def forget(_ref: Any, k: int = key) -> None:
        _NUMBERS.pop(k, None)
        _AS_TEXT.pop(k, None)

    _NUMBERS[key] = (weakref.ref(values, forget), numbers)
    return values


def numbers_first(values: np.ndarray) -> Numbers | None:
    """The text behind ``values`` if it is a numbers-first column (this very array), else
    None."""
    entry = _NUMBERS.get(id(values))
    if entry is None or entry[0]() is not values:
        return None
    return entry[1]


def as_text(values: np.ndarray) -> np.ndarray:
    """A numbers-first column as the coded text column it would otherwise be (an object
    array of ``str``, made once); any other column as it is."""
    nf = numbers_first(values)
    if nf is None:
        return values
    text = _AS_TEXT.get(id(values))
    if text is None:
        uniques = nf.text.to_numpy(zero_copy_only=False).astype(object, copy=False)
        text = _AS_TEXT[id(values)] = remember(uniques, None, nf.text)
    return text


def text_columns(cols: dict[str, np.ndarray], keep: tuple[str, ...] = ()) -> dict:
    """``cols`` with every numbers-first column but those named in ``keep`` as text
    (:func:`as_text`): for readers that look at cells as text."""
    return {c: v if c in keep else as_text(v) for c, v in cols.items()}


def arrow_text(values: np.ndarray) -> Any:
    """A coded or numbers-first column's cells as an Arrow string array (rows,), or None for
    any other column."""
    nf = numbers_first(values)
    if nf is not None:
        return nf.text
    c = coded(values)
    if c is None:
        return None
    if c.codes is None:
        return c.arrow
    import pyarrow as pa

    return c.arrow.take(pa.array(c.codes))


def remember(
    uniques: np.ndarray,
    codes: np.ndarray | None,
    arrow: Any,
    *,
    rows: Any = None,
    ordered: bool = False,
) -> np.ndarray:
    """``uniques[codes]`` as a read-only object array whose codes :func:`coded` returns.

    ``uniques``: (u,) object array of ``str``; ``codes``: (rows,) ints in ``[0, u)``, or None
    for ``uniques`` itself (which is then made read-only); ``arrow``: ``uniques`` as an
    Arrow string array; ``rows``, ``ordered``: as :class:`Coded` says (given only when
    true of these very values).
    """
    if codes is None:
        values = uniques
    elif len(uniques) == 1:  # one text: filled (no index read per row)
        values = np.empty(len(codes), dtype=object)
        values.fill(uniques[0])
    else:
        values = uniques[codes] if len(uniques) else np.empty(len(codes), dtype=object)
    values.flags.writeable = False
    key = id(values)
    ref = weakref.ref(values, lambda _ref, k=key, known=_KNOWN: known.pop(k, None))
    _KNOWN[key] = (ref, Coded(uniques, codes, arrow, rows, ordered))
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
    nf = numbers_first(values)
    if nf is not None:
        import pyarrow.compute as pc

        return nf.equals(text)
    c = coded(values)
    if c is None:
        return np.asarray(values == text, dtype=bool)
    import pyarrow.compute as pc

    return c.spread(pc.equal(c.arrow, text).to_numpy(zero_copy_only=False))


def head(values: np.ndarray, rows: int) -> np.ndarray:
    """The first ``rows`` values, still coded (or numbers-first) when ``values`` is."""
    nf = numbers_first(values)
    if nf is not None:
        return remember_numbers(values[:rows].copy(), nf.head(rows))
    c = coded(values)
    if c is None:
        return values[:rows]
    if c.codes is None:
        return remember(c.uniques[:rows], None, c.arrow.slice(0, rows))
    part = None if c.rows is None else c.rows.slice(0, rows)
    return remember(c.uniques, c.codes[:rows], c.arrow, rows=part, ordered=c.ordered)


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
    elif c.rows is not None:  # the cells as read: a cast of the offsets, no text copied
        text = c.rows.cast(pa.large_string())
    elif len(c.uniques) == 1:
        text = _repeated_text(str(c.uniques[0]), len(c.codes))
    else:
        codes = pa.array(c.codes.astype(np.int32, copy=False))
        text = pa.DictionaryArray.from_arrays(codes, c.arrow).cast(pa.large_string())
    # the dtype pandas infers for an object array of str (``str`` since pandas 3)
    column = pd.array(text, dtype=pd.Series(np.array([""], dtype=object)).dtype)
    if c.codes is None:
        return column
    # its names without hashing a row
    return remember_distinct(column, c.uniques, c.codes, ordered=c.ordered)


def _repeated_text(value: str, rows: int) -> Any:
    """``rows`` copies of ``value`` as an Arrow ``large_string`` array, from its buffers."""
    import pyarrow as pa

    data = value.encode("utf-8")
    if data:
        offsets = np.arange(0, (rows + 1) * len(data), len(data), dtype=np.int64)
    else:
        offsets = np.zeros(rows + 1, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data * rows))


def factor_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """``values`` as integer codes, one per distinct value: ``(codes (rows,) int64, count)``
    with ``codes[a] == codes[b]`` exactly when ``values[a] == values[b]``.

    A coded column is factorized on its distinct texts only (a few, not one per row: a text
    that repeats in the dictionary gets one code); a column whose codes were remembered
    (:func:`remember_factors`) is not factorized again; anything else by
    ``pandas.factorize`` (hashing every row).
    """
    per, rows, count = factor_parts(values)
    return (rows if per is None else per[rows]), count


def factor_parts(values: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, int]:
    """:func:`factor_codes` in two parts, for callers that combine codes in place:
    ``(per, rows, count)`` with the codes ``per[rows]`` (``per`` (u,) int64 or None for
    ``rows`` itself; ``rows`` (rows,) ints)."""
    import pandas as pd

    known = remembered_factors(values)
    if known is not None:
        return None, known[0], known[1]
    c = coded(values)
    if c is None:
        ranged = _range_codes(values)
        if ranged is not None:
            return None, ranged[0], ranged[1]
        codes, uniques = pd.factorize(values)
        return None, codes.astype(np.int64, copy=False), len(uniques)
    ucodes, distinct = pd.factorize(c.uniques)
    ucodes = ucodes.astype(np.int64, copy=False)
    if c.codes is not None and len(distinct) == len(ucodes):  # distinct texts: codes as they are
        return None, c.codes, len(distinct)
    return (None, ucodes, len(distinct)) if c.codes is None else (ucodes, c.codes, len(distinct))


def _range_codes(values: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Whole numbers in a narrow range (steps as Parquet or JSON hold them) as codes without
    hashing: ``(values - min (rows,) int64, max - min + 1)``, equal exactly where the values
    are; None for any other column, or a range wider than 4 codes per row."""
    if values.dtype.kind not in "iu" or len(values) == 0:
        return None
    lo, hi = int(values.min()), int(values.max())
    if hi - lo >= max(4 * len(values), 1 << 16):
        return None
    return np.subtract(values, lo, dtype=np.int64), hi - lo + 1


_FACTORS: dict[int, tuple[weakref.ref, np.ndarray, int]] = {}


def remember_factors(values: np.ndarray, codes: np.ndarray, count: int) -> np.ndarray:
    """Make ``values`` read-only and remember its :func:`factor_codes` (``codes`` (rows,)
    int64 in ``[0, count)``, equal exactly where the values are); returns ``values``."""
    values.flags.writeable = False
    key = id(values)
    ref = weakref.ref(values, lambda _ref, k=key, known=_FACTORS: known.pop(k, None))
    _FACTORS[key] = (ref, codes, count)
    return values


def remembered_factors(values: np.ndarray) -> tuple[np.ndarray, int] | None:
    """The codes :func:`remember_factors` kept for this very array, or None."""
    known = _FACTORS.get(id(values))
    if known is None or known[0]() is not values:
        return None
    return known[1], known[2]


def constant(value: str, rows: int) -> np.ndarray:
    """``rows`` copies of the text ``value`` as a coded column (one distinct text)."""
    import pyarrow as pa

    return remember(
        np.array([value], dtype=object),
        np.zeros(rows, dtype=np.intp),
        pa.array([value]),
        ordered=True,
    )


def repeated(values: list[str], counts: list[int]) -> np.ndarray:
    """Each text ``values[k]`` repeated ``counts[k]`` times, in order, as a coded column
    ``(sum(counts),)``: the name columns of a log stored one file per key (MLflow's metric
    files), with no text hashed per row."""
    import pyarrow as pa

    keep = [k for k, c in enumerate(counts) if c > 0]  # a part with no rows names nothing
    uniques = np.array([values[k] for k in keep], dtype=object)
    codes = np.repeat(np.arange(len(keep), dtype=np.intp), [counts[k] for k in keep])
    arrow = pa.array(uniques.tolist(), type=pa.string())
    return remember(uniques, codes, arrow, ordered=True)  # (codes 0, 1, ... in turn)
