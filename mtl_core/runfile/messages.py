"""How the run-file readers word a problem: one place for the pieces every message uses.

Every reader error is one ``LabError`` line naming the file, the place (row, line, tag or
array) and the column, then what is wrong and how to fix it. :func:`fail` builds the
"first bad row, and N more like it" form; the other helpers shorten user values and name
sizes, so a hostile file cannot make a message long or multi-line.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.runfile.schema import MAX_MB_VARIABLE

#: Names row ``i`` of a parsed table for messages (``"row 3 (line 4)"``, ``"line 7"``).
Locate = Callable[[int], str]

#: Added to the long form's missing-column message: the other layout the reader accepts.
WIDE_NOTE = "; a square matrix with task names as header is accepted too (docs/run-format.md)"
#: The row object a JSON affinity table holds, for messages.
JSON_ROW = '{"step": 0, "source": "a", "target": "b", "affinity": 0.1}'


def fail(
    name: str, locate: Locate, col: str, rows: np.ndarray, what: Callable[[int], str]
) -> LabError:
    """One message for the first bad row of ``rows`` (a boolean mask), counting the others.

    ``what(i)`` says what is wrong with row ``i``; the result reads
    ``"<name>: <place>, column '<col>': <what> (and N more rows like it)"``.
    """
    idx = np.flatnonzero(rows)
    more = f" (and {len(idx) - 1} more rows like it)" if len(idx) > 1 else ""
    return LabError(f"{name}: {locate(int(idx[0]))}, column {col!r}: {what(int(idx[0]))}{more}")


def over_limit(name: str, what: str, size: int, limit: int) -> LabError:
    """The size-limit message: ``"<name>: <what> 250.0 MB, over the 200.0 MB limit (...)"``."""
    return LabError(
        f"{name}: {what} {mb(size)}, over the {mb(limit)} limit (raise it with {MAX_MB_VARIABLE})"
    )


def close(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``word`` is probably a misspelling of (case, spaces, ``-``/``_`` ignored),
    or None."""
    norm = {c.strip().lower().replace(" ", "_").replace("-", "_"): c for c in candidates}
    key = word.lower()
    if key in norm:
        return norm[key]
    hit = difflib.get_close_matches(key, list(norm), n=1, cutoff=0.75)
    return norm[hit[0]] if hit else None


def show(v: Any) -> str:
    """A cell value as a message shows it: quoted if text, at most 40 characters; a nested
    value (a JSON array or object) is shown a few levels deep only, however deep it is."""
    if isinstance(v, (list, dict, tuple, set)):
        s = _SHORT.repr(v)
    else:
        s = repr(v) if isinstance(v, str) else str(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _short_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxdict, r.maxstring, r.maxother = 3, 4, 4, 40, 40
    return r


_SHORT = _short_repr()


def short(exc: BaseException) -> str:
    """The first line of a library's exception, at most 160 characters."""
    s = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return s if len(s) <= 160 else s[:157] + "..."


#: The longest reader message (characters); longer ones keep their head and tail.
MAX_MESSAGE = 600


def one_line(msg: str) -> str:
    """A reader message as one line of bounded length, whatever a file put in it: line
    breaks (and the other characters ``str.splitlines`` breaks at) become spaces, and a
    message over :data:`MAX_MESSAGE` characters keeps its start and its end (where the
    limit and the fix are named) around an ellipsis."""
    msg = " ".join(msg.splitlines())
    if len(msg) <= MAX_MESSAGE:
        return msg
    return msg[: MAX_MESSAGE - 201] + " ... " + msg[-196:]


def mb(n: int) -> str:
    """A size in bytes as megabytes (``"1.5 MB"``)."""
    return f"{n / (1024 * 1024):.1f} MB"


def names(xs: Sequence[str], limit: int = 12) -> str:
    """A list of names for a message, the first ``limit`` then a count."""
    shown = ", ".join(map(str, xs[:limit]))
    return shown + (f", ... ({len(xs)} in all)" if len(xs) > limit else "")
