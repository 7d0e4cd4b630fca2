"""The wide (matrix) layout of the affinity table: read into exactly the long form's ParsedRun."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.errors import LabError
from mtl_core.runfile import ParsedRun, read_run_file, run_file_bytes
from mtl_core.store import Store

ROOT = Path(__file__).resolve().parents[2]
TASKS = ["price", "demand", "churn"]
# asymmetric on purpose (a transposed read would not match), values that only an exact
# parser round-trips, and one unmeasured cell
A = np.array(
    [
        [0.1 + 0.2, 1 / 3, -2.5e-17],
        [-7.0e-5, 0.04123456789012345, np.nan],
        [1e300, -1 / 7, 0.6],
    ]
)


def fmt(x: float) -> str:
    return "" if np.isnan(x) else repr(float(x))


def wide_csv(
    mat: np.ndarray, tasks: list[str], order: list[int] | None = None, corner: str = ""
) -> str:
    """A labelled square matrix, rows in ``order``."""
    rows = [",".join([corner, *tasks])]
    for i in order or range(len(tasks)):
        rows.append(",".join([tasks[i], *map(fmt, mat[i])]))
    return "\n".join(rows) + "\n"


def long_csv(mats: dict[tuple[int, str], np.ndarray], tasks: list[str]) -> str:
    """The long-form equivalent: one row per measured cell, row-major."""
    rows = ["step,source,target,affinity,measure"]
    for (step, measure), mat in mats.items():
        for i, s in enumerate(tasks):
            for j, t in enumerate(tasks):
                if not np.isnan(mat[i, j]):
                    rows.append(f"{step},{s},{t},{fmt(mat[i, j])},{measure}")
    return "\n".join(rows) + "\n"


def read(data: str | bytes, name: str = "m.csv") -> ParsedRun:
    return read_run_file(data.encode() if isinstance(data, str) else data, name)


def bad(data: str | bytes, name: str = "m.csv") -> str:
    with pytest.raises(LabError) as e:
        read(data, name)
    msg = str(e.value)
    assert msg.startswith(f"cannot import {name}") and "\n" not in msg
    return msg


def assert_same(a: ParsedRun, b: ParsedRun) -> None:
    """Same tasks, runs and cells, bit for bit (NaN-aware)."""
    assert a.tasks == b.tasks and a.runs == b.runs
    pd.testing.assert_frame_equal(a.affinity, b.affinity, check_exact=True)


def zipped(**members: str | bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name.replace("__", "."), data)
    return buf.getvalue()


def test_labelled_matrix_equals_its_long_form():
    wide = read(wide_csv(A, TASKS))
    long = read(long_csv({(0, "lookahead"): A}, TASKS))
    assert_same(wide, long)
    steps, tasks, m = wide.matrices("", "lookahead")
    assert steps.tolist() == [0] and tasks == TASKS
    assert np.array_equal(m[0], A, equal_nan=True)  # A[i, j]: row = source, column = target


@pytest.mark.parametrize("corner", ["", "source", "task"])
def test_permuted_rows_map_by_name(corner):
    p = read(wide_csv(A, TASKS, order=[2, 0, 1], corner=corner))
    assert_same(p, read(wide_csv(A, TASKS)))
    assert np.array_equal(p.matrices("", "lookahead")[2][0], A, equal_nan=True)


def test_unlabelled_square_matrix():
    text = ",".join(TASKS) + "\n" + "".join(",".join(map(fmt, r)) + "\n" for r in A)
    assert_same(read(text), read(wide_csv(A, TASKS)))


def test_empty_and_nan_cells_are_unmeasured():
    p = read(",a,b\na,1,\nb,nan,4\n")
    cells = set(zip(p.affinity["source"], p.affinity["target"]))
    assert cells == {("a", "a"), ("b", "b")}
    assert p.tasks == ["a", "b"]


def test_stacked_steps_with_measure_column():
    rng = np.random.default_rng(0)
    mats = {
        (0, "lookahead"): rng.normal(size=(3, 3)),
        (10, "lookahead"): rng.normal(size=(3, 3)),
        (10, "cosine"): rng.normal(size=(3, 3)),
    }
    mats[(10, "cosine")][1] = np.nan  # a partial block: one source row left out
    rows = ["source,step,measure," + ",".join(TASKS)]
    for (step, measure), mat in mats.items():
        for i in [1, 2, 0]:  # rows in any order inside a block
            if not np.isnan(mat[i]).all():
                rows.append(f"{TASKS[i]},{step},{measure}," + ",".join(map(fmt, mat[i])))
    wide = read("\n".join(rows) + "\n")
    assert_same(wide, read(long_csv(mats, TASKS)))
    assert wide.measures("") == ["lookahead", "cosine"]
    steps, _, m = wide.matrices("", "cosine")
    assert steps.tolist() == [10] and np.isnan(m[0, 1]).all()


def test_stacked_runs():
    text = "run,step,task,a,b\nr1,0,a,1,2\nr1,0,b,3,4\nr2,5,b,7,8\nr2,5,a,5,6\n"
    p = read(text)
    assert p.runs == ["r1", "r2"]
    assert p.matrices("r2", "lookahead")[2][0].tolist() == [[5, 6], [7, 8]]


def as_frame(mat: np.ndarray, tasks: list[str]) -> pd.DataFrame:
    return pd.DataFrame({t: mat[:, j] for j, t in enumerate(tasks)}, index=tasks)


@pytest.mark.parametrize("ext", [".parquet", ".jsonl", ".zip"])
def test_other_containers(ext):
    df = as_frame(A, TASKS)
    if ext == ".parquet":
        buf = io.BytesIO()
        df.to_parquet(buf)  # pandas keeps the index as the __index_level_0__ column
        data = buf.getvalue()
    elif ext == ".jsonl":
        recs = [
            {"source": t, **{c: (None if np.isnan(v) else float(v)) for c, v in r.items()}}
            for t, r in df.iterrows()
        ]
        data = "\n".join(json.dumps(r) for r in recs[::-1]).encode()
    else:
        buf = io.BytesIO()
        df.reset_index(names="source").to_parquet(buf, index=False)
        data = zipped(affinity__parquet=buf.getvalue(), meta__json=json.dumps({"tasks": TASKS}))
    assert_same(read(data, "m" + ext), read(wide_csv(A, TASKS)))


def test_pandas_to_csv_of_a_matrix_reads_as_is():
    text = as_frame(A, TASKS).to_csv()
    assert text.startswith(",price,demand,churn\n")
    assert_same(read(text), read(wide_csv(A, TASKS)))
    unlabelled = as_frame(A, TASKS).to_csv(index=False)
    assert_same(read(unlabelled), read(wide_csv(A, TASKS)))


def test_meta_tasks_order_and_check():
    aff = ",b,a\na,1,2\nb,3,4\n"
    p = read(zipped(affinity__csv=aff, meta__json=json.dumps({"tasks": ["a", "b", "c"]})), "r.zip")
    assert p.tasks == ["a", "b", "c"]  # meta.json's order; 'c' declared but not measured
    _, _, m = p.matrices("", "lookahead")
    assert m[0, 0, 1] == 1 and m[0, 1, 0] == 4 and np.isnan(m[0, 2]).all()
    msg = bad(zipped(affinity__csv=aff, meta__json=json.dumps({"tasks": ["a", "c"]})), "r.zip")
    assert "r.zip › affinity.csv: column 'b': task 'b' is not in meta.json's task list" in msg


def test_cell_errors_name_row_and_column():
    assert "m.csv: row 2 (line 3), column 'b': 'x' is not a number" in bad(",a,b\na,1,2\nb,3,x\n")
    assert "m.jsonl: line 1, column 'a': True is not a number" in bad(
        '{"source": "a", "a": true}\n', "m.jsonl"
    )
    assert "row 2 (line 3), column 'a': inf is not a finite number" in bad(",a,b\na,1,2\nb,inf,4\n")
    assert "line 2, column 'b': -inf is not a finite number" in bad(
        '{"task": "a", "a": 1, "b": 2}\n{"task": "b", "a": 3, "b": "-inf"}\n', "m.jsonl"
    )


def test_row_errors():
    msg = bad(",a,b,c\na,1,2,3\nx,4,5,6\nc,7,8,9\n")
    assert "row 2 (line 3), row-label column: task 'x' is not one of the matrix's columns" in msg
    assert "row 2 (line 3), row-label column: is empty" in bad(",a,b\na,1,2\n,3,4\n")
    msg = bad("source,step,a,b\na,0,1,2\nb,0,3,4\nb,1,5,6\nb,1,7,8\n")
    assert (
        "row 4 (line 5), column 'source': source 'b' has two rows in step 1 "
        "(first at row 3 (line 4))"
    ) in msg
    assert "source 'a' has two rows (first at row 1 (line 2))" in bad(",a,b\na,1,2\na,3,4\n")
    assert "column 'b' has no row labelled 'b'" in bad("task,a,b\na,1,2\n")
    assert "did you mean 'step'" in bad("task,stpe,a,b\na,0,1,2\nb,0,3,4\n")
    assert "row 2 (line 3), column 'step': '-1' is negative" in bad(
        "source,step,a\na,0,1\na,-1,2\n"
    )


def test_shape_errors():
    msg = bad("a,b\n1,2\n3,4\n5,6\n")
    assert "must be square" in msg and "2 columns (a, b) but 3 rows" in msg
    assert "the matrix has no values" in bad(",a,b\na,,\nb,,\n")


def test_long_form_errors_unchanged():
    msg = bad("step,source,target,affinty\n0,a,b,1\n")
    assert "missing column 'affinity'; found 'affinty' — rename it to 'affinity'" in msg
    msg = bad("step,source,targt,affinty\n0,a,b,1\n")  # misspelt long columns are not tasks
    assert "missing column 'target'; found 'targt'" in msg
    # neither layout: the long-form message, which points at the matrix layout too
    for text in ("step,src,dst,val\n0,a,b,1\n", "src,dst,val\na,b,1\n", "name,a,b\na,1,2\nb,3,4\n"):
        msg = bad(text)
        assert "missing column" in msg and "square matrix with task names as header" in msg


def test_round_trip_through_store(tmp_path):
    store = Store(tmp_path / "store.sqlite")
    text = "source,step,measure,a,b,c\n" + "".join(
        f"{t},{s},{m},{fmt(A[i, 0] * (s + 1))},{fmt(A[i, 1])},{fmt(A[i, 2] - s)}\n"
        for s in (0, 3)
        for m in ("lookahead", "cosine")
        for i, t in enumerate("abc")
    )
    wide = read(text)
    (rid,) = store.import_parsed(wide, "wide upload")
    exported = store.export_parsed(rid)
    for ext in (".zip", ".csv"):
        back = read_run_file(run_file_bytes(exported, "x" + ext), "x" + ext)
        assert back.tasks == wide.tasks and back.runs == wide.runs
        assert set(back.measures("")) == set(wide.measures(""))
        for m in wide.measures(""):
            sa, ta, ma = wide.matrices("", m)
            sb, tb, mb = back.matrices("", m)
            assert ta == tb and sa.tolist() == sb.tolist()
            assert np.array_equal(ma, mb, equal_nan=True)  # bit-exact, gaps included


def test_example_matrix_file():
    p = read_run_file(ROOT / "examples" / "run-format" / "affinity_matrix.csv")
    steps, tasks, m = p.matrices("", "lookahead")
    assert len(tasks) == 4 and steps.tolist() == [0]
    a = m[0]
    assert np.isfinite(a).all()
    assert all(a[i, i] == a[i].max() == a[:, i].max() for i in range(4))
