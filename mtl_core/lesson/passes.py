"""What the runner does for lessons on every supervisor pass: queue a lesson's grouped run
once its together run has ended (:class:`LessonAdvancer`, phase 2 of
:func:`mtl_core.lesson.workflow.start`), and, when asked, train the default lesson ahead at a
few knob positions while idle (:class:`LessonsAhead`)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from mtl_core.errors import LabError
from mtl_core.lesson.workflow import (
    NOTE_GROUPS_RUN,
    NOTE_LESSON,
    Submitter,
    advance,
    lesson_key,
    start,
)
from mtl_core.store import TERMINAL, Store
from mtl_core.store.faults import StoreFault

#: Conflict levels the runner trains ahead when idle (comma-separated, e.g. ``1,0,0.5``);
#: ``off`` (or ``none``): no lessons ahead. Unset or empty: the caller's default (the app:
#: :data:`CLASS_POSITIONS`; a bare :class:`~mtl_core.runner.Runner`: off).
AHEAD_ENV = "MTL_LAB_LESSON_AHEAD"

#: The knob positions a class uses (the default, then the rest of the slider's stops), which
#: the app's idle runner holds ahead unless :data:`AHEAD_ENV` says otherwise.
CLASS_POSITIONS: tuple[float, ...] = (1.0, 0.0, 0.25, 0.5, 0.75)

_OFF = ("off", "none")


def ahead_positions(raw: str | None = None, default: tuple[float, ...] = ()) -> tuple[float, ...]:
    """The conflict levels of :data:`AHEAD_ENV` (or ``raw``), in the order given, each in
    [0, 1]; ``default`` when unset or empty, () for ``off``/``none`` (any case). LabError
    naming the bad entry."""
    text = (os.environ.get(AHEAD_ENV, "") if raw is None else raw).strip()
    if not text:
        return tuple(float(c) for c in default)
    if text.lower() in _OFF:
        return ()
    out: list[float] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            c = float(part)
        except ValueError:
            c = float("nan")
        if not 0.0 <= c <= 1.0:
            raise LabError(f"{AHEAD_ENV}: {part!r} is no conflict level in [0, 1]")
        out.append(c)
    return tuple(out)


class LessonsAhead:
    """The runner's lessons ahead (:data:`AHEAD_ENV`): while nothing is queued or running,
    queue the default lesson (default seed, steps, TAG groups) at the next conflict level of
    ``positions`` that no usable run stands for yet, one lesson per idle pass. Its runs have
    no owner, so every session finds them (shared in ``"class"`` and, as unowned runs, in
    ``"private"`` visibility: :func:`start`), and they are queued in the background
    (``start(background=True)``: the store starts them only when no other run is queued,
    until a student's press joins the lesson). Each level is tried once per runner; a failed
    try is written to ``warn`` and not repeated."""

    def __init__(
        self, positions: tuple[float, ...] = (), warn: Callable[[str], Any] | None = None
    ) -> None:
        self.positions = tuple(float(c) for c in positions)
        self.warn = warn or (lambda msg: sys.stderr.write(f"mtl_core.runner: {msg}\n"))
        self._tried: set[float] = set()

    def pass_(self, runner: Submitter, store: Store) -> list[int]:
        """One pass; the together run it queued (or []). Never raises."""
        todo = [c for c in self.positions if c not in self._tried]
        if not todo:
            return []
        try:
            if store.run_ids("queued", "running"):
                return []
            for c in todo:
                key = lesson_key({"conflict": c})
                if store.find_keyed(NOTE_LESSON, key) is not None:
                    self._tried.add(c)
                    continue
                self._tried.add(c)
                ids = start(runner, store, {"conflict": c}, share="class", background=True)
                return [ids.together]
        except StoreFault:
            pass  # the supervisor reports a fault of the store file itself, once
        except Exception as exc:  # the queue must go on
            self.warn(f"lessons ahead: {exc}")
        return []


class LessonAdvancer:
    """What the runner's supervisor calls on every pass (:meth:`pass_`): :func:`advance`
    for every lesson whose together run has ended and whose grouped run nobody has queued.

    A lesson that cannot advance now (its owner at the queue quota, a failed selection) is
    retried every ``retry_s`` seconds; each distinct reason (and a store that cannot be
    read) is written to ``warn`` once, not on every pass."""

    def __init__(self, retry_s: float = 5.0, warn: Callable[[str], Any] | None = None) -> None:
        self.retry_s = float(retry_s)
        self.warn = warn or (lambda msg: sys.stderr.write(f"mtl_core.runner: {msg}\n"))
        self._later: dict[int, float] = {}  # together id -> when to try again
        self._said: dict[int | None, str] = {}  # together id (None: the store) -> last reason

    def pass_(self, runner: Submitter, store: Store) -> list[int]:
        """One pass; returns the grouped runs it queued. Never raises."""
        try:
            waiting = store.open_claims(NOTE_GROUPS_RUN, TERMINAL)
        except StoreFault:
            return []  # the supervisor reports a fault of the store file itself, once
        except Exception as exc:
            self._say(None, "lessons cannot be read", exc)
            return []
        self._said.pop(None, None)
        out = []
        now = time.monotonic()
        for together in waiting:
            if now < self._later.get(together, 0.0):
                continue
            try:
                rid = advance(runner, store, together)
            except Exception as exc:  # one lesson must not stop the others, nor the queue
                self._say(together, f"lesson {together}: the grouped run waits", exc)
                self._later[together] = now + self.retry_s
                continue
            self._later.pop(together, None)
            self._said.pop(together, None)
            if rid is not None:
                out.append(rid)
        return out

    def _say(self, key: int | None, what: str, exc: Exception) -> None:
        why = str(exc) if isinstance(exc, LabError) else repr(exc)
        if self._said.get(key) != why:
            self._said[key] = why
            self.warn(f"{what}: {why}")
