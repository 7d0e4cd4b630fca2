"""The lesson's workflow without the page: its configs, planted groups, when TAG picks the
grouped run's groups (and the fallbacks), the ids kept in the URL, the held-out numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_core.config import RunConfig
from mtl_core.events import StepEvent
from mtl_core.lesson import workflow as lesson
from mtl_core.lesson.state import groups_of
from mtl_core.store import Store

TASKS = [f"t{i}" for i in range(6)]


class RecordingRunner:
    """Queues runs in the store like the real runner, trains nothing."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.configs: list[RunConfig] = []

    def submit(self, cfg: RunConfig, **kw) -> int | None:
        rid = self.store.create_run(
            name=cfg.name, config=cfg.to_dict(), steps_total=cfg.train.steps, **kw
        )
        if rid is not None:
            self.configs.append(cfg)
        return rid


def test_configs_planted_groups_and_ids():
    cfgs = {
        m: lesson.base_config(
            m,
            {"conflict": 0.5},
            steps=60,
            seed=2,
            label="x",
            groups=lesson.planted_groups({}) if m == "groups" else None,
        )
        for m in lesson.APPROACHES
    }
    assert {m: c.affinity.measure for m, c in cfgs.items()} == {
        "together": "lookahead",
        "groups": "none",
        "single": "none",
    }
    assert all(
        c.train.steps == 60
        and c.train.seed == 2
        and c.train.eval_every == 10
        and c.knobs["conflict"] == 0.5
        and c.scenario == "lesson"
        for c in cfgs.values()
    )
    assert cfgs["groups"].train.groups == (("t0", "t1", "t2"), ("t3", "t4", "t5"))
    assert cfgs["single"].name == "lesson x · each alone"
    assert all(
        c.train.replicas == lesson.REPLICAS and c.optim.lr == lesson.LEARNING_RATE
        for c in cfgs.values()
    )
    assert lesson.planted_groups({"tasks": 6, "clusters": 3}) == (
        frozenset({"t0", "t1"}),
        frozenset({"t2", "t3"}),
        frozenset({"t4", "t5"}),
    )
    ids = lesson.LessonIds(together=4, single=6)
    assert ids.to_query() == "4,,6" and lesson.LessonIds.from_query("4,,6") == ids
    assert ids.ids() == [4, 6]
    assert lesson.LessonIds.from_query(",5,6") is None
    assert lesson.LessonIds.from_query("a,b") is None


def test_planted_start_submits_all_three_in_order(store):
    runner = RecordingRunner(store)
    ids = lesson.start(runner, store, {"conflict": 0.25}, steps=40, groups_from="planted")
    assert [c.train.mode for c in runner.configs] == ["together", "groups", "single"]
    assert ids.ids() == [1, 2, 3]
    assert groups_of(store.get_run(ids.groups)) == lesson.planted_groups({})
    assert lesson.maybe_start_groups(runner, store, ids) == ids.groups  # nothing new
    assert len(runner.configs) == 3


def _log_steps(store: Store, rid: int, first: int, last: int) -> None:
    """Planted-block lookahead matrices: clusters help inside, hurt across."""
    c = np.array([0, 0, 0, 1, 1, 1])
    A = np.where(c[:, None] == c[None, :], 0.01, -0.01)
    for s in range(first, last + 1):
        store.append_step(
            rid,
            StepEvent(
                step=s,
                total_steps=300,
                tasks=TASKS,
                train_loss={t: 1.0 for t in TASKS},
                metrics=[],
                affinity={"lookahead": A},
            ),
        )


def test_tag_groups_follow_once_the_together_run_has_ended(store):
    runner = RecordingRunner(store)
    ids = lesson.start(runner, store, {}, seed=3)  # TAG is the default
    assert ids.groups is None and [c.train.mode for c in runner.configs] == ["together", "single"]
    assert all(c.knobs["data_seed"] == 3 and c.train.seed == 3 for c in runner.configs)
    store.claim_queued(10, runner_pid=1)  # the together run is running
    _log_steps(store, ids.together, 1, 120)
    assert lesson.maybe_start_groups(runner, store, ids) is None  # not before it ends
    store.set_status(ids.together, "finished")
    rid = lesson.maybe_start_groups(runner, store, ids)
    assert rid == ids.groups and runner.configs[-1].train.mode == "groups"
    assert runner.configs[-1].train.seed == 3
    assert groups_of(store.get_run(rid)) == lesson.planted_groups({})  # TAG found the blocks
    note = store.get_note(rid, "lesson_groups")
    assert note["source"] == lesson.GROUP_SOURCES["tag"]
    # another session reading the same lesson finds the grouped run instead of starting one
    other = lesson.LessonIds(together=ids.together, single=ids.single)
    assert lesson.maybe_start_groups(runner, store, other) == rid
    assert len(runner.configs) == 3


def test_a_together_run_that_stopped_early_falls_back_to_planted(store):
    runner = RecordingRunner(store)
    ids = lesson.start(runner, store, {}, groups_from="tag")
    store.set_status(ids.together, "failed", error="boom")
    rid = lesson.maybe_start_groups(runner, store, ids)
    assert groups_of(store.get_run(rid)) == lesson.planted_groups({})
    assert "stopped early" in store.get_note(rid, "lesson_groups")["source"]


def test_held_out_numbers():
    df = pd.DataFrame(
        {
            "step": [10, 10, 20, 20, 20],
            "task": ["a", "b", "a", "b", "a"],
            "split": ["test", "test", "test", "test", "val"],
            "metric": ["loss"] * 5,
            "value": [2.0, 4.0, 1.0, 3.0, 9.0],
        }
    )
    assert lesson.held_out(df) == (20, {"a": 1.0, "b": 3.0})
    assert lesson.held_out(df, "val") == (20, {"a": 9.0})
    assert lesson.mean_curve(df).to_dict() == {10: 3.0, 20: 2.0}
    assert lesson.held_out(pd.DataFrame()) == (None, {})


def test_a_together_run_that_finished_without_affinity_falls_back_to_planted(store):
    """Otherwise the runner would look at that lesson on every pass, for ever."""
    runner = RecordingRunner(store)
    ids = lesson.start(runner, store, {"tasks": 4}, groups_from="tag")
    store.set_status(ids.together, "finished")
    rid = lesson.maybe_start_groups(runner, store, ids)
    assert groups_of(store.get_run(rid)) == lesson.planted_groups({"tasks": 4})
    assert store.get_note(rid, "lesson_groups")["source"] == (
        "the planted clusters (the all-together run logged no affinity)"
    )
