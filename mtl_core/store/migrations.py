"""The run store's schema as named migrations, applied in order when a store is opened.

Each migration is a function ``mNNN_what(con)`` registered with :func:`migration`; it takes the
schema from version ``NNN - 1`` to ``NNN`` inside the one transaction that :func:`migrate` opens.
The schema version (``PRAGMA user_version``) is the number of migrations applied, so a released
migration is never edited or reordered: a change is a new function at the end (the pattern of
simonw/llm's ``llm/migrations.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from mtl_core.errors import LabError

Migration = Callable[[sqlite3.Connection], None]

#: Every migration in order; ``MIGRATIONS[k]`` takes the schema from version k to k + 1.
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration (its name says what it does: ``m002_...``)."""
    MIGRATIONS.append(fn)
    return fn


def execute_script(con: sqlite3.Connection, script: str) -> None:
    """Run the ``;``-separated statements of ``script`` one by one, inside the caller's
    transaction (``executescript`` would commit it). The statements hold no ``;`` literals."""
    for stmt in (s.strip() for s in script.split(";")):
        if stmt:
            con.execute(stmt)


def schema_version(con: sqlite3.Connection) -> int:
    """The store's schema version: the number of migrations applied to it."""
    return int(con.execute("PRAGMA user_version").fetchone()[0])


def migrate(con: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations ``con``'s store lacks, all in one write transaction.

    Raises
    ------
    LabError : the store's schema is newer than this version of the lab knows.
    sqlite3.Error : a migration failed (rolled back: the store is left as it was), or the
        store is locked (the caller retries).
    """
    steps = list(MIGRATIONS)
    if _check_version(con, path, len(steps)) == len(steps):
        return
    con.execute("BEGIN IMMEDIATE")
    try:
        # re-read under the write lock: another process may have migrated meanwhile
        for k in range(_check_version(con, path, len(steps)), len(steps)):
            steps[k](con)
            con.execute(f"PRAGMA user_version = {k + 1}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _check_version(con: sqlite3.Connection, path: Path, latest: int) -> int:
    version = schema_version(con)
    if version > latest:
        raise LabError(
            f"the run store {path} has schema version {version}, newer than this "
            f"version of the lab understands ({latest}); update Task Affinity Lab"
        )
    return version


# ---------------------------------------------------------------------------------- migrations


#: m001: the tables as the first release created them.
_M001_INITIAL = """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL DEFAULT '',
        origin TEXT NOT NULL,
        status TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        tasks TEXT,
        task_types TEXT NOT NULL DEFAULT '{}',
        notes TEXT NOT NULL DEFAULT '',
        meta TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        error TEXT,
        error_detail TEXT,
        steps_done INTEGER NOT NULL DEFAULT 0,
        steps_total INTEGER,
        last_step INTEGER,
        steps_per_s REAL,
        eta_s REAL,
        losses TEXT NOT NULL DEFAULT '{}',
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        host TEXT,
        runner_pid INTEGER,
        worker_pid INTEGER,
        heartbeat REAL
    );
    CREATE INDEX runs_status ON runs(status);
    CREATE TABLE affinity (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        measure TEXT NOT NULL,
        step INTEGER NOT NULL,
        n INTEGER NOT NULL,
        wall_time REAL,
        data BLOB NOT NULL
    );
    CREATE UNIQUE INDEX affinity_key ON affinity(run_id, measure, step);
    CREATE TABLE steps (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        wall_time REAL NOT NULL,
        losses BLOB NOT NULL,
        PRIMARY KEY (run_id, step)
    ) WITHOUT ROWID;
    CREATE TABLE metrics (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        task TEXT NOT NULL,
        split TEXT NOT NULL,
        metric TEXT NOT NULL,
        value REAL,
        PRIMARY KEY (run_id, step, task, split, metric)
    ) WITHOUT ROWID;
    CREATE TABLE groupings (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        groups TEXT NOT NULL,
        PRIMARY KEY (run_id, step)
    );
    CREATE TABLE evaluations (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        created REAL NOT NULL,
        result TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
"""


@migration
def m001_initial(con: sqlite3.Connection) -> None:
    """Runs, their affinity matrices, per-step losses, metrics, groupings, and evaluations."""
    execute_script(con, _M001_INITIAL)


#: An ``evaluations`` key the app wrote for a ground-truth job: ``ground_truth:k=<int>``.
_GROUND_TRUTH_KEY = (
    "key GLOB 'ground_truth:k=[0-9]*' "
    "AND substr(key, 16) = CAST(CAST(substr(key, 16) AS INTEGER) AS TEXT)"
)


@migration
def m002_split_evaluations(con: sqlite3.Connection) -> None:
    """``evaluations`` held two unrelated things under string keys: ground-truth jobs
    (``ground_truth:k=2``) and the lesson's bookkeeping. Split it into ``ground_truth`` (one
    job record per run and group budget k) and ``run_notes`` (JSON notes by key), keeping
    every row."""
    execute_script(
        con,
        f"""
    CREATE TABLE ground_truth (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        k INTEGER NOT NULL,
        updated REAL NOT NULL,
        job TEXT NOT NULL,
        PRIMARY KEY (run_id, k)
    );
    CREATE TABLE run_notes (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        updated REAL NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    INSERT INTO ground_truth (run_id, k, updated, job)
        SELECT run_id, CAST(substr(key, 16) AS INTEGER), created, result FROM evaluations
        WHERE {_GROUND_TRUTH_KEY};
    INSERT INTO run_notes (run_id, key, updated, value)
        SELECT run_id, key, created, result FROM evaluations
        WHERE NOT ({_GROUND_TRUTH_KEY});
    DROP TABLE evaluations
    """,
    )


@migration
def m003_run_owner(con: sqlite3.Connection) -> None:
    """Every run gets an owner (issue 13): ``runs.owner`` is the user (``user:<name>``) or the
    browser session (``browser:<id>``) that started or uploaded it; NULL for runs from
    before this migration and from the command line (no one's: see ``mtl_core.accounts.access``).
    Indexed with the status for the per-user queue quota and the fair claim order."""
    execute_script(
        con,
        """
    ALTER TABLE runs ADD COLUMN owner TEXT;
    CREATE INDEX runs_owner_status ON runs(owner, status)
    """,
    )


@migration
def m004_sign_in(con: sqlite3.Connection) -> None:
    """What the app's sign-in keeps across sessions and server processes (issue 23, items 2
    and 3): ``sign_in_tries`` (one row per sign-in try and throttle key, a hashed user name or
    client address, pruned after the window), ``signed_out`` (session ids of sign-in cookies
    whose browser signed out, kept until the cookie would expire) and ``server_secrets``
    (random keys made on first use, e.g. the one that signs the sign-in cookies)."""
    execute_script(
        con,
        """
    CREATE TABLE sign_in_tries (
        key TEXT NOT NULL,
        at REAL NOT NULL,
        attempt TEXT NOT NULL
    );
    CREATE INDEX sign_in_tries_key ON sign_in_tries(key, at);
    CREATE INDEX sign_in_tries_attempt ON sign_in_tries(attempt);
    CREATE TABLE signed_out (
        sid TEXT PRIMARY KEY,
        expires REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE server_secrets (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        created REAL NOT NULL
    ) WITHOUT ROWID
    """,
    )


#: The schema version this code writes: the number of migrations.
SCHEMA_VERSION = len(MIGRATIONS)
