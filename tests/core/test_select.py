"""`select`: the handed ground-truth cases (tests/data/groundtruth/README.md), exact selection
against brute force, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mtl_core.commands.cli import main
from mtl_core.errors import LabError
from mtl_core.groundtruth.compare import compare, public
from mtl_core.groundtruth.select import best_selection, served_total, worst_selection
from mtl_core.groundtruth.tables import read_hoa, read_long, read_mtg
from tests.helpers.selection_tables import brute_force, sparse_table

D = Path(__file__).resolve().parents[1] / "data" / "groundtruth"


def test_hoa_case_budgets_and_hoa_estimator():
    doc = public(
        compare(
            read_hoa(D / "hoa_like_val.txt"),
            read_hoa(D / "hoa_like_test.txt"),
            budgets=[1, 1.5, 2, 3, 4, 5],
        )
    )
    want = {
        1: (0.46610, 0.46774),
        1.5: (0.46312, 0.47197),
        2: (0.45562, 0.45373),
        3: (0.45188, 0.44849),
        4: (0.45100, 0.44933),
        5: (0.45096, 0.45195),
    }
    hoa = {2: 0.45373, 3: 0.44676, 4: 0.44772}
    for row in doc["rows"]:
        b = row["budget"]
        assert row["optimal"]["proven"]
        assert row["optimal"]["selection"] == pytest.approx(want[b][0], abs=5e-6)
        assert row["optimal"]["score"] == pytest.approx(want[b][1], abs=5e-6)
        if b in hoa:
            assert row["hoa"]["score"] == pytest.approx(hoa[b], abs=5e-6)


def test_mtg_case_k_and_agreement_through_cli(capsys):
    rc = main(
        [
            "select",
            str(D / "gains6_val.txt"),
            "--masks",
            str(D / "masks6.csv"),
            "--test",
            str(D / "gains6_test.txt"),
            "--k",
            "1",
            "2",
            "3",
            "--estimate",
            str(D / "estimate6.txt"),
            "--json",
        ]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"tasks", "direction", "rows", "agreement", "stopped"}
    assert doc["stopped"] is False  # every solve proven within its time limit
    assert doc["direction"] == "higher"
    scores = [r["optimal"]["score"] for r in doc["rows"]]
    assert scores == pytest.approx([-0.05757, 0.23079, 0.31974], abs=5e-6)
    assert doc["rows"][0]["optimal"]["networks"] == [doc["tasks"]]
    est = doc["agreement"]["estimate"]
    assert est["cells"] == 186
    assert est["spearman"] == pytest.approx(0.671, abs=5e-4)
    assert est["kendall"] == pytest.approx(0.4873, abs=5e-5)
    assert set(doc["rows"][1]["random"]) == {"mean", "sd", "draws"}


@pytest.mark.slow
def test_sampled_design_reads_and_is_proven():
    t = read_mtg(D / "masks12.csv", D / "gains12.txt")
    assert len(t.members) == 252 and len(t.tasks) == 12
    doc = public(compare(t, ks=[2, 3]))
    assert all(r["optimal"]["proven"] for r in doc["rows"])


def _brute(g, costs, k=None, budget=None, worst=False):
    coef = np.ones(len(costs)) if k is not None else costs
    return brute_force(g, coef, float(k if k is not None else budget), best=not worst)


@pytest.mark.parametrize("seed", range(12))
def test_exact_against_brute_force(seed):
    g, costs = sparse_table(seed)
    for kw in ({"k": 1}, {"k": 2}, {"k": 3}, {"budget": 1.5}, {"budget": 2.5}):
        want = _brute(g, costs, **kw)
        ch = best_selection(g, costs, **kw)
        if want is None:
            assert ch is None
            continue
        assert served_total(g, ch.networks, g) == pytest.approx(want, abs=1e-9)
        w = worst_selection(g, costs, **kw)
        assert served_total(g, w.networks, g) == pytest.approx(
            _brute(g, costs, worst=True, **kw), abs=1e-9
        )


def test_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("0.1\t0.2\n0.3\tx\n")
    with pytest.raises(LabError, match=r"bad.txt: line 2, column 2: 'x' is not a number"):
        read_hoa(bad)
    m = tmp_path / "m.csv"
    m.write_text("1,0\n0,2\n")
    v = tmp_path / "v.txt"
    v.write_text("0 0\n0 0\n")
    with pytest.raises(LabError, match=r"m.csv: line 2, column 2: '2' is not 0 or 1"):
        read_mtg(m, v)
    lf = tmp_path / "l.csv"
    lf.write_text("subset,task,value\na+b,c,1\n")
    with pytest.raises(LabError, match="line 2, column task: 'c' is not in its subset"):
        read_long(lf, direction="lower")
    with pytest.raises(LabError, match="names no direction"):
        read_long(lf)


def test_cli_error_exit_2(capsys):
    rc = main(["select", str(D / "hoa_like_val.txt"), "--k", "2", "--tasks", "a,b"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "5 task columns but --tasks names 2" in err


def test_json_says_stopped_when_a_time_limit_ended_a_solve(capsys):
    """``"stopped"``: some solve was ended by --time-limit (wall clock), so only then may the
    answer depend on the machine's load; it is exactly "some selection is not proven"."""
    args = ["select", str(D / "gains6_val.txt"), "--masks", str(D / "masks6.csv"), "--k", "3"]
    assert main([*args, "--draws", "5", "--time-limit", "0.000001", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stopped"] is True
    assert doc["rows"][0]["optimal"]["proven"] is False
    assert main([*args, "--draws", "5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stopped"] is False
    assert all(v["proven"] for k, v in doc["rows"][0].items() if k not in ("k", "random"))
