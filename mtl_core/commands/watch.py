"""``watch DIR``: import a live log folder into the store as it grows.

Polls ``DIR`` (the layout ``AffinityLogger(live=DIR)`` writes, see docs/live.md) every
``--interval`` seconds, reading only the bytes added since the last poll, and appends the new
steps to one store run (``origin=logged``, ``running`` while watched). Idempotent: watching the
same folder again continues the same run after its last step. One line per batch of new steps;
ends when the log is closed (``meta.json`` ``"live": false``), or on Ctrl-C (the run is left
``interrupted``, its steps kept; watching again resumes it).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mtl_core.errors import LabError

NOTE = "live_folder"  # the run note naming the folder a watched run follows


def add_parser(sub) -> None:
    p = sub.add_parser("watch", help="import a live log folder into the store as it grows")
    p.add_argument("dir", help="the log folder (AffinityLogger(live=DIR) writes it)")
    p.add_argument("--store", default=None, help="store path (default: $MTL_LAB_STORE)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    p.add_argument("--once", action="store_true", help="import what is there now and stop")
    p.set_defaults(func=run)


def find_run(store, folder: Path) -> int | None:
    """The store run already following ``folder`` (its ``live_folder`` note), or None."""
    for rid in store.run_ids():
        note = store.get_note(rid, NOTE)
        if note and note.get("path") == str(folder):
            return rid
    return None


def run(args: argparse.Namespace) -> int:
    from mtl_core.live import FolderFollower
    from mtl_core.store import Store

    if not float(args.interval) > 0:
        raise LabError(f"--interval must be a positive number of seconds, got {args.interval}")
    folder = Path(args.dir).resolve()
    if not folder.is_dir():
        raise LabError(f"{args.dir}: no such folder (start the training that logs into it first)")
    if not FolderFollower.is_live_folder(folder):
        raise LabError(f"{args.dir}: not a live log folder (no meta.json beside affinity.csv)")
    store = Store(args.store)
    rid = find_run(store, folder)
    after = store.get_run(rid).last_step if rid is not None else None
    follower = FolderFollower(folder, after_step=after)
    try:
        while True:
            batch = follower.poll()
            if batch.events:
                if rid is None:
                    meta = follower.meta
                    rid = store.create_run(
                        name=str(meta.get("name") or folder.name),
                        origin="logged",
                        status="running",
                        config=dict(meta.get("config") or {}),
                        tasks=follower.tasks,
                        task_types=dict(meta.get("task_types") or {}),
                        run_notes={NOTE: {"path": str(folder)}},
                    )
                store.set_status(rid, "running", only_from=("interrupted", "running"))
                store.append_steps(rid, batch.events)
                steps = [e.step for e in batch.events]
                print(f"run {rid}: {len(steps)} new steps ({steps[0]}..{steps[-1]})", flush=True)
            if batch.closed or args.once:
                if rid is not None and batch.closed:
                    store.set_status(rid, batch.status if batch.status != "running" else "finished",
                                     only_from=("running", "interrupted"))  # fmt: skip
                where = f"run {rid}" if rid is not None else "no steps yet"
                print(f"{where}: {'log closed' if batch.closed else 'imported'}", flush=True)
                return 0
            time.sleep(float(args.interval))
    except KeyboardInterrupt:
        if rid is not None:
            store.set_status(rid, "interrupted", only_from=("running",))
        raise
