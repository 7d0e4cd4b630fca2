"""Live polling (issue 21): the time the app spends reading a growing run's affinity per poll,
a full read (``Store.affinity_steps``, what every poll did before) against an incremental one
(``app.data_tail.AffinityTails``: only the steps after the last one read, plus the check that
the rows already read still stand), on the same run.

A 20-task run is written with ``--steps`` matrices into a new store; then, ``--polls`` times,
``--new`` steps are appended (as a live logger's flush does) and both reads are timed on the
same state. The incremental read's values are checked equal to the full read's every poll.

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


def _events(steps, tasks, rng):
    from mtl_core.events import StepEvent

    n = len(tasks)
    return [
        StepEvent(int(s), 0, tasks, {}, affinity={"lookahead": rng.normal(0, 0.01, (n, n))})
        for s in steps
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--new", type=int, default=10, help="steps appended between polls")
    ap.add_argument("--polls", type=int, default=20)
    args = ap.parse_args()

    from app.data_tail import AffinityTails
    from mtl_core.store import Store

    rng = np.random.default_rng(0)
    tasks = [f"task_{i:02d}" for i in range(args.tasks)]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "s.sqlite")
        rid = store.create_run(name="live", origin="logged", status="running", tasks=tasks)
        for lo in range(1, args.steps + 1, 1000):
            store.append_steps(rid, _events(range(lo, min(lo + 1000, args.steps + 1)), tasks, rng))
        tails = AffinityTails()
        tails.read(store, rid, "lookahead")  # the first visit reads everything either way
        full_s, inc_s = [], []
        last = args.steps
        for _ in range(args.polls):
            store.append_steps(rid, _events(range(last + 1, last + 1 + args.new), tasks, rng))
            last += args.new
            t0 = time.perf_counter()
            steps, _, A = store.affinity_steps(rid, "lookahead")
            t1 = time.perf_counter()
            got = tails.read(store, rid, "lookahead")
            t2 = time.perf_counter()
            full_s.append(t1 - t0)
            inc_s.append(t2 - t1)
            assert np.array_equal(got[0], steps) and np.array_equal(got[2], A)
        full, inc = statistics.median(full_s), statistics.median(inc_s)
    load = os.getloadavg()[0]
    print(
        f"live poll, {args.tasks} tasks, {args.steps}+ steps, {args.new} new per poll, "
        f"median of {args.polls} polls (load {load:.1f}):"
    )
    print("| read per poll | median ms | best ms |")
    print("|---|---|---|")
    print(f"| full (affinity_steps) | {full * 1e3:.1f} | {min(full_s) * 1e3:.1f} |")
    print(f"| incremental (AffinityTails) | {inc * 1e3:.2f} | {min(inc_s) * 1e3:.2f} |")
    print(f"| ratio full / incremental | {full / inc:.0f}x | {min(full_s) / min(inc_s):.0f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
