"""Captions, legends, titles and file names of the figures and panels, built from the same
numbers as the figure they belong to (``app.words`` holds the shared vocabulary: cells, units,
groupings, durations). No Streamlit here; text only.

Units come from ``mtl_core.text.units``: lookahead and proximal affinity are said in percent
(``+0.92%``), cosine as a plain number, always with the unit next to the number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from app.words import DIAGONAL_NOTE, describe_cell
from mtl_core.text.units import format_value, unit_name

__all__ = ["DIAGONAL_NOTE"]  # said in the hover (app.words), the legend and the caption

#: Legend names of the cells that carry no colour of the scale.
DIAGONAL_LEGEND = "diagonal (a task on itself)"
MISSING_LEGEND = "not logged"


#: The reading guide of an affinity heatmap (the Learn and Explore pages show it).
READING_GUIDE = (
    "- Each **row** is a *source* task: what one training step on that task alone does.\n"
    "- Each **column** is a *target* task: whose loss we watch.\n"
    "- **Blue**: the step lowered the target's loss (helps); **red**: raised it (hurts); white: "
    "no change. Lookahead and proximal affinity are loss changes in **%**; cosine is a plain "
    "number in [-1, 1]. Hover over a cell to read it in words.\n"
    "- **Grey** cells are the diagonal (a task on itself, off the colour scale) and **×** marks "
    "cells with nothing logged: neither is zero.\n"
    "- Blue blocks along the diagonal are tasks to train together; red between blocks is "
    "**negative transfer**. Outlines mark the groups, in the colours of the groups table and "
    "the timeline."
)


def heatmap_caption(hide_diagonal: bool, missing: int, clickable: bool = True) -> str:
    """Under a heatmap: what grey and × cells are (never zero; ``missing`` × cells), clicks."""
    parts = []
    if hide_diagonal:
        parts.append(
            "Grey diagonal: each task on itself, left off the colour scale (its "
            "value is in the hover), not zero."
        )
    if missing:
        parts.append(
            f"{missing} cell{'s' if missing != 1 else ''} marked × had nothing "
            "logged: unknown, not zero."
        )
    if clickable:
        parts.append("Click a cell to see that pair over time.")
    return " ".join(parts)


def export_title(what: str, run: str, measure: str | None, steps: str | None) -> str:
    """An exported figure's title: what it shows · run · measure (unit) · step range."""
    parts = [what, run]
    if measure:
        parts.append(f"{measure} ({unit_name(measure)})")
    if steps:
        parts.append(steps)
    return " · ".join(p for p in parts if p)


def export_name(*parts: str | int | None) -> str:
    """A download's file name stem from its parts, keeping the dashes of step ranges
    (``run3_calm_lookahead_steps-1-1300_pct``: en dash -> ``-``, ``%`` -> ``pct``)."""
    text = "_".join(str(p) for p in parts if p not in (None, ""))
    text = text.replace("–", "-").replace("—", "-").replace("%", "pct").replace("#", "")
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_.-") or "figure"


def steps_range(first: int, last: int) -> str:
    return f"step {last}" if first == last else f"steps {first}–{last}"  # steps 1–1300


def zip_contents(extra: Sequence[str], groupings: int) -> str:
    """What a run's zip download holds, exactly (``extra``: e.g. metrics, its config)."""
    held = ["the affinity table", *extra, "its metadata"]
    grp = (
        f"{groupings} logged grouping{'s' if groupings != 1 else ''}"
        if groupings
        else "no groupings (this run logged none: Explore regroups from the affinity)"
    )
    return f"This zip holds {', '.join(held)} and {grp}; ground-truth evaluations are not in it."


def no_losses(status: str, origin: str, active: bool) -> str:
    """Why the loss tab is empty: not yet (a live run), or never (an upload without any)."""
    if active:
        return "No losses logged yet: they appear at the first evaluation."
    if str(origin).startswith("upload"):
        return "This upload holds no losses (its file had affinity only)."
    return f"This run ({status}) logged no losses."


def separation_caveat(
    within: float, between: float, all_positive: bool, measure: str
) -> str | None:
    """A warning when every pair helps and the groups barely differ from the rest (``within``,
    ``between``: mean affinity inside / across groups), so they are no finding; else None."""
    if not (np.isfinite(within) and np.isfinite(between)):
        return None
    spread = abs(within) + abs(between)
    weak = spread == 0 or (within - between) < 0.5 * max(abs(within), abs(between))
    if not (all_positive and weak):
        return None
    return (
        f"Every pair of tasks helps each other here, and tasks inside a group help each "
        f"other about as much as across groups ({format_value(within, measure)} vs "
        f"{format_value(between, measure)} on average): this affinity does not separate "
        "the tasks (related and unrelated ones look alike), so treat these groups as an "
        "arbitrary cut, not a finding."
    )


def default_tau_note(tau: float, measure: str) -> str:
    """Why the threshold starts where it does: 0 would link every pair (all pairs help: the
    default ``tau`` is positive) or none (all pairs hurt: it is negative); see
    ``regroup.default_tau``."""
    why = (
        "0 would link every pair here: they all help each other"
        if tau >= 0
        else "0 would link no pair here: they all hurt each other"
    )
    return (
        f"The threshold starts at {format_value(tau, measure)}, in the widest gap between "
        f"the pairs' mutual affinities ({why})."
    )


def scale_caption(zmax: float, measure: str = "lookahead") -> str:
    """Compare's heatmaps share one colour range (said in the measure's unit)."""
    return (
        f"Whole-run averages of {measure} affinity on one colour scale "
        f"(±{format_value(zmax, measure, signed=False, digits=2)}, {unit_name(measure)}); "
        "rows ordered like the first run's hierarchical clustering wherever the runs "
        "share their tasks."
    )


def pair_caption(
    source: str,
    target: str,
    average: float,
    measure: str,
    *,
    default: bool,
    worst: float | None = None,
) -> str:
    """Under the pair view, from the numbers it draws: which pair this is (the default, the
    most harmful or least helpful on average, or the one clicked/picked) and its whole-run
    average. ``worst`` is the default pair's average (its sign picks the words)."""
    if default:
        w = average if worst is None else worst
        lead = (
            "Default pair: the most harmful one on average. "
            if w < 0
            else "Default pair: the least helpful one on average (no pair hurts here). "
        )
    else:
        lead = f"Selected pair: {source} → {target}. "
    return lead + describe_cell(source, target, average, measure) + " on average over the run."


def shared_tasks(n: int) -> str:
    return f"Shown on the {n} tasks both runs have."
