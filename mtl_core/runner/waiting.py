"""Blocking on one run until it ends (:meth:`mtl_core.runner.supervisor.Runner.wait`): the
command line's progress bar and every caller that trains in the foreground."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mtl_core.errors import LabError
from mtl_core.store import TERMINAL, RunInfo


def wait_run(
    runner: Any,
    run_id: int,
    on_progress: Callable[[RunInfo], None] | None = None,
    *,
    timeout: float | None = None,
    poll_s: float = 0.1,
    cancel_on_interrupt: bool = True,
) -> RunInfo:
    """Block until run ``run_id`` of ``runner`` (a ``Runner``; typed loosely, as the supervisor
    imports this module) ends and return its final record; with no
    supervisor thread, drive the runner's passes from here. Arguments and errors as
    :meth:`Runner.wait <mtl_core.runner.supervisor.Runner.wait>` (LabError past ``timeout``
    seconds or when a store fault keeps the run from starting; KeyboardInterrupt re-raised
    after cancelling the run)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last: tuple[Any, ...] | None = None
    try:
        while True:
            if not runner.has_supervisor():
                runner.tick()  # no supervisor thread: drive the work from here
            info = runner.status(run_id)
            if info.status == "queued" and runner.store_fault is not None:
                raise runner.store_fault  # e.g. a full disk: the run cannot start
            key = (info.status, info.steps_done)
            if on_progress is not None and key != last:
                on_progress(info)
            last = key
            if info.status in TERMINAL:
                return info
            if deadline is not None and time.monotonic() > deadline:
                raise LabError(f"run {run_id} is still {info.status} after {timeout:.0f} s")
            time.sleep(poll_s)
    except KeyboardInterrupt:
        if cancel_on_interrupt:
            runner.cancel(run_id)
            end = time.monotonic() + runner.cancel_grace_s + 5
            while time.monotonic() < end:
                if runner.status(run_id).status in TERMINAL:
                    break
                if not runner.has_supervisor():
                    runner.tick()
                time.sleep(0.05)
        raise
