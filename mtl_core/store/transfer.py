"""Runs in and out of the store as parsed run files (:class:`ParsedRun`): the upload page and
``runs import`` add them, export writes them. The only part of the store that knows the file
format."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.runfile import (
    AFFINITY_FRAME,
    GROUPING_FRAME,
    METRIC_FRAME,
    ParsedRun,
    matrices_to_long,
)
from mtl_core.store.readers import ReadersMixin
from mtl_core.store.records import blob, groups_json, insert_run, update_run
from mtl_core.store.runs import RunsMixin


@dataclass(frozen=True)
class _RunRows:
    """One run of a parsed file, split out before the write transaction starts."""

    name: str
    tasks: list[str]
    task_types: dict[str, str]
    matrices: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]  # measure, steps, A, wall
    metrics: pd.DataFrame
    groupings: pd.DataFrame


class TransferMixin(RunsMixin, ReadersMixin):
    """Import and export of whole runs in the open run-file format."""

    def import_parsed(
        self,
        parsed: ParsedRun,
        name: str = "",
        *,
        origin: str = "uploaded",
        owner: str | None = None,
    ) -> list[int]:
        """Add every run of a validated file in one transaction; return the new run ids
        (``owner``: who uploaded it, see ``mtl_core.accounts.access``; None for the command line).

        A file with several runs gives one run each, named ``"<name> / <run>"``; each is
        ``finished`` with the file's config, notes and other metadata. All or nothing: if one
        run cannot be written, none is.
        """
        base = name or str(parsed.meta.get("name", "")) or "uploaded run"
        runs = [_split_run(parsed, run, base) for run in parsed.runs]
        meta = {k: v for k, v in parsed.meta.items() if k not in ("config", "notes", "name")}
        config = parsed.meta.get("config") or {}
        notes = str(parsed.meta.get("notes", ""))

        def tx(con: sqlite3.Connection) -> list[int]:
            ids = []
            for r in runs:
                rid = insert_run(
                    con,
                    name=r.name,
                    origin=origin,
                    status="finished",
                    config=config,
                    tasks=r.tasks,
                    task_types=r.task_types,
                    notes=notes,
                    meta=meta,
                    steps_total=None,
                    owner=owner,
                )
                _insert_rows(con, rid, r)
                ids.append(rid)
            return ids

        return self._write(tx)

    def export_parsed(self, run_id: int) -> ParsedRun:
        """The run as a :class:`ParsedRun`, ready for ``runfile.write_run_file``.

        Everything logged goes along: every measure's matrices with their wall times, the
        metrics (batch losses included), the groupings, config, notes and metadata.
        LabError if there is no such run.
        """
        with self.snapshot():
            info = self.get_run(run_id)
            parts = []
            for m in info.measures:
                steps, tasks, a = self.affinity_steps(run_id, m)
                _, wt = self.affinity_wall_times(run_id, m)
                parts.append(matrices_to_long(steps, tasks, a, m, wall_times=wt))
            met = self.metrics(run_id)
            grp = self.groupings(run_id)
        aff = (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame({c: [] for c in AFFINITY_FRAME})
        )
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
            tasks=list(info.tasks),
            task_types=dict(info.task_types),
            affinity=aff,
            metrics=met[METRIC_FRAME],
            groupings=grp_df,
            meta=meta,
            runs=[""],
            tasks_declared=True,
        )


def _split_run(parsed: ParsedRun, run: str, base: str) -> _RunRows:
    """One run's matrices (per measure, with the earliest wall time of each step), metrics
    and groupings out of a parsed file."""
    tasks = parsed.run_tasks(run)
    mats = []
    for m in parsed.measures(run):
        steps, _, a = parsed.matrices(run, m)
        sel = parsed.affinity[(parsed.affinity["run"] == run) & (parsed.affinity["measure"] == m)]
        wt = sel.groupby("step")["wall_time"].min().reindex(steps).to_numpy()
        mats.append((m, steps, a, wt))
    return _RunRows(
        name=base if run == "" else f"{base} / {run}",
        tasks=tasks,
        task_types={t: v for t, v in parsed.task_types.items() if t in tasks},
        matrices=mats,
        metrics=parsed.metrics[parsed.metrics["run"] == run],
        groupings=parsed.groupings[parsed.groupings["run"] == run],
    )


def _insert_rows(con: sqlite3.Connection, rid: int, r: _RunRows) -> None:
    """Write one imported run's matrices, metrics, groupings and progress under id ``rid``."""
    logged = {int(x) for _, s, _, _ in r.matrices for x in s} | set(r.metrics["step"].tolist())
    update_run(con, rid, steps_done=len(logged), last_step=max(logged) if logged else None)
    n = len(r.tasks)
    con.executemany(
        "INSERT INTO affinity (run_id, measure, step, n, wall_time, data) VALUES (?,?,?,?,?,?)",
        [
            (rid, m, int(s), n, None if math.isnan(w) else float(w), blob(a[k]))
            for m, steps, a, wt in r.matrices
            for k, (s, w) in enumerate(zip(steps, wt))
        ],
    )
    con.executemany(
        "INSERT INTO metrics (run_id, step, task, split, metric, value) VALUES (?,?,?,?,?,?)",
        [
            (rid, int(s), t, sp, mt, float(v))
            for s, t, sp, mt, v in r.metrics[
                ["step", "task", "split", "metric", "value"]
            ].itertuples(index=False)
        ],
    )
    con.executemany(
        "INSERT INTO groupings (run_id, step, groups) VALUES (?,?,?)",
        [
            (rid, int(s), groups_json(g))
            for s, g in r.groupings[["step", "groups"]].itertuples(index=False)
        ],
    )
