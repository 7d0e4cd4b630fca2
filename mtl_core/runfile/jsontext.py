"""JSON text parsed with the guards an upload needs: the one JSON parser of every reader path.

JSON Lines tables, JSON tables and matrices, ``meta.json`` and ``groupings.jsonl`` all parse
through :func:`load_json`, so a hostile document fails the same way everywhere: one
``LabError`` line, never a traceback. Python's own ``json`` module parses; around it:

- **nesting**: a document nested deeper than the parser's recursion allows is refused (not a
  ``RecursionError``); :func:`check_depth` bounds the depth of the parts the lab keeps whole
  (``meta.json``'s ``config``), so storing and showing them cannot recurse without end;
- **huge integers**: a whole number with more than :data:`MAX_DIGITS` digits (a float64
  holds at most 309) is refused before Python's int conversion limit raises a ``ValueError``;
- **lone surrogates**: a ``\\udc00`` escape that is not half of a surrogate pair is not a
  character; text holding one could not be stored or shown, so it is refused with its place.

``NaN``, ``Infinity`` and ``-Infinity`` are read as Python's ``json`` reads them (non-finite
affinity cells are then unmeasured, left out and counted by the readers).
"""

from __future__ import annotations

import json
import re
from typing import Any

from mtl_core.errors import LabError
from mtl_core.runfile.messages import show

#: Longest whole number read (10**308 - 1 still converts to a float64).
MAX_DIGITS = 308
#: Deepest nesting kept in a value the lab stores whole (``meta.json``'s ``config``).
MAX_DEPTH = 64

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def load_json(text: str, name: str) -> Any:
    """Parse one JSON document (``text``), refusing what the module docstring lists.

    ``name`` names the place in messages (``"x.jsonl: line 3"``).

    Raises
    ------
    json.JSONDecodeError
        Invalid JSON, as ``json.loads`` raises it (callers word it for their container).
    LabError
        Nesting too deep, a whole number with too many digits, or a lone surrogate escape.
    """
    hook = _parse_int if _long_digit_run(text) else None
    try:
        doc = json.loads(text, parse_int=hook)
    except RecursionError:
        raise LabError(
            f"{name}: JSON nested too deeply to read (a run file needs a few levels)"
        ) from None
    except _TooLong as exc:
        raise LabError(
            f"{name}: a whole number with {exc.args[0]} digits (at most {MAX_DIGITS} are read)"
        ) from None
    if _SURROGATE_ESCAPE.search(text):
        check_text(doc, name)
    return doc


#: Each ASCII digit byte -> ``1``, any other byte -> ``0`` (:func:`_long_digit_run`).
_DIGIT_BYTES = bytes(49 if 48 <= b <= 57 else 48 for b in range(256))
_CHUNK = 1 << 22


def _long_digit_run(text: str) -> bool:
    """Whether ``text`` holds more than :data:`MAX_DIGITS` ASCII digits in a row (the only
    digits a JSON number has), as a regular expression ``[0-9]{309}`` tells, about 8x faster:
    4 MB at a time (overlapping by ``MAX_DIGITS``), each UTF-8 encoded, its digits mapped
    to ``1`` by ``bytes.translate`` and searched for the run at C speed."""
    run = b"1" * (MAX_DIGITS + 1)
    for start in range(0, max(len(text), 1), _CHUNK):
        piece = text[start : start + _CHUNK + MAX_DIGITS].encode("utf-8", "surrogatepass")
        if run in piece.translate(_DIGIT_BYTES):
            return True
    return False


def check_depth(value: Any, name: str, limit: int = MAX_DEPTH) -> None:
    """Refuse ``value`` nested deeper than ``limit`` arrays/objects (walked without
    recursion)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        elif not isinstance(v, list):
            continue
        if depth > limit:
            raise LabError(f"{name}: nested deeper than {limit} levels")
        stack.extend((x, depth + 1) for x in v if isinstance(x, (list, dict)))


class _TooLong(Exception):
    """A whole number over :data:`MAX_DIGITS` digits (carries the digit count)."""


def _parse_int(s: str) -> int:
    digits = len(s.lstrip("-"))
    if digits > MAX_DIGITS:
        raise _TooLong(digits)
    return int(s)


def check_text(doc: Any, name: str) -> None:
    """Refuse a key or string of ``doc`` (JSON-like: dicts, lists, sets, tuples, scalars)
    holding a lone surrogate, which no UTF-8 store or page can hold (walked without
    recursion).

    Raises ``LabError`` naming the text and the code point.
    """
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                _encodable(k, name)
                stack.append(x)
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
        else:
            _encodable(v, name)


def _encodable(v: Any, name: str) -> None:
    if not isinstance(v, str):
        return
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LabError(
            f"{name}: text {show(v)} holds a lone surrogate escape "
            f"(\\u{ord(v[exc.start]):04x}), which is not a character; write the character "
            "itself or a complete surrogate pair"
        ) from None


def json_lines(text: str) -> list[str]:
    """The lines of a JSON Lines text: split at ``\\n``, ``\\r\\n`` and an old Mac's lone
    ``\\r``, alone or mixed (a raw CR cannot be inside a JSON string, so each is a line end),
    and at nothing else (a raw U+2028 or U+0085 is legal inside a JSON string)."""
    if "\r" not in text:
        return text.split("\n")
    return re.split(r"\r\n?|\n", text)
