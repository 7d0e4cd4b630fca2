"""Live log folders a runner imports as they grow, one thread per folder
(``Runner.follow_folder``): ``task-affinity-lab watch DIR``'s import
(:class:`mtl_core.live.importer.LiveImport`) run inside the app's process, so a folder typed on
the Upload page becomes a store run that Explore follows live.

A followed run takes no worker slot (it trains nothing). It ends ``finished`` (or the log's own
final status) when the log is closed, ``failed`` with the reader's one-line message when the
log turns malformed, and ``interrupted`` when the runner shuts down; following the folder again
continues the same run after its last step.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from mtl_core.errors import LabError
from mtl_core.live.importer import LiveImport, live_folder
from mtl_core.runner.procs import pid_alive

log = logging.getLogger("task_affinity_lab.runner")

#: Seconds between two polls of a followed folder (Explore redraws a running run every 2 s).
FOLLOW_POLL_S = 1.0


class FolderFollows:
    """The folders one runner follows: ``{resolved folder: (LiveImport, thread)}``."""

    def __init__(self, store: Any, poll_s: float = FOLLOW_POLL_S) -> None:
        self.store, self.poll_s = store, float(poll_s)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._active: dict[Path, tuple[LiveImport, threading.Thread]] = {}

    def follow(self, folder: str | Path, *, owner: str | None = None, limits: Any = None) -> int:
        """Start importing ``folder`` (a live log folder) into its store run, created now if
        there is none, and return the run's id; a folder already followed returns its run.
        The first poll runs here, so a malformed log or a full quota is a LabError now."""
        path = live_folder(folder)
        with self._lock:
            if self._stop.is_set():
                raise LabError("the runner is shutting down; follow the folder again after restart")
            known = self._active.get(path)
            if known is not None and known[1].is_alive():
                return int(known[0].run_id)
            imp = LiveImport(
                self.store, path, owner=owner, limits=limits, create_now=True, alive=pid_alive
            )
            imp.resume()
            imp.poll()
            t = threading.Thread(
                target=self._loop, args=(imp,), name=f"mtl-lab-follow-{imp.run_id}", daemon=True
            )
            self._active[path] = (imp, t)
            t.start()
            return int(imp.run_id)

    def run_ids(self) -> list[int]:
        """Ids of the runs whose folders are being followed now."""
        with self._lock:
            return [int(i.run_id) for i, t in self._active.values() if t.is_alive()]

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every follow; their runs are left ``interrupted`` (steps kept)."""
        self._stop.set()
        with self._lock:
            active = list(self._active.values())
        for _, t in active:
            t.join(timeout)

    def resume(self) -> None:
        """Accept new follows again after :meth:`stop` (the runner was started again)."""
        self._stop.clear()

    def _loop(self, imp: LiveImport) -> None:
        try:
            while not imp.closed:
                if self._stop.wait(self.poll_s):
                    imp.interrupt()
                    return
                imp.poll()
        except LabError as exc:  # a malformed log: the run says why, in one line
            self.store.set_status(imp.run_id, "failed", error=str(exc), only_from=("running",))
        except Exception as exc:  # keep the app up; the run says what happened
            log.exception("following %s failed", imp.folder)
            self.store.set_status(
                imp.run_id,
                "failed",
                error=f"following the folder failed: {type(exc).__name__}",
                error_detail=str(exc),
                only_from=("running",),
            )
