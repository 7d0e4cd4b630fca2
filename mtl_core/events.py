"""What the training loop reports through its ``on_step`` callback (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The metrics split under which the training loop's per-step minibatch loss is stored and
#: exported (``split="batch", metric="loss"``).
BATCH_SPLIT = "batch"
#: A run trained with ``train.replicas > 1`` logs each replica's held-out (``test``) loss as
#: metric ``"loss:r<k>"`` next to the mean over replicas (metric ``"loss"``).
REPLICA_TAG = ":r"


def replica_metric(metric: str, replica: int) -> str:
    """The metric name of one replica's value: ``replica_metric("loss", 3) == "loss:r3"``."""
    return f"{metric}{REPLICA_TAG}{int(replica)}"


def parse_replica_metric(name: str) -> tuple[str, int] | None:
    """``"loss:r3"`` -> ``("loss", 3)``; None for a metric that is not a replica's."""
    base, tag, num = str(name).rpartition(REPLICA_TAG)
    if not tag or not base or not num.isdigit():
        return None
    return base, int(num)


@dataclass(frozen=True)
class MetricRow:
    """One long-form metric value: ``split`` is train/val/test, ``metric`` loss/accuracy."""

    task: str
    split: str
    metric: str
    value: float


@dataclass
class StepEvent:
    """One training step's report.

    ``affinity`` maps a measure name to the matrix measured at this step, with
    ``A[i, j]`` = effect of an update on ``tasks[i]``'s loss on ``tasks[j]``'s loss.
    ``metrics`` is filled on evaluation steps (every ``eval_every`` and the last step).
    ``groups`` is the grouping used at this step by the sequential mode, else ``None``.
    """

    step: int
    total_steps: int
    tasks: list[str]
    train_loss: dict[str, float]
    metrics: list[MetricRow] = field(default_factory=list)
    affinity: dict[str, np.ndarray] = field(default_factory=dict)
    groups: tuple[frozenset[str], ...] | None = None
    elapsed_s: float = 0.0
    task_types: list[str] | None = None  # "regression" / "binary" per task, same order as tasks
