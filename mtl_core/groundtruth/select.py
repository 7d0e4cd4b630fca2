"""Exact network selection on measured results, and estimators scored against it.

Two selection rules (``docs/ground-truth.md``, "Selection rules"):

- **at most k networks** (TAG's rule, Fifty et al. 2021, overlap allowed): choose at most ``k``
  networks so that every task is in at least one; each task is *served* by the chosen network
  with its best value on the selection table; the value is the sum of the served values.
- **budget B** (HOA's rule, Standley et al. 2020, Sec. 3.3): the same with costs (half-size
  single-task networks 0.5, full-size 1) summing to at most ``B``.

Both are solved exactly as one mixed-integer program (HiGHS through
:func:`scipy.optimize.milp`): a binary ``x_j`` per network and an assignment ``y_ji`` per
(network, task in it) cell, ``sum_j y_ji = 1`` per task, ``y_ji <= x_j``, and the count or cost
constraint. With ``x`` fixed the assignment is a choice of one network per task, so the best
``y`` is "each task's best chosen network": the program's optimum is the rule's optimum.
Networks dominated for the rule (another network of no greater cost holds the same tasks or
more and is at least as good for every one of them) are dropped first; this never changes
the optimum value.

The "worst" selection minimises the served value (``w_i >= g_ji - M_i (1 - x_j)``, a cover
constraint per task) exactly the same way.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from mtl_core.errors import LabError
from mtl_core.groundtruth.local import local_search

#: Seconds one MILP may run before it returns its best selection unproven.
DEFAULT_TIME_LIMIT = 120.0


@dataclass
class Choice:
    """A selection: network rows, the solver's objective (oriented: higher is better),
    whether it is proven optimal and the relative gap the solver reports."""

    networks: list[int]
    objective: float
    proven: bool
    gap: float
    seconds: float = 0.0


def _cells(values: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(network, task) index arrays of the measured cells of the allowed networks."""
    present = ~np.isnan(values) & allowed[:, None]
    j, i = np.nonzero(present)
    return j, i


def _limit_row(m: int, costs: np.ndarray, k: int | None, budget: float | None):
    if k is not None:
        return np.ones(m), float(k)
    return costs.astype(float), float(budget)  # type: ignore[arg-type]


def dominated(gains: np.ndarray, costs: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Networks another allowed network dominates (same tasks or more, cost no greater,
    at least as good for each of its tasks; ties broken by row so one copy survives).

    ``gains`` (m, n) oriented higher-is-better, NaN = absent. Returns a bool mask (m,).
    """
    m = gains.shape[0]
    out = np.zeros(m, dtype=bool)
    present = ~np.isnan(gains)
    filled = np.where(present, gains, -np.inf)
    count = present.sum(axis=1)
    for j in np.flatnonzero(allowed):
        cols = present[j]
        cand = allowed & (costs <= costs[j]) & present[:, cols].all(axis=1)
        cand[j] = False
        if not cand.any():
            continue
        rows = np.flatnonzero(cand)
        sub = filled[np.ix_(rows, np.flatnonzero(cols))]
        ge = (sub >= gains[j, cols]).all(axis=1)
        strict = (
            (sub > gains[j, cols]).any(axis=1)
            | (costs[rows] < costs[j])
            | (count[rows] > count[j])
            | (rows < j)
        )
        # the relation "ge and strict" is acyclic, so a dominated network always keeps an
        # undominated dominator: dropping every dominated one keeps the optimum
        out[j] = bool((ge & strict).any())
    return out


def best_selection(
    gains: np.ndarray,
    costs: np.ndarray,
    *,
    k: int | None = None,
    budget: float | None = None,
    allowed: np.ndarray | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    prune: bool = True,
    starts: list[list[int]] | None = None,
) -> Choice | None:
    """The selection maximising the served total of ``gains`` (exact MILP, see module doc).

    ``gains`` (m, n): oriented higher-is-better values, NaN where a task is not in a network;
    ``costs`` (m,); exactly one of ``k`` (most networks) and ``budget`` (most total cost);
    ``allowed`` (m,) bool restricts the candidates. Returns None when no allowed selection
    covers every task. ``proven`` is False when the time limit stopped HiGHS; the selection is
    then the better of HiGHS's incumbent and a local search's (:func:`.local.local_search`, or
    the best of :data:`FALLBACK_DRAWS` random covering selections), ``gap`` its relative gap
    to HiGHS's bound (infinite when HiGHS stopped before its first selection). ``starts``:
    further selections (network rows within the limit, e.g. the answer at a smaller k) the
    local search also starts from.
    """
    t0 = time.perf_counter()
    m, n = gains.shape
    allowed = np.ones(m, dtype=bool) if allowed is None else allowed.copy()
    allowed &= ~np.isnan(gains).all(axis=1)
    coef, cap = _limit_row(m, costs, k, budget)
    if prune:
        allowed &= ~dominated(gains, coef, allowed)
    cj, ci = _cells(gains, allowed)
    if len(set(ci.tolist())) < n:
        return None
    nx, ny = m, len(cj)
    c = np.concatenate([np.zeros(nx), -gains[cj, ci]])
    # sum_j y_ji = 1 per task
    a_cover = sparse.csr_matrix((np.ones(ny), (ci, nx + np.arange(ny))), shape=(n, nx + ny))
    # y_ji - x_j <= 0
    rows = np.arange(ny)
    a_link = sparse.csr_matrix(
        (
            np.concatenate([np.ones(ny), -np.ones(ny)]),
            (np.concatenate([rows, rows]), np.concatenate([nx + rows, cj])),
        ),
        shape=(ny, nx + ny),
    )
    a_lim = sparse.csr_matrix(np.concatenate([coef, np.zeros(ny)])[None, :])
    ub = np.concatenate([allowed.astype(float), np.ones(ny)])
    res = milp(
        c,
        constraints=[
            LinearConstraint(a_cover, 1.0, 1.0),
            LinearConstraint(a_link, -np.inf, 0.0),
            LinearConstraint(a_lim, -np.inf, cap + 1e-9),
        ],
        integrality=np.concatenate([np.ones(nx), np.zeros(ny)]),
        bounds=Bounds(np.zeros(nx + ny), ub),
        options={"time_limit": float(time_limit), "mip_rel_gap": 0.0},
    )

    def fallback():
        sampled = _sampled(gains, costs, allowed, k, budget, best=True)
        found = local_search(gains, coef, cap, allowed, maximize=True)
        # the best random selection and the given starts, improved by the same moves
        for start in ([sampled[0]] if sampled is not None else []) + list(starts or []):
            found = _better(found, local_search(gains, coef, cap, allowed, start=start))
        return _better(found, sampled)

    return _choice(res, nx, t0, fallback)


def _better(a, b):
    """The higher-valued of two ``(rows, value)`` selections (either may be None)."""
    if a is None or (b is not None and b[1] > a[1]):
        return b
    return a


#: Random covering selections tried when HiGHS stops before its first selection.
FALLBACK_DRAWS = 200


def _sampled(
    gains: np.ndarray,
    costs: np.ndarray,
    allowed: np.ndarray,
    k: int | None,
    budget: float | None,
    *,
    best: bool,
) -> tuple[list[int], float] | None:
    """The best (or worst) of :data:`FALLBACK_DRAWS` random covering selections of the
    allowed networks, and its served total; None when no draw covers every task."""
    present = ~np.isnan(gains) & allowed[:, None]
    picks = random_selections(costs, present, k=k, budget=budget, draws=FALLBACK_DRAWS)
    if not picks:
        return None
    totals = [served_total(gains, p, gains) for p in picks]
    i = int(np.argmax(totals) if best else np.argmin(totals))
    return picks[i], float(totals[i])


def _choice(res, nx: int, t0: float, fallback) -> Choice | None:
    """The solver's selection. When the time limit stopped HiGHS, ``fallback()`` (the local
    search of :mod:`.local`, and random covering selections) is run too and the better of the
    two is returned, unproven: the gap is against HiGHS's bound (infinite when HiGHS stopped
    before its first selection). LabError if there is no selection at all."""
    if res.x is None:
        if res.status == 2:  # infeasible: no selection covers every task within the limit
            return None
        found = fallback() if res.status == 1 else None  # 1: time or iteration limit
        if found is None:
            raise LabError(f"the selection solver stopped without a selection: {res.message}")
        return Choice(found[0], found[1], False, math.inf, time.perf_counter() - t0)
    chosen = [int(j) for j in np.flatnonzero(res.x[:nx] > 0.5)]
    value = -float(res.fun)
    gap = float(getattr(res, "mip_gap", 0.0) or 0.0)
    proven = res.status == 0
    if not proven:
        found = fallback()
        if found is not None and found[1] > value + 1e-12:  # the solver's incumbent was worse
            bound = getattr(res, "mip_dual_bound", None)
            chosen, value = list(found[0]), float(found[1])
            gap = (
                abs(-float(bound) - value) / max(abs(value), 1e-12)
                if bound is not None and math.isfinite(float(bound))
                else math.inf
            )
    return Choice(chosen, value, proven, 0.0 if proven else gap, time.perf_counter() - t0)


def worst_selection(
    gains: np.ndarray,
    costs: np.ndarray,
    *,
    k: int | None = None,
    budget: float | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    starts: list[list[int]] | None = None,
) -> Choice | None:
    """The selection minimising the served total (each task still served by its best chosen
    network): ``min sum_i w_i``, ``w_i >= g_ji - M_i (1 - x_j)``, every task covered, the count
    or cost limit. Objective returned as the (oriented) served total. When the time limit
    stops HiGHS, the worse of its incumbent and a local search's (from the worst of
    :data:`FALLBACK_DRAWS` random covering selections and from ``starts``) is returned."""
    t0 = time.perf_counter()
    m, n = gains.shape
    allowed = ~np.isnan(gains).all(axis=1)
    cj, ci = _cells(gains, allowed)
    if len(set(ci.tolist())) < n:
        return None
    lo = np.array([np.nanmin(gains[:, i]) for i in range(n)])
    g = gains[cj, ci]
    big = g - lo[ci]
    ny = len(cj)
    c = np.concatenate([np.zeros(m), np.ones(n)])
    # w_i - M x_j >= g - M
    rows = np.arange(ny)
    a_w = sparse.csr_matrix(
        (
            np.concatenate([np.ones(ny), -big]),
            (np.concatenate([rows, rows]), np.concatenate([m + ci, cj])),
        ),
        shape=(ny, m + n),
    )
    a_cov = sparse.csr_matrix((np.ones(ny), (ci, cj)), shape=(n, m + n))
    coef, cap = _limit_row(m, costs, k, budget)
    a_lim = sparse.csr_matrix(np.concatenate([coef, np.zeros(n)])[None, :])
    res = milp(
        c,
        constraints=[
            LinearConstraint(a_w, g - big, np.inf),
            LinearConstraint(a_cov, 1.0, np.inf),
            LinearConstraint(a_lim, -np.inf, cap + 1e-9),
        ],
        integrality=np.concatenate([np.ones(m), np.zeros(n)]),
        bounds=Bounds(
            np.concatenate([np.zeros(m), lo]),
            np.concatenate([allowed.astype(float), np.full(n, np.inf)]),
        ),
        options={"time_limit": float(time_limit), "mip_rel_gap": 0.0},
    )

    def fallback():
        sampled = _sampled(gains, costs, allowed, k, budget, best=False)
        found = sampled
        # the worst random selection and the given starts, made worse by local moves
        for start in ([sampled[0]] if sampled is not None else []) + list(starts or []):
            got = local_search(gains, coef, cap, allowed, maximize=False, start=start)
            if got is not None and (found is None or got[1] < found[1]):
                found = got
        return None if found is None else (found[0], -found[1])  # negated back below

    ch = _choice(res, m, t0, fallback)
    if ch is not None:
        ch.objective = -ch.objective
    return ch


def served_total(values: np.ndarray, chosen: list[int], serve_by: np.ndarray) -> float:
    """Sum over tasks of ``values`` at each task's serving network: the chosen network with
    its best ``serve_by`` (oriented, higher is better). NaN if a task is not covered."""
    if not chosen:
        return float("nan")
    sub = serve_by[chosen]
    filled = np.where(np.isnan(sub), -np.inf, sub)
    if np.isneginf(filled).all(axis=0).any():
        return float("nan")
    best = np.argmax(filled, axis=0)
    rows = np.asarray(chosen)[best]
    return float(values[rows, np.arange(values.shape[1])].sum())


def random_selections(
    costs: np.ndarray,
    present: np.ndarray,
    *,
    k: int | None = None,
    budget: float | None = None,
    draws: int = 100,
    seed: int = 0,
    tries: int = 1000,
) -> list[list[int]]:
    """Random covering selections within the limit: repeatedly a random uncovered task, then a
    uniformly random affordable network holding it, until every task is covered (a draw that
    runs out of budget is redrawn, up to ``tries`` times per draw: rejection sampling, so the
    drawn selections' distribution does not depend on ``tries``, only how many draws come
    back; on MTG-Net's MIMIC table at k = 2, 46 of 50 with 1,000 tries, 7 with 50). ``present``
    (m, n) bool."""
    rng = np.random.default_rng(seed)
    m, n = present.shape
    out: list[list[int]] = []
    for _ in range(draws):
        for _t in range(tries):
            covered = np.zeros(n, dtype=bool)
            chosen: list[int] = []
            left = float(budget) if budget is not None else float(k)  # type: ignore[arg-type]
            ok = True
            while not covered.all():
                task = rng.choice(np.flatnonzero(~covered))
                need = costs if budget is not None else np.ones(m)
                cand = np.flatnonzero(present[:, task] & (need <= left + 1e-9))
                if len(cand) == 0:
                    ok = False
                    break
                j = int(rng.choice(cand))
                chosen.append(j)
                left -= float(need[j])
                covered |= present[j]
            if ok:
                out.append(sorted(set(chosen)))
                break
    return out
