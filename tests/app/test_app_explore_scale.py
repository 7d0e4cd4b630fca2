"""Explore at real sizes (AppTest): TAG above the millisecond range runs in the background with
a progress bar and reports its proof or gap; a grouping method that fails says so and offers
the next one; the page's messages never quote command-line flags."""

from __future__ import annotations

import re
import time

import numpy as np

from app import regroup, words
from tests.core.test_grouping import planted
from tests.helpers import app_fixtures
from tests.helpers.app_fixtures import open_app, seed_run, shown

CLI_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def _texts(at) -> list[str]:
    """Every text the page shows (markdown, captions, info/warning/error boxes, buttons)."""
    out = [m.value for m in at.markdown] + [c.value for c in at.caption]
    out += [x.value for x in at.info] + [x.value for x in at.warning] + [x.value for x in at.error]
    out += [b.label for b in at.button]
    return out


def _wait_for_groups(at, timeout_s: float = 120.0):
    """Rerun while the background TAG search is running; returns the runs that polled."""
    polls = 0
    t0 = time.perf_counter()
    while any("TAG is searching" in x.value for x in at.info):
        assert time.perf_counter() - t0 < timeout_s, "TAG search did not land"
        polls += 1
        time.sleep(0.2)
        at.run()
    return polls


def test_tag_above_the_interactive_range_runs_in_background_with_progress(store, monkeypatch):
    n = regroup.TAG_INTERACTIVE_MAX + 4  # 16 tasks: seconds, so in the background
    seed_run(store, name="wide", n_tasks=n, steps=12)
    at = open_app("explore", store.path, monkeypatch).run()
    at.selectbox(key="explore_method").set_value("tag").run()
    at.slider(key="k").set_value(2).run()
    assert not at.exception
    assert any("searches in the background" in c.value for c in at.caption)
    if any("TAG is searching" in x.value for x in at.info):
        bars = at.get("progress")
        assert bars, "a running search shows a progress bar"
    _wait_for_groups(at)
    assert not at.exception
    caps = " ".join(c.value for c in at.caption)
    assert "proven optimal" in caps, caps  # 16 tasks: the subset table proves it
    groups = [shown(m.value) for m in at.markdown if shown(m.value).startswith("{")]
    assert groups and groups[0].count("{") == 2


def test_tag_gap_is_reported_when_not_proven():
    result = regroup.GroupResult(
        groups=(frozenset({"a", "b"}),),
        score=0.5,
        optimal=False,
        gap=0.1,
        seconds=2.0,
        upper=0.6,
        relative_gap=0.2,
    )
    caption = words.groups_caption(result, "tag")
    # in the measure's unit (lookahead: percent, like every other number on the page)
    assert "at most 20% better" in caption and "no grouping scores above 60%" in caption
    proven = regroup.GroupResult(
        groups=(frozenset({"a", "b"}),),
        score=0.5,
        optimal=True,
        gap=0.0,
        seconds=0.01,
        upper=0.5,
        relative_gap=0.0,
    )
    assert "proven optimal" in words.groups_caption(proven, "tag")


def test_affinity_propagation_failure_is_said_and_next_method_offered(store, monkeypatch):
    A, tasks, truth = planted([4, 4, 4, 4, 4], seed=9, noise=0.6)  # AP does not converge

    def stack(n_tasks=6, steps=60, **_):
        return np.arange(1, steps + 1), tasks, np.repeat(A[None], steps, axis=0)

    monkeypatch.setattr(app_fixtures, "planted_stack", stack)
    seed_run(store, name="no-ap", n_tasks=len(tasks), steps=5)
    at = open_app("explore", store.path, monkeypatch).run()
    at.selectbox(key="explore_method").set_value("affinity-propagation").run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any("did not converge" in w and "fallback" in w for w in warnings), warnings
    button = [b for b in at.button if b.key == "explore_try_hierarchical"]
    assert button, [b.label for b in at.button]
    button[0].click().run()
    assert not at.exception
    assert at.selectbox(key="explore_method").value == "hierarchical"
    assert not any("did not converge" in w.value for w in at.warning)
    assert all(not CLI_FLAG.search(t) for t in _texts(at))


def test_explore_messages_never_quote_cli_flags(store, monkeypatch):
    seed_run(store, name="wide", n_tasks=regroup.TAG_INTERACTIVE_MAX + 2, steps=20)
    at = open_app("explore", store.path, monkeypatch).run()
    seen = list(_texts(at))
    at.selectbox(key="explore_method").set_value("tag").run()
    seen += _texts(at)
    _wait_for_groups(at)
    seen += _texts(at)
    at.session_state["explore_tab"] = "Groups over time"  # TAG timeline: not above 12 tasks
    at.run()
    seen += _texts(at)
    assert not at.exception
    assert any("hierarchical or threshold" in t for t in seen), seen
    flagged = [t for t in seen if CLI_FLAG.search(t)]
    assert not flagged, flagged


def test_wide_heatmap_keeps_every_label_readable():
    from app.figures import heatmaps

    n = 50
    tasks = [f"attribute_{i:02d}" for i in range(n)]
    fig = heatmaps.heatmap(np.random.default_rng(0).normal(size=(n, n)), tasks)
    lay = fig.layout
    assert lay.height >= 140 + 18 * n  # at least 18 px per row: labels do not overlap
    assert lay.xaxis.tickfont.size <= 10 and lay.yaxis.tickfont.size <= 10
    assert lay.xaxis.nticks > n and lay.yaxis.nticks > n  # no label thinned away
    assert list(fig.data[0].y) == tasks
