"""Per-step tracker tables: one row per step, one column per affinity cell.

This is how experiment trackers export what a run logged, and how hand-rolled loggers write it:

- W&B ``run.history()`` to CSV/Parquet: ``_step`` plus ``affinity/<source>/<target>`` columns,
  NaN where a step did not log the key;
- Lightning ``CSVLogger`` ``metrics.csv``: ``step`` (and ``epoch``), sparse rows;
- Ray Tune ``progress.csv`` / ``result.json``: ``training_iteration`` and flattened keys
  (the ``step`` column is used when the trial logged one);
- any table with a ``step`` column whose cell columns follow the lab's tag conventions
  (:mod:`mtl_core.runfile.tb_conventions`) or the user's ``--tag-pattern`` (e.g.
  ``{source}->{target}``).

An empty cell (NaN) in such a table means "not logged at this step" and is skipped, not counted
as unmeasured; every other column is ignored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile import tb_conventions as conv
from mtl_core.runfile.cells import to_numbers
from mtl_core.runfile.coded import as_text, remember, remember_factors, text_columns
from mtl_core.runfile.messages import Locate
from mtl_core.runfile.percent import value_columns
from mtl_core.runfile.report import ReadOptions, note, pattern_used
from mtl_core.runfile.wandb_panel import panel_columns

_ROW: Locate = lambda i: f"row {i + 1}"  # noqa: E731
#: Step columns, in order of preference (the tracker's own step first).
STEP_COLUMNS = ("step", "_step", "global_step", "trainer/global_step", "training_iteration")
#: Run columns of a runs table (one row per run), in order of preference: MLflow's
#: ``search_runs()``, W&B's runs-table export, Ray Tune's trial tables.
RUN_COLUMNS = ("tags.mlflow.runName", "Name", "run_name", "run_id", "trial_id")
#: MLflow's ``search_runs()`` prefixes metric columns with this.
MLFLOW_METRIC = "metrics."


def read_step_columns(
    cols: dict[str, np.ndarray], name: str, options: ReadOptions, locate: Locate = _ROW
) -> dict[str, np.ndarray] | None:
    """A per-step wide table -> long columns ``step, source, target, affinity, measure``.

    Parameters
    ----------
    cols : the parsed table, ``{column: values}``.
    name : the file's name for messages.
    options : ``tag_pattern`` (cell columns named by the user's pattern) and ``measure``.
    locate : names row ``i`` for messages (``row 3 (line 4)``).

    Returns
    -------
    The long columns (one row per logged cell, row-major by step), or None when the table has
    no step column or no column names an affinity cell (then it is some other layout).

    Raises
    ------
    LabError
        A tag pattern that matches no column although the table has a step column, a step
        that is not a whole number, or a cell that is text other than a number or a
        missing-value mark (``NA``, ``#N/A``: not logged), named by row and column.
    """
    keyed = read_key_rows(cols, name, options)
    if keyed is not None:
        return keyed
    pattern = conv.compile_pattern(options.tag_pattern) if options.tag_pattern else None
    panel = panel_columns(cols, name, lambda k: _cell(k, pattern, options) is not None, locate)
    if panel is not None:  # W&B's chart "Export CSV": runs stacked, prefixes stripped
        cols, locate = panel
    step_col = next((c for c in STEP_COLUMNS if c in cols), None)
    run_col = next((c for c in RUN_COLUMNS if c in cols), None)
    if run_col is not None:  # run names are text; steps and cells are read as numbers
        cols = {**cols, run_col: as_text(cols[run_col])}
    if run_col is not None and step_col is not None and len(set(cols[run_col].tolist())) < 2:
        run_col = None  # one trial's own id (Ray Tune's progress.csv): a single run
    if step_col is None and run_col is None:
        return None
    pattern = conv.compile_pattern(options.tag_pattern) if options.tag_pattern else None
    cells: list[tuple[str, conv.Cell]] = []
    for col in cols:
        cell = _cell(col.removeprefix(MLFLOW_METRIC), pattern, options)
        if cell is not None:
            cells.append((col, cell))
    cells = _lightning_suffixes(cells, name)
    if not cells:
        beside = step_col or run_col
        if pattern is not None and len(cols) > 2:
            raise LabError(
                f"{name}: the tag pattern {options.tag_pattern!r} matches none of the columns "
                f"beside {beside!r} (e.g. {', '.join(repr(c) for c in list(cols)[:3])})"
            )
        if step_col not in (None, "step") and "source" not in cols and "" not in cols:
            raise LabError(
                f"{name}: a tracker table (column {step_col!r}) but no column names an affinity "
                f"cell (affinity/<source>/<target>, or give a tag pattern such as "
                f"'{{source}}->{{target}}'); columns: {_some(cols)}"
            )
        return None
    if pattern is not None:
        pattern_used()
    n_rows = len(next(iter(cols.values())))
    if step_col is None:
        steps = np.zeros(n_rows)
        note(
            f"{name}: read as a runs table (one row per run, runs from {run_col!r}, "
            f"{len(cells)} affinity columns): each run's last values, at step 0"
        )
    else:
        steps = to_numbers(cols[step_col], step_col, name, locate, allow_empty=True)
    if run_col is not None:
        runs = np.array([str(v) for v in cols[run_col]], dtype=object)
    # the cell columns as one (rows, cells) block; logged values in reading order (row by
    # row, cells in column order) are its non-NaN entries in C order
    block = np.empty((n_rows, len(cells)), dtype=np.float64)
    cell_cols = value_columns(cols, [col for col, _ in cells], name, locate)  # (or percent)
    for k, values in enumerate(cell_cols):
        block[:, k] = values
    logged = ~np.isnan(block)
    stepped = ~np.isnan(steps)
    unstepped = int(logged[~stepped].sum())
    if unstepped:
        note(f"{name}: {unstepped} logged values in rows with an empty {step_col!r} left out")
    logged &= stepped[:, None]
    rows, per_cell = np.nonzero(logged)
    out: dict[str, np.ndarray] = {"affinity": block[logged]}  # (C order, as the nonzero)
    # names as codes into the cells (and the runs): one str per cell, not per value
    for key in ("source", "target", "measure"):
        out[key] = _names([getattr(cell, key) for _, cell in cells], per_cell)
    if run_col is not None:
        out["run"] = _names(list(runs), rows)
    whole = steps[logged.any(axis=1)]  # the steps of rows that logged a value
    if whole.size and not np.all(whole == np.round(whole)):
        raise LabError(f"{name}: column {step_col!r} holds steps that are not whole numbers")
    # steps factorized once per table row, so the duplicate check hashes no value
    step_codes, distinct = pd.factorize(steps)
    out["step"] = remember_factors(
        steps[rows].astype(np.int64), step_codes.astype(np.int64)[rows], len(distinct)
    )
    how = "your tag pattern" if pattern is not None else "the lab's affinity/<source>/<target>"
    if step_col is None:
        return out  # noted above: a runs table
    runs_from = f", runs from {run_col!r}" if run_col is not None else ""
    note(
        f"{name}: read as a per-step table: {len(cells)} cell columns named by {how}, "
        f"steps from {step_col!r}{runs_from}; empty cells = not logged at that step"
    )
    return out


def _names(names: list, codes: np.ndarray) -> np.ndarray:
    """``names[codes]`` as an object array (rows,), coded (:mod:`mtl_core.runfile.coded`)
    when every name is text."""
    uniques = np.array(names, dtype=object)
    if not all(isinstance(v, str) for v in names):
        return uniques[codes]
    import pyarrow as pa

    # each name once (a measure repeats for every cell): one text per distinct name
    per, distinct = pd.factorize(uniques)
    distinct = np.asarray(distinct, dtype=object)
    rows = per[codes] if len(distinct) < len(uniques) else codes
    return remember(distinct, rows, pa.array(distinct.tolist(), type=pa.string()))


_SUFFIXES = ("_step", "_epoch")


def _lightning_suffixes(
    cells: list[tuple[str, conv.Cell]], name: str
) -> list[tuple[str, conv.Cell]]:
    """Lightning's ``self.log(key, v, on_step=True, on_epoch=True)`` writes ``key_step`` and
    ``key_epoch`` columns: when every cell column ends so, the per-step ones are read (the
    epoch means left out) under the key's own target name."""
    if not cells or not all(c.target.endswith(_SUFFIXES) for _, c in cells):
        return cells
    kinds = {"_step" if c.target.endswith("_step") else "_epoch" for _, c in cells}
    keep = "_step" if "_step" in kinds else "_epoch"
    out = [
        (col, conv.Cell(c.measure, c.source, c.target[: -len(keep)]))
        for col, c in cells
        if c.target.endswith(keep)
    ]
    dropped = len(cells) - len(out)
    note(
        f"{name}: Lightning's '{keep}' columns read (suffix dropped from the task name)"
        + (f"; {dropped} '_epoch' mean columns left out" if dropped else "")
    )
    return out


def _some(cols: dict[str, np.ndarray]) -> str:
    shown = ", ".join(repr(c) for c in list(cols)[:6])
    return shown + (f", ... ({len(cols)} in all)" if len(cols) > 6 else "")


def read_key_rows(
    cols: dict[str, np.ndarray], name: str, options: ReadOptions
) -> dict[str, np.ndarray] | None:
    """A metric-history table, one row per logged value with the key in a column (MLflow's
    ``get_metric_history`` / ``search_runs``-style export: ``key, value, timestamp, step``,
    optionally ``run_id``) -> long columns; None when the table has no ``key`` and ``value``
    columns.

    Keys are matched as TensorBoard tags are (the lab's conventions or ``--tag-pattern``);
    other keys are ignored and counted. ``timestamp`` (ms since the epoch) becomes
    ``wall_time``; without a ``step`` column every value is at step 0.

    Raises
    ------
    LabError
        No key names an affinity cell.
    """
    if not {"key", "value"} <= set(cols) or "source" in cols:
        return None
    cols = text_columns(cols)  # read as text throughout (the values are converted below)
    pattern = conv.compile_pattern(options.tag_pattern) if options.tag_pattern else None
    keys = np.array([str(k) for k in cols["key"]], dtype=object)
    uniq = {k: _cell(k, pattern, options) for k in dict.fromkeys(keys.tolist())}
    found = [k for k, c in uniq.items() if c is not None]
    if not found:
        raise LabError(
            f"{name}: a metric history (columns 'key', 'value') but no key names an affinity "
            f"cell (affinity/<source>/<target>, or give a tag pattern); keys: "
            f"{', '.join(repr(k) for k in list(uniq)[:6])}"
        )
    if pattern is not None:
        pattern_used()
    rows = np.flatnonzero(np.isin(keys, found))
    out = {
        "step": cols["step"][rows] if "step" in cols else np.zeros(rows.size, dtype=np.int64),
        "source": np.array([uniq[k].source for k in keys[rows]], dtype=object),
        "target": np.array([uniq[k].target for k in keys[rows]], dtype=object),
        "measure": np.array([uniq[k].measure for k in keys[rows]], dtype=object),
        "affinity": cols["value"][rows],
    }
    if "timestamp" in cols:
        ts = pd.to_numeric(pd.Series(cols["timestamp"][rows]), errors="coerce").to_numpy(float)
        out["wall_time"] = ts / 1000.0
    run_col = next((c for c in ("run_id", "run", "run_name") if c in cols), None)
    if run_col is not None and len(set(cols[run_col][rows].tolist())) > 1:
        out["run"] = np.array([str(r) for r in cols[run_col][rows]], dtype=object)
    ignored = len(uniq) - len(found)
    note(
        f"{name}: read as a metric history (key, value, step): {len(found)} affinity keys"
        + (f", {ignored} other keys ignored" if ignored else "")
        + ("" if "step" in cols else "; no 'step' column: every value at step 0")
    )
    return out


def _cell(col: str, pattern: object, options: ReadOptions) -> conv.Cell | None:
    if pattern is not None:
        m = pattern.fullmatch(col)  # type: ignore[attr-defined]
        if m is None:
            return None
        g = m.groupdict()
        measure = g.get("measure") or options.measure or conv.DEFAULT_MEASURE
        return conv.Cell(measure, g["source"], g["target"])
    if col.startswith("affinity.") and "/" not in col and col.count(".") in (2, 3):
        col = col.replace(".", "/")  # W&B flattens logged dicts with dots: affinity.seg.depth
    cell = conv.lab_cell(col)
    if cell is not None and options.measure and col.count("/") == 2:
        return conv.Cell(options.measure, cell.source, cell.target)
    return cell
