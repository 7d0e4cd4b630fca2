"""Incremental reads of a run's affinity matrices: what the app has read of each (run, measure)
is kept, and a poll of a growing run asks the store only for the steps after the last one read
(``Store.affinity_since``).

The kept rows are dropped and read again in full only when they no longer stand: the run's
identity changed (another run under the same id after a delete and re-import: its ``created``
time or tasks differ), or a row at or below the last step read was deleted, inserted late or
rewritten (the store's count and highest row id of those rows differ from what was read).
So the arrays returned always equal a full ``Store.affinity_steps`` read of the same moment.

Streamlit-free (the app holds one :class:`AffinityTails` per store in ``app.data``), and
thread-safe: sessions are threads, and two asking for the same run wait for one read.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtl_core.series import SmoothState

#: At most this many (store, run, measure) entries are kept, least recently read dropped first.
MAX_ENTRIES = 16
#: ... and at most this many bytes of matrices in all (the entry being read is always kept).
MAX_BYTES = 1 << 30

_GENERATIONS = itertools.count(1)  # a fresh number each time an entry starts from nothing


@dataclass
class _Entry:
    """What was read of one run's measure: ``steps[:size]``, ``A[:size]`` (capacity grows by
    doubling, so appending K steps copies K matrices, not the whole run)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    created: float | None = None
    tasks: list[str] = field(default_factory=list)
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    A: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    size: int = 0
    newest: int | None = None  # the highest store row id among the rows read
    generation: int = 0  # changes whenever the rows read start again from nothing

    @property
    def nbytes(self) -> int:
        return int(self.A.nbytes + self.steps.nbytes)

    def reset(self, created: float, tasks: list[str]) -> None:
        n = len(tasks)
        self.created, self.tasks, self.size, self.newest = created, list(tasks), 0, None
        self.generation = next(_GENERATIONS)
        self.steps, self.A = np.zeros(0, np.int64), np.zeros((0, n, n))

    def append(self, steps: np.ndarray, A: np.ndarray, newest: int | None) -> None:
        k = len(steps)
        if self.size + k > len(self.steps):
            cap = max(64, 2 * len(self.steps), self.size + k)
            grown_s = np.empty(cap, np.int64)
            grown_a = np.empty((cap, *self.A.shape[1:]))
            grown_s[: self.size] = self.steps[: self.size]
            grown_a[: self.size] = self.A[: self.size]
            # views handed out earlier keep the old buffers: their contents never change
            self.steps, self.A = grown_s, grown_a
        self.steps[self.size : self.size + k] = steps
        self.A[self.size : self.size + k] = A
        self.size += k
        if newest is not None:
            self.newest = newest if self.newest is None else max(self.newest, newest)

    def view(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        steps, A = self.steps[: self.size], self.A[: self.size]
        steps.setflags(write=False)  # shared between sessions: nobody may modify them
        A.setflags(write=False)
        return steps, list(self.tasks), A


class AffinityTails:
    """A bounded cache of the affinity matrices read per ``(store path, run, measure)``.

    :meth:`read` returns what ``store.affinity_steps(run_id, measure)`` would, reading only
    the rows after the last step read before. ``fetched`` counts the matrices (rows) read from
    the store in all, so a test or a bench can tell a full read from an incremental one.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries, self.max_bytes = int(max_entries), int(max_bytes)
        self._entries: OrderedDict[tuple[str, int, str | None], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.fetched = 0

    def read(
        self, store: Any, run_id: int, measure: str | None
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """``(steps (S,), tasks, A (S, n, n))`` of one run's measure, read-only; as
        ``Store.affinity_steps`` (same values, same LabError for an unknown run or measure)."""
        return self.read_tagged(store, run_id, measure)[:3]

    def read_tagged(
        self, store: Any, run_id: int, measure: str | None
    ) -> tuple[np.ndarray, list[str], np.ndarray, int]:
        """:meth:`read` and the rows' generation: two reads with one generation share their
        first rows (the longer extends the shorter), so what is derived from the first rows
        can be kept (:class:`SmoothTails`)."""
        key = (str(store.path), int(run_id), measure)
        with self._lock:
            entry = self._entries.pop(key, None) or _Entry()
            self._entries[key] = entry  # most recently used last
        try:
            with entry.lock:
                self._poll(store, int(run_id), measure, entry)
                out = (*entry.view(), entry.generation)
        except Exception:
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            raise
        self._evict(keep=key)
        return out

    def _poll(self, store: Any, run_id: int, measure: str | None, entry: _Entry) -> None:
        after = int(entry.steps[entry.size - 1]) if entry.size else None
        tail = store.affinity_since(run_id, measure, after)
        self.fetched += len(tail.steps)
        same_run = entry.created == tail.created and entry.tasks == list(tail.tasks)
        if not same_run or tail.before != (entry.size, entry.newest):
            if after is not None:  # what was read no longer stands: read it all
                tail = store.affinity_since(run_id, measure, None)
                self.fetched += len(tail.steps)
            entry.reset(tail.created, list(tail.tasks))
        entry.append(tail.steps, tail.A, tail.newest)

    def _evict(self, keep: tuple[str, int, str | None]) -> None:
        with self._lock:
            total = sum(e.nbytes for e in self._entries.values())
            for k in list(self._entries):
                if len(self._entries) <= self.max_entries and total <= self.max_bytes:
                    break
                if k != keep:
                    total -= self._entries.pop(k).nbytes

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class _Smoothed:
    """One smoothing of one run's matrices, ``out[:size]``, and the state to extend it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    generation: int = -1
    state: SmoothState | None = None
    out: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    size: int = 0


class SmoothTails:
    """A bounded cache of smoothed stacks (``mtl_core.series.smooth``) of growing runs: a poll
    smooths only the rows that arrived since the last one (``SmoothState``), and starts again
    when the rows it was built on did (another generation of :class:`AffinityTails`).
    ``smoothed_rows`` counts the rows smoothed in all."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries, self.max_bytes = int(max_entries), int(max_bytes)
        self._entries: OrderedDict[tuple, _Smoothed] = OrderedDict()
        self._lock = threading.Lock()
        self.smoothed_rows = 0

    def smooth(
        self, key: tuple, generation: int, A: np.ndarray, how: str, window: int, beta: float
    ) -> np.ndarray:
        """``smooth(A, how, window=, beta=)`` (read-only), for ``A`` of ``generation``
        (:meth:`AffinityTails.read_tagged`) under ``key`` (the run and measure it is of)."""
        full_key = (*key, how, int(window), float(beta))
        with self._lock:
            entry = self._entries.pop(full_key, None) or _Smoothed()
            self._entries[full_key] = entry
        with entry.lock:
            if entry.generation == generation and len(A) <= entry.size:
                view = entry.out[: len(A)]  # an earlier read of the same rows: a prefix
                view.setflags(write=False)
                return view
            if entry.generation != generation:
                entry.generation, entry.size = generation, 0
                entry.state = SmoothState(how, window=window, beta=beta)
                entry.out = np.zeros((0, *A.shape[1:]))
            rows = entry.state.extend(A, entry.size)
            self.smoothed_rows += len(rows)
            if entry.size + len(rows) > len(entry.out):
                grown = np.empty(
                    (max(64, 2 * len(entry.out), entry.size + len(rows)), *A.shape[1:])
                )
                grown[: entry.size] = entry.out[: entry.size]
                entry.out = grown  # views handed out earlier keep the old buffer
            entry.out[entry.size : entry.size + len(rows)] = rows
            entry.size += len(rows)
            view = entry.out[: entry.size]
            view.setflags(write=False)
        with self._lock:
            total = sum(e.out.nbytes for e in self._entries.values())
            for k in list(self._entries):
                if len(self._entries) <= self.max_entries and total <= self.max_bytes:
                    break
                if k != full_key:
                    total -= self._entries.pop(k).out.nbytes
        return view

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class _Metrics:
    """What was read of one run's metrics: the long frame up to ``last`` and its fingerprint."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    created: float | None = None
    tasks: list[str] = field(default_factory=list)
    frame: Any = None
    last: int | None = None
    through: tuple = (0, None, 0, 0.0)


class MetricsTails:
    """A bounded cache of the long-form metrics read per ``(store path, run)``: a poll asks the
    store only for the steps after the last one read (``Store.metrics_since``) and appends
    them; everything is read again when the run's identity or the rows already read changed.
    :meth:`read` returns what ``store.metrics(run_id)`` would; the frame is shared: do not
    modify it (the app's ``data.metrics`` hands each caller a copy). ``fetched`` counts the
    long-form rows read from the store."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = int(max_entries)
        self._entries: OrderedDict[tuple[str, int], _Metrics] = OrderedDict()
        self._lock = threading.Lock()
        self.fetched = 0

    def read(self, store: Any, run_id: int) -> Any:
        """The run's metrics ``step, task, split, metric, value`` (a pandas DataFrame)."""
        import pandas as pd

        key = (str(store.path), int(run_id))
        with self._lock:
            entry = self._entries.pop(key, None) or _Metrics()
            self._entries[key] = entry
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        try:
            with entry.lock:
                after = entry.last if entry.created is not None else None
                tail = store.metrics_since(int(run_id), after)
                self.fetched += len(tail.frame)
                same = entry.created == tail.created and entry.tasks == list(tail.tasks)
                if not same or tail.before != entry.through:
                    if entry.created is not None and after is not None:
                        tail = store.metrics_since(int(run_id), None)
                        self.fetched += len(tail.frame)
                    entry.created, entry.tasks = tail.created, list(tail.tasks)
                    entry.frame, entry.last = None, None
                if entry.frame is None or entry.frame.empty:
                    entry.frame = tail.frame
                elif not tail.frame.empty:
                    entry.frame = pd.concat([entry.frame, tail.frame], ignore_index=True)
                if tail.last_step is not None:
                    entry.last = tail.last_step
                entry.through = tail.through
                return entry.frame
        except Exception:
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            raise

    def __len__(self) -> int:
        return len(self._entries)
