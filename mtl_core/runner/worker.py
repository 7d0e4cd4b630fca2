"""The worker side of the runner: the process mains that train one run each. Torch-free here.

A worker (started with ``spawn``) imports the training function by name, trains one run and
writes every step into the store; its outcome (finished, failed, cancelled, interrupted) is
recorded by itself whenever it can, and by the supervisor when it dies without a word. A
standby is a worker started ahead of time that waits on a pipe for its run.
"""

from __future__ import annotations

import importlib
import math
import os
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from mtl_core.config import RunConfig
from mtl_core.errors import DivergedError, LabError
from mtl_core.runner.procs import STORE_FAULT_EXITS, ParentGone, prepare_process, watch_parent
from mtl_core.scenarios import table_files
from mtl_core.store import Store
from mtl_core.store.faults import StoreFault, trust

TrainRef = str  # "module:function"
DEFAULT_TRAIN = "mtl_core.train.loop:train"
#: The run note naming a table run's features and left-out columns (``TablePlan.info``).
TABLE_NOTE = "table"


class Cancelled(BaseException):
    """Raised from ``on_step`` to stop training; a BaseException so that a training loop's
    ``except Exception`` cannot swallow it."""


class _Terminated(BaseException):
    """SIGTERM in a worker: a cancel that took too long, or the lab shutting down."""


class Rate:
    """Steps per second over the last ~50 steps (startup time does not count)."""

    def __init__(self) -> None:
        self.points: deque[tuple[float, int]] = deque(maxlen=50)

    def update(self, step: int) -> float | None:
        self.points.append((time.perf_counter(), step))
        if len(self.points) < 2:
            return None
        (t0, s0), (t1, s1) = self.points[0], self.points[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else None


def standby_main(conn: Any, preload: tuple[str, ...], n_workers: int, nice: int) -> None:
    """A started worker waiting for its run: imports ``preload`` now, then trains the run it
    is handed (or exits on None, or when the runner's process is gone)."""
    # Ctrl+C in a terminal reaches the whole process group: the runner decides when its
    # standbys and workers stop (and records their runs' outcome), not the keyboard.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        watch_parent()
        prepare_process(n_workers, nice)
        for name in preload:
            try:
                resolve(name)() if ":" in name else importlib.import_module(name)
            except Exception as exc:  # the run itself will report a real import problem
                sys.stderr.write(f"mtl_core.runner: standby could not preload {name}: {exc!r}\n")
        job = conn.recv()
    except (EOFError, OSError, KeyboardInterrupt, ParentGone):
        return
    conn.close()
    if job is not None:
        worker_main(*job)


def worker_main(
    store_path: str, run_id: int, train_ref: str, n_workers: int, nice: int = 0
) -> None:
    """Entry point of a worker process: train one run, writing each step to the store.

    The outcome is recorded in the store: ``finished``; ``failed`` with the message (a
    LabError's as-is, e.g. a diverged loss or a full disk, else ``Type: message``) and the
    traceback; ``cancelled`` when the cancel flag is seen between steps or SIGTERM follows a
    cancel; ``interrupted`` on any other SIGTERM, or when the process that started this
    worker is gone (:func:`~mtl_core.runner.procs.watch_parent`). When the outcome cannot be
    written (the store's disk is full, ...), the process exits with a code from
    :data:`~mtl_core.runner.procs.STORE_FAULT_EXITS` for the supervisor to record.
    """
    try:
        watch_parent()  # a killed CLI or app must not leave this worker training on
    except ParentGone:
        return  # gone before we started: the next runner marks the run interrupted
    prepare_process(n_workers, nice)
    # an uploaded table (the csv scenario's ``table`` knob) lives beside this store
    os.environ[table_files.TABLES_ENV] = str(table_files.tables_dir(store_path))
    # SIGTERM (a cancel past its grace period, or shutdown) -> record the outcome, then exit
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        store = Store(store_path)
        trust(store.path)  # the runner checked the file's integrity before claiming the run
        status, error, detail = _outcome(store, run_id, train_ref)
        store.set_status(run_id, status, only_from=("running",), error=error, error_detail=detail)
    except StoreFault as exc:  # the outcome cannot be written: say why by the exit code
        sys.exit(STORE_FAULT_EXITS[exc.kind])
    finally:
        # the outcome is recorded; a late SIGTERM (shutdown) should just end the process
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(getattr(signal, "SIGUSR1", signal.SIGTERM), signal.SIG_IGN)


Outcome = tuple[str, str | None, str | None]  # status, error, error_detail


def _outcome(store: Store, run_id: int, train_ref: str) -> Outcome:
    """Train the run; how it ended as ``(status, error, error_detail)``."""
    try:
        _train_run(store, run_id, train_ref)
        return "finished", None, None
    except Cancelled:
        return "cancelled", "cancelled by the user", None
    except ParentGone:
        return (
            "interrupted",
            "the lab process that started this run is gone (killed or crashed), so its "
            "worker stopped; steps logged so far are kept",
            None,
        )
    except _Terminated:
        if store.get_run(run_id).cancel_requested:
            return "cancelled", "cancelled by the user (stopped after the grace period)", None
        return "interrupted", "the worker was stopped (SIGTERM); steps logged so far are kept", None
    except LabError as exc:  # DivergedError and StoreFault included: the message says it
        return "failed", str(exc), traceback.format_exc()
    except Exception as exc:
        return "failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()


def _train_run(store: Store, run_id: int, ref: TrainRef) -> None:
    """Train the run, appending each step; raises to say how it stopped early."""
    store.set_worker(run_id, os.getpid())
    info = store.get_run(run_id)
    if store.cancel_requested(run_id):
        raise Cancelled
    train = resolve(ref)
    cfg = RunConfig.from_dict(info.config)
    rate = Rate()

    def on_step(event: Any) -> None:
        check_finite(event)
        if event.step == 1 and getattr(event, "task_types", None):
            # task types known from the first step, so live views can show them
            store.set_tasks(run_id, list(event.tasks), dict(zip(event.tasks, event.task_types)))
        store.append_step(run_id, event, steps_per_s=rate.update(int(event.step)))
        if store.cancel_requested(run_id):
            raise Cancelled

    result = train(cfg, on_step)
    info = getattr(result, "info", None)
    if isinstance(info, dict) and "features" in info:  # a table: which columns it used
        store.save_note(
            run_id, TABLE_NOTE, {k: info.get(k) for k in ("features", "left_out", "rows")}
        )
    tasks, types = getattr(result, "tasks", None), getattr(result, "task_types", None)
    if tasks and types:
        tmap = dict(types) if isinstance(types, dict) else dict(zip(tasks, types))
        store.set_tasks(run_id, list(tasks), {str(k): str(v) for k, v in tmap.items()})


def check_finite(event: Any) -> None:
    """Raise DivergedError (the step and the task) when a training loss is NaN or infinite."""
    bad = [t for t, v in event.train_loss.items() if not math.isfinite(v)]
    if bad:
        what = "NaN" if math.isnan(event.train_loss[bad[0]]) else "infinite"
        raise DivergedError(
            f"loss became {what} at step {event.step} on task {bad[0]}; try a smaller learning rate"
        )


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated


def train_ref(fn: Callable[..., Any] | str | None) -> TrainRef:
    """Normalize a training function to an importable ``"module:qualname"`` reference.

    None = the lab's own training. Raises LabError for a string without ``:`` or a function
    a spawned worker cannot import by name (a lambda, a nested function).
    """
    if fn is None:
        return DEFAULT_TRAIN
    if isinstance(fn, str):
        if ":" not in fn:
            raise LabError(f"train_fn {fn!r} must look like 'package.module:function'")
        return fn
    mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not mod or "<locals>" in qual or "<lambda>" in qual:
        raise LabError("train_fn must be a module-level function (workers import it by name)")
    return f"{mod}:{qual}"


def resolve(ref: TrainRef) -> Callable[..., Any]:
    """Import ``"module:qualname"`` and return the object it names."""
    mod_name, _, qual = ref.partition(":")
    obj: Any = importlib.import_module(mod_name)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


__all__ = [
    "DEFAULT_TRAIN",
    "Cancelled",
    "Rate",
    "TrainRef",
    "check_finite",
    "resolve",
    "standby_main",
    "train_ref",
    "worker_main",
]
