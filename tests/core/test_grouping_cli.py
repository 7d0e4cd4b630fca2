"""The headless `group` command: JSON contract, input detection, one-line errors with exit 2.

`group` reads through the run-file reader, so a refused file gets `import`'s own message."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mtl_core.grouping import TAGGrouper, tag_value
from mtl_core.runfile import affinity_rows, mean_matrix, read_table, write_table

pytestmark = pytest.mark.slow  # every test runs the CLI in a subprocess


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "mtl_core", "group", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _planted(seed=0, n=6):
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1, 0, 1, 0, 1][:n])
    A = np.where(labels[:, None] == labels[None, :], 0.5, -0.4) + rng.normal(0, 0.1, (n, n))
    tasks = ["depth", "seg", "normal", "edge", "albedo", "class"][:n]
    truth = sorted(sorted(t for t, lab in zip(tasks, labels) if lab == c) for c in (0, 1))
    return A, tasks, truth


@pytest.fixture
def matrix_csv(tmp_path):
    A, tasks, truth = _planted()
    path = tmp_path / "matrix.csv"
    pd.DataFrame(A, index=tasks, columns=tasks).to_csv(path)
    return path, A, tasks, truth


def test_matrix_csv_json_contract(matrix_csv):
    path, A, tasks, truth = matrix_csv
    r = _cli(path, "--method", "tag", "--k", "2", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"groups", "value", "optimal", "gap", "stopped"}
    assert sorted(sorted(g) for g in out["groups"]) == truth
    assert out["optimal"] is True and out["gap"] == 0.0 and out["stopped"] is False
    assert out["value"] == pytest.approx(tag_value(A, tasks, out["groups"]))
    assert out["value"] == pytest.approx(TAGGrouper(2).fit(A, tasks).score_)


def test_rows_are_sources(tmp_path):
    # Only the direction distinguishes these: a helps b a lot, b hurts a slightly.
    A = np.array([[1.0, 0.9, -0.2], [-0.1, 1.0, -0.2], [-0.2, -0.2, 1.0]])
    path = tmp_path / "m.csv"
    pd.DataFrame(A, index=list("abc"), columns=list("abc")).to_csv(path)
    out = json.loads(_cli(path, "--k", "2", "--allow-singletons", "--json").stdout)
    assert out["value"] == pytest.approx((-0.1 + 0.9 + 0.0) / 3)


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".jsonl"])
def test_long_form_log_is_averaged_over_steps(tmp_path, ext):
    A, tasks, truth = _planted(1)
    rng = np.random.default_rng(2)
    df = pd.concat(
        [affinity_rows(s, tasks, A + rng.normal(0, 0.2, A.shape), "lookahead") for s in range(8)]
    )
    path = write_table(df, tmp_path / f"log{ext}")
    r = _cli(path, "--method", "threshold", "--tau", "0", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted(sorted(g) for g in out["groups"]) == truth
    names, mean = mean_matrix(read_table(path))
    assert out["value"] == pytest.approx(tag_value(mean, names, out["groups"]))
    assert out["optimal"] is False and out["gap"] is None and out["stopped"] is False


@pytest.mark.parametrize("method", ["hierarchical", "affinity-propagation"])
def test_other_methods_text_output(matrix_csv, method):
    path, _, _, truth = matrix_csv
    r = (
        _cli(path, "--method", method, "--k", "2")
        if method == "hierarchical"
        else _cli(path, "--method", method)
    )
    assert r.returncode == 0, r.stderr
    assert "2 group(s) over 6 tasks" in r.stdout
    for group in truth:
        assert (
            ", ".join(
                sorted(group, key=["depth", "seg", "normal", "edge", "albedo", "class"].index)
            )
            in r.stdout
        )


def _write(tmp_path, name, frame, **kw):
    p = tmp_path / name
    frame.to_csv(p, **kw)
    return p


@pytest.mark.parametrize(
    "make, extra, message",
    [
        (
            lambda d, A, t: _write(d, "ns.csv", pd.DataFrame(A[:, :5], index=t, columns=t[:5])),
            ["--k", "2"],
            "cannot import ns.csv: row 6 (line 7), row-label column: task 'class' is "
            "not one of the matrix's columns",
        ),
        (
            lambda d, A, t: _write(
                d, "nan.csv", pd.DataFrame(np.full_like(A, np.nan), index=t, columns=t)
            ),
            ["--k", "2"],
            "cannot import nan.csv: the matrix has no values",
        ),
        (
            lambda d, A, t: _write(d, "names.csv", pd.DataFrame(A, index=t, columns=[*t[:5], "x"])),
            ["--k", "2"],
            "cannot import names.csv: row 6 (line 7), row-label column: task 'class' "
            "is not one of the matrix's columns (depth, seg, normal, edge, albedo, x)",
        ),
        (
            lambda d, A, t: _write(d, "ok.csv", pd.DataFrame(A, index=t, columns=t)),
            ["--k", "0"],
            "k (the number of groups) must be an integer >= 1",
        ),
        (
            lambda d, A, t: _write(d, "ok.csv", pd.DataFrame(A, index=t, columns=t)),
            [],
            "needs a group budget",
        ),
        (lambda d, A, t: d / "missing.csv", ["--k", "2"], "not found"),
        (
            lambda d, A, t: _write(
                d, "txt.csv", pd.DataFrame([["a", "x"], ["b", "y"]], columns=["", "a"]), index=False
            ),
            ["--k", "2"],
            "cannot import txt.csv: row 2 (line 3), row-label column: task 'b' is not "
            "one of the matrix's columns (a)",
        ),
    ],
    ids=["not-square", "nan", "names", "k0", "no-k", "missing", "garbage"],
)
def test_invalid_input_one_line_exit_2(tmp_path, make, extra, message):
    A, tasks, _ = _planted()
    path = make(tmp_path, A, tasks)
    r = _cli(path, *extra)
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_several_measures_need_measure(tmp_path):
    A, tasks, truth = _planted()
    df = pd.concat([affinity_rows(0, tasks, A, "lookahead"), affinity_rows(0, tasks, -A, "cosine")])
    path = write_table(df, tmp_path / "two.csv")
    r = _cli(path, "--k", "2")
    assert r.returncode == 2 and "--measure" in r.stderr
    r = _cli(path, "--k", "2", "--measure", "lookahead", "--json")
    assert r.returncode == 0
    assert sorted(sorted(g) for g in json.loads(r.stdout)["groups"]) == truth


def _pair_matrix(tmp_path, measure_rows=None):
    # a-b linked at 0.6% (mutual), c apart at -0.2%: the cut between is at 0.5 in percent
    tasks = ["a", "b", "c"]
    A = np.array([[0.01, 0.006, -0.002], [0.006, 0.01, -0.002], [-0.002, -0.002, 0.01]])
    path = tmp_path / "m.csv"
    pd.DataFrame(A, index=tasks, columns=tasks).to_csv(path)
    return path


@pytest.mark.parametrize(
    "tau, linked", [("0.5", True), ("0.5%", True), ("0.7", False), ("0.005", True)]
)
def test_tau_is_in_percent_like_the_page_for_lookahead(tmp_path, tau, linked):
    """--tau 0.5 means 0.5% (the Explore slider's and URL's number), not 50%."""
    r = _cli(_pair_matrix(tmp_path), "--method", "threshold", "--tau", tau, "--json")
    assert r.returncode == 0, r.stderr
    groups = sorted(sorted(g) for g in json.loads(r.stdout)["groups"])
    assert (["a", "b"] in groups) is linked


def test_tau_for_cosine_is_a_plain_number_and_rejects_percent(tmp_path):
    path = _pair_matrix(tmp_path)
    r = _cli(path, "--method", "threshold", "--tau", "0.005", "--measure", "cosine", "--json")
    assert r.returncode == 0, r.stderr
    assert ["a", "b"] in sorted(sorted(g) for g in json.loads(r.stdout)["groups"])
    r = _cli(path, "--method", "threshold", "--tau", "0.5%", "--measure", "cosine")
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error:") and "not a percentage" in r.stderr


def test_text_output_says_the_value_in_percent(tmp_path):
    r = _cli(_pair_matrix(tmp_path), "--method", "tag", "--k", "2")
    assert r.returncode == 0, r.stderr
    assert "% loss change" in r.stdout and "%" in r.stdout.splitlines()[-1]


def test_json_says_when_the_safety_stop_fired(tmp_path, capsys):
    """The one way a TAG answer can depend on the clock is the safety stop: --json says so."""
    from tests.helpers.store_faults import cli

    n = 30
    A = 0.1 * np.random.default_rng(1).normal(size=(n, n))  # possible lookahead values
    tasks = [f"t{i}" for i in range(n)]
    path = tmp_path / "m.csv"
    pd.DataFrame(A, index=tasks, columns=tasks).to_csv(path)
    code, out, err = cli(capsys, "group", str(path), "--k", "5", "--time-limit", "1e-4", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["stopped"] is True and doc["optimal"] is False and doc["gap"] > 0
    assert err.startswith("warning: the search reached its 0.0001 s safety limit")
    assert {t for g in doc["groups"] for t in g} == set(tasks) and len(doc["groups"]) <= 5
