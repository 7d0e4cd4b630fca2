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
  numpy blocks, :mod:`mtl_core.grouping.tag_exact`); exact, fastest for small n (default up
  to :data:`AUTO_DP_MAX` tasks).
* ``"search"`` (default above that): multi-start local search over served-set partitions
  (:mod:`mtl_core.grouping.tag_search`), then column generation on the set-partitioning LP
  with HiGHS, which certifies an upper bound and, up to
  :data:`mtl_core.grouping.tag_lp.TABLE_MAX` tasks, finishes with a proof of optimality
  (:mod:`mtl_core.grouping.tag_lp`). Above that range the answer is proven optimal when the LP
  bound meets it (common on matrices with group structure); otherwise the gap is reported.
* ``"milp"``: the facility-location integer programme over all ``2**n`` candidate groups with
  HiGHS (:mod:`mtl_core.grouping.tag_exact`; a cross-check; slow).

Deterministic: the same matrix and settings give the same groups on every machine and load.
Budgets are counted in work (served sets valued, pricing rounds, branch-and-bound nodes,
MILP nodes); ``time_limit`` is only a safety stop (:class:`~mtl_core.grouping.deadline.Deadline`)
and ``stopped_`` says when it fired: only then can the answer depend on the clock.
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
from mtl_core.grouping.deadline import Deadline, SafetyStop
from mtl_core.grouping.tag_exact import (
    _mask_members,
    candidate_scores,
    dp_select,
    milp_select,
    select_from_scores,
)
from mtl_core.types import AffinityMatrix, Grouping, canonical_grouping

__all__ = [
    "AUTO_DP_MAX",
    "DP_MAX",
    "MAX_TASKS",
    "SOLVERS",
    "TAGGrouper",
    "brute_force_tag",
    "candidate_scores",
    "select_from_scores",
    "set_partitions",
]

#: Largest task count TAG selection accepts (the search's memory grows as n**2 * k).
MAX_TASKS = 400
#: Largest task count for the bitmask DP (memory: a few arrays of 2**n floats; time: 3**n).
DP_MAX = 20
#: ``solver="auto"`` uses the DP up to this many tasks (milliseconds), the search above.
AUTO_DP_MAX = 12
SOLVERS = ("auto", "dp", "search", "milp")


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
        clock = Deadline(self.time_limit)
        if solver in ("milp", "dp"):
            try:
                if solver == "milp":
                    masks, _, best, stopped = milp_select(
                        A, k, self.allow_singletons, self.disjoint, clock
                    )
                    self.stopped_ = stopped
                else:
                    masks, best = dp_select(A, k, self.allow_singletons, self.disjoint, clock)
                self.solver_ = solver
                groups = _masks_to_groups(masks, tasks)
                self._finish(A, tasks, groups, best / n, t0)
                return groups
            except SafetyStop:
                # The safety stop fired before the exact solver had an answer: the search
                # returns what it can find in a short extra allowance, with its bound.
                self.stopped_ = True
                clock = Deadline(max(1.0, 0.1 * n))
        groups, upper = self._search(A, tasks, k, clock)
        self.solver_ = "search"
        self._finish(A, tasks, groups, upper / n, t0)
        return groups

    def _search(
        self, A: np.ndarray, tasks: list[str], k: int, clock: Deadline
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

        exact_finish = n <= TABLE_MAX
        labels, _, st = local_search_select(
            A,
            k,
            seed=int(self.seed),
            work=max(1, int(effort * default_work(n, min(k, n), exact_finish))),
            # Where the LP finishes with a proof the search only seeds it: a few starts do.
            max_starts=max(1, int(effort * 12)) if exact_finish else None,
            # The safety stop leaves the bound at least half of the time limit.
            check=clock.part(0.5).check,
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
            deadline=clock,
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
