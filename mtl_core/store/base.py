"""Connection handling under the run store: one SQLite connection per thread (and per process),
WAL mode, busy retries, and every read or write run as one transaction function ``fn(con)``.

The per-concern parts of :class:`~mtl_core.store.Store` (runs, readers, notes, ground truth,
transfer) build on :class:`StoreBase` and touch the database only through ``_read`` and
``_write`` (the pattern of datasette's ``execute_fn`` / ``execute_write_fn``).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

from mtl_core.errors import LabError
from mtl_core.store.faults import (
    StoreFault,
    check_every_s,
    check_integrity,
    known_damage,
    store_fault,
    was_checked,
)
from mtl_core.store.migrations import MIGRATIONS, migrate, schema_version
from mtl_core.store.records import RunInfo, load_run

T = TypeVar("T")

BUSY_TIMEOUT_S = 10.0  # sqlite's own wait for a lock
RETRY_FOR_S = 60.0  # then our retries with backoff, before giving up with a LabError


def default_store_path() -> Path:
    """``$MTL_LAB_STORE`` if set, else ``./.lab/store.sqlite`` under the working directory."""
    env = os.environ.get("MTL_LAB_STORE", "").strip()
    return Path(env) if env else Path.cwd() / ".lab" / "store.sqlite"


def is_busy(exc: BaseException) -> bool:
    """Whether an SQLite error means "another connection holds the lock" (worth retrying)."""
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


def read_only_mode(path: Path) -> str | None:
    """How to open an existing store that cannot be written, as SQLite URI parameters:
    ``mode=ro`` for a read-only file in a writable folder (SQLite can still add its
    ``-shm`` file for WAL), ``mode=ro&immutable=1`` for a read-only folder or file system
    (nothing can change the file there); None for a writable store or one that does not
    exist yet (it is created)."""
    try:
        if not path.is_file():
            return None
    except OSError:
        return None
    if not os.access(path.parent, os.W_OK):
        return "mode=ro&immutable=1"
    if not os.access(path, os.W_OK):
        return "mode=ro"
    return None


class StoreBase:
    """Handle on one store file; cheap to create, safe to share between threads.

    Parameters
    ----------
    path : the SQLite file; default :func:`default_store_path`. Parent folders are created.

    Raises
    ------
    LabError : the folder cannot be created, the file is not a run store, its schema is newer
        than this version understands, or it stays locked for ``RETRY_FOR_S`` seconds;
        a :class:`~mtl_core.store.faults.StoreFault` when the disk is full, the file is
        read-only or damaged (checked with ``quick_check`` before the first write).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self._local = threading.local()
        self._con()  # create + migrate now, so errors surface at construction

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable: reopen by path in the other process
        return (type(self), (str(self.path),))

    # ------------------------------------------------------------------ connection

    def _con(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the schema migrated) on first use."""
        con = getattr(self._local, "con", None)
        if con is not None and getattr(self._local, "pid", None) == os.getpid():
            return con
        mode = read_only_mode(self.path)
        if mode is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                msg = f"cannot create the run store folder {self.path.parent}: {exc}"
                raise LabError(msg) from None
        try:
            target: str | Path = self.path
            if mode is not None:  # a read-only file or folder: open it for reading only
                target = f"{self.path.resolve().as_uri()}?{mode}"
            con = sqlite3.connect(
                target,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
                uri=mode is not None,
            )
        except sqlite3.Error as exc:
            raise LabError(f"cannot open the run store {self.path}: {exc}") from None
        con.row_factory = sqlite3.Row  # rows by column name (a Row still indexes and unpacks)
        self._retry(lambda: self._setup_read_only(con) if mode else self._setup(con))
        self._local.con, self._local.pid = con, os.getpid()
        self._local.checked_at = None
        return con

    def _setup(self, con: sqlite3.Connection) -> None:
        con.execute("PRAGMA foreign_keys = ON")
        con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        try:
            # 8 KiB pages keep a 20-task matrix (3.2 KB) on one page; only a new file takes
            # it, and it must come before WAL mode is switched on.
            con.execute("PRAGMA page_size = 8192")
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            if is_busy(exc):
                raise
            if not _has_sqlite_header(self.path):  # some other file: not damage, not ours
                raise LabError(f"{self.path} is not a run store ({exc})") from None
            fault = store_fault(exc, self.path)  # read-only, full, damaged: say which
            raise fault or LabError(f"{self.path} is not a run store ({exc})") from None
        if str(mode).lower() != "wal":
            raise LabError(f"cannot switch the run store {self.path} to WAL mode (got {mode})")
        con.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable at checkpoints
        migrate(con, self.path)

    def _check_from_disk(self) -> None:
        """``quick_check`` on a new connection: this thread's may answer from its page cache,
        which does not see the file changed behind SQLite's back (a bad disk, a stray write)."""
        mode = read_only_mode(self.path) or "mode=ro"
        con = sqlite3.connect(f"{self.path.resolve().as_uri()}?{mode}", uri=True)
        try:
            con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            check_integrity(con, self.path, force=True)
        finally:
            con.close()

    def check(self) -> None:
        """Run SQLite's ``quick_check`` on the file now (a linear scan; about 0.5 s per
        100 MB). Raises a ``damaged`` :class:`~mtl_core.store.faults.StoreFault` naming
        the first problem and the recovery step; returns None for a sound file."""
        self._con()  # opens (and for a new file, creates) the store
        self._retry(self._check_from_disk)

    def _setup_read_only(self, con: sqlite3.Connection) -> None:
        """A store opened for reading: no WAL switch, no migration (it cannot be written),
        so its schema must be this version's."""
        con.execute("PRAGMA foreign_keys = ON")
        con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        try:
            version = schema_version(con)
            con.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            if is_busy(exc):
                raise
            fault = store_fault(exc, self.path)
            if fault is not None and fault.kind != "readonly":
                raise fault from None
            raise LabError(f"{self.path} is not a run store ({exc})") from None
        if version != len(MIGRATIONS):
            raise LabError(
                f"the run store {self.path} is read-only and has schema version {version}, "
                f"not this version's {len(MIGRATIONS)}; open it once where it is writable "
                "(or a writable copy) to update it"
            )

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # ------------------------------------------------------------------ transactions

    def _retry(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` until it does not hit a locked store, backing off up to RETRY_FOR_S.

        A fault of the file (disk full, read-only, damaged, I/O error) is raised as a
        :class:`~mtl_core.store.faults.StoreFault` (a LabError), not retried.
        """
        deadline = time.monotonic() + RETRY_FOR_S
        delay = 0.005
        while True:
            try:
                return fn()
            except sqlite3.DatabaseError as exc:
                if not is_busy(exc):
                    fault = store_fault(exc, self.path)
                    if fault is not None:
                        raise fault from None
                    raise
                if time.monotonic() > deadline:
                    raise LabError(
                        f"the run store {self.path} stayed busy for {RETRY_FOR_S:.0f} s; "
                        "is another program holding it open?"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one write transaction (retried as a whole when the store is busy)."""
        con = self._con()
        if con.in_transaction:
            raise RuntimeError("write inside snapshot(): reads only there")
        # never write into a damaged file: quick_check once per file and process, and again
        # every check_every_s() while this connection keeps writing (a long run)
        last = getattr(self._local, "checked_at", None)
        now = time.monotonic()
        if last is None:
            self._retry(lambda: check_integrity(con, self.path))
            self._local.checked_at = now
        elif now - last >= check_every_s():
            self._retry(self._check_from_disk)
            self._local.checked_at = now

        def attempt() -> T:
            con.execute("BEGIN IMMEDIATE")
            try:
                out = fn(con)
                con.execute("COMMIT")
                return out
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

        return self._retry(attempt)

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` inside one read transaction (or the enclosing ``snapshot()``)."""
        con = self._con()
        if con.in_transaction:
            with self._faults():
                return fn(con)

        def attempt() -> T:
            con.execute("BEGIN")
            try:
                return fn(con)
            finally:
                if con.in_transaction:
                    con.execute("COMMIT")

        return self._retry(attempt)

    @contextmanager
    def snapshot(self) -> Iterator[Self]:
        """Reads inside the block see one consistent state of the store (no writes there)."""
        con = self._con()
        if con.in_transaction:
            yield self
            return
        self._retry(lambda: con.execute("BEGIN"))
        # a deferred read transaction takes its snapshot at the first read; do one now
        self._retry(lambda: con.execute("SELECT 1 FROM runs LIMIT 1").fetchall())
        try:
            with self._faults():
                yield self
        finally:
            if con.in_transaction:
                with self._faults():
                    con.execute("COMMIT")

    @contextmanager
    def _faults(self) -> Iterator[None]:
        """Raise a fault of the file met inside the block (a damaged page read in a
        ``snapshot()``, ...) as its :class:`~mtl_core.store.faults.StoreFault`."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            fault = store_fault(exc, self.path)
            if fault is None:
                raise
            raise fault from None

    # ------------------------------------------------------------------ runs as read

    def _as_read(self, infos: list[RunInfo]) -> list[RunInfo]:
        """Runs as readers see them: in a damaged file (:func:`~.faults.known_damage`) a
        run that still says ``running`` is shown ``failed`` with the damage, since none of
        its steps nor its outcome can be written any more.

        So that the app and ``runs`` learn of damage done behind a run's back even when no
        writer of theirs met it, a reader that sees a ``running`` run checks the file
        itself (``quick_check`` from disk, about 1.4 ms per MiB) when this process has not
        checked it yet, and again when a running run it sees has not moved on for
        :func:`~.faults.check_every_s` seconds (at least 1 s; at most one check per such
        interval). A run that keeps logging steps has a writer that checks the file, so a
        reader of a healthy, busy store adds no scans."""
        running = [i for i, r in enumerate(infos) if r.status == "running"]
        if not running or known_damage(self.path) is not None:
            return self._as_damaged(infos, running)
        now = time.monotonic()
        every = max(1.0, check_every_s())
        seen = self.__dict__.setdefault("_running_seen", {})  # run id -> (steps, since)
        stalled = False
        for i in running:
            r = infos[i]
            steps, since = seen.get(r.id, (None, now))
            if steps != r.steps_done:
                seen[r.id] = (r.steps_done, now)
            elif now - since >= every:
                stalled = True
        last = self.__dict__.get("_read_checked_at")
        if not was_checked(self.path) or (stalled and (last is None or now - last >= every)):
            self._read_checked_at = now
            try:
                self._retry(self._check_from_disk)
            except StoreFault as exc:
                if exc.kind != "damaged":
                    raise
        return self._as_damaged(infos, running)

    def _as_damaged(self, infos: list[RunInfo], running: list[int]) -> list[RunInfo]:
        """``infos`` with the runs at ``running`` shown stopped, if the file is damaged."""
        damage = known_damage(self.path)
        if damage is None:
            return infos
        out = list(infos)
        for i in running:
            r = out[i]
            step = r.last_step if r.last_step is not None else 0
            out[i] = dataclasses.replace(
                r,
                status="failed",
                eta_s=None,
                error=f"stopped after step {step}: the run store is damaged, nothing more "
                f"can be saved ({damage})",
            )
        return out

    # ------------------------------------------------------------------ shared by the parts

    def _run(self, con: sqlite3.Connection, run_id: int) -> RunInfo:
        """The run's record read on ``con``; LabError if there is no such run."""
        info = load_run(con, run_id)
        if info is None:
            raise LabError(f"no run with id {run_id} in {self.path}")
        return info


def _has_sqlite_header(path: Path) -> bool:
    """Whether ``path`` starts with SQLite's 16-byte file header (or is empty or missing,
    as a new store is): a file without it is some other file, not a damaged store."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return True
    return not head or head == b"SQLite format 3\x00"
