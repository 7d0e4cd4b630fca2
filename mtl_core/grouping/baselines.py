"""Baseline groupings every method should be compared with."""

from __future__ import annotations

import numpy as np

from mtl_core.grouping.base import BaseGrouper, check_budget, labels_to_grouping
from mtl_core.types import AffinityMatrix, Grouping


class AllTogether(BaseGrouper):
    """One network for all tasks (classic hard parameter sharing)."""

    method = "together"

    def _fit(self, A: AffinityMatrix, tasks: list[str]) -> Grouping:
        return (frozenset(tasks),)

    def _batch_labels(self, A: np.ndarray, tasks: list[str]) -> np.ndarray:
        return np.zeros((A.shape[0], len(tasks)), dtype=np.intp)


class EveryTaskAlone(BaseGrouper):
    """One network per task (no sharing, no transfer: TAG value 0)."""

    method = "single"

    def _fit(self, A: AffinityMatrix, tasks: list[str]) -> Grouping:
        return tuple(frozenset([t]) for t in tasks)

    def _batch_labels(self, A: np.ndarray, tasks: list[str]) -> np.ndarray:
        return np.tile(np.arange(len(tasks)), (A.shape[0], 1))


class RandomGrouper(BaseGrouper):
    """A random partition into ``min(k, n)`` non-empty groups, reproducible from ``seed``.

    Parameters
    ----------
    k : int
        Number of groups.
    seed : int
        Random seed; the same seed and task list always give the same grouping.
    min_size : int
        Smallest group size (e.g. 2 to match TAG's groups); ``k`` is lowered to
        ``n // min_size`` when needed.
    """

    method = "random"

    def __init__(self, k: int = 2, *, seed: int = 0, min_size: int = 1) -> None:
        self.k = k
        self.seed = seed
        self.min_size = min_size

    def _check_params(self, n_tasks: int) -> None:
        check_budget(self.k)
        check_budget(self.min_size, "min_size")

    def _fit(self, A: AffinityMatrix, tasks: list[str]) -> Grouping:
        n = len(tasks)
        k = max(1, min(int(self.k), n // int(self.min_size) if n >= int(self.min_size) else 1))
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(n)
        labels = np.empty(n, dtype=np.intp)
        # Guarantee min_size members per group, then scatter the rest uniformly.
        need = min(n, k * int(self.min_size))
        labels[perm[:need]] = np.arange(need) % k
        labels[perm[need:]] = rng.integers(0, k, size=n - need)
        return labels_to_grouping(tasks, labels)


def random_groupings(
    tasks: list[str], k: int, n: int, seed: int = 0, min_size: int = 1
) -> list[Grouping]:
    """``n`` distinct-seed random partitions (seeds ``seed, seed+1, ...``) without fitting."""
    A = np.zeros((len(tasks), len(tasks)))
    return [
        RandomGrouper(k, seed=seed + i, min_size=min_size).fit(A, tasks).groups_ for i in range(n)
    ]
