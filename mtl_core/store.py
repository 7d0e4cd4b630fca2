"""The run store: one SQLite file (WAL mode) holding every trained or uploaded run. Torch-free.

Location: ``Store(path)``; default ``$MTL_LAB_STORE``, else ``./.lab/store.sqlite`` under the
current working directory. Created on first use; the schema is versioned (``PRAGMA
user_version``) and migrated forward on open.

Reader API (what the app uses)
------------------------------
``list_runs() -> list[RunInfo]``
    Every run, oldest first.
``get_run(run_id) -> RunInfo``
    Name, origin (``trained``/``uploaded``), status, config dict, tasks, task types, progress
    (steps done/total, steps/s, ETA, current losses), error, created/started/finished.
``measures(run_id) -> list[str]``
    Affinity measures logged for the run.
``affinity_steps(run_id, measure) -> (steps, tasks, A)``
    ``steps`` int64 (S,), ``A`` float64 (S, n, n) with ``A[s, i, j]`` = effect of an update on
    ``tasks[i]``'s loss on ``tasks[j]``'s loss at ``steps[s]``; NaN where a cell was not logged.
``metrics(run_id) -> DataFrame``
    Long form ``step, task, split, metric, value``; the per-step minibatch training loss is
    ``split="batch", metric="loss"``.
``groupings(run_id) -> list[(step, grouping)]``
    The grouping used at each step (sequential mode), a tuple of frozensets.
``get_evaluation(run_id, key)`` / ``save_evaluation(run_id, key, result)`` / ``evaluations``
    JSON results computed from a run (e.g. a grouping's test losses), keyed by the caller.
``delete_run(run_id)``; ``import_parsed(parsed, name) -> run_ids``; ``export_parsed(run_id)``.
``snapshot()``
    Context manager: several reads inside it see one consistent state.

Writer API (what the training worker uses)
------------------------------------------
``create_run(...) -> run_id``, ``append_step(run_id, event)`` (one transaction per step),
``set_status(run_id, status, error=...)``, ``request_cancel`` / ``cancel_requested``.

Concurrency: WAL lets readers run while a writer commits, and a reader only ever sees
committed steps (each step is one transaction; a multi-query read can use ``snapshot()``).
Writers take the lock up front (``BEGIN IMMEDIATE``), wait on a busy timeout, and retry with
backoff, so "database is locked" never reaches a user. Each thread gets its own connection.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.events import StepEvent
from mtl_core.fileformat import (
    AFFINITY_FRAME,
    BATCH_SPLIT,
    GROUPING_FRAME,
    METRIC_FRAME,
    ParsedRun,
    matrices_to_long,
)
from mtl_core.jsonio import dumps
from mtl_core.types import Grouping, canonical_grouping

T = TypeVar("T")

STATUSES = ("queued", "running", "finished", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")
TERMINAL = ("finished", "failed", "cancelled", "interrupted")
ORIGINS = ("trained", "uploaded", "logged")

BUSY_TIMEOUT_S = 10.0  # sqlite's own wait for a lock
RETRY_FOR_S = 60.0  # then our retries with backoff, before giving up with a LabError


def default_store_path() -> Path:
    """``$MTL_LAB_STORE`` if set, else ``./.lab/store.sqlite`` under the working directory."""
    env = os.environ.get("MTL_LAB_STORE", "").strip()
    return Path(env) if env else Path.cwd() / ".lab" / "store.sqlite"


# Each migration takes the schema from version k to k + 1; never edit a released one.
MIGRATIONS: list[str] = [
    # 0 -> 1
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL DEFAULT '',
        origin TEXT NOT NULL,
        status TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        tasks TEXT,
        task_types TEXT NOT NULL DEFAULT '{}',
        notes TEXT NOT NULL DEFAULT '',
        meta TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        error TEXT,
        error_detail TEXT,
        steps_done INTEGER NOT NULL DEFAULT 0,
        steps_total INTEGER,
        last_step INTEGER,
        steps_per_s REAL,
        eta_s REAL,
        losses TEXT NOT NULL DEFAULT '{}',
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        host TEXT,
        runner_pid INTEGER,
        worker_pid INTEGER,
        heartbeat REAL
    );
    CREATE INDEX runs_status ON runs(status);
    CREATE TABLE affinity (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        measure TEXT NOT NULL,
        step INTEGER NOT NULL,
        n INTEGER NOT NULL,
        wall_time REAL,
        data BLOB NOT NULL
    );
    CREATE UNIQUE INDEX affinity_key ON affinity(run_id, measure, step);
    CREATE TABLE steps (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        wall_time REAL NOT NULL,
        losses BLOB NOT NULL,
        PRIMARY KEY (run_id, step)
    ) WITHOUT ROWID;
    CREATE TABLE metrics (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        task TEXT NOT NULL,
        split TEXT NOT NULL,
        metric TEXT NOT NULL,
        value REAL,
        PRIMARY KEY (run_id, step, task, split, metric)
    ) WITHOUT ROWID;
    CREATE TABLE groupings (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        groups TEXT NOT NULL,
        PRIMARY KEY (run_id, step)
    );
    CREATE TABLE evaluations (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        created REAL NOT NULL,
        result TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class RunInfo:
    """One run's record. ``progress`` is steps_done / steps_total (None when unknown)."""

    id: int
    name: str
    origin: str
    status: str
    config: dict[str, Any]
    tasks: list[str]
    task_types: dict[str, str]
    notes: str
    meta: dict[str, Any]
    created: float
    started: float | None
    finished: float | None
    error: str | None
    error_detail: str | None
    steps_done: int
    steps_total: int | None
    last_step: int | None
    steps_per_s: float | None
    eta_s: float | None
    losses: dict[str, float]
    cancel_requested: bool
    measures: list[str] = field(default_factory=list)
    host: str | None = None
    runner_pid: int | None = None
    worker_pid: int | None = None

    @property
    def progress(self) -> float | None:
        if not self.steps_total:
            return None
        return min(1.0, self.steps_done / self.steps_total)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON-friendly) of every field plus ``progress``."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["progress"] = self.progress
        return d


_RUN_COLS = (
    "id, name, origin, status, config, tasks, task_types, notes, meta, created, started, "
    "finished, error, error_detail, steps_done, steps_total, last_step, steps_per_s, eta_s, "
    "losses, cancel_requested, host, runner_pid, worker_pid"
)

class Store:
    """Handle on one store file; cheap to create, safe to share between threads.

    Parameters
    ----------
    path : the SQLite file; default :func:`default_store_path`. Parent folders are created.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self._local = threading.local()
        self._con()  # create + migrate now, so errors surface at construction

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable: reopen by path in the other process
        return (Store, (str(self.path),))

    # ------------------------------------------------------------------ connection plumbing

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is not None and getattr(self._local, "pid", None) == os.getpid():
            return con
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create the run store folder {self.path.parent}: {exc}"
            raise LabError(msg) from None
        try:
            con = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise LabError(f"cannot open the run store {self.path}: {exc}") from None
        self._retry(lambda: self._setup(con))
        self._local.con, self._local.pid = con, os.getpid()
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
            if _is_busy(exc):
                raise
            raise LabError(f"{self.path} is not a run store ({exc})") from None
        if str(mode).lower() != "wal":
            raise LabError(f"cannot switch the run store {self.path} to WAL mode (got {mode})")
        con.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable at checkpoints
        self._migrate(con)

    def _migrate(self, con: sqlite3.Connection) -> None:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LabError(
                f"the run store {self.path} has schema version {version}, newer than this "
                f"version of the lab understands ({SCHEMA_VERSION}); update Task Affinity Lab"
            )
        if version == SCHEMA_VERSION:
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            # re-read under the write lock: another process may have migrated meanwhile
            version = con.execute("PRAGMA user_version").fetchone()[0]
            for k in range(version, SCHEMA_VERSION):
                for stmt in _statements(MIGRATIONS[k]):
                    con.execute(stmt)
                con.execute(f"PRAGMA user_version = {k + 1}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _retry(self, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + RETRY_FOR_S
        delay = 0.005
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
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
    def snapshot(self) -> Iterator[Store]:
        """Reads inside the block see one consistent state of the store."""
        con = self._con()
        if con.in_transaction:
            yield self
            return
        self._retry(lambda: con.execute("BEGIN"))
        # a deferred read transaction takes its snapshot at the first read; do one now
        self._retry(lambda: con.execute("SELECT 1 FROM runs LIMIT 1").fetchall())
        try:
            yield self
        finally:
            if con.in_transaction:
                con.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        *,
        name: str = "",
        origin: str = "trained",
        status: str = "queued",
        config: dict[str, Any] | None = None,
        tasks: list[str] | None = None,
        task_types: dict[str, str] | None = None,
        notes: str = "",
        meta: dict[str, Any] | None = None,
        steps_total: int | None = None,
    ) -> int:
        """Add a run record and return its id."""
        _check(origin in ORIGINS, f"unknown origin {origin!r}")
        _check(status in STATUSES, f"unknown status {status!r}")
        return self._write(lambda con: self._insert_run(
            con, name, origin, status, config or {}, tasks, task_types or {}, notes, meta or {},
            steps_total,
        ))

    @staticmethod
    def _insert_run(
        con: sqlite3.Connection, name: str, origin: str, status: str, config: dict[str, Any],
        tasks: list[str] | None, task_types: dict[str, str], notes: str, meta: dict[str, Any],
        steps_total: int | None,
    ) -> int:
        now = time.time()
        terminal = status in TERMINAL
        cur = con.execute(
            "INSERT INTO runs (name, origin, status, config, tasks, task_types, notes, meta, "
            "created, started, finished, steps_total) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                name, origin, status, _dumps(config),
                None if tasks is None else json.dumps(list(tasks)), _dumps(task_types), notes,
                _dumps(meta), now, now if terminal else None, now if terminal else None,
                steps_total,
            ),
        )
        return int(cur.lastrowid)

    def get_run(self, run_id: int) -> RunInfo:
        """The run's record; LabError if there is no such run."""
        return self._read(lambda con: self._get(con, run_id))

    def _get(self, con: sqlite3.Connection, run_id: int) -> RunInfo:
        row = con.execute(f"SELECT {_RUN_COLS} FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise LabError(f"no run with id {run_id} in {self.path}")
        ms = [r[0] for r in con.execute(
            "SELECT DISTINCT measure FROM affinity WHERE run_id = ? ORDER BY measure",
            (int(run_id),),
        )]
        return _run_info(row, ms)

    def list_runs(self) -> list[RunInfo]:
        """Every run, oldest first."""

        def q(con: sqlite3.Connection) -> list[RunInfo]:
            ms: dict[int, list[str]] = {}
            for rid, m in con.execute(
                "SELECT DISTINCT run_id, measure FROM affinity ORDER BY run_id, measure"
            ):
                ms.setdefault(rid, []).append(m)
            rows = con.execute(f"SELECT {_RUN_COLS} FROM runs ORDER BY id").fetchall()
            return [_run_info(r, ms.get(r[0], [])) for r in rows]

        return self._read(q)

    def run_ids(self, *statuses: str) -> list[int]:
        """Ids of runs in any of ``statuses`` (all runs when none given), oldest first."""
        if statuses:
            marks = ",".join("?" * len(statuses))
            sql, args = f"SELECT id FROM runs WHERE status IN ({marks}) ORDER BY id", statuses
        else:
            sql, args = "SELECT id FROM runs ORDER BY id", ()
        return self._read(lambda con: [r[0] for r in con.execute(sql, args)])

    def rename_run(self, run_id: int, name: str) -> None:
        """Change a run's display name."""
        self._write(lambda con: self._update(con, run_id, name=name))

    def set_status(
        self,
        run_id: int,
        status: str,
        *,
        error: str | None = None,
        error_detail: str | None = None,
        only_from: tuple[str, ...] | None = None,
    ) -> bool:
        """Move a run to ``status``; with ``only_from``, only if it is currently in one of those.

        Returns whether the run changed. Terminal statuses stamp ``finished``; ``running``
        stamps ``started``. The compare-and-set makes races between the worker finishing and
        the runner noticing a dead worker harmless: whoever is first wins.
        """
        _check(status in STATUSES, f"unknown status {status!r}")

        def tx(con: sqlite3.Connection) -> bool:
            row = con.execute("SELECT status FROM runs WHERE id = ?", (int(run_id),)).fetchone()
            if row is None:
                raise LabError(f"no run with id {run_id} in {self.path}")
            if only_from is not None and row[0] not in only_from:
                return False
            fields: dict[str, Any] = {"status": status}
            now = time.time()
            if status == "running":
                fields["started"] = now
            if status in TERMINAL:
                fields.update(finished=now, eta_s=None)
            if error is not None:
                fields["error"] = error
            if error_detail is not None:
                fields["error_detail"] = error_detail
            self._update(con, run_id, **fields)
            return True

        return self._write(tx)

    def claim_queued(self, max_running: int, *, runner_pid: int) -> int | None:
        """Atomically move the oldest queued run to ``running`` if fewer than ``max_running``
        runner-started runs are running in this store; return its id (None if none claimed)."""

        def tx(con: sqlite3.Connection) -> int | None:
            running = con.execute(  # runs with a worker process (not other writers' runs)
                "SELECT COUNT(*) FROM runs WHERE status = 'running' AND runner_pid IS NOT NULL"
            ).fetchone()
            if running[0] >= max_running:
                return None
            row = con.execute(
                "SELECT id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            self._update(con, row[0], status="running", started=now, heartbeat=now,
                         host=socket.gethostname(), runner_pid=runner_pid, worker_pid=None)
            return int(row[0])

        return self._write(tx)

    def set_worker(self, run_id: int, pid: int) -> None:
        """Record the worker process of a running run (for finding dead workers later)."""
        self._write(lambda con: self._update(con, run_id, worker_pid=int(pid)))

    def request_cancel(self, run_id: int) -> str:
        """Cancel a run: a queued one is cancelled now; a running one is flagged for its
        worker, which stops after the current step. Returns the resulting status."""

        def tx(con: sqlite3.Connection) -> str:
            info = self._get(con, run_id)
            if info.status == "queued":
                now = time.time()
                self._update(con, run_id, status="cancelled", finished=now, cancel_requested=1,
                             error="cancelled before it started")
                return "cancelled"
            if info.status == "running":
                self._update(con, run_id, cancel_requested=1)
            return info.status

        return self._write(tx)

    def cancel_requested(self, run_id: int) -> bool:
        """Whether the worker of ``run_id`` should stop (cancel asked, or run no longer running)."""
        row = self._read(lambda con: con.execute(
            "SELECT cancel_requested, status FROM runs WHERE id = ?", (int(run_id),)
        ).fetchone())
        return row is None or bool(row[0]) or row[1] != "running"

    def delete_run(self, run_id: int) -> None:
        """Delete a run and everything logged for it; a running run must be cancelled first."""

        def tx(con: sqlite3.Connection) -> None:
            info = self._get(con, run_id)
            if info.status == "running":
                raise LabError(f"run {run_id} is still running; cancel it before deleting it")
            con.execute("DELETE FROM runs WHERE id = ?", (int(run_id),))

        self._write(tx)

    @staticmethod
    def _update(con: sqlite3.Connection, run_id: int, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        con.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), int(run_id)))

    # ------------------------------------------------------------------ steps (writer)

    def append_step(
        self, run_id: int, event: StepEvent, *, steps_per_s: float | None = None
    ) -> None:
        """Write one training step (losses, metrics, affinity matrices, grouping, progress)
        in one transaction, so readers see all of it or none of it.

        Steps are numbered as the training loop does, 1..total (``event.step`` = steps done).

        ``steps_per_s`` overrides the rate derived from ``event.elapsed_s``.
        """
        tasks = [str(t) for t in event.tasks]
        step = int(event.step)
        total = int(event.total_steps) if event.total_steps else None
        done = max(step, 0)  # the training loop numbers steps 1..total: step k = k done
        if total is not None:
            done = min(done, total)
        rate = steps_per_s
        if rate is None and event.elapsed_s and event.elapsed_s > 0:
            rate = done / event.elapsed_s
        eta = (total - done) / rate if (rate and total is not None) else None
        losses = {str(k): float(v) for k, v in event.train_loss.items()}
        metric_rows = [
            (run_id, step, str(m.task), str(m.split), str(m.metric), float(m.value))
            for m in event.metrics
        ]
        now = time.time()

        def tx(con: sqlite3.Connection) -> None:
            row = con.execute("SELECT tasks FROM runs WHERE id = ?", (int(run_id),)).fetchone()
            if row is None:
                raise LabError(f"no run with id {run_id} in {self.path}")
            run_tasks = json.loads(row[0]) if row[0] else None
            if run_tasks is None:
                run_tasks = tasks
                self._update(con, run_id, tasks=json.dumps(tasks))
            aff_rows = []
            for measure, mat in event.affinity.items():
                mat = _reorder(np.asarray(mat, dtype=np.float64), tasks, run_tasks)
                aff_rows.append((run_id, str(measure), step, len(run_tasks), now, _blob(mat)))
            con.executemany(
                "INSERT OR REPLACE INTO affinity (run_id, measure, step, n, wall_time, data) "
                "VALUES (?,?,?,?,?,?)", aff_rows,
            )
            if losses:
                vec = np.array([losses.get(t, np.nan) for t in run_tasks], dtype=np.float64)
                con.execute(
                    "INSERT OR REPLACE INTO steps (run_id, step, wall_time, losses) "
                    "VALUES (?,?,?,?)", (run_id, step, now, _blob(vec)),
                )
            con.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, step, task, split, metric, value) "
                "VALUES (?,?,?,?,?,?)", metric_rows,
            )
            if event.groups is not None:
                con.execute(
                    "INSERT OR REPLACE INTO groupings (run_id, step, groups) VALUES (?,?,?)",
                    (run_id, step, _groups_json(event.groups)),
                )
            self._update(con, run_id, steps_done=done, steps_total=total, last_step=step,
                         steps_per_s=rate, eta_s=eta, losses=_dumps(losses), heartbeat=now)

        self._write(tx)

    def set_tasks(self, run_id: int, tasks: list[str], task_types: dict[str, str]) -> None:
        """Record a run's task order and task types (e.g. once the worker has built the data)."""
        self._write(lambda con: self._update(
            con, run_id, tasks=json.dumps(list(tasks)), task_types=_dumps(task_types)))

    # ------------------------------------------------------------------ readers

    def measures(self, run_id: int) -> list[str]:
        """Affinity measures logged for a run (sorted)."""
        return self._read(lambda con: self._get(con, run_id).measures)

    def affinity_steps(
        self, run_id: int, measure: str | None = None
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """All matrices of one measure: ``(steps (S,), tasks, A (S, n, n))``, steps ascending.

        ``measure=None`` picks the run's only measure (LabError when there are several).
        """

        def q(con: sqlite3.Connection) -> tuple[np.ndarray, list[str], np.ndarray]:
            info = self._get(con, run_id)
            m = measure
            if m is None:
                if len(info.measures) > 1:
                    raise LabError(f"run {run_id} has several measures "
                                   f"({', '.join(info.measures)}); pick one")
                m = info.measures[0] if info.measures else "lookahead"
            rows = con.execute(
                "SELECT step, data FROM affinity WHERE run_id = ? AND measure = ? ORDER BY step",
                (int(run_id), m),
            ).fetchall()
            n = len(info.tasks)
            if not rows:
                if info.measures and m not in info.measures:
                    raise LabError(f"run {run_id} has no {m!r} affinity; it has: "
                                   f"{', '.join(info.measures)}")
                return np.zeros(0, np.int64), info.tasks, np.zeros((0, n, n))
            steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            data = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f8")
            return steps, info.tasks, data.reshape(len(rows), n, n).astype(np.float64)

        return self._read(q)

    def affinity_wall_times(self, run_id: int, measure: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, wall_time)`` of a measure's matrices (NaN where unknown)."""
        rows = self._read(lambda con: con.execute(
            "SELECT step, wall_time FROM affinity WHERE run_id = ? AND measure = ? ORDER BY step",
            (int(run_id), measure)).fetchall())
        steps = np.array([r[0] for r in rows], dtype=np.int64)
        return steps, np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=np.float64)

    def losses(self, run_id: int) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Per-step minibatch training losses: ``(steps (S,), tasks, L (S, n))``."""

        def q(con: sqlite3.Connection) -> tuple[np.ndarray, list[str], np.ndarray]:
            tasks = self._get(con, run_id).tasks
            rows = con.execute(
                "SELECT step, losses FROM steps WHERE run_id = ? ORDER BY step", (int(run_id),)
            ).fetchall()
            steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            data = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f8")
            return steps, tasks, data.reshape(len(rows), len(tasks)).astype(np.float64)

        return self._read(q)

    def metrics(self, run_id: int) -> pd.DataFrame:
        """Long-form metrics ``step, task, split, metric, value`` ordered by step; the per-step
        minibatch training loss appears as ``split="batch", metric="loss"``."""

        def q(con: sqlite3.Connection) -> tuple[Any, ...]:
            return (self.losses(run_id), con.execute(
                "SELECT step, task, split, metric, value FROM metrics WHERE run_id = ?",
                (int(run_id),)).fetchall())

        (steps, tasks, loss), rows = self._read(q)
        n = len(tasks)
        flat = loss.reshape(-1)
        keep = ~np.isnan(flat)
        cols = list(zip(*rows)) if rows else [[], [], [], [], []]
        step = np.concatenate([np.repeat(steps, n)[keep], np.asarray(cols[0], dtype=np.int64)])
        order = np.argsort(step, kind="stable")

        def obj(a: Any) -> np.ndarray:
            out = np.empty(len(a), dtype=object)
            out[:] = list(a)
            return out

        batch = int(keep.sum())
        task = np.concatenate([np.tile(obj(tasks), len(steps))[keep], obj(cols[1])])
        split = np.concatenate([np.full(batch, BATCH_SPLIT, dtype=object), obj(cols[2])])
        metric = np.concatenate([np.full(batch, "loss", dtype=object), obj(cols[3])])
        value = np.concatenate([flat[keep], np.array(
            [np.nan if v is None else v for v in cols[4]], dtype=np.float64)])
        return pd.DataFrame({
            "step": step[order], "task": task[order], "split": split[order],
            "metric": metric[order], "value": value[order],
        })

    def groupings(self, run_id: int) -> list[tuple[int, Grouping]]:
        """``[(step, grouping), ...]`` ascending, groupings as tuples of frozensets."""
        rows = self._read(lambda con: con.execute(
            "SELECT step, groups FROM groupings WHERE run_id = ? ORDER BY step", (int(run_id),)
        ).fetchall())
        return [(int(s), canonical_grouping(json.loads(g))) for s, g in rows]

    # ------------------------------------------------------------------ evaluations

    def save_evaluation(self, run_id: int, key: str, result: dict[str, Any]) -> None:
        """Store a JSON-serializable result under ``(run_id, key)``, replacing an older one."""
        payload = _dumps(result)

        def tx(con: sqlite3.Connection) -> None:
            self._get(con, run_id)
            con.execute(
                "INSERT OR REPLACE INTO evaluations (run_id, key, created, result) "
                "VALUES (?,?,?,?)", (int(run_id), key, time.time(), payload))

        self._write(tx)

    def get_evaluation(self, run_id: int, key: str) -> dict[str, Any] | None:
        """The result saved under ``(run_id, key)``, or None."""
        row = self._read(lambda con: con.execute(
            "SELECT result FROM evaluations WHERE run_id = ? AND key = ?", (int(run_id), key)
        ).fetchone())
        return None if row is None else json.loads(row[0])

    def evaluations(self, run_id: int) -> dict[str, dict[str, Any]]:
        """Every saved result of a run, by key."""
        rows = self._read(lambda con: con.execute(
            "SELECT key, result FROM evaluations WHERE run_id = ? ORDER BY created",
            (int(run_id),)).fetchall())
        return {k: json.loads(v) for k, v in rows}

    # ------------------------------------------------------------------ import / export

    def import_parsed(self, parsed: ParsedRun, name: str = "", *, origin: str = "uploaded"
                      ) -> list[int]:
        """Add every run of a validated file in one transaction; return the new run ids.

        A file with several runs gives one run each, named ``"<name> / <run>"``.
        """
        base = name or str(parsed.meta.get("name", "")) or "uploaded run"
        prepared = []
        for run in parsed.runs:
            tasks = parsed.run_tasks(run)
            measures = parsed.measures(run)
            mats = []
            for m in measures:
                steps, _, a = parsed.matrices(run, m)
                sel = parsed.affinity[(parsed.affinity["run"] == run)
                                      & (parsed.affinity["measure"] == m)]
                wt = sel.groupby("step")["wall_time"].min().reindex(steps).to_numpy()
                mats.append((m, steps, a, wt))
            met = parsed.metrics[parsed.metrics["run"] == run]
            grp = parsed.groupings[parsed.groupings["run"] == run]
            types = {t: v for t, v in parsed.task_types.items() if t in tasks}
            run_name = base if run == "" else f"{base} / {run}"
            prepared.append((run_name, tasks, types, mats, met, grp))
        meta = {k: v for k, v in parsed.meta.items() if k not in ("config", "notes", "name")}
        config = parsed.meta.get("config") or {}
        notes = str(parsed.meta.get("notes", ""))

        def tx(con: sqlite3.Connection) -> list[int]:
            ids = []
            for run_name, tasks, types, mats, met, grp in prepared:
                logged = {int(x) for _, s, _, _ in mats for x in s} | set(met["step"].tolist())
                rid = self._insert_run(con, run_name, origin, "finished", config, tasks, types,
                                       notes, meta, None)
                self._update(con, rid, steps_done=len(logged),
                             last_step=max(logged) if logged else None)
                n = len(tasks)
                con.executemany(
                    "INSERT INTO affinity (run_id, measure, step, n, wall_time, data) "
                    "VALUES (?,?,?,?,?,?)",
                    [(rid, m, int(s), n, None if math.isnan(w) else float(w), _blob(a[k]))
                     for m, steps, a, wt in mats for k, (s, w) in enumerate(zip(steps, wt))],
                )
                con.executemany(
                    "INSERT INTO metrics (run_id, step, task, split, metric, value) "
                    "VALUES (?,?,?,?,?,?)",
                    [(rid, int(s), t, sp, mt, float(v)) for s, t, sp, mt, v in
                     met[["step", "task", "split", "metric", "value"]].itertuples(index=False)],
                )
                con.executemany(
                    "INSERT INTO groupings (run_id, step, groups) VALUES (?,?,?)",
                    [(rid, int(s), _groups_json(g)) for s, g in
                     grp[["step", "groups"]].itertuples(index=False)],
                )
                ids.append(rid)
            return ids

        return self._write(tx)

    def export_parsed(self, run_id: int) -> ParsedRun:
        """The run as a :class:`ParsedRun`, ready for ``fileformat.write_run_file``."""
        with self.snapshot():
            info = self.get_run(run_id)
            parts = []
            for m in info.measures:
                steps, tasks, a = self.affinity_steps(run_id, m)
                _, wt = self.affinity_wall_times(run_id, m)
                parts.append(matrices_to_long(steps, tasks, a, m, wall_times=wt))
            met = self.metrics(run_id)
            grp = self.groupings(run_id)
        aff = (pd.concat(parts, ignore_index=True) if parts
               else pd.DataFrame({c: [] for c in AFFINITY_FRAME}))
        aff = aff.astype({"step": np.int64, "affinity": np.float64, "wall_time": np.float64})
        met.insert(0, "run", "")
        grp_df = pd.DataFrame([("", s, g) for s, g in grp], columns=GROUPING_FRAME)
        grp_df["step"] = grp_df["step"].astype(np.int64)
        meta: dict[str, Any] = {**info.meta, "name": info.name}
        if info.config:
            meta["config"] = info.config
        if info.notes:
            meta["notes"] = info.notes
        meta.setdefault("origin", info.origin)
        return ParsedRun(
            tasks=list(info.tasks), task_types=dict(info.task_types), affinity=aff,
            metrics=met[METRIC_FRAME], groupings=grp_df, meta=meta, runs=[""],
            tasks_declared=True,
        )


# ---------------------------------------------------------------------------------- helpers


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _is_busy(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise LabError(msg)


def _dumps(obj: Any) -> str:
    try:
        return dumps(obj)
    except (TypeError, ValueError) as exc:
        raise LabError(f"cannot store {type(obj).__name__} as JSON: {exc}") from None


def _blob(mat: np.ndarray) -> bytes:
    return np.ascontiguousarray(mat, dtype="<f8").tobytes()


def _reorder(mat: np.ndarray, have: list[str], want: list[str]) -> np.ndarray:
    n = len(want)
    if mat.shape != (len(have), len(have)):
        raise LabError(f"affinity matrix of shape {mat.shape} for {len(have)} tasks")
    if have == want:
        return mat
    if sorted(have) != sorted(want):
        raise LabError(f"step reports tasks {have}, but the run's tasks are {want}")
    idx = np.array([have.index(t) for t in want])
    out = mat[np.ix_(idx, idx)]
    assert out.shape == (n, n)
    return out


def _groups_json(groups: Any) -> str:
    return json.dumps([sorted(g) for g in canonical_grouping(groups)])


def _run_info(row: tuple[Any, ...], measures: list[str]) -> RunInfo:
    (rid, name, origin, status, config, tasks, task_types, notes, meta, created, started,
     finished, error, error_detail, steps_done, steps_total, last_step, steps_per_s, eta_s,
     losses, cancel_requested, host, runner_pid, worker_pid) = row
    return RunInfo(
        id=int(rid), name=name, origin=origin, status=status, config=json.loads(config),
        tasks=json.loads(tasks) if tasks else [], task_types=json.loads(task_types),
        notes=notes, meta=json.loads(meta), created=created, started=started,
        finished=finished, error=error, error_detail=error_detail, steps_done=int(steps_done),
        steps_total=steps_total, last_step=last_step, steps_per_s=steps_per_s, eta_s=eta_s,
        losses=json.loads(losses), cancel_requested=bool(cancel_requested), measures=measures,
        host=host, runner_pid=runner_pid, worker_pid=worker_pid,
    )
