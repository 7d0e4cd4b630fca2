"""Task grouping: which tasks to train together, from an inter-task affinity matrix.

Direction: ``A[i, j]`` is the effect of an update on task i's loss (source) on task j's loss
(target). Every grouper follows the scikit-learn contract: ``__init__`` stores arguments,
``fit(A, tasks)`` validates and sets ``groups_`` (canonical ``tuple[frozenset[str], ...]``)
and ``score_`` (the TAG value of the groups), and returns ``self``.

Torch-free and streamlit-free (a test checks).
"""

from __future__ import annotations

from mtl_core.errors import LabError
from mtl_core.grouping.affinity_propagation import (
    AffinityPropagationGrouper,
    normalize_affinity,
    proximal_groups,
)
from mtl_core.grouping.base import (
    SINGLETON_SCORE,
    BaseGrouper,
    symmetrize,
    tag_value,
    task_scores,
    validate_affinity,
)
from mtl_core.grouping.baselines import AllTogether, EveryTaskAlone, RandomGrouper, random_groupings
from mtl_core.grouping.hierarchical import HierarchicalGrouper, leaf_order
from mtl_core.grouping.tag import TAGGrouper, brute_force_tag
from mtl_core.grouping.threshold import ThresholdGrouper
from mtl_core.grouping.timeline import (
    GroupTimeline,
    group_timeline,
    match_ids,
)

#: Method names accepted by :func:`make_grouper` (and the CLI's ``--method``).
METHODS = (
    "tag",
    "threshold",
    "hierarchical",
    "affinity-propagation",
    "together",
    "single",
    "random",
)


def make_grouper(
    method: str,
    k: int | None = None,
    tau: float | None = None,
    *,
    seed: int = 0,
    **options: object,
) -> BaseGrouper:
    """Build a grouper by name (what the app and CLI call).

    Parameters
    ----------
    method : str
        One of :data:`METHODS` (``affinity_propagation`` with an underscore is accepted too).
    k : int, optional
        Group budget: required for ``tag`` and ``random``; for ``hierarchical`` give ``k`` or
        ``tau``.
    tau : float, optional
        Threshold on the symmetrized affinity (``threshold``, default 0; ``hierarchical``: cut
        at that affinity level).
    seed : int
        Seed for ``tag`` (its search), ``affinity-propagation`` and ``random``.
    **options
        Passed to the grouper (e.g. ``allow_singletons=True``, ``disjoint=True``,
        ``time_limit=30``, ``effort=2``, ``progress=callback`` for TAG;
        ``definition="cliques"`` for threshold).

    Raises
    ------
    LabError
        Unknown method or a missing required argument.
    """
    m = method.strip().lower().replace("_", "-")
    if m == "tag":
        if k is None:
            raise LabError("TAG selection needs a group budget: give k, the most groups to use")
        return TAGGrouper(k, seed=seed, **options)  # type: ignore[arg-type]
    if m == "threshold":
        return ThresholdGrouper(0.0 if tau is None else tau, **options)  # type: ignore[arg-type]
    if m == "hierarchical":
        if k is None and tau is None and "distance" not in options:
            raise LabError("hierarchical grouping needs a cut: give k (number of groups) or tau")
        return HierarchicalGrouper(k, tau=tau, **options)  # type: ignore[arg-type]
    if m == "affinity-propagation":
        return AffinityPropagationGrouper(seed=seed, **options)  # type: ignore[arg-type]
    if m == "together":
        return AllTogether()
    if m == "single":
        return EveryTaskAlone()
    if m == "random":
        return RandomGrouper(2 if k is None else k, seed=seed, **options)  # type: ignore[arg-type]
    raise LabError(f"unknown grouping method {method!r}; choose one of: {', '.join(METHODS)}")


__all__ = [
    "METHODS",
    "SINGLETON_SCORE",
    "AffinityPropagationGrouper",
    "AllTogether",
    "BaseGrouper",
    "EveryTaskAlone",
    "GroupTimeline",
    "HierarchicalGrouper",
    "RandomGrouper",
    "TAGGrouper",
    "ThresholdGrouper",
    "brute_force_tag",
    "group_timeline",
    "leaf_order",
    "make_grouper",
    "match_ids",
    "normalize_affinity",
    "proximal_groups",
    "random_groupings",
    "symmetrize",
    "tag_value",
    "task_scores",
    "validate_affinity",
]
