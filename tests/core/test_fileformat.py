"""The open run format: exact round trips in every container, and clear validation errors."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtl_core import runfile as ff
from mtl_core.errors import LabError
from mtl_core.runfile import ParsedRun, read_run_file, run_file_bytes, write_run_file

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = [".csv", ".parquet", ".jsonl", ".zip"]


def make_parsed(seed: int = 0, n: int = 3, steps=(1, 2, 5), gaps: bool = True) -> ParsedRun:
    rng = np.random.default_rng(seed)
    tasks = [f"task {i}" for i in range(n - 1)] + ["7"]  # a numeric-looking name stays text
    mats = rng.normal(size=(len(steps), n, n)) * 10.0 ** rng.integers(-8, 8, (len(steps), n, n))
    if gaps:
        mats[0, 0, 1] = np.nan  # unmeasured cell
    parts = [
        ff.matrices_to_long(
            np.array(steps), tasks, mats, "lookahead", wall_times=1.7e9 + np.arange(len(steps)) / 3
        ),
        ff.matrices_to_long(np.array(steps[:2]), tasks, -mats[:2], "cosine"),
    ]
    met = pd.DataFrame(
        {
            "run": "",
            "step": np.array([1, 1, 2, 2], dtype=np.int64),
            "task": [tasks[0], tasks[1], tasks[0], "7"],
            "split": ["batch", "batch", "val", "val"],
            "metric": ["loss", "loss", "loss", "accuracy"],
            "value": [0.1 + 0.2, np.nan, 1 / 3, np.inf],
        }
    )
    grp = pd.DataFrame(
        {
            "run": "",
            "step": np.array([2], dtype=np.int64),
            "groups": [(frozenset(tasks[:2]), frozenset(["7"]))],
        }
    )
    return ParsedRun(
        tasks=tasks,
        task_types={tasks[0]: "regression", "7": "binary"},
        affinity=pd.concat(parts, ignore_index=True),
        metrics=met,
        groupings=grp,
        meta={"name": "demo", "config": {"lr": 0.003, "hidden": [64, 32]}, "notes": "héllo"},
        tasks_declared=True,
    )


def assert_same_affinity(a: ParsedRun, b: ParsedRun) -> None:
    assert a.runs == b.runs
    for run in a.runs:
        assert a.measures(run) == b.measures(run)
        for m in a.measures(run):
            sa, ta, ma = a.matrices(run, m)
            sb, tb, mb = b.matrices(run, m)
            assert ta == tb
            np.testing.assert_array_equal(sa, sb)
            assert np.array_equal(ma, mb, equal_nan=True)  # bit-exact, gaps included


@pytest.mark.parametrize("ext", CONTAINERS)
def test_round_trip_every_container(tmp_path, ext):
    p = make_parsed()
    path = write_run_file(p, tmp_path / f"run{ext}")
    q = read_run_file(path)
    assert_same_affinity(p, q)
    assert q.tasks == p.tasks
    if ext == ".zip":
        pd.testing.assert_frame_equal(q.metrics, p.metrics)
        assert list(q.groupings["groups"]) == list(p.groupings["groups"])
        assert q.task_types == p.task_types
        assert q.meta == p.meta
        np.testing.assert_array_equal(q.affinity["wall_time"], p.affinity["wall_time"])
    # bytes in, same result: the app's upload path
    r = read_run_file(path.read_bytes(), f"upload{ext}")
    assert_same_affinity(p, r)


@pytest.mark.parametrize("inner", [".csv", ".parquet", ".jsonl"])
def test_zip_with_each_inner_table_format(inner):
    p = make_parsed(seed=1)
    q = read_run_file(run_file_bytes(p, "r.zip", table_ext=inner), "r.zip")
    assert_same_affinity(p, q)
    pd.testing.assert_frame_equal(q.metrics, p.metrics)


def test_multi_run_file_round_trip():
    a, b = make_parsed(seed=2), make_parsed(seed=3)
    a.affinity["run"], b.affinity["run"] = "seed 2", "seed 3"
    a.metrics["run"], b.metrics["run"] = "seed 2", "seed 3"
    both = ParsedRun(
        tasks=a.tasks,
        affinity=pd.concat([a.affinity, b.affinity]),
        metrics=pd.concat([a.metrics, b.metrics]),
        runs=["seed 2", "seed 3"],
        tasks_declared=True,
    )
    for ext in CONTAINERS:
        q = read_run_file(run_file_bytes(both, f"x{ext}"), f"x{ext}")
        assert q.runs == ["seed 2", "seed 3"]
        assert_same_affinity(both, q)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=4, max_size=4
    ),
    ext=st.sampled_from(CONTAINERS),
)
def test_any_finite_float_round_trips_exactly(values, ext):
    tasks = ["a", "b"]
    p = ParsedRun(
        tasks=tasks,
        affinity=ff.matrices_to_long(
            np.array([0]), tasks, np.array(values).reshape(1, 2, 2), "lookahead"
        ),
    )
    q = read_run_file(run_file_bytes(p, f"x{ext}"), f"x{ext}")
    got = q.matrices("", "lookahead")[2].reshape(-1)
    assert [v.hex() for v in got] == [float(v).hex() for v in values]  # -0.0 too


def test_example_files_in_docs_are_valid():
    folder = ROOT / "examples" / "run-format"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in folder.iterdir():
            z.write(f, f"retail/{f.name}")  # a zipped folder works too
    p = read_run_file(buf.getvalue(), "retail.zip")
    assert p.tasks == ["price", "demand", "churn"]
    assert p.task_types["churn"] == "binary"
    assert len(p.affinity) == 18 and len(p.metrics) == 7 and len(p.groupings) == 2
    assert read_run_file(folder / "affinity.csv").tasks == ["price", "demand", "churn"]
    assert "step,source,target,affinity" in (ROOT / "docs" / "run-format.md").read_text()


def test_minimal_csv_defaults():
    p = read_run_file(b"step,source,target,affinity\n0,a,b,0.5\n0,b,a,-1e-3\n", "m.csv")
    assert p.tasks == ["a", "b"]
    assert set(p.affinity["measure"]) == {"lookahead"}
    assert p.runs == [""]
    steps, tasks, a = p.matrices("", "lookahead")
    assert a[0, 0, 1] == 0.5 and a[0, 1, 0] == -1e-3 and np.isnan(a[0, 0, 0])


def bad(data: bytes | str, name: str = "x.csv", **kw) -> str:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(LabError) as e:
        read_run_file(raw, name, **kw)
    msg = str(e.value)
    assert msg.startswith("cannot import ") and "\n" not in msg and "Traceback" not in msg
    return msg


H = "step,source,target,affinity\n"


def test_messages_name_what_and_where():
    assert "missing column 'affinity'; found 'affinty'" in bad(
        "step,source,target,affinty\n0,a,b,1\n"
    )
    assert "missing column 'step'; found 'Steps'" in bad("Steps,source,target,affinity\n0,a,b,1\n")
    m = bad(H + "0,a,b,1\n1,a,b,abc\n2,a,b,x\n")
    assert "row 2 (line 3), column 'affinity': 'abc' is not a number" in m
    assert "1 more rows" in m
    assert "row 1 (line 2), column 'affinity': nan is not a finite number" in bad(H + "0,a,b,nan\n")
    assert "column 'affinity'" in bad(H + "0,a,b,inf\n")
    assert "column 'affinity': is empty" in bad(H + "0,a,b,\n")
    assert "column 'step': '-1' is negative" in bad(H + "-1,a,b,1\n")
    assert "column 'step': '2.5' is not a whole number" in bad(H + "2.5,a,b,1\n")
    assert "column 'source': is empty" in bad(H + "0,,b,1\n")
    m = bad(H + "0,a,b,1\n0,a,a,1\n0,a,b,2\n")
    assert "row 3 (line 4)" in m and "duplicated cell" in m and "first at row 1 (line 2)" in m
    assert "the file is empty" in bad(b"")
    assert "header but no rows" in bad(H)
    assert "unsupported file type .xlsx" in bad(H + "0,a,b,1\n", "x.xlsx")
    assert "unsupported file type (no extension)" in bad(H + "0,a,b,1\n", "noext")
    assert "over the" in bad(H + "0,a,b,1\n", max_bytes=10)
    assert "not a readable zip" in bad(b"PK\x03\x04 not really", "x.zip")
    assert "not a readable Parquet" in bad(b"PAR1 nope", "x.parquet")
    assert "line 2 is not valid JSON" in bad(
        '{"step": 0, "source": "a", "target": "b", "affinity": 1}\n{oops\n', "x.jsonl"
    )
    assert "line 1, column 'affinity': True is not a number" in bad(
        '{"step": 0, "source": "a", "target": "b", "affinity": true}\n', "x.jsonl"
    )
    assert "unknown column 'Measures'; did you mean 'measure'" in bad(
        "step,source,target,affinity,Measures\n0,a,b,1,x\n"
    )
    assert "column 'step' appears twice" in bad("step,step,source,target,affinity\n0,0,a,b,1\n")
    assert "not UTF-8" in bad(b"step,source,target,affinity\n0,\xff,b,1\n")


def zip_of(**members: str | bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name.replace("__", "."), data)
    return buf.getvalue()


def test_zip_specific_errors():
    meta = json.dumps({"tasks": ["a", "b"]})
    assert "no affinity table" in bad(zip_of(meta__json=meta), "r.zip")
    m = bad(zip_of(affinity__csv=H + "0,a,c,1\n", meta__json=meta), "r.zip")
    assert "r.zip › affinity.csv: row 1 (line 2), column 'target': task 'c' is not in" in m
    assert "meta.json: not valid JSON" in bad(
        zip_of(affinity__csv=H + "0,a,b,1\n", meta__json="{nope"), "r.zip"
    )
    assert "'tasks' must be a non-empty list" in bad(
        zip_of(affinity__csv=H + "0,a,b,1\n", meta__json='{"tasks": "a"}'), "r.zip"
    )
    assert "newer than this lab reads" in bad(
        zip_of(affinity__csv=H + "0,a,b,1\n", meta__json='{"format_version": 99}'), "r.zip"
    )
    m = bad(
        zip_of(
            affinity__csv=H + "0,a,b,1\n",
            metrics__csv="step,task,split,metric,valeu\n0,a,val,loss,1\n",
        ),
        "r.zip",
    )
    assert "metrics.csv: missing column 'value'; found 'valeu'" in m
    m = bad(zip_of(affinity__csv=H + "0,a,b,1\n", groupings__jsonl='{"step": 1}\n'), "r.zip")
    assert "groupings.jsonl: line 1" in m
    buf = io.BytesIO()  # a small zip that unpacks to far more than the limit
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("affinity.csv", H + "0,a,b,1\n" * 20000)
    big = buf.getvalue()
    assert "unpacks to" in bad(big, "r.zip", max_bytes=len(big) * 4)
    assert "several affinity tables" in bad(
        zip_of(affinity__csv=H + "0,a,b,1\n", affinity__jsonl="{}"), "r.zip"
    )


def test_truncated_parquet_and_zip(tmp_path):
    p = make_parsed()
    for ext in (".parquet", ".zip"):
        data = run_file_bytes(p, f"r{ext}")
        msg = bad(data[: len(data) // 2], f"r{ext}")
        assert "not a readable" in msg or "cannot unpack" in msg


def test_legacy_functions_keep_working(tmp_path):
    tasks = ["a", "b"]
    a1, a2 = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[3.0, 2.0], [1.0, 0.1 + 0.2]])
    df = pd.concat(
        [ff.affinity_rows(1, tasks, a1, "lookahead"), ff.affinity_rows(2, tasks, a2, "lookahead")],
        ignore_index=True,
    )
    assert list(df.columns) == ff.AFFINITY_COLUMNS
    for ext in ff.TABLE_EXTENSIONS:
        back = ff.read_table(ff.write_table(df, tmp_path / f"log{ext}"))
        assert back["affinity"].tolist() == df["affinity"].tolist()
        t, mean = ff.mean_matrix(back)
        assert t == tasks
        np.testing.assert_array_equal(mean, (a1 + a2) / 2)
        read_run_file(tmp_path / f"log{ext}")  # the CLI's log is a valid run file
    with pytest.raises(LabError):
        ff.write_table(df, tmp_path / "log.txt")
    # a ParsedRun-style frame (blank run, no wall times) is written as a plain log
    long = ff.matrices_to_long(np.array([1, 2]), tasks, np.stack([a1, a2]), "lookahead")
    path = ff.write_table(long, tmp_path / "long.csv")
    assert path.read_text().splitlines()[0] == "step,measure,source,target,affinity"


def test_blank_run_column_means_one_run():
    p = read_run_file(b"run,step,source,target,affinity\n,0,a,b,1\n,1,a,b,2\n", "r.csv")
    assert p.runs == [""]
    assert "column 'run': is empty" in bad("run,step,source,target,affinity\nx,0,a,b,1\n,1,a,b,2\n")


def write_events(folder: Path, rows, wall0: float = 1.7e9) -> None:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(str(folder))
    for k, (step, tag, value) in enumerate(rows):
        w.add_event(
            Event(
                step=step,
                wall_time=wall0 + k,
                summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)]),
            )
        )
    w.close()


def test_tensorboard_import(tmp_path):
    rows = [
        (s, f"affinity/{a}/{b}", float(s + 0.25 * i + 0.5 * j))
        for s in (0, 10)
        for i, a in enumerate("xy")
        for j, b in enumerate("xy")
    ]
    rows += [(0, "affinity/cosine/x/y", 0.5), (0, "metrics/val/loss/x", 2.0), (0, "other", 1.0)]
    rows += [(10, "affinity/x/x", 99.0)]  # rewritten later: the later value wins
    write_events(tmp_path, rows)
    f = next(tmp_path.glob("*tfevents*"))
    for p in (read_run_file(f), read_run_file(f.read_bytes(), f.name), read_run_file(tmp_path)):
        assert p.tasks == ["x", "y"]
        steps, _, a = p.matrices("", "lookahead")
        np.testing.assert_array_equal(steps, [0, 10])
        assert a[1, 0, 0] == 99.0 and a[0, 1, 0] == 0.25
        assert p.measures("") == ["lookahead", "cosine"]
        assert p.metrics["value"].tolist() == [2.0]
    assert "the file is empty" in bad(b"", "events.out.tfevents.1")
    assert "is it a TensorBoard event file" in bad(b"\x00" * 64, "events.out.tfevents.1")
    (tmp_path / "other").mkdir()
    write_events(tmp_path / "other", [(0, "loss", 1.0)])
    msg = bad(next((tmp_path / "other").glob("*tfevents*")).read_bytes(), "events.out.tfevents.2")
    assert "affinity/<source>/<target>" in msg and "loss" in msg


def test_tensorboard_folder_with_several_runs(tmp_path):
    for run in ("seed0", "seed1"):
        (tmp_path / run).mkdir()
        write_events(tmp_path / run, [(1, "affinity/a/b", 0.5), (1, "affinity/b/a", -0.5)])
    p = read_run_file(tmp_path)
    assert p.runs == ["seed0", "seed1"]


def test_validation_is_fast_on_a_big_file():
    n, steps = 20, 500
    tasks = [f"t{i}" for i in range(n)]
    p = ParsedRun(
        tasks=tasks,
        affinity=ff.matrices_to_long(
            np.arange(steps),
            tasks,
            np.random.default_rng(0).normal(size=(steps, n, n)),
            "lookahead",
        ),
    )
    data = run_file_bytes(p, "big.csv")
    t0 = time.perf_counter()
    q = read_run_file(data, "big.csv")
    assert len(q.affinity) == steps * n * n
    assert time.perf_counter() - t0 < 10
