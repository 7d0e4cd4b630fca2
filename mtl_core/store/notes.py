"""JSON records the app attaches to a run, each in a table named for what it holds:

``run_notes``
    Key-value notes (e.g. the lesson's bookkeeping: which run trains the groups TAG picked).
    Not the run's free-text ``RunInfo.notes``, which comes with an uploaded file.
``ground_truth``
    One ground-truth evaluation job per run and group budget k: its status, and its report
    once done (``mtl_core.experiments``).

Both are deleted with their run. Values are JSON objects (dicts); saving replaces the older one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from mtl_core.accounts.quota import Limits, check_quota
from mtl_core.errors import LabError
from mtl_core.store.base import StoreBase
from mtl_core.store.records import dumps

#: A run with this note (any value) is queued in the background: it starts only when no run
#: without it is queued (the lessons an idle runner holds ahead, ``mtl_core.lesson.passes``);
#: dropping the note (:meth:`NotesMixin.drop_note`) queues it like any other run.
NOTE_BACKGROUND = "background"

#: SQL: whether the queued run ``q`` is queued in the background (:data:`NOTE_BACKGROUND`).
IS_BACKGROUND = (
    f"EXISTS (SELECT 1 FROM run_notes b WHERE b.run_id = q.id AND b.key = '{NOTE_BACKGROUND}')"
)

#: Which queued run starts next, fair between owners (an ``ORDER BY`` over queued runs ``q``):
#: background runs (:data:`NOTE_BACKGROUND`) after all others; then by "round", the owner's
#: running runs plus their queued runs ahead of this one (so one user's 20 queued runs go one
#: per round, between everyone else's), then the owner whose last run started longest ago,
#: then the oldest run. Runs with no owner (command line, older stores) count as one owner.
#: The same key orders :meth:`RunsMixin.queue_order`.
FAIR_ORDER = f"""
    {IS_BACKGROUND},
    (SELECT COUNT(*) FROM runs r WHERE r.owner IS q.owner
        AND (r.status = 'running' OR (r.status = 'queued' AND r.id < q.id))),
    COALESCE((SELECT MAX(r.started) FROM runs r
              WHERE r.owner IS q.owner AND r.origin = 'trained' AND r.started IS NOT NULL), 0),
    q.id
"""


def write_note(con: sqlite3.Connection, run_id: int, key: str, payload: str) -> None:
    """Save the JSON text ``payload`` as note ``key`` of ``run_id`` on ``con`` (inside the
    caller's transaction), replacing an older one."""
    con.execute(
        "INSERT OR REPLACE INTO run_notes (run_id, key, updated, value) VALUES (?,?,?,?)",
        (int(run_id), str(key), time.time(), payload),
    )


def read_note(con: sqlite3.Connection, run_id: int, key: str) -> dict[str, Any] | None:
    """Note ``key`` of ``run_id`` read on ``con``, or None if it has none."""
    row = con.execute(
        "SELECT value FROM run_notes WHERE run_id = ? AND key = ?", (int(run_id), str(key))
    ).fetchone()
    return None if row is None else json.loads(row[0])


#: Statuses of a keyed run that no longer stands for its lesson (a new press trains it again).
UNUSABLE = ("failed", "cancelled", "interrupted")


def keyed_run(
    con: sqlite3.Connection, note_key: str, key: str, owner: str | None, private: bool
) -> int | None:
    """The oldest run whose note ``note_key`` holds ``{"key": key, ...}`` and whose status is
    not in :data:`UNUSABLE`, or None. ``private``: only runs owned by ``owner`` or by nobody
    (what ``accounts.access.can_see`` shows that owner in private mode); else any owner's."""
    sql = (
        "SELECT n.run_id FROM run_notes n JOIN runs r ON r.id = n.run_id"
        " WHERE n.key = ? AND json_extract(n.value, '$.key') = ?"
        f" AND r.status NOT IN ({','.join('?' * len(UNUSABLE))})"
    )
    args: list[Any] = [str(note_key), str(key), *UNUSABLE]
    if private:
        sql += " AND (r.owner IS NULL OR r.owner IS ?)"
        args.append(owner)
    row = con.execute(sql + " ORDER BY n.run_id LIMIT 1", args).fetchone()
    return None if row is None else int(row[0])


class NotesMixin(StoreBase):
    """Key-value notes on a run (table ``run_notes``)."""

    def save_note(self, run_id: int, key: str, value: dict[str, Any]) -> None:
        """Save ``value`` (JSON-serializable) as the run's note ``key``, replacing an older one.

        Raises LabError if there is no such run or ``value`` is not JSON-serializable.
        """
        payload = dumps(value)

        def tx(con: sqlite3.Connection) -> None:
            self._run(con, run_id)
            write_note(con, run_id, key, payload)

        self._write(tx)

    def drop_note(self, run_id: int, key: str) -> bool:
        """Delete the run's note ``key``; whether it had one (no such run: False)."""

        def tx(con: sqlite3.Connection) -> bool:
            cur = con.execute(
                "DELETE FROM run_notes WHERE run_id = ? AND key = ?", (int(run_id), str(key))
            )
            return cur.rowcount > 0

        return self._write(tx)

    def get_note(self, run_id: int, key: str) -> dict[str, Any] | None:
        """The run's note ``key``, or None if it has none."""
        return self._read(lambda con: read_note(con, run_id, key))

    def open_claims(self, key: str, statuses: tuple[str, ...]) -> list[int]:
        """Ids of runs in one of ``statuses`` whose note ``key`` still holds ``"run_id": null``
        (a follow-up run nobody has claimed yet, see ``create_run(claim=...)``), oldest first."""
        if not statuses:
            return []
        marks = ",".join("?" * len(statuses))
        sql = (
            "SELECT n.run_id FROM run_notes n JOIN runs r ON r.id = n.run_id"
            " WHERE n.key = ? AND json_extract(n.value, '$.run_id') IS NULL"
            f" AND r.status IN ({marks}) ORDER BY n.run_id"
        )
        return self._read(lambda con: [int(r[0]) for r in con.execute(sql, (key, *statuses))])

    def find_keyed(
        self, note_key: str, key: str, *, owner: str | None = None, private: bool = False
    ) -> int | None:
        """The run that already stands for ``key`` (see :func:`keyed_run`), or None."""
        return self._read(lambda con: keyed_run(con, note_key, key, owner, private))

    def list_notes(self, run_id: int) -> dict[str, dict[str, Any]]:
        """Every note of a run by key, oldest saved first."""
        rows = self._read(
            lambda con: con.execute(
                "SELECT key, value FROM run_notes WHERE run_id = ? ORDER BY updated, key",
                (int(run_id),),
            ).fetchall()
        )
        return {k: json.loads(v) for k, v in rows}


class GroundTruthMixin(StoreBase):
    """Ground-truth evaluation jobs of a run, one per group budget k (table ``ground_truth``)."""

    def claim_ground_truth(
        self, max_running: int, *, runner_pid: int
    ) -> tuple[int, int, dict[str, Any]] | None:
        """Atomically mark the next queued ground truth ``running`` when fewer than
        ``max_running`` worker slots are busy (runner-started runs and running evaluations
        together); returns ``(run_id, k, record)`` or None.

        The same fairness as queued runs: the evaluation whose starter has the fewest runs
        and evaluations running goes first (ties: the oldest), and it waits while the next
        queued run's owner has fewer running than its starter (ties: whichever was queued
        first). Runs queued in the background (:data:`NOTE_BACKGROUND`) wait for it.
        """

        def tx(con: sqlite3.Connection) -> tuple[int, int, dict[str, Any]] | None:
            if busy_slots(con) >= max_running:
                return None
            rows = con.execute(
                "SELECT run_id, k, job FROM ground_truth"
                " WHERE json_extract(job, '$.status') = 'queued'"
            ).fetchall()
            if not rows:
                return None
            queued = [(int(r), int(k), json.loads(j)) for r, k, j in rows]
            load = {o: running_of(con, o) for o in {q[2].get("owner") for q in queued}}
            run_id, k, job = min(
                queued, key=lambda q: (load[q[2].get("owner")], float(q[2].get("queued", 0)))
            )
            head = con.execute(
                "SELECT (SELECT COUNT(*) FROM runs r WHERE r.owner IS q.owner"
                " AND (r.status = 'running' OR (r.status = 'queued' AND r.id < q.id))),"
                f" q.created FROM runs q WHERE q.status = 'queued' AND NOT {IS_BACKGROUND}"
                f" ORDER BY {FAIR_ORDER} LIMIT 1"
            ).fetchone()  # background runs (lessons held ahead) never hold an evaluation back
            mine = (load[job.get("owner")], float(job.get("queued", 0)))
            if head is not None and (int(head[0]), float(head[1])) < mine:
                return None  # the next queued run's turn first
            job.update(status="running", started=time.time(), runner_pid=int(runner_pid))
            con.execute(
                "UPDATE ground_truth SET updated = ?, job = ? WHERE run_id = ? AND k = ?",
                (time.time(), dumps(job), run_id, k),
            )
            return run_id, k, job

        return self._write(tx)

    def save_ground_truth(self, run_id: int, k: int, job: dict[str, Any]) -> None:
        """Save the ground-truth job record for ``(run_id, k)``, replacing an older one.

        Raises LabError if there is no such run or ``job`` is not JSON-serializable.
        """
        payload = dumps(job)

        def tx(con: sqlite3.Connection) -> None:
            self._run(con, run_id)
            con.execute(
                "INSERT OR REPLACE INTO ground_truth (run_id, k, updated, job) VALUES (?,?,?,?)",
                (int(run_id), int(k), time.time(), payload),
            )

        self._write(tx)

    def get_ground_truth(self, run_id: int, k: int) -> dict[str, Any] | None:
        """The ground-truth job record for ``(run_id, k)``, or None if none was started."""
        row = self._read(
            lambda con: con.execute(
                "SELECT job FROM ground_truth WHERE run_id = ? AND k = ?", (int(run_id), int(k))
            ).fetchone()
        )
        return None if row is None else json.loads(row[0])

    def list_ground_truths(self, run_id: int) -> dict[int, dict[str, Any]]:
        """Every ground-truth job record of a run, by k ascending."""
        rows = self._read(
            lambda con: con.execute(
                "SELECT k, job FROM ground_truth WHERE run_id = ? ORDER BY k", (int(run_id),)
            ).fetchall()
        )
        return {int(k): json.loads(v) for k, v in rows}

    def running_ground_truths(self, owner: str | None) -> int:
        """How many ground-truth jobs started by ``owner`` are queued or running (the
        per-user quota counts them with the owner's queued and running runs)."""
        return self._read(lambda con: _ground_truths(con, owner, ("queued", "running")))

    def queue_ground_truth(
        self, run_id: int, k: int, record: dict[str, Any], *, limits: Limits | None = None
    ) -> dict[str, Any]:
        """Queue the ground-truth evaluation of ``(run_id, k)`` started by
        ``record["owner"]``: the runner starts it in one of its worker slots
        (:meth:`claim_ground_truth`). The starter's queued and running runs and evaluations
        are checked against ``limits``' quota atomically with the insert. Returns the record
        saved (``status`` ``queued``, ``queued`` its time).

        Raises LabError: no such run, one already queued or running for this k, the quota.
        """
        owner = record.get("owner")
        saved = {**record, "status": "queued", "queued": time.time()}
        payload = dumps(saved)

        def tx(con: sqlite3.Connection) -> dict[str, Any]:
            self._run(con, run_id)
            row = con.execute(
                "SELECT job FROM ground_truth WHERE run_id = ? AND k = ?", (int(run_id), int(k))
            ).fetchone()
            if row is not None and json.loads(row[0]).get("status") in ("queued", "running"):
                raise LabError(
                    f"a ground truth of run #{run_id} for k={k} is already queued or running"
                )
            if limits is not None and limits.queued_per_user is not None:
                check_quota(active_jobs(con, owner), limits)
            con.execute(
                "INSERT OR REPLACE INTO ground_truth (run_id, k, updated, job) VALUES (?,?,?,?)",
                (int(run_id), int(k), time.time(), payload),
            )
            return saved

        return self._write(tx)

    def running_ground_truth_keys(self) -> list[tuple[int, int]]:
        """``(run_id, k)`` of every ground truth recorded as running."""
        return self._read(
            lambda con: [
                (int(r), int(k))
                for r, k in con.execute(
                    "SELECT run_id, k FROM ground_truth"
                    " WHERE json_extract(job, '$.status') = 'running'"
                )
            ]
        )


def _ground_truths(con: sqlite3.Connection, owner: str | None, states: tuple[str, ...]) -> int:
    marks = ",".join("?" * len(states))
    return int(
        con.execute(
            "SELECT COUNT(*) FROM ground_truth"
            f" WHERE json_extract(job, '$.status') IN ({marks})"
            " AND json_extract(job, '$.owner') IS ?",
            (*states, owner),
        ).fetchone()[0]
    )


def active_jobs(con: sqlite3.Connection, owner: str | None) -> int:
    """The owner's queued or running runs and ground-truth evaluations: what the per-user
    quota (``queued_per_user``) counts."""
    runs = con.execute(
        "SELECT COUNT(*) FROM runs WHERE owner IS ? AND status IN ('queued', 'running')",
        (owner,),
    ).fetchone()[0]
    return int(runs) + _ground_truths(con, owner, ("queued", "running"))


def running_of(con: sqlite3.Connection, owner: str | None) -> int:
    """The owner's running runs and running evaluations (the fair order's first key)."""
    runs = con.execute(
        "SELECT COUNT(*) FROM runs WHERE owner IS ? AND status = 'running'", (owner,)
    ).fetchone()[0]
    return int(runs) + _ground_truths(con, owner, ("running",))


def busy_slots(con: sqlite3.Connection) -> int:
    """Worker slots in use: runs a runner started (``runner_pid`` set) and running
    ground-truth evaluations (each trains in one process: one slot)."""
    runs = con.execute(
        "SELECT COUNT(*) FROM runs WHERE status = 'running' AND runner_pid IS NOT NULL"
    ).fetchone()[0]
    gts = con.execute(
        "SELECT COUNT(*) FROM ground_truth WHERE json_extract(job, '$.status') = 'running'"
    ).fetchone()[0]
    return int(runs) + int(gts)
