"""Everything a lesson shows, read once: :func:`state` ``(reader, ids) -> LessonState``.

The Learn page draws a :class:`LessonState` and the headless ``lesson --json`` command prints
one (:func:`result`), so both give the same numbers for the same runs: the runs and their
statuses, the grouped run's groups and where they came from, the planted clusters, the
held-out loss per approach and task with its 95% interval over replicas
(:mod:`mtl_core.lesson.report`) and the paired together-minus-other differences the verdict
rests on, the mean loss curves, the together run's affinity so far,
whether all three runs have finished, and the verdict. Torch-free; reads only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.lesson import workflow
from mtl_core.lesson.report import (
    Interval,
    LessonResult,
    block_means,
    differences,
    loss_intervals,
    replica_losses,
    replica_means,
    verdict,
)
from mtl_core.lesson.workflow import NOTE_GROUPS, NOTE_GROUPS_RUN, LessonIds
from mtl_core.store import RunInfo
from mtl_core.types import Grouping, canonical_grouping

#: The affinity measure the together run logs (every step) and the lesson reads.
MEASURE = "lookahead"


class LessonReader(Protocol):
    """What :func:`state` reads: a :class:`~mtl_core.store.Store`, or the app's
    visibility-checked access to it (``app.data.LessonReader``)."""

    def get_run(self, run_id: int) -> RunInfo: ...

    def metrics(self, run_id: int) -> pd.DataFrame: ...

    def affinity_steps(self, run_id: int, measure: str) -> tuple[np.ndarray, list[str], Any]: ...

    def get_note(self, run_id: int, key: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class LessonState:
    """One lesson as stored now (see the module docstring).

    ``ids``: the lesson's run ids, the grouped one filled in from the together run's note
    once the runner has queued it. ``runs[approach]``: the record of each run known so far
    (approaches: :data:`~mtl_core.lesson.workflow.APPROACHES`). ``grouping``: what the
    grouped run trains (None before it is queued), ``grouping_source`` in words;
    ``planted``: the scenario's clusters (None for a run that is no lesson).
    ``loss[approach]``: mean held-out test loss over tasks, interval over replicas;
    ``task_loss[approach][task]``: each task's; both absent for a run not evaluated yet.
    ``replica_loss[approach][r]``: replica r's mean held-out loss over tasks (absent for a
    run without replicas); ``diff``: :func:`mtl_core.lesson.report.differences` of it, the
    paired intervals of together minus ``groups`` / ``single``.
    ``curves[approach]``: mean held-out loss over tasks at each evaluated step.
    ``affinity``: ``(n, n)``, rows = source, the together run's lookahead affinity averaged
    over every logged step (and replica) so far, None before its first matrix;
    ``affinity_step``: the last step in it. ``within``/``cross``: its mean off-diagonal
    value inside/across the planted clusters (NaN when unknown). ``verdict``:
    :func:`mtl_core.lesson.report.verdict` of ``diff`` (final once ``finished``).
    """

    ids: LessonIds
    runs: Mapping[str, RunInfo]
    knobs: Mapping[str, Any]
    tasks: tuple[str, ...]
    grouping: Grouping | None
    grouping_source: str
    planted: Grouping | None
    loss: Mapping[str, Interval]
    task_loss: Mapping[str, Mapping[str, Interval]]
    curves: Mapping[str, pd.Series] = field(repr=False)
    affinity: np.ndarray | None = field(repr=False)
    affinity_step: int | None
    within: float
    cross: float
    finished: bool
    verdict: str
    #: the together run's note promises a grouped run nobody has queued yet (False for a
    #: run that was never a lesson's: nothing will ever queue its groups)
    groups_pending: bool = False
    #: TAG's wall-clock safety stop fired when it chose ``grouping`` (only then may the
    #: groups depend on the machine's load; False for the planted fallback)
    grouping_stopped: bool = False
    replica_loss: Mapping[str, Mapping[int, float]] = field(default_factory=dict, repr=False)
    diff: Mapping[str, Interval] = field(default_factory=dict)

    @property
    def statuses(self) -> dict[str, str]:
        """Each known run's status by approach."""
        return {k: r.status for k, r in self.runs.items()}

    @property
    def conflict(self) -> float | None:
        """The conflict level the lesson was trained at (None: not recorded)."""
        value = self.knobs.get("conflict")
        return float(value) if value is not None else None

    @property
    def active(self) -> bool:
        """Whether anything may still change: a run queued or running, or the grouped run
        still to be queued (only a lesson's together run ever gets one)."""
        pending = self.ids.groups is None and self.groups_pending
        return pending or any(r.is_active for r in self.runs.values())


def state(reader: LessonReader, ids: LessonIds) -> LessonState:
    """Read the lesson ``ids`` from ``reader`` (see :class:`LessonReader`).

    LabError when one of its runs does not exist (or ``reader`` may not show it).
    """
    claim = reader.get_note(ids.together, NOTE_GROUPS_RUN)  # None: never a lesson's run
    note = claim or {}
    groups_id = ids.groups
    if groups_id is None and note.get("run_id") is not None:
        groups_id = int(note["run_id"])
    single_id = ids.single
    if single_id is None:  # a shared lesson followed before its single run was named
        found = (reader.get_note(ids.together, workflow.NOTE_LESSON) or {}).get("single")
        single_id = int(found) if found is not None else None
    ids = LessonIds(together=ids.together, groups=groups_id, single=single_id)
    runs = {
        k: reader.get_run(getattr(ids, k))
        for k in workflow.APPROACHES
        if getattr(ids, k) is not None
    }
    knobs = dict((runs["together"].config or {}).get("knobs") or {})
    grouping = groups_of(runs.get("groups"))
    source, stopped = "", False
    if groups_id is not None:
        gnote = reader.get_note(groups_id, NOTE_GROUPS) or {}
        source, stopped = str(gnote.get("source", "")), bool(gnote.get("stopped", False))
    planted = _planted(knobs)
    loss: dict[str, Interval] = {}
    task_loss: dict[str, dict[str, Interval]] = {}
    curves: dict[str, pd.Series] = {}
    replica_loss: dict[str, dict[int, float]] = {}
    for key, info in runs.items():
        df = reader.metrics(info.id)
        overall, per_task = run_loss_intervals(df)
        if overall is not None:
            loss[key], task_loss[key] = overall, per_task
        per = replica_means(replica_losses(df))
        if per:
            replica_loss[key] = per
        curves[key] = workflow.mean_curve(df)
    steps, aff_tasks, A = reader.affinity_steps(ids.together, MEASURE)
    affinity = workflow.mean_affinity(A) if len(steps) else None
    tasks = tuple(aff_tasks) if len(steps) else _tasks_of(runs)
    within, cross = math.nan, math.nan
    if affinity is not None and planted and len(planted) > 1:
        within, cross = block_means(affinity, tasks, planted)
    diff = differences(replica_loss)
    return LessonState(
        ids=ids,
        runs=runs,
        knobs=knobs,
        tasks=tasks,
        grouping=grouping,
        grouping_source=source,
        grouping_stopped=stopped,
        planted=planted,
        loss=loss,
        task_loss=task_loss,
        curves=curves,
        affinity=affinity,
        affinity_step=int(steps[-1]) if len(steps) else None,
        within=within,
        cross=cross,
        finished=len(runs) == 3 and all(r.status == "finished" for r in runs.values()),
        verdict=verdict(diff),
        replica_loss=replica_loss,
        diff=diff,
        groups_pending=groups_id is None and claim is not None,
    )


def result(s: LessonState, *, seed: int | None = None, seconds: float = 0.0) -> LessonResult:
    """The lesson's :class:`~mtl_core.lesson.report.LessonResult` (what ``lesson --json``
    prints) from ``s``: the same intervals, affinity, groups and verdict the page draws.
    ``seed``: default the lesson's data seed. LabError before the lesson has finished."""
    if not s.finished:
        raise LabError(f"the lesson of run {s.ids.together} has not finished: {s.statuses}")
    return LessonResult(
        conflict=float(s.conflict if s.conflict is not None else math.nan),
        seed=int(seed if seed is not None else s.knobs.get("data_seed", 0)),
        seconds=float(seconds),
        loss=dict(s.loss),
        within=s.within,
        cross=s.cross,
        tag_groups=s.grouping or (),
        stopped=s.grouping_stopped,
        planted=s.planted or (),
        tasks=list(s.tasks),
        task_loss={k: dict(v) for k, v in s.task_loss.items()},
        affinity_matrix=s.affinity,
        replica_loss={k: dict(v) for k, v in s.replica_loss.items()},
    )


def run_loss_intervals(df: pd.DataFrame | None) -> tuple[Interval | None, dict[str, Interval]]:
    """Mean held-out test loss over tasks and per task, each with its 95% interval over
    replicas (a run without replicas: the means alone, NaN bounds), from a run's long
    metrics frame; ``(None, {})`` before its first evaluation."""
    per = replica_losses(df)
    if per:
        return loss_intervals(per)
    _, means = workflow.held_out(df)
    if not means:
        return None, {}
    plain = {t: Interval(v, math.nan, math.nan, 1) for t, v in means.items()}
    return Interval(float(np.mean(list(means.values()))), math.nan, math.nan, 1), plain


def groups_of(info: RunInfo | None) -> Grouping | None:
    """The groups a grouped run trains (from its config); None for no run or no groups."""
    if info is None:
        return None
    groups = ((info.config or {}).get("train") or {}).get("groups")
    return canonical_grouping(groups) if groups else None


def _planted(knobs: Mapping[str, Any]) -> Grouping | None:
    try:
        return workflow.planted_groups(dict(knobs))
    except LabError:  # a run that is no lesson (a shared link to another run)
        return None


def _tasks_of(runs: Mapping[str, RunInfo]) -> tuple[str, ...]:
    for info in runs.values():
        if info.tasks:
            return tuple(info.tasks)
    return ()
