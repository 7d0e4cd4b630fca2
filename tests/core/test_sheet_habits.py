"""Issue 21 kind 5: spreadsheet and R habits (field3 G15, G23, G24b, G46, plus the same kinds
made here): comment lines, ``sep=``, R's short header, Excel's trailing empties and error
cells, NA marks, ISO-8601 wall times, an npz's ``task_names``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.commands.cli import main
from mtl_core.runfile.read import read_run_file
from mtl_core.runfile.sheet_habits import MISSING_MARKS

DATA = Path(__file__).resolve().parents[1] / "data" / "field3"
REF = pd.read_csv(DATA / "G00_reference_matrix.csv", index_col=0)


def _matrix(parsed) -> pd.DataFrame:
    a = parsed.affinity
    return a.pivot_table(index="source", columns="target", values="affinity", dropna=False)


def _same_as_reference(parsed, missing: set[tuple[str, str]] = frozenset()) -> None:
    got = _matrix(parsed).reindex(index=REF.index, columns=REF.columns)
    want = REF.copy()
    for s, t in missing:
        want.loc[s, t] = np.nan
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=1e-12)


def test_g15_comment_lines_skipped_and_said():
    parsed = read_run_file(DATA / "G15_tsv_comment_header.tsv")
    _same_as_reference(parsed)
    assert any("skipped 2 '#' comment line(s)" in n for n in parsed.notes)


def test_g23_r_na_is_unmeasured_and_reported():
    parsed = read_run_file(DATA / "G23_R_write_csv.csv")
    _same_as_reference(parsed, {("depth_zbuffer", "edge_texture")})
    assert parsed.left_out == 1 and "column 'edge_texture'" in parsed.first_left_out


def test_g46_excel_error_cells_unmeasured():
    parsed = read_run_file(DATA / "G46_excel_error_cells.csv")
    _same_as_reference(parsed, {("segment_semantic", "edge_texture"), ("normal", "depth_zbuffer")})
    assert parsed.left_out == 2
    assert "missing-value mark such as NA, #N/A, #DIV/0!" in parsed.warnings()[0]


def test_g24b_trailing_empty_columns_and_rows_dropped():
    parsed = read_run_file(DATA / "G24b_excel_trailing_empty_cells.csv")
    _same_as_reference(parsed)
    assert any("dropped 2 empty column(s) and 2 empty row(s)" in n for n in parsed.notes)
    assert parsed.left_out == 0


def test_a_nameless_column_with_values_is_refused_by_position():
    data = b",a,b,\na,0.1,0.2,\nb,0.3,0.4,9\n"
    with pytest.raises(Exception, match="column 4 has no name in the header but holds values"):
        read_run_file(data, "x.csv")


@pytest.mark.parametrize("case", ["G15_tsv_comment_header.tsv", "G23_R_write_csv.csv",
                                  "G24b_excel_trailing_empty_cells.csv",
                                  "G46_excel_error_cells.csv"])  # fmt: skip
def test_cli_imports_each_case(case, tmp_path, capsys):
    assert main(["import", str(DATA / case), "--store", str(tmp_path / "s.sqlite")]) == 0
    out = capsys.readouterr()
    assert "imported run 1" in out.out and "4 tasks" in out.out
    assert "Traceback" not in out.err


def test_excel_sep_line_declares_the_delimiter():
    parsed = read_run_file(b"sep=;\n;a;b\na;0,1;0,2\nb;0,3;0,4\n", "eu.csv")
    assert _matrix(parsed).loc["b", "a"] == pytest.approx(0.3)
    assert any("'sep=;' honoured" in n for n in parsed.notes)


def test_r_write_table_short_header_is_row_names():
    square = b'"a" "b"\n"a" 0.1 0.2\n"b" 0.3 NA\n'.replace(b" ", b",")
    parsed = read_run_file(square, "m.csv")
    assert _matrix(parsed).loc["a", "b"] == pytest.approx(0.2) and parsed.left_out == 1
    assert any("one name short" in n for n in parsed.notes)
    # a long table from write.table(df): R's row names 1, 2, ...
    long = b"step,source,target,affinity\n1,0,a,b,0.5\n2,0,b,a,0.25\n"
    aff = read_run_file(long, "l.csv").affinity
    assert aff["affinity"].tolist() == [0.5, 0.25] and aff["source"].tolist() == ["a", "b"]


def test_missing_marks_cover_pandas_defaults():
    from pandas._libs.parsers import STR_NA_VALUES

    assert set(STR_NA_VALUES) <= MISSING_MARKS
    assert {"#DIV/0!", "#N/A", "NA", "null", "None"} <= MISSING_MARKS


def test_a_mark_where_a_value_is_required_is_named():
    with pytest.raises(Exception, match=r"'NA' is a missing-value mark where a value is required"):
        read_run_file(b"step,source,target,affinity\nNA,a,b,0.1\n", "l.csv")


def test_iso_wall_time_read_or_left_out_with_a_note():
    iso = b"step,source,target,affinity,wall_time\n1,a,b,0.1,2026-12-07T09:30:00Z\n"
    iso += b"1,b,a,0.2,2026-12-07T10:30:01+01:00\n"
    p = read_run_file(iso, "w.csv")
    want = pd.Timestamp("2026-12-07T09:30:00Z").timestamp()
    assert p.affinity["wall_time"].tolist() == [want, want + 1]
    odd = b"step,source,target,affinity,wall_time\n1,a,b,0.1,yesterday\n"
    p = read_run_file(odd, "x.csv")
    assert p.affinity["wall_time"].isna().all() and p.affinity["affinity"].tolist() == [0.1]
    assert any("'wall_time' is neither numbers" in n for n in p.notes)


def test_npz_task_names_used():
    buf = io.BytesIO()
    np.savez(buf, affinity=np.full((3, 3), 0.1), task_names=np.array(["x", "y", "z"]))
    p = read_run_file(buf.getvalue(), "m.npz")
    assert p.tasks == ["x", "y", "z"]
    assert any("'task_names' read as the 'tasks'" in n for n in p.notes)


def test_r_write_table_default_space_separator():
    parsed = read_run_file(b'"a" "b"\n"a" 0.1 0.2\n"b" 0.3 NA\n', "m.csv")
    assert _matrix(parsed).loc["b", "a"] == pytest.approx(0.3) and parsed.left_out == 1
