"""A fast fake of an evaluation's training runs: :class:`FakeTrainingExecutor` answers every
:class:`~mtl_core.experiments.jobs.TrainJob` at once with losses computed from its groups,
so :func:`mtl_core.experiments.evaluate` writes a real report (exhaustive candidates,
affinity, every approach) in well under a second, without torch.

The planted truth: tasks ``t0, t1`` help each other, as do ``t2, t3``; across the two, a
task's loss grows with the share of the other cluster in its network. Each (seed, network,
task) gets a small deterministic jitter, validation and test differ slightly, so selections
on val and scores on test are not the same numbers.
"""

from __future__ import annotations

import hashlib

from mtl_core.experiments.executors import SerialExecutor
from mtl_core.experiments.jobs import JobResult, TrainJob


def _cluster(task: str) -> int:
    return int(task[1:]) * 2 // 4  # t0, t1 -> 0; t2, t3 -> 1 (4 tasks)


def _jitter(*parts: object) -> float:
    h = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:4], "big") / 2**32 - 0.5  # in [-0.5, 0.5)


def fake_loss(task: str, group: list[str], seed: int, split: str) -> float:
    """Task ``task``'s loss in the network on ``group``: 1.0 alone, 0.15 lower per helping
    mate's share, 0.4 higher per hurting mate's share, plus a 0.02-wide jitter."""
    mates = [u for u in group if u != task]
    same = sum(_cluster(u) == _cluster(task) for u in mates)
    other = len(mates) - same
    share = max(1, len(mates))
    base = 1.0 - 0.15 * same / share + 0.4 * other / share
    return base + 0.02 * _jitter(seed, ",".join(sorted(group)), task, split)


def fake_job(job: TrainJob) -> JobResult:
    """The fake result of one evaluation run (see the module docstring)."""
    cfg = job.config
    train, tasks = cfg["train"], None
    seed = int(train["seed"])
    from mtl_core.scenarios import load_dataset

    tasks = list(load_dataset(cfg["scenario"], cfg["knobs"]).tasks)
    mode = train["mode"]
    if mode == "together":
        groups = [tasks]
    elif mode == "single":
        groups = [[t] for t in tasks]
    else:
        groups = [list(g) for g in train["groups"]]
    val, test = {}, {}
    for t in tasks:  # each task served by its best network on validation
        best = min((g for g in groups if t in g), key=lambda g: fake_loss(t, g, seed, "val"))
        val[t], test[t] = fake_loss(t, best, seed, "val"), fake_loss(t, best, seed, "test")
    affinity = {}
    if (cfg.get("affinity") or {}).get("measure", "none") != "none":
        affinity["lookahead"] = [
            [0.0 if s == t else (0.01 if _cluster(s) == _cluster(t) else -0.01) for t in tasks]
            for s in tasks
        ]
    return JobResult(
        label=job.label,
        test=test,
        val=val,
        parameters=100 * len(groups),
        seconds=0.01,
        affinity=affinity,
    )


class FakeTrainingExecutor(SerialExecutor):
    """Runs :func:`fake_job` in place of whatever training function it is given."""

    def map(self, fn, jobs, on_done=None):
        return super().map(lambda job: fake_job(job), jobs, on_done)


def fake_exhaustive_report(seeds: int = 1, k: int = 2) -> dict:
    """A real ``evaluate --exhaustive`` report of ``synthetic`` with 4 tasks, its runs
    answered by :func:`fake_job`."""
    from mtl_core.experiments import EvalSpec, evaluate

    spec = EvalSpec.for_scenario(
        "synthetic",
        {"tasks": 4, "clusters": 2, "samples": 100},
        k,
        seeds=seeds,
        steps=5,
        exhaustive=True,
        random_groupings=2,
        device="cpu",
        threads=1,
    )
    return evaluate(spec, FakeTrainingExecutor())
