"""Uploaded tables of the ``csv`` scenario: content-addressed files under the run store's folder.

A table uploaded in the app must reach the worker process that trains on it, and must never be
named by a server path a user chose (issue 13: a path knob read any file the server could).
So the app saves the uploaded bytes as ``<store folder>/tables/<sha256>.<ext>`` and the run's
config names only that reference (the ``table`` knob, e.g. ``"3f2a...9c.csv"``): a reference
is checked to be 64 hex digits and a known extension, so it can never point elsewhere.

Who uploaded a table is kept beside it (``<sha256>.owners``, a JSON list of owner keys, see
:mod:`mtl_core.accounts.access`): a run may use a table only when its owner uploaded it (the command
line, owner None, may use any). Identical bytes uploaded by two users are one file with two
owners.

Where the folder is: :func:`tables_dir` of the store file. A worker learns it from its store
(``MTL_LAB_TABLES`` is set in the worker process); elsewhere the default store's folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from mtl_core.errors import LabError

#: Environment variable naming the tables folder (set by a worker from its store's path).
TABLES_ENV = "MTL_LAB_TABLES"
#: Containers a table may come in (the run-file reader's table containers).
TABLE_EXTS = (".csv", ".tsv", ".parquet", ".jsonl", ".json")
_REF = re.compile(r"^[0-9a-f]{64}(\.(csv|tsv|parquet|jsonl|json))$")


def tables_dir(store_path: str | os.PathLike[str]) -> Path:
    """The tables folder of the run store at ``store_path``: ``tables/`` beside the file."""
    return Path(store_path).expanduser().resolve().parent / "tables"


def current_dir() -> Path:
    """The tables folder this process uses: ``$MTL_LAB_TABLES``, else the default store's."""
    env = os.environ.get(TABLES_ENV, "").strip()
    if env:
        return Path(env)
    from mtl_core.store import default_store_path

    return tables_dir(default_store_path())


def check_ref(ref: str) -> str:
    """``ref`` if it is a table reference (``<64 hex digits>.<ext>``), else LabError."""
    if not isinstance(ref, str) or not _REF.match(ref):
        raise LabError(
            "csv scenario: 'table' must name an uploaded table (64 hex digits and an "
            "extension, as the Train page writes it), not a file path"
        )
    return ref


def table_ext(file_name: str) -> str:
    """The container extension of an uploaded file's name (``.csv`` when it has none we
    know, e.g. ``.txt``: the reader sniffs the delimiter)."""
    ext = Path(file_name).suffix.lower()
    return ext if ext in TABLE_EXTS else ".csv"


def save_table(data: bytes, file_name: str, owner: str | None, folder: Path | None = None) -> str:
    """Save an uploaded table's bytes; returns its reference (``<sha256>.<ext>``).

    ``owner`` (an owner key, or None for the command line) is added to the table's owners.
    Writing is atomic (a temporary file, then a rename), so a worker never reads half a file.
    Raises LabError when the folder cannot be written.
    """
    folder = folder or current_dir()
    ref = hashlib.sha256(data).hexdigest() + table_ext(file_name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / ref
        if not target.exists():
            _atomic_write(target, data)
        if owner is not None:
            owners = owners_of(ref, folder)
            if owner not in owners:
                _atomic_write(_owners_file(ref, folder), json.dumps([*owners, owner]).encode())
    except OSError as exc:
        raise LabError(
            f"cannot save the uploaded table in the run store's folder ({exc.strerror})"
        ) from None
    return ref


def owners_of(ref: str, folder: Path | None = None) -> list[str]:
    """Owner keys that uploaded table ``ref`` (empty when none is recorded)."""
    path = _owners_file(check_ref(ref), folder or current_dir())
    try:
        owners = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(o) for o in owners] if isinstance(owners, list) else []


def check_owner(knobs: dict, owner: str | None, folder: Path | None = None) -> None:
    """Raise LabError when a run owned by ``owner`` names an uploaded table (knob ``table``)
    that ``owner`` did not upload (``owner`` None, the command line, may use any)."""
    ref = knobs.get("table") if isinstance(knobs, dict) else None
    if not ref or owner is None:
        return
    if owner not in owners_of(str(ref), folder):
        raise LabError(
            "csv scenario: this table was not uploaded by you; upload it on the Train page"
        )


def table_bytes(ref: str, folder: Path | None = None) -> bytes:
    """The bytes of uploaded table ``ref``; LabError when it is not there (deleted, or a run
    moved to another store without its tables folder)."""
    path = (folder or current_dir()) / check_ref(ref)
    try:
        return path.read_bytes()
    except OSError:
        raise LabError(
            "csv scenario: the uploaded table of this run is no longer in the run store's "
            "tables folder; upload it again"
        ) from None


def payload(knobs: dict, folder: Path) -> dict[str, bytes]:
    """``{ref: bytes}`` of the uploaded table a run's knobs name (empty for none): what a
    worker on another machine needs (see :func:`materialize`)."""
    ref = (knobs or {}).get("table")
    return {str(ref): table_bytes(str(ref), folder)} if ref else {}


def materialize(tables: dict[str, bytes], folder: Path) -> None:
    """Write ``{ref: bytes}`` into ``folder`` and make it this process's tables folder
    (a Ray worker, which may be on a machine without the store)."""
    folder.mkdir(parents=True, exist_ok=True)
    for ref, data in tables.items():
        _atomic_write(folder / check_ref(ref), data)
    os.environ[TABLES_ENV] = str(folder)


def _owners_file(ref: str, folder: Path) -> Path:
    return folder / (ref.split(".", 1)[0] + ".owners")


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
