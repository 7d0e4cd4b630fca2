"""Pages (AppTest) speak one visual language (issue 12): the threshold's unit in slider and
URL, a default threshold that says something, the method caveat, the tab and pair in the URL,
captions that say which pair, Compare's defaults, the zip's stated contents."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from mtl_core.runfile import METRIC_FRAME, ParsedRun, matrices_to_long
from tests.helpers.app_fixtures import open_app, seed_run, shown


def _groups_text(at) -> str:
    return next(shown(m.value) for m in at.markdown if shown(m.value).startswith("{"))


def _seed_matrix(store, A: np.ndarray, name: str, measure: str = "lookahead", steps: int = 5):
    tasks = [f"t{i}" for i in range(A.shape[0])]
    stack = np.repeat(A[None], steps, axis=0)
    aff = matrices_to_long(np.arange(1, steps + 1), tasks, stack, measure)
    parsed = ParsedRun(
        tasks=tasks,
        task_types={t: "regression" for t in tasks},
        affinity=aff,
        metrics=pd.DataFrame(columns=METRIC_FRAME),
        meta={"name": name},
        runs=[""],
        tasks_declared=True,
    )
    (rid,) = store.import_parsed(parsed, name=name, origin="uploaded")
    return rid


def test_threshold_is_percent_in_slider_and_url(store, monkeypatch):
    seed_run(store, name="planted", steps=30)  # within +1%, between -0.6%
    at = open_app("explore", store.path, monkeypatch).run()
    slider = at.slider(key="explore_tau_ui")
    assert "% loss change" in slider.label
    slider.set_value(0.5).run()
    assert not at.exception
    assert at.query_params["tau"] == "0.5"  # the slider's number, not 0.005
    assert _groups_text(at) == "{t0, t1, t2} · {t3, t4, t5}"
    table = next(d.value for d in at.dataframe if "size" in d.value.columns)
    col = next(c for c in table.columns if c.startswith("mean affinity inside"))
    assert "% loss change" in col and table[col].iloc[0].endswith("%")
    # the URL's number restores the slider
    again = open_app("explore", store.path, monkeypatch, query={"tau": "0.5"}).run()
    assert again.slider(key="explore_tau_ui").value == 0.5


def test_all_positive_matrix_opens_on_a_split_and_carries_the_caveat(store, monkeypatch):
    A = np.full((4, 4), 0.010)
    A[:2, :2] = A[2:, 2:] = 0.012  # everything helps; the blocks barely stand out
    np.fill_diagonal(A, 0.03)
    _seed_matrix(store, A, "proximal everywhere", measure="proximal")
    at = open_app("explore", store.path, monkeypatch).run()
    assert not at.exception
    assert _groups_text(at) == "{t0, t1} · {t2, t3}"  # not one group of all (tau 0)
    assert any("threshold starts at" in c.value for c in at.caption)
    assert any("does not separate the tasks" in w.value for w in at.warning)


def test_clear_blocks_carry_no_caveat(store, monkeypatch):
    seed_run(store, name="planted", steps=30)
    at = open_app("explore", store.path, monkeypatch).run()
    assert not any("does not separate" in w.value for w in at.warning)


def test_tab_and_pair_live_in_the_url_and_the_caption_says_which_pair(store, monkeypatch):
    seed_run(store, name="planted", steps=30)
    at = open_app(
        "explore", store.path, monkeypatch, query={"tab": "pair", "src": "t4", "tgt": "t3"}
    ).run()
    assert not at.exception
    assert at.selectbox(key="src").value == "t4"
    cap = next(shown(c.value) for c in at.caption if "on average over the run" in shown(c.value))
    assert cap.startswith("Selected pair: t4 → t3.") and "lowers task t3's loss" in cap
    assert "harmful" not in cap
    assert at.query_params["tab"] == "pair" and at.query_params["src"] == "t4"
    at.selectbox(key="src").set_value("t0").run()
    at.selectbox(key="tgt").set_value("t5").run()
    cap = next(shown(c.value) for c in at.caption if "on average over the run" in shown(c.value))
    assert cap.startswith("Default pair: the most harmful") or "Selected pair" in cap
    assert "raises task t5's loss" in cap
    # src and tgt are bound to the URL (bind="query-params"; the browser writes the change,
    # checked in tests/e2e): the link it makes opens the same pair, and the default pair (the
    # most harmful, t2 -> t3 here) is what a link without them opens
    query = {"tab": "pair", "src": "t0", "tgt": "t5"}
    again = open_app("explore", store.path, monkeypatch, query=query).run()
    assert (again.selectbox(key="src").value, again.selectbox(key="tgt").value) == ("t0", "t5")
    assert any("raises task t5's loss" in shown(c.value) for c in again.caption)
    plain = open_app("explore", store.path, monkeypatch, query={"tab": "pair"}).run()
    assert (plain.selectbox(key="src").value, plain.selectbox(key="tgt").value) == ("t2", "t3")
    assert "tgt" not in at.query_params  # t3, the default target, left the link


def test_heatmap_caption_and_legend_say_grey_is_the_diagonal(store, monkeypatch):
    seed_run(store, name="planted", steps=30)
    at = open_app("explore", store.path, monkeypatch).run()
    assert any("Grey diagonal" in c.value for c in at.caption)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "diagonal (a task on itself)" in [t.get("name") for t in spec["data"]]
    assert spec["layout"]["yaxis"]["scaleanchor"] == "x"


def test_compare_skips_empty_cancelled_runs_and_opens_on_a_shared_measure(store, monkeypatch):
    a = seed_run(store, name="look a", steps=20)
    c = seed_run(store, name="cos", steps=20, measure="cosine")
    b = seed_run(store, name="look b", steps=20)
    empty = store.create_run(
        name="never ran", origin="trained", status="queued", config={}, steps_total=10
    )
    store.set_status(empty, "cancelled")
    at = open_app("compare", store.path, monkeypatch).run()
    assert not at.exception
    ms = at.multiselect(key="compare_runs")
    assert len(ms.options) == 3 and not any("never ran" in o for o in ms.options)
    assert f"#{c} cos" in ms.options
    assert sorted(ms.value) == sorted([a, b])  # the two that share lookahead
    cap = next(x.value for x in at.caption if "one colour scale" in x.value)
    assert "% loss change" in cap and "±" in cap


def test_zip_download_says_what_it_holds(store, monkeypatch):
    seed_run(store, name="planted", steps=20)
    at = open_app("upload", store.path, monkeypatch).run()
    at.selectbox(key="download_fmt").set_value(".zip").run()
    assert not at.exception
    cap = next(c.value for c in at.caption if "This zip holds" in c.value)
    assert "metrics" in cap and "no groupings" in cap and "ground-truth" in cap
