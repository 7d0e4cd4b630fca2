"""Exact TAG selection for small task counts: the bitmask DP and the MILP cross-check.

Fifty et al. (NeurIPS 2021) §3.3 choose at most k groups by enumerating every set of k
candidate groups. The served-set reduction (:mod:`mtl_core.grouping.tag`) turns that into
"partition the tasks into at most k blocks maximising the summed block value ``f``"; both
``f`` (a max over supersets) and the partition (a max-plus convolution over submasks) are
subset dynamic programmes over bitmasks with ``3**n`` (set, subset) pairs, enumerated here in
vectorized numpy blocks (the low 11 bits as one precomputed pair array, the high
bits as an outer loop). :func:`milp_select` solves the same problem as a facility-location (or
set-partitioning) integer programme with HiGHS, as a cross-check.

Both honour a :class:`~mtl_core.grouping.deadline.Deadline` safety stop only: the DP raises
:class:`~mtl_core.grouping.deadline.SafetyStop`, the MILP reports that HiGHS hit its limit.
"""

from __future__ import annotations

import numpy as np

from mtl_core.errors import LabError
from mtl_core.grouping.base import SINGLETON_SCORE
from mtl_core.grouping.deadline import Deadline, SafetyStop

_LO_BITS = 11  # low bits enumerated as one vectorized block of 3**11 = 177k pairs


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
    A: np.ndarray, blk: _Blocks, allow_singletons: bool, deadline: Deadline
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


def _partition_layer(f: np.ndarray, prev: np.ndarray, n: int, deadline: Deadline) -> np.ndarray:
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


def dp_select(
    A: np.ndarray, k: int, allow_singletons: bool, disjoint: bool, deadline: Deadline
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


def _partition_select(f: np.ndarray, n: int, k: int, deadline: Deadline) -> tuple[list[int], float]:
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
    served, best = _partition_select(f, n, k, Deadline(None))
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


def milp_select(
    A: np.ndarray, k: int, allow_singletons: bool, disjoint: bool, deadline: Deadline
) -> tuple[list[int], float, float, bool]:
    """Facility-location (or set-partitioning) integer program over all ``2**n`` candidate
    groups, solved by HiGHS (``scipy.optimize.milp``): a cross-check of the DP.

    Returns ``(group masks, objective, dual bound, stopped)`` as summed scores; ``stopped`` is
    True when HiGHS reached the deadline's time (the safety stop) before proving optimality.
    Raises :class:`~mtl_core.grouping.deadline.SafetyStop` if it stopped with no selection.
    """
    from scipy import sparse
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = A.shape[0]
    masks, S = candidate_scores(A, allow_singletons)
    m = len(masks)
    member = np.isfinite(S)
    g_idx, t_idx = np.nonzero(member)
    opts: dict[str, object] = {"mip_rel_gap": 0.0, "disp": False}
    left = deadline.remaining()
    if left is not None:
        opts["time_limit"] = max(0.01, left)
    if disjoint:
        w = np.where(member, S, 0.0).sum(1)
        cover = sparse.csr_matrix((np.ones(len(g_idx)), (t_idx, g_idx)), shape=(n, m))
        cons = [
            LinearConstraint(cover, 1, 1),
            LinearConstraint(np.ones((1, m)), 0, k),
        ]
        res = milp(-w, integrality=np.ones(m), bounds=Bounds(0, 1), constraints=cons, options=opts)
        if res.x is None:
            raise SafetyStop
        chosen = [int(masks[g]) for g in np.flatnonzero(res.x > 0.5)]
        return chosen, -float(res.fun), -float(res.mip_dual_bound), res.status != 0
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
        raise SafetyStop
    chosen = [int(masks[g]) for g in np.flatnonzero(res.x[:m] > 0.5)]
    return chosen, -float(res.fun), -float(res.mip_dual_bound), res.status != 0
