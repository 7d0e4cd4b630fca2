"""One smoothing on the Explore page: on a run with unlogged (NaN) cells, the heatmap's matrix
and the group timeline's matrix for the same step and smoothing are the same numbers, and so
are their groups (the timeline used to turn NaN into 0 and start its EMA at the first step,
so "EMA beta 0.9" meant two different things on one page)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from app import data, regroup
from app.views.explore import tabs
from app.views.explore.controls import GroupControls, ViewControls
from app.views.explore.page import heatmap_matrix
from mtl_core.store import Store
from tests.helpers.app_fixtures import open_app, seed_run, shown

STEPS = 40
TAU = 0.005  # link tasks whose mutual affinity is at least 0.5%


def _gappy_run(store: Store) -> int:
    """Tasks {t0, t1} help each other (+1%), {t2, t3} too, the two pairs hurt each other; the
    t0 <-> t1 cells stop being logged after step 10 (an uploaded log with gaps)."""
    unlogged = np.zeros((STEPS, 4, 4), dtype=bool)
    unlogged[10:, 0, 1] = unlogged[10:, 1, 0] = True
    unlogged[3, 2, 0] = True  # and one stray gap
    return seed_run(store, name="gaps", n_tasks=4, steps=STEPS, unlogged=unlogged)


@pytest.fixture()
def view(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    monkeypatch.setenv("MTL_LAB_STORE", str(store.path))
    rid = _gappy_run(store)
    return data.run_view(data.get_run(rid), "lookahead")


@pytest.mark.parametrize("how,mode", [("ema", "step"), ("window", "step"), ("none", "average")])
def test_heatmap_and_timeline_group_the_same_matrix(view, how, mode):
    assert np.isnan(view.raw[-1, 0, 1])  # the gap is really there
    gc = GroupControls("threshold", 2, TAU)
    tl = tabs.group_timeline(view, ViewControls(0, "step", how, 5, 0.9, True), gc)
    assert list(tl.steps) == list(view.steps)  # a short run: every step grouped
    for s in (5, 20, STEPS - 1):
        vc = ViewControls(s, mode, how, 5, 0.9, True)
        M, _ = heatmap_matrix(view, vc)
        np.testing.assert_array_equal(M, tl.matrices[s])
        assert regroup.regroup(M, view.tasks, "threshold", 2, TAU).groups == tl.groupings[s]
    if how == "window":  # nothing logged within the last 5 steps: nothing to show
        assert np.isnan(tl.matrices[-1][0, 1])
        return
    # A missing cell keeps its logged value (+1%), it does not fade to 0 (which would have
    # unlinked t0 and t1 by the last step).
    assert tl.matrices[-1][0, 1] == pytest.approx(0.01, abs=0.002)
    assert frozenset({"t0", "t1"}) in tl.groupings[-1]


def test_pair_view_follows_the_same_smoothing(view):
    vc = ViewControls(STEPS - 1, "step", "ema", 5, 0.9, True)
    M, _ = heatmap_matrix(view, vc)
    pair = data.smoothed(view, vc.series_smoothing, vc.window, vc.beta).stack[:, 0, 1]
    assert pair[-1] == M[0, 1]
    # with no smoothing chosen, the pair and the timeline follow the running average,
    # which is the heatmap's time-averaged matrix
    flat = ViewControls(STEPS - 1, "average", "none", 5, 0.9, True)
    assert vc.series_smoothing == "ema" and flat.series_smoothing == "running"
    np.testing.assert_array_equal(heatmap_matrix(view, flat)[0], view.running[-1])


def test_the_page_shows_the_timeline_grouping_the_heatmap_shows(store, monkeypatch):
    _gappy_run(store)
    at = open_app(
        "explore",
        store.path,
        monkeypatch,
        query={"smooth": "ema", "matrix": "step", "method": "threshold", "tau": TAU},
    ).run()
    at.session_state["explore_tab"] = "Groups over time"
    at.run()
    assert not at.exception and not at.error
    groups = [shown(m.value) for m in at.markdown if shown(m.value).startswith("{")]
    assert groups == ["{t0, t1} · {t2, t3}"]
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    band = next(s["data"][0] for s in specs if s["data"][0].get("showscale") is False)
    z = np.frombuffer(base64.b64decode(band["z"]["bdata"]), dtype=band["z"]["dtype"])
    last = dict(zip(band["y"], z.reshape(len(band["y"]), -1)[:, -1]))  # plotly's binary array
    assert last["t0"] == last["t1"] != last["t2"] == last["t3"]
