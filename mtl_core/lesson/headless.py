"""The landing lesson without the app: the same three runs, in this process, one after another.

``run_lesson(conflict, seed)`` trains all-together (lookahead affinity every step), picks
TAG's groups from its mean affinity, trains those groups, then every task alone, each run
as :data:`mtl_core.lesson.workflow.REPLICAS` replicas of one batched model, and returns a
:class:`mtl_core.lesson.report.LessonResult` (``python -m mtl_core lesson`` prints it).
Imports torch (through the training loop) when called.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from mtl_core.events import MetricRow, parse_replica_metric
from mtl_core.lesson import workflow as lesson
from mtl_core.lesson.report import LessonResult, block_means, loss_intervals


def run_lesson(
    conflict: float,
    seed: int = 0,
    *,
    knobs: dict[str, Any] | None = None,
    steps: int = lesson.STEPS,
    replicas: int = lesson.REPLICAS,
    on_run: Callable[[str], None] | None = None,
) -> LessonResult:
    """Train the lesson at ``conflict`` (0..1) with ``seed`` as data and training seed.

    ``knobs`` are further lesson-scenario knobs (``conflict`` and ``data_seed`` are set
    here); ``on_run(approach)`` is called before each run starts. Raises LabError for a
    bad knob or setting.
    """
    from mtl_core.train.loop import train

    t0 = time.perf_counter()
    k = {**(knobs or {}), "conflict": float(conflict), "data_seed": int(seed)}
    common = {"steps": int(steps), "seed": int(seed), "replicas": int(replicas)}
    planted = lesson.planted_groups(k)
    if on_run:
        on_run("together")
    together = train(lesson.base_config("together", k, **common))
    A = together.mean_affinity["lookahead"]
    tasks = list(together.tasks)
    tag, _ = lesson.select_groups(A, tasks, len(planted))
    results = {"together": together}
    for mode in ("groups", "single"):
        if on_run:
            on_run(mode)
        results[mode] = train(
            lesson.base_config(mode, k, groups=tag if mode == "groups" else None, **common)
        )
    loss, task_loss = {}, {}
    for mode, res in results.items():
        loss[mode], task_loss[mode] = loss_intervals(replica_losses_of(res.metrics))
    within, cross = block_means(A, tasks, planted)
    return LessonResult(
        conflict=float(conflict),
        seed=int(seed),
        seconds=time.perf_counter() - t0,
        loss=loss,
        within=within,
        cross=cross,
        tag_groups=tag,
        planted=planted,
        tasks=tasks,
        task_loss=task_loss,
        affinity_matrix=np.asarray(A, dtype=np.float64),
    )


def replica_losses_of(
    rows: Iterable[MetricRow], split: str = "test"
) -> dict[int, dict[str, float]]:
    """``{replica: {task: loss}}`` from a run's final metric rows (``"loss:r<k>"``); a run
    with one replica gives ``{0: its loss per task}``."""
    out: dict[int, dict[str, float]] = {}
    plain: dict[str, float] = {}
    for m in rows:
        if m.split != split:
            continue
        parsed = parse_replica_metric(m.metric)
        if parsed is not None and parsed[0] == "loss":
            out.setdefault(parsed[1], {})[m.task] = float(m.value)
        elif m.metric == "loss":
            plain[m.task] = float(m.value)
    return out or ({0: plain} if plain else {})
