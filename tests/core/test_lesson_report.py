"""The lesson's intervals, verdict, JSON and the headless ``lesson`` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mtl_core.commands import cli
from mtl_core.lesson.report import (
    NEGATIVE,
    POSITIVE,
    UNCLEAR,
    Interval,
    LessonResult,
    block_means,
    intended_picture,
    interval,
    loss_intervals,
    replica_losses,
    verdict,
)
from mtl_core.types import canonical_grouping


def test_interval_is_the_t_interval_of_the_mean():
    iv = interval([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, sd 1.29099, t(0.975, 3) = 3.18245 -> half width 2.05426
    assert iv.mean == 2.5 and iv.n == 4
    assert iv.low == pytest.approx(2.5 - 2.054261, abs=1e-6)
    assert iv.high == pytest.approx(2.5 + 2.054261, abs=1e-6)
    one = interval([0.3])
    assert (
        one.mean == 0.3
        and math.isnan(one.low)
        and one.to_dict() == {"mean": 0.3, "low": None, "high": None}
    )
    assert math.isnan(interval([float("nan")]).mean)


def _iv(lo: float, hi: float) -> Interval:
    return Interval((lo + hi) / 2, lo, hi, 16)


@pytest.mark.parametrize(
    "tog,grp,sgl,expected",
    [
        ((0.5, 0.6), (0.1, 0.2), (0.15, 0.25), NEGATIVE),  # groups beat together
        ((0.3, 0.4), (0.35, 0.45), (0.1, 0.2), NEGATIVE),  # alone beats together
        ((0.1, 0.2), (0.25, 0.35), (0.3, 0.4), POSITIVE),  # together beats groups and alone
        ((0.1, 0.2), (0.15, 0.25), (0.19, 0.3), UNCLEAR),  # overlapping intervals
        ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4), UNCLEAR),  # touching is not separating
        # together beats alone but overlaps the groups: the old rule said positive transfer,
        # and since alone is far above both, "no clear difference" could never occur
        ((0.1, 0.2), (0.15, 0.25), (0.3, 0.4), UNCLEAR),
        ((0.1, 0.2), (0.25, 0.35), (0.15, 0.3), UNCLEAR),  # beats the groups, overlaps alone
        # measured lessons (seed 60, conflict 0.05 / 0.15 / 0.25: the knob's crossing)
        ((0.1139, 0.1169), (0.1224, 0.1252), (0.1606, 0.1644), POSITIVE),
        ((0.1252, 0.1281), (0.1239, 0.1271), (0.1609, 0.1675), UNCLEAR),
        ((0.1483, 0.1513), (0.1256, 0.1288), (0.1629, 0.1717), NEGATIVE),
    ],
)
def test_verdict_only_when_intervals_separate(tog, grp, sgl, expected):
    assert verdict({"together": _iv(*tog), "groups": _iv(*grp), "single": _iv(*sgl)}) == expected


def test_positive_transfer_needs_the_groups_interval():
    """While the grouped run has no loss yet, beating each-alone is no verdict (the groups
    may still match together); losing to each-alone is negative transfer already."""
    tog, sgl = _iv(0.1, 0.2), _iv(0.3, 0.4)
    assert verdict({"together": tog, "single": sgl}) == UNCLEAR
    assert verdict({"together": sgl, "single": tog}) == NEGATIVE
    assert verdict({"groups": tog, "single": sgl}) == UNCLEAR


def test_verdict_without_intervals_is_unclear():
    single_run = {
        k: interval([v]) for k, v in (("together", 0.9), ("groups", 0.1), ("single", 0.2))
    }
    assert verdict(single_run) == UNCLEAR


def test_replica_losses_and_task_intervals_from_a_metrics_frame():
    rows = [
        (10, "t0", "test", "loss:r0", 1.0),
        (10, "t0", "test", "loss:r1", 3.0),
        (20, "t0", "test", "loss:r0", 2.0),
        (20, "t0", "test", "loss:r1", 4.0),
        (20, "t1", "test", "loss:r0", 0.0),
        (20, "t1", "test", "loss:r1", 2.0),
        (20, "t0", "test", "loss", 3.0),
        (20, "t0", "val", "loss:r0", 9.0),
    ]
    df = pd.DataFrame(rows, columns=["step", "task", "split", "metric", "value"])
    per = replica_losses(df)
    assert per == {0: {"t0": 2.0, "t1": 0.0}, 1: {"t0": 4.0, "t1": 2.0}}
    overall, tasks = loss_intervals(per)
    assert overall.mean == 2.0 and tasks["t0"].mean == 3.0 and tasks["t1"].mean == 1.0
    assert replica_losses(df[df["metric"] == "loss"]) == {}


def test_block_means_inside_and_across_groups():
    A = np.array([[9, 1, -2], [1, 9, -4], [-2, -4, 9]], dtype=float)
    within, cross = block_means(A, ["a", "b", "c"], [["a", "b"], ["c"]])
    assert within == 1.0 and cross == -3.0


def _result(conflict: float, tog, grp, sgl, cross: float, tag=None) -> LessonResult:
    planted = canonical_grouping([["t0", "t1"], ["t2", "t3"]])
    return LessonResult(
        conflict=conflict,
        seed=3,
        seconds=1.23456,
        loss={"together": _iv(*tog), "groups": _iv(*grp), "single": _iv(*sgl)},
        within=0.01,
        cross=cross,
        planted=planted,
        tag_groups=canonical_grouping(tag) if tag else planted,
    )


def test_json_object_has_exactly_the_documented_keys():
    out = _result(1.0, (0.5, 0.6), (0.1, 0.2), (0.15, 0.25), -0.006).to_json()
    assert list(out) == [
        "conflict",
        "seed",
        "seconds",
        "loss",
        "affinity",
        "tag_groups",
        "planted",
        "verdict",
        "stopped",
    ]
    assert list(out["loss"]) == ["together", "groups", "single"]
    assert out["loss"]["together"] == {"mean": 0.55, "low": 0.5, "high": 0.6}
    assert out["affinity"] == {"within": 0.01, "cross": -0.006}
    assert out["tag_groups"] == out["planted"] == [["t0", "t1"], ["t2", "t3"]]
    assert out["verdict"] == NEGATIVE and out["seconds"] == 1.235
    assert out["stopped"] is False
    json.dumps(out, allow_nan=False)


def test_intended_picture_at_each_end():
    assert intended_picture(_result(1.0, (0.5, 0.6), (0.1, 0.2), (0.15, 0.25), -0.01))
    wrong_groups = _result(
        1.0, (0.5, 0.6), (0.1, 0.2), (0.15, 0.25), -0.01, tag=[["t0", "t2"], ["t1", "t3"]]
    )
    assert not intended_picture(wrong_groups)
    assert not intended_picture(_result(1.0, (0.5, 0.6), (0.1, 0.2), (0.15, 0.25), 0.01))
    assert intended_picture(_result(0.0, (0.1, 0.2), (0.25, 0.35), (0.3, 0.4), 0.004))
    # at 0 together must beat the groups too, not only each task alone
    assert not intended_picture(_result(0.0, (0.1, 0.2), (0.15, 0.25), (0.3, 0.4), 0.004))
    assert not intended_picture(_result(0.0, (0.1, 0.2), (0.15, 0.25), (0.19, 0.3), 0.004))
    assert intended_picture(_result(0.5, (0.1, 0.2), (0.15, 0.25), (0.3, 0.4), 0.0)) is None


def test_cli_lesson_json_prints_one_object(monkeypatch, capsys):
    import mtl_core.lesson.headless as headless

    seen = {}

    def fake(conflict, seed, **kw):
        seen.update(conflict=conflict, seed=seed)
        return _result(conflict, (0.5, 0.6), (0.1, 0.2), (0.15, 0.25), -0.01)

    monkeypatch.setattr(headless, "run_lesson", fake)
    assert cli.main(["lesson", "--conflict", "1", "--seed", "7", "--json"]) == 0
    out = capsys.readouterr().out
    assert seen == {"conflict": 1.0, "seed": 7}
    assert json.loads(out)["verdict"] == NEGATIVE and len(out.strip().splitlines()) == 1
    assert cli.main(["lesson", "--conflict", "1"]) == 0
    text = capsys.readouterr().out
    assert "verdict: negative transfer" in text and "the planted clusters" in text


def test_cli_lesson_rejects_a_conflict_out_of_range(capsys):
    assert cli.main(["lesson", "--conflict", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --conflict must be between 0 and 1") and err.count("\n") == 1


def test_run_lesson_end_to_end_small():
    from mtl_core.lesson.headless import run_lesson

    res = run_lesson(1.0, 2, steps=30, replicas=3, knobs={"samples": 200})
    out = res.to_json()
    assert out["seed"] == 2 and out["planted"] == [["t0", "t1", "t2"], ["t3", "t4", "t5"]]
    assert all(
        out["loss"][k]["low"] <= out["loss"][k]["mean"] <= out["loss"][k]["high"]
        for k in ("together", "groups", "single")
    )
    assert res.affinity_matrix.shape == (6, 6) and out["verdict"] in (NEGATIVE, POSITIVE, UNCLEAR)


@pytest.mark.parametrize("fired", [False, True])
def test_lesson_json_says_whether_tags_safety_stop_fired(monkeypatch, fired):
    """``"stopped"`` travels from phase 2's selection (the grouped run's note) through the
    lesson's state to ``lesson --json``: True exactly when TAG's wall-clock stop fired."""
    from mtl_core.lesson import workflow
    from mtl_core.lesson.headless import run_lesson
    from tests.helpers.app_fixtures import fake_train

    real = workflow.select_groups
    calls = []

    def select(*a, **kw):
        groups, value, stopped = real(*a, **kw)
        calls.append(stopped)
        return groups, value, fired

    monkeypatch.setattr(workflow, "select_groups", select)
    out = run_lesson(1.0, 0, steps=20, replicas=2, train=fake_train).to_json()
    assert calls == [False]  # the real search on the fake run's 6 tasks ends by its work budget
    assert out["stopped"] is fired
    assert len(out["tag_groups"]) == 2


def test_cli_lesson_json_carries_stopped(monkeypatch, capsys):
    import dataclasses

    import mtl_core.lesson.headless as headless

    res = dataclasses.replace(
        _result(1.0, (0.5, 0.6), (0.1, 0.2), (0.15, 0.25), -0.01), stopped=True
    )
    monkeypatch.setattr(headless, "run_lesson", lambda *a, **kw: res)
    assert cli.main(["lesson", "--conflict", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stopped"] is True
