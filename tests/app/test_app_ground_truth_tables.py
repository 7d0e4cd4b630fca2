"""The Ground-truth tables page (AppTest): the handed HOA case uploaded gives the README's
numbers in the chosen-networks table, HOA's agreement, a store run's affinity for TAG, and
one-line reader errors as on Upload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.runfile import METRIC_FRAME, ParsedRun, matrices_to_long
from mtl_core.store import Store
from tests.helpers.app_fixtures import open_app, shown

D = Path(__file__).resolve().parents[1] / "data" / "groundtruth"
HOA = ["a", "b", "c", "d", "e"]


def _open(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    at = open_app("groundtruth", store.path, monkeypatch, timeout=90).run()
    assert not at.exception
    return store, at


def _upload(at, key, path, name=None):
    data = Path(path).read_bytes()
    at.file_uploader(key=key).set_value([(name or Path(path).name, data, "text/plain")]).run()
    return at


def test_hoa_case_budgets_scores_and_agreement(tmp_path, monkeypatch):
    _, at = _open(tmp_path, monkeypatch)
    assert any("Nothing uploaded yet" in c.value for c in at.caption)
    at.radio(key="gtt_rule").set_value("budget").run()
    at.text_input(key="gtt_values_budget").set_value("2, 3, 4").run()
    at.text_input(key="gtt_tasks").set_value(",".join(HOA)).run()
    _upload(at, "gtt_test", D / "hoa_like_test.txt")
    _upload(at, "gtt_sel", D / "hoa_like_val.txt")
    assert not at.exception and not at.error
    nets = at.dataframe[0].value
    opt = nets[nets["estimator"] == "optimal (exact)"].set_index("budget")
    assert opt.loc[2, "score"] == pytest.approx(0.45373, abs=5e-6)
    assert opt.loc[3, "score"] == pytest.approx(0.44849, abs=5e-6)
    assert opt.loc[3, "selection"] == pytest.approx(0.45188, abs=5e-6)
    hoa = nets[nets["estimator"] == "HOA approximation"].set_index("budget")
    assert hoa.loc[3, "score"] == pytest.approx(0.44676, abs=5e-6)
    # HOA's networks beat the val-optimal ones on test at B=3: a negative regret
    assert hoa.loc[3, "regret"] == pytest.approx(0.44676 - 0.44849, abs=1e-5)
    agree = at.dataframe[1].value.set_index("estimator")
    # pairs keep their measured (selection) values, so their cells count too: 10x2 + 55
    assert agree.loc["HOA approximation", "cells"] == 75
    assert len(at.get("plotly_chart")) == 2
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t["name"] for t in fig["data"]]
    assert names[:2] == ["optimal (exact)", "HOA approximation"] and "worst" in names


def test_store_run_affinity_gives_tag_and_names_are_matched(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    cluster = np.array([0, 0, 1, 1, 1])
    A = np.where(cluster[:, None] == cluster[None, :], 1.0, -1.0)
    np.fill_diagonal(A, 0.0)
    order = [4, 2, 0, 3, 1]  # the run lists its tasks in another order
    names = [HOA[i] for i in order]
    parsed = ParsedRun(
        tasks=names,
        task_types={t: "regression" for t in names},
        affinity=matrices_to_long(np.array([0]), names, A[np.ix_(order, order)][None], "lookahead"),
        metrics=pd.DataFrame(columns=METRIC_FRAME),
        meta={"name": "aff"},
        runs=[""],
        tasks_declared=True,
    )
    (rid,) = store.import_parsed(parsed, name="aff", origin="uploaded")
    at = open_app("groundtruth", store.path, monkeypatch, timeout=90).run()
    at.text_input(key="gtt_values_k").set_value("1, 2").run()
    at.text_input(key="gtt_tasks").set_value(",".join(HOA)).run()
    at.selectbox(key="gtt_run").set_value(rid).run()
    _upload(at, "gtt_sel", D / "hoa_like_val.txt")
    assert not at.exception and not at.error
    nets = at.dataframe[0].value
    tag = nets[nets["estimator"] == "TAG (affinity)"].set_index("k")
    assert tag.loc[1, "networks"] == " + ".join(HOA)
    assert tag.loc[2, "networks"] == "a + b | c + d + e"
    at.text_input(key="gtt_tasks").set_value("a,b,c,d,z").run()
    assert any("the affinity matrix has no task 'z'" in shown(e.value) for e in at.error)


def test_errors_are_one_line_and_names_escaped(tmp_path, monkeypatch):
    _, at = _open(tmp_path, monkeypatch)
    bad = tmp_path / "bad.txt"
    bad.write_text("0.1\t0.2\n0.3\tx\n")
    _upload(at, "gtt_sel", bad)
    (err,) = at.error
    assert "bad.txt: line 2, column 2: 'x' is not a number" in shown(err.value)
    assert "\n" not in err.value
    at.text_input(key="gtt_values_k").set_value("1, two").run()
    assert "k values: 'two' is not a number" in shown(at.error[0].value)
    at.text_input(key="gtt_values_k").set_value("2").run()
    at.text_input(key="gtt_tasks").set_value("**x**,b").run()
    good = tmp_path / "g.txt"
    good.write_text("0.1\t0.2\n0.05\t0.15\n")
    _upload(at, "gtt_sel", good)
    assert not at.error
    cap = next(c.value for c in at.caption if "tasks:" in shown(c.value))
    assert "\\*\\*x\\*\\*" in cap  # shown as text, not bold
    nets = at.dataframe[0].value
    assert nets.loc[nets["estimator"] == "optimal (exact)", "networks"].iloc[0] == "**x** + b"


def test_an_evaluate_report_scores_the_labs_own_runs(tmp_path, monkeypatch):
    from tests.core.test_select_inputs import _report

    path = _report(tmp_path)
    _, at = _open(tmp_path, monkeypatch)
    at.radio(key="gtt_layout").set_value("report").run()
    at.text_input(key="gtt_values_k").set_value("2").run()
    _upload(at, "gtt_sel", path)
    assert not at.exception and not at.error
    nets = at.dataframe[0].value.set_index("estimator")
    # mean over the two seeds: val +0.1 per cell on seed 0's, test -0.1 (see _report)
    assert nets.loc["optimal (exact)", "networks"] == "t0 + t1 | t0 + t2"
    assert nets.loc["optimal (exact)", "selection"] == pytest.approx(5.5 + 0.3)
    assert "TAG (affinity)" in nets.index  # the report's own co-training affinity
    agree = at.dataframe[1].value.set_index("estimator")
    assert agree.loc["TAG (affinity)", "cells"] == 9
