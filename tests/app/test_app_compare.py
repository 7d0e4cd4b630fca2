"""Compare page (AppTest): shared colour scale, difference, losses, groupings agreement, config
diff with a differences-only toggle."""

from __future__ import annotations

import json

from tests.helpers.app_fixtures import config_dict, open_app, seed_run


def _specs(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_compare_two_runs(store, monkeypatch):
    a = seed_run(store, name="calm", steps=40, config=config_dict(knobs={"conflict": 0.2}))
    b = seed_run(
        store,
        name="fierce",
        steps=40,
        switch_at=5,
        loss_scale=1.5,
        config=config_dict(knobs={"conflict": 1.0}, train__steps=40),
    )
    at = open_app("compare", store.path, monkeypatch).run()
    assert not at.exception
    assert sorted(at.multiselect(key="compare_runs").value) == sorted([a, b])
    heat = [s for s in _specs(at) if s["data"][0]["type"] == "heatmap"]
    assert len(heat) == 3  # two runs + their difference
    z = [(h["data"][0]["zmin"], h["data"][0]["zmax"]) for h in heat[:2]]
    assert z[0] == z[1]  # one colour scale for both runs
    assert "B − A" in heat[2]["layout"]["title"]["text"]
    # loss curves: one colour per run
    lines = [s for s in _specs(at) if s["data"][0]["type"] == "scatter"][0]["data"]
    colours = {tr["legendgroup"]: tr["line"]["color"] for tr in lines}
    assert len(colours) == 2 and len(set(colours.values())) == 2
    # groupings: run b moved t2 into the other cluster -> agreement below 1
    agree = [d.value for d in at.dataframe if "adjusted Rand" in d.value.columns][0]
    assert agree.loc[0, "adjusted Rand"] < 0.99
    groups = [d.value for d in at.dataframe if "groups" in d.value.columns][0]
    by_run = dict(zip(groups["run"], groups["groups"]))
    assert by_run[f"#{a} calm"] == "{t0, t1, t2} · {t3, t4, t5}"
    assert by_run[f"#{b} fierce"] == "{t0, t1} · {t2, t3, t4, t5}"
    # config diff: differences only by default, everything when toggled off
    diff = [d.value for d in at.dataframe if "field" in d.value.columns][0]
    assert set(diff["field"]) == {"knobs.conflict", "train.steps"}
    at.toggle(key="compare_diff_only").set_value(False).run()
    full = [d.value for d in at.dataframe if "field" in d.value.columns][0]
    assert len(full) > 10 and "optim.name" in set(full["field"])
    assert at.query_params["runs"] in (f"{a},{b}", f"{b},{a}")


def test_compare_needs_two_runs(store, monkeypatch):
    seed_run(store, name="only", steps=5)
    at = open_app("compare", store.path, monkeypatch).run()
    assert not at.exception
    assert any("at least two runs" in i.value for i in at.info)


def test_compare_link_with_missing_and_repeated_runs_keeps_the_valid_one(store, monkeypatch):
    seed_run(store, name="a", steps=10)
    b = seed_run(store, name="b", steps=10)
    seed_run(store, name="c", steps=10)
    at = open_app("compare", store.path, monkeypatch, query={"runs": f"{b},{b},999"}).run()
    assert not at.exception
    assert any("#999" in w.value for w in at.warning)
    chosen = at.multiselect(key="compare_runs").value
    assert chosen[0] == b and len(set(chosen)) == 2


def _lesson_like(store):
    """A lesson's three runs as a fresh store holds them: together (with affinity), then in
    groups and each alone (none), newest last."""
    together = seed_run(store, name="lesson together", steps=20, config=config_dict())
    groups = seed_run(
        store,
        name="lesson groups",
        steps=20,
        affinity=False,
        config=config_dict(train__mode="groups"),
    )
    single = seed_run(
        store,
        name="lesson alone",
        steps=20,
        affinity=False,
        config=config_dict(train__mode="single"),
    )
    return together, groups, single


def test_compare_after_a_lesson_opens_on_the_run_with_affinity(store, monkeypatch):
    together, groups, single = _lesson_like(store)
    at = open_app("compare", store.path, monkeypatch).run()
    assert not at.exception
    chosen = at.multiselect(key="compare_runs").value
    assert together in chosen and len(chosen) == 2, chosen
    heat = [s for s in _specs(at) if s["data"][0]["type"] == "heatmap"]
    assert len(heat) == 1  # the together run's heatmap; no difference of one run
    other = groups if groups in chosen else single
    notes = [i.value for i in at.info if "No heatmap for" in i.value]
    assert len(notes) == 1 and f"#{other}" in notes[0], notes
    assert "no network is shared" in notes[0]
    assert any("difference needs two runs" in c.value for c in at.caption)


def test_compare_says_why_each_run_without_affinity_has_no_heatmap(store, monkeypatch):
    together, groups, single = _lesson_like(store)
    at = open_app("compare", store.path, monkeypatch, query={"runs": f"{groups},{single}"}).run()
    assert not at.exception
    assert sorted(at.multiselect(key="compare_runs").value) == sorted([groups, single])
    assert not [s for s in _specs(at) if s["data"][0]["type"] == "heatmap"]
    notes = " ".join(i.value for i in at.info if "No heatmap for" in i.value)
    assert f"#{groups} lesson groups: it was trained in groups" in notes
    assert f"#{single} lesson alone: it was trained with each task alone" in notes
    assert any("nothing to group" in i.value for i in at.info)
