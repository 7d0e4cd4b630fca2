"""A run stopped by store damage (issue 23, item 6) in the app: the Train page's queue
shows it failed with the damage, not ``running`` (AppTest over a store damaged in place)."""

from __future__ import annotations

from mtl_core.store.faults import forget_checks
from tests.helpers.app_fixtures import open_app, seed_live_run
from tests.helpers.store_faults import damage_page


def test_the_queue_shows_a_run_stopped_by_damage_as_failed(store, monkeypatch):
    for k in range(6):  # pages before the run's own, for the damage to land on
        store.create_run(name=f"filler {k}", status="finished", notes="f" * 20_000)
    rid = seed_live_run(store, name="stopped one", steps_done=7, steps_total=100)
    store.close()
    damage_page(store.path, 3)
    forget_checks()  # as the app's own process would meet it: never checked before
    at = open_app("train", store.path, monkeypatch).run()
    assert not at.exception
    table = at.dataframe[0].value
    (row,) = [row for _, row in table.iterrows() if row["run"] == f"#{rid} stopped one"]
    assert row["status"] == "failed" and row["ETA"] == "", row
    assert row["error"].startswith("stopped after step 7: the run store is damaged"), row
    assert "Cancel" not in [b.label for b in at.button]  # nothing left to cancel
