"""Learn page (AppTest): the landing lesson. Fast tests drive it with a fake training function;
one slow test runs the real lesson end to end through the real runner and training."""

from __future__ import annotations

import json
import time

import pytest

from app import lesson_words
from mtl_core.lesson.report import Interval
from mtl_core.store import TERMINAL, Store
from tests.helpers.app_fixtures import open_app, shown


def test_landing_page_is_the_lesson(tmp_path, monkeypatch):
    at = open_app("", tmp_path / "s.sqlite", monkeypatch).run()  # no page asked: the default
    assert not at.exception
    assert at.title[0].value == "Negative transfer in one minute"
    conflict = at.slider(key="learn_conflict")
    assert "conflict" in conflict.label and conflict.value == 1.0
    assert at.button(key="learn_train").proto.label == "Train"
    assert at.expander[0].label == "Advanced knobs"  # folded away
    assert at.slider(key="learn_relatedness") is not None
    assert any("Press **Train**" in i.value or "press **Train**" in i.value for i in at.info)


def _wait_finished(store: Store, ids: list[int], limit: float) -> float:
    t0 = time.time()
    while time.time() - t0 < limit:
        if all(store.get_run(i).status in TERMINAL for i in ids):
            return time.time() - t0
        time.sleep(0.2)
    raise AssertionError(
        f"lesson runs not done after {limit} s: {[store.get_run(i).status for i in ids]}"
    )


@pytest.mark.slow
def test_lesson_with_fake_training_shows_all_three_approaches(store, monkeypatch):
    monkeypatch.setenv("MTL_LAB_TRAIN_FN", "tests.helpers.app_fixtures:fake_train")
    at = open_app("learn", store.path, monkeypatch).run()
    at.slider(key="learn_conflict").set_value(0.5).run()
    at.number_input(key="learn_steps").set_value(60).run()
    at.button(key="learn_train").click().run()
    at.button(key="learn_train").click().run()  # a double click: still one lesson
    assert not at.exception
    runs = store.list_runs()
    # TAG's groups come from the finished all-together run: together and single go first
    assert [r.config["train"]["mode"] for r in runs] == ["together", "single"]
    assert all(r.config["knobs"]["conflict"] == 0.5 for r in runs)
    assert all(r.config["train"]["replicas"] == 16 for r in runs)
    _wait_finished(store, [runs[0].id], 60)
    t0 = time.time()  # the runner queues the grouped run on TAG's selection, no page run needed
    while len(store.list_runs()) < 3 and time.time() - t0 < 30:
        time.sleep(0.1)
    at.run()  # the page finds it and keeps its id in the URL
    runs = store.list_runs()
    assert [r.config["train"]["mode"] for r in runs] == ["together", "single", "groups"]
    assert runs[2].config["train"]["groups"] == [["t0", "t1", "t2"], ["t3", "t4", "t5"]]
    by_mode = {r.config["train"]["mode"]: r.id for r in runs}
    assert at.query_params["lesson"] == ",".join(
        str(by_mode[m]) for m in ("together", "groups", "single")
    )
    _wait_finished(store, [r.id for r in runs], 60)
    at.run()
    assert not at.exception
    assert any(
        c.value.startswith("Affinity so far: step 60")
        and "fixed at ±2%" in c.value
        and "still settling" not in c.value
        for c in at.caption
    )
    bars = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    kinds = [b["data"][0]["type"] for b in bars]
    assert kinds[:2] == ["heatmap", "bar"]
    assert bars[0]["data"][0]["zmax"] == 0.02  # the lesson's fixed scale, not the data's
    names = {tr["name"] for tr in bars[1]["data"]}
    assert names == {"all together", "in groups", "each alone"}
    words = " ".join(i.value for i in at.info)
    assert "Inside a planted cluster" in words and "Across the clusters" in words
    assert "95% interval" in words
    assert "(TAG, from the all-together run's affinity) — the planted clusters." in " ".join(
        m.value for m in at.markdown
    )
    errors = [tr["error_y"] for tr in bars[1]["data"]]
    assert all(e["type"] == "data" and e["array"] for e in errors)
    # a reload with the URL shows the same lesson
    again = open_app("learn", store.path, monkeypatch, query={"lesson": at.query_params["lesson"]})
    again.run()
    assert any(c.value.startswith("Affinity so far: step 60") for c in again.caption)
    assert again.slider(key="learn_conflict").value == 0.5  # the knob the lesson ran at
    assert any("The lesson at conflict 0.50" in m.value for m in again.markdown)
    # turning the knob afterwards marks the shown results as the old level's
    again.slider(key="learn_conflict").set_value(0.0).run()
    assert any("results are for conflict **0.50**" in i.value for i in again.info)


@pytest.mark.slow
def test_real_lesson_end_to_end(store, monkeypatch):
    """The default lesson, really trained: heatmap early, all three runs done in a minute."""
    at = open_app("learn", store.path, monkeypatch, timeout=60).run()
    t0 = time.time()
    at.button(key="learn_train").click().run()
    assert len(store.list_runs()) == 2  # the grouped run follows the all-together run
    first = None
    while time.time() - t0 < 400:  # generous: timings belong in bench/, not in tests
        at.run()
        assert not at.exception
        if first is None and any(c.value.startswith("Affinity so far") for c in at.caption):
            first = time.time() - t0
        ids = [r.id for r in store.list_runs()]
        if len(ids) == 3 and all(store.get_run(i).status in TERMINAL for i in ids):
            break
        time.sleep(0.5)
    total = time.time() - t0
    at.run()
    statuses = [store.get_run(i).status for i in ids]
    assert statuses == ["finished"] * 3, [store.get_run(i).error for i in ids]
    assert first is not None
    print(f"lesson: first heatmap {first:.1f} s, all three runs {total:.1f} s")
    words = " ".join(i.value for i in at.info)
    assert "held-out loss" in words and "negative transfer" in words  # conflict 1, seed 0


def _floats(value) -> list[float]:
    """A plotly array from a chart's JSON spec (a list, or base64 ``bdata``)."""
    if isinstance(value, dict) and "bdata" in value:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return [float(v) for v in value]


def test_the_page_and_lesson_json_give_the_same_numbers_from_one_state(
    tmp_path, monkeypatch, capsys
):
    """Issue 19: the Learn page and ``lesson --json`` both draw ``lesson.state``: one lesson
    (fake, deterministic training) trained into a store and shown by the page, and the same
    lesson through the command; bars, intervals, affinity and groups agree."""
    from functools import partial

    import mtl_core.lesson.headless as headless
    from app.words import pct
    from mtl_core.commands import cli
    from mtl_core.lesson.state import result
    from tests.helpers.app_fixtures import fake_train

    store = Store(tmp_path / "s.sqlite")
    kw = {"steps": 30, "replicas": 4, "train": fake_train}
    s = headless.train_lesson(store, 0.5, 3, **kw)
    assert s.finished and s.ids.groups is not None
    monkeypatch.setattr(headless, "run_lesson", partial(headless.run_lesson, **kw))
    assert cli.main(["lesson", "--conflict", "0.5", "--seed", "3", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    mine = result(s, seed=3).to_json()
    assert {k: v for k, v in printed.items() if k != "seconds"} == {
        k: v for k, v in mine.items() if k != "seconds"
    }
    at = open_app("learn", store.path, monkeypatch, query={"lesson": s.ids.to_query()}).run()
    assert not at.exception
    bars = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["data"][0]["type"] == "bar"
    )
    names = {"all together": "together", "in groups": "groups", "each alone": "single"}
    for trace in bars["data"]:
        ivs = [s.task_loss[names[trace["name"]]][t] for t in trace["x"]]
        assert _floats(trace["y"]) == pytest.approx([iv.mean for iv in ivs], rel=1e-12)
        assert _floats(trace["error_y"]["array"]) == pytest.approx(
            [iv.high - iv.mean for iv in ivs], rel=1e-9
        )
    said = " ".join(i.value for i in at.info)
    for key, label in (("together", "all together"), ("single", "each alone")):
        iv = printed["loss"][key]
        shown_iv = lesson_words.loss_interval(Interval(iv["mean"], iv["low"], iv["high"]))
        assert f"{label} {shown_iv}" in said
    assert f"by {pct(printed['affinity']['within'])} on average" in said
    assert printed["tag_groups"] == [["t0", "t1", "t2"], ["t3", "t4", "t5"]]
    assert "**Grouped run trains** {t0, t1, t2} · {t3, t4, t5} (TAG" in " ".join(
        shown(m.value) for m in at.markdown
    )
