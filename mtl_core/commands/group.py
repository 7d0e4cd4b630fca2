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
from mtl_core.grouping.base import UNMEASURED_RULE_TEXT
from mtl_core.measures import DEFAULT_MEASURE
from mtl_core.text.terminal import one_line
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
        default=None,
        help="threshold on the symmetrized affinity (threshold, default 0; hierarchical: cut "
        "at this affinity level), in the unit the app shows: percent loss change for "
        "lookahead and proximal (0.5 or 0.5%% = 0.5%%, the number in the Explore slider and "
        "its URL's tau=), a plain number for cosine",
    )
    p.add_argument(
        "--measure",
        default=None,
        help="which measure of a long-form log (needed when it holds several); for a file "
        "that names none (a bare matrix, read as lookahead), what its numbers are",
    )
    p.add_argument("--run", default=None, help="which run of a multi-run file")
    add_read_options(p)
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
        help='print {"groups": [[...]], "value": x, "optimal": b, "gap": g, "stopped": b}',
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read INPUT, group, print. Errors a user can cause raise ``LabError``."""
    from mtl_core.grouping import make_grouper
    from mtl_core.text.units import parse_display

    tasks, A, measure = load_affinity_measure(
        args.input,
        measure=args.measure,
        run=args.run,
        rows=args.rows,
        tag_pattern=args.tag_pattern,
        unit=args.unit,
        warn=warn,
    )
    tau = None if args.tau is None else parse_display(args.tau, measure)
    options: dict[str, object] = {}
    if args.method == "tag":
        options = {
            "allow_singletons": args.allow_singletons,
            "disjoint": args.disjoint,
            "time_limit": args.time_limit,
        }
    if args.method == "hierarchical" and args.k is not None and tau is not None:
        raise LabError("hierarchical grouping takes one cut: give --k or --tau, not both")
    grouper = make_grouper(args.method, k=args.k, tau=tau, seed=args.seed, **options)
    grouper.fit(A, tasks)
    if grouper.unmeasured_:
        rule = UNMEASURED_RULE_TEXT[grouper.unmeasured_rule]
        warn(
            f"{grouper.unmeasured_} off-diagonal cell{'s' if grouper.unmeasured_ > 1 else ''} "
            f"never measured; {args.method} reads each as {rule}"
        )
    optimal = bool(getattr(grouper, "optimal_", False))
    gap = getattr(grouper, "gap_", None)
    if grouper.warning_:
        warn(grouper.warning_)
    if args.json:
        stopped = bool(getattr(grouper, "stopped_", False))
        doc = result_dict(grouper.groups_, grouper.score_, optimal, gap, tasks, stopped)
        print(json.dumps(doc))
        return 0
    upper = getattr(grouper, "upper_bound_", None)
    print(
        format_result(
            args.method, grouper.groups_, grouper.score_, optimal, gap, tasks, upper, measure
        )
    )
    return 0


def result_dict(
    groups: Grouping,
    value: float,
    optimal: bool,
    gap: float | None,
    tasks: list[str],
    stopped: bool = False,
) -> dict[str, object]:
    """The ``--json`` object; members listed in the input's task order. ``stopped``: TAG's
    wall-clock safety stop fired, so the answer may depend on the machine's speed and load
    (otherwise it depends on the input, the settings and the seed only)."""
    order = {t: i for i, t in enumerate(tasks)}
    return {
        "groups": [sorted(g, key=order.__getitem__) for g in groups],
        "value": float(value),
        "optimal": bool(optimal),
        "gap": None if gap is None or not math.isfinite(gap) else float(gap),
        "stopped": bool(stopped),
    }


def format_result(
    method: str,
    groups: Grouping,
    value: float,
    optimal: bool,
    gap: float | None,
    tasks: list[str],
    upper: float | None = None,
    measure: str | None = None,
) -> str:
    """Human-readable result: one line per group, then the TAG value (for TAG with its proof:
    proven optimal, or the proven upper bound and the relative gap), in the measure's unit
    (percent for lookahead/proximal, as the app shows it; ``--json`` keeps the file's
    fractions)."""
    from mtl_core.text.units import format_value, unit_name

    def num(x: float, digits: int) -> str:
        return format_value(x, measure, signed=False, digits=digits)

    order = {t: i for i, t in enumerate(tasks)}
    lines = [f"{method}: {len(groups)} group(s) over {len(tasks)} tasks"]
    for i, g in enumerate(groups, 1):
        lines.append(f"  {i}. {', '.join(sorted(g, key=order.__getitem__))}")
    note = ""
    if method == "tag":
        if optimal:
            note = " (proven optimal)"
        else:
            bound = "" if upper is None else f"; no grouping exceeds {num(upper, 6)}"
            rel = f", {gap / abs(value):.1%} of it" if value else ""
            note = f" (best found; gap <= {num(gap, 4)}{rel}{bound})"
    lines.append(
        f"value (mean best-group affinity onto each task, {unit_name(measure)}): "
        f"{num(value, 6)}{note}"
    )
    return "\n".join(lines)


def load_affinity(
    path: str | Path,
    *,
    measure: str | None = None,
    run: str | None = None,
    rows: str | None = None,
    tag_pattern: str | None = None,
    unit: str | None = None,
    warn=None,
) -> tuple[list[str], np.ndarray]:
    """:func:`load_affinity_measure` without the measure."""
    tasks, A, _ = load_affinity_measure(
        path, measure=measure, run=run, rows=rows, tag_pattern=tag_pattern, unit=unit, warn=warn
    )
    return tasks, A


def load_affinity_measure(
    path: str | Path,
    *,
    measure: str | None = None,
    run: str | None = None,
    rows: str | None = None,
    tag_pattern: str | None = None,
    unit: str | None = None,
    warn=None,
) -> tuple[list[str], np.ndarray, str]:
    """Read any run file ``import`` reads and average one run and measure over its steps.

    ``rows``, ``tag_pattern`` and ``unit`` are passed to the reader (a matrix's declared
    orientation, a tag pattern, the values' unit: ``fraction``, ``percent``, ``tag-lr:LR``);
    ``warn(text)`` receives the reader's notes (left-out cells, made-up names, a
    transposition, impossible values). A file naming no measure is read as ``measure`` (default
    lookahead): ``measure`` then says what its numbers are.

    Returns ``(tasks, A, measure)``: ``A`` float64 (n, n), ``A[i, j]`` the mean over logged
    steps of source ``tasks[i]`` -> target ``tasks[j]`` (rows = sources); NaN where a cell was
    never measured (the grouper reads it by its documented rule); ``measure`` the one averaged,
    which sets the unit of ``--tau`` (``mtl_core.text.units``).

    Raises
    ------
    LabError
        The reader's message (as ``import`` says it); several runs or measures and none
        picked.
    """
    from mtl_core.runfile import mean_matrix, read_run_file

    p = Path(path)
    parsed = read_run_file(p, rows=rows, tag_pattern=tag_pattern, unit=unit)
    if measure is not None:
        parsed = parsed.with_measure(measure)  # a file naming none: --measure declares it
    for text in parsed.warnings():
        if warn is not None:
            warn(text)
    runs = parsed.runs
    if run is None:
        if len(runs) > 1:
            raise LabError(
                f"{p.name} holds {len(runs)} runs ({', '.join(runs)}); pick one with --run"
            )
        run = runs[0]
    elif run not in runs:
        raise LabError(f"run {run!r} not in {p.name}; it has: {', '.join(runs)}")
    df = parsed.run_affinity(run)
    logged = sorted(str(m) for m in df["measure"].dropna().unique()) if "measure" in df else []
    tasks, A = mean_matrix(
        df, measure, parsed.run_tasks(run), where=p.name, hint="pick one with --measure"
    )
    measure = measure or (logged[0] if len(logged) == 1 else DEFAULT_MEASURE)
    return tasks, A, measure


def warn(text: str) -> None:
    """One ``warning:`` line on stderr (the CLI's way to say what a read left out)."""
    sys.stderr.write(f"warning: {one_line(text)}\n")


def add_read_options(p) -> None:
    """``--rows``, ``--tag-pattern`` and ``--unit``: what the user declares about an input
    file."""
    from mtl_core.runfile.units import UNIT_HELP

    p.add_argument("--unit", default=None, help=UNIT_HELP)
    p.add_argument(
        "--rows",
        choices=("source", "target"),
        default=None,
        help="which way a matrix's rows run (default: as a corner cell source/target says, "
        "else source); TAG's code keeps matrices recipient-major: --rows target",
    )
    p.add_argument(
        "--tag-pattern",
        default=None,
        help="TensorBoard tag, tracker key or table column holding affinity, e.g. "
        "'aff/{source}->{target}' ({measure} optional)",
    )
