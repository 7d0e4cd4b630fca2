"""A ground-truth evaluation in the background: a separate process runs :func:`evaluate`
(the in-process API) and leaves its progress and report in a job folder that any process can
poll. Used by the app, whose script runs must never train. Torch-free here.

::

    job = start(spec, folder, workers=2)   # returns at once
    state = poll(job)                      # JobState: running (with a progress line), done
                                           # (with the report) or failed (with the reason)

The job folder holds ``spec.json`` (what to run), ``status.json`` (written atomically on
every progress line and at the end), ``report.json`` (the report, when done) and ``log.txt``
(the process's stderr, e.g. a traceback). The process runs in its own session, so it outlives
the app's script runs; it is owned by the process that started it and stops (with its
workers) within a second once that process is gone (:func:`_stop_with_parent`). With
``$MTL_LAB_RAY_ADDRESS`` set (the app's runs go to a Ray cluster), the evaluation's training
runs go there too (:class:`.ray_executor.RayExecutor`, one CPU per torch thread of a run).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl_core.accounts.quota import Limits, check_evaluation
from mtl_core.errors import LabError
from mtl_core.experiments.executors import LocalProcessExecutor, SerialExecutor
from mtl_core.experiments.ground_truth import evaluate
from mtl_core.experiments.report import write_report
from mtl_core.experiments.spec import EvalSpec, threads_per_worker
from mtl_core.jsonio import write_json
from mtl_core.runner.procs import pid_alive, prepare_process
from mtl_core.runner.ray_cluster import runner_ray_address

ROOT = Path(__file__).resolve().parents[2]  # the folder holding mtl_core (child's cwd)
SPEC_FILE, STATUS_FILE, REPORT_FILE, LOG_FILE = "spec.json", "status.json", "report.json", "log.txt"


@dataclass(frozen=True)
class BackgroundJob:
    """A started evaluation: its job folder, process id and start time (epoch seconds).
    Plain data (:meth:`to_dict`), so it can be kept in the run store and polled later."""

    folder: str
    pid: int
    started: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a JSON record (see :meth:`from_dict`)."""
        return {"folder": self.folder, "pid": self.pid, "started": self.started}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BackgroundJob:
        """Rebuild from :meth:`to_dict` output."""
        return cls(folder=str(d["folder"]), pid=int(d["pid"]), started=float(d["started"]))


@dataclass(frozen=True)
class JobState:
    """What :func:`poll` found: ``status`` is ``running``, ``done`` or ``failed``;
    ``message`` the latest progress line; ``report`` the report when done; ``error`` the
    reason when failed; ``finished`` when it ended (epoch seconds)."""

    status: str
    message: str = ""
    report: dict[str, Any] | None = None
    error: str | None = None
    finished: float | None = None


def spec_for_run(
    config: dict[str, Any],
    k: int,
    seeds: int,
    *,
    workers: int = 2,
    limits: Limits | None = None,
    exhaustive: bool = False,
) -> EvalSpec:
    """The evaluation of a trained run's scenario and knobs with budget ``k``: ``seeds``
    seeds of the run's step count, the scenario's model, ``workers`` processes' share of the
    CPUs per run; ``exhaustive`` also trains every candidate group (its report then reads as
    a ground-truth table, :mod:`mtl_core.groundtruth.report`). Raises LabError for a run
    without a scenario (an uploaded log), or one asking for more than ``limits`` allow
    (checked before the scenario is loaded: an uploaded ``meta.json`` may name any scenario,
    path and step count), or ``exhaustive`` on more tasks than it allows."""
    scenario = (config or {}).get("scenario")
    if not scenario:
        raise LabError(
            "The ground truth retrains the run's scenario, so it needs a run "
            "trained by the lab (uploaded logs have no scenario to retrain)."
        )
    if limits is not None:
        check_evaluation(config, seeds, limits)
    steps = int((config.get("train") or {}).get("steps", 300))
    return EvalSpec.for_scenario(
        str(scenario),
        dict(config.get("knobs") or {}),
        int(k),
        seeds=int(seeds),
        steps=steps,
        exhaustive=bool(exhaustive),
        threads=threads_per_worker(workers),
    )


def start(
    spec: EvalSpec, folder: str | os.PathLike[str], *, workers: int = 2, nice: int = 0
) -> BackgroundJob:
    """Start evaluating ``spec`` in a new process with ``workers`` local worker processes
    (0 = train in that process) at CPU priority ``nice`` (added, as the runner's workers
    get it); returns at once. ``folder`` is created and must be new or empty of a previous
    job. Raises LabError for a spec that cannot work, OSError if the process cannot start."""
    spec.check()
    path = Path(folder).resolve()
    path.mkdir(parents=True, exist_ok=True)
    job = {"spec": spec.to_dict(), "workers": int(workers), "nice": max(0, int(nice))}
    write_json(path / SPEC_FILE, job, indent=1)
    write_json(path / STATUS_FILE, {"status": "running", "message": "starting"})
    code = "import sys; from mtl_core.experiments.background import main; sys.exit(main())"
    with open(path / LOG_FILE, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(path), str(os.getpid())],
            cwd=str(ROOT),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return BackgroundJob(folder=str(path), pid=proc.pid, started=time.time())


def poll(job: BackgroundJob) -> JobState:
    """The job's state, read from its folder. A process that is gone without a final status
    (killed, or crashed before it could write one) is ``failed`` with its log's last line."""
    path = Path(job.folder)
    status = _read_json(path / STATUS_FILE) or {}
    state = status.get("status")
    if state == "done":
        report = _read_json(path / REPORT_FILE)
        if report is None:
            return JobState(
                "failed",
                error="the report file is missing or unreadable",
                finished=status.get("finished"),
            )
        return JobState(
            "done", status.get("message", ""), report=report, finished=status.get("finished")
        )
    if state == "failed":
        return JobState(
            "failed",
            status.get("message", ""),
            error=status.get("error"),
            finished=status.get("finished"),
        )
    if pid_alive(job.pid):
        return JobState("running", status.get("message", "") or "starting")
    why = last_line(path / LOG_FILE) or "no report was written"
    return JobState(
        "failed", error=f"the evaluation process ended early: {why}", finished=time.time()
    )


def refresh(store: Any, run_id: int, k: int) -> dict[str, Any] | None:
    """The ground-truth record of ``(run_id, k)`` in ``store`` with its latest progress line;
    once its process has ended, its outcome (the report, or the reason it failed) is saved
    into the store, which frees its worker slot. A queued record is returned as it is."""
    job = store.get_ground_truth(run_id, k)
    if not job or job.get("status") != "running":
        return job
    if "pid" not in job:  # claimed by a runner, process not started yet (or never: its runner died)
        if pid_alive(int(job.get("runner_pid") or 0)):
            return {**job, "message": "starting"}
        job.update(status="failed", finished=time.time(), error="the lab stopped before it started")
    elif "folder" not in job:  # started by an older lab (a CLI subprocess): cannot be followed
        job.update(
            status="failed",
            finished=time.time(),
            error="started by an older version of the lab; run it again",
        )
    else:
        now = poll(BackgroundJob.from_dict(job))
        if now.status == "running":
            return {**job, "message": now.message}
        job.update(status=now.status, finished=now.finished or time.time(), message=now.message)
        if now.status == "done":
            job["report"] = now.report
        else:
            job["error"] = now.error
    store.save_ground_truth(run_id, k, job)
    return job


class EvaluationQueue:
    """The runner's hook for queued ground-truth evaluations (``Runner(evaluations=...)``):
    each supervisor pass saves the outcome of every evaluation whose process ended, then
    starts queued ones while a worker slot is free (``Store.claim_ground_truth``: one slot
    each, out of the runner's ``max_workers``, in the fair order shared with queued runs).

    An evaluation trains in its one process (no worker pool of its own), with a slot's share
    of the CPUs (its spec's ``threads``), owned by the runner's process: it stops when that
    process dies. On Ray (``$MTL_LAB_RAY_ADDRESS``) its training jobs are Ray tasks.
    """

    def __init__(self, nice: int = 0) -> None:
        self.nice = int(nice)  # the CPU priority the runner's workers get (the app: 10)

    def tick(self, store: Any, max_workers: int, runner_pid: int) -> None:
        """One pass: refresh the running evaluations, start queued ones into free slots."""
        for run_id, k in store.running_ground_truth_keys():
            refresh(store, run_id, k)
        while (claimed := store.claim_ground_truth(max_workers, runner_pid=runner_pid)) is not None:
            run_id, k, job = claimed
            try:
                spec = EvalSpec.from_dict(job["spec"])
                started = start(spec, job["folder"], workers=0, nice=self.nice)
            except (LabError, OSError, KeyError, TypeError, ValueError) as exc:
                job.update(status="failed", finished=time.time(), error=f"could not start: {exc}")
            else:
                job.update(started.to_dict())
            store.save_ground_truth(run_id, k, job)


def main(argv: list[str] | None = None) -> int:
    """Entry of the background process: ``argv[1]`` is the job folder, ``argv[2]`` (when
    given) the process that owns the job: it stops once that one is gone. Returns the exit code
    (0 done, 2 LabError, 1 any other error); the outcome is in ``status.json`` either way."""
    argv = argv or sys.argv
    path = Path(argv[1])
    if len(argv) > 2:  # started by start(): owned by that process
        _stop_with_parent(int(argv[2]))
    job = json.loads((path / SPEC_FILE).read_text())
    spec, workers = EvalSpec.from_dict(job["spec"]), int(job.get("workers", 0))
    prepare_process(1, int(job.get("nice", 0)))  # before torch is imported (threads: the spec's)
    last = [""]

    def progress(msg: str) -> None:
        last[0] = msg
        write_json(path / STATUS_FILE, {"status": "running", "message": msg})

    try:
        address = runner_ray_address()
        if address:
            from mtl_core.experiments.ray_executor import RayExecutor

            with RayExecutor(address, num_cpus=max(1, spec.threads)) as ex:
                report = evaluate(spec, ex, on_progress=progress)
        elif workers > 0:
            with LocalProcessExecutor(workers) as ex:
                report = evaluate(spec, ex, on_progress=progress)
        else:
            report = evaluate(spec, SerialExecutor(), on_progress=progress)
        write_report(report, path / REPORT_FILE)
    except Exception as exc:  # LabError: its message; anything else: type and message
        error = str(exc) if isinstance(exc, LabError) else f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        write_json(
            path / STATUS_FILE,
            {"status": "failed", "message": last[0], "error": error, "finished": time.time()},
        )
        return 2 if isinstance(exc, LabError) else 1
    write_json(path / STATUS_FILE, {"status": "done", "message": last[0], "finished": time.time()})
    return 0


def _stop_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """Owned by whoever started it (``parent``, the app or the CLI): once that process is
    gone (we are re-parented), stop this job and its worker processes (its own process
    group) within ``poll_s``. A parent-death signal would fire when the starting *thread*
    ends: a Streamlit script run."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        try:
            if os.getpgid(0) == os.getpid():  # our own group (start): take the workers too
                os.killpg(os.getpgid(0), signal.SIGTERM)
        finally:
            os._exit(3)

    threading.Thread(target=watch, name="mtl-lab-job-watchdog", daemon=True).start()


def last_line(path: str | os.PathLike[str] | None) -> str:
    """The last non-empty line of a text file ("" if absent or empty)."""
    if not path:
        return ""
    try:
        lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else ""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


__all__ = [
    "BackgroundJob",
    "EvaluationQueue",
    "JobState",
    "last_line",
    "main",
    "poll",
    "refresh",
    "spec_for_run",
    "start",
]
