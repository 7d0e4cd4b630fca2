"""The landing lesson without the app: the same three runs, in this process, one after another.

``run_lesson(conflict, seed)`` trains all-together (lookahead affinity every step), lets the
lesson's own phase 2 (:func:`mtl_core.lesson.workflow.advance`) pick TAG's groups from its
mean affinity, trains those groups, then every task alone, each run as
:data:`mtl_core.lesson.workflow.REPLICAS` replicas of one batched model. Every step goes into
a throw-away run store, as a worker's would, and the numbers come from
:func:`mtl_core.lesson.state.state` over it: the very :class:`~mtl_core.lesson.state.LessonState`
the Learn page draws, as a :class:`mtl_core.lesson.report.LessonResult`
(``python -m mtl_core lesson`` prints it). Imports torch (through the training loop) when
called.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mtl_core.config import RunConfig
from mtl_core.lesson import workflow as lesson
from mtl_core.lesson.report import LessonResult
from mtl_core.lesson.state import LessonState, result, state
from mtl_core.store import Store

#: Steps the headless lesson writes per store transaction.
BATCH_STEPS = 100


def run_lesson(
    conflict: float,
    seed: int = 0,
    *,
    knobs: dict[str, Any] | None = None,
    steps: int = lesson.STEPS,
    replicas: int = lesson.REPLICAS,
    on_run: Callable[[str], None] | None = None,
    train: Callable[..., Any] | None = None,
) -> LessonResult:
    """Train the lesson at ``conflict`` (0..1) with ``seed`` as data and training seed;
    :func:`~mtl_core.lesson.state.result` of :func:`train_lesson`'s state.

    ``knobs`` are further lesson-scenario knobs (``conflict`` and ``data_seed`` are set
    here); ``on_run(approach)`` is called before each run starts; ``train``: the training
    function, ``train(cfg, on_step)`` (default ``mtl_core.train.loop.train``). Raises
    LabError for a bad knob or setting, or a run that diverged.
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mtl-lesson-") as tmp:
        s = train_lesson(
            Store(Path(tmp) / "lesson.sqlite"),
            conflict,
            seed,
            knobs=knobs,
            steps=steps,
            replicas=replicas,
            on_run=on_run,
            train=train,
        )
    return result(s, seed=seed, seconds=time.perf_counter() - t0)


def train_lesson(
    store: Store,
    conflict: float,
    seed: int = 0,
    *,
    knobs: dict[str, Any] | None = None,
    steps: int = lesson.STEPS,
    replicas: int = lesson.REPLICAS,
    on_run: Callable[[str], None] | None = None,
    train: Callable[..., Any] | None = None,
) -> LessonState:
    """The lesson trained into ``store`` in this process (started by
    :func:`~mtl_core.lesson.workflow.start`, its grouped run queued by
    :func:`~mtl_core.lesson.workflow.advance`, as under the runner) and its
    :class:`~mtl_core.lesson.state.LessonState`. ``train``: the training function (default
    ``mtl_core.train.loop.train``). LabError as :func:`run_lesson`."""
    if train is None:
        from mtl_core.train.loop import train
    k = {**(knobs or {}), "conflict": float(conflict)}
    queue = _InProcess(store)
    ids = lesson.start(queue, store, k, steps=int(steps), seed=int(seed), replicas=int(replicas))
    modes = {ids.together: "together", ids.single: "single"}
    _train_into(store, ids.together, train, on_run, "together")
    ids.groups = lesson.advance(queue, store, ids.together)
    modes[ids.groups] = "groups"
    for rid in (ids.groups, ids.single):
        _train_into(store, rid, train, on_run, modes[rid])
    return state(store, ids)


class _InProcess:
    """A :class:`~mtl_core.lesson.workflow.Submitter` that only records runs as queued (this
    process trains them, in :func:`train_lesson`'s order)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def submit(self, config: RunConfig, **kw: Any) -> int | None:
        kw.pop("limits", None)  # the command line's user owns the machine: no limits
        return self.store.create_run(
            name=config.name, config=config.to_dict(), steps_total=int(config.train.steps), **kw
        )


def _train_into(
    store: Store,
    run_id: int,
    train: Callable[..., Any],
    on_run: Callable[[str], None] | None,
    mode: str,
) -> None:
    """Train one queued run here and store every step as a worker does (written every
    :data:`BATCH_STEPS` steps in one transaction: nobody watches this store live)."""
    if on_run:
        on_run(mode)
    cfg = RunConfig.from_dict(store.get_run(run_id).config)
    store.set_status(run_id, "running")
    pending: list[Any] = []

    def on_step(event: Any) -> None:
        pending.append(event)
        if len(pending) >= BATCH_STEPS:
            store.append_steps(run_id, pending)
            pending.clear()

    train(cfg, on_step)
    store.append_steps(run_id, pending)
    store.set_status(run_id, "finished")
