"""Faults of the run store's file for tests: a damaged file, a full disk (an injected
``sqlite3.OperationalError`` in the store's write path, as SQLite raises it), and running a
check as an unprivileged user (root ignores file permissions).

The training functions here run in spawned worker processes (importable by name); they read
their behaviour from the environment, which the worker inherits: ``MTL_TEST_FULL_AT`` (the
step from which the disk is "full"), ``MTL_TEST_FULL_ALL`` (``1``: every write fails, also
the worker's own status updates; else only the step writes), ``MTL_TEST_SLEEP`` (seconds
per step).
"""

from __future__ import annotations

import gc
import os
import pickle
import random
import sqlite3
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mtl_core.store.base import StoreBase
from mtl_core.store.faults import forget_checks
from mtl_core.store.runs import RunsMixin

FULL = "database or disk is full"


def _raise_full(con: Any) -> None:
    raise sqlite3.OperationalError(FULL)


_CHANGES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


class _FullConnection:
    """A connection on a full disk: statements that change the database fail (reads, and a
    write transaction that changes nothing, still work, as with SQLite on a full disk)."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self._con = con

    def _check(self, sql: str) -> None:
        if sql.lstrip().upper().startswith(_CHANGES):
            raise sqlite3.OperationalError(FULL)

    def execute(self, sql: str, *args: Any) -> Any:
        self._check(sql)
        return self._con.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        self._check(sql)
        return self._con.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def make_full(*, all_writes: bool = True, path: Path | None = None) -> Callable[[], None]:
    """From now on, store writes in this process fail as on a full disk (inside the write
    transaction, as SQLite reports it); ``all_writes=False``: only the step writes; ``path``:
    only the store at that path (other stores of the process, e.g. a runner left by another
    test, are not touched). Returns a function undoing it."""
    want = None if path is None else Path(path).resolve()

    def hit(store: Any) -> bool:
        return want is None or Path(store.path).resolve() == want

    if all_writes:
        orig = StoreBase._write

        def full_write(self, fn):
            if not hit(self):
                return orig(self, fn)
            return orig(self, lambda con: fn(_FullConnection(con)))

        StoreBase._write = full_write  # type: ignore[method-assign]
        return lambda: setattr(StoreBase, "_write", orig)
    orig_append = RunsMixin.append_step

    def full_append(self, run_id, event, **kw):
        if not hit(self):
            return orig_append(self, run_id, event, **kw)
        return self._write(_raise_full)

    RunsMixin.append_step = full_append  # type: ignore[method-assign]
    return lambda: setattr(RunsMixin, "append_step", orig_append)


@contextmanager
def disk_full(*, all_writes: bool = True, path: Path | None = None):
    undo = make_full(all_writes=all_writes, path=path)
    try:
        yield
    finally:
        undo()


def full_disk_train(cfg: Any, on_step=None):
    """``fake_train`` whose store becomes full at step ``$MTL_TEST_FULL_AT``."""
    from tests.helpers.runner_fakes import fake_train

    full_at = int(os.environ.get("MTL_TEST_FULL_AT", "3"))
    all_writes = os.environ.get("MTL_TEST_FULL_ALL") == "1"
    sleep = float(os.environ.get("MTL_TEST_SLEEP", "0"))

    def step(ev):
        if ev.step == full_at:
            make_full(all_writes=all_writes)
        on_step(ev)
        time.sleep(sleep)

    return fake_train(cfg, step)


def slow_train(cfg: Any, on_step=None):
    """``fake_train`` with ``$MTL_TEST_SLEEP`` seconds per step (any scenario's config)."""
    from tests.helpers.runner_fakes import fake_train

    sleep = float(os.environ.get("MTL_TEST_SLEEP", "0.2"))

    def step(ev):
        on_step(ev)
        time.sleep(sleep)

    return fake_train(cfg, step)


def damage(path: Path, seed: int = 0) -> None:
    """Overwrite the first 64 bytes of every page but the first (b-tree page headers) of the
    SQLite file at ``path`` with random bytes (after moving the WAL's pages into it)."""
    gc.collect()  # close the connections of Store objects that are gone
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    forget_checks()  # the next write checks it again, as a new process would
    data = bytearray(path.read_bytes())
    size = int.from_bytes(data[16:18], "big")
    size = 65536 if size == 1 else size
    rnd = random.Random(seed)
    for off in range(size, len(data), size):
        data[off : off + 64] = bytes(rnd.randrange(256) for _ in range(64))
    path.write_bytes(bytes(data))


def as_unprivileged(fn: Callable[[], Any]) -> Any:
    """``fn()`` run where file permissions apply: directly for a normal user; as root, in a
    forked child that drops to user ``nobody`` (65534). Returns what ``fn`` returned, or
    re-raises what it raised (both must pickle)."""
    if os.geteuid() != 0:
        return fn()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery from here on, just the call
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            try:
                out: tuple[str, Any] = ("ok", fn())
            except BaseException as exc:
                out = ("raised", exc)
            with os.fdopen(w, "wb") as f:
                pickle.dump(out, f)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)
    if kind == "raised":
        raise value
    return value


def damage_page(path: Path, page: int, size: int = 8192) -> None:
    """Overwrite page ``page`` (0-based, of ``size`` bytes) of the SQLite file at ``path``
    with a fixed byte pattern, in place (the same file, as a bad disk or a stray write
    would), after moving the WAL's pages into it."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA busy_timeout = 10000")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    with open(path, "r+b") as f:
        f.seek(page * size)
        f.write(bytes(range(256)) * (size // 256))


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of the CLI run in this process on ``argv``."""
    from mtl_core.commands.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err
