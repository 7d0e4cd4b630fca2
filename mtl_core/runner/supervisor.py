"""The runner's supervisor: queue training runs and execute them in worker processes.

The app never trains inside a Streamlit script run. It submits a config here; a worker process
(started with the ``spawn`` method, safe with CUDA) calls ``mtl_core.train.loop.train`` and writes
every step into the run store, which is the only thing the UI reads.

::

    runner = Runner(store_path)          # one per process; the app caches it (st.cache_resource)
    run_id = runner.submit(cfg)          # queued -> running -> finished / failed / cancelled
    runner.status(run_id)                # RunInfo: status, steps done/total, steps/s, ETA, losses
    runner.cancel(run_id)                # the worker stops after its current step
    runner.list()                        # every run in the store
    info = runner.wait(run_id, on_progress=print)   # block until it ends (CLI progress bar)

State lives in the store, not in this object: status, progress, the cancel flag, the worker's
pid. A supervisor thread launches queued runs (the concurrency limit counts ``running`` runs in
the whole store, claimed atomically, so several runners on one store share it), reaps workers
that died and recovers runs left ``running`` by a process that is gone. Any process can
therefore pick up where another left off: a fresh Runner marks runs whose worker died as
``interrupted`` and starts runs left ``queued``.

Outcomes: a loss that becomes NaN/inf -> ``failed`` with the reason; an exception in the worker
-> ``failed`` with its message; a worker that dies (e.g. SIGKILL) -> ``interrupted`` when the
runner notices; ``cancel`` -> ``cancelled``. Steps logged before stay in the store in every case.
A store that cannot be written (a full disk, a read-only or damaged file) -> ``failed`` with that
reason; when not even the outcome can be written, this runner keeps it
(:mod:`mtl_core.runner.store_faults`: ``status``/``wait`` report it, the store gets it once it
can) and its supervisor backs off instead of retrying every pass. A worker whose runner's
process is killed stops by itself (``interrupted``; :func:`~mtl_core.runner.procs.watch_parent`).

Every pass also advances lessons (:mod:`mtl_core.lesson.passes`): when a lesson's together run
has ended, the supervisor queues its grouped run, once, in the store transaction that claims it,
so the lesson finishes whether or not anyone keeps its page open.

On a Ray cluster (``ray_address``, or ``$MTL_LAB_RAY_ADDRESS``) the runs train in Ray tasks
instead of local processes and stream their steps back to this runner, which writes them
(:mod:`mtl_core.runner.ray_backend`); everything above holds the same.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import multiprocessing.util  # noqa: F401  (registers its exit hook before ours; see the end)
import os
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from mtl_core.accounts.access import Actor, check_modify
from mtl_core.accounts.quota import Limits, check_config
from mtl_core.config import RunConfig
from mtl_core.errors import LabError
from mtl_core.lesson.passes import LessonAdvancer, LessonsAhead, ahead_positions
from mtl_core.runner.follows import FolderFollows
from mtl_core.runner.procs import (
    default_max_workers,
    describe_exit,
    pid_alive,
    stop_process,
    store_fault_words,
)
from mtl_core.runner.ray_backend import backend_for
from mtl_core.runner.standby import StandbyPool
from mtl_core.runner.store_faults import Backoff, PendingOutcomes
from mtl_core.runner.waiting import wait_run
from mtl_core.runner.worker import train_ref, worker_main
from mtl_core.scenarios import table_files
from mtl_core.store import RunInfo, Store


class Runner:
    """Queue, run, watch and cancel training runs in background worker processes.

    Parameters
    ----------
    store : a :class:`Store`, a path, or None for the default store.
    max_workers : runs allowed to run at once in this store (default :func:`default_max_workers`).
    train_fn : the training function, ``train(cfg, on_step) -> result``, as a module-level
        function or a ``"module:function"`` string (default ``mtl_core.train.loop:train``,
        imported only inside the worker so this module stays torch-free).
    poll_s : how often the supervisor thread looks at the store.
    cancel_grace_s : how long a cancelled worker may take to stop by itself before it is
        terminated.
    warm : standby worker processes kept started, with ``preload`` already imported, so a run
        starts training at once instead of after Python and torch start (~3 s of CPU each).
        Each standby trains exactly one run and exits, like a fresh worker; a new one is
        started in its place. The app keeps one per worker slot; tests and the CLI none.
    preload : what a standby does while it waits: import a module (``"mtl_core.train.loop"``)
        or call a function (``"mtl_core.train.loop:warmup"``).
    nice : CPU priority added to every worker (``os.nice``), so a UI in this process stays
        responsive while runs train on the same cores.
    start : start the supervisor thread now (else call :meth:`start`, or drive :meth:`tick`).
    limits : what one submitted run may ask for and each owner's queue quota
        (:class:`~mtl_core.accounts.quota.Limits`; default none: the command line's own machine).
    ray_address : train on the Ray cluster at this address (``HOST:PORT`` or ``auto``)
        instead of in local processes; None = ``$MTL_LAB_RAY_ADDRESS`` when set, "" = local.
        On Ray, ``max_workers`` defaults to the cluster's CPUs and ``warm`` is not used.
        LabError when Ray is missing or the cluster cannot be reached.
    evaluations : queued ground-truth evaluations to start in this runner's worker slots
        (``mtl_core.experiments.background.EvaluationQueue``; the app passes one): an object
        whose ``tick(store, max_workers, runner_pid)`` each supervisor pass calls before it
        launches queued runs. None: runs only.
    report_store_faults : write a fault of the store file that stops the supervisor's passes
        (a damaged file, ...) to stderr, once per kind; False for a caller that reports the
        outcome itself (``train`` on the command line: its one ``error:`` line).

    Thread-safe: one Runner may serve many Streamlit sessions.
    """

    def __init__(
        self,
        store: Store | str | os.PathLike[str] | None = None,
        *,
        max_workers: int | None = None,
        train_fn: Callable[..., Any] | str | None = None,
        poll_s: float = 0.2,
        cancel_grace_s: float = 10.0,
        warm: int = 0,
        preload: tuple[str, ...] = (),
        nice: int = 0,
        start: bool = True,
        limits: Limits | None = None,
        ray_address: str | None = None,
        evaluations: Any = None,
        lessons_ahead: tuple[float, ...] | None = None,
        report_store_faults: bool = True,
    ) -> None:
        if getattr(mp.current_process(), "_inheriting", False):
            # a spawned worker is re-importing a main script that builds a Runner at import
            raise LabError(
                "a Runner was created while a worker process was starting: create it under "
                "`if __name__ == '__main__':` in scripts (workers re-import the main module)"
            )
        self.store = store if isinstance(store, Store) else Store(store)
        self.train_ref = train_ref(train_fn)
        self.poll_s = float(poll_s)
        self.cancel_grace_s = float(cancel_grace_s)
        self._pending = PendingOutcomes(self.store)  # outcomes the store could not take yet
        self._backoff = Backoff(self.poll_s, report_faults=report_store_faults)
        self._ray = backend_for(
            ray_address,
            self.store,
            self.train_ref,
            cancel_grace_s=self.cancel_grace_s,
            record=self._pending.record,
        )
        if max_workers:
            self.max_workers = int(max_workers)
        else:
            self.max_workers = self._ray.slots() if self._ray else default_max_workers()
        self.warm = max(0, int(warm))
        self.preload = tuple(preload)
        self.nice = max(0, int(nice))
        self.limits = limits or Limits.none()
        self._ctx = mp.get_context("spawn")
        self._procs: dict[int, Any] = {}  # run id -> multiprocessing Process (our workers)
        self._standby = StandbyPool(self._ctx, self.preload, self.max_workers, self.nice)
        self._cancel_seen: dict[int, float] = {}  # run id -> when we first saw its cancel flag
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_recover = 0.0
        self._lessons = LessonAdvancer()
        # conflict levels to train ahead when idle (None: $MTL_LAB_LESSON_AHEAD; default off)
        self._ahead = LessonsAhead(
            ahead_positions() if lessons_ahead is None else tuple(lessons_ahead)
        )
        self._evaluations = evaluations
        self._follows = FolderFollows(self.store)
        _RUNNERS.add(self)
        self.recover()
        if start:
            self.start()

    # ------------------------------------------------------------------ public API

    def submit(
        self,
        config: RunConfig | dict[str, Any],
        *,
        name: str | None = None,
        owner: str | None = None,
        limits: Limits | None = None,
        claim: tuple[int, str] | None = None,
        run_notes: dict[str, dict[str, Any]] | None = None,
        unique: tuple[str, str, bool] | None = None,
    ) -> int | None:
        """Queue a training run owned by ``owner`` (``mtl_core.accounts.access``); returns its id.

        The config is validated now, against ``limits`` (default: the runner's) too, and the
        owner's queued and running runs against the quota, atomically with the insert
        (LabError). ``claim``, ``run_notes`` and ``unique``: see :meth:`Store.create_run` (a
        follow-up run queued at most once, a run of a kind; None when another caller's run
        stands for it).
        """
        cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(dict(config))
        limits = limits or self.limits
        check_config(cfg, limits)
        table_files.check_owner(cfg.knobs, owner, table_files.tables_dir(self.store.path))
        d = cfg.to_dict()
        run_id = self.store.create_run(
            name=name if name is not None else (cfg.name or f"{cfg.scenario} {cfg.train.mode}"),
            origin="trained",
            status="queued",
            config=d,
            steps_total=int(cfg.train.steps),
            owner=owner,
            limits=limits,
            claim=claim,
            run_notes=run_notes,
            unique=unique,
        )
        if run_id is not None:
            self._wake.set()
        return run_id

    def wake(self) -> None:
        """Make the supervisor look at the queue now (e.g. after queueing an evaluation)."""
        self._wake.set()

    def status(self, run_id: int) -> RunInfo:
        """The run's record (status, progress, error, ...) from the store (with the outcome
        this runner could not write there yet, e.g. on a full disk)."""
        return self._pending.overlay(self.store.get_run(run_id))

    def list(self) -> list[RunInfo]:
        """Every run in the store, oldest first."""
        return self.store.list_runs()

    def cancel(self, run_id: int, *, actor: Actor | None = None) -> RunInfo:
        """Cancel a queued run now, or ask a running one to stop after its current step.

        A worker that does not stop within ``cancel_grace_s`` is terminated by the runner
        that started it. Cancelling a finished run changes nothing. LabError unless
        ``actor`` may change the run (``mtl_core.accounts.access``; None: the command line).
        """
        self.store.request_cancel(run_id, actor=actor)
        self._wake.set()
        return self.store.get_run(run_id)

    def follow_folder(
        self, folder: str | os.PathLike[str], *, owner: str | None = None, limits: Any = None
    ) -> int:
        """Import the live log folder ``folder`` into a store run as it grows, in a thread of
        this runner (:mod:`mtl_core.runner.follows`); returns the run's id at once (created
        now if the folder has none). Trusts ``folder``: check a user's path first
        (``mtl_core.live.importer.allowed_folder``). LabError for a folder that is no live log,
        a malformed log, or ``owner``'s quota under ``limits`` full."""
        return self._follows.follow(folder, owner=owner, limits=limits)

    def followed_runs(self) -> list[int]:
        """Ids of the runs whose log folders this runner is importing now."""
        return self._follows.run_ids()

    @property
    def store_fault(self) -> LabError | None:
        """The store fault that stops this runner's passes now (a full disk, ...), or None."""
        return self._backoff.fault

    @property
    def on_ray(self) -> bool:
        """Whether runs train on a Ray cluster (else in local worker processes)."""
        return self._ray is not None

    def worker_location(self, run_id: int) -> tuple[str, int] | None:
        """``(host, pid)`` of the process training ``run_id`` (a Ray worker or a local
        process) while this runner runs it; None otherwise."""
        with self._lock:
            if self._ray is not None:
                return self._ray.where(run_id)
            proc = self._procs.get(run_id)
            return (socket.gethostname(), proc.pid) if proc is not None else None

    def standby_pids(self) -> list[int]:
        """Process ids of the standby workers waiting for a run (see ``warm``)."""
        with self._lock:
            return self._standby.pids()

    def delete(self, run_id: int, *, actor: Actor | None = None) -> None:
        """Delete a run; a running one is cancelled first (waiting up to the grace period).
        LabError unless ``actor`` may change the run (``mtl_core.accounts.access``)."""
        info = self.store.get_run(run_id)
        check_modify(run_id, info.owner, actor, "delete")
        if info.status == "running":
            self.cancel(run_id, actor=actor)
            self.wait(run_id, timeout=self.cancel_grace_s * 2 + 5, cancel_on_interrupt=False)
        self.store.delete_run(run_id, actor=actor)

    def wait(
        self, run_id: int, on_progress: Callable[[RunInfo], None] | None = None, **kw: Any
    ) -> RunInfo:
        """Block until the run ends and return its final record
        (:func:`mtl_core.runner.waiting.wait_run`: keywords ``timeout`` s, ``poll_s``,
        ``cancel_on_interrupt``). ``on_progress(info)`` is called whenever the status or the
        steps done change (a progress bar). On Ctrl-C the run is cancelled (unless
        ``cancel_on_interrupt=False``) and KeyboardInterrupt is re-raised; LabError past
        ``timeout``."""
        return wait_run(self, run_id, on_progress, **kw)

    def start(self) -> None:
        """Start the supervisor thread (idempotent)."""
        with self._lock:
            if self.has_supervisor():
                return
            self._stop.clear()
            self._follows.resume()
            self._thread = threading.Thread(
                target=self._supervise, name="mtl-lab-runner", daemon=True
            )
            self._thread.start()

    def shutdown(self, *, interrupt_running: bool = True, timeout: float = 5.0) -> None:
        """Stop the supervisor; with ``interrupt_running`` also stop this runner's workers
        (their runs end ``interrupted``). Runs still queued stay queued for the next runner."""
        self._stop.set()
        self._wake.set()
        self._follows.stop(timeout)  # followed folders' runs end interrupted
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        with self._lock:
            self._standby.stop(timeout)
        if not interrupt_running:
            return
        with self._lock:
            if self._ray is not None:
                self._ray.shutdown()
            for rid, proc in list(self._procs.items()):
                if proc.is_alive() and self.store.get_run(rid).status != "running":
                    proc.join(timeout)  # it has recorded its outcome and is exiting
                stop_process(proc, timeout)
                self._safe(
                    lambda rid=rid: self._pending.record(
                        rid,
                        "interrupted",
                        "the lab process that ran this worker exited; steps logged so far are kept",
                    )
                )
                self._procs.pop(rid, None)

    def tick(self) -> None:
        """One supervisor pass: reap dead workers, enforce cancels, recover, queue the grouped
        run of every lesson whose together run has ended
        (:class:`mtl_core.lesson.passes.LessonAdvancer`), when idle queue a lesson ahead
        (:class:`~mtl_core.lesson.passes.LessonsAhead`, off by default), launch queued."""
        with self._lock:
            self._reap()
            if self._ray is not None:
                self._ray.pump()  # steps streamed from the cluster, outcomes, cancels
            self._enforce_cancels()
            if time.monotonic() - self._last_recover > 2.0:
                self.recover()
            self._safe(lambda: self._lessons.pass_(self, self.store))  # lessons: the grouped run
            self._safe(lambda: self._ahead.pass_(self, self.store))  # idle: lessons ahead
            if self._evaluations is not None:  # before runs: the fair order decides (store)
                self._safe(
                    lambda: self._evaluations.tick(self.store, self.max_workers, os.getpid())
                )
            self._launch()
            if self._ray is None:
                self._standby.keep(0 if self._stop.is_set() else self.warm)

    def recover(self) -> list[int]:
        """Mark ``running`` runs on this machine whose worker (or claiming runner) is gone as
        ``interrupted``; returns their ids. Runs of other machines are left alone."""
        self._last_recover = time.monotonic()
        self._pending.retry()
        host = socket.gethostname()
        out = []
        with self._lock:
            for rid in self.store.run_ids("running"):
                if rid in self._procs or rid in self._pending:
                    continue
                info = self.store.get_run(rid)
                if info.host != host:
                    continue  # another machine's run, or one no runner started (host unset)
                pid = info.worker_pid or info.runner_pid
                if pid and pid_alive(pid):
                    continue
                step = info.last_step if info.last_step is not None else 0
                if self._pending.record(
                    rid,
                    "interrupted",
                    f"the worker process is gone (found at restart) after step {step}; "
                    f"the {info.steps_done} steps logged are kept",
                ):
                    out.append(rid)
        return out

    # ------------------------------------------------------------------ supervisor internals

    def has_supervisor(self) -> bool:
        """Whether this runner's supervisor thread is running its passes."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                delay = self._backoff.ok()
            except Exception as exc:  # keep supervising: one bad pass must not stop the queue
                delay = self._backoff.failed(exc)  # said once; passes spaced out (no spinning)
            self._wake.wait(delay)
            self._wake.clear()

    def _launch(self) -> None:
        while not self._stop.is_set():
            rid = self.store.claim_queued(self.max_workers, runner_pid=os.getpid())
            if rid is None:
                return
            if self._ray is not None:
                self._ray.launch(rid)
                continue
            job = (str(self.store.path), rid, self.train_ref, self.max_workers, self.nice)
            proc = self._standby.take(job)
            if proc is None:
                proc = self._ctx.Process(target=worker_main, args=job, name=f"mtl-lab-run-{rid}")
                try:
                    proc.start()
                except Exception as exc:
                    self._pending.record(rid, "failed", f"could not start a worker: {exc}")
                    continue
            self._procs[rid] = proc
            self.store.set_worker(rid, proc.pid)

    def _reap(self) -> None:
        for rid, proc in list(self._procs.items()):
            if proc.is_alive():
                continue
            proc.join(0)
            code = proc.exitcode
            del self._procs[rid]
            cancelled = rid in self._cancel_seen
            self._cancel_seen.pop(rid, None)
            info = self.store.get_run(rid)
            if info.status != "running":
                continue  # the worker recorded its own outcome
            if cancelled or info.cancel_requested:
                self._pending.record(rid, "cancelled", "cancelled by the user")
                continue
            step = info.last_step if info.last_step is not None else 0
            # a worker that could not write its outcome (full disk, ...) failed; else it died
            status = "failed" if store_fault_words(code) else "interrupted"
            self._pending.record(
                rid,
                status,
                f"the worker process {describe_exit(code)} after step {step}; the "
                f"{info.steps_done} steps logged are kept",
            )

    def _enforce_cancels(self) -> None:
        if not self._procs:
            return
        now = time.monotonic()
        for rid, proc in self._procs.items():
            if rid not in self._cancel_seen:
                if self.store.cancel_requested(rid):
                    self._cancel_seen[rid] = now
                continue
            waited = now - self._cancel_seen[rid]
            if waited > 2 * self.cancel_grace_s + 2:
                proc.kill()
            elif waited > self.cancel_grace_s:
                proc.terminate()

    @staticmethod
    def _safe(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:
            sys.stderr.write(f"mtl_core.runner: {exc!r}\n")


# Stop our workers when the process exits normally, so their runs end `interrupted` instead of
# keeping the interpreter waiting on them. Registered after multiprocessing's own exit hook, so
# it runs first.
_RUNNERS: weakref.WeakSet[Runner] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    for r in list(_RUNNERS):
        r.shutdown(interrupt_running=True, timeout=2.0)
