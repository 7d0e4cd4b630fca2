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
    at.slider(key="k").set_value(2).run()
    assert not at.exception
    assert _groups_text(at) == "{t0, t1, t2, t3} · {t4, t5, t6, t7}"
    assert any("proven optimal" in c.value for c in at.caption)
    shapes = _heatmap(at)["layout"].get("shapes", [])
    assert len(shapes) == 2  # one outline per group
    at.selectbox(key="explore_method").set_value("hierarchical").run()
    at.slider(key="k").set_value(4).run()
    assert _groups_text(at).count("{") == 4
    # k is bound to the URL (bind="query-params": the browser writes ?k=4, checked in
    # tests/e2e); the link it makes opens the same view
    query = {"method": "hierarchical", "k": 4}
    again = open_app("explore", store.path, monkeypatch, query=query).run()
    assert again.slider(key="k").value == 4 and _groups_text(again).count("{") == 4


def test_plain_widgets_are_bound_to_the_url_both_ways(store, monkeypatch):
    """Issue 19: measure, step, k, src and tgt use Streamlit's ``bind="query-params"``. A
    URL param sets the widget (an invalid one is dropped, one out of range is clamped); the
    widget carries its URL name, which the browser writes on every change (tests/e2e sees
    the URL change), and a value equal to its default leaves the URL."""
    rid = seed_run(store, name="planted", steps=30)
    query = {"run": rid, "measure": "lookahead", "step": 20, "method": "tag", "k": 4}
    query |= {"tab": "pair", "src": "t1", "tgt": "t4"}
    at = open_app("explore", store.path, monkeypatch, query=query).run()
    assert not at.exception
    widgets = {
        "measure": at.selectbox(key="measure"),
        "step": at.slider(key="step"),
        "k": at.slider(key="k"),
        "src": at.selectbox(key="src"),
        "tgt": at.selectbox(key="tgt"),
    }
    assert {k: w.value for k, w in widgets.items()} == {
        "measure": "lookahead",
        "step": 20,
        "k": 4,
        "src": "t1",
        "tgt": "t4",
    }
    # what the browser writes a change to: each widget's own URL name
    assert {k: w.proto.query_param_key for k, w in widgets.items()} == {k: k for k in widgets}
    assert "steps 1–20" in _heatmap(at)["layout"]["title"]["text"]
    # the default measure (the run's first) and the newest step stay out of the link
    assert "measure" not in at.query_params and at.query_params["step"] == "20"
    # leaving the pair tab takes src and tgt out of the link (widgets no longer drawn)
    at.session_state["explore_tab"] = "Loss curves"
    at.run()
    assert not at.exception
    assert "src" not in at.query_params and "tgt" not in at.query_params, at.query_params
    assert "tab" not in at.query_params and at.query_params["k"] == "4"
    # a widget change is this session's from then on (not the link's)
    at.slider(key="k").set_value(3).run()
    assert at.slider(key="k").value == 3 and _groups_text(at).count("{") <= 3
    # bad values are dropped (the default instead): a measure the run does not have, k above
    # its tasks, a step it did not log
    bad = {"run": rid, "measure": "cosine", "method": "tag", "k": 99, "step": 99}
    at = open_app("explore", store.path, monkeypatch, query=bad).run()
    assert not at.exception and not at.error
    assert at.selectbox(key="measure").value == "lookahead"
    assert at.slider(key="k").value == 2
    assert at.slider(key="step").value == 30


def test_a_bound_widget_comes_back_after_another_page(store, monkeypatch):
    """A page switch forgets a widget's state and the next page's URL has no ``k``: the
    session's last value (``session.remember_value``) comes back (``session.seed_bound``);
    a link's value wins over it."""
    seed_run(store, name="planted", steps=30)
    at = open_app("explore", store.path, monkeypatch, query={"method": "tag"})
    at.session_state["_keep_k"] = 3  # what the last visit left
    at.run()
    assert not at.exception and at.slider(key="k").value == 3
    linked = open_app("explore", store.path, monkeypatch, query={"method": "tag", "k": 4})
    linked.session_state["_keep_k"] = 3
    linked.run()
    assert linked.slider(key="k").value == 4


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
    assert at.slider(key="step").value == 10
    assert at.selectbox(key="explore_method").value == "hierarchical"
    assert at.slider(key="k").value == 3
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
    assert at.selectbox(key="measure").value == "lookahead"
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
