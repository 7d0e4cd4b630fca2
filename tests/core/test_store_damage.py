"""Damaged and read-only stores (issue 23, item 6): real damage (8 KB pages overwritten in
place) gives one line (exit 2) from every command, never a traceback nor exit 0 on a file
that fails its integrity check; damage done during a run stops its writes; a read-only store
opens for reading."""

from __future__ import annotations

import sqlite3
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
    finally:
        runner.shutdown(timeout=5)
    err = capfd.readouterr().err
    assert "is damaged" in err and '".recover"' in err and "Traceback" not in err, err


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
