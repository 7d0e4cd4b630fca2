"""Training modes, affinity structure on planted clusters, failure reporting."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.config import AffinityConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from mtl_core.errors import DivergedError, LabError
from mtl_core.train.loop import train


def _cfg(knobs=None, **train_kw) -> RunConfig:
    measure = train_kw.pop("measure", "lookahead")
    every = train_kw.pop("every", 1)
    optim = train_kw.pop("optim", OptimConfig())
    return RunConfig(
        scenario="synthetic",
        knobs={"samples": 600, **(knobs or {})},
        optim=optim,
        train=TrainConfig(**{"steps": 60, "eval_every": 20, **train_kw}),
        affinity=AffinityConfig(measure=measure, every=every),
    )


def _within_cross(A: np.ndarray, clusters: list[int]) -> tuple[float, float]:
    c = np.asarray(clusters)
    same = c[:, None] == c[None, :]
    off = ~np.eye(len(c), dtype=bool)
    return float(A[same & off].mean()), float(A[~same].mean())


@pytest.mark.parametrize("conflict_type", ["opposing", "orthogonal"])
def test_planted_clusters_show_in_lookahead_affinity(conflict_type):
    res = train(_cfg({"conflict": 1.0, "conflict_type": conflict_type}, steps=150))
    A = res.mean_affinity["lookahead"]
    clusters = [res.info["clusters"][t] for t in res.tasks]
    within, cross = _within_cross(A, clusters)
    # "Clearly exceeds": by more than the spread of the cross-cluster cells.
    c = np.asarray(clusters)
    spread = A[c[:, None] != c[None, :]].std()
    assert within > cross + spread, (within, cross, spread)


def test_identical_tasks_have_the_highest_mutual_affinity():
    # relatedness 1 and no noise: the two tasks of each cluster are the same task.
    knobs = {"tasks": 4, "clusters": 2, "relatedness": 1.0, "noise": 0.0}
    res = train(_cfg(knobs, steps=120))
    A = res.mean_affinity["lookahead"].copy()
    np.fill_diagonal(A, -np.inf)
    assert list(A.argmax(axis=1)) == [1, 0, 3, 2]


def test_every_k_measures_only_those_steps_and_keeps_each_matrix():
    seen = []
    train(_cfg(steps=25, every=10), on_step=lambda e: seen.append((e.step, set(e.affinity))))
    measured = [s for s, m in seen if "lookahead" in m]
    assert measured == [1, 11, 21]
    assert len(seen) == 25


def test_metrics_reported_on_eval_steps_with_accuracy_for_binary():
    events = []
    res = train(_cfg({"task_type": "binary"}, steps=40, measure="none"), on_step=events.append)
    eval_steps = [e.step for e in events if e.metrics]
    assert eval_steps == [20, 40]
    last = events[-1].metrics
    splits = {(m.split, m.metric) for m in last}
    assert {("train", "loss"), ("val", "loss"), ("test", "loss"), ("test", "accuracy")} <= splits
    accs = [m.value for m in last if m.metric == "accuracy"]
    assert all(0.0 <= a <= 1.0 for a in accs)
    assert set(res.loss("test")) == set(res.tasks)


def test_groups_mode_serves_each_task_by_its_best_network():
    groups = (("t0", "t1", "t2"), ("t2", "t3", "t4", "t5"))  # t2 is in both
    res = train(_cfg(mode="groups", groups=groups, measure="none"))
    assert res.groups == [list(g) for g in groups]
    assert res.served_by["t0"] == 0 and res.served_by["t5"] == 1
    assert res.served_by["t2"] in (0, 1)


@pytest.mark.parametrize("mode", ["groups", "single"])
def test_every_task_reports_a_finite_train_loss_from_the_first_step(mode):
    groups = (("t0", "t1", "t2"), ("t3", "t4", "t5")) if mode == "groups" else None
    events = []
    train(_cfg(mode=mode, groups=groups, measure="none", steps=3), on_step=events.append)
    for e in events:
        assert all(np.isfinite(v) for v in e.train_loss.values()), (e.step, e.train_loss)


def test_single_mode_trains_one_network_per_task():
    together = train(_cfg(measure="none"))
    single = train(_cfg(mode="single", measure="none"))
    assert len(single.groups) == 6
    # Six trunks instead of one: more parameters, same per-network architecture.
    assert single.parameters > 4 * together.parameters


def test_sequential_mode_logs_proximal_affinity_and_regroups_after_warmup():
    events = []
    cfg = RunConfig(
        scenario="synthetic",
        knobs={"samples": 600},
        train=TrainConfig(mode="sequential", steps=40, warmup=5, eval_every=20),
        affinity=AffinityConfig(measure="proximal", beta=0.5),
    )
    res = train(cfg, on_step=events.append)
    n = len(res.tasks)
    assert all(e.groups is not None for e in events)
    # Warm-up: every task alone.
    assert all(len(e.groups) == n for e in events[:5])
    P = events[0].affinity["proximal"]
    assert P.shape == (n, n) and np.isfinite(P).all()
    # Tasks of one group share a row: they were updated together.
    later = events[-1]
    index = {t: i for i, t in enumerate(later.tasks)}
    for g in later.groups:
        rows = [later.affinity["proximal"][index[t]] for t in g]
        assert all(np.allclose(r, rows[0]) for r in rows)
    # A task's own group update lowers its own loss on that batch on average.
    assert np.mean([np.diag(e.affinity["proximal"]).mean() for e in events]) > 0


def test_nan_loss_raises_diverged_with_the_step():
    cfg = _cfg(steps=50, measure="none", optim=OptimConfig(name="sgd", lr=1e6))
    with pytest.raises(DivergedError, match=r"at step \d+ on task t\d"):
        train(cfg)


def test_same_seed_same_run():
    a = train(_cfg(steps=20))
    b = train(_cfg(steps=20))
    assert np.array_equal(a.mean_affinity["lookahead"], b.mean_affinity["lookahead"])
    assert a.loss("test") == b.loss("test")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "single", "measure": "lookahead"}, "share one network"),
        ({"mode": "together", "measure": "proximal"}, "sequential"),
        ({"mode": "groups", "measure": "none"}, "needs the groups"),
    ],
)
def test_inconsistent_configs_are_user_errors(kwargs, message):
    with pytest.raises(LabError, match=message):
        _cfg(**kwargs)


def test_cuda_request_without_gpu_is_a_user_error(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(LabError, match="no CUDA GPU"):
        train(_cfg(device="cuda", steps=1))


def test_model_config_hidden_is_used():
    cfg = RunConfig(
        knobs={"samples": 200},
        model=ModelConfig(hidden=(7,)),
        train=TrainConfig(steps=2),
        affinity=AffinityConfig(measure="none"),
    )
    res = train(cfg)
    d = 16  # synthetic default features
    assert res.parameters == (d * 7 + 7) + 6 * (7 + 1)


@pytest.mark.slow
def test_lesson_conflict_knob_turns_negative_transfer_on_and_off():
    """The landing lesson's promise: conflict up -> clusters hurt each other; down -> they
    help each other (the lesson's own configs, 4 replicas instead of 16)."""
    from mtl_core.lesson import workflow as lesson

    def run(conflict, mode="together", groups=None):
        return train(lesson.base_config(mode, {"conflict": conflict}, groups=groups, replicas=4))

    def cross(res):
        _, c = _within_cross(
            res.mean_affinity["lookahead"], [res.info["clusters"][t] for t in res.tasks]
        )
        return c

    hot, cold = run(1.0), run(0.0)
    assert cross(hot) < 0 < cross(cold)
    planted = (("t0", "t1", "t2"), ("t3", "t4", "t5"))
    grouped = run(1.0, mode="groups", groups=planted)
    mean = lambda r: float(np.mean(list(r.loss("test").values())))
    assert mean(hot) > 2 * mean(grouped)


def test_warmup_trains_a_tiny_run_and_loads_the_lazy_parts_of_torch():
    import sys

    from mtl_core.train.loop import warmup

    warmup()
    assert "torch._dynamo" in sys.modules  # what the first optimizer would otherwise import
