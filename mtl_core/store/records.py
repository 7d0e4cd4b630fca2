"""Run records and how they map to and from table rows: :class:`RunInfo`, the run statuses,
and the encodings of the stored columns (JSON text, little-endian float64 blobs, groupings)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from mtl_core import jsonio
from mtl_core.errors import LabError
from mtl_core.types import canonical_grouping

STATUSES = ("queued", "running", "finished", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")
TERMINAL = ("finished", "failed", "cancelled", "interrupted")
ORIGINS = ("trained", "uploaded", "logged")


@dataclass(frozen=True)
class RunInfo:
    """One run's record. ``progress`` is steps_done / steps_total (None when unknown).

    ``config``, ``task_types``, ``meta`` and ``losses`` (last step's training loss by task)
    are plain dicts; ``created``/``started``/``finished`` are Unix times in seconds;
    ``steps_per_s`` and ``eta_s`` (seconds) are the worker's latest estimate.
    """

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
    owner: str | None = None  # who may cancel, delete, rename it (``mtl_core.accounts.access``)

    @property
    def progress(self) -> float | None:
        """Fraction of the planned steps done, in [0, 1]; None when the total is unknown."""
        if not self.steps_total:
            return None
        return min(1.0, self.steps_done / self.steps_total)

    @property
    def is_active(self) -> bool:
        """Whether the run is queued or running."""
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON-friendly) of every field plus ``progress``."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["progress"] = self.progress
        return d


#: The ``runs`` columns a :class:`RunInfo` is read from (every field but ``measures``, which
#: comes from the ``affinity`` table).
RUN_COLUMNS = tuple(f.name for f in fields(RunInfo) if f.name != "measures")
_WRITABLE = frozenset(RUN_COLUMNS) | {"heartbeat"}
_JSON_DICTS = ("config", "task_types", "meta", "losses")


def run_info(row: sqlite3.Row, measures: list[str]) -> RunInfo:
    """The record of one ``SELECT <RUN_COLUMNS> FROM runs`` row, JSON columns decoded."""
    d = dict(zip(row.keys(), row))
    for k in _JSON_DICTS:
        d[k] = json.loads(d[k])
    d["tasks"] = json.loads(d["tasks"]) if d["tasks"] else []
    d["id"], d["steps_done"] = int(d["id"]), int(d["steps_done"])
    d["cancel_requested"] = bool(d["cancel_requested"])
    return RunInfo(**d, measures=measures)


def load_run(con: sqlite3.Connection, run_id: int) -> RunInfo | None:
    """The run's record with its measures (sorted), or None if there is no such run."""
    row = con.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = ?", (int(run_id),)
    ).fetchone()
    if row is None:
        return None
    ms = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT measure FROM affinity WHERE run_id = ? ORDER BY measure",
            (int(run_id),),
        )
    ]
    return run_info(row, ms)


def insert_run(
    con: sqlite3.Connection,
    *,
    name: str,
    origin: str,
    status: str,
    config: dict[str, Any],
    tasks: Sequence[str] | None,
    task_types: dict[str, str],
    notes: str,
    meta: dict[str, Any],
    steps_total: int | None,
    owner: str | None = None,
) -> int:
    """Insert a run row (a terminal status stamps started and finished now); return its id."""
    now = time.time()
    ended = now if status in TERMINAL else None
    row = {
        "name": name,
        "origin": origin,
        "status": status,
        "config": dumps(config),
        "tasks": None if tasks is None else json.dumps(list(tasks)),
        "task_types": dumps(task_types),
        "notes": notes,
        "meta": dumps(meta),
        "created": now,
        "started": ended,
        "finished": ended,
        "steps_total": steps_total,
        "owner": owner,
    }
    cur = con.execute(
        f"INSERT INTO runs ({', '.join(row)}) VALUES ({','.join('?' * len(row))})",
        tuple(row.values()),
    )
    return int(cur.lastrowid)


def update_run(con: sqlite3.Connection, run_id: int, **values: Any) -> None:
    """Set columns of one run row (values already encoded for their columns)."""
    unknown = set(values) - _WRITABLE
    if unknown:
        raise ValueError(f"not a runs column: {sorted(unknown)}")
    sets = ", ".join(f"{k} = ?" for k in values)
    con.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*values.values(), int(run_id)))


# ---------------------------------------------------------------------------------- encodings


def dumps(obj: Any) -> str:
    """JSON text of ``obj`` (numpy scalars and arrays, sets and tuples allowed).

    Raises LabError when ``obj`` holds something JSON cannot represent.
    """
    try:
        return jsonio.dumps(obj)
    except (TypeError, ValueError) as exc:
        raise LabError(f"cannot store {type(obj).__name__} as JSON: {exc}") from None


def blob(values: np.ndarray) -> bytes:
    """``values`` as little-endian float64 bytes, C order (a matrix or a loss vector)."""
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def unblob(blobs: Iterable[bytes], shape: tuple[int, ...]) -> np.ndarray:
    """Stack blobs written by :func:`blob` into one float64 array of ``shape`` (one blob per
    entry of the first axis). Each blob is copied once into the result (a join and a cast
    would copy 10,000 steps x 50 x 50 matrices twice)."""
    out = np.empty(shape, dtype=np.float64)
    rows = out.reshape(shape[0], -1) if shape and shape[0] else out.reshape(0, 0)
    i = -1
    for i, b in enumerate(blobs):
        rows[i] = np.frombuffer(b, dtype="<f8")
    if i + 1 != (shape[0] if shape else 0):
        raise ValueError(f"expected {shape[0]} blobs, got {i + 1}")
    return out


def groups_json(groups: Any) -> str:
    """A grouping as JSON: sorted lists of task names, in canonical group order."""
    return json.dumps([sorted(g) for g in canonical_grouping(groups)])
