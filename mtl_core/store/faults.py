"""When the run store's file itself is the problem: a full disk, a read-only file or folder, a
damaged (corrupt) database, a failing disk. Torch-free.

SQLite reports these as ``sqlite3.OperationalError``/``DatabaseError`` with terse texts
("database or disk is full", "attempt to write a readonly database", "database disk image is
malformed"). :func:`store_fault` turns them into a :class:`StoreFault`: one line saying what
is wrong with which file and what to do (free space, make it writable, recover the damaged
file with ``sqlite3 ... ".recover"``). Programming errors (a bad SQL statement, a constraint)
are not faults of the file and stay as they are.

Before the first write to a store in a process, :func:`check_integrity` runs SQLite's
``PRAGMA quick_check`` (a linear scan, much cheaper than ``integrity_check``), so a damaged
file is refused before anything is written into it; a connection that keeps writing (a
long training run) checks again every :func:`check_every_s` seconds, so damage done during a
run stops its writes within that time. A write or read that meets a damaged page
(``SQLITE_CORRUPT``, ``SQLITE_NOTADB``) is a ``damaged`` :class:`StoreFault` at once.

A process that found a file damaged remembers it (:func:`known_damage`), so the store can
show what no write can record any more: a run still ``running`` in a damaged file is
stopped (its steps and outcome cannot be saved), and readers show it ``failed`` with the
damage (:meth:`mtl_core.store.base.StoreBase._as_read`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from mtl_core.errors import LabError

#: What a fault is: ``full``, ``readonly``, ``damaged``, ``io`` (a disk or file-system error).
KINDS = ("full", "readonly", "damaged", "io")


class StoreFault(LabError):
    """The run store file cannot be used as asked; ``kind`` is one of :data:`KINDS`.

    The message is one line naming the file, what is wrong and the next step.
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> tuple:  # picklable (it crosses process boundaries)
        return (type(self), (str(self), self.kind))


def fault_kind(exc: BaseException) -> str | None:
    """The :data:`KINDS` entry an SQLite error means, or None for any other error
    (a locked store, a bad statement, a constraint)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    msg = str(exc).lower()
    if name.startswith("SQLITE_FULL") or "disk is full" in msg:
        return "full"
    if name.startswith("SQLITE_READONLY") or "readonly database" in msg:
        return "readonly"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in msg:
        return "damaged"
    if "could not decode to utf-8" in msg:  # the store only writes str: a damaged page
        return "damaged"
    if name.startswith("SQLITE_IOERR") or "disk i/o error" in msg:
        return "io"
    return None


def recover_hint(path: Path) -> str:
    """The recovery step for a damaged store (SQLite's own ``.recover``, 3.29+)."""
    fixed = path.with_name(f"{path.stem}-recovered{path.suffix or '.sqlite'}")
    return (
        f'recover what is readable into a new file with `sqlite3 {path} ".recover" | '
        f"sqlite3 {fixed}` and use that one (--store {fixed}), or export the runs that "
        "still read (`export ID --out run.zip`); keep the damaged file"
    )


def store_fault(exc: BaseException, path: Path) -> StoreFault | None:
    """The :class:`StoreFault` for SQLite error ``exc`` on the store at ``path``, or None
    when ``exc`` is not about the file (see :func:`fault_kind`)."""
    kind = fault_kind(exc)
    if kind is None:
        return None
    if kind == "full":
        msg = (
            f"cannot write to the run store {path}: the disk is full ({exc}); free some space "
            "(or use a store on another disk) and try again; what was stored before is kept"
        )
    elif kind == "readonly":
        msg = f"the run store {path} is read-only ({_why_readonly(exc, path)}); " + (
            "make it writable (e.g. chmod u+w on the file and its folder), or copy it to a "
            "writable folder and use the copy"
        )
    elif kind == "damaged":
        msg = f"the run store {path} is damaged ({exc}); nothing was changed; " + recover_hint(path)
        note_damage(path, msg)
    else:
        msg = (
            f"the run store {path} could not be read or written ({exc}): the disk or file "
            "system reported an error; check the disk, then try again"
        )
    return StoreFault(msg, kind)


def _why_readonly(exc: BaseException, path: Path) -> str:
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    if name == "SQLITE_READONLY_DIRECTORY" or not os.access(path.parent, os.W_OK):
        return f"its folder {path.parent} is not writable, and SQLite needs to add files there"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is not writable"
    return "the file or its file system is read-only"


# ---------------------------------------------------------------------------------- integrity

# (path, device, inode) of the files checked (or trusted) in this process: once per file, not
# per change of it, so a long-lived app does not re-scan a busy store on every page's write
_checked: set[tuple[str, int, int]] = set()
_checked_lock = threading.Lock()


#: Environment variable: seconds between the integrity checks of a connection that keeps
#: writing (default :data:`CHECK_EVERY_S`; 0 = before every write).
CHECK_ENV = "MTL_LAB_STORE_CHECK_S"
CHECK_EVERY_S = 30.0


def check_every_s() -> float:
    """Seconds between integrity checks while a connection keeps writing
    (``$MTL_LAB_STORE_CHECK_S``, default 30; a value that is not a number is ignored)."""
    try:
        return max(0.0, float(os.environ.get(CHECK_ENV, "")))
    except ValueError:
        return CHECK_EVERY_S


def check_integrity(con: sqlite3.Connection, path: Path, *, force: bool = False) -> None:
    """Refuse a damaged store (``PRAGMA quick_check``), once per file per process (every
    time with ``force``: the periodic check of a long run).

    Raises
    ------
    StoreFault
        ``kind="damaged"``: the check found a problem (the first one is named) or could not
        read the file.
    """
    key = _key(path)
    if key is None:
        return  # not a plain file (or gone): SQLite itself will say what is wrong
    with _checked_lock:
        if key in _checked and not force:
            return
    try:
        rows = con.execute("PRAGMA quick_check(5)").fetchall()
    except sqlite3.DatabaseError as exc:
        fault = store_fault(exc, path)
        if fault is None or fault.kind != "damaged":
            raise
        raise fault from None
    problems = [
        line
        for r in rows
        for line in str(r[0]).splitlines()
        if line.strip() and line.strip().lower() != "ok" and not line.startswith("*** ")
    ]
    if problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        with _checked_lock:
            _checked.discard(key)
        msg = (
            f"the run store {path} is damaged (integrity check: {problems[0]}{more}); "
            f"nothing was changed; {recover_hint(path)}"
        )
        note_damage(path, msg)
        raise StoreFault(msg, "damaged")
    with _checked_lock:
        _checked.add(key)
        _damaged.pop(key, None)


# (path, device, inode) -> the message of the damage this process found in that file (a
# file replaced by its recovered copy has another inode, so it is sound again)
_damaged: dict[tuple[str, int, int], str] = {}


def note_damage(path: Path, message: str) -> None:
    """Remember that the store file at ``path`` is damaged (``message``: the fault's)."""
    key = _key(path)
    if key is not None:
        with _checked_lock:
            _damaged.setdefault(key, message)


def known_damage(path: Path) -> str | None:
    """The damage this process found in the store file at ``path`` (the first fault's
    one-line message), or None when it found none."""
    key = _key(path)
    if key is None:
        return None
    with _checked_lock:
        return _damaged.get(key)


def was_checked(path: Path) -> bool:
    """Whether this process has checked (or trusts) the store file at ``path``."""
    key = _key(path)
    with _checked_lock:
        return key is None or key in _checked


def trust(path: Path) -> None:
    """Skip the check for the store at ``path`` in this process (a worker whose runner
    checked the file before it claimed the run)."""
    key = _key(path)
    if key is not None:
        with _checked_lock:
            _checked.add(key)


def forget_checks() -> None:
    """Check every store again at its next first write, and forget the damage found (as a
    new process would)."""
    with _checked_lock:
        _checked.clear()
        _damaged.clear()


def _key(path: Path) -> tuple[str, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (str(path.resolve()), st.st_dev, st.st_ino)


__all__ = [
    "CHECK_ENV",
    "CHECK_EVERY_S",
    "KINDS",
    "StoreFault",
    "check_every_s",
    "check_integrity",
    "fault_kind",
    "forget_checks",
    "known_damage",
    "note_damage",
    "recover_hint",
    "store_fault",
    "trust",
    "was_checked",
]
