"""Ground truth: does the chosen grouping really win?

For each seed:

1. co-train all tasks once with lookahead affinity and select TAG groups for the budget k
   (exact selection on the run's mean affinity);
2. train one network per chosen group from scratch (each task served by its best network on
   validation loss), and the comparisons: all tasks together, every task alone, random
   k-groupings, and an all-together network whose trunk is widened until it has as many
   parameters as the grouped networks together (capacity-matched);
3. with ``exhaustive``, train every candidate group (HOA-style: each group of two or more
   tasks, paired with its complement so one run trains two candidates), then find the best
   grouping for k by combining those networks (exact, on validation loss).

Reported per approach: per-task and total held-out (test) loss, mean ± std over seeds, the
compute seconds it took (sum of its training runs, so independent of how many workers ran in
parallel), and the Spearman rank correlation between TAG's predicted grouping value and the
measured loss.

Every training run goes through an :class:`Executor` (``map(fn, jobs)``): local worker
processes by default, in-process for tests; a distributed engine only has to implement ``map``.
This module imports no torch; the jobs import it inside the workers.
"""

from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from mtl_core.config import AffinityConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from mtl_core.errors import LabError
from mtl_core.grouping import RandomGrouper, TAGGrouper, tag_value
from mtl_core.grouping.tag import select_from_scores
from mtl_core.types import Grouping, canonical_grouping

J = TypeVar("J")
R = TypeVar("R")

#: Approaches in report order, with their display names.
APPROACHES = {
    "tag": "TAG groups",
    "exhaustive": "exhaustive best",
    "together": "all together",
    "together_capacity": "together, capacity-matched",
    "single": "every task alone",
    "random": "random groups",
}
#: Largest task count ``exhaustive`` accepts (it trains about 2**(n-1) runs per seed).
MAX_EXHAUSTIVE_TASKS = 8


# --------------------------------------------------------------------------------- executors


class Executor(Protocol):
    """Runs independent jobs; the only thing a distributed engine has to provide."""

    def map(
        self,
        fn: Callable[[J], R],
        jobs: Sequence[J],
        on_done: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        """``[fn(job) for job in jobs]`` in job order; ``on_done(i, result)`` as each ends."""
        ...


class SerialExecutor:
    """In-process, one job after another (tests, debugging)."""

    def map(self, fn, jobs, on_done=None):
        out = []
        for i, job in enumerate(jobs):
            out.append(fn(job))
            if on_done is not None:
                on_done(i, out[-1])
        return out


class LocalProcessExecutor:
    """Local worker processes (spawn context: safe with torch and threads).

    Use as a context manager so the workers are started once for all phases. ``fn`` and the
    jobs must be picklable (module-level function, plain data).
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or min(4, os.cpu_count() or 1))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalProcessExecutor:
        ctx = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(self, fn, jobs, on_done=None):
        if self._pool is None:
            with self:
                return self.map(fn, jobs, on_done)
        futures = {self._pool.submit(fn, job): i for i, job in enumerate(jobs)}
        out: list[Any] = [None] * len(jobs)
        for fut in as_completed(futures):
            i = futures[fut]
            out[i] = fut.result()  # re-raises the worker's exception (LabError included)
            if on_done is not None:
                on_done(i, out[i])
        return out


# -------------------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class TrainJob:
    """One training run, as plain data so any executor can ship it.

    ``match_groups``: widen the trunk until this (together) network has as many parameters as
    one network per listed group would have in total (the capacity-matched baseline).
    """

    label: str
    config: dict[str, Any]
    match_groups: tuple[tuple[str, ...], ...] | None = None
    threads: int = 0


@dataclass(frozen=True)
class JobResult:
    """Final per-task losses of one run (each task from its serving network) and its cost."""

    label: str
    test: dict[str, float]
    val: dict[str, float]
    parameters: int
    seconds: float
    affinity: dict[str, list[list[float]]] = field(default_factory=dict)
    hidden: tuple[int, ...] = ()


def run_job(job: TrainJob) -> JobResult:
    """Execute one :class:`TrainJob` (imports torch; runs inside a worker)."""
    from mtl_core.training import train

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
    close as possible to one network per group of ``groups`` in total."""
    from mtl_core.models import MultiTaskNet, count_parameters
    from mtl_core.scenarios import load_dataset

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


# -------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate. ``knobs`` are the scenario's resolved knobs; ``seeds`` training seeds
    0..seeds-1 (the data stays fixed by ``data_seed``)."""

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
    batch_size: int = 64
    device: str = "auto"
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    threads: int = 0

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


def _config(
    spec: EvalSpec,
    label: str,
    mode: str,
    seed: int,
    *,
    measure: str = "none",
    groups: Grouping | None = None,
    steps: int | None = None,
) -> dict[str, Any]:
    steps = int(steps or spec.steps)
    train_cfg = TrainConfig(
        mode=mode,
        steps=steps,
        batch_size=spec.batch_size,
        eval_every=steps,  # only the final evaluation is used
        seed=seed,
        device=spec.device,
        groups=None if groups is None else tuple(tuple(sorted(g)) for g in groups),
    )
    cfg = RunConfig(
        scenario=spec.scenario,
        knobs=dict(spec.knobs),
        model=spec.model,
        optim=spec.optim,
        train=train_cfg,
        affinity=AffinityConfig(measure=measure, every=spec.every),
        name=label,
    )
    return cfg.to_dict()


def candidate_jobs(spec: EvalSpec, seed: int) -> list[tuple[tuple[int, ...], TrainJob]]:
    """Exhaustive: one run per candidate group paired with its complement (both trained).

    Returns ``[(masks trained by the run, job)]``; each task of a group is served by that
    group's network because the complement network does not hold it.
    """
    tasks = list(spec.tasks)
    n = len(tasks)
    full = (1 << n) - 1
    min_size = 1 if spec.allow_singletons else 2
    done: set[int] = set()
    out = []
    for mask in range(1, full + 1):
        if mask in done or bin(mask).count("1") < min_size:
            continue
        comp = full ^ mask
        masks = (mask, comp) if comp else (mask,)
        done.update(masks)
        groups = tuple(frozenset(tasks[i] for i in range(n) if m >> i & 1) for m in masks)
        label = f"exhaustive/seed{seed}/" + "|".join(",".join(sorted(g)) for g in groups)
        cfg = _config(spec, label, "groups", seed, groups=groups)
        out.append((masks, TrainJob(label, cfg, threads=spec.threads)))
    return out


def _served_total(
    grouping: Grouping,
    tasks: list[str],
    val: dict[int, dict[str, float]],
    test: dict[int, dict[str, float]],
) -> tuple[float, dict[str, float]]:
    """Test loss of a grouping built from candidate networks, each task served by its
    lowest-validation-loss group."""
    index = {t: i for i, t in enumerate(tasks)}
    per_task = {}
    for t in tasks:
        best = None
        for g in grouping:
            if t not in g:
                continue
            m = sum(1 << index[x] for x in g)
            if best is None or val[m][t] < val[best][t]:
                best = m
        per_task[t] = test[best][t]
    return float(sum(per_task.values())), per_task


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def evaluate(
    spec: EvalSpec,
    executor: Executor | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the whole comparison; returns a JSON-ready report (see :func:`format_report`)."""
    spec.check()
    ex = executor or SerialExecutor()
    tasks = list(spec.tasks)
    say = on_progress or (lambda msg: None)

    def run_phase(name: str, jobs: list[TrainJob]) -> list[JobResult]:
        count = [0]

        def done(i: int, r: JobResult) -> None:
            count[0] += 1
            say(f"[{name} {count[0]}/{len(jobs)}] {r.label} ({r.seconds:.1f} s)")

        return ex.map(run_job, jobs, on_done=done)

    # Phase 1: everything that does not depend on the co-training's affinity.
    jobs: list[TrainJob] = []
    index: dict[tuple[str, int, int], int] = {}

    def add(key: tuple[str, int, int], job: TrainJob) -> None:
        index[key] = len(jobs)
        jobs.append(job)

    random_groupings: dict[tuple[int, int], Grouping] = {}
    cand: dict[int, list[tuple[tuple[int, ...], int]]] = {}
    n = len(tasks)
    min_size = 1 if spec.allow_singletons else 2
    zeros = np.zeros((n, n))
    for s in range(spec.seeds):
        lab = f"cotrain/seed{s}"
        cfg = _config(spec, lab, "together", s, measure="lookahead", steps=spec.cotrain_steps)
        add(("cotrain", s, 0), TrainJob(lab, cfg, threads=spec.threads))
        for name, mode in (("together", "together"), ("single", "single")):
            lab = f"{name}/seed{s}"
            add((name, s, 0), TrainJob(lab, _config(spec, lab, mode, s), threads=spec.threads))
        for r in range(spec.random_groupings):
            msize = min_size if n >= min_size * min(spec.k, n) else 1
            g = RandomGrouper(spec.k, seed=1000 * s + r, min_size=msize).fit(zeros, tasks).groups_
            random_groupings[(s, r)] = g
            lab = f"random/seed{s}/{r}"
            cfg = _config(spec, lab, "groups", s, groups=g)
            add(("random", s, r), TrainJob(lab, cfg, threads=spec.threads))
        if spec.exhaustive:
            cand[s] = []
            for i, (masks, job) in enumerate(candidate_jobs(spec, s)):
                add(("candidate", s, i), job)
                cand[s].append((masks, index[("candidate", s, i)]))
    say(f"phase 1: {len(jobs)} training runs")
    res1 = run_phase("phase 1", jobs)

    # TAG selection on each seed's co-training affinity.
    affinity: dict[int, np.ndarray] = {}
    tag_groups: dict[int, Grouping] = {}
    select_s: dict[int, float] = {}
    for s in range(spec.seeds):
        A = np.asarray(res1[index[("cotrain", s, 0)]].affinity["lookahead"])
        affinity[s] = A
        t0 = time.perf_counter()
        tag_groups[s] = (
            TAGGrouper(spec.k, allow_singletons=spec.allow_singletons).fit(A, tasks).groups_
        )
        select_s[s] = time.perf_counter() - t0

    # Phase 2: the TAG groups and the capacity-matched together network.
    jobs2: list[TrainJob] = []
    for s in range(spec.seeds):
        lab = f"tag/seed{s}"
        jobs2.append(
            TrainJob(
                lab, _config(spec, lab, "groups", s, groups=tag_groups[s]), threads=spec.threads
            )
        )
        lab = f"together_capacity/seed{s}"
        jobs2.append(
            TrainJob(
                lab,
                _config(spec, lab, "together", s),
                threads=spec.threads,
                match_groups=tuple(tuple(sorted(g)) for g in tag_groups[s]),
            )
        )
    say(f"phase 2: {len(jobs2)} training runs")
    res2 = run_phase("phase 2", jobs2)

    runs: list[dict[str, Any]] = []

    def record(
        approach: str,
        s: int,
        grouping: Grouping,
        test: dict[str, float],
        seconds: float,
        parameters: int | None,
        **extra: Any,
    ) -> None:
        runs.append(
            {
                "approach": approach,
                "seed": s,
                "grouping": [sorted(g, key=tasks.index) for g in grouping],
                "predicted_value": tag_value(affinity[s], tasks, grouping),
                "test_loss": {t: float(test[t]) for t in tasks},
                "total_test_loss": float(sum(test[t] for t in tasks)),
                "seconds": float(seconds),
                "parameters": None if parameters is None else int(parameters),
                **extra,
            }
        )

    together_g: Grouping = (frozenset(tasks),)
    single_g: Grouping = canonical_grouping([t] for t in tasks)
    exhaustive_rank: list[float | None] = []
    for s in range(spec.seeds):
        co = res1[index[("cotrain", s, 0)]]
        tag_run, cap_run = res2[2 * s], res2[2 * s + 1]
        record(
            "tag",
            s,
            tag_groups[s],
            tag_run.test,
            co.seconds + select_s[s] + tag_run.seconds,
            tag_run.parameters,
            breakdown={"cotrain": co.seconds, "select": select_s[s], "train": tag_run.seconds},
        )
        r = res1[index[("together", s, 0)]]
        record("together", s, together_g, r.test, r.seconds, r.parameters)
        record(
            "together_capacity",
            s,
            together_g,
            cap_run.test,
            cap_run.seconds,
            cap_run.parameters,
            hidden=list(cap_run.hidden),
        )
        r = res1[index[("single", s, 0)]]
        record("single", s, single_g, r.test, r.seconds, r.parameters)
        for rr in range(spec.random_groupings):
            r = res1[index[("random", s, rr)]]
            record("random", s, random_groupings[(s, rr)], r.test, r.seconds, r.parameters)
        if spec.exhaustive:
            val: dict[int, dict[str, float]] = {}
            test: dict[int, dict[str, float]] = {}
            params: dict[int, int] = {}
            secs = 0.0
            for masks, i in cand[s]:
                r = res1[i]
                secs += r.seconds
                for m in masks:
                    members = [tasks[b] for b in range(n) if m >> b & 1]
                    val[m] = {t: r.val[t] for t in members}
                    test[m] = {t: r.test[t] for t in members}
                    params[m] = r.parameters  # both networks of the run (upper bound)
            t0 = time.perf_counter()
            scores = np.full((1 << n, n), -np.inf)
            for m, v in val.items():
                if bin(m).count("1") >= min_size:
                    for t, loss in v.items():
                        scores[m, tasks.index(t)] = -loss
            chosen, _ = select_from_scores(scores, spec.k)
            sel_s = time.perf_counter() - t0
            best = canonical_grouping([tasks[b] for b in range(n) if m >> b & 1] for m in chosen)
            total, per_task = _served_total(best, tasks, val, test)
            record(
                "exhaustive",
                s,
                best,
                per_task,
                secs + sel_s,
                None,
                candidates=len(val),
                runs=len(cand[s]),
            )
            tag_total, _ = _served_total(tag_groups[s], tasks, val, test)
            runs[-1]["tag_from_candidates"] = tag_total
            # How well does the predicted TAG value rank every partition into <= k groups?
            preds, losses = [], []
            for part in _partitions(tasks, spec.k, min_size):
                preds.append(tag_value(affinity[s], tasks, part))
                losses.append(_served_total(part, tasks, val, test)[0])
            exhaustive_rank.append(_spearman(preds, losses))

    return _summarize(spec, runs, affinity, exhaustive_rank)


def _partitions(tasks: list[str], k: int, min_size: int):
    """Every partition of ``tasks`` into at most k blocks of at least ``min_size``."""

    def rec(items: list[str]):
        if not items:
            yield []
            return
        first, rest = items[0], items[1:]
        for part in rec(rest):
            for i in range(len(part)):
                yield part[:i] + [[first] + part[i]] + part[i + 1 :]
            yield [[first]] + part

    for part in rec(list(tasks)):
        if len(part) <= k and all(len(b) >= min_size for b in part):
            yield canonical_grouping(part)


def _mean_std(values: Sequence[float | None]) -> dict[str, float | None]:
    if any(x is None for x in values):
        return {"mean": None, "std": None}
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def _summarize(
    spec: EvalSpec,
    runs: list[dict[str, Any]],
    affinity: dict[int, np.ndarray],
    exhaustive_rank: list[float | None],
) -> dict[str, Any]:
    tasks = list(spec.tasks)
    approaches: dict[str, Any] = {}
    for key, title in APPROACHES.items():
        rs = [r for r in runs if r["approach"] == key]
        if not rs:
            continue
        approaches[key] = {
            "name": title,
            "runs": len(rs),
            "total_test_loss": _mean_std([r["total_test_loss"] for r in rs]),
            "test_loss": {t: _mean_std([r["test_loss"][t] for r in rs]) for t in tasks},
            "seconds": _mean_std([r["seconds"] for r in rs]),
            "parameters": _mean_std([r["parameters"] for r in rs]),
            "predicted_value": _mean_std([r["predicted_value"] for r in rs]),
            "groupings": [r["grouping"] for r in rs],
        }
    # Rank correlation over every trained grouping (capacity-matched shares together's).
    pts = [r for r in runs if r["approach"] != "together_capacity"]
    rho = _spearman([r["predicted_value"] for r in pts], [r["total_test_loss"] for r in pts])
    loss = {k: v["total_test_loss"]["mean"] for k, v in approaches.items()}
    comparison: dict[str, Any] = {
        "tag_vs_together": 1.0 - loss["tag"] / loss["together"],
        "tag_vs_together_capacity": 1.0 - loss["tag"] / loss["together_capacity"],
        "tag_vs_single": 1.0 - loss["tag"] / loss["single"],
    }
    if "random" in loss:
        comparison["tag_vs_random"] = 1.0 - loss["tag"] / loss["random"]
    if "exhaustive" in loss:
        ex = [r for r in runs if r["approach"] == "exhaustive"]
        tag_cand = float(np.mean([r["tag_from_candidates"] for r in ex]))
        comparison["tag_over_exhaustive"] = loss["tag"] / loss["exhaustive"] - 1.0
        comparison["tag_from_candidates_over_exhaustive"] = tag_cand / loss["exhaustive"] - 1.0
        comparison["tag_time_fraction_of_exhaustive"] = (
            approaches["tag"]["seconds"]["mean"] / approaches["exhaustive"]["seconds"]["mean"]
        )
    valid_rank = [x for x in exhaustive_rank if x is not None]
    return {
        "kind": "task-affinity-lab/evaluate",
        "version": 1,
        "spec": {
            **{k: v for k, v in asdict(spec).items() if k not in ("model", "optim", "tasks")},
            "tasks": tasks,
            "model": asdict(spec.model),
            "optim": asdict(spec.optim),
        },
        "approaches": approaches,
        "comparison": comparison,
        "spearman": {
            "predicted_value_vs_test_loss": rho,
            "points": len(pts),
            "exhaustive_partitions_mean": float(np.mean(valid_rank)) if valid_rank else None,
            "note": "negative = a higher predicted TAG value goes with a lower measured loss",
        },
        "affinity": {str(s): A.tolist() for s, A in affinity.items()},
        "runs": runs,
    }


# ----------------------------------------------------------------------------------- output


def format_report(report: dict[str, Any]) -> str:
    """The stdout table: one row per approach, then the headline comparisons."""
    spec = report["spec"]
    knobs = ", ".join(f"{k}={v}" for k, v in spec["knobs"].items())
    lines = [
        f"evaluate {spec['scenario']} ({knobs})",
        f"k={spec['k']}, {spec['seeds']} seed(s), {spec['steps']} steps; total test loss is the "
        "sum over tasks (mean ± std over runs)",
        "",
    ]
    head = (
        f"{'approach':<28}{'total test loss':>22}{'vs together':>13}{'params':>9}"
        f"{'compute s':>16}{'pred. value':>13}"
    )
    lines += [head, "-" * len(head)]
    base = report["approaches"]["together"]["total_test_loss"]["mean"]
    for key, a in report["approaches"].items():
        tl, sec = a["total_test_loss"], a["seconds"]
        name = a["name"] + (f" (x{a['runs']})" if key == "random" else "")
        params = f"{a['parameters']['mean']:.0f}" if a["parameters"]["mean"] else "-"
        lines.append(
            f"{name:<28}{tl['mean']:>12.4f} ± {tl['std']:<7.4f}"
            f"{(tl['mean'] / base - 1) * 100:>+12.1f}%{params:>9}"
            f"{sec['mean']:>9.1f} ± {sec['std']:<4.1f}{a['predicted_value']['mean']:>13.4f}"
        )
    lines.append("")
    for key in ("tag", "exhaustive"):
        if key in report["approaches"]:
            g = report["approaches"][key]["groupings"][0]
            lines.append(
                f"{APPROACHES[key]} (seed 0): " + "  ".join("{" + ",".join(x) + "}" for x in g)
            )
    c, sp = report["comparison"], report["spearman"]
    lines.append(
        f"TAG vs all together: {c['tag_vs_together'] * 100:.1f}% lower total test loss "
        f"({'meets' if c['tag_vs_together'] >= 0.10 else 'misses'} the 10% target)"
    )
    if "tag_over_exhaustive" in c:
        lines.append(
            f"TAG vs exhaustive best: {c['tag_over_exhaustive'] * 100:+.1f}% loss "
            f"({'within' if c['tag_over_exhaustive'] <= 0.02 else 'outside'} 2%); "
            f"on the same candidate networks {c['tag_from_candidates_over_exhaustive'] * 100:+.1f}%"
            f"; TAG took {c['tag_time_fraction_of_exhaustive'] * 100:.0f}% of exhaustive's time"
        )
    if sp["predicted_value_vs_test_loss"] is not None:
        lines.append(
            f"Spearman(predicted value, test loss) = {sp['predicted_value_vs_test_loss']:+.2f} "
            f"over {sp['points']} trained groupings ({sp['note']})"
        )
    if sp["exhaustive_partitions_mean"] is not None:
        lines.append(
            f"Spearman over every partition into <= k groups (candidate networks): "
            f"{sp['exhaustive_partitions_mean']:+.2f} (mean over seeds)"
        )
    return "\n".join(lines)


def report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Long-form rows (one per run and task) for the CSV output and the app."""
    rows = []
    for r in report["runs"]:
        for t, loss in r["test_loss"].items():
            rows.append(
                {
                    "approach": r["approach"],
                    "seed": r["seed"],
                    "task": t,
                    "test_loss": loss,
                    "total_test_loss": r["total_test_loss"],
                    "predicted_value": r["predicted_value"],
                    "seconds": r["seconds"],
                    "parameters": r["parameters"],
                    "grouping": ";".join(",".join(g) for g in r["grouping"]),
                }
            )
    return rows


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write ``.json`` (the full report) or ``.csv`` (long-form rows); atomic."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in (".json", ".csv"):
        raise LabError(f"--out must end in .json or .csv, got {p.name}")
    p.parent.mkdir(parents=True, exist_ok=True)
    if ext == ".json":
        text = json.dumps(report, indent=1, default=_json_default)
    else:
        buf = io.StringIO()
        rows = report_rows(report)
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["approach"])
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    tmp = p.with_name(p.name + ".part")
    tmp.write_text(text)
    tmp.replace(p)
    return p


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


__all__ = [
    "APPROACHES",
    "EvalSpec",
    "Executor",
    "JobResult",
    "LocalProcessExecutor",
    "SerialExecutor",
    "TrainJob",
    "capacity_matched",
    "candidate_jobs",
    "evaluate",
    "format_report",
    "report_rows",
    "run_job",
    "write_report",
]
