"""The scenario registry: the JSON definitions shipped inside this package
(``mtl_core/scenarios/definitions/*.json``, read with ``importlib.resources``), lookup by name,
knob resolution (defaults, coercion, range and choice checks) and dispatch to the builders.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.scenarios import digits, synthetic, table
from mtl_core.scenarios.dataset import Dataset

DEFINITIONS = files("mtl_core.scenarios") / "definitions"


@dataclass(frozen=True)
class Scenario:
    """A scenario definition as read from its JSON file."""

    name: str
    builder: str
    description: str
    knobs: dict[str, dict[str, Any]]
    image: bool = False
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig defaults for this scenario

    def defaults(self) -> dict[str, Any]:
        return {k: spec.get("default") for k, spec in self.knobs.items()}


@cache
def _load_all() -> dict[str, Scenario]:
    out = {}
    for f in sorted(DEFINITIONS.iterdir(), key=lambda f: f.name):
        if not f.name.endswith(".json"):
            continue
        d = json.loads(f.read_text(encoding="utf-8"))
        out[d["name"]] = Scenario(
            name=d["name"],
            builder=d["builder"],
            description=d.get("description", ""),
            knobs=d.get("knobs", {}),
            image=bool(d.get("image", False)),
            model=dict(d.get("model", {})),
        )
    return out


def list_scenarios() -> dict[str, Scenario]:
    """All shipped scenarios by name."""
    return dict(_load_all())


def get_scenario(name: str) -> Scenario:
    """The shipped scenario called ``name``; ``LabError`` (with the closest name) when unknown."""
    scenarios = list_scenarios()
    if name not in scenarios:
        hint = difflib.get_close_matches(name, scenarios, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise LabError(
            f"unknown scenario {name!r}{extra}; available: {', '.join(sorted(scenarios))}"
        )
    return scenarios[name]


def model_section(name: str) -> dict[str, Any]:
    """The scenario's JSON ``model`` section (hidden widths and channels as tuples); the
    ``ModelConfig`` built from it is :func:`mtl_core.config.default_model_config`."""
    m = dict(get_scenario(name).model)
    for key in ("hidden", "channels"):
        if key in m:
            m[key] = tuple(int(v) for v in m[key])
    return m


def resolve_knobs(scenario: Scenario, overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults merged with ``overrides``, each value coerced to its knob's type and checked."""
    knobs = scenario.defaults()
    for key, raw in overrides.items():
        if key not in scenario.knobs:
            hint = difflib.get_close_matches(key, scenario.knobs, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise LabError(
                f"unknown knob {key!r} for scenario {scenario.name!r}{extra}; "
                f"knobs: {', '.join(scenario.knobs)}"
            )
        knobs[key] = _coerce(key, raw, scenario.knobs[key])
    for key, spec in scenario.knobs.items():
        if spec.get("required") and not knobs.get(key):
            raise LabError(
                f"scenario {scenario.name!r} needs a value for {key!r} "
                f"({spec.get('help', '')}; on the command line: --set {key}=...)"
            )
    return knobs


def _coerce(key: str, raw: Any, spec: dict[str, Any]) -> Any:
    kind = spec.get("type", "str")
    try:
        if kind == "int":
            value: Any = int(raw) if not isinstance(raw, str) else int(float(raw))
            if isinstance(raw, float) and not float(raw).is_integer():
                raise ValueError
        elif kind == "float":
            value = float(raw)
            if not np.isfinite(value):
                raise ValueError
        elif kind == "list":
            if isinstance(raw, str):
                value = [s.strip() for s in raw.split(",") if s.strip()]
            else:
                value = [str(s) for s in raw]
        else:
            value = str(raw)
    except (TypeError, ValueError):
        raise LabError(f"knob {key}={raw!r}: expected {kind}") from None
    if kind in ("int", "float"):
        lo, hi = spec.get("min"), spec.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise LabError(f"knob {key}={value} is out of range [{lo}, {hi}]")
    choices = spec.get("choices")
    if choices:
        items = value if kind == "list" else [value]
        bad = [v for v in items if v not in choices]
        if bad:
            raise LabError(
                f"knob {key}: {', '.join(map(str, bad))} not one of {', '.join(choices)}"
            )
    return value


def load_dataset(name: str, knobs: dict[str, Any] | None = None) -> Dataset:
    """Build a scenario's dataset; deterministic given the knobs (``data_seed`` included)."""
    scenario = get_scenario(name)
    k = resolve_knobs(scenario, knobs or {})
    return _BUILDERS[scenario.builder](k)


#: builder name in a definition's JSON -> the function that builds its dataset from resolved knobs
_BUILDERS: dict[str, Callable[[dict[str, Any]], Dataset]] = {
    "synthetic": synthetic.build,
    "digits": digits.build,
    "csv": table.build,
}
