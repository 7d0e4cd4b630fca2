"""Upload page (AppTest) with damaged files: the reader's one line, and what a read left out."""

from __future__ import annotations

from pathlib import Path

from mtl_core.errors import LabError
from mtl_core.runfile import read_run_file
from tests.helpers.app_fixtures import open_app, shown

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "reliability"


def test_damaged_uploads_show_the_readers_line_and_what_was_lost(store, monkeypatch):
    at = open_app("upload", store.path, monkeypatch).run()
    files = [
        (name, (DATA / name).read_bytes(), "application/octet-stream")
        for name in ("crash_deep_nesting.jsonl", "silent_tb_bitflip.tfevents")
    ]
    at.file_uploader(key="upload_files").set_value(files).run()
    assert not at.exception
    try:
        read_run_file(files[0][1], files[0][0])
    except LabError as exc:
        expected = str(exc)
    assert [shown(e.value) for e in at.error] == [expected]  # the same one line as the CLI
    warnings = [shown(w.value) for w in at.warning]
    assert any("3 records failed their CRC check and were left out" in w for w in warnings)
    assert at.button(key="upload_save").proto.label == "Save this run"  # the readable one
