"""Threshold grouping: link two tasks when their symmetrized affinity reaches ``tau``.

Which group definition, and why. Two tasks i, j are *linked* when
``(A[i, j] + A[j, i]) / 2 >= tau``. The default groups are the **connected components** of
that graph:

* they form a partition (every task in exactly one group, lone tasks alone), which is what the
  app colours and what a "train these together" answer needs;
* they are monotone in ``tau``: raising the threshold only ever splits groups, so a slider
  behaves predictably, and the result is unique and O(n^2);
* the cost: linking is transitive, so a chain a~b, b~c puts a and c together even when they
  hurt each other.

``definition="cliques"`` gives the stricter answer: the maximal cliques, groups in which
*every* pair is linked. They can overlap (a task in several groups, like TAG selection), their
number can grow quickly with n, and small changes of ``tau`` can reshuffle them, so they are an
option for inspection rather than the default.
"""

from __future__ import annotations

import numpy as np

from mtl_core.errors import LabError
from mtl_core.grouping.base import BaseGrouper, labels_to_grouping, symmetrize
from mtl_core.types import AffinityMatrix, Grouping, canonical_grouping

DEFINITIONS = ("components", "cliques")


def link_matrix(A: AffinityMatrix, tau: float) -> np.ndarray:
    """Boolean adjacency: ``(A + A.T) / 2 >= tau`` off the diagonal."""
    L = symmetrize(A) >= float(tau)
    np.fill_diagonal(L, False)
    return L


def maximal_cliques(adj: np.ndarray) -> list[list[int]]:
    """All maximal cliques of an undirected graph (Bron-Kerbosch with pivoting)."""
    n = adj.shape[0]
    nbrs = [set(np.flatnonzero(adj[i]).tolist()) for i in range(n)]
    out: list[list[int]] = []

    def expand(r: list[int], p: set[int], x: set[int]) -> None:
        if not p and not x:
            out.append(sorted(r))
            return
        pivot = max(p | x, key=lambda u: len(nbrs[u] & p))
        for v in sorted(p - nbrs[pivot]):
            expand(r + [v], p & nbrs[v], x & nbrs[v])
            p = p - {v}
            x = x | {v}

    expand([], set(range(n)), set())
    return out


class ThresholdGrouper(BaseGrouper):
    """Group tasks whose symmetrized affinity is at least ``tau``.

    Parameters
    ----------
    tau : float
        Link threshold on ``(A + A.T) / 2``. 0 links every pair that helps each other on
        average.
    definition : {"components", "cliques"}
        Connected components (default, a partition) or maximal cliques (may overlap); see the
        module docstring for why components are the default.

    Attributes
    ----------
    groups_, score_ :
        As for every grouper (``score_`` is the TAG value of the groups).
    links_ : ndarray of bool
        The link matrix used.
    """

    method = "threshold"

    def __init__(self, tau: float = 0.0, *, definition: str = "components") -> None:
        self.tau = tau
        self.definition = definition

    def _check_params(self, n_tasks: int) -> None:
        try:
            ok = np.isfinite(float(self.tau))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise LabError(f"threshold tau must be a finite number, got {self.tau!r}")
        if self.definition not in DEFINITIONS:
            raise LabError(
                f"unknown threshold definition {self.definition!r}; "
                f"choose one of: {', '.join(DEFINITIONS)}"
            )

    def _fit(self, A: AffinityMatrix, tasks: list[str]) -> Grouping:
        self.links_ = link_matrix(A, float(self.tau))
        if len(tasks) > 1 and not self.links_.any():
            self.warning_ = (
                f"no pair of tasks reaches the threshold {float(self.tau):.4g}, so every task "
                "is alone; lower the threshold to link the pairs that help each other most"
            )
        if self.definition == "components":
            return threshold_components(A, tasks, float(self.tau), links=self.links_)
        return canonical_grouping(
            frozenset(tasks[i] for i in c) for c in maximal_cliques(self.links_)
        )

    @property
    def batched(self) -> bool:
        """Connected components have a batched form; maximal cliques (they overlap) do not."""
        return self.definition == "components"

    def _batch_labels(self, A: np.ndarray, tasks: list[str]) -> np.ndarray | None:
        if self.definition != "components":
            return None  # cliques overlap: not a partition
        return batch_components(A, float(self.tau))


def batch_components(A: np.ndarray, tau: float) -> np.ndarray:
    """Connected-component labels for a ``(T, n, n)`` stack in one sparse graph call.

    The T link graphs are laid side by side as one block-diagonal graph of ``T * n`` nodes.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    T, n, _ = A.shape
    L = (A + np.swapaxes(A, 1, 2)) / 2.0 >= float(tau)
    L[:, np.arange(n), np.arange(n)] = False
    s, i, j = np.nonzero(L)
    G = coo_matrix((np.ones(len(s), dtype=np.int8), (s * n + i, s * n + j)), shape=(T * n, T * n))
    _, labels = connected_components(G.tocsr(), directed=False)
    return labels.reshape(T, n)


def threshold_components(
    A: AffinityMatrix, tasks: list[str], tau: float, links: np.ndarray | None = None
) -> Grouping:
    """Connected components of the ``tau`` link graph, without validation (fast path)."""
    from scipy.sparse.csgraph import connected_components

    L = link_matrix(A, tau) if links is None else links
    _, labels = connected_components(L, directed=False)
    return labels_to_grouping(tasks, labels)
