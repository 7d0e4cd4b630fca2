"""A training run that fails does not stop a ground-truth sweep: it is reported with its
reason (progress line, report, table) and everything else is still compared; only a phase
in which every run fails stops the sweep. The same for any executor (``keep_going``)."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import os

import pytest

from mtl_core.errors import LabError
from mtl_core.experiments import (
    EvalSpec,
    JobFailure,
    SerialExecutor,
    evaluate,
    format_report,
    map_jobs,
    write_report,
)

TINY = {"tasks": 3, "samples": 150}


def _spec(**kw) -> EvalSpec:
    base = dict(seeds=2, steps=3, random_groupings=1, device="cpu", threads=1)
    return EvalSpec.for_scenario("synthetic", TINY, kw.pop("k", 2), **{**base, **kw})


class Poisoning(SerialExecutor):
    """Runs jobs in-process, but the jobs whose label starts with one of ``poison`` get a
    config the lab cannot train (an unknown scenario): they fail inside the job."""

    def __init__(self, *poison: str) -> None:
        self.poison = poison

    def map(self, fn, jobs, on_done=None):
        bad = {"scenario": "no-such-scenario"}
        jobs = [
            dataclasses.replace(j, config=bad) if j.label.startswith(self.poison) else j
            for j in jobs
        ]
        return super().map(fn, jobs, on_done)


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise LabError("three is not allowed")
    if x == 4:
        raise ZeroDivisionError("four\nsecond line")
    return x


def _die_on_three(x: int) -> int:
    if x == 3:
        os._exit(9)  # the worker process dies without a word
    return x


def test_keep_going_returns_failures_in_place_for_every_kind_of_executor():
    want = [
        1,
        2,
        JobFailure("3", "three is not allowed"),
        JobFailure("4", "ZeroDivisionError: four"),
        5,
    ]
    seen = []
    out = map_jobs(
        SerialExecutor(),
        _fail_on_three,
        [1, 2, 3, 4, 5],
        on_done=lambda i, r: seen.append(i),
        keep_going=True,
    )
    assert [r if isinstance(r, int) else (r.label, r.reason) for r in out] == [
        r if isinstance(r, int) else (r.label, r.reason) for r in want
    ]
    assert seen == [0, 1, 2, 3, 4] and "Traceback" in out[2].detail
    with cf.ThreadPoolExecutor(2) as pool:
        out2 = map_jobs(pool, _fail_on_three, [1, 2, 3, 4, 5], keep_going=True)
    assert [getattr(r, "reason", r) for r in out2] == [getattr(r, "reason", r) for r in out]


@pytest.mark.slow
def test_keep_going_reports_a_worker_process_that_died():
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        out = map_jobs(pool, _die_on_three, [3], keep_going=True)
    assert isinstance(out[0], JobFailure) and "BrokenProcessPool" in out[0].reason


def test_a_failed_run_is_reported_and_the_sweep_goes_on(tmp_path):
    spec = _spec()
    messages: list[str] = []
    rep = evaluate(spec, Poisoning("random/seed1/", "cotrain/seed0"), on_progress=messages.append)
    failed = [(f["phase"], f["label"]) for f in rep["failures"]]
    assert failed == [("phase 1", "cotrain/seed0"), ("phase 1", "random/seed1/0")]
    assert all("no-such-scenario" in f["reason"] for f in rep["failures"])
    assert "[phase 1 1/14] cotrain/seed0 failed: " in messages[1]
    # seed 0 has no co-training affinity: no TAG (nor capacity-matched) run, no prediction;
    # HOA needs only its pair runs
    by = {(r["approach"], r["seed"]) for r in rep["runs"]}
    assert by == {
        ("hoa", 0),
        ("hoa", 1),
        ("tag", 1),
        ("together_capacity", 1),
        ("together", 0),
        ("together", 1),
        ("single", 0),
        ("single", 1),
        ("random", 0),
    }
    assert rep["approaches"]["tag"]["runs"] == 1 and rep["approaches"]["random"]["runs"] == 1
    assert [r["predicted_value"] for r in rep["runs"] if r["seed"] == 0] == [None] * 4
    assert set(rep["comparison"]) >= {"tag_vs_together", "tag_vs_single", "tag_vs_random"}
    table = format_report(rep)
    assert "2 training run(s) failed and are left out:" in table
    assert "  random/seed1/0: " in table and "TAG vs all together" in table
    write_report(rep, tmp_path / "r.csv")  # the rows still write


def test_a_failed_pair_run_leaves_out_hoa_of_that_seed_only():
    rep = evaluate(_spec(random_groupings=0), Poisoning("hoa/seed0/t0,t1|"))
    assert [f["label"] for f in rep["failures"]] == ["hoa/seed0/t0,t1|t2"]
    hoa = [r["seed"] for r in rep["runs"] if r["approach"] == "hoa"]
    assert hoa == [1] and "tag" in rep["approaches"]


def test_exhaustive_leaves_out_a_seed_with_a_failed_candidate():
    rep = evaluate(
        _spec(seeds=1, exhaustive=True, random_groupings=0), Poisoning("exhaustive/seed0/t0,t1|")
    )
    assert [f["label"] for f in rep["failures"]] == ["exhaustive/seed0/t0,t1|t2"]
    assert "exhaustive" not in rep["approaches"] and "tag" in rep["approaches"]
    assert rep["spearman"]["exhaustive_partitions_mean"] is None


def test_a_phase_where_every_run_failed_stops_the_sweep():
    with pytest.raises(
        LabError, match="phase 1: all 14 training runs failed; the first: .*no-such-scenario"
    ):
        evaluate(_spec(), Poisoning(""))
    with pytest.raises(LabError, match="every co-training run failed"):
        evaluate(_spec(), Poisoning("cotrain"))
