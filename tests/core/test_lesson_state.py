"""``lesson.state``: what a lesson shows, read once from the store (issue 19)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mtl_core.errors import LabError
from mtl_core.lesson import workflow as lesson
from mtl_core.lesson.report import UNCLEAR
from mtl_core.lesson.state import result, run_loss_intervals, state
from mtl_core.store import Store
from tests.core.test_lesson_workflow import RecordingRunner, _log_steps


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "s.sqlite")


def test_state_of_a_lesson_while_the_together_run_trains_and_after(store):
    runner = RecordingRunner(store)
    ids = lesson.start(runner, store, {"conflict": 0.75}, seed=1)
    store.claim_queued(10, runner_pid=1)
    _log_steps(store, ids.together, 1, 12)
    s = state(store, ids)
    assert s.statuses == {"together": "running", "single": "queued"}
    assert s.active and not s.finished and s.ids.groups is None and s.grouping is None
    assert s.conflict == 0.75 and s.knobs["data_seed"] == 1
    assert s.tasks == tuple(f"t{i}" for i in range(6)) and s.affinity_step == 12
    assert s.affinity[0, 1] == pytest.approx(0.01) and s.affinity[0, 5] == pytest.approx(-0.01)
    assert (s.within, s.cross) == (pytest.approx(0.01), pytest.approx(-0.01))
    assert s.loss == {} and s.task_loss == {} and s.verdict == UNCLEAR
    with pytest.raises(LabError, match=f"the lesson of run {ids.together} has not finished"):
        result(s)
    store.set_status(ids.together, "finished")
    grouped = lesson.advance(runner, store, ids.together)
    later = state(store, ids)  # ids without the grouped run: the note fills it in
    assert later.ids.groups == grouped and later.runs["groups"].id == grouped
    assert later.grouping == lesson.planted_groups({}) == later.planted
    assert later.grouping_source == lesson.GROUP_SOURCES["tag"]


def test_loss_intervals_of_a_run_without_replicas_are_the_means_alone():
    df = pd.DataFrame(
        {
            "step": [10, 10, 20, 20],
            "task": ["a", "b", "a", "b"],
            "split": ["test"] * 4,
            "metric": ["loss"] * 4,
            "value": [2.0, 4.0, 1.0, 3.0],
        }
    )
    overall, per_task = run_loss_intervals(df)
    assert overall.mean == 2.0 and overall.n == 1 and math.isnan(overall.low)
    assert {t: iv.mean for t, iv in per_task.items()} == {"a": 1.0, "b": 3.0}
    assert run_loss_intervals(pd.DataFrame()) == (None, {})


def test_mean_affinity_skips_unlogged_cells_without_warning():
    A = np.array([[[1.0, np.nan]], [[3.0, np.nan]], [[np.nan, np.nan]]])
    with np.errstate(all="raise"):
        M = lesson.mean_affinity(A)
    assert M[0, 0] == 2.0 and math.isnan(M[0, 1])


def test_batched_steps_store_what_single_steps_store(store):
    """``append_steps`` (the headless lesson's writes) leaves the same run as one
    ``append_step`` per step: matrices, metrics, progress."""
    from tests.helpers.app_fixtures import fake_train

    cfg = lesson.base_config("together", {}, steps=25, replicas=3)
    events: list = []
    fake_train(cfg, events.append)
    one, many = (store.create_run(name=n, config=cfg.to_dict(), steps_total=25) for n in "ab")
    for e in events:
        store.append_step(one, e)
    store.append_steps(many, events[:10])
    store.append_steps(many, events[10:])
    store.append_steps(many, [])
    a, b = store.affinity_steps(one, "lookahead"), store.affinity_steps(many, "lookahead")
    assert a[0].tolist() == b[0].tolist() == list(range(1, 26)) and a[1] == b[1]
    np.testing.assert_array_equal(a[2], b[2])
    pd.testing.assert_frame_equal(store.metrics(one), store.metrics(many))
    ra, rb = store.get_run(one), store.get_run(many)
    assert (ra.steps_done, ra.last_step) == (rb.steps_done, rb.last_step) == (25, 25)


def test_a_run_that_is_no_lesson_is_not_waited_on(store):
    """A finished run opened as a lesson (``/learn?lesson=N,,`` for any run N) has no grouped
    run to wait for: the page must not poll it forever."""
    from tests.helpers.app_fixtures import seed_run

    rid = seed_run(store, name="plain", steps=10)
    s = state(store, lesson.LessonIds(together=rid, groups=None, single=None))
    assert not s.groups_pending and not s.active


def _log_replica_losses(store: Store, rid: int, losses: list[float]) -> None:
    """One evaluation at step 300: replica r's held-out loss ``losses[r]`` on every task."""
    from mtl_core.events import MetricRow, StepEvent, replica_metric
    from tests.core.test_lesson_workflow import TASKS

    rows = [
        MetricRow(task=t, split="test", metric=replica_metric("loss", r), value=v)
        for r, v in enumerate(losses)
        for t in TASKS
    ]
    store.append_step(
        rid,
        StepEvent(
            step=300,
            total_steps=300,
            tasks=TASKS,
            train_loss={t: 1.0 for t in TASKS},
            metrics=rows,
            affinity={},
        ),
    )
    store.set_status(rid, "finished")


def test_finished_lesson_verdict_is_the_paired_difference(store):
    """Together's and the groups' own intervals overlap (replica spread 0.02), every pair
    differs by 0.010-0.015: state, result and ``lesson --json`` say positive transfer, with
    the paired difference behind it (hand-computed: mean -0.0125, t(0.975, 3) 3.18245)."""
    from mtl_core.lesson.report import POSITIVE, overlap_verdict

    runner = RecordingRunner(store)
    ids = lesson.start(runner, store, {"conflict": 0.0}, seed=1)
    store.claim_queued(10, runner_pid=1)
    _log_steps(store, ids.together, 1, 5)
    _log_replica_losses(store, ids.together, [0.30, 0.32, 0.34, 0.36])
    ids.groups = lesson.advance(runner, store, ids.together)
    _log_replica_losses(store, ids.groups, [0.31, 0.335, 0.35, 0.375])
    _log_replica_losses(store, ids.single, [0.40, 0.42, 0.44, 0.46])
    s = state(store, ids)
    assert s.finished and s.replica_loss["groups"] == {
        0: pytest.approx(0.31),
        1: pytest.approx(0.335),
        2: pytest.approx(0.35),
        3: pytest.approx(0.375),
    }
    assert s.diff["groups"].mean == pytest.approx(-0.0125)
    assert s.diff["groups"].high == pytest.approx(-0.0125 + 0.0045935, abs=1e-6)
    assert s.diff["single"].mean == pytest.approx(-0.1) and s.verdict == POSITIVE
    assert overlap_verdict(s.loss) == UNCLEAR  # the old rule could not tell
    out = result(s).to_json()
    assert out["verdict"] == POSITIVE
    assert out["difference"]["groups"]["mean"] == pytest.approx(-0.0125)
    assert out["difference"]["single"]["high"] == pytest.approx(-0.1, abs=1e-9)
