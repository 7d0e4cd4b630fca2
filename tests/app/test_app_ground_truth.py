"""Explore's "Ground truth" tab (AppTest): starting a background evaluation, following its
progress, showing its table; the background process itself is replaced by a stand-in whose
job folder the test writes (tests/core/test_experiments_api.py runs the real one)."""

from __future__ import annotations

import os
import time

import pytest

from mtl_core.experiments import background as bg
from mtl_core.jsonio import write_json
from tests.helpers.app_fixtures import config_dict, open_app, seed_run, shown

REPORT = {
    "spec": {"seeds": 2},
    "approaches": {
        "tag": {
            "name": "TAG groups",
            "total_test_loss": {"mean": 1.5, "std": 0.1},
            "parameters": {"mean": 900},
            "seconds": {"mean": 2.0},
            "groupings": [[["t0", "t1", "t2"], ["t3", "t4", "t5"]]],
        },
        "together": {
            "name": "all together",
            "total_test_loss": {"mean": 2.0, "std": 0.1},
            "parameters": {"mean": 500},
            "seconds": {"mean": 1.0},
            "groupings": [[["t0", "t1", "t2", "t3", "t4", "t5"]]],
        },
    },
    "comparison": {"tag_vs_together": 0.25},
}


def _open_tab(at):
    at.session_state["explore_tab"] = "Ground truth"
    return at.run()


def test_ground_truth_runs_in_the_background_and_shows_its_table(store, monkeypatch):
    cfg = config_dict(knobs={"samples": 150}, train__steps=40)
    rid = seed_run(store, name="trained", config=cfg)
    started = []

    def fake_start(spec, folder, *, workers=2, nice=0):  # "runs": this test writes it
        started.append((spec, workers))
        os.makedirs(folder)
        write_json(
            os.path.join(folder, bg.STATUS_FILE),
            {"status": "running", "message": "[phase 1 3/9] random/seed0/0 (0.4 s)"},
        )
        return bg.BackgroundJob(folder=str(folder), pid=os.getpid(), started=time.time())

    monkeypatch.setattr(bg, "start", fake_start)
    monkeypatch.setenv("MTL_LAB_WARM_WORKERS", "0")
    at = _open_tab(open_app("explore", store.path, monkeypatch))
    assert not at.exception
    assert any("No ground truth for k=2 yet" in c.value for c in at.caption)
    at.number_input(key="gt_seeds").set_value(3).run()
    at.button(key="gt_start").click().run()
    assert not at.exception
    deadline = time.monotonic() + 10  # queued; the app's runner starts it in a free slot
    while not started and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()
    ((spec, workers),) = started
    assert workers == 0  # one process in one of the runner's slots, no pool of its own
    assert (spec.scenario, spec.k, spec.seeds, spec.steps) == ("synthetic", 2, 3, 40)
    assert spec.knobs["samples"] == 150 and spec.tasks == tuple(f"t{i}" for i in range(6))
    assert any("[phase 1 3/9] random/seed0/0" in shown(i.value) for i in at.info)  # its progress
    at.run()
    assert at.button(key="gt_start").disabled  # one evaluation at a time, across reruns
    record = store.get_ground_truth(rid, 2)
    assert record["status"] == "running" and record["seeds"] == 3

    folder = record["folder"]  # the process finishes: report and final status
    write_json(os.path.join(folder, bg.REPORT_FILE), REPORT)
    write_json(
        os.path.join(folder, bg.STATUS_FILE),
        {"status": "done", "message": "[phase 2 2/2] tag", "finished": time.time()},
    )
    at.run()
    assert not at.exception
    df = at.dataframe[-1].value.set_index("approach")
    assert df.loc["TAG groups", "vs all together"] == -0.25
    assert df.loc["TAG groups", "groups (seed 0)"] == "{t0, t1, t2} · {t3, t4, t5}"
    assert any("25.0% lower total test loss" in c.value for c in at.caption)
    saved = store.get_ground_truth(rid, 2)
    assert saved["status"] == "done" and saved["report"]["comparison"] == REPORT["comparison"]


@pytest.mark.slow
def test_ground_truth_failure_and_uploaded_runs(tmp_path, store, monkeypatch):
    seed_run(store, name="uploaded")  # no config: nothing to retrain
    at = _open_tab(open_app("explore", store.path, monkeypatch))
    assert any("Only runs trained by the lab" in i.value for i in at.info)

    rid = seed_run(store, name="trained", config=config_dict())
    folder = tmp_path / "job"
    write_json(folder / bg.STATUS_FILE, {"status": "running", "message": "phase 1: 9 runs"})
    (folder / bg.LOG_FILE).write_text("phase 1: 9 runs\nMemoryError: out of memory\n")
    dead = bg.BackgroundJob(str(folder), pid=_dead_pid(), started=time.time())
    store.save_ground_truth(rid, 2, {"status": "running", **dead.to_dict(), "k": 2, "seeds": 2})
    at = _open_tab(open_app("explore", store.path, monkeypatch, query={"run": rid}))
    assert not at.exception
    assert any("ended early: MemoryError: out of memory" in shown(e.value) for e in at.error)
    assert store.get_ground_truth(rid, 2)["status"] == "failed"


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_the_table_check_is_against_the_starter_whoever_owns_the_run(store, monkeypatch):
    """Issue 23 item 8: an uploaded table only its uploader may retrain, checked against the
    user who starts the evaluation, also for an unowned run (it was skipped)."""
    from mtl_core.scenarios import table_files

    folder = table_files.tables_dir(store.path)
    theirs = table_files.save_table(b"a,y1,y2\n1,2,3\n", "theirs.csv", "browser:other", folder)
    unowned = seed_run(store, name="unowned", config=config_dict(knobs={"table": theirs}))
    monkeypatch.setattr(bg, "start", lambda *a, **k: pytest.fail("must not start"))
    at = open_app("explore", store.path, monkeypatch, query={"run": unowned})
    at.session_state["lab_browser"] = "browser:me"
    at = _open_tab(at)
    at.button(key="gt_start").click().run()
    assert not at.exception
    assert [shown(e.value) for e in at.error] == [
        "csv scenario: this table was not uploaded by you; upload it on the Train page"
    ]
    assert store.get_ground_truth(unowned, 2) is None  # nothing queued


# ------------------------------------------- an exhaustive evaluation scored like the page


def _select_json(path, *extra):
    """``python -m mtl_core select`` on the report, as the tab computes it (50 draws)."""
    import contextlib
    import io
    import json

    from mtl_core.commands.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["select", str(path), "--k", "1", "2", "3", "--draws", "50", *extra, "--json"])
    assert rc == 0
    return json.loads(out.getvalue())


def _frame(at, column):
    """The one table on the page with ``column`` (the groups panel and the evaluation's own
    table come first)."""
    (df,) = [d.value for d in at.dataframe if column in d.value.columns]
    return df


def _assert_table_is_select(df, doc):
    """Every (k, estimator) row of the tab's chosen-networks table equals ``select --json``."""
    from app.figures.ground_truth import ESTIMATOR_LABELS

    seen = 0
    for row in doc["rows"]:
        best = row["optimal"]["score"]
        for name, label in ESTIMATOR_LABELS.items():
            if name not in row:
                continue
            got = df[(df["k"] == row["k"]) & (df["estimator"] == label)]
            assert len(got) == 1, (row["k"], label)
            got = got.iloc[0]
            want = row[name]["mean"] if name == "random" else row[name]["score"]
            assert got["score"] == pytest.approx(want, abs=1e-12)
            assert got["regret"] == pytest.approx(want - best, abs=1e-12)  # lower is better
            if name == "random":
                assert got["networks"] == f"50 draws, sd {row[name]['sd']:.4g}"
            else:
                assert got["selection"] == pytest.approx(row[name]["selection"], abs=1e-12)
                assert got["networks"] == " | ".join(" + ".join(n) for n in row[name]["networks"])
            seen += 1
    assert seen == len(df)


def test_a_stored_exhaustive_evaluation_is_scored_like_select(tmp_path, store, monkeypatch):
    import json

    from tests.helpers.eval_fakes import fake_exhaustive_report

    report = fake_exhaustive_report(seeds=1, k=2)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    rid = seed_run(store, name="trained", n_tasks=4, config=config_dict(knobs={"tasks": 4}))
    store.save_ground_truth(rid, 2, {"status": "done", "report": report, "k": 2, "seeds": 1})
    at = _open_tab(open_app("explore", store.path, monkeypatch, query={"run": rid}, timeout=120))
    assert not at.exception and not at.error
    assert at.radio(key="gtx_source").value == "run"  # TAG from this run's own affinity
    nets = _frame(at, "regret")
    doc = _select_json(path, "--affinity", str(rid), "--store", str(store.path))
    _assert_table_is_select(nets, doc)
    # the planted split {t0,t1} {t2,t3} is the optimum at k = 2; TAG and HOA find it
    k2 = nets[nets["k"] == 2].set_index("estimator")
    assert k2.loc["optimal (exact)", "networks"] == "t0 + t1 | t2 + t3"
    assert k2.loc["optimal (exact)", "regret"] == 0
    assert k2.loc["worst", "regret"] > 0.5
    agree = _frame(at, "Spearman").set_index("estimator")
    for name, a in doc["agreement"].items():
        from app.figures.ground_truth import ESTIMATOR_LABELS

        assert agree.loc[ESTIMATOR_LABELS[name], "Spearman"] == pytest.approx(a["spearman"])
        assert agree.loc[ESTIMATOR_LABELS[name], "cells"] == a["cells"]
    # TAG from the evaluation's own co-training affinity: select's default for a report
    at.radio(key="gtx_source").set_value("report").run()
    assert not at.exception and not at.error
    _assert_table_is_select(_frame(at, "regret"), _select_json(path))


@pytest.mark.slow
def test_an_uploaded_report_and_the_exhaustive_switch(tmp_path, store, monkeypatch):
    import json

    from tests.helpers.eval_fakes import fake_exhaustive_report

    rid = seed_run(store, name="trained", n_tasks=4, config=config_dict(knobs={"tasks": 4}))
    at = _open_tab(open_app("explore", store.path, monkeypatch, query={"run": rid}, timeout=120))
    assert not at.exception
    assert any("Tick **exhaustive**" in c.value for c in at.caption)  # nothing to score yet
    report = fake_exhaustive_report(seeds=2, k=2)
    data = json.dumps(report).encode()
    at.file_uploader(key="gtx_file").set_value([("mine.json", data, "application/json")]).run()
    assert not at.exception and not at.error
    path = tmp_path / "mine.json"
    path.write_bytes(data)
    doc = _select_json(path, "--affinity", str(rid), "--store", str(store.path))
    _assert_table_is_select(_frame(at, "regret"), doc)
    bad = b'{"kind": "task-affinity-lab/evaluate", "spec": {"tasks": ["a"]}, "runs": []}'
    at.file_uploader(key="gtx_file").set_value([("<b>x.json", bad, "application/json")]).run()
    assert [shown(e.value) for e in at.error] == [
        "<b>x.json: no exhaustive results; run evaluate with --exhaustive to train every "
        "candidate network"
    ]

    started = []

    def fake_start(spec, folder, *, workers=2, nice=0):
        started.append(spec)
        os.makedirs(folder)
        write_json(os.path.join(folder, bg.STATUS_FILE), {"status": "running", "message": ""})
        return bg.BackgroundJob(folder=str(folder), pid=os.getpid(), started=time.time())

    monkeypatch.setattr(bg, "start", fake_start)
    monkeypatch.setenv("MTL_LAB_WARM_WORKERS", "0")
    at.checkbox(key="gt_exhaustive").check().run()
    at.button(key="gt_start").click().run()
    assert not at.exception
    record = store.get_ground_truth(rid, 2)
    assert record["exhaustive"] is True and record["spec"]["exhaustive"] is True
    deadline = time.monotonic() + 10  # the app's runner starts it in a free slot
    while not started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started and started[0].exhaustive and started[0].tasks == ("t0", "t1", "t2", "t3")
    wide = seed_run(store, name="wide", n_tasks=7, config=config_dict(knobs={"tasks": 7}))
    at = _open_tab(open_app("explore", store.path, monkeypatch, query={"run": wide}))
    assert at.checkbox(key="gt_exhaustive").disabled  # 7 tasks: 63 candidate runs a seed
