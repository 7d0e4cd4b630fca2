"""Reading an upload in a child process with a time and a memory cap, so one upload can never
stall the shared server. Torch-free.

The app's Upload page reads every file through :func:`read_upload` instead of calling
:func:`mtl_core.runfile.read_run_file` in the server process (which every session shares),
and the Train page reads an uploaded table (the csv scenario) through
:func:`read_table_upload` the same way.
Each read runs in a fresh child process forked from a small server process that imported the
readers once (``multiprocessing``'s ``forkserver``: a read starts in milliseconds, and never
forks the server's threads); the child

- may use at most :func:`memory_mb` MB of memory beyond what it started with
  (``resource.setrlimit(RLIMIT_AS)``; ``MTL_LAB_UPLOAD_MEMORY_MB``, default 2,048: the largest
  file the reader's limits admit, a 30 MB CSV of 2,000,000 cells, needs about 1.3 GB),
- is stopped after :func:`time_limit_s` seconds (``MTL_LAB_UPLOAD_SECONDS``, default 60; its
  CPU time is capped by ``RLIMIT_CPU`` too, so it cannot outlive the cap even orphaned),
- exits within half a second of the server's death,

and at most :func:`max_readers` reads run at once (``MTL_LAB_UPLOAD_READERS``, default 2); a
read waits for a free reader within its time limit.

Only plain data crosses the process boundary, never a pickle of anything the upload holds: the
child sends back bytes, a JSON header (task names, notes, metadata, groupings as lists) and
the affinity and metric tables as Arrow IPC streams (a Train-page table: its numeric columns
as ``.npy``); the parent rebuilds the :class:`~mtl_core.runfile.ParsedRun` from them. The
file's bytes go to the child as the arguments the lab itself hands over.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing as mp
import os
import resource
import signal
import struct
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from mtl_core.errors import LabError
from mtl_core.runfile import ParsedRun, read_run_file
from mtl_core.runfile.read import UNREADABLE, ReadMemoryError, out_of_memory
from mtl_core.scenarios.table_read import Table, read_table_bytes

MEMORY_VARIABLE = "MTL_LAB_UPLOAD_MEMORY_MB"
SECONDS_VARIABLE = "MTL_LAB_UPLOAD_SECONDS"
READERS_VARIABLE = "MTL_LAB_UPLOAD_READERS"
DEFAULT_MEMORY_MB = 2_048
DEFAULT_SECONDS = 60.0
DEFAULT_READERS = 2
PREFIX = "cannot import "
#: What a capped read's own messages start with, by kind of read.
_PREFIXES = {"run": PREFIX, "table": "cannot read "}
_FRAMES = ("affinity", "metrics")


def memory_mb() -> int | None:
    """Memory one read may use beyond the reader process's own start (MB,
    ``MTL_LAB_UPLOAD_MEMORY_MB``; None = no cap)."""
    return _setting(MEMORY_VARIABLE, DEFAULT_MEMORY_MB, int)


def time_limit_s() -> float | None:
    """Seconds one read may take, waiting for a free reader included
    (``MTL_LAB_UPLOAD_SECONDS``; None = no cap)."""
    return _setting(SECONDS_VARIABLE, DEFAULT_SECONDS, float)


def max_readers() -> int:
    """Reads that may run at once (``MTL_LAB_UPLOAD_READERS``, at least 1)."""
    return _setting(READERS_VARIABLE, DEFAULT_READERS, int) or 1


def _setting(variable: str, default: Any, kind: type) -> Any:
    """A number setting; unreadable = the default (an upload never fails on a typo in the
    server's settings), 0 or less = no cap."""
    raw = os.environ.get(variable, "").strip().replace("_", "")
    try:
        value = kind(float(raw)) if raw else default
    except (ValueError, OverflowError):
        value = default
    return None if value <= 0 else value


_readers: threading.BoundedSemaphore | None = None
_readers_lock = threading.Lock()


def _slots() -> threading.BoundedSemaphore:
    global _readers
    with _readers_lock:
        if _readers is None:
            _readers = threading.BoundedSemaphore(max_readers())
        return _readers


def read_upload(
    data: bytes,
    filename: str,
    *,
    rows: str | None = None,
    measure: str | None = None,
    tag_pattern: str | None = None,
    unit: str | None = None,
) -> ParsedRun:
    """:func:`~mtl_core.runfile.read_run_file` of an upload's bytes, in a child process with
    the caps of the module docstring.

    Parameters
    ----------
    data : the file's bytes; filename : its name (selects the container);
    rows, measure, tag_pattern, unit : as :func:`~mtl_core.runfile.read_run_file`.

    Returns
    -------
    The same :class:`~mtl_core.runfile.ParsedRun` an in-process read returns.

    Raises
    ------
    LabError
        One line: the reader's own message, or ``"cannot import <file>: ..."`` saying which
        cap stopped the read (seconds or megabytes, and the variable that raises it), or
        that the server is busy reading other uploads.
    """
    return decode(_capped("run", data, filename, (rows, measure, tag_pattern, unit)))


def read_table_upload(data: bytes, filename: str) -> Table:
    """:func:`~mtl_core.scenarios.table_read.read_table_bytes` of a table uploaded on the
    Train page (the csv scenario), in a child process with the same caps as
    :func:`read_upload`.

    Returns the same :class:`~mtl_core.scenarios.table_read.Table` (numeric columns as
    float64 arrays; text columns as object arrays of what JSON holds: text, numbers,
    booleans, None; any other value as its text).

    Raises
    ------
    LabError
        One line: the reader's own message, or ``"cannot read <file>: ..."`` naming the cap
        that stopped the read, or that the server is busy reading other uploads.
    """
    return decode_table(_capped("table", data, filename, ()))


def _capped(kind: str, data: bytes, filename: str, options: tuple) -> bytes:
    """The child's answer (bytes) for one read of ``kind`` (``run`` or ``table``), waiting
    for a free reader within the time cap."""
    prefix = _PREFIXES[kind]
    limit = time_limit_s()
    deadline = None if limit is None else time.monotonic() + limit
    slots = _slots()
    if not slots.acquire(timeout=limit if limit is not None else -1):
        raise LabError(
            f"{prefix}{filename}: the server is reading {max_readers()} other uploads; try "
            "again in a minute"
        )
    try:
        return _read_in_child(kind, data, filename, options, deadline, limit)
    finally:
        slots.release()


def _context() -> Any:
    ctx = mp.get_context("forkserver")
    # the readers imported once in the fork server, not once per read
    ctx.set_forkserver_preload(["mtl_core.runner.upload_read"])
    return ctx


def await_answer(
    proc: Any, recv: Any, send: Any, deadline: float | None
) -> tuple[bytes | None, bool]:
    """Start ``proc`` (not yet started) and wait until ``deadline`` (``time.monotonic()``;
    None = no limit) for the one message it sends on the pipe ``recv``/``send``.

    Returns ``(payload, late)``: ``payload`` None when the child died before it answered or
    was late (``late`` True: it was killed at the deadline). The child is always gone
    (joined) on return, and both pipe ends are closed."""
    proc.start()
    send.close()  # the child holds the only writing end: EOF once it exits
    payload, late = None, False
    try:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if recv.poll(wait):
            try:
                payload = recv.recv_bytes()
            except EOFError:  # the child died before it answered
                payload = None
        else:
            late = True
    finally:
        recv.close()
        if payload is None and proc.is_alive():
            proc.kill()
        proc.join(5)
    return payload, late


def _read_in_child(
    kind: str,
    data: bytes,
    filename: str,
    options: tuple,
    deadline: float | None,
    limit: float | None,
) -> bytes:
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    mem = memory_mb()
    proc = ctx.Process(
        target=_child,
        args=(send, kind, bytes(data), filename, options, mem, limit, _lab_settings()),
        name="mtl-lab-upload-read",
        daemon=True,
    )
    payload, late = await_answer(proc, recv, send, deadline)
    if payload is None:
        raise LabError(_stopped(_PREFIXES[kind] + filename, proc.exitcode, late, limit, mem))
    return payload


def _lab_settings() -> dict[str, str]:
    """The ``MTL_LAB_*`` settings of this process, for the child: the fork server keeps the
    environment it started with, and the reader's limits must be the app's now."""
    return {k: v for k, v in os.environ.items() if k.startswith("MTL_LAB_")}


def _stopped(
    filename: str, code: int | None, late: bool, limit: float | None, mem: int | None
) -> str:
    """Why a read gave no answer: over its time (here, or its CPU cap's SIGXCPU), else
    killed or crashed (out of memory, most likely)."""
    if late or code == -getattr(signal, "SIGXCPU", 24):
        seconds = f"{limit:g}" if limit is not None else "?"
        return (
            f"{filename}: reading it took longer than the {seconds} s an upload may "
            f"take (the server's {SECONDS_VARIABLE}); import it with the command line instead"
        )
    return _over_memory(filename, mem, f" (the reader stopped: exit {code})")


def _over_memory(filename: str, mem: int | None, how: str = "") -> str:
    cap = f"the {mem:,} MB" if mem is not None else "the memory"
    return (
        f"{filename}: reading it needs more than {cap} an upload may use{how}; raise "
        f"the server's {MEMORY_VARIABLE}, or import it with the command line"
    )


# ----------------------------------------------------------------------------- the child


def _child(
    conn: Any,
    kind: str,
    data: bytes,
    filename: str,
    options: tuple,
    mem: int | None,
    limit: float | None,
    settings: dict[str, str],
) -> None:
    """The read, in the child: caps set first, then the answer as bytes (or nothing)."""
    _exit_when_orphaned()
    for k in [k for k in os.environ if k.startswith("MTL_LAB_")]:
        del os.environ[k]
    os.environ.update(settings)
    if mem is not None:
        _cap(resource.RLIMIT_AS, _address_space() + mem * 2**20)
    if limit is not None:
        _cap(resource.RLIMIT_CPU, math.ceil(limit) + 1)
    prefix = _PREFIXES[kind]
    try:
        if kind == "table":
            payload = encode_table(read_table_bytes(data, filename, detail=True))
        else:
            rows, measure, tag_pattern, unit = options
            parsed = read_run_file(
                data, filename, rows=rows, measure=measure, tag_pattern=tag_pattern, unit=unit
            )
            payload = encode(parsed)
    except ReadMemoryError:
        payload = _header({"error": _over_memory(prefix + filename, mem)})
    except LabError as exc:
        payload = _header({"error": str(exc)})
    except Exception as exc:  # noqa: BLE001 - a bug here must still answer in one line
        if out_of_memory(exc):
            payload = _header({"error": _over_memory(prefix + filename, mem)})
        else:
            said = f"{prefix}{filename}: {UNREADABLE} ({type(exc).__name__})"
            payload = _header({"error": said})
    del data
    conn.send_bytes(payload)
    conn.close()


def _cap(kind: int, soft: int) -> None:
    """Lower a resource limit of this process to ``soft`` (never above its hard limit); where
    the system refuses (macOS does not enforce ``RLIMIT_AS``), the wall-clock cap remains."""
    try:
        _, hard = resource.getrlimit(kind)
        resource.setrlimit(kind, (soft if hard < 0 else min(soft, hard), hard))
    except (ValueError, OSError):
        pass


def _address_space() -> int:
    """This process's virtual memory in bytes (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _exit_when_orphaned(poll_s: float = 0.5) -> None:
    """End this process within ``poll_s`` s once its parent (the fork server, which itself
    ends with the app) is gone: :func:`mtl_core.runner.procs.exit_with_parent` compares with
    the process that asked for the fork, which is not a forked child's parent here."""
    parent = os.getppid()

    def poll() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(3)

    threading.Thread(target=poll, name="mtl-lab-upload-parent-watch", daemon=True).start()


# ----------------------------------------------------------------------------- plain data


def _header(obj: dict[str, Any]) -> bytes:
    head = json.dumps(obj).encode("utf-8")
    return struct.pack("<Q", len(head)) + head


def encode(parsed: ParsedRun) -> bytes:
    """A parsed run as plain bytes: a JSON header, then one Arrow IPC stream per table.

    The inverse of :func:`decode`; ``groupings`` travel in the header as sorted lists.
    """
    import pyarrow as pa

    streams = []
    for key in _FRAMES:
        frame = getattr(parsed, key)
        buf = io.BytesIO()
        table = pa.Table.from_pandas(frame, preserve_index=False)
        with pa.ipc.new_stream(buf, table.schema) as writer:
            writer.write_table(table)
        streams.append(buf.getvalue())
    g = parsed.groupings
    head = {
        "tasks": list(parsed.tasks),
        "task_types": dict(parsed.task_types),
        "meta": parsed.meta,
        "runs": list(parsed.runs),
        "tasks_declared": parsed.tasks_declared,
        "notes": list(parsed.notes),
        "left_out": int(parsed.left_out),
        "first_left_out": parsed.first_left_out,
        "measure_assumed": parsed.measure_assumed,
        "is_matrix": parsed.is_matrix,
        "json_object": parsed.json_object,
        "groupings": [
            [str(run), int(step), [sorted(grp) for grp in groups]]
            for run, step, groups in g[["run", "step", "groups"]].itertuples(index=False)
        ],
        "dtypes": {k: {c: str(d) for c, d in getattr(parsed, k).dtypes.items()} for k in _FRAMES},
        "sizes": [len(s) for s in streams],
    }
    return _header(head) + b"".join(streams)


def decode(payload: bytes) -> ParsedRun:
    """A :class:`~mtl_core.runfile.ParsedRun` from :func:`encode`'s bytes (no pickle).

    Raises ``LabError`` with the child's message when the payload is an error.
    """
    import pyarrow as pa

    from mtl_core.runfile.schema import GROUPING_FRAME

    (n,) = struct.unpack_from("<Q", payload, 0)
    head = json.loads(payload[8 : 8 + n].decode("utf-8"))
    if "error" in head:
        raise LabError(head["error"])
    pos, frames = 8 + n, {}
    for key, size in zip(_FRAMES, head["sizes"], strict=True):
        table = pa.ipc.open_stream(payload[pos : pos + size]).read_all()
        pos += size
        frame = table.to_pandas()
        frames[key] = frame.astype(
            {c: (object if d == "object" else d) for c, d in head["dtypes"][key].items()}
        )
    rows = [
        (run, step, tuple(frozenset(grp) for grp in groups))
        for run, step, groups in head["groupings"]
    ]
    groupings = pd.DataFrame(rows, columns=GROUPING_FRAME)
    groupings["step"] = groupings["step"].astype("int64")
    return ParsedRun(
        tasks=head["tasks"],
        task_types=head["task_types"],
        affinity=frames["affinity"],
        metrics=frames["metrics"],
        groupings=groupings,
        meta=head["meta"],
        runs=head["runs"],
        tasks_declared=head["tasks_declared"],
        notes=head["notes"],
        left_out=head["left_out"],
        first_left_out=head["first_left_out"],
        measure_assumed=head["measure_assumed"],
        is_matrix=head["is_matrix"],
        json_object=head.get("json_object", False),
    )


def _plain(v: Any) -> Any:
    """A text column's value as JSON holds it (numpy scalars as Python ones; others as text)."""
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def encode_table(table: Table) -> bytes:
    """A table read on the Train page as plain bytes: a JSON header (names, row count,
    notes, the text columns' values), then the numeric columns as one ``.npy`` each
    (``allow_pickle=False`` both ways). The inverse of :func:`decode_table`."""
    arrays = []
    for col in table.numeric:
        buf = io.BytesIO()
        np.save(buf, np.asarray(table.numeric[col], dtype=np.float64), allow_pickle=False)
        arrays.append(buf.getvalue())
    head = {
        "columns": list(table.columns),
        "rows": int(table.rows),
        "notes": list(table.notes),
        "numeric": list(table.numeric),
        "text": {c: [_plain(v) for v in vals] for c, vals in table.text.items()},
        "sizes": [len(a) for a in arrays],
    }
    return _header(head) + b"".join(arrays)


def decode_table(payload: bytes) -> Table:
    """A :class:`~mtl_core.scenarios.table_read.Table` from :func:`encode_table`'s bytes.

    Raises ``LabError`` with the child's message when the payload is an error.
    """
    (n,) = struct.unpack_from("<Q", payload, 0)
    head = json.loads(payload[8 : 8 + n].decode("utf-8"))
    if "error" in head:
        raise LabError(head["error"])
    pos, numeric = 8 + n, {}
    for col, size in zip(head["numeric"], head["sizes"], strict=True):
        numeric[col] = np.load(io.BytesIO(payload[pos : pos + size]), allow_pickle=False)
        pos += size
    text = {c: np.asarray(vals, dtype=object) for c, vals in head["text"].items()}
    return Table(
        columns=tuple(head["columns"]),
        numeric=numeric,
        text=text,
        rows=int(head["rows"]),
        notes=tuple(head["notes"]),
    )
