"""``select``'s exact solver against a plain MILP of the same problem, in the same run.

The problem (TAG's rule on a measured table, ``docs/ground-truth.md``): choose at most ``k``
networks so that every task is in one; each task is served by its best chosen network; maximise
the sum of the served gains. Tables are 27 tasks x 3,185 networks, MTG-Net's MIMIC-III design
(Song et al., NeurIPS 2022, ``collected_gain/mimic27``): the 27 single-task networks, all 351
pairs, and 2,807 sampled subsets of 6 to 27 tasks.

* ``ours``: :func:`mtl_core.groundtruth.select.best_selection` (dominance prefilter, then the
  assignment MILP with continuous assignment variables, HiGHS);
* ``plain``: the textbook formulation written out here with no prefilter: binary ``x_j`` per
  network, binary ``y_ji`` per measured cell, ``sum_j y_ji = 1``, ``y_ji <= x_j``,
  ``sum_j x_j <= k``, HiGHS through :func:`scipy.optimize.milp`.

Both must reach the same objective (asserted, 1e-9) and be proven optimal. Tables:

* ``synthetic`` (default, seeded): 27 tasks in 3 planted clusters; a pair's gain for task i
  is the partner's pull onto i (+0.03 within a cluster, -0.05 across) plus N(0, 0.06) noise;
  a larger network's gain is the mean pull from its other members plus N(0, 0.1); single-task
  networks gain 0 (like MIMIC's files);
* ``--mtg DIR``: the real files ``DIR/mimic_x.csv`` (masks) and ``DIR/mimic_y_valid.csv``
  (gains) from github.com/ShawnKS/MTG-Net (not shipped here: the repository has no licence).

    nice python -m bench.select_milp [--mtg DIR] [--ks 2 3 4 5] [--repeats 1] [--seed 0]

Times are medians of ``--repeats`` wall-clock runs on a shared machine (load printed).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from itertools import combinations

import numpy as np
import scipy
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from mtl_core.groundtruth.select import best_selection, served_total
from mtl_core.groundtruth.tables import GroundTruth, read_mtg

N_TASKS = 27
N_SAMPLED = 2807  # 3,185 networks in all, as in MTG-Net's mimic27 files


def synthetic_table(seed: int = 0) -> GroundTruth:
    """The seeded 27-task, 3,185-network table described in the module docstring."""
    rng = np.random.default_rng(seed)
    n = N_TASKS
    cluster = np.arange(n) % 3
    pull = np.where(cluster[:, None] == cluster[None, :], 0.03, -0.05)  # pull[l, i]: l onto i
    subsets: list[tuple[int, ...]] = [(i,) for i in range(n)]
    subsets += list(combinations(range(n), 2))
    seen = set(subsets)
    subsets.append(tuple(range(n)))
    seen.add(subsets[-1])
    while len(subsets) < n + n * (n - 1) // 2 + N_SAMPLED:
        size = int(np.clip(round(rng.normal(13, 3.5)), 6, n - 1))
        s = tuple(sorted(rng.choice(n, size=size, replace=False).tolist()))
        if s not in seen:
            seen.add(s)
            subsets.append(s)
    values = np.full((len(subsets), n), np.nan)
    for j, s in enumerate(subsets):
        if len(s) == 1:
            values[j, s[0]] = 0.0
            continue
        idx = np.array(s)
        sub = pull[np.ix_(idx, idx)].copy()
        np.fill_diagonal(sub, np.nan)
        sd = 0.06 if len(s) == 2 else 0.1
        values[j, idx] = np.nanmean(sub, axis=0) + rng.normal(0, sd, len(s))
    return GroundTruth(
        [f"t{i}" for i in range(n)],
        subsets,
        np.ones(len(subsets)),
        values,
        "higher",
        "synthetic",
    )


def plain_milp(gains: np.ndarray, k: int, time_limit: float = 600.0) -> tuple[float, bool]:
    """The textbook MILP (module docstring): (objective, proven)."""
    m, n = gains.shape
    cj, ci = np.nonzero(~np.isnan(gains))
    ny = len(cj)
    c = np.concatenate([np.zeros(m), -gains[cj, ci]])
    cover = sparse.csr_matrix((np.ones(ny), (ci, m + np.arange(ny))), shape=(n, m + ny))
    r = np.arange(ny)
    link = sparse.csr_matrix(
        (np.r_[np.ones(ny), -np.ones(ny)], (np.r_[r, r], np.r_[m + r, cj])), shape=(ny, m + ny)
    )
    count = sparse.csr_matrix(np.r_[np.ones(m), np.zeros(ny)][None, :])
    res = milp(
        c,
        constraints=[
            LinearConstraint(cover, 1, 1),
            LinearConstraint(link, -np.inf, 0),
            LinearConstraint(count, -np.inf, k),
        ],
        integrality=np.ones(m + ny),
        bounds=Bounds(0, 1),
        options={"time_limit": time_limit, "mip_rel_gap": 0.0},
    )
    return -float(res.fun), res.status == 0


def timed(fn, repeats: int):
    """Median wall seconds of ``fn()`` over ``repeats`` calls, and its last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench(table: GroundTruth, ks: list[int], repeats: int) -> list[dict]:
    """One row per k: both solvers' median seconds, objectives (equal) and proofs."""
    g = table.oriented
    rows = []
    for k in ks:
        ours_s, ch = timed(lambda k=k: best_selection(g, table.costs, k=k), repeats)
        plain_s, (plain_obj, plain_proven) = timed(lambda k=k: plain_milp(g, k), repeats)
        served = served_total(g, ch.networks, g)
        assert abs(ch.objective - plain_obj) < 1e-9, (k, ch.objective, plain_obj)
        assert abs(served - plain_obj) < 1e-9, (k, served, plain_obj)
        rows.append(
            {
                "k": k,
                "ours": ours_s,
                "plain": plain_s,
                "objective": plain_obj,
                "proven": bool(ch.proven and plain_proven),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the table for the synthetic table, or for MTG-Net's MIMIC files with ``--mtg``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mtg", help="folder with MTG-Net's mimic_x.csv and mimic_y_valid.csv")
    ap.add_argument("--ks", type=int, nargs="+", default=[2, 3, 4, 5])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.mtg:
        table = read_mtg(
            os.path.join(a.mtg, "mimic_x.csv"), os.path.join(a.mtg, "mimic_y_valid.csv")
        )
        label = "MTG-Net mimic27 (mimic_x.csv, mimic_y_valid.csv)"
    else:
        table = synthetic_table(a.seed)
        label = f"synthetic MIMIC-like design, seed {a.seed}"
    cells = int(np.isfinite(table.values).sum())
    print(
        f"# {label}: {len(table.tasks)} tasks x {len(table.members)} networks, {cells} cells; "
        f"median of {a.repeats}; {platform.machine()}, python {platform.python_version()}, "
        f"scipy {scipy.__version__}; load {os.getloadavg()[0]:.1f}"
    )
    print("| k | ours s | plain s | ratio (plain/ours) | objective | proven |")
    print("|---|---|---|---|---|---|")
    for r in bench(table, a.ks, a.repeats):
        print(
            f"| {r['k']} | {r['ours']:.2f} | {r['plain']:.2f} | {r['plain'] / r['ours']:.2f} | "
            f"{r['objective']:.5f} | {'yes' if r['proven'] else 'no'} |"
        )


if __name__ == "__main__":
    main()
