"""``scenarios``: list the shipped scenarios and their knobs."""

from __future__ import annotations

import argparse
import json

from mtl_core.scenarios import list_scenarios


def add_parser(sub) -> None:
    p = sub.add_parser("scenarios", help="list scenarios and their knobs")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    scenarios = list_scenarios()
    if args.json:
        print(
            json.dumps(
                {
                    s.name: {"description": s.description, "knobs": s.knobs}
                    for s in scenarios.values()
                },
                indent=2,
            )
        )
        return 0
    for s in scenarios.values():
        print(f"{s.name}\n  {s.description}")
        for key, spec in s.knobs.items():
            kind = spec.get("type", "str")
            rng = ""
            if "choices" in spec:
                rng = " {" + ",".join(spec["choices"]) + "}"
            elif "min" in spec:
                rng = f" [{spec['min']}, {spec['max']}]"
            default = spec.get("default")
            if isinstance(default, list):
                default = ",".join(default)
            if spec.get("required"):
                req = " (required)"
            elif default is None or default == "":  # no value: the help says what happens
                req = " (optional)"
            else:
                req = f" = {default}"
            print(f"    --set {key}=<{kind}>{rng}{req}  {spec.get('help', '')}")
        print()
    return 0
