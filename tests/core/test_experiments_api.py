"""The experiments API beyond the sweep itself: any concurrent.futures.Executor is accepted,
specs round-trip as plain data, and a background evaluation reports progress, its report or
why it failed."""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import multiprocessing
import os
import signal
import time

import pytest

from mtl_core.errors import LabError
from mtl_core.experiments import EvalSpec, SerialExecutor, evaluate, map_jobs
from mtl_core.experiments import background as bg

TINY = {"tasks": 3, "samples": 150}


def _tiny_spec(**kw) -> EvalSpec:
    base = dict(seeds=1, steps=3, random_groupings=1, device="cpu", threads=1)
    return EvalSpec.for_scenario("synthetic", TINY, kw.pop("k", 2), **{**base, **kw})


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise LabError("three is not allowed")
    return x


@pytest.mark.slow
def test_map_jobs_takes_a_process_pool_and_reports_each_job():
    ctx = multiprocessing.get_context("spawn")
    seen = []
    with cf.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        out = map_jobs(pool, math.sqrt, [16, 9, 4], on_done=lambda i, r: seen.append((i, r)))
    assert out == [4.0, 3.0, 2.0]  # job order, whatever order they finished in
    assert sorted(seen) == [(0, 4.0), (1, 3.0), (2, 2.0)]


def test_map_jobs_reraises_a_jobs_error_and_refuses_non_executors():
    with cf.ThreadPoolExecutor(1) as pool, pytest.raises(LabError, match="three"):
        map_jobs(pool, _fail_on_three, [1, 2, 3, 4])
    with pytest.raises(LabError, match="three"):
        map_jobs(SerialExecutor(), _fail_on_three, [3])
    with pytest.raises(TypeError, match="not an executor"):
        map_jobs(object(), abs, [1])


def _without_timings(x):
    if isinstance(x, dict):
        return {
            k: _without_timings(v)
            for k, v in x.items()
            if k not in ("seconds", "breakdown", "tag_time_fraction_of_exhaustive")
        }
    if isinstance(x, list):
        return [_without_timings(v) for v in x]
    return x


def test_evaluate_with_a_standard_executor_matches_the_serial_one():
    spec = _tiny_spec()
    messages = []
    with cf.ThreadPoolExecutor(1) as pool:  # one thread: torch's global RNG stays in order
        via_futures = evaluate(spec, pool, on_progress=messages.append)
    serial = evaluate(spec, SerialExecutor())
    assert _without_timings(via_futures) == _without_timings(serial)
    # cotrain, together, single, 1 random, 3 pair runs for HOA (3 tasks: each pair + the rest)
    assert messages[0] == "phase 1: 7 training runs"
    assert messages[-1].startswith("[phase 2 3/3] ")  # HOA, TAG, capacity-matched


def test_spec_round_trips_as_json_and_builds_from_a_scenario():
    spec = _tiny_spec(hidden="8,4", cotrain_steps=5)
    assert spec.tasks == ("t0", "t1", "t2") and spec.knobs["samples"] == 150
    assert spec.model.hidden == (8, 4)
    again = EvalSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    cfg = spec.run_config("x", "groups", 1, groups=(frozenset({"t1", "t0"}), frozenset({"t2"})))
    assert cfg.train.groups == (("t0", "t1"), ("t2",)) and cfg.train.eval_every == 3
    assert cfg.model.hidden == (8, 4) and cfg.affinity.measure == "none" and cfg.name == "x"
    with pytest.raises(LabError, match="hidden widths"):
        _tiny_spec(hidden="8,x")
    with pytest.raises(LabError, match="unknown knob"):
        EvalSpec.for_scenario("synthetic", {"colour": "red"}, 2)


def test_spec_for_run_needs_a_trained_scenario():
    with pytest.raises(LabError, match="trained by the lab"):
        bg.spec_for_run({}, 2, 2)
    cfg = {"scenario": "synthetic", "knobs": TINY, "train": {"steps": 7}}
    spec = bg.spec_for_run(cfg, 1, 3, workers=1)
    assert (spec.k, spec.seeds, spec.steps, spec.threads) == (1, 3, 7, os.cpu_count() or 1)


def _wait(job: bg.BackgroundJob, timeout: float = 300) -> bg.JobState:
    end = time.monotonic() + timeout
    while (state := bg.poll(job)).status == "running":
        assert time.monotonic() < end, "background evaluation did not end"
        time.sleep(0.2)
    return state


@pytest.mark.slow
def test_background_evaluation_runs_the_in_process_api(tmp_path):
    spec = _tiny_spec(k=1)
    job = bg.start(spec, tmp_path / "job", workers=0)
    again = bg.BackgroundJob.from_dict(json.loads(json.dumps(job.to_dict())))
    state = _wait(again)
    assert state.status == "done", (state.error, (tmp_path / "job" / "log.txt").read_text())
    assert state.report["approaches"]["tag"]["groupings"] == [[["t0", "t1", "t2"]]]
    # phase 2 trains TAG's and HOA's groups and the together run at the capacity: 3 runs
    assert state.message.startswith("[phase 2 3/3]") and state.finished
    in_process = json.loads(json.dumps(evaluate(spec)))
    assert _without_timings(state.report) == _without_timings(in_process)


def test_background_failures_say_why(tmp_path):
    # a spec that passes its checks but cannot train: the scenario's file is missing
    spec = EvalSpec(
        scenario="csv",
        knobs={"path": str(tmp_path / "none.csv"), "targets": ["a", "b"]},
        tasks=("a", "b"),
        k=1,
        seeds=1,
        steps=2,
        random_groupings=0,
        device="cpu",
    )
    state = _wait(bg.start(spec, tmp_path / "bad", workers=0))
    assert state.status == "failed" and "none.csv" in state.error
    # a process killed before it could write an outcome
    job = bg.start(_tiny_spec(steps=500), tmp_path / "killed", workers=0)
    os.kill(job.pid, signal.SIGKILL)
    state = _wait(job, timeout=30)
    assert state.status == "failed" and "ended early" in state.error
    with pytest.raises(LabError, match="--k"):
        bg.start(_tiny_spec(k=0), tmp_path / "never")
    assert not (tmp_path / "never").exists()
