"""Damaged and read-only stores (issue 23, item 6): real damage (8 KB pages overwritten in
place) gives one line (exit 2) from every command, never a traceback nor exit 0 on a file
that fails its integrity check; damage done during a run stops its writes; a read-only store
opens for reading."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtl_core.commands.cli import main
from mtl_core.config import RunConfig, TrainConfig
from mtl_core.runner import Runner
from mtl_core.runner.procs import pid_alive
from mtl_core.store import Store
from mtl_core.store.faults import CHECK_ENV, forget_checks
from tests.helpers.store_faults import as_unprivileged, damage_page
from tests.helpers.store_faults import cli as _cli

ROOT = Path(__file__).resolve().parents[2]
CSV = str(ROOT / "examples" / "run-format" / "affinity.csv")


def _sound(path: Path) -> bool:
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    except sqlite3.DatabaseError:
        return False
    finally:
        con.close()


@pytest.fixture
def clean_store(tmp_path, capsys) -> Path:
    path = tmp_path / "clean.sqlite"
    for name in ("one", "two", "three"):
        assert main(["import", CSV, "--name", name, "--store", str(path)]) == 0
    st = Store(path)
    rid = st.create_run(name="long", status="finished", notes="n" * 30_000)
    assert rid == 4
    st.close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    capsys.readouterr()
    return path


def test_every_damaged_page_gives_one_line_never_a_traceback(clean_store, tmp_path, capsys):
    pages = clean_store.stat().st_size // 8192
    assert pages >= 6
    failed_exports = 0
    for page in range(1, pages):
        path = tmp_path / f"d{page}.sqlite"
        path.write_bytes(clean_store.read_bytes())
        damage_page(path, page)
        forget_checks()
        sound = _sound(path)
        for argv in (["runs"], ["export", "1", "--out", str(tmp_path / "o.zip")]):
            code, _, err = _cli(capsys, *argv, "--store", str(path))
            assert "Traceback" not in err, (page, argv, err)
            assert code in (0, 2), (page, argv, err)
            if code == 2:
                assert err.count("\n") == 1 and "is damaged" in err, (page, argv, err)
            if argv == ["runs"]:  # never exit 0 on a file that fails integrity_check
                assert (code == 0) == sound, (page, sound, err)
            elif code == 2:
                failed_exports += 1
        assert not sound or page == 0
    assert failed_exports > 0  # some damage did reach the exported run's pages


def test_runs_lists_what_reads_then_says_damaged(clean_store, tmp_path, capsys):
    """Damage the listing does not read (exit 0 before): the runs are listed, then the
    damage is one line, exit 2."""
    listed = []
    for page in range(1, clean_store.stat().st_size // 8192):
        path = tmp_path / f"d{page}.sqlite"
        path.write_bytes(clean_store.read_bytes())
        damage_page(path, page)
        forget_checks()
        code, out, err = _cli(capsys, "runs", "--store", str(path))
        assert code == 2 and err.count("\n") == 1 and '".recover"' in err, (page, err)
        if "one" in out and "three" in out:
            listed.append(page)
    assert listed  # some damage leaves the listing readable, and it is shown


@pytest.mark.slow
def test_damage_during_a_run_stops_its_writes(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(CHECK_ENV, "0.5")  # the workers check the file every 0.5 s
    monkeypatch.setenv("MTL_TEST_SLEEP", "0.05")
    path = tmp_path / "s.sqlite"
    st = Store(path)
    for k in range(6):  # pages before the run's own, for the damage to land on
        st.create_run(name=f"filler {k}", status="finished", notes="f" * 20_000)
    runner = Runner(
        path, train_fn="tests.helpers.store_faults:slow_train", poll_s=0.05, max_workers=1
    )
    try:
        rid = runner.submit(RunConfig(train=TrainConfig(steps=100000, eval_every=100000)))
        end = time.monotonic() + 120
        while st.get_run(rid).steps_done < 5:
            assert time.monotonic() < end, "no steps"
            time.sleep(0.05)
        worker = st.get_run(rid).worker_pid
        st.close()
        damage_page(path, 3)  # a filler's page, in the middle of the file
        assert not _sound(path)
        at_damage = time.monotonic()
        while pid_alive(worker):
            assert time.monotonic() - at_damage < 15, "the run kept training"
            time.sleep(0.05)
        assert _says_stopped(runner.status(rid)), runner.status(rid)
    finally:
        runner.shutdown(timeout=5)
    err = capfd.readouterr().err
    assert "is damaged" in err and '".recover"' in err and "Traceback" not in err, err
    said = [ln for ln in err.splitlines() if "is damaged" in ln]
    assert len(said) == 1 and "supervisor error" in said[0], err  # the server's log: once
    # and so says a new process that never met the damage (``runs``), never "running"
    (row,) = [r for r in _runs_json(path) if r["id"] == rid]
    assert _says_stopped(row), row


def _says_stopped(run) -> bool:
    """A run that a damaged store stopped: failed, its reason naming the damage."""
    status, error = (
        (run["status"], run["error"])
        if isinstance(run, dict)
        else (
            run.status,
            run.error,
        )
    )
    return status == "failed" and "stopped after step" in error and "is damaged" in error


def _runs_json(path: Path) -> list[dict]:
    """``runs --json`` in a new process: its rows (it exits 2 on a damaged store)."""
    out = subprocess.run(
        [sys.executable, "-m", "mtl_core", "runs", "--json", "--store", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "is damaged" in out.stderr and "Traceback" not in out.stderr, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def _with_a_running_run(path: Path) -> int:
    """Filler runs (pages for damage), then a run left ``running`` at step 7 (as by a
    worker that died with the store); returns its id."""
    from tests.helpers.app_fixtures import seed_live_run

    st = Store(path)
    for k in range(6):
        st.create_run(name=f"filler {k}", status="finished", notes="f" * 20_000)
    rid = seed_live_run(st, steps_done=7, steps_total=100)
    assert st.get_run(rid).status == "running"
    st.close()
    return rid


def test_a_run_left_running_in_a_damaged_store_reads_as_failed(tmp_path, capsys):
    """Nothing can be written into a damaged store, so a run it shows ``running`` can never
    move on: every reader (a new Store, ``runs``) shows it failed with the damage."""
    sound, damaged = tmp_path / "sound.sqlite", tmp_path / "damaged.sqlite"
    rid = _with_a_running_run(sound)
    damaged.write_bytes(sound.read_bytes())
    damage_page(damaged, 3)
    forget_checks()  # as a new process
    assert Store(sound).get_run(rid).status == "running"  # sound: still running
    st = Store(damaged)
    for info in (st.get_run(rid), st.list_runs()[-1]):
        assert _says_stopped(info), info
        assert "stopped after step 7:" in info.error and info.eta_s is None
    assert [r.status for r in st.list_runs()[:6]] == ["finished"] * 6  # others as they are
    forget_checks()
    code, out, err = _cli(capsys, "runs", "--store", str(damaged))
    assert code == 2 and err.count("\n") == 1 and "is damaged" in err, err
    (line,) = [x for x in out.splitlines() if x.startswith(f"{rid:>4}  ")]
    assert " failed " in line and "running" not in line and "stopped after step 7:" in line


def test_a_reader_checks_again_only_when_a_running_run_stalls(tmp_path, monkeypatch):
    """A reader that found the file sound scans it again only once a running run it sees
    has logged nothing for the check interval (1 s here): a run that keeps logging steps
    costs no scans; one stopped by damage done behind the reader's back reads as failed."""
    from tests.helpers.app_fixtures import append_steps

    monkeypatch.setenv(CHECK_ENV, "1")
    path = tmp_path / "s.sqlite"
    rid = _with_a_running_run(path)
    forget_checks()
    reader, writer, scans = Store(path), Store(path), []
    real = reader._check_from_disk  # the reader's own scans (the writer checks as it writes)
    monkeypatch.setattr(reader, "_check_from_disk", lambda: (scans.append(1), real()))
    assert reader.get_run(rid).status == "running" and len(scans) == 1  # first sight: checked
    for step in range(8, 14):  # the run moves on: no scan, however long it runs
        time.sleep(0.25)
        append_steps(writer, rid, step, step, 100)
        assert reader.get_run(rid).status == "running"
    assert len(scans) == 1
    writer.close()
    damage_page(path, 3)
    assert reader.get_run(rid).status == "running" and len(scans) == 1  # not stalled yet
    time.sleep(1.1)
    info = reader.get_run(rid)  # stalled for over 1 s: scanned, damaged
    assert len(scans) == 2 and _says_stopped(info) and "after step 13:" in info.error, info


@pytest.mark.slow
def test_damage_during_a_cli_run_ends_it_failed_in_one_line(tmp_path):
    """``train`` from the command line (real training) over a store damaged mid-run: it
    exits 2 with one line, its worker is gone, and ``runs`` shows the run failed."""
    path = tmp_path / "s.sqlite"
    st = Store(path)
    for k in range(6):
        st.create_run(name=f"filler {k}", status="finished", notes="f" * 20_000)
    st.close()
    env = {**os.environ, CHECK_ENV: "0.5", "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "mtl_core", "train", "--scenario", "synthetic"]
    proc = subprocess.Popen(
        [*argv, "--steps", "1000000", "--store", str(path)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        reader = Store(path)
        end = time.monotonic() + 120
        while not reader.list_runs()[6:] or reader.list_runs()[6].steps_done < 5:
            assert proc.poll() is None and time.monotonic() < end, proc.stderr.read()
            time.sleep(0.1)
        rid = reader.list_runs()[6].id
        worker = reader.get_run(rid).worker_pid
        reader.close()
        damage_page(path, 3)
        err = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("error: ") and "is damaged" in last, err
    assert [ln for ln in err.splitlines() if "damaged" in ln] == [last], err  # said once
    assert "Traceback" not in err, err
    end = time.monotonic() + 5
    while pid_alive(worker):
        assert time.monotonic() < end, "the worker outlived its CLI"
        time.sleep(0.05)
    (row,) = [r for r in _runs_json(path) if r["id"] == rid]
    assert _says_stopped(row), row


def _read_names(path: str) -> list[str]:
    return [r.name for r in Store(path).list_runs()]


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_store_opens_for_reading(clean_store, what):
    folder = clean_store.parent
    for p in (folder.parent, folder.parent.parent):  # pytest's own folders are 0700
        p.chmod(p.stat().st_mode | 0o011)
    folder.chmod(0o777)
    clean_store.chmod(0o444)
    if what == "folder":
        folder.chmod(0o555)
    try:
        names = as_unprivileged(lambda: _read_names(str(clean_store)))
        assert names == ["one", "two", "three", "long"]
    finally:
        folder.chmod(0o755)
