"""`group` reads INPUT through the run-file reader: what `import` reads, `group` reads, and a
file `import` refuses gets the same message from `group` (one line, exit 2, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.commands.group import load_affinity
from mtl_core.errors import LabError
from mtl_core.runfile import affinity_rows, read_run_file, write_table

ROOT = Path(__file__).resolve().parents[2]
FIELD = ROOT.parent / "shared" / "cases" / "field"
K1 = FIELD / "K1_matrix_no_row_labels_documented_layout2.csv"


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "mtl_core", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def _k1_copy(tmp_path: Path) -> Path:
    """The field case K1 (the run format's documented layout 2: a header of task names, no
    row labels, row i = the source named by column i), or the same bytes when the shared
    cases are not checked out."""
    text = (
        "price,demand,churn\n0.0412,0.0187,-0.0093\n0.0201,0.0377,-0.0051\n-0.0110,-0.0046,0.0298\n"
    )
    if K1.exists():
        assert K1.read_text() == text  # the test's expected values are this file's
    path = tmp_path / K1.name
    path.write_text(text)
    return path


K1_TASKS = ["price", "demand", "churn"]
K1_A = np.array([[0.0412, 0.0187, -0.0093], [0.0201, 0.0377, -0.0051], [-0.0110, -0.0046, 0.0298]])


@pytest.mark.slow
def test_group_reads_the_documented_unlabelled_matrix(tmp_path):
    path = _k1_copy(tmp_path)
    tasks, A = load_affinity(path)
    assert tasks == K1_TASKS
    np.testing.assert_array_equal(A, K1_A)  # rows = sources, exactly as written
    steps, _, mats = read_run_file(path).matrices("", "lookahead")
    assert steps.tolist() == [0] and np.array_equal(mats[0], A)  # import reads the same
    r = _cli("group", path, "--k", "2", "--allow-singletons", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # every task alone scores 0; price+demand lifts price (0.0201) and demand (0.0187)
    assert sorted(sorted(g) for g in out["groups"]) == [["churn"], ["demand", "price"]]
    assert out["value"] == pytest.approx((0.0201 + 0.0187) / 3)
    assert out["optimal"] is True


def test_group_reads_a_matrix_saved_again_by_pandas(tmp_path):
    """A ``to_csv`` matrix read back with ``pd.read_csv`` and saved again: the row labels sit
    under ``Unnamed: 0``; both ``import`` and ``group`` read it."""
    path = tmp_path / "m.csv"
    pd.DataFrame(K1_A, index=K1_TASKS, columns=K1_TASKS).iloc[[2, 0, 1]].to_csv(path)
    pd.read_csv(path).to_csv(path, index=False)
    assert path.read_text().startswith("Unnamed: 0,price,demand,churn\nchurn,")
    tasks, A = load_affinity(path)
    assert tasks == K1_TASKS
    np.testing.assert_array_equal(A, K1_A)


def _same_message(path: Path) -> str:
    with pytest.raises(LabError) as imp:
        read_run_file(path)
    with pytest.raises(LabError) as grp:
        load_affinity(path)
    assert str(grp.value) == str(imp.value)
    return str(imp.value)


def test_legacy_and_european_files_read_the_same_in_import_and_group(tmp_path):
    cp1252 = tmp_path / "excel.csv"
    cp1252.write_bytes(",Größe,Tiefe\r\nGröße,0.1,0.2\r\nTiefe,0.3,0.4\r\n".encode("cp1252"))
    p = read_run_file(cp1252)
    assert p.tasks == ["Größe", "Tiefe"] and "read as cp1252 text (detected" in p.notes[0]
    assert load_affinity(cp1252)[0] == ["Größe", "Tiefe"]
    eu = tmp_path / "eu.csv"
    eu.write_text(";a;b\na;0,1;0,2\nb;0,3;-1,5e-1\n")
    tasks, A = load_affinity(eu)
    assert tasks == ["a", "b"]
    np.testing.assert_array_equal(A, [[0.1, 0.2], [0.3, -0.15]])
    assert "decimal commas read as decimal points" in read_run_file(eu).notes[0]


def test_refused_files_get_imports_message(tmp_path):
    comma = tmp_path / "comma.csv"  # a decimal comma in a comma-separated file is ambiguous
    comma.write_text(',a,b\na,"0,1",0.2\nb,0.3,0.4\n')
    assert "'0,1' is not a number (use '.' as the decimal point)" in _same_message(comma)
    short = tmp_path / "short.csv"
    short.write_text("a,b,c\n0.1,0.2,0.3\n0.4,0.5,0.6\n")
    assert (
        "a matrix without row labels must be square, one row per task column: 3 columns "
        "(a, b, c) but 2 rows" in _same_message(short)
    )


@pytest.mark.slow
def test_cli_refusal_is_one_line_exit_2(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("a,b,c\n0.1,0.2,0.3\n")
    for cmd in (["group", path, "--k", "1"], ["import", path, "--store", tmp_path / "s.sqlite"]):
        r = _cli(*cmd)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.startswith("error: cannot import short.csv: a matrix without row labels")
        assert r.stderr.count("\n") == 1


def test_measure_and_run_are_picked_like_everywhere_else(tmp_path):
    A = K1_A
    df = pd.concat(
        [
            affinity_rows(0, K1_TASKS, A, "lookahead"),
            affinity_rows(0, K1_TASKS, -A, "cosine"),
            affinity_rows(1, K1_TASKS, 3 * A, "lookahead"),
        ]
    )
    path = write_table(df, tmp_path / "two.csv")
    with pytest.raises(
        LabError,
        match=r"^two.csv holds several measures \(lookahead, cosine\); "
        r"pick one with --measure$",
    ):
        load_affinity(path)
    with pytest.raises(
        LabError,
        match=r"^measure 'proximal' not in two.csv; it has: "
        r"lookahead, cosine$",
    ):
        load_affinity(path, measure="proximal")
    tasks, mean = load_affinity(path, measure="lookahead")
    np.testing.assert_array_equal(mean, (A + 3 * A) / 2)
    _, cos = load_affinity(path, measure="cosine")
    np.testing.assert_array_equal(cos, -A)
    with pytest.raises(LabError, match=r"^run 'x' not in two.csv; it has: $"):
        load_affinity(path, measure="cosine", run="x")


@pytest.mark.slow
def test_unmeasured_cells_follow_the_documented_rule(tmp_path):
    """An empty diagonal is never read; an off-diagonal cell never measured is read by the
    method's rule, and the CLI says so on a warning line."""
    path = tmp_path / "gap.csv"
    path.write_text(",a,b,c\na,,0.5,\nb,0.25,,-0.2\nc,0.1,0.3,\n")
    tasks, A = load_affinity(path)
    assert tasks == ["a", "b", "c"] and np.isnan(A[0, 0]) and np.isnan(A[0, 2])
    r = _cli("group", path, "--k", "2", "--json")
    assert r.returncode == 0, r.stderr
    assert "warning: left out 4 cells that are not finite numbers" in r.stderr
    assert (
        "warning: 1 off-diagonal cell never measured; tag reads each as 0 (no measured transfer)"
        in r.stderr
    )
