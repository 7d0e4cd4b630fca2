"""Where a live :class:`~mtl_core.train.logger.AffinityLogger` appends its steps.

A sink receives batches of :class:`~mtl_core.events.StepEvent` (one per step, its matrices
and/or its per-task losses) and writes them at once; :meth:`LiveSink.close` marks the run done.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtl_core.errors import LabError
from mtl_core.events import BATCH_SPLIT, StepEvent

#: File names of a live log folder (the lab bundle's, so the folder reader reads it as one run).
AFFINITY_CSV = "affinity.csv"
METRICS_CSV = "metrics.csv"
META_JSON = "meta.json"
AFFINITY_HEADER = ("step", "measure", "source", "target", "affinity", "wall_time")
METRICS_HEADER = ("step", "task", "split", "metric", "value")
#: Suffixes that make a ``live=`` path a run store rather than a log folder.
STORE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


class LiveSink:
    """A live destination: ``start`` once with the run's tasks, ``write`` batches of steps
    (``wall_times``: step -> Unix time it was measured), ``close`` once
    (``status``: ``finished``, or ``failed``/``interrupted`` on an error)."""

    def start(self, tasks: list[str], task_types: dict[str, str], meta: dict[str, Any]) -> None:
        raise NotImplementedError

    def write(
        self, events: Sequence[StepEvent], wall_times: dict[int, float] | None = None
    ) -> None:
        raise NotImplementedError

    def close(self, status: str = "finished") -> None:
        raise NotImplementedError


class StoreSink(LiveSink):
    """Append to a new run of a run store (a ``Store`` or its path). The run is ``running``
    (so the app follows it) until :meth:`close`; ``run_id`` is set by :meth:`start`."""

    def __init__(self, store: Any, name: str = "") -> None:
        from mtl_core.store import Store

        self.store = store if isinstance(store, Store) else Store(store)
        self.name = name
        self.run_id: int | None = None

    def start(self, tasks: list[str], task_types: dict[str, str], meta: dict[str, Any]) -> None:
        """Create the run record (origin ``logged``, status ``running``)."""
        rid = self.store.create_run(
            name=self.name or str(meta.get("name") or "live run"),
            origin="logged",
            status="running",
            config=dict(meta.get("config") or {}),
            tasks=list(tasks),
            task_types=dict(task_types),
            notes=str(meta.get("notes") or ""),
            meta={k: v for k, v in meta.items() if k not in ("config", "notes")},
        )
        self.run_id = int(rid) if rid is not None else None
        self.store.set_status(self.run_id, "running")  # stamps `started`

    def write(
        self, events: Sequence[StepEvent], wall_times: dict[int, float] | None = None
    ) -> None:
        """Append the steps in one transaction (readers see a whole batch or none of it)."""
        if self.run_id is None:
            raise LabError("the live store run was not started")
        self.store.append_steps(self.run_id, list(events))

    def close(self, status: str = "finished") -> None:
        """End the run (``finished`` unless told otherwise); the app stops polling."""
        if self.run_id is not None:
            self.store.set_status(self.run_id, status, only_from=("running",))


class FolderSink(LiveSink):
    """Append to a log folder laid out as a lab bundle: ``meta.json`` (tasks, task types,
    name, config, ``"live": true`` until closed), ``affinity.csv`` (long form, one row per
    cell) and ``metrics.csv`` (one row per task's loss). Each batch is one ``write()`` of
    whole lines to a file opened ``O_APPEND``, flushed and fsync'ed.

    Raises LabError when the folder already holds an ``affinity.csv`` (a run is never
    appended to another's log).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._tasks: list[str] = []
        self._meta: dict[str, Any] = {}

    def start(self, tasks: list[str], task_types: dict[str, str], meta: dict[str, Any]) -> None:
        """Create the folder (one level), refuse one that already holds a log, write the
        header lines and ``meta.json``."""
        if self.folder.exists() and not self.folder.is_dir():
            raise LabError(f"{self.folder} is a file; live= takes a folder or a store path")
        if (self.folder / AFFINITY_CSV).exists():
            raise LabError(f"{self.folder} already holds a log ({AFFINITY_CSV}); pick a new folder")
        self.folder.mkdir(parents=False, exist_ok=True)
        self._tasks = list(tasks)
        self._meta = {
            **meta,
            "format": "task-affinity-lab",
            "tasks": list(tasks),
            "task_types": dict(task_types),
            "live": True,
        }
        self._write_meta()
        self._append(METRICS_CSV, [METRICS_HEADER])
        self._append(AFFINITY_CSV, [AFFINITY_HEADER])

    def write(
        self, events: Sequence[StepEvent], wall_times: dict[int, float] | None = None
    ) -> None:
        """Append the steps' metric rows first, then their affinity rows (a follower keyed
        on the affinity file never sees a step whose losses are still to come)."""
        met, aff = [], []
        for ev in events:
            for task, value in ev.train_loss.items():
                met.append((int(ev.step), task, BATCH_SPLIT, "loss", repr(float(value))))
            for m in ev.metrics:
                met.append((int(ev.step), m.task, m.split, m.metric, repr(float(m.value))))
            wt = repr(float((wall_times or {}).get(int(ev.step), time.time())))
            for measure, mat in ev.affinity.items():
                tasks = list(ev.tasks)
                for i, s in enumerate(tasks):
                    for j, t in enumerate(tasks):
                        aff.append((int(ev.step), measure, s, t, repr(float(mat[i][j])), wt))
        if met:
            self._append(METRICS_CSV, met)
        if aff:
            self._append(AFFINITY_CSV, aff)

    def close(self, status: str = "finished") -> None:
        """Mark the log complete in ``meta.json`` (``"live": false``, the final status)."""
        if self._meta:
            self._meta.update(live=False, status=status)
            self._write_meta()

    def _append(self, name: str, rows: list[tuple[Any, ...]]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        data = buf.getvalue().encode("utf-8")
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_meta(self) -> None:
        tmp = self.folder / (META_JSON + ".tmp")
        tmp.write_text(json.dumps(self._meta, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, self.folder / META_JSON)  # readers see the old or the new, never half


def open_sinks(live: Any, name: str = "") -> list[LiveSink]:
    """``live=`` of the logger -> sinks: a :class:`LiveSink`, a ``Store``, a path ending
    ``.sqlite``/``.sqlite3``/``.db`` (a store), another path (a log folder), or a list of
    these. None or an empty list: no sink. Raises LabError for anything else."""
    if live is None:
        return []
    if isinstance(live, list | tuple):
        return [s for item in live for s in open_sinks(item, name)]
    if isinstance(live, LiveSink):
        return [live]
    from mtl_core.store import Store

    if isinstance(live, Store):
        return [StoreSink(live, name)]
    if isinstance(live, str | os.PathLike):
        p = Path(live)
        if p.suffix.lower() in STORE_SUFFIXES:
            return [StoreSink(p, name)]
        return [FolderSink(p)]
    raise LabError(f"live= takes a store, a store path or a folder, got {type(live).__name__}")
