"""Log folders, on disk or zipped, read as the runs inside (issue 21, kinds 1 and 2). Torch-free.

A folder (or a ``.zip`` of one: the only way to send a folder through a browser) is searched
for what training tools leave behind, and each thing found is one run, labelled by its path:

- an MLflow run folder (``meta.yaml`` + ``metrics/``; an experiment folder holds one per
  run, named by ``mlflow.runName``), :mod:`mtl_core.runfile.mlflow_store`;
- tables: Lightning's ``version_N/metrics.csv``, Ray Tune's ``progress.csv`` (its
  ``result.json`` beside it holds the same rows and is skipped), W&B's
  ``wandb-summary.json``, a Hydra multirun's ``multirun/<date>/<time>/<job>/affinity.csv``,
  a folder of per-seed CSVs; any file the lab reads as a table
  (:func:`mtl_core.runfile.layout.read_affinity`);
- TensorBoard event files, one run per folder (:mod:`mtl_core.runfile.tensorboard`).

Config files (``params.json``, ``hparams.yaml``, ``.hydra/``, ``wandb-metadata.json``) and
hidden files are not read. Every run is read or the whole folder is refused (the store then
imports all runs in one transaction), and the read's notes list what was found.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile import mlflow_store
from mtl_core.runfile.bounds import (
    check_folder_files,
    check_rows,
    check_runs_count,
    check_zip_members,
)
from mtl_core.runfile.bundle import read_bundle
from mtl_core.runfile.coded import constant, repeated
from mtl_core.runfile.layout import read_affinity
from mtl_core.runfile.long import first_seen
from mtl_core.runfile.messages import names, over_limit, short
from mtl_core.runfile.model import ParsedRun, assemble
from mtl_core.runfile.report import ReadOptions, note
from mtl_core.runfile.schema import (
    AFFINITY_FRAME,
    GROUPING_FRAME,
    METRIC_FRAME,
    READ_TABLE_EXTENSIONS,
    empty_frame,
)
from mtl_core.runfile.tables import parse_table
from mtl_core.runfile.tensorboard import read_tensorboard, read_tensorboard_files
from mtl_core.runfile.validate import validate_affinity, validate_metrics

#: Files beside a run's logs that hold its configuration, not its affinity.
CONFIG_FILES = frozenset(
    {"params.json", "wandb-metadata.json", "meta.json", "search_space.json", "config.json"}
)
#: JSON files that are runs when they sit in a log folder (any other JSON object that holds no
#: affinity, such as Ray Tune's ``experiment_state-*.json``, is a tool's state: skipped, noted).
RUN_JSON = ("result.json", "wandb-summary.json")
#: Ray Tune writes each result twice; the CSV is read, the JSON Lines copy skipped.
RAY_PAIR = ("progress.csv", "result.json")
#: The names a lab bundle's affinity table has (a zip with exactly one is a bundle).
BUNDLE_STEM = "affinity"


_OPEN_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError)


def is_tfevents(path: str) -> bool:
    """Whether a path names a TensorBoard event file."""
    return "tfevents" in path.rsplit("/", 1)[-1]


def _skipped(rel: str) -> bool:
    parts = rel.split("/")
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def folder_paths(path: Path, name: str, limit: int) -> dict[str, Path]:
    """The readable files of a folder on disk by relative POSIX path, within the limits.

    Raises ``LabError`` for too many files or more bytes than ``limit``.
    """
    found = {}
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path).as_posix()
        if f.is_file() and not _skipped(rel):
            found[rel] = f
            check_folder_files(len(found), name)
    total = sum(f.stat().st_size for f in found.values())
    if total > limit:
        raise over_limit(name, "the folder holds", total, limit)
    return found


def read_folder(path: Path, name: str, limit: int, options: ReadOptions) -> ParsedRun:
    """A log folder on disk -> the runs inside (see the module docstring).

    Raises ``LabError`` naming the folder and the file at fault.
    """
    found = folder_paths(path, name, limit)
    if found and all(is_tfevents(r) for r in found):
        return read_tensorboard(path, name, max_bytes=limit, options=options)
    if not found:
        raise LabError(f"{name}: the folder holds no files")
    return read_tree({r: f.read_bytes() for r, f in found.items()}, name, options)


def zip_tree(data: bytes, name: str, limit: int) -> dict[str, bytes] | None:
    """A zip's files by path when it is a zipped log folder, None when it is a lab bundle
    (``affinity.<ext>`` tables in one folder only, or a ``meta.json``; no event files, no
    MLflow run).

    Raises ``LabError`` for a damaged zip, too many files or too many unpacked bytes.
    """
    check_zip_members(data, name, folder=True)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist() if not i.is_dir() and not _skipped(i.filename)]
    except _OPEN_ERRORS as exc:
        raise LabError(f"{name}: not a readable zip file ({short(exc)})") from None
    paths = [i.filename for i in infos]
    affinity = [p for p in paths if _stem(p) == BUNDLE_STEM and _ext(p) in READ_TABLE_EXTENSIONS]
    one_folder = len({_parent(p) for p in affinity}) == 1  # several there: the bundle says so
    bundle = one_folder or (
        not affinity and any(p.rsplit("/", 1)[-1] == "meta.json" for p in paths)
    )
    if bundle and not any(map(is_tfevents, paths)) and not mlflow_store.run_roots(paths):
        return None
    total = sum(i.file_size for i in infos)
    if total > limit:
        raise over_limit(name, "unpacks to", total, limit)
    out = {}
    for info in infos:
        if info.flag_bits & 0x1:
            raise LabError(f"{name}: {info.filename} is encrypted (password-protected)")
        try:
            out[info.filename] = zf.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
                RuntimeError) as exc:  # fmt: skip
            raise LabError(f"{name}: cannot unpack {info.filename} ({short(exc)})") from None
    return out


def _stem(p: str) -> str:
    return PurePosixPath(p).stem.lower()


def _ext(p: str) -> str:
    return PurePosixPath(p).suffix.lower()


def read_tree(files: dict[str, bytes], name: str, options: ReadOptions) -> ParsedRun:
    """Files of a log folder, ``{relative path: bytes}`` -> one ParsedRun with a run per
    MLflow run folder, table and event-file folder (labelled by path; a single run has none).

    Raises
    ------
    LabError
        Nothing the lab reads in the folder, or any one run that cannot be read (naming the
        folder and its file), so a folder is imported whole or not at all.
    """
    paths = sorted(files)
    roots = mlflow_store.run_roots(paths)
    root_set = set(roots)
    inside = [p for p in paths if mlflow_store.owner(p, root_set) is None]
    events = {p: files[p] for p in inside if is_tfevents(p)}
    bundles = _bundle_folders([p for p in inside if p not in events])
    in_bundle = {p for members in bundles.values() for p in members}
    tables = _tables([p for p in inside if p not in events and p not in in_bundle])
    others = len(roots) + len(bundles) + len({_parent(p) for p in events})
    check_runs_count(others + len(tables), name)  # before any run is read
    read, skipped = [], []
    for p in tables:
        try:
            read.append((p, _read_table_file(files[p], p, name, options)[0]))
        except LabError:
            if _ext(p) != ".json" or p.rsplit("/", 1)[-1] in RUN_JSON:
                raise  # a table that is a run but cannot be read: the whole folder fails
            skipped.append(p)  # a tool's state or config object, not a run
    if skipped:
        note(f"{name}: JSON files holding no affinity were not read: {names(skipped, 4)}")
    tables = [p for p, _ in read]
    units = others + len(tables)
    if not units:
        bare = mlflow_store.missing_meta(paths)
        hint = (
            f"; an MLflow run folder needs the meta.yaml that MLflow writes beside metrics/, "
            f"missing in {names([b or '.' for b in bare], 3)}"
            if bare
            else ""
        )
        raise LabError(
            f"{name}: found no run in the folder (no MLflow run, table or TensorBoard event "
            f"file; it holds {names(paths, 6)}{hint})"
        )
    single = units == 1
    affs, mets, found = [], [], []
    for root in roots:
        label = "" if single else _unique(mlflow_store.run_name(files, root), found)
        found.append(label or root or ".")
        affs_, mets_ = _mlflow_run(files, root, label, name, options)
        affs.append(affs_)
        mets.append(mets_)
    groupings = []
    for folder, members in bundles.items():
        label = "" if single else _unique(folder or ".", found)
        found.append(label or folder or ".")
        run = _read_bundle_folder(files, folder, members, name, options)
        affs.append(_relabel(run.affinity, label))
        mets.append(_relabel(run.metrics, label))
        groupings.append(_relabel(run.groupings, label))
    for p, aff in read:
        label = "" if single else _unique(_table_label(p, tables), found)
        found.append(label or p)
        affs.append(_relabel(aff, label))
    if events:
        tb = read_tensorboard_files(events, name, options)
        base = _parent(next(iter(events))) if len(tb.runs) == 1 else ""
        for frame, out in ((tb.affinity, affs), (tb.metrics, mets)):
            frame = frame.copy()
            if not single:
                frame["run"] = [_join(base, r) for r in frame["run"]]
            out.append(frame)
        found += [_join(base, r) for r in tb.runs] if not single else [base or "."]
    aff = pd.concat(affs, ignore_index=True)[AFFINITY_FRAME]
    met = pd.concat(mets, ignore_index=True) if mets else empty_frame(METRIC_FRAME)
    tasks = first_seen(aff["source"], aff["target"], met["task"])
    if not single:
        note(f"{name}: read {len(found)} runs, each named by its path: {names(found, 8)}")
    grp = pd.concat(groupings, ignore_index=True) if groupings else empty_frame(GROUPING_FRAME)
    parsed = assemble(aff, met, grp, {}, tasks)
    parsed.meta["source"] = "folder"
    if single and roots and (named := mlflow_store.declared_run_name(files, roots[0])):
        parsed.meta["name"] = named  # the stored run's default name, as MLflow's UI shows it
    return parsed


def _parent(p: str) -> str:
    return p.rsplit("/", 1)[0] if "/" in p else ""


def _join(base: str, run: str) -> str:
    return "/".join(x for x in (base, run) if x) or "."


def _unique(label: str, taken: list[str]) -> str:
    out, k = label, 2
    while out in taken:
        out, k = f"{label} ({k})", k + 1
    return out


#: The members a lab bundle's folder holds (``affinity.<ext>`` required).
BUNDLE_STEMS = ("affinity", "metrics")
BUNDLE_FILES = ("meta.json", "groupings.jsonl")


def _bundle_folders(paths: list[str]) -> dict[str, list[str]]:
    """Folders laid out as a lab bundle (an ``affinity.<ext>`` table, with its
    ``metrics.<ext>``, ``groupings.jsonl`` and ``meta.json`` beside it): folder -> members."""
    out: dict[str, list[str]] = {}
    for p in paths:
        if _stem(p) == BUNDLE_STEM and _ext(p) in READ_TABLE_EXTENSIONS:
            out.setdefault(_parent(p), [])
    for p in paths:
        base = p.rsplit("/", 1)[-1].lower()
        is_member = base in BUNDLE_FILES or (
            _stem(p) in BUNDLE_STEMS and _ext(p) in READ_TABLE_EXTENSIONS
        )
        if is_member and _parent(p) in out:
            out[_parent(p)].append(p)
    return dict(sorted(out.items()))


def _read_bundle_folder(
    files: dict[str, bytes], folder: str, members: list[str], name: str, options: ReadOptions
) -> ParsedRun:
    """One folder laid out as a bundle, read by the bundle reader (its messages name the
    folder)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in members:
            zf.writestr(p.rsplit("/", 1)[-1], files[p])
    where = f"{name} › {folder}" if folder else name
    return read_bundle(buf.getvalue(), where, sum(len(files[p]) for p in members) + 1, options)


def _tables(paths: list[str]) -> list[str]:
    """The table files among ``paths`` (config files skipped; Ray's ``result.json`` skipped
    where its ``progress.csv`` sits beside it)."""
    tables = [
        p
        for p in paths
        if _ext(p) in READ_TABLE_EXTENSIONS and p.rsplit("/", 1)[-1] not in CONFIG_FILES
    ]
    twins = {p for p in tables if p.endswith(RAY_PAIR[1])
             and p[: -len(RAY_PAIR[1])] + RAY_PAIR[0] in tables}  # fmt: skip
    if twins:
        note(f"Ray Tune's result.json read from progress.csv beside it ({len(twins)} trial(s))")
    return [p for p in tables if p not in twins]


def _table_label(p: str, tables: list[str]) -> str:
    """A table's run label: its folder, or its path when the folder holds several tables."""
    parent = _parent(p)
    alone = sum(_parent(q) == parent for q in tables) == 1
    return parent if alone and parent else p


def _read_table_file(
    data: bytes, rel: str, name: str, options: ReadOptions
) -> tuple[pd.DataFrame, list[str]]:
    where = f"{name} › {rel}"
    cols, locate = parse_table(data, _ext(rel), where, numbers=True)
    return read_affinity(cols, locate, where, tasks=None, options=options)


def _relabel(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    frame = frame.copy()
    frame["run"] = [" / ".join(x for x in (label, r) if x) for r in frame["run"]]
    return frame


def _mlflow_run(
    files: dict[str, bytes], root: str, label: str, name: str, options: ReadOptions
) -> tuple[pd.DataFrame, pd.DataFrame]:
    where = f"{name} › {root}" if root else name
    aff, met, ignored = mlflow_store.metric_columns(files, root, where, options)
    if not aff["affinity"]:
        raise LabError(
            f"{where}: an MLflow run with no affinity metric (affinity/<source>/<target>, or "
            f"give a tag pattern); its metrics: {names(ignored, 6) if ignored else 'none'}"
        )
    names_ = aff.pop("key")
    counts = [len(v) for v in aff["affinity"]]
    text = ("source", "target", "measure")  # coded: one text per metric file, not per row
    cols = {k: repeated(v, counts) if k in text else np.concatenate(v) for k, v in aff.items()}
    check_rows(len(cols["affinity"]), where, "logged affinity values")
    cols["run"] = constant(label, len(cols["affinity"]))
    steps = cols["step"]
    keys = np.repeat(np.arange(len(aff["step"])), [len(v) for v in aff["step"]])
    frame = validate_affinity(
        cols, lambda i: f"metrics/{names_[int(keys[i])]}, step {steps[i]:g}", where, None
    )
    if met["value"]:
        mcols = {k: np.concatenate(v) for k, v in met.items()}
        mcols["run"] = np.full(len(mcols["value"]), label, dtype=object)
        metrics = validate_metrics(mcols, lambda i: f"loss value {i + 1}", where, None)
    else:
        metrics = empty_frame(METRIC_FRAME)
    note(
        f"{where}: read as an MLflow run ({len(aff['step'])} affinity metric files"
        + (f"; {len(ignored)} other metric(s) ignored" if ignored else "")
        + ")"
    )
    return frame, metrics
