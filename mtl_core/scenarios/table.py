"""The ``csv`` builder: the user's own table with several target columns.

The table comes from an upload (knob ``table``: a content reference, see
:mod:`mtl_core.scenarios.table_files`) or, on the command line, a file path (knob ``path``;
a shared app allows no server path, or only inside a configured data folder, see
:func:`mtl_core.accounts.quota.check_config`). :func:`plan_table` decides, before any training, what
the run will use: the targets and their task types, the feature columns, and the columns left
out with the reason (an index-like column is reported, never silently a feature).

Messages never quote the file's cells or header (a run's error is shown to everyone who sees
the run, and a server file's first line must not leak): they name what the user typed and
counts. :class:`MissingColumns` carries the table's columns for the person who supplied it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.scenarios.dataset import Dataset, split_standardize
from mtl_core.scenarios.table_read import Table, index_reason, read_table_bytes

#: Fewest rows with at least one target value that a run trains on.
MIN_ROWS = 20


class MissingColumns(LabError):
    """Named columns are not in the table; ``columns`` holds the table's own (show them only
    to whoever supplied the table)."""

    def __init__(self, message: str, columns: Sequence[str]) -> None:
        super().__init__(message)
        self.columns = tuple(columns)


@dataclass(frozen=True)
class TablePlan:
    """What a run on a table will use.

    Attributes
    ----------
    targets, task_types : the tasks, in order, each ``"binary"`` or ``"regression"``.
    features : the input columns, in file order.
    left_out : ``(column, reason)`` for every column neither a target nor a feature.
    rows : rows with at least one target value (the rows trained, validated and tested on).
    notes : what the reader said (encoding, decimal commas, ...).
    """

    targets: tuple[str, ...]
    task_types: tuple[str, ...]
    features: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...]
    rows: int
    notes: tuple[str, ...] = ()

    def info(self) -> dict[str, Any]:
        """The plan as plain data (a run's dataset ``info``)."""
        return {
            "features": list(self.features),
            "left_out": {c: r for c, r in self.left_out},
            "rows": self.rows,
        }


def plan_table(
    table: Table,
    targets: Sequence[str],
    features: Sequence[str] = (),
    task_types: Sequence[str] = (),
    label: str = "the table",
) -> TablePlan:
    """Check ``targets`` (and optional explicit ``features``, ``task_types`` overrides such as
    ``"col=binary"``) against ``table``; the :class:`TablePlan` of the run.

    Raises
    ------
    LabError
        Fewer than two targets, a target or feature not in the table (:class:`MissingColumns`),
        a constant target (named), a non-numeric feature or regression target, a binary
        target without exactly two values, no feature left, or fewer than ``MIN_ROWS`` rows.
    """
    targets = [str(t) for t in targets]
    if len(set(targets)) < 2:
        raise LabError("csv scenario: multi-task learning needs at least two distinct targets")
    _check_present(table, targets, "target", label)
    overrides = _overrides(task_types, targets)
    feats, left_out = _features(table, targets, [str(f) for f in features], label)
    types = [_task_type(table, t, overrides.get(t)) for t in targets]
    Y = target_matrix(table, targets, types)
    rows = int(np.isfinite(Y).any(axis=1).sum())
    if rows < MIN_ROWS:
        raise LabError(
            f"csv scenario: {label} has {rows} rows with a target value; at least {MIN_ROWS} needed"
        )
    return TablePlan(tuple(targets), tuple(types), tuple(feats), tuple(left_out), rows, table.notes)


def _check_present(table: Table, names: list[str], what: str, label: str) -> None:
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise MissingColumns(
            f"csv scenario: {what} column(s) {', '.join(map(repr, missing))} not in {label} "
            f"(it has {len(table.columns)} columns; names are case-sensitive)",
            table.columns,
        )


def _overrides(task_types: Sequence[str], targets: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in task_types or []:
        col, _, kind = str(item).partition("=")
        if col not in targets or kind not in ("binary", "regression"):
            raise LabError(
                f"csv scenario: bad task_types entry {item!r}; "
                "use target=binary or target=regression"
            )
        out[col] = kind
    return out


def _features(
    table: Table, targets: list[str], explicit: list[str], label: str
) -> tuple[list[str], list[tuple[str, str]]]:
    """The feature columns and the left-out ones with their reasons."""
    if explicit:
        _check_present(table, explicit, "feature", label)
        text = [f for f in explicit if f not in table.numeric]
        if text:
            raise LabError(
                f"csv scenario: feature column(s) {', '.join(map(repr, text))} are not numeric"
            )
        if set(explicit) & set(targets):
            raise LabError("csv scenario: a column cannot be both a feature and a target")
        rest = [c for c in table.columns if c not in explicit and c not in targets]
        return explicit, [(c, "not in the features you listed") for c in rest]
    feats, left_out = [], []
    for c in table.columns:
        if c in targets:
            continue
        values = table.numeric.get(c)
        reason = index_reason(c, values)
        if reason is None and values is None:
            reason = "not numbers"
        elif reason is None and _distinct(values) <= 1:
            reason = "one value in every row" if _distinct(values) else "no values"
        if reason is None:
            feats.append(c)
        else:
            left_out.append((c, reason))
    if not feats:
        raise LabError(
            f"csv scenario: {label} has no numeric feature column besides the targets"
            + (f" ({len(left_out)} column(s) left out, e.g. as a row index)" if left_out else "")
        )
    return feats, left_out


def _distinct(values: np.ndarray) -> int:
    v = values[np.isfinite(values)]
    return len(np.unique(v))


def _task_type(table: Table, target: str, override: str | None) -> str:
    values = _target_values(table, target)
    if len(values) == 0:
        raise LabError(f"csv scenario: target {target!r} has no values")
    if len(values) == 1:
        raise LabError(
            f"csv scenario: target {target!r} has the same value in every row: there is "
            "nothing to learn; pick another target"
        )
    kind = override or ("binary" if len(values) == 2 else "regression")
    if kind == "binary" and len(values) != 2:
        raise LabError(
            f"csv scenario: target {target!r} has {len(values)} distinct values; "
            "binary needs exactly two"
        )
    if kind == "regression" and target not in table.numeric:
        raise LabError(
            f"csv scenario: target {target!r} is not numeric and has {len(values)} classes; "
            "only regression and binary targets are supported"
        )
    return kind


def _target_values(table: Table, target: str) -> list:
    """The distinct non-missing values of a target column."""
    from mtl_core.scenarios.table_read import MISSING

    if target in table.numeric:
        return list(np.unique(table.numeric[target][np.isfinite(table.numeric[target])]))
    col = table.text[target]
    return sorted({str(v) for v in col if v is not None and str(v).strip().lower() not in MISSING})


def target_matrix(table: Table, targets: list[str], types: list[str]) -> np.ndarray:
    """``Y``: (rows, len(targets)) float64, NaN where a label is missing; binary targets
    hold 0 for their smaller value (as text) and 1 for the other."""
    cols = []
    for t, kind in zip(targets, types):
        values = _target_values(table, t)
        if t in table.numeric:
            y = table.numeric[t].copy()
            if kind == "binary":
                y = np.where(np.isfinite(y), (y != values[0]).astype(np.float64), np.nan)
        else:
            lo = values[0]
            text = np.array([str(v) for v in table.text[t]], dtype=object)
            known = np.isin(text, values)
            y = np.where(known, (text != lo).astype(np.float64), np.nan)
        cols.append(y)
    return np.stack(cols, axis=1)


def read_source(k: dict[str, Any], *, detail: bool = False) -> tuple[Table, str]:
    """The table a run's knobs name (``table`` upload reference, or ``path`` on the server)
    and a label for messages. ``detail``: keep the reader's own messages (see
    :func:`~mtl_core.scenarios.table_read.read_table_bytes`)."""
    from mtl_core.scenarios import table_files

    ref, path = str(k.get("table") or ""), str(k.get("path") or "")
    if ref and path:
        raise LabError("csv scenario: give a table or a path, not both")
    if ref:
        data = table_files.table_bytes(ref)
        return read_table_bytes(data, ref, detail=detail), "the uploaded table"
    if not path:
        raise LabError(
            "csv scenario needs a table: upload one on the Train page, or on the command "
            "line --set path=FILE"
        )
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError:
        raise LabError(
            f"csv scenario: cannot read {path} (no such file, or not readable)"
        ) from None
    return read_table_bytes(data, p.name, detail=detail), p.name


def build(k: dict[str, Any]) -> Dataset:
    """The dataset for resolved knobs ``k`` (``table`` or ``path``, ``targets``, optional
    ``features`` and ``task_types``). Raises LabError naming what the user typed; never
    the file's contents. ``info`` holds the plan (:meth:`TablePlan.info`)."""
    table, label = read_source(k)
    plan = plan_table(table, k["targets"], k.get("features") or (), k.get("task_types"), label)
    targets, types = list(plan.targets), list(plan.task_types)
    X = np.stack([table.numeric[f] for f in plan.features], axis=1)
    Y = target_matrix(table, targets, types)
    keep = np.isfinite(Y).any(axis=1)
    arrays = split_standardize(X[keep], Y[keep], types, int(k["data_seed"]))
    return Dataset(targets, types, *arrays, input_shape=(len(plan.features),), info=plan.info())
