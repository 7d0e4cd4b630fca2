"""The runner when the run store cannot be written (a full disk, a read-only or damaged
file): outcomes kept until they can be saved, and a supervisor that backs off instead of
spinning. Torch-free.

A run whose outcome cannot be written would otherwise stay ``running`` forever, and the
supervisor would retry the write (and print the error) on every pass. Instead:

- :class:`PendingOutcomes` keeps the outcome the supervisor decided ("failed: the disk is
  full") in memory, shows it to whoever asks this runner (``Runner.status`` and ``wait``, so
  the command line ends with one ``error:`` line and exit 2), stops retrying that run on every
  pass, and tries to save it again at most every ``retry_s`` seconds (when space is freed the
  store catches up; a later runner marks it ``interrupted`` otherwise).
- :class:`Backoff` spaces the supervisor's passes out while they keep failing (up to
  ``max_s``) and reports each distinct error once.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time

from mtl_core.store import RunInfo, Store
from mtl_core.store.faults import StoreFault
from mtl_core.text.terminal import one_line


class PendingOutcomes:
    """Outcomes of runs that could not be written to ``store`` yet (thread-safe)."""

    def __init__(self, store: Store, retry_s: float = 10.0) -> None:
        self.store = store
        self.retry_s = float(retry_s)
        self._pending: dict[int, tuple[str, str, float]] = {}  # id -> status, error, when
        self._lock = threading.Lock()
        self._last_retry = 0.0

    def record(
        self, run_id: int, status: str, error: str | None, error_detail: str | None = None
    ) -> bool:
        """Set a running run's outcome in the store (only if it is still ``running``);
        kept here when the store cannot be written. Returns whether the store changed."""
        try:
            changed = self.store.set_status(
                run_id, status, only_from=("running",), error=error, error_detail=error_detail
            )
        except StoreFault as exc:
            with self._lock:
                if run_id not in self._pending:
                    note = f"{error or status}; not saved in the store yet: {exc}"
                    self._pending[run_id] = (status, note, time.time())
            return False
        with self._lock:
            self._pending.pop(run_id, None)
        return changed

    def __contains__(self, run_id: object) -> bool:
        with self._lock:
            return run_id in self._pending

    def overlay(self, info: RunInfo) -> RunInfo:
        """``info`` with its pending outcome when the store still says ``running``."""
        with self._lock:
            p = self._pending.get(info.id)
        if p is None or info.status != "running":
            return info
        status, error, when = p
        return dataclasses.replace(info, status=status, error=error, finished=when, eta_s=None)

    def retry(self) -> None:
        """Try to save the pending outcomes (at most every ``retry_s`` seconds)."""
        now = time.monotonic()
        with self._lock:
            if not self._pending or now - self._last_retry < self.retry_s:
                return
            self._last_retry = now
            items = list(self._pending.items())
        for rid, (status, error, _) in items:
            try:
                self.store.set_status(rid, status, only_from=("running",), error=error)
                # (the saved error keeps the note that it was saved late)
            except StoreFault:
                return  # still unwritable: try again later
            with self._lock:
                self._pending.pop(rid, None)


class Backoff:
    """How long the supervisor waits before its next pass: ``poll_s`` while passes succeed,
    doubling up to ``max_s`` while they fail; each distinct failure is reported once (a
    store fault once per kind: a damaged file met as "malformed" and then by the integrity
    check is one report). ``report_faults=False``: store faults are kept (:attr:`fault`)
    but not written, for a caller that reports them itself (the command line's ``train``)."""

    def __init__(self, poll_s: float, max_s: float = 30.0, report_faults: bool = True) -> None:
        self.report_faults = bool(report_faults)
        self.poll_s = float(poll_s)
        self.max_s = max(float(max_s), self.poll_s)
        self.delay = self.poll_s
        self.last: str | None = None
        self.fault: StoreFault | None = None  # the store fault of the last pass, if any

    def ok(self) -> float:
        """A pass succeeded: the next one after ``poll_s``."""
        self.delay, self.last, self.fault = self.poll_s, None, None
        return self.delay

    def failed(self, exc: Exception) -> float:
        """A pass failed with ``exc``: report it (once) and wait longer before the next."""
        fault = isinstance(exc, StoreFault)
        key = f"store fault: {exc.kind}" if fault else repr(exc)
        if key != self.last:
            if self.report_faults or not fault:
                text = str(exc) if fault else repr(exc)
                sys.stderr.write(f"mtl_core.runner: supervisor error: {one_line(text)}\n")
            self.last = key
        self.fault = exc if isinstance(exc, StoreFault) else None
        self.delay = min(max(self.delay * 2, self.poll_s), self.max_s)
        return self.delay


__all__ = ["Backoff", "PendingOutcomes"]
