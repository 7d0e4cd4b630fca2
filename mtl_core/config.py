"""Frozen config dataclasses, one per component, combined into a ``RunConfig``.

``RunConfig.to_dict()`` is stored with every run so runs can be diffed and reproduced.
Every caller that assembles a run (the CLI ``train``, the app's Train form, the lesson, the
ground-truth evaluation) goes through one builder: :meth:`RunConfig.for_scenario` (scenario
defaults + knobs) and :meth:`RunConfig.with_overrides` (dotted keys such as ``"train.steps"``,
minGPT's ``merge_from_args`` idea), so a field is parsed and validated in one place.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mtl_core.errors import LabError

MODES = ("together", "groups", "single", "sequential")
MEASURES = ("lookahead", "proximal", "cosine", "none")
OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")
ARCHS = ("auto", "mlp", "cnn")
NORMS = ("none", "batch", "layer")


@dataclass(frozen=True)
class ModelConfig:
    """Shared trunk + one head per task.

    ``hidden`` are the MLP trunk widths (for the CNN: the dense layers after the convolutions);
    ``channels`` the CNN's convolution channels. ``arch="auto"`` picks the CNN for image
    scenarios and the MLP otherwise.
    """

    arch: str = "auto"
    hidden: tuple[int, ...] = (64, 32)
    channels: tuple[int, ...] = (16, 32)
    norm: str = "none"

    def __post_init__(self) -> None:
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("norm", self.norm, NORMS)
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise LabError("model hidden widths must be positive integers, e.g. hidden=64,32")
        if not self.channels or any(int(c) < 1 for c in self.channels):
            raise LabError("model channels must be positive integers, e.g. channels=16,32")


@dataclass(frozen=True)
class OptimConfig:
    """SGD (with momentum) or Adam. ``lr=None`` means the optimizer's default below."""

    name: str = "adam"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.name, OPTIMIZERS)
        if self.lr is not None and not self.lr > 0:
            raise LabError(f"learning rate must be > 0, got {self.lr}")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 0.05 if self.name == "sgd" else 3e-3


@dataclass(frozen=True)
class TrainConfig:
    """How to train: mode, length, batch, evaluation cadence, seed and device.

    ``groups`` is required for ``mode="groups"`` (one network per group; a task may be in
    several groups and is then served by the network with the lowest validation loss).
    ``warmup`` is the number of steps the sequential mode keeps every task in its own group.
    """

    mode: str = "together"
    steps: int = 300
    batch_size: int = 64
    eval_every: int = 10
    seed: int = 0
    device: str = "auto"
    groups: tuple[tuple[str, ...], ...] | None = None
    warmup: int = 10

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, MODES)
        _check_choice("device", self.device, DEVICES)
        if int(self.steps) <= 0:
            raise LabError(f"steps must be a positive integer, got {self.steps}")
        if int(self.batch_size) <= 0:
            raise LabError(f"batch size must be a positive integer, got {self.batch_size}")
        if int(self.eval_every) <= 0:
            raise LabError(f"eval_every must be a positive integer, got {self.eval_every}")
        if self.mode == "groups" and not self.groups:
            raise LabError("mode 'groups' needs the groups, e.g. --groups 't0,t1;t2,t3'")


@dataclass(frozen=True)
class AffinityConfig:
    """Which affinity to log and how often.

    ``beta`` is the weight of history in the proximal affinity's exponential moving average:
    ``ema = beta * ema + (1 - beta) * new``.
    """

    measure: str = "lookahead"
    every: int = 1
    beta: float = 0.9
    vectorized: bool = True

    def __post_init__(self) -> None:
        _check_choice("affinity", self.measure, MEASURES)
        if int(self.every) <= 0:
            raise LabError(f"--every must be a positive integer, got {self.every}")
        if not 0.0 <= self.beta < 1.0:
            raise LabError(f"beta must be in [0, 1), got {self.beta}")


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to reproduce a training run."""

    scenario: str = "synthetic"
    knobs: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    affinity: AffinityConfig = field(default_factory=AffinityConfig)
    name: str = ""

    def __post_init__(self) -> None:
        mode, measure = self.train.mode, self.affinity.measure
        if measure == "proximal" and mode != "sequential":
            raise LabError(
                "proximal affinity is measured inside sequential group updates: "
                "use --mode sequential (or --affinity lookahead/cosine)"
            )
        if measure in ("lookahead", "cosine") and mode in ("groups", "single"):
            raise LabError(
                f"{measure} affinity is measured between tasks that share one network: "
                f"use --mode together or sequential, or --affinity none with --mode {mode}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (tuples stay tuples; JSON turns them into lists, see ``from_dict``)."""
        return dataclasses.asdict(self)

    @classmethod
    def for_scenario(
        cls,
        scenario: str,
        knobs: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> RunConfig:
        """A validated run of ``scenario``: its knobs resolved over the scenario's defaults,
        its shipped model, then ``overrides`` (see :meth:`with_overrides`).

        The affinity measure follows the mode (:func:`default_measure`) unless
        ``"affinity.measure"`` is given. Raises :class:`LabError` for an unknown scenario or
        knob, a bad value, or a combination that cannot train.
        """
        from mtl_core.scenarios import default_model_config, get_scenario, resolve_knobs

        spec = get_scenario(scenario)
        base = cls(
            scenario=spec.name,
            knobs=resolve_knobs(spec, dict(knobs or {})),
            model=default_model_config(spec.name),
        )
        return base.with_overrides({"affinity.measure": "auto", **dict(overrides or {})})

    def with_overrides(self, overrides: Mapping[str, Any]) -> RunConfig:
        """A copy with ``overrides`` applied and validated once, as a whole.

        Keys are dotted: ``"<section>.<field>"`` for section in ``model``, ``optim``,
        ``train``, ``affinity`` (e.g. ``"train.steps"``, ``"optim.lr"``); a bare section name
        with a section dataclass or a mapping of its fields; ``"knobs.<knob>"`` (resolved
        against the scenario's knob specs) or ``"knobs"`` (the whole mapping); ``"name"``.
        Text is parsed where a form or the CLI gives text: ``"64,32"`` for ``model.hidden``
        and ``model.channels``, ``"t0,t1; t2,t3"`` for ``train.groups`` (empty = none),
        numbers for numeric fields. ``"affinity.measure": "auto"`` means
        :func:`default_measure` of the resulting mode.

        Raises :class:`LabError` naming the key for an unknown key or an unparsable value,
        and the config's own message for a value or combination that cannot train.
        """
        sections = {name: _fields(getattr(self, name)) for name in _SECTIONS}
        knobs: dict[str, Any] | None = None
        name = self.name
        for key, value in overrides.items():
            head, dot, sub = str(key).partition(".")
            if head in _SECTIONS and not dot:
                sections[head].update(_section_values(head, value))
            elif head in _SECTIONS:
                if sub not in sections[head]:
                    raise LabError(_unknown_key(key, head, sections[head]))
                sections[head][sub] = _coerce(head, sub, value)
            elif key == "knobs":
                knobs = dict(value or {})
            elif head == "knobs" and sub:
                knobs = {**(self.knobs if knobs is None else knobs), sub: value}
            elif key == "name":
                name = str(value or "").strip()
            else:
                raise LabError(
                    f"unknown setting {key!r}; settings are name, knobs.<knob> and "
                    f"<section>.<field> for {', '.join(_SECTIONS)}"
                )
        if sections["affinity"]["measure"] in (None, "auto"):
            sections["affinity"]["measure"] = default_measure(sections["train"]["mode"])
        if knobs is not None:
            from mtl_core.scenarios import get_scenario, resolve_knobs

            knobs = resolve_knobs(get_scenario(self.scenario), knobs)
        return RunConfig(
            scenario=self.scenario,
            knobs=dict(self.knobs) if knobs is None else knobs,
            **{s: _SECTIONS[s](**values) for s, values in sections.items()},
            name=name,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Rebuild a config from ``to_dict()`` output (JSON turns tuples into lists)."""
        m = dict(d.get("model", {}))
        for k in ("hidden", "channels"):
            if k in m:
                m[k] = tuple(int(x) for x in m[k])
        o = dict(d.get("optim", {}))
        if "betas" in o:
            o["betas"] = tuple(float(x) for x in o["betas"])
        t = dict(d.get("train", {}))
        if t.get("groups"):
            t["groups"] = tuple(tuple(g) for g in t["groups"])
        return cls(
            scenario=d.get("scenario", "synthetic"),
            knobs=dict(d.get("knobs", {})),
            model=ModelConfig(**m),
            optim=OptimConfig(**o),
            train=TrainConfig(**t),
            affinity=AffinityConfig(**d.get("affinity", {})),
            name=d.get("name", ""),
        )


def default_measure(mode: str) -> str:
    """The affinity measure a mode logs when none is asked for."""
    return {"together": "lookahead", "sequential": "proximal"}.get(mode, "none")


def parse_ints(value: str | Sequence[int], what: str = "hidden widths") -> tuple[int, ...]:
    """``"64, 32"`` (or a sequence) -> ``(64, 32)``; LabError naming ``what`` otherwise."""
    items = str(value).replace(" ", "").split(",") if isinstance(value, str) else list(value)
    try:
        vals = tuple(int(v) for v in items if v != "")
    except (TypeError, ValueError):
        raise LabError(
            f"{what} must be comma-separated whole numbers, e.g. 64,32 (got {value!r})"
        ) from None
    if not vals:
        raise LabError(f"{what} needs at least one number, e.g. 64,32")
    return vals


def parse_groups(
    value: str | Sequence[Sequence[str]] | None,
) -> tuple[tuple[str, ...], ...] | None:
    """``"t0,t1; t2,t3"`` (or a sequence of task lists) -> ``(("t0", "t1"), ("t2", "t3"))``;
    None when empty. Task names are not checked here (see :func:`group_indices`)."""
    if value is None:
        return None
    if isinstance(value, str):
        raw = [g.split(",") for g in value.split(";")]
    else:
        raw = [[g] if isinstance(g, str) else list(g) for g in value]
    groups = tuple(tuple(str(t).strip() for t in g if str(t).strip()) for g in raw)
    return tuple(g for g in groups if g) or None


_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
    "affinity": AffinityConfig,
}
#: Parsers for fields a form or the CLI gives as text; other fields by their annotation.
_PARSERS: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("model", "hidden"): lambda v: parse_ints(v, "hidden widths"),
    ("model", "channels"): lambda v: parse_ints(v, "channels"),
    ("train", "groups"): parse_groups,
    ("optim", "betas"): lambda v: tuple(
        float(x) for x in (v.split(",") if isinstance(v, str) else v)
    ),
}
_NUMBERS: dict[str, type] = {"int": int, "float": float, "float | None": float}


def _fields(section: Any) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}


def _section_values(head: str, value: Any) -> dict[str, Any]:
    """A whole section given as its dataclass or as a mapping of its fields."""
    cls = _SECTIONS[head]
    if isinstance(value, cls):
        return _fields(value)
    if isinstance(value, Mapping):
        known = {f.name for f in dataclasses.fields(cls)}
        out = {}
        for sub, v in value.items():
            if sub not in known:
                raise LabError(_unknown_key(f"{head}.{sub}", head, known))
            out[sub] = _coerce(head, sub, v)
        return out
    raise LabError(f"setting {head!r} needs a {cls.__name__} or a mapping of its fields")


def _coerce(head: str, sub: str, value: Any) -> Any:
    parser = _PARSERS.get((head, sub))
    if parser is not None:
        try:
            return parser(value)
        except (TypeError, ValueError):
            raise LabError(f"{head}.{sub}: cannot read {value!r}") from None
    kind = {f.name: f.type for f in dataclasses.fields(_SECTIONS[head])}[sub]
    number = _NUMBERS.get(str(kind))
    if number is None or value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise LabError(f"{head}.{sub} must be a number, got {value!r}") from None
    if not isinstance(value, numbers.Real):
        return value  # the section's own check reports it
    if number is int:
        if not math.isfinite(value) or value != int(value):
            raise LabError(f"{head}.{sub} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


def _unknown_key(key: str, head: str, known: Any) -> str:
    return f"unknown setting {key!r}; {head} has: {', '.join(sorted(known))}"


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise LabError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")


def group_indices(groups: tuple[tuple[str, ...], ...] | None, tasks: list[str]) -> list[list[int]]:
    """Task indices of each given group (groups may overlap); every task needs a group.
    Torch-free, so a form can check groups before a run is queued."""
    index = {t: i for i, t in enumerate(tasks)}
    out = []
    for g in groups or ():
        unknown = [t for t in g if t not in index]
        if unknown:
            raise LabError(
                f"group {', '.join(g)}: unknown task(s) {', '.join(unknown)}; "
                f"tasks are {', '.join(tasks)}"
            )
        if not g:
            raise LabError("a group cannot be empty")
        out.append(sorted({index[t] for t in g}))
    missing = set(range(len(tasks))) - {i for g in out for i in g}
    if missing:
        raise LabError(
            "every task needs a group; not covered: " + ", ".join(tasks[i] for i in sorted(missing))
        )
    return out
