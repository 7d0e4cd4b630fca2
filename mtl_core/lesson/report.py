"""The lesson's numbers with their uncertainty, and the verdict they allow. Torch-free.

A lesson trains the ``lesson`` scenario three ways (all together, in TAG's groups, each task
alone), each as ``REPLICAS`` replicas (:mod:`mtl_core.train.replicas`). Every loss is the mean over
replicas of the mean held-out loss over tasks, with a 95% t-interval of that mean; the
verdict compares all-together's interval with the others' and is given only when they separate:

- ``"negative transfer"``: all-together's interval lies above the groups' (or above
  each-alone's): splitting the tasks helps, sharing hurts;
- ``"positive transfer"``: all-together's interval lies below the groups' and below
  each-alone's: sharing every task helps;
- ``"no clear difference"``: otherwise. All-together's interval overlaps the groups' (or
  each-alone's, or there is one replica: no interval; or the grouped run has no loss yet).

The lesson's question is share or split, so all-together against the groups decides; each
alone only adds a second way to lose. (Until issue 22 a together run below each-alone's and
overlapping the groups' read "positive transfer"; each-alone's loss is 26-54% above the
groups' at every knob position (100 bench lessons) and a 16-replica interval 0.6-4% of the
loss wide, so no interval could overlap both and the third verdict never occurred:
``bench/lesson_reliability.py``.)

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


def verdict(loss: Mapping[str, Interval]) -> str:
    """:data:`NEGATIVE`, :data:`POSITIVE` or :data:`UNCLEAR` from the three approaches'
    held-out loss intervals (keys ``together``, ``groups``, ``single``; lower is better).

    NEGATIVE when together's interval lies entirely above the groups' or each-alone's;
    POSITIVE when it lies entirely below the groups' and (when present) each-alone's;
    UNCLEAR otherwise: overlapping or touching intervals, NaN bounds (one replica), no
    together or no groups (a missing interval never separates). See the module docstring.
    """
    tog = loss.get("together")
    if tog is None:
        return UNCLEAR
    grp, sgl = loss.get("groups"), loss.get("single")
    if (grp is not None and tog.above(grp)) or (sgl is not None and tog.above(sgl)):
        return NEGATIVE
    if grp is not None and grp.above(tog) and (sgl is None or sgl.above(tog)):
        return POSITIVE
    return UNCLEAR


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
    means = [float(np.mean(list(v.values()))) for v in per_replica.values() if v]
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

    ``loss[approach]``: held-out loss, mean over tasks, interval over replicas.
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

    @property
    def verdict(self) -> str:
        return verdict(self.loss)

    @property
    def tag_matches_planted(self) -> bool:
        return set(self.tag_groups) == set(self.planted)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object (keys in the issue's order)."""

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
        }


def intended_picture(result: LessonResult) -> bool | None:
    """Whether a lesson shows what its conflict level should teach; None in between.

    Conflict 1: negative transfer, cross-cluster affinity < 0 and TAG's groups equal the
    planted clusters. Conflict 0: positive transfer (all together below the groups and each
    alone) and cross-cluster affinity > 0 (the tasks
    help each other; which groups TAG picks does not matter). In between the knob moves along
    a curve (the affinity falls, the loss ratio rises) and "no clear difference" is honest.
    """
    if result.conflict >= 1.0:
        return result.verdict == NEGATIVE and result.cross < 0 and result.tag_matches_planted
    if result.conflict <= 0.0:
        return result.verdict == POSITIVE and result.cross > 0
    return None
