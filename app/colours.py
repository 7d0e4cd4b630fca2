"""Every colour the app uses, and the colour range of affinity heatmaps.

- one diverging, colour-blind-safe scale (ColorBrewer RdBu) centred on zero: **blue helps,
  red hurts**, white is neutral;
- Okabe–Ito colours for runs and for the lesson's approaches, Carto "Safe" for groups and tasks;
- a run's colour depends only on its id, so a run looks the same on every page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

from mtl_core.series import sample_indices

#: ColorBrewer RdBu (colour-blind safe), red = hurts (negative), blue = helps (positive).
DIVERGING = [
    [0.0, "#b2182b"],
    [0.17, "#d6604d"],
    [0.33, "#f4a582"],
    [0.45, "#fbe3d6"],
    [0.5, "#f7f7f7"],
    [0.55, "#d8e9f2"],
    [0.67, "#92c5de"],
    [0.83, "#4393c3"],
    [1.0, "#2166ac"],
]
#: Okabe–Ito (colour-blind safe) for runs and approaches; black last.
RUN_COLOURS = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#999999",
    "#000000",
]
#: Carto "Safe" qualitative palette (colour-blind safe) for groups and tasks.
GROUP_COLOURS = [
    "#332288",
    "#CC6677",
    "#117733",
    "#DDCC77",
    "#88CCEE",
    "#AA4499",
    "#44AA99",
    "#999933",
    "#882255",
    "#661100",
    "#6699CC",
    "#888888",
]
#: The lesson's three ways of training.
APPROACH_COLOURS = {"together": "#D55E00", "groups": "#0072B2", "single": "#009E73"}


def run_colour(run_id: int) -> str:
    """The colour of a run in every view: consecutive ids get different colours."""
    return RUN_COLOURS[(int(run_id) - 1) % len(RUN_COLOURS)]


def distinct_run_colours(run_ids: Sequence[int]) -> dict[int, str]:
    """Colours for runs shown together: each keeps its own colour unless an earlier one in
    the list has it already (ids 8 apart share one), then it takes the next free colour."""
    palette = RUN_COLOURS + GROUP_COLOURS
    out: dict[int, str] = {}
    for rid in run_ids:
        colour = run_colour(rid)
        if colour in out.values():
            colour = next((c for c in palette if c not in out.values()), colour)
        out[rid] = colour
    return out


def group_colour(group_id: int) -> str:
    """The ``group_id``-th group colour (wraps around the palette)."""
    return GROUP_COLOURS[int(group_id) % len(GROUP_COLOURS)]


def group_colours(*groupings: Iterable[Iterable[str]] | None) -> dict[frozenset[str], str]:
    """One colour per group, keyed by its member set, for every view that shows groups (the
    heatmap's outlines, the groups table, the group timeline, Compare).

    The groups of the first grouping (the one shown beside the heatmap) take the palette in
    their order (group 1 = first colour); every other member set, in order of first
    appearance in the later groupings (e.g. the timeline's step by step), takes the next
    colour. So a group has the same colour wherever it appears, and the shown groups always
    have the first colours.
    """
    out: dict[frozenset[str], str] = {}
    for grouping in groupings:
        for members in grouping or ():
            key = frozenset(members)
            if key not in out:
                out[key] = group_colour(len(out))
    return out


def task_colour(task: str, tasks: Sequence[str]) -> str:
    """A task's colour in per-task line charts (by its position in ``tasks``)."""
    try:
        i = list(tasks).index(task)
    except ValueError:
        i = int(hashlib.md5(task.encode()).hexdigest(), 16)
    return GROUP_COLOURS[i % len(GROUP_COLOURS)]


#: Steps of a run that set its colour limit (evenly spaced when it logged more).
ZMAX_SAMPLE_STEPS = 400


def robust_zmax(stack: np.ndarray, hide_diagonal: bool = True, q: float = 99.0) -> float:
    """A fixed symmetric colour limit for a whole run: the ``q``-th percentile of ``|A|`` over
    the steps of ``stack`` (``(S, n, n)`` or one ``(n, n)`` matrix; at most
    ``ZMAX_SAMPLE_STEPS`` evenly spaced steps; NaN skipped; the diagonal left out when hidden),
    so animations do not rescale frame to frame. 1.0 when empty."""
    a = np.asarray(stack, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.size == 0:
        return 1.0
    if a.shape[0] > ZMAX_SAMPLE_STEPS:
        # Long runs: the percentile of evenly spaced steps (first and last included) is the
        # same colour limit to the eye, at a fraction of the cost (10,000 x 50 x 50: 2 s).
        a = a[sample_indices(a.shape[0], ZMAX_SAMPLE_STEPS)]
    if hide_diagonal and a.shape[-1] > 1:
        mask = ~np.eye(a.shape[-1], dtype=bool)
        a = a[:, mask]
    vals = np.abs(a[np.isfinite(a)])
    if vals.size == 0:
        return 1.0
    z = float(np.percentile(vals, q))
    return z if z > 0 else float(vals.max()) or 1.0
