"""Live polling (issue 21): the time the app spends per poll on a growing run, doing it all
again (what every poll did before) against doing only what is new, on the same run:

- the store reads: ``Store.affinity_steps`` against ``app.data_tail.AffinityTails`` and
  ``Store.metrics`` against ``MetricsTails`` (only the steps after the last one read, plus the
  check that the rows already read still stand);
- the smoothings Explore draws: ``mtl_core.series.smooth`` of the whole stack against
  ``app.data_tail.SmoothTails`` (only the new rows, from the carried state).

A 20-task run is written with ``--steps`` matrices into a new store; then, ``--polls`` times,
``--new`` steps are appended (as a live logger's flush does) and both reads are timed on the
same state. The incremental values are checked equal to the full ones every poll.

    python -m bench.live_poll [--tasks 20] [--steps 10000] [--new 10] [--polls 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

HOWS = ("running", "ema", "window")


def plus(names):
    return [n + "+" for n in names]


def _events(steps, tasks, rng):
    """Steps as a live logger flushes them: a matrix and every task's loss at each step, a
    validation loss per task every 100 steps."""
    from mtl_core.events import MetricRow, StepEvent

    n = len(tasks)
    return [
        StepEvent(
            int(s),
            0,
            tasks,
            {t: float(v) for t, v in zip(tasks, rng.random(n))},
            metrics=[MetricRow(t, "val", "loss", 0.5) for t in tasks] if s % 100 == 0 else [],
            affinity={"lookahead": rng.normal(0, 0.01, (n, n))},
        )
        for s in steps
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--new", type=int, default=10, help="steps appended between polls")
    ap.add_argument("--polls", type=int, default=20)
    args = ap.parse_args()

    from app.data_tail import AffinityTails, MetricsTails, SmoothTails
    from mtl_core.series import smooth
    from mtl_core.store import Store

    rng = np.random.default_rng(0)
    tasks = [f"task_{i:02d}" for i in range(args.tasks)]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "s.sqlite")
        rid = store.create_run(name="live", origin="logged", status="running", tasks=tasks)
        for lo in range(1, args.steps + 1, 1000):
            store.append_steps(rid, _events(range(lo, min(lo + 1000, args.steps + 1)), tasks, rng))
        tails, sm, mt = AffinityTails(), SmoothTails(), MetricsTails()
        mt.read(store, rid)
        *_, A0, gen = tails.read_tagged(store, rid, "lookahead")  # the first visit: all
        for how in HOWS:
            sm.smooth((rid, "lookahead"), gen, A0, how, 20, 0.9)
        keys = ("read", "metrics", *HOWS)
        times: dict[str, list[float]] = {k: [] for k in (*keys, *plus(keys))}
        last = args.steps
        for _ in range(args.polls):
            store.append_steps(rid, _events(range(last + 1, last + 1 + args.new), tasks, rng))
            last += args.new
            t0 = time.perf_counter()
            steps, _, A = store.affinity_steps(rid, "lookahead")
            t1 = time.perf_counter()
            got_steps, _, got, gen = tails.read_tagged(store, rid, "lookahead")
            t2 = time.perf_counter()
            times["read"].append(t1 - t0)
            times["read+"].append(t2 - t1)
            assert np.array_equal(got_steps, steps) and np.array_equal(got, A)
            t0 = time.perf_counter()
            whole_m = store.metrics(rid)
            t1 = time.perf_counter()
            part_m = mt.read(store, rid)
            t2 = time.perf_counter()
            times["metrics"].append(t1 - t0)
            times["metrics+"].append(t2 - t1)
            assert whole_m.equals(part_m)
            for how in HOWS:
                t0 = time.perf_counter()
                whole = smooth(A, how, window=20, beta=0.9)
                t1 = time.perf_counter()
                part = sm.smooth((rid, "lookahead"), gen, got, how, 20, 0.9)
                t2 = time.perf_counter()
                times[how].append(t1 - t0)
                times[how + "+"].append(t2 - t1)
                assert np.allclose(part, whole, rtol=1e-12, atol=1e-15, equal_nan=True)
    load = os.getloadavg()[0]
    print(
        f"live poll, {args.tasks} tasks, {args.steps}+ steps, {args.new} new per poll, "
        f"median of {args.polls} polls (load {load:.1f}):"
    )
    print("| per poll | full median ms | incremental median ms | ratio (median) | ratio (best) |")
    print("|---|---|---|---|---|")
    names = {"read": "affinity read", "metrics": "metrics read (losses)",
             "running": "running average", "ema": "EMA 0.9", "window": "window 20"}  # fmt: skip
    for k, name in names.items():
        f, i = times[k], times[k + "+"]
        print(
            f"| {name} | {statistics.median(f) * 1e3:.1f} | {statistics.median(i) * 1e3:.2f} "
            f"| {statistics.median(f) / statistics.median(i):.0f}x | {min(f) / min(i):.0f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
