"""``watch DIR``: import a live log folder into the store as it grows.

Polls ``DIR`` (the layout ``AffinityLogger(live=DIR)`` writes, see docs/live.md) every
``--interval`` seconds, reading only the bytes added since the last poll, and appends the new
steps to one store run (``origin=logged``, ``running`` while watched). Idempotent: watching the
same folder again continues the same run after its last step. One line per batch of new steps;
ends when the log is closed (``meta.json`` ``"live": false``), or on Ctrl-C (the run is left
``interrupted``, its steps kept; watching again resumes it). The import itself is
:class:`mtl_core.live.importer.LiveImport`, which the app's runner also uses.
"""

from __future__ import annotations

import argparse
import time

from mtl_core.errors import LabError


def add_parser(sub) -> None:
    p = sub.add_parser("watch", help="import a live log folder into the store as it grows")
    p.add_argument("dir", help="the log folder (AffinityLogger(live=DIR) writes it)")
    p.add_argument("--store", default=None, help="store path (default: $MTL_LAB_STORE)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    p.add_argument("--once", action="store_true", help="import what is there now and stop")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mtl_core.live.importer import LiveImport, live_folder
    from mtl_core.runner.procs import pid_alive
    from mtl_core.store import Store

    if not float(args.interval) > 0:
        raise LabError(f"--interval must be a positive number of seconds, got {args.interval}")
    folder = live_folder(args.dir)
    imp = LiveImport(Store(args.store), folder, alive=pid_alive)
    try:
        while True:
            steps = imp.poll()
            if steps:
                print(
                    f"run {imp.run_id}: {len(steps)} new steps ({steps[0]}..{steps[-1]})",
                    flush=True,
                )
            if imp.closed or args.once:
                where = f"run {imp.run_id}" if imp.run_id is not None else "no steps yet"
                said = "cancelled" if imp.cancelled else "log closed" if imp.closed else "imported"
                print(f"{where}: {said}", flush=True)
                return 0
            time.sleep(float(args.interval))
    except KeyboardInterrupt:
        imp.interrupt()
        raise
