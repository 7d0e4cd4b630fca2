"""JSON with numpy values, and files that appear whole or not at all. Torch-free.

One implementation of each, used by the run store, the file format, the ground-truth report and
its background job: ``json_default`` (the ``default=`` hook of ``json.dumps``) and the atomic
writers (write a temporary file in the same folder, then ``os.replace`` it over the target, so
a reader never sees half a file and a crash leaves the old file in place).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from mtl_core.errors import write_error


def json_default(o: Any) -> Any:
    """``json.dumps(..., default=json_default)``: numpy scalars and arrays as plain numbers and
    lists, sets as sorted lists (a stable order), tuples as lists.

    Raises
    ------
    TypeError
        For any other type (``json.dumps`` reports it as "not JSON serializable").
    """
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        try:
            return sorted(o)
        except TypeError:  # mixed types: any order is as good as another
            return list(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` with :func:`json_default` (other keyword arguments passed through)."""
    return json.dumps(obj, default=json_default, **kwargs)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created); returns the path.

    The bytes go to a uniquely named temporary file next to ``path`` (so two writers never
    share one) that replaces ``path`` in one ``os.replace``; on any error it is removed, and
    ``path`` is left as it was.

    Raises
    ------
    LabError
        The machine refused the write (a full disk, a read-only disk, no permission): one
        line naming ``path`` and what to do (:func:`mtl_core.errors.write_error`).
    """
    p = Path(path)
    # open(..., "xb") rather than mkstemp: the file gets the umask's usual permissions
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as fh:
            fh.write(data)
        os.replace(tmp, p)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise write_error(exc, p) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write_bytes` for text (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = None) -> Path:
    """Write ``obj`` as JSON (numpy-aware, see :func:`json_default`) atomically."""
    return atomic_write_text(path, dumps(obj, indent=indent))


__all__ = ["atomic_write_bytes", "atomic_write_text", "dumps", "json_default", "write_json"]
