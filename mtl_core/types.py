"""Shared type aliases with their directions spelled out."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: A square affinity matrix over an ordered task list. ``A[i, j]`` is the effect of an update
#: on task i's loss (the *source*) on task j's loss (the *target*); positive means it helps.
AffinityMatrix = npt.NDArray[np.float64]

#: A grouping: groups of task names. Groups may overlap (TAG selection) or partition the tasks.
Grouping = tuple[frozenset[str], ...]


def canonical_grouping(groups) -> Grouping:
    """Return groups as a sorted tuple of frozensets so equal groupings compare equal."""
    fs = [frozenset(g) for g in groups]
    return tuple(sorted(fs, key=lambda g: (sorted(g), len(g))))
