"""What the lab writes out is safe to open: no spreadsheet formulas in its CSV files, no
terminal control sequences in its command-line output (issue 13, items 5 and 6)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtl_core.commands.cli import main
from mtl_core.runfile import read_run_file, run_file_bytes
from mtl_core.runfile.formula_escape import TRIGGERS, escape_cell, unescape_cell
from mtl_core.runfile.tables import parse_table, table_bytes
from mtl_core.store import Store
from mtl_core.text.terminal import escape_controls, one_line

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "data" / "reliability"  # copies of ../shared/cases/reliability
FORMULA = "=+-@"


def _case(name: str, tmp_path: Path) -> Path:
    src = CASES / name
    dst = tmp_path / name
    dst.write_bytes(src.read_bytes())
    return dst


def _cells(data: bytes) -> list[str]:
    return [c for row in csv.reader(io.StringIO(data.decode())) for c in row]


# ----------------------------------------------------------------------------- item 5


def test_formula_names_round_trip_and_export_has_no_formula_cell(tmp_path, capsys):
    src = _case("security_formula_names.csv", tmp_path)
    store = str(tmp_path / "s.sqlite")
    assert main(["import", str(src), "--store", store]) == 0
    out = tmp_path / "x.csv"
    assert main(["export", "1", "--out", str(out), "--store", store]) == 0
    cells = _cells(out.read_bytes())
    assert not [c for c in cells if c and c[0] in FORMULA], cells
    assert "'=1+1" in cells and "'@SUM(1+1)*cmd|' /C calc'!A0" in cells
    assert main(["import", str(out), "--store", store]) == 0
    capsys.readouterr()
    s = Store(store)
    first, back = s.get_run(1), s.get_run(2)
    assert "=1+1" in first.tasks and "+cmd|' /C calc'!A0" in first.tasks
    assert back.tasks == first.tasks and back.measures == first.measures
    np.testing.assert_array_equal(
        s.affinity_steps(2, back.measures[0])[2], s.affinity_steps(1, first.measures[0])[2]
    )


def test_every_text_column_is_escaped_numbers_stay_numbers(tmp_path):
    df = pd.DataFrame(
        {
            "step": [1, 2, 3, 4],
            "source": ["=a", "-1", "'=b", "\tc"],
            "target": ["+d", "@e", "plain", "\uff1dfull"],
            "affinity": [-0.01, 0.5, -1e-300, np.nan],
            "measure": ["-x", " =lead", "lookahead", "lookahead"],
        }
    )
    data = table_bytes(df, ".csv")
    text = data.decode()
    assert "-0.01," in text and ",-1e-300," in text  # numeric cells: not quoted, not escaped
    assert "'=a" in text and '"-1"' in text  # a number as a name is harmless: kept readable
    cols, _ = parse_table(data, ".csv", "t.csv")
    assert list(cols["source"]) == ["=a", "-1", "'=b", "\tc"]
    assert list(cols["target"]) == ["+d", "@e", "plain", "\uff1dfull"]
    assert list(cols["measure"])[:2] == ["-x", " =lead"]  # the blank kept, too
    assert cols["affinity"][0] == "-0.01"  # read as text, converted exactly later


def test_app_download_and_zip_are_escaped_and_read_back(tmp_path):
    src = _case("security_formula_names.csv", tmp_path)
    parsed = read_run_file(src)
    for name in ("x.csv", "x.zip"):
        data = run_file_bytes(parsed, name, table_ext=".csv")
        if name.endswith(".csv"):
            assert not [c for c in _cells(data) if c and c[0] in FORMULA]
        (tmp_path / name).write_bytes(data)
        back = read_run_file(tmp_path / name)
        assert back.tasks == parsed.tasks and "=1+1" in back.tasks


def test_evaluate_report_csv_is_escaped(tmp_path):
    from mtl_core.experiments.report import write_report

    run = {
        "approach": "@tag",
        "seed": 0,
        "test_loss": {"=1+1": -0.5, "b": 0.25},
        "total_test_loss": -0.25,
        "predicted_value": None,
        "seconds": 1.0,
        "parameters": 3,
        "grouping": [["=1+1", "b"]],
    }
    p = write_report({"runs": [run]}, tmp_path / "r.csv")
    cells = _cells(p.read_bytes())
    assert not [c for c in cells if c and c[0] in "=+@"]
    assert "-0.5" in cells  # a number stays a number


@given(st.text(alphabet=st.sampled_from("'=+-@\t\r\nab1.\uff20 "), max_size=8))
def test_escape_is_undone_exactly(text):
    cell = escape_cell(text)
    assert unescape_cell(cell) == text
    if cell.lstrip(" \t\n\r")[:1] in TRIGGERS.strip() and cell.strip():
        float(cell)  # only a plain number may start (after blanks) with a trigger once written


# ----------------------------------------------------------------------------- item 6


@pytest.mark.slow
def test_terminal_escape_in_an_error_line_is_shown_escaped(tmp_path):
    src = _case("security_terminal_escape.csv", tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "mtl_core", "import", str(src), "--store", str(tmp_path / "s")],
        capture_output=True,
        cwd=ROOT,
    )
    err = proc.stderr
    assert proc.returncode == 2
    assert b"\x1b" not in err and b"\x07" not in err
    assert err.count(b"\n") == 1 and err.startswith(b"error: ")
    assert b"\\x1b]0;pwned\\x07" in err


def test_cli_output_never_carries_control_characters(tmp_path, capsys):
    store = str(tmp_path / "s.sqlite")
    bad = tmp_path / "bad.csv"
    bad.write_text('step,source,target,affinity\n0,"a\x1b[2J\u202e\rb",c,0.1\n')
    assert main(["import", str(bad), "--store", store, "--name", "n\x1b]0;x\x07"]) == 0
    assert main(["runs", "--store", store]) == 0
    assert main(["export", "7", "--out", str(tmp_path / "o\x1b[2J.zip"), "--store", store]) == 2
    out = capsys.readouterr()
    for text in (out.out, out.err):
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text
        assert "\u202e" not in text
    assert "n\\x1b]0;x\\x07" in out.out
    assert out.err.splitlines()[-1].startswith("error: ")


def test_one_line_and_escape_controls():
    assert one_line("a\nb\tc\x1b[0m\x9b\ud800") == "a\\nb\\tc\\x1b[0m\\x9b\\ud800"
    assert escape_controls("a\nb\tc\r") == "a\nb\tc\\r"
    assert escape_controls("naïve — 東京 😀") == "naïve — 東京 😀"


def test_argument_errors_are_escaped_too(capsys):
    with pytest.raises(SystemExit) as info:
        main(["runs", "--bogus\x1b]0;x\x07"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "\x1b" not in err and "\\x1b]0;x\\x07" in err
    assert err.count("\n") == 1


def test_an_unexpected_traceback_is_escaped_too(capsys, monkeypatch):
    def boom(path, **kw):
        raise RuntimeError("bad \x1b[2J cell")

    monkeypatch.setattr("mtl_core.runfile.read_run_file", boom)
    assert main(["import", "x.csv", "--store", "unused.sqlite"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "bad \\x1b[2J cell" in err and "\x1b" not in err
