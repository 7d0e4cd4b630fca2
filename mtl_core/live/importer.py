"""Import a growing live log folder into one store run: what ``task-affinity-lab watch DIR``
does in a loop, and what the app's runner does in a thread (``Runner.follow_folder``).

One store run per folder: the run carries a note (``live_folder``) naming the folder, so
importing the same folder again continues that run after its last step (idempotent).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mtl_core.errors import LabError
from mtl_core.live.follow import FolderFollower

NOTE = "live_folder"  # the run note naming the folder a followed run imports


def find_run(store: Any, folder: Path) -> int | None:
    """The store run already importing ``folder`` (its ``live_folder`` note), or None."""
    for rid in store.run_ids():
        note = store.get_note(rid, NOTE)
        if note and note.get("path") == str(folder):
            return rid
    return None


def live_folder(path: str | Path, shown: str | None = None) -> Path:
    """``path`` resolved, checked to be a live log folder (``meta.json`` beside
    ``affinity.csv``); LabError naming ``shown`` (default: the path as given) otherwise."""
    name = str(path) if shown is None else shown
    folder = Path(path).resolve()
    if not folder.is_dir():
        raise LabError(f"{name}: no such folder (start the training that logs into it first)")
    if not FolderFollower.is_live_folder(folder):
        raise LabError(f"{name}: not a live log folder (no meta.json beside affinity.csv)")
    return folder


def allowed_folder(text: str, roots: Sequence[str | Path], base: str | Path) -> Path:
    """The live log folder a user typed (``text``, untrusted), resolved against ``base`` when
    relative, symbolic links and ``..`` resolved, and refused (LabError, one line) unless it
    lies inside one of ``roots`` and is a live log folder. Messages name the path as typed."""
    text = str(text).strip()
    if not text:
        raise LabError("type the path of a live log folder on the server")
    if "\x00" in text or len(text) > 4096:
        raise LabError("that is not a usable folder path")
    folder = (Path(base) / text).resolve()
    inside = [Path(r).resolve() for r in roots]
    if not any(folder == r or folder.is_relative_to(r) for r in inside):
        where = ", ".join(str(r) for r in inside) or "none are set"
        raise LabError(f"{text}: outside the folders this server may follow ({where})")
    return live_folder(folder, shown=text)


class LiveImport:
    """Append what a live log folder gained since the last :meth:`poll` to its store run.

    ``folder``: a live log folder (:func:`live_folder`). The run (``origin=logged``, status
    ``running`` while followed, owned by ``owner``) is found by its note or created on the
    first poll that has steps, or on the first poll at all with ``create_now`` (so a caller
    can link to it before the first step lands). ``limits`` checks the owner's queue quota
    when the run is created (``Store.create_run``). The run records this process and host
    (``Store.set_worker``: a runner marks it ``interrupted`` if the process dies); a cancel
    asked for it (Explore's button) ends the import, the run ``cancelled``. With ``alive``
    (``mtl_core.runner.procs.pid_alive``), a folder another live process of this host is
    importing is refused, so two importers never write the same run. Raises LabError for a
    malformed log, a folder whose run was cancelled, or one imported elsewhere.
    """

    def __init__(
        self,
        store: Any,
        folder: str | Path,
        *,
        owner: str | None = None,
        limits: Any = None,
        create_now: bool = False,
        alive: Callable[[int], bool] | None = None,
    ) -> None:
        self.store, self.folder = store, live_folder(folder)
        self.owner, self.limits, self.create_now = owner, limits, create_now
        self.run_id = find_run(store, self.folder)
        after = None
        if self.run_id is not None:
            info = store.get_run(self.run_id)
            if info.status == "cancelled":
                raise LabError(
                    f"{folder}: its run #{self.run_id} was cancelled; delete that run to "
                    "import the folder again"
                )
            other = info.worker_pid not in (None, os.getpid())
            here = info.host == socket.gethostname()
            if info.status == "running" and other and here and alive and alive(info.worker_pid):
                raise LabError(
                    f"{folder}: process {info.worker_pid} is importing it already (run "
                    f"#{self.run_id}); open that run, or stop that process first"
                )
            after = info.last_step
        self.follower = FolderFollower(self.folder, after_step=after)
        self.closed = self.cancelled = self._claimed = False

    def poll(self) -> list[int]:
        """Import the steps completed since the last poll; returns their numbers. When the log
        is closed (``meta.json`` ``"live": false``) the run gets the log's final status
        (``finished`` unless it says otherwise) and :attr:`closed` is set."""
        if self.run_id is not None and self._cancel_asked():
            self.store.set_status(
                self.run_id, "cancelled", error="cancelled while its folder was followed",
                only_from=("running",),
            )  # fmt: skip
            self.closed = self.cancelled = True
            return []
        batch = self.follower.poll()
        if self.run_id is None and (batch.events or self.create_now):
            self.run_id = self._create()
        if self.run_id is not None and not self._claimed:
            self._claim()
        if batch.events:
            self.store.set_status(self.run_id, "running", only_from=("interrupted",))
            self.store.append_steps(self.run_id, batch.events)
        if batch.closed:
            self.closed = True
            if self.run_id is not None:
                final = batch.status if batch.status != "running" else "finished"
                self.store.set_status(self.run_id, final, only_from=("running", "interrupted"))
        return [e.step for e in batch.events]

    def resume(self) -> None:
        """Mark an existing ``interrupted`` run ``running`` again (following resumes now, before
        new steps land, so a reader polls it live)."""
        if self.run_id is not None:
            self.store.set_status(self.run_id, "running", only_from=("interrupted",))
            self._claim()

    def _claim(self) -> None:
        """Record this process as the run's importer (``Store.set_worker`` with this host),
        so a runner marks the run ``interrupted`` if this process dies without a word."""
        self.store.set_worker(self.run_id, os.getpid(), host=socket.gethostname())
        self._claimed = True

    def _cancel_asked(self) -> bool:
        info = self.store.get_run(self.run_id)
        return info.cancel_requested and info.status == "running"

    def interrupt(self) -> None:
        """Stop following: the run is left ``interrupted`` (its steps kept; following the
        folder again resumes it)."""
        if self.run_id is not None and not self.closed:
            self.store.set_status(self.run_id, "interrupted", only_from=("running",))

    def _create(self) -> int:
        meta = self.follower.meta
        return self.store.create_run(
            name=str(meta.get("name") or self.folder.name),
            origin="logged",
            status="running",
            config=dict(meta.get("config") or {}),
            tasks=self.follower.tasks,
            task_types=dict(meta.get("task_types") or {}),
            owner=self.owner,
            limits=self.limits,
            run_notes={NOTE: {"path": str(self.folder)}},
        )
