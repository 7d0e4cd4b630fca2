"""Issue 23 item 4: the app reads an upload in a child process with a time and a memory cap
(mtl_core.runner.upload_read): the same run as an in-process read, the caps' one-line
messages, only bytes across the boundary, and no reader left behind when the app dies."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_core.errors import LabError
from mtl_core.runfile import read_run_file
from mtl_core.runner import upload_read
from mtl_core.runner.procs import pid_alive
from mtl_core.runner.upload_read import read_upload
from tests.helpers import hostile_uploads as hostile

pytestmark = pytest.mark.slow  # every read starts a child process (the fork server's, ms)
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "run-format"


def _bundle() -> bytes:
    """A zip with metrics, groupings, meta (a config holding NaN) and a left-out cell."""
    aff = "step,source,target,affinity\n0,a,b,0.5\n0,b,a,\n5,a,b,0.25\n5,b,a,-0.125\n"
    metrics = "step,task,split,metric,value\n0,a,val,loss,1.5\n0,b,val,loss,2.0\n"
    groupings = '{"step": 0, "groups": [["a", "b"]]}\n{"step": 5, "groups": [["b"], ["a"]]}\n'
    meta = {
        "tasks": ["a", "b"],
        "task_types": {"a": "regression"},
        "name": "n",
        "config": {"lr": float("nan")},
    }
    return hostile.zip_of(
        [
            ("affinity.csv", aff.encode()),
            ("metrics.csv", metrics.encode()),
            ("groupings.jsonl", groupings.encode()),
            ("meta.json", json.dumps(meta).encode()),
        ]
    )


def _npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, affinity=np.arange(8.0).reshape(2, 2, 2), steps=np.array([3, 9]))
    return buf.getvalue()


CASES = [
    ("bundle.zip", _bundle(), {}),
    ("m.npz", _npz(), {"rows": "target"}),
    (hostile.TB_NAME, hostile.tb_many_tags(5), {}),
    ("runs.csv", hostile.csv_one_cell_runs(3), {"measure": "proximal"}),
]


def _same(a, b) -> None:
    for key in ("affinity", "metrics", "groupings"):
        pd.testing.assert_frame_equal(getattr(a, key), getattr(b, key))
    for key in ("tasks", "task_types", "runs", "tasks_declared", "notes", "left_out"):
        assert getattr(a, key) == getattr(b, key), key
    for key in ("first_left_out", "measure_assumed", "is_matrix"):
        assert getattr(a, key) == getattr(b, key), key
    assert json.dumps(a.meta, sort_keys=True) == json.dumps(b.meta, sort_keys=True)


@pytest.mark.parametrize(("name", "data", "options"), CASES, ids=[c[0] for c in CASES])
def test_a_read_in_the_child_is_the_in_process_read(name, data, options):
    _same(read_upload(data, name, **options), read_run_file(data, name, **options))


def test_the_bundle_case_checks_what_it_should():
    """The comparison above is not vacuous: the bundle has groupings, metrics, a left-out
    cell and a NaN in its config."""
    parsed = read_upload(_bundle(), "bundle.zip")
    assert len(parsed.groupings) == 2 and len(parsed.metrics) == 2 and parsed.left_out == 1
    assert parsed.groupings["groups"].iloc[1] == (frozenset({"b"}), frozenset({"a"}))
    assert np.isnan(parsed.meta["config"]["lr"])


def test_the_readers_own_message_comes_back_under_the_apps_settings(monkeypatch):
    with pytest.raises(LabError) as exc:
        read_upload(hostile.csv_one_cell_runs(5_000), "runs.csv")
    assert str(exc.value) == (
        "cannot import runs.csv: 5,000 runs, over the limit of 100 runs per file "
        "(split the file, or raise it with MTL_LAB_MAX_RUNS)"
    )
    # set after the fork server started: the reader still reads with this process's limits
    monkeypatch.setenv("MTL_LAB_MAX_RUNS", "2")
    with pytest.raises(LabError, match="3 runs, over the limit of 2 runs per file"):
        read_upload(hostile.csv_one_cell_runs(3), "runs.csv")
    monkeypatch.setenv("MTL_LAB_MAX_RUNS", "0")
    assert len(read_upload(hostile.csv_one_cell_runs(300), "runs.csv").runs) == 300


def test_the_memory_cap_refuses_in_one_line(monkeypatch):
    monkeypatch.setenv("MTL_LAB_UPLOAD_MEMORY_MB", "40")  # the zero matrix needs ~250 MB
    with pytest.raises(LabError) as exc:
        read_upload(hostile.npz_zero_matrix(1_000), "zeros.npz")
    msg = str(exc.value)
    assert msg.startswith(
        "cannot import zeros.npz: reading it needs more than the 40 MB an upload may use"
    )
    assert msg.endswith(
        "; raise the server's MTL_LAB_UPLOAD_MEMORY_MB, or import it with the command line"
    )
    assert "\n" not in msg
    monkeypatch.delenv("MTL_LAB_UPLOAD_MEMORY_MB")  # the default (2 GB) reads it
    assert len(read_upload(hostile.npz_zero_matrix(1_000), "zeros.npz").tasks) == 1_000


def test_the_time_cap_stops_a_long_read_in_one_line(monkeypatch):
    monkeypatch.setenv("MTL_LAB_MAX_TAGS", "0")  # lifted: 100,000 tags read for seconds
    monkeypatch.setenv("MTL_LAB_UPLOAD_SECONDS", "0.5")
    data = hostile.tb_many_tags(100_000)
    t0 = time.perf_counter()
    with pytest.raises(LabError) as exc:
        read_upload(data, hostile.TB_NAME)
    assert time.perf_counter() - t0 < 3.0
    assert str(exc.value) == (
        f"cannot import {hostile.TB_NAME}: reading it took longer than the 0.5 s an upload "
        "may take (the server's MTL_LAB_UPLOAD_SECONDS); import it with the command line "
        "instead"
    )


def test_reads_wait_for_a_free_reader_within_their_time(monkeypatch):
    busy = threading.BoundedSemaphore(1)
    busy.acquire()
    monkeypatch.setattr(upload_read, "_readers", busy)
    monkeypatch.setenv("MTL_LAB_UPLOAD_SECONDS", "0.2")
    monkeypatch.setenv("MTL_LAB_UPLOAD_READERS", "1")
    with pytest.raises(LabError) as exc:
        read_upload(hostile.AFFINITY_CSV, "a.csv")
    assert str(exc.value) == (
        "cannot import a.csv: the server is reading 1 other uploads; try again in a minute"
    )
    busy.release()
    monkeypatch.delenv("MTL_LAB_UPLOAD_SECONDS")  # 0.2 s is too short for a loaded machine
    assert read_upload(hostile.AFFINITY_CSV, "a.csv").tasks == ["a", "b"]


def test_only_bytes_cross_the_process_boundary(monkeypatch):
    """The parent never unpickles what the child sends: it receives bytes and decodes JSON
    and Arrow (a pickle.loads in the parent during a read fails the test)."""
    import multiprocessing.connection as mpc

    received = []
    real = mpc.Connection.recv_bytes

    def recv_bytes(self, *a):
        out = real(self, *a)
        received.append(out)
        return out

    def no_recv(self):
        raise AssertionError("the parent unpickled a message from the upload's reader")

    monkeypatch.setattr(mpc.Connection, "recv_bytes", recv_bytes)
    monkeypatch.setattr(mpc.Connection, "recv", no_recv)
    parsed = read_upload(_bundle(), "bundle.zip")
    assert parsed.tasks == ["a", "b"] and len(received) == 1
    assert b"\x80\x04" not in received[0][:2]  # not a pickle stream


def _descendants(pid: int) -> list[int]:
    """Pids whose parent chain leads to ``pid`` (Linux /proc)."""
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        frontier += kids
    return out


def test_no_reader_outlives_a_killed_app(tmp_path):
    """SIGKILL the process that asked for a read (the app's server): its fork server and
    the reader child are gone within a few seconds."""
    data = tmp_path / hostile.TB_NAME
    data.write_bytes(hostile.tb_many_tags(100_000))
    code = (
        "import sys; from pathlib import Path; from mtl_core.runner.upload_read import "
        "read_upload; p = Path(sys.argv[1]); print('reading', flush=True); "
        "read_upload(p.read_bytes(), p.name)"
    )
    env = {**os.environ, "MTL_LAB_MAX_TAGS": "0", "MTL_LAB_UPLOAD_SECONDS": "120"}
    env["PYTHONPATH"] = str(ROOT)
    app = subprocess.Popen([sys.executable, "-c", code, str(data)], env=env, stdout=subprocess.PIPE)
    try:
        assert app.stdout.readline().strip() == b"reading"
        deadline = time.monotonic() + 20
        kids: list[int] = []
        while len(kids) < 2 and time.monotonic() < deadline:  # the fork server and the reader
            time.sleep(0.1)
            kids = _descendants(app.pid)
        assert len(kids) >= 2, kids
        app.send_signal(signal.SIGKILL)
        app.wait(5)
        deadline = time.monotonic() + 5
        while any(pid_alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [k for k in kids if pid_alive(k)]
    finally:
        if app.poll() is None:
            app.kill()


FIELD = ROOT / "tests" / "data" / "field"


def _same_table(a, b) -> None:
    assert (a.columns, a.rows, a.notes) == (b.columns, b.rows, b.notes)
    assert list(a.numeric) == list(b.numeric) and list(a.text) == list(b.text)
    for col in a.numeric:
        np.testing.assert_array_equal(a.numeric[col], b.numeric[col])  # NaN = NaN
        assert a.numeric[col].dtype == np.float64
    for col in a.text:
        assert a.text[col].tolist() == b.text[col].tolist() and a.text[col].dtype == object


def test_a_train_page_table_read_in_the_child_is_the_in_process_read():
    from mtl_core.runner.upload_read import read_table_upload
    from mtl_core.scenarios.table_read import read_table_bytes

    jsonl = b'{"a": 1, "b": "x", "y": true}\n{"a": null, "b": "z", "y": false}\n'
    cases = [(p.name, p.read_bytes()) for p in sorted(FIELD.glob("F19*.csv"))]
    cases += [("rows.jsonl", jsonl), ("t.csv", "höhe;y1;y2\n1,5;2;x\n;3;y\n".encode())]
    assert len(cases) >= 3
    for name, data in cases:
        _same_table(read_table_upload(data, name), read_table_bytes(data, name, detail=True))


def test_a_train_page_table_over_the_memory_cap_is_one_line(monkeypatch):
    from mtl_core.runner.upload_read import read_table_upload

    monkeypatch.setenv("MTL_LAB_UPLOAD_MEMORY_MB", "20")
    data = ("a,b,c\n" + "1.5,2.5,x\n" * 300_000).encode()
    with pytest.raises(LabError) as exc:
        read_table_upload(data, "big.csv")
    assert str(exc.value).startswith(
        "cannot read big.csv: reading it needs more than the 20 MB an upload may use"
    )
