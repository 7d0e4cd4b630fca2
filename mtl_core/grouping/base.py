"""Shared pieces of every grouper: input validation, the TAG value of a grouping, the base class.

Direction everywhere: ``A[i, j]`` is the effect of an update on task i's loss (the *source*) on
task j's loss (the *target*); positive means the update helps. A grouping is a
``tuple[frozenset[str], ...]`` in :func:`mtl_core.types.canonical_grouping` order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from mtl_core.errors import LabError
from mtl_core.types import AffinityMatrix, Grouping, canonical_grouping

#: Score of a task that is alone in its group. A lone task gets no transfer from anyone, so its
#: score is 0: the neutral point of every affinity measure (positive helps, negative hurts).
SINGLETON_SCORE = 0.0


def validate_affinity(A: object, tasks: Sequence[str]) -> tuple[AffinityMatrix, list[str]]:
    """Check an affinity matrix and its task names; return them as ``(float array, list)``.

    Raises
    ------
    LabError
        If the matrix is not a finite square 2-D array, or the names are not unique strings
        matching its size. Messages say what to fix.
    """
    try:
        M = np.asarray(A, dtype=np.float64)
    except (TypeError, ValueError):
        raise LabError(
            "affinity matrix must be numeric (rows = source, columns = target)"
        ) from None
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        shape = " x ".join(str(s) for s in M.shape) or "a scalar"
        raise LabError(
            f"affinity matrix must be square (rows = source tasks, columns = target tasks); "
            f"got {shape}"
        )
    n = M.shape[0]
    if n == 0:
        raise LabError("affinity matrix is empty: it needs at least one task")
    names = list(tasks)
    if len(names) != n:
        raise LabError(f"got {len(names)} task names for a {n} x {n} affinity matrix")
    for t in names:
        if not isinstance(t, str) or not t:
            raise LabError(f"task names must be non-empty strings, got {t!r}")
    seen: set[str] = set()
    for t in names:
        if t in seen:
            raise LabError(f"task names must be unique; {t!r} appears more than once")
        seen.add(t)
    bad = ~np.isfinite(M)
    if bad.any():
        i, j = (int(x) for x in np.argwhere(bad)[0])
        raise LabError(
            f"affinity matrix has {int(bad.sum())} NaN or infinite value(s), first at source "
            f"{names[i]!r} -> target {names[j]!r}; fill them or drop those tasks"
        )
    return M, names


def check_budget(k: object, name: str = "k") -> int:
    """Return ``k`` as an int >= 1 or raise :class:`LabError`."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) < 1:
        raise LabError(f"{name} (the number of groups) must be an integer >= 1, got {k!r}")
    return int(k)


def symmetrize(A: AffinityMatrix) -> AffinityMatrix:
    """``(A + A.T) / 2``: how much two tasks help each other on average, either direction."""
    A = np.asarray(A, dtype=np.float64)
    return (A + A.T) / 2.0


def _group_indices(tasks: Sequence[str], groups: Iterable[Iterable[str]]) -> list[np.ndarray]:
    index = {t: i for i, t in enumerate(tasks)}
    out = []
    for g in groups:
        members = list(dict.fromkeys(g))
        if not members:
            raise LabError("a grouping cannot contain an empty group")
        unknown = [t for t in members if t not in index]
        if unknown:
            raise LabError(f"grouping names unknown task(s): {', '.join(map(str, unknown))}")
        out.append(np.array(sorted(index[t] for t in members), dtype=np.intp))
    return out


def group_task_scores(A: AffinityMatrix, members: np.ndarray) -> np.ndarray:
    """Score of each member of one group: mean affinity onto it from the *other* members.

    ``score[t] = mean_{i in G, i != t} A[i, t]``; a group of one scores ``SINGLETON_SCORE``.
    Returned in the order of ``members``.
    """
    if len(members) == 1:
        return np.array([SINGLETON_SCORE])
    sub = A[np.ix_(members, members)]
    return (sub.sum(axis=0) - np.diag(sub)) / (len(members) - 1)


def task_scores(
    A: AffinityMatrix, tasks: Sequence[str], groups: Iterable[Iterable[str]]
) -> np.ndarray:
    """Each task's best score over the groups that contain it (order of ``tasks``).

    Raises :class:`LabError` if a task is in no group.
    """
    A, tasks = validate_affinity(A, tasks)
    best = np.full(len(tasks), -np.inf)
    for members in _group_indices(tasks, groups):
        best[members] = np.maximum(best[members], group_task_scores(A, members))
    missing = [tasks[i] for i in np.flatnonzero(np.isneginf(best))]
    if missing:
        raise LabError(f"grouping leaves task(s) in no group: {', '.join(missing)}")
    return best


def tag_value(A: AffinityMatrix, tasks: Sequence[str], groups: Iterable[Iterable[str]]) -> float:
    """TAG value of any grouping (Fifty et al. 2021): mean over tasks of the best group score.

    A task's score in group ``G`` is ``mean_{i in G, i != t} A[i, t]`` (what the other members'
    updates do to its loss); a task alone scores 0. Groups may overlap; every task must be in
    at least one group. Higher is better.
    """
    return float(task_scores(A, tasks, groups).mean())


def labels_to_grouping(tasks: Sequence[str], labels: Sequence[int] | np.ndarray) -> Grouping:
    """Turn one cluster label per task into a canonical grouping (a partition)."""
    buckets: dict[int, list[str]] = {}
    for t, lab in zip(tasks, np.asarray(labels).tolist()):
        buckets.setdefault(int(lab), []).append(t)
    return canonical_grouping(buckets.values())


class BaseGrouper:
    """scikit-learn style base: ``__init__`` stores arguments, ``fit`` validates and fits.

    After ``fit(A, tasks)``: ``groups_`` (canonical grouping), ``score_`` (its TAG value, see
    :func:`tag_value`), ``tasks_``, ``n_groups_`` and ``warning_``: ``None``, or one sentence
    saying what the method could not do (e.g. affinity propagation did not converge, so the
    groups are a fallback rather than clusters). Callers show it next to the groups. Subclasses
    implement ``_fit`` and may set more trailing-underscore attributes.
    """

    #: Short name used by :func:`mtl_core.grouping.make_grouper` and the CLI.
    method: str = "base"

    def fit(self, A: AffinityMatrix, tasks: Sequence[str]) -> BaseGrouper:
        """Validate ``A`` (source rows, target columns) and ``tasks``, then find the groups."""
        M, names = validate_affinity(A, tasks)
        self._check_params(len(names))
        self.warning_: str | None = None
        groups = self._fit(M, names)
        self.groups_: Grouping = canonical_grouping(groups)
        self.tasks_: list[str] = names
        self.n_groups_: int = len(self.groups_)
        self.score_: float = tag_value(M, names, self.groups_)
        return self

    def fit_groups(self, A: AffinityMatrix, tasks: Sequence[str]) -> Grouping:
        """``fit(A, tasks).groups_`` in one call."""
        return self.fit(A, tasks).groups_

    def get_params(self) -> dict[str, object]:
        """Constructor arguments, as stored (for records and reproducibility)."""
        return {
            k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_params(self, n_tasks: int) -> None:
        """Validate constructor arguments at fit time (sklearn: never in ``__init__``)."""

    def _fit(self, A: AffinityMatrix, tasks: list[str]) -> Iterable[Iterable[str]]:
        raise NotImplementedError

    def _batch_labels(self, A: np.ndarray, tasks: list[str]) -> np.ndarray | None:
        """Optional fast path for timelines: one partition label vector per matrix of a
        validated ``(T, n, n)`` stack, or None when the method is not a partition or has no
        batched form (then ``_fit`` is called per step)."""
        return None
