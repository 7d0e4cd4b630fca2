"""Bounded work per user: upper limits on what one training run may ask for, and the queue
quota, for a lab or class sharing one server. Torch-free.

A deployment sets them (the app: ``[lab.limits]`` in ``.streamlit/secrets.toml``, see the
README's "Deploying for a class"); the runner checks every config it is handed against them
(:func:`check_config`) and counts each owner's queued and running runs against
``queued_per_user``. The command line runs with no limits (``Limits.none()``): its user owns
the machine.

Limits are upper bounds on cost, not on correctness: every value under them is a valid run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mtl_core.errors import LabError

#: Where the app's settings live (named in every "over the limit" message).
WHERE = "[lab.limits] in .streamlit/secrets.toml"


@dataclass(frozen=True)
class Limits:
    """Upper limits for one run and one user. ``None`` means unlimited.

    Attributes
    ----------
    steps : training steps of one run.
    batch_size : minibatch size.
    width : any hidden width or CNN channel count.
    layers : number of hidden layers, and of convolution layers.
    tasks : tasks in one run (the scenario's ``tasks`` knob, or its task list).
    samples : examples a generated scenario builds (``samples`` knob).
    features : input dimension of a generated scenario (``features`` knob).
    seeds : seeds of one ground-truth evaluation (each retrains every approach).
    queued_per_user : runs one owner may have queued or running at once (ground-truth jobs
        count as one each).
    scenarios : scenarios a run may use (None: all).
    data_folder : where the ``csv`` scenario's ``path`` knob may read a table on the server:
        ``""`` (the default) nowhere (tables come only from uploads, see
        :mod:`mtl_core.scenarios.table_files`), a folder: files inside it only, None: any
        path (the command line).
    """

    steps: int | None = 5000
    batch_size: int | None = 1024
    width: int | None = 512
    layers: int | None = 6
    tasks: int | None = 32
    samples: int | None = 50_000
    features: int | None = 1024
    seeds: int | None = 5
    queued_per_user: int | None = 6
    scenarios: tuple[str, ...] | None = ("synthetic", "digits", "lesson", "csv")
    data_folder: str | None = ""

    @classmethod
    def none(cls) -> Limits:
        """No limit at all (the command line)."""
        return cls(**{f.name: None for f in dataclasses.fields(cls)})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Limits:
        """Defaults overridden by ``values`` (e.g. the ``[lab.limits]`` table); a value of
        0 or ``"none"`` lifts that limit. LabError for an unknown name or a bad value."""
        known = {f.name for f in dataclasses.fields(cls)}
        out: dict[str, Any] = {}
        for key, raw in dict(values or {}).items():
            if key not in known:
                raise LabError(
                    f"unknown limit {key!r} in {WHERE}; limits: {', '.join(sorted(known))}"
                )
            out[key] = _parse(key, raw)
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        """Every limit by name (JSON-ready; :meth:`from_dict` reads it back)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Limits:
        """The limits :meth:`to_dict` wrote (e.g. kept in a run's note as JSON), exactly:
        None stays unlimited and ``data_folder=""`` stays "nowhere" (unlike
        :meth:`from_mapping`, which reads an admin's settings). LabError for an unknown name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise LabError(f"unknown limit {unknown[0]!r}; limits: {', '.join(sorted(known))}")
        out = dict(values)
        if out.get("scenarios") is not None:
            out["scenarios"] = tuple(str(s) for s in out["scenarios"])
        return cls(**out)


def _parse(key: str, raw: Any) -> Any:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("none", "")):
        return None
    if key == "data_folder":  # "" (no server path) is a setting here, not "no limit"
        return str(raw).strip()
    if key == "scenarios":
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(str(s).strip() for s in items if str(s).strip())
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise LabError(f"limit {key} in {WHERE} must be a whole number, got {raw!r}") from None
    if value < 0 or isinstance(raw, bool):
        raise LabError(f"limit {key} in {WHERE} must be >= 0 (0 = no limit), got {raw!r}")
    return value or None


def over(what: str, value: Any, limit: int) -> LabError:
    """The one-line error for a value over a limit, naming the limit and where to raise it."""
    return LabError(
        f"{what} {value} is over this lab's limit of {limit} (an admin can raise it: {WHERE})"
    )


def _count(value: Any) -> Any:
    """A knob that is a count, or a list of names (the csv scenario's ``features``)."""
    return len(value) if isinstance(value, (list, tuple)) else value


def _at_most(what: str, value: Any, limit: int | None) -> None:
    if limit is not None and value is not None and int(value) > limit:
        raise over(what, value, limit)


def check_config(cfg: Any, limits: Limits) -> None:
    """Raise LabError when a ``RunConfig`` asks for more than ``limits`` allow.

    Checks the scenario, steps, batch size, widths, layers, and the scenario knobs ``tasks``
    (a count or a list), ``attributes`` + ``random_tasks`` (digits), ``samples`` and
    ``features``.
    """
    if limits.scenarios is not None and cfg.scenario not in limits.scenarios:
        raise LabError(
            f"scenario {cfg.scenario!r} is not offered here (allowed: "
            f"{', '.join(limits.scenarios)}; an admin sets them: {WHERE})"
        )
    _at_most("steps", cfg.train.steps, limits.steps)
    _at_most("batch size", cfg.train.batch_size, limits.batch_size)
    for w in (*cfg.model.hidden, *cfg.model.channels):
        _at_most("layer width", w, limits.width)
    _at_most("hidden layers", len(cfg.model.hidden), limits.layers)
    _at_most("convolution layers", len(cfg.model.channels), limits.layers)
    _at_most("tasks", task_count(cfg.knobs), limits.tasks)
    knobs = cfg.knobs or {}
    check_server_path(knobs, limits)
    _at_most("samples", knobs.get("samples"), limits.samples)
    _at_most("features", _count(knobs.get("features")), limits.features)


def check_evaluation(config: Mapping[str, Any], seeds: int, limits: Limits) -> None:
    """Raise LabError when a ground-truth evaluation of a run whose stored ``config`` (a
    ``RunConfig.to_dict()``, or whatever an uploaded ``meta.json`` claimed) asks for more
    than ``limits`` allow: its scenario, steps, seeds and data knobs. Checked before the
    scenario is even loaded (an uploaded config may name any scenario and path)."""
    config = config if isinstance(config, Mapping) else {}
    scenario = config.get("scenario")
    if limits.scenarios is not None and scenario not in limits.scenarios:
        raise LabError(
            f"scenario {scenario!r} is not offered here (allowed: "
            f"{', '.join(limits.scenarios)}; an admin sets them: {WHERE})"
        )
    train = config.get("train") if isinstance(config.get("train"), Mapping) else {}
    knobs = config.get("knobs") if isinstance(config.get("knobs"), Mapping) else {}
    check_server_path(knobs, limits)
    try:
        _at_most("steps", int(train.get("steps", 300)), limits.steps)
        _at_most("seeds", int(seeds), limits.seeds)
        _at_most("tasks", task_count(knobs), limits.tasks)
        _at_most("samples", knobs.get("samples"), limits.samples)
        _at_most("features", _count(knobs.get("features")), limits.features)
    except (TypeError, ValueError):
        raise LabError(
            "this run's stored config is not one the lab wrote (a number is not "
            "a number); it cannot be re-evaluated"
        ) from None


def check_server_path(knobs: Mapping[str, Any], limits: Limits) -> None:
    """Raise LabError when the knobs name a file on the server (the ``csv`` scenario's
    ``path``) that ``limits.data_folder`` does not allow: none at all by default (a shared
    app takes tables only as uploads), or one outside the configured folder. The message
    never says whether the file exists."""
    path = knobs.get("path") if isinstance(knobs, Mapping) else None
    if not path or limits.data_folder is None:
        return
    if not limits.data_folder:
        raise LabError(
            "a table from a path on the server is for the command line only; upload the "
            f"table instead (an admin can allow a data folder: data_folder in {WHERE})"
        )
    from pathlib import Path

    folder = Path(limits.data_folder).expanduser().resolve()
    try:
        inside = Path(str(path)).expanduser().resolve().is_relative_to(folder)
    except (OSError, RuntimeError, ValueError):
        inside = False
    if not inside:
        raise LabError(
            f"a table path must be inside this lab's data folder {folder} (data_folder in "
            f"{WHERE}); upload the table instead"
        )


def check_table(rows: int, features: int, limits: Limits) -> None:
    """Raise LabError when a table run trains on more rows (``samples``) or feature columns
    (``features``) than ``limits`` allow."""
    _at_most("table rows", rows, limits.samples)
    _at_most("feature columns", features, limits.features)


def task_count(knobs: Mapping[str, Any]) -> int | None:
    """How many tasks the scenario knobs ask for (None when they do not say)."""
    knobs = knobs or {}
    tasks = knobs.get("tasks")
    if isinstance(tasks, (list, tuple)):
        return len(tasks)
    if tasks is not None:
        return int(tasks)
    if "attributes" in knobs or "random_tasks" in knobs:
        return len(knobs.get("attributes") or ()) + int(knobs.get("random_tasks") or 0)
    targets = knobs.get("targets")
    if isinstance(targets, str):
        return len([t for t in targets.split(",") if t.strip()])
    if isinstance(targets, (list, tuple)):
        return len(targets)
    return None


def check_quota(active: int, limits: Limits) -> None:
    """Raise LabError when an owner with ``active`` queued or running runs may queue no more."""
    q = limits.queued_per_user
    if q is not None and active >= q:
        raise LabError(
            f"you already have {active} runs queued or running, this lab's limit "
            f"per user is {q}: wait for one to finish or cancel one "
            f"(an admin can raise it: {WHERE})"
        )
