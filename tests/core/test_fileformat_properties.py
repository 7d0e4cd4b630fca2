"""Property tests: a malformed run file gives one clear LabError and leaves the store as is."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtl_core.errors import LabError
from mtl_core.runfile import read_run_file
from mtl_core.store import Store

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CONTAINERS = [".csv", ".jsonl", ".parquet", ".zip"]
REQUIRED = ["step", "source", "target", "affinity"]


@st.composite
def valid_tables(draw):
    n = draw(st.integers(2, 4))
    tasks = [f"task{i}" for i in range(n)]
    steps = sorted(draw(st.sets(st.integers(0, 10_000), min_size=1, max_size=3)))
    vals = draw(
        st.lists(
            st.floats(-1e6, 1e6, allow_nan=False),
            min_size=len(steps) * n * n,
            max_size=len(steps) * n * n,
        )
    )
    rows = [(s, a, b) for s in steps for a in tasks for b in tasks]
    df = pd.DataFrame(rows, columns=["step", "source", "target"])
    df["affinity"] = vals
    return df.astype(object), tasks


def serialize(df: pd.DataFrame, ext: str, tasks: list[str]) -> bytes:
    if ext == ".csv":
        return df.to_csv(index=False).encode()
    if ext == ".jsonl":
        return "".join(json.dumps(r) + "\n" for r in df.to_dict("records")).encode()
    if ext == ".parquet":
        cols = {}
        for c in df.columns:
            vals = df[c].tolist()
            kinds = {type(v) for v in vals if v is not None}
            if len(kinds) > 1:  # mixed after a mutation: store the column as text
                vals = [None if v is None else str(v) for v in vals]
            cols[c] = pa.array(vals)
        buf = io.BytesIO()
        pq.write_table(pa.table(cols), buf)
        return buf.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("affinity.csv", serialize(df, ".csv", tasks))
        z.writestr("meta.json", json.dumps({"tasks": tasks}))
    return buf.getvalue()


MUTATIONS = [
    "drop",
    "rename",
    "bad_affinity",
    "bad_step",
    "bad_name",
    "unknown_task",
    "duplicate",
    "empty",
    "extension",
    "too_big",
    "truncate",
]


@st.composite
def malformed(draw):
    df, tasks = draw(valid_tables())
    ext = draw(st.sampled_from(CONTAINERS))
    kind = draw(st.sampled_from(MUTATIONS))
    row = draw(st.integers(0, len(df) - 1))
    name = f"upload{ext}"
    max_bytes = None
    expect: list[str] = []
    if kind == "drop":
        col = draw(st.sampled_from(REQUIRED))
        df = df.drop(columns=[col])
        expect = [f"missing column {col!r}"]
    elif kind == "rename":
        col = draw(st.sampled_from(REQUIRED))
        # case and surrounding spaces are ignored (Step is step), so misspell as well
        new = draw(
            st.sampled_from([col.upper() + "S", col[:-1], col + "s", " " + col.title() + "x"])
        )
        df = df.rename(columns={col: new})
        expect = [f"missing column {col!r}"]
    elif kind == "bad_affinity":
        # text where a number belongs (a non-finite or empty cell is unmeasured: left out)
        v = draw(st.sampled_from(["abc", "x1", "1..2", "--1"]))
        df.at[row, "affinity"] = v
        expect = ["column 'affinity'"]
    elif kind == "bad_step":
        v = draw(st.sampled_from([-1, -7, 1.5, "x", None]))
        df.at[row, "step"] = v
        expect = ["column 'step'"]
    elif kind == "bad_name":
        col = draw(st.sampled_from(["source", "target"]))
        df.at[row, col] = draw(st.sampled_from(["", None, "   "]))
        expect = [f"column {col!r}"]
    elif kind == "unknown_task":
        ext, name = ".zip", "upload.zip"
        col = draw(st.sampled_from(["source", "target"]))
        df.at[row, col] = "intruder"
        expect = [f"column {col!r}", "'intruder' is not in meta.json's task list"]
    elif kind == "duplicate":
        df = pd.concat([df, df.iloc[[row]]], ignore_index=True)
        expect = ["duplicated cell"]
    elif kind == "extension":
        name = "upload" + draw(st.sampled_from([".xlsx", ".xls", ".pkl", ".h5", ""]))
        expect = ["unsupported file type"]
    data = serialize(df, ext, tasks)
    if kind == "empty":
        data = b""
        expect = ["empty"]
    elif kind == "too_big":
        max_bytes = draw(st.integers(1, len(data) - 1))
        expect = ["limit"]
    elif kind == "truncate":
        if ext in (".parquet", ".zip"):
            data = data[: draw(st.integers(1, len(data) - 1))]
            expect = [name]
        elif ext == ".csv":  # cut to its header only
            data = data.split(b"\n", 1)[0] + b"\n"
            expect = ["no rows"]
        else:  # JSON Lines with blank lines only
            data = b"\n \n"
            expect = ["empty"]
    return data, name, max_bytes, kind, row, ext, expect


def digest(store: Store) -> tuple:
    con = sqlite3.connect(store.path)
    out = tuple(
        con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("runs", "affinity", "metrics", "steps", "groupings", "run_notes", "ground_truth")
    )
    ids = tuple(r[0] for r in con.execute("SELECT id FROM runs ORDER BY id"))
    con.close()
    return out + ids


def import_file(store: Store, data: bytes, name: str, max_bytes: int | None) -> list[int]:
    """What the CLI and the upload page do: validate everything, then one transaction."""
    return store.import_parsed(read_run_file(data, name, max_bytes=max_bytes), name)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    s = Store(tmp_path_factory.mktemp("prop") / "store.sqlite")
    import_file(s, b"step,source,target,affinity\n0,a,b,0.5\n", "seed.csv", None)
    return s


@SETTINGS
@given(case=malformed())
def test_malformed_file_clear_error_and_store_unchanged(store, case):
    data, name, max_bytes, kind, row, ext, expect = case
    before = digest(store)
    with pytest.raises(LabError) as e:
        import_file(store, data, name, max_bytes)
    msg = str(e.value)
    assert msg.startswith("cannot import ") and "\n" not in msg and len(msg) < 600
    assert any(x in msg for x in expect), (kind, msg)
    if kind in ("bad_affinity", "bad_step", "bad_name", "unknown_task"):
        where = f"line {row + 1}" if ext == ".jsonl" else f"row {row + 1}"
        assert where in msg, (kind, msg)
    assert digest(store) == before


@SETTINGS
@given(table=valid_tables(), ext=st.sampled_from(CONTAINERS))
def test_valid_file_imports_exactly(store, table, ext):
    df, tasks = table
    data = serialize(df, ext, tasks)
    (rid,) = import_file(store, data, f"ok{ext}", None)
    steps, got_tasks, a = store.affinity_steps(rid, "lookahead")
    assert got_tasks == tasks
    want = np.array(df["affinity"].tolist(), dtype=np.float64).reshape(len(steps), *a.shape[1:])
    assert np.array_equal(a, want)
    store.delete_run(rid)
