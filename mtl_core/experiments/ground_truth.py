"""Ground truth: does the chosen grouping really win?

For each seed, in named phases:

1. :func:`plan_phase1` - co-train all tasks once with lookahead affinity, and everything that
   does not depend on it: all tasks together, every task alone, random k-groupings and, with
   ``exhaustive``, every candidate group (HOA-style, see :mod:`.candidates`);
   It also trains every pair of tasks for HOA (:mod:`.hoa`; with ``exhaustive`` the pair
   networks of the candidate runs are reused; ``spec.hoa`` False skips HOA altogether);
2. :func:`select_tag_groups` - TAG groups for the budget k (exact selection on the
   co-training's mean affinity); :func:`select_hoa_groups` - HOA's groups (pair losses,
   higher orders estimated as their mean, the same exact selection rule);
3. :func:`plan_phase2` - one network per chosen group of TAG and of HOA (each task served
   by its best network
   on validation loss) and an all-together network whose trunk is widened until it has as
   many parameters as the grouped networks together (capacity-matched);
4. :func:`record_seed` / :func:`record_exhaustive` - one record per trained grouping, then
   :func:`.report.summarize`.

Reported per approach: per-task and total held-out (test) loss, mean ± std over seeds, the
compute seconds it took (sum of its training runs, so independent of how many workers ran in
parallel), and the Spearman rank correlation between TAG's predicted grouping value and the
measured loss. Every training run goes through an executor (:mod:`.executors`). This module
imports no torch; the jobs import it inside the workers.

A training run that fails does not stop the sweep: its progress line and the report's
``failures`` say why, and what depends on it is left out (a seed whose co-training failed
has no TAG groups; a seed with a failed candidate no exhaustive best). Only when every run
of a phase fails (a setting that cannot train) does :func:`evaluate` raise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.experiments.candidates import CandidateNetworks, candidate_jobs
from mtl_core.experiments.executors import Executor, JobFailure, SerialExecutor, map_jobs
from mtl_core.experiments.hoa import hoa_select, pair_jobs
from mtl_core.experiments.jobs import JobResult, TrainJob, run_job
from mtl_core.experiments.report import summarize
from mtl_core.experiments.spec import EvalSpec
from mtl_core.grouping import RandomGrouper, TAGGrouper, tag_value
from mtl_core.types import Grouping, canonical_grouping

Key = tuple[str, int, int]  # (kind, seed, index)
Say = Callable[[str], None]


@dataclass
class JobBook:
    """Training jobs keyed by ``(kind, seed, index)``, run as one batch; results are read
    back by the same key (:meth:`get` is None for a job that failed, see ``failures``)."""

    jobs: list[TrainJob] = field(default_factory=list)
    keys: dict[Key, int] = field(default_factory=dict)
    results: list[JobResult | JobFailure] = field(default_factory=list)
    failures: list[JobFailure] = field(default_factory=list)

    def add(self, key: Key, job: TrainJob) -> None:
        """Add a job under ``key``."""
        self.keys[key] = len(self.jobs)
        self.jobs.append(job)

    def run(self, executor: Executor, phase: str, say: Say) -> None:
        """Run every job with ``executor``, reporting ``[phase i/N] label (s)`` (or ``label
        failed: reason``) as each ends. A failed job does not stop the others; LabError when
        every job failed (nothing to compare)."""
        n = len(self.jobs)
        say(f"{phase}: {n} training runs")
        count = 0

        def done(i: int, r: JobResult | JobFailure) -> None:
            nonlocal count
            count += 1
            if isinstance(r, JobFailure):
                say(f"[{phase} {count}/{n}] {self.jobs[i].label} failed: {r.reason}")
            else:
                say(f"[{phase} {count}/{n}] {r.label} ({r.seconds:.1f} s)")

        self.results = map_jobs(executor, run_job, self.jobs, on_done=done, keep_going=True)
        self.failures = []
        for job, r in zip(self.jobs, self.results):
            if isinstance(r, JobFailure):  # named by the job (a crashed worker knows no label)
                self.failures.append(JobFailure(job.label, r.reason, r.detail))
        if n and len(self.failures) == n:
            raise LabError(
                f"{phase}: all {n} training runs failed; the first: {self.failures[0].reason}"
            )

    def get(self, key: Key) -> JobResult | None:
        """The result under ``key``; None when that job failed."""
        r = self.results[self.keys[key]]
        return None if isinstance(r, JobFailure) else r

    def __getitem__(self, key: Key) -> JobResult:
        r = self.get(key)
        if r is None:
            raise KeyError(f"training run {key} failed")
        return r


@dataclass
class Phase1:
    """Phase 1's jobs, the random groupings they train (by ``(seed, r)``) and, with
    ``exhaustive``, each seed's candidate runs as ``[(masks, key)]``; ``pairs``: the runs
    that hold HOA's pair networks, ``[(masks, key)]`` (the candidate runs with
    ``exhaustive``)."""

    book: JobBook = field(default_factory=JobBook)
    random: dict[tuple[int, int], Grouping] = field(default_factory=dict)
    candidates: dict[int, list[tuple[tuple[int, ...], Key]]] = field(default_factory=dict)
    pairs: dict[int, list[tuple[tuple[int, ...], Key]]] = field(default_factory=dict)


@dataclass
class TagSelection:
    """Per seed: the co-training's mean lookahead affinity ``(n, n)`` (rows = source), the
    TAG groups selected on it, the seconds the selection took and whether TAG's wall-clock
    safety stop fired (``stopped``: only then may the groups depend on the machine's load)."""

    affinity: dict[int, np.ndarray] = field(default_factory=dict)
    groups: dict[int, Grouping] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)
    stopped: dict[int, bool] = field(default_factory=dict)


def _job(spec: EvalSpec, label: str, mode: str, seed: int, **kw: Any) -> TrainJob:
    return TrainJob(label, spec.run_config(label, mode, seed, **kw).to_dict(), threads=spec.threads)


def random_grouping(spec: EvalSpec, seed: int, r: int) -> Grouping:
    """The ``r``-th random k-grouping of ``seed`` (groups of 2+ tasks when there are enough
    tasks for k of them, else any size)."""
    tasks, n = list(spec.tasks), len(spec.tasks)
    size = spec.min_group_size if n >= spec.min_group_size * min(spec.k, n) else 1
    grouper = RandomGrouper(spec.k, seed=1000 * seed + r, min_size=size)
    return grouper.fit(np.zeros((n, n)), tasks).groups_


def plan_phase1(spec: EvalSpec) -> Phase1:
    """Every run that does not depend on the co-training's affinity (co-training included)."""
    plan = Phase1()
    book = plan.book
    for s in range(spec.seeds):
        lab = f"cotrain/seed{s}"
        book.add(
            ("cotrain", s, 0),
            _job(spec, lab, "together", s, measure="lookahead", steps=spec.cotrain_steps),
        )
        for mode in ("together", "single"):
            book.add((mode, s, 0), _job(spec, f"{mode}/seed{s}", mode, s))
        for r in range(spec.random_groupings):
            g = plan.random[(s, r)] = random_grouping(spec, s, r)
            book.add(("random", s, r), _job(spec, f"random/seed{s}/{r}", "groups", s, groups=g))
        if spec.exhaustive:
            plan.candidates[s] = []
            for i, (masks, job) in enumerate(candidate_jobs(spec, s)):
                book.add(("candidate", s, i), job)
                plan.candidates[s].append((masks, ("candidate", s, i)))
            plan.pairs[s] = plan.candidates[s] if spec.hoa else []
        elif spec.hoa:
            plan.pairs[s] = []
            for i, (masks, job) in enumerate(pair_jobs(spec, s)):
                book.add(("pair", s, i), job)
                plan.pairs[s].append((masks, ("pair", s, i)))
    return plan


def select_tag_groups(spec: EvalSpec, book: JobBook) -> TagSelection:
    """TAG's exact selection of at most k groups on each seed's co-training affinity (seeds
    whose co-training failed are left out; LabError when every one failed)."""
    sel = TagSelection()
    for s in range(spec.seeds):
        co = book.get(("cotrain", s, 0))
        if co is None:
            continue
        A = np.asarray(co.affinity["lookahead"])
        sel.affinity[s] = A
        t0 = time.perf_counter()
        grouper = TAGGrouper(spec.k, allow_singletons=spec.allow_singletons)
        sel.groups[s] = grouper.fit(A, list(spec.tasks)).groups_
        sel.seconds[s] = time.perf_counter() - t0
        sel.stopped[s] = bool(grouper.stopped_)
    if not sel.groups:
        raise LabError(
            "every co-training run failed, so TAG has no affinity to group on; "
            "see the failures above"
        )
    return sel


@dataclass
class HoaSelection:
    """Per seed: HOA's groups, its predicted total validation loss, the seconds of the pair
    runs it used and of the selection."""

    groups: dict[int, Grouping] = field(default_factory=dict)
    predicted_loss: dict[int, float] = field(default_factory=dict)
    pair_seconds: dict[int, float] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)


def select_hoa_groups(spec: EvalSpec, phase1: Phase1) -> HoaSelection:
    """HOA's exact selection of at most k groups per seed from its pair networks' validation
    losses (Standley et al. 2020, Sec. 3.4). A seed with a failed pair run (or, with
    singletons, a failed single run) has no HOA groups; none at all when ``spec.hoa`` is
    False."""
    out = HoaSelection()
    if not spec.hoa:  # --no-hoa: no pair networks were trained
        return out
    tasks = list(spec.tasks)
    n = len(tasks)
    book = phase1.book
    for s in range(spec.seeds):
        pair_loss: dict[frozenset[str], dict[str, float]] = {}
        seconds, ok = 0.0, True
        for masks, key in phase1.pairs.get(s, []):
            r = book.get(key)
            if r is None:
                ok = False
                break
            used = [m for m in masks if m.bit_count() == 2]
            if used:
                seconds += r.seconds  # only runs that hold a pair count as HOA's cost
            for m in used:
                pair = frozenset(tasks[b] for b in range(n) if m >> b & 1)
                pair_loss[pair] = {t: r.val[t] for t in pair}
        single = book.get(("single", s, 0))
        if not ok or (spec.allow_singletons and single is None):
            continue
        if spec.allow_singletons and single is not None:
            seconds += single.seconds
        groups, pred, sel_s = hoa_select(
            tasks,
            pair_loss,
            spec.k,
            single_loss=single.val if single is not None else None,
            min_size=spec.min_group_size,
        )
        out.groups[s], out.predicted_loss[s] = groups, pred
        out.pair_seconds[s], out.seconds[s] = seconds, sel_s
    return out


def plan_phase2(spec: EvalSpec, sel: TagSelection, hoa: HoaSelection | None = None) -> JobBook:
    """The TAG groups and the capacity-matched together network of each seed, and HOA's
    groups where ``hoa`` has them."""
    book = JobBook()
    for s in sorted(hoa.groups if hoa is not None else ()):
        book.add(("hoa", s, 0), _job(spec, f"hoa/seed{s}", "groups", s, groups=hoa.groups[s]))
    for s in sorted(sel.groups):
        book.add(("tag", s, 0), _job(spec, f"tag/seed{s}", "groups", s, groups=sel.groups[s]))
        lab = f"together_capacity/seed{s}"
        match = tuple(tuple(sorted(g)) for g in sel.groups[s])
        book.add(
            ("together_capacity", s, 0),
            TrainJob(
                lab,
                spec.run_config(lab, "together", s).to_dict(),
                threads=spec.threads,
                match_groups=match,
            ),
        )
    return book


class RunRecords:
    """The report's per-run records: one per trained grouping and seed."""

    def __init__(self, tasks: list[str], affinity: dict[int, np.ndarray]) -> None:
        self.tasks = tasks
        self.affinity = affinity
        self.runs: list[dict[str, Any]] = []

    def add(
        self,
        approach: str,
        seed: int,
        grouping: Grouping,
        test: dict[str, float],
        seconds: float,
        parameters: int | None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Record one run: its grouping, TAG's predicted value for it on the seed's
        affinity, per-task and total test loss, compute seconds and parameter count."""
        tasks = self.tasks
        A = self.affinity.get(seed)
        rec = {
            "approach": approach,
            "seed": seed,
            "grouping": [sorted(g, key=tasks.index) for g in grouping],
            "predicted_value": None if A is None else tag_value(A, tasks, grouping),
            "test_loss": {t: float(test[t]) for t in tasks},
            "total_test_loss": float(sum(test[t] for t in tasks)),
            "seconds": float(seconds),
            "parameters": None if parameters is None else int(parameters),
            **extra,
        }
        self.runs.append(rec)
        return rec


def record_seed(
    spec: EvalSpec,
    s: int,
    phase1: Phase1,
    phase2: JobBook,
    sel: TagSelection,
    records: RunRecords,
    hoa: HoaSelection | None = None,
) -> None:
    """Record seed ``s``'s TAG, HOA, together, capacity-matched, single and random runs
    (those that trained: a failed run, or TAG's runs of a seed whose co-training failed, have
    no record)."""
    book = phase1.book
    if hoa is not None and s in hoa.groups and (h := phase2.get(("hoa", s, 0))) is not None:
        records.add(
            "hoa",
            s,
            hoa.groups[s],
            h.test,
            hoa.pair_seconds[s] + hoa.seconds[s] + h.seconds,
            h.parameters,
            breakdown={"pairs": hoa.pair_seconds[s], "select": hoa.seconds[s], "train": h.seconds},
            hoa_predicted_val_loss=hoa.predicted_loss[s],
        )
    together: Grouping = (frozenset(spec.tasks),)
    if s in sel.groups:
        co = book[("cotrain", s, 0)]
        tag, cap = phase2.get(("tag", s, 0)), phase2.get(("together_capacity", s, 0))
        if tag is not None:
            records.add(
                "tag",
                s,
                sel.groups[s],
                tag.test,
                co.seconds + sel.seconds[s] + tag.seconds,
                tag.parameters,
                breakdown={"cotrain": co.seconds, "select": sel.seconds[s], "train": tag.seconds},
                stopped=sel.stopped[s],
            )
        if cap is not None:
            records.add(
                "together_capacity",
                s,
                together,
                cap.test,
                cap.seconds,
                cap.parameters,
                hidden=list(cap.hidden),
            )
    if (r := book.get(("together", s, 0))) is not None:
        records.add("together", s, together, r.test, r.seconds, r.parameters)
    if (r := book.get(("single", s, 0))) is not None:
        records.add(
            "single",
            s,
            canonical_grouping([t] for t in spec.tasks),
            r.test,
            r.seconds,
            r.parameters,
        )
    for i in range(spec.random_groupings):
        if (r := book.get(("random", s, i))) is not None:
            records.add("random", s, phase1.random[(s, i)], r.test, r.seconds, r.parameters)


def record_exhaustive(
    spec: EvalSpec,
    s: int,
    phase1: Phase1,
    sel: TagSelection,
    records: RunRecords,
    hoa: HoaSelection | None = None,
) -> float | None:
    """Record seed ``s``'s exhaustive best grouping (and TAG's groups served by the same
    candidate networks); returns the Spearman correlation over every partition. Nothing is
    recorded (None) when one of the seed's candidate runs failed."""
    trained = [(masks, phase1.book.get(key)) for masks, key in phase1.candidates[s]]
    if any(r is None for _, r in trained):
        return None
    nets = CandidateNetworks.collect(spec.tasks, trained)
    best, select_s = nets.best(spec.k, spec.min_group_size)
    _, per_task = nets.served(best)
    rec = records.add(
        "exhaustive",
        s,
        best,
        per_task,
        nets.seconds + select_s,
        None,
        candidates=len(nets.val),
        runs=nets.runs,
        networks=nets.table(),
    )
    if hoa is not None and s in hoa.groups:
        rec["hoa_from_candidates"] = nets.served(hoa.groups[s])[0]
    if s not in sel.groups:
        return None
    rec["tag_from_candidates"] = nets.served(sel.groups[s])[0]
    return nets.rank_correlation(sel.affinity[s], spec.k, spec.min_group_size)


def evaluate(
    spec: EvalSpec,
    executor: Executor | None = None,
    on_progress: Say | None = None,
) -> dict[str, Any]:
    """Run the whole comparison; returns a JSON-ready report (see :func:`.report.format_report`).

    ``executor``: a :class:`.executors.JobExecutor` or any ``concurrent.futures.Executor``
    (default: in-process, one run after another). ``on_progress(message)`` gets one line per
    phase and per finished (or failed) run. A failed run is listed in the report's
    ``failures`` and the sweep goes on. Raises LabError for a spec that cannot work (before
    training), or when every run of a phase (or every co-training run) failed.
    """
    spec.check()
    ex = executor if executor is not None else SerialExecutor()
    say = on_progress or (lambda msg: None)
    phase1 = plan_phase1(spec)
    phase1.book.run(ex, "phase 1", say)
    sel = select_tag_groups(spec, phase1.book)
    hoa = select_hoa_groups(spec, phase1)
    phase2 = plan_phase2(spec, sel, hoa)
    phase2.run(ex, "phase 2", say)
    records = RunRecords(list(spec.tasks), sel.affinity)
    rank: list[float | None] = []
    for s in range(spec.seeds):
        record_seed(spec, s, phase1, phase2, sel, records, hoa)
        if spec.exhaustive:
            rank.append(record_exhaustive(spec, s, phase1, sel, records, hoa))
    failures = [
        {"phase": phase, "label": f.label, "reason": f.reason}
        for phase, book in (("phase 1", phase1.book), ("phase 2", phase2))
        for f in book.failures
    ]
    return summarize(spec, records.runs, sel.affinity, rank, failures)


__all__ = [
    "HoaSelection",
    "JobBook",
    "Phase1",
    "RunRecords",
    "TagSelection",
    "evaluate",
    "plan_phase1",
    "plan_phase2",
    "random_grouping",
    "record_exhaustive",
    "record_seed",
    "select_hoa_groups",
    "select_tag_groups",
]
