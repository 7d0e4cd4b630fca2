"""Functions that the runner and store tests run in spawned processes (importable by name).

Fake training functions for the runner tests:

Each mimics ``mtl_core.train.loop.train``: steps numbered 1..total, reported via ``on_step``.
Behaviour is steered by ``cfg.knobs``: ``sleep`` (seconds per step), ``nan_at`` (report a NaN
loss at that step), ``diverge_at`` (raise DivergedError), ``crash_at`` (raise RuntimeError),
``stall_at`` (hang in that step), ``tasks`` (number of tasks).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from mtl_core.config import RunConfig
from mtl_core.errors import DivergedError
from mtl_core.events import MetricRow, StepEvent


def fake_train(cfg: RunConfig, on_step=None):
    k = cfg.knobs
    n = int(k.get("tasks", 3))
    tasks = [f"t{i}" for i in range(n)]
    total = int(cfg.train.steps)
    t0 = time.perf_counter()
    for step in range(1, total + 1):
        if k.get("stall_at") == step:  # a step that never ends (until terminated)
            time.sleep(float(k.get("stall_s", 600)))
        if k.get("crash_at") == step:
            raise RuntimeError(f"boom at step {step}")
        if k.get("diverge_at") == step:
            raise DivergedError(f"loss became NaN at step {step} on task t0; try a smaller lr")
        loss = {t: 1.0 / step + i for i, t in enumerate(tasks)}
        if k.get("nan_at") == step:
            loss["t1"] = float("nan")
        metrics = []
        if step % int(cfg.train.eval_every) == 0 or step == total:
            metrics = [MetricRow(t, "val", "loss", float(step + i)) for i, t in enumerate(tasks)]
        ev = StepEvent(
            step=step,
            total_steps=total,
            tasks=tasks,
            train_loss=loss,
            metrics=metrics,
            affinity={"lookahead": np.full((n, n), float(step))},
            elapsed_s=time.perf_counter() - t0,
        )
        if on_step is not None:
            on_step(ev)
        time.sleep(float(k.get("sleep", 0.0)))
    return SimpleNamespace(tasks=tasks, task_types=["regression"] * n)


# ------------------------------------------------------------------ store concurrency test

CONC_TASKS = ["a", "b", "c", "d"]


def conc_writer(path: str, run_id: int, steps: int) -> None:
    """Append ``steps`` steps, each filled with its step number, then finish the run."""
    from mtl_core.store import Store

    store = Store(path)
    n = len(CONC_TASKS)
    for step in range(1, steps + 1):
        v = float(step)
        store.append_step(
            run_id,
            StepEvent(
                step=step,
                total_steps=steps,
                tasks=CONC_TASKS,
                train_loss={t: v for t in CONC_TASKS},
                metrics=[MetricRow(t, "val", "loss", v) for t in CONC_TASKS],
                affinity={"lookahead": np.full((n, n), v), "cosine": np.full((n, n), -v)},
                groups=(frozenset(CONC_TASKS[:2]), frozenset(CONC_TASKS[2:])),
            ),
        )
    store.set_status(run_id, "finished")


def conc_reader(path: str, run_id: int, out: str) -> None:
    """Poll until the run finishes, checking that every read shows whole steps only."""
    import json

    from mtl_core.store import Store

    store = Store(path)
    polls, seen = 0, []
    while True:
        with store.snapshot():
            info = store.get_run(run_id)
            s1, _, a1 = store.affinity_steps(run_id, "lookahead")
            s2, _, a2 = store.affinity_steps(run_id, "cosine")
            m = store.metrics(run_id)
            ls, _, lv = store.losses(run_id)
            gr = store.groupings(run_id)
        k = info.steps_done
        want = np.arange(1, k + 1)
        assert np.array_equal(s1, want), (k, s1[-5:])  # nothing lost, nothing half-written
        assert np.array_equal(s2, want) and np.array_equal(ls, want)
        assert np.array_equal(a1, np.broadcast_to(want[:, None, None], a1.shape))
        assert np.array_equal(a2, -a1)
        assert np.array_equal(lv, np.broadcast_to(want[:, None], lv.shape))
        assert len(m) == 2 * len(CONC_TASKS) * k and len(gr) == k
        assert set(m.groupby("step").size()) <= {2 * len(CONC_TASKS)}
        # a single read outside a snapshot is whole too
        s3, _, a3 = store.affinity_steps(run_id, "lookahead")
        assert np.array_equal(a3, np.broadcast_to(s3[:, None, None], a3.shape))
        polls += 1
        seen.append(k)
        if polls == 1:
            open(out + ".ready", "w").close()  # the test starts the writer once we poll
        if info.status == "finished":
            break
    with open(out, "w") as f:
        json.dump({"polls": polls, "distinct": len(set(seen)), "last": seen[-1]}, f)


# ------------------------------------------------------------------ sweep jobs on Ray


def job_fail_some(x: int) -> int:
    """A sweep job: 3 raises a LabError, 4 kills its worker process, others give x * 10."""
    import os

    from mtl_core.errors import LabError

    if x == 3:
        raise LabError("three is not allowed")
    if x == 4:
        os._exit(9)
    return x * 10


def job_assigned(_: object) -> dict:
    """A sweep job returning the resources Ray assigned to it."""
    import ray

    return dict(ray.get_runtime_context().get_assigned_resources())
