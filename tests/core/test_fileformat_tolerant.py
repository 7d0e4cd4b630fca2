"""Files as other tools write them: semicolon/tab delimiters, header case, a JSON array, NumPy.

Every accepted variant must read to exactly the cells of the plain comma CSV; every refused one
gives one ``cannot import <file>: ...`` line, and nothing is ever unpickled.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.errors import LabError
from mtl_core.runfile import ParsedRun, read_run_file

ROOT = Path(__file__).resolve().parents[2]
TASKS = ["price", "Demand", "churn"]  # one upper-case task: task columns keep their case
# asymmetric (a transposed read would not match), values only an exact parser round-trips,
# one unmeasured cell
A = np.array(
    [
        [0.1 + 0.2, 1 / 3, -2.5e-17],
        [-7.0e-5, 0.04123456789012345, np.nan],
        [1e300, -1 / 7, 0.6],
    ]
)
B = A[::-1, ::-1] * -3.0  # a second step's matrix


def fmt(x: float) -> str:
    return "" if np.isnan(x) else repr(float(x))


def read(data: str | bytes, name: str, **kw) -> ParsedRun:
    return read_run_file(data.encode() if isinstance(data, str) else data, name, **kw)


def bad(data: str | bytes, name: str, **kw) -> str:
    with pytest.raises(LabError) as e:
        read(data, name, **kw)
    msg = str(e.value)
    assert msg.startswith(f"cannot import {name}") and "\n" not in msg, msg
    return msg


def same(p: ParsedRun, q: ParsedRun) -> None:
    """Same tasks and exactly the same cells (bit for bit, -0.0 and all)."""
    assert p.tasks == q.tasks and p.runs == q.runs
    pd.testing.assert_frame_equal(p.affinity, q.affinity, check_exact=True)
    assert [v.hex() for v in p.affinity["affinity"]] == [v.hex() for v in q.affinity["affinity"]]


def long_text(sep: str = ",", header: list[str] | None = None, wall: bool = True) -> str:
    """Steps 1 (A) and 11 (B) in the long form, row-major, the NaN cells left out."""
    head = header or ["step", "source", "target", "affinity", "measure", "wall_time"]
    rows = [sep.join(head if wall else head[:-1])]
    for step, mat in ((1, A), (11, B)):
        for i, s in enumerate(TASKS):
            for j, t in enumerate(TASKS):
                if not np.isnan(mat[i, j]):
                    row = [str(step), s, t, fmt(mat[i, j]), "lookahead"]
                    rows.append(sep.join(row + [repr(1.7e9 + step + 0.25)] * wall))
    return "\n".join(rows) + "\n"


def wide_texts(sep: str = ",") -> dict[str, str]:
    """The three wide layouts of docs/run-format.md."""
    labelled = [sep.join(["", *TASKS])]
    labelled += [sep.join([t, *map(fmt, A[i])]) for i, t in enumerate(TASKS)]
    bare = [sep.join(TASKS)] + [sep.join(map(fmt, A[i])) for i in range(3)]
    stacked = [sep.join(["source", "step", *TASKS])]
    for step, mat in ((1, A), (11, B)):
        stacked += [sep.join([t, str(step), *map(fmt, mat[i])]) for i, t in enumerate(TASKS)]
    return {
        k: "\n".join(v) + "\n"
        for k, v in {"labelled": labelled, "bare": bare, "stacked": stacked}.items()
    }


# ----------------------------------------------------------------------------- delimiters


@pytest.mark.parametrize("sep,ext", [(";", ".csv"), ("\t", ".csv"), ("\t", ".tsv"), (",", ".tsv")])
def test_long_table_any_delimiter_reads_like_comma(sep, ext):
    want = read(long_text(), "run.csv")
    assert len(want.affinity) == 16 and want.affinity["wall_time"].notna().all()
    same(read(long_text(sep), f"run{ext}"), want)
    same(
        read(b"\xef\xbb\xbf" + long_text(sep).replace("\n", "\r\n").encode(), f"run{ext}"), want
    )  # what Excel writes: a BOM and CRLF


@pytest.mark.parametrize("sep,ext", [(";", ".csv"), ("\t", ".csv"), ("\t", ".tsv")])
@pytest.mark.parametrize("layout", ["labelled", "bare", "stacked"])
def test_wide_matrix_any_delimiter_reads_like_comma(sep, ext, layout):
    want = read(wide_texts()[layout], "m.csv")
    got = read(wide_texts(sep)[layout], f"m{ext}")
    same(got, want)
    assert got.tasks == TASKS
    steps, tasks, mats = got.matrices("", "lookahead")
    assert np.array_equal(mats[0], A, equal_nan=True)  # A[i, j]: row = source i


def test_delimiter_comes_from_the_header_outside_quotes():
    # more semicolons than commas in the header, but all inside one quoted task name
    text = ',"a;b;c;d",e\n"a;b;c;d",0.5,0.25\ne,-1.5,2.0\n'
    p = read(text, "m.csv")
    assert p.tasks == ["a;b;c;d", "e"]
    # a tab file with commas in its names (and a comma-free .tsv with a single column)
    p = read("\tx,1\ty,2\nx,1\t0.5\t1.5\ny,2\t2.5\t3.5\n", "m.tsv")
    assert p.tasks == ["x,1", "y,2"] and p.affinity["affinity"].tolist() == [0.5, 1.5, 2.5, 3.5]
    assert read("solo\n0.5\n", "m.tsv").tasks == ["solo"]


def test_semicolon_and_tab_tables_inside_a_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("affinity.csv", long_text(";"))
        z.writestr("metrics.tsv", "step\ttask\tsplit\tmetric\tvalue\n1\tprice\tval\tloss\t0.5\n")
        z.writestr("meta.json", json.dumps({"tasks": TASKS}))
    p = read(buf.getvalue(), "r.zip")
    same(p, read(long_text(), "run.csv"))
    assert p.metrics["value"].tolist() == [0.5] and p.tasks_declared


def test_decimal_comma_is_named_plainly():
    # in a ';' file a decimal comma is unambiguous (European spreadsheets): read, and noted
    p = read("step;source;target;affinity\n1;a;b;0,1\n", "eu.csv")
    assert p.affinity["affinity"].tolist() == [0.1] and "decimal commas" in p.notes[0]
    assert "'1.234,5' is not a number (use '.' as the decimal point)" in bad(
        "step;source;target;affinity\n1;a;b;1.234,5\n", "eu.csv"
    )
    # a bare semicolon matrix of decimal commas is a matrix
    p = read("a;b\n0,1;0,2\n0,3;0,4\n", "m.csv")
    assert p.matrices("", "lookahead")[2][0].tolist() == [[0.1, 0.2], [0.3, 0.4]]
    # in a comma-separated file the comma is the delimiter: a quoted '0,1' is refused
    msg = bad('step,source,target,affinity\n1,a,b,"0,1"\n', "c.csv")
    assert "'0,1' is not a number (use '.' as the decimal point)" in msg
    assert "(use '.' as the decimal point)" not in bad(
        "step;source;target;affinity\n1;a;b;abc\n", "eu.csv"
    )
    assert "not a readable semicolon-separated table" in bad(
        "step;source;target;affinity\n1;a;b;0.1;extra\n", "eu.csv"
    )


# ----------------------------------------------------------------------------- header case


def test_known_column_names_ignore_case_and_spaces():
    want = read(long_text(), "run.csv")
    head = [" Step", "SOURCE ", "Target", "Affinity", "Measure", "Wall_Time"]
    same(read(long_text(header=head), "run.csv"), want)
    same(read(long_text(";", header=head), "run.csv"), want)
    rows = [{"Step": 0, "Source": "a", "Target": "b", "AFFINITY": 0.5}]
    assert read(json.dumps(rows), "r.json").affinity["affinity"].tolist() == [0.5]


def test_wide_task_columns_keep_their_case():
    # 'Source' and 'Step' are the layout's columns; 'Demand' and 'PRICE' are tasks
    text = "Source;Step;PRICE;Demand\nPRICE;3;0.1;0.2\nDemand;3;0.3;0.4\n"
    p = read(text, "m.csv")
    assert p.tasks == ["PRICE", "Demand"]
    assert p.affinity["step"].tolist() == [3] * 4
    assert p.affinity[["source", "target"]].values.tolist() == [
        ["PRICE", "PRICE"],
        ["PRICE", "Demand"],
        ["Demand", "PRICE"],
        ["Demand", "Demand"],
    ]


def test_header_case_errors_stay_clear():
    assert "columns 'step' and 'Step' are both 'step'" in bad(
        "step,Step,source,target,affinity\n1,1,a,b,0.5\n", "x.csv"
    )
    assert "missing column 'step'; found 'Steps'" in bad(
        "Steps,source,target,affinity\n1,a,b,0.5\n", "x.csv"
    )


# ----------------------------------------------------------------------------- JSON array


def test_json_array_reads_like_jsonl():
    df = read(long_text(), "run.csv").affinity[
        ["step", "source", "target", "affinity", "measure", "wall_time"]
    ]
    recs = df.to_dict("records")
    jsonl = "".join(json.dumps(r) + "\n" for r in recs)
    same(read(json.dumps(recs, indent=1), "run.json"), read(jsonl, "run.jsonl"))
    same(read(json.dumps(recs), "run.json"), read(long_text(), "run.csv"))
    # wide rows: the labelled matrix as row objects
    rows = [
        {"": t, **{u: None if np.isnan(A[i, j]) else A[i, j] for j, u in enumerate(TASKS)}}
        for i, t in enumerate(TASKS)
    ]
    same(read(json.dumps(rows), "m.json"), read(wide_texts()["labelled"], "m.csv"))


def test_json_wrong_shapes_say_what_is_expected():
    want = "expected a JSON array of row objects"
    msg = bad(json.dumps({"affinity": [], "metrics": []}), "r.json")
    assert want in msg and "found an object (keys: 'affinity', 'metrics')" in msg
    assert want in bad("3.5", "r.json") and "found a number" in bad("3.5", "r.json")
    assert "row 2 is an array; " + want in bad('[{"step": 0}, [1, 2]]', "r.json")
    assert "the array has no rows" in bad("[]", "r.json")
    # one object per line in a .json (Ray Tune's result.json) is read as JSON Lines
    assert "missing column 'source'" in bad('{"step": 0}\n{"step": 1}\n', "r.json")
    assert "not valid JSON" in bad("[{", "r.json")
    p = read(
        '[{"step": 0, "source": "a", "target": "b", "affinity": 1},'
        ' {"step": 0, "source": "b", "target": "a"}]',
        "r.json",
    )
    assert p.left_out == 1 and p.first_left_out == "row 2"  # no value: unmeasured


# ----------------------------------------------------------------------------- NumPy


def npy(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, **kw)
    return buf.getvalue()


def npz(*arrays: np.ndarray, compressed: bool = False, **named: np.ndarray) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, *arrays, **named)
    return buf.getvalue()


def cells(p: ParsedRun) -> dict[tuple[int, str, str], float]:
    a = p.affinity
    return {
        (int(s), src, tgt): v
        for s, src, tgt, v in zip(a["step"], a["source"], a["target"], a["affinity"])
    }


def test_npy_one_matrix_is_step_zero_source_rows():
    p = read(npy(A), "a.npy")
    assert p.tasks == ["t0", "t1", "t2"]
    got = cells(p)
    assert len(got) == 8 and (0, "t1", "t2") not in got  # the NaN cell is absent
    for i in range(3):
        for j in range(3):
            if not np.isnan(A[i, j]):  # A[i, j] is source i -> target j, bit for bit
                assert got[(0, f"t{i}", f"t{j}")].hex() == A[i, j].hex()
    steps, tasks, mats = p.matrices("", "lookahead")
    assert steps.tolist() == [0] and np.array_equal(mats[0], A, equal_nan=True)


def test_npy_stack_is_steps_zero_to_s():
    stack = np.stack([A, B, A.T])
    steps, tasks, mats = read(npy(stack), "a.npy").matrices("", "lookahead")
    assert steps.tolist() == [0, 1, 2] and tasks == ["t0", "t1", "t2"]
    assert np.array_equal(mats, stack, equal_nan=True)
    # float32 and int arrays convert exactly
    f32 = np.array([[0.1, -1 / 3], [2.5e-7, np.nan]], dtype=np.float32)
    assert np.array_equal(
        read(npy(f32), "a.npy").matrices("", "lookahead")[2][0],
        f32.astype(np.float64),
        equal_nan=True,
    )
    ints = np.array([[1, -2], [3, 4]])
    assert read(npy(ints), "a.npy").affinity["affinity"].tolist() == [1.0, -2.0, 3.0, 4.0]


def test_npz_with_tasks_and_steps():
    stack = np.stack([A, B])
    p = read(npz(affinity=stack, tasks=np.array(TASKS), steps=np.array([1, 11])), "a.npz")
    same(p, read(long_text(wall=False), "run.csv"))
    assert cells(p)[(11, "churn", "price")] == B[2, 0]
    # np.savez(path, A): the only array is the affinity; tasks alone; steps alone
    p = read(npz(A, tasks=np.array(["x", "y", "z"])), "b.npz")
    assert p.tasks == ["x", "y", "z"] and cells(p)[(0, "x", "y")] == A[0, 1]
    p = read(npz(A, steps=np.array([7])), "b.npz")
    assert p.affinity["step"].unique().tolist() == [7] and p.tasks == ["t0", "t1", "t2"]
    p = read(npz(matrices=stack, compressed=True), "c.npz")
    assert np.array_equal(p.matrices("", "lookahead")[2], stack, equal_nan=True)


def test_example_npz_matches_the_example_csv():
    folder = ROOT / "examples" / "run-format"
    same(read_run_file(folder / "affinity_steps.npz"), read_run_file(folder / "affinity.csv"))


def test_npz_imports_into_the_store(store):
    (rid,) = store.import_parsed(read(npz(affinity=A, tasks=np.array(TASKS)), "a.npz"), "a")
    steps, tasks, mats = store.affinity_steps(rid, "lookahead")
    assert tasks == TASKS and np.array_equal(mats[0], A, equal_nan=True)


class Boom:
    """Unpickling this would record itself: the reader must never get that far."""

    def __reduce__(self):
        return (UNPICKLED.append, ("boom",))


UNPICKLED: list[str] = []


def test_object_arrays_are_refused_never_unpickled():
    obj = np.empty(2, dtype=object)
    obj[:] = [Boom(), Boom()]
    msg = bad(npy(obj, allow_pickle=True), "evil.npy")
    assert "holds Python objects" in msg and "never unpickled" in msg
    msg = bad(npz(A, tasks=np.array(TASKS, dtype=object)), "t.npz")
    assert msg.startswith("cannot import t.npz › tasks: holds Python objects")
    assert "np.array(names, dtype=str)" in msg
    bad(npz(affinity=obj), "evil.npz")
    import pickle

    assert "not a NumPy .npy array" in bad(pickle.dumps(Boom()), "evil.npy")
    assert UNPICKLED == []


@pytest.mark.parametrize(
    "shape,what",
    [
        ((3,), "shape (3,) has 1 dimension"),
        ((2, 3), "shape (2, 3) is not square"),
        ((2, 3, 4), "shape (2, 3, 4) is not square"),
        ((1, 2, 2, 2), "shape (1, 2, 2, 2) has 4 dimensions"),
        ((0, 0), "shape (0, 0) holds no cells"),
        ((), "shape () has 0 dimensions"),
    ],
)
def test_bad_shapes_are_named(shape, what):
    msg = bad(npy(np.zeros(shape)), "a.npy")
    assert what in msg and "expected (n, n)" in msg and "(S, n, n)" in msg
    assert what in bad(npz(affinity=np.zeros(shape)), "a.npz")


def test_infinite_and_empty_cells():
    # one rule: a non-finite cell is unmeasured, left out and reported with its place
    m = A.copy()
    m[1, 0] = np.inf
    p = read(npy(m), "a.npy")  # A[1, 2] is NaN already
    assert p.left_out == 2 and p.first_left_out == "a.npy, cell A[1, 0]"
    assert (
        len(p.affinity) == 7
        and not ((p.affinity["source"] == "t1") & (p.affinity["target"] == "t0")).any()
    )
    stack = np.stack([A, A])
    stack[1, 2, 0] = -np.inf
    stack[1, 2, 1] = np.inf
    p = read(npz(affinity=stack, tasks=np.array(TASKS), steps=np.array([5, 10])), "a.npz")
    assert p.left_out == 4 and p.first_left_out == "a.npz › affinity, cell A[0, 1, 2]"
    assert "left out 4 cells" in p.warnings()[0]
    assert "every cell is NaN or infinite" in bad(npy(np.full((2, 2), np.nan)), "a.npy")
    assert "dtype complex128 is not a number array" in bad(npy(np.eye(2) + 0j), "a.npy")
    assert "dtype <U1 is not a number array" in bad(npy(np.array([["a"]])), "a.npy")


def test_npz_parts_errors():
    assert "tasks: shape (2,); expected 3 task names" in bad(
        npz(A, tasks=np.array(["a", "b"])), "a.npz"
    )
    assert "task 'a' is listed twice" in bad(npz(A, tasks=np.array(["a", "b", "a"])), "a.npz")
    assert "steps: shape (3,); expected 2 steps" in bad(
        npz(np.stack([A, B]), steps=np.array([0, 1, 2])), "a.npz"
    )
    assert "steps[1] = -4 is negative" in bad(
        npz(np.stack([A, B]), steps=np.array([0, -4])), "a.npz"
    )
    assert "steps[0] = 1.5 is not a whole number" in bad(npz(A, steps=np.array([1.5])), "a.npz")
    assert "step 3 appears twice" in bad(npz(np.stack([A, B]), steps=np.array([3, 3])), "a.npz")
    assert "unknown array 'task'; did you mean 'tasks'?" in bad(
        npz(A, task=np.array(TASKS)), "a.npz"
    )
    assert "holds several arrays ('arr_0', 'arr_1')" in bad(npz(A, B), "a.npz")
    assert "no affinity array (it holds 'tasks')" in bad(npz(tasks=np.array(TASKS)), "a.npz")


def test_broken_or_mislabelled_numpy_files():
    assert "not a NumPy .npy array" in bad(long_text(), "a.npy")
    assert "not a NumPy .npz archive" in bad(npy(A), "a.npz")
    assert "not a NumPy .npy array" in bad(npz(A), "a.npy")
    data = npz(A)
    assert "not a readable .npz archive" in bad(data[: len(data) // 2], "a.npz")
    assert "not a readable .npy array" in bad(npy(A)[:60], "a.npy")
    # a forged header promising a huge array is refused before any allocation
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    assert "truncated: its header promises shape (1000000, 1000000)" in bad(
        buf.getvalue() + bytes(64), "a.npy"
    )


def test_size_limit_applies_to_numpy_files():
    data = npy(A)
    assert "over the" in bad(data, "a.npy", max_bytes=len(data) - 1)
    packed = npz(affinity=np.zeros((300, 300)), compressed=True)
    assert "unpacks to" in bad(packed, "a.npz", max_bytes=len(packed) * 4)
    assert "over the" in bad(long_text(";"), "a.tsv", max_bytes=10)


def test_unsupported_extension_lists_the_new_ones():
    msg = bad(long_text(), "run.xlsx")
    for ext in (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".npy", ".npz", ".zip"):
        assert ext in msg
