"""The one wall-clock safety stop of TAG selection.

TAG selection (Fifty et al., NeurIPS 2021 §3.3, and the solvers in :mod:`mtl_core.grouping.tag`)
counts every budget in work: served sets valued, pricing rounds, branch-and-bound nodes, MILP
nodes. A result therefore depends on the matrix, the settings and the seed only, never on the
machine's speed or load. The single exception is this safety stop: a wall-clock limit that ends
the work early when it fires. Whoever catches :class:`SafetyStop` must report it
(``TAGGrouper.stopped_``, ``"stopped": true`` in ``group --json``), because only then can the
answer depend on the clock.
"""

from __future__ import annotations

import math
import time


class SafetyStop(Exception):
    """Raised by :meth:`Deadline.check` once the wall-clock safety limit has passed."""


class Deadline:
    """A wall-clock safety stop ``limit`` seconds from now (``None``: never fires).

    ``check()`` raises :class:`SafetyStop` once the limit has passed; ``remaining()`` gives the
    seconds left (``None`` when unlimited), for solvers such as HiGHS that take a time limit;
    ``part(fraction)`` is a new deadline that ends after that fraction of the time left.
    """

    def __init__(self, limit: float | None) -> None:
        self.end = math.inf if limit is None else time.perf_counter() + float(limit)

    @property
    def unlimited(self) -> bool:
        """True when the deadline never fires."""
        return not math.isfinite(self.end)

    def check(self) -> None:
        """Raise :class:`SafetyStop` if the limit has passed."""
        if time.perf_counter() > self.end:
            raise SafetyStop

    def remaining(self) -> float | None:
        """Seconds left (may be negative once passed); ``None`` when unlimited."""
        return None if self.unlimited else self.end - time.perf_counter()

    def part(self, fraction: float) -> Deadline:
        """A deadline ending after ``fraction`` (0..1] of the time left on this one."""
        sub = Deadline(None)
        if not self.unlimited:
            sub.end = time.perf_counter() + fraction * (self.end - time.perf_counter())
        return sub
