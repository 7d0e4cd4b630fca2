"""TensorBoard logs read into a ParsedRun: the conventions other tools log affinity in. Torch-free.

Recognised (the read notes which; :mod:`mtl_core.runfile.tb_conventions` has the details):

- the lab's tags: ``affinity/<source>/<target>`` (measure lookahead),
  ``affinity/<measure>/<source>/<target>``, ``metrics/<split>/<metric>/<task>``;
- the selective-group-update code's ``Affinity/<source>_to_<target>`` (proximal) and
  ``Train_Loss/<task>``;
- a user pattern (``tag_pattern="aff/{source}->{target}"``);
- ``add_scalars`` layouts (one sub-folder per curve), read back as ``<main_tag>/<key>``;
- per-task losses in the common tag shapes, for the affinity's tasks.

Other tags are ignored. A folder is searched for event files; the files of one folder are one
run (a restarted run appends a new file to the same folder: when a step was written twice the
later value wins, as in TensorBoard's charts); each folder holding affinity is one run,
labelled by its path; folders without affinity (e.g. a ``test`` writer's ``perf/*``) are left
out and named in the notes. Records are read directly (:mod:`mtl_core.runfile.tfrecord`), with
their CRCs checked and any damage reported. Non-finite values are unmeasured (left out and
counted). Nothing is unpickled.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile import tb_conventions as conv
from mtl_core.runfile.bounds import check_rows, check_runs_count, check_tasks_count
from mtl_core.runfile.long import first_seen
from mtl_core.runfile.messages import names, over_limit
from mtl_core.runfile.model import ParsedRun, assemble
from mtl_core.runfile.report import ReadOptions, measure_assumed, note, pattern_used
from mtl_core.runfile.schema import DEFAULT_MEASURE, GROUPING_FRAME, METRIC_FRAME, empty_frame
from mtl_core.runfile.stepless import plan_steps
from mtl_core.runfile.tfrecord import FileScan, Series, merge, scan_file
from mtl_core.runfile.validate import validate_affinity, validate_metrics

AFFINITY_PREFIX = "affinity"
METRICS_PREFIX = "metrics"
#: Key under which ``_runs`` passes a run's event-file count (not a tag: it holds a space).
_FILES = " files"


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
    source: str | Path | bytes | None,
    filename: str,
    *,
    max_bytes: int,
    options: ReadOptions | None = None,
) -> ParsedRun:
    """Read an event file (path or bytes) or a log folder into a validated ParsedRun.

    Parameters
    ----------
    source : a path to an event file or a folder, or an event file's bytes.
    filename : the name for messages (and, for bytes, the event file's name).
    max_bytes : size limit in bytes, for the file or all event files of a folder together.
    options : ``tag_pattern`` (a user convention) and ``measure`` (for tags naming none).

    Raises
    ------
    LabError
        Over the size limit, no event files, not an event file, a wanted tag holding
        something other than one number, no affinity scalars in any convention, or a cell
        the long-form validation refuses.
    """
    options = options or ReadOptions()
    pattern = conv.compile_pattern(options.tag_pattern) if options.tag_pattern else None
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > max_bytes:
            raise over_limit(filename, "the file is", len(source), max_bytes)
        if not len(source):
            raise LabError(f"{filename}: the file is empty")
        scans = {"": [scan_file(bytes(source), filename, _wanted("", pattern))]}
    else:
        path = Path(source) if source is not None else Path(filename)
        by_dir = _files_in_folder(path, filename, max_bytes) if path.is_dir() else {"": [path]}
        scans = {
            d: [scan_file(f, f.name, _wanted(d, pattern)) for f in fs] for d, fs in by_dir.items()
        }
    runs, all_tags = _runs(scans)
    return _assemble(runs, all_tags, filename, pattern, options)


def read_tensorboard_files(
    files: dict[str, bytes], filename: str, options: ReadOptions | None = None
) -> ParsedRun:
    """Event files held in memory (a zipped log folder), ``{relative path: bytes}``, read as
    a log folder is: the files of one folder are one run, labelled by its path.

    Raises ``LabError`` as :func:`read_tensorboard` does (the caller checked the sizes).
    """
    options = options or ReadOptions()
    pattern = conv.compile_pattern(options.tag_pattern) if options.tag_pattern else None
    by_dir: dict[str, list[str]] = defaultdict(list)
    for rel in sorted(files):
        parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
        by_dir[parent].append(rel)
    scans = {
        d: [scan_file(files[r], r.rsplit("/", 1)[-1], _wanted(d, pattern)) for r in rs]
        for d, rs in by_dir.items()
    }
    runs, all_tags = _runs(scans)
    return _assemble(runs, all_tags, filename, pattern, options)


def _files_in_folder(path: Path, filename: str, max_bytes: int) -> dict[str, list[Path]]:
    """Event files of a log folder grouped by their folder relative to ``path``."""
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
        by_dir["" if rel == "." else rel].append(f)
    return dict(by_dir)


def _wanted(folder: str, pattern):
    """Which tags' scalars a file in ``folder`` (relative to the log folder) keeps: any
    convention's, and losses."""
    last = folder.rsplit("/", 1)[-1]

    def wanted(tag: str) -> bool:
        if pattern is not None and pattern.fullmatch(tag):
            return True
        if conv.lab_cell(tag) or conv.lab_metric(tag) or conv.selupdate_pair(tag):
            return True
        curve = conv.curve_tag(last, tag)
        nested = conv.nested_curve(folder, tag)
        if curve is not None and wanted(curve) or nested is not None and wanted(nested[1]):
            return True
        return "loss" in tag.lower()

    return wanted


def _runs(
    scans: dict[str, list[FileScan]],
) -> tuple[dict[str, dict[str, Series]], list[str]]:
    """Series per run folder (a restarted run's files merged, ``add_scalars`` curve folders
    folded into their parent as ``<main_tag>/<key>`` tags), and every tag seen."""
    runs: dict[str, dict[str, Series]] = defaultdict(dict)
    curves = 0
    for folder, file_scans in scans.items():
        for scan in file_scans:
            if scan.damage():
                note(scan.damage())  # type: ignore[arg-type]
        series = merge(file_scans)
        name = Path(folder).name
        renamed = {t: conv.curve_tag(name, t) for t in series}
        parent = Path(folder).parent.as_posix()
        nested = {t: conv.nested_curve(folder, t) for t in series}
        if not all(renamed.values()) and all(nested.values()):
            parents = {v[0] for v in nested.values()}  # type: ignore[index]
            if len(parents) == 1:  # tensorboardX: <run>/<main_tag>/<key>
                parent = parents.pop() or "."
                renamed = {t: v[1] for t, v in nested.items()}  # type: ignore[index]
        if folder and series and all(renamed.values()):
            curves += 1
            target = runs["" if parent == "." else parent]
            for t, s in series.items():
                key = renamed[t]
                if key in target:
                    target[key].extend(s)  # type: ignore[index]
                else:
                    target[key] = s  # type: ignore[index]
        else:
            runs.setdefault(folder, {})
            if len(file_scans) > 1:
                runs[folder][_FILES] = Series(array("q", [len(file_scans)]))
            for t, s in series.items():
                if t in runs[folder]:
                    runs[folder][t].extend(s)
                else:
                    runs[folder][t] = s
    if curves:
        note(f"add_scalars layout: {curves} curve folders read as tags of their run")
    return runs, sorted({_shown(d, t) for d, fs in scans.items() for f in fs for t in f.tags})


def _shown(folder: str, tag: str) -> str:
    """A tag as the refusal lists it: an ``add_scalars`` curve as ``<main_tag>/<key>``."""
    nested = conv.nested_curve(folder, tag)
    return conv.curve_tag(folder.rsplit("/", 1)[-1], tag) or (nested[1] if nested else tag)


def _assemble(
    runs: dict[str, dict[str, Series]],
    all_tags: list[str],
    filename: str,
    pattern,
    options: ReadOptions,
) -> ParsedRun:
    files = {run: series.pop(_FILES).steps[0] for run, series in runs.items() if _FILES in series}
    for run, series in runs.items():
        _number_by_wall_time(run, series)
    cells = {run: _cells(series, pattern, options) for run, series in runs.items()}
    with_aff = {run: c for run, c in cells.items() if c[0]}
    if not with_aff:
        _no_affinity(filename, all_tags, pattern)
    left = sorted(r or "." for r in runs if r not in with_aff)
    if left:
        note(f"folders without affinity scalars were left out: {names(left, 6)}")
    for run in with_aff:
        if files.get(run, 1) > 1:
            where = run or "the folder"
            note(f"{files[run]} event files in {where} read as one run (a restarted run)")
    check_runs_count(len(with_aff), filename)
    for cmap, _, _ in with_aff.values():  # counts from the tags, before any frame is built
        check_tasks_count(
            len({c.source for c in cmap.values()} | {c.target for c in cmap.values()}), filename
        )
    single = len(with_aff) == 1
    labels = {run: ("" if single else (run or Path(filename).name)) for run in with_aff}
    scalars = sum(len(runs[r][t].steps) for r, c in with_aff.items() for t in (*c[0], *c[1]))
    check_rows(scalars, filename, "affinity and loss scalars")  # before any frame is built
    used = sorted({c for _, _, conventions in with_aff.values() for c in conventions})
    note("TensorBoard convention recognised: " + "; ".join(conv.DESCRIPTIONS[c] for c in used))
    aff = _affinity_frame(
        [(labels[r], runs[r], cmap) for r, (cmap, _, _) in with_aff.items()], filename
    )
    mrows = [(labels[r], runs[r], metrics) for r, (_, metrics, _) in with_aff.items()]
    metrics = _metrics_frame(mrows, filename)
    tasks = first_seen(aff["source"], aff["target"], metrics["task"])
    parsed = assemble(aff, metrics, empty_frame(GROUPING_FRAME), {}, tasks)
    parsed.meta["source"] = "tensorboard"
    return parsed


def _number_by_wall_time(run: str, series: dict[str, Series]) -> None:
    """Scalars logged without ``global_step`` (``add_scalar(tag, v)``) all sit at step 0, and
    only the last would be kept: renumbered by wall time, or the cut counted, as
    :func:`mtl_core.runfile.stepless.plan_steps` decides and says (the cut itself is the
    duplicate rule's: the last value of a step is kept)."""
    walls = {t: np.frombuffer(s.walls, dtype=np.float64) for t, s in series.items()}
    steps = {t: np.frombuffer(s.steps, dtype=np.int64) for t, s in series.items()}
    plan = plan_steps(run, {t: (walls[t], steps[t]) for t in series}, "tag", "without global_step")
    for t, order in plan.order.items():
        s = series[t]
        s.walls = array("d", walls[t][order].tobytes())
        s.values = array("d", np.frombuffer(s.values, dtype=np.float64)[order].tobytes())
        s.steps = array("q", np.arange(len(order), dtype=np.int64).tobytes())


def _cells(series: dict[str, Series], pattern, options: ReadOptions):
    """``({tag: Cell}, {tag: (split, metric, task)}, conventions used)`` of one run."""
    cmap: dict[str, conv.Cell] = {}
    used: set[str] = set()
    if pattern is not None:
        for tag in series:
            m = pattern.fullmatch(tag)
            if m:
                d = m.groupdict()
                measure = d.get("measure") or options.measure
                if measure is None:
                    measure_assumed()
                cmap[tag] = conv.Cell(measure or DEFAULT_MEASURE, d["source"], d["target"])
        if cmap:
            used.add(conv.PATTERN)
            pattern_used()
    else:
        for tag in series:
            c = conv.lab_cell(tag)
            if c is not None:
                cmap[tag] = c
                used.add(conv.LAB)
        pairs = {t: p for t in series if (p := conv.selupdate_pair(t))}
        if pairs and not cmap:
            losses = {t[len("Train_Loss/") :] for t in series if t.startswith("Train_Loss/")}
            split = conv.split_pairs(list(pairs.values()), losses)
            measure = options.measure or conv.SELUPDATE_MEASURE
            cmap = {t: conv.Cell(measure, *split[p]) for t, p in pairs.items()}
            used.add(conv.SELUPDATE)
    tasks = {c.source for c in cmap.values()} | {c.target for c in cmap.values()}
    metrics = {}
    for tag in series:
        if tag in cmap:
            continue
        m = conv.lab_metric(tag) or conv.loss_metric(tag, tasks)
        if m is not None:
            metrics[tag] = m
    return cmap, metrics, used


def _column_parts(items, key):
    """Concatenated ``(steps, walls, values, tag index)`` over the tags of several runs,
    with ``key(run, tag)`` giving each tag's labels; returns the parts and the labels."""
    steps, walls, values, tag_idx, labels, tags = [], [], [], [], [], []
    for run, series, mapping in items:
        for tag, what in mapping.items():
            st, wt, vals = series[tag].arrays()
            steps.append(st)
            walls.append(wt)
            values.append(vals)
            tag_idx.append(np.full(len(st), len(tags), dtype=np.int64))
            labels.append((run, *key(what)))
            tags.append(tag)
    if not tags:
        return None
    idx = np.concatenate(tag_idx)
    return (np.concatenate(steps), np.concatenate(walls), np.concatenate(values), idx, labels,
            tags)  # fmt: skip


def _labels(labels: list[tuple], idx: np.ndarray, k: int) -> np.ndarray:
    col = np.empty(len(labels), dtype=object)
    col[:] = [lab[k] for lab in labels]
    return col[idx]


def _affinity_frame(items, filename: str) -> pd.DataFrame:
    parts = _column_parts(items, lambda c: (c.measure, c.source, c.target))
    assert parts is not None  # callers pass at least one cell
    steps, walls, values, idx, labels, tags = parts
    cols = {
        "run": _labels(labels, idx, 0),
        "step": steps,
        "measure": _labels(labels, idx, 1),
        "source": _labels(labels, idx, 2),
        "target": _labels(labels, idx, 3),
        "affinity": values,
        "wall_time": walls,
    }
    if all(lab[0] == "" for lab in labels):
        del cols["run"]  # one run: no run labels
    return validate_affinity(
        cols, lambda i: f"tag {tags[idx[i]]!r} at step {steps[i]}", filename, tasks=None
    )


def _metrics_frame(items, filename: str) -> pd.DataFrame:
    parts = _column_parts(items, lambda m: m)
    if parts is None:
        return empty_frame(METRIC_FRAME)
    steps, _, values, idx, labels, tags = parts
    cols = {
        "run": _labels(labels, idx, 0),
        "step": steps,
        "task": _labels(labels, idx, 3),
        "split": _labels(labels, idx, 1),
        "metric": _labels(labels, idx, 2),
        "value": values,
    }
    if all(lab[0] == "" for lab in labels):
        del cols["run"]
    return validate_metrics(
        cols, lambda i: f"tag {tags[idx[i]]!r} at step {steps[i]}", filename, None
    )


def _no_affinity(filename: str, tags: list[str], pattern) -> None:
    found = names(tags, 8) if tags else "no scalar tags"
    if pattern is not None:
        raise LabError(f"{filename}: no scalar tag matches the tag pattern (found: {found})")
    raise LabError(
        f"{filename}: no affinity scalars in a convention the lab knows "
        "(affinity/<source>/<target>, affinity/<measure>/<source>/<target>, "
        f"Affinity/<source>_to_<target>); found: {found}. For another naming give a tag "
        "pattern such as 'aff/{source}->{target}' (--tag-pattern)"
    )
