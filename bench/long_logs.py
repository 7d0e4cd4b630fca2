"""Long logs (issue 14): a 100k-step run logged every 10 steps (10,000 matrices), end to end.

One long-form CSV (``step,source,target,measure,affinity``, the open run format) is written for
each ``--tasks``; each measurement runs in a fresh process, so its peak memory (``ru_maxrss``)
is its own:

- ``parse (baseline)``: ``pandas.read_csv`` of the same file, nothing else (the floor any
  importer pays);
- ``import``: ``read_run_file`` (validation, the one non-finite rule) and ``Store.import_parsed``
  into a new SQLite store, as ``python -m mtl_core import`` does;
- ``group``: what ``python -m mtl_core group FILE --method hierarchical --k 3`` does (read,
  average the steps, group);
- ``Explore``: the real Explore page (Streamlit's AppTest, the script run a browser triggers)
  opened on the imported run in a new process (module imports included) and again (a second
  visit), with a 100-matrix run as its baseline (peak MB 0: not measured separately).

Memory per imported cell: the store's bytes on disk, and the import's peak RSS above the plain
parse's, over the number of affinity cells. Times are wall seconds on this machine (its load is
printed with the table).

    python -m bench.long_logs [--steps 100000] [--every 10] [--tasks 5 10]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def write_log(path: Path, n: int, steps: int, every: int, seed: int = 0) -> int:
    """A long-form affinity log of ``steps // every`` matrices ``(n, n)`` (off-diagonal cells
    only, as the lab logs them); returns its number of rows."""
    rng = np.random.default_rng(seed)
    tasks = [f"task_{i:02d}" for i in range(n)]
    logged = np.arange(every, steps + 1, every)
    src = np.repeat(np.arange(n), n)
    tgt = np.tile(np.arange(n), n)
    off = src != tgt
    base = rng.normal(0, 0.01, (n, n))
    with open(path, "w") as fh:
        fh.write("step,source,target,measure,affinity\n")
        for s in logged:
            vals = (base + rng.normal(0, 0.005, (n, n))).ravel()
            fh.writelines(
                f"{s},{tasks[i]},{tasks[j]},lookahead,{v:.6g}\n"
                for i, j, v in zip(src[off], tgt[off], vals[off])
            )
    return int(len(logged) * off.sum())


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _parse(path: str, q) -> None:
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_csv(path)
    q.put((time.perf_counter() - t0, _peak_mb(), len(df)))


def _import(path: str, store: str, q) -> None:
    from mtl_core.runfile import read_run_file
    from mtl_core.store import Store

    t0 = time.perf_counter()
    parsed = read_run_file(Path(path))
    (rid,) = Store(store).import_parsed(parsed, Path(path).stem)
    q.put((time.perf_counter() - t0, _peak_mb(), rid))


def _group(path: str, q) -> None:
    from mtl_core.commands.group import load_affinity_measure
    from mtl_core.grouping import make_grouper

    t0 = time.perf_counter()
    tasks, A, _ = load_affinity_measure(path)
    make_grouper("hierarchical", k=3).fit(A, tasks)
    q.put((time.perf_counter() - t0, _peak_mb(), len(tasks)))


def _explore(store: str, rid: int, q) -> None:
    from streamlit.testing.v1 import AppTest

    os.environ["MTL_LAB_LESSON_AHEAD"] = "off"  # the app's idle runner trains nothing
    os.environ["MTL_LAB_STORE"] = store
    os.environ["MTL_LAB_TEST_PAGE"] = "explore"
    at = AppTest.from_file(str(ROOT / "tests" / "helpers" / "app_script.py"), default_timeout=300)
    at.query_params["run"] = str(rid)
    t0 = time.perf_counter()
    at.run()
    took = time.perf_counter() - t0
    t0 = time.perf_counter()
    at.run()  # a second visit: the process has its modules and caches
    again = time.perf_counter() - t0
    err = repr(at.exception[0].value) if at.exception else ""
    q.put((took, _peak_mb(), (again, err)))


def in_process(fn, *args) -> tuple:
    """Run ``fn(*args, queue)`` in a fresh spawned process; its ``(seconds, peak MB, x)``."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(*args, q))
    p.start()
    while True:  # a child that died without an answer (e.g. a refused file) ends the wait
        try:
            out = q.get(timeout=5)
            break
        except queue.Empty:
            if not p.is_alive():
                raise RuntimeError(
                    f"{fn.__name__} ended without a result (see its traceback)"
                ) from None
    p.join(10)
    if p.is_alive():  # the app's runner threads keep an AppTest process alive: stop it
        p.kill()
        p.join()
    return out


def row(lead: str, name: str, s: float, mb: float, ratio: float) -> str:
    return f"| {lead} | {name} | {s:.2f} | {mb:.0f} | {ratio:.2f} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--tasks", type=int, nargs="+", default=[5, 10])
    args = ap.parse_args()
    # speed, not policy: the readers' size limits (MTL_LAB_MAX_CELLS, issue 13) are lifted
    os.environ.setdefault("MTL_LAB_MAX_CELLS", "0")
    tmp = Path(tempfile.mkdtemp(prefix="long_logs_"))
    matrices = args.steps // args.every
    print(
        f"Long logs: {args.steps:,} steps, affinity every {args.every} ({matrices:,} matrices); "
        f"load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} cores"
    )
    print("| tasks, rows, file | step | s | peak MB | x baseline |")
    print("|---|---|---|---|---|")
    for n in args.tasks:
        log = tmp / f"log_{n}.csv"
        rows = write_log(log, n, args.steps, args.every)
        lead = f"{n}, {rows:,}, {log.stat().st_size / 1e6:.0f} MB"
        small = tmp / f"small_{n}.csv"
        write_log(small, n, 100 * args.every, args.every, seed=1)
        store = str(tmp / f"store_{n}.sqlite")
        parse_s, parse_mb, _ = in_process(_parse, str(log))
        imp_s, imp_mb, rid = in_process(_import, str(log), store)
        grp_s, grp_mb, _ = in_process(_group, str(log))
        _, _, small_id = in_process(_import, str(small), store)
        small_s, small_mb, (small_again, err0) = in_process(_explore, store, small_id)
        exp_s, exp_mb, (exp_again, err) = in_process(_explore, store, rid)
        print(row(lead, "parse only: pandas.read_csv (baseline)", parse_s, parse_mb, 1.0))
        print(row(lead, "import: read + store", imp_s, imp_mb, imp_s / parse_s))
        print(row(lead, "group: read + mean + hierarchical k=3", grp_s, grp_mb, grp_s / parse_s))
        print(row(lead, "Explore, new process, 100 matrices (baseline)", small_s, small_mb, 1.0))
        label = f"Explore, new process, {matrices:,} matrices"
        print(row(lead, label, exp_s, exp_mb, exp_s / small_s))
        print(row(lead, "Explore, second visit, 100 matrices (baseline)", small_again, 0, 1.0))
        label = f"Explore, second visit, {matrices:,} matrices"
        print(row(lead, label, exp_again, 0, exp_again / small_again))
        disk = Path(store).stat().st_size
        extra = (imp_mb - parse_mb) * 1e6 / rows
        print(
            f"| {lead} | memory per imported cell: {disk / rows:.0f} B on disk (store, both runs), "
            f"{extra:.0f} B peak RSS above the plain parse | | | |"
        )
        if err or err0:
            print(f"Explore raised: {err or err0}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
