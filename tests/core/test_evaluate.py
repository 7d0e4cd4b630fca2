"""Ground-truth evaluation: the sweep's structure, capacity matching, executors, CLI contract.

Runs are tiny (a few steps on a few hundred samples): these tests check the plumbing and the
bookkeeping, not which grouping wins (bench/docs report that on real settings).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from mtl_core.config import default_model_config
from mtl_core.errors import LabError
from mtl_core.experiments import (
    EvalSpec,
    LocalProcessExecutor,
    SerialExecutor,
    TrainJob,
    candidate_jobs,
    capacity_matched,
    evaluate,
    format_report,
    run_job,
    write_report,
)
from mtl_core.grouping import TAGGrouper, tag_value

KNOBS = {"tasks": 4, "clusters": 2, "samples": 200}


def _spec(**kw):
    from mtl_core.scenarios import get_scenario, resolve_knobs

    knobs = resolve_knobs(get_scenario("synthetic"), {**KNOBS, **kw.pop("knobs", {})})
    base = dict(
        scenario="synthetic",
        knobs=knobs,
        tasks=tuple(f"t{i}" for i in range(knobs["tasks"])),
        k=2,
        seeds=2,
        steps=4,
        random_groupings=2,
        device="cpu",
        model=default_model_config("synthetic"),
        threads=1,
    )
    base.update(kw)
    return EvalSpec(**base)


class CountingExecutor(SerialExecutor):
    """A stand-in for a distributed engine: sees every job."""

    def __init__(self):
        self.labels = []

    def map(self, fn, jobs, on_done=None):
        self.labels += [j.label for j in jobs]
        return super().map(fn, jobs, on_done)


@pytest.fixture(scope="module")
def report():
    ex = CountingExecutor()
    rep = evaluate(_spec(exhaustive=True), ex)
    rep["_labels"] = ex.labels
    return rep


def test_every_approach_is_reported_per_seed(report):
    a = report["approaches"]
    assert list(a) == [
        "tag",
        "hoa",
        "exhaustive",
        "together",
        "together_capacity",
        "single",
        "random",
    ]
    assert a["random"]["runs"] == 4 and all(a[k]["runs"] == 2 for k in a if k != "random")
    tasks = report["spec"]["tasks"]
    for r in report["runs"]:
        assert set(r["test_loss"]) == set(tasks)
        assert r["total_test_loss"] == pytest.approx(sum(r["test_loss"].values()))
        covered = {t for g in r["grouping"] for t in g}
        assert covered == set(tasks)
        A = np.asarray(report["affinity"][str(r["seed"])])
        assert r["predicted_value"] == pytest.approx(tag_value(A, tasks, r["grouping"]))
    assert all(np.isfinite(v["total_test_loss"]["mean"]) for v in a.values())


def test_tag_groups_are_the_exact_selection_on_the_cotraining_affinity(report):
    tasks = report["spec"]["tasks"]
    for r in report["runs"]:
        if r["approach"] != "tag":
            continue
        A = np.asarray(report["affinity"][str(r["seed"])])
        best = TAGGrouper(2).fit(A, tasks)
        assert r["predicted_value"] == pytest.approx(best.score_)
        assert len(r["grouping"]) <= 2 and all(len(g) >= 2 for g in r["grouping"])
        b = r["breakdown"]
        assert r["seconds"] == pytest.approx(b["cotrain"] + b["select"] + b["train"])
        assert r["stopped"] is best.stopped_ is False  # exact DP, far inside its safety stop


def test_hoa_groups_are_the_exact_selection_on_the_pair_networks(report):
    from mtl_core.experiments.hoa import hoa_select

    tasks = report["spec"]["tasks"]
    for s in range(2):
        ex = next(r for r in report["runs"] if r["approach"] == "exhaustive" and r["seed"] == s)
        pairs = {frozenset(n["tasks"]): n["val"] for n in ex["networks"] if len(n["tasks"]) == 2}
        want, pred, _ = hoa_select(tasks, pairs, 2)
        hoa = next(r for r in report["runs"] if r["approach"] == "hoa" and r["seed"] == s)
        assert sorted(map(sorted, hoa["grouping"])) == sorted(map(sorted, want))
        assert hoa["hoa_predicted_val_loss"] == pytest.approx(pred)
        b = hoa["breakdown"]
        assert hoa["seconds"] == pytest.approx(b["pairs"] + b["select"] + b["train"])
        assert "hoa_from_candidates" in ex
    vs = report["versus_random"]
    assert set(vs) == {"tag", "hoa"} and vs["tag"]["pairs"] == 4
    text = format_report(report)
    assert "HOA beat" in text and report["spearman"]["explained"] in text


def test_hoa_without_exhaustive_trains_the_pairs():
    ex = CountingExecutor()
    rep = evaluate(_spec(seeds=1, random_groupings=1), ex)
    pair_runs = [lab for lab in ex.labels if lab.startswith("hoa/seed0/")]
    assert len(pair_runs) == 3  # {t0,t1}|{t2,t3}, {t0,t2}|{t1,t3}, {t0,t3}|{t1,t2}
    assert "hoa/seed0" in ex.labels  # the chosen groups, trained in phase 2
    hoa = next(r for r in rep["runs"] if r["approach"] == "hoa")
    assert len(hoa["grouping"]) <= 2 and all(len(g) >= 2 for g in hoa["grouping"])


def test_capacity_matched_network_has_the_grouped_parameter_count(report):
    for s in range(2):
        tag = next(r for r in report["runs"] if r["approach"] == "tag" and r["seed"] == s)
        cap = next(
            r for r in report["runs"] if r["approach"] == "together_capacity" and r["seed"] == s
        )
        tog = next(r for r in report["runs"] if r["approach"] == "together" and r["seed"] == s)
        assert cap["parameters"] > tog["parameters"]
        assert abs(cap["parameters"] - tag["parameters"]) / tag["parameters"] < 0.02


def test_exhaustive_trains_every_candidate_once_and_picks_within_budget(report):
    spec = _spec(exhaustive=True)
    jobs = candidate_jobs(spec, 0)
    trained = [m for masks, _ in jobs for m in masks if bin(m).count("1") >= 2]
    assert sorted(trained) == [m for m in range(1, 16) if bin(m).count("1") >= 2]
    # 11 candidates in 8 runs: pairs {t0,t1}|{t2,t3} (3), triples with their complement (4),
    # and {all} alone (1).
    assert len(jobs) == 8
    ex = [r for r in report["runs"] if r["approach"] == "exhaustive"]
    assert all(len(r["grouping"]) <= 2 and all(len(g) >= 2 for g in r["grouping"]) for r in ex)
    assert all(r["candidates"] >= 11 for r in ex)
    c = report["comparison"]
    assert {"tag_over_exhaustive", "tag_time_fraction_of_exhaustive"} <= set(c)
    labels = report["_labels"]
    assert sum(lab.startswith("exhaustive/") for lab in labels) == 2 * len(jobs)
    assert sum(lab.startswith("cotrain/") for lab in labels) == 2


def test_report_files_and_table(report, tmp_path):
    text = format_report(report)
    for name in ("TAG groups", "exhaustive best", "capacity-matched", "random groups (x4)"):
        assert name in text
    p = write_report(report, tmp_path / "r.json")
    assert json.loads(p.read_text())["approaches"]["tag"]["runs"] == 2
    rows = list(csv.DictReader(open(write_report(report, tmp_path / "r.csv"))))
    assert len(rows) == len(report["runs"]) * 4
    with pytest.raises(LabError, match=r"\.json or \.csv"):
        write_report(report, tmp_path / "r.txt")


def test_capacity_matching_scales_the_trunk():
    from mtl_core.config import RunConfig
    from mtl_core.train.models import MultiTaskNet, count_parameters

    cfg = RunConfig(
        scenario="synthetic", knobs=dict(KNOBS), model=default_model_config("synthetic")
    )
    groups = (("t0", "t1"), ("t2", "t3"), ("t0", "t2"))
    m = capacity_matched(cfg, groups).model
    target = sum(count_parameters(MultiTaskNet(list(g), (16,), cfg.model)) for g in groups)
    got = count_parameters(MultiTaskNet(["t0", "t1", "t2", "t3"], (16,), m))
    assert abs(got - target) / target < 0.02
    assert all(h > h0 for h, h0 in zip(m.hidden, cfg.model.hidden))


@pytest.mark.slow
def test_local_process_executor_runs_jobs_in_spawned_workers():
    spec = _spec()
    job = TrainJob("t", spec.run_config("t", "together", 0).to_dict(), threads=1)
    with LocalProcessExecutor(1) as ex:
        seen = []
        (res,) = ex.map(run_job, [job], on_done=lambda i, r: seen.append(i))
    assert seen == [0] and set(res.test) == set(spec.tasks)
    assert res.test == run_job(job).test  # same seed, same result as in-process


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"k": 0}, "--k must be >= 1"),
        ({"seeds": 0}, "--seeds"),
        ({"exhaustive": True, "knobs": {"tasks": 9}}, "limited to 8 tasks"),
    ],
)
def test_spec_errors(kw, message):
    with pytest.raises(LabError, match=message):
        _spec(**kw).check()


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "mtl_core", "evaluate", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_runs_and_writes_report(tmp_path):
    out = tmp_path / "eval.json"
    r = _cli(
        "--scenario",
        "synthetic",
        "--set",
        "tasks=3",
        "--set",
        "samples=150",
        "--k",
        "1",
        "--seeds",
        "1",
        "--steps",
        "3",
        "--random",
        "1",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "TAG vs all together" in r.stdout
    rep = json.loads(out.read_text())
    assert rep["approaches"]["tag"]["groupings"] == [[["t0", "t1", "t2"]]]  # k=1: all together


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["--k", "0"], "--k must be >= 1"),
        (["--k", "2", "--exhaustive", "--set", "tasks=9"], "limited to 8 tasks"),
        (["--k", "2", "--set", "colour=red"], "unknown knob"),
    ],
)
def test_cli_errors_exit_2(tmp_path, args, message):
    r = _cli("--scenario", "synthetic", *args, "--out", str(tmp_path / "x.json"))
    assert r.returncode == 2 and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_evaluate_imports_without_torch():
    code = (
        "import sys, mtl_core.experiments, mtl_core.experiments.background, "
        "mtl_core.commands.evaluate;"
        "print('torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr
