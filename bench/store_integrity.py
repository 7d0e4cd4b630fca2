"""What the integrity check costs a process's first write to the run store.

Before its first write, each process runs SQLite's ``PRAGMA quick_check`` on the store
(:func:`mtl_core.store.faults.check_integrity`), so a damaged file is never written into. A
store of ``--runs`` runs with ``--steps`` logged lookahead matrices over ``--tasks`` tasks is
written to a temporary folder (through ``append_step``, as a training worker writes), then a
fresh process-like open + first write is timed with and without the check.

Baseline (same run): the first write without the check (open, connect, one status update).

    python -m bench.store_integrity [--runs 10] [--steps 1000] [--tasks 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _fill(path: Path, runs: int, steps: int, n: int) -> None:
    from mtl_core.events import StepEvent
    from mtl_core.store import Store

    st = Store(path)
    tasks = [f"t{i}" for i in range(n)]
    rng = np.random.default_rng(0)
    for _ in range(runs):
        rid = st.create_run(name="bench", status="running", steps_total=steps)
        for s in range(1, steps + 1):
            st.append_step(
                rid,
                StepEvent(
                    step=s,
                    total_steps=steps,
                    tasks=tasks,
                    train_loss={t: 1.0 for t in tasks},
                    metrics=[],
                    affinity={"lookahead": rng.normal(size=(n, n))},
                ),
            )
        st.set_status(rid, "finished")
    st.close()


def _first_write(path: Path, check: bool) -> float:
    from mtl_core.store import Store, faults

    faults.forget_checks()  # as in a new process
    t0 = time.perf_counter()
    st = Store(path)
    if not check:
        st._local.checked = True
    st.rename_run(1, "bench")
    out = time.perf_counter() - t0
    st.close()
    return out * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "store.sqlite"
        _fill(path, args.runs, args.steps, args.tasks)
        size = path.stat().st_size / 2**20
        base = [_first_write(path, False) for _ in range(args.repeats)]
        checked = [_first_write(path, True) for _ in range(args.repeats)]
    b, c = statistics.median(base), statistics.median(checked)
    print(
        f"store: {args.runs} runs x {args.steps} steps, {args.tasks} tasks, {size:.1f} MiB "
        f"(median of {args.repeats})"
    )
    print(f"{'first write':<34} {'ms':>8} {'ratio':>6}")
    print(f"{'without the check (baseline)':<34} {b:8.1f} {1.0:6.2f}")
    print(f"{'with PRAGMA quick_check':<34} {c:8.1f} {c / b:6.2f}")
    print(f"quick_check itself: {c - b:.1f} ms, {(c - b) / max(size, 1e-9):.1f} ms per MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
