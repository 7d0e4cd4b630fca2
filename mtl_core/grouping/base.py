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


#: How each method reads an unmeasured (NaN) off-diagonal cell ``A[i, j]``:
#: ``"zero"``: as 0, no measured transfer (TAG: directional, a lone task also scores 0);
#: ``"mirror"``: as ``A[j, i]`` when that is measured, else 0 (the symmetrizing methods, which
#: average the two directions, so one measured direction stands for the pair).
#: The diagonal is never read as a value (see :func:`fill_unmeasured`).
UNMEASURED_RULES = {
    "tag": "zero",
    "threshold": "mirror",
    "hierarchical": "mirror",
    "affinity-propagation": "mirror",
}
UNMEASURED_RULE_TEXT = {
    "zero": "0 (no measured transfer)",
    "mirror": "the other direction's value, or 0 when neither is measured",
}


def fill_unmeasured(A: np.ndarray, rule: str = "zero") -> tuple[np.ndarray, int]:
    """The one rule for unmeasured cells in grouping: ``(filled copy, unmeasured off-diagonal
    cells)``.

    ``A``: (n, n) or (..., n, n), rows = source, NaN (or inf) = unmeasured. The diagonal is
    set to 0 when unmeasured: no grouper reads a task's effect on itself as a value (TAG's
    scores leave it out; affinity propagation scales a column by its diagonal only when it
    is measured and positive, else by the column's largest magnitude). Off-diagonal cells
    follow ``rule`` (:data:`UNMEASURED_RULES`).
    """
    M = np.array(A, dtype=np.float64)
    M[~np.isfinite(M)] = np.nan
    n = M.shape[-1]
    diag = np.arange(n)
    d = M[..., diag, diag]
    M[..., diag, diag] = np.where(np.isnan(d), 0.0, d)
    missing = np.isnan(M)
    count = int(missing.sum())
    if not count:
        return M, 0
    if rule == "mirror":
        M = np.where(missing, np.swapaxes(M, -1, -2), M)
    return np.where(np.isnan(M), 0.0, M), count


def validate_affinity(
    A: object, tasks: Sequence[str], *, allow_unmeasured: bool = False
) -> tuple[AffinityMatrix, list[str]]:
    """Check an affinity matrix and its task names; return them as ``(float array, list)``.

    ``allow_unmeasured``: NaN/inf cells pass (as NaN), for :meth:`BaseGrouper.fit`, which
    reads them by the method's rule (:func:`fill_unmeasured`); otherwise they are refused.

    Raises
    ------
    LabError
        If the matrix is not a square 2-D array (finite, unless ``allow_unmeasured``), or
        the names are not unique strings matching its size. Messages say what to fix.
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
    if bad.any() and allow_unmeasured:
        if bad.all():
            raise LabError("affinity matrix has no measured (finite) cell")
        return np.where(bad, np.nan, M), names
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


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Relabel each row of ``(T, n)`` partition labels by the index of its class's first
    member. Two rows describe the same partition exactly when their canonical labels are
    equal."""
    L = np.asarray(labels)
    eq = L[:, :, None] == L[:, None, :]
    return eq.argmax(axis=2)


class BaseGrouper:
    """scikit-learn style base: ``__init__`` stores arguments, ``fit`` validates and fits.

    After ``fit(A, tasks)``: ``groups_`` (canonical grouping), ``score_`` (its TAG value, see
    :func:`tag_value`, on the matrix as the method read it), ``tasks_``, ``n_groups_``,
    ``unmeasured_`` (unmeasured off-diagonal cells, read by the method's rule in
    :data:`UNMEASURED_RULES`) and ``warning_``: ``None``, or one sentence saying what the
    method could not do (e.g. affinity propagation did not converge, so the groups are a
    fallback rather than clusters). Callers show it next to the groups. Subclasses implement
    ``_fit`` and may set more trailing-underscore attributes.
    """

    #: Short name used by :func:`mtl_core.grouping.make_grouper` and the CLI.
    method: str = "base"

    @property
    def unmeasured_rule(self) -> str:
        """How this method reads an unmeasured off-diagonal cell (:data:`UNMEASURED_RULES`)."""
        return UNMEASURED_RULES.get(self.method, "zero")

    def fit(self, A: AffinityMatrix, tasks: Sequence[str]) -> BaseGrouper:
        """Validate ``A`` (source rows, target columns) and ``tasks``, then find the groups.

        NaN cells are unmeasured: the diagonal is never read, an off-diagonal cell by the
        method's rule (:data:`UNMEASURED_RULES`); a matrix with no finite cell is refused.
        """
        M, names = validate_affinity(A, tasks, allow_unmeasured=True)
        M, self.unmeasured_ = fill_unmeasured(M, self.unmeasured_rule)
        self._check_params(len(names))
        self.warning_: str | None = None
        groups = self._fit(M, names)
        self.groups_: Grouping = canonical_grouping(groups)
        self.tasks_: list[str] = names
        self.n_groups_: int = len(self.groups_)
        self.score_: float = tag_value(M, names, self.groups_)
        return self

    @property
    def batched(self) -> bool:
        """Whether :meth:`fit_batch` labels a whole stack in one vectorized call (partition
        methods with a batched form: threshold components, hierarchical, affinity
        propagation, the baselines) rather than fitting it matrix by matrix."""
        return type(self)._batch_labels is not BaseGrouper._batch_labels

    def fit_batch(self, stack: np.ndarray, tasks: Sequence[str]) -> list[Grouping]:
        """Group every matrix of a stack, e.g. the smoothed affinity at each logged step.

        Parameters
        ----------
        stack : (T, n, n) array
            ``stack[s, i, j]``: effect of task i's update on task j's loss in matrix s (rows =
            sources). NaN/inf cells are unmeasured and read by the method's rule
            (:data:`UNMEASURED_RULES`, :func:`fill_unmeasured`), as :meth:`fit` reads one.
        tasks : the n task names.

        Returns
        -------
        list of Grouping
            One canonical grouping per matrix, equal to ``fit(stack[s], tasks).groups_``.
            With a batched form (:attr:`batched`) the whole stack is labelled in one call and
            consecutive equal partitions are one shared object (built once), so a caller
            comparing neighbours pays nothing for steps where nothing changed. The fitted
            attributes of :meth:`fit` (``groups_``, ``score_``, ...) are not set.

        Raises
        ------
        LabError
            Not a ``(T, n, n)`` stack, bad task names, no measured cell anywhere, or the
            grouper's parameters do not fit ``n`` tasks.
        """
        try:
            X = np.asarray(stack, dtype=np.float64)
        except (TypeError, ValueError):
            raise LabError("affinity stack must be numeric (steps x tasks x tasks)") from None
        if X.ndim != 3 or X.shape[1] != X.shape[2]:
            shape = " x ".join(str(d) for d in X.shape) or "a scalar"
            raise LabError(
                f"need a stack of square affinity matrices (steps x tasks x tasks); got {shape}"
            )
        _, names = validate_affinity(np.zeros(X.shape[1:]), tasks)
        if not len(X):
            return []
        if not np.isfinite(X).any():
            raise LabError("affinity stack has no measured (finite) cell")
        self._check_params(len(names))
        self.warning_ = None
        M, _ = fill_unmeasured(X, self.unmeasured_rule)
        labels = self._batch_labels(M, names) if self.batched else None
        if labels is None:
            return [canonical_grouping(self._fit(m, names)) for m in M]
        canon = canonical_labels(np.asarray(labels))
        out: list[Grouping] = []
        for s in range(len(canon)):
            if s and np.array_equal(canon[s], canon[s - 1]):
                out.append(out[-1])
            else:
                out.append(labels_to_grouping(names, canon[s]))
        return out

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
        """Optional fast path of :meth:`fit_batch`: one partition label vector per matrix of
        a validated, filled ``(T, n, n)`` stack, or None when the method is not a partition
        or has no batched form (then ``_fit`` is called per matrix). Subclasses only."""
        return None
