"""A plain local search for network selection, the safety net of the exact solver.

When HiGHS's time limit ends a selection MILP (:mod:`.select`) before it proves its answer,
its incumbent can be poor, or missing (on MTG-Net's MIMIC-III table, 27 tasks x 3,185
networks, HOA's predictions at k = 3 under a 30 s limit gave no incumbent at all and the best
of 200 random selections stood in: test score 0.43, where a selection within 8.7% of the bound
scores 1.61). :func:`local_search` finds a good covering selection with a fixed amount of work
(greedy construction, then best-improvement add / drop / swap moves), so an unproven answer
is at least a local optimum and never depends on the machine's speed.
"""

from __future__ import annotations

import numpy as np

#: Most improving moves one search makes (each move evaluates every allowed network).
MAX_MOVES = 200


def _served(F: np.ndarray, rows: list[int], n: int) -> np.ndarray:
    """Each task's best value over ``rows`` of ``F`` (-inf where none holds it)."""
    if not rows:
        return np.full(n, -np.inf)
    return F[rows].max(axis=0)


def _keys(S: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """(covered tasks, oriented total) of each row of served vectors ``S`` (r, n)."""
    fin = np.isfinite(S)
    return fin.sum(axis=1), sign * np.where(fin, S, 0.0).sum(axis=1)


def _best(cov: np.ndarray, tot: np.ndarray, ok: np.ndarray) -> int | None:
    """The index of the lexicographically best (covered, total) among ``ok``; None if none."""
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return None
    c = cov[idx]
    top = idx[c == c.max()]
    return int(top[np.argmax(tot[top])])


def local_search(
    gains: np.ndarray,
    coef: np.ndarray,
    cap: float,
    allowed: np.ndarray,
    *,
    maximize: bool = True,
    start: list[int] | None = None,
    max_moves: int = MAX_MOVES,
) -> tuple[list[int], float] | None:
    """A covering selection of ``allowed`` networks with ``sum(coef[chosen]) <= cap`` that no
    single add, drop or swap improves, each task served by its best chosen network.

    ``gains`` (m, n): oriented values (higher is better for serving), NaN where a task is not in
    a network; ``coef`` (m,) each network's weight in the limit (1 for "at most k", its cost
    under a budget) and ``cap`` the limit. ``maximize``: the served total is maximised (the
    best selection) or minimised (the worst). Moves are ranked by tasks covered, then the
    total; from ``start`` (rows within the limit, e.g. a random covering selection) or, by
    default, from the empty selection (which greedy adds then build up), best-improvement
    moves, at most ``max_moves``: deterministic, the same work on any machine. The worst
    selection wants a ``start``: from the empty one, a network holding every task covers at
    once and no single move leaves it. Returns ``(rows, served total)``, or None when the
    search covers no selection of every task.
    """
    m, n = gains.shape
    sign = 1.0 if maximize else -1.0
    cand = np.flatnonzero(allowed)
    if len(cand) == 0:
        return None
    F = np.where(np.isnan(gains[cand]), -np.inf, gains[cand])  # (c, n)
    w = coef[cand].astype(float)
    eps = 1e-12
    pos = {int(r): q for q, r in enumerate(cand)}
    sel: list[int] = sorted({pos[int(r)] for r in (start or []) if int(r) in pos})  # in cand
    used = float(w[sel].sum())
    if used > cap + 1e-9:
        sel, used = [], 0.0

    def key_of(rows: list[int]) -> tuple[int, float]:
        c, t = _keys(_served(F, rows, n)[None, :], sign)
        return int(c[0]), float(t[0])

    def better(a: tuple[int, float], b: tuple[int, float]) -> bool:
        return a[0] > b[0] or (a[0] == b[0] and a[1] > b[1] + eps)

    current = key_of(sel)
    for _ in range(max_moves):
        best_key, best_move = current, None
        inside = np.zeros(len(cand), dtype=bool)
        inside[sel] = True
        # add one network
        base = _served(F, sel, n)
        ok = ~inside & (used + w <= cap + 1e-9)
        cov, tot = _keys(np.maximum(base[None, :], F), sign)
        j = _best(cov, tot, ok)
        if j is not None and better((int(cov[j]), float(tot[j])), best_key):
            best_key, best_move = (int(cov[j]), float(tot[j])), ("add", None, j)
        for p in list(sel):
            rest = [q for q in sel if q != p]
            # drop p
            kd = key_of(rest)
            if better(kd, best_key):
                best_key, best_move = kd, ("drop", p, None)
            # swap p for another network
            base = _served(F, rest, n)
            ok = ~inside & (used - w[p] + w <= cap + 1e-9)
            cov, tot = _keys(np.maximum(base[None, :], F), sign)
            j = _best(cov, tot, ok)
            if j is not None and better((int(cov[j]), float(tot[j])), best_key):
                best_key, best_move = (int(cov[j]), float(tot[j])), ("swap", p, j)
        if best_move is None:
            break
        kind, p, j = best_move
        if p is not None:
            sel.remove(p)
            used -= w[p]
        if j is not None:
            sel.append(j)
            used += w[j]
        current = best_key
    if current[0] < n:
        return None
    rows = sorted(int(cand[q]) for q in sel)
    return rows, sign * current[1]


__all__ = ["MAX_MOVES", "local_search"]
