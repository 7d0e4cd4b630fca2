"""Process helpers shared by the runner and the app's background jobs. Torch-free.

Whether a pid is alive, how a process ended (in words), how many runs may train at once, a
worker's thread count and CPU priority, stopping a process politely then firmly, and a worker
noticing that the process that started it is gone (:func:`watch_parent`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtl_core.errors import LabError

if TYPE_CHECKING:
    from mtl_core.store import RunInfo

#: Exit codes of a worker that could not record its run's outcome because the store's file
#: failed (``mtl_core.store.faults.KINDS``), so the supervisor can say why.
STORE_FAULT_EXITS = {"full": 70, "readonly": 71, "damaged": 72, "io": 73}
_FAULT_WORDS = {
    "full": "the disk is full",
    "readonly": "the run store is read-only",
    "damaged": "the run store is damaged",
    "io": "the disk reported an I/O error",
}


def store_fault_words(code: int | None) -> str | None:
    """What a worker's exit code from :data:`STORE_FAULT_EXITS` means, else None."""
    for kind, c in STORE_FAULT_EXITS.items():
        if code == c:
            return _FAULT_WORDS[kind]
    return None


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
    words = store_fault_words(code)
    if words is not None:
        return f"could not write to the run store ({words})"
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


class ParentGone(BaseException):
    """Raised in a worker's main thread when the process that started it is gone (killed or
    crashed): the worker records its run as interrupted and exits. A BaseException so that a
    training loop's ``except Exception`` cannot swallow it."""


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_watching = False


def watch_parent(poll_s: float = 1.0) -> bool:
    """In a ``multiprocessing`` child: raise :class:`ParentGone` in the main thread soon
    after the parent process is gone. Returns whether a watch is set up (False outside a
    child, or where signals cannot be used).

    Two ways, so that a killed parent (SIGKILL: no chance to clean up) never leaves a
    worker training on: on Linux the kernel sends the parent-death signal
    (``prctl(PR_SET_PDEATHSIG)``, via ctypes) at once; everywhere a daemon thread checks every
    ``poll_s`` seconds whether this process was re-parented (``os.getppid()`` changed). The
    kernel's signal also comes when the parent's *thread* that started this process ends, so
    the handler only acts when the parent process itself is gone.
    """
    global _watching
    import multiprocessing as mp

    parent = mp.parent_process()
    sig = getattr(signal, "SIGUSR1", None)
    if parent is None or sig is None or threading.current_thread() is not threading.main_thread():
        return False
    if _watching:
        return True
    _watching = True
    parent_pid = parent.pid

    def gone() -> bool:
        # re-parented (to init or a subreaper) = the parent died. Not the parent's sentinel
        # pipe: it also closes when the parent merely drops its Process object.
        return os.getppid() != parent_pid

    def on_signal(signum: int, frame: Any) -> None:
        if gone():
            raise ParentGone

    signal.signal(sig, on_signal)
    _set_parent_death_signal(sig)
    main = threading.main_thread().ident

    def poll() -> None:
        while not gone():
            threading.Event().wait(poll_s)
        if main is not None:
            signal.pthread_kill(main, sig)  # interrupts a blocking call in the main thread

    threading.Thread(target=poll, name="mtl-lab-parent-watch", daemon=True).start()
    if gone():  # the parent died before the kernel's signal was armed
        raise ParentGone
    return True


def exit_with_parent(poll_s: float = 0.5) -> None:
    """Initializer of a pool's worker process (``ProcessPoolExecutor(initializer=...)``):
    end this process (``os._exit(3)``) within ``poll_s`` seconds of its parent's death.

    For workers that only run jobs handed to them (nothing to record on the way out): a
    daemon thread checks whether this process was re-parented (``os.getppid()`` changed),
    portable and not fooled by the parent's starting thread ending, as the kernel's
    parent-death signal would be. No-op outside a ``multiprocessing`` child.
    """
    import multiprocessing as mp

    parent = mp.parent_process()
    if parent is None:
        return
    parent_pid = parent.pid

    def poll() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(3)

    threading.Thread(target=poll, name="mtl-lab-pool-parent-watch", daemon=True).start()


def _set_parent_death_signal(sig: int) -> None:
    """Linux: ask the kernel to send ``sig`` when the parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl here: the polling thread still watches
        pass


__all__ = [
    "STORE_FAULT_EXITS",
    "WORKERS_ENV",
    "ParentGone",
    "default_max_workers",
    "describe_exit",
    "exit_with_parent",
    "pid_alive",
    "prepare_process",
    "stop_process",
    "store_fault_words",
    "watch_parent",
]


def check_finished(info: RunInfo) -> RunInfo:
    """Return ``info`` if the run finished, else raise a LabError saying how it ended."""
    if info.status == "finished":
        return info
    reason = f": {info.error}" if info.error else ""
    raise LabError(f"run {info.id} {info.status}{reason}")
