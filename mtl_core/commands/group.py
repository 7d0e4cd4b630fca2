"""``group``: turn an affinity matrix or log into task groups.

INPUT is either an affinity log in any format ``import`` reads (``.csv``, ``.tsv``, ``.parquet``,
``.jsonl``, ``.json``, ``.npy``, ``.npz``, ``.zip``; averaged over its logged steps) or a square
comma-separated CSV matrix whose header row and first column are the task names (rows = source,
columns = target). Which one a ``.csv`` is, is detected from its header.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.types import Grouping

CLI_METHODS = ("tag", "threshold", "hierarchical", "affinity-propagation")
_LONG_FORM_COLUMNS = {"step", "source", "target", "affinity"}


def add_parser(sub) -> None:
    """Register ``group`` on the CLI's subparsers."""
    p = sub.add_parser(
        "group",
        help="group tasks from an affinity matrix or log",
        description="Group tasks from an affinity matrix (rows = source, columns = target) or "
        "a long-form affinity log averaged over steps.",
    )
    p.add_argument("input", metavar="INPUT", help="affinity log or square CSV matrix")
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
    p.add_argument(
        "--seed", type=int, default=0, help="seed of TAG's search and AP's tie-breaking"
    )
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
    print(
        format_result(args.method, grouper.groups_, grouper.score_, optimal, gap, tasks, upper)
    )
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
    """Read a square matrix CSV or a long-form log (mean over steps) as ``(tasks, A)``."""
    p = Path(path)
    if not p.exists():
        raise LabError(f"{p}: file not found")
    if p.is_file() and p.suffix.lower() == ".csv" and not _is_long_form_csv(p):
        if measure is not None or run is not None:
            raise LabError(
                f"{p.name} is a square matrix; --measure and --run apply to long-form logs only"
            )
        return read_matrix_csv(p)
    from mtl_core.fileformat import read_run_file

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
    measures = parsed.measures(run)
    if measure is None:
        if len(measures) > 1:
            raise LabError(
                f"{p.name} holds several measures ({', '.join(measures)}); pick one with --measure"
            )
        if not measures:
            raise LabError(f"{p.name} has no affinity rows")
        measure = measures[0]
    elif measure not in measures:
        raise LabError(f"measure {measure!r} not in {p.name}; it has: {', '.join(measures)}")
    _, tasks, mats = parsed.matrices(run, measure)
    counts = np.isfinite(mats).sum(axis=0)
    if (counts == 0).any():
        i, j = (int(x) for x in np.argwhere(counts == 0)[0])
        raise LabError(
            f"{p.name} has no affinity for source {tasks[i]!r} -> target {tasks[j]!r}; "
            "every pair needs at least one logged value"
        )
    return tasks, np.nanmean(mats, axis=0)


def _is_long_form_csv(path: Path) -> bool:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        line = fh.readline()
    # the delimiter the run-format reader would pick: the most frequent of , ; tab
    delim = max((",", ";", "\t"), key=line.count)
    header = next(csv.reader(io.StringIO(line), delimiter=delim), [])
    return bool({h.strip().lower() for h in header} & _LONG_FORM_COLUMNS)


def read_matrix_csv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Square CSV: header row and first column are task names, rows = source tasks."""
    p = Path(path)
    try:
        df = pd.read_csv(p, index_col=0, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise LabError(f"{p.name}: not a readable CSV matrix ({exc})") from None
    rows = [str(r).strip() for r in df.index]
    cols = [str(c).strip() for c in df.columns]
    if len(rows) != len(cols):
        raise LabError(
            f"{p.name}: the matrix must be square with task names in the header row and first "
            f"column; got {len(rows)} rows x {len(cols)} columns"
        )
    if rows != cols:
        if sorted(rows) == sorted(cols) and len(set(rows)) == len(rows):
            df.columns = cols
            df = df[rows]  # same names in another order: align columns to rows
        else:
            extra = sorted(set(rows) ^ set(cols))
            raise LabError(
                f"{p.name}: row names and column names must be the same tasks; "
                f"mismatched: {', '.join(extra) or '(duplicates)'}"
            )
    try:
        values = df.apply(lambda c: pd.to_numeric(c.str.strip())).to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise LabError(f"{p.name}: every cell must be a number ({exc})") from None
    return rows, values
