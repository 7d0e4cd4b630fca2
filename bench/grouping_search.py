"""Exact TAG selection against the published exhaustive search, measured in the same run.

For n tasks and a budget of k groups, times on the same random affinity matrix:

* ``exact DP``: ``TAGGrouper(k)`` (the bitmask dynamic programme, proven optimal);
* ``MILP``: the same problem as a HiGHS integer program (``solver="milp"``), the alternative;
* ``brute force``: every set of k of the ``2**n - n - 1`` candidate groups (the published
  method, vectorized over the last group). Run where its estimated time fits ``--budget``
  seconds, otherwise extrapolated from a timed sample and marked ``~``.

Then the same for the disjoint-partition variant against enumerating every set partition.

    python -m bench.grouping_search [--budget 120] [--milp-limit 120] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import statistics
import time

import numpy as np

from mtl_core.grouping import TAGGrouper, brute_force_tag
from mtl_core.grouping.tag import candidate_scores


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=120.0,
                    help="run brute force only when its estimate is below this (seconds)")
    ap.add_argument("--milp-limit", type=float, default=120.0, help="HiGHS time limit (s)")
    ap.add_argument("--quick", action="store_true", help="small sizes only (smoke test)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    sizes = [4, 6, 8, 9, 10, 12, 16]
    budgets = [2, 3, 4]
    if args.quick:
        sizes, budgets = [4, 6, 8], [2, 3]
    print(f"# exact TAG selection vs brute force ({platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, numpy {np.__version__})")
    print("# random N(0,1) affinity matrices; times are medians of 3 runs for the DP, single runs"
          " otherwise; ~ = extrapolated from a timed sample of the brute-force loop")
    print()
    head = ("| n | k | candidate groups | exact DP | HiGHS MILP | brute force | brute / DP "
            "| same value | DP proven optimal |")
    print(head)
    print("|" + "---|" * 9)
    for n in sizes:
        rng = np.random.default_rng(args.seed + n)
        A = rng.normal(size=(n, n))
        tasks = [f"t{i}" for i in range(n)]
        m = 2**n - n - 1
        for k in budgets:
            t_dp, g = timed(TAGGrouper(k, time_limit=None).fit, A, tasks, repeats=3)
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
            print(f"| {n} | {k} | {m:,} | {fmt(t_dp)} | {mip_cell} | {bf_cell} | {rcell} | "
                  f"{same_cell} | {'yes' if g.optimal_ else 'no'} |", flush=True)

    print()
    print("# disjoint-partition variant: DP vs enumerating every set partition into <= k groups")
    print()
    print("| n | k | set partitions | exact DP | enumeration | enumeration / DP | same value |")
    print("|" + "---|" * 7)
    for n in ([4, 6] if args.quick else [4, 6, 8, 9, 10]):
        rng = np.random.default_rng(args.seed + 100 + n)
        A = rng.normal(size=(n, n))
        tasks = [f"t{i}" for i in range(n)]
        k = 3
        t_dp, g = timed(TAGGrouper(k, disjoint=True).fit, A, tasks, repeats=3)
        parts = sum(_stirling2(n, j) for j in range(1, k + 1))
        t_en, (_, v) = timed(brute_force_tag, A, tasks, k, disjoint=True)
        same = "yes" if abs(v - g.score_) <= 1e-9 else "NO"
        print(f"| {n} | {k} | {parts:,} | {fmt(t_dp)} | {fmt(t_en)} | {ratio(t_en / t_dp)} | "
              f"{same} |", flush=True)


def _stirling2(n: int, k: int) -> int:
    terms = ((-1) ** i * math.comb(k, i) * (k - i) ** n for i in range(k + 1))
    return sum(terms) // math.factorial(k)


if __name__ == "__main__":
    main()
