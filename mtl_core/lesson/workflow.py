"""The landing lesson's workflow, without any UI: its three run configs, when and how the
grouped run's groups are picked and by whom: the runner's supervisor queues it when the
together run ends (:class:`LessonAdvancer`, every pass), whether a page is open or not. The
app's Learn page (``app/views/learn.py``) starts a lesson and draws
:func:`mtl_core.lesson.state.state`; the headless ``lesson`` command
(:mod:`mtl_core.lesson.headless`), tests and benchmarks use the same pieces. Torch-free.

The lesson trains the ``lesson`` scenario three ways: all tasks together (logging TAG lookahead
affinity every step), in groups, and every task alone; each run trains :data:`REPLICAS`
replicas as one batched model (:mod:`mtl_core.train.replicas`), so every loss comes with a 95%
interval and the verdict (:mod:`mtl_core.lesson.report`) is given only when intervals
separate. The groups are TAG's selection from the all-together run's affinity (mean over
its steps and replicas: the lesson teaches TAG), so the grouped run starts when the
all-together run ends; the planted clusters remain an option (all three runs start at once).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mtl_core.accounts.quota import Limits
from mtl_core.config import RunConfig
from mtl_core.errors import LabError
from mtl_core.scenarios import get_scenario, resolve_knobs
from mtl_core.store import TERMINAL, RunInfo, Store
from mtl_core.store.notes import NOTE_BACKGROUND
from mtl_core.types import Grouping, canonical_grouping

SCENARIO = "lesson"
APPROACHES = ("together", "groups", "single")
STEPS = 300
#: Replicas of every network, trained as one batched model: the interval's sample size.
REPLICAS = 16
#: Adam's learning rate for the lesson (the scenario's narrow linear bottleneck needs 1e-2:
#: at 3e-3 the all-together network has not separated the clusters by step 300).
LEARNING_RATE = 1e-2
#: The live heatmap's colour limit, fixed for the whole lesson (+-2% loss change per step:
#: the settled averages of this scenario lie within +-1.2%), so colours never rescale.
AFFINITY_ZMAX = 0.02
#: Steps during which the running average rests on too few matrices to read ("settling").
SETTLE_STEPS = 30
GROUP_SOURCES = {
    "tag": "TAG, from the all-together run's affinity",
    "planted": "the planted clusters",
}
#: The together run's note: ``{"run_id": grouped run id or None, "knobs", "steps", "seed",
#: "limits"}`` (see :func:`start`); the grouped run's id is claimed in it exactly once.
NOTE_GROUPS_RUN = "lesson_groups_run"
#: The grouped run's note: ``{"source": words, "groups": [[task, ...], ...], "together_run"}``.
NOTE_GROUPS = "lesson_groups"
#: The together run's note naming its lesson: ``{"key": lesson_key(...), "single": id}`` (one
#: lesson is trained once per key, see :func:`start`; ``single`` once that run is queued).
NOTE_LESSON = "lesson_key"
#: The single run's note: ``{"key": str(together run id)}`` (how a follower finds it).
NOTE_LESSON_SINGLE = "lesson_single_of"
#: The together run's note on a lesson the idle runner trained ahead
#: (``mtl_core.lesson.passes.LessonsAhead``): ``{"at": queued, epoch s}``; kept for good (the
#: page says a replay was trained ahead), while :data:`NOTE_BACKGROUND` on its runs is dropped
#: once a student's press joins the lesson.
NOTE_AHEAD = "lesson_ahead"
#: Who shares a lesson: ``"class"`` every session (the deployment's ``visibility = "class"``),
#: ``"private"`` only the owner's own sessions and unowned runs (what private mode shows them).
SHARES = ("class", "private")
ADVANCED_KNOBS = ("relatedness", "noise", "conflict_type", "tasks", "clusters", "data_seed")


class Submitter(Protocol):
    """What the lesson needs of a runner (:class:`mtl_core.runner.Runner`, the app's session
    runner, a test's recording one): ``submit(config, **kw) -> run id`` (None when a
    ``claim=`` was lost), and optionally the ``limits`` it checks runs against."""

    def submit(self, config: RunConfig, **kw: Any) -> int | None: ...


def knob_specs() -> dict[str, dict[str, Any]]:
    """The lesson scenario's knob specs (type, default, min, max, choices, help)."""
    return dict(get_scenario(SCENARIO).knobs)


def base_config(
    mode: str,
    knobs: dict[str, Any],
    *,
    steps: int = STEPS,
    seed: int = 0,
    groups: Grouping | None = None,
    label: str = "",
    replicas: int = REPLICAS,
) -> RunConfig:
    """One of the lesson's runs (``mode`` in :data:`APPROACHES`), ``replicas`` replicas of
    each network. Only the together run measures affinity (lookahead, every step); held-out
    loss is evaluated every 10 steps. LabError for a bad knob."""
    names = {"together": "all together", "groups": "grouped", "single": "each alone"}
    return RunConfig.for_scenario(
        SCENARIO,
        knobs,
        {
            "train.mode": mode,
            "train.steps": steps,
            "train.eval_every": 10,
            "train.seed": seed,
            "train.groups": [sorted(g) for g in groups] if groups else None,
            "train.replicas": replicas,
            "optim.lr": LEARNING_RATE,
            "affinity.every": 1,
            "name": f"lesson{(' ' + label) if label else ''} · {names[mode]}",
        },
    )


@lru_cache(maxsize=1)
def code_version() -> str:
    """A digest of the code that decides a lesson's numbers: ``mtl_core.__version__`` and the
    source of ``mtl_core/train``, ``mtl_core/scenarios`` and this module (16 hex digits). A
    change to any of them makes every lesson new (it is trained again, never replayed)."""
    import mtl_core

    root = Path(mtl_core.__file__).parent
    h = hashlib.sha256(str(mtl_core.__version__).encode())
    files = [Path(__file__), *sorted((root / "train").rglob("*.py"))]
    files += sorted((root / "scenarios").rglob("*.py"))
    for f in files:
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def lesson_key(
    knobs: dict[str, Any],
    *,
    steps: int = STEPS,
    seed: int = 0,
    groups_from: str = "tag",
    replicas: int = REPLICAS,
) -> str:
    """What makes two lessons the same (a 24-hex-digit SHA-256): the scenario, every knob
    after defaults are filled in (:func:`~mtl_core.scenarios.resolve_knobs`), steps, seed,
    group source, replicas, learning rate and :func:`code_version`. LabError for a bad knob."""
    resolved = resolve_knobs(get_scenario(SCENARIO), {**knobs, "data_seed": int(seed)})
    text = json.dumps(
        {
            "scenario": SCENARIO,
            "knobs": {k: resolved[k] for k in sorted(resolved)},
            "steps": int(steps),
            "seed": int(seed),
            "groups_from": str(groups_from),
            "replicas": int(replicas),
            "lr": LEARNING_RATE,
            "code": code_version(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def lesson_label(knobs: dict[str, Any]) -> str:
    """How the lesson's runs are named: by their conflict level."""
    return f"conflict {float(knobs.get('conflict', 0)):.2g}"


def planted_groups(knobs: dict[str, Any]) -> Grouping:
    """The scenario's planted clusters (task t in cluster ``t * c // n``), torch-free."""
    k = resolve_knobs(get_scenario(SCENARIO), knobs)
    n, c = int(k["tasks"]), int(k["clusters"])
    groups: dict[int, list[str]] = {}
    for t in range(n):
        groups.setdefault(t * c // n, []).append(f"t{t}")
    return canonical_grouping(groups.values())


def select_groups(A: np.ndarray, tasks: list[str], k: int) -> tuple[Grouping, float, bool]:
    """TAG selection (exact, at most ``k`` groups of 2+ tasks) on an averaged matrix
    ``A: (n, n)``, rows = source: ``(groups, value, stopped)``; ``stopped`` is True when
    the search's 5 s wall-clock safety stop fired (only then may the groups depend on the
    machine's load; :class:`mtl_core.grouping.TAGGrouper`)."""
    from mtl_core.grouping import make_grouper

    M = np.nan_to_num(np.asarray(A, dtype=np.float64))
    g = make_grouper("tag", k=max(1, int(k)), time_limit=5.0).fit(M, tasks)
    return g.groups_, float(g.score_), bool(getattr(g, "stopped_", False))


def mean_affinity(A: np.ndarray) -> np.ndarray:
    """``(S, n, n) -> (n, n)``: the mean over logged steps of each cell, NaN where a cell
    was never logged (no warning). What TAG selects from and the lesson's heatmap shows."""
    X = np.asarray(A, dtype=np.float64)
    logged = np.isfinite(X)
    count = logged.sum(axis=0)
    total = np.where(logged, X, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def ready_to_select(info: RunInfo, n_matrices: int) -> bool:
    """Whether the together run has ended with matrices to pick groups from."""
    return info.status == "finished" and n_matrices > 0


def held_out(df: pd.DataFrame, split: str = "test") -> tuple[int | None, dict[str, float]]:
    """Latest evaluated per-task loss on ``split``: ``(step, {task: loss})``."""
    if df is None or df.empty:
        return None, {}
    sel = df[(df["split"] == split) & (df["metric"] == "loss")]
    if sel.empty:
        return None, {}
    last = int(sel["step"].max())
    rows = sel[sel["step"] == last]
    return last, {str(t): float(v) for t, v in zip(rows["task"], rows["value"])}


def mean_curve(df: pd.DataFrame, split: str = "test") -> pd.Series:
    """Mean over tasks of the ``split`` loss at each evaluated step."""
    if df is None or df.empty:
        return pd.Series(dtype=float)
    sel = df[(df["split"] == split) & (df["metric"] == "loss")]
    return sel.groupby("step")["value"].mean()


@dataclass
class LessonIds:
    """The lesson's run ids (what the session keeps; everything else is read from the store)."""

    together: int
    single: int | None = None
    groups: int | None = None
    #: True when :func:`start` found this lesson already trained or training (not in the URL).
    followed: bool = field(default=False, compare=False)

    def ids(self) -> list[int]:
        """The ids known so far, in the order together, groups, single."""
        return [i for i in (self.together, self.groups, self.single) if i is not None]

    def to_query(self) -> str:
        """``"together,groups,single"`` for the URL (an unknown id is left empty)."""
        return ",".join(
            str(i) if i is not None else "" for i in (self.together, self.groups, self.single)
        )

    @classmethod
    def from_query(cls, text: str | None) -> LessonIds | None:
        """Parse :meth:`to_query` text; None if it is empty or malformed."""
        if not text:
            return None
        parts = (str(text).split(",") + ["", "", ""])[:3]
        try:
            vals = [int(p) if p.strip() else None for p in parts]
        except ValueError:
            return None
        if vals[0] is None:
            return None
        return cls(together=vals[0], groups=vals[1], single=vals[2])


def start(
    runner: Submitter,
    store: Store,
    knobs: dict[str, Any],
    *,
    steps: int = STEPS,
    seed: int = 0,
    groups_from: str = "tag",
    replicas: int = REPLICAS,
    share: str | None = None,
    background: bool = False,
) -> LessonIds:
    """Submit the lesson's runs (``seed`` sets the data and the training seeds). With
    ``groups_from="tag"`` together and single go now and the runner queues the grouped run
    once the together run has ended (:func:`advance`, from every supervisor pass, whether a
    page is open or not); with ``"planted"`` all three go now (together, grouped, single:
    the order they start in when workers are scarce).

    The together run's note :data:`NOTE_GROUPS_RUN` keeps what that later submit needs:
    ``{"run_id": None, "knobs", "steps", "seed", "limits"}`` (``limits``: the submitting
    runner's :class:`~mtl_core.accounts.quota.Limits`, so the grouped run is checked as the
    first two were; its owner is the together run's). LabError for a bad knob or a run over
    the limits or the quota.

    With ``share`` (one of :data:`SHARES`) identical lessons are trained once: the together
    run carries :data:`NOTE_LESSON` with :func:`lesson_key`, inserted only if no usable run
    (not failed, cancelled or interrupted) that ``share`` lets this owner see has the same
    key, in the insert's transaction (``Store.create_run(unique=...)``: of two racing
    presses exactly one queues runs). Otherwise nothing is queued and that lesson's ids come
    back with ``followed=True`` (the page follows it live, or replays it). ``share=None``
    (the headless command, tests) always trains.

    ``background`` (the idle runner's lessons ahead): the runs carry
    :data:`~mtl_core.store.notes.NOTE_BACKGROUND` (they start only when no other run is
    queued; :func:`advance` gives the grouped run the same note) and the together run
    :data:`NOTE_AHEAD`. A press (``background=False``) that finds such a lesson still queued
    drops the background notes, so it queues like the student's own.
    """
    if share is not None and share not in SHARES:
        raise LabError(f"unknown lesson sharing {share!r}; use one of {', '.join(SHARES)}")
    key = lesson_key(knobs, steps=steps, seed=seed, groups_from=groups_from, replicas=replicas)
    knobs = {**knobs, "data_seed": int(seed)}
    label = lesson_label(knobs)
    common = {"steps": int(steps), "seed": int(seed), "replicas": int(replicas), "label": label}
    private = share == "private"
    extra: dict[str, Any] = {}
    back: dict[str, dict[str, Any]] = {}
    if background:
        back[NOTE_BACKGROUND] = {"why": "lesson ahead"}
    if share is not None:
        notes = {NOTE_LESSON: {"key": key}, **back}
        if background:
            notes[NOTE_AHEAD] = {"at": time.time()}
        extra = {"run_notes": notes, "unique": (NOTE_LESSON, key, private)}
    elif background:
        extra = {"run_notes": {**back, NOTE_AHEAD: {"at": time.time()}}}
    together = runner.submit(base_config("together", knobs, **common), **extra)
    if together is None:  # another press's lesson stands for this one: follow it
        found = find_lesson(runner, store, key, private)
        if found is not None:
            if not background:
                foreground(store, found)
            return found
        raise LabError("this lesson was just removed; press Train again to train it")
    ids = LessonIds(together=together)
    limits = getattr(runner, "limits", None)
    store.save_note(
        together,
        NOTE_GROUPS_RUN,
        {
            "run_id": None,
            "knobs": knobs,
            "steps": int(steps),
            "seed": int(seed),
            "limits": limits.to_dict() if isinstance(limits, Limits) else None,
        },
    )
    if groups_from == "planted":
        ids.groups = _submit_groups(
            runner,
            together,
            knobs,
            planted_groups(knobs),
            common,
            GROUP_SOURCES["planted"],
            background=background,
        )
    notes = {NOTE_LESSON_SINGLE: {"key": str(together)}} if share is not None else {}
    notes.update(back)
    ids.single = runner.submit(base_config("single", knobs, **common), run_notes=notes or None)
    if share is not None and ids.single is not None:  # followers read it here (state)
        store.save_note(together, NOTE_LESSON, {"key": key, "single": ids.single})
    return ids


def foreground(store: Store, ids: LessonIds) -> list[int]:
    """Drop :data:`~mtl_core.store.notes.NOTE_BACKGROUND` from the lesson's runs (together
    first, so a grouped run :func:`advance` queues after this call is queued in the
    foreground too): a student joined a lesson held ahead, and its queued runs now take turns
    like the student's own. Returns the ids that had the note.

    The grouped run is also looked up again after the together run's note is gone, so a
    grouped run :func:`advance` queued while this press read ``ids`` loses the note too:
    either this call sees it, or :func:`advance` sees the together run without the note
    and drops its grouped run's itself.
    """
    dropped = [rid for rid in ids.ids() if store.drop_note(rid, NOTE_BACKGROUND)]
    groups = (store.get_note(ids.together, NOTE_GROUPS_RUN) or {}).get("run_id")
    if groups is not None and int(groups) not in ids.ids():
        if store.drop_note(int(groups), NOTE_BACKGROUND):
            dropped.append(int(groups))
    return dropped


def trained_ahead_at(store: Store, together: int) -> float | None:
    """When the idle runner queued this lesson ahead (epoch s, :data:`NOTE_AHEAD`), or None
    for a lesson a press queued."""
    note = store.get_note(together, NOTE_AHEAD)
    return float(note["at"]) if note and note.get("at") is not None else None


def find_lesson(runner: Submitter, store: Store, key: str, private: bool) -> LessonIds | None:
    """The ids of the usable lesson with ``key`` that this runner's owner may share (see
    :func:`start`), ``followed=True``; None if there is none."""
    owner = getattr(getattr(runner, "actor", None), "id", None)
    together = store.find_keyed(NOTE_LESSON, key, owner=owner, private=private)
    if together is None:
        return None
    single = store.find_keyed(NOTE_LESSON_SINGLE, str(together), owner=owner, private=private)
    groups = (store.get_note(together, NOTE_GROUPS_RUN) or {}).get("run_id")
    return LessonIds(
        together=together,
        groups=int(groups) if groups is not None else None,
        single=single,
        followed=True,
    )


def _submit_groups(
    runner: Submitter,
    together: int,
    knobs: dict[str, Any],
    groups: Grouping,
    common: dict[str, Any],
    source: str,
    *,
    stopped: bool = False,
    background: bool = False,
    **who: Any,
) -> int | None:
    """Queue the grouped run if nobody has (the claim on the together run's note); its id,
    or None when another caller claimed it first. ``common``: :func:`base_config`'s steps,
    seed, replicas and label; ``stopped``: TAG's safety stop fired choosing ``groups`` (kept
    in the grouped run's :data:`NOTE_GROUPS` note); ``background``: queued in the background
    (:data:`~mtl_core.store.notes.NOTE_BACKGROUND`); ``who``: ``owner=``/``limits=``."""
    cfg = base_config("groups", knobs, groups=groups, **common)
    notes: dict[str, dict[str, Any]] = {
        NOTE_GROUPS: {
            "source": source,
            "groups": [sorted(g) for g in groups],
            "stopped": bool(stopped),
            "together_run": together,
        }
    }
    if background:
        notes[NOTE_BACKGROUND] = {"why": "lesson ahead"}
    return runner.submit(cfg, claim=(together, NOTE_GROUPS_RUN), run_notes=notes, **who)


def advance(runner: Submitter, store: Store, together: int) -> int | None:
    """Phase 2 of a lesson: queue the grouped run once the together run has ended, exactly
    once however many callers race (a compare-and-set on :data:`NOTE_GROUPS_RUN` in the
    store transaction that inserts the run: ``Store.create_run(claim=...)``). Returns the
    grouped run's id, None while the together run is still going (or when ``together`` is
    no lesson).

    The groups are TAG's network selection (Fifty et al. 2021; exact, at most
    ``clusters`` groups) from the together run's mean lookahead affinity over all steps and
    replicas; a together run that ended without any matrix (failed or cancelled early, or
    logged none) falls back to the planted clusters, so the lesson still has its three
    approaches. The grouped run belongs to the together run's owner, checked against the
    limits kept in the note. LabError when it cannot be queued (e.g. the owner is at the
    queue quota: a later call tries again).
    """
    note = store.get_note(together, NOTE_GROUPS_RUN)
    if note is None:
        return None
    if note.get("run_id") is not None:  # someone already started it
        return int(note["run_id"])
    info = store.get_run(together)
    cfg = RunConfig.from_dict(info.config)
    knobs = dict(note.get("knobs") or cfg.knobs)
    common = {
        "steps": int(note.get("steps") or cfg.train.steps),
        "seed": int(note.get("seed", cfg.train.seed)),
        "replicas": int(cfg.train.replicas),
        "label": lesson_label(knobs),
    }
    logged, tasks, A = store.affinity_steps(together, "lookahead")
    if ready_to_select(info, len(logged)):
        groups, _, stopped = select_groups(mean_affinity(A), tasks, int(knobs.get("clusters", 2)))
        source = GROUP_SOURCES["tag"]
    elif info.status in TERMINAL:  # ended without a matrix to select from
        groups, stopped = planted_groups(knobs), False
        why = "logged no affinity" if info.status == "finished" else "stopped early"
        source = f"the planted clusters (the all-together run {why})"
    else:
        return None
    kept = note.get("limits")
    limits = Limits.from_dict(kept) if isinstance(kept, dict) else None
    background = store.get_note(together, NOTE_BACKGROUND) is not None
    rid = _submit_groups(
        runner,
        together,
        knobs,
        groups,
        common,
        source,
        stopped=stopped,
        background=background,
        owner=info.owner,
        limits=limits,
    )
    if rid is None:  # another caller won the claim: its run is the lesson's
        won = store.get_note(together, NOTE_GROUPS_RUN) or {}
        return int(won["run_id"]) if won.get("run_id") is not None else None
    if background and store.get_note(together, NOTE_BACKGROUND) is None:
        store.drop_note(rid, NOTE_BACKGROUND)  # a student joined while it was being queued
    return rid


def maybe_start_groups(runner: Submitter, store: Store, ids: LessonIds) -> int | None:
    """:func:`advance` for ``ids``, keeping the grouped run's id in ``ids.groups``."""
    if ids.groups is None:
        ids.groups = advance(runner, store, ids.together)
    return ids.groups
