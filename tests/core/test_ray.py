"""Experiments on Ray, for real: a local Ray head on 127.0.0.1 (one per session, see
``ray_cluster`` in conftest), the same seeded sweep on the local process pool and on Ray
(identical numbers), the CLI with ``RAY_ADDRESS``, failed jobs, and no Ray import when Ray
is not configured. The runner's tests on Ray are in test_runner.py (``backend``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mtl_core.experiments import (
    EvalSpec,
    JobFailure,
    LocalProcessExecutor,
    RayExecutor,
    evaluate,
    map_jobs,
)
from mtl_core.runner.ray_cluster import run_resources
from tests.helpers.runner_fakes import job_assigned, job_fail_some  # Ray workers import these

pytestmark = pytest.mark.slow  # CLI subprocesses; the cluster tests are also marked ray

ROOT = Path(__file__).resolve().parents[2]
TINY = {"tasks": 3, "samples": 150}


def _spec() -> EvalSpec:
    return EvalSpec.for_scenario(
        "synthetic", TINY, 2, seeds=1, steps=3, random_groupings=0, device="cpu", threads=1
    )


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


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mtl_core", "evaluate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_run_resources_ask_for_a_gpu_only_when_the_run_wants_cuda():
    cfg = lambda device: {"train": {"device": device}}  # noqa: E731
    assert run_resources(cfg("cuda"), 0) == {"num_cpus": 1.0, "num_gpus": 1.0}
    assert run_resources(cfg("auto"), 2) == {"num_cpus": 1.0, "num_gpus": 1.0}
    assert run_resources(cfg("auto"), 0)["num_gpus"] == 0.0
    assert run_resources(cfg("cpu"), 4, cpus=2) == {"num_cpus": 2.0, "num_gpus": 0.0}
    assert run_resources(None, 0)["num_gpus"] == 0.0


def test_nothing_imports_ray_unless_asked(tmp_path):
    code = (
        "import sys\n"
        "import mtl_core.commands.cli, mtl_core.experiments, mtl_core.commands.evaluate\n"
        "from mtl_core.runner import Runner\n"
        f"r = Runner({str(tmp_path / 's.sqlite')!r}, start=False)\n"
        "assert not r.on_ray\n"
        "print('ray' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MTL_LAB_RAY_ADDRESS", "RAY_ADDRESS")}
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(ROOT),
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert r.stdout.strip() == "False", r.stderr


def test_cli_says_when_the_cluster_cannot_be_reached(tmp_path):
    pytest.importorskip("ray")
    from tests.helpers.ray_cluster import free_port

    r = _cli(
        "--scenario",
        "synthetic",
        "--k",
        "2",
        "--executor",
        "ray",
        "--ray-address",
        f"127.0.0.1:{free_port()}",
        "--out",
        str(tmp_path / "x.json"),
    )
    assert r.returncode == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: could not connect to the Ray cluster at 127.0.0.1:")
    r = _cli(
        "--scenario",
        "synthetic",
        "--k",
        "2",
        "--ray-address",
        "127.0.0.1:1",
        "--out",
        str(tmp_path / "x.json"),
    )
    assert r.returncode == 2 and "--ray-address needs --executor ray" in r.stderr


@pytest.mark.ray
def test_each_job_is_a_ray_task_with_its_resources_and_failures_are_reported(ray_cluster):
    with RayExecutor(ray_cluster, max_retries=0) as ex:
        assert ex.cluster_cpus() == 2.0
        (res,) = map_jobs(ex, job_assigned, [None])
        assert res == {"CPU": 1.0}  # one CPU, no GPU: the job did not ask for CUDA
        seen = []
        out = map_jobs(
            ex, job_fail_some, [1, 2, 3, 4, 5], keep_going=True, on_done=lambda i, r: seen.append(i)
        )
    assert sorted(seen) == [0, 1, 2, 3, 4]  # progress for every job, failed ones too
    assert out[:2] == [10, 20] and out[4] == 50  # the sweep went on
    assert out[2] == JobFailure("3", "three is not allowed", out[2].detail)
    assert isinstance(out[3], JobFailure) and "Worker" in out[3].reason, out[3]


@pytest.mark.ray
def test_same_sweep_same_numbers_on_ray_and_local_processes(ray_cluster, tmp_path):
    spec = _spec()
    said: list[str] = []
    with LocalProcessExecutor(1) as ex:
        local = evaluate(spec, ex, on_progress=said.append)
    messages: list[str] = []
    with RayExecutor(ray_cluster) as ex:
        on_ray = evaluate(spec, ex, on_progress=messages.append)
    assert _without_timings(on_ray) == _without_timings(local)
    assert on_ray["failures"] == [] and on_ray["approaches"]["tag"]["runs"] == 1
    # the same plan on both (co-training + random + HOA's pair runs)
    plan = re.fullmatch(r"phase 1: (\d+) training runs", messages[0])
    assert messages[0] == said[0] and plan
    n = int(plan.group(1))
    names = sorted(m.split("] ")[1].split(" (")[0] for m in messages[1 : 1 + n])
    assert {"cotrain/seed0", "single/seed0", "together/seed0"} <= set(names)
    assert len(names) == n and sum(x.startswith("hoa/seed0/") for x in names) == n - 3
    # the CLI, pointed at the cluster by RAY_ADDRESS, gives the same report
    out = tmp_path / "eval.json"
    r = _cli(
        "--scenario",
        "synthetic",
        "--set",
        "tasks=3",
        "--set",
        "samples=150",
        "--k",
        "2",
        "--seeds",
        "1",
        "--steps",
        "3",
        "--random",
        "0",
        "--device",
        "cpu",
        "--executor",
        "ray",
        "--out",
        str(out),
        env={"RAY_ADDRESS": ray_cluster},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[phase 2 3/3]" in r.stderr and "TAG vs all together" in r.stdout
    assert _without_timings(json.loads(out.read_text())) == _without_timings(
        json.loads(json.dumps(local))
    )
