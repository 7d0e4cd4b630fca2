"""TAG selection at real sizes against the previous search, and exact selection against the
published exhaustive search, each measured in the same run.

``--section targets`` (issue 14): the current search (``TAGGrouper(k)``: local search, then
column generation with a certified bound and, up to 24 tasks, a proof) against the previous
one (``mtl_core/grouping/tag.py`` as it was at commit :data:`PREVIOUS_COMMIT`, before issue
14, read with ``git show`` at run time and imported from a temporary file: the bitmask DP
under a 60 s wall-clock limit, then greedy-plus-swap with the "every task in its best group"
bound; it refuses more than 20 tasks), on

* n = 20, k = 5, the seeded random matrix (``default_rng(seed + 20)``, N(0, 1));
* 40 tasks in 5 planted blocks of 8 (within +0.5, across -0.5, noise 0.3), k = 5, against the
  planted blocks themselves;
* 100 tasks, k = 10: 10 planted blocks of 10, and an unstructured N(0, 1) matrix;
* the largest n proven optimal within 60 s at k = 4 and k = 5 (random matrices, n = 18...).

Values are TAG values (mean over tasks); "gap" is (upper bound - value) / value. Both wall
and CPU seconds are printed with the machine's load average, because the machine is shared.

``--section exact`` (the tables in docs/grouping.md), times on the same random matrix:

* ``exact DP``: ``TAGGrouper(k, solver="dp")`` (the bitmask dynamic programme, proven optimal);
* ``MILP``: the same problem as a HiGHS integer program (``solver="milp"``), the alternative;
* ``brute force``: every set of k of the ``2**n - n - 1`` candidate groups (the published
  method, vectorized over the last group). Run where its estimated time fits ``--budget``
  seconds, otherwise extrapolated from a timed sample and marked ``~``.

Then the same for the disjoint-partition variant against enumerating every set partition.

    python -m bench.grouping_search [--section all|targets|exact] [--budget 120]
                                    [--milp-limit 120] [--quick]
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import itertools
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from mtl_core.errors import LabError
from mtl_core.grouping import TAGGrouper, brute_force_tag, tag_value
from mtl_core.grouping.tag import candidate_scores
from mtl_core.types import canonical_grouping

#: The commit whose ``mtl_core/grouping/tag.py`` is the baseline: the search before issue 14.
PREVIOUS_COMMIT = "5dd845e"
ROOT = Path(__file__).resolve().parents[1]


def previous_search(commit: str = PREVIOUS_COMMIT) -> ModuleType:
    """The TAG search of ``commit``: ``git show <commit>:mtl_core/grouping/tag.py`` written to
    a temporary file and imported as its own module (it imports today's ``mtl_core.errors``,
    ``grouping.base`` and ``types``, whose names it uses are unchanged). Exits with one line
    when git or the commit is not there (a source tarball without history)."""
    try:
        src = subprocess.run(
            ["git", "show", f"{commit}:mtl_core/grouping/tag.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        sys.exit(f"error: cannot read the baseline search from git ({detail.strip()})")
    folder = Path(tempfile.mkdtemp(prefix="previous_tag_"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / f"previous_tag_{commit}.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def timed(fn, *args, repeats: int = 1, **kwargs):
    """Median wall time of ``fn(*args, **kwargs)`` over ``repeats`` calls, and its result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def brute_estimate(A: np.ndarray, k: int, sample_s: float = 3.0) -> float:
    """Extrapolated brute-force time: the same per-prefix loop as ``brute_force_tag``, timed
    on a sample of prefixes and scaled to all ``C(m - 1, k - 1)`` of them."""
    _, S = candidate_scores(A)
    m = len(S)
    r = min(k, m)
    total = math.comb(m - 1, r - 1)
    done, t0 = 0, time.perf_counter()
    for prefix in itertools.combinations(range(m - 1), r - 1):
        cur = S[list(prefix)].max(0)
        tot = np.maximum(cur, S[prefix[-1] + 1 :]).sum(1)
        int(np.argmax(tot))
        done += 1
        if done % 256 == 0 and time.perf_counter() - t0 > sample_s:
            break
    return (time.perf_counter() - t0) * total / done


def ratio(r: float, approx: bool = False) -> str:
    pre = "~" if approx else ""
    return f"{pre}{r:.1f}x" if r < 10 else f"{pre}{r:,.0f}x"


def fmt(s: float | None, approx: bool = False) -> str:
    if s is None:
        return "-"
    pre = "~" if approx else ""
    if s >= 86400 * 365:
        return f"{pre}{s / (86400 * 365):.1e} years"
    if s >= 3600:
        return f"{pre}{s / 3600:.1f} h"
    if s >= 1:
        return f"{pre}{s:.2f} s"
    return f"{pre}{s * 1e3:.1f} ms"


def planted_blocks(sizes, seed, within=0.5, across=-0.5, noise=0.3):
    """Block matrix: tasks in the same block help each other, across blocks they hurt."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    block = np.repeat(np.arange(len(sizes)), sizes)
    A = np.where(block[:, None] == block[None, :], within, across)
    A = A + rng.normal(0, noise, (n, n))
    perm = rng.permutation(n)
    A, block = A[np.ix_(perm, perm)], block[perm]
    tasks = [f"t{i}" for i in range(n)]
    truth = [[t for t, b in zip(tasks, block) if b == c] for c in range(len(sizes))]
    return A, tasks, truth


def run_timed(make, A, tasks):
    """Fit with wall and CPU time; ``None`` result when the grouper refuses (LabError)."""
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        g = make().fit(A, tasks)
    except LabError as exc:
        return None, str(exc), time.perf_counter() - w0, time.process_time() - c0
    return g, "", time.perf_counter() - w0, time.process_time() - c0


def _gap(g) -> str:
    if g.optimal_:
        return "0 (proven)"
    if not np.isfinite(g.upper_bound_) or g.score_ == 0:
        return "-"
    return f"{(g.upper_bound_ - g.score_) / abs(g.score_):.1%}"


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def targets(seed: int, limit: float, quick: bool) -> None:
    """The issue-14 targets: current vs previous search, same matrices, same run."""
    print(
        f"# TAG selection at real sizes: current vs previous search "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, numpy {np.__version__}); load average at "
        f"start {load()}"
    )
    print(
        "# value = TAG value (mean best-group affinity onto each task); gap = (upper bound "
        "- value) / value; wall / CPU seconds; ratios = previous / current (time) and "
        "current / previous (value)"
    )
    print()
    print("| case | n | k | search | value | upper bound | gap | wall s | CPU s | notes |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def row(case, n, k, name, g, err, wall, cpu, note=""):
        if g is None:
            print(
                f"| {case} | {n} | {k} | {name} | - | - | - | {wall:.2f} | {cpu:.2f} | "
                f"refused: {err.split(';')[0]} |",
                flush=True,
            )
            return
        stop = ""
        if getattr(g, "stopped_", False) or getattr(g, "solver_", "") == "heuristic":
            stop = " (stopped by its time limit)"
        ub = f"{g.upper_bound_:.4f}" if np.isfinite(g.upper_bound_) else "-"
        print(
            f"| {case} | {n} | {k} | {name} | {g.score_:.4f} | {ub} | {_gap(g)} | "
            f"{wall:.2f} | {cpu:.2f} | {note}{stop} |",
            flush=True,
        )

    cases = []
    rng = np.random.default_rng(seed + 20)
    cases.append(
        ("seeded random", rng.normal(size=(20, 20)), [f"t{i}" for i in range(20)], 5, None)
    )
    if not quick:
        A, tasks, truth = planted_blocks([8] * 5, seed)
        cases.append(("40 in 5 planted blocks", A, tasks, 5, truth))
        A, tasks, truth = planted_blocks([10] * 10, seed + 1)
        cases.append(("100 in 10 planted blocks", A, tasks, 10, truth))
        A = np.random.default_rng(seed + 100).normal(size=(100, 100))
        cases.append(("100 unstructured", A, [f"t{i}" for i in range(100)], 10, None))
    summary = []
    previous_tag_search = previous_search()
    for case, A, tasks, k, truth in cases:
        n = len(tasks)
        prev = run_timed(lambda k=k: previous_tag_search.TAGGrouper(k, time_limit=limit), A, tasks)
        cur = run_timed(lambda k=k: TAGGrouper(k, time_limit=limit), A, tasks)
        row(case, n, k, "previous", *prev)
        note = ""
        if truth is not None:
            v_truth = tag_value(A, tasks, truth)
            note = f"planted blocks: {v_truth:.4f}; "
            if cur[0].groups_ == canonical_grouping(truth):
                note += "found them"
            else:
                note += "better than them" if cur[0].score_ > v_truth + 1e-12 else "not them"
        if prev[0] is not None:
            note = (note + "; " if note else "") + (
                f"time ratio {prev[2] / cur[2]:.1f}x, value ratio "
                f"{cur[0].score_ / prev[0].score_:.4f}"
            )
        row(case, n, k, "current", *cur, note=note)
        summary.append((case, prev, cur))

    print()
    print(
        "# largest n proven optimal within the limit (random N(0,1) matrices, "
        "default_rng(seed + n)); previous = exact DP (refuses n > 20)"
    )
    print()
    print("| k | n | previous: proven? | wall s | current: proven? | wall s | CPU s | value |")
    print("|---|---|---|---|---|---|---|---|")
    sizes = [18, 20] if quick else [18, 20, 21, 22, 23, 24, 25, 26]
    for k in (4, 5):
        largest = {"previous": 0, "current": 0}
        for n in sizes:
            A = np.random.default_rng(seed + n).normal(size=(n, n))
            tasks = [f"t{i}" for i in range(n)]
            prev = (None, "skipped", 0.0, 0.0)
            if n <= 20:
                prev = run_timed(
                    lambda k=k: previous_tag_search.TAGGrouper(k, time_limit=limit), A, tasks
                )
            cur = run_timed(lambda k=k: TAGGrouper(k, time_limit=limit), A, tasks)
            p_ok = prev[0] is not None and prev[0].optimal_ and prev[2] <= limit
            c_ok = cur[0].optimal_ and cur[2] <= limit
            if p_ok:
                largest["previous"] = n
            if c_ok:
                largest["current"] = n
            p_cell = "-" if prev[0] is None else ("yes" if p_ok else "no")
            print(
                f"| {k} | {n} | {p_cell} | {prev[2]:.1f} | {'yes' if c_ok else 'no'} | "
                f"{cur[2]:.1f} | {cur[3]:.1f} | {cur[0].score_:.4f} |",
                flush=True,
            )
            if not c_ok:
                break
        print(
            f"\nk = {k}: largest n proven optimal within {limit:g} s: previous "
            f"{largest['previous']}, current {largest['current']}\n",
            flush=True,
        )
    print(f"# load average at end {load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", choices=("all", "targets", "exact"), default="all")
    ap.add_argument(
        "--limit",
        type=float,
        default=60.0,
        help="time limit of both searches in the targets section (s)",
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="run brute force only when its estimate is below this (seconds)",
    )
    ap.add_argument("--milp-limit", type=float, default=120.0, help="HiGHS time limit (s)")
    ap.add_argument("--quick", action="store_true", help="small sizes only (smoke test)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.section in ("all", "targets"):
        targets(args.seed, args.limit, args.quick)
        print()
    if args.section in ("all", "exact"):
        exact(args)


def exact(args: argparse.Namespace) -> None:
    """Exact selection (DP) against the published exhaustive search and HiGHS."""
    sizes = [4, 6, 8, 9, 10, 12, 16]
    budgets = [2, 3, 4]
    if args.quick:
        sizes, budgets = [4, 6, 8], [2, 3]
    print(
        f"# exact TAG selection vs brute force ({platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}, numpy {np.__version__})"
    )
    print(
        "# random N(0,1) affinity matrices; times are medians of 3 runs for the DP, single runs"
        " otherwise; ~ = extrapolated from a timed sample of the brute-force loop"
    )
    print()
    head = (
        "| n | k | candidate groups | exact DP | HiGHS MILP | brute force | brute / DP "
        "| same value | DP proven optimal |"
    )
    print(head)
    print("|" + "---|" * 9)
    for n in sizes:
        rng = np.random.default_rng(args.seed + n)
        A = rng.normal(size=(n, n))
        tasks = [f"t{i}" for i in range(n)]
        m = 2**n - n - 1
        for k in budgets:
            t_dp, g = timed(TAGGrouper(k, solver="dp", time_limit=None).fit, A, tasks, repeats=3)
            milp = TAGGrouper(k, solver="milp", time_limit=args.milp_limit)
            t_mip, mip = timed(milp.fit, A, tasks)
            mip_cell = fmt(t_mip)
            if not mip.optimal_:
                mip_cell += f" (stopped, gap {mip.gap_:.2g})"
            est = brute_estimate(A, k, sample_s=min(3.0, args.budget / 10))
            if est <= args.budget:
                t_bf, (_, v_bf) = timed(brute_force_tag, A, tasks, k)
                same = "yes" if abs(v_bf - g.score_) <= 1e-9 else f"NO ({v_bf} vs {g.score_})"
                bf_cell, rcell = fmt(t_bf), ratio(t_bf / t_dp)
            else:
                bf_cell, rcell, same = fmt(est, True), ratio(est / t_dp, True), "-"
            agree = abs(mip.score_ - g.score_) <= 1e-7 if mip.optimal_ else None
            same_cell = same if agree is None or agree else same + " (MILP differs!)"
            print(
                f"| {n} | {k} | {m:,} | {fmt(t_dp)} | {mip_cell} | {bf_cell} | {rcell} | "
                f"{same_cell} | {'yes' if g.optimal_ else 'no'} |",
                flush=True,
            )

    print()
    print("# disjoint-partition variant: DP vs enumerating every set partition into <= k groups")
    print()
    print("| n | k | set partitions | exact DP | enumeration | enumeration / DP | same value |")
    print("|" + "---|" * 7)
    for n in [4, 6] if args.quick else [4, 6, 8, 9, 10]:
        rng = np.random.default_rng(args.seed + 100 + n)
        A = rng.normal(size=(n, n))
        tasks = [f"t{i}" for i in range(n)]
        k = 3
        t_dp, g = timed(TAGGrouper(k, disjoint=True, solver="dp").fit, A, tasks, repeats=3)
        parts = sum(_stirling2(n, j) for j in range(1, k + 1))
        t_en, (_, v) = timed(brute_force_tag, A, tasks, k, disjoint=True)
        same = "yes" if abs(v - g.score_) <= 1e-9 else "NO"
        print(
            f"| {n} | {k} | {parts:,} | {fmt(t_dp)} | {fmt(t_en)} | {ratio(t_en / t_dp)} | "
            f"{same} |",
            flush=True,
        )


def _stirling2(n: int, k: int) -> int:
    terms = ((-1) ** i * math.comb(k, i) * (k - i) ** n for i in range(k + 1))
    return sum(terms) // math.factorial(k)


if __name__ == "__main__":
    main()
