"""Where the evaluation's training runs execute: in-process, local processes, or any
``concurrent.futures.Executor`` (a ``ProcessPoolExecutor``, a cluster's executor, ...).

Two kinds of executor are accepted wherever the evaluation takes one (:func:`map_jobs`):

- a :class:`JobExecutor` (ours, or a distributed engine's adapter): ``map(fn, jobs, on_done)``;
- any :class:`concurrent.futures.Executor`: jobs are submitted and collected as they finish.

Either way results come back in job order and ``on_done(i, result)`` is called in the calling
thread as each job ends (progress). ``fn`` and the jobs must be picklable for process pools
(a module-level function and plain data). With ``keep_going=True`` a job that fails does not
stop the others: its place holds a :class:`JobFailure` with the reason. A Ray cluster is
:class:`mtl_core.experiments.ray_executor.RayExecutor` (a ``concurrent.futures.Executor``).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mtl_core.errors import LabError
from mtl_core.experiments.spec import default_workers
from mtl_core.runner.procs import exit_with_parent

J = TypeVar("J")
R = TypeVar("R")
OnDone = Callable[[int, Any], None]


class JobExecutor(Protocol):
    """Runs independent jobs; all a distributed engine has to provide (besides, alternatively,
    being a ``concurrent.futures.Executor``)."""

    def map(
        self,
        fn: Callable[[J], R],
        jobs: Sequence[J],
        on_done: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        """``[fn(job) for job in jobs]`` in job order; ``on_done(i, result)`` as each ends."""
        ...


#: What :func:`map_jobs` (and so the evaluation) accepts.
Executor = JobExecutor | cf.Executor


@dataclass(frozen=True)
class JobFailure:
    """A job that failed, in its place among the results (``map_jobs(..., keep_going=True)``).

    ``label``: the job's ``label`` (else its repr); ``reason``: one line (a LabError's message
    as is, else ``Type: message``); ``detail``: the traceback, when there was one.
    """

    label: str
    reason: str
    detail: str = ""


def describe_error(exc: BaseException) -> str:
    """One line saying why a job failed: a LabError's message, else ``Type: first line``."""
    text = str(exc).strip()
    if isinstance(exc, LabError) and text:
        return text.splitlines()[0]
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _label(job: Any) -> str:
    """A job's ``label``, else its repr (shortened)."""
    label = getattr(job, "label", None)
    return str(label) if label else repr(job)[:80]


class Guarded:
    """``fn`` made total: an exception inside a job becomes a :class:`JobFailure` (picklable
    when ``fn`` is, so it ships to any worker)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, job: Any) -> Any:
        try:
            return self.fn(job)
        except Exception as exc:
            return JobFailure(_label(job), describe_error(exc), traceback.format_exc())


def map_jobs(
    executor: Executor,
    fn: Callable[[J], R],
    jobs: Sequence[J],
    on_done: Callable[[int, R], None] | None = None,
    *,
    keep_going: bool = False,
) -> list[R]:
    """Run ``fn`` on every job with ``executor``; results in job order.

    Without ``keep_going`` a job's exception is re-raised here (a LabError as-is) and jobs
    not started yet are cancelled. With ``keep_going`` every job runs: a failed one (its
    exception, or its worker process dying) is returned as a :class:`JobFailure` and passed
    to ``on_done`` like a result. Raises TypeError for an object that is neither kind of
    executor.
    """
    call = Guarded(fn) if keep_going else fn
    if isinstance(executor, cf.Executor):
        return _map_futures(executor, call, jobs, on_done, keep_going)
    if callable(getattr(executor, "map", None)):
        return list(executor.map(call, jobs, on_done=on_done))
    raise TypeError(
        f"{type(executor).__name__} is not an executor: it needs map(fn, jobs, "
        "on_done) or to be a concurrent.futures.Executor"
    )


def _map_futures(
    ex: cf.Executor,
    fn: Callable[[J], R],
    jobs: Sequence[J],
    on_done: Callable[[int, R], None] | None,
    keep_going: bool = False,
) -> list[R]:
    futures = {ex.submit(fn, job): i for i, job in enumerate(jobs)}
    out: list[Any] = [None] * len(jobs)
    try:
        for fut in cf.as_completed(futures):
            i = futures[fut]
            exc = fut.exception() if keep_going else None
            if exc is not None:  # the worker died (a crashed process, a lost Ray worker)
                out[i] = JobFailure(_label(jobs[i]), describe_error(exc))
            else:
                out[i] = fut.result()  # re-raises the job's exception
            if on_done is not None:
                on_done(i, out[i])
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    return out


class SerialExecutor:
    """In-process, one job after another (tests, debugging)."""

    def map(
        self,
        fn: Callable[[J], R],
        jobs: Sequence[J],
        on_done: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        """``[fn(job) for job in jobs]``, calling ``on_done(i, result)`` after each."""
        out = []
        for i, job in enumerate(jobs):
            out.append(fn(job))
            if on_done is not None:
                on_done(i, out[-1])
        return out


class LocalProcessExecutor:
    """Local worker processes: a ``ProcessPoolExecutor`` with the ``spawn`` start method
    (safe with torch and threads), ``workers`` processes (default min(4, CPUs)).

    A worker ends by itself within a second of this process's death (SIGKILL included;
    :func:`~mtl_core.runner.procs.exit_with_parent`). Use as a context manager so the
    workers start once for all phases; ``map`` outside a
    ``with`` starts and stops a pool for that call.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or default_workers())
        self._pool: cf.ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalProcessExecutor:
        ctx = multiprocessing.get_context("spawn")
        self._pool = cf.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=ctx, initializer=exit_with_parent
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(
        self,
        fn: Callable[[J], R],
        jobs: Sequence[J],
        on_done: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        """Run the jobs in the pool; see :func:`map_jobs`."""
        if self._pool is None:
            with self:
                return self.map(fn, jobs, on_done)
        return _map_futures(self._pool, fn, jobs, on_done)


__all__ = [
    "Executor",
    "Guarded",
    "JobExecutor",
    "JobFailure",
    "LocalProcessExecutor",
    "SerialExecutor",
    "describe_error",
    "map_jobs",
]
