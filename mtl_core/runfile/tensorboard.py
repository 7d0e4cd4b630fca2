"""TensorBoard event files whose scalar tags follow the lab's pattern, read into a ParsedRun.

Tag patterns (task and measure names must not contain ``/``):

- ``affinity/<source>/<target>``             -> measure ``lookahead``
- ``affinity/<measure>/<source>/<target>``   -> that measure
- ``metrics/<split>/<metric>/<task>``        -> a metrics row (optional)

Other tags are ignored. The scalar's step is the training step and its wall time is kept. When
a (tag, step) pair was written twice (a restarted run appending to the same log directory), the
later value wins, as in TensorBoard's own charts. A directory is searched for event files; each
folder holding event files becomes one run, labelled by its path relative to the directory.

Reading uses TensorBoard's ``EventAccumulator`` (protobuf records; nothing is unpickled), imported
only when a file is read (it is heavy). Both TF1/PyTorch ``simple_value`` scalars and TF2 tensor
scalars are read. Torch-free.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile.long import first_seen
from mtl_core.runfile.messages import over_limit
from mtl_core.runfile.model import ParsedRun, assemble
from mtl_core.runfile.schema import DEFAULT_MEASURE, GROUPING_FRAME, METRIC_FRAME, empty_frame
from mtl_core.runfile.validate import validate_affinity, validate_metrics

AFFINITY_PREFIX = "affinity"
METRICS_PREFIX = "metrics"

#: One scalar: (step, wall time in seconds since the epoch, value).
Scalar = tuple[int, float, float]


def tag_for(source: str, target: str, measure: str | None = None) -> str:
    """The scalar tag to log ``source -> target`` affinity under (measure optional).

    Raises ``LabError`` when a name is empty or contains ``/``.
    """
    parts = [AFFINITY_PREFIX] + ([measure] if measure else []) + [source, target]
    for p in parts:
        if "/" in p or not p:
            raise LabError(f"task and measure names in TensorBoard tags cannot contain '/': {p!r}")
    return "/".join(parts)


def read_tensorboard(
    source: str | Path | bytes | None, filename: str, *, max_bytes: int
) -> ParsedRun:
    """Read an event file (path or bytes) or a log directory into a validated ParsedRun.

    Parameters
    ----------
    source : a path to an event file or a folder, or an event file's bytes.
    filename : the name for messages (and, for bytes, the event file's name).
    max_bytes : size limit in bytes, for the file or all event files of a folder together.

    Raises
    ------
    LabError
        Over the size limit, no event files, an unreadable file, no lab scalars, or a cell
        the long-form validation refuses.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > max_bytes:
            raise over_limit(filename, "the file is", len(source), max_bytes)
        with tempfile.TemporaryDirectory(prefix="mtl-tb-") as tmp:
            p = Path(tmp) / (
                Path(filename).name if "tfevents" in filename else "events.out.tfevents.upload"
            )
            p.write_bytes(bytes(source))
            return _read_files({"": [p]}, filename)
    path = Path(source) if source is not None else Path(filename)
    if path.is_dir():
        return _read_files(_runs_in_folder(path, filename, max_bytes), filename)
    return _read_files({"": [path]}, filename)


def _runs_in_folder(path: Path, filename: str, max_bytes: int) -> dict[str, list[Path]]:
    """Event files of a log folder grouped by run (their folder relative to ``path``)."""
    files = sorted(f for f in path.rglob("*") if f.is_file() and "tfevents" in f.name)
    if not files:
        raise LabError(
            f"{filename}: no TensorBoard event files (events.out.tfevents.*) in this folder"
        )
    total = sum(f.stat().st_size for f in files)
    if total > max_bytes:
        raise over_limit(filename, "the event files hold", total, max_bytes)
    by_dir: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        rel = f.parent.relative_to(path).as_posix()
        by_dir[path.name if rel == "." else rel].append(f)
    if len(by_dir) == 1:
        return {"": next(iter(by_dir.values()))}
    return dict(by_dir)


def _load(files: list[Path]) -> tuple[dict[str, list[Scalar]], set[str]]:
    """tag -> [(step, wall_time, value)] of every lab scalar in ``files``, and all tags seen."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    out: dict[str, list[Scalar]] = defaultdict(list)
    tags: set[str] = set()
    for f in files:
        acc = EventAccumulator(str(f), size_guidance={"tensors": 0, "scalars": 0})
        try:
            acc.Reload()
        except Exception as exc:  # tensorboard raises assorted errors on damaged records
            raise LabError(f"{f.name}: not a readable TensorBoard event file ({exc})") from None
        tags.update(acc.Tags().get("tensors", []))
        for tag in acc.Tags().get("tensors", []):
            if not (tag.startswith(AFFINITY_PREFIX + "/") or tag.startswith(METRICS_PREFIX + "/")):
                continue
            for ev in acc.Tensors(tag):
                arr = tensor_util.make_ndarray(ev.tensor_proto)
                if arr.size != 1:
                    continue
                out[tag].append((int(ev.step), float(ev.wall_time), float(arr.reshape(-1)[0])))
    return out, tags


def _read_files(by_run: dict[str, list[Path]], filename: str) -> ParsedRun:
    rows: list[tuple[Any, ...]] = []  # run, step, measure, source, target, value, wall, tag
    mrows: list[tuple[Any, ...]] = []  # run, step, task, split, metric, value, tag
    seen_tags: set[str] = set()
    for run, files in by_run.items():
        scalars, tags = _load(files)
        seen_tags.update(tags)
        for tag, events in scalars.items():
            last: dict[int, tuple[float, float]] = {}
            for step, wall, value in sorted(events, key=lambda e: e[1]):
                last[step] = (wall, value)  # a rewritten step: the later value wins
            parts = tag.split("/")
            for step, (wall, value) in sorted(last.items()):
                if parts[0] == AFFINITY_PREFIX and len(parts) in (3, 4):
                    measure = parts[1] if len(parts) == 4 else DEFAULT_MEASURE
                    rows.append((run, step, measure, parts[-2], parts[-1], value, wall, tag))
                elif parts[0] == METRICS_PREFIX and len(parts) == 4:
                    mrows.append((run, step, parts[3], parts[1], parts[2], value, tag))
    if not rows and not seen_tags:
        raise LabError(
            f"{filename}: no lab scalars found; is it a TensorBoard event file "
            "with tags like affinity/<source>/<target>?"
        )
    if not rows:
        found = ", ".join(sorted(seen_tags)[:8])
        raise LabError(
            f"{filename}: no scalars tagged affinity/<source>/<target> or "
            f"affinity/<measure>/<source>/<target> (found: {found})"
        )
    aff = _affinity_frame(rows, filename)
    metrics = _metrics_frame(mrows, filename) if mrows else empty_frame(METRIC_FRAME)
    tasks = first_seen(aff["source"], aff["target"], metrics["task"])
    parsed = assemble(aff, metrics, empty_frame(GROUPING_FRAME), {}, tasks)
    parsed.meta["source"] = "tensorboard"
    return parsed


def _objects(values: Any) -> np.ndarray:
    a = np.empty(len(values), dtype=object)
    a[:] = list(values)
    return a


def _affinity_frame(rows: list[tuple[Any, ...]], filename: str) -> pd.DataFrame:
    col = list(zip(*rows))
    tags = col[7]
    cols = {
        "run": _objects(col[0]),
        "step": np.asarray(col[1], dtype=np.int64),
        "measure": _objects(col[2]),
        "source": _objects(col[3]),
        "target": _objects(col[4]),
        "affinity": np.asarray(col[5], dtype=np.float64),
        "wall_time": np.asarray(col[6], dtype=np.float64),
    }
    if set(col[0]) == {""}:
        del cols["run"]  # one run: no run labels
    return validate_affinity(
        cols, lambda i: f"tag {tags[i]!r} at step {cols['step'][i]}", filename, tasks=None
    )


def _metrics_frame(mrows: list[tuple[Any, ...]], filename: str) -> pd.DataFrame:
    mc = list(zip(*mrows))
    mtags = mc[6]
    mcols = {
        "run": _objects(mc[0]),
        "step": np.asarray(mc[1], dtype=np.int64),
        "task": _objects(mc[2]),
        "split": _objects(mc[3]),
        "metric": _objects(mc[4]),
        "value": np.asarray(mc[5], dtype=np.float64),
    }
    if set(mc[0]) == {""}:
        del mcols["run"]
    return validate_metrics(
        mcols, lambda i: f"tag {mtags[i]!r} at step {mcols['step'][i]}", filename, None
    )
