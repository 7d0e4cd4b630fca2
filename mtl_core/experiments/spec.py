"""What a ground-truth evaluation trains: :class:`EvalSpec` and the approaches it compares."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mtl_core.config import ModelConfig, OptimConfig, RunConfig, parse_ints
from mtl_core.errors import LabError
from mtl_core.types import Grouping

#: Approaches in report order, with their display names.
APPROACHES = {
    "tag": "TAG groups",
    "hoa": "HOA groups",
    "exhaustive": "exhaustive best",
    "together": "all together",
    "together_capacity": "together, capacity-matched",
    "single": "every task alone",
    "random": "random groups",
}
#: Largest task count ``exhaustive`` accepts (it trains about 2**(n-1) runs per seed).
MAX_EXHAUSTIVE_TASKS = 8


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate.

    ``knobs`` are the scenario's resolved knobs and ``tasks`` its task names (in the dataset's
    order); ``k`` the group budget of TAG and the random groupings; ``seeds`` training seeds
    0..seeds-1 (the data stays fixed by the scenario's ``data_seed``); ``steps`` the length of
    every run (``cotrain_steps`` of the affinity co-training run, default ``steps``);
    ``hoa``: also run HOA's approach (one network per task pair, then its chosen groups;
    False skips it and trains no pair network); ``threads`` torch threads per training run
    (0 = torch's default).
    """

    scenario: str
    knobs: dict[str, Any]
    tasks: tuple[str, ...]
    k: int
    seeds: int = 3
    steps: int = 300
    cotrain_steps: int | None = None
    exhaustive: bool = False
    random_groupings: int = 3
    every: int = 1
    allow_singletons: bool = False
    hoa: bool = True
    batch_size: int = 64
    device: str = "auto"
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    threads: int = 0

    @classmethod
    def for_scenario(
        cls,
        scenario: str,
        knobs: dict[str, Any] | None,
        k: int,
        *,
        hidden: str | tuple[int, ...] | None = None,
        **fields: Any,
    ) -> EvalSpec:
        """A spec for ``scenario`` with ``knobs`` resolved over its defaults, its tasks read
        from the dataset and its shipped model (trunk widths ``hidden`` when given, e.g.
        ``"16,8"``); ``fields`` set the rest. Torch-free. LabError for an unknown scenario or
        knob, or bad widths."""
        from mtl_core.scenarios import load_dataset

        base = RunConfig.for_scenario(scenario, knobs)  # the scenario's knobs and model
        model = base.model
        if hidden:
            model = replace(model, hidden=parse_ints(hidden, "--hidden widths"))
        tasks = tuple(load_dataset(base.scenario, base.knobs).tasks)
        return cls(
            scenario=base.scenario, knobs=base.knobs, tasks=tasks, k=int(k), model=model, **fields
        )

    def check(self) -> None:
        """Raise :class:`LabError` for settings that cannot work."""
        n = len(self.tasks)
        if self.k < 1:
            raise LabError(f"--k must be >= 1, got {self.k}")
        if self.seeds < 1:
            raise LabError(f"--seeds must be >= 1, got {self.seeds}")
        if self.steps < 1 or (self.cotrain_steps is not None and self.cotrain_steps < 1):
            raise LabError("--steps must be >= 1")
        if self.random_groupings < 0:
            raise LabError("--random must be >= 0")
        if n < 2:
            raise LabError("evaluating groupings needs at least two tasks")
        if self.exhaustive and n > MAX_EXHAUSTIVE_TASKS:
            raise LabError(
                f"--exhaustive trains every candidate group (about 2^{n - 1} runs per seed for "
                f"{n} tasks); it is limited to {MAX_EXHAUSTIVE_TASKS} tasks"
            )

    @property
    def min_group_size(self) -> int:
        """Smallest group TAG and exhaustive may choose (1 with ``allow_singletons``)."""
        return 1 if self.allow_singletons else 2

    def run_config(
        self,
        label: str,
        mode: str,
        seed: int,
        *,
        measure: str = "none",
        groups: Grouping | None = None,
        steps: int | None = None,
    ) -> RunConfig:
        """One training run of the evaluation: this spec's scenario, model, optimizer, batch
        and device; only the final evaluation is used (``eval_every = steps``)."""
        steps = int(steps or self.steps)
        base = RunConfig(
            scenario=self.scenario, knobs=dict(self.knobs), model=self.model, optim=self.optim
        )
        return base.with_overrides(
            {
                "train.mode": mode,
                "train.steps": steps,
                "train.batch_size": self.batch_size,
                "train.eval_every": steps,
                "train.seed": seed,
                "train.device": self.device,
                "train.groups": None if groups is None else [sorted(g) for g in groups],
                "affinity.measure": measure,
                "affinity.every": self.every,
                "name": label,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a JSON file (see :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalSpec:
        """Rebuild a spec from :meth:`to_dict` output (JSON turns tuples into lists)."""
        cfg = RunConfig.from_dict({"model": d.get("model", {}), "optim": d.get("optim", {})})
        rest = {k: v for k, v in d.items() if k not in ("model", "optim", "tasks", "knobs")}
        return cls(
            knobs=dict(d["knobs"]),
            tasks=tuple(d["tasks"]),
            model=cfg.model,
            optim=cfg.optim,
            **rest,
        )


def default_workers() -> int:
    """Local worker processes of an evaluation when none is asked for: min(4, CPUs)."""
    return min(4, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """Torch threads per training run with ``workers`` processes sharing the CPUs
    (0 = in-process, torch's default)."""
    return max(1, (os.cpu_count() or 1) // workers) if workers > 0 else 0


__all__ = [
    "APPROACHES",
    "MAX_EXHAUSTIVE_TASKS",
    "EvalSpec",
    "default_workers",
    "threads_per_worker",
]
