"""Served-set values for TAG selection: what the best single group can do for a set of tasks.

In a TAG selection every task is *served* by its best group; the served sets partition the
tasks. A served set ``P`` is best served by the group ``G ⊇ P`` maximising
``sum_{t in P} score(G, t)`` (``score(G, t) = mean_{i in G, i != t} A[i, t]``); call that value
``f(P)``. Selection is then "partition the tasks into at most k blocks maximising the summed
``f``" (see :mod:`mtl_core.grouping.tag`).

``f(P)`` needs no search over supersets. With ``p = |P|`` and ``W(P) = sum_{i != t in P}
A[i, t]``, adding extra members ``E`` (not served) gives ``(W(P) + sum_{i in E} c_i) / (p - 1 +
|E|)`` where ``c_i = sum_{t in P} A[i, t]`` is what source i does for the whole set. That ratio
is maximised by the extras with ``c_i`` above the optimal ratio itself, which Dinkelbach's
iteration finds exactly in a few vectorized passes (ratio -> extras above it -> new ratio; the
extras only shrink after the first pass). So ``f`` costs ``O(n)`` per set instead of the
``2**(n - p)`` supersets, and every set can be valued at any n.

The disjoint-partition variant values a block as the group itself: ``f(P) = W(P) / (p - 1)``.
"""

from __future__ import annotations

import numpy as np

from mtl_core.grouping.base import SINGLETON_SCORE

#: Ratio comparisons use this relative tolerance, so near-ties never depend on rounding.
_TIE = 1e-12


def masks_to_bits(masks: np.ndarray, n: int) -> np.ndarray:
    """``(B,)`` integer bitmasks (n <= 62) -> ``(B, n)`` bool membership."""
    return ((np.asarray(masks, dtype=np.int64)[:, None] >> np.arange(n)) & 1).astype(bool)


def block_values(
    A: np.ndarray,
    bits: np.ndarray,
    *,
    allow_singletons: bool = False,
    disjoint: bool = False,
    C: np.ndarray | None = None,
    want_groups: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Value ``f(P)`` of each served set and the group that achieves it.

    Parameters
    ----------
    A : (n, n) array
        Affinity, ``A[i, j]`` = effect of source task i's update on target task j.
    bits : (B, n) bool
        Served sets, one per row.
    allow_singletons : bool
        A task may be trained alone (it then scores ``SINGLETON_SCORE`` = 0).
    disjoint : bool
        Partition variant: the group is the served set itself.
    C : (B, n) array, optional
        ``C[b, i] = sum_{t in P_b} A[i, t]`` if already known (saves a matrix product).
    want_groups : bool
        Also return the serving groups (False: values only, faster).

    Returns
    -------
    values : (B,) float
        ``f(P)`` summed over the served tasks (not divided by n); ``-inf`` where no group
        can serve the set (empty, or a lone task in the disjoint variant without singletons).
    groups : (B, n) bool
        The serving group ``G ⊇ P`` (ties: the smallest such group).
    """
    bits = np.asarray(bits, dtype=bool)
    if C is None:
        C = bits.astype(np.float64) @ A.T
    p = bits.sum(axis=1)
    W = np.where(bits, C - np.diagonal(A), 0.0).sum(axis=1)
    n = bits.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        base = np.where(p >= 2, W / (p - 1), -np.inf)
    if disjoint:
        values = base
        if allow_singletons:
            values[p == 1] = SINGLETON_SCORE
        return values, (bits.copy() if want_groups else None)
    # Extras: a prefix of the outside sources sorted by what they do for the set (module doc).
    cand = np.where(bits, -np.inf, C)
    if want_groups:
        order = np.argsort(-cand, axis=1, kind="stable")
        top = np.take_along_axis(cand, order, axis=1)
    else:
        cand.sort(axis=1)
        top = cand[:, ::-1]
    ratios = np.cumsum(top, axis=1)
    ratios += W[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios /= (p - 1)[:, None] + np.arange(1, n + 1)
    ratios[np.isnan(ratios)] = -np.inf
    values = np.maximum(ratios.max(axis=1), base)
    if allow_singletons:
        lone = p == 1
        values[lone] = np.maximum(values[lone], SINGLETON_SCORE)
    values[p == 0] = -np.inf
    if not want_groups:
        return values, None
    # The smallest optimal group: the shortest prefix within rounding of the best ratio.
    near = (values - _TIE * np.maximum(1.0, np.abs(values)))[:, None]
    alone_ok = base >= near[:, 0]
    if allow_singletons:
        alone_ok |= (p == 1) & (SINGLETON_SCORE >= near[:, 0])
    m = np.where(alone_ok, 0, np.argmax(ratios >= near, axis=1) + 1)
    groups = bits.copy()
    rows = np.repeat(np.arange(len(m)), m)
    if len(rows):
        cols = order[rows, np.concatenate([np.arange(j) for j in m])]
        groups[rows, cols] = True
    return values, groups


def served_table(
    A: np.ndarray,
    *,
    allow_singletons: bool = False,
    disjoint: bool = False,
    check=None,
) -> np.ndarray:
    """``f(P)`` for every bitmask ``P`` over the n tasks: shape ``(2**n,)``, ``f[0] = -inf``.

    ``2**n`` floats: meant for n up to about 24 (128 MiB). ``check()``, if given, is called
    between blocks (a safety stop may raise there). Work: ``O(2**n * n log n)``.
    """
    n = A.shape[0]
    lb = min(n, 14)
    h = n - lb
    lo_bits = masks_to_bits(np.arange(1 << lb), lb)
    hi_bits = masks_to_bits(np.arange(1 << h), h)
    lo_f, hi_f = lo_bits.astype(np.float64), hi_bits.astype(np.float64)
    # C[P, i] = sum_{t in P} A[i, t] (source i onto the set), split by low / high target bits.
    C_lo = lo_f @ A[:, :lb].T
    C_hi = hi_f @ A[:, lb:].T
    d = np.diagonal(A)
    # W(P) = sum_{i != t in P} A[i, t] = S_lo + S_hi + cross terms - trace.
    S_lo = (C_lo[:, :lb] * lo_f).sum(1) - lo_f @ d[:lb]
    S_hi = (C_hi[:, lb:] * hi_f).sum(1) - hi_f @ d[lb:]
    pop = lo_f.sum(1)
    out = np.empty(1 << n)
    size = 1 << lb
    member_inf = np.where(lo_bits, -np.inf, 0.0)
    for ph in range(1 << h):
        if check is not None:
            check()
        W = S_lo + S_hi[ph] + C_lo[:, lb:] @ hi_f[ph] + lo_f @ C_hi[ph, :lb]
        p = pop + hi_f[ph].sum()
        blk = out[ph * size : (ph + 1) * size]
        if disjoint:
            with np.errstate(divide="ignore", invalid="ignore"):
                np.divide(W, p - 1, out=blk)
        else:
            cand = C_lo + C_hi[ph]
            cand[:, :lb] += member_inf
            cand[:, lb:][:, hi_bits[ph]] = -np.inf
            cand.sort(axis=1)
            top = cand[:, ::-1]
            np.cumsum(top, axis=1, out=top)
            top += W[:, None]
            # prefix m (1..n) over p - 1 + m members besides each served task
            with np.errstate(divide="ignore", invalid="ignore"):
                top /= (p - 1)[:, None] + np.arange(1, n + 1)
                best = top.max(axis=1)
                base = W / (p - 1)
            np.maximum(best, np.where(p >= 2, base, -np.inf), out=blk)
        blk[p < 2] = -np.inf
    out[0] = -np.inf
    # Lone served tasks (n of them) take the general path: best partner, or alone.
    single = 1 << np.arange(n)
    out[single], _ = block_values(
        A,
        masks_to_bits(single, n),
        allow_singletons=allow_singletons,
        disjoint=disjoint,
        want_groups=False,
    )
    return out


def subset_sums(weights: np.ndarray) -> np.ndarray:
    """``sum_{t in P} weights[t]`` for every bitmask P, shape ``(2**n,)`` (no matrix product)."""
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    lb = min(n, 14)
    lo = masks_to_bits(np.arange(1 << lb), lb).astype(np.float64) @ w[:lb]
    hi = masks_to_bits(np.arange(1 << (n - lb)), n - lb).astype(np.float64) @ w[lb:]
    return (hi[:, None] + lo[None, :]).reshape(-1)
