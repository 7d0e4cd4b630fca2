"""Issue 23 item 4, two sessions: one session uploads the worst file (a TensorBoard log of
100,000 tags, read for seconds with the tag limit lifted) while another explores a run; the
explorer's page reruns stay quick the whole time, and the upload ends in one line (the time
cap's, or the task limit's once the scan has counted its 100,001 tasks, whichever comes
first on the machine), because the read runs in a capped child process, not in the shared
server."""

from __future__ import annotations

import threading
import time

import pytest

from mtl_core.store import Store
from tests.helpers import hostile_uploads as hostile
from tests.helpers.app_fixtures import open_app, seed_run, shown


@pytest.mark.slow  # reads in a child process for 6 s
def test_an_upload_never_stalls_another_session(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    rid = seed_run(store, name="planted", steps=20)
    monkeypatch.setenv("MTL_LAB_MAX_TAGS", "0")  # lifted, so the read takes seconds
    monkeypatch.setenv("MTL_LAB_UPLOAD_SECONDS", "6")
    worst = hostile.tb_many_tags(100_000)
    uploader = open_app("upload", store.path, monkeypatch, timeout=60).run()
    explorer = open_app("explore", store.path, monkeypatch, query={"run": rid}, timeout=60).run()
    assert not explorer.exception

    done = threading.Event()
    upload_took: list[float] = []

    def upload() -> None:
        t0 = time.perf_counter()
        uploader.file_uploader(key="upload_files").set_value(
            [(hostile.TB_NAME, worst, "application/octet-stream")]
        ).run()
        upload_took.append(time.perf_counter() - t0)
        done.set()

    thread = threading.Thread(target=upload)
    thread.start()
    reruns: list[float] = []
    try:
        time.sleep(0.5)  # the upload's read has started
        while not done.is_set() and len(reruns) < 2000:
            t0 = time.perf_counter()
            explorer.run()
            reruns.append(time.perf_counter() - t0)
    finally:
        thread.join(90)
    assert not explorer.exception and not uploader.exception
    assert reruns, "the upload ended before the explorer could rerun"
    assert max(reruns) < 5.0, reruns  # the explorer was never held by the upload
    time_cap = (
        f"cannot import {hostile.TB_NAME}: reading it took longer than the 6 s an upload may "
        "take (the server's MTL_LAB_UPLOAD_SECONDS); import it with the command line instead"
    )
    task_limit = (
        f"cannot import {hostile.TB_NAME}: 100,001 tasks, over the limit of 1,000 tasks per run "
        "(raise it with MTL_LAB_MAX_TASKS)"
    )
    said = [shown(e.value) for e in uploader.error]
    assert said in ([time_cap], [task_limit]), said
    assert upload_took and upload_took[0] < 15
