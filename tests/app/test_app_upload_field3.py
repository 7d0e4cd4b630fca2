"""Upload page (AppTest) on field3's cases (issue 21): a unit declared for a matrix printed in
percent (G16) with the file's value range shown, a JSON object of objects read either way
(G22), a measure alias, and zipped log folders read as the runs inside (G01 zipped, G18)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_core.store import Store
from tests.helpers.app_fixtures import open_app, shown

DATA = Path(__file__).resolve().parents[1] / "data" / "field3"
REF = pd.read_csv(DATA / "G00_reference_matrix.csv", index_col=0)


def _open(tmp_path, monkeypatch, files):
    store = Store(tmp_path / "s.sqlite")
    at = open_app("upload", store.path, monkeypatch).run()
    at.file_uploader(key="upload_files").set_value(files).run()
    assert not at.exception, at.exception
    return store, at


def _key(widgets, kind: str) -> str:
    (key,) = [w.key for w in widgets if w.key.startswith(f"upload_{kind}_")]
    return key


def _saved_matrix(at, store) -> pd.DataFrame:
    at.button(key="upload_save").click().run()
    assert not at.exception, at.exception
    (run,) = store.list_runs()
    _, tasks, A = store.affinity_steps(run.id, "lookahead")
    return pd.DataFrame(A[0], index=tasks, columns=tasks).loc[REF.index, REF.columns]


def test_g16_percent_declared_on_upload(tmp_path, monkeypatch):
    path = DATA / "G16_matrix_in_percent.csv"
    store, at = _open(tmp_path, monkeypatch, [(path.name, path.read_bytes(), "text/csv")])
    n = int((pd.read_csv(path, index_col=0).to_numpy() > 1).sum())
    assert any(f"{n} values are impossible" in w.value for w in at.warning)
    assert any("Values in the file: -1.7 to 4.1 (read as fractions)" in c.value
               for c in at.caption)  # fmt: skip
    at.selectbox(key=_key(at.selectbox, "unit")).set_value("percent").run()
    assert not any("impossible" in w.value for w in at.warning)
    assert any("Values in the file: -1.7 to 4.1 (read as percent)" in c.value for c in at.caption)
    assert at.dataframe[0].value.loc[0, "value range"] == "from -1.7% to +4.1%"
    got = _saved_matrix(at, store)
    np.testing.assert_allclose(got.to_numpy(), REF.to_numpy(), atol=1e-12)


def test_g22_json_object_says_how_it_was_read_and_flips(tmp_path, monkeypatch):
    path = DATA / "G22_pandas_orient_index.json"
    store, at = _open(tmp_path, monkeypatch, [(path.name, path.read_bytes(), "application/json")])
    ways = [shown(w.value) for w in at.warning if "JSON object of objects" in shown(w.value)]
    assert len(ways) == 1 and "outer keys read as TARGETS" in ways[0]  # one box, not two
    assert "flip it with --rows target (Upload: 'Outer keys are sources')" in ways[0]
    at.toggle(key=_key(at.toggle, "rows")).set_value(True).run()
    ways = [shown(w.value) for w in at.warning if "JSON object of objects" in shown(w.value)]
    assert len(ways) == 1 and "outer keys read as SOURCES" in ways[0]
    got = _saved_matrix(at, store)
    np.testing.assert_allclose(got.to_numpy(), REF.to_numpy(), atol=1e-12)


def test_a_measure_alias_maps_and_an_unknown_one_is_plain_numbers(tmp_path, monkeypatch):
    data = b"step,source,target,affinity,measure\n1,a,b,0.5,TAG\n1,b,a,0.25,TAG\n"
    odd = b"step,source,target,affinity,measure\n1,a,b,0.5,gradsim\n1,b,a,0.25,gradsim\n"
    _, at = _open(tmp_path, monkeypatch, [("t.csv", data, "text/csv"), ("o.csv", odd, "text/csv")])
    assert at.dataframe[0].value.loc[0, "measures"] == "lookahead"
    texts = [shown(w.value) for w in at.warning]
    assert any("measure 'TAG' read as 'lookahead'" in t for t in texts)
    assert any("'gradsim' is not one the lab knows" in t and "plain numbers" in t for t in texts)


def _zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f"{folder.name}/{f.relative_to(folder).as_posix()}")
    return buf.getvalue()


def test_zipped_mlflow_run_and_hydra_multirun_upload(tmp_path, monkeypatch):
    g18 = (DATA / "G18_hydra_multirun.zip").read_bytes()
    files = [("mlflow.zip", _zip(DATA / "G01_mlflow_run_folder"), "application/zip"),
             ("G18.zip", g18, "application/zip")]  # fmt: skip
    store, at = _open(tmp_path, monkeypatch, files)
    assert not at.error, [e.value for e in at.error]
    hydra = [d.value for d in at.dataframe if len(d.value) == 2]
    assert hydra and list(hydra[0]["run"]) == [
        "multirun/2026-11-30/10-00-00/0",
        "multirun/2026-11-30/10-00-00/1",
    ]
    at.button(key="upload_save").click().run()
    assert not at.exception
    assert len(store.list_runs()) == 3


def test_g08_per_step_columns_offer_the_tag_pattern(tmp_path, monkeypatch):
    path = DATA / "G08_wide_arrow_columns.csv"
    store, at = _open(tmp_path, monkeypatch, [(path.name, path.read_bytes(), "text/csv")])
    (err,) = [shown(e.value) for e in at.error]
    assert "give a tag pattern" in err and "row labels" not in err
    at.text_input(key=_key(at.text_input, "pattern")).set_value("{source}->{target}").run()
    assert not at.error
    assert at.dataframe[0].value.loc[0, "logged steps"] == 12
    at.button(key="upload_save").click().run()
    (run,) = store.list_runs()
    steps, tasks, A = store.affinity_steps(run.id, "lookahead")
    assert len(steps) == 12 and sorted(tasks) == ["depth", "edge", "normal", "seg"]


def test_every_field3_case_uploads_as_its_readme_says(tmp_path, monkeypatch):
    """Each case of tests/data/field3 (folders zipped, as a browser sends them) in one upload:
    read, or (G08, G31b: names in no known convention) asking for a tag pattern."""
    files = []
    for p in sorted(DATA.iterdir()):
        if p.name == "README.md":
            continue
        data = _zip(p) if p.is_dir() else p.read_bytes()
        files.append((p.name + (".zip" if p.is_dir() else ""), data, "application/octet-stream"))
    _, at = _open(tmp_path, monkeypatch, files)
    errors = [shown(e.value) for e in at.error]
    assert len(errors) == 2 and all("tag pattern" in e for e in errors), errors
    assert any("G08_wide_arrow_columns.csv" in e for e in errors)
    assert any("G31b_tbx_add_scalars_arrow_keys.zip" in e for e in errors)
    previews = [d.value for d in at.dataframe if "logged steps" in d.value.columns]
    assert len(previews) == len(files) - 2
    assert sum(len(p) for p in previews) == len(files) - 2 + 1  # G18: two runs
    assert all(set(p["tasks"]) == {4} for p in previews)
