"""Fake training functions for the runner tests (importable by spawned worker processes).

Each mimics ``mtl_core.training.train``: steps numbered 1..total, reported via ``on_step``.
Behaviour is steered by ``cfg.knobs``: ``sleep`` (seconds per step), ``nan_at`` (report a NaN
loss at that step), ``diverge_at`` (raise DivergedError), ``crash_at`` (raise RuntimeError),
``tasks`` (number of tasks).
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
            step=step, total_steps=total, tasks=tasks, train_loss=loss, metrics=metrics,
            affinity={"lookahead": np.full((n, n), float(step))},
            elapsed_s=time.perf_counter() - t0,
        )
        if on_step is not None:
            on_step(ev)
        time.sleep(float(k.get("sleep", 0.0)))
    return SimpleNamespace(tasks=tasks, task_types=["regression"] * n)
