"""Exhaustive ground truth (HOA-style): train every candidate group, then combine.

Each group of two or more tasks (one or more with ``allow_singletons``) is trained once,
paired with its complement so one run trains two candidates. The best grouping into at most
k groups is then found exactly on validation loss, and any grouping's held-out loss can be
read off the same networks (each task served by its lowest-validation-loss group).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mtl_core.experiments.jobs import JobResult, TrainJob
from mtl_core.experiments.report import spearman
from mtl_core.experiments.spec import EvalSpec
from mtl_core.grouping import tag_value
from mtl_core.grouping.tag import select_from_scores, set_partitions
from mtl_core.types import Grouping, canonical_grouping


def candidate_jobs(spec: EvalSpec, seed: int) -> list[tuple[tuple[int, ...], TrainJob]]:
    """Exhaustive: one run per candidate group paired with its complement (both trained).

    Returns ``[(masks trained by the run, job)]`` (a mask has bit i set for ``spec.tasks[i]``);
    each task of a group is served by that group's network because the complement network
    does not hold it.
    """
    tasks = list(spec.tasks)
    n = len(tasks)
    full = (1 << n) - 1
    done: set[int] = set()
    out = []
    for mask in range(1, full + 1):
        if mask in done or mask.bit_count() < spec.min_group_size:
            continue
        comp = full ^ mask
        masks = (mask, comp) if comp else (mask,)
        done.update(masks)
        groups = tuple(frozenset(tasks[i] for i in range(n) if m >> i & 1) for m in masks)
        label = f"exhaustive/seed{seed}/" + "|".join(",".join(sorted(g)) for g in groups)
        cfg = spec.run_config(label, "groups", seed, groups=groups).to_dict()
        out.append((masks, TrainJob(label, cfg, threads=spec.threads)))
    return out


@dataclass
class CandidateNetworks:
    """The trained candidate groups of one seed: per-group validation and test loss.

    ``val[mask][task]`` / ``test[mask][task]``: loss of ``task`` in the network of group
    ``mask``; ``seconds``: total training time of the runs; ``runs``: how many runs.
    """

    tasks: list[str]
    val: dict[int, dict[str, float]] = field(default_factory=dict)
    test: dict[int, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    runs: int = 0

    @classmethod
    def collect(
        cls, tasks: Sequence[str], trained: Sequence[tuple[tuple[int, ...], JobResult]]
    ) -> CandidateNetworks:
        """Gather the results of :func:`candidate_jobs` runs, ``[(masks, result)]``."""
        nets = cls(list(tasks))
        for masks, r in trained:
            nets.seconds += r.seconds
            nets.runs += 1
            for m in masks:
                members = [t for b, t in enumerate(nets.tasks) if m >> b & 1]
                nets.val[m] = {t: r.val[t] for t in members}
                nets.test[m] = {t: r.test[t] for t in members}
        return nets

    def table(self) -> list[dict[str, object]]:
        """Every candidate network as ``{"tasks": [...], "val": {task: loss}, "test": {task:
        loss}}`` (tasks in the spec's order, networks by mask): the report's ground-truth table
        (read back by :func:`mtl_core.groundtruth.report.read_evaluate_report`)."""
        return [
            {
                "tasks": [t for b, t in enumerate(self.tasks) if m >> b & 1],
                "val": {t: float(v) for t, v in self.val[m].items()},
                "test": {t: float(v) for t, v in self.test[m].items()},
            }
            for m in sorted(self.val)
        ]

    def served(self, grouping: Grouping) -> tuple[float, dict[str, float]]:
        """Total and per-task test loss of ``grouping`` built from these networks, each task
        served by its lowest-validation-loss group."""
        index = {t: i for i, t in enumerate(self.tasks)}
        per_task = {}
        for t in self.tasks:
            masks = [sum(1 << index[x] for x in g) for g in grouping if t in g]
            best = min(masks, key=lambda m: self.val[m][t])  # first of equal losses
            per_task[t] = self.test[best][t]
        return float(sum(per_task.values())), per_task

    def best(self, k: int, min_size: int) -> tuple[Grouping, float]:
        """The exact best grouping into at most ``k`` groups of ``min_size``+ tasks on
        validation loss, and the seconds the selection took."""
        t0 = time.perf_counter()
        n = len(self.tasks)
        scores = np.full((1 << n, n), -np.inf)
        for m, v in self.val.items():
            if m.bit_count() >= min_size:
                for t, loss in v.items():
                    scores[m, self.tasks.index(t)] = -loss
        chosen, _ = select_from_scores(scores, k)
        best = canonical_grouping([self.tasks[b] for b in range(n) if m >> b & 1] for m in chosen)
        return best, time.perf_counter() - t0

    def rank_correlation(self, A: np.ndarray, k: int, min_size: int) -> float | None:
        """Spearman correlation between TAG's predicted value (on affinity ``A``, ``(n, n)``,
        rows = source) and the measured total test loss, over every partition of the tasks
        into at most ``k`` groups of ``min_size``+ tasks. None when undefined (< 3 points or
        constant)."""
        preds, losses = [], []
        for part in set_partitions(list(self.tasks)):
            if len(part) > k or any(len(b) < min_size for b in part):
                continue
            grouping = canonical_grouping(part)
            preds.append(tag_value(A, self.tasks, grouping))
            losses.append(self.served(grouping)[0])
        return spearman(preds, losses)


__all__ = ["CandidateNetworks", "candidate_jobs"]
