"""``group``: turn an affinity matrix or log into task groups.

INPUT is any file ``import`` reads, through the same reader and with the same messages
(:func:`mtl_core.runfile.read_run_file`): a long-form affinity log (averaged over its logged
steps) or a square matrix (rows = source, columns = target), in ``.csv``, ``.tsv``,
``.parquet``, ``.jsonl``, ``.json``, ``.npy``, ``.npz``, ``.zip`` or a TensorBoard log.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from mtl_core.errors import LabError
from mtl_core.types import Grouping

CLI_METHODS = ("tag", "threshold", "hierarchical", "affinity-propagation")


def add_parser(sub) -> None:
    """Register ``group`` on the CLI's subparsers."""
    p = sub.add_parser(
        "group",
        help="group tasks from an affinity matrix or log",
        description="Group tasks from an affinity matrix (rows = source, columns = target) or "
        "a long-form affinity log averaged over steps.",
    )
    p.add_argument(
        "input", metavar="INPUT", help="affinity log or square matrix, in any format import reads"
    )
    p.add_argument("--method", choices=CLI_METHODS, default="tag")
    p.add_argument(
        "--k",
        type=int,
        default=None,
        help="group budget (tag: at most K groups, required; hierarchical: K groups)",
    )
    p.add_argument(
        "--tau",
        type=float,
        default=None,
        help="threshold on the symmetrized affinity (threshold, default 0; "
        "hierarchical: cut at this affinity level)",
    )
    p.add_argument(
        "--measure",
        default=None,
        help="which measure of a long-form log (needed when it holds several)",
    )
    p.add_argument("--run", default=None, help="which run of a multi-run file")
    p.add_argument(
        "--allow-singletons",
        action="store_true",
        help="tag: allow a task alone in its group (scores 0: no transfer)",
    )
    p.add_argument(
        "--disjoint", action="store_true", help="tag: groups partition the tasks (no overlap)"
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=60.0,
        help="tag: safety stop in seconds (the answer does not depend on it unless it fires, "
        "which is reported)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of TAG's search and AP's tie-breaking")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"groups": [[...]], "value": x, "optimal": b, "gap": g}',
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read INPUT, group, print. Errors a user can cause raise ``LabError``."""
    from mtl_core.grouping import make_grouper

    tasks, A = load_affinity(args.input, measure=args.measure, run=args.run)
    options: dict[str, object] = {}
    if args.method == "tag":
        options = {
            "allow_singletons": args.allow_singletons,
            "disjoint": args.disjoint,
            "time_limit": args.time_limit,
        }
    if args.method == "hierarchical" and args.k is not None and args.tau is not None:
        raise LabError("hierarchical grouping takes one cut: give --k or --tau, not both")
    grouper = make_grouper(args.method, k=args.k, tau=args.tau, seed=args.seed, **options)
    grouper.fit(A, tasks)
    optimal = bool(getattr(grouper, "optimal_", False))
    gap = getattr(grouper, "gap_", None)
    if grouper.warning_:
        print(f"warning: {grouper.warning_}", file=sys.stderr)
    if args.json:
        print(json.dumps(result_dict(grouper.groups_, grouper.score_, optimal, gap, tasks)))
        return 0
    upper = getattr(grouper, "upper_bound_", None)
    print(format_result(args.method, grouper.groups_, grouper.score_, optimal, gap, tasks, upper))
    return 0


def result_dict(
    groups: Grouping, value: float, optimal: bool, gap: float | None, tasks: list[str]
) -> dict[str, object]:
    """The ``--json`` object; members listed in the input's task order."""
    order = {t: i for i, t in enumerate(tasks)}
    return {
        "groups": [sorted(g, key=order.__getitem__) for g in groups],
        "value": float(value),
        "optimal": bool(optimal),
        "gap": None if gap is None or not math.isfinite(gap) else float(gap),
    }


def format_result(
    method: str,
    groups: Grouping,
    value: float,
    optimal: bool,
    gap: float | None,
    tasks: list[str],
    upper: float | None = None,
) -> str:
    """Human-readable result: one line per group, then the TAG value (for TAG with its proof:
    proven optimal, or the proven upper bound and the relative gap)."""
    order = {t: i for i, t in enumerate(tasks)}
    lines = [f"{method}: {len(groups)} group(s) over {len(tasks)} tasks"]
    for i, g in enumerate(groups, 1):
        lines.append(f"  {i}. {', '.join(sorted(g, key=order.__getitem__))}")
    note = ""
    if method == "tag":
        if optimal:
            note = " (proven optimal)"
        else:
            bound = "" if upper is None else f"; no grouping exceeds {upper:.6g}"
            rel = f", {gap / abs(value):.1%}" if value else ""
            note = f" (best found; gap <= {gap:.4g}{rel}{bound})"
    lines.append(f"value (mean best-group affinity onto each task): {value:.6g}{note}")
    return "\n".join(lines)


def load_affinity(
    path: str | Path, *, measure: str | None = None, run: str | None = None
) -> tuple[list[str], np.ndarray]:
    """Read any run file ``import`` reads and average one run and measure over its steps.

    Returns ``(tasks, A)``: ``A`` float64 (n, n), ``A[i, j]`` the mean over logged steps of
    source ``tasks[i]`` -> target ``tasks[j]`` (rows = sources).

    Raises
    ------
    LabError
        The reader's message (as ``import`` says it); several runs or measures and none
        picked; or a pair never logged.
    """
    from mtl_core.runfile import mean_matrix, read_run_file

    p = Path(path)
    parsed = read_run_file(p)
    runs = parsed.runs
    if run is None:
        if len(runs) > 1:
            raise LabError(
                f"{p.name} holds {len(runs)} runs ({', '.join(runs)}); pick one with --run"
            )
        run = runs[0]
    elif run not in runs:
        raise LabError(f"run {run!r} not in {p.name}; it has: {', '.join(runs)}")
    tasks, A = mean_matrix(
        parsed.run_affinity(run),
        measure,
        parsed.run_tasks(run),
        where=p.name,
        hint="pick one with --measure",
    )
    never = np.isnan(A)
    if never.any():
        i, j = (int(x) for x in np.argwhere(never)[0])
        raise LabError(
            f"{p.name} has no affinity for source {tasks[i]!r} -> target {tasks[j]!r} (the cell "
            "is empty or NaN at every step); every pair needs at least one logged value"
        )
    return tasks, A
