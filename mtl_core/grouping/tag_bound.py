"""Upper bounds and pricing for TAG selection's column generation (:mod:`mtl_core.grouping.tag_lp`).

TAG selection (Fifty et al., NeurIPS 2021 §3.3) as a set-partitioning LP over served sets P
(:mod:`mtl_core.grouping.tag_blocks`) has duals ``pi`` (one price per task) and ``mu`` (the
budget k). For any ``pi``, every selection of at most k served sets has value at most

    sum_t pi_t + k * max(0, Z(pi)),    Z(pi) = max_P f(P) - pi(P)

(a Lagrangian bound). This module bounds and searches ``Z``:

* :func:`trivial_bound` (every task in its own best group) and :func:`root_bound` (the
  branch-and-bound root, no search), with :func:`best_root_prices` (the prices that make the
  root bound smallest, by one HiGHS LP);
* :func:`bnb_pricing`: a best-first branch and bound over groups G (``Z = max_G sum_{t in G}
  (score(G, t) - pi_t)^+``), budgeted in nodes, anytime (the largest open bound still bounds
  ``Z`` when the budget runs out);
* heuristic pricing (flip local search) and, up to ``tag_lp.TABLE_MAX`` tasks, exact scans of
  the whole subset table.

Deterministic: every loop is bounded by a count (steps, nodes); the caller's ``check()`` is
only the safety stop (:class:`~mtl_core.grouping.deadline.Deadline`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

from mtl_core.grouping.base import SINGLETON_SCORE
from mtl_core.grouping.tag_blocks import block_values, subset_sums


def heuristic_pricing(
    A: np.ndarray,
    pi: np.ndarray,
    starts: np.ndarray,
    opts: dict[str, bool],
    steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Sets with high ``f(P) - pi(P)``: flip local search (add or drop one task, best first)
    from each start row. Returns each start's final set (bool rows) and its ``f``."""
    cur = np.asarray(starts, dtype=bool).copy()
    n = A.shape[0]
    val, _ = block_values(A, cur, want_groups=False, **opts)
    rc = val - cur @ pi
    eye = np.eye(n, dtype=bool)
    active = np.arange(len(cur))
    for _ in range(steps):
        cand = cur[active][:, None, :] ^ eye[None, :, :]  # flip task j of start s
        flat = cand.reshape(-1, n)
        v, _ = block_values(A, flat, want_groups=False, **opts)
        r = (v - flat @ pi).reshape(len(active), n)
        j = np.argmax(r, axis=1)
        rows = np.arange(len(active))
        better = r[rows, j] > rc[active] + 1e-12 * np.maximum(1.0, np.abs(rc[active]))
        if not better.any():
            break
        rows = rows[better]
        idx = active[rows]
        cur[idx] = cand[rows, j[rows]]
        rc[idx] = r[rows, j[rows]]
        val[idx] = v.reshape(len(active), n)[rows, j[rows]]
        active = idx
    return cur, val


def pricing_starts(
    A: np.ndarray, columns: np.ndarray, x: np.ndarray, pi: np.ndarray, extra: int
) -> np.ndarray:
    """Pricing start points: the LP's support columns (``columns[x > 0]``, bool rows) and the
    ``extra`` task pairs that gain most net of their prices."""
    n = A.shape[0]
    support = columns[x > 1e-9]
    M = A - pi[None, :]  # what source i does for target t, net of t's price
    S = M + M.T
    S[np.diag_indices(n)] = -np.inf
    iu, ju = np.triu_indices(n, 1)
    best = np.argsort(-S[iu, ju], kind="stable")[:extra]
    pairs = np.zeros((len(best), n), dtype=bool)
    pairs[np.arange(len(best)), iu[best]] = True
    pairs[np.arange(len(best)), ju[best]] = True
    return np.concatenate([support, pairs])


def _bnb_nodes_bound(
    A: np.ndarray,
    pi: np.ndarray,
    inn: np.ndarray,
    free: np.ndarray,
    disjoint: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Upper bound on ``max_G sum_{t in G} (score(G, t) - pi_t)^+`` over groups ``G`` (size
    >= 2) with ``inn ⊆ G ⊆ inn | free``, for a batch of nodes ``(N, n)``; in the disjoint
    variant every member counts (no positive part). Returns ``(bound (N,), branching task
    (N,))`` (-1 when no free task is left)."""
    N, n = inn.shape
    inf_ = inn.astype(np.float64)
    n_in = inn.sum(axis=1)
    n_free = free.sum(axis=1)
    a_in = inf_ @ A - inf_ * np.diagonal(A)  # (N, n): sum_{i in In, i != t} A[i, t]
    # Free sources sorted (descending) for every target, as prefix sums: pref[N, j, t].
    src = np.where(free[:, :, None] & ~np.eye(n, dtype=bool)[None], A[None], -np.inf)
    src = -np.sort(-src, axis=1)
    pref = np.concatenate([np.zeros((N, 1, n)), np.cumsum(src, axis=1)], axis=1)
    sizes = np.arange(2, n + 1)  # all group sizes at once: arrays (N, S, n)
    need = sizes[None, :] - n_in[:, None]  # free members still to pick, (N, S)
    ok = (need >= 0) & (need <= n_free[:, None])
    # Partners of t besides In: t in In takes `need` free sources, a free t takes need - 1.
    j_in = np.clip(need, 0, n)[:, :, None].repeat(n, axis=2)
    j_free = np.clip(need - 1, 0, n)[:, :, None].repeat(n, axis=2)
    p_in = np.take_along_axis(pref, j_in, axis=1)
    p_free = np.take_along_axis(pref, j_free, axis=1)
    with np.errstate(invalid="ignore"):
        v = (a_in[:, None, :] + np.where(inn[:, None, :], p_in, p_free)) / (sizes - 1)[
            None, :, None
        ] - pi
        if not disjoint:
            v = np.maximum(v, 0.0)
    v = np.where(np.isfinite(v), v, -np.inf)
    with np.errstate(invalid="ignore"):
        part_in = np.where(inn[:, None, :], v, 0.0).sum(axis=2)
    vf = np.where(free[:, None, :], v, -np.inf)
    top = -np.sort(-vf, axis=2)
    tp = np.concatenate([np.zeros((N, len(sizes), 1)), np.cumsum(top, axis=2)], axis=2)
    part_free = np.take_along_axis(tp, np.clip(need, 0, n)[:, :, None], axis=2)[:, :, 0]
    with np.errstate(invalid="ignore"):
        b = np.where(ok, part_in + part_free, -np.inf)
    b = np.where(np.isnan(b), -np.inf, b)
    best_s = np.argmax(b, axis=1)
    bound = b[np.arange(N), best_s]
    # Branch on the free task that contributes most at the best size.
    branch = np.argmax(vf[np.arange(N), best_s], axis=1)
    branch = np.where(n_free > 0, branch, -1)
    no_pick = (need[np.arange(N), best_s] <= 0) | ~np.isfinite(
        vf[np.arange(N), best_s, np.maximum(branch, 0)]
    )
    left = no_pick & (n_free > 0)
    if left.any():
        branch[left] = np.argmax(free[left], axis=1)
    return bound, branch


def bnb_pricing(
    A: np.ndarray,
    pi: np.ndarray,
    opts: dict[str, bool],
    *,
    floor: float,
    node_limit: int,
    batch: int = 32,
    check: Callable[[], None] | None = None,
) -> tuple[float, list[tuple[float, np.ndarray]], int, bool]:
    """Best-first branch and bound for ``Z = max_P f(P) - pi(P)`` (groups of two or more;
    lone tasks are priced exactly by the caller).

    Nodes whose bound is at most ``floor`` (or the best found) are pruned. The search also
    stops early when a tenth of the budget lowers the largest open bound by less than 1% of
    its distance to the floor (a stalled search only burns the budget). Returns
    ``(upper bound on max(Z, floor), found [(reduced value, served set)], nodes, complete)``.
    """
    n = A.shape[0]
    disjoint = opts["disjoint"]
    root_in = np.zeros((1, n), dtype=bool)
    root_free = np.ones((1, n), dtype=bool)
    b, br = _bnb_nodes_bound(A, pi, root_in, root_free, disjoint)
    heap: list[tuple[float, int, np.ndarray, np.ndarray, int]] = []
    counter = 0
    best = floor
    found: list[tuple[float, np.ndarray]] = []
    if b[0] > best:
        heapq.heappush(heap, (-b[0], counter, root_in[0], root_free[0], int(br[0])))
    nodes = 1
    every = max(200, node_limit // 10)
    mark_nodes, mark_bound = nodes, float(b[0])
    while heap and nodes < node_limit:
        if check is not None:
            check()
        if nodes - mark_nodes >= every:
            open_bound = -heap[0][0]
            if mark_bound - open_bound < 0.01 * (mark_bound - best):
                break
            mark_nodes, mark_bound = nodes, open_bound
        take = []
        while heap and len(take) < batch:
            item = heapq.heappop(heap)
            if -item[0] <= best:
                heap.clear()
                break
            take.append(item)
        if not take:
            break
        kids_in, kids_free = [], []
        for _, _, inn, free, j in take:
            if j < 0:
                continue
            f2 = free.copy()
            f2[j] = False
            i2 = inn.copy()
            i2[j] = True
            kids_in += [i2, inn]
            kids_free += [f2, f2]
        if not kids_in:
            continue
        KI, KF = np.array(kids_in), np.array(kids_free)
        nodes += len(KI)
        # Exact value of each child's In set as a group (a feasible column: a lower bound).
        ev = KI.sum(axis=1) >= 2
        if ev.any():
            G = KI[ev]
            members = G.astype(np.float64)
            C = members @ A  # C[g, t] = sum_{i in G} A[i, t]
            score = (C - np.diagonal(A)) / (G.sum(axis=1, keepdims=True) - 1)
            net = np.where(G, score - pi, 0.0)
            if disjoint:
                h = net.sum(axis=1)
                served = G
            else:
                h = np.maximum(net, 0.0).sum(axis=1)
                served = G & (net > 0)
            for hv, sv in zip(h, served):
                if hv > best and sv.any():
                    best = float(hv)
                    found.append((float(hv), sv.copy()))
        bnd, brn = _bnb_nodes_bound(A, pi, KI, KF, disjoint)
        for i in range(len(KI)):
            if bnd[i] > best and brn[i] >= 0:
                counter += 1
                heapq.heappush(heap, (-float(bnd[i]), counter, KI[i], KF[i], int(brn[i])))
    complete = not heap or -heap[0][0] <= best
    upper = best if complete else max(best, -heap[0][0])
    return upper, found, nodes, complete


def _table_blocks(table: np.ndarray, pi: np.ndarray, mu: float):
    """Yield ``(offset, reduced costs)`` for blocks of the subset table (bounded memory)."""
    n = len(pi)
    lb = min(n, 16)
    lo = subset_sums(pi[:lb])
    hi = subset_sums(pi[lb:]) if n > lb else np.zeros(1)
    size = 1 << lb
    for ph in range(len(hi)):
        yield ph * size, table[ph * size : (ph + 1) * size] - lo - (hi[ph] + mu)


def scan_table(
    table: np.ndarray, pi: np.ndarray, mu: float, m: int, tol: float
) -> tuple[float, np.ndarray]:
    """``Z = max_P f(P) - pi(P)`` and up to m sets with reduced cost above ``tol`` (best
    first, ties by mask)."""
    z = -np.inf
    best_idx, best_rc = np.zeros(0, dtype=np.int64), np.zeros(0)
    for off, rc in _table_blocks(table, pi, mu):
        z = max(z, float(rc.max()))
        cand = np.flatnonzero(rc > tol)
        if len(cand):
            best_idx = np.concatenate([best_idx, cand + off])
            best_rc = np.concatenate([best_rc, rc[cand]])
            if len(best_idx) > m:
                order = np.lexsort((best_idx, -best_rc))[:m]
                best_idx, best_rc = best_idx[order], best_rc[order]
    return z + mu, np.sort(best_idx)


def table_above(
    table: np.ndarray, pi: np.ndarray, mu: float, threshold: float, cap: int
) -> np.ndarray:
    """Every mask whose reduced cost is at least ``threshold`` (stops after ``cap``)."""
    out = []
    count = 0
    for off, rc in _table_blocks(table, pi, mu):
        idx = np.flatnonzero(rc >= threshold) + off
        out.append(idx)
        count += len(idx)
        if count >= cap:
            break
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def trivial_bound(A: np.ndarray, allow_singletons: bool) -> float:
    """Every task in its own best group: ``sum_t max_{i != t} A[i, t]`` (or 0 if larger and
    singletons are allowed). No selection of any size can beat it."""
    n = A.shape[0]
    if n == 1:
        return SINGLETON_SCORE
    M = np.where(np.eye(n, dtype=bool), -np.inf, A)
    best = M.max(axis=0)
    if allow_singletons:
        best = np.maximum(best, SINGLETON_SCORE)
    return float(best.sum())


def root_bound(A: np.ndarray, pi: np.ndarray, opts: dict[str, bool]) -> float:
    """Upper bound on ``Z(pi) = max_P f(P) - pi(P)`` without search: the branch-and-bound
    root (every member takes its own best ``s - 1`` sources, the best ``s`` members count),
    and lone tasks when singletons are allowed."""
    n = A.shape[0]
    b, _ = _bnb_nodes_bound(
        A, pi, np.zeros((1, n), dtype=bool), np.ones((1, n), dtype=bool), opts["disjoint"]
    )
    z = float(b[0])
    if opts["allow_singletons"]:
        z = max(z, float(np.max(SINGLETON_SCORE - pi)))
    return z


def best_root_prices(A: np.ndarray, k: int, opts: dict[str, bool]) -> np.ndarray:
    """Prices ``pi`` minimising ``sum(pi) + k * max(0, root_bound(pi))``, by one LP (HiGHS).

    ``root_bound`` is convex in ``pi`` (a max over sizes s of the sum of the s largest of
    ``(m_s(t) - pi_t)^+``, with ``m_s(t)`` the mean of target t's best ``s - 1`` sources), and
    the sum of the s largest entries is ``min_lam s * lam + sum_t (v_t - lam)^+``, so the
    minimisation is a linear programme. Only the prices are kept; the bound is recomputed
    from them exactly (:func:`root_bound`), so solver tolerances cannot make it invalid.
    """
    from scipy import sparse
    from scipy.optimize import linprog

    n = A.shape[0]
    M = np.where(np.eye(n, dtype=bool), -np.inf, A)
    col = -np.sort(-M, axis=0)[:-1]  # (n - 1, n): each target's sources, best first
    m = np.cumsum(col, axis=0) / np.arange(1, n)[:, None]  # m[s - 2, t]
    S = n - 1
    sizes = np.arange(2, n + 1)
    # variables: pi (n), z, lam (S), e (S * n)
    o_z, o_l, o_e = n, n + 1, n + 1 + S
    nv = o_e + S * n
    cost = np.zeros(nv)
    cost[:n], cost[o_z] = 1.0, float(k)
    s_idx = np.repeat(np.arange(S), n)
    t_idx = np.tile(np.arange(n), S)
    e_idx = o_e + np.arange(S * n)
    # s * lam_s + sum_t e_st - z <= 0
    r1 = np.concatenate([np.arange(S), np.arange(S), s_idx])
    c1 = np.concatenate([o_l + np.arange(S), np.full(S, o_z), e_idx])
    v1 = np.concatenate([sizes.astype(float), -np.ones(S), np.ones(S * n)])
    # -e_st - pi_t - lam_s <= -m_st
    rows = np.arange(S * n) + S
    r2 = np.concatenate([rows, rows, rows])
    c2 = np.concatenate([e_idx, t_idx, o_l + s_idx])
    v2 = -np.ones(3 * S * n)
    blocks_r, blocks_c, blocks_v = [r1, r2], [c1, c2], [v1, v2]
    b_ub = [np.zeros(S), -m.reshape(-1)]
    nrows = S + S * n
    if opts["allow_singletons"]:  # lone task t: z >= 0 - pi_t
        r3 = nrows + np.arange(n)
        blocks_r += [r3, r3]
        blocks_c += [np.full(n, o_z), np.arange(n)]
        blocks_v += [-np.ones(n), -np.ones(n)]
        b_ub.append(np.full(n, -SINGLETON_SCORE))
        nrows += n
    A_ub = sparse.csr_matrix(
        (np.concatenate(blocks_v), (np.concatenate(blocks_r), np.concatenate(blocks_c))),
        shape=(nrows, nv),
    )
    # Overlap: values are (.)^+ >= 0, so lam >= 0; disjoint: every member counts, lam free.
    lam_lo = None if opts["disjoint"] else 0.0
    bounds = [(None, None)] * n + [(0, None)] + [(lam_lo, None)] * S + [(0, None)] * (S * n)
    res = linprog(cost, A_ub=A_ub, b_ub=np.concatenate(b_ub), bounds=bounds, method="highs")
    if res.status != 0 or res.x is None:
        return np.full(n, np.nan)
    return np.asarray(res.x[:n])
