"""Follow a growing live log folder (:class:`~mtl_core.live.sinks.FolderSink`'s layout),
reading only the bytes appended since the last poll.

Each poll parses the new whole lines of ``metrics.csv`` and ``affinity.csv`` (a line still being
written is left for the next poll) and returns the steps whose matrices are complete (every
cell of every measure logged at that step), as :class:`~mtl_core.events.StepEvent` s ready for
``Store.append_steps``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.events import BATCH_SPLIT, MetricRow, StepEvent
from mtl_core.live.sinks import AFFINITY_CSV, AFFINITY_HEADER, META_JSON, METRICS_CSV


@dataclass
class FollowBatch:
    """What one poll found: complete steps (ascending) and whether the log is closed."""

    events: list[StepEvent] = field(default_factory=list)
    closed: bool = False
    status: str = "running"


class _Tail:
    """Byte offset into one append-only file; :meth:`lines` returns the new whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.header: list[str] | None = None

    def rows(self) -> list[list[str]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        rows = list(csv.reader(io.StringIO(data[: end + 1].decode("utf-8"))))
        if self.header is None and rows:
            self.header = [c.strip().lower() for c in rows.pop(0)]
        return [r for r in rows if r]


class FolderFollower:
    """Follow ``folder`` (a live log folder with ``meta.json`` and ``affinity.csv``).

    ``after_step``: steps at or below it are skipped (resuming an import). Raises LabError,
    naming the file and line, for a folder that is not a live log or a malformed row.
    """

    def __init__(self, folder: str | Path, after_step: int | None = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise LabError(f"{self.folder}: no such folder")
        self.after_step = after_step
        self._aff = _Tail(self.folder / AFFINITY_CSV)
        self._met = _Tail(self.folder / METRICS_CSV)
        self._cells: dict[int, dict[str, dict[tuple[str, str], float]]] = {}
        self._losses: dict[int, dict[str, float]] = {}
        self._metrics: dict[int, list[MetricRow]] = {}
        self.meta: dict[str, Any] = {}

    @staticmethod
    def is_live_folder(folder: str | Path) -> bool:
        """Whether ``folder`` holds a live log (``meta.json`` beside ``affinity.csv``)."""
        f = Path(folder)
        return (f / META_JSON).is_file() and (f / AFFINITY_CSV).is_file()

    @property
    def tasks(self) -> list[str]:
        return [str(t) for t in self.meta.get("tasks") or []]

    def _read_meta(self) -> None:
        try:
            meta = json.loads((self.folder / META_JSON).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LabError(f"{self.folder}: no {META_JSON} (not a live log folder)") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise LabError(f"{self.folder / META_JSON}: not JSON ({exc})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("tasks"), list):
            raise LabError(f"{self.folder / META_JSON}: names no tasks")
        self.meta = meta

    def poll(self) -> FollowBatch:
        """Read what was appended since the last poll; return the newly complete steps."""
        self._read_meta()  # first: a log closed after this read is seen closed next poll
        closed = self.meta.get("live") is False
        for r in self._met.rows():
            step, task, split, metric, value = self._fields(r, self._met, METRICS_CSV, 5)
            if split == BATCH_SPLIT and metric == "loss":
                self._losses.setdefault(step, {})[task] = value
            else:
                self._metrics.setdefault(step, []).append(MetricRow(task, split, metric, value))
        for r in self._aff.rows():
            if len(r) < len(AFFINITY_HEADER):
                raise LabError(f"{self.folder / AFFINITY_CSV}: a row with {len(r)} fields: {r}")
            step = _int(r[0], AFFINITY_CSV)
            cells = self._cells.setdefault(step, {}).setdefault(r[1], {})
            cells[(r[2], r[3])] = _float(r[4], AFFINITY_CSV)
        return FollowBatch(self._complete(closed), closed, str(self.meta.get("status", "running")))

    def _fields(self, r: list[str], tail: _Tail, name: str, n: int) -> tuple[Any, ...]:
        if len(r) < n:
            raise LabError(f"{self.folder / name}: a row with {len(r)} fields: {r}")
        return (_int(r[0], name), r[1], r[2], r[3], _float(r[4], name))

    def _complete(self, closed: bool) -> list[StepEvent]:
        tasks = self.tasks
        n = len(tasks)
        index = {t: i for i, t in enumerate(tasks)}
        out = []
        for step in sorted(self._cells):
            by_measure = self._cells[step]
            if not closed and any(len(c) < n * n for c in by_measure.values()):
                break  # the rest of this step's rows are still being written
            mats = {}
            for measure, cells in by_measure.items():
                a = np.full((n, n), np.nan)
                for (s, t), v in cells.items():
                    if s not in index or t not in index:
                        raise LabError(
                            f"{self.folder / AFFINITY_CSV}: step {step} names task "
                            f"{s if s not in index else t!r}, not in {META_JSON}'s tasks"
                        )
                    a[index[s], index[t]] = v
                mats[measure] = a
            del self._cells[step]
            losses = self._losses.pop(step, {})
            metrics = self._metrics.pop(step, [])
            if self.after_step is not None and step <= self.after_step:
                continue
            out.append(StepEvent(step, 0, tasks, losses, metrics=metrics, affinity=mats))
        return out


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise LabError(f"{name}: step {text!r} is not a whole number") from None


def _float(text: str, name: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise LabError(f"{name}: value {text!r} is not a number") from None
    return v
