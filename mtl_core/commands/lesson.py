"""``lesson``: the Learn page's lesson, headless (same scenario, runs, groups and verdict)."""

from __future__ import annotations

import argparse
import json
import sys

from mtl_core.errors import LabError

#: The lesson scenario's ``conflict_type`` choices (its definition's order, default first).
CONFLICT_TYPES = ("rotation", "orthogonal", "opposing")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "lesson",
        help="run the landing lesson headless: together vs TAG groups vs alone",
        description="Train the lesson scenario all together, in TAG's groups (selected from "
        "the all-together run's affinity) and each task alone, 16 replicas each; "
        "print held-out losses with 95%% intervals and the verdict.",
    )
    p.add_argument(
        "--conflict",
        type=float,
        required=True,
        help="how much the two task clusters conflict, 0..1 (with the default "
        "--conflict-type rotation: the angle between their directions, as a fraction of 90 "
        "degrees)",
    )
    p.add_argument(
        "--conflict-type",
        choices=CONFLICT_TYPES,
        default=None,
        help="how the knob moves the clusters apart: rotation (default; conflict grows "
        "steadily up to orthogonal), orthogonal (up to orthogonal, unevenly) or opposing (up "
        "to opposite directions; not monotone: one unit can share opposite clusters)",
    )
    p.add_argument("--seed", type=int, default=0, help="data and training seed (default 0)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: conflict, seed, seconds, loss, affinity, "
        "tag_groups, planted, verdict, stopped (TAG's wall-clock safety stop fired), "
        "difference (together minus groups / single, paired over replicas)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mtl_core.lesson import workflow as lesson
    from mtl_core.lesson.headless import run_lesson

    if not 0.0 <= args.conflict <= 1.0:
        raise LabError(f"--conflict must be between 0 and 1, got {args.conflict}")
    if args.seed < 0:
        raise LabError(f"--seed must be 0 or more, got {args.seed}")
    on_run = None if args.json else (lambda mode: sys.stderr.write(f"training: {mode}\n"))
    knobs = {"conflict_type": args.conflict_type} if args.conflict_type else None
    result = run_lesson(args.conflict, args.seed, knobs=knobs, on_run=on_run)
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    print(
        f"lesson at conflict {result.conflict:g} ({args.conflict_type or 'rotation'}), "
        f"seed {result.seed}: "
        f"{lesson.REPLICAS} replicas per run, {result.seconds:.1f}s"
    )
    print("held-out loss (mean over tasks; mean and 95% interval over replicas):")
    for mode, iv in result.to_json()["loss"].items():
        print(f"  {mode:>9}: {_num(iv['mean'])}  [{_num(iv['low'])}, {_num(iv['high'])}]")
    print(
        f"affinity inside the planted clusters {_num(result.within, '+.4f')}, "
        f"across {_num(result.cross, '+.4f')}"
    )
    groups = " · ".join("{" + ", ".join(sorted(g)) + "}" for g in result.tag_groups)
    same = "the planted clusters" if result.tag_matches_planted else "not the planted clusters"
    print(f"TAG's groups: {groups} ({same})")
    print("all together minus (paired over replicas; mean and 95% interval):")
    for mode, iv in result.to_json()["difference"].items():
        print(
            f"  {mode:>9}: {_num(iv['mean'], '+.4f')}  [{_num(iv['low'], '+.4f')}, "
            f"{_num(iv['high'], '+.4f')}]"
        )
    print(f"verdict: {result.verdict}")
    return 0


def _num(x: float | None, fmt: str = ".4f") -> str:
    return "n/a" if x is None or x != x else format(x, fmt)
