"""Experiments: the ground-truth evaluation of groupings (does the chosen grouping really win?).

- :mod:`.spec` - :class:`EvalSpec`, what to evaluate, and the approaches compared;
- :mod:`.jobs` - one training run as plain data (:class:`TrainJob`) and its execution;
- :mod:`.executors` - where runs execute: in-process, local processes, or any
  ``concurrent.futures.Executor``; a failed job as :class:`JobFailure`;
- :mod:`.ray_executor` - :class:`RayExecutor`, the jobs as Ray tasks on a cluster (Ray is
  imported only when it connects);
- :mod:`.candidates` - exhaustive training of every candidate group;
- :mod:`.ground_truth` - :func:`evaluate`, in named phases;
- :mod:`.report` - summaries, the table, the report file;
- :mod:`.background` - :func:`evaluate` in a background process, polled (the app's tab).

Torch-free to import; training runs import torch inside the workers.

::

    spec = EvalSpec.for_scenario("synthetic", {"tasks": 6}, k=2, seeds=3)
    with LocalProcessExecutor(4) as ex:          # or a concurrent.futures.ProcessPoolExecutor
        report = evaluate(spec, ex, on_progress=print)
    print(format_report(report))
"""

from mtl_core.experiments.candidates import CandidateNetworks, candidate_jobs
from mtl_core.experiments.executors import (
    Executor,
    JobExecutor,
    JobFailure,
    LocalProcessExecutor,
    SerialExecutor,
    map_jobs,
)
from mtl_core.experiments.ground_truth import evaluate
from mtl_core.experiments.jobs import JobResult, TrainJob, capacity_matched, run_job
from mtl_core.experiments.ray_executor import RayExecutor
from mtl_core.experiments.report import format_report, report_rows, summarize, write_report
from mtl_core.experiments.spec import (
    APPROACHES,
    MAX_EXHAUSTIVE_TASKS,
    EvalSpec,
    default_workers,
    threads_per_worker,
)

__all__ = [
    "APPROACHES",
    "MAX_EXHAUSTIVE_TASKS",
    "CandidateNetworks",
    "EvalSpec",
    "Executor",
    "JobExecutor",
    "JobFailure",
    "JobResult",
    "LocalProcessExecutor",
    "RayExecutor",
    "SerialExecutor",
    "TrainJob",
    "candidate_jobs",
    "capacity_matched",
    "default_workers",
    "evaluate",
    "format_report",
    "map_jobs",
    "report_rows",
    "run_job",
    "summarize",
    "threads_per_worker",
    "write_report",
]
