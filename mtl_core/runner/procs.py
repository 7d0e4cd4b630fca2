"""Process helpers shared by the runner and the app's background jobs. Torch-free.

Whether a pid is alive, how a process ended (in words), how many runs may train at once, a
worker's thread count and CPU priority, and stopping a process politely then firmly.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

#: Environment variable: how many runs may train at once (see :func:`default_max_workers`).
WORKERS_ENV = "MTL_LAB_WORKERS"


def default_max_workers() -> int:
    """Concurrent training runs: ``$MTL_LAB_WORKERS`` when it is a whole number (at least 1),
    else 2 on a machine with 2+ cores (so the lesson's three runs overlap), else 1.

    One default for the runner, the CLI and the app. Workers split the cores between them
    (see :func:`prepare_process`), so more workers do not oversubscribe the CPU.
    """
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            pass  # a typo in the variable: fall back to the default rather than fail
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux: reads ``/proc``).

    A process of another user counts as alive (``os.kill`` is refused, but it exists).
    """
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # a zombie (a child that exited and was not reaped yet) counts as gone
        state = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def describe_exit(code: int | None) -> str:
    """How a process with exit code ``code`` ended, for a sentence ("the worker process ...").

    ``None`` = still running or unknown; a negative code is the signal that killed it.
    """
    if code is None:
        return "stopped"
    if code < 0:
        try:
            return f"was killed ({signal.Signals(-code).name})"
        except ValueError:
            return f"was killed (signal {-code})"
    return f"exited with code {code} without reporting an outcome"


_niced = False  # per process: whether prepare_process already lowered the priority


def prepare_process(n_workers: int, nice: int) -> None:
    """Thread count and CPU priority of a worker process; call before torch is imported.

    With ``n_workers > 1`` the cores are shared between concurrent runs (``OMP_NUM_THREADS``
    and ``MKL_NUM_THREADS``, unless already set). ``nice`` is added to the priority once per
    process (a standby that becomes a worker is not niced twice); refused = normal priority.
    """
    if n_workers > 1:  # read by torch at import
        threads = str(max(1, (os.cpu_count() or 1) // n_workers))
        os.environ.setdefault("OMP_NUM_THREADS", threads)
        os.environ.setdefault("MKL_NUM_THREADS", threads)
    global _niced
    if nice and not _niced:
        _niced = True
        try:
            os.nice(nice)
        except OSError:  # not permitted here: train at normal priority
            pass


def stop_process(proc: Any, timeout: float, *, terminate: bool = True) -> None:
    """End a ``multiprocessing`` process: SIGTERM (with ``terminate``; else only wait),
    wait up to ``timeout`` s, then SIGKILL and wait again. Returns at once if it has ended."""
    if terminate and proc.is_alive():
        proc.terminate()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join(timeout)


__all__ = [
    "WORKERS_ENV",
    "default_max_workers",
    "describe_exit",
    "pid_alive",
    "prepare_process",
    "stop_process",
]
