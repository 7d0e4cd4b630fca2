"""Groups over time: the grouping at every logged step, with stable group identities.

Given the affinity matrices logged during a run, smooth them (running mean, windowed mean or
EMA: :func:`mtl_core.series.smooth`, the one smoothing every view uses), group each smoothed
matrix, and match the groups of consecutive steps by overlap with an assignment solver
(Hungarian, scipy's ``linear_sum_assignment`` on the Jaccard overlap) so a group keeps its id,
and hence its colour in the app, while its membership stays recognisably the same. A group that
matches nothing gets a fresh id; ids are never reused. The steps where the grouping changes are
reported.

Speed: the app regroups on every slider move, so smoothing is one vectorized pass over all
steps, validation happens once, and grouping can run on an evenly spaced subset of steps
(``max_points``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.grouping.base import BaseGrouper, validate_affinity
from mtl_core.series import sample_indices, smooth
from mtl_core.types import Grouping


def match_ids(
    prev: Grouping, prev_ids: Sequence[int], new: Grouping, next_id: int
) -> tuple[tuple[int, ...], int]:
    """Give each group of ``new`` the id of the ``prev`` group it overlaps most.

    One-to-one matching maximising total Jaccard overlap (Hungarian algorithm); groups without
    any overlapping partner get fresh ids from ``next_id``. Returns ``(ids, next_id)``.
    """
    from scipy.optimize import linear_sum_assignment  # lazy: scipy.optimize is slow to import

    ids = [-1] * len(new)
    if prev and new:
        W = np.array([[len(a & b) / len(a | b) for b in new] for a in prev])
        rows, cols = linear_sum_assignment(W, maximize=True)
        for r, c in zip(rows, cols):
            if W[r, c] > 0:
                ids[c] = int(prev_ids[r])
    for i in range(len(new)):
        if ids[i] < 0:
            ids[i] = next_id
            next_id += 1
    return tuple(ids), next_id


@dataclass(frozen=True)
class GroupTimeline:
    """Groupings over time. ``groupings[s]`` holds at ``steps[s]``; ``ids[s][g]`` is the stable
    id of ``groupings[s][g]``; ``change_steps`` are the steps whose grouping differs from the
    previous grouped step's."""

    steps: np.ndarray
    tasks: list[str]
    groupings: list[Grouping]
    ids: list[tuple[int, ...]]
    change_steps: list[int]

    def frame(self) -> pd.DataFrame:
        """Long-form ``step, task, group_id`` rows (a task in two groups has two rows)."""
        rows = [
            (int(step), t, gid)
            for step, groups, gids in zip(self.steps, self.groupings, self.ids)
            for g, gid in zip(groups, gids)
            for t in sorted(g)
        ]
        return pd.DataFrame(rows, columns=["step", "task", "group_id"])

    def membership(self) -> np.ndarray:
        """``(steps, tasks)`` array of group ids (a task in several groups: the smallest id)."""
        index = {t: i for i, t in enumerate(self.tasks)}
        out = np.full((len(self.steps), len(self.tasks)), np.iinfo(np.int64).max, dtype=np.int64)
        for s, (groups, gids) in enumerate(zip(self.groupings, self.ids)):
            for g, gid in zip(groups, gids):
                for t in g:
                    out[s, index[t]] = min(out[s, index[t]], gid)
        return out


def group_timeline(
    steps: Sequence[int] | np.ndarray,
    mats: np.ndarray,
    tasks: Sequence[str],
    grouper: BaseGrouper,
    *,
    smoothing: str = "running",
    window: int = 20,
    beta: float = 0.9,
    max_points: int | None = None,
) -> GroupTimeline:
    """Group the smoothed affinity at every logged step (or ``max_points`` of them).

    Parameters
    ----------
    steps : (T,) ints
        Training step of each matrix, increasing.
    mats : (T, n, n) array
        ``mats[s, i, j]``: effect of task i's update on task j's loss at ``steps[s]``.
    grouper : BaseGrouper
        Any grouper (its parameters are checked once); it is refitted at each grouped step.
    """
    X = np.asarray(mats, dtype=np.float64)
    st = np.asarray(steps)
    if X.ndim != 3 or X.shape[0] != len(st):
        raise LabError(f"need one matrix per step: {len(st)} steps, matrices of shape {X.shape}")
    if len(st) == 0:
        raise LabError("the affinity log has no steps to group")
    if np.any(np.diff(st) <= 0):
        raise LabError("steps must be strictly increasing")
    X = np.where(np.isfinite(X), X, np.nan)  # a non-finite cell is unmeasured
    _, names = validate_affinity(X[0], tasks, allow_unmeasured=True)
    # Smoothing skips unmeasured cells; a cell not measured up to a step is read by the
    # method's rule inside fit_batch, as BaseGrouper.fit reads one matrix. Partition methods
    # label the stack in one call and repeat one Grouping object while nothing changes.
    idx = sample_indices(len(st), max_points)
    fitted = grouper.fit_batch(smooth(X, smoothing, window=window, beta=beta)[idx], names)
    groupings: list[Grouping] = []
    ids: list[tuple[int, ...]] = []
    changes: list[int] = []
    prev: Grouping = ()
    prev_ids: tuple[int, ...] = ()
    next_id = 0
    for s, g in enumerate(fitted):
        if g is prev or g == prev:
            g, gids = prev, prev_ids
        else:
            gids, next_id = match_ids(prev, prev_ids, g, next_id)
            if prev:
                changes.append(int(st[idx[s]]))
        groupings.append(g)
        ids.append(gids)
        prev, prev_ids = g, gids
    return GroupTimeline(st[idx].astype(np.int64), names, groupings, ids, changes)
