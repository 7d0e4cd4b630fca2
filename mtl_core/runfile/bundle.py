"""Zip bundles both ways: ``affinity.<ext>``, ``metrics.<ext>``, ``groupings.jsonl``, ``meta.json``.

``<ext>`` is any table container (:data:`~mtl_core.runfile.schema.READ_TABLE_EXTENSIONS`).
Only the affinity table is required. ``meta.json`` holds ``format``/``format_version``, the
declared ``tasks`` (then every table must use them) and ``task_types``, and the run's
``name``, ``config`` and ``notes``. ``groupings.jsonl`` holds one grouping per line:
``{"step": 0, "groups": [["a", "b"], ["c"]]}`` (+ ``"run"`` in a multi-run file).

A zip may hold one top-level folder (zipping a folder); OS junk files (``__MACOSX/``,
dot-files) are ignored. The unpacked size counts against the size limit.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
import zlib
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile.bounds import (
    check_lines,
    check_member_size,
    check_tasks_count,
    check_zip_members,
)
from mtl_core.runfile.cells import MAX_STEP
from mtl_core.runfile.jsontext import check_depth, json_lines, load_json
from mtl_core.runfile.layout import read_affinity
from mtl_core.runfile.long import first_seen
from mtl_core.runfile.messages import over_limit, short, show
from mtl_core.runfile.model import ParsedRun, assemble
from mtl_core.runfile.report import ReadOptions
from mtl_core.runfile.schema import (
    FORMAT_NAME,
    FORMAT_VERSION,
    GROUPING_FRAME,
    METRIC_FRAME,
    METRIC_REQUIRED,
    READ_TABLE_EXTENSIONS,
    TABLE_EXTENSIONS,
    empty_frame,
)
from mtl_core.runfile.tables import decode_text, parse_table, table_bytes
from mtl_core.runfile.validate import validate_metrics

META = "meta.json"
GROUPINGS = "groupings.jsonl"
#: Errors zipfile raises on a damaged or unsupported member.
#: (``zlib.error``: corrupt deflate data; ``RuntimeError``: a member that needs a password.)
_UNPACK_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
)


class _Members:
    """The files of an opened zip by base name, read on demand with the bundle's messages."""

    def __init__(self, data: bytes, name: str, limit: int) -> None:
        self.name = name
        check_zip_members(data, name)
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
            infos = [i for i in self.zf.infolist() if not i.is_dir()]
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            EOFError,
            NotImplementedError,
        ) as exc:
            raise LabError(f"{name}: not a readable zip file ({short(exc)})") from None
        self.infos: dict[str, zipfile.ZipInfo] = {}
        folded: dict[str, str] = {}  # case-folded base name -> the name as written
        for info in infos:
            base = info.filename.rsplit("/", 1)[-1]
            if info.filename.startswith("__MACOSX/") or base.startswith("."):
                continue
            # names equal but for case are one file on Windows and macOS: which one a
            # reader would use is an accident, so neither is
            seen = folded.get(base.casefold())
            if seen is not None:
                paths = f"{self.infos[seen].filename}, {info.filename}"
                if seen == base:
                    raise LabError(
                        f"{name}: a bundle holds one {base}, this zip two ({paths}); a zipped "
                        "log folder (one run per folder) has no meta.json"
                    )
                raise LabError(
                    f"{name}: holds {seen} and {base} (names that differ only in case are one "
                    "file on most systems); keep one"
                )
            folded[base.casefold()] = base
            if info.flag_bits & 0x1:
                raise LabError(
                    f"{name}: {base} is encrypted (password-protected); zip the files "
                    "again without a password"
                )
            self.infos[base] = info
        total = sum(i.file_size for i in self.infos.values())
        if total > limit:
            raise over_limit(name, "unpacks to", total, limit)

    def table(self, stem: str) -> str | None:
        """The member holding table ``stem`` (``affinity.csv``, ...), or None."""
        found = [
            m
            for m in self.infos
            if m.rsplit(".", 1)[0] == stem and _ext(m) in READ_TABLE_EXTENSIONS
        ]
        if len(found) > 1:
            raise LabError(f"{self.name}: holds several {stem} tables ({', '.join(sorted(found))})")
        return found[0] if found else None

    def read(self, member: str) -> bytes:
        try:
            return self.zf.read(self.infos[member])
        except _UNPACK_ERRORS as exc:
            raise LabError(f"{self.name}: cannot unpack {member} ({short(exc)})") from None


def read_bundle(
    data: bytes, name: str, limit: int, options: ReadOptions | None = None
) -> ParsedRun:
    """Read and validate a zip bundle.

    Parameters
    ----------
    data : the zip's bytes (already checked against the size limit).
    name : the file's name; messages name members as ``"<name> › <member>"``.
    limit : size limit in bytes for the unpacked members together.
    options : what the user declared (a matrix's rows, the measure of a table naming none).

    Raises
    ------
    LabError
        An unreadable zip, no affinity table, a member over the limit, or any problem of a
        member (naming the member, row and column).
    """
    members = _Members(data, name, limit)
    aff_name = members.table("affinity")
    if aff_name is None:
        listed = ", ".join(sorted(members.infos)) or "nothing"
        tables = ", ".join(f"affinity{e}" for e in READ_TABLE_EXTENSIONS)
        raise LabError(f"{name}: no affinity table ({tables}); the zip holds: {listed}")
    meta: dict[str, Any] = {}
    if META in members.infos:
        check_member_size(members.infos[META].file_size, f"{name} › {META}")
        meta = parse_meta(members.read(META), f"{name} › {META}")
    tasks = meta.get("tasks")
    label = f"{name} › {aff_name}"
    data_a = members.read(aff_name)
    if not data_a.strip():
        raise LabError(f"{label}: the file is empty")
    cols, locate = parse_table(data_a, _ext(aff_name), label, numbers=True)
    aff, order = read_affinity(cols, locate, label, tasks=tasks, options=options or ReadOptions())
    metrics = empty_frame(METRIC_FRAME)
    met_name = members.table("metrics")
    if met_name is not None:
        mlabel = f"{name} › {met_name}"
        data_m = members.read(met_name)
        if data_m.strip():
            mcols, mlocate = parse_table(data_m, _ext(met_name), mlabel)
            metrics = validate_metrics(mcols, mlocate, mlabel, tasks=tasks)
    groupings = empty_frame(GROUPING_FRAME)
    if GROUPINGS in members.infos:
        groupings = parse_groupings(members.read(GROUPINGS), f"{name} › {GROUPINGS}", tasks)
    if tasks is None:
        tasks = first_seen(order, metrics["task"])
    return assemble(aff, metrics, groupings, meta, list(tasks))


def _ext(member: str) -> str:
    return "." + member.rsplit(".", 1)[-1].lower()


def parse_meta(data: bytes, name: str) -> dict[str, Any]:
    """``meta.json`` -> its object, checked.

    Raises
    ------
    LabError
        Not UTF-8 JSON, not an object, a newer ``format_version``, a bad ``tasks`` list
        (empty, blank or repeated names), ``task_types`` not mapping listed tasks to text,
        or ``config``/``notes``/``name`` of the wrong type.
    """
    try:
        meta = load_json(data.decode("utf-8-sig"), name)
    except UnicodeDecodeError:
        raise LabError(f"{name}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise LabError(
            f"{name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(meta, dict):
        raise LabError(f'{name}: must be a JSON object like {{"tasks": ["a", "b"]}}')
    version = meta.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise LabError(
            f"{name}: format_version {version!r} is newer than this lab reads "
            f"({FORMAT_VERSION}); update Task Affinity Lab"
        )
    tasks = meta.get("tasks")
    if tasks is not None:
        if (
            not isinstance(tasks, list)
            or not tasks
            or not all(isinstance(t, str) and t.strip() for t in tasks)
        ):
            raise LabError(f"{name}: 'tasks' must be a non-empty list of task names")
        check_tasks_count(len(tasks), name)
        dup = [t for t, c in Counter(tasks).items() if c > 1]
        if dup:
            raise LabError(f"{name}: task {dup[0]!r} is listed twice in 'tasks'")
    types = meta.get("task_types", {})
    if not isinstance(types, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in types.items()
    ):
        raise LabError(f"{name}: 'task_types' must map task names to type names")
    if tasks is not None:
        listed = set(tasks)
        extra = [k for k in types if k not in listed]
        if extra:
            raise LabError(f"{name}: 'task_types' names {extra[0]!r}, which is not in 'tasks'")
    for key, kind, what in (
        ("config", dict, "a JSON object"),
        ("notes", str, "text"),
        ("name", str, "text"),
    ):
        if key in meta and not isinstance(meta[key], kind):
            raise LabError(f"{name}: {key!r} must be {what}")
    check_depth(meta, name)
    return meta


def parse_groupings(data: bytes, name: str, tasks: list[str] | None) -> pd.DataFrame:
    """``groupings.jsonl`` -> a frame in ``GROUPING_FRAME`` columns (``groups`` a tuple of
    frozensets).

    Raises
    ------
    LabError
        A line that is not a grouping object, a bad step, a task outside ``tasks``, or two
        groupings for one (run, step).
    """
    rows = []
    check_lines(data, name)
    text = decode_text(data, name)
    listed = None if tasks is None else set(tasks)
    for k, line in enumerate(json_lines(text), start=1):
        if line.strip():
            rows.append(_grouping(line, f"{name}: line {k}", listed))
    df = pd.DataFrame(rows, columns=GROUPING_FRAME)
    if df.duplicated(["run", "step"]).any():
        raise LabError(f"{name}: a step has two groupings")
    df["step"] = df["step"].astype(np.int64)
    return df


def _grouping(line: str, where: str, tasks: set[str] | None) -> tuple[str, int, tuple]:
    """One line of ``groupings.jsonl`` -> ``(run, step, groups)``."""
    try:
        rec = load_json(line, where)
    except json.JSONDecodeError as exc:
        raise LabError(f"{where} is not valid JSON ({exc.msg})") from None
    if not isinstance(rec, dict) or "step" not in rec or "groups" not in rec:
        raise LabError(f'{where}: expected {{"step": 0, "groups": [["a", "b"], ["c"]]}}')
    step = rec["step"]
    if not _whole_step(step):
        raise LabError(
            f"{where}: step {show(step)} is not a whole number from 0 to 2**53 - 1 "
            "(steps are 0, 1, 2, ...)"
        )
    groups = rec["groups"]
    if not isinstance(groups, list) or not all(
        isinstance(g, list) and g and all(isinstance(t, str) for t in g) for g in groups
    ):
        raise LabError(f"{where}: 'groups' must be a list of non-empty lists of task names")
    if tasks is not None:
        unknown = [t for g in groups for t in g if t not in tasks]
        if unknown:
            raise LabError(f"{where}: task {unknown[0]!r} is not in meta.json's task list")
    run = rec.get("run", "")
    if not isinstance(run, str):
        raise LabError(f"{where}: 'run' must be text")
    return run, int(step), tuple(frozenset(g) for g in groups)


def _whole_step(step: Any) -> bool:
    """A JSON step the lab can store: a whole number (int or whole float) in 0..MAX_STEP;
    NaN and infinities are not."""
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        return False
    if isinstance(step, float) and (not math.isfinite(step) or not step.is_integer()):
        return False
    return 0 <= step <= MAX_STEP


def bundle_bytes(parsed: ParsedRun, affinity: pd.DataFrame, table_ext: str) -> bytes:
    """The bytes of a zip bundle of ``parsed``, its affinity table given as written
    (``affinity``), every table as ``table_ext`` (``.csv``, ``.parquet`` or ``.jsonl``).

    Raises ``LabError`` for another ``table_ext``.
    """
    if table_ext not in TABLE_EXTENSIONS:
        raise LabError(f"table format inside a zip must be one of {', '.join(TABLE_EXTENSIONS)}")
    multi = parsed.runs != [""]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"affinity{table_ext}", table_bytes(affinity, table_ext))
        if len(parsed.metrics):
            mcols = (["run"] if multi else []) + list(METRIC_REQUIRED)
            zf.writestr(f"metrics{table_ext}", table_bytes(parsed.metrics[mcols], table_ext))
        if len(parsed.groupings):
            lines = []
            for run, step, groups in parsed.groupings[GROUPING_FRAME].itertuples(index=False):
                rec: dict[str, Any] = {"run": run} if multi else {}
                rec.update(step=int(step), groups=[sorted(g) for g in groups])
                lines.append(json.dumps(rec))
            zf.writestr(GROUPINGS, "\n".join(lines) + "\n")
        meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **parsed.meta}
        meta["tasks"] = list(parsed.tasks)
        if parsed.task_types:
            meta["task_types"] = dict(parsed.task_types)
        # NaN/Infinity in a config are written as Python's json reads them (what imports,
        # exports: the same tokens the imported meta.json held)
        zf.writestr(META, json.dumps(meta, indent=2) + "\n")
    return buf.getvalue()
