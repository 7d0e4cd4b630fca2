"""Store migrations: a store written by the old schema (one ``evaluations`` table for ground
truth and lesson bookkeeping) opens, upgrades in place and keeps every row."""

from __future__ import annotations

import json
import re
import sqlite3

import numpy as np
import pytest

from mtl_core.events import StepEvent
from mtl_core.store import SCHEMA_VERSION, Store, migrations

# The schema as version 1 of the lab wrote it (frozen here on purpose: not the m001 code).
OLD_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL DEFAULT '', origin TEXT NOT NULL,
    status TEXT NOT NULL, config TEXT NOT NULL DEFAULT '{}', tasks TEXT,
    task_types TEXT NOT NULL DEFAULT '{}', notes TEXT NOT NULL DEFAULT '',
    meta TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL, started REAL, finished REAL,
    error TEXT, error_detail TEXT, steps_done INTEGER NOT NULL DEFAULT 0, steps_total INTEGER,
    last_step INTEGER, steps_per_s REAL, eta_s REAL, losses TEXT NOT NULL DEFAULT '{}',
    cancel_requested INTEGER NOT NULL DEFAULT 0, host TEXT, runner_pid INTEGER,
    worker_pid INTEGER, heartbeat REAL
);
CREATE INDEX runs_status ON runs(status);
CREATE TABLE affinity (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, measure TEXT NOT NULL,
    step INTEGER NOT NULL, n INTEGER NOT NULL, wall_time REAL, data BLOB NOT NULL
);
CREATE UNIQUE INDEX affinity_key ON affinity(run_id, measure, step);
CREATE TABLE steps (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,
    wall_time REAL NOT NULL, losses BLOB NOT NULL, PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,
    task TEXT NOT NULL, split TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
    PRIMARY KEY (run_id, step, task, split, metric)
) WITHOUT ROWID;
CREATE TABLE groupings (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,
    groups TEXT NOT NULL, PRIMARY KEY (run_id, step)
);
CREATE TABLE evaluations (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL,
    created REAL NOT NULL, result TEXT NOT NULL, PRIMARY KEY (run_id, key)
);
PRAGMA user_version = 1;
"""

MAT = np.array([[0.0, 0.5], [-0.25, 0.0]])
JOB = {"status": "done", "k": 2, "report": {"approaches": {"together": {}}}}
EVALUATIONS = [  # (run, key, saved at, result) as the app wrote them
    (1, "ground_truth:k=2", 10.0, JOB),
    (1, "ground_truth:k=10", 11.0, {"status": "failed", "k": 10, "error": "boom"}),
    (1, "lesson_groups_run", 12.0, {"run_id": 2}),
    (2, "lesson_groups", 13.0, {"source": "TAG", "groups": [["a"], ["b"]], "together_run": 1}),
    (2, "ground_truth:k=02", 14.0, {"odd": "not an app key"}),
    (2, "ground_truth:k=x", 15.0, {"odd": "neither"}),
]


def old_store(path) -> None:
    """A version-1 store with two runs and every kind of ``evaluations`` row."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = WAL")
    con.executescript(OLD_SCHEMA)
    for rid, name in ((1, "together"), (2, "groups")):
        con.execute(
            "INSERT INTO runs (id, name, origin, status, config, tasks, task_types, created, "
            "steps_done, last_step, losses) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                rid,
                name,
                "trained",
                "finished",
                '{"scenario": "toy"}',
                '["a", "b"]',
                '{"a": "regression", "b": "binary"}',
                1.0,
                1,
                1,
                '{"a": 1.0, "b": 2.0}',
            ),
        )
        con.execute(
            "INSERT INTO affinity VALUES (?, 'lookahead', 1, 2, 5.0, ?)",
            (rid, MAT.astype("<f8").tobytes()),
        )
        con.execute(
            "INSERT INTO steps VALUES (?, 1, 5.0, ?)",
            (rid, np.array([1.0, 2.0]).astype("<f8").tobytes()),
        )
        con.execute("INSERT INTO metrics VALUES (?, 1, 'a', 'val', 'loss', 0.75)", (rid,))
        con.execute("INSERT INTO groupings VALUES (?, 1, ?)", (rid, '[["a"], ["b"]]'))
    con.executemany(
        "INSERT INTO evaluations VALUES (?,?,?,?)",
        [(r, k, t, json.dumps(v)) for r, k, t, v in EVALUATIONS],
    )
    con.commit()
    con.close()


def tables(path) -> set[str]:
    con = sqlite3.connect(path)
    out = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    return out


def test_migrations_are_named_in_order():
    names = [m.__name__ for m in migrations.MIGRATIONS]
    assert names[:2] == ["m001_initial", "m002_split_evaluations"]
    assert [int(re.match(r"m(\d{3})_\w+$", n).group(1)) for n in names] == list(
        range(1, len(names) + 1)
    )
    assert SCHEMA_VERSION == len(names)
    assert all(m.__doc__ for m in migrations.MIGRATIONS)


def test_old_store_upgrades_in_place_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.sqlite"
    old_store(path)
    st = Store(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "evaluations" not in tables(path)
    assert {"ground_truth", "run_notes"} <= tables(path)
    # ground-truth jobs moved to their table, keyed by run and k
    assert st.list_ground_truths(1) == {2: JOB, 10: EVALUATIONS[1][3]}
    assert st.get_ground_truth(1, 2) == JOB
    assert con.execute("SELECT updated FROM ground_truth WHERE k = 10").fetchone()[0] == 11.0
    # the lesson's bookkeeping (and keys that only look like ground truth) became notes
    assert st.get_note(1, "lesson_groups_run") == {"run_id": 2}
    assert st.list_notes(2) == {k: v for r, k, _, v in EVALUATIONS if r == 2}
    assert st.list_ground_truths(2) == {}
    assert con.execute("SELECT COUNT(*) FROM run_notes").fetchone()[0] + con.execute(
        "SELECT COUNT(*) FROM ground_truth"
    ).fetchone()[0] == len(EVALUATIONS)
    con.close()
    # runs and everything logged for them read as before
    info = st.get_run(1)
    assert (info.name, info.tasks, info.measures, info.losses) == (
        "together",
        ["a", "b"],
        ["lookahead"],
        {"a": 1.0, "b": 2.0},
    )
    steps, tasks, a = st.affinity_steps(1, "lookahead")
    assert steps.tolist() == [1] and np.array_equal(a[0], MAT)
    assert st.groupings(2) == [(1, (frozenset("a"), frozenset("b")))]
    assert len(st.metrics(1)) == 3  # two batch losses and one val loss
    # and the upgraded store takes new writes; deleting a run takes its records along
    st.append_step(
        1, StepEvent(2, 2, ["a", "b"], {"a": 0.5, "b": 1.5}, affinity={"lookahead": MAT})
    )
    assert st.affinity_steps(1, "lookahead")[0].tolist() == [1, 2]
    st.delete_run(1)
    assert st.list_ground_truths(1) == {} and st.get_note(1, "lesson_groups_run") is None
    assert Store(path).get_note(2, "lesson_groups")["together_run"] == 1  # reopens cleanly


def test_a_failing_migration_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite"
    old_store(path)

    def m003_broken(con):
        con.execute("CREATE TABLE half_done (x INTEGER)")
        con.execute("INSERT INTO no_such_table VALUES (1)")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m003_broken])
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        Store(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1  # m002 rolled back too
    assert "evaluations" in tables(path) and "half_done" not in tables(path)
    assert con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == len(EVALUATIONS)
    con.close()
    monkeypatch.undo()
    assert Store(path).get_ground_truth(1, 2) == JOB
