"""Readers for measured ground-truth tables: one value per (trained network, task in it).

The field publishes which tasks should train together as tables of networks trained on task
subsets and each task's measured result in each network. Three layouts are read as they are
published (``docs/run-format.md``, "Ground-truth tables (`select`)"):

- **HOA** (Standley et al., ICML 2020, ``network_selection/results*.txt``): tab-separated, no
  header, one column per task. Line 1: each task's *half-size* single-task network (cost 0.5);
  every later line one full-size network (cost 1) on a subset, an empty cell = the task is not
  in it. Test losses: lower is better. :func:`read_hoa`.
- **MTG-Net** (Song et al., NeurIPS 2022, ``collected_gain/<dataset>/``): a 0/1 mask file (one
  row per trained subset, comma- or space-separated, an optional header of task names) and a
  value file in the same row order (0 where a task is absent). Gains over the task alone:
  higher is better. Sampled designs (not every subset trained) are allowed. :func:`read_mtg`.
- **Long form**: a CSV with a header ``subset,task,value[,cost][,split]``, the subset written
  ``a+b+c``; cost defaults to 1. No default direction. :func:`read_long`.

Every error is one-line :class:`~mtl_core.errors.LabError` naming the file, line and column.
Sizes are checked before any array is built: tasks against ``MTL_LAB_MAX_TASKS`` and
networks x tasks against ``MTL_LAB_MAX_CELLS`` (:mod:`mtl_core.runfile.bounds`), bytes against
``MTL_LAB_MAX_FILE_MB``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtl_core.errors import LabError
from mtl_core.runfile.bounds import CELLS_VARIABLE, check_table_cells, max_cells
from mtl_core.runfile.encoding import decode_text
from mtl_core.runfile.schema import max_file_bytes

DIRECTIONS = ("lower", "higher")
#: Cost of HOA's half-size single-task networks (line 1 of its tables).
HALF_COST = 0.5
FULL_COST = 1.0


@dataclass
class GroundTruth:
    """Measured results of networks trained on task subsets.

    Attributes
    ----------
    tasks : task names, in column order (n).
    members : one sorted tuple of task indices per network (m networks).
    costs : float array (m,): inference cost of each network (1 = full size, 0.5 = HOA's
        half-size single-task networks).
    values : float array (m, n): task ``i``'s measured value in network ``j``; NaN where the
        task is not in the network.
    direction : ``"lower"`` (losses) or ``"higher"`` (gains).
    name : the file it came from (for messages).
    """

    tasks: list[str]
    members: list[tuple[int, ...]]
    costs: np.ndarray
    values: np.ndarray
    direction: str
    name: str = "table"
    split: str | None = None
    index: dict[tuple[tuple[int, ...], float], int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.index = {}
        for j, (mem, c) in enumerate(zip(self.members, self.costs.tolist())):
            key = (mem, float(c))
            if key in self.index:
                raise LabError(
                    f"{self.name}: network {j + 1} ({'+'.join(self.tasks[i] for i in mem)}, "
                    f"cost {c:g}) appears twice"
                )
            self.index[key] = j

    @property
    def oriented(self) -> np.ndarray:
        """``values`` turned so that higher is better (negated for losses)."""
        return self.values if self.direction == "higher" else -self.values

    def network_names(self, j: int) -> list[str]:
        """Task names of network ``j``."""
        return [self.tasks[i] for i in self.members[j]]

    def find(self, members: tuple[int, ...], cost: float) -> int | None:
        """Row of the network on exactly ``members`` at ``cost``, or None."""
        return self.index.get((tuple(members), float(cost)))


def check_direction(direction: str | None, default: str | None, name: str) -> str:
    """The declared direction, else the layout's default; LabError if neither."""
    d = direction or default
    if d is None:
        raise LabError(f"{name}: the long form names no direction; give --direction lower|higher")
    if d not in DIRECTIONS:
        raise LabError(f"direction must be lower or higher, got {d!r}")
    return d


def _text(source: str | Path | bytes, name: str | None) -> tuple[str, str]:
    """The file's text and name, refusing files over the size limit."""
    limit = max_file_bytes()
    if isinstance(source, (bytes, bytearray)):
        data, nm = bytes(source), name or "upload"
    else:
        p = Path(source)
        nm = name or p.name
        if not p.is_file():
            raise LabError(f"{nm}: no such file")
        if p.stat().st_size > limit:
            raise LabError(
                f"{nm}: {p.stat().st_size / 2**20:.1f} MB, over the {limit / 2**20:.0f} MB "
                "limit (raise it with MTL_LAB_MAX_FILE_MB)"
            )
        data = p.read_bytes()
    if len(data) > limit:
        raise LabError(f"{nm}: over the {limit / 2**20:.0f} MB limit (MTL_LAB_MAX_FILE_MB)")
    return decode_text(data, nm), nm


def _number(cell: str, name: str, line: int, col: int) -> float:
    try:
        v = float(cell)
    except ValueError:
        raise LabError(
            f"{name}: line {line}, column {col}: {cell[:40]!r} is not a number"
        ) from None
    if not math.isfinite(v):
        raise LabError(f"{name}: line {line}, column {col}: {cell[:40]!r} is not a finite number")
    return v


def _check_size(networks: int, n: int, name: str) -> None:
    check_table_cells(networks, n, name, words=("networks", "tasks", "cells"))


def task_names(tasks: list[str] | None, n: int, name: str) -> list[str]:
    """``tasks`` checked against ``n`` columns, else ``t0..t{n-1}``."""
    if tasks is None:
        return [f"t{i}" for i in range(n)]
    tasks = [t.strip() for t in tasks]
    if len(tasks) != n:
        raise LabError(f"{name}: {n} task columns but --tasks names {len(tasks)}")
    if len(set(tasks)) != n or any(not t for t in tasks):
        raise LabError(f"{name}: --tasks must name {n} distinct, non-empty tasks")
    return tasks


def _lines(text: str) -> list[tuple[int, str]]:
    """Numbered non-blank lines (1-based), line endings stripped."""
    return [(i + 1, ln.rstrip("\r\n")) for i, ln in enumerate(text.split("\n")) if ln.strip()]


def read_hoa(
    source: str | Path | bytes,
    *,
    tasks: list[str] | None = None,
    direction: str | None = None,
    name: str | None = None,
) -> GroundTruth:
    """Read a table in HOA's layout (Standley et al. 2020, ``network_selection/results*.txt``).

    Tab-separated, no header. Line 1 holds every task's half-size single-task network
    (cost 0.5); each later line one full-size network (cost 1), an empty cell = task absent.
    Default direction ``lower`` (losses).

    Raises
    ------
    LabError
        One line naming the file, line and column: a cell that is no finite number, a line
        with more cells than line 1, a line naming no task, an empty cell on line 1, a network
        listed twice, sizes over the limits.
    """
    text, nm = _text(source, name)
    d = check_direction(direction, "lower", nm)
    lines = _lines(text)
    if not lines:
        raise LabError(f"{nm}: the file is empty")
    first = lines[0][1].split("\t")
    n = len(first)
    _check_size(len(lines) - 1 + n, n, nm)
    names = task_names(tasks, n, nm)
    members: list[tuple[int, ...]] = []
    costs: list[float] = []
    rows: list[np.ndarray] = []
    for c, cell in enumerate(first):
        if not cell.strip():
            raise LabError(
                f"{nm}: line {lines[0][0]}, column {c + 1}: empty; line 1 must hold every "
                "task's half-size single-task network"
            )
        row = np.full(n, np.nan)
        row[c] = _number(cell.strip(), nm, lines[0][0], c + 1)
        members.append((c,))
        costs.append(HALF_COST)
        rows.append(row)
    for ln, line in lines[1:]:
        cells = line.split("\t")
        if len(cells) > n and any(x.strip() for x in cells[n:]):
            raise LabError(f"{nm}: line {ln} has {len(cells)} cells, line 1 has {n} tasks")
        row = np.full(n, np.nan)
        for c, cell in enumerate(cells[:n]):
            if cell.strip():
                row[c] = _number(cell.strip(), nm, ln, c + 1)
        mem = tuple(int(i) for i in np.flatnonzero(~np.isnan(row)))
        if not mem:
            raise LabError(f"{nm}: line {ln} names no task (every cell empty)")
        members.append(mem)
        costs.append(FULL_COST)
        rows.append(row)
    return GroundTruth(names, members, np.array(costs), np.vstack(rows), d, nm)


_SEP = re.compile(r"[,\s]+")


def _split_row(line: str) -> list[str]:
    return [c for c in _SEP.split(line.strip()) if c != ""]


def read_mtg(
    masks: str | Path | bytes,
    values: str | Path | bytes,
    *,
    tasks: list[str] | None = None,
    direction: str | None = None,
    masks_name: str | None = None,
    values_name: str | None = None,
) -> GroundTruth:
    """Read MTG-Net's layout (Song et al. 2022, ``collected_gain/<dataset>/``).

    ``masks``: one 0/1 row per trained subset (comma- or space-separated; an optional first
    row of task names). ``values``: the same rows, one number per task (ignored where the mask
    is 0). Every network costs 1. Default direction ``higher`` (gains).

    Raises
    ------
    LabError
        One line naming the file, line and column: a mask cell other than 0/1, an empty mask
        row, rows of the wrong length, files of different row counts, a value that is no
        finite number, a subset listed twice, sizes over the limits.
    """
    mtext, mname = _text(masks, masks_name)
    vtext, vname = _text(values, values_name)
    d = check_direction(direction, "higher", mname)
    mlines = _lines(mtext)
    if not mlines:
        raise LabError(f"{mname}: the file is empty")
    head = _split_row(mlines[0][1])
    header = None
    if any(c not in ("0", "1", "0.0", "1.0") for c in head) and not all(_isnum(c) for c in head):
        header, mlines = head, mlines[1:]
    if not mlines:
        raise LabError(f"{mname}: no mask rows")
    n = len(header) if header else len(_split_row(mlines[0][1]))
    _check_size(len(mlines), n, mname)
    names = task_names(tasks if tasks is not None else header, n, mname)
    vlines = _lines(vtext)
    if vlines and not all(_isnum(c) for c in _split_row(vlines[0][1])):
        vlines = vlines[1:]  # a header of task names
    if len(vlines) != len(mlines):
        raise LabError(
            f"{vname}: {len(vlines)} value rows but {mname} has {len(mlines)} mask rows "
            "(they must be in the same row order)"
        )
    members, rows = [], []
    for (ml, mrow), (vl, vrow) in zip(mlines, vlines):
        mcells, vcells = _split_row(mrow), _split_row(vrow)
        if len(mcells) != n:
            raise LabError(f"{mname}: line {ml} has {len(mcells)} cells, expected {n}")
        if len(vcells) != n:
            raise LabError(f"{vname}: line {vl} has {len(vcells)} cells, expected {n}")
        row = np.full(n, np.nan)
        for c, (mc, vc) in enumerate(zip(mcells, vcells)):
            m = _number(mc, mname, ml, c + 1)
            if m not in (0.0, 1.0):
                raise LabError(f"{mname}: line {ml}, column {c + 1}: {mc!r} is not 0 or 1")
            v = _number(vc, vname, vl, c + 1)
            if m == 1.0:
                row[c] = v
        mem = tuple(int(i) for i in np.flatnonzero(~np.isnan(row)))
        if not mem:
            raise LabError(f"{mname}: line {ml} names no task (all zeros)")
        members.append(mem)
        rows.append(row)
    return GroundTruth(names, members, np.full(len(rows), FULL_COST), np.vstack(rows), d, vname)


def _isnum(c: str) -> bool:
    try:
        float(c)
    except ValueError:
        return False
    return True


LONG_COLUMNS = ("subset", "task", "value")


def read_long(
    source: str | Path | bytes,
    *,
    direction: str | None = None,
    name: str | None = None,
) -> dict[str | None, GroundTruth]:
    """Read the open long form: a CSV with header ``subset,task,value[,cost][,split]``.

    ``subset`` is ``a+b+c``; ``task`` must be one of its members; ``cost`` defaults to 1;
    ``split`` (e.g. ``val``/``test``) puts rows in separate tables. Task names are the
    subsets' members in first-seen order. No default direction.

    Returns ``{split: GroundTruth}`` (key None when there is no split column).

    Raises
    ------
    LabError
        One line naming the file and line: a missing column, a task not in its subset, a
        value or cost that is no finite number (cost must be > 0), a cell given twice.
    """
    text, nm = _text(source, name)
    d = check_direction(direction, None, nm)
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise LabError(f"{nm}: the file is empty") from None
    missing = [c for c in LONG_COLUMNS if c not in header]
    if missing:
        raise LabError(
            f"{nm}: line 1: no column {', '.join(missing)} (the long form's header is "
            "subset,task,value[,cost][,split])"
        )
    col = {h: i for i, h in enumerate(header)}
    order: dict[str, int] = {}
    cells: dict[str | None, dict[tuple[tuple[str, ...], float], dict[str, float]]] = {}
    limit = max_cells()
    for ln, rec in enumerate(reader, start=2):
        if not any(x.strip() for x in rec):
            continue
        if limit is not None and ln > limit:
            raise LabError(f"{nm}: over {limit:,} rows (raise it with {CELLS_VARIABLE})")
        if len(rec) < len(header):
            raise LabError(f"{nm}: line {ln} has {len(rec)} cells, the header has {len(header)}")
        subset = tuple(s.strip() for s in rec[col["subset"]].split("+"))
        if any(not s for s in subset) or len(set(subset)) != len(subset):
            raise LabError(
                f"{nm}: line {ln}, column subset: {rec[col['subset']][:60]!r} is not a+b+c"
            )
        task = rec[col["task"]].strip()
        if task not in subset:
            raise LabError(f"{nm}: line {ln}, column task: {task[:40]!r} is not in its subset")
        value = _number(rec[col["value"]].strip(), nm, ln, col["value"] + 1)
        cost = FULL_COST
        if "cost" in col and rec[col["cost"]].strip():
            cost = _number(rec[col["cost"]].strip(), nm, ln, col["cost"] + 1)
            if cost <= 0:
                raise LabError(f"{nm}: line {ln}, column cost: must be > 0, got {cost:g}")
        split = rec[col["split"]].strip() if "split" in col else None
        for s in subset:
            order.setdefault(s, len(order))
        key = (tuple(sorted(subset)), cost)
        net = cells.setdefault(split, {}).setdefault(key, {})
        if task in net:
            raise LabError(f"{nm}: line {ln}: {task!r} in {'+'.join(subset)} given twice")
        net[task] = value
    if not cells:
        raise LabError(f"{nm}: no rows under the header")
    names = sorted(order, key=order.__getitem__)
    n = len(names)
    out: dict[str | None, GroundTruth] = {}
    for split, nets in cells.items():
        _check_size(len(nets), n, nm)
        members, costs, rows = [], [], []
        for (subset, cost), vals in nets.items():
            absent = [t for t in subset if t not in vals]
            if absent:
                raise LabError(
                    f"{nm}: network {'+'.join(subset)} has no value for {', '.join(absent)}"
                )
            row = np.full(n, np.nan)
            for t, v in vals.items():
                row[order[t]] = v
            members.append(tuple(sorted(order[t] for t in subset)))
            costs.append(cost)
            rows.append(row)
        label = nm if split is None else f"{nm} (split {split})"
        out[split] = GroundTruth(names, members, np.array(costs), np.vstack(rows), d, label, split)
    return out
