"""Hierarchical (agglomerative) clustering of tasks on the symmetrized affinity.

Distance between tasks i and j: ``d = s_max - (A[i, j] + A[j, i]) / 2`` with ``s_max`` the
largest off-diagonal symmetrized affinity, so the pair that helps each other most is at
distance 0 and distances are never negative. Cut the tree into ``k`` clusters, or at a
distance; ``tau`` (an affinity level) is accepted as the same cut as ``distance = s_max - tau``,
which makes it comparable with the threshold grouper. The tree's leaf order (optimal leaf
ordering) is what the app uses to order heatmap rows so blocks show.
"""

from __future__ import annotations

import warnings

import numpy as np

from mtl_core.errors import LabError
from mtl_core.grouping.base import (
    BaseGrouper,
    check_budget,
    labels_to_grouping,
    symmetrize,
    validate_affinity,
)
from mtl_core.types import AffinityMatrix, Grouping

LINKAGES = ("average", "complete", "single", "weighted")


def affinity_distance(A: AffinityMatrix) -> tuple[np.ndarray, float]:
    """Square distance matrix ``s_max - sym(A)`` (zero diagonal) and ``s_max``."""
    S = symmetrize(A)
    n = S.shape[0]
    off = S[~np.eye(n, dtype=bool)]
    s_max = float(off.max()) if off.size else 0.0
    D = s_max - S
    np.fill_diagonal(D, 0.0)
    return np.maximum(D, 0.0), s_max


def _tree(A: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    # scipy.cluster costs ~1 s to import: load it only when a tree is built.
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import squareform

    D, _ = affinity_distance(A)
    condensed = squareform(D, checks=False)
    Z = linkage(condensed, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # OLO warns on ties only; the order is still valid
        Z = optimal_leaf_ordering(Z, condensed)
    return Z, leaves_list(Z)


def batch_cut_labels(
    A: np.ndarray, method: str = "average", *, k: int | None = None, cut: float | None = None
) -> np.ndarray:
    """Cluster labels for a ``(T, n, n)`` stack, all T trees built at once.

    Lance-Williams agglomeration vectorized over T: each of the ``n - 1`` rounds merges the
    closest pair in every matrix with one argmin. Stops after ``n - k`` merges (``k`` groups)
    or where the next merge is above ``cut`` (scipy's ``maxclust`` / ``distance`` cuts; same
    results as scipy when there are no tied distances, which the tests check). ``cut`` is on
    each matrix's own :func:`affinity_distance`; pass ``cut=None`` and ``k`` or a per-matrix
    array of cuts.
    """
    X = np.asarray(A, dtype=np.float64)
    T, n, _ = X.shape
    S = (X + np.swapaxes(X, 1, 2)) / 2.0
    off = ~np.eye(n, dtype=bool)
    s_max = S[:, off].max(axis=1) if n > 1 else np.zeros(T)
    D = np.maximum(s_max[:, None, None] - S, 0.0)
    D[:, ~off] = np.inf
    size = np.ones((T, n))
    labels = np.tile(np.arange(n), (T, 1))
    cuts = None if cut is None else np.broadcast_to(np.asarray(cut, dtype=np.float64), (T,))
    for m in range(n - 1):
        if k is not None and n - m <= k:
            break
        flat = D.reshape(T, -1)
        idx = flat.argmin(axis=1)
        h = flat[np.arange(T), idx]
        act = np.ones(T, dtype=bool) if cuts is None else h <= cuts
        if not act.any():
            break
        t = np.flatnonzero(act)
        i, j = idx[t] // n, idx[t] % n
        a, b = np.minimum(i, j), np.maximum(i, j)  # keep a, retire b
        da, db = D[t, a, :], D[t, b, :]
        na, nb = size[t, a][:, None], size[t, b][:, None]
        if method == "average":
            new = (na * da + nb * db) / (na + nb)
        elif method == "complete":
            new = np.maximum(da, db)
        elif method == "single":
            new = np.minimum(da, db)
        else:  # weighted
            new = (da + db) / 2.0
        D[t, a, :] = new
        D[t, :, a] = new
        D[t, b, :] = np.inf
        D[t, :, b] = np.inf
        D[t, a, a] = np.inf
        size[t, a] += size[t, b]
        lab = labels[t]
        labels[t] = np.where(lab == b[:, None], a[:, None], lab)
    return labels


def leaf_order(
    A: AffinityMatrix, tasks: list[str] | None = None, method: str = "average"
) -> np.ndarray:
    """Row order (task indices) that puts mutually helpful tasks next to each other.

    For heatmaps: ``A[np.ix_(order, order)]`` shows the blocks. Uses the optimal leaf ordering
    of the average-linkage tree on :func:`affinity_distance`.
    """
    names = tasks if tasks is not None else [f"t{i}" for i in range(np.asarray(A).shape[0])]
    M, _ = validate_affinity(A, names)
    if M.shape[0] <= 2:
        return np.arange(M.shape[0])
    return _tree(M, method)[1]


class HierarchicalGrouper(BaseGrouper):
    """Agglomerative clustering cut into ``k`` groups or at a distance / affinity level.

    Parameters
    ----------
    k : int or None
        Number of groups (at most; ties can give fewer).
    distance : float or None
        Cut height on ``s_max - sym(A)``: tasks merge while their linkage distance is <= it.
    tau : float or None
        Same cut expressed as an affinity level: ``distance = s_max - tau``.
    linkage : {"average", "complete", "single", "weighted"}
        How cluster distances are combined (average by default; single chains like threshold
        components, complete is clique-like).

    Exactly one of ``k``, ``distance``, ``tau`` must be given.

    Attributes
    ----------
    groups_, score_ :
        As for every grouper.
    order_ : ndarray of int
        Leaf order of the tree (task indices) for heatmap rows.
    order_tasks_ : list of str
        The same order as task names.
    linkage_ : ndarray
        scipy linkage matrix (for a dendrogram); empty for fewer than two tasks.
    """

    method = "hierarchical"

    def __init__(
        self,
        k: int | None = None,
        *,
        distance: float | None = None,
        tau: float | None = None,
        linkage: str = "average",
    ) -> None:
        self.k = k
        self.distance = distance
        self.tau = tau
        self.linkage = linkage

    def _check_params(self, n_tasks: int) -> None:
        given = [x is not None for x in (self.k, self.distance, self.tau)]
        if sum(given) != 1:
            raise LabError(
                "hierarchical grouping needs exactly one cut: a number of groups k, "
                "a distance, or an affinity level tau"
            )
        if self.k is not None:
            check_budget(self.k)
        for name in ("distance", "tau"):
            v = getattr(self, name)
            if v is not None and not np.isfinite(float(v)):
                raise LabError(f"hierarchical {name} must be a finite number, got {v!r}")
        if self.linkage not in LINKAGES:
            raise LabError(
                f"unknown linkage {self.linkage!r}; choose one of: {', '.join(LINKAGES)}"
            )

    def _fit(self, A: AffinityMatrix, tasks: list[str]) -> Grouping:
        n = len(tasks)
        if n == 1:
            self.order_ = np.zeros(1, dtype=np.intp)
            self.order_tasks_ = list(tasks)
            self.linkage_ = np.zeros((0, 4))
            return (frozenset(tasks),)
        from scipy.cluster.hierarchy import fcluster

        Z, order = _tree(A, self.linkage)
        self.linkage_, self.order_ = Z, order
        self.order_tasks_ = [tasks[i] for i in order]
        if self.k is not None:
            want = min(int(self.k), n)
            labels = fcluster(Z, t=want, criterion="maxclust")
            got = len(np.unique(labels))
            if got < want:
                self.warning_ = (
                    f"asked for {want} groups but tied affinities merge at the same level, "
                    f"so the tree cuts into {got}"
                )
        else:
            _, s_max = affinity_distance(A)
            cut = float(self.distance) if self.distance is not None else s_max - float(self.tau)
            # A merge at exactly the cut height happens (fcluster's "<=" rule).
            labels = fcluster(Z, t=cut, criterion="distance") if cut >= 0 else np.arange(n)
        return labels_to_grouping(tasks, labels)

    def _batch_labels(self, A: np.ndarray, tasks: list[str]) -> np.ndarray:
        if self.k is not None:
            return batch_cut_labels(A, self.linkage, k=int(self.k))
        if self.distance is not None:
            return batch_cut_labels(A, self.linkage, cut=float(self.distance))
        S = (A + np.swapaxes(A, 1, 2)) / 2.0
        off = ~np.eye(A.shape[1], dtype=bool)
        s_max = S[:, off].max(axis=1) if A.shape[1] > 1 else np.zeros(A.shape[0])
        return batch_cut_labels(A, self.linkage, cut=s_max - float(self.tau))
