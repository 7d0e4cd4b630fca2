"""The long-form tables checked into ``ParsedRun`` frames: affinity and metrics.

Column names are matched ignoring case and surrounding spaces; a missing column, or an extra one
that looks like a misspelt known name, is reported with the fix. Then every column is converted
cell by cell (:mod:`mtl_core.runfile.cells`), tasks are checked against ``meta.json``'s list
when there is one, and a cell given twice is refused with the place of its first copy.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile.cells import drop_blank_run, to_labels, to_numbers, to_steps
from mtl_core.runfile.coded import constant, factor_parts, frame_text
from mtl_core.runfile.messages import WIDE_NOTE, Locate, close, fail
from mtl_core.runfile.percent import value_columns
from mtl_core.runfile.report import left_out, measure_assumed, note
from mtl_core.runfile.schema import (
    AFFINITY_FRAME,
    AFFINITY_OPTIONAL,
    AFFINITY_REQUIRED,
    DEFAULT_MEASURE,
    METRIC_FRAME,
    METRIC_OPTIONAL,
    METRIC_REQUIRED,
)

Columns = dict[str, np.ndarray]
#: Other names of the step column, as training loops log them (taken only when no ``step``).
STEP_ALIASES = ("epoch", "iteration", "global_step")


def known_names(cols: Columns, known: tuple[str, ...], name: str) -> Columns:
    """Rename columns that are a known name up to case and surrounding spaces (``" Step"`` ->
    ``step``; ``epoch``, ``iteration`` or ``global_step`` -> ``step`` when there is no
    ``step``); every other column (a wide matrix's task names) keeps its name as written.

    Raises ``LabError`` when two columns are the same known name (``Step`` and ``step``).
    """
    out: Columns = {}
    seen: dict[str, str] = {}
    lows = {c.strip().lower() for c in cols}
    for c, v in cols.items():
        low = c.strip().lower()
        key = low if low in known else c
        if low in STEP_ALIASES and "step" in known and "step" not in lows:
            key = "step"
            note(f"column {c!r} read as the step")
        if key in out:
            raise LabError(f"{name}: columns {seen[key]!r} and {c!r} are both {key!r}")
        out[key] = v
        seen[key] = c
    return out


def require_columns(
    cols: Columns,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    name: str,
    note: str = "",
) -> None:
    """Refuse missing or misnamed columns, suggesting a present column that is close.

    Raises ``LabError`` for the first missing required column (``note`` appended), or for an
    extra column that looks like a misspelt optional one.
    """
    present = list(cols)
    known = set(required) | set(optional)
    unknown = [c for c in present if c not in known]
    for want in required:
        if want in cols:
            continue
        near = close(want, unknown)
        hint = f"; found {near!r} — rename it to {want!r}" if near else ""
        raise LabError(
            f"{name}: missing column {want!r}{hint} (required: {', '.join(required)}; "
            f"found: {', '.join(map(repr, present)) or 'none'}){note}"
        )
    for c in unknown:  # an extra column is fine unless it looks like a misspelt optional one
        near = close(c, [o for o in optional if o not in cols])
        if near:
            raise LabError(f"{name}: unknown column {c!r}; did you mean {near!r}?")


def validate_affinity(
    cols: Columns,
    locate: Locate,
    name: str,
    tasks: list[str] | None,
    measure: str | None = None,
) -> pd.DataFrame:
    """A long-form affinity table -> a frame in ``AFFINITY_FRAME`` columns.

    Parameters
    ----------
    cols : ``{column: values}`` with known names already matched (:func:`known_names`).
    locate, name : row and file naming for messages.
    tasks : ``meta.json``'s task list, if any; every source and target must be in it.
    measure : the measure of a table without a ``measure`` column (None: ``lookahead``,
        noted in the read's report as assumed).

    Non-finite (NaN, inf, empty) affinity cells are unmeasured: left out and reported
    (:func:`drop_unmeasured`).

    Raises
    ------
    LabError
        A missing column, a bad cell (step, name, text where a number belongs, infinite wall
        time), an unknown task, a cell given twice for one (run, step, measure, source,
        target), or no finite affinity at all.
    """
    require_columns(cols, AFFINITY_REQUIRED, AFFINITY_OPTIONAL, name, note=WIDE_NOTE)
    cols = drop_blank_run(cols)
    n = len(cols["step"])
    step = to_steps(cols["step"], name, locate)  # checked in this order: the first error wins
    src = to_labels(cols["source"], "source", name, locate)
    tgt = to_labels(cols["target"], "target", name, locate)
    (aff,) = value_columns(cols, ["affinity"], name, locate)  # (percent text read too)
    if "measure" not in cols and measure is None:
        measure_assumed()
    measure_col = _optional_labels(cols, "measure", measure or DEFAULT_MEASURE, name, locate)
    run = _optional_labels(cols, "run", "", name, locate)
    wall = (
        wall_times(cols["wall_time"], name, locate) if "wall_time" in cols else np.full(n, np.nan)
    )
    if np.isinf(wall).any():
        raise fail(name, locate, "wall_time", np.isinf(wall), lambda i: "is infinite")
    df = pd.DataFrame(
        {
            "run": frame_text(run),
            "step": step,
            "measure": frame_text(measure_col),
            "source": frame_text(src),
            "target": frame_text(tgt),
            "affinity": aff,
            "wall_time": wall,
        },
        columns=AFFINITY_FRAME,
    )
    for col in ("source", "target"):
        _check_tasks(df[col], col, tasks, name, locate)
    _refuse_duplicate_cells(df, name, locate, [run, step, measure_col, src, tgt])
    return drop_unmeasured(df, locate)


def drop_unmeasured(df: pd.DataFrame, locate: Locate) -> pd.DataFrame:
    """The one rule for non-finite cells: a NaN, infinite or empty affinity is unmeasured.
    Its row is left out and counted (with the place of the first) in the read's report;
    when nothing finite is left the file is refused.

    Raises ``LabError`` (without the file's name; the caller's prefix adds it) when no
    cell is finite.
    """
    aff = df["affinity"].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(aff)
    if not bad.any():
        return df
    if bad.all():
        raise LabError(
            f"no affinity cell is a finite number ({len(aff)} cells, all NaN, inf or empty)"
        )
    first = int(np.flatnonzero(bad)[0])
    left_out(int(bad.sum()), locate(first))
    return df[~bad]


def validate_metrics(
    cols: Columns, locate: Locate, name: str, tasks: list[str] | None
) -> pd.DataFrame:
    """A long-form metrics table -> a frame in ``METRIC_FRAME`` columns.

    Values may be NaN or infinite (a diverging loss, an undefined accuracy).

    Raises
    ------
    LabError
        A missing column, a bad cell, an unknown task, or a metric given twice for one
        (run, step, task, split, metric).
    """
    cols = known_names(cols, (*METRIC_REQUIRED, *METRIC_OPTIONAL), name)
    require_columns(cols, METRIC_REQUIRED, METRIC_OPTIONAL, name)
    cols = drop_blank_run(cols)
    df = pd.DataFrame(
        {
            "run": _optional_labels(cols, "run", "", name, locate),
            "step": to_steps(cols["step"], name, locate),
            "task": to_labels(cols["task"], "task", name, locate),
            "split": to_labels(cols["split"], "split", name, locate),
            "metric": to_labels(cols["metric"], "metric", name, locate),
            "value": to_numbers(cols["value"], "value", name, locate, allow_empty=True),
        },
        columns=METRIC_FRAME,
    )
    _check_tasks(df["task"], "task", tasks, name, locate)
    key = ["run", "step", "task", "split", "metric"]
    dup = df.duplicated(key, keep="first").to_numpy()
    if dup.any():
        raise fail(
            name,
            locate,
            "value",
            dup,
            lambda i: (
                f"duplicated metric (step {df['step'].iat[i]}, task {df['task'].iat[i]!r}, "
                f"{df['split'].iat[i]}/{df['metric'].iat[i]})"
            ),
        )
    return df


def _optional_labels(
    cols: Columns, col: str, default: str, name: str, locate: Locate
) -> np.ndarray:
    """An optional name column (``run``, ``measure``), or ``default`` on every row."""
    if col in cols:
        return to_labels(cols[col], col, name, locate)
    return constant(default, len(next(iter(cols.values()))))


def _check_tasks(
    values: pd.Series, col: str, tasks: list[str] | None, name: str, locate: Locate
) -> None:
    """Refuse a task outside ``meta.json``'s task list (no list: anything goes)."""
    if tasks is None:
        return
    bad = ~values.isin(set(tasks)).to_numpy()
    if bad.any():
        vals = values.to_numpy()
        raise fail(
            name,
            locate,
            col,
            bad,
            lambda i: f"task {vals[i]!r} is not in meta.json's task list ({', '.join(tasks)})",
        )


#: Up to this many possible keys (or 16 per row), the duplicate check marks keys in a bool
#: array (16 MB at most beside a 1M-row table) rather than hashing them.
_MARKED_KEYS = 1 << 24


def _all_distinct(gid: np.ndarray, radix: int) -> bool:
    """Whether the keys ``gid`` (rows,) int64 in ``[0, radix)`` are all distinct: rising
    keys (a log written in order) at a glance; few possible keys by marking each in a bool
    array; else by hashing."""
    if len(gid) < 2 or bool(np.all(gid[1:] > gid[:-1])):
        return True
    if radix <= max(_MARKED_KEYS, 16 * len(gid)):
        seen = np.zeros(radix, dtype=bool)
        seen[gid] = True
        return int(np.count_nonzero(seen)) == len(gid)
    return bool(pd.Index(gid).is_unique)


def _refuse_duplicate_cells(
    df: pd.DataFrame, name: str, locate: Locate, columns: list[np.ndarray] | None = None
) -> None:
    """One value per (run, step, measure, source, target); the message names the first copy.

    ``columns``: the frame's key columns as the converters returned them, in that order
    (coded ones are factorized on their distinct texts: :func:`factor_codes`); None reads
    them from ``df``.
    """
    key = ["run", "step", "measure", "source", "target"]
    if columns is None:
        columns = [df[c].to_numpy() for c in key]
    # one int64 per row (mixed radix over each column's codes): hashing one int is fast
    factors = [factor_parts(v) for v in columns]
    radix = math.prod(max(k, 1) for _, _, k in factors)
    if radix < 2**63:
        gid = np.zeros(len(df), dtype=np.int64)
        spare = np.empty_like(gid)
        for per, rows, count in factors:  # in place: no new row-sized array per column
            if count > 1:
                gid *= count
                gid += (
                    rows if per is None else np.take(per, rows, out=spare, mode="clip")
                )  # codes are in range
    else:  # too many distinct values for one int64: group the code columns
        codes = pd.DataFrame(
            {c: f[1] if f[0] is None else f[0][f[1]] for c, f in zip(key, factors)}
        )
        gid = codes.groupby(key, sort=False).ngroup().to_numpy()
    if _all_distinct(gid, radix):
        return
    dup = pd.Index(gid).duplicated(keep="first")
    if not dup.any():
        return

    def what(i: int) -> str:
        r = df.iloc[i]
        twin = int(np.flatnonzero(gid == gid[i])[0])
        runs = f"run {r['run']!r}, " if r["run"] else ""
        return (
            f"duplicated cell ({runs}step {r['step']}, measure {r['measure']!r}, "
            f"{r['source']!r} -> {r['target']!r}), first at {locate(twin)}"
        )

    raise fail(name, locate, "affinity", dup, what)


def wall_times(vals: np.ndarray, name: str, locate: Locate) -> np.ndarray:
    """The optional ``wall_time`` column as Unix seconds (float64, NaN where empty): numbers
    as they are, ISO-8601 text (``2026-12-07T09:30:00Z``, a naive time read as UTC) converted
    by pandas; a column that is neither is left out (all NaN) with a note, since the affinity
    does not depend on it.
    """
    try:
        return to_numbers(vals, "wall_time", name, locate, allow_empty=True)
    except LabError:
        pass
    text = pd.Series(vals, dtype=object).map(lambda v: None if v in ("", None) else str(v))
    try:
        stamps = pd.to_datetime(text, format="ISO8601", utc=True)
    except (ValueError, TypeError):
        note(
            f"{name}: column 'wall_time' is neither numbers (Unix seconds) nor ISO-8601 times: "
            "left out (it is optional)"
        )
        return np.full(len(vals), np.nan)
    secs = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
    note(f"{name}: wall_time read as ISO-8601 times (UTC when no offset is given)")
    return secs
