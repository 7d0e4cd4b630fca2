"""`select`'s other inputs: the lab's own `evaluate --exhaustive` report as a ground-truth table,
and `--affinity RUN_OR_MATRIX` (a matrix file or a store run, tasks matched by name) chosen by
TAG's rule (groups of 2+ tasks; at most k, or floor(B) under a budget) on the HOA case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.commands.cli import main
from mtl_core.errors import LabError
from mtl_core.experiments import write_report
from mtl_core.experiments.ground_truth import (
    JobBook,
    Phase1,
    RunRecords,
    TagSelection,
    record_exhaustive,
)
from mtl_core.experiments.jobs import JobResult
from mtl_core.experiments.report import REPORT_KIND, summarize
from mtl_core.groundtruth import report as gt_report
from mtl_core.groundtruth.compare import compare, public
from mtl_core.groundtruth.report import read_evaluate_report
from mtl_core.groundtruth.select import served_total
from mtl_core.groundtruth.tables import read_hoa
from mtl_core.runfile import METRIC_FRAME, ParsedRun, matrices_to_long
from mtl_core.store import Store

D = Path(__file__).resolve().parents[1] / "data" / "groundtruth"
TASKS = ["t0", "t1", "t2"]
# (val, test) losses per network and task, per seed; masks over TASKS (bit i = TASKS[i])
LOSSES = {
    0: {
        0b011: {"t0": (1.0, 1.1), "t1": (2.0, 2.1)},
        0b100: {"t2": (3.0, 3.1)},
        0b101: {"t0": (1.2, 1.3), "t2": (2.5, 2.6)},
        0b010: {"t1": (2.2, 2.3)},
        0b110: {"t1": (1.9, 2.5), "t2": (2.9, 3.0)},
        0b001: {"t0": (0.9, 1.4)},
        0b111: {"t0": (1.1, 1.2), "t1": (2.1, 2.0), "t2": (2.8, 2.9)},
    },
}
LOSSES[1] = {m: {t: (v + 0.2, w - 0.2) for t, (v, w) in c.items()} for m, c in LOSSES[0].items()}


def _report(tmp_path, seeds=(0, 1)):
    """A report written by evaluate's own recorder and writer from known candidate results."""
    from tests.core.test_evaluate import _spec

    spec = _spec(exhaustive=True, seeds=len(seeds), knobs={"tasks": 3})
    plan = Phase1(book=JobBook())
    records = RunRecords(TASKS, {})
    for s in seeds:
        plan.candidates[s] = []
        for i, (mask, cells) in enumerate(LOSSES[s].items()):
            key = ("candidate", s, i)
            plan.book.keys[key] = len(plan.book.results)
            plan.book.results.append(
                JobResult(
                    f"c{i}",
                    test={t: w for t, (_, w) in cells.items()},
                    val={t: v for t, (v, _) in cells.items()},
                    parameters=10,
                    seconds=0.5,
                )
            )
            plan.candidates[s].append(((mask,), key))
        record_exhaustive(spec, s, plan, TagSelection(), records)
    aff = {s: np.arange(9.0).reshape(3, 3) * 0.1 * (s + 1) for s in seeds}
    rep = summarize(spec, records.runs, aff, [None] * len(seeds))
    return write_report(rep, tmp_path / "r.json")


def test_report_kind_is_evaluates():
    assert gt_report.REPORT_KIND == REPORT_KIND


def test_evaluate_report_reads_as_val_and_test_tables(tmp_path):
    path = _report(tmp_path)
    one = read_evaluate_report(path, seed=0)
    assert one.selection.tasks == TASKS and len(one.selection.members) == 7
    j = one.selection.find((0, 2), 1.0)
    assert one.selection.values[j, 0] == 1.2 and one.scoring.values[j, 2] == 2.6
    assert np.isnan(one.selection.values[j, 1])
    both = read_evaluate_report(path)  # mean over seeds
    assert both.seeds == [0, 1]
    assert both.selection.values[j, 0] == pytest.approx(1.3)
    assert both.scoring.values[j, 0] == pytest.approx(1.2)
    tasks, A = both.affinity
    assert tasks == TASKS and A[0, 1] == pytest.approx(0.15)
    # k=1: the all-three network. k=2 on seed 0's val (lower is better): {t0,t1} + {t0,t2}
    # serves t0 by {t0,t1} (1.0), t1 2.0, t2 2.5 = 5.5, below e.g. {t0} + {t1,t2} = 5.7 and
    # {t0,t2} + {t1,t2} = 5.6; scored on test: 1.1 + 2.1 + 2.6
    doc = public(compare(one.selection, one.scoring, ks=[1, 2]))
    r1, r2 = doc["rows"]
    assert r1["optimal"]["networks"] == [TASKS]
    assert r1["optimal"]["selection"] == pytest.approx(1.1 + 2.1 + 2.8)
    assert r2["optimal"]["networks"] == [["t0", "t1"], ["t0", "t2"]]
    assert r2["optimal"]["selection"] == pytest.approx(5.5)
    assert r2["optimal"]["score"] == pytest.approx(1.1 + 2.1 + 2.6)


def test_evaluate_report_through_the_cli_uses_its_own_affinity(tmp_path, capsys):
    path = _report(tmp_path)
    assert main(["select", str(path), "--k", "2", "--report-seed", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["direction"] == "lower" and doc["tasks"] == TASKS
    row = doc["rows"][0]
    assert row["optimal"]["selection"] == pytest.approx(5.5 + 3 * 0.2)  # seed 1: val + 0.2
    assert "affinity" in row and all(len(n) >= 2 for n in row["affinity"]["networks"])
    assert doc["agreement"]["affinity"]["cells"] == 9  # 3 pairs x 2 + the triple's 3


def test_evaluate_report_errors_are_one_line(tmp_path, capsys):
    path = _report(tmp_path)
    with pytest.raises(LabError, match=r"no exhaustive results for seed 5 \(it has: 0, 1\)"):
        read_evaluate_report(path, seed=5)
    doc = json.loads(path.read_text())
    for r in doc["runs"]:
        r.pop("networks", None)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    with pytest.raises(LabError, match=r"older version\); rerun evaluate --exhaustive"):
        read_evaluate_report(old)
    doc["runs"] = [r for r in doc["runs"] if r["approach"] != "exhaustive"]
    old.write_text(json.dumps(doc))
    with pytest.raises(LabError, match="run evaluate with --exhaustive"):
        read_evaluate_report(old)
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "task-affinity-lab/evaluate", ')
    with pytest.raises(LabError, match=r"bad.json: not JSON \(line 1"):
        read_evaluate_report(bad)
    rc = main(["select", str(path), "--k", "2", "--tasks", "a,b,c"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--tasks does not apply" in err


# --- --affinity on HOA's case -------------------------------------------------------------

HOA = ["a", "b", "c", "d", "e"]
# a, b help each other; c, d, e help each other; across the two, hurt (rows = source)
CLUSTER = np.array([0, 0, 1, 1, 1])
AFF = np.where(CLUSTER[:, None] == CLUSTER[None, :], 1.0, -1.0)
np.fill_diagonal(AFF, 0.0)


def _matrix_file(tmp_path, order):
    idx = [HOA.index(t) for t in order]
    df = pd.DataFrame(AFF[np.ix_(idx, idx)], index=order, columns=order)
    p = tmp_path / "aff.csv"
    df.to_csv(p)
    return p


def _hoa_select(*extra):
    return [
        "select",
        str(D / "hoa_like_val.txt"),
        "--test",
        str(D / "hoa_like_test.txt"),
        "--tasks",
        ",".join(HOA),
        "--json",
        *extra,
    ]


def _check_tag_rows(doc):
    nets = {r.get("k", r.get("budget")): r["affinity"]["networks"] for r in doc["rows"]}
    assert nets[1] == [HOA]  # one network covering all five
    assert nets[2] == [["a", "b"], ["c", "d", "e"]]
    # budget 2.5: at most floor(2.5) = 2 full-size networks, never HOA's half-size singles
    if 2.5 in nets:
        assert nets[2.5] == nets[2]
    val, test = read_hoa(D / "hoa_like_val.txt"), read_hoa(D / "hoa_like_test.txt")
    row = next(r for r in doc["rows"] if r.get("k", r.get("budget")) == 2)
    ab, cde = val.find((0, 1), 1.0), val.find((2, 3, 4), 1.0)
    want_sel = np.nansum(val.values[ab, :2]) + np.nansum(val.values[cde, 2:])
    want_score = np.nansum(test.values[ab, :2]) + np.nansum(test.values[cde, 2:])
    assert row["affinity"]["selection"] == pytest.approx(want_sel)
    assert row["affinity"]["score"] == pytest.approx(want_score)


def test_affinity_matrix_file_matched_by_name(tmp_path, capsys):
    p = _matrix_file(tmp_path, ["e", "c", "a", "d", "b"])  # another order: matched by name
    assert main(_hoa_select("--budget", "1", "2", "2.5", "--affinity", str(p))) == 0
    doc = json.loads(capsys.readouterr().out)
    _check_tag_rows(doc)
    a = doc["agreement"]["affinity"]
    assert a["cells"] == 75  # every cell of the 26 networks of 2+ tasks: 10x2 + 10x3 + 5x4 + 5
    # the same correlation by hand: mean affinity onto a task from its network-mates, against
    # minus its test loss there (lower loss = better, affinity: higher = better)
    from scipy.stats import kendalltau, spearmanr

    test = read_hoa(D / "hoa_like_test.txt")
    pred, meas = [], []
    for j, mem in enumerate(test.members):
        if len(mem) >= 2:
            for i in mem:
                pred.append(np.mean([AFF[l_, i] for l_ in mem if l_ != i]))
                meas.append(-test.values[j, i])
    assert a["spearman"] == pytest.approx(spearmanr(pred, meas).statistic, abs=1e-12)
    assert a["kendall"] == pytest.approx(kendalltau(pred, meas).statistic, abs=1e-12)


def test_affinity_from_a_store_run(tmp_path, capsys):
    store = Store(tmp_path / "s.sqlite")
    steps = np.array([0, 1])
    mats = np.stack([AFF, AFF + 0.5 * (AFF != 0) * np.sign(AFF)])  # mean: +-1.25, ordering kept
    parsed = ParsedRun(
        tasks=HOA,
        task_types={t: "regression" for t in HOA},
        affinity=matrices_to_long(steps, HOA, mats, "lookahead"),
        metrics=pd.DataFrame(columns=METRIC_FRAME),
        meta={"name": "aff"},
        runs=[""],
        tasks_declared=True,
    )
    (rid,) = store.import_parsed(parsed, name="aff", origin="uploaded")
    args = _hoa_select("--k", "1", "2", "--affinity", str(rid), "--store", str(store.path))
    assert main(args) == 0
    _check_tag_rows(json.loads(capsys.readouterr().out))
    assert main([*args, "--affinity", "99"]) == 2  # the last --affinity counts
    assert "no run with id 99" in capsys.readouterr().err


def test_affinity_names_must_match(tmp_path, capsys):
    p = _matrix_file(tmp_path, HOA)
    rc = main(_hoa_select("--k", "2", "--affinity", str(p), "--tasks", "a,b,c,d,z"))
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "the affinity matrix has no task 'z'" in err and "tasks are matched by name" in err
    rc = main(_hoa_select("--k", "2", "--affinity", "nope"))
    assert rc == 2 and "neither a file nor a run id" in capsys.readouterr().err
    rc = main(_hoa_select("--k", "2", "--affinity", "3", "--store", str(tmp_path / "no.db")))
    assert rc == 2 and "no run store at" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_exhaustive_evaluation_is_read_by_select(tmp_path, capsys):
    out = tmp_path / "ev.json"
    rc = main(
        [
            "evaluate",
            "--scenario",
            "synthetic",
            "--set",
            "tasks=3",
            "--set",
            "samples=100",
            "--k",
            "2",
            "--seeds",
            "1",
            "--steps",
            "2",
            "--random",
            "1",
            "--exhaustive",
            "--workers",
            "0",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    capsys.readouterr()
    rep = json.loads(out.read_text())
    ex = next(r for r in rep["runs"] if r["approach"] == "exhaustive")
    assert len(ex["networks"]) == 7  # every non-empty subset of 3 tasks (complements included)
    assert main(["select", str(out), "--k", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = doc["rows"][0]
    # evaluate's own exhaustive best (groups of 2+) can be no better than select's optimum,
    # which may also use the trained complements of one task; both on the same val losses
    tables = read_evaluate_report(out)
    best = tables.selection
    served = [
        min(
            best.values[best.find(tuple(sorted(TASKS.index(t) for t in g)), 1.0), i]
            for g in ex["grouping"]
            if TASKS[i] in g
        )
        for i in range(3)
    ]
    assert row["optimal"]["selection"] <= sum(served) + 1e-12
    assert row["optimal"]["proven"] and "affinity" in row


def test_a_time_limit_before_the_first_selection_falls_back_unproven(monkeypatch, capsys):
    """HiGHS stopping with no selection (status 1, as on MIMIC's worst selection) gives the
    best (worst) of the random covering selections, unproven, not an error."""
    from scipy.optimize import OptimizeResult

    from mtl_core.groundtruth import select as sel_mod

    rng = np.random.default_rng(3)
    g = rng.normal(size=(9, 4))
    g[rng.random((9, 4)) < 0.5] = np.nan
    g[np.isnan(g).all(axis=1), 0] = 0.3
    g[0] = 0.0  # one network on every task: every k covers
    costs = np.ones(9)
    exact = sel_mod.best_selection(g, costs, k=2)
    exact_worst = sel_mod.worst_selection(g, costs, k=2)

    def stopped(*a, **kw):
        return OptimizeResult(x=None, fun=None, status=1, message="Time limit reached.")

    monkeypatch.setattr(sel_mod, "milp", stopped)
    for fn, better in ((sel_mod.best_selection, 1), (sel_mod.worst_selection, -1)):
        ch = fn(g, costs, k=2)
        assert not ch.proven and np.isinf(ch.gap) and 1 <= len(ch.networks) <= 2
        assert ch.objective == pytest.approx(served_total(g, ch.networks, g))
    assert sel_mod.best_selection(g, costs, k=2).objective <= exact.objective + 1e-12
    assert sel_mod.worst_selection(g, costs, k=2).objective >= exact_worst.objective - 1e-12
    assert main([a for a in _hoa_select("--k", "2") if a != "--json"]) == 0
    out = capsys.readouterr().out
    assert "before HiGHS's first selection; the best of a local search and 200 random" in out
    assert "before HiGHS's first selection; the worst of a local search and 200 random" in out


def test_random_selections_cover_within_the_limit_and_rarely_come_back_short():
    """27 tasks, k = 2, and only two networks that cover everything between them among many
    that do not: rejection sampling with 1,000 tries per draw still returns most draws."""
    from mtl_core.groundtruth.select import random_selections

    n = 27
    present = np.zeros((60, n), dtype=bool)
    present[0, :14] = present[1, 14:] = True  # the only covering pair
    rng = np.random.default_rng(0)
    for j in range(2, 60):
        present[j, rng.choice(n, 5, replace=False)] = True
    picks = random_selections(np.ones(60), present, k=2, draws=40)
    assert len(picks) >= 30
    assert all(p == [0, 1] for p in picks)  # nothing else covers all 27 tasks in 2
