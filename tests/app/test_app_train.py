"""Train page (AppTest): the form builds a valid config or shows the mistake, queues a run that
the runner trains in a worker, and the queue table shows progress and cancels."""

from __future__ import annotations

import time

import pytest

from app import session
from mtl_core.store import Store
from tests.helpers.app_fixtures import open_app, seed_live_run, shown


def _form_values(at, **values):
    for key, value in values.items():
        widget = next(w for w in at.main if getattr(w, "key", None) == key)
        widget.set_value(value)
    return at


def test_train_form_rejects_bad_values_with_a_message(store, monkeypatch):
    at = open_app("train", store.path, monkeypatch).run()
    assert not at.exception
    assert at.number_input(key="train_knob_synthetic_tasks").value == 6  # scenario knobs shown
    assert "auto" in at.selectbox(key="train_device").options[0]
    _form_values(at, train_hidden_synthetic="64,abc")
    at.button(key="train_queue").click().run()
    assert not at.exception
    assert any("hidden widths must be comma-separated" in shown(e.value) for e in at.error)
    _form_values(at, train_hidden_synthetic="64,32", train_mode="groups")
    at.button(key="train_queue").click().run()
    assert any("groups" in shown(e.value) for e in at.error)
    # a task the scenario does not have is refused before anything is queued
    _form_values(at, train_groups="t0,t1,t2; t3,t4,banana")
    at.button(key="train_queue").click().run()
    assert any(
        "unknown task(s) banana" in shown(e.value) and "t5" in shown(e.value) for e in at.error
    )
    assert store.list_runs() == []


def test_this_sessions_failed_run_shows_its_reason_above_the_queue(store, monkeypatch):
    at = open_app("train", store.path, monkeypatch).run()
    rid = store.create_run(
        name="broken", origin="trained", status="queued", config={}, steps_total=10
    )
    at.session_state[session.MY_RUNS] = [rid]
    store.set_status(rid, "failed", error="loss became NaN at step 3 on task t1")
    at.run()
    assert any(f"Run #{rid} (broken) failed: loss became NaN" in shown(e.value) for e in at.error)


@pytest.mark.slow
def test_train_queues_a_run_and_the_queue_follows_it(store, monkeypatch):
    monkeypatch.setenv("MTL_LAB_TRAIN_FN", "tests.helpers.app_fixtures:fake_train")
    at = open_app("train", store.path, monkeypatch).run()
    _form_values(
        at,
        train_steps=30,
        train_name="quick one",
        train_groups="t0,t1,t2;t3,t4,t5",
        train_mode="groups",
    )
    at.button(key="train_queue").click().run()
    assert not at.exception
    (run,) = store.list_runs()
    assert run.name == "quick one" and run.config["train"]["steps"] == 30
    assert run.config["train"]["groups"] == [["t0", "t1", "t2"], ["t3", "t4", "t5"]]
    assert run.config["affinity"]["measure"] == "none"  # auto for groups mode
    assert any(f"Queued run #{run.id}" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert table.loc[0, "run"] == f"#{run.id} quick one" and table.loc[0, "yours"] == "✓"
    deadline = time.time() + 60
    while store.get_run(run.id).status != "finished" and time.time() < deadline:
        time.sleep(0.2)
    at.run()
    table = at.dataframe[0].value
    assert "finished" in table.loc[0, "status"] and table.loc[0, "progress"] == 1.0


def test_queue_cancels_a_running_run(store, monkeypatch):
    rid = seed_live_run(store, steps_total=100, steps_done=30)
    at = open_app("train", store.path, monkeypatch).run()
    assert not at.exception
    bars = [p.proto.text for p in at.get("progress")]
    assert any("30/100 steps" in b for b in bars), bars
    at.button(key=f"cancel_{rid}").click().run()
    assert not at.exception
    assert store.get_run(rid).cancel_requested


def test_queued_runs_say_how_many_are_ahead(tmp_path, monkeypatch):
    from app import data, words

    store = Store(tmp_path / "q.sqlite")
    monkeypatch.setenv("MTL_LAB_STORE", str(store.path))
    ids = [
        store.create_run(name=f"r{i}", origin="trained", status="queued", config={}, steps_total=10)
        for i in range(3)
    ]

    def text(rid):
        info = store.get_run(rid)
        return words.status_text(info, data.queue_ahead(info))

    texts = [text(i) for i in ids]
    assert "starts when a worker is free" in texts[0]
    assert "1 queued run ahead" in texts[1] and "2 queued runs ahead" in texts[2]
    store.set_status(ids[0], "running")
    # the queue order is shared by every session for data.QUEUE_REFRESH_S: the place may lag
    # by that much, never more
    later = time.time() + data.QUEUE_REFRESH_S
    monkeypatch.setattr(data.time, "time", lambda: later)
    assert "starts when a worker is free" in text(ids[1])
    assert "1 queued run ahead" in text(ids[2])


@pytest.mark.slow
def test_train_form_offers_the_model_options_replicas_and_sequential_presets(store, monkeypatch):
    monkeypatch.setenv("MTL_LAB_TRAIN_FN", "tests.helpers.app_fixtures:fake_train")
    at = open_app("train", store.path, monkeypatch).run()
    assert at.selectbox(key="train_seq_preset").value == "paper"  # the documented default
    _form_values(
        at,
        train_steps=20,
        train_mode="sequential",
        train_seq_preset="fast",
        train_linear_synthetic=True,
        train_head_scale_synthetic=0.5,
    )
    at.button(key="train_queue").click().run()
    assert not at.exception
    (run,) = store.list_runs()
    cfg = run.config
    assert cfg["affinity"]["beta"] == 0.9 and cfg["train"]["warmup"] == 10
    assert cfg["affinity"]["group_size_norm"] is False
    assert cfg["model"]["linear_bottleneck"] is True and cfg["model"]["head_scale"] == 0.5


def test_a_field_change_never_queues_and_the_run_is_shown_before_it_is_queued(store, monkeypatch):
    """Enter in a field commits that field only (no form submit): nothing is queued until the
    button is pressed, and the run's name and settings are shown above it first."""
    at = open_app("train", store.path, monkeypatch).run()
    _form_values(at, train_name="my digits try", train_steps=40)
    at.run()  # what Enter (or leaving the field) does: one rerun with the new value
    at.text_input(key="train_name").set_value("my digits try").run()
    assert not at.exception
    assert store.list_runs() == []
    preview = [m.value for m in at.markdown if "Will queue" in m.value]
    assert preview and "**my digits try**" in preview[0] and "40 steps" in preview[0]
    assert "mode together" in preview[0] and "scenario synthetic" in preview[0]


def test_scenario_change_resets_the_fields_that_depend_on_it(store, monkeypatch):
    at = open_app("train", store.path, monkeypatch).run()
    at.selectbox(key="train_scenario").set_value("digits").run()
    _form_values(
        at, train_name="digits seq prox", train_mode="sequential", train_groups="even,prime"
    )
    at.run()
    assert at.text_input(key="train_name").value == "digits seq prox"
    at.selectbox(key="train_scenario").set_value("synthetic").run()
    assert not at.exception
    assert at.text_input(key="train_name").value == ""
    assert at.selectbox(key="train_mode").value == "together"
    assert at.text_input(key="train_groups").value == ""
    preview = next(m.value for m in at.markdown if "Will queue" in m.value)
    assert "**synthetic together**" in preview


def test_train_form_reads_its_defaults_and_measures_from_the_core(store, monkeypatch):
    import dataclasses

    from mtl_core import measures
    from mtl_core.config import OptimConfig, TrainConfig
    from tests.helpers.measures import GRADNORM

    train = {f.name: f for f in dataclasses.fields(TrainConfig)}
    optim = {f.name: f for f in dataclasses.fields(OptimConfig)}
    monkeypatch.setattr(train["steps"], "default", 123)
    monkeypatch.setattr(train["batch_size"], "default", 17)
    monkeypatch.setattr(train["eval_every"], "default", 7)
    monkeypatch.setattr(optim["momentum"], "default", 0.8)
    monkeypatch.setattr(measures, "REGISTRY", (*measures.REGISTRY, GRADNORM))
    at = open_app("train", store.path, monkeypatch).run()
    assert not at.exception, at.exception
    assert at.number_input(key="train_steps").value == 123
    assert at.number_input(key="train_bs").value == 17
    assert at.number_input(key="train_eval").value == 7
    assert at.number_input(key="train_momentum").value == 0.8
    opts = at.selectbox(key="train_measure").options
    assert opts == ["auto", *measures.names(), "none"] and "gradnorm" in opts


@pytest.mark.slow
def test_run_name_and_groups_reset_after_queueing_and_the_rest_stays(store, monkeypatch):
    """Issue 22: four runs in a row were named "digits seq prox". After Queue the name and
    groups are empty again (the preview says the default name); mode and steps stay."""
    monkeypatch.setenv("MTL_LAB_TRAIN_FN", "tests.helpers.app_fixtures:fake_train")
    at = open_app("train", store.path, monkeypatch).run()
    _form_values(
        at,
        train_steps=20,
        train_name="first",
        train_mode="groups",
        train_groups="t0,t1,t2;t3,t4,t5",
    )
    at.button(key="train_queue").click().run()
    assert not at.exception
    (run,) = store.list_runs()
    assert run.name == "first"
    assert any(f"Queued run #{run.id} (first)" in s.value for s in at.success)
    assert at.text_input(key="train_name").value == ""
    assert at.text_input(key="train_groups").value == ""
    assert at.selectbox(key="train_mode").value == "groups"
    assert at.number_input(key="train_steps").value == 20
    # the next run is named by the lab, not after the last one
    _form_values(at, train_groups="t0,t1;t2,t3,t4,t5")
    at.button(key="train_queue").click().run()
    second = max(store.list_runs(), key=lambda r: r.id)
    assert second.id != run.id and second.name != "first"
    assert second.config["train"]["groups"] == [["t0", "t1"], ["t2", "t3", "t4", "t5"]]
    at.run()  # the next rerun: the message was said once
    assert not any("Queued run" in s.value for s in at.success)


def test_rates_below_one_in_the_status_line_the_queue_and_the_progress_bar(store):
    """Every place a rate is shown uses ``step_rate`` (issue 22: slow runs showed 0 step/s)."""
    import dataclasses
    import io

    from app import words
    from app.views.train_queue import queue_frame
    from mtl_core.commands.progress import ProgressBar

    rid = store.create_run(name="slow", origin="trained", config={}, steps_total=300)
    info = dataclasses.replace(
        store.get_run(rid), status="running", steps_done=12, steps_per_s=0.25, eta_s=1152.0
    )
    assert "4.0 s/step" in words.status_text(info) and "0 step/s" not in words.status_text(info)
    assert queue_frame([info]).loc[0, "speed"] == "4.0 s/step"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    bar = ProgressBar(10, "train", stream=out)
    bar.t0 -= 20.0  # 5 steps in 20 s
    bar.update(5)
    assert "4.0 s/step" in out.getvalue(), out.getvalue()
