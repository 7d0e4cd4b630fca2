"""Frozen config dataclasses, one per component, combined into a ``RunConfig``.

``RunConfig.to_dict()`` is stored with every run so runs can be diffed and reproduced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mtl_core.errors import LabError

MODES = ("together", "groups", "single", "sequential")
MEASURES = ("lookahead", "proximal", "cosine", "none")
OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")
ARCHS = ("auto", "mlp", "cnn")
NORMS = ("none", "batch", "layer")


@dataclass(frozen=True)
class ModelConfig:
    """Shared trunk + one head per task.

    ``hidden`` are the MLP trunk widths (for the CNN: the dense layers after the convolutions);
    ``channels`` the CNN's convolution channels. ``arch="auto"`` picks the CNN for image
    scenarios and the MLP otherwise.
    """

    arch: str = "auto"
    hidden: tuple[int, ...] = (64, 32)
    channels: tuple[int, ...] = (16, 32)
    norm: str = "none"

    def __post_init__(self) -> None:
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("norm", self.norm, NORMS)
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise LabError("model hidden widths must be positive integers, e.g. hidden=64,32")
        if not self.channels or any(int(c) < 1 for c in self.channels):
            raise LabError("model channels must be positive integers, e.g. channels=16,32")


@dataclass(frozen=True)
class OptimConfig:
    """SGD (with momentum) or Adam. ``lr=None`` means the optimizer's default below."""

    name: str = "adam"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.name, OPTIMIZERS)
        if self.lr is not None and not self.lr > 0:
            raise LabError(f"learning rate must be > 0, got {self.lr}")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 0.05 if self.name == "sgd" else 3e-3


@dataclass(frozen=True)
class TrainConfig:
    """How to train: mode, length, batch, evaluation cadence, seed and device.

    ``groups`` is required for ``mode="groups"`` (one network per group; a task may be in
    several groups and is then served by the network with the lowest validation loss).
    ``warmup`` is the number of steps the sequential mode keeps every task in its own group.
    """

    mode: str = "together"
    steps: int = 300
    batch_size: int = 64
    eval_every: int = 10
    seed: int = 0
    device: str = "auto"
    groups: tuple[tuple[str, ...], ...] | None = None
    warmup: int = 10

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, MODES)
        _check_choice("device", self.device, DEVICES)
        if int(self.steps) <= 0:
            raise LabError(f"steps must be a positive integer, got {self.steps}")
        if int(self.batch_size) <= 0:
            raise LabError(f"batch size must be a positive integer, got {self.batch_size}")
        if int(self.eval_every) <= 0:
            raise LabError(f"eval_every must be a positive integer, got {self.eval_every}")
        if self.mode == "groups" and not self.groups:
            raise LabError("mode 'groups' needs the groups, e.g. --groups 't0,t1;t2,t3'")


@dataclass(frozen=True)
class AffinityConfig:
    """Which affinity to log and how often.

    ``beta`` is the weight of history in the proximal affinity's exponential moving average:
    ``ema = beta * ema + (1 - beta) * new``.
    """

    measure: str = "lookahead"
    every: int = 1
    beta: float = 0.9
    vectorized: bool = True

    def __post_init__(self) -> None:
        _check_choice("affinity", self.measure, MEASURES)
        if int(self.every) <= 0:
            raise LabError(f"--every must be a positive integer, got {self.every}")
        if not 0.0 <= self.beta < 1.0:
            raise LabError(f"beta must be in [0, 1), got {self.beta}")


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to reproduce a training run."""

    scenario: str = "synthetic"
    knobs: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    affinity: AffinityConfig = field(default_factory=AffinityConfig)
    name: str = ""

    def __post_init__(self) -> None:
        mode, measure = self.train.mode, self.affinity.measure
        if measure == "proximal" and mode != "sequential":
            raise LabError(
                "proximal affinity is measured inside sequential group updates: "
                "use --mode sequential (or --affinity lookahead/cosine)"
            )
        if measure in ("lookahead", "cosine") and mode in ("groups", "single"):
            raise LabError(
                f"{measure} affinity is measured between tasks that share one network: "
                f"use --mode together or sequential, or --affinity none with --mode {mode}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Rebuild a config from ``to_dict()`` output (JSON turns tuples into lists)."""
        m = dict(d.get("model", {}))
        for k in ("hidden", "channels"):
            if k in m:
                m[k] = tuple(int(x) for x in m[k])
        o = dict(d.get("optim", {}))
        if "betas" in o:
            o["betas"] = tuple(float(x) for x in o["betas"])
        t = dict(d.get("train", {}))
        if t.get("groups"):
            t["groups"] = tuple(tuple(g) for g in t["groups"])
        return cls(
            scenario=d.get("scenario", "synthetic"),
            knobs=dict(d.get("knobs", {})),
            model=ModelConfig(**m),
            optim=OptimConfig(**o),
            train=TrainConfig(**t),
            affinity=AffinityConfig(**d.get("affinity", {})),
            name=d.get("name", ""),
        )


def default_measure(mode: str) -> str:
    """The affinity measure a mode logs when none is asked for."""
    return {"together": "lookahead", "sequential": "proximal"}.get(mode, "none")


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise LabError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")


def group_indices(groups: tuple[tuple[str, ...], ...] | None,
                  tasks: list[str]) -> list[list[int]]:
    """Task indices of each given group (groups may overlap); every task needs a group.
    Torch-free, so a form can check groups before a run is queued."""
    index = {t: i for i, t in enumerate(tasks)}
    out = []
    for g in groups or ():
        unknown = [t for t in g if t not in index]
        if unknown:
            raise LabError(
                f"group {', '.join(g)}: unknown task(s) {', '.join(unknown)}; "
                f"tasks are {', '.join(tasks)}"
            )
        if not g:
            raise LabError("a group cannot be empty")
        out.append(sorted({index[t] for t in g}))
    missing = set(range(len(tasks))) - {i for g in out for i in g}
    if missing:
        raise LabError(
            "every task needs a group; not covered: " + ", ".join(tasks[i] for i in sorted(missing))
        )
    return out
