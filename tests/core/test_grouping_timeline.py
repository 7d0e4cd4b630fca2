"""Groups over time: smoothing, stable group ids, change points, batched == per-step fits."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from mtl_core.errors import LabError
from mtl_core.grouping import (
    AffinityPropagationGrouper,
    BaseGrouper,
    HierarchicalGrouper,
    TAGGrouper,
    ThresholdGrouper,
    group_timeline,
    match_ids,
)
from mtl_core.grouping.base import labels_to_grouping
from mtl_core.runfile import affinity_rows, measure_matrices
from mtl_core.series import smooth
from mtl_core.types import canonical_grouping


def names(n):
    return [f"t{i}" for i in range(n)]


def block_matrix(labels, within=0.5, across=-0.5):
    labels = np.asarray(labels)
    return np.where(labels[:, None] == labels[None, :], within, across)


def test_smoothing_matches_plain_definitions():
    X = np.random.default_rng(0).normal(size=(30, 4, 4))
    run = smooth(X, "running")
    win = smooth(X, "window", window=5)
    ema = smooth(X, "ema", beta=0.7)
    ref = np.zeros((4, 4))  # the bias-corrected EMA: the recursion from 0, then divided
    for t in range(30):
        np.testing.assert_allclose(run[t], X[: t + 1].mean(0))
        np.testing.assert_allclose(win[t], X[max(0, t - 4) : t + 1].mean(0))
        ref = 0.7 * ref + 0.3 * X[t]
        np.testing.assert_allclose(ema[t], ref / (1 - 0.7 ** (t + 1)))
    np.testing.assert_array_equal(smooth(X, "none"), X)
    with pytest.raises(LabError, match="unknown smoothing"):
        smooth(X, "median")


def test_relabelled_identical_grouping_keeps_its_ids():
    prev = canonical_grouping([["a", "b"], ["c", "d"], ["e"]])
    ids, nxt = match_ids(prev, (7, 3, 9), tuple(reversed(prev)), next_id=10)
    assert dict(zip(reversed(prev), ids)) == dict(zip(prev, (7, 3, 9)))
    assert nxt == 10


def test_changed_group_keeps_id_new_group_gets_fresh_one_ids_never_reused():
    prev = canonical_grouping([["a", "b", "c"], ["d", "e"]])
    new = canonical_grouping([["a", "b"], ["c", "d", "e"], ["f"]])
    ids, nxt = match_ids(prev, (0, 1), new, next_id=2)
    got = dict(zip(new, ids))
    assert got[frozenset("ab")] == 0 and got[frozenset("cde")] == 1 and got[frozenset("f")] == 2
    assert nxt == 3
    # A group with no overlap gets a fresh id, never a retired one.
    g1 = canonical_grouping([["a", "b"], ["c", "d"]])
    g2 = canonical_grouping([["a", "b"], ["e", "f"]])
    ids1, nxt = match_ids((), (), g1, 0)
    ids2, nxt = match_ids(g1, ids1, g2, nxt)
    ids3, nxt = match_ids(g2, ids2, g1, nxt)
    assert ids1 == (0, 1) and dict(zip(g2, ids2))[frozenset("ef")] == 2
    assert dict(zip(g1, ids3)) == {frozenset("ab"): 0, frozenset("cd"): 3} and nxt == 4


class _RelabellingGrouper(BaseGrouper):
    """Always the same partition, but with different label numbers at every call."""

    def __init__(self):
        self.calls = 0

    def _fit(self, A, tasks):
        self.calls += 1
        order = [[tasks[0], tasks[1]], [tasks[2], tasks[3]], [tasks[4]]]
        perm = np.random.default_rng(self.calls).permutation(len(order))
        labels = np.empty(len(tasks), dtype=int)
        for lab, g in zip(perm, order):
            for t in g:
                labels[tasks.index(t)] = lab
        return labels_to_grouping(tasks, labels)


def test_timeline_relabelled_groupings_keep_ids_and_have_no_changes():
    X = np.random.default_rng(0).normal(size=(12, 5, 5))
    tl = group_timeline(np.arange(12), X, names(5), _RelabellingGrouper(), smoothing="none")
    assert tl.change_steps == []
    assert len(set(tl.ids)) == 1
    m = tl.membership()
    assert (m == m[0]).all()


def test_change_points_and_stable_colours_through_a_switch():
    tasks = names(6)
    before = block_matrix([0, 0, 0, 1, 1, 1])
    after = block_matrix([0, 0, 1, 1, 1, 1])  # t2 moves to the other group at step 50
    steps = np.arange(0, 100, 5)
    X = np.stack([before if s < 50 else after for s in steps])
    X = X + np.random.default_rng(1).normal(0, 0.05, X.shape)
    tl = group_timeline(steps, X, tasks, ThresholdGrouper(0.0), smoothing="none")
    assert tl.change_steps == [50]
    first, last = dict(zip(tl.groupings[0], tl.ids[0])), dict(zip(tl.groupings[-1], tl.ids[-1]))
    assert first[frozenset(["t0", "t1", "t2"])] == last[frozenset(["t0", "t1"])]
    assert first[frozenset(["t3", "t4", "t5"])] == last[frozenset(["t2", "t3", "t4", "t5"])]
    # The running mean reacts later than the raw matrices.
    run = group_timeline(steps, X, tasks, ThresholdGrouper(0.0), smoothing="running")
    assert run.change_steps and run.change_steps[0] > 50
    df = tl.frame()
    assert set(df.columns) == {"step", "task", "group_id"}
    assert len(df) == len(steps) * 6


@pytest.mark.parametrize(
    "grouper",
    [
        ThresholdGrouper(0.1),
        HierarchicalGrouper(3),
        HierarchicalGrouper(tau=0.0),
        HierarchicalGrouper(2, linkage="complete"),
        AffinityPropagationGrouper(),
    ],
    ids=["threshold", "hier-k", "hier-tau", "hier-complete", "ap"],
)
def test_batched_timeline_equals_per_step_fits(grouper):
    rng = np.random.default_rng(3)
    X = block_matrix([0, 0, 1, 1, 2, 2, 2])[None] + rng.normal(0, 0.6, (40, 7, 7))
    tasks = names(7)
    tl = group_timeline(np.arange(40), X, tasks, grouper, smoothing="window", window=3)
    S = smooth(X, "window", window=3)
    assert tl.groupings == [grouper.fit(S[i], tasks).groups_ for i in range(40)]
    changes = [i for i in range(1, 40) if tl.groupings[i] != tl.groupings[i - 1]]
    assert tl.change_steps == changes


def test_per_step_path_for_overlapping_groupers():
    X = block_matrix([0, 0, 1, 1, 1])[None] + np.random.default_rng(0).normal(0, 0.1, (6, 5, 5))
    tl = group_timeline(np.arange(6), X, names(5), TAGGrouper(2), smoothing="running")
    assert tl.groupings[-1] == canonical_grouping([["t0", "t1"], ["t2", "t3", "t4"]])


def test_downsampling_keeps_first_and_last_step():
    X = np.random.default_rng(0).normal(size=(101, 4, 4))
    steps = np.arange(101) * 10
    tl = group_timeline(steps, X, names(4), ThresholdGrouper(0.0), max_points=11)
    assert len(tl.steps) == 11 and tl.steps[0] == 0 and tl.steps[-1] == 1000


def test_timeline_from_long_form_log():
    tasks = names(4)
    rng = np.random.default_rng(0)
    mats = [block_matrix([0, 0, 1, 1]) + rng.normal(0, 0.05, (4, 4)) for _ in range(5)]
    df = pd.concat([affinity_rows(s * 3, tasks, m, "lookahead") for s, m in enumerate(mats)])
    steps, got_tasks, got = measure_matrices(df)
    assert got_tasks == tasks and steps.tolist() == [0, 3, 6, 9, 12]
    np.testing.assert_allclose(got, np.stack(mats))
    tl = group_timeline(steps, got, got_tasks, ThresholdGrouper(0.0))
    assert tl.groupings[-1] == canonical_grouping([["t0", "t1"], ["t2", "t3"]])
    both = pd.concat([df, df.assign(measure="cosine")])
    with pytest.raises(LabError, match="several measures"):
        measure_matrices(both)


def test_unmeasured_cells_are_skipped_then_read_by_the_rule():
    """A diverged step (NaN) is unmeasured: the smoothing skips it; a cell never measured up
    to a step is read by the method's rule, as one matrix is in fit()."""
    X = np.zeros((3, 3, 3))
    X[:, 0, 1] = [1.0, 3.0, np.nan]
    X[:, 1, 0] = [1.0, 3.0, 2.0]
    X[:2, 2, 0] = np.nan  # measured from the last step on
    tl = group_timeline([0, 10, 20], X, ["a", "b", "c"], ThresholdGrouper(0.5), smoothing="running")
    assert all(frozenset({"a", "b"}) in g for g in tl.groupings)


def test_twenty_tasks_two_thousand_steps_is_interactive():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 5)
    X = block_matrix(labels, 0.4, -0.3)[None] + rng.normal(0, 1.0, (2000, 20, 20))
    steps, tasks = np.arange(2000), names(20)
    for grouper in (ThresholdGrouper(0.0), HierarchicalGrouper(4)):
        t0 = time.perf_counter()
        tl = group_timeline(steps, X, tasks, grouper, smoothing="running", max_points=300)
        elapsed = time.perf_counter() - t0
        assert elapsed < 1.0  # app budget 300 ms; loose here for shared CI machines
        assert len(tl.steps) == 300


@pytest.mark.parametrize(
    "method, kw, batched",
    [
        ("threshold", {"tau": 0.05}, True),
        ("threshold", {"tau": 0.05, "definition": "cliques"}, False),
        ("hierarchical", {"k": 2}, True),
        ("hierarchical", {"tau": 0.0}, True),
        ("affinity-propagation", {}, True),
        ("together", {}, True),
        ("single", {}, True),
        ("random", {"k": 2}, False),
        ("tag", {"k": 2, "time_limit": 5.0}, False),
    ],
)
def test_fit_batch_equals_fit_per_matrix_with_unmeasured_cells(method, kw, batched):
    from mtl_core.grouping import make_grouper

    rng = np.random.default_rng(3)
    X = np.stack([block_matrix([0, 0, 1, 1, 2]) + rng.normal(0, 0.3, (5, 5)) for _ in range(6)])
    X[2, 0, 1] = np.nan  # an unmeasured cell, read by the method's rule
    X[4, 3, 3] = np.inf
    g = make_grouper(method, **kw)
    assert g.batched is batched
    got = g.fit_batch(X, names(5))
    want = [make_grouper(method, **kw).fit(m, names(5)).groups_ for m in X]
    assert got == want
    # the stack is not one partition throughout (random and the baselines ignore it)
    assert len(set(got)) > 1 or method in ("together", "single", "random")


def test_fit_batch_shares_one_grouping_while_the_partition_holds():
    X = np.stack([block_matrix([0, 0, 1, 1])] * 3 + [block_matrix([0, 1, 1, 1])] * 2)
    got = ThresholdGrouper(0.0).fit_batch(X, names(4))
    assert got[0] is got[1] is got[2] and got[3] is got[4] and got[2] != got[3]
    assert got[3] == canonical_grouping([["t0"], ["t1", "t2", "t3"]])


def test_fit_batch_refuses_what_fit_refuses():
    g = ThresholdGrouper(0.0)
    with pytest.raises(LabError, match="^need a stack of square affinity matrices .*; got 3 x 4$"):
        g.fit_batch(np.zeros((3, 4)), names(4))
    with pytest.raises(LabError, match="^got 3 task names for a 4 x 4 affinity matrix$"):
        g.fit_batch(np.zeros((2, 4, 4)), names(3))
    with pytest.raises(LabError, match="^affinity stack has no measured"):
        g.fit_batch(np.full((2, 3, 3), np.nan), names(3))
    with pytest.raises(LabError, match="^threshold tau must be a finite number"):
        ThresholdGrouper(float("nan")).fit_batch(np.zeros((2, 3, 3)), names(3))
    assert g.fit_batch(np.zeros((0, 3, 3)), names(3)) == []
    assert not hasattr(BaseGrouper, "fit_groups")  # no caller: removed (issue 19)
