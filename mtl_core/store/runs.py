"""A run's lifecycle in the store: create, queue and claim, status changes, cancel, delete,
and the training worker's per-step writes (:meth:`RunsMixin.append_step`)."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mtl_core.accounts.access import Actor, check_modify
from mtl_core.accounts.quota import Limits, check_quota
from mtl_core.errors import LabError
from mtl_core.events import StepEvent
from mtl_core.store.base import StoreBase
from mtl_core.store.notes import (
    FAIR_ORDER,
    active_jobs,
    busy_slots,
    keyed_run,
    read_note,
    write_note,
)
from mtl_core.store.records import (
    ORIGINS,
    RUN_COLUMNS,
    STATUSES,
    TERMINAL,
    RunInfo,
    blob,
    dumps,
    groups_json,
    insert_run,
    run_info,
    update_run,
)


class RunsMixin(StoreBase):
    """Run records: what the runner, the CLI and the app's Train and Runs pages change."""

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
        owner: str | None = None,
        limits: Limits | None = None,
        claim: tuple[int, str] | None = None,
        run_notes: dict[str, dict[str, Any]] | None = None,
        unique: tuple[str, str, bool] | None = None,
    ) -> int | None:
        """Add a run record and return its id (``owner``: see ``mtl_core.accounts.access``).

        With ``limits``, the owner's queued and running runs are counted against
        ``limits.queued_per_user`` in the same transaction (so two quick submits cannot both
        slip under the quota).

        With ``claim=(other_run, key)`` the run is a follow-up that must exist once: it is
        inserted only if ``other_run``'s note ``key`` still holds ``"run_id": null``, and the
        new id is written into that note (its other fields kept) in the same ``BEGIN
        IMMEDIATE`` transaction: a compare-and-set, so of two racing callers exactly one
        inserts. Returns None (inserting nothing) when the note is missing or already names a
        run. ``run_notes`` are notes of the new run, saved in the same transaction.

        With ``unique=(note_key, key, private)`` the run is one of a kind (a shared lesson):
        it is inserted only if no usable run visible to ``owner`` already carries note
        ``note_key`` with ``"key": key`` (:func:`~mtl_core.store.notes.keyed_run`; the caller's
        ``run_notes`` should carry it); None otherwise, and :meth:`find_keyed` names that run.

        Raises LabError for an unknown ``origin`` or ``status``, a config/meta/note that is
        not JSON-serializable, or an owner at their queue quota.
        """
        _check(origin in ORIGINS, f"unknown origin {origin!r}")
        _check(status in STATUSES, f"unknown status {status!r}")
        payloads = {str(k): dumps(v) for k, v in (run_notes or {}).items()}

        def tx(con: sqlite3.Connection) -> int | None:
            claimed = None
            if claim is not None:
                claimed = read_note(con, int(claim[0]), str(claim[1]))
                if claimed is None or claimed.get("run_id") is not None:
                    return None
            if unique is not None and keyed_run(con, unique[0], unique[1], owner, unique[2]):
                return None
            if limits is not None and limits.queued_per_user is not None:
                check_quota(_active(con, owner), limits)
            rid = insert_run(
                con,
                name=name,
                origin=origin,
                status=status,
                config=config or {},
                tasks=tasks,
                task_types=task_types or {},
                notes=notes,
                meta=meta or {},
                steps_total=steps_total,
                owner=owner,
            )
            for key, payload in payloads.items():
                write_note(con, rid, key, payload)
            if claim is not None and claimed is not None:
                write_note(con, int(claim[0]), str(claim[1]), dumps({**claimed, "run_id": rid}))
            return rid

        return self._write(tx)

    def get_run(self, run_id: int) -> RunInfo:
        """The run's record; LabError if there is no such run."""
        return self._as_read([self._read(lambda con: self._run(con, run_id))])[0]

    def list_runs(self) -> list[RunInfo]:
        """Every run, oldest first."""

        def q(con: sqlite3.Connection) -> list[RunInfo]:
            ms: dict[int, list[str]] = {}
            for rid, m in con.execute(
                "SELECT DISTINCT run_id, measure FROM affinity ORDER BY run_id, measure"
            ):
                ms.setdefault(rid, []).append(m)
            rows = con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY id").fetchall()
            return [run_info(r, ms.get(r["id"], [])) for r in rows]

        return self._as_read(self._read(q))

    def run_ids(self, *statuses: str) -> list[int]:
        """Ids of runs in any of ``statuses`` (all runs when none given), oldest first."""
        if statuses:
            marks = ",".join("?" * len(statuses))
            sql, args = f"SELECT id FROM runs WHERE status IN ({marks}) ORDER BY id", statuses
        else:
            sql, args = "SELECT id FROM runs ORDER BY id", ()
        return self._read(lambda con: [r[0] for r in con.execute(sql, args)])

    def rename_run(self, run_id: int, name: str, *, actor: Actor | None = None) -> None:
        """Change a run's display name (LabError unless ``actor`` may: ``accounts.access``)."""

        def tx(con: sqlite3.Connection) -> None:
            check_modify(run_id, self._run(con, run_id).owner, actor, "rename")
            update_run(con, run_id, name=str(name))

        self._write(tx)

    def set_owner(self, run_id: int, owner: str | None) -> None:
        """Give a run to ``owner`` (``accounts.access``; None: nobody's). No permission check:
        for the command line and tests, which act as the machine's operator."""
        self._write(lambda con: (self._run(con, run_id), update_run(con, run_id, owner=owner)))

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
        Raises LabError for an unknown status or run.
        """
        _check(status in STATUSES, f"unknown status {status!r}")

        def tx(con: sqlite3.Connection) -> bool:
            row = con.execute("SELECT status FROM runs WHERE id = ?", (int(run_id),)).fetchone()
            if row is None:
                raise LabError(f"no run with id {run_id} in {self.path}")
            if only_from is not None and row[0] not in only_from:
                return False
            values: dict[str, Any] = {"status": status}
            now = time.time()
            if status == "running":
                values["started"] = now
            if status in TERMINAL:
                values.update(finished=now, eta_s=None)
            if error is not None:
                values["error"] = error
            if error_detail is not None:
                values["error_detail"] = error_detail
            update_run(con, run_id, **values)
            return True

        return self._write(tx)

    def claim_queued(self, max_running: int, *, runner_pid: int) -> int | None:
        """Atomically move the next queued run (:data:`FAIR_ORDER`) to ``running`` if fewer
        than ``max_running`` worker slots are busy in this store (runner-started runs and
        running ground-truth evaluations); return its id (None if none claimed)."""

        def tx(con: sqlite3.Connection) -> int | None:
            # runs with a worker process (not other writers' runs), and running evaluations
            if busy_slots(con) >= max_running:
                return None
            row = con.execute(
                f"SELECT q.id FROM runs q WHERE q.status = 'queued' ORDER BY {FAIR_ORDER} LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            update_run(
                con,
                row[0],
                status="running",
                started=now,
                heartbeat=now,
                host=socket.gethostname(),
                runner_pid=runner_pid,
                worker_pid=None,
            )
            return int(row[0])

        return self._write(tx)

    def queue_order(self) -> list[int]:
        """Ids of the queued runs in the order they would start now (:data:`FAIR_ORDER`)."""
        return self._read(
            lambda con: [
                r[0]
                for r in con.execute(
                    f"SELECT q.id FROM runs q WHERE q.status = 'queued' ORDER BY {FAIR_ORDER}"
                )
            ]
        )

    def active_count(self, owner: str | None) -> int:
        """How many runs and ground-truth evaluations of ``owner`` are queued or running
        (the per-user queue quota)."""
        return self._read(lambda con: _active(con, owner))

    def set_worker(self, run_id: int, pid: int, *, host: str | None = None) -> None:
        """Record the worker process of a running run (for finding dead workers later), and
        with ``host`` its machine (a run with no host is never taken for dead: a runner on
        ``host`` marks it ``interrupted`` once ``pid`` is gone)."""
        values: dict[str, Any] = {"worker_pid": int(pid)}
        if host is not None:
            values["host"] = str(host)
        self._write(lambda con: update_run(con, run_id, **values))

    def request_cancel(self, run_id: int, *, actor: Actor | None = None) -> str:
        """Cancel a run: a queued one is cancelled now; a running one is flagged for its
        worker, which stops after the current step. Returns the resulting status.
        LabError unless ``actor`` may change the run (``mtl_core.accounts.access``)."""

        def tx(con: sqlite3.Connection) -> str:
            info = self._run(con, run_id)
            check_modify(run_id, info.owner, actor, "cancel")
            if info.status == "queued":
                update_run(
                    con,
                    run_id,
                    status="cancelled",
                    finished=time.time(),
                    cancel_requested=1,
                    error="cancelled before it started",
                )
                return "cancelled"
            if info.status == "running":
                update_run(con, run_id, cancel_requested=1)
            return info.status

        return self._write(tx)

    def cancel_requested(self, run_id: int) -> bool:
        """Whether the worker of ``run_id`` should stop (cancel asked, or run no longer running)."""
        row = self._read(
            lambda con: con.execute(
                "SELECT cancel_requested, status FROM runs WHERE id = ?", (int(run_id),)
            ).fetchone()
        )
        return row is None or bool(row[0]) or row[1] != "running"

    def delete_run(self, run_id: int, *, actor: Actor | None = None) -> None:
        """Delete a run and everything stored for it (matrices, metrics, notes, ground truth);
        LabError if it is still running (cancel it first), does not exist, or ``actor`` may
        not change it (``mtl_core.accounts.access``)."""

        def tx(con: sqlite3.Connection) -> None:
            info = self._run(con, run_id)
            check_modify(run_id, info.owner, actor, "delete")
            if info.status == "running":
                raise LabError(f"run {run_id} is still running; cancel it before deleting it")
            con.execute("DELETE FROM runs WHERE id = ?", (int(run_id),))

        self._write(tx)

    # ------------------------------------------------------------------ the worker's writes

    def append_step(
        self, run_id: int, event: StepEvent, *, steps_per_s: float | None = None
    ) -> None:
        """Write one training step (losses, metrics, affinity matrices, grouping, progress)
        in one transaction, so readers see all of it or none of it.

        Steps are numbered as the training loop does, 1..total (``event.step`` = steps done).
        ``steps_per_s`` overrides the rate derived from ``event.elapsed_s``. Matrices are
        stored in the run's task order (set by the first step if the run had none).
        Raises LabError for an unknown run or a step whose tasks differ from the run's.
        """
        self.append_steps(run_id, [event], steps_per_s=steps_per_s)

    def append_steps(
        self, run_id: int, events: Sequence[StepEvent], *, steps_per_s: float | None = None
    ) -> None:
        """:meth:`append_step` for several steps in one transaction (a run trained in this
        process that nobody watches live, e.g. the headless lesson: ~10x fewer commits)."""
        now = time.time()
        prepared = []
        for event in events:
            losses = {str(k): float(v) for k, v in event.train_loss.items()}
            rows = [
                (run_id, int(event.step), str(m.task), str(m.split), str(m.metric), float(m.value))
                for m in event.metrics
            ]
            prepared.append(
                (
                    event,
                    [str(t) for t in event.tasks],
                    losses,
                    rows,
                    _progress(event, steps_per_s, losses),
                )
            )

        def tx(con: sqlite3.Connection) -> None:
            row = con.execute("SELECT tasks FROM runs WHERE id = ?", (int(run_id),)).fetchone()
            if row is None:
                raise LabError(f"no run with id {run_id} in {self.path}")
            run_tasks = json.loads(row[0]) if row[0] else None
            for event, tasks, losses, metric_rows, progress in prepared:
                if run_tasks is None:
                    run_tasks = tasks
                    update_run(con, run_id, tasks=json.dumps(tasks))
                _write_step(con, run_id, event, tasks, run_tasks, losses, now)
                con.executemany(
                    "INSERT OR REPLACE INTO metrics (run_id, step, task, split, metric, value) "
                    "VALUES (?,?,?,?,?,?)",
                    metric_rows,
                )
                update_run(con, run_id, **progress, heartbeat=now)

        if prepared:
            self._write(tx)

    def set_tasks(self, run_id: int, tasks: list[str], task_types: dict[str, str]) -> None:
        """Record a run's task order and task types (e.g. once the worker has built the data)."""
        self._write(
            lambda con: update_run(
                con, run_id, tasks=json.dumps(list(tasks)), task_types=dumps(task_types)
            )
        )


# ---------------------------------------------------------------------------------- helpers


def _active(con: sqlite3.Connection, owner: str | None) -> int:
    return active_jobs(con, owner)  # queued or running runs, and ground-truth evaluations


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise LabError(msg)


def _progress(
    event: StepEvent, steps_per_s: float | None, losses: dict[str, float]
) -> dict[str, Any]:
    """The run columns a step updates: steps done/total, last step, rate, ETA, losses."""
    step = int(event.step)
    total = int(event.total_steps) if event.total_steps else None
    done = max(step, 0)  # the training loop numbers steps 1..total: step k = k done
    if total is not None:
        done = min(done, total)
    rate = steps_per_s
    if rate is None and event.elapsed_s and event.elapsed_s > 0:
        rate = done / event.elapsed_s
    eta = (total - done) / rate if (rate and total is not None) else None
    return {
        "steps_done": done,
        "steps_total": total,
        "last_step": step,
        "steps_per_s": rate,
        "eta_s": eta,
        "losses": dumps(losses),
    }


def _write_step(
    con: sqlite3.Connection,
    run_id: int,
    event: StepEvent,
    tasks: list[str],
    run_tasks: list[str],
    losses: dict[str, float],
    now: float,
) -> None:
    """Insert one step's matrices (in the run's task order), loss vector and grouping."""
    step = int(event.step)
    aff_rows = []
    for measure, mat in event.affinity.items():
        mat = _reorder(np.asarray(mat, dtype=np.float64), tasks, run_tasks)
        aff_rows.append((run_id, str(measure), step, len(run_tasks), now, blob(mat)))
    con.executemany(
        "INSERT OR REPLACE INTO affinity (run_id, measure, step, n, wall_time, data) "
        "VALUES (?,?,?,?,?,?)",
        aff_rows,
    )
    if losses:
        vec = np.array([losses.get(t, np.nan) for t in run_tasks], dtype=np.float64)
        con.execute(
            "INSERT OR REPLACE INTO steps (run_id, step, wall_time, losses) VALUES (?,?,?,?)",
            (run_id, step, now, blob(vec)),
        )
    if event.groups is not None:
        con.execute(
            "INSERT OR REPLACE INTO groupings (run_id, step, groups) VALUES (?,?,?)",
            (run_id, step, groups_json(event.groups)),
        )


def _reorder(mat: np.ndarray, have: list[str], want: list[str]) -> np.ndarray:
    """``mat`` over tasks ``have`` (rows = source) re-indexed to the order ``want``."""
    if mat.shape != (len(have), len(have)):
        raise LabError(f"affinity matrix of shape {mat.shape} for {len(have)} tasks")
    if have == want:
        return mat
    if sorted(have) != sorted(want):
        raise LabError(f"step reports tasks {have}, but the run's tasks are {want}")
    idx = np.array([have.index(t) for t in want])
    return mat[np.ix_(idx, idx)]
