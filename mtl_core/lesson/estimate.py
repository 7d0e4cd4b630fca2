"""An honest wait for a queued lesson run, from what this server measured: the seconds per
step of recent finished lesson runs, the running runs' remaining time, the run's place in
the fair queue and the number of workers. Torch-free; the Learn page shows it instead of a
promise."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mtl_core.store import RunInfo

#: How many recent finished lesson runs the step rate is measured over.
RECENT = 12


@dataclass(frozen=True)
class Pace:
    """Measured speed of lesson runs here: ``s_per_step`` (median seconds per step, start to
    end, over ``runs`` finished lesson runs, start-up included)."""

    s_per_step: float
    runs: int


def measured_pace(runs: Iterable[RunInfo], scenario: str = "lesson") -> Pace | None:
    """:class:`Pace` of the last :data:`RECENT` finished ``scenario`` runs (by end time), or
    None when none has finished with a start and end time and a step count."""
    done = [
        r
        for r in runs
        if r.status == "finished"
        and r.started is not None
        and r.finished is not None
        and r.finished > r.started
        and (r.steps_total or r.steps_done)
        and (r.config or {}).get("scenario") == scenario
    ]
    done.sort(key=lambda r: r.finished or 0.0)
    recent = done[-RECENT:]
    if not recent:
        return None
    rates = [(r.finished - r.started) / float(r.steps_total or r.steps_done) for r in recent]  # type: ignore[operator]
    return Pace(float(np.median(rates)), len(recent))


def start_wait(ahead: int, busy_left_s: Iterable[float], workers: int, run_s: float) -> float:
    """Seconds until a queued run starts: ``workers`` workers, those now busy free after
    ``busy_left_s`` seconds (one entry per running run), then each of the ``ahead`` queued
    runs before it takes ``run_s`` on the first worker to free. 0 when a worker is free and
    nothing is ahead. LabError-free: negative inputs count as 0; ``workers`` at least 1."""
    workers = max(1, int(workers))
    busy = sorted(max(0.0, float(b)) for b in busy_left_s)[:workers]
    free = busy + [0.0] * (workers - len(busy))
    heapq.heapify(free)
    for _ in range(max(0, int(ahead))):
        heapq.heappush(free, heapq.heappop(free) + max(0.0, float(run_s)))
    return free[0]


def left_s(info: RunInfo, pace: Pace | None) -> float:
    """A running run's remaining seconds: its worker's ETA, else steps left at ``pace``."""
    if info.eta_s is not None and np.isfinite(info.eta_s):
        return max(0.0, float(info.eta_s))
    total = int(info.steps_total or 0)
    if pace is None or not total:
        return 0.0
    return max(0, total - int(info.steps_done or 0)) * pace.s_per_step
