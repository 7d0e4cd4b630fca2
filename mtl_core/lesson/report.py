"""The lesson's numbers with their uncertainty, and the verdict they allow. Torch-free.

A lesson trains the ``lesson`` scenario three ways (all together, in TAG's groups, each task
alone), each as ``REPLICAS`` replicas (:mod:`mtl_core.train.replicas`). Every loss is the mean over
replicas of the mean held-out loss over tasks, with a 95% t-interval of that mean (the chart's
error bars). The verdict rests on the **paired** differences instead: replica ``r`` of every
approach trains on the same data in the same minibatch order (``rng([seed, r])``), so
``d_r = together_r - groups_r`` (and ``together_r - single_r``) with its 95% t-interval over
the replicas (:func:`differences`) is the paired t-test of "share or split":

- ``"negative transfer"``: the together-minus-groups interval lies above 0 (or the
  together-minus-alone one does): splitting the tasks helps, sharing hurts;
- ``"positive transfer"``: the together-minus-groups interval lies below 0, and so does the
  together-minus-alone one: sharing every task helps;
- ``"no clear difference"``: otherwise. The interval covers 0 (or touches it, or there is one
  replica: no interval; or the grouped run has no loss yet).

The lesson's question is share or split, so all-together against the groups decides; each
alone only adds a second way to lose. Why paired, not "the two intervals do not overlap" (the
rule until issue 22): two 95% intervals that do not overlap is a much stricter test than a
5% test of their difference (about 0.6% for equal widths: Schenker & Gentleman 2001, "On
judging the significance of differences by examining the overlap between confidence
intervals", The American Statistician 55(3)), and it ignores the pairing. Counts of both rules
over the same lessons: README, "The knob", and ``bench/lesson_reliability.py``.

Used by the headless ``lesson`` command, the benchmark and the Learn page, so all three say
the same thing for the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.events import parse_replica_metric
from mtl_core.types import Grouping

NEGATIVE, POSITIVE, UNCLEAR = "negative transfer", "positive transfer", "no clear difference"
VERDICTS = (NEGATIVE, POSITIVE, UNCLEAR)
APPROACHES = ("together", "groups", "single")


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% interval ``[low, high]`` (NaN bounds when there is one value)."""

    mean: float
    low: float
    high: float
    n: int = 0

    def to_dict(self) -> dict[str, float | None]:
        """``{"mean", "low", "high"}``; NaN becomes None (JSON has no NaN)."""
        return {
            k: (None if not math.isfinite(v) else float(v))
            for k, v in (("mean", self.mean), ("low", self.low), ("high", self.high))
        }

    def above(self, other: Interval) -> bool:
        """Whether this interval lies entirely above ``other`` (False when either is NaN)."""
        return bool(self.low > other.high)


def interval(values: Iterable[float], level: float = 0.95) -> Interval:
    """Mean of ``values`` with its two-sided t-interval at ``level`` (Student's t, n-1 dof).

    NaN values are dropped; one value gives NaN bounds, none a NaN mean.
    """
    from scipy.stats import t as student_t

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(v.mean())
    if v.size < 2:
        return Interval(mean, math.nan, math.nan, 1)
    half = float(student_t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return Interval(mean, mean - half, mean + half, int(v.size))


def differences(
    replica_loss: Mapping[str, Mapping[int, float]], level: float = 0.95
) -> dict[str, Interval]:
    """The paired differences ``together - groups`` and ``together - single`` of held-out
    loss, each the mean over replicas with its t-interval at ``level``.

    ``replica_loss[approach][r]``: replica ``r``'s held-out loss (mean over tasks) for the
    approaches ``together``, ``groups``, ``single``; only replicas present in both runs are
    paired. Keys ``groups`` / ``single`` are absent when that run (or together) has no
    replica losses; one common replica gives NaN bounds. Loss units: the tasks' own (the
    lesson's: squared error and cross-entropy, nats). Paired t-interval (Student's t on the
    differences, n-1 dof); see the module docstring for why paired.
    """
    tog = replica_loss.get("together") or {}
    out: dict[str, Interval] = {}
    for key in ("groups", "single"):
        other = replica_loss.get(key) or {}
        common = sorted(set(tog) & set(other))
        if tog and common:
            out[key] = interval((tog[r] - other[r] for r in common), level)
    return out


def verdict(diff: Mapping[str, Interval]) -> str:
    """:data:`NEGATIVE`, :data:`POSITIVE` or :data:`UNCLEAR` from the paired differences of
    held-out loss (:func:`differences`: keys ``groups`` = together - groups, ``single`` =
    together - single; lower loss is better).

    NEGATIVE when the together-minus-groups or the together-minus-alone interval lies
    entirely above 0; POSITIVE when the together-minus-groups interval lies entirely below 0
    and (when present) so does the together-minus-alone one; UNCLEAR otherwise: an interval
    covering or touching 0, NaN bounds (one replica), no groups difference (a missing
    interval never decides for sharing). See the module docstring.
    """
    grp, sgl = diff.get("groups"), diff.get("single")
    if (grp is not None and grp.low > 0) or (sgl is not None and sgl.low > 0):
        return NEGATIVE
    if grp is not None and grp.high < 0 and (sgl is None or sgl.high < 0):
        return POSITIVE
    return UNCLEAR


def overlap_verdict(loss: Mapping[str, Interval]) -> str:
    """The rule before issue 22, kept to compare against (``bench/lesson_reliability.py``):
    a verdict only when all-together's own 95% interval separates from the groups' (or, for
    NEGATIVE, each-alone's); POSITIVE needs it below both. ``loss`` maps approach to its
    held-out loss interval over replicas. Not used for the lesson's verdict."""
    tog = loss.get("together")
    if tog is None:
        return UNCLEAR
    grp, sgl = loss.get("groups"), loss.get("single")
    if (grp is not None and tog.above(grp)) or (sgl is not None and tog.above(sgl)):
        return NEGATIVE
    if grp is not None and grp.above(tog) and (sgl is None or sgl.above(tog)):
        return POSITIVE
    return UNCLEAR


def replica_means(per_replica: Mapping[int, Mapping[str, float]]) -> dict[int, float]:
    """``{replica: mean loss over tasks}`` from :func:`replica_losses`' ``{replica: {task:
    loss}}`` (replicas without tasks left out)."""
    return {int(r): float(np.mean(list(v.values()))) for r, v in per_replica.items() if v}


def replica_losses(df: pd.DataFrame | None, split: str = "test") -> dict[int, dict[str, float]]:
    """Each replica's latest held-out loss per task from a run's long metrics frame
    (columns step, task, split, metric, value): ``{replica: {task: loss}}``; empty for a run
    without replicas."""
    if df is None or df.empty:
        return {}
    sel = df[df["split"] == split]
    parsed = sel["metric"].map(parse_replica_metric)
    sel = sel[parsed.map(lambda p: p is not None and p[0] == "loss")]
    if sel.empty:
        return {}
    sel = sel[sel["step"] == sel["step"].max()]
    out: dict[int, dict[str, float]] = {}
    for metric, task, value in zip(sel["metric"], sel["task"], sel["value"]):
        out.setdefault(parse_replica_metric(metric)[1], {})[str(task)] = float(value)
    return out


def loss_intervals(
    per_replica: Mapping[int, Mapping[str, float]],
) -> tuple[Interval, dict[str, Interval]]:
    """From ``{replica: {task: loss}}``: the interval of the mean-over-tasks loss, and each
    task's own interval."""
    means = list(replica_means(per_replica).values())
    tasks = sorted({t for v in per_replica.values() for t in v})
    per_task = {t: interval(v[t] for v in per_replica.values() if t in v) for t in tasks}
    return interval(means), per_task


def block_means(
    A: np.ndarray, tasks: Sequence[str], grouping: Iterable[Iterable[str]]
) -> tuple[float, float]:
    """Mean off-diagonal affinity ``A: (n, n)`` (rows = source) inside the groups and across
    different groups: ``(within, cross)``; NaN where there is no such pair."""
    label = {t: k for k, g in enumerate(grouping) for t in g}
    lab = np.array([label.get(t, -1 - i) for i, t in enumerate(tasks)])
    n = len(tasks)
    same = (lab[:, None] == lab[None, :]) & ~np.eye(n, dtype=bool)
    diff = lab[:, None] != lab[None, :]
    A = np.asarray(A, dtype=np.float64)
    within = float(np.nanmean(A[same])) if same.any() else math.nan
    cross = float(np.nanmean(A[diff])) if diff.any() else math.nan
    return within, cross


@dataclass
class LessonResult:
    """One lesson's outcome (what ``python -m mtl_core lesson --json`` prints).

    ``loss[approach]``: held-out loss, mean over tasks, interval over replicas;
    ``replica_loss[approach][r]``: replica ``r``'s (mean over tasks), from which
    :attr:`diff` (the paired differences) and :attr:`verdict` come.
    ``affinity_matrix: (n, n)``, rows = source: the together run's lookahead affinity, mean
    over steps and replicas; ``within``/``cross``: its mean off-diagonal value inside and
    across the planted clusters. ``tag_groups``: TAG's selection from that matrix (what the
    grouped run trained); ``planted``: the scenario's clusters; ``stopped``: TAG's
    wall-clock safety stop fired choosing ``tag_groups`` (only then may they depend on the
    machine's load).
    """

    conflict: float
    seed: int
    seconds: float
    loss: dict[str, Interval]
    within: float
    cross: float
    tag_groups: Grouping
    planted: Grouping
    tasks: list[str] = field(default_factory=list)
    task_loss: dict[str, dict[str, Interval]] = field(default_factory=dict)
    affinity_matrix: np.ndarray | None = None
    stopped: bool = False
    replica_loss: dict[str, dict[int, float]] = field(default_factory=dict)

    @property
    def diff(self) -> dict[str, Interval]:
        """:func:`differences` of :attr:`replica_loss`: together minus groups / single."""
        return differences(self.replica_loss)

    @property
    def verdict(self) -> str:
        """:func:`verdict` of :attr:`diff` (the paired rule)."""
        return verdict(self.diff)

    @property
    def tag_matches_planted(self) -> bool:
        return set(self.tag_groups) == set(self.planted)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object (keys in the issue's order; ``difference``, the paired
        differences together minus groups / single behind the verdict, added in issue 22)."""

        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "conflict": float(self.conflict),
            "seed": int(self.seed),
            "seconds": round(float(self.seconds), 3),
            "loss": {k: self.loss[k].to_dict() for k in APPROACHES if k in self.loss},
            "affinity": {"within": num(self.within), "cross": num(self.cross)},
            "tag_groups": [sorted(g) for g in self.tag_groups],
            "planted": [sorted(g) for g in self.planted],
            "verdict": self.verdict,
            "stopped": bool(self.stopped),
            "difference": {k: v.to_dict() for k, v in self.diff.items()},
        }


def intended_picture(result: LessonResult) -> bool | None:
    """Whether a lesson shows what its conflict level should teach; None in between.

    Conflict 1: negative transfer, cross-cluster affinity < 0 and TAG's groups equal the
    planted clusters. Conflict 0: positive transfer (all together below the groups and each
    alone, paired: :func:`verdict`) and cross-cluster affinity > 0 (the tasks
    help each other; which groups TAG picks does not matter). In between the knob moves along
    a curve (the affinity falls, the loss ratio rises) and "no clear difference" is honest.
    """
    return picture(result.conflict, result.verdict, result.cross, result.tag_matches_planted)


def picture(conflict: float, verdict: str, cross: float, tag_matches: bool) -> bool | None:
    """:func:`intended_picture` from its parts (so a stored lesson can be judged again under
    another verdict rule): ``verdict`` one of :data:`VERDICTS`, ``cross`` the mean
    cross-cluster affinity, ``tag_matches`` whether TAG's groups are the planted clusters."""
    if conflict >= 1.0:
        return verdict == NEGATIVE and cross < 0 and bool(tag_matches)
    if conflict <= 0.0:
        return verdict == POSITIVE and cross > 0
    return None
