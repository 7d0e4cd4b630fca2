"""TAG network selection (Fifty et al., NeurIPS 2021 §3.3): exact where it can be, certified
everywhere.

Problem. Choose at most ``k`` groups of tasks (groups may overlap, every task covered, groups of
two or more tasks unless singletons are allowed) maximising the TAG value: the mean over tasks
of each task's best group score, where task t scores ``mean_{i in G, i != t} A[i, t]`` in group
G (``A[i, j]``: effect of task i's update on task j's loss) and a task alone scores 0.

The served-set reduction. In any selection, let each task be *served* by its best group. The
served sets partition the tasks into at most k blocks, and a block P is best served by the
group ``G ⊇ P`` maximising ``sum_{t in P} score(G, t)``; call that ``f(P)``. So

    best value = max over partitions of the tasks into <= k blocks of sum_j f(P_j),

and every partition maps back to a selection of at most k groups with at least that value.
``f(P)`` costs ``O(n log n)`` (:mod:`mtl_core.grouping.tag_blocks`), so partitions can be
searched and valued at any n.

Solvers (``solver=``):

* ``"dp"``: the bitmask dynamic programme over the ``3**n`` (set, subset) pairs (vectorized
  numpy blocks); exact, fastest for small n (default up to :data:`AUTO_DP_MAX` tasks).
* ``"search"`` (default above that): multi-start local search over served-set partitions
  (:mod:`mtl_core.grouping.tag_search`), then column generation on the set-partitioning LP
  with HiGHS, which certifies an upper bound and, up to
  :data:`mtl_core.grouping.tag_lp.TABLE_MAX` tasks, finishes with a proof of optimality
  (:mod:`mtl_core.grouping.tag_lp`). Above that range the answer is proven optimal when the LP
  bound meets it (common on matrices with group structure); otherwise the gap is reported.
* ``"milp"``: the facility-location integer programme over all ``2**n`` candidate groups with
  HiGHS (a cross-check; slow).

Deterministic: the same matrix and settings give the same groups on every machine and load.
Budgets are counted in work (served sets valued, pricing rounds, branch-and-bound nodes,
MILP nodes); ``time_limit`` is only a safety stop, and ``stopped_`` says when it fired.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

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

#: Largest task count TAG selection accepts (the search's memory grows as n**2 * k).
MAX_TASKS = 400
#: Largest task count for the bitmask DP (memory: a few arrays of 2**n floats; time: 3**n).
DP_MAX = 20
#: ``solver="auto"`` uses the DP up to this many tasks (milliseconds), the search above.
AUTO_DP_MAX = 12
_LO_BITS = 11  # low bits enumerated as one vectorized block of 3**11 = 177k pairs
SOLVERS = ("auto", "dp", "search", "milp")


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
    """TAG network selection: the best at most ``k`` groups for the TAG value, with a proof.

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
        Safety stop in seconds (default 60). The answer never depends on it unless it fires;
        then ``stopped_`` is True and the best grouping found so far is returned with the
        bound proven so far.
    solver : {"auto", "dp", "search", "milp"}
        See the module docstring. ``"auto"``: the DP up to :data:`AUTO_DP_MAX` tasks, the
        search (local search + LP certificate) above.
    effort : float
        Multiplies every work budget of the search (local search, pricing, branch and bound).
    seed : int
        Seed of the search's random starts and kicks (part of what makes it reproducible).
    progress : callable, optional
        ``progress(fraction, stage)`` while the search runs (``stage``: "local search" or
        "bound"); for progress bars. Called from the fitting thread.

    Attributes
    ----------
    groups_ : Grouping
        Chosen groups (canonical order).
    score_ : float
        TAG value of ``groups_`` (mean over tasks of the best group score).
    optimal_ : bool
        True when ``groups_`` is proven optimal.
    upper_bound_ : float
        Proven upper bound on the best TAG value.
    gap_ : float
        ``upper_bound_ - score_`` (value units; 0 when optimal).
    relative_gap_ : float
        ``gap_ / |score_|``: the best grouping is at most this fraction better (inf when
        ``score_`` is 0 and the gap is not).
    greedy_score_ : float or None
        TAG value of the greedy seed of the search (the answer is never below it).
    solver_ : str
        What produced the answer: ``"dp"``, ``"search"``, ``"milp"`` or ``"trivial"``.
    stopped_ : bool
        The wall-clock safety stop fired (the answer may then depend on machine speed).
    warning_ : str or None
        Set when the safety stop fired: what that means for the answer.
    work_ : dict
        Work spent (served sets valued, pricing rounds, branch-and-bound nodes, ...).
    elapsed_ : float
        Seconds spent.

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
        effort: float = 1.0,
        seed: int = 0,
        progress: Callable[[float, str], None] | None = None,
    ) -> None:
        self.k = k
        self.allow_singletons = allow_singletons
        self.disjoint = disjoint
        self.time_limit = time_limit
        self.solver = solver
        self.effort = effort
        self.seed = seed
        self.progress = progress

    def _check_params(self, n_tasks: int) -> None:
        check_budget(self.k)
        if self.solver not in SOLVERS:
            raise LabError(
                f"unknown TAG solver {self.solver!r}; choose one of: {', '.join(SOLVERS)}"
            )
        if self.time_limit is not None and not float(self.time_limit) > 0:
            raise LabError(f"time limit must be > 0 seconds, got {self.time_limit}")
        if not float(self.effort) > 0:
            raise LabError(f"effort must be > 0, got {self.effort}")
        if n_tasks > MAX_TASKS:
            raise LabError(
                f"TAG selection handles at most {MAX_TASKS} tasks, got {n_tasks}; "
                "use hierarchical or threshold grouping for more"
            )
        if self.solver == "dp" and n_tasks > DP_MAX:
            raise LabError(
                f"the DP solver handles at most {DP_MAX} tasks (it tabulates all 2^n groups), "
                f"got {n_tasks}; use the default solver"
            )

    def _fit(self, A: AffinityMatrix, tasks: list[str]) -> Grouping:
        n = len(tasks)
        t0 = time.perf_counter()
        self.upper_bound_: float
        self.stopped_ = False
        self.greedy_score_: float | None = None
        self.work_: dict[str, object] = {}
        if n == 1:
            self.solver_ = "trivial"
            self._finish(A, tasks, (frozenset(tasks),), SINGLETON_SCORE, t0)
            return (frozenset(tasks),)
        k = int(self.k)
        solver = self.solver
        if solver == "auto":
            solver = "dp" if n <= AUTO_DP_MAX else "search"
        clock = _SafetyClock(self.time_limit)
        if solver == "milp":
            try:
                masks, _, bound = _milp_select(
                    A, k, self.allow_singletons, self.disjoint, self.time_limit
                )
                self.solver_ = "milp"
                groups = _masks_to_groups(masks, tasks)
                self._finish(A, tasks, groups, bound / n, t0)
                return groups
            except _Timeout:
                self.stopped_ = True
                solver = "search"
        if solver == "dp":
            try:
                masks, best = _dp_select(
                    A, k, self.allow_singletons, self.disjoint, _Deadline(self.time_limit)
                )
                self.solver_ = "dp"
                groups = _masks_to_groups(masks, tasks)
                self._finish(A, tasks, groups, best / n, t0)
                return groups
            except _Timeout:
                # The safety stop fired inside the DP: the search returns what it can find
                # in a short extra allowance, with its bound.
                self.stopped_ = True
                clock = _SafetyClock(max(1.0, 0.1 * n))
        groups, upper = self._search(A, tasks, k, clock)
        self.solver_ = "search"
        self._finish(A, tasks, groups, upper / n, t0)
        return groups

    def _search(
        self, A: np.ndarray, tasks: list[str], k: int, clock: _SafetyClock
    ) -> tuple[Grouping, float]:
        """Local search, then the LP certificate; returns the groups and the summed bound."""
        from mtl_core.grouping.tag_blocks import block_values
        from mtl_core.grouping.tag_lp import TABLE_MAX, default_nodes, lp_select
        from mtl_core.grouping.tag_search import default_work, local_search_select

        n = A.shape[0]
        effort = float(self.effort)
        opts = {"allow_singletons": self.allow_singletons, "disjoint": self.disjoint}
        hook = self.progress

        def stage(name: str, lo: float, hi: float) -> Callable[[float], None] | None:
            if hook is None:
                return None
            return lambda frac: hook(lo + (hi - lo) * frac, name)

        # The safety stop leaves the bound at least half of the time limit.
        half = _SafetyClock(None)
        half.end = (
            clock.end
            if not math.isfinite(clock.end)
            else (time.perf_counter() + 0.5 * (clock.end - time.perf_counter()))
        )
        labels, _, st = local_search_select(
            A,
            k,
            seed=int(self.seed),
            work=max(1, int(effort * default_work(n, min(k, n), n <= TABLE_MAX))),
            # Where the LP finishes with a proof the search only seeds it: a few starts do.
            max_starts=max(1, int(effort * 12)) if n <= TABLE_MAX else None,
            check=half.check,
            progress=stage("local search", 0.0, 0.5),
            **opts,
        )
        self.greedy_score_ = None if st["greedy"] is None else float(st["greedy"]) / n
        served = [labels == b for b in np.unique(labels)]
        lp = lp_select(
            A,
            k,
            served,
            node_limit=max(1, int(effort * default_nodes(n))),
            rounds=max(5, int(effort * 60)),
            check=clock.check,
            time_left=clock.left if math.isfinite(clock.end) else None,
            progress=stage("bound", 0.5, 1.0),
            **opts,
        )
        self.stopped_ = self.stopped_ or bool(st["stopped"]) or bool(lp.stats["stopped"])
        self.work_ = {
            "local_search_sets": st["work"],
            "local_search_starts": st["starts"],
            "pricing_rounds": lp.stats["rounds"],
            "columns": lp.stats["columns"],
            "bnb_nodes": lp.stats["bnb_nodes"],
        }
        bits = np.array(lp.columns, dtype=bool)
        if self.disjoint:
            group_bits = bits
        else:
            _, group_bits = block_values(A, bits, **opts)
        groups = canonical_grouping(
            {frozenset(tasks[i] for i in np.flatnonzero(row)) for row in group_bits}
        )
        return groups, lp.upper

    def _finish(
        self, A: np.ndarray, tasks: list[str], groups: Grouping, bound: float, t0: float
    ) -> None:
        value = tag_value(A, tasks, groups)
        if self.stopped_:
            self.warning_ = (
                f"the search reached its {float(self.time_limit):g} s safety limit before "
                "finishing its work budget, so this is the best grouping found by then (on a "
                "faster or quieter machine it may be better); the bound still holds"
            )
        # Summation order differs between the search, the LP and tag_value; allow for
        # rounding (the LP's pricing tolerance is 1e-9 relative per round).
        tol = 1e-8 * max(1.0, abs(value))
        self.upper_bound_ = max(float(bound), value)
        if self.upper_bound_ - value <= tol:
            self.upper_bound_ = value
        self.gap_ = self.upper_bound_ - value
        self.optimal_ = self.gap_ == 0.0
        if self.gap_ == 0.0:
            self.relative_gap_ = 0.0
        else:
            self.relative_gap_ = self.gap_ / abs(value) if value != 0 else math.inf
        self.elapsed_ = time.perf_counter() - t0


class _SafetyClock:
    """Wall-clock safety stop: ``check()`` raises ``SafetyStop`` once ``limit`` s have passed."""

    def __init__(self, limit: float | None) -> None:
        self.end = math.inf if limit is None else time.perf_counter() + float(limit)

    def check(self) -> None:
        if time.perf_counter() > self.end:
            from mtl_core.grouping.tag_search import SafetyStop

            raise SafetyStop

    def left(self) -> float:
        return self.end - time.perf_counter()


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
        for part in set_partitions(list(range(n))):
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


def set_partitions(items: list[Any]) -> Iterator[list[list[Any]]]:
    """Every partition of ``items`` into non-empty blocks (Bell-number many; small n only)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in set_partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1 :]
        yield [[first]] + part
