"""What both training loops share (``loop`` and ``replicas``): the device, the optimizer,
the networks a mode trains, minibatches, the finite-loss check and the result type."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from mtl_core.config import OptimConfig, RunConfig, group_indices
from mtl_core.errors import DivergedError, LabError
from mtl_core.events import MetricRow

TRAIN_EVAL_CAP = 2048  # rows of the train split used for the "train" metrics


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; asking for CUDA without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LabError("--device cuda was asked for but no CUDA GPU is available; use auto or cpu")
    return torch.device(name)


@dataclass
class TrainResult:
    """What a finished run hands back (everything also went through ``on_step``)."""

    tasks: list[str]
    task_types: list[str]
    metrics: list[MetricRow]
    mean_affinity: dict[str, np.ndarray]
    served_by: dict[str, int]
    groups: list[list[str]]
    parameters: int
    seconds: float
    device: str
    steps: int
    info: dict = field(default_factory=dict)

    def loss(self, split: str = "test") -> dict[str, float]:
        """Final per-task loss on ``split`` (from each task's serving network)."""
        return {m.task: m.value for m in self.metrics if m.split == split and m.metric == "loss"}


def make_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.learning_rate, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.Adam(
        params, lr=cfg.learning_rate, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
    )


def network_groups(cfg: RunConfig, tasks: list[str]) -> list[list[int]]:
    """Task indices of each network the mode trains."""
    mode = cfg.train.mode
    if mode in ("together", "sequential"):
        return [list(range(len(tasks)))]
    if mode == "single":
        return [[i] for i in range(len(tasks))]
    return group_indices(cfg.train.groups, tasks)


def minibatches(n: int, batch_size: int, gen: np.random.Generator):
    """Endless shuffled minibatch indices (epochs without replacement)."""
    bs = min(batch_size, n)
    while True:
        perm = gen.permutation(n)
        for s in range(0, n - bs + 1, bs):
            yield perm[s : s + bs]


def check_finite(losses: torch.Tensor, tasks: list[str], idx: list[int], step: int) -> None:
    losses = losses.detach()
    bad = ~torch.isfinite(losses)
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0])
        what = "NaN" if math.isnan(float(losses[i])) else "infinite"
        raise DivergedError(
            f"loss became {what} at step {step} on task {tasks[idx[i]]}; "
            "try a smaller learning rate"
        )
