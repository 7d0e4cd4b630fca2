"""Explore page (AppTest): heatmap, regrouping, URL state, timeline, losses, live polling."""

from __future__ import annotations

import json
import time

from app import data
from mtl_core.store import Store
from tests.helpers.app_fixtures import append_steps, open_app, seed_live_run, seed_run, shown


def _groups_text(at) -> str:
    """The grouping as the page writes it above the groups table."""
    texts = [shown(m.value) for m in at.markdown if shown(m.value).startswith("{")]
    assert texts, [m.value for m in at.markdown]
    return texts[0]


def _heatmap(at):
    charts = at.get("plotly_chart")
    assert charts, "no plotly chart on the page"
    return json.loads(charts[0].proto.spec)


def test_explore_shows_heatmap_and_threshold_regroups(store, monkeypatch):
    rid = seed_run(store, name="planted", steps=40)
    at = open_app("explore", store.path, monkeypatch).run()
    assert not at.exception
    assert "Explore a run" in at.title[0].value
    spec = _heatmap(at)
    z = spec["data"][0]
    assert z["type"] == "heatmap"
    assert "source" in spec["layout"]["yaxis"]["title"]["text"]
    assert "lowers" in json.dumps(z["customdata"])  # hover says it in words
    # Default method: threshold at 0 on planted blocks -> the two clusters.
    assert _groups_text(at) == "{t0, t1, t2} · {t3, t4, t5}"
    # Raise the threshold above every pair's affinity: every task alone.
    slider = at.slider(key="explore_tau_ui")
    slider.set_value(slider.max).run()
    assert not at.exception
    assert _groups_text(at) == "{t0} · {t1} · {t2} · {t3} · {t4} · {t5}"
    # Lower it below every pair: all together.
    at.slider(key="explore_tau_ui").set_value(at.slider(key="explore_tau_ui").min).run()
    assert _groups_text(at) == "{t0, t1, t2, t3, t4, t5}"
    assert at.query_params["run"] == str(rid)
    assert at.query_params["method"] == "threshold"
    assert float(at.query_params["tau"]) < 0


def test_explore_tag_and_hierarchical_k_and_group_overlay(store, monkeypatch):
    seed_run(store, name="planted", n_tasks=8, steps=30)
    at = open_app("explore", store.path, monkeypatch).run()
    at.selectbox(key="explore_method").set_value("tag").run()
    at.slider(key="explore_k").set_value(2).run()
    assert not at.exception
    assert _groups_text(at) == "{t0, t1, t2, t3} · {t4, t5, t6, t7}"
    assert any("proven optimal" in c.value for c in at.caption)
    shapes = _heatmap(at)["layout"].get("shapes", [])
    assert len(shapes) == 2  # one outline per group
    at.selectbox(key="explore_method").set_value("hierarchical").run()
    at.slider(key="explore_k").set_value(4).run()
    assert _groups_text(at).count("{") == 4
    assert at.query_params["k"] == "4"


def test_explore_restores_view_from_url(store, monkeypatch):
    seed_run(store, name="a", steps=30)
    b = seed_run(store, name="b", steps=30)
    at = open_app(
        "explore",
        store.path,
        monkeypatch,
        query={"run": b, "step": 10, "method": "hierarchical", "k": 3},
    ).run()
    assert not at.exception
    assert at.selectbox(key="explore_run").value == b
    assert at.slider(key="explore_step").value == 10
    assert at.selectbox(key="explore_method").value == "hierarchical"
    assert at.slider(key="explore_k").value == 3
    assert "steps 1–10" in _heatmap(at)["layout"]["title"]["text"]


def test_explore_timeline_marks_change_points_and_losses(store, monkeypatch):
    seed_run(store, name="switching", steps=80, switch_at=20)
    at = open_app("explore", store.path, monkeypatch).run()
    # the first tab (loss curves) is open by default; only it is computed (lazy tabs)
    assert any(r.value == "val" for r in at.radio if r.key == "explore_split")
    at.session_state["explore_tab"] = "Play over steps"  # what a click on the tab does
    at.run()
    spec = [json.loads(c.proto.spec) for c in at.get("plotly_chart")][1]
    assert spec["frames"] and spec["layout"]["sliders"]
    at.session_state["explore_tab"] = "Groups over time"
    at.selectbox(key="explore_smooth").set_value("window").run()
    at.radio(key="explore_matrix").set_value("step").run()
    assert not at.exception
    caps = " ".join(c.value for c in at.caption)
    assert "The grouping changes" in caps, caps
    assert not any(r.key == "explore_split" for r in at.radio)  # closed tab: not computed
    at.session_state["explore_tab"] = "Loss curves"
    at.run()
    assert any(r.value == "val" for r in at.radio if r.key == "explore_split")
    kinds = [json.loads(c.proto.spec)["data"][0]["type"] for c in at.get("plotly_chart")]
    assert kinds == ["heatmap", "scatter"]


def test_explore_polls_a_running_run_and_picks_up_new_steps(store, monkeypatch):
    rid = seed_live_run(store, steps_total=100, steps_done=10)
    at = open_app("explore", store.path, monkeypatch).run()
    assert not at.exception
    assert "steps 1–10" in _heatmap(at)["layout"]["title"]["text"]
    append_steps(store, rid, 11, 25, 100)
    time.sleep(data.LIVE_REFRESH_S)  # a live run is re-read once per refresh slot
    at.run()
    assert "steps 1–25" in _heatmap(at)["layout"]["title"]["text"]
    assert any("running" in m.value for m in at.markdown)


def test_explore_without_runs_and_with_uploaded_run_without_metrics(tmp_path, monkeypatch):
    at = open_app("explore", tmp_path / "s.sqlite", monkeypatch).run()
    assert not at.exception
    assert any("No runs yet" in i.value for i in at.info)
    store = Store(tmp_path / "s.sqlite")
    seed_run(store, name="no metrics", metrics=False, steps=5)
    at = open_app("explore", store.path, monkeypatch).run()
    assert not at.exception
    # an upload without losses has none: not "not yet"
    assert any("This upload holds no losses" in i.value for i in at.info)
    assert not any("yet" in i.value for i in at.info)


def test_explore_picks_up_the_first_matrix_of_a_run_opened_before_it(store, monkeypatch):
    rid = seed_live_run(store, steps_total=100, steps_done=0)
    at = open_app("explore", store.path, monkeypatch).run()
    assert not at.exception
    assert any(
        "No affinity matrix logged yet" in i.value or "logged no affinity" in i.value
        for i in at.info
    )
    append_steps(store, rid, 1, 5, 100)
    time.sleep(data.LIVE_REFRESH_S)
    at.run()
    assert not at.exception
    assert at.selectbox(key="explore_measure").value == "lookahead"
    assert "steps 1–5" in _heatmap(at)["layout"]["title"]["text"]


def test_a_link_to_a_missing_run_says_so_and_bad_url_values_are_ignored(store, monkeypatch):
    seed_run(store, name="only", steps=20)
    at = open_app(
        "explore",
        store.path,
        monkeypatch,
        query={"run": 999, "tau": "nan", "matrix": "bogus", "smooth": "ema"},
    ).run()
    assert not at.exception and not at.error
    assert any("no run #999" in w.value for w in at.warning)
    assert at.radio(key="explore_matrix").value == "average"  # bogus value ignored
    assert at.selectbox(key="explore_smooth").value == "ema"  # a valid one restored
    assert at.query_params["smooth"] == ["ema"] or at.query_params["smooth"] == "ema"


def test_a_single_step_run_explains_its_empty_time_views(store, monkeypatch):
    seed_run(store, name="one matrix", steps=1, metrics=False)
    at = open_app("explore", store.path, monkeypatch).run()
    for tab in ("A pair over time", "Groups over time"):
        at.session_state["explore_tab"] = tab
        at.run()
        assert not at.exception and not at.error
        assert any("logged one step" in i.value for i in at.info), tab
