"""THE affinity measure registry, and the one rule for picking the measure to read. Torch-free.

Every place that lists, validates, logs or shows a measure reads :data:`REGISTRY`: config
validation (:class:`mtl_core.config.AffinityConfig`, the mode checks of ``RunConfig``), both
training loops (:mod:`mtl_core.train.loop`, :mod:`mtl_core.train.replicas`), the
:class:`~mtl_core.train.logger.AffinityLogger`, the display units (:mod:`mtl_core.text.units`),
the impossible-value check of uploaded files (:mod:`mtl_core.runfile.units`), the CLI's
``--affinity`` and the app's Train and Upload selects. Adding a measure is one
:class:`Measure` entry here (plus, for a measure the lab trains, its computation in
``mtl_core.train``).

The measures:

- ``lookahead``: TAG's inter-task affinity (Fifty et al., NeurIPS 2021):
  ``A[i, j] = 1 - L_j(after a step on task i's gradient) / L_j(now)``, the step being the
  optimizer's own, only the shared parameters moving. A relative loss change.
- ``proximal``: the proximal inter-task affinity of selective task group updates (Jeong &
  Yoon, ICLR 2025): the relative loss change of every task right after a group's own
  update, tracked by an EMA; logged only inside ``--mode sequential``.
- ``cosine``: cosine similarity of the per-task gradients of the shared parameters (as in
  gradient-surgery work, e.g. Yu et al., NeurIPS 2020); a plain number in [-1, 1].

Shared by the run-file package (a long-form log's ``measure`` column,
:func:`mtl_core.runfile.measure_matrices`) and the store (a run's logged measures,
``Store.affinity_steps``), which must not know the file format: so the registry lives below
all of them and imports nothing of the lab but its errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mtl_core.errors import LabError

#: A measure whose values are relative loss changes (fractions: ``0.0092`` = the target's
#: loss went down by 0.92%): shown and typed in percent.
FRACTION = "fraction"
#: A measure whose values are plain numbers (cosine), shown as they are.
PLAIN = "plain"
#: Logged by a training loop on a network every task shares, every ``affinity.every`` steps.
SHARED_STEP = "shared step"
#: Logged inside selective sequential group updates (``--mode sequential``), every step.
GROUP_UPDATES = "group updates"
#: The config value for "log no affinity" (not a measure).
NO_MEASURE = "none"
#: The config value for "the mode's default measure" (:func:`default_for_mode`).
AUTO = "auto"


@dataclass(frozen=True)
class Measure:
    """One affinity measure: what it is called, its unit and who can log it.

    Attributes
    ----------
    name : the canonical name, as stored in the run store and the open run format.
    label : what people read in a select or a help text.
    unit : :data:`FRACTION` (relative loss change, shown in percent) or :data:`PLAIN`.
    unit_words : the unit in words for labels and column headers.
    logged_by : :data:`SHARED_STEP` (the training loops measure it on a network all tasks
        share, every ``affinity.every`` steps; the :class:`AffinityLogger` can too) or
        :data:`GROUP_UPDATES` (only the sequential mode's group updates produce it).
    modes : the training modes (``config.MODES``) that can log it.
    default_in : the modes that log it when no measure is asked for.
    needs_gradients : needs the per-task gradients of the shared parameters.
    needs_lookahead : needs a forward after a (simulated or real) optimizer step.
    bounds : ``(low, high)`` the values can never leave (None = unbounded on that side); an
        uploaded value outside them is flagged as impossible.
    aliases : other names people and other code bases use for it (any case).
    source : the paper (and section) that defines it.
    """

    name: str
    label: str
    unit: str
    unit_words: str
    logged_by: str
    modes: tuple[str, ...]
    default_in: tuple[str, ...]
    needs_gradients: bool
    needs_lookahead: bool
    bounds: tuple[float | None, float | None]
    aliases: tuple[str, ...]
    source: str

    @property
    def is_percent(self) -> bool:
        """Whether values are relative loss changes, shown and typed in percent."""
        return self.unit == FRACTION


#: Every measure the lab knows, in the order selects and messages list them.
REGISTRY: tuple[Measure, ...] = (
    Measure(
        name="lookahead",
        label="lookahead (TAG's inter-task affinity)",
        unit=FRACTION,
        unit_words="% loss change",
        logged_by=SHARED_STEP,
        modes=("together", "sequential"),
        default_in=("together",),
        needs_gradients=True,
        needs_lookahead=True,
        bounds=(None, 1.0),
        aliases=("tag", "lookahead_affinity", "lookahead affinity", "inter-task affinity"),
        source="Fifty et al., Efficiently Identifying Task Groupings in Multi-Task Learning, "
        "NeurIPS 2021",
    ),
    Measure(
        name="proximal",
        label="proximal (selective group updates)",
        unit=FRACTION,
        unit_words="% loss change",
        logged_by=GROUP_UPDATES,
        modes=("sequential",),
        default_in=("sequential",),
        needs_gradients=False,
        needs_lookahead=True,
        bounds=(None, 1.0),
        aliases=("proximal_affinity", "proximal affinity", "selective", "selupdate"),
        source="Jeong & Yoon, Selective Task Group Updates for Multi-Task Optimization, ICLR 2025",
    ),
    Measure(
        name="cosine",
        label="cosine (gradient similarity)",
        unit=PLAIN,
        unit_words="cosine",
        logged_by=SHARED_STEP,
        modes=("together", "sequential"),
        default_in=(),
        needs_gradients=True,
        needs_lookahead=False,
        bounds=(-1.0, 1.0),
        aliases=("cos", "gradient_cosine", "gradient cosine", "cosine_similarity"),
        source="Yu et al., Gradient Surgery for Multi-Task Learning, NeurIPS 2020",
    ),
)


def names() -> tuple[str, ...]:
    """The canonical names of every registered measure, in registry order."""
    return tuple(m.name for m in REGISTRY)


def config_choices() -> tuple[str, ...]:
    """What ``affinity.measure`` may be: every measure, then :data:`NO_MEASURE`."""
    return (*names(), NO_MEASURE)


def logger_names() -> tuple[str, ...]:
    """The measures a loop on one shared network can log (the ``AffinityLogger``'s)."""
    return tuple(m.name for m in REGISTRY if m.logged_by == SHARED_STEP)


def _index() -> dict[str, Measure]:
    out: dict[str, Measure] = {}
    for m in REGISTRY:
        for key in (m.name, *m.aliases):
            out[key.casefold()] = m
    return out


def find(name: str | None) -> Measure | None:
    """The registered measure called ``name`` or one of its aliases (any case, surrounding
    spaces ignored); None for None, :data:`NO_MEASURE` or an unknown name."""
    if name is None:
        return None
    return _index().get(str(name).strip().casefold())


def get(name: str, what: str = "affinity") -> Measure:
    """The registered measure ``name`` (an alias works too).

    Raises
    ------
    LabError
        ``name`` is no registered measure nor alias; the message lists the names.
    """
    m = find(name)
    if m is None:
        raise LabError(f"unknown {what} {name!r}; choose one of: {', '.join(names())}")
    return m


def canonical(name: str) -> str:
    """``name``'s canonical form: a registered measure's name for it or an alias (``"TAG"``
    -> ``"lookahead"``), else ``name`` itself with its spaces trimmed (a measure the lab does
    not know, e.g. typed for an uploaded file, is kept as given)."""
    m = find(name)
    return m.name if m is not None else " ".join(str(name).split())


def default_for_mode(mode: str) -> str:
    """The measure ``mode`` logs when none is asked for (:data:`NO_MEASURE` if none)."""
    for m in REGISTRY:
        if mode in m.default_in:
            return m.name
    return NO_MEASURE


def check_mode(measure: str, mode: str) -> None:
    """Refuse a measure that ``mode`` cannot log (its registry ``modes``); an unknown name or
    :data:`NO_MEASURE` passes (validated elsewhere).

    Raises
    ------
    LabError
        One line saying where the measure is measured and which ``--mode`` or ``--affinity``
        to use instead.
    """
    spec = find(measure)
    if spec is None or mode in spec.modes:
        return
    if spec.logged_by == GROUP_UPDATES:
        others = [m.name for m in REGISTRY if mode in m.modes] or [NO_MEASURE]
        raise LabError(
            f"{spec.name} affinity is measured inside sequential group updates: "
            f"use --mode {' or '.join(spec.modes)} (or --affinity {'/'.join(others)})"
        )
    raise LabError(
        f"{spec.name} affinity is measured between tasks that share one network: "
        f"use --mode {' or '.join(spec.modes)}, or --affinity none with --mode {mode}"
    )


def auto_words() -> str:
    """What ``auto`` picks, in words: ``lookahead for together, proximal for sequential,
    none otherwise`` (from each measure's ``default_in``)."""
    parts = [f"{m.name} for {mode}" for m in REGISTRY for mode in m.default_in]
    return ", ".join([*parts, f"{NO_MEASURE} otherwise"])


#: The measure of a log or file that names none (TAG's lookahead affinity).
DEFAULT_MEASURE = "lookahead"


def pick_measure(
    measures: Sequence[str], measure: str | None, where: str, *, hint: str = "pick one"
) -> str:
    """The measure to read: ``measure`` if given, else the only one logged.

    Parameters
    ----------
    measures : the measures logged (in the order messages list them).
    measure : the one asked for, or None for "the only one".
    where : what holds them, for messages (``"the log"``, ``"run 3"``, a file name).
    hint : how the caller's user picks one (``"pick one with --measure"``).

    Raises
    ------
    LabError
        ``measure`` is None and several (or no) measures are logged; or ``measure`` is not
        among them.
    """
    if measure is None:
        if len(measures) > 1:
            raise LabError(f"{where} holds several measures ({', '.join(measures)}); {hint}")
        if not measures:
            raise LabError(f"{where} has no affinity rows")
        return measures[0]
    if measure not in measures:
        raise LabError(f"measure {measure!r} not in {where}; it has: {', '.join(measures)}")
    return measure
