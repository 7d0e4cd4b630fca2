"""How a ground-truth sweep scales on Ray: the same seeded sweep on the local process pool
(2 workers) and on a local Ray head (2 CPUs) with 1 and with 2 jobs at a time, same run.

The sweep: synthetic, 4 tasks in 2 clusters, k=2, 2 seeds, exhaustive (every candidate
group), 2 random groupings per seed: 30 training runs of ``--steps`` steps, one torch thread
each. Every executor is warmed first (its worker processes started and torch imported, two
short jobs), so the table compares scheduling and training, not process start-up. The
reports are checked to be identical (timings aside) across the three.

    python -m bench.ray_sweep [--steps 150] [--repeats 1]

Ratios: Ray 1 job / Ray 2 jobs (how the sweep scales with Ray workers) and Ray 2 jobs /
local pool (what Ray costs over local processes on one machine). On a machine shared with
other work the absolute seconds move; the ratios come from the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from mtl_core.experiments import (
    EvalSpec,
    LocalProcessExecutor,
    RayExecutor,
    TrainJob,
    evaluate,
    map_jobs,
    run_job,
)
from tests.helpers.ray_cluster import LocalRayCluster


def sweep_spec(steps: int) -> EvalSpec:
    return EvalSpec.for_scenario(
        "synthetic",
        {"tasks": 4, "clusters": 2, "samples": 400},
        2,
        seeds=2,
        steps=steps,
        random_groupings=2,
        exhaustive=True,
        device="cpu",
        threads=1,
    )


def warm(ex, spec: EvalSpec) -> None:
    """Two short jobs, so every worker has started and imported torch."""
    job = TrainJob("warm", spec.run_config("warm", "together", 0, steps=2).to_dict(), threads=1)
    map_jobs(ex, run_job, [job, job])


def timed(ex, spec: EvalSpec) -> tuple[float, dict]:
    t0 = time.perf_counter()
    report = evaluate(spec, ex)
    return time.perf_counter() - t0, report


def without_timings(x):
    if isinstance(x, dict):
        return {
            k: without_timings(v)
            for k, v in x.items()
            if k not in ("seconds", "breakdown", "tag_time_fraction_of_exhaustive")
        }
    if isinstance(x, list):
        return [without_timings(v) for v in x]
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    spec = sweep_spec(args.steps)
    jobs = 30
    times: dict[str, list[float]] = {"local": [], "ray1": [], "ray2": []}
    reports = {}
    with LocalProcessExecutor(2) as ex:
        warm(ex, spec)
        for _ in range(args.repeats):
            s, reports["local"] = timed(ex, spec)
            times["local"].append(s)
    cluster = LocalRayCluster(cpus=2)
    try:
        cluster.connect()
        for key, cpus in (("ray1", 2.0), ("ray2", 1.0)):  # 2 CPUs per job = 1 at a time
            with RayExecutor(cluster.address, num_cpus=cpus) as ex:
                warm(ex, spec)
                for _ in range(args.repeats):
                    s, reports[key] = timed(ex, spec)
                    times[key].append(s)
    finally:
        cluster.stop()
    same = all(
        without_timings(reports[k]) == without_timings(reports["local"]) for k in ("ray1", "ray2")
    )
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"sweep: {jobs} training runs of {args.steps} steps (4 tasks, k=2, 2 seeds, "
        f"exhaustive), 1 torch thread each; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; median of {args.repeats}"
    )
    print("| executor | jobs at once | sweep s | runs/s | vs local pool |")
    print("|---|---|---|---|---|")
    rows = (
        ("local process pool", "local", 2),
        ("Ray, 1 worker", "ray1", 1),
        ("Ray, 2 workers", "ray2", 2),
    )
    for name, key, n in rows:
        print(
            f"| {name} | {n} | {med[key]:.1f} | {jobs / med[key]:.2f} | "
            f"{med[key] / med['local']:.2f} |"
        )
    print(
        f"\nRay 1 worker / 2 workers: {med['ray1'] / med['ray2']:.2f}x; Ray 2 workers / local "
        f"pool: {med['ray2'] / med['local']:.2f}; identical reports: {'yes' if same else 'NO'}"
    )


if __name__ == "__main__":
    main()
