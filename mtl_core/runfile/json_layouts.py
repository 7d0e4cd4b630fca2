"""Matrices saved as JSON objects (pandas, TAG's notebooks, NumPy ``tolist()``) -> columns.

A JSON affinity file is usually an array of row objects (:mod:`mtl_core.runfile.tables`).
Matrices are also saved as objects, and these are read with **pandas' meaning** (what
``pd.DataFrame(obj)`` / ``pd.read_json`` would make of them), so the orientation never
depends on a guess:

- object of objects, ``{column: {row: value}}`` (``json.dump(dict_of_dicts)``, pandas'
  default ``to_json()``): the outer key is the **column**, the inner key the row. Rows are
  sources unless declared otherwise, so the outer key is the **target**. TAG's notebooks keep
  ``d[recipient][source]``, which therefore reads the right way round with no flag;
- object of lists of objects, ``{target: [{source: value}, ...]}`` (TAG's per-epoch
  ``transference.json``): list position ``e`` is epoch ``e``, one matrix per epoch (step);
- object of objects of objects keyed by whole numbers, ``{step: {target: {source: value}}}``
  (``json.dump({step: df.to_dict()})``): one matrix per step, each read as the object of
  objects above. Whichever of the three holds the matrices, every one is read the same way
  round, and a declared ``--rows target`` flips each;
- pandas' ``orient="split"``: ``{"columns": [...], "index": [...], "data": [[...], ...]}``;
- pandas' ``orient="table"``: ``{"schema": {"fields": [...], "primaryKey": [...]}, "data":
  [row objects]}``: the rows, the index field as row labels (``index``, pandas' name for an
  unnamed index, becomes the unnamed label column; a 0..n-1 index is left out as saved);
- a long table (``step, source, target, affinity`` columns) saved by column or by row
  (``orient="columns"``: ``{column: {row: value}}``; ``orient="index"``: ``{row: {column:
  value}}``): read as the table it is, whichever way round, since its column names say so;
- object of lists, ``{column: [values]}`` (``to_dict("list")``): a table by columns (long or
  wide, as its column names say);
- array of arrays of numbers (``A.tolist()``): a headerless square matrix, tasks ``t0..``.

Each returns ``({column: values}, locate)`` like the other container parsers; a matrix comes
out in the labelled wide layout (row labels under ``""``, plus ``step`` for epochs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.runfile.bounds import check_table_cells
from mtl_core.runfile.messages import JSON_ROW, Locate, show
from mtl_core.runfile.report import json_object_read, note

Columns = dict[str, np.ndarray]
#: The row-label column the wide reader knows (pandas' unnamed index).
LABEL = ""


def object_columns(doc: dict[str, Any], name: str) -> tuple[Columns, Locate]:
    """A top-level JSON object -> columns, by the layouts in the module docstring.

    Raises
    ------
    LabError
        An object in none of these layouts (naming what was found), or an inner value of the
        wrong kind (naming the keys).
    """
    if not doc:
        raise LabError(f"{name}: the JSON object is empty")
    if set(doc) >= {"columns", "data"} and isinstance(doc["data"], list):
        return _split(doc, name)
    if set(doc) == {"schema", "data"} and isinstance(doc["schema"], dict):
        return _table(doc, name)
    values = list(doc.values())
    if _per_step(doc):
        return _step_matrices(doc, name)
    if all(isinstance(v, dict) for v in values):
        long = _long_names(doc.keys())
        if long:  # orient="columns" of a long table: outer keys are its columns
            return _dict_of_dicts(doc, name, matrix=False)
        if _long_names(_union(values)):  # orient="index": outer keys are its rows
            rows = list(values)
            return _records(rows, name), lambda i: f"key {list(doc)[i]!r}"
        return _dict_of_dicts(doc, name)
    if any(_number_like(v) for v in values) and not any(isinstance(v, list) for v in values):
        return _summary(doc, name)
    if all(isinstance(v, list) for v in values) and any(values):
        if all(isinstance(x, dict) for v in values for x in v):
            if all(_number_like(y) for v in values for x in v for y in x.values()):
                return _epochs(doc, name)
        elif not any(isinstance(x, (dict, list)) for v in values for x in v):
            return _dict_of_lists(doc, name)
    keys = ", ".join(map(repr, list(doc)[:8]))
    raise LabError(
        f"{name}: expected a JSON array of row objects like [{JSON_ROW}, ...], a matrix as "
        "{target: {source: value}} (pandas' to_json()) or {target: [{source: value} per "
        f"epoch]}} (TAG's transference.json); found an object (keys: {keys}). Metrics, "
        "groupings and metadata go in a .zip (docs/run-format.md)"
    )


def flatten_records(records: list[Any]) -> list[Any]:
    """Row objects with nested objects (``{"affinity": {"seg": {"depth": v}}}``, as Ray Tune's
    result.json and W&B summaries keep what was logged) flattened to ``affinity/seg/depth``
    keys, as Ray Tune's progress.csv writes them (``pandas.json_normalize``); flat rows are
    returned as they are."""
    if not any(isinstance(v, dict) for r in records if isinstance(r, dict) for v in r.values()):
        return records
    if not all(isinstance(r, dict) for r in records):
        return records
    import pandas as pd

    flat = pd.json_normalize(records, sep="/")
    return [{k: v for k, v in zip(flat.columns, row) if v is not None} for row in
            flat.astype(object).where(flat.notna(), None).itertuples(index=False)]  # fmt: skip


def _summary(doc: dict[str, Any], name: str) -> tuple[Columns, Locate]:
    """A flat object of logged values (W&B's ``wandb-summary.json``: the run's last value of
    each key, ``_step`` the last step) -> a one-row table (nested objects flattened to
    ``a/b/c`` keys); the per-step table reader then picks its affinity keys."""
    (row,) = flatten_records([doc])
    cols: Columns = {str(k): _objects([v]) for k, v in row.items()}
    step = next((k for k in ("_step", "step", "global_step") if k in cols), None)
    if step is None:
        step, cols["_step"] = "_step", np.zeros(1, dtype=np.int64)
    note(
        f"{name}: read as a summary object (each key's last logged value, at step "
        f"{cols[step][0]} from {step!r}, or 0 when it names none)"
    )
    return cols, lambda i: "the object"


def array_columns(doc: list[Any], name: str) -> tuple[Columns, Locate] | None:
    """An array of arrays of numbers -> a headerless square matrix (tasks ``t0..``); None
    when ``doc`` is not an array of arrays."""
    if not doc or not all(isinstance(r, list) for r in doc):
        return None
    n = len(doc)
    if any(isinstance(x, str) for r in doc[:50] for x in r):
        raise LabError(
            f"{name}: an array of arrays holding text is a table without column names "
            "(pandas' to_json(orient='values') drops them): save it with orient='records', "
            "'split' or 'table'"
        )
    for k, r in enumerate(doc):
        if len(r) != n:
            raise LabError(
                f"{name}: an array of arrays is read as a square matrix (rows = sources): "
                f"{n} rows but row {k + 1} has {len(r)} values"
            )
    tasks = [f"t{k}" for k in range(n)]
    note(f"the matrix has no task names: {tasks[0]}..{tasks[-1]} were made up")
    cols = {t: _objects([r[k] for r in doc]) for k, t in enumerate(tasks)}
    return cols, lambda i: f"row {i + 1}"


def _long_names(keys: Any) -> bool:
    """Whether ``keys`` hold the long form's required column names (any case)."""
    have = {str(k).strip().lower() for k in keys}
    return {"step", "source", "target", "affinity"} <= have


def _records(rows: list[Any], name: str) -> Columns:
    """Row objects (keys = columns) -> columns, None where a row lacks a key."""
    for k, r in enumerate(rows):
        if not isinstance(r, dict):
            raise LabError(f"{name}: data row {k + 1} is not an object")
        _check_scalars(r, f"data row {k + 1}", name)
    keys = _union(rows)
    return {str(c): _objects([r.get(c) for r in rows]) for c in keys}


def _table(doc: dict[str, Any], name: str) -> tuple[Columns, Locate]:
    """pandas' ``to_json(orient="table")``: the rows under ``data``, in the schema's field
    order; a one-field ``primaryKey`` is the index: ``index`` (an unnamed index) becomes the
    unnamed row-label column (a 0..n-1 one is then left out as a saved index)."""
    data, schema = doc["data"], doc["schema"]
    if not isinstance(data, list) or not data:
        raise LabError(f"{name}: 'data' must be a non-empty array of row objects "
                       "(pandas orient='table')")  # fmt: skip
    fields = schema.get("fields") or []
    order = [f.get("name") for f in fields if isinstance(f, dict) and "name" in f]
    cols = _records(data, name)
    cols = {**{str(c): cols[str(c)] for c in order if str(c) in cols}, **cols}
    key = schema.get("primaryKey")
    if isinstance(key, list) and len(key) == 1 and key[0] == "index" and "index" in cols:
        cols = {LABEL: cols.pop("index"), **cols}
    return cols, lambda i: f"data row {i + 1}"


def _dict_of_dicts(doc: dict[str, Any], name: str, matrix: bool = True) -> tuple[Columns, Locate]:
    if matrix:
        json_object_read()
    rows = _union(doc.values())
    check_table_cells(len(rows), len(doc), name)  # before the dense table is built
    cols: Columns = {LABEL: _objects(rows)}
    for col, inner in doc.items():
        _check_scalars(inner, f"key {col!r}", name)
        cols[str(col)] = _objects([inner.get(r) for r in rows])
    return cols, lambda i: f"inner key {rows[i]!r}"


def _per_step(doc: dict[str, Any]) -> bool:
    """Whether ``doc`` is ``{step: {target: {source: value}}}``: whole-number keys, each
    holding a non-empty object of objects."""
    return all(
        str(k).strip().isdigit()
        and isinstance(v, dict)
        and v
        and all(isinstance(m, dict) for m in v.values())
        for k, v in doc.items()
    )


def _step_matrices(doc: dict[str, Any], name: str) -> tuple[Columns, Locate]:
    """``{step: {target: {source: value}}}`` -> the stacked wide layout (row labels, ``step``
    and one column per target), each step's matrix read as :func:`_dict_of_dicts` reads
    one (outer keys targets unless rows are declared targets)."""
    json_object_read()
    keys = sorted(doc, key=lambda k: int(str(k).strip()))
    targets = _union(doc[k] for k in keys)
    labels: list[str] = []
    at: list[int] = []
    mats: list[dict[str, Any]] = []
    for k in keys:
        for col, inner in doc[k].items():
            _check_scalars(inner, f"key {k!r}, key {col!r}", name)
        rows = _union(doc[k].values())
        labels += rows
        at += [int(str(k).strip())] * len(rows)
        mats += [doc[k]] * len(rows)
    check_table_cells(len(labels), len(targets), name)  # before the dense table is built
    cols: Columns = {LABEL: _objects(labels), "step": np.asarray(at, dtype=np.int64)}
    for col in targets:
        cols[str(col)] = _objects([m.get(col, {}).get(r) for m, r in zip(mats, labels)])
    note(f"read as one matrix per step ({len(keys)} matrices, steps {at[0]}..{at[-1]})")
    return cols, lambda i: f"step {at[i]}, inner key {labels[i]!r}"


def _epochs(doc: dict[str, list[dict[str, Any]]], name: str) -> tuple[Columns, Locate]:
    json_object_read()  # one object of objects per epoch: the same two readings
    epochs = max(len(v) for v in doc.values())
    labels: list[str] = []
    steps: list[int] = []
    for e in range(epochs):
        for r in _union(v[e] for v in doc.values() if e < len(v)):
            labels.append(r)
            steps.append(e)
    check_table_cells(len(labels), len(doc), name)  # before the dense table is built
    cols: Columns = {LABEL: _objects(labels), "step": np.asarray(steps, dtype=np.int64)}
    for col, per_epoch in doc.items():
        for e, inner in enumerate(per_epoch):
            _check_scalars(inner, f"key {col!r}, epoch {e}", name)
        cols[str(col)] = _objects(
            [per_epoch[s].get(r) if s < len(per_epoch) else None for r, s in zip(labels, steps)]
        )
    note(f"read as one matrix per epoch ({epochs} epochs, steps 0..{epochs - 1})")
    return cols, lambda i: f"epoch {steps[i]}, inner key {labels[i]!r}"


def _split(doc: dict[str, Any], name: str) -> tuple[Columns, Locate]:
    columns, data = doc["columns"], doc["data"]
    index = doc.get("index")
    if not isinstance(columns, list) or not all(isinstance(r, list) for r in data):
        raise LabError(f"{name}: 'columns' and 'data' must be arrays (pandas orient='split')")
    for k, r in enumerate(data):
        if len(r) != len(columns):
            raise LabError(
                f"{name}: data row {k + 1} has {len(r)} values for {len(columns)} columns"
            )
    cols: Columns = {}
    if index is not None:
        if not isinstance(index, list) or len(index) != len(data):
            raise LabError(f"{name}: 'index' must be an array with one label per data row")
        cols[LABEL] = _objects(index)
    for k, c in enumerate(columns):
        cols[str(c)] = _objects([r[k] for r in data])
    return cols, lambda i: f"data row {i + 1}"


def _dict_of_lists(doc: dict[str, Any], name: str) -> tuple[Columns, Locate]:
    lengths = {len(v) for v in doc.values()}
    if len(lengths) > 1:
        raise LabError(
            f"{name}: an object of arrays is read as columns, which need equal lengths "
            f"(found {', '.join(map(str, sorted(lengths)))})"
        )
    if lengths == {0}:
        raise LabError(f"{name}: the columns hold no rows")
    return {str(k): _objects(v) for k, v in doc.items()}, lambda i: f"row {i + 1}"


def _number_like(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _union(dicts: Any) -> list[str]:
    """Keys of several objects in order of first appearance."""
    out: dict[str, None] = {}
    for d in dicts:
        out.update(dict.fromkeys(d))
    return list(out)


def _check_scalars(inner: Any, where: str, name: str) -> None:
    for k, v in inner.items():
        if isinstance(v, (dict, list)):
            raise LabError(f"{name}: {where}, inner key {k!r}: {show(v)} is not a number")


def _objects(values: list[Any]) -> np.ndarray:
    a = np.empty(len(values), dtype=object)
    a[:] = values
    return a
