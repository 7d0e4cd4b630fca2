"""The store's file as the problem (issue 13, items 11 and 13): a full disk, a damaged file,
a read-only file. Each gives one clear line (exit 2 on the command line), never a traceback,
and nothing is written into a damaged file."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mtl_core.commands.cli import main
from mtl_core.errors import LabError
from mtl_core.store import Store
from mtl_core.store.faults import StoreFault, fault_kind, forget_checks
from tests.helpers.store_faults import FULL, as_unprivileged, damage, disk_full
from tests.helpers.store_faults import cli as _cli

ROOT = Path(__file__).resolve().parents[2]
CSV = str(ROOT / "examples" / "run-format" / "affinity.csv")


def _one_error_line(code: int, err: str) -> str:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    return err


@pytest.fixture
def store_with_runs(tmp_path, capsys) -> Path:
    path = tmp_path / "s.sqlite"
    for name in ("one", "two"):
        assert main(["import", CSV, "--name", name, "--store", str(path)]) == 0
    capsys.readouterr()
    return path


# ----------------------------------------------------------------------------- damaged


def test_damaged_store_refuses_writes_with_the_recovery_step(store_with_runs, tmp_path, capsys):
    path = store_with_runs
    damage(path)
    before = path.read_bytes()
    code, _, err = _cli(capsys, "import", CSV, "--store", str(path))
    err = _one_error_line(code, err)
    assert "is damaged" in err and '".recover"' in err and "nothing was changed" in err
    for argv in (["delete", "1"], ["export", "1", "--out", str(tmp_path / "o.zip")], ["runs"]):
        code, _, err = _cli(capsys, *argv, "--store", str(path))
        _one_error_line(code, err)
        assert "is damaged" in err and "recover" in err
    assert path.read_bytes() == before  # nothing was written into it
    assert not (tmp_path / "o.zip").exists()


def test_quick_check_finds_damage_that_reads_do_not(tmp_path):
    """Damage only in the free-page list: reads still work, but a write is refused."""
    path = tmp_path / "s.sqlite"
    st = Store(path)
    rid = st.create_run(name="x", status="finished")
    big = st.create_run(name="big", notes="x" * 200_000)  # spills onto overflow pages
    st.delete_run(big)  # ... which go to the free list
    st.close()
    con = sqlite3.connect(path)
    freelist = con.execute("PRAGMA freelist_count").fetchone()[0]
    trunk = int.from_bytes(path.read_bytes()[32:36], "big")
    con.close()
    assert freelist > 0 and trunk > 0
    data = bytearray(path.read_bytes())
    size = int.from_bytes(data[16:18], "big")
    off = (trunk - 1) * size
    data[off + 4 : off + 8] = (10_000).to_bytes(4, "big")  # the trunk's leaf count, far off
    path.write_bytes(bytes(data))
    forget_checks()  # as a new process
    fresh = Store(path)
    assert fresh.get_run(rid).name == "x"  # reading still works
    with pytest.raises(StoreFault, match="damaged .*integrity check") as info:
        fresh.rename_run(rid, "y")
    assert info.value.kind == "damaged"


@pytest.mark.slow
def test_recovery_step_works(store_with_runs, tmp_path):
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 command-line tool is not installed")
    damage(store_with_runs)
    with pytest.raises(StoreFault) as info:
        Store(store_with_runs).create_run(name="x")
    cmd = info.value.args[0].split("`")[1]  # the command the message gives
    subprocess.run(cmd, shell=True, check=True, capture_output=True, cwd=tmp_path)
    fixed = store_with_runs.with_name("s-recovered.sqlite")
    assert fixed.exists()
    Store(fixed).create_run(name="after recovery")  # a usable store again


# ----------------------------------------------------------------------------- read-only


def _readonly_outcomes(path: str) -> tuple[list[str], str]:
    st = Store(path)
    names = [r.name for r in st.list_runs()]
    try:
        st.create_run(name="nope")
    except LabError as exc:
        return names, str(exc)
    return names, ""


def test_read_only_store_file_says_read_only(store_with_runs, tmp_path):
    path = store_with_runs
    folder = path.parent
    folder.chmod(0o777)
    for p in (folder.parent, folder.parent.parent):  # pytest's own folders are 0700
        p.chmod(p.stat().st_mode | 0o011)
    path.chmod(0o444)
    names, err = as_unprivileged(lambda: _readonly_outcomes(str(path)))
    assert names == ["one", "two"]  # reading works
    assert "is read-only" in err and "not a run store" not in err and "not writable" in err


def test_read_only_folder_says_read_only(store_with_runs):
    path = store_with_runs
    Store(path).close()
    folder = path.parent
    for p in (folder.parent, folder.parent.parent):
        p.chmod(p.stat().st_mode | 0o011)
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        with pytest.raises(LabError, match="is read-only") as info:
            as_unprivileged(lambda: Store(str(path)).create_run(name="nope"))
        assert "not a run store" not in str(info.value)
    finally:
        folder.chmod(0o755)


def test_injected_read_only_error_is_a_read_only_fault(store, monkeypatch):
    def readonly(con):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    with pytest.raises(StoreFault, match="is read-only") as info:
        store._write(readonly)
    assert info.value.kind == "readonly"


# ----------------------------------------------------------------------------- disk full


def test_import_into_a_full_store_is_one_line_and_changes_nothing(store_with_runs, capsys):
    path = store_with_runs
    with disk_full(path=path):
        code, _, err = _cli(capsys, "import", CSV, "--store", str(path))
    err = _one_error_line(code, err)
    assert "disk is full" in err and "free some space" in err
    assert [r.name for r in Store(path).list_runs()] == ["one", "two"]


def test_train_into_a_full_store_is_one_line(store_with_runs, capsys):
    with disk_full(path=store_with_runs):
        code, _, err = _cli(
            capsys,
            "train",
            "--scenario",
            "synthetic",
            "--steps",
            "3",
            "--store",
            str(store_with_runs),
        )
    err = _one_error_line(code, err)
    assert "disk is full" in err


def test_fault_kinds():
    assert fault_kind(sqlite3.OperationalError(FULL)) == "full"
    assert fault_kind(sqlite3.DatabaseError("database disk image is malformed")) == "damaged"
    assert fault_kind(sqlite3.OperationalError("disk I/O error")) == "io"
    assert fault_kind(sqlite3.OperationalError("no such table: x")) is None
    assert fault_kind(sqlite3.OperationalError("database is locked")) is None
    assert fault_kind(ValueError("disk is full")) is None
    assert sys.version_info >= (3, 11)  # sqlite_errorname (3.11+) is used when present


def test_export_onto_a_full_disk_is_one_line(store_with_runs, tmp_path, capsys, monkeypatch):
    import errno
    import os

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("mtl_core.runfile.write.atomic_write_bytes", full)
    out = tmp_path / "o.zip"
    code, _, err = _cli(capsys, "export", "1", "--out", str(out), "--store", str(store_with_runs))
    err = _one_error_line(code, err)
    assert "No space left on device" in err and "o.zip" in err
