"""The Explore page (AppTest) following a running run reads and smooths only the steps that are
new on each poll (``app.data_tail``), and shows what a full read shows."""

from __future__ import annotations

import json
import time

import numpy as np

from app import data
from app.storage import store_path
from tests.helpers.app_fixtures import append_steps, open_app, seed_live_run


def _title(at) -> str:
    return json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]


def test_explore_polls_fetch_only_the_new_rows(store, monkeypatch):
    rid = seed_live_run(store, steps_total=100, steps_done=10)
    at = open_app("explore", store.path, monkeypatch).run()
    assert not at.exception
    tails = data._tails(store_path())  # the app's own caches (same process as AppTest)
    smoothings = data._smooth_tails(store_path())
    assert tails.fetched == 10
    assert smoothings.smoothed_rows == 10  # the running average the page shows
    metric_rows = data._metrics_tails(store_path())
    n_metrics = len(store.metrics(rid))
    assert metric_rows.fetched == n_metrics  # the loss tab (the first) read them all once
    append_steps(store, rid, 11, 25, 100)
    time.sleep(data.LIVE_REFRESH_S)  # a live run is re-read once per refresh slot
    at.run()
    assert not at.exception
    assert "steps 1–25" in _title(at)
    assert tails.fetched == 25  # the second poll read the 15 new rows, not all 25
    assert smoothings.smoothed_rows == 25  # ... and averaged only those into the running mean
    assert metric_rows.fetched == len(store.metrics(rid))  # and read only the new metrics
    assert len(store.metrics(rid)) > n_metrics
    steps, tasks, A = tails.read(store, rid, "lookahead")
    full = store.affinity_steps(rid, "lookahead")
    np.testing.assert_array_equal(steps, full[0])
    np.testing.assert_array_equal(A, full[2])
    assert tasks == full[1]


def test_a_smoothed_heatmap_smooths_only_the_new_steps(store, monkeypatch):
    rid = seed_live_run(store, steps_total=100, steps_done=20)
    at = open_app("explore", store.path, monkeypatch).run()
    at.radio(key="explore_matrix").set_value("step")
    at.selectbox(key="explore_smooth").set_value("ema").run()
    assert not at.exception
    smoothings = data._smooth_tails(store_path())
    before, entries = smoothings.smoothed_rows, len(smoothings)
    assert entries == 2 and before == 40  # the running mean and the EMA, 20 steps each
    append_steps(store, rid, 21, 25, 100)
    time.sleep(data.LIVE_REFRESH_S)
    at.run()
    assert not at.exception and "25" in _title(at)
    assert smoothings.smoothed_rows - before == 5 * entries
