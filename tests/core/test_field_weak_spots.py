"""Issue 21's weak spots the last round left: a ``#`` comment at the end of the header line,
a tab-separated ``.txt`` table with empty cells, and JSON objects of objects holding several
matrices (the orientation note and ``--rows`` for each)."""

from __future__ import annotations

import pytest

from mtl_core.errors import LabError
from mtl_core.runfile import read_run_file

HEADER_NOTE = "read the header before its end-of-line '#' comment and left the comment out"


# ----------------------------------------------------------------- '#' after the header


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"step,source,target,affinity # logged by X\n0,a,b,0.1\n1,b,a,0.2\n", "log.csv"),
        (b"step,source,target,affinity   # logged by X\r\n0,a,b,0.1\r\n1,b,a,0.2\r\n", "log.csv"),
        (b"step\tsource\ttarget\taffinity\t# logged\n0\ta\tb\t0.1\n1\tb\ta\t0.2\n", "log.tsv"),
        (b"step,source,target,affinity,# logged\n0,a,b,0.1\n1,b,a,0.2\n", "log.csv"),
        (b"step source target affinity # logged\n0 a b 0.1\n1 b a 0.2\n", "log.txt"),
    ],
)
def test_a_comment_after_the_header_is_left_out_like_a_rows(data, name):
    parsed = read_run_file(data, name)
    assert parsed.tasks == ["a", "b"]
    assert parsed.affinity["affinity"].tolist() == [0.1, 0.2]
    assert any(HEADER_NOTE in n and "(line 1)" in n for n in parsed.notes)


def test_header_and_row_comments_in_one_file_each_said_with_its_line():
    data = b"# run 3\nstep,source,target,affinity  # logged\n0,a,b,0.1  # resumed\n1,b,a,0.2\n"
    parsed = read_run_file(data, "log.csv")
    assert parsed.affinity["affinity"].tolist() == [0.1, 0.2]
    notes = " | ".join(parsed.notes)
    assert f"{HEADER_NOTE} (line 2)" in notes and "comment on 1 row(s)" in notes
    assert "(line 3)" in notes  # rows named as the file numbers them


def test_a_matrix_with_a_comment_after_its_header():
    parsed = read_run_file(b",a,b  # from TAG\na,1,0.5\nb,0.25,1\n", "m.csv")
    assert parsed.tasks == ["a", "b"]
    assert sorted(parsed.affinity["affinity"].tolist()) == [0.25, 0.5, 1.0, 1.0]


@pytest.mark.parametrize(
    "data",
    [
        b",a,task #2\na,1,0.5\ntask #2,0.25,1\n",  # a task named with '#'
        b"a,task #2\n1,0.5\n0.25,1\n",  # unlabelled: the names as written
        b'step,source,target,"affinity # x"\n0,a,b,0.1\n',  # quoted: a name
    ],
)
def test_a_hash_inside_a_header_name_is_kept(data):
    try:
        parsed = read_run_file(data, "m.csv")
    except LabError as exc:  # (the quoted one is a misnamed column, as before)
        assert "'affinity # x'" in str(exc)
        return
    assert parsed.tasks == ["a", "task #2"] and not any(HEADER_NOTE in n for n in parsed.notes)


# ----------------------------------------------------------------- tab-separated .txt


TABLES = {
    "labelled matrix": ",a,b,c\na,1,,0.3\nb,0.2,1,\nc,0.1,0.4,1\n",
    "unlabelled matrix": "a,b,c\n1,,0.3\n0.2,1,\n0.1,0.4,1\n",
    "long form": "step,source,target,affinity\n0,a,b,\n0,b,a,0.2\n1,a,b,0.3\n",
    "names with spaces": ",task 1,task 2\ntask 1,1,\ntask 2,0.25,1\n",
}


@pytest.mark.parametrize("table", list(TABLES))
def test_a_tab_separated_txt_with_empty_cells_reads_as_the_csv(table):
    text = TABLES[table]
    csv = read_run_file(text.encode(), "t.csv")
    txt = read_run_file(text.replace(",", "\t").encode(), "t.txt")
    assert txt.tasks == csv.tasks
    assert txt.affinity.equals(csv.affinity)
    assert (txt.left_out, txt.first_left_out) == (csv.left_out, csv.first_left_out) != (0, None)


def test_r_write_table_with_tabs_and_empty_cells_reads_row_names():
    txt = read_run_file(b"a\tb\tc\na\t1\t\t0.3\nb\t0.2\t1\t\nc\t0.1\t0.4\t1\n", "r.txt")
    csv = read_run_file(TABLES["labelled matrix"].encode(), "t.csv")
    assert txt.affinity.equals(csv.affinity) and txt.left_out == 2


@pytest.mark.parametrize(
    "data",
    [
        b"\ta\t\tb\na\t1\t\t0.5\nb\t0.25\t\t1\n",  # aligned by two tabs (an empty header name)
        b"\ta\tb\na\t1\t0.5\nb\t0.25\t\t1\n",  # rows with other counts of tabs
    ],
)
def test_a_tab_aligned_txt_still_reads_runs_of_blanks_as_one(data):
    parsed = read_run_file(data, "aligned.txt")
    assert parsed.affinity["affinity"].tolist() == [1.0, 0.5, 0.25, 1.0] and not parsed.left_out
    assert any("whitespace-separated" in n for n in parsed.notes)
