"""Queued runs on a Ray cluster: the runner's Ray backend (``MTL_LAB_RAY_ADDRESS``).

What runs where: the run store (SQLite) stays on the runner's machine; each run trains in a
Ray task anywhere in the cluster (one CPU, one GPU when it asks for CUDA). The task streams
its steps to a :class:`StepSink` actor that the runner owns (started on the runner's node,
no CPU); the runner's supervisor drains the sink on every pass and writes the steps into the
store, so live views, cancel, failure and interruption read the store exactly as with local
workers:

- finished / failed (an exception or a diverged loss, with its message and traceback) are
  returned by the task after its last step reached the sink;
- cancel: the runner raises the run's flag in the sink, the task sees it in the answer to
  its next step and stops (``cancelled``); one that does not stop within the grace period
  is killed with ``ray.cancel(force=True)`` (``cancelled``, "after the grace period");
- a task whose worker process or node dies ends ``interrupted`` with its steps kept (Ray's
  retries are off for runs: a run is not restarted from step 1 behind the user's back).

Ray is imported only when a :class:`RayBackend` is made; the functions that run on the
cluster import nothing from Ray at module level.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mtl_core.config import RunConfig
from mtl_core.errors import LabError
from mtl_core.events import MetricRow, StepEvent
from mtl_core.runner.ray_cluster import (
    cluster_gpus,
    connect,
    first_line,
    run_resources,
    runner_ray_address,
)
from mtl_core.runner.worker import Cancelled, Rate, check_finite, resolve
from mtl_core.scenarios import table_files
from mtl_core.store import Store
from mtl_core.store.faults import StoreFault

# ---------------------------------------------------------------------- on the cluster


class StepSink:
    """The runner's mailbox (a Ray actor): steps and start notices from the run tasks wait
    here until the runner drains them; it also holds the runs' cancel flags."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str, Any]] = []
        self.cancelled: set[int] = set()

    def started(self, run_id: int, host: str, pid: int) -> bool:
        """A task began run ``run_id`` in process ``pid`` on ``host``; True = cancelled."""
        self.items.append((run_id, "started", (host, pid)))
        return run_id in self.cancelled

    def push(self, run_id: int, step: dict[str, Any], steps_per_s: float | None) -> bool:
        """One step of run ``run_id`` (:func:`event_to_plain`); True = stop (cancelled)."""
        self.items.append((run_id, "step", (step, steps_per_s)))
        return run_id in self.cancelled

    def cancel(self, run_id: int) -> None:
        """Raise run ``run_id``'s cancel flag."""
        self.cancelled.add(run_id)

    def drain(self) -> list[tuple[int, str, Any]]:
        """Everything received since the last drain, oldest first."""
        out, self.items = self.items, []
        return out

    def forget(self, run_id: int) -> None:
        """Drop an ended run's flag."""
        self.cancelled.discard(run_id)


def remote_train(
    run_id: int, config: dict[str, Any], ref: str, sink: Any, tables: dict | None = None
) -> dict[str, Any]:
    """The Ray task of one run: train ``config`` with the function ``ref`` names, sending
    every step to ``sink``. ``tables``: the uploaded table the run trains on, ``{ref:
    bytes}`` (the node may not have the store's folder). Returns the outcome, ``{"status":
    "finished" | "failed" | "cancelled", ...}``, after the last step has reached the sink."""
    import tempfile

    import ray

    if tables:
        from pathlib import Path

        table_files.materialize(tables, Path(tempfile.gettempdir()) / "mtl-lab-tables")

    pending: list[Any] = []
    rate = Rate()

    def on_step(event: Any) -> None:
        check_finite(event)  # DivergedError: the run fails with the step and task
        ref_ = sink.push.remote(run_id, event_to_plain(event), rate.update(int(event.step)))
        if pending and ray.get(pending.pop()):  # the answer to the previous step
            raise Cancelled
        pending.append(ref_)

    try:
        if ray.get(sink.started.remote(run_id, socket.gethostname(), os.getpid())):
            raise Cancelled
        result = resolve(ref)(RunConfig.from_dict(config), on_step)
        if pending and ray.get(pending.pop()):
            raise Cancelled
        return {"status": "finished", **_tasks_of(result)}
    except Cancelled:
        return {"status": "cancelled"}
    except Exception as exc:
        error = str(exc) if isinstance(exc, LabError) else f"{type(exc).__name__}: {exc}"
        return {"status": "failed", "error": error, "detail": traceback.format_exc()}
    finally:
        if pending:  # every step sent has arrived before the outcome is returned
            ray.get(pending)


def _tasks_of(result: Any) -> dict[str, Any]:
    tasks, types = getattr(result, "tasks", None), getattr(result, "task_types", None)
    if not (tasks and types):
        return {}
    tmap = dict(types) if isinstance(types, dict) else dict(zip(tasks, types))
    return {
        "tasks": [str(t) for t in tasks],
        "task_types": {str(k): str(v) for k, v in tmap.items()},
    }


def event_to_plain(ev: StepEvent) -> dict[str, Any]:
    """A step as plain data (lists, dicts, NumPy arrays), so the sink needs no lab code."""
    return {
        "step": int(ev.step),
        "total_steps": int(ev.total_steps),
        "tasks": list(ev.tasks),
        "train_loss": {str(k): float(v) for k, v in ev.train_loss.items()},
        "metrics": [(m.task, m.split, m.metric, float(m.value)) for m in ev.metrics],
        "affinity": dict(ev.affinity),
        "groups": None if ev.groups is None else [sorted(g) for g in ev.groups],
        "elapsed_s": float(ev.elapsed_s),
        "task_types": None if ev.task_types is None else list(ev.task_types),
    }


def event_from_plain(d: dict[str, Any]) -> StepEvent:
    """The :class:`StepEvent` of :func:`event_to_plain` output."""
    groups = d.get("groups")
    return StepEvent(
        step=d["step"],
        total_steps=d["total_steps"],
        tasks=d["tasks"],
        train_loss=d["train_loss"],
        metrics=[MetricRow(*m) for m in d["metrics"]],
        affinity=d["affinity"],
        elapsed_s=d["elapsed_s"],
        task_types=d.get("task_types"),
        groups=None if groups is None else tuple(frozenset(g) for g in groups),
    )


# ---------------------------------------------------------------------- on the runner


@dataclass
class RayRun:
    """A run on the cluster: its task, where it trains (once started) and since when its
    cancel flag is up (monotonic seconds)."""

    ref: Any
    where: tuple[str, int] | None = None
    cancel_seen: float | None = None
    forced: bool = False


class RayBackend:
    """Runs a :class:`~mtl_core.runner.Runner`'s queued runs as Ray tasks on the cluster at
    ``address`` (see the module docstring). Driven by the runner's supervisor thread:
    :meth:`launch`, :meth:`pump`, :meth:`shutdown`. LabError when Ray is missing or the
    cluster cannot be reached."""

    def __init__(
        self,
        store: Store,
        address: str,
        train_ref: str,
        *,
        cancel_grace_s: float = 10.0,
        cpus_per_run: float = 1.0,
        record: Callable[..., bool] | None = None,
    ) -> None:
        self.store = store
        # how an outcome is written: the runner's keeps it when the store cannot take it
        self.record = record or self._set_status
        self.address = address
        self.train_ref = train_ref
        self.cancel_grace_s = float(cancel_grace_s)
        self.cpus_per_run = float(cpus_per_run)
        self.ray, _ = connect(address)
        ray = self.ray
        here = ray.get_runtime_context().get_node_id()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.sink = (
            ray.remote(StepSink)
            .options(
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True),
            )
            .remote()
        )
        self._task = ray.remote(remote_train)
        self._gpus = cluster_gpus(ray)
        self.runs: dict[int, RayRun] = {}

    def slots(self) -> int:
        """Runs the cluster can train at once (its CPUs / CPUs per run, at least 1)."""
        cpus = float(self.ray.cluster_resources().get("CPU", 1.0))
        return max(1, int(cpus // self.cpus_per_run))

    def launch(self, run_id: int) -> None:
        """Start run ``run_id`` (claimed ``running`` in the store) as a Ray task."""
        config = self.store.get_run(run_id).config
        opts = run_resources(config, self._gpus, self.cpus_per_run)
        if opts["num_gpus"] and not self._gpus:  # it would wait for a GPU forever
            self.record(
                run_id,
                "failed",
                error="the run asks for CUDA but the Ray cluster has no "
                "GPU; choose device cpu or add a GPU node",
            )
            return
        try:  # the uploaded table travels with the task: the node may not have the store
            tables = table_files.payload(
                config.get("knobs") or {}, table_files.tables_dir(self.store.path)
            )
        except LabError as exc:
            self.record(run_id, "failed", error=str(exc))
            return
        ref = self._task.options(max_retries=0, name=f"mtl-lab-run-{run_id}", **opts).remote(
            run_id,
            config,
            self.train_ref,
            self.sink,
            tables,
        )
        self.runs[run_id] = RayRun(ref)

    def where(self, run_id: int) -> tuple[str, int] | None:
        """``(host, pid)`` of the Ray worker training ``run_id``, once it started."""
        run = self.runs.get(run_id)
        return run.where if run else None

    def pump(self) -> None:
        """Write the steps the tasks sent, record the outcome of tasks that ended and
        enforce cancels. Steps are written before an ended run's outcome."""
        if not self.runs:
            return
        refs = {run.ref: rid for rid, run in self.runs.items()}
        ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=0)
        self._drain()
        for ref in ready:
            if refs[ref] in self.runs:  # not already ended by a failed store write
                self._finish(refs[ref])
        self._enforce_cancels()

    def _set_status(self, rid: int, status: str, error: str | None, **kw: Any) -> bool:
        return self.store.set_status(rid, status, only_from=("running",), error=error, **kw)

    def _drain(self) -> None:
        for rid, kind, payload in self.ray.get(self.sink.drain.remote(), timeout=60):
            if kind == "started":
                if rid in self.runs:
                    self.runs[rid].where = tuple(payload)
                continue
            if rid not in self.runs:
                continue  # a run already ended here (its store write failed)
            step, steps_per_s = payload
            event = event_from_plain(step)
            try:
                if event.step == 1 and event.task_types:  # live views show the types at once
                    self.store.set_tasks(
                        rid, list(event.tasks), dict(zip(event.tasks, event.task_types))
                    )
                self.store.append_step(rid, event, steps_per_s=steps_per_s)
            except StoreFault as exc:  # e.g. a full disk: stop the task, fail the run
                self._stop_unwritable(rid, exc)

    def _stop_unwritable(self, rid: int, exc: StoreFault) -> None:
        run = self.runs.pop(rid)
        self.sink.forget.remote(rid)
        try:
            self.ray.cancel(run.ref, force=True)
        except Exception:  # already ended
            pass
        self.record(rid, "failed", str(exc))

    def _finish(self, rid: int) -> None:
        run = self.runs.pop(rid)
        self.sink.forget.remote(rid)
        try:
            out = self.ray.get(run.ref)
        except Exception as exc:  # the task did not return: killed, or its worker died
            self._ended_early(rid, run, exc)
            return
        status = out.get("status")
        if status == "finished":
            if out.get("tasks"):
                self.store.set_tasks(rid, out["tasks"], out["task_types"])
            self.record(rid, "finished", None)
        elif status == "cancelled":
            self.record(rid, "cancelled", error="cancelled by the user")
        else:
            self.record(
                rid,
                "failed",
                error=out.get("error") or "the run failed",
                error_detail=out.get("detail"),
            )

    def _ended_early(self, rid: int, run: RayRun, exc: BaseException) -> None:
        if run.forced or self.store.cancel_requested(rid):
            self.record(
                rid,
                "cancelled",
                error="cancelled by the user (stopped after the grace period)"
                if run.forced
                else "cancelled by the user",
            )
            return
        info = self.store.get_run(rid)
        step = info.last_step if info.last_step is not None else 0
        where = f" on {run.where[0]}" if run.where else ""
        self.record(
            rid,
            "interrupted",
            error=f"the Ray worker{where} died after step {step} ({first_line(exc)}); the "
            f"{info.steps_done} steps logged are kept",
        )

    def _enforce_cancels(self) -> None:
        now = time.monotonic()
        for rid, run in self.runs.items():
            if run.cancel_seen is None:
                if self.store.cancel_requested(rid):
                    run.cancel_seen = now
                    self.sink.cancel.remote(rid)
            elif not run.forced and now - run.cancel_seen > self.cancel_grace_s:
                run.forced = True
                self.ray.cancel(run.ref, force=True)

    def shutdown(self) -> None:
        """Stop every run's task (their runs end ``interrupted``, steps kept) and the sink."""
        try:
            self._drain()  # the steps that arrived are kept
        except Exception:
            pass
        for rid, run in list(self.runs.items()):
            try:
                self.ray.cancel(run.ref, force=True)
            except Exception:  # Ray already disconnected (interpreter exit): tasks die with us
                pass
            self.record(
                rid,
                "interrupted",
                error="the lab process that ran this worker exited; steps logged so far are kept",
            )
        self.runs.clear()
        try:
            self.ray.kill(self.sink)
        except Exception:
            pass


__all__ = ["RayBackend", "RayRun", "StepSink", "event_from_plain", "event_to_plain", "remote_train"]


def backend_for(
    address: str | None,
    store: Store,
    train_ref: str,
    *,
    cancel_grace_s: float,
    record: Callable[..., Any],
) -> RayBackend | None:
    """The runner's Ray backend for ``address`` (None: ``$MTL_LAB_RAY_ADDRESS``; "" or unset:
    None, runs stay in local processes). Ray itself is imported only when the backend
    connects, so nothing imports it without an address."""
    if address is None:
        address = runner_ray_address()
    if not address:
        return None
    return RayBackend(store, address, train_ref, cancel_grace_s=cancel_grace_s, record=record)
