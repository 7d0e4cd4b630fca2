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
    differences,
    intended_picture,
    interval,
    loss_intervals,
    overlap_verdict,
    replica_losses,
    replica_means,
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
    "d_grp,d_sgl,expected",
    [
        ((0.1, 0.2), (0.05, 0.15), NEGATIVE),  # groups beat together
        ((-0.05, 0.05), (0.01, 0.02), NEGATIVE),  # alone beats together: the second way to lose
        ((-0.2, -0.1), (-0.3, -0.2), POSITIVE),  # together beats groups and alone
        ((-0.2, -0.1), None, POSITIVE),  # no each-alone run: the groups decide
        ((-0.01, 0.01), (-0.3, -0.2), UNCLEAR),  # together minus groups covers 0
        ((-0.1, 0.0), (-0.3, -0.2), UNCLEAR),  # touching 0 is not clear of it
        ((-0.2, -0.1), (-0.05, 0.05), UNCLEAR),  # beats the groups, not clearly alone
        (None, (-0.3, -0.2), UNCLEAR),  # no grouped run yet: beating alone is no verdict
        (None, (0.2, 0.3), NEGATIVE),  # ... but losing to alone already is
        ((math.nan, math.nan), (math.nan, math.nan), UNCLEAR),  # one replica: no interval
    ],
)
def test_verdict_from_the_paired_differences(d_grp, d_sgl, expected):
    diff = {k: _iv(*v) for k, v in (("groups", d_grp), ("single", d_sgl)) if v is not None}
    assert verdict(diff) == expected


def test_differences_pair_the_replicas_and_take_the_t_interval():
    """Replica r of each approach is paired with the same r only (shared data order)."""
    tog = {0: 0.30, 1: 0.32, 2: 0.34, 3: 0.36}
    grp = {0: 0.31, 1: 0.335, 2: 0.35, 3: 0.375}
    d = differences({"together": tog, "groups": grp, "single": {1: 0.5, 3: 0.4, 7: 9.0}})
    # d_r = -0.010, -0.015, -0.010, -0.015: mean -0.0125, sd 0.0028868, t(0.975, 3) 3.18245
    assert d["groups"].n == 4 and d["groups"].mean == pytest.approx(-0.0125)
    assert d["groups"].low == pytest.approx(-0.0125 - 0.0045935, abs=1e-7)
    assert d["groups"].high == pytest.approx(-0.0125 + 0.0045935, abs=1e-7)
    # single shares replicas 1 and 3 only: d = -0.18, -0.04
    assert d["single"].n == 2 and d["single"].mean == pytest.approx(-0.11)
    assert differences({"groups": grp}) == {} and "single" not in differences({"together": tog})


def test_paired_rule_sees_a_difference_the_overlap_rule_cannot():
    """Together's and the groups' own intervals overlap widely (replica spread 0.02), but
    every pair differs by 0.010-0.015: the paired test says positive transfer, the old
    non-overlap rule "no clear difference" (Schenker & Gentleman 2001)."""
    tog = {0: 0.30, 1: 0.32, 2: 0.34, 3: 0.36}
    grp = {0: 0.31, 1: 0.335, 2: 0.35, 3: 0.375}
    sgl = {r: v + 0.1 for r, v in tog.items()}
    replicas = {"together": tog, "groups": grp, "single": sgl}
    loss = {k: interval(v.values()) for k, v in replicas.items()}
    assert not loss["groups"].above(loss["together"])  # the intervals overlap
    assert overlap_verdict(loss) == UNCLEAR
    assert verdict(differences(replicas)) == POSITIVE
    # and the other way round: a wide paired spread with well-separated own intervals
    noisy = {0: 0.20, 1: 0.40, 2: 0.20, 3: 0.40}
    wide = {"together": {r: 0.3 for r in range(4)}, "groups": noisy}
    assert verdict(differences(wide)) == UNCLEAR


@pytest.mark.parametrize(
    "tog,grp,sgl,expected",
    [
        ((0.5, 0.6), (0.1, 0.2), (0.15, 0.25), NEGATIVE),  # groups beat together
        ((0.3, 0.4), (0.35, 0.45), (0.1, 0.2), NEGATIVE),  # alone beats together
        ((0.1, 0.2), (0.25, 0.35), (0.3, 0.4), POSITIVE),  # together beats groups and alone
        ((0.1, 0.2), (0.15, 0.25), (0.19, 0.3), UNCLEAR),  # overlapping intervals
        ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4), UNCLEAR),  # touching is not separating
        ((0.1, 0.2), (0.15, 0.25), (0.3, 0.4), UNCLEAR),  # beats alone, overlaps the groups
    ],
)
def test_overlap_verdict_is_the_old_rule(tog, grp, sgl, expected):
    loss = {"together": _iv(*tog), "groups": _iv(*grp), "single": _iv(*sgl)}
    assert overlap_verdict(loss) == expected


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


#: replica offsets around an approach's mean (shared by the approaches: a paired spread of 0)
_SPREAD = (-0.02, -0.01, 0.01, 0.02)


def _replicas(lo: float, hi: float, jitter: float = 0.0) -> dict[int, float]:
    mid = (lo + hi) / 2
    return {r: mid + o + (jitter if r % 2 else -jitter) for r, o in enumerate(_SPREAD)}


def _result(conflict: float, tog, grp, sgl, cross: float, tag=None, jitter=0.0) -> LessonResult:
    """A lesson whose approaches' losses sit at the middles of ``tog``/``grp``/``sgl``
    (intervals), four replicas each; ``jitter`` adds a paired spread to the groups and alone
    (alternating +-jitter per replica), so their paired differences get an interval."""
    planted = canonical_grouping([["t0", "t1"], ["t2", "t3"]])
    reps = {"together": _replicas(*tog), "groups": _replicas(*grp, jitter)}
    reps["single"] = _replicas(*sgl, jitter)
    return LessonResult(
        conflict=conflict,
        seed=3,
        seconds=1.23456,
        loss={"together": _iv(*tog), "groups": _iv(*grp), "single": _iv(*sgl)},
        within=0.01,
        cross=cross,
        planted=planted,
        tag_groups=canonical_grouping(tag) if tag else planted,
        replica_loss=reps,
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
        "difference",
    ]
    assert list(out["loss"]) == ["together", "groups", "single"]
    # together 0.55 minus groups 0.15 / alone 0.2 in every replica: no spread
    assert out["difference"]["groups"] == {
        "mean": pytest.approx(0.4),
        "low": pytest.approx(0.4),
        "high": pytest.approx(0.4),
    }
    assert out["difference"]["single"]["mean"] == pytest.approx(0.35)
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
    # together 0.15 against groups 0.175: paired differences -0.025 -+ 0.03 cover 0
    unclear = _result(0.0, (0.1, 0.2), (0.15, 0.2), (0.3, 0.4), 0.004, jitter=0.03)
    assert unclear.verdict == UNCLEAR and not intended_picture(unclear)
    # at 0 together must beat the groups, not only each task alone
    assert not intended_picture(_result(0.0, (0.1, 0.2), (0.05, 0.15), (0.3, 0.4), 0.004))
    assert intended_picture(_result(0.5, (0.1, 0.2), (0.15, 0.25), (0.3, 0.4), 0.0)) is None


def test_replica_means_average_each_replicas_tasks():
    assert replica_means({0: {"a": 1.0, "b": 3.0}, 2: {"a": 0.5}, 5: {}}) == {0: 2.0, 2: 0.5}


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
    # together 0.55 minus groups 0.15 and alone 0.2 in every replica
    assert "     groups: +0.4000  [+0.4000, +0.4000]" in text
    assert "     single: +0.3500  [+0.3500, +0.3500]" in text


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
