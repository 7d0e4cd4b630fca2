"""Small random selection tables and a brute-force optimum, shared by the exact solver's tests
(``tests/core/test_select.py``) and the local search's (``tests/core/test_select_local.py``)."""

from __future__ import annotations

import itertools

import numpy as np

from mtl_core.groundtruth.select import served_total


def sparse_table(seed: int, n: int = 4, m: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """``(g (m, n), costs (m,))``: standard-normal values with about half the cells absent
    (NaN; a network left empty gets task 0 at 0.3) and costs 0.5 or 1 at random."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(m, n))
    g[rng.random((m, n)) < 0.5] = np.nan
    g[np.isnan(g).all(axis=1), 0] = 0.3
    costs = rng.choice([0.5, 1.0], size=m)
    return g, costs


def all_subsets_table(seed: int, n: int = 8) -> np.ndarray:
    """(2^n - 1, n) values of every task subset: a per-task level, noise (sd 0.5) per cell and
    a cost of 0.1 per further task, so neither the largest nor the smallest networks always win
    (higher is better; NaN where a task is not in the subset)."""
    rng = np.random.default_rng(seed)
    subsets = [s for r in range(1, n + 1) for s in itertools.combinations(range(n), r)]
    level = rng.normal(size=n)
    g = np.full((len(subsets), n), np.nan)
    for j, s in enumerate(subsets):
        idx = list(s)
        g[j, idx] = level[idx] + rng.normal(scale=0.5, size=len(idx)) - 0.1 * len(idx)
    return g


def brute_force(g: np.ndarray, coef: np.ndarray, cap: float, best: bool = True) -> float | None:
    """The best (or, ``best=False``, worst) served total of ``g`` over every selection with
    ``sum(coef[chosen]) <= cap`` that covers every task, by enumeration; None if none does."""
    m = len(coef)
    out = None
    for r in range(1, m + 1):
        for combo in itertools.combinations(range(m), r):
            if coef[list(combo)].sum() > cap + 1e-9:
                continue
            v = served_total(g, list(combo), g)
            if np.isnan(v):
                continue
            if out is None or (v > out if best else v < out):
                out = v
    return out
