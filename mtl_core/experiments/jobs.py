"""One training run of an evaluation as plain data (:class:`TrainJob`), how a worker executes
it (:func:`run_job`, imports torch) and the capacity-matched baseline's widths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mtl_core.config import ModelConfig, RunConfig


@dataclass(frozen=True)
class TrainJob:
    """One training run, as plain data so any executor can ship it.

    ``config`` is a ``RunConfig.to_dict()``. ``match_groups``: widen the trunk until this
    (together) network has as many parameters as one network per listed group would have in
    total (the capacity-matched baseline). ``threads``: torch threads (0 = torch's default).
    """

    label: str
    config: dict[str, Any]
    match_groups: tuple[tuple[str, ...], ...] | None = None
    threads: int = 0


@dataclass(frozen=True)
class JobResult:
    """Final per-task losses of one run (each task from its serving network) and its cost.

    ``test``/``val``: held-out loss per task; ``seconds``: training time; ``affinity``: the
    run's mean affinity matrix per measure (``(n, n)`` nested lists, rows = source);
    ``hidden``: the trunk widths it trained with.
    """

    label: str
    test: dict[str, float]
    val: dict[str, float]
    parameters: int
    seconds: float
    affinity: dict[str, list[list[float]]] = field(default_factory=dict)
    hidden: tuple[int, ...] = ()


def run_job(job: TrainJob) -> JobResult:
    """Execute one :class:`TrainJob` (imports torch; runs inside a worker)."""
    from mtl_core.train.loop import train

    if job.threads:
        import torch

        torch.set_num_threads(int(job.threads))
    cfg = RunConfig.from_dict(job.config)
    if job.match_groups:
        cfg = capacity_matched(cfg, job.match_groups)
    res = train(cfg)
    return JobResult(
        label=job.label,
        test={t: float(v) for t, v in res.loss("test").items()},
        val={t: float(v) for t, v in res.loss("val").items()},
        parameters=int(res.parameters),
        seconds=float(res.seconds),
        affinity={k: np.asarray(v).tolist() for k, v in res.mean_affinity.items()},
        hidden=tuple(int(h) for h in cfg.model.hidden),
    )


def capacity_matched(cfg: RunConfig, groups: Sequence[Sequence[str]]) -> RunConfig:
    """``cfg`` (an all-together run) with trunk widths scaled so its parameter count is as
    close as possible to one network per group of ``groups`` in total (imports torch)."""
    from mtl_core.scenarios import load_dataset
    from mtl_core.train.models import MultiTaskNet, count_parameters

    ds = load_dataset(cfg.scenario, cfg.knobs)
    shape, base = ds.input_shape, cfg.model

    def scaled(f: float) -> ModelConfig:
        return replace(
            base,
            hidden=tuple(max(1, round(h * f)) for h in base.hidden),
            channels=tuple(max(1, round(c * f)) for c in base.channels),
        )

    def params(m: ModelConfig, tasks: Sequence[str]) -> int:
        return count_parameters(MultiTaskNet(list(tasks), shape, m))

    target = sum(params(base, g) for g in groups)
    lo, hi = 1.0, 2.0
    while params(scaled(hi), ds.tasks) < target and hi < 1e4:
        lo, hi = hi, hi * 2
    for _ in range(40):  # bisection on the width factor; counts grow with it
        mid = (lo + hi) / 2
        if params(scaled(mid), ds.tasks) < target:
            lo = mid
        else:
            hi = mid
    best = min((scaled(lo), scaled(hi)), key=lambda m: abs(params(m, ds.tasks) - target))
    return replace(cfg, model=best)


__all__ = ["JobResult", "TrainJob", "capacity_matched", "run_job"]
