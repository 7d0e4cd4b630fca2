"""``select``: exact network selection on a measured ground-truth table, and every estimator
scored against it (:mod:`mtl_core.groundtruth`; layouts in docs/run-format.md, rules and
agreement in docs/ground-truth.md)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from mtl_core.errors import LabError
from mtl_core.runfile.units import UNIT_HELP


def add_parser(sub) -> None:
    """Register ``select`` on the CLI's subparsers."""
    p = sub.add_parser(
        "select",
        help="choose networks exactly on a measured ground-truth table (HOA, MTG-Net, long "
        "form) and score HOA, TAG, an estimate, random and worst selections against it",
        description="Exact selection on measured results: at most k networks (--k) or HOA's "
        "budget (--budget); chosen on FILE, scored on --test.",
    )
    p.add_argument(
        "file",
        metavar="FILE",
        help="selection table: HOA layout (tab-separated), MTG-Net values (with --masks) or "
        "the long form (subset,task,value[,cost][,split])",
    )
    p.add_argument("--masks", help="MTG-Net 0/1 mask file (rows in FILE's order)")
    p.add_argument("--test", help="scoring table in FILE's layout (default: FILE itself)")
    p.add_argument("--tasks", help="task names, comma-separated (default: t0..tn-1 or header)")
    p.add_argument(
        "--direction",
        choices=("lower", "higher"),
        help="lower or higher is better (default: HOA lower, MTG-Net higher; the long form "
        "must say)",
    )
    lim = p.add_mutually_exclusive_group(required=True)
    lim.add_argument("--k", type=int, nargs="+", help="at most K networks (one or more K)")
    lim.add_argument("--budget", type=float, nargs="+", help="total cost at most B (HOA)")
    p.add_argument(
        "--affinity",
        metavar="RUN_OR_MATRIX",
        help="TAG's affinity: a matrix or run file (any format import reads), or the id of a "
        "run in the store (its logged matrices averaged over steps); tasks matched by name. "
        "Default for an evaluate report: its co-training affinity",
    )
    p.add_argument(
        "--store",
        default=None,
        help="run store for --affinity RUN (default: $MTL_LAB_STORE, else ./.lab/store.sqlite)",
    )
    p.add_argument(
        "--report-seed",
        type=int,
        default=None,
        help="an evaluate report: read this seed's networks (default: the mean over seeds)",
    )
    p.add_argument("--rows", choices=("source", "target"), help="the affinity matrix's rows")
    p.add_argument("--measure", help="the affinity file's measure, when it holds several")
    p.add_argument("--unit", default=None, help="--affinity file's " + UNIT_HELP)
    p.add_argument("--estimate", help="estimated values in FILE's layout")
    p.add_argument("--draws", type=int, default=100, help="random selections per limit")
    p.add_argument("--seed", type=int, default=0, help="seed of the random selections")
    p.add_argument("--time-limit", type=float, default=120.0, help="seconds per MILP")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _tasks(arg: str | None) -> list[str] | None:
    return None if arg is None else [t.strip() for t in arg.split(",")]


def _is_long(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.readline(4096).decode("utf-8", "replace").lower()
    except OSError:
        return False
    cells = [c.strip().strip('"') for c in head.replace(";", ",").split(",")]
    return "subset" in cells and "task" in cells


def load_inputs(args: argparse.Namespace):
    """(selection, scoring or None, estimate or None, the file's own affinity or None): an
    evaluate report brings its co-training affinity (``(tasks, A)``), other layouts none."""
    from mtl_core.groundtruth.report import is_evaluate_report, read_evaluate_report
    from mtl_core.groundtruth.tables import read_hoa, read_long, read_mtg

    tasks = _tasks(args.tasks)
    for label, path in (
        ("FILE", args.file),
        ("--masks", args.masks),
        ("--test", args.test),
        ("--estimate", args.estimate),
    ):
        if path is not None and not Path(path).is_file():
            raise LabError(f"{label}: no such file: {path}")

    report_seed = getattr(args, "report_seed", None)
    if is_evaluate_report(args.file):
        for flag, given in (("--tasks", tasks), ("--masks", args.masks), ("--test", args.test)):
            if given is not None:
                raise LabError(
                    f"an evaluate report holds its task names, validation and test losses; "
                    f"{flag} does not apply"
                )
        rep = read_evaluate_report(args.file, seed=report_seed, direction=args.direction)
        return rep.selection, rep.scoring, _estimate_long(args), rep.affinity
    if report_seed is not None:
        raise LabError("--report-seed applies to an evaluate report only")

    if args.masks:

        def read(path):
            return read_mtg(args.masks, path, tasks=tasks, direction=args.direction)
    elif _is_long(args.file):
        if tasks is not None:
            raise LabError("the long form names its tasks; --tasks does not apply")
        splits = read_long(args.file, direction=args.direction)
        if args.test is None and len(splits) > 1:
            names = sorted(str(s) for s in splits)
            sel = next(
                (s for s in splits if str(s).lower() in ("val", "validation", "selection")), None
            )
            tst = next((s for s in splits if str(s).lower() in ("test", "scoring")), None)
            if sel is None or tst is None or len(splits) != 2:
                raise LabError(
                    f"{Path(args.file).name}: splits {', '.join(names)}; the long form's "
                    "splits must be val and test (or give one split per file)"
                )
            return splits[sel], splits[tst], _estimate_long(args), None

        def read(path):
            found = read_long(path, direction=args.direction)
            if len(found) != 1:
                raise LabError(f"{Path(path).name}: holds several splits; give one per file")
            return next(iter(found.values()))
    else:

        def read(path):
            return read_hoa(path, tasks=tasks, direction=args.direction)

    table = read(args.file)
    scoring = read(args.test) if args.test else None
    estimate = read(args.estimate) if args.estimate else None
    return table, scoring, estimate, None


def load_affinity_arg(
    arg: str,
    *,
    store: str | None = None,
    measure: str | None = None,
    rows: str | None = None,
    unit: str | None = None,
    warn=None,
) -> tuple[list[str], np.ndarray]:
    """``--affinity RUN_OR_MATRIX``: a file at that path (any format ``import`` reads,
    averaged over steps by :func:`mtl_core.commands.group.load_affinity`), else a run id of
    the store (``store``, default the lab's), its logged matrices of ``measure`` averaged over
    steps. Returns ``(tasks, A)``, ``A`` (n, n) rows = source, NaN where never measured.

    Raises LabError: neither a file nor a run id, no store there, no such run, a run with no
    matrices logged yet, several measures and none picked (the store's message).
    """
    from mtl_core.commands.group import load_affinity

    if Path(arg).exists():
        return load_affinity(arg, measure=measure, rows=rows, unit=unit, warn=warn)
    if not arg.strip().isdigit():
        raise LabError(f"--affinity: {arg} is neither a file nor a run id of the store")
    if unit is not None:
        raise LabError(
            f"--unit is for an --affinity file; run {arg.strip()} of the store is in fractions"
        )
    from mtl_core.runfile.long import step_mean
    from mtl_core.store import Store
    from mtl_core.store.base import default_store_path

    path = Path(store) if store else default_store_path()
    if not path.is_file():
        raise LabError(f"--affinity {arg.strip()}: no run store at {path} (give --store)")
    run_id = int(arg)
    steps, tasks, mats = Store(path).affinity_steps(run_id, measure)
    if len(steps) == 0:
        raise LabError(f"--affinity: run {run_id} has no affinity matrices logged yet")
    return list(tasks), step_mean(mats)


def _estimate_long(args):
    from mtl_core.groundtruth.tables import read_long

    if not args.estimate:
        return None
    found = read_long(args.estimate, direction=args.direction)
    return next(iter(found.values()))


def run(args: argparse.Namespace) -> int:
    """Read the tables, select, compare, print."""
    from mtl_core.commands.group import warn
    from mtl_core.groundtruth.compare import compare, public

    if args.draws < 1:
        raise LabError(f"--draws must be at least 1, got {args.draws}")
    if not (args.time_limit > 0):
        raise LabError(f"--time-limit must be > 0 seconds, got {args.time_limit}")
    table, scoring, estimate, affinity = load_inputs(args)
    if args.affinity:
        affinity = load_affinity_arg(
            args.affinity,
            store=args.store,
            measure=args.measure,
            rows=args.rows,
            unit=args.unit,
            warn=warn,
        )
    doc = compare(
        table,
        scoring,
        ks=args.k,
        budgets=args.budget,
        estimate=estimate,
        affinity=affinity,
        draws=args.draws,
        seed=args.seed,
        time_limit=args.time_limit,
    )
    if args.json:
        print(json.dumps(public(doc)))
    else:
        print(format_text(doc))
    return 0


ESTIMATORS = ("optimal", "hoa", "affinity", "estimate", "random", "worst")


def format_text(doc: dict) -> str:
    """A readable table: one block per k or budget, one line per estimator (networks,
    selection value, score, regret against the optimum's score), then the agreement."""
    from mtl_core.groundtruth.select import FALLBACK_DRAWS

    better = "lower" if doc["direction"] == "lower" else "higher"
    sign = -1.0 if better == "lower" else 1.0
    out = [f"{len(doc['tasks'])} tasks: {', '.join(doc['tasks'])} ({better} is better)"]
    for row in doc["rows"]:
        key = "k" if "k" in row else "budget"
        out.append("")
        out.append(f"{key} = {row[key]:g}")
        out.append(f"  {'estimator':<10} {'selection':>10} {'score':>10} {'regret':>9}  networks")
        best = row.get("optimal", {}).get("score")
        for name in ESTIMATORS:
            s = row.get(name)
            if s is None:
                continue
            if name == "random":
                sc = s["mean"]
                reg = "" if best is None else f"{sign * (best - sc):9.5f}"
                out.append(
                    f"  {name:<10} {'':>10} {sc:10.5f} {reg:>9}  mean of {s['draws']} draws, "
                    f"sd {s['sd']:.5f}"
                )
                continue
            reg = "" if best is None else f"{sign * (best - s['score']):9.5f}"
            nets = " | ".join("+".join(n) for n in s["networks"])
            gap = s.get("_gap", math.nan)
            flag = (
                ""
                if s["proven"]
                else "  (not proven: the time limit came before HiGHS's first selection; the "
                f"{'worst' if name == 'worst' else 'best'} of a local search and "
                f"{FALLBACK_DRAWS} random covering selections)"
                if math.isinf(gap)
                else f"  (not proven, gap {gap:.2%})"
            )
            out.append(
                f"  {name:<10} {s['selection']:10.5f} {s['score']:10.5f} {reg:>9}  {nets}{flag}"
            )
    if doc["agreement"]:
        out.append("")
        out.append("rank agreement with the scoring table (cells of networks of 2+ tasks):")
        for name, a in doc["agreement"].items():
            sp = "n/a" if a["spearman"] is None else f"{a['spearman']:+.3f}"
            kd = "n/a" if a["kendall"] is None else f"{a['kendall']:+.3f}"
            out.append(f"  {name:<10} Spearman {sp}  Kendall {kd}  over {a['cells']} cells")
    return "\n".join(out)
