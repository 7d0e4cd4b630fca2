"""MLflow's file store read into long columns (issue 21, kind 1). Torch-free.

A run folder of ``mlruns/<experiment>/<run_id>/`` holds ``meta.yaml``, ``metrics/``,
``params/`` and ``tags/``. Each metric is one text file ``metrics/<key>`` (a key with ``/`` is
nested folders: ``metrics/affinity/seg/depth``), one line per logged value::

    1796605864467 0.016469157057907895 10       # timestamp (ms), value, step

(files from MLflow before 1.0 have no step, and ``log_metric(key, v)`` writes step 0:
when every value of a run is at step 0 they are numbered in timestamp order,
:mod:`mtl_core.runfile.stepless`). Keys are matched like TensorBoard
tags (:mod:`mtl_core.runfile.tb_conventions`: ``affinity/<source>/<target>``,
``affinity/<measure>/<source>/<target>``, or the user's ``--tag-pattern``); per-task losses
(``train_loss/<task>``) become metrics. The run's name is ``tags/mlflow.runName``, else
``run_name`` in ``meta.yaml``, else the run id.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np

from mtl_core.errors import LabError
from mtl_core.runfile import tb_conventions as conv
from mtl_core.runfile.bounds import check_tasks_count
from mtl_core.runfile.messages import short
from mtl_core.runfile.report import ReadOptions, pattern_used
from mtl_core.runfile.stepless import plan_steps
from mtl_core.runfile.threads import use_threads

META = "meta.yaml"
METRICS = "metrics/"
RUN_NAME = "tags/mlflow.runName"
#: What MLflow's metric timestamps are (``int(time.time() * 1000)`` when logged).
MLFLOW_CLOCK = "their timestamps (wall-clock ms since the epoch)"


def run_roots(paths: list[str]) -> list[str]:
    """The MLflow run folders in a tree of relative paths (``""`` = the tree's root): every
    folder with a ``meta.yaml`` and a ``metrics/`` folder beside it. Linear in the paths."""
    with_metrics = set()
    for p in paths:
        parts = p.split("/")
        for k, part in enumerate(parts[:-1]):
            if part + "/" == METRICS:
                with_metrics.add("/".join(parts[:k]))
    roots = [p[: -len(META)].rstrip("/") for p in paths if p == META or p.endswith("/" + META)]
    return sorted(r for r in roots if r in with_metrics)


def missing_meta(paths: list[str]) -> list[str]:
    """Folders in a tree of relative paths that hold a ``metrics/`` folder but no ``meta.yaml``
    beside it: what an MLflow run folder looks like with its ``meta.yaml`` left out (MLflow's
    file store writes one into every run folder and its reader needs it), so the refusal of
    such a folder can say what is missing. ``""`` is the tree's root. Linear in the paths."""
    with_metrics, with_meta = set(), set()
    for p in paths:
        parts = p.split("/")
        if parts[-1] == META:
            with_meta.add("/".join(parts[:-1]))
        for k, part in enumerate(parts[:-1]):
            if part + "/" == METRICS:
                with_metrics.add("/".join(parts[:k]))
    return sorted(with_metrics - with_meta)


def owner(path: str, roots: set[str]) -> str | None:
    """The run folder among ``roots`` that holds ``path``, or None."""
    if "" in roots:
        return ""
    parts = path.split("/")
    for k in range(1, len(parts)):
        head = "/".join(parts[:k])
        if head in roots:
            return head
    return None


def run_name(files: dict[str, bytes], root: str) -> str:
    """The run's name (:func:`declared_run_name`), else its folder name (the run id)."""
    return declared_run_name(files, root) or root.rsplit("/", 1)[-1] or "run"


def declared_run_name(files: dict[str, bytes], root: str) -> str | None:
    """The name MLflow gave the run: its ``tags/mlflow.runName`` file, else ``run_name`` in
    its ``meta.yaml`` (MLflow >= 1.28 writes both; the UI shows this name); None when neither
    names it."""
    pre = f"{root}/" if root else ""
    raw = files.get(pre + RUN_NAME)
    text = raw.decode("utf-8", "replace").strip() if raw else ""
    if not text:
        text = _yaml_scalar(files.get(pre + META, b""), "run_name")
    return text or None


def _yaml_scalar(data: bytes, key: str) -> str:
    """The top-level ``key: value`` of a ``meta.yaml`` as ``yaml.safe_dump`` writes it (a plain
    scalar, or one quoted with ``'...'`` or ``"..."``), or ``""``. Read by hand: the file is
    MLflow's flat mapping, and no YAML library is a dependency of the lab."""
    m = re.search(rf"(?m)^{re.escape(key)}:[ \t]*(.*?)[ \t]*\r?$", data.decode("utf-8", "replace"))
    if m is None:
        return ""
    value = m.group(1)
    if len(value) > 1 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'").strip()
    if len(value) > 1 and value[0] == value[-1] == '"':
        try:
            return str(json.loads(value)).strip()
        except ValueError:
            return value[1:-1].strip()
    if value in ("", "null", "~", "''"):
        return ""
    return value.split(" #", 1)[0].strip()


def metric_columns(
    files: dict[str, bytes], root: str, name: str, options: ReadOptions
) -> tuple[dict[str, list[np.ndarray]], dict[str, list[np.ndarray]], list[str]]:
    """The affinity and loss metrics of one run folder as column parts.

    Returns
    -------
    ``(affinity parts, metric parts, ignored keys)``: the affinity parts hold ``step,
    affinity, wall_time`` (seconds) arrays per key, and per key its ``source``, ``target``,
    ``measure`` and ``key`` (for messages) as one text each; the metric parts hold arrays
    ``step, task, split, metric, value``.

    Raises
    ------
    LabError
        A metric file whose lines are not ``timestamp value [step]``, naming the file.
    """
    pre = f"{root}/{METRICS}" if root else METRICS
    keys = {p[len(pre) :]: p for p in files if p.startswith(pre)}
    pattern = conv.compile_pattern(options.tag_pattern) if options.tag_pattern else None
    cells: dict[str, conv.Cell] = {}
    for key in keys:
        cell = _cell(key, pattern, options)
        if cell is not None:
            cells[key] = cell
    if pattern is not None and cells:
        pattern_used()
    tasks = {c.source for c in cells.values()} | {c.target for c in cells.values()}
    check_tasks_count(len(tasks), name)  # before any metric file is parsed
    aff: dict[str, list[np.ndarray]] = {
        k: [] for k in ("step", "source", "target", "measure", "affinity", "wall_time", "key")
    }
    met: dict[str, list[np.ndarray]] = {k: [] for k in ("step", "task", "split", "metric", "value")}
    ignored = []
    read: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for key, path in sorted(keys.items()):
        what = cells.get(key)
        if what is None and not (conv.lab_metric(key) or conv.loss_metric(key, tasks)):
            ignored.append(key)
            continue
        read[key] = _history(files[path], f"{name} › {path}")
    _number_by_timestamp(read, name)
    for key, (ts, val, step) in read.items():
        what = cells.get(key)
        if what is not None:
            for col, v in (("source", what.source), ("target", what.target),
                           ("measure", what.measure)):  # fmt: skip
                aff[col].append(v)  # type: ignore[arg-type]
            aff["step"].append(step)
            aff["affinity"].append(val)
            aff["wall_time"].append(ts / 1000.0)
            aff["key"].append(key)  # type: ignore[arg-type]
        else:
            split, metric, task = conv.lab_metric(key) or conv.loss_metric(key, tasks)  # type: ignore[misc]
            for col, v in (("task", task), ("split", split), ("metric", metric)):
                met[col].append(np.full(len(val), v, dtype=object))
            met["step"].append(step)
            met["value"].append(val)
    return aff, met, ignored


def _number_by_timestamp(
    read: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], name: str
) -> None:
    """Metric files without steps (lines ``timestamp value``, MLflow before 1.0) or logged
    without one (``log_metric(key, v)``: step 0) have every value at step 0: numbered in
    timestamp order, or cut to the last, as :func:`mtl_core.runfile.stepless.plan_steps`
    decides and notes (MLflow's own ``FileStore`` reads a missing step as 0)."""
    plan = plan_steps(name, {k: (ts, st) for k, (ts, _, st) in read.items()}, "metric key",
                      "without a step", MLFLOW_CLOCK)  # fmt: skip
    for key, order in plan.order.items():
        ts, val, _ = read[key]
        read[key] = (ts[order], val[order], np.arange(len(order), dtype=np.float64))
    for key, k in plan.keep_last.items():
        ts, val, st = read[key]
        read[key] = (ts[k : k + 1], val[k : k + 1], st[k : k + 1])


def _cell(key: str, pattern, options: ReadOptions) -> conv.Cell | None:
    if pattern is not None:
        m = pattern.fullmatch(key)
        if m is None:
            return None
        g = m.groupdict()
        return conv.Cell(g.get("measure") or options.measure or conv.DEFAULT_MEASURE,
                         g["source"], g["target"])  # fmt: skip
    cell = conv.lab_cell(key)
    if cell is not None and options.measure and key.count("/") == 2:
        return conv.Cell(options.measure, cell.source, cell.target)
    return cell


def _history(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One metric file -> ``(timestamps ms, values, steps)`` (float64, float64, float64)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not data.strip():
        empty = np.empty(0)
        return empty, empty, empty
    width = len(data.split(b"\n", 1)[0].split())
    if width not in (2, 3):
        raise LabError(f"{where}: expected lines 'timestamp value step' (MLflow's metric file)")
    names = ["timestamp", "value", "step"][:width]
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=use_threads()),
            parse_options=pacsv.ParseOptions(delimiter=" "),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.float64() for n in names}),
        )
    except (pa.ArrowInvalid, ValueError) as exc:
        raise LabError(
            f"{where}: not an MLflow metric file (lines 'timestamp value step'; {short(exc)})"
        ) from None
    cols = [table.column(n).to_numpy() for n in names]
    if width == 2:
        cols.append(np.zeros(len(cols[0])))
    return cols[0], cols[1], cols[2]
