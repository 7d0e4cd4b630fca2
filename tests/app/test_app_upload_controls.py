"""Upload page controls (AppTest): what the user declares about a file the reader cannot know
from its bytes — which way a matrix's rows run, the measure of a file that names none, and a
TensorBoard tag pattern — each re-reads (or relabels) the file before anything is saved."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtl_core.store import Store
from tests.helpers.app_fixtures import open_app, shown

FIELD = Path(__file__).resolve().parents[1] / "data" / "field"
F03 = FIELD / "F03_tag_notebook_rows_are_recipients.csv"
F10 = FIELD / "F10_selupdate_convention" / "tb_dir" / "train"


def _open(tmp_path, monkeypatch, files):
    store = Store(tmp_path / "s.sqlite")
    at = open_app("upload", store.path, monkeypatch).run()
    at.file_uploader(key="upload_files").set_value(files).run()
    assert not at.exception, at.exception
    return store, at


def _key(at, kind: str, widgets) -> str:
    (key,) = [w.key for w in widgets if w.key.startswith(f"upload_{kind}_")]
    return key


def _save(at, store):
    at.button(key="upload_save").click().run()
    assert not at.exception, at.exception
    (run,) = store.list_runs()
    return run.id


def _events(folder: Path, rows) -> bytes:
    """One TensorBoard event file holding ``(step, tag, value)`` scalars, as bytes."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(str(folder))
    for k, (step, tag, value) in enumerate(rows):
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
        w.add_event(Event(step=step, wall_time=1.7e9 + k, summary=summary))
    w.close()
    (path,) = folder.glob("events.out.tfevents.*")
    return path.read_bytes()


def test_rows_are_targets_toggle_transposes_the_saved_matrix(tmp_path, monkeypatch):
    store, at = _open(tmp_path, monkeypatch, [(F03.name, F03.read_bytes(), "text/csv")])
    assert not at.error
    assert any("rows = sources" in c.value for c in at.caption)  # says how it was read
    at.toggle(key=_key(at, "rows", at.toggle)).set_value(True).run()
    assert not at.exception and not at.error
    assert any("Read as rows are targets (declared)" in shown(c.value) for c in at.caption)
    rid = _save(at, store)
    _, tasks, A = store.affinity_steps(rid, "lookahead")
    i, j = tasks.index("Goatee"), tasks.index("Mustache")
    # file row Goatee (a target), column Mustache (a source) = -0.9: Mustache onto Goatee
    assert A[0, j, i] == -0.9 and A[0, i, j] == -64.0
    assert A[0, i, i] == 344.3100232583665


def test_rows_are_targets_against_a_source_corner_shows_the_error_and_can_be_undone(
    tmp_path, monkeypatch
):
    data = b"source,x,y\nx,1,2\ny,3,4\n"
    store, at = _open(tmp_path, monkeypatch, [("corner.csv", data, "text/csv")])
    key = _key(at, "rows", at.toggle)
    at.toggle(key=key).set_value(True).run()
    assert not at.exception
    (err,) = [shown(e.value) for e in at.error]
    assert "corner cell" in err and "\n" not in err
    assert at.toggle(key=key).value is True  # still offered, so the user can switch it off
    at.toggle(key=key).set_value(False).run()
    assert not at.error
    rid = _save(at, store)
    _, tasks, A = store.affinity_steps(rid, "lookahead")
    assert tasks == ["x", "y"] and A[0, 0, 1] == 2.0


def test_measure_of_a_matrix_is_chosen_and_saved(tmp_path, monkeypatch):
    data = b",a,b\na,0.5,-0.25\nb,0.125,1\n"
    store, at = _open(tmp_path, monkeypatch, [("m.csv", data, "text/csv")])
    key = _key(at, "measure", at.selectbox)
    assert "default lookahead" in at.selectbox(key=key).label
    assert at.dataframe[0].value.loc[0, "measures"] == "lookahead"
    at.selectbox(key=key).set_value("proximal").run()
    assert at.dataframe[0].value.loc[0, "measures"] == "proximal"  # the preview says so
    rid = _save(at, store)
    assert store.measures(rid) == ["proximal"]
    _, tasks, A = store.affinity_steps(rid, "proximal")
    assert tasks == ["a", "b"] and A[0, 0, 1] == -0.25 and A[0, 1, 0] == 0.125


def test_measure_other_takes_a_typed_name_and_blocks_saving_until_given(tmp_path, monkeypatch):
    data = b",a,b\na,0.5,-0.25\nb,0.125,1\n"
    store, at = _open(tmp_path, monkeypatch, [("m.csv", data, "text/csv")])
    at.selectbox(key=_key(at, "measure", at.selectbox)).set_value("other").run()
    assert any("Type the measure's name" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "upload_save"]  # nothing to save yet
    name_key = _key(at, "measure_other", at.text_input)
    at.text_input(key=name_key).set_value("  grad   sim ").run()
    assert at.dataframe[0].value.loc[0, "measures"] == "grad sim"
    rid = _save(at, store)
    assert store.measures(rid) == ["grad sim"]


def test_a_file_naming_its_measure_offers_no_measure_choice(tmp_path, monkeypatch):
    data = b"step,source,target,affinity,measure\n1,a,b,0.5,cosine\n1,b,a,0.25,cosine\n"
    _, at = _open(tmp_path, monkeypatch, [("long.csv", data, "text/csv")])
    assert not [s for s in at.selectbox if s.key.startswith("upload_measure_")]
    assert not [t for t in at.toggle if t.key.startswith("upload_rows_")]  # not a matrix


def test_selupdate_log_is_recognised_without_a_pattern(tmp_path, monkeypatch):
    files = [(p.name, p.read_bytes(), "application/octet-stream") for p in sorted(F10.iterdir())]
    store, at = _open(tmp_path, monkeypatch, files)
    # the event file with the affinity tags reads with no pattern; the pattern box is offered
    assert len([t for t in at.text_input if t.key.startswith("upload_pattern_")]) == len(files)
    previews = [d.value for d in at.dataframe if "tasks" in d.value.columns]
    assert any(p.loc[0, "tasks"] == 4 and p.loc[0, "measures"] == "proximal" for p in previews)


def test_tag_pattern_reads_an_unknown_layout_and_bad_patterns_say_why(tmp_path, monkeypatch):
    rows = [
        (s, f"aff/{a}->{b}", float(s) + 0.5 * i + 0.25 * j)
        for s in (0, 5)
        for i, a in enumerate("xy")
        for j, b in enumerate("xy")
    ]
    data = _events(tmp_path / "tb", rows)
    store, at = _open(tmp_path, monkeypatch, [("events.out.tfevents.1.host", data, "x")])
    (err,) = [shown(e.value) for e in at.error]
    assert "tag pattern" in err and "aff/x->y" in err
    key = _key(at, "pattern", at.text_input)
    at.text_input(key=key).set_value("aff/{src}->{target}").run()
    (err,) = [shown(e.value) for e in at.error]
    assert "use {source} and {target}" in err and "\n" not in err
    at.text_input(key=key).set_value("aff/{source}->{target}").run()
    assert not at.error, [e.value for e in at.error]
    assert any("aff/{source}->{target}" in shown(c.value) for c in at.caption)
    assert at.dataframe[0].value.loc[0, "logged steps"] == 2
    rid = _save(at, store)
    steps, tasks, A = store.affinity_steps(rid, "lookahead")
    assert list(steps) == [0, 5] and tasks == ["x", "y"]
    assert np.allclose(A[1], [[5.0, 5.25], [5.5, 5.75]])


def test_user_strings_in_the_controls_are_escaped(tmp_path, monkeypatch):
    rows = [(0, "*aff*/a/b", 1.0), (0, "*aff*/b/a", 2.0)]
    data = _events(tmp_path / "tb", rows)
    _, at = _open(tmp_path, monkeypatch, [("events.out.tfevents.**x**", data, "x")])
    assert any("\\*\\*x\\*\\*" in m.value for m in at.markdown)
    key = _key(at, "pattern", at.text_input)
    at.text_input(key=key).set_value("*aff*/{src}/{target}").run()
    (err,) = at.error
    assert "\\*aff\\*" in err.value and "*aff*/{src}" in shown(err.value)
    at.text_input(key=key).set_value("*aff*/{source}/{target}").run()
    assert not at.error
    (cap,) = [c.value for c in at.caption if "tag pattern" in c.value]
    assert "\\*aff\\*" in cap and shown(cap).endswith("*aff*/{source}/{target}.")


def test_measure_select_offers_the_registry_and_saves_an_alias_as_its_measure(
    tmp_path, monkeypatch
):
    from mtl_core import measures
    from tests.helpers.measures import GRADNORM

    monkeypatch.setattr(measures, "REGISTRY", (*measures.REGISTRY, GRADNORM))
    data = b",a,b\na,0.5,-0.25\nb,0.125,1\n"
    store, at = _open(tmp_path, monkeypatch, [("m.csv", data, "text/csv")])
    box = at.selectbox(key=_key(at, "measure", at.selectbox))
    assert box.options == [m.label for m in measures.REGISTRY] + ["other (type its name)"]
    assert box.value == measures.DEFAULT_MEASURE
    box.set_value("other").run()
    at.text_input(key=_key(at, "measure_other", at.text_input)).set_value(" TAG ").run()
    assert at.dataframe[0].value.loc[0, "measures"] == "lookahead"
    rid = _save(at, store)
    assert store.measures(rid) == ["lookahead"]


def test_two_tensorboard_files_of_one_folder_get_distinct_default_names(tmp_path, monkeypatch):
    """Issue 22: ``Path.stem`` made ``events.out.tfevents.<time>.<host>.<pid>.0`` and ``.2``
    one name; a file name uploaded twice (two folders' ``events`` files) gets ``(2)``."""
    prefix = "events.out.tfevents.1796067895.vm.11421"
    files = []
    for k, name in enumerate((f"{prefix}.0", f"{prefix}.2", f"{prefix}.2")):
        rows = [(0, "affinity/a/b", 0.5 + k), (0, "affinity/b/a", 0.25)]
        files.append((name, _events(tmp_path / f"tb{k}", rows), "application/octet-stream"))
    store, at = _open(tmp_path, monkeypatch, files)
    assert not at.error, [e.value for e in at.error]
    names = [t.value for t in at.text_input if t.key.startswith("upload_name_")]
    assert names == [f"{prefix}.0", f"{prefix}.2", f"{prefix}.2 (2)"]
    at.button(key="upload_save").click().run()
    assert not at.exception
    saved = sorted(store.list_runs(), key=lambda r: r.id)
    assert [r.name for r in saved] == names
    # each name is its own file's run: the third file's a -> b affinity is 2.5
    assert store.affinity_steps(saved[2].id, "lookahead")[2][0, 0, 1] == 2.5
