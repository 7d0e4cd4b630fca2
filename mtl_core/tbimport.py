"""Import TensorBoard event files whose scalar tags follow the lab's pattern. Torch-free.

Tag patterns (task and measure names must not contain ``/``):

- ``affinity/<source>/<target>``             -> measure ``lookahead``
- ``affinity/<measure>/<source>/<target>``   -> that measure
- ``metrics/<split>/<metric>/<task>``        -> a metrics row (optional)

Other tags are ignored. The scalar's step is the training step and its wall time is kept. When
a (tag, step) pair was written twice (a restarted run appending to the same log directory), the
later value wins, as in TensorBoard's own charts. A directory is searched for event files; each
folder holding event files becomes one run, labelled by its path relative to the directory.

Reading uses TensorBoard's ``EventAccumulator`` (protobuf records; nothing is unpickled). Both
TF1/PyTorch ``simple_value`` scalars and TF2 tensor scalars are read.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.fileformat import (
    GROUPING_FRAME,
    METRIC_FRAME,
    ParsedRun,
    _assemble,
    _empty,
    _first_seen,
    _mb,
    _validate_affinity,
    _validate_metrics,
)

AFFINITY_PREFIX = "affinity"
METRICS_PREFIX = "metrics"


def tag_for(source: str, target: str, measure: str | None = None) -> str:
    """The scalar tag to log ``source -> target`` affinity under (measure optional)."""
    parts = [AFFINITY_PREFIX] + ([measure] if measure else []) + [source, target]
    for p in parts:
        if "/" in p or not p:
            raise LabError(f"task and measure names in TensorBoard tags cannot contain '/': {p!r}")
    return "/".join(parts)


def read_tensorboard(
    source: str | Path | bytes | None, filename: str, *, max_bytes: int
) -> ParsedRun:
    """Read an event file (path or bytes) or a log directory into a validated ParsedRun."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > max_bytes:
            raise LabError(f"{filename}: the file is {_mb(len(source))}, over the "
                           f"{_mb(max_bytes)} limit")
        with tempfile.TemporaryDirectory(prefix="mtl-tb-") as tmp:
            p = Path(tmp) / (Path(filename).name if "tfevents" in filename
                             else "events.out.tfevents.upload")
            p.write_bytes(bytes(source))
            return _read_files({"": [p]}, filename)
    path = Path(source) if source is not None else Path(filename)
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and "tfevents" in f.name)
        if not files:
            raise LabError(f"{filename}: no TensorBoard event files (events.out.tfevents.*) "
                           "in this folder")
        total = sum(f.stat().st_size for f in files)
        if total > max_bytes:
            raise LabError(f"{filename}: the event files hold {_mb(total)}, over the "
                           f"{_mb(max_bytes)} limit")
        by_dir: dict[str, list[Path]] = defaultdict(list)
        for f in files:
            rel = f.parent.relative_to(path).as_posix()
            by_dir[path.name if rel == "." else rel].append(f)
        if len(by_dir) == 1:
            by_dir = {"": next(iter(by_dir.values()))}
        return _read_files(dict(by_dir), filename)
    return _read_files({"": [path]}, filename)


def _load(files: list[Path]) -> tuple[dict[str, list[tuple[int, float, float]]], set[str]]:
    """tag -> [(step, wall_time, value)] of every lab scalar in ``files``, and all tags seen."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    out: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
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
    rows: list[tuple[str, int, str, str, str, float, float, str]] = []
    mrows: list[tuple[str, int, str, str, str, float, str]] = []
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
                    measure = parts[1] if len(parts) == 4 else "lookahead"
                    rows.append((run, step, measure, parts[-2], parts[-1], value, wall, tag))
                elif parts[0] == METRICS_PREFIX and len(parts) == 4:
                    mrows.append((run, step, parts[3], parts[1], parts[2], value, tag))
    if not rows and not seen_tags:
        raise LabError(f"{filename}: no lab scalars found; is it a TensorBoard event file "
                       "with tags like affinity/<source>/<target>?")
    if not rows:
        found = ", ".join(sorted(seen_tags)[:8])
        raise LabError(
            f"{filename}: no scalars tagged affinity/<source>/<target> or "
            f"affinity/<measure>/<source>/<target> (found: {found})"
        )
    n = len(rows)
    col = list(zip(*rows))

    def obj(values: Any) -> np.ndarray:
        a = np.empty(len(values), dtype=object)
        a[:] = list(values)
        return a

    tags = col[7]
    cols = {
        "run": obj(col[0]), "step": np.asarray(col[1], dtype=np.int64), "measure": obj(col[2]),
        "source": obj(col[3]), "target": obj(col[4]),
        "affinity": np.asarray(col[5], dtype=np.float64),
        "wall_time": np.asarray(col[6], dtype=np.float64),
    }
    if set(col[0]) == {""}:
        del cols["run"]  # one run: no run labels
    aff = _validate_affinity(cols, lambda i: f"tag {tags[i]!r} at step {cols['step'][i]}",
                             filename, tasks=None)
    assert len(aff) == n
    metrics = _empty(METRIC_FRAME)
    if mrows:
        mc = list(zip(*mrows))
        mtags = mc[6]
        mcols = {"run": obj(mc[0]), "step": np.asarray(mc[1], dtype=np.int64),
                 "task": obj(mc[2]), "split": obj(mc[3]), "metric": obj(mc[4]),
                 "value": np.asarray(mc[5], dtype=np.float64)}
        if set(mc[0]) == {""}:
            del mcols["run"]
        metrics = _validate_metrics(
            mcols, lambda i: f"tag {mtags[i]!r} at step {mcols['step'][i]}", filename, None)
    tasks = _first_seen(aff["source"], aff["target"], metrics["task"])
    parsed = _assemble(aff, metrics, _empty(GROUPING_FRAME), {}, tasks)
    parsed.meta["source"] = "tensorboard"
    return parsed

