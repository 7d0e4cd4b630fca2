"""The run store: schema and migrations, step writes, reads, import/export round trips."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.errors import LabError
from mtl_core.events import MetricRow, StepEvent
from mtl_core.runfile import read_run_file, write_run_file
from mtl_core.store import SCHEMA_VERSION, Store, default_store_path, migrations

ROOT = Path(__file__).resolve().parents[2]


def event(
    step: int,
    tasks: list[str],
    total: int = 10,
    *,
    groups=None,
    measures=("lookahead",),
    value: float | None = None,
) -> StepEvent:
    n = len(tasks)
    rng = np.random.default_rng(step)
    return StepEvent(
        step=step,
        total_steps=total,
        tasks=tasks,
        train_loss={t: 1.0 / step + i for i, t in enumerate(tasks)},
        metrics=[MetricRow(t, "val", "loss", float(step)) for t in tasks] if step % 2 == 0 else [],
        affinity={
            m: (np.full((n, n), value) if value is not None else rng.normal(size=(n, n)))
            for m in measures
        },
        groups=groups,
        elapsed_s=0.01 * step,
    )


@pytest.fixture
def st(tmp_path) -> Store:
    return Store(tmp_path / "store.sqlite")


def trained_run(st: Store, tasks=("a", "b", "c"), steps=6, **kw) -> int:
    rid = st.create_run(name="demo", config={"train": {"steps": steps}}, steps_total=steps)
    st.set_status(rid, "running")
    for s in range(1, steps + 1):
        g = (frozenset(tasks[:2]), frozenset(tasks[2:])) if s > 3 else None
        st.append_step(rid, event(s, list(tasks), steps, groups=g, **kw))
    st.set_tasks(rid, list(tasks), {t: "regression" for t in tasks})
    st.set_status(rid, "finished")
    return rid


@pytest.mark.slow
def test_modules_import_without_torch_or_streamlit():
    code = (
        "import sys, mtl_core.store, mtl_core.runfile, mtl_core.runfile.tensorboard, "
        "mtl_core.runner, mtl_core.commands.runs; "
        "bad = [m for m in ('torch', 'streamlit') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_default_location(tmp_path, monkeypatch):
    monkeypatch.delenv("MTL_LAB_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_store_path() == tmp_path / ".lab" / "store.sqlite"
    monkeypatch.setenv("MTL_LAB_STORE", str(tmp_path / "elsewhere" / "s.sqlite"))
    s = Store()
    assert s.path == tmp_path / "elsewhere" / "s.sqlite" and s.path.exists()


def test_schema_is_versioned_and_wal(st):
    con = sqlite3.connect(st.path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_run_forward_and_keep_data(tmp_path, monkeypatch):
    path = tmp_path / "s.sqlite"
    rid = trained_run(Store(path))

    def m999_extra(con):
        con.execute("CREATE TABLE notes_v2 (run_id INTEGER, text TEXT)")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m999_extra])
    s2 = Store(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    con.execute("SELECT * FROM notes_v2")
    assert s2.get_run(rid).name == "demo"


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path)
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(LabError, match="newer"):
        Store(path)


def test_not_a_store(tmp_path):
    p = tmp_path / "junk.sqlite"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LabError, match="not a run store"):
        Store(p)


def test_steps_progress_and_reads(st):
    tasks = ["a", "b", "c"]
    rid = st.create_run(name="r", config={"x": 1}, steps_total=10)
    assert st.get_run(rid).status == "queued"
    st.set_status(rid, "running")
    for s in range(1, 5):
        st.append_step(rid, event(s, tasks, groups=(frozenset("ab"), frozenset("c"))))
    info = st.get_run(rid)
    assert (info.steps_done, info.steps_total, info.last_step) == (4, 10, 4)
    assert info.progress == 0.4 and info.status == "running" and info.started is not None
    assert info.steps_per_s == pytest.approx(100.0) and info.eta_s == pytest.approx(0.06)
    assert info.losses == {"a": 0.25, "b": 1.25, "c": 2.25}
    assert info.tasks == tasks and info.measures == ["lookahead"]
    steps, t, a = st.affinity_steps(rid, "lookahead")
    np.testing.assert_array_equal(steps, [1, 2, 3, 4])
    assert t == tasks and a.shape == (4, 3, 3) and a.dtype == np.float64
    np.testing.assert_array_equal(a[2], event(3, tasks).affinity["lookahead"])
    m = st.metrics(rid)
    assert list(m.columns) == ["step", "task", "split", "metric", "value"]
    assert len(m) == 4 * 3 + 2 * 3
    assert m[(m.split == "batch") & (m.step == 2)]["value"].tolist() == [0.5, 1.5, 2.5]
    assert m["step"].is_monotonic_increasing
    ls, lt, lv = st.losses(rid)
    assert lv.shape == (4, 3) and lv[0, 0] == 1.0
    assert st.groupings(rid)[0] == (1, (frozenset({"a", "b"}), frozenset({"c"})))
    st.set_status(rid, "failed", error="loss became NaN")
    info = st.get_run(rid)
    assert info.status == "failed" and info.error == "loss became NaN" and info.finished


def test_matrices_reordered_to_the_run_task_order(st):
    rid = st.create_run(tasks=["a", "b"])
    m = np.array([[1.0, 2.0], [3.0, 4.0]])
    st.append_step(
        rid, StepEvent(1, 1, ["b", "a"], {"a": 0.0, "b": 0.0}, affinity={"lookahead": m})
    )
    np.testing.assert_array_equal(st.affinity_steps(rid)[2][0], [[4.0, 3.0], [2.0, 1.0]])
    with pytest.raises(LabError):
        st.append_step(rid, StepEvent(2, 1, ["a", "z"], {}, affinity={"lookahead": m}))


def test_compare_and_set_status(st):
    rid = st.create_run(status="running")
    assert st.set_status(rid, "finished", only_from=("running",))
    assert not st.set_status(rid, "interrupted", only_from=("running",))
    assert st.get_run(rid).status == "finished"


def test_claim_respects_the_limit(st):
    a, b = st.create_run(), st.create_run()
    assert st.claim_queued(1, runner_pid=1) == a
    assert st.claim_queued(1, runner_pid=1) is None
    assert st.claim_queued(2, runner_pid=1) == b
    assert st.get_run(b).status == "running"


def test_cancel_flags(st):
    q = st.create_run()
    assert st.request_cancel(q) == "cancelled" and st.get_run(q).status == "cancelled"
    r = st.create_run(status="running")
    assert not st.cancel_requested(r)
    assert st.request_cancel(r) == "running"
    assert st.cancel_requested(r)


def test_notes_ground_truth_and_delete(st):
    rid = trained_run(st)
    st.save_note(rid, "grouping:tag:2", {"groups": [["a", "b"], ["c"]], "loss": 0.5})
    st.save_note(rid, "grouping:tag:2", {"loss": 0.25})
    assert st.get_note(rid, "grouping:tag:2") == {"loss": 0.25}
    assert st.get_note(rid, "nope") is None
    assert list(st.list_notes(rid)) == ["grouping:tag:2"]
    st.save_ground_truth(rid, 3, {"status": "running", "k": 3})
    st.save_ground_truth(rid, 2, {"status": "running", "k": 2})
    st.save_ground_truth(rid, 2, {"status": "done", "k": 2, "report": {"approaches": {}}})
    assert st.get_ground_truth(rid, 2) == {"status": "done", "k": 2, "report": {"approaches": {}}}
    assert st.get_ground_truth(rid, 4) is None
    assert list(st.list_ground_truths(rid)) == [2, 3]
    assert st.get_note(rid, "ground_truth:k=2") is None  # the two tables do not mix
    with pytest.raises(LabError, match="no run with id"):
        st.save_note(rid + 99, "x", {})
    with pytest.raises(LabError, match="no run with id"):
        st.save_ground_truth(rid + 99, 2, {})
    with pytest.raises(LabError, match="as JSON"):
        st.save_note(rid, "x", {"f": object()})
    st.delete_run(rid)
    with pytest.raises(LabError, match="no run with id"):
        st.get_run(rid)
    con = sqlite3.connect(st.path)
    for table in ("affinity", "metrics", "steps", "groupings", "run_notes", "ground_truth"):
        assert con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table


def test_running_run_cannot_be_deleted(st):
    rid = st.create_run(status="running")
    with pytest.raises(LabError, match="cancel it"):
        st.delete_run(rid)


@pytest.mark.parametrize("ext", [".zip", ".csv", ".parquet", ".jsonl"])
def test_import_export_round_trip(st, tmp_path, ext):
    rid = trained_run(st, measures=("lookahead", "cosine"))
    path = write_run_file(st.export_parsed(rid), tmp_path / f"run{ext}")
    (new,) = st.import_parsed(read_run_file(path), "copy")
    a, b = st.get_run(rid), st.get_run(new)
    assert b.origin == "uploaded" and b.status == "finished" and b.name == "copy"
    assert a.tasks == b.tasks and a.measures == b.measures
    for m in a.measures:
        sa, _, ma = st.affinity_steps(rid, m)
        sb, _, mb = st.affinity_steps(new, m)
        np.testing.assert_array_equal(sa, sb)
        assert np.array_equal(ma, mb, equal_nan=True)
    if ext == ".zip":  # the zip keeps everything else too
        key = ["step", "task", "split", "metric"]
        ma_, mb_ = (st.metrics(r).sort_values(key).reset_index(drop=True) for r in (rid, new))
        pd.testing.assert_frame_equal(ma_, mb_)
        assert st.groupings(rid) == st.groupings(new)
        assert (a.config, a.task_types) == (b.config, b.task_types)
        # and exporting the import gives the same file content again
        p1, p2 = st.export_parsed(rid), st.export_parsed(new)
        pd.testing.assert_frame_equal(p1.affinity, p2.affinity)
        assert p1.meta["config"] == p2.meta["config"] and p2.meta["origin"] == "trained"


def test_import_is_all_or_nothing(st):
    trained_run(st)
    before = [r.id for r in st.list_runs()]
    parsed = read_run_file(b"step,source,target,affinity,run\n0,a,b,1,x\n0,a,b,1,y\n", "two.csv")
    assert parsed.runs == ["x", "y"]

    # the second run's row cannot be written (as if the disk filled up midway)
    con = sqlite3.connect(st.path)
    con.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON runs WHEN NEW.name = 'two / y' "
        "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    con.commit()
    with pytest.raises(sqlite3.DatabaseError, match="disk full"):
        st.import_parsed(parsed, "two")
    assert [r.id for r in st.list_runs()] == before  # the first run was rolled back too
    con.execute("DROP TRIGGER boom")
    con.commit()
    con.close()
    ids = st.import_parsed(parsed, "two")
    assert [st.get_run(i).name for i in ids] == ["two / x", "two / y"]


def test_snapshot_is_consistent(st):
    rid = trained_run(st, steps=2)
    with st.snapshot():
        n1 = len(st.affinity_steps(rid)[0])
        other = Store(st.path)  # another connection writes meanwhile
        other.set_status(rid, "running")
        other.append_step(rid, event(3, ["a", "b", "c"]))
        assert len(st.affinity_steps(rid)[0]) == n1
        assert st.get_run(rid).status == "finished"
    assert len(st.affinity_steps(rid)[0]) == n1 + 1


def test_reading_20_tasks_by_2000_steps_is_fast(st):
    n, steps = 20, 2000
    tasks = [f"t{i}" for i in range(n)]
    rid = st.create_run(tasks=tasks)
    rng = np.random.default_rng(0)
    mats = rng.normal(size=(steps, n, n))
    blobs = [
        (rid, "lookahead", s + 1, n, None, mats[s].astype("<f8").tobytes()) for s in range(steps)
    ]
    con = st._con()
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO affinity (run_id, measure, step, n, wall_time, data) VALUES (?,?,?,?,?,?)",
        blobs,
    )
    con.execute("COMMIT")
    fresh = Store(st.path)
    fresh.affinity_steps(rid, "lookahead")
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        s, t, a = fresh.affinity_steps(rid, "lookahead")
        best = min(best, time.perf_counter() - t0)
    assert a.shape == (steps, n, n) and np.array_equal(a, mats)
    assert best < 0.1, f"{best * 1e3:.1f} ms"
