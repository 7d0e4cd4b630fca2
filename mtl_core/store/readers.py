"""What the app and the analyses read from a run: affinity matrices by measure, per-step
training losses, long-form metrics, and the groupings the sequential mode used."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.events import BATCH_SPLIT
from mtl_core.measures import DEFAULT_MEASURE, pick_measure
from mtl_core.store.base import StoreBase
from mtl_core.store.records import unblob
from mtl_core.types import Grouping, canonical_grouping


@dataclass(frozen=True)
class AffinityTail:
    """The matrices of one measure logged after a step, and what a caller needs to tell
    whether what it read before still stands (:meth:`ReadersMixin.affinity_since`).

    ``steps (K,)`` int64 ascending, all ``> after_step``; ``A (K, n, n)`` float64 as in
    :meth:`ReadersMixin.affinity_steps`. ``created`` (Unix seconds) and ``tasks`` identify the
    run: another run under a reused id (a new store file at the same path) differs in them.
    ``before`` is ``(rows, highest row id)`` of the measure's rows at or below ``after_step``
    (``(0, None)`` for none): SQLite gives a row written later, a rewritten one included
    (``INSERT OR REPLACE``), a row id above every row's at that moment, so ``before`` changes
    when one of those rows is deleted, inserted late or rewritten; a ``before`` equal to what
    the earlier read saw (its row count and ``newest``) means that read plus ``steps``/``A``
    equals a full read. (A ``VACUUM`` may renumber rows: then it only reads in full again.)
    """

    steps: np.ndarray
    tasks: list[str]
    A: np.ndarray
    created: float
    before: tuple[int, float | None]
    newest: int | None  # the highest row id among the rows returned (None: none returned)


@dataclass(frozen=True)
class MetricsTail:
    """A run's long-form metrics logged after a step (:meth:`ReadersMixin.metrics_since`).

    ``frame``: ``step, task, split, metric, value`` of the steps ``> after_step``, as
    :meth:`ReadersMixin.metrics` builds it (so the frame read before, followed by this one,
    is a full read). ``last_step``: the highest step in ``frame`` (None when empty).
    ``created`` and ``tasks`` identify the run. ``before`` is a fingerprint of the rows at or
    below ``after_step``, ``through`` the same of every row now: (loss rows, their latest
    write time, metric rows, the sum of their values). A ``before`` equal to the ``through``
    of the read that ended at ``after_step`` means none of those rows was deleted, inserted
    late or rewritten since (a rewritten loss row gets a new write time; a rewritten metric
    changes the sum unless its value did not change).
    """

    frame: pd.DataFrame
    tasks: list[str]
    created: float
    last_step: int | None
    before: tuple[int, float | None, int, float]
    through: tuple[int, float | None, int, float]


class ReadersMixin(StoreBase):
    """Read-only views of one run's logged data (each call is one consistent read)."""

    def measures(self, run_id: int) -> list[str]:
        """Affinity measures logged for a run (sorted); LabError if there is no such run."""
        return self._read(lambda con: self._run(con, run_id).measures)

    def affinity_steps(
        self, run_id: int, measure: str | None = None
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """All matrices of one measure: ``(steps (S,), tasks, A (S, n, n))``, steps ascending.

        ``A[s, i, j]`` = effect of an update on ``tasks[i]`` (source) on ``tasks[j]``'s loss
        (target) at ``steps[s]``, float64, NaN where a cell was not logged.
        ``measure=None`` picks the run's only measure (LabError when there are several); an
        unknown measure of a run that has others is a LabError; a run with no matrices yet
        gives ``S = 0``.
        """

        def q(con: sqlite3.Connection) -> tuple[np.ndarray, list[str], np.ndarray]:
            info = self._run(con, run_id)
            m = _pick(info.measures, measure, run_id)
            rows = con.execute(
                "SELECT step, data FROM affinity WHERE run_id = ? AND measure = ? ORDER BY step",
                (int(run_id), m),
            ).fetchall()
            n = len(info.tasks)
            if not rows:
                return np.zeros(0, np.int64), info.tasks, np.zeros((0, n, n))
            steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            return steps, info.tasks, unblob((r[1] for r in rows), (len(rows), n, n))

        return self._read(q)

    def affinity_since(
        self, run_id: int, measure: str | None, after_step: int | None
    ) -> AffinityTail:
        """The matrices of ``measure`` at steps ``> after_step`` (all of them for None), in one
        consistent read, with the run's identity and a check on the rows already read
        (:class:`AffinityTail`). A live run's poll reads only its new rows: the
        ``(run_id, measure, step)`` index finds them, and the check on the older rows reads
        that index alone (about 0.3 ms at 10,000 steps), no matrix. ``measure`` follows
        :meth:`affinity_steps`' rule. Raises LabError if there is no such run.
        """

        def q(con: sqlite3.Connection) -> AffinityTail:
            info = self._run(con, run_id)
            n = len(info.tasks)
            key = (int(run_id), _pick(info.measures, measure, run_id))
            lo = -(2**63) if after_step is None else int(after_step)
            count, newest = con.execute(
                "SELECT COUNT(*), MAX(rowid) FROM affinity"
                " WHERE run_id = ? AND measure = ? AND step <= ?",
                (*key, lo),
            ).fetchone()
            rows = con.execute(
                "SELECT step, rowid, data FROM affinity"
                " WHERE run_id = ? AND measure = ? AND step > ? ORDER BY step",
                (*key, lo),
            ).fetchall()
            steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            return AffinityTail(
                steps,
                info.tasks,
                unblob((r[2] for r in rows), (len(rows), n, n)),
                float(info.created),
                (int(count), newest),
                max(r[1] for r in rows) if rows else None,
            )

        return self._read(q)

    def affinity_wall_times(self, run_id: int, measure: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps (S,), wall_time (S,))`` of a measure's matrices: Unix seconds, NaN where
        unknown (e.g. an uploaded log without times)."""
        rows = self._read(
            lambda con: con.execute(
                "SELECT step, wall_time FROM affinity"
                " WHERE run_id = ? AND measure = ? ORDER BY step",
                (int(run_id), measure),
            ).fetchall()
        )
        steps = np.array([r[0] for r in rows], dtype=np.int64)
        return steps, np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=np.float64)

    def losses(self, run_id: int) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Per-step minibatch training losses: ``(steps (S,), tasks, L (S, n))``, NaN where a
        task's loss was not reported; LabError if there is no such run."""

        def q(con: sqlite3.Connection) -> tuple[np.ndarray, list[str], np.ndarray]:
            tasks = self._run(con, run_id).tasks
            rows = con.execute(
                "SELECT step, losses FROM steps WHERE run_id = ? ORDER BY step", (int(run_id),)
            ).fetchall()
            steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            return steps, tasks, unblob((r[1] for r in rows), (len(rows), len(tasks)))

        return self._read(q)

    def metrics(self, run_id: int) -> pd.DataFrame:
        """Long-form metrics ``step, task, split, metric, value`` ordered by step; the per-step
        minibatch training loss appears as ``split="batch", metric="loss"``."""

        def q(con: sqlite3.Connection) -> tuple[Any, ...]:
            return (
                self.losses(run_id),
                con.execute(
                    "SELECT step, task, split, metric, value FROM metrics WHERE run_id = ?",
                    (int(run_id),),
                ).fetchall(),
            )

        (steps, tasks, loss), rows = self._read(q)
        return _metrics_frame(steps, tasks, loss, rows)

    def metrics_since(self, run_id: int, after_step: int | None) -> MetricsTail:
        """:meth:`metrics` of the steps ``> after_step`` only (all for None), in one consistent
        read, with the run's identity and fingerprints of the rows already read
        (:class:`MetricsTail`): what a live poll needs to read only what is new. Raises
        LabError if there is no such run."""

        def q(con: sqlite3.Connection) -> MetricsTail:
            info = self._run(con, run_id)
            rid, lo = int(run_id), -(2**63) if after_step is None else int(after_step)

            def mark(upto: int) -> tuple[int, float | None, int, float]:
                n_loss, latest = con.execute(
                    "SELECT COUNT(*), MAX(wall_time) FROM steps WHERE run_id = ? AND step <= ?",
                    (rid, upto),
                ).fetchone()
                n_met, total = con.execute(
                    "SELECT COUNT(*), TOTAL(value) FROM metrics WHERE run_id = ? AND step <= ?",
                    (rid, upto),
                ).fetchone()
                return int(n_loss), latest, int(n_met), float(total)

            loss_rows = con.execute(
                "SELECT step, losses FROM steps WHERE run_id = ? AND step > ? ORDER BY step",
                (rid, lo),
            ).fetchall()
            metric_rows = con.execute(
                "SELECT step, task, split, metric, value FROM metrics"
                " WHERE run_id = ? AND step > ?",
                (rid, lo),
            ).fetchall()
            n = len(info.tasks)
            steps = np.fromiter((r[0] for r in loss_rows), dtype=np.int64, count=len(loss_rows))
            loss = unblob((r[1] for r in loss_rows), (len(loss_rows), n))
            frame = _metrics_frame(steps, info.tasks, loss, metric_rows)
            last = max(
                [*(r[0] for r in loss_rows[-1:]), *(r[0] for r in metric_rows)], default=None
            )
            return MetricsTail(
                frame,
                info.tasks,
                float(info.created),
                None if last is None else int(last),
                mark(lo),
                mark(2**63 - 1),
            )

        return self._read(q)

    def groupings(self, run_id: int) -> list[tuple[int, Grouping]]:
        """``[(step, grouping), ...]`` ascending, groupings as tuples of frozensets."""
        rows = self._read(
            lambda con: con.execute(
                "SELECT step, groups FROM groupings WHERE run_id = ? ORDER BY step", (int(run_id),)
            ).fetchall()
        )
        return [(int(s), canonical_grouping(json.loads(g))) for s, g in rows]


def _pick(measures: list[str], measure: str | None, run_id: int) -> str:
    """The lab's one measure rule (``pick_measure``); a run with nothing logged yet reads as
    empty under the measure asked for (or the default)."""
    if measures:
        return pick_measure(measures, measure, f"run {run_id}")
    return measure or DEFAULT_MEASURE


def _metrics_frame(
    steps: np.ndarray, tasks: list[str], loss: np.ndarray, rows: list[Any]
) -> pd.DataFrame:
    """The long form of the batch losses ``loss (S, n)`` (NaN cells dropped) and the logged
    metric ``rows`` (step, task, split, metric, value), stably sorted by step."""
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
    value = np.concatenate(
        [flat[keep], np.array([np.nan if v is None else v for v in cols[4]], dtype=np.float64)]
    )
    return pd.DataFrame(
        {
            "step": step[order],
            "task": task[order],
            "split": split[order],
            "metric": metric[order],
            "value": value[order],
        }
    )
