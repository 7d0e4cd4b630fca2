"""The Ground-truth tables page's work (read the uploads, solve every selection exactly) in a
capped child process, so that one large table can never stall the server every session
shares. Torch-free.

The same caps and machinery as the Upload page's reads (:mod:`.upload_read`): a fresh child
forked from a fork server, at most :func:`~.upload_read.memory_mb` MB beyond its start
(``MTL_LAB_UPLOAD_MEMORY_MB``), at most :func:`~.upload_read.max_readers` at once (shared with
the uploads), ending with the server; its time is :func:`time_limit_s` (``MTL_LAB_SELECT_SECONDS``,
default 180 s: the exact solves take longer than a read). Only JSON crosses the process
boundary, never a pickle of anything the upload holds.
"""

from __future__ import annotations

import json
import math
import os
import resource
import time
from typing import Any

from mtl_core.errors import LabError
from mtl_core.runner import upload_read as ur

SECONDS_VARIABLE = "MTL_LAB_SELECT_SECONDS"
DEFAULT_SECONDS = 180.0


def time_limit_s() -> float | None:
    """Seconds one page's selection may take (``MTL_LAB_SELECT_SECONDS``; None = no cap)."""
    return ur._setting(SECONDS_VARIABLE, DEFAULT_SECONDS, float)


def run_select_capped(layout: str, files: dict, **options: Any) -> dict:
    """:func:`mtl_core.groundtruth.uploads.run_select` in a capped child process.

    ``files``: ``{"sel"|"test"|"masks"|"est": (name, bytes) or None}``; ``options``: the
    keyword arguments of ``run_select`` (plain data). Returns its JSON-ready result.

    Raises
    ------
    LabError
        One line: the readers' own message, or which cap stopped the work (seconds or
        megabytes, and the variable that raises it), or that the server is busy.
    """
    name = (files.get("sel") or ("the table", b""))[0]
    limit = time_limit_s()
    deadline = None if limit is None else time.monotonic() + limit
    slots = ur._slots()
    if not slots.acquire(timeout=limit if limit is not None else -1):
        raise LabError(f"{name}: the server is busy with other uploads; try again in a minute")
    try:
        return _in_child(layout, files, options, name, deadline, limit)
    finally:
        slots.release()


def _in_child(layout, files, options, name, deadline, limit) -> dict:
    ctx = ur._context()
    recv, send = ctx.Pipe(duplex=False)
    mem = ur.memory_mb()
    plain = {k: (v[0], bytes(v[1])) for k, v in files.items() if v is not None}
    proc = ctx.Process(
        target=_child,
        args=(send, layout, plain, options, mem, limit, ur._lab_settings()),
        name="mtl-lab-select",
        daemon=True,
    )
    payload, late = ur.await_answer(proc, recv, send, deadline)
    if payload is None:
        if late or proc.exitcode == -24:  # over its time here, or its CPU cap's SIGXCPU
            raise LabError(
                f"{name}: choosing networks took longer than the {limit:g} s the page may take "
                f"(the server's {SECONDS_VARIABLE}); fewer k values, or the command line's "
                "`select`"
            )
        raise LabError(_over_memory(name, mem, f" (the solver stopped: exit {proc.exitcode})"))
    out = json.loads(payload.decode("utf-8"))
    if "error" in out:
        raise LabError(out["error"])
    return out


def _over_memory(name: str, mem: int | None, how: str = "") -> str:
    cap = f"the {mem:,} MB" if mem is not None else "the memory"
    return (
        f"{name}: choosing networks needs more than {cap} the page may use{how}; raise the "
        f"server's {ur.MEMORY_VARIABLE}, or use the command line's `select`"
    )


def _child(conn, layout, files, options, mem, limit, settings) -> None:
    """The work, in the child: caps first, then the JSON answer (or an error line)."""
    ur._exit_when_orphaned()
    for k in [k for k in os.environ if k.startswith("MTL_LAB_")]:
        del os.environ[k]
    os.environ.update(settings)
    if mem is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = ur._address_space() + mem * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard < 0 else min(cap, hard), hard))
    if limit is not None:
        cpu = math.ceil(limit) + 1
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu if hard < 0 else min(cpu, hard), hard))
    from mtl_core.groundtruth.uploads import run_select

    try:
        out = run_select(layout, files, **options)
    except MemoryError:
        out = {"error": _over_memory(files.get("sel", ("the table",))[0], mem)}
    except LabError as exc:
        out = {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a bug here must still answer in one line
        out = {"error": f"the selection failed inside the lab ({type(exc).__name__})"}
    conn.send_bytes(json.dumps(out).encode("utf-8"))
    conn.close()


__all__ = ["DEFAULT_SECONDS", "SECONDS_VARIABLE", "run_select_capped", "time_limit_s"]
