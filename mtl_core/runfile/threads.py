"""Whether a read's Arrow calls may use Arrow's thread pool (the CLI's ``import``), or stay on
the calling thread (the default: every other reader, the app's upload child above all).

Single-threaded by default because a read in the app runs in a child process whose address
space is capped (``RLIMIT_AS``, :mod:`mtl_core.runner.upload_read`): each Arrow worker thread
reserves a stack against that cap, so a threaded read there can fail as "failed to launch
worker thread" where one thread reads the file, and a read that fails leaves the pool's
threads behind in a process that goes on serving. A CLI process reads one file and exits, so
``import`` lets Arrow parse a CSV's blocks (and a Parquet file's columns) on every core
(:func:`read_run_file`'s ``threads=True``; bench/import_speed.py measures both).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_THREADS: contextvars.ContextVar[bool] = contextvars.ContextVar("arrow_threads", default=False)


@contextmanager
def arrow_threads(on: bool = True) -> Iterator[None]:
    """Within the block, the readers' Arrow calls use Arrow's threads when ``on``."""
    token = _THREADS.set(bool(on))
    try:
        yield
    finally:
        _THREADS.reset(token)


def use_threads() -> bool:
    """The ``use_threads`` the readers pass to pyarrow now (False unless within
    :func:`arrow_threads`)."""
    return _THREADS.get()
