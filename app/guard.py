"""The app's error boundary: a page never shows a traceback.

A user error (``LabError``) shows its own one-line message; anything else is logged with its
traceback and shown as a short message.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable

import streamlit as st

from mtl_core.errors import LabError

log = logging.getLogger("task_affinity_lab.app")


def guard(fn: Callable[[], None], page: str | None = None) -> Callable[[], None]:
    """Run a page body; a user error (LabError) shows its message, an internal error is logged
    with its traceback and shown as a short message — never a traceback on screen. ``page``
    names the page in the log and the timing log (default: the module's last name)."""
    name = page or fn.__module__.rsplit(".", 1)[-1]

    @functools.wraps(fn)
    def wrapper() -> None:
        t0 = time.perf_counter()
        try:
            fn()
        except LabError as exc:
            st.error(str(exc))
        except Exception as exc:  # noqa: BLE001 - the last line of defence for the UI
            log.exception("internal error on page %s", name)
            st.error(
                f"Something went wrong inside the app ({type(exc).__name__}). It has been "
                "logged; try again, or reload the page."
            )
        finally:
            _log_timing(name, time.perf_counter() - t0)

    return wrapper


def _log_timing(page: str, seconds: float) -> None:
    """Append ``wall_time,page,ms`` of each full page run to ``$MTL_LAB_TIMING_LOG`` (when
    set): server-side timings for load tests, cheap enough to leave in."""
    path = os.environ.get("MTL_LAB_TIMING_LOG")
    if path:
        try:
            with open(path, "a") as fh:
                fh.write(f"{time.time():.3f},{page},{seconds * 1000:.1f}\n")
        except OSError:
            log.debug("timing log not writable", exc_info=True)


def show_error(exc: BaseException) -> None:
    """A caught error as a message: LabError verbatim, anything else logged + short text."""
    if isinstance(exc, LabError):
        st.error(str(exc))
    else:
        log.exception("internal error", exc_info=exc)
        st.error(f"Something went wrong inside the app ({type(exc).__name__}); it was logged.")
