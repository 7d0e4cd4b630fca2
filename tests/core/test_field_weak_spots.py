"""Issue 21's weak spots the last round left: a ``#`` comment at the end of the header line,
a tab-separated ``.txt`` table with empty cells, and JSON objects of objects holding several
matrices (the orientation note and ``--rows`` for each)."""

from __future__ import annotations

import json

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


# ----------------------------------------------------------------- several JSON matrices

ONE = {"a": {"a": 1, "b": 0.5}, "b": {"a": 0.2, "b": 1}}  # file[target][source]
SYM = {"a": {"a": 1, "b": 0.5}, "b": {"a": 0.5, "b": 1}}
LATER = {"a": {"a": 1, "b": 0.7}, "b": {"a": 0.1, "b": 1}}
EPOCHS = {t: [ONE[t], LATER[t]] for t in ONE}  # TAG's transference.json, per epoch
STEPS = {"0": ONE, "100": LATER}  # json.dump({step: df.to_dict()})


def _cells(parsed) -> dict[tuple[int, str, str], float]:
    a = parsed.affinity
    return {(int(s), x, y): v for s, x, y, v in zip(a["step"], a["source"], a["target"],
                                                     a["affinity"])}  # fmt: skip


@pytest.mark.parametrize(("doc", "steps"), [(EPOCHS, (0, 1)), (STEPS, (0, 100))])
def test_each_matrix_of_a_json_file_reads_and_flips_the_same_way(doc, steps):
    plain = read_run_file(json.dumps(doc).encode(), "m.json")
    flipped = read_run_file(json.dumps(doc).encode(), "m.json", rows="target")
    for step, mat in zip(steps, (ONE, LATER)):
        for t, inner in mat.items():
            for s, v in inner.items():
                assert _cells(plain)[(step, s, t)] == v  # outer keys targets, in each
                assert _cells(flipped)[(step, t, s)] == v  # declared: sources, in each
    for parsed, outer in ((plain, "TARGETS"), (flipped, "SOURCES")):
        assert parsed.json_object  # the Upload page's flip toggle is offered
        note = parsed.orientation_note()
        assert note is not None and f"outer keys read as {outer}" in note
        assert "in each of its 2 matrices" in note and "it flips every matrix" in note
        assert not any(n.startswith("rows are targets (declared)") for n in parsed.notes)


def test_the_cell_shown_is_the_same_pair_both_ways_at_its_step():
    doc = json.dumps({"0": SYM, "100": ONE}).encode()  # the first matrix reads either way
    plain = read_run_file(doc, "m.json").orientation_note()
    flipped = read_run_file(doc, "m.json", rows="target").orientation_note()
    assert "source 'a' onto target 'b' at step 100 = that step's matrix['b']['a'] = 0.2" in plain
    assert "source 'a' onto target 'b' at step 100 = that step's matrix['a']['b'] = 0.5" in flipped


@pytest.mark.parametrize("doc", [{t: [SYM[t], SYM[t]] for t in SYM}, {"0": SYM, "5": SYM}])
def test_symmetric_in_every_matrix_is_said_once(doc):
    note = read_run_file(json.dumps(doc).encode(), "m.json").orientation_note()
    assert "every matrix is symmetric, so either way reads the same" in note


def test_one_asymmetric_matrix_among_symmetric_ones_is_not_called_symmetric():
    note = read_run_file(json.dumps({"0": SYM, "1": ONE}).encode(), "m.json").orientation_note()
    assert "symmetric" not in note and "flip it with --rows target" in note


def test_one_matrix_note_unchanged():
    note = read_run_file(json.dumps(ONE).encode(), "m.json").orientation_note()
    assert note.endswith(
        "(pandas' default to_json(), TAG's notebooks): source 'a' onto target 'b' = "
        "file['b']['a'] = 0.2; a to_json(orient='index') file has sources outside: flip it "
        "with --rows target (Upload: 'Outer keys are sources')"
    )
    sym = read_run_file(json.dumps(SYM).encode(), "m.json").orientation_note()
    assert sym.endswith("; the matrix is symmetric, so either way reads the same")


def test_a_bad_cell_in_a_later_step_is_named_with_its_step():
    doc = {"0": ONE, "100": {"a": {"a": 1, "b": [0.7]}, "b": {"a": 0.1, "b": 1}}}
    with pytest.raises(LabError, match=r"key '100', key 'a', inner key 'b'.*is not a number"):
        read_run_file(json.dumps(doc).encode(), "m.json")


def test_the_docs_example_of_matrices_per_step_reads_as_said():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "run-format.md").read_text()
    start = doc.index('    {"0":')
    block = doc[start : doc.index("\n\n", start)]
    parsed = read_run_file(block.encode(), "per_step.json")
    assert _cells(parsed)[(100, "seg", "depth")] == 0.004  # file["100"]["depth"]["seg"]
    assert "in each of its 2 matrices" in parsed.orientation_note()
