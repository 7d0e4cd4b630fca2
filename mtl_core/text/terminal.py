"""Text bound for a terminal, with the control characters a file may carry made visible.

A run file can hold escape sequences (``ESC ] 0 ; title BEL``, ``ESC [ 2 J``), carriage
returns, bidirectional overrides or lone surrogates in its task names or cells; echoed raw in
an error line they retitle or clear the user's terminal, hide text, or split one line into
two. The command line writes every ``error:``/``warning:`` line through :func:`one_line` and
wraps its stdout and stderr in :class:`SafeStream` (:func:`safe_streams`), so no path prints
them raw. They are shown escaped, Python-style: ``\\x1b``, ``\\x07``, ``\\r``, ``\\u202e``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# C0 controls but tab and newline, DEL, C1 controls, the bidirectional marks/overrides/isolates,
# line/paragraph separators, and surrogates (undecodable bytes kept by surrogateescape).
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_IN_TEXT = re.compile(f"[{_UNSAFE}]")
_IN_LINE = re.compile(f"[{_UNSAFE}\\t\\n]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _show(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every terminal control character escaped (``\\x1b``), newlines and tabs
    kept: for whole outputs (tables, summaries)."""
    return _IN_TEXT.sub(_show, text)


def one_line(text: str) -> str:
    """``text`` as one terminal line: control characters escaped, and newlines and tabs too
    (``\\n``, ``\\t``), so a message quoting a file can never span lines."""
    return _IN_LINE.sub(_show, text)


class SafeStream:
    """A text stream wrapper that escapes control characters (:func:`escape_controls`) in
    everything written; every other attribute is the wrapped stream's.

    ``raw`` is the wrapped stream, for the one writer that needs a control character of its
    own (the progress bar's carriage return), writing only text it made itself.
    """

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(escape_controls(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def raw_stream(stream: Any) -> Any:
    """The stream under a :class:`SafeStream` (``stream`` itself when not wrapped)."""
    return stream.raw if isinstance(stream, SafeStream) else stream


@contextmanager
def safe_streams() -> Iterator[None]:
    """Inside the block, ``sys.stdout`` and ``sys.stderr`` escape control characters."""
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(old[0]), SafeStream(old[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = old


__all__ = ["SafeStream", "escape_controls", "one_line", "raw_stream", "safe_streams"]
