"""The TAG search as it was before issue 14 (commit 5dd845e): the benchmark's baseline.

Frozen copy of ``mtl_core/grouping/tag.py`` at that commit (exact bitmask DP up to 20 tasks
with a 60 s wall-clock limit, then a greedy-plus-swap fallback with the "every task in its
best group" bound), kept only so ``bench/grouping_search.py`` can run the previous search in
the same run as the new one. Not imported by the library or the app.
"""

# ruff: noqa

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Sequence

import numpy as np

from mtl_core.errors import LabError
from mtl_core.grouping.base import (
    SINGLETON_SCORE,
    BaseGrouper,
    check_budget,
    tag_value,
    validate_affinity,
)
from mtl_core.types import AffinityMatrix, Grouping, canonical_grouping

#: Largest task count the exact search accepts (memory: a few arrays of 2**n floats; time:
#: 3**n work per DP layer, so beyond ~18 tasks the time limit usually decides).
MAX_TASKS = 20
_LO_BITS = 11  # low bits enumerated as one vectorized block of 3**11 = 177k pairs
SOLVERS = ("auto", "dp", "milp")


class _Timeout(Exception):
    pass


class _Deadline:
    def __init__(self, limit: float | None) -> None:
        self.end = math.inf if limit is None else time.perf_counter() + float(limit)

    def check(self) -> None:
        if time.perf_counter() > self.end:
            raise _Timeout

    def left(self) -> float:
        return self.end - time.perf_counter()


def _bits(n: int) -> np.ndarray:
    """Membership matrix of all ``2**n`` bitmasks: ``[mask, i] = 1`` if bit i is set."""
    masks = np.arange(1 << n, dtype=np.int64)
    return ((masks[:, None] >> np.arange(n)) & 1).astype(np.float64)


def _subset_pairs(nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``(outer, inner)`` bitmask pairs with ``inner ⊆ outer`` over ``nbits`` bits."""
    outer = np.zeros(1, dtype=np.int64)
    inner = np.zeros(1, dtype=np.int64)
    for b in range(nbits):
        bit = np.int64(1 << b)
        outer = np.concatenate([outer, outer | bit, outer | bit])
        inner = np.concatenate([inner, inner, inner | bit])
    return outer, inner


def _submasks(mask: int, n: int) -> np.ndarray:
    """All non-empty submasks of ``mask`` (vectorized bit deposit)."""
    pos = [b for b in range(n) if mask >> b & 1]
    idx = np.arange(1, 1 << len(pos), dtype=np.int64)
    out = np.zeros_like(idx)
    for j, b in enumerate(pos):
        out |= ((idx >> j) & 1) << b
    return out


def _mask_members(mask: int, n: int) -> list[int]:
    return [b for b in range(n) if mask >> b & 1]


class _Blocks:
    """Block decomposition of the ``n`` task bits into low bits (vectorized) and high bits."""

    def __init__(self, A: np.ndarray) -> None:
        n = A.shape[0]
        self.n = n
        self.lo_bits = min(n, _LO_BITS)
        self.h = n - self.lo_bits
        lo, hi = slice(0, self.lo_bits), slice(self.lo_bits, n)
        self.Mlo = _bits(self.lo_bits)
        self.Mhi = _bits(self.h)
        self.pop_lo = self.Mlo.sum(1).astype(np.int64)
        self.pop_hi = self.Mhi.sum(1).astype(np.int64)
        d = np.diag(A)
        self.tr_lo = self.Mlo @ d[lo]
        self.tr_hi = self.Mhi @ d[hi]
        # B[g, p] = sum_{i in g, t in p} A[i, t], split into the four lo/hi blocks.
        self.Bll = self.Mlo @ A[lo, lo] @ self.Mlo.T
        self.Bhh = self.Mhi @ A[hi, hi] @ self.Mhi.T
        self.X = self.Mhi @ A[hi, lo] @ self.Mlo.T  # X[g_hi, p_lo]: sources hi, targets lo
        self.Yt = self.Mhi @ A[lo, hi].T @ self.Mlo.T  # Yt[p_hi, g_lo]: sources lo, targets hi

    def self_sums(self) -> np.ndarray:
        """``B(P, P) - trace(P)`` for every mask P (index ``p_hi << l | p_lo``)."""
        B = (
            np.diag(self.Bhh)[:, None]
            + np.diag(self.Bll)[None, :]
            + self.X
            + self.Yt
            - self.tr_hi[:, None]
            - self.tr_lo[None, :]
        )
        return B.reshape(-1)

    def pops(self) -> np.ndarray:
        return (self.pop_hi[:, None] + self.pop_lo[None, :]).reshape(-1)


def _served_value_overlap(
    A: np.ndarray, blk: _Blocks, allow_singletons: bool, deadline: _Deadline
) -> np.ndarray:
    """``f(P) = max_{G ⊇ P, |G| >= 2} sum_{t in P} score(G, t)`` for every mask P."""
    n, lb = blk.n, blk.lo_bits
    g_lo, p_lo = _subset_pairs(lb)
    order = np.argsort(p_lo, kind="stable")
    g_lo, p_lo = g_lo[order], p_lo[order]
    starts = np.searchsorted(p_lo, np.arange(1 << lb))
    base = blk.Bll[g_lo, p_lo] - blk.tr_lo[p_lo]
    pop_g = blk.pop_lo[g_lo]
    with np.errstate(divide="ignore"):
        # 1 / (|G| - 1), NaN where |G| < 2 so fmax ignores those pairs.
        inv = [
            np.where(pop_g + c >= 2, 1.0 / np.maximum(pop_g + c - 1, 1), np.nan)
            for c in range(blk.h + 1)
        ]
    f = np.full(1 << n, -np.inf)
    size = 1 << lb
    for g_hi, p_hi in zip(*_subset_pairs(blk.h)):
        deadline.check()
        vals = base + blk.X[g_hi][p_lo] + blk.Yt[p_hi][g_lo]
        vals += blk.Bhh[g_hi, p_hi] - blk.tr_hi[p_hi]
        vals *= inv[blk.pop_hi[g_hi]]
        out = f[p_hi * size : (p_hi + 1) * size]
        np.fmax(out, np.fmax.reduceat(vals, starts), out=out)
    f[0] = -np.inf
    if allow_singletons:
        single = 1 << np.arange(n)
        f[single] = np.maximum(f[single], SINGLETON_SCORE)
    return f


def _served_value_disjoint(blk: _Blocks, allow_singletons: bool) -> np.ndarray:
    """``f(P)`` = sum of the members' scores when P is trained as its own group."""
    pop = blk.pops()
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(pop >= 2, blk.self_sums() / np.maximum(pop - 1, 1), -np.inf)
    f[0] = -np.inf
    single = 1 << np.arange(blk.n)
    f[single] = SINGLETON_SCORE if allow_singletons else -np.inf
    return f


def _partition_layer(f: np.ndarray, prev: np.ndarray, n: int, deadline: _Deadline) -> np.ndarray:
    """``new[M] = max(prev[M], max_{∅≠P⊆M} f[P] + prev[M \\ P])``: one more block allowed."""
    lb = min(n, _LO_BITS)
    m_lo, p_lo = _subset_pairs(lb)
    order = np.argsort(m_lo, kind="stable")
    m_lo, p_lo = m_lo[order], p_lo[order]
    r_lo = m_lo ^ p_lo
    starts = np.searchsorted(m_lo, np.arange(1 << lb))
    size = 1 << lb
    new = prev.copy()
    for m_hi, p_hi in zip(*_subset_pairs(n - lb)):
        deadline.check()
        r_hi = m_hi ^ p_hi
        vals = (
            f[p_hi * size : (p_hi + 1) * size][p_lo] + prev[r_hi * size : (r_hi + 1) * size][r_lo]
        )
        out = new[m_hi * size : (m_hi + 1) * size]
        np.maximum(out, np.maximum.reduceat(vals, starts), out=out)
    return new


def _best_group_for(A: np.ndarray, P: int, allow_singletons: bool) -> int:
    """The group ``G ⊇ P`` that maximises the summed scores of P's members."""
    n = A.shape[0]
    members = _mask_members(P, n)
    comp = ((1 << n) - 1) ^ P
    extra = np.concatenate([[0], _submasks(comp, n)]) if comp else np.zeros(1, dtype=np.int64)
    sups = P | extra
    bits = ((sups[:, None] >> np.arange(n)) & 1).astype(np.float64)
    size = bits.sum(1)
    a = A[:, members].sum(1)
    tr = float(np.trace(A[np.ix_(members, members)]))
    with np.errstate(divide="ignore", invalid="ignore"):
        vals = np.where(size >= 2, (bits @ a - tr) / np.maximum(size - 1, 1), -np.inf)
    if allow_singletons and len(members) == 1:
        vals[0] = max(vals[0], SINGLETON_SCORE)  # extra == 0: the task alone
    return int(sups[int(np.argmax(vals))])


def _dp_select(
    A: np.ndarray, k: int, allow_singletons: bool, disjoint: bool, deadline: _Deadline
) -> tuple[list[int], float]:
    """Exact search; returns the chosen group masks and the optimal summed score."""
    n = A.shape[0]
    blk = _Blocks(A)
    if disjoint:
        f = _served_value_disjoint(blk, allow_singletons)
    else:
        f = _served_value_overlap(A, blk, allow_singletons, deadline)
    served, best = _partition_select(f, n, k, deadline)
    if disjoint:
        return served, best
    return [_best_group_for(A, P, allow_singletons) for P in served], best


def _partition_select(
    f: np.ndarray, n: int, k: int, deadline: _Deadline
) -> tuple[list[int], float]:
    """Best partition of all n tasks into at most k blocks for block values ``f`` (by mask).

    Returns the blocks (bitmasks) and the summed value; ties prefer fewer blocks.
    """
    full = (1 << n) - 1
    k = min(k, n)
    layers = [f, f]  # layers[j][M]: best sum over partitions of M into <= j blocks
    for _ in range(2, k):
        layers.append(_partition_layer(f, layers[-1], n, deadline))
    top = layers[k - 1]

    def split(mask: int, j: int) -> list[int]:
        if mask == 0:
            return []
        if j == 1:
            return [mask]
        cand = _submasks(mask, n)
        vals = f[cand] + layers[j - 1][mask ^ cand]
        i = int(np.argmax(vals))
        if layers[j - 1][mask] >= vals[i]:  # ties: prefer fewer groups
            return split(mask, j - 1)
        return [int(cand[i])] + split(mask ^ int(cand[i]), j - 1)

    if k == 1:
        return [full], float(f[full])
    # The last layer only needs the full mask: max_P f[P] + top[full \ P] (or <= k-1 blocks).
    subs = _submasks(full, n)
    vals = f[subs] + top[full ^ subs]
    i = int(np.argmax(vals))
    if top[full] >= vals[i]:
        return split(full, k - 1), float(top[full])
    return [int(subs[i])] + split(full ^ int(subs[i]), k - 1), float(vals[i])


def select_from_scores(scores: np.ndarray, k: int) -> tuple[list[int], float]:
    """Exact selection of at most ``k`` groups from an arbitrary per-group score table.

    ``scores[G, t]`` (``G`` a bitmask over n tasks, shape ``(2**n, n)``) is what task t gets
    from group G's network, e.g. minus its validation loss; ``-inf`` marks groups that are not
    candidates (all their entries) and is ignored for non-members. Each task takes its best
    chosen group containing it; every task must be covered. Same served-set reduction and
    partition DP as TAG selection, with ``f(P) = max_{G ⊇ P} sum_{t in P} scores[G, t]``
    enumerated directly (``3**n`` pairs: meant for the small n of exhaustive training).

    Returns ``(group masks, summed score)``; the sum is ``-inf`` when no selection covers all.
    """
    S = np.asarray(scores, dtype=np.float64)
    n = S.shape[1]
    if S.shape[0] != 1 << n:
        raise LabError(f"score table needs 2^{n} = {1 << n} rows (one per group), got {len(S)}")
    masks = np.arange(1 << n, dtype=np.int64)
    member = ((masks[:, None] >> np.arange(n)) & 1).astype(bool)
    valid = np.all(np.isfinite(S) | ~member, axis=1) & member.any(axis=1)
    S0 = np.where(member & np.isfinite(S), S, 0.0)
    g, p = _subset_pairs(n)
    order = np.argsort(p, kind="stable")
    g, p = g[order], p[order]
    vals = (S0[g] * member[p]).sum(axis=1)
    vals[~valid[g]] = -np.inf
    f = np.maximum.reduceat(vals, np.searchsorted(p, masks))
    f[0] = -np.inf
    served, best = _partition_select(f, n, k, _Deadline(None))
    chosen = []
    for P in served:
        sel = p == P  # pairs (G, P): every G here contains P
        cand = g[sel]
        chosen.append(int(cand[int(np.argmax(vals[sel]))]))
    return chosen, best


def _score_chunks(A: np.ndarray, min_size: int, chunk: int = 1 << 15):
    """Yield ``(masks, S)`` blocks of the candidate score table: ``S[g, t]`` is task t's score
    in group g (``-inf`` where t is not a member); singletons score 0."""
    n = A.shape[0]
    d = np.diag(A)
    for start in range(1, 1 << n, chunk):
        masks = np.arange(start, min(start + chunk, 1 << n), dtype=np.int64)
        bits = ((masks[:, None] >> np.arange(n)) & 1).astype(np.float64)
        size = bits.sum(1)
        keep = size >= min_size
        masks, bits, size = masks[keep], bits[keep], size[keep]
        with np.errstate(divide="ignore", invalid="ignore"):
            S = (bits @ A - d) / np.maximum(size - 1, 1)[:, None]
        S[size == 1] = SINGLETON_SCORE
        S[bits == 0] = -np.inf
        yield masks, S


def candidate_scores(
    A: np.ndarray, allow_singletons: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate group (bitmask over task indices) and each task's score in it.

    Returns ``(masks, S)`` with ``S[g, t]`` the score of task t in group ``masks[g]``
    (``-inf`` if t is not a member). ``2**n`` rows: use for small n only.
    """
    parts = list(_score_chunks(np.asarray(A, dtype=np.float64), 1 if allow_singletons else 2))
    return np.concatenate([m for m, _ in parts]), np.concatenate([s for _, s in parts])


def _upper_bound(A: np.ndarray, allow_singletons: bool) -> float:
    """Sum over tasks of each task's best score in any group: no selection can beat it."""
    best = np.full(A.shape[0], -np.inf)
    for _, S in _score_chunks(A, 1 if allow_singletons else 2):
        np.maximum(best, S.max(0), out=best)
    return float(best.sum())


def _heuristic_select(
    A: np.ndarray, k: int, allow_singletons: bool, disjoint: bool, deadline: _Deadline
) -> list[int]:
    """Good (not proven) selection for when the exact search runs out of time.

    Overlapping: start from all tasks together, greedily add the group with the largest gain,
    then swap groups while that helps. Disjoint: best cut of an average-linkage tree.
    """
    n = A.shape[0]
    full = (1 << n) - 1
    if disjoint:
        from mtl_core.grouping.hierarchical import HierarchicalGrouper

        tasks = [str(i) for i in range(n)]
        best, best_v = [full], tag_value(A, tasks, [tasks])
        for c in range(2, min(k, n) + 1):
            g = HierarchicalGrouper(k=c).fit(A, tasks)
            ok = allow_singletons or all(len(x) >= 2 for x in g.groups_)
            if ok and g.score_ > best_v:
                best_v = g.score_
                best = [sum(1 << int(t) for t in grp) for grp in g.groups_]
        return best
    min_size = 1 if allow_singletons else 2

    def scores_of(mask: int) -> np.ndarray:
        members = _mask_members(mask, n)
        s = np.full(n, -np.inf)
        if len(members) == 1:
            s[members] = SINGLETON_SCORE
        else:
            sub = A[np.ix_(members, members)]
            s[members] = (sub.sum(0) - np.diag(sub)) / (len(members) - 1)
        return s

    def best_addition(cur: np.ndarray) -> tuple[int, float]:
        best_m, best_v = -1, -np.inf
        for masks, S in _score_chunks(A, min_size):
            v = np.maximum(cur, S).sum(1)
            i = int(np.argmax(v))
            if v[i] > best_v:
                best_m, best_v = int(masks[i]), float(v[i])
        return best_m, best_v

    def total(sel: list[int]) -> float:
        return float(np.max([scores_of(m) for m in sel], axis=0).sum())

    sel = [full]
    for _ in range(min(k, n) - 1):
        if deadline.left() <= 0:
            break
        cur = np.max([scores_of(m) for m in sel], axis=0)
        m, v = best_addition(cur)
        if m < 0 or v <= cur.sum() + 1e-12:
            break
        sel.append(m)
    improved = True
    while improved and deadline.left() > 0:
        improved = False
        for i in range(len(sel)):
            rest = sel[:i] + sel[i + 1 :]
            cur = np.max([scores_of(m) for m in rest], axis=0) if rest else np.full(n, -np.inf)
            m, v = best_addition(cur)
            if m >= 0 and v > total(sel) + 1e-12 and np.isfinite(v):
                sel = rest + [m]
                improved = True
                break
    return sel


def _milp_select(
    A: np.ndarray, k: int, allow_singletons: bool, disjoint: bool, time_limit: float | None
) -> tuple[list[int], float, float]:
    """Facility-location (or set-partitioning) integer program solved by HiGHS.

    Returns ``(group masks, objective, dual bound)`` as summed scores.
    """
    from scipy import sparse
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = A.shape[0]
    masks, S = candidate_scores(A, allow_singletons)
    m = len(masks)
    member = np.isfinite(S)
    g_idx, t_idx = np.nonzero(member)
    opts: dict[str, object] = {"mip_rel_gap": 0.0, "disp": False}
    if time_limit is not None:
        opts["time_limit"] = float(time_limit)
    if disjoint:
        w = np.where(member, S, 0.0).sum(1)
        cover = sparse.csr_matrix((np.ones(len(g_idx)), (t_idx, g_idx)), shape=(n, m))
        cons = [
            LinearConstraint(cover, 1, 1),
            LinearConstraint(np.ones((1, m)), 0, k),
        ]
        res = milp(-w, integrality=np.ones(m), bounds=Bounds(0, 1), constraints=cons, options=opts)
        if res.x is None:
            raise _Timeout
        chosen = [int(masks[g]) for g in np.flatnonzero(res.x > 0.5)]
        return chosen, -float(res.fun), -float(res.mip_dual_bound)
    # Variables: y_g (group opened), then x_{g,t} (task t served by g) for each membership.
    nx = len(g_idx)
    c = np.concatenate([np.zeros(m), -S[g_idx, t_idx]])
    rows = np.arange(nx)
    assign = sparse.csr_matrix((np.ones(nx), (t_idx, m + rows)), shape=(n, m + nx))
    link = sparse.csr_matrix(
        (
            np.concatenate([np.ones(nx), -np.ones(nx)]),
            (np.tile(rows, 2), np.concatenate([m + rows, g_idx])),
        ),
        shape=(nx, m + nx),
    )
    budget = sparse.csr_matrix(
        (np.ones(m), (np.zeros(m, dtype=int), np.arange(m))), shape=(1, m + nx)
    )
    cons = [
        LinearConstraint(assign, 1, 1),
        LinearConstraint(link, -np.inf, 0),
        LinearConstraint(budget, 0, k),
    ]
    integrality = np.concatenate([np.ones(m), np.zeros(nx)])
    res = milp(c, integrality=integrality, bounds=Bounds(0, 1), constraints=cons, options=opts)
    if res.x is None:
        raise _Timeout
    chosen = [int(masks[g]) for g in np.flatnonzero(res.x[:m] > 0.5)]
    return chosen, -float(res.fun), -float(res.mip_dual_bound)


def _masks_to_groups(masks: Iterable[int], tasks: Sequence[str]) -> Grouping:
    n = len(tasks)
    return canonical_grouping({frozenset(tasks[i] for i in _mask_members(m, n)) for m in masks})


class TAGGrouper(BaseGrouper):
    """Exact TAG network selection: the best at most ``k`` groups for the TAG value.

    Parameters
    ----------
    k : int
        Group budget (at most k groups; fewer when more would not help).
    allow_singletons : bool
        Allow a task to be trained alone (it then scores 0: no transfer). Default False, as in
        TAG, where every group holds two or more tasks.
    disjoint : bool
        Partition variant: every task in exactly one group.
    time_limit : float or None
        Seconds before the search stops and returns the best grouping found with a proven gap.
    solver : {"auto", "dp", "milp"}
        ``"dp"``: the exact bitmask dynamic programme (default via ``"auto"``); ``"milp"``:
        HiGHS integer program (cross-check / benchmark).

    Attributes
    ----------
    groups_ : Grouping
        Chosen groups (canonical order).
    score_ : float
        TAG value of ``groups_`` (mean over tasks of the best group score).
    optimal_ : bool
        True when ``groups_`` is proven optimal.
    gap_ : float
        Proven upper bound on the best value minus ``score_`` (same units; 0 when optimal).
    upper_bound_ : float
        That upper bound.
    solver_ : str
        Which search produced the answer (``"dp"``, ``"milp"``, ``"heuristic"``, ``"trivial"``).
    elapsed_ : float
        Seconds spent in the search.

    Notes
    -----
    With one task the only grouping is that task alone, whatever ``allow_singletons`` says.
    ``k >= n`` is allowed (the extra budget is simply not used).
    """

    method = "tag"

    def __init__(
        self,
        k: int = 2,
        *,
        allow_singletons: bool = False,
        disjoint: bool = False,
        time_limit: float | None = 60.0,
        solver: str = "auto",
    ) -> None:
        self.k = k
        self.allow_singletons = allow_singletons
        self.disjoint = disjoint
        self.time_limit = time_limit
        self.solver = solver

    def _check_params(self, n_tasks: int) -> None:
        check_budget(self.k)
        if self.solver not in SOLVERS:
            raise LabError(
                f"unknown TAG solver {self.solver!r}; choose one of: {', '.join(SOLVERS)}"
            )
        if self.time_limit is not None and not float(self.time_limit) > 0:
            raise LabError(f"time limit must be > 0 seconds, got {self.time_limit}")
        if n_tasks > MAX_TASKS:
            raise LabError(
                f"exact TAG selection handles at most {MAX_TASKS} tasks (it searches all 2^n "
                f"groups); got {n_tasks}. Use --method hierarchical or threshold instead"
            )

    def _fit(self, A: AffinityMatrix, tasks: list[str]) -> Grouping:
        n = len(tasks)
        t0 = time.perf_counter()
        self.upper_bound_: float
        if n == 1:
            self.solver_ = "trivial"
            self.optimal_, self.gap_, self.upper_bound_ = True, 0.0, SINGLETON_SCORE
            self.elapsed_ = 0.0
            return (frozenset(tasks),)
        k = int(self.k)
        deadline = _Deadline(self.time_limit)
        solver = "dp" if self.solver == "auto" else self.solver
        masks: list[int]
        try:
            if solver == "milp":
                masks, _, bound = _milp_select(
                    A, k, self.allow_singletons, self.disjoint, self.time_limit
                )
                bound_value = bound / n
            else:
                masks, best = _dp_select(A, k, self.allow_singletons, self.disjoint, deadline)
                bound_value = best / n
            self.solver_ = solver
        except _Timeout:
            masks = _heuristic_select(
                A, k, self.allow_singletons, self.disjoint, _Deadline(max(1.0, 0.1 * n))
            )
            bound_value = _upper_bound(A, self.allow_singletons) / n
            self.solver_ = "heuristic"
        groups = _masks_to_groups(masks, tasks)
        value = tag_value(A, tasks, groups)
        # Summation order differs between the search and tag_value; allow for rounding.
        tol = 1e-9 * max(1.0, abs(value))
        self.upper_bound_ = max(float(bound_value), value)
        self.gap_ = 0.0 if self.upper_bound_ - value <= tol else self.upper_bound_ - value
        self.optimal_ = self.gap_ == 0.0
        self.elapsed_ = time.perf_counter() - t0
        return groups


def brute_force_tag(
    A: AffinityMatrix,
    tasks: Sequence[str],
    k: int,
    *,
    allow_singletons: bool = False,
    disjoint: bool = False,
) -> tuple[Grouping, float]:
    """Reference: the published exhaustive search over every set of ``min(k, m)`` candidates.

    Adding a group never lowers the TAG value, so sets of exactly ``min(k, m)`` of the ``m``
    candidate groups cover every "at most k" selection. ``C(m, k)`` sets: small n only.
    With ``disjoint=True`` it enumerates every set partition into at most k blocks instead.
    Returns ``(grouping, value)``.
    """
    A, tasks = validate_affinity(A, tasks)
    n = len(tasks)
    if n == 1:
        return (frozenset(tasks),), SINGLETON_SCORE
    if disjoint:
        best_v, best_g = -np.inf, None
        for part in _set_partitions(list(range(n))):
            if len(part) > k or (not allow_singletons and any(len(b) == 1 for b in part)):
                continue
            groups = [[tasks[i] for i in b] for b in part]
            v = tag_value(A, tasks, groups)
            if v > best_v + 1e-12:
                best_v, best_g = v, groups
        return canonical_grouping(best_g), float(best_v)
    masks, S = candidate_scores(A, allow_singletons)
    m = len(masks)
    r = min(k, m)
    best_v, best_c = -np.inf, None
    if r == 1:
        tot = S.sum(1)
        i = int(np.argmax(tot))
        best_v, best_c = float(tot[i]), (i,)
    else:
        # Python over (r-1)-prefixes, numpy over the last member: one vector op per prefix.
        for prefix in itertools.combinations(range(m - 1), r - 1):
            cur = S[list(prefix)].max(0)
            tot = np.maximum(cur, S[prefix[-1] + 1 :]).sum(1)
            i = int(np.argmax(tot))
            if tot[i] > best_v:
                best_v, best_c = float(tot[i]), prefix + (prefix[-1] + 1 + i,)
    groups = _masks_to_groups([int(masks[i]) for i in best_c], tasks)
    return groups, best_v / n


def _set_partitions(items: list[int]):
    """Every partition of ``items`` into non-empty blocks (Bell-number many)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1 :]
        yield [[first]] + part
