"""``evaluate``: does the chosen grouping really win? Train TAG's groups against baselines."""

from __future__ import annotations

import argparse
import sys

from mtl_core.errors import LabError


def add_parser(sub) -> None:
    """Register ``evaluate`` on the CLI's subparsers."""
    p = sub.add_parser(
        "evaluate",
        help="train TAG's groups against together, single, random, capacity-matched "
        "(and exhaustive) groupings",
        description="Ground-truth check of TAG grouping: co-train with lookahead affinity, "
        "select k groups, train them and every baseline over several seeds.",
    )
    p.add_argument("--scenario", required=True, help="scenario name (see `scenarios`)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scenario knob, repeatable",
    )
    p.add_argument("--k", type=int, required=True, help="group budget for TAG and random groups")
    p.add_argument("--seeds", type=int, default=3, help="training seeds 0..S-1")
    p.add_argument(
        "--exhaustive",
        action="store_true",
        help="also train every candidate group and combine the best k (small n)",
    )
    p.add_argument("--steps", type=int, default=300, help="training steps of every run")
    p.add_argument(
        "--cotrain-steps",
        type=int,
        default=None,
        help="steps of the affinity co-training run (default: --steps)",
    )
    p.add_argument("--random", type=int, default=3, help="random groupings per seed")
    p.add_argument("--every", type=int, default=1, help="measure affinity every K steps")
    p.add_argument(
        "--allow-singletons", action="store_true", help="let TAG (and exhaustive) keep a task alone"
    )
    p.add_argument(
        "--no-hoa",
        dest="hoa",
        action="store_false",
        help="skip HOA's approach (it trains a network on every task pair: n(n-1)/2 extra "
        "runs per seed without --exhaustive)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--hidden",
        default=None,
        help="trunk widths of every network, e.g. 16,8 (default: the scenario's)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local worker processes (default: min(4, CPUs)); 0 = in-process",
    )
    _add_executor_options(p)
    p.add_argument("--out", required=True, help="report file: .json (full) or .csv (rows)")
    p.set_defaults(func=run)


def _add_executor_options(p: argparse.ArgumentParser) -> None:
    """``--executor local|ray`` and ``--ray-address`` (see docs/cluster.md)."""
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where the training runs execute: local processes (default) or a Ray cluster",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="HOST:PORT",
        help="the Ray head to use with --executor ray (default: $RAY_ADDRESS, else a Ray "
        "instance started on this machine)",
    )


def run(args: argparse.Namespace) -> int:
    """Validate, run the sweep through the executor, print the table, write the report."""
    from mtl_core.commands.train import parse_sets
    from mtl_core.experiments import (
        EvalSpec,
        LocalProcessExecutor,
        SerialExecutor,
        default_workers,
        evaluate,
        format_report,
        threads_per_worker,
        write_report,
    )

    if not args.out.lower().endswith((".json", ".csv")):
        raise LabError(f"--out must end in .json or .csv, got {args.out}")
    workers = args.workers if args.workers is not None else default_workers()
    if workers < 0:
        raise LabError(f"--workers must be >= 0, got {workers}")
    if args.ray_address and args.executor != "ray":
        raise LabError("--ray-address needs --executor ray")
    on_ray = args.executor == "ray"
    spec = EvalSpec.for_scenario(
        args.scenario,
        parse_sets(args.sets),
        args.k,
        hidden=args.hidden,
        seeds=args.seeds,
        steps=args.steps,
        cotrain_steps=args.cotrain_steps,
        exhaustive=args.exhaustive,
        random_groupings=args.random,
        every=args.every,
        allow_singletons=args.allow_singletons,
        hoa=args.hoa,
        batch_size=args.batch_size,
        device=args.device,
        threads=1 if on_ray else threads_per_worker(workers),
    )
    spec.check()
    from mtl_core.commands import out_path

    out_path(args.out)  # before any training: a missing folder must not lose the sweep

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if on_ray:
        from mtl_core.experiments.ray_executor import RayExecutor

        with RayExecutor(args.ray_address) as ex:  # one CPU (and thread) per run
            report = evaluate(spec, ex, on_progress=progress)
    elif workers == 0:
        report = evaluate(spec, SerialExecutor(), on_progress=progress)
    else:
        with LocalProcessExecutor(workers) as ex:
            report = evaluate(spec, ex, on_progress=progress)
    print(format_report(report))
    path = write_report(report, args.out)
    print(f"report written to {path}")
    return 0
