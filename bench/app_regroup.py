"""Server-side time to regroup and re-render Explore when the threshold or k moves.

A 20-task run with 2,000 logged lookahead matrices (``--tasks 50 --steps 10000``: the real-size
check of issue 14) is written to a temporary store, step by step like a training worker; the real
Explore page runs in Streamlit's AppTest (the same script run a browser triggers, without the
network); each control is moved repeatedly and the full script run is timed. AppTest reruns
the whole page, while a browser reruns only the page's fragment, so these are upper bounds.

Baseline (same run): a rerun with nothing changed. Target: a move < 300 ms.

    python -m bench.app_regroup [--tasks 20] [--steps 2000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(fn, repeats: int) -> list[float]:
    out = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    from streamlit.testing.v1 import AppTest

    from mtl_core.events import StepEvent
    from mtl_core.store import Store
    from tests.helpers.app_fixtures import planted_stack

    tmp = Path(tempfile.mkdtemp(prefix="app_regroup_"))
    store = Store(tmp / "store.sqlite")
    t0 = time.perf_counter()
    # Planted blocks (one task switching cluster at step 700), written like a worker does:
    # one transaction per step (a long-form import of 25M cells would measure the importer).
    steps, tasks, A = planted_stack(args.tasks, min(args.steps, 1000), switch_at=700)
    rid = store.create_run(name="bench", origin="trained", status="running", steps_total=args.steps)
    for s in range(1, args.steps + 1):
        M = A[min(s, len(A)) - 1]
        store.append_step(
            rid,
            StepEvent(
                step=s,
                total_steps=args.steps,
                tasks=tasks,
                train_loss={t: 0.1 for t in tasks},
                affinity={"lookahead": M},
            ),
        )
    store.set_status(rid, "finished")
    seed_s = time.perf_counter() - t0
    os.environ["MTL_LAB_LESSON_AHEAD"] = "off"  # the app's idle runner trains nothing
    os.environ["MTL_LAB_STORE"] = str(store.path)
    os.environ["MTL_LAB_TEST_PAGE"] = "explore"
    at = AppTest.from_file(str(ROOT / "tests" / "helpers" / "app_script.py"), default_timeout=120)
    at.query_params["run"] = str(rid)
    t0 = time.perf_counter()
    at.run()
    first_ms = (time.perf_counter() - t0) * 1000
    assert not at.exception, at.exception
    at.run()  # warm caches (a second visit)

    rows: list[tuple[str, list[float]]] = []
    rows.append(("rerun, nothing changed (baseline)", timed(lambda i: at.run(), args.repeats)))
    tau = at.slider(key="explore_tau_ui")
    lo, hi = tau.min, tau.max
    values = [lo + (hi - lo) * f for f in (0.3, 0.45, 0.55, 0.7, 0.5, 0.6, 0.4, 0.35, 0.65)]

    def move_tau(i: int) -> None:
        at.slider(key="explore_tau_ui").set_value(values[i % len(values)]).run()

    rows.append(("threshold moved (threshold grouping)", timed(move_tau, args.repeats)))
    at.selectbox(key="explore_method").set_value("hierarchical").run()
    ks = [2, 3, 4, 5, 6, 3, 4, 2, 5]

    def move_k(i: int) -> None:
        at.slider(key="k").set_value(ks[i % len(ks)]).run()

    rows.append(("k moved (hierarchical)", timed(move_k, args.repeats)))
    at.session_state["explore_tab"] = "Groups over time"
    at.run()
    rows.append(("k moved, group timeline tab open", timed(move_k, args.repeats)))
    at.session_state["explore_tab"] = "Play over steps"
    at.selectbox(key="explore_method").set_value("tag").run()
    # TAG on more than 12 tasks runs in a background thread; a script run only polls it.
    # Time the wait until the groups are shown.
    tag_ks = [3, 4, 2]
    answers: list[float] = []

    def move_tag(i: int) -> None:
        t0 = time.perf_counter()
        at.slider(key="k").set_value(tag_ks[i % len(tag_ks)])
        at.run()
        while any("TAG is searching" in x.value for x in at.info):
            at.run()
        answers.append((time.perf_counter() - t0) * 1000)

    timed(move_tag, 3)
    rows.append((f"k moved (TAG, {args.tasks} tasks): until groups shown", answers))
    assert not at.exception, at.exception

    base = statistics.median(rows[0][1])
    print(
        f"Explore regroup + re-render, {args.tasks} tasks x {args.steps} logged steps "
        f"(server side, AppTest full script run; seeding {seed_s:.1f} s, first load "
        f"{first_ms:.0f} ms; load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())})"
    )
    print(
        f"{'action':<40}{'median ms':>10}{'p95 ms':>9}{'max ms':>9}{'x baseline':>12}"
        f"{'< 300 ms':>10}"
    )
    for name, ms in rows:
        med = statistics.median(ms)
        p95 = sorted(ms)[max(0, int(round(0.95 * len(ms))) - 1)]
        print(
            f"{name:<40}{med:>10.0f}{p95:>9.0f}{max(ms):>9.0f}{med / base:>12.2f}"
            f"{'yes' if p95 < 300 else 'no':>10}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
