"""Train page, your own table (AppTest): upload a table, pick targets from its columns, see the
features the run will use (a saved row index left out and said), queue the run; the table is
saved beside the store, content-addressed and owned by this session, and never a server path."""

from __future__ import annotations

import hashlib

import pytest

from mtl_core.scenarios import table_files
from mtl_core.store import Store
from tests.helpers.app_fixtures import open_app, shown


def _table_bytes() -> bytes:
    """F19's shape (a pandas index saved by to_csv(), targets with spaces), made here so the
    test does not depend on the shared cases folder."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = [",Relative Compactness,Surface Area,<b>Glazing</b>,Heating Load,Cooling Load"]
    for i in rng.permutation(300):
        x = rng.random(3)
        rows.append(
            f"{i},{x[0]:.4f},{500 + 200 * x[1]:.2f},{x[2]:.3f},{10 + 30 * x[0]:.3f},{x.sum():.3f}"
        )
    return ("\n".join(rows) + "\n").encode()


def _open(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_LAB_TRAIN_FN", "tests.helpers.app_fixtures:fake_train")
    store = Store(tmp_path / "s.sqlite")
    at = open_app("train", store.path, monkeypatch).run()
    at.selectbox(key="train_scenario").set_value("csv").run()
    assert not at.exception
    return store, at


@pytest.mark.slow
def test_train_on_an_uploaded_table_lists_features_and_queues(tmp_path, monkeypatch):
    store, at = _open(tmp_path, monkeypatch)
    # an upload, never a path on the server: no text field takes a path
    assert not [t for t in at.text_input if "path" in (t.key or "")]
    data = _table_bytes()
    at.file_uploader(key="train_table_file").set_value([("energy.csv", data, "text/csv")]).run()
    assert not at.exception
    targets = next(m for m in at.multiselect if m.key.startswith("train_table_targets_"))
    assert "Heating Load" in targets.options and "(no name)" in targets.options
    targets.set_value(["Heating Load", "Cooling Load"]).run()
    assert not at.exception
    text = " ".join(shown(m.value) for m in at.markdown)
    assert "Features (3): 'Relative Compactness', 'Surface Area', '<b>Glazing</b>'" in text
    assert "Left out (1): (no name): a row index" in text
    assert "Will queue" in text and "targets=['Heating Load', 'Cooling Load']" in text
    assert store.list_runs() == []  # nothing queued before the button
    at.button(key="train_queue").click().run()
    assert not at.exception, at.exception
    (run,) = store.list_runs()
    ref = run.config["knobs"]["table"]
    assert ref == hashlib.sha256(data).hexdigest() + ".csv"
    assert run.config["knobs"]["targets"] == ["Heating Load", "Cooling Load"]
    assert not run.config["knobs"].get("path")
    folder = table_files.tables_dir(store.path)
    assert (folder / ref).read_bytes() == data
    assert table_files.owners_of(ref, folder) == [run.owner] and run.owner


def test_a_constant_target_is_refused_by_name(tmp_path, monkeypatch):
    store, at = _open(tmp_path, monkeypatch)
    data = b"a,b,flat,y\n" + b"".join(f"{i},{i % 7},1.0,{i % 3}\n".encode() for i in range(40))
    at.file_uploader(key="train_table_file").set_value([("t.csv", data, "text/csv")]).run()
    targets = next(m for m in at.multiselect if m.key.startswith("train_table_targets_"))
    targets.set_value(["flat", "y"]).run()
    captions = " ".join(shown(c.value) for c in at.caption)
    assert "target 'flat' has the same value in every row" in captions
    at.button(key="train_queue").click().run()
    assert any("target 'flat' has the same value" in shown(e.value) for e in at.error)
    assert store.list_runs() == []


def test_a_european_excel_table_reads_with_decimal_commas(tmp_path, monkeypatch):
    store, at = _open(tmp_path, monkeypatch)
    rows = ["Größe;Länge;Höhe;Preis"] + [
        f"{i % 9},5;{i % 5},25;{i % 4},75;{i * 3 % 11},5" for i in range(40)
    ]
    data = ("\r\n".join(rows) + "\r\n").encode("cp1252")
    at.file_uploader(key="train_table_file").set_value([("excel.csv", data, "text/csv")]).run()
    assert not at.exception
    targets = next(m for m in at.multiselect if m.key.startswith("train_table_targets_"))
    assert targets.options == ["Größe", "Länge", "Höhe", "Preis"]
    targets.set_value(["Höhe", "Preis"]).run()
    text = " ".join(shown(m.value) for m in at.markdown)
    assert "Features (2): 'Größe', 'Länge'" in text
    assert "regression" in text


def test_explore_says_what_a_table_run_trained_on(store, monkeypatch):
    from mtl_core.runner.worker import TABLE_NOTE
    from tests.helpers.app_fixtures import seed_run

    rid = seed_run(store, config={"scenario": "csv", "knobs": {"targets": ["t0", "t1"]}})
    note = {"features": ["a", "<b>x</b>"], "left_out": {"": "a row index (unnamed)"}, "rows": 9}
    store.save_note(rid, TABLE_NOTE, note)
    at = open_app("explore", store.path, monkeypatch, query={"run": rid}).run()
    assert not at.exception
    text = " ".join(shown(c.value) for c in at.caption)
    assert "Features (2): 'a', '<b>x</b>' · left out (1): (no name): a row index" in text
