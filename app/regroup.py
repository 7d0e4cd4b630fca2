"""Groupings for the pages: one call from (matrix, method, k, tau) to groups, the group
timeline, and the numbers the pages show about groupings (row order, block means, agreement).
Thin wrappers over ``mtl_core.grouping`` with the app's speed limits; no Streamlit here.

Direction: ``A[i, j]`` is the effect of a step on source task i (a row) on target task j's loss.

TAG selection answers in milliseconds up to ``TAG_INTERACTIVE_MAX`` tasks (the exact DP);
above that it takes seconds (local search, then an LP certificate: proven optimal up to 24
tasks, a proven gap above), so the page runs it in the background with a progress bar and
shows the gap when it lands. Every grouper's ``warning_`` (what it could not do) travels with
the result.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mtl_core.errors import LabError
from mtl_core.grouping import group_timeline, make_grouper, symmetrize
from mtl_core.grouping.tag import AUTO_DP_MAX
from mtl_core.lesson.report import block_means
from mtl_core.series import sample_indices
from mtl_core.types import Grouping

METHODS = {
    "tag": "TAG: best k groups",
    "threshold": "threshold on affinity",
    "hierarchical": "hierarchical, k clusters",
    "affinity-propagation": "affinity propagation",
    "none": "no grouping",
}
TAG_INTERACTIVE_MAX = AUTO_DP_MAX  # TAG answers in milliseconds up to here (exact DP)
#: Safety stop of a background TAG search (seconds). The answer does not depend on it unless
#: it fires (then the result says so): the search's budgets are counted in work.
TAG_SAFETY_S = 60.0
TIMELINE_BUDGET_S = 0.25  # time allowed for the group timeline


@dataclass(frozen=True)
class GroupResult:
    """A grouping of the shown matrix and how good it is."""

    groups: Grouping
    score: float  # TAG value (mean over tasks of the best group score)
    optimal: bool | None  # TAG only: proven optimal
    gap: float | None  # TAG only: how far below the optimum the answer may be
    seconds: float
    upper: float | None = None  # TAG only: proven upper bound on the TAG value
    relative_gap: float | None = None  # TAG only: gap / |score|
    warning: str | None = None  # what the method could not do (grouper's ``warning_``)
    converged: bool | None = None  # affinity propagation only


def grouper_for(
    method: str,
    k: int,
    tau: float,
    n_tasks: int,
    *,
    time_limit: float = TAG_SAFETY_S,
    progress=None,
):
    """The grouper the controls describe (``none`` -> None). ``progress(fraction, stage)``
    follows a TAG search."""
    if method == "none":
        return None
    if method == "tag":
        return make_grouper("tag", k=max(1, int(k)), time_limit=time_limit, progress=progress)
    if method == "threshold":
        return make_grouper("threshold", tau=float(tau))
    if method == "hierarchical":
        return make_grouper("hierarchical", k=max(1, min(int(k), n_tasks)))
    return make_grouper(method)


def regroup(
    A: np.ndarray,
    tasks: list[str],
    method: str,
    k: int,
    tau: float,
    *,
    time_limit: float = TAG_SAFETY_S,
    progress=None,
) -> GroupResult | None:
    """Group one ``(n, n)`` matrix (NaN cells count as 0: no measured transfer); ``None`` for
    the method ``none``. ``progress(fraction, stage)`` follows a TAG search (called from the
    thread that runs it)."""
    M = np.nan_to_num(np.asarray(A, dtype=np.float64))
    t0 = time.perf_counter()
    g = grouper_for(method, k, tau, len(tasks), time_limit=time_limit, progress=progress)
    if g is None:
        return None
    g.fit(M, tasks)
    return GroupResult(
        g.groups_,
        float(g.score_),
        getattr(g, "optimal_", None),
        getattr(g, "gap_", None),
        time.perf_counter() - t0,
        upper=getattr(g, "upper_bound_", None),
        relative_gap=getattr(g, "relative_gap_", None),
        warning=g.warning_,
        converged=getattr(g, "converged_", None),
    )


def tau_range(A: np.ndarray) -> tuple[float, float]:
    """Slider range for the threshold: the off-diagonal symmetrized affinities, padded, and
    always including 0 (the neutral threshold: link the pairs that help each other)."""
    S = symmetrize(np.nan_to_num(np.asarray(A, dtype=np.float64)))
    n = S.shape[0]
    off = S[~np.eye(n, dtype=bool)] if n > 1 else np.zeros(1)
    lo, hi = min(float(off.min()), 0.0), max(float(off.max()), 0.0)
    pad = 0.05 * max(hi - lo, 1e-9)
    return lo - pad, hi + pad


def default_tau(A: np.ndarray) -> float | None:
    """A threshold that says something on ``A`` ``(n, n)``, or None when 0 does: 0 (link the
    pairs that help each other) when it splits the tasks; otherwise (every pair helps, so 0
    links all) the middle of the widest gap between the sorted mutual affinities
    ``(A[i, j] + A[j, i]) / 2``, which separates the strongly linked pairs from the rest."""
    S = symmetrize(np.nan_to_num(np.asarray(A, dtype=np.float64)))
    n = S.shape[0]
    if n < 3:
        return None
    vals = np.sort(S[np.triu_indices(n, 1)])
    if vals[0] < 0 <= vals[-1]:
        return None
    gaps = np.diff(vals)
    k = int(np.argmax(gaps))
    if gaps[k] <= 0:
        return None
    return float((vals[k] + vals[k + 1]) / 2)


def separation(
    A: np.ndarray, tasks: Sequence[str], grouping: Sequence[Iterable[str]]
) -> tuple[float, float, bool] | None:
    """``(within, between, all_positive)`` for the method caveat: the mean off-diagonal
    affinity inside groups and across them, and whether every mutual affinity
    ``(A[i, j] + A[j, i]) / 2`` is positive. None with one group or one task."""
    n = len(tasks)
    if n < 2 or not grouping or len(grouping) < 2:
        return None
    within, between = block_means(np.asarray(A, dtype=np.float64), tasks, grouping)
    S = symmetrize(np.nan_to_num(np.asarray(A, dtype=np.float64)))
    all_positive = bool((S[np.triu_indices(n, 1)] > 0).all())
    return within, between, all_positive


@dataclass(frozen=True)
class Timeline:
    """Groupings at (up to a budget of) logged steps, with stable group ids."""

    steps: np.ndarray  # (S',) the grouped steps
    labels: np.ndarray  # (S', n) stable group id per task, -1 = none
    change_steps: list[int]
    groupings: list[Grouping]
    ids: list[tuple[int, ...]]
    matrices: np.ndarray  # (S', n, n) the smoothed matrices grouped (NaN: nothing logged yet)


def timeline(
    steps: np.ndarray,
    smoothed: np.ndarray,
    tasks: list[str],
    method: str,
    k: int,
    tau: float,
) -> Timeline | None:
    """Group every logged step of an already smoothed stack (``mtl_core.series.smooth``: the
    matrices the heatmap shows), or an evenly spaced budget of steps when grouping is slow.

    ``smoothed``: ``(S, n, n)``, one matrix per entry of ``steps``; NaN cells count as 0, as
    in :func:`regroup`. ``None`` for the method ``none`` or no steps.

    Raises
    ------
    LabError
        TAG on more than ``TAG_INTERACTIVE_MAX`` tasks (seconds per step).
    """
    if method == "none" or len(steps) == 0:
        return None
    if method == "tag" and len(tasks) > TAG_INTERACTIVE_MAX:
        raise LabError(
            f"TAG takes seconds per step on {len(tasks)} tasks, so the group timeline uses it "
            f"up to {TAG_INTERACTIVE_MAX} tasks; hierarchical or threshold grouping follows "
            "every step of this run."
        )
    stack = np.asarray(smoothed, dtype=np.float64)
    steps = np.asarray(steps)
    g0 = grouper_for(method, k, tau, len(tasks))
    last = np.nan_to_num(stack[-2:])
    if g0 is not None and g0.batched:  # one fit_batch call labels every point
        # One vectorized call groups every point; its cost grows as n^2 per merge round
        # (hierarchical), so wide runs get fewer points (50 tasks: 100 points, ~0.2 s).
        points = int(np.clip(300 * (24 / max(len(tasks), 1)) ** 2, 100, 300))
    else:
        # Budget the number of grouped steps by timing fits (warm: the best of two).
        per_fit = min(regroup(last[-1], tasks, method, k, tau).seconds for _ in range(2))
        points = int(np.clip(TIMELINE_BUDGET_S / max(per_fit, 1e-4), 8, 300))
    # Pick the grouped steps first: a long run (10,000 x 50 x 50) is never copied whole.
    idx = sample_indices(len(steps), points)
    grouped = stack if len(idx) == len(steps) else stack[idx]
    g = grouper_for(method, k, tau, len(tasks))
    tl = group_timeline(steps[idx], np.nan_to_num(grouped), tasks, g, smoothing="none")
    labels = tl.membership()  # a task in two (TAG) groups: the smaller id
    labels[labels == np.iinfo(np.int64).max] = -1
    return Timeline(
        tl.steps, labels, list(tl.change_steps), list(tl.groupings), list(tl.ids), grouped
    )


# ----------------------------------------------------------------------------- about groupings


def labels_of(grouping: Iterable[Iterable[str]], tasks: Sequence[str]) -> np.ndarray:
    """One label per task, ``(n,)``: the index of the first group holding it (-1 if none).

    Overlapping groups (TAG) are reduced to a partition this way for agreement scores.
    """
    out = np.full(len(tasks), -1, dtype=np.intp)
    pos = {t: i for i, t in enumerate(tasks)}
    for g, members in enumerate(grouping):
        for t in sorted(members):
            i = pos.get(t)
            if i is not None and out[i] < 0:
                out[i] = g
    return out


def agreement(
    a: Iterable[Iterable[str]], b: Iterable[Iterable[str]], tasks: Sequence[str]
) -> float:
    """Adjusted Rand index (scikit-learn's ``adjusted_rand_score``) between two groupings of
    ``tasks``: 1 = the same groups, about 0 = no more alike than chance. Tasks missing from
    either grouping are left out; overlapping groups count by their first group."""
    from sklearn.metrics import adjusted_rand_score  # lazy: sklearn.metrics imports in ~1 s

    la, lb = labels_of(a, tasks), labels_of(b, tasks)
    keep = (la >= 0) & (lb >= 0)
    return float(adjusted_rand_score(la[keep], lb[keep]))


def group_order(
    tasks: Sequence[str], base_order: Sequence[int], grouping: Iterable[Iterable[str]] | None
) -> np.ndarray:
    """Row order (indices into ``tasks``) that keeps groups contiguous (groups in order of
    their first task in ``base_order``), tasks inside a group in ``base_order``. Without
    groups: ``base_order``."""
    base = [int(i) for i in base_order]
    if not grouping:
        return np.asarray(base, dtype=np.intp)
    labels = labels_of(grouping, tasks)
    rank = {i: r for r, i in enumerate(base)}
    first: dict[int, int] = {}
    for i in base:
        first.setdefault(int(labels[i]), rank[i])
    return np.asarray(sorted(base, key=lambda i: (first[int(labels[i])], rank[i])), dtype=np.intp)


def group_table(groups: Grouping, M: np.ndarray, tasks: list[str]) -> list[dict]:
    """One row per group: members, size and the mean affinity inside the group (``None`` for a
    task alone), from the ``(n, n)`` matrix ``M`` the groups were made from."""
    rows = []
    index = {t: i for i, t in enumerate(tasks)}
    for g, members in enumerate(groups):
        idx = [index[t] for t in sorted(members)]
        sub = M[np.ix_(idx, idx)]
        off = sub[~np.eye(len(idx), dtype=bool)]
        rows.append(
            {
                "group": g + 1,
                "tasks": ", ".join(sorted(members)),
                "size": len(idx),
                "mean": float(np.nanmean(off)) if len(idx) > 1 else None,
            }
        )
    return rows
