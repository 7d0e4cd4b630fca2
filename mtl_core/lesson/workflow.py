"""The landing lesson's workflow, without any UI: its three run configs, when and how the
grouped run's groups are picked, and the numbers the page shows. The app's Learn page
(``app/views/learn.py``) drives it; the headless ``lesson`` command
(:mod:`mtl_core.lesson.headless`), tests and benchmarks can too. Torch-free.

The lesson trains the ``lesson`` scenario three ways: all tasks together (logging TAG lookahead
affinity every step), in groups, and every task alone; each run trains :data:`REPLICAS`
replicas as one batched model (:mod:`mtl_core.train.replicas`), so every loss comes with a 95%
interval and the verdict (:mod:`mtl_core.lesson.report`) is given only when intervals
separate. The groups are TAG's selection from the all-together run's affinity (mean over
its steps and replicas: the lesson teaches TAG), so the grouped run starts when the
all-together run ends; the planted clusters remain an option (all three runs start at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mtl_core.config import RunConfig
from mtl_core.errors import LabError
from mtl_core.scenarios import get_scenario, resolve_knobs
from mtl_core.store import RunInfo, Store
from mtl_core.types import Grouping, canonical_grouping

if TYPE_CHECKING:
    from mtl_core.runner import Runner

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
ADVANCED_KNOBS = ("relatedness", "noise", "conflict_type", "tasks", "clusters", "data_seed")


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


def select_groups(A: np.ndarray, tasks: list[str], k: int) -> tuple[Grouping, float]:
    """TAG selection (exact, at most ``k`` groups of 2+ tasks) on an averaged matrix."""
    from mtl_core.grouping import make_grouper

    M = np.nan_to_num(np.asarray(A, dtype=np.float64))
    g = make_grouper("tag", k=max(1, int(k)), time_limit=5.0).fit(M, tasks)
    return g.groups_, float(g.score_)


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
    runner: Runner,
    store: Store,
    knobs: dict[str, Any],
    *,
    steps: int = STEPS,
    seed: int = 0,
    groups_from: str = "tag",
) -> LessonIds:
    """Submit the lesson's runs (``seed`` sets the data and the training seeds). With
    ``groups_from="tag"`` together and single go now and the grouped run follows once the
    together run has ended (:func:`maybe_start_groups`); with ``"planted"`` all three go
    now (together, grouped, single: the order they start in when workers are scarce)."""
    knobs = {**knobs, "data_seed": int(seed)}
    label = lesson_label(knobs)
    together = runner.submit(base_config("together", knobs, steps=steps, seed=seed, label=label))
    ids = LessonIds(together=together)
    if groups_from == "planted":
        groups = planted_groups(knobs)
        ids.groups = _submit_groups(
            runner, store, ids, knobs, groups, steps, seed, GROUP_SOURCES["planted"]
        )
    else:
        store.save_note(together, "lesson_groups_run", {"run_id": None})
    ids.single = runner.submit(base_config("single", knobs, steps=steps, seed=seed, label=label))
    return ids


def _submit_groups(
    runner: Runner,
    store: Store,
    ids: LessonIds,
    knobs: dict[str, Any],
    groups: Grouping,
    steps: int,
    seed: int,
    source: str,
) -> int:
    cfg = base_config(
        "groups", knobs, steps=steps, seed=seed, groups=groups, label=lesson_label(knobs)
    )
    rid = runner.submit(cfg)
    store.save_note(
        rid,
        "lesson_groups",
        {
            "source": source,
            "groups": [sorted(g) for g in groups],
            "together_run": ids.together,
        },
    )
    store.save_note(ids.together, "lesson_groups_run", {"run_id": rid})
    return rid


def maybe_start_groups(runner: Runner, store: Store, ids: LessonIds) -> int | None:
    """Submit the grouped run once the together run has ended (idempotent): TAG's selection
    from its mean affinity over all steps (and replicas).

    Falls back to the planted clusters when the together run ended without any matrix
    (failed or cancelled early), so the lesson still has its three approaches.
    """
    if ids.groups is not None:
        return ids.groups
    known = store.get_note(ids.together, "lesson_groups_run")
    if known and known.get("run_id") is not None:  # another session already started it
        ids.groups = int(known["run_id"])
        return ids.groups
    info = store.get_run(ids.together)
    cfg = RunConfig.from_dict(info.config)
    knobs = dict(cfg.knobs)
    steps, tasks, A = store.affinity_steps(ids.together, "lookahead")
    n = len(steps)
    k = int(knobs.get("clusters", 2))
    if ready_to_select(info, n):
        groups, _ = select_groups(np.nanmean(A, axis=0), tasks, k)
        source = GROUP_SOURCES["tag"]
    elif info.status in ("failed", "cancelled", "interrupted"):
        groups = planted_groups(knobs)
        source = "the planted clusters (the all-together run stopped early)"
    else:
        return None
    ids.groups = _submit_groups(
        runner, store, ids, knobs, groups, cfg.train.steps, cfg.train.seed, source
    )
    return ids.groups


def groups_of(store: Store, run_id: int | None) -> Grouping | None:
    """The groups a grouped run trains (from its config)."""
    if run_id is None:
        return None
    try:
        cfg = store.get_run(run_id).config
    except LabError:
        return None
    groups = (cfg.get("train") or {}).get("groups")
    return canonical_grouping(groups) if groups else None
