"""Groupers: exact TAG selection == exhaustive search, planted clusters, contracts, errors."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_core.errors import LabError
from mtl_core.grouping import (
    AffinityPropagationGrouper,
    AllTogether,
    EveryTaskAlone,
    HierarchicalGrouper,
    RandomGrouper,
    TAGGrouper,
    ThresholdGrouper,
    brute_force_tag,
    leaf_order,
    make_grouper,
    normalize_affinity,
    proximal_groups,
    tag_value,
    task_scores,
)
from mtl_core.grouping.affinity_propagation import affinity_propagation_labels
from mtl_core.types import canonical_grouping


def names(n):
    return [f"t{i}" for i in range(n)]


def planted(sizes, seed, within=0.5, across=-0.5, noise=0.15, shuffle=True):
    """Noisy block matrix: tasks in the same block help each other, across blocks they hurt."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    block = np.repeat(np.arange(len(sizes)), sizes)
    A = np.where(block[:, None] == block[None, :], within, across) + rng.normal(0, noise, (n, n))
    perm = rng.permutation(n) if shuffle else np.arange(n)
    A = A[np.ix_(perm, perm)]
    block = block[perm]
    tasks = names(n)
    truth = canonical_grouping(
        [t for t, b in zip(tasks, block) if b == c] for c in range(len(sizes))
    )
    return A, tasks, truth


# --- the TAG value itself ---------------------------------------------------------------------


def test_tag_value_by_hand_and_direction():
    A = np.array([[9.0, 1.0, 2.0], [3.0, 9.0, 4.0], [5.0, 6.0, 9.0]])
    t = ["a", "b", "c"]
    # a's score in {a,b,c}: what b and c do to a = mean(A[b,a], A[c,a]) = mean(3, 5)
    np.testing.assert_allclose(task_scores(A, t, [t]), [4.0, 3.5, 3.0])
    assert tag_value(A, t, [t]) == pytest.approx(3.5)
    # Direction: in {a, b}, a receives A[b, a] = 3 and b receives A[a, b] = 1; c alone gets 0.
    np.testing.assert_allclose(task_scores(A, t, [["a", "b"], ["c"]]), [3.0, 1.0, 0.0])
    # Overlap: each task takes its best group.
    np.testing.assert_allclose(task_scores(A, t, [["a", "b"], ["b", "c"]]), [3.0, 6.0, 4.0])


def test_tag_value_rejects_uncovered_and_unknown_tasks():
    A = np.zeros((3, 3))
    with pytest.raises(LabError, match="no group: c"):
        tag_value(A, ["a", "b", "c"], [["a", "b"]])
    with pytest.raises(LabError, match="unknown task"):
        tag_value(A, ["a", "b", "c"], [["a", "b", "c", "z"]])


# --- exact selection == exhaustive search -----------------------------------------------------


def partition_reference(A, tasks, k, allow_singletons):
    """Independent slow reference for the overlapping problem: every partition of the tasks
    into <= k served sets, each served by its best superset group (plain Python loops)."""
    n = len(tasks)
    best = -np.inf
    for part in _partitions(list(range(n))):
        if len(part) > k:
            continue
        total = 0.0
        for block in part:
            rest = [i for i in range(n) if i not in block]
            best_block = -np.inf
            for r in range(len(rest) + 1):
                for extra in itertools.combinations(rest, r):
                    g = list(block) + list(extra)
                    if len(g) == 1:
                        if not allow_singletons:
                            continue
                        v = 0.0
                    else:
                        v = sum(sum(A[i, t] for i in g if i != t) / (len(g) - 1) for t in block)
                    best_block = max(best_block, v)
            total += best_block
        best = max(best, total)
    return best / n


def _partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for p in _partitions(rest):
        for i in range(len(p)):
            yield p[:i] + [[first] + p[i]] + p[i + 1 :]
        yield [[first]] + p


def _check_selection(g, tasks, k, allow_singletons):
    assert 1 <= len(g.groups_) <= k
    assert set().union(*g.groups_) == set(tasks)
    if not allow_singletons and len(tasks) > 1:
        assert all(len(x) >= 2 for x in g.groups_)
    assert g.score_ == pytest.approx(tag_value(g._A, tasks, g.groups_))
    assert g.optimal_ and g.gap_ == 0.0


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("allow_singletons", [False, True])
def test_exact_overlapping_equals_exhaustive(n, allow_singletons):
    rng = np.random.default_rng(100 + n)
    tasks = names(n)
    for trial in range(2 if n >= 6 else 4):
        A = rng.normal(size=(n, n))
        for k in range(1, n + 1):
            g = TAGGrouper(k, allow_singletons=allow_singletons).fit(A, tasks)
            g._A = A
            _check_selection(g, tasks, k, allow_singletons)
            # The published method: every set of k candidate groups (where that is affordable).
            m = 2**n - (1 if allow_singletons else n + 1)
            if _comb(m - 1, min(k, m) - 1) <= 8000:
                _, v = brute_force_tag(A, tasks, k, allow_singletons=allow_singletons)
                assert g.score_ == pytest.approx(v, abs=1e-12)
            # Independent slow reference for every k.
            if n <= 6 or trial == 0:
                v2 = partition_reference(A, tasks, k, allow_singletons)
                assert g.score_ == pytest.approx(v2, abs=1e-12)


def _comb(a, b):
    from math import comb

    return comb(a, b) if 0 <= b <= a else 1


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("allow_singletons", [False, True])
def test_exact_disjoint_equals_exhaustive(n, allow_singletons):
    rng = np.random.default_rng(200 + n)
    tasks = names(n)
    for _ in range(3):
        A = rng.normal(size=(n, n))
        for k in range(1, n + 1):
            g = TAGGrouper(k, allow_singletons=allow_singletons, disjoint=True).fit(A, tasks)
            g._A = A
            _check_selection(g, tasks, k, allow_singletons)
            members = [t for grp in g.groups_ for t in grp]
            assert sorted(members) == sorted(tasks)  # a partition: no overlap
            _, v = brute_force_tag(A, tasks, k, allow_singletons=allow_singletons, disjoint=True)
            assert g.score_ == pytest.approx(v, abs=1e-12)


def test_more_budget_never_hurts_and_overlap_beats_disjoint():
    rng = np.random.default_rng(3)
    A, tasks = rng.normal(size=(8, 8)), names(8)
    values = [TAGGrouper(k).fit(A, tasks).score_ for k in range(1, 9)]
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:]))
    for k in (2, 3):
        dis = TAGGrouper(k, disjoint=True).fit(A, tasks).score_
        assert TAGGrouper(k).fit(A, tasks).score_ >= dis - 1e-12
    # k >= n reaches the per-task upper bound: every task in its own best group.
    g = TAGGrouper(8).fit(A, tasks)
    assert g.score_ == pytest.approx(g.upper_bound_)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 8), k=st.integers(1, 4))
def test_no_random_selection_beats_the_exact_one(seed, n, k):
    rng = np.random.default_rng(seed)
    A, tasks = rng.normal(size=(n, n)), names(n)
    best = TAGGrouper(k).fit(A, tasks).score_
    for _ in range(30):
        groups = [
            list(rng.choice(tasks, size=rng.integers(2, n + 1), replace=False)) for _ in range(k)
        ]
        covered = set().union(*map(set, groups))
        groups += [[t, tasks[0] if t != tasks[0] else tasks[1]] for t in tasks if t not in covered]
        if len(groups) <= k:
            assert tag_value(A, tasks, groups) <= best + 1e-12


def test_milp_solver_agrees_with_dp():
    rng = np.random.default_rng(11)
    for n, k, dis in [(5, 2, False), (7, 3, False), (8, 4, False), (7, 3, True)]:
        A, tasks = rng.normal(size=(n, n)), names(n)
        dp = TAGGrouper(k, disjoint=dis).fit(A, tasks)
        mip = TAGGrouper(k, disjoint=dis, solver="milp").fit(A, tasks)
        assert mip.solver_ == "milp" and mip.optimal_
        assert mip.score_ == pytest.approx(dp.score_, abs=1e-7)


def test_singleton_scores_zero_and_is_used_only_when_allowed():
    # Task c is hurt by everyone: alone (score 0) is its best place if singletons are allowed.
    A = np.array([[1.0, 0.8, -0.5], [0.8, 1.0, -0.5], [-0.4, -0.4, 1.0]])
    t = ["a", "b", "c"]
    g = TAGGrouper(2, allow_singletons=True).fit(A, t)
    assert g.groups_ == canonical_grouping([["a", "b"], ["c"]])
    assert g.score_ == pytest.approx((0.8 + 0.8 + 0.0) / 3)
    g = TAGGrouper(2).fit(A, t)
    assert all(len(x) >= 2 for x in g.groups_) and "c" in set().union(*g.groups_)


def test_tiny_inputs_and_large_budget():
    for grouper in (
        TAGGrouper(3),
        TAGGrouper(1, disjoint=True),
        ThresholdGrouper(0.0),
        HierarchicalGrouper(2),
        AffinityPropagationGrouper(),
        AllTogether(),
        EveryTaskAlone(),
        RandomGrouper(3),
    ):
        g = grouper.fit(np.array([[0.3]]), ["only"])
        assert g.groups_ == (frozenset({"only"}),)
    g = TAGGrouper(10).fit(np.array([[1.0, 0.2], [0.1, 1.0]]), ["a", "b"])
    assert g.groups_ == (frozenset({"a", "b"}),) and g.optimal_


def test_exact_search_proves_optimality_at_9_and_16_tasks():
    # timings live in bench/grouping_search.py; here only the certificate
    rng = np.random.default_rng(0)
    g = TAGGrouper(4).fit(rng.normal(size=(9, 9)), names(9))
    assert g.optimal_
    g = TAGGrouper(4).fit(rng.normal(size=(16, 16)), names(16))
    assert g.optimal_ and g.gap_ == 0.0


def test_safety_stop_returns_best_found_with_proven_gap():
    rng = np.random.default_rng(1)
    A, tasks = rng.normal(size=(16, 16)), names(16)
    g = TAGGrouper(4, time_limit=1e-4).fit(A, tasks)
    assert g.solver_ == "search" and g.stopped_
    assert 1 <= len(g.groups_) <= 4 and set().union(*g.groups_) == set(tasks)
    assert g.gap_ >= 0 and g.score_ + g.gap_ == pytest.approx(g.upper_bound_)
    exact = TAGGrouper(4).fit(A, tasks)
    assert g.score_ <= exact.score_ + 1e-12 <= g.upper_bound_ + 1e-12


# --- planted clusters are recovered by every method ---------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "make",
    [
        lambda: TAGGrouper(3),
        lambda: TAGGrouper(3, disjoint=True),
        lambda: ThresholdGrouper(0.0),
        lambda: ThresholdGrouper(0.0, definition="cliques"),
        lambda: HierarchicalGrouper(3),
        lambda: HierarchicalGrouper(tau=0.0),
        lambda: AffinityPropagationGrouper(),
        lambda: AffinityPropagationGrouper(backend="numpy"),
    ],
    ids=["tag", "tag-disjoint", "threshold", "cliques", "hier-k", "hier-tau", "ap", "ap-numpy"],
)
def test_planted_clusters_recovered(make, seed):
    A, tasks, truth = planted([3, 3, 3], seed)
    g = make().fit(A, tasks)
    assert g.groups_ == truth
    assert g.score_ > tag_value(A, tasks, [tasks])  # beats all-together on these matrices


def test_hierarchical_leaf_order_makes_blocks_contiguous():
    A, tasks, truth = planted([4, 3, 3], seed=5)
    g = HierarchicalGrouper(3).fit(A, tasks)
    assert sorted(g.order_.tolist()) == list(range(10))
    assert g.order_tasks_ == [tasks[i] for i in g.order_]
    block_of = {t: i for i, grp in enumerate(truth) for t in grp}
    seq = [block_of[t] for t in g.order_tasks_]
    assert sum(a != b for a, b in zip(seq, seq[1:])) == 2  # three runs, one per block
    np.testing.assert_array_equal(leaf_order(A, tasks), g.order_)


def test_threshold_components_chain_vs_cliques():
    # a~b and b~c linked, a and c hurt each other: components chain them, cliques do not.
    A = np.array([[1.0, 0.5, -0.5], [0.5, 1.0, 0.5], [-0.5, 0.5, 1.0]])
    t = ["a", "b", "c"]
    assert ThresholdGrouper(0.2).fit(A, t).groups_ == (frozenset(t),)
    assert ThresholdGrouper(0.2, definition="cliques").fit(A, t).groups_ == canonical_grouping(
        [["a", "b"], ["b", "c"]]
    )
    # Symmetrized: a link needs the *average* of both directions to reach tau.
    B = np.array([[0.0, 0.9, 0.0], [-0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert ThresholdGrouper(0.3).fit(B, t).groups_ == canonical_grouping([["a"], ["b"], ["c"]])
    assert ThresholdGrouper(0.2).fit(B, t).groups_ == canonical_grouping([["a", "b"], ["c"]])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), lo=st.floats(-1, 1), step=st.floats(0, 1))
def test_threshold_components_only_split_as_tau_rises(seed, lo, step):
    A = np.random.default_rng(seed).normal(size=(7, 7))
    coarse = ThresholdGrouper(lo).fit(A, names(7)).groups_
    fine = ThresholdGrouper(lo + step).fit(A, names(7)).groups_
    assert all(any(f <= c for c in coarse) for f in fine)


def test_hierarchical_cuts():
    A, tasks, truth = planted([3, 3], seed=4)
    assert len(HierarchicalGrouper(1).fit(A, tasks).groups_) == 1
    assert len(HierarchicalGrouper(6).fit(A, tasks).groups_) == 6
    assert HierarchicalGrouper(distance=1e9).fit(A, tasks).groups_ == (frozenset(tasks),)
    assert len(HierarchicalGrouper(tau=1e9).fit(A, tasks).groups_) == 6
    with pytest.raises(LabError, match="exactly one cut"):
        HierarchicalGrouper(2, tau=0.0).fit(A, tasks)


# --- affinity propagation ---------------------------------------------------------------------


def test_normalize_affinity_divides_columns_by_diagonal_then_symmetrizes():
    A = np.array([[2.0, 1.0], [4.0, 0.5]])
    X = np.array([[1.0, 2.0], [2.0, 1.0]])  # A[:, j] / A[j, j]
    np.testing.assert_allclose(normalize_affinity(A), (X + X.T) / 2)
    # A non-positive diagonal falls back to the column's largest magnitude.
    B = np.array([[-1.0, 1.0], [3.0, 2.0]])
    Y = B / np.array([3.0, 2.0])
    np.testing.assert_allclose(normalize_affinity(B), (Y + Y.T) / 2)
    stack = np.stack([A, B])
    np.testing.assert_allclose(normalize_affinity(stack)[1], normalize_affinity(B))


def test_numpy_port_matches_sklearn():
    rng = np.random.default_rng(7)
    for trial in range(60):
        n = int(rng.integers(2, 13))
        A = rng.normal(size=(n, n)) + np.diag(rng.uniform(0.2, 2.0, n))
        sk = AffinityPropagationGrouper(seed=trial).fit(A, names(n))
        npy = AffinityPropagationGrouper(seed=trial, backend="numpy").fit(A, names(n))
        assert sk.groups_ == npy.groups_ and sk.converged_ == npy.converged_
        assert proximal_groups(A, names(n), seed=trial) == sk.groups_


def test_affinity_propagation_non_convergence_falls_back():
    A, tasks, _ = planted([3, 3], seed=0)
    g = AffinityPropagationGrouper(max_iter=5).fit(A, tasks)  # cannot settle in 5 iterations
    assert not g.converged_ and g.groups_ == canonical_grouping([t] for t in tasks)
    labels, ok = affinity_propagation_labels(normalize_affinity(A), max_iter=5)
    assert not ok
    prev = canonical_grouping([tasks[:2], tasks[2:]])
    assert proximal_groups(A, tasks, fallback=prev, max_iter=5) == prev
    assert proximal_groups(A, tasks, max_iter=5) == canonical_grouping([t] for t in tasks)
    # With enough iterations the same matrix converges to its planted blocks instead.
    assert AffinityPropagationGrouper().fit(A, tasks).converged_
    assert proximal_groups(A, tasks, fallback=prev) not in (prev,)


def test_proximal_groups_same_seed_same_groups_every_batch():
    # proximal_groups runs once per batch in sequential mode; its speed is measured in bench/
    rng = np.random.default_rng(0)
    tasks = names(10)
    mats = [rng.normal(size=(10, 10)) + 2 * np.eye(10) for _ in range(20)]
    for i, A in enumerate(mats):
        a, b = proximal_groups(A, tasks, seed=i), proximal_groups(A, tasks, seed=i)
        assert a == b
        assert sorted(t for g in a for t in g) == sorted(tasks)


# --- baselines, factory, validation -----------------------------------------------------------


def test_baselines():
    A, tasks = np.zeros((6, 6)), names(6)
    assert AllTogether().fit(A, tasks).groups_ == (frozenset(tasks),)
    assert EveryTaskAlone().fit(A, tasks).score_ == 0.0
    a = RandomGrouper(3, seed=1).fit(A, tasks).groups_
    assert a == RandomGrouper(3, seed=1).fit(A, tasks).groups_
    assert len(a) == 3 and sorted(t for g in a for t in g) == sorted(tasks)
    seen = {RandomGrouper(3, seed=s).fit(A, tasks).groups_ for s in range(10)}
    assert len(seen) > 1
    b = RandomGrouper(3, seed=2, min_size=2).fit(A, tasks).groups_
    assert all(len(g) >= 2 for g in b)


def test_make_grouper():
    assert isinstance(make_grouper("tag", k=2), TAGGrouper)
    assert isinstance(make_grouper("threshold", tau=0.1), ThresholdGrouper)
    assert isinstance(make_grouper("hierarchical", k=2), HierarchicalGrouper)
    assert isinstance(make_grouper("affinity_propagation"), AffinityPropagationGrouper)
    assert make_grouper("tag", k=3, disjoint=True).disjoint
    with pytest.raises(LabError, match="group budget"):
        make_grouper("tag")
    with pytest.raises(LabError, match="unknown grouping method"):
        make_grouper("kmeans")


@pytest.mark.parametrize(
    "A, tasks, k, message",
    [
        (np.zeros((2, 3)), ["a", "b"], 2, "must be square"),
        (np.zeros(3), ["a", "b", "c"], 2, "must be square"),
        (np.full((2, 2), np.nan), ["a", "b"], 2, "no measured"),
        (np.zeros((3, 3)), ["a", "b"], 2, "2 task names for a 3 x 3"),
        (np.zeros((2, 2)), ["a", "a"], 2, "unique"),
        (np.zeros((2, 2)), ["a", "b"], 0, "integer >= 1"),
        (np.zeros((2, 2)), ["a", "b"], 1.5, "integer >= 1"),
        (np.zeros((0, 0)), [], 1, "empty"),
    ],
)
def test_invalid_input_raises_actionable_lab_error(A, tasks, k, message):
    for grouper in (TAGGrouper(k), HierarchicalGrouper(k)):
        with pytest.raises(LabError, match=message):
            grouper.fit(A, tasks)


def test_unmeasured_cells_one_rule_per_method():
    """The diagonal is never read; an unmeasured off-diagonal cell is 0 for TAG (directional)
    and the other direction's value for the symmetrizing methods."""
    from mtl_core.grouping import make_grouper
    from mtl_core.grouping.base import fill_unmeasured

    A = np.array([[9.0, 0.8, -0.5], [0.8, 9.0, -0.5], [-0.5, -0.5, 9.0]])
    blank = A.copy()
    np.fill_diagonal(blank, np.nan)
    for method, kw in (
        ("tag", {"k": 2}),
        ("threshold", {}),
        ("hierarchical", {"k": 2}),
        ("affinity-propagation", {}),
    ):
        full = make_grouper(method, **kw).fit(A, ["a", "b", "c"])
        g = make_grouper(method, **kw).fit(blank, ["a", "b", "c"])
        assert g.unmeasured_ == 0
        if method != "affinity-propagation":  # AP scales columns by a measured diagonal
            assert g.groups_ == full.groups_
        assert frozenset({"a", "b"}) in g.groups_
    gap = A.copy()
    gap[0, 1] = np.nan
    M, count = fill_unmeasured(gap, "zero")
    assert count == 1 and M[0, 1] == 0.0
    M, _ = fill_unmeasured(gap, "mirror")
    assert M[0, 1] == 0.8
    g = make_grouper("threshold").fit(gap, ["a", "b", "c"])
    assert g.unmeasured_ == 1 and frozenset({"a", "b"}) in g.groups_
    assert make_grouper("tag", k=2).fit(gap, ["a", "b", "c"]).unmeasured_ == 1


def test_init_only_stores_arguments():
    g = TAGGrouper(-3, solver="nope")  # sklearn contract: nothing checked before fit
    assert g.get_params()["k"] == -3
    with pytest.raises(LabError):
        g.fit(np.zeros((2, 2)), ["a", "b"])
    assert not hasattr(TAGGrouper(2), "groups_")


@pytest.mark.slow
def test_grouping_imports_without_torch_or_streamlit():
    code = (
        "import sys, mtl_core.grouping, mtl_core.commands.group;"
        "print('torch' in sys.modules, 'streamlit' in sys.modules, 'sklearn' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False", "False"]
