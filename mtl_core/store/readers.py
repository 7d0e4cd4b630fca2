"""What the app and the analyses read from a run: affinity matrices by measure, per-step
training losses, long-form metrics, and the groupings the sequential mode used."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.events import BATCH_SPLIT
from mtl_core.measures import DEFAULT_MEASURE, pick_measure
from mtl_core.store.base import StoreBase
from mtl_core.store.records import unblob
from mtl_core.types import Grouping, canonical_grouping


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
            # the lab's one measure rule; a run with nothing logged yet reads as empty
            m = (
                pick_measure(info.measures, measure, f"run {run_id}")
                if info.measures
                else measure or DEFAULT_MEASURE
            )
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

    def groupings(self, run_id: int) -> list[tuple[int, Grouping]]:
        """``[(step, grouping), ...]`` ascending, groupings as tuples of frozensets."""
        rows = self._read(
            lambda con: con.execute(
                "SELECT step, groups FROM groupings WHERE run_id = ? ORDER BY step", (int(run_id),)
            ).fetchall()
        )
        return [(int(s), canonical_grouping(json.loads(g))) for s, g in rows]


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
