"""A validated run file in memory: :class:`ParsedRun`, and how the readers assemble one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile.bounds import check_runs_count
from mtl_core.runfile.long import first_seen, measure_matrices
from mtl_core.runfile.report import JSON_OBJECT_NOTE, left_out_text
from mtl_core.runfile.schema import AFFINITY_FRAME, GROUPING_FRAME, METRIC_FRAME, empty_frame
from mtl_core.runfile.units import canonical_measure

#: ``meta.json`` keys that ``ParsedRun`` holds in fields of their own, not in ``meta``.
_FORMAT_KEYS = ("format", "format_version", "tasks", "task_types")


@dataclass
class ParsedRun:
    """A validated run file (one or several runs), ready for ``Store.import_parsed``.

    Attributes
    ----------
    tasks : ordered task names (from ``meta.json`` or first appearance in the tables).
    task_types : task -> type (e.g. ``"regression"``, ``"binary"``), possibly partial.
    affinity : columns ``run, step, measure, source, target, affinity, wall_time``
        (``affinity`` of source onto target: ``A[i, j]``, rows = sources; ``wall_time`` in
        seconds since the epoch); ``run`` is ``""`` when the file has no run column,
        ``wall_time`` NaN when not logged.
    metrics : columns ``run, step, task, split, metric, value``.
    groupings : columns ``run, step, groups`` (``groups`` a tuple of frozensets).
    meta : the metadata object (``config``, ``notes``, ``name``, and any other keys).
    runs : distinct run labels in file order (``[""]`` for a single-run file).
    tasks_declared : whether ``tasks`` came from the metadata (then every run uses it).
    notes : what the reader did that the user should know (a detected encoding, made-up
        task names, a transposed matrix, the TensorBoard convention recognised), one
        sentence each.
    left_out : how many non-finite (NaN, inf, empty) affinity cells were left out as
        unmeasured; ``first_left_out`` says where the first was (file, row/tag, column/step).
    measure_assumed : the file names no measure and none was given: ``lookahead`` was
        assumed (the Upload page asks).
    is_matrix : the affinity came as a matrix (rows/columns), so which way its rows run
        matters.
    json_object : the matrix came as a JSON object of objects, whose outer keys are targets
        (pandas' default) unless rows were declared targets (then sources: ``orient="index"``).
    """

    tasks: list[str]
    task_types: dict[str, str] = field(default_factory=dict)
    affinity: pd.DataFrame = field(default_factory=lambda: empty_frame(AFFINITY_FRAME))
    metrics: pd.DataFrame = field(default_factory=lambda: empty_frame(METRIC_FRAME))
    groupings: pd.DataFrame = field(default_factory=lambda: empty_frame(GROUPING_FRAME))
    meta: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=lambda: [""])
    tasks_declared: bool = False
    notes: list[str] = field(default_factory=list)
    left_out: int = 0
    first_left_out: str | None = None
    measure_assumed: bool = False
    is_matrix: bool = False
    json_object: bool = False

    def warnings(self) -> list[str]:
        """What the CLI prints as ``warning:`` lines and the preview shows: the left-out
        cells (one sentence), then the notes."""
        out = [left_out_text(self.left_out, self.first_left_out)] if self.left_out else []
        return out + list(self.notes)

    def orientation_note(self) -> str | None:
        """How a JSON object of objects was read (which keys are sources, one cell shown,
        the flip), or None for any other file: the CLI repeats it in its import line and
        the Upload page shows it beside its flip toggle."""
        if not self.json_object:
            return None
        return next((n for n in self.notes if n.startswith(JSON_OBJECT_NOTE)), None)

    def with_measure(self, measure: str) -> ParsedRun:
        """A copy whose assumed measure is ``measure`` (the Upload page's choice); a file
        that names its measures is returned unchanged."""
        if not self.measure_assumed:
            return self
        aff = self.affinity.copy()
        aff["measure"] = canonical_measure(measure)
        return replace(self, affinity=aff, measure_assumed=False)

    def run_tasks(self, run: str) -> list[str]:
        """Task order of one run: the declared task list, else the tasks that run mentions."""
        if self.tasks_declared or self.runs == [run]:
            return list(self.tasks)
        a = self.affinity[self.affinity["run"] == run]
        m = self.metrics[self.metrics["run"] == run]
        return first_seen(a["source"], a["target"], m["task"])

    def run_affinity(self, run: str) -> pd.DataFrame:
        """The affinity rows of one run (all measures)."""
        if self.runs == [run]:  # every row (a shallow copy: copy-on-write keeps it apart)
            return self.affinity.copy(deep=False)
        return self.affinity[self.affinity["run"] == run]

    def matrices(self, run: str, measure: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        """``(steps (S,), tasks, A (S, n, n))`` of one run and measure; ``A[s, i, j]`` =
        source i -> target j at ``steps[s]``, NaN where not logged.

        Raises ``LabError`` when the run did not log ``measure``.
        """
        where = "the file" if run == "" else f"run {run!r}"
        return measure_matrices(self.run_affinity(run), measure, self.run_tasks(run), where=where)

    def measures(self, run: str) -> list[str]:
        """Measures logged for one run, in file order."""
        a = self.run_affinity(run)
        return [str(m) for m in pd.unique(a["measure"])]  # hashed by Arrow for text


def assemble(
    aff: pd.DataFrame,
    metrics: pd.DataFrame,
    groupings: pd.DataFrame,
    meta: dict[str, Any],
    tasks: list[str],
) -> ParsedRun:
    """A ParsedRun from validated parts (frames in the ``*_FRAME`` columns, ``meta.json``'s
    object or ``{}``, the task order).

    Raises
    ------
    LabError
        Some rows name a run and others do not; more runs than
        :func:`~mtl_core.runfile.bounds.max_runs`.
    """
    runs = first_seen(aff["run"], metrics["run"], groupings["run"])
    check_runs_count(len(runs), "")  # before anything is done per run
    if "" in runs and len(runs) > 1:
        raise LabError("some rows name a run and others do not; fill the run column everywhere")
    declared = bool(meta.get("tasks"))
    types = dict(meta.get("task_types") or {})
    meta = {k: v for k, v in meta.items() if k not in _FORMAT_KEYS}
    return ParsedRun(
        tasks=list(tasks),
        task_types=types,
        affinity=aff.reset_index(drop=True),
        metrics=metrics.reset_index(drop=True),
        groupings=groupings.reset_index(drop=True),
        meta=meta,
        runs=runs or [""],
        tasks_declared=declared,
    )


def affinity_only(aff: pd.DataFrame, tasks: list[str]) -> ParsedRun:
    """A ParsedRun of an affinity table alone (no metrics, groupings or metadata)."""
    return assemble(aff, empty_frame(METRIC_FRAME), empty_frame(GROUPING_FRAME), {}, tasks)
