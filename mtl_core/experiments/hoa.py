"""HOA's approach in the lab's own training (Standley et al., ICML 2020, "Which Tasks Should
Be Learned Together in Multi-task Learning?", Sec. 3.4 "higher order approximation").

Per seed: train a network on every pair of tasks (paired with its complement, so one run
trains two networks, and two disjoint pairs of four tasks share one run); estimate each
higher-order network's per-task validation loss as the mean of that task's losses in the
pair networks inside it (:func:`mtl_core.groundtruth.compare.hoa_predictions`, the same
estimator the lab applies to published tables); then choose at most ``k`` groups of
``min_size``+ tasks under the same rule as TAG and exhaustive (each task served by its best
chosen network, every task covered; exact, :func:`mtl_core.grouping.tag_exact.select_from_scores`).
The chosen groups are then trained like TAG's. With ``allow_singletons`` the single-task
networks' measured losses (the seed's ``single`` run) are candidates too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np

from mtl_core.errors import LabError
from mtl_core.experiments.jobs import TrainJob
from mtl_core.experiments.spec import EvalSpec
from mtl_core.groundtruth.compare import hoa_predictions
from mtl_core.groundtruth.tables import FULL_COST, GroundTruth
from mtl_core.grouping.tag import select_from_scores
from mtl_core.types import Grouping, canonical_grouping


def pair_jobs(spec: EvalSpec, seed: int) -> list[tuple[tuple[int, ...], TrainJob]]:
    """One run per task pair, trained beside its complement (``(masks, job)``; a mask has bit
    i set for ``spec.tasks[i]``). Only the pair masks are used by HOA; a complement that is
    itself a pair is not trained again."""
    tasks = list(spec.tasks)
    n = len(tasks)
    full = (1 << n) - 1
    done: set[int] = set()
    out = []
    for i, j in combinations(range(n), 2):
        mask = (1 << i) | (1 << j)
        if mask in done:
            continue
        comp = full ^ mask
        masks = (mask, comp) if comp else (mask,)
        done.update(m for m in masks if m.bit_count() == 2)
        groups = tuple(frozenset(tasks[b] for b in range(n) if m >> b & 1) for m in masks)
        label = f"hoa/seed{seed}/" + "|".join(",".join(sorted(g)) for g in groups)
        cfg = spec.run_config(label, "groups", seed, groups=groups).to_dict()
        out.append((masks, TrainJob(label, cfg, threads=spec.threads)))
    return out


def hoa_estimate(
    tasks: Sequence[str],
    pair_loss: Mapping[frozenset[str], Mapping[str, float]],
    single_loss: Mapping[str, float] | None = None,
    min_size: int = 2,
) -> tuple[np.ndarray, GroundTruth]:
    """HOA's predicted validation loss of every candidate group (lower is better).

    ``pair_loss[{a, b}][t]``: task ``t``'s measured loss in the network on pair ``{a, b}``
    (every pair needed); ``single_loss[t]``: the task alone (used only when ``min_size`` is
    1). Returns ``scores`` of shape ``(2**n, n)``: minus the predicted loss of task t in group
    G (bitmask over ``tasks``), ``-inf`` for non-candidates, ready for
    :func:`~mtl_core.grouping.tag_exact.select_from_scores`; and the candidate table as a
    :class:`~mtl_core.groundtruth.tables.GroundTruth` whose rows hold the predictions.
    Raises LabError when a pair is missing.
    """
    tasks = list(tasks)
    n = len(tasks)
    members: list[tuple[int, ...]] = []
    rows: list[np.ndarray] = []
    for size in range(max(1, min_size), n + 1):
        for mem in combinations(range(n), size):
            row = np.full(n, np.nan)
            if size == 1:
                if single_loss is None:
                    raise LabError("HOA with singletons needs each task's single-task loss")
                row[mem[0]] = float(single_loss[tasks[mem[0]]])
            elif size == 2:
                key = frozenset(tasks[i] for i in mem)
                if key not in pair_loss:
                    raise LabError(f"HOA needs every pair; {'+'.join(sorted(key))} is missing")
                for i in mem:
                    row[i] = float(pair_loss[key][tasks[i]])
            members.append(mem)
            rows.append(row)
    table = GroundTruth(
        tasks, members, np.full(len(members), FULL_COST), np.vstack(rows), "lower", name="HOA"
    )
    pred = hoa_predictions(table)
    scores = np.full((1 << n, n), -np.inf)
    for j, mem in enumerate(members):
        m = sum(1 << i for i in mem)
        for i in mem:
            scores[m, i] = -pred[j, i]
    table.values = pred
    return scores, table


def hoa_select(
    tasks: Sequence[str],
    pair_loss: Mapping[frozenset[str], Mapping[str, float]],
    k: int,
    single_loss: Mapping[str, float] | None = None,
    min_size: int = 2,
) -> tuple[Grouping, float, float]:
    """HOA's grouping: at most ``k`` groups of ``min_size``+ tasks minimising the summed
    predicted validation loss (each task served by its best chosen group; exact).

    Returns ``(groups, predicted total loss, seconds)``. Raises LabError when a pair is
    missing or no selection covers every task.
    """
    t0 = time.perf_counter()
    tasks = list(tasks)
    scores, _ = hoa_estimate(tasks, pair_loss, single_loss, min_size)
    chosen, value = select_from_scores(scores, k)
    if not np.isfinite(value):
        raise LabError(f"HOA found no selection of at most {k} groups covering every task")
    groups = canonical_grouping([tasks[b] for b in range(len(tasks)) if m >> b & 1] for m in chosen)
    return groups, float(-value), time.perf_counter() - t0


__all__ = ["hoa_estimate", "hoa_select", "pair_jobs"]
