"""The Learn page's measured wait: pace of recent lesson runs and the start of a queued run."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mtl_core.lesson import estimate
from mtl_core.store import RunInfo


def _run(i, *, started, finished, steps=300, scenario="lesson", status="finished"):
    return RunInfo(
        id=i,
        name="r",
        origin="trained",
        status=status,
        config={"scenario": scenario},
        tasks=[],
        task_types={},
        notes="",
        meta={},
        created=0.0,
        started=started,
        finished=finished,
        error=None,
        error_detail=None,
        steps_done=steps,
        steps_total=steps,
        last_step=None,
        steps_per_s=None,
        eta_s=None,
        losses={},
        cancel_requested=False,
    )


def test_pace_is_the_median_of_recent_finished_lesson_runs():
    runs = [
        _run(1, started=0, finished=30),  # 0.1 s/step
        _run(2, started=0, finished=60),  # 0.2
        _run(3, started=0, finished=600),  # 2.0 (a slow outlier)
        _run(4, started=0, finished=3000, scenario="digits"),  # another scenario
        _run(5, started=0, finished=None, status="running"),
    ]
    pace = estimate.measured_pace(runs)
    assert pace == estimate.Pace(pytest.approx(0.2), 3)
    assert estimate.measured_pace(runs[3:]) is None


def test_pace_uses_the_last_runs_only():
    old = [_run(i, started=0, finished=10 + i) for i in range(20)]  # ~0.03-0.1 s/step
    new = [_run(100 + i, started=1000, finished=1300) for i in range(estimate.RECENT)]
    assert estimate.measured_pace(old + new).s_per_step == pytest.approx(1.0)


@pytest.mark.parametrize(
    "ahead, busy, workers, run_s, expected",
    [
        (0, [], 2, 60, 0.0),  # a free worker, nothing ahead
        (0, [10, 40], 2, 60, 10.0),  # both busy: the first to free
        (2, [], 2, 60, 60.0),  # two ahead on two workers
        (3, [], 2, 60, 60.0),  # the third ahead starts at 60 s on one worker; the other frees
        (4, [], 2, 60, 120.0),
        (1, [10, 40], 2, 60, 40.0),  # the one ahead takes the 10 s worker's slot
        (2, [10, 40], 2, 60, 70.0),
        (5, [], 1, 30, 150.0),
        (1, [-5], 0, -1, 0.0),  # nonsense counts as 0, at least one worker
    ],
)
def test_start_wait(ahead, busy, workers, run_s, expected):
    assert estimate.start_wait(ahead, busy, workers, run_s) == pytest.approx(expected)


def test_left_prefers_the_workers_eta():
    r = _run(1, started=0, finished=None, status="running")
    r = replace(r, steps_done=100)
    assert estimate.left_s(replace(r, eta_s=12.5), estimate.Pace(1.0, 1)) == 12.5
    assert estimate.left_s(r, estimate.Pace(0.5, 1)) == pytest.approx(100.0)
    assert estimate.left_s(r, None) == 0.0
