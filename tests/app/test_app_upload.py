"""Upload page (AppTest): preview before saving, reader errors shown, saved runs open in Explore,
download in the open format."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from mtl_core.runfile import read_run_file
from tests.helpers.app_fixtures import open_app, seed_run, shown

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "run-format"
GOOD = b"step,source,target,affinity\n" + b"".join(
    f"{s},{a},{b},{0.01 if a == b else -0.002}\n".encode()
    for s in (1, 2, 3)
    for a in ("x", "y")
    for b in ("x", "y")
)
BAD = b"step,source,target,afinity\n1,x,y,0.1\n"


def _upload(at, files):
    at.file_uploader(key="upload_files").set_value(files).run()
    return at


def test_upload_previews_then_saves_and_links_to_explore(store, monkeypatch):
    at = open_app("upload", store.path, monkeypatch).run()
    assert not at.exception
    _upload(at, [("good.csv", GOOD, "text/csv")])
    assert not at.exception
    preview = at.dataframe[0].value
    assert preview.loc[0, "tasks"] == 2 and preview.loc[0, "logged steps"] == 3
    assert store.list_runs() == []  # nothing saved before the button
    at.text_input(
        key=[t.key for t in at.text_input if t.key.startswith("upload_name_")][0]
    ).set_value("my upload").run()
    at.button(key="upload_save").click().run()
    assert not at.exception
    runs = store.list_runs()
    assert [r.name for r in runs] == ["my upload"] and runs[0].origin == "uploaded"
    assert any("Saved as run #" in s.value for s in at.success)
    links = [p for p in at.get("page_link")]
    assert any(p.proto.label == f"Open run #{runs[0].id} in Explore" for p in links)


def test_bad_upload_shows_reader_error_and_saves_nothing(store, monkeypatch):
    at = open_app("upload", store.path, monkeypatch).run()
    _upload(
        at,
        [
            ("bad.csv", BAD, "text/csv"),
            ("notes.docx", b"hello", "application/octet-stream"),
            ("good.csv", GOOD, "text/csv"),
        ],
    )
    assert not at.exception
    errors = [shown(e.value) for e in at.error]
    assert len(errors) == 2, errors
    assert "affinity" in errors[0] and "bad.csv" in errors[0]  # the reader's own message
    assert "notes.docx" in errors[1] and "unsupported" in errors[1]
    assert "Traceback" not in " ".join(errors)
    # the good file is still offered, alone
    assert at.button(key="upload_save").proto.label == "Save this run"
    at.button(key="upload_save").click().run()
    assert len(store.list_runs()) == 1


def test_upload_zip_bundle_with_metrics(store, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in EXAMPLES.iterdir():
            zf.write(f, f.name)
    at = open_app("upload", store.path, monkeypatch).run()
    _upload(at, [("example.zip", buf.getvalue(), "application/zip")])
    assert not at.exception, at.exception
    assert at.dataframe[0].value.loc[0, "metric rows"] > 0
    at.button(key="upload_save").click().run()
    (run,) = store.list_runs()
    assert not store.metrics(run.id).empty


def test_download_round_trips_through_the_reader(store, monkeypatch):
    rid = seed_run(store, name="to download", steps=12)
    at = open_app("upload", store.path, monkeypatch).run()
    assert not at.exception
    assert at.selectbox(key="download_run").value == rid
    # The button's data is produced on click; produce it the same way the page does.
    from app.views import upload as page

    for ext in (".zip", ".csv"):
        data = page.run_file_bytes(store.export_parsed(rid), f"run{ext}")
        parsed = read_run_file(data, f"run{ext}")
        assert parsed.tasks == store.get_run(rid).tasks
        steps, _, A = parsed.matrices("", "lookahead")
        s2, _, A2 = store.affinity_steps(rid, "lookahead")
        assert (steps == s2).all() and (A == A2).all()
    at.selectbox(key="download_fmt").set_value(".csv").run()
    assert any("affinity table only" in c.value for c in at.caption)


def test_upload_of_a_square_matrix_previews_its_tasks_and_saves_one_step(store, monkeypatch):
    at = open_app("upload", store.path, monkeypatch).run()
    matrix = (EXAMPLES / "affinity_matrix.csv").read_bytes()
    _upload(at, [("matrix.csv", matrix, "text/csv")])
    assert not at.exception and not at.error
    preview = at.dataframe[0].value
    header = matrix.decode().splitlines()[0].split(",")[1:]
    assert preview.loc[0, "tasks"] == len(header) and preview.loc[0, "logged steps"] == 1
    at.button(key="upload_save").click().run()
    rid = store.list_runs()[0].id
    _, tasks, A = store.affinity_steps(rid, "lookahead")
    assert tasks == header and A.shape == (1, len(header), len(header))
    first_row = [float(v) for v in matrix.decode().splitlines()[1].split(",")[1:]]
    assert A[0, 0].tolist() == first_row  # row = source, exact floats


def test_delete_asks_for_confirmation_then_says_what_it_deleted(store, monkeypatch):
    keep = seed_run(store, name="keep me", steps=5)
    rid = seed_run(store, name="drop me", steps=5)
    at = open_app("upload", store.path, monkeypatch).run()
    at.selectbox(key="download_run").set_value(rid).run()
    assert at.button(key="download_delete").disabled  # nothing happens without the tick
    at.checkbox(key=f"download_delete_sure_{rid}").check().run()
    at.button(key="download_delete").click().run()
    assert not at.exception
    assert [r.id for r in store.list_runs()] == [keep]
    assert any(f"Deleted run #{rid} (drop me)" in s.value for s in at.success)
    assert at.button(key="download_delete").disabled  # the next run is not one click away
