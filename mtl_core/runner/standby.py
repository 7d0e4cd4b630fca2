"""Standby workers: processes started ahead of time, with the training code already
imported, each waiting on a pipe for the one run it will train (see ``Runner(warm=...)``).
Torch-free."""

from __future__ import annotations

import sys
from typing import Any

from mtl_core.runner.procs import stop_process
from mtl_core.runner.worker import standby_main


class StandbyPool:
    """The runner's standby workers (not thread-safe: the runner holds its lock).

    ``ctx`` is the ``multiprocessing`` context; ``preload``, ``n_workers`` and ``nice`` are
    passed to :func:`~mtl_core.runner.worker.standby_main`.
    """

    def __init__(self, ctx: Any, preload: tuple[str, ...], n_workers: int, nice: int) -> None:
        self.ctx = ctx
        self.args = (preload, n_workers, nice)
        self.waiting: list[tuple[Any, Any]] = []  # (process, pipe end) waiting for a run

    def pids(self) -> list[int]:
        """Process ids of the live standbys."""
        return [p.pid for p, _ in self.waiting if p.is_alive()]

    def take(self, job: tuple) -> Any | None:
        """Give a run to a waiting standby; None when there is none (or it just died)."""
        while self.waiting:
            proc, conn = self.waiting.pop(0)
            try:
                if proc.is_alive():
                    conn.send(job)
                    conn.close()
                    return proc
            except OSError:
                pass
            conn.close()
            proc.join(0.1)
        return None

    def keep(self, n: int) -> None:
        """Drop dead standbys and start new ones until ``n`` wait."""
        alive = []
        for proc, conn in self.waiting:
            if proc.is_alive():
                alive.append((proc, conn))
            else:
                conn.close()
                proc.join(0)
        self.waiting = alive
        while len(self.waiting) < n:
            ours, theirs = self.ctx.Pipe()
            proc = self.ctx.Process(
                target=standby_main,
                args=(theirs, *self.args),
                name="mtl-lab-standby",
                daemon=False,
            )
            try:
                proc.start()
            except Exception as exc:
                sys.stderr.write(f"mtl_core.runner: could not start a standby worker: {exc!r}\n")
                ours.close()
                return
            finally:
                theirs.close()
            self.waiting.append((proc, ours))

    def stop(self, timeout: float) -> None:
        """Tell every standby to exit; wait up to ``timeout`` s, then kill."""
        for _proc, conn in self.waiting:
            try:
                conn.send(None)
            except OSError:
                pass
            conn.close()
        for proc, _ in self.waiting:
            stop_process(proc, timeout, terminate=False)  # told to exit: wait, then kill
        self.waiting = []


__all__ = ["StandbyPool"]
