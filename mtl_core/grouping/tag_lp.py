"""The LP side of TAG selection: column generation, a certified upper bound, exact finishing.

TAG selection (Fifty et al., NeurIPS 2021 §3.3) is the set-partitioning problem (see
:mod:`mtl_core.grouping.tag_blocks`)

    max  sum_P f(P) x_P   s.t.  sum_{P ∋ t} x_P = 1 for every task t,   sum_P x_P <= k,
    x_P in {0, 1},

over all served sets P. Its LP relaxation is solved by column generation with scipy's HiGHS
(``linprog``): a restricted master over a few columns gives duals ``pi`` (one per task) and
``mu`` (the budget); *pricing* looks for a set with positive reduced cost
``f(P) - pi(P) - mu``.

**The bound.** For *any* ``pi``, every selection of at most k served sets satisfies

    value = sum_P (f(P) - pi(P)) + sum_t pi_t  <=  sum_t pi_t + k * max(0, Z(pi)),
    Z(pi) = max_P f(P) - pi(P),

so an upper bound on ``Z`` gives a certified upper bound on the optimum (Lagrangian bound;
equal to the LP optimum when ``pi`` is LP-optimal and ``Z`` is exact). ``Z`` is found

* up to :data:`TABLE_MAX` tasks exactly, by valuing every subset once (``2**n`` values) and
  scanning them for each ``pi``;
* above that by a best-first branch and bound over groups G (``Z = max_G sum_{t in G}
  (score(G, t) - pi_t)^+``): a node fixes some tasks in or out of G; its bound takes, for each
  group size s, every member's best possible score (its own top ``s - 1`` sources among the
  tasks still allowed) and the best ``s`` members. The search is budgeted in nodes; when the
  budget runs out the largest open bound still bounds ``Z`` (anytime).

**Exact finish.** With the LP optimum ``V`` and an incumbent of value ``L``, any selection
better than ``L`` uses only sets whose reduced cost is at least ``-(V - L)`` (reduced-cost
fixing). When the subset table is available those sets are listed and the integer programme
over them is solved with HiGHS (``milp``): the answer is then proven optimal. When ``V = L``
(the LP is integral, common in practice) the incumbent is optimal at any size.

Deterministic: HiGHS runs single-threaded on the same model; budgets are counted in pricing
rounds, branch-and-bound nodes and MILP nodes; the caller's
:class:`~mtl_core.grouping.deadline.Deadline` is only a safety stop, reported in ``stats``.
The bounds and the pricing live in :mod:`mtl_core.grouping.tag_bound`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mtl_core.grouping.base import SINGLETON_SCORE
from mtl_core.grouping.deadline import Deadline, SafetyStop
from mtl_core.grouping.tag_blocks import block_values, served_table
from mtl_core.grouping.tag_bound import (
    best_root_prices,
    bnb_pricing,
    heuristic_pricing,
    pricing_starts,
    root_bound,
    scan_table,
    table_above,
    trivial_bound,
)

__all__ = [
    "TABLE_MAX",
    "LPResult",
    "Master",
    "bnb_pricing",
    "default_nodes",
    "lp_select",
    "root_bound",
    "trivial_bound",
]

#: Largest task count whose subset table (``2**n`` values, 8 bytes each) is built.
TABLE_MAX = 24


@dataclass
class LPResult:
    """What the LP side proved and found (values summed over tasks, not divided by n)."""

    upper: float  # certified upper bound on the optimum
    lp_value: float | None  # LP optimum of the restricted master (not a bound by itself)
    columns: list[np.ndarray]  # served sets of the best integer solution found (bool rows)
    value: float  # its summed value
    exact: bool  # the bound is the true optimum of the problem, proven
    stats: dict[str, object] = field(default_factory=dict)


class Master:
    """Restricted master problem over a growing set of served-set columns."""

    def __init__(self, A: np.ndarray, k: int, allow_singletons: bool, disjoint: bool) -> None:
        self.A, self.n, self.k = A, A.shape[0], k
        self.opts = {"allow_singletons": allow_singletons, "disjoint": disjoint}
        self.bits = np.zeros((0, self.n), dtype=bool)
        self.f = np.zeros(0)
        self.keys: set[bytes] = set()
        #: HiGHS reached the safety stop's time limit in a MILP (its answer may be early).
        self.stopped = False

    def add(self, bits: np.ndarray, values: np.ndarray | None = None) -> int:
        """Add new columns (bool rows); returns how many were new. Values are computed when
        not given; columns no group can serve (``-inf``) are skipped."""
        bits = np.atleast_2d(np.asarray(bits, dtype=bool))
        if values is None:
            values, _ = block_values(self.A, bits, want_groups=False, **self.opts)
        keep = []
        for i, row in enumerate(bits):
            key = np.packbits(row).tobytes()
            if key in self.keys or not np.isfinite(values[i]):
                continue
            self.keys.add(key)
            keep.append(i)
        if keep:
            self.bits = np.concatenate([self.bits, bits[keep]])
            self.f = np.concatenate([self.f, np.asarray(values, dtype=np.float64)[keep]])
        return len(keep)

    def solve_lp(
        self, deadline: Deadline | None = None
    ) -> tuple[float, np.ndarray, float, np.ndarray]:
        """LP optimum ``(value, pi, mu, x)``; ``pi`` and ``mu`` are the duals (max sense).
        Raises :class:`SafetyStop` when HiGHS runs out of the deadline's time."""
        from scipy import sparse
        from scipy.optimize import linprog

        time_limit = None if deadline is None else deadline.remaining()
        m = len(self.f)
        A_eq = sparse.csr_matrix(self.bits.T.astype(np.float64))
        res = linprog(
            -self.f,
            A_eq=A_eq,
            b_eq=np.ones(self.n),
            A_ub=np.ones((1, m)),
            b_ub=[self.k],
            bounds=(0, None),
            method="highs",
            options={} if time_limit is None else {"time_limit": max(0.01, time_limit)},
        )
        if res.status == 1 and time_limit is not None:
            raise SafetyStop
        if res.status != 0:
            raise RuntimeError(f"restricted master LP failed: {res.message}")
        pi = -np.asarray(res.eqlin.marginals, dtype=np.float64)
        mu = max(0.0, -float(res.ineqlin.marginals[0]))
        return -float(res.fun), pi, mu, np.asarray(res.x)

    def solve_ip(
        self,
        idx: np.ndarray | None = None,
        node_limit: int = 20_000,
        deadline: Deadline | None = None,
    ) -> tuple[float, list[int], bool]:
        """Best integer selection over the columns ``idx`` (all by default) with HiGHS.

        Budgeted in branch-and-bound nodes; the deadline is a safety stop (when HiGHS stops on
        it, :attr:`stopped` is set). Returns ``(value, chosen column indices, proven optimal
        over those columns)``.
        """
        time_limit = None if deadline is None else deadline.remaining()
        from scipy import sparse
        from scipy.optimize import Bounds, LinearConstraint, milp

        idx = np.arange(len(self.f)) if idx is None else np.asarray(idx)
        bits, f = self.bits[idx], self.f[idx]
        m = len(idx)
        cons = [
            LinearConstraint(sparse.csr_matrix(bits.T.astype(np.float64)), 1, 1),
            LinearConstraint(np.ones((1, m)), 0, self.k),
        ]
        res = milp(
            -f,
            integrality=np.ones(m),
            bounds=Bounds(0, 1),
            constraints=cons,
            options={
                "mip_rel_gap": 0.0,
                "node_limit": int(node_limit),
                "disp": False,
                **({} if time_limit is None else {"time_limit": max(0.01, time_limit)}),
            },
        )
        left = None if deadline is None else deadline.remaining()
        if res.status == 1 and left is not None and left <= 0:
            self.stopped = True
        if res.x is None:
            return -np.inf, [], False
        chosen = [int(idx[j]) for j in np.flatnonzero(res.x > 0.5)]
        return float(f[res.x > 0.5].sum()), chosen, res.status == 0


def default_nodes(n: int) -> int:
    """Default branch-and-bound budget (nodes, all pricing rounds together)."""
    return int(max(2_000, min(50_000, 4e7 // max(n, 1) ** 2)))


def lp_select(
    A: np.ndarray,
    k: int,
    incumbent: list[np.ndarray],
    *,
    allow_singletons: bool,
    disjoint: bool,
    rounds: int = 200,
    node_limit: int | None = None,
    ip_nodes: int = 2_000,
    enum_cap: int = 300_000,
    deadline: Deadline | None = None,
    progress: Callable[[float], None] | None = None,
) -> LPResult:
    """Column generation from an incumbent selection, then the certified bound and, where
    possible, the proven optimum (module docstring).

    Parameters
    ----------
    A : (n, n) array
        Affinity, rows = source tasks, columns = target tasks.
    k : int
        At most k served sets.
    incumbent : list of (n,) bool
        Served sets of a feasible selection (a partition into at most k sets).
    rounds, node_limit, ip_nodes, enum_cap :
        Work budgets: pricing rounds, branch-and-bound nodes (all rounds together; default
        :func:`default_nodes`), HiGHS MILP nodes, and the most sets the exact finish lists.
    deadline : Deadline, optional
        The wall-clock safety stop (also handed to HiGHS as its time limit). When it fires,
        ``stats["stopped"]`` is True and the result holds the best selection and the best
        bound proven so far; otherwise the result depends on the work budgets only.
    progress : callable, optional
        Called with a rough fraction of the work done.

    Returns
    -------
    LPResult
        Values are sums over tasks (divide by n for the TAG value).
    """
    n = A.shape[0]
    k = min(int(k), n)
    check = None if deadline is None else deadline.check
    node_limit = default_nodes(n) if node_limit is None else int(node_limit)
    opts = {"allow_singletons": allow_singletons, "disjoint": disjoint}
    master = Master(A, k, allow_singletons, disjoint)
    inc_bits = np.array(incumbent, dtype=bool)
    inc_vals, _ = block_values(A, inc_bits, want_groups=False, **opts)
    master.add(inc_bits, inc_vals)
    best_cols = [row.copy() for row in inc_bits]
    best_val = float(inc_vals.sum())
    master.add(np.eye(n, dtype=bool))
    tol = 1e-9 * max(1.0, abs(best_val))
    tol_bound = (k + 1) * tol  # the bound carries up to k pricing tolerances
    stats: dict[str, object] = {"rounds": 0, "columns": 0, "bnb_nodes": 0, "stopped": False}
    upper = trivial_bound(A, allow_singletons)
    lp_value = None
    exact = False
    table = None
    pi = mu = None
    sub: Master | None = None

    def report(frac: float) -> None:
        if progress is not None:
            progress(min(1.0, frac))

    try:
        if n <= TABLE_MAX:
            table = served_table(A, check=check, **opts)
        else:
            # A first certificate before any pricing: the best prices for the root bound.
            pr = best_root_prices(A, k, opts)
            if np.all(np.isfinite(pr)):
                upper = min(upper, float(pr.sum()) + k * max(0.0, root_bound(A, pr, opts)))
                stats["root_bound"] = upper
        history: list[float] = []
        for rnd in range(rounds):
            if check is not None:
                check()
            lp_value, pi, mu, x = master.solve_lp(deadline)
            stats["rounds"] = rnd + 1
            report(0.8 * (rnd + 1) / rounds)
            if table is not None:
                z, top = scan_table(table, pi, mu, 2 * n, tol)
                upper = min(upper, float(pi.sum()) + k * max(0.0, z))
                if len(top) == 0:
                    exact = True
                    break
                master.add(((top[:, None] >> np.arange(n)) & 1).astype(bool), table[top])
                continue
            upper = min(upper, float(pi.sum()) + k * max(0.0, root_bound(A, pi, opts)))
            starts = pricing_starts(A, master.bits, x, pi, extra=min(n, 16))
            cand, vals = heuristic_pricing(A, pi, starts, opts, steps=min(n, 12))
            rc = vals - cand @ pi - mu
            good = np.flatnonzero(rc > tol)
            good = good[np.argsort(-rc[good], kind="stable")][: 2 * n]
            history.append(lp_value)
            # Tailing off (the LP value barely moves): go on to the bound instead.
            stalled = len(history) > 10 and history[-1] - history[-6] <= 1e-4 * max(
                1.0, abs(history[-1])
            )
            if len(good) and not stalled and master.add(cand[good], vals[good]) > 0:
                continue
            # Heuristic pricing is stuck: bound Z by branch and bound (finding what it missed).
            left = node_limit - int(stats["bnb_nodes"])
            if left <= 0:
                break
            z_single = -np.inf
            if allow_singletons:
                z_single = float(np.max(SINGLETON_SCORE - pi))
            zub, found, nodes, complete = bnb_pricing(
                A, pi, opts, floor=max(mu + tol, z_single), node_limit=left, check=check
            )
            stats["bnb_nodes"] = int(stats["bnb_nodes"]) + nodes
            z = max(zub, z_single)
            upper = min(upper, float(pi.sum()) + k * max(0.0, z))
            new = [sv for hv, sv in found if hv > mu + tol]
            if new and master.add(np.array(new)) > 0:
                continue
            exact = complete
            break
        stats["columns"] = len(master.f)
        # Best integer selection over the generated columns (price-and-branch).
        report(0.9)
        ip_val, chosen, _ = master.solve_ip(node_limit=ip_nodes, deadline=deadline)
        if ip_val > best_val + tol:
            best_val, best_cols = ip_val, [master.bits[i].copy() for i in chosen]
        if upper - best_val > tol_bound and table is not None and exact:
            # Reduced-cost fixing: only sets with rc >= -(V - L) can be in a better selection.
            keep = table_above(table, pi, mu, -(lp_value - best_val) - tol, enum_cap + 1)
            stats["enumerated"] = int(len(keep))
            if len(keep) <= enum_cap:
                sub = Master(A, k, allow_singletons, disjoint)
                sub.add(((keep[:, None] >> np.arange(n)) & 1).astype(bool), table[keep])
                val, chosen, optimal = sub.solve_ip(node_limit=ip_nodes, deadline=deadline)
                if optimal:
                    if val > best_val:
                        best_val, best_cols = val, [sub.bits[i].copy() for i in chosen]
                    upper = best_val
        stats["stopped"] = master.stopped or (sub is not None and sub.stopped)
    except SafetyStop:
        stats["stopped"] = True
    stats["columns"] = len(master.f)
    report(1.0)
    upper = max(float(upper), best_val)
    return LPResult(
        upper=upper,
        lp_value=lp_value,
        columns=best_cols,
        value=best_val,
        exact=upper - best_val <= tol_bound,
        stats=stats,
    )
