"""Anytime TAG selection at any size: multi-start local search over served-set partitions.

TAG's network selection (Fifty et al., NeurIPS 2021 §3.3) chooses at most k groups; such a
selection is a partition of the tasks into at most k *served sets*, each served by its best
group (:mod:`mtl_core.grouping.tag_blocks`). This module searches those partitions directly:

* **seeds**: a greedy agglomeration on the TAG objective itself (start from every task served
  alone, repeatedly merge the two served sets whose merge costs least, until at most k remain
  and no merge gains), average- and complete-linkage hierarchical clusterings cut at k, and a
  few seeded random partitions;
* **local search** from each seed, best improvement first: *move* one task to another served
  set (or to an unused one while fewer than k are used: a *split*), then *swap* two tasks
  between sets; every candidate move is valued exactly and in batches (numpy);
* **iterated perturbation** from the walk's partition: *merge* two served sets and re-split the
  largest along its leading eigenvector, or move a few tasks at random, then local search
  again; the better partition is kept. When ``patience`` kicks in a row find nothing better,
  the walk restarts from a fresh random partition (issue 20: stopping there instead left
  most of the budget unspent and lost to a plain multi-start move/swap search), until the
  work budget is spent.

Deterministic: the randomness is a ``numpy.random.Generator`` seeded by the caller, and the
budget is counted in work (served sets valued), never in seconds; ``check()`` is an optional
wall-clock safety stop that the caller reports when it fires. The result is never worse than
the greedy seed (local search only accepts improvements).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mtl_core.grouping.deadline import SafetyStop
from mtl_core.grouping.tag_blocks import block_values

__all__ = ["SafetyStop", "default_work", "local_search_select"]


class _Budget:
    """Work counter: served sets valued so far against a limit. ``check`` is the caller's
    safety stop (it may raise :class:`SafetyStop`), ``progress(fraction)`` its progress hook."""

    def __init__(
        self,
        limit: int,
        check: Callable[[], None] | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.limit = max(1, int(limit))
        self.used = 0
        self.check = check
        self.progress = progress
        self._reported = 0

    def spend(self, rows: int) -> None:
        self.used += int(rows)
        if self.check is not None:
            self.check()
        if self.progress is not None and self.used - self._reported >= self.limit // 50:
            self._reported = self.used
            self.progress(min(1.0, self.used / self.limit))

    @property
    def left(self) -> bool:
        return self.used < self.limit


class Partition:
    """Tasks split into at most k served sets, with each set's value cached.

    ``lab[t]`` is task t's served set (0..k-1); ``bits[b]`` its members; ``C[b, i] = sum_{t in
    P_b} A[i, t]`` (what source i does for the set); ``val[b] = f(P_b)`` (0 for an unused set).
    """

    def __init__(
        self,
        A: np.ndarray,
        k: int,
        labels: np.ndarray,
        *,
        allow_singletons: bool,
        disjoint: bool,
        budget: _Budget,
    ) -> None:
        self.A, self.AT = A, np.ascontiguousarray(A.T)
        self.n, self.k = A.shape[0], k
        self.opts = {"allow_singletons": allow_singletons, "disjoint": disjoint}
        self.budget = budget
        self.set_labels(labels)

    # -- values --------------------------------------------------------------------------

    def value_of(self, bits: np.ndarray, C: np.ndarray) -> np.ndarray:
        """``f`` of each row (0 for an empty set), counted as work."""
        self.budget.spend(len(bits))
        vals, _ = block_values(self.A, bits, C=C, want_groups=False, **self.opts)
        vals[~bits.any(axis=1)] = 0.0
        return vals

    def set_labels(self, labels: np.ndarray) -> None:
        lab = np.asarray(labels, dtype=np.int64).copy()
        self.lab = lab
        self.bits = np.zeros((self.k, self.n), dtype=bool)
        self.bits[lab, np.arange(self.n)] = True
        self.C = self.bits.astype(np.float64) @ self.AT
        self.val = self.value_of(self.bits, self.C)
        self._rem = self._ins = None

    @property
    def total(self) -> float:
        return float(self.val.sum())

    def labels(self) -> np.ndarray:
        return self.lab.copy()

    # -- moves ---------------------------------------------------------------------------

    def _removal(self, tasks: np.ndarray) -> np.ndarray:
        """``f(P_{lab t} - t)`` for the given tasks."""
        b = self.lab[tasks]
        bits = self.bits[b].copy()
        bits[np.arange(len(tasks)), tasks] = False
        return self.value_of(bits, self.C[b] - self.AT[tasks])

    def _insertion(self, tasks: np.ndarray, sets: np.ndarray) -> np.ndarray:
        """``f(P_b + t)`` for every (task, set) pair: shape ``(len(tasks), len(sets))``."""
        T, S = np.meshgrid(tasks, sets, indexing="ij")
        bits = self.bits[S.ravel()].copy()
        bits[np.arange(bits.shape[0]), T.ravel()] = True
        C = self.C[S.ravel()] + self.AT[T.ravel()]
        return self.value_of(bits, C).reshape(T.shape)

    def _targets(self) -> np.ndarray:
        """Sets a task may move to: every used set, plus one unused set if there is one."""
        used = self.bits.any(axis=1)
        sets = np.flatnonzero(used)
        free = np.flatnonzero(~used)
        return np.concatenate([sets, free[:1]])

    def best_move(self, tol: float) -> tuple[float, int, int]:
        """Best single-task move ``(gain, task, to_set)``; gain <= tol means none helps."""
        n = self.n
        targets = self._targets()
        if self._rem is None:
            self._rem = self._removal(np.arange(n))
            self._ins = np.full((n, self.k), -np.inf)
            self._ins[:, targets] = self._insertion(np.arange(n), targets)
        else:
            missing = [b for b in targets if np.isneginf(self._ins[:, b]).all()]
            if missing:
                m = np.array(missing)
                self._ins[:, m] = self._insertion(np.arange(n), m)
        gain = (
            self._rem[:, None]
            + self._ins[:, targets]
            - self.val[self.lab][:, None]
            - self.val[targets][None, :]
        )
        gain[targets[None, :] == self.lab[:, None]] = -np.inf
        i = int(np.argmax(gain))
        t, j = divmod(i, len(targets))
        return float(gain[t, j]), t, int(targets[j])

    def move(self, t: int, b: int) -> None:
        """Move task t to set b, updating the caches of the two sets involved."""
        a = int(self.lab[t])
        self.bits[a, t] = False
        self.bits[b, t] = True
        self.C[a] -= self.AT[t]
        self.C[b] += self.AT[t]
        self.lab[t] = b
        self.val[[a, b]] = self.value_of(self.bits[[a, b]], self.C[[a, b]])
        if self._rem is not None:
            touched = np.flatnonzero((self.lab == a) | (self.lab == b))
            if len(touched):
                self._rem[touched] = self._removal(touched)
            self._ins[:, [a, b]] = self._insertion(np.arange(self.n), np.array([a, b]))

    def best_swap(self, tol: float) -> tuple[float, int, int]:
        """Best exchange of two tasks in different sets ``(gain, t, u)``."""
        t_idx, u_idx = np.triu_indices(self.n, 1)
        keep = self.lab[t_idx] != self.lab[u_idx]
        t_idx, u_idx = t_idx[keep], u_idx[keep]
        if len(t_idx) == 0:
            return -np.inf, -1, -1
        best = (-np.inf, -1, -1)
        for s in range(0, len(t_idx), 4096):
            t, u = t_idx[s : s + 4096], u_idx[s : s + 4096]
            a, b = self.lab[t], self.lab[u]
            r = np.arange(len(t))
            bits_a = self.bits[a].copy()
            bits_a[r, t] = False
            bits_a[r, u] = True
            bits_b = self.bits[b].copy()
            bits_b[r, u] = False
            bits_b[r, t] = True
            dC = self.AT[u] - self.AT[t]
            va = self.value_of(bits_a, self.C[a] + dC)
            vb = self.value_of(bits_b, self.C[b] - dC)
            gain = va + vb - self.val[a] - self.val[b]
            i = int(np.argmax(gain))
            if gain[i] > best[0]:
                best = (float(gain[i]), int(t[i]), int(u[i]))
        return best

    def swap(self, t: int, u: int) -> None:
        a, b = int(self.lab[t]), int(self.lab[u])
        lab = self.lab.copy()
        lab[t], lab[u] = b, a
        self.set_labels(lab)

    def descend(self, tol: float) -> None:
        """Local search to a local optimum: moves first, swaps when no move helps."""
        while self.budget.left:
            gain, t, b = self.best_move(tol)
            if gain > tol:
                self.move(t, b)
                continue
            gain, t, u = self.best_swap(tol)
            if gain > tol:
                self.swap(t, u)
                continue
            return


# -- seeds -----------------------------------------------------------------------------------


def greedy_labels(
    A: np.ndarray, k: int, *, allow_singletons: bool, disjoint: bool, budget: _Budget
) -> np.ndarray:
    """Greedy agglomeration on the TAG objective: start from every task served alone and merge
    the two served sets whose merge changes the total least badly, until at most k sets are
    left and no merge gains. Returns one label per task."""
    n = A.shape[0]
    AT = np.ascontiguousarray(A.T)
    # In the disjoint variant without singletons a lone task is infeasible; value it at 0
    # while agglomerating so the first merges are judged on their own merit.
    opts = {"allow_singletons": allow_singletons or disjoint, "disjoint": disjoint}
    members: list[np.ndarray] = [np.array([t]) for t in range(n)]
    bits = np.eye(n, dtype=bool)
    C = AT.copy()
    budget.spend(n)
    val, _ = block_values(A, bits, C=C, want_groups=False, **opts)

    def merged(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        budget.spend(len(i))
        v, _ = block_values(A, bits[i] | bits[j], C=C[i] + C[j], want_groups=False, **opts)
        return v - val[i] - val[j]

    alive = np.ones(n, dtype=bool)
    iu, ju = np.triu_indices(n, 1)
    gain = np.full((n, n), -np.inf)
    gain[iu, ju] = merged(iu, ju) if len(iu) else []
    while alive.sum() > 1:
        i, j = divmod(int(np.argmax(gain)), n)
        if not np.isfinite(gain[i, j]) or (alive.sum() <= k and gain[i, j] <= 0):
            break
        bits[i] |= bits[j]
        C[i] += C[j]
        members[i] = np.concatenate([members[i], members[j]])
        alive[j] = False
        gain[j, :] = gain[:, j] = -np.inf
        budget.spend(1)
        val[i] = block_values(A, bits[i : i + 1], C=C[i : i + 1], want_groups=False, **opts)[0][0]
        others = np.flatnonzero(alive & (np.arange(n) != i))
        if len(others):
            g = merged(np.full(len(others), i), others)
            lo, hi = np.minimum(others, i), np.maximum(others, i)
            gain[lo, hi] = g
    labels = np.empty(n, dtype=np.int64)
    for lab, b in enumerate(np.flatnonzero(alive)):
        labels[members[b]] = lab
    return labels


def hierarchical_labels(A: np.ndarray, k: int, linkage: str) -> np.ndarray:
    """Hierarchical clustering of the symmetrized affinity cut into (at most) k clusters."""
    from mtl_core.grouping.hierarchical import HierarchicalGrouper

    n = A.shape[0]
    if n < 3:
        return np.zeros(n, dtype=np.int64)
    tasks = [str(i) for i in range(n)]
    g = HierarchicalGrouper(min(k, n), linkage=linkage).fit(A, tasks)
    labels = np.empty(n, dtype=np.int64)
    for lab, grp in enumerate(g.groups_):
        labels[[int(t) for t in grp]] = lab
    return labels


def feasible(
    labels: np.ndarray, k: int, A: np.ndarray, *, allow_singletons: bool, disjoint: bool
) -> np.ndarray:
    """Relabel to 0..m-1 with m <= k; in the disjoint variant without singletons, fold lone
    tasks into the set that loses least (the only infeasible served sets)."""
    lab = np.unique(np.asarray(labels), return_inverse=True)[1].astype(np.int64)
    while lab.max() + 1 > k:  # too many sets: merge the two smallest
        sizes = np.bincount(lab)
        a, b = np.argsort(sizes, kind="stable")[:2]
        lab[lab == b] = a
        lab = np.unique(lab, return_inverse=True)[1].astype(np.int64)
    if disjoint and not allow_singletons and len(lab) > 1:
        sizes = np.bincount(lab)
        for t in np.flatnonzero(sizes[lab] == 1):
            if np.bincount(lab)[lab[t]] != 1:
                continue
            S = (A + A.T)[t]
            others = [s for s in range(lab.max() + 1) if s != lab[t] and (lab == s).any()]
            best = max(others, key=lambda s: (S[lab == s].mean(), -s))
            lab[t] = best
        lab = np.unique(lab, return_inverse=True)[1].astype(np.int64)
    return lab


# -- the search ------------------------------------------------------------------------------


def local_search_select(
    A: np.ndarray,
    k: int,
    *,
    allow_singletons: bool = False,
    disjoint: bool = False,
    seed: int = 0,
    work: int | None = None,
    max_starts: int | None = None,
    patience: int | None = None,
    extra_seeds: list[np.ndarray] | None = None,
    restart: bool = True,
    check: Callable[[], None] | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, float, dict[str, object]]:
    """Best served-set partition found: ``(labels (n,), summed value, stats)``.

    Parameters
    ----------
    A : (n, n) array
        Affinity, rows = source tasks, columns = target tasks.
    k : int
        At most k served sets (groups).
    seed : int
        Seed of the random starts and kicks.
    work : int, optional
        Budget in served sets valued (default :func:`default_work`). Same inputs and budget,
        same answer, on any machine and load.
    max_starts : int, optional
        At most this many local searches (seeds and kicks together; default: no cap).
    patience : int, optional
        After this many kicks in a row without improving the walk, restart it from a fresh
        random partition (default ``max(20, n // 2)``).
    extra_seeds : list of (n,) int arrays, optional
        More starting partitions (labels), descended right after the greedy seed.
    restart : bool
        Restart the walk when it is stale (default True); False stops the search there
        instead (the behaviour before issue 20).
    check : callable, optional
        Safety stop: may raise :class:`SafetyStop`; the best partition so far is returned.
    progress : callable, optional
        Called with the fraction of the work budget spent.

    ``stats``: ``greedy`` (the greedy seed's summed value: the result is never below it),
    ``work`` (spent), ``starts`` (local searches run), ``restarts`` (random restarts among
    them), ``stopped`` (the safety stop fired).

    The answer depends on the inputs, ``seed`` and the budgets only (``work``, ``max_starts``,
    ``patience``): never on the clock unless ``check`` raises, which ``stopped`` reports.
    """
    n = A.shape[0]
    k = min(int(k), n)
    if work is None:
        work = default_work(n, k)
    budget = _Budget(work, check, progress)
    patience = max(20, n // 2) if patience is None else int(patience)
    opts = {"allow_singletons": allow_singletons, "disjoint": disjoint}
    tol = 1e-9 * max(1.0, float(np.abs(A).max()))
    rng = np.random.default_rng(seed)
    best_lab: np.ndarray | None = None
    best_val = -np.inf
    greedy_val = None
    starts = 0
    restarts = 0
    stopped = False
    try:
        greedy = feasible(greedy_labels(A, k, budget=budget, **opts), k, A, **opts)
        seeds = [greedy] + [feasible(s, k, A, **opts) for s in (extra_seeds or [])]
        for linkage in ("average", "complete"):
            seeds.append(feasible(hierarchical_labels(A, k, linkage), k, A, **opts))
        for _ in range(2):
            seeds.append(feasible(rng.integers(0, k, n), k, A, **opts))
        for lab in seeds:
            P = Partition(A, k, lab, budget=budget, **opts)
            if greedy_val is None:
                greedy_val = P.total
                best_lab, best_val = P.labels(), P.total
            elif not budget.left:
                break
            P.descend(tol)
            starts += 1
            if P.total > best_val + tol:
                best_lab, best_val = P.labels(), P.total
        # Iterated perturbation: kick the walk's partition and descend again, keeping the
        # better one; after `patience` kicks in a row without improvement, restart the walk
        # from a fresh random partition. Runs until the work budget (or `max_starts`) is spent.
        cap = np.inf if max_starts is None else int(max_starts)
        walk_lab, walk_val = best_lab, best_val
        stale = 0  # kicks in a row that did not improve the walk
        while budget.left and k > 1 and n > 2 and starts < cap:
            if stale >= patience:
                if not restart:
                    break
                lab = feasible(rng.integers(0, k, n), k, A, **opts)
                restarts += 1
            else:
                lab = feasible(_perturb(A, walk_lab, k, rng), k, A, **opts)
            P = Partition(A, k, lab, budget=budget, **opts)
            P.descend(tol)
            starts += 1
            if stale >= patience or P.total > walk_val + tol:
                walk_lab, walk_val = P.labels(), P.total
                stale = 0
            else:
                stale += 1
            if P.total > best_val + tol:
                best_lab, best_val = P.labels(), P.total
    except SafetyStop:
        stopped = True
        if best_lab is None:  # stopped before any partition was valued: all tasks together
            best_lab = np.zeros(n, dtype=np.int64)
            vals, _ = block_values(A, np.ones((1, n), dtype=bool), want_groups=False, **opts)
            best_val = float(vals[0])
    stats = {
        "greedy": greedy_val,
        "work": budget.used,
        "starts": starts,
        "restarts": restarts,
        "stopped": stopped,
    }
    return best_lab, best_val, stats


def default_work(n: int, k: int, exact_finish: bool = False) -> int:
    """Default local-search budget, in served sets valued. Smaller when the LP side can finish
    with a proof (then the search only seeds it)."""
    return int((500 if exact_finish else 1500) * n * max(k, 2))


def _perturb(A: np.ndarray, labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A kick: merge two served sets and split the largest, or move a few tasks at random."""
    lab = labels.copy()
    n = len(lab)
    used = np.unique(lab)
    if rng.random() < 0.5 and len(used) >= 2:
        a, b = rng.choice(used, size=2, replace=False)
        lab[lab == b] = a
        sizes = np.bincount(lab, minlength=k)
        big = int(np.argmax(sizes))
        members = np.flatnonzero(lab == big)
        if len(members) >= 2:
            free = int(b)
            S = (A + A.T)[np.ix_(members, members)] / 2.0
            # Split along the leading eigenvector of the centred similarity (ties: random).
            w, V = np.linalg.eigh(S - S.mean())
            v = V[:, -1] + 1e-9 * rng.standard_normal(len(members))
            lab[members[v > np.median(v)]] = free
    else:
        m = max(2, n // 10)
        idx = rng.choice(n, size=min(m, n), replace=False)
        lab[idx] = rng.integers(0, k, len(idx))
    return lab
