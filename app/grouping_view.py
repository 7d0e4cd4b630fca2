"""Regrouping for the pages: one call from (matrix, method, k, tau) to groups, cached, plus the
group timeline. Thin wrappers over ``mtl_core.grouping`` with the app's speed limits.

Exact TAG selection grows as 3^n; beyond ``TAG_INTERACTIVE_MAX`` tasks it cannot answer within
an interactive budget, so the page offers it with a time limit and says when the answer is the
best found rather than the proven optimum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mtl_core.errors import LabError
from mtl_core.grouping import group_timeline, make_grouper, symmetrize
from mtl_core.types import Grouping

METHODS = {
    "tag": "TAG: best k groups",
    "threshold": "threshold on affinity",
    "hierarchical": "hierarchical, k clusters",
    "affinity-propagation": "affinity propagation",
    "none": "no grouping",
}
TAG_INTERACTIVE_MAX = 14  # exact TAG answers in < ~0.15 s up to here
TIMELINE_BUDGET_S = 0.25  # time allowed for the group timeline


@dataclass(frozen=True)
class GroupResult:
    """A grouping of the shown matrix and how good it is."""

    groups: Grouping
    score: float  # TAG value (mean over tasks of the best group score)
    optimal: bool | None  # TAG only: proven optimal
    gap: float | None
    seconds: float
    note: str = ""


def grouper_for(method: str, k: int, tau: float, n_tasks: int, *, time_limit: float = 1.0):
    """The grouper the controls describe (``none`` -> None)."""
    if method == "none":
        return None
    if method == "tag":
        return make_grouper("tag", k=max(1, int(k)), time_limit=time_limit)
    if method == "threshold":
        return make_grouper("threshold", tau=float(tau))
    if method == "hierarchical":
        return make_grouper("hierarchical", k=max(1, min(int(k), n_tasks)))
    return make_grouper(method)


def regroup(A: np.ndarray, tasks: list[str], method: str, k: int, tau: float, *,
            time_limit: float = 1.0) -> GroupResult | None:
    """Group one matrix (NaN cells count as 0: no measured transfer)."""
    M = np.nan_to_num(np.asarray(A, dtype=np.float64))
    t0 = time.perf_counter()
    g = grouper_for(method, k, tau, len(tasks), time_limit=time_limit)
    if g is None:
        return None
    g.fit(M, tasks)
    optimal = getattr(g, "optimal_", None)
    gap = getattr(g, "gap_", None)
    note = ""
    if method == "tag" and optimal is False:
        note = (f"best grouping found within the time limit; it is at most {gap:.2g} below "
                "the optimum")
    return GroupResult(g.groups_, float(g.score_), optimal, gap, time.perf_counter() - t0, note)


def tau_range(A: np.ndarray) -> tuple[float, float]:
    """Slider range for the threshold: the off-diagonal symmetrized affinities, padded, and
    always including 0 (the neutral threshold: link the pairs that help each other)."""
    S = symmetrize(np.nan_to_num(np.asarray(A, dtype=np.float64)))
    n = S.shape[0]
    off = S[~np.eye(n, dtype=bool)] if n > 1 else np.zeros(1)
    lo, hi = min(float(off.min()), 0.0), max(float(off.max()), 0.0)
    pad = 0.05 * max(hi - lo, 1e-9)
    return lo - pad, hi + pad


def _vectorized(grouper, sample: np.ndarray, tasks: list[str]) -> bool:
    """Whether the grouper labels a whole stack in one call (threshold, hierarchical)."""
    batch = getattr(grouper, "_batch_labels", None)
    if batch is None:
        return False
    try:
        return batch(sample, list(tasks)) is not None
    except Exception:
        return False


@dataclass(frozen=True)
class Timeline:
    steps: np.ndarray
    labels: np.ndarray  # (S, n) stable group id per task, -1 = none
    change_steps: list[int]
    groupings: list[Grouping]
    ids: list[tuple[int, ...]]
    note: str = ""


def timeline(
    steps: np.ndarray, stack: np.ndarray, tasks: list[str], method: str, k: int, tau: float,
    smoothing: str = "running", window: int = 20, beta: float = 0.9,
) -> Timeline | None:
    """Grouping at (up to a budgeted number of) logged steps with stable group ids."""
    if method == "none" or len(steps) == 0:
        return None
    X = np.nan_to_num(np.asarray(stack, dtype=np.float64))
    if method == "tag" and len(tasks) > TAG_INTERACTIVE_MAX:
        raise LabError(
            f"Grouping every step with exact TAG takes seconds per step on {len(tasks)} tasks; "
            "the group timeline uses it up to "
            f"{TAG_INTERACTIVE_MAX} tasks. Pick hierarchical or threshold for the timeline.")
    g0 = grouper_for(method, k, tau, len(tasks))
    if g0 is not None and _vectorized(g0, X[-2:], tasks):
        points = 300  # one vectorized call groups every point: cheap
    else:
        # Budget the number of grouped steps by timing fits (warm: the best of two).
        per_fit = min(regroup(X[-1], tasks, method, k, tau).seconds for _ in range(2))
        points = int(np.clip(TIMELINE_BUDGET_S / max(per_fit, 1e-4), 8, 300))
    g = grouper_for(method, k, tau, len(tasks), time_limit=max(0.05, TIMELINE_BUDGET_S / points))
    how = {"none": "none", "window": "window", "ema": "ema"}.get(smoothing, "running")
    tl = group_timeline(np.asarray(steps), X, tasks, g, smoothing=how, window=int(window),
                        beta=float(beta), max_points=points)
    labels = np.full((len(tl.steps), len(tasks)), -1, dtype=np.int64)
    index = {t: i for i, t in enumerate(tasks)}
    for s, (groups, gids) in enumerate(zip(tl.groupings, tl.ids)):
        for grp, gid in zip(groups, gids):
            for t in grp:
                i = index[t]
                labels[s, i] = gid if labels[s, i] < 0 else min(labels[s, i], gid)
    note = "" if points >= len(steps) else f"grouped at {len(tl.steps)} evenly spaced steps"
    return Timeline(tl.steps, labels, list(tl.change_steps), list(tl.groupings),
                    list(tl.ids), note)
