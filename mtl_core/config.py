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

from mtl_core import measures
from mtl_core.errors import LabError
from mtl_core.scenarios import get_scenario, model_section, resolve_knobs

MODES = ("together", "groups", "single", "sequential")
OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")
ARCHS = ("auto", "mlp", "cnn")
NORMS = ("none", "batch", "layer")
MAX_REPLICAS = 256
EMA_STARTS = ("zero", "first")


@dataclass(frozen=True)
class ModelConfig:
    """Shared trunk + one head per task.

    ``hidden`` are the MLP trunk widths (for the CNN: the dense layers after the convolutions);
    ``channels`` the CNN's convolution channels. ``arch="auto"`` picks the CNN for image
    scenarios and the MLP otherwise.

    ``linear_bottleneck``: the trunk's last layer has no ReLU (and no norm), so with a narrow
    last width the tasks share a *linear* bottleneck (a ReLU bottleneck of one or two units
    often dies or saturates on one side). ``head_scale`` multiplies the heads' initial weights
    and biases (PyTorch's default ``nn.Linear`` init is scale 1); small heads start every task
    near "predict the mean", so early steps shape the shared trunk rather than the heads.
    """

    arch: str = "auto"
    hidden: tuple[int, ...] = (64, 32)
    channels: tuple[int, ...] = (16, 32)
    norm: str = "none"
    linear_bottleneck: bool = False
    head_scale: float = 1.0

    def __post_init__(self) -> None:
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("norm", self.norm, NORMS)
        if not isinstance(self.linear_bottleneck, bool):
            raise LabError(
                f"model linear_bottleneck must be true or false, got {self.linear_bottleneck!r}"
            )
        if not (
            isinstance(self.head_scale, numbers.Real)
            and math.isfinite(self.head_scale)
            and self.head_scale > 0
        ):
            raise LabError(
                f"model head_scale must be a number > 0 (1 = PyTorch's default "
                f"init), got {self.head_scale!r}"
            )
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
    ``warmup`` is the number of steps the sequential mode keeps every task in its own group
    (100, the official code's; the ``fast`` preset of :data:`SEQUENTIAL_PRESETS` uses 10).
    ``replicas`` > 1 trains that many independent copies of every network (different
    initialisations and minibatch orders, same data) as one batched model
    (:mod:`mtl_core.train.replicas`); metrics are then means over the replicas, with each replica's
    held-out loss logged too (:func:`mtl_core.events.replica_metric`), and affinity matrices
    are means over the replicas. MLP trunks without normalisation only; not ``sequential``.
    """

    mode: str = "together"
    steps: int = 300
    batch_size: int = 64
    eval_every: int = 10
    seed: int = 0
    device: str = "auto"
    groups: tuple[tuple[str, ...], ...] | None = None
    warmup: int = 100
    replicas: int = 1

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
        if not 1 <= int(self.replicas) <= MAX_REPLICAS:
            raise LabError(
                f"replicas must be a whole number from 1 to {MAX_REPLICAS}, got {self.replicas}"
            )
        if int(self.replicas) > 1 and self.mode == "sequential":
            raise LabError(
                "replicas > 1 is not available with --mode sequential "
                "(its groups change per batch); use replicas=1"
            )


@dataclass(frozen=True)
class AffinityConfig:
    """Which affinity to log and how often, and how the sequential mode tracks proximal affinity.

    The proximal settings default to the official code of selective task group updates
    (Jeong & Yoon, ICLR 2025; :data:`SEQUENTIAL_PRESETS` ``"paper"``): ``beta`` is the weight
    of history in the exponential moving average ``ema = beta * ema + (1 - beta) * new``
    (0.999, i.e. the paper's rate 0.001), ``ema_start="zero"`` starts it from a zero matrix
    (``"first"``: from the first measured matrix), and ``group_size_norm`` divides a group's
    measured loss change by the number of tasks in the group.

    ``measure`` is a name of :data:`mtl_core.measures.REGISTRY` (an alias such as ``"TAG"``
    is stored as its canonical name) or ``"none"``.
    """

    measure: str = measures.DEFAULT_MEASURE
    every: int = 1
    beta: float = 0.999
    vectorized: bool = True
    ema_start: str = "zero"
    group_size_norm: bool = True

    def __post_init__(self) -> None:
        spec = measures.find(self.measure)
        if spec is None:
            _check_choice("affinity", self.measure, measures.config_choices())
        else:  # an alias ("TAG") is stored under the measure's own name
            object.__setattr__(self, "measure", spec.name)
        _check_choice("EMA start", self.ema_start, EMA_STARTS)
        if int(self.every) <= 0:
            raise LabError(f"--every must be a positive integer, got {self.every}")
        if not 0.0 <= self.beta < 1.0:
            raise LabError(f"beta must be in [0, 1), got {self.beta}")
        if not isinstance(self.group_size_norm, bool):
            raise LabError(
                f"affinity group_size_norm must be true or false, got {self.group_size_norm!r}"
            )


#: Named settings of ``--mode sequential`` (dotted overrides for :meth:`RunConfig.with_overrides`).
#: ``paper`` (the default): the official code's EMA rate 0.001 from a zero matrix, 100 warm-up
#: steps, group-size normalisation. ``fast``: the lab's earlier settings, for short runs of a
#: few hundred steps, where the paper's slow average would barely have moved (EMA weight 0.9
#: from the first matrix, 10 warm-up steps, no normalisation). One deliberate difference from
#: the official code stays in both: a loss change is credited to the group just updated (the
#: official code credits it to the previous group); see :mod:`mtl_core.train.loop`.
SEQUENTIAL_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "affinity.beta": 0.999,
        "affinity.ema_start": "zero",
        "affinity.group_size_norm": True,
        "train.warmup": 100,
    },
    "fast": {
        "affinity.beta": 0.9,
        "affinity.ema_start": "first",
        "affinity.group_size_norm": False,
        "train.warmup": 10,
    },
}


def sequential_preset(name: str) -> dict[str, Any]:
    """The dotted overrides of a :data:`SEQUENTIAL_PRESETS` entry; LabError when unknown."""
    _check_choice("sequential preset", name, tuple(SEQUENTIAL_PRESETS))
    return dict(SEQUENTIAL_PRESETS[name])


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
        measures.check_mode(self.affinity.measure, self.train.mode)

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
        if sections["affinity"]["measure"] in (None, measures.AUTO):
            sections["affinity"]["measure"] = default_measure(sections["train"]["mode"])
        if knobs is not None:
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
    """The affinity measure a mode logs when none is asked for (the registry's
    ``default_in``; ``"none"`` for modes that log none)."""
    return measures.default_for_mode(mode)


def setting_default(key: str) -> Any:
    """The dataclass default of the dotted setting ``key`` (``"train.steps"`` -> 300): the one
    place a training default lives; the CLI's help and the app's Train form read it here.

    Raises :class:`LabError` for an unknown key (the message lists the section's fields).
    """
    head, _, sub = key.partition(".")
    if head not in _SECTIONS:
        raise LabError(f"unknown setting {key!r}; sections are {', '.join(_SECTIONS)}")
    found = {f.name: f for f in dataclasses.fields(_SECTIONS[head])}
    if sub not in found:
        raise LabError(_unknown_key(key, head, found))
    f = found[sub]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


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


def parse_bool(value: Any, what: str) -> bool:
    """``true/false/yes/no/on/off/1/0`` (any case) or a bool -> bool; LabError otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise LabError(f"{what} must be true or false, got {value!r}")


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
    ("model", "linear_bottleneck"): lambda v: parse_bool(v, "model.linear_bottleneck"),
    ("affinity", "group_size_norm"): lambda v: parse_bool(v, "affinity.group_size_norm"),
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


def default_model_config(name: str) -> ModelConfig:
    """The shipped scenario ``name``'s ``ModelConfig``: its JSON ``model`` section over the
    global defaults. Raises LabError for an unknown scenario."""
    return ModelConfig(**model_section(name))
