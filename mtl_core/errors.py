"""The one exception type for errors a user can cause (bad config, bad file, bad argument),
and the words for what the machine refused (a full disk, a read-only disk, no permission)."""

from __future__ import annotations

import errno
import os


class LabError(Exception):
    """A problem the user can act on; its message is shown as-is (CLI: one line, exit 2)."""


class DivergedError(LabError):
    """Training produced a NaN or infinite loss; the run is stopped and marked failed."""


#: What to do about an ``OSError`` a write can meet, by errno.
_WRITE_FIXES = {
    errno.ENOSPC: "the disk is full; free some space or write it elsewhere",
    errno.EDQUOT: "the disk quota is used up; free some space or write it elsewhere",
    errno.EROFS: "the disk is read-only; write it elsewhere",
    errno.EACCES: "no permission to write there; write it elsewhere",
    errno.EPERM: "no permission to write there; write it elsewhere",
}


def write_error(exc: OSError, path: str | os.PathLike[str] | None = None) -> LabError:
    """A ``LabError`` line for a failed write: ``"cannot write <path>: the disk is full; free
    some space or write it elsewhere (No space left on device)"``.

    ``path``: the file being written (default: the error's own file name). The machine's
    words stay in brackets; an errno without advice keeps them alone.
    """
    where = path if path is not None else exc.filename
    said = exc.strerror or str(exc)
    fix = _WRITE_FIXES.get(exc.errno) if exc.errno is not None else None
    text = f"{fix} ({said})" if fix else said
    return LabError(f"cannot write {where}: {text}" if where else f"cannot write: {text}")
