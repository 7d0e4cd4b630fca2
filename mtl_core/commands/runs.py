"""``runs``, ``import``, ``export``, ``delete``: the run store from the command line.

Every command takes ``--store PATH`` (default ``$MTL_LAB_STORE``, else ``./.lab/store.sqlite``).
Errors are ``LabError``s, which the CLI prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mtl_core import measures
from mtl_core.commands.group import add_read_options, warn
from mtl_core.errors import LabError
from mtl_core.store import RunInfo, Store
from mtl_core.store.faults import StoreFault

STORE_HELP = "run store file (default: $MTL_LAB_STORE, else ./.lab/store.sqlite)"


def add_parsers(sub) -> None:
    """Register the four subcommands on the CLI's subparsers."""
    p = sub.add_parser("runs", help="list the runs in the run store")
    p.add_argument("--store", default=None, help=STORE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object per run")
    p.set_defaults(func=run_runs)

    p = sub.add_parser(
        "import",
        help="import a run file (.csv, .tsv, .txt, .parquet, .jsonl, .json, .npy, .npz, "
        ".zip, TensorBoard events)",
    )
    p.add_argument("file", help="the file (or a TensorBoard log folder) to import")
    p.add_argument("--name", default=None, help="run name (default: the file's name)")
    p.add_argument("--store", default=None, help=STORE_HELP)
    p.add_argument(
        "--measure",
        default=None,
        type=measures.canonical,
        help="the measure of a file that names none (default: lookahead), e.g. proximal; "
        "an alias such as TAG is saved as its measure's name",
    )
    add_read_options(p)
    p.set_defaults(func=run_import)

    p = sub.add_parser("export", help="write a run in the open format (.zip keeps everything)")
    p.add_argument("run_id", type=int, help="run id (see `runs`)")
    p.add_argument("--out", required=True, help="file to write: .zip, .csv, .parquet or .jsonl")
    p.add_argument("--store", default=None, help=STORE_HELP)
    p.set_defaults(func=run_export)

    p = sub.add_parser("delete", help="delete a run and everything logged for it")
    p.add_argument("run_id", type=int, help="run id (see `runs`)")
    p.add_argument("--store", default=None, help=STORE_HELP)
    p.set_defaults(func=run_delete)


def _store(args: argparse.Namespace) -> Store:
    return Store(args.store)


def run_runs(args: argparse.Namespace) -> int:
    """Print the store's runs, oldest first, after checking the file (``quick_check``): a
    damaged store lists what still reads (a run it left ``running`` shown ``failed``, as
    no step of it can be saved) and fails with the damage and the recovery step."""
    store = _store(args)
    try:
        store.check()
        damage = None
    except StoreFault as exc:  # list what still reads first, then say so
        if exc.kind != "damaged":
            raise
        damage = exc
    runs = store.list_runs()
    if getattr(args, "json", False):
        for r in runs:
            d = r.to_dict()
            d.pop("config"), d.pop("error_detail")
            print(json.dumps(d))
    elif not runs:
        print(f"no runs in {store.path}")
    else:
        print(format_runs(runs))
    sys.stdout.flush()
    if damage is not None:
        raise damage  # one line, exit 2
    return 0


def format_runs(runs: list[RunInfo]) -> str:
    """A fixed-width table of runs (one line each)."""
    head = (
        f"{'id':>4}  {'status':<11} {'origin':<8} {'steps':>11}  {'tasks':>5}  "
        f"{'measures':<18} {'created':<16}  name"
    )
    lines = [head]
    for r in runs:
        steps = f"{r.steps_done}/{r.steps_total}" if r.steps_total else str(r.steps_done)
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
        line = (
            f"{r.id:>4}  {r.status:<11} {r.origin:<8} {steps:>11}  {len(r.tasks):>5}  "
            f"{','.join(r.measures) or '-':<18} {created:<16}  {r.name}"
        )
        if r.error and r.status != "finished":
            line += f"  ({r.error[:80]})"
        lines.append(line)
    return "\n".join(lines)


def run_import(args: argparse.Namespace) -> int:
    """Validate a file completely, then add its run(s) to the store in one transaction."""
    from mtl_core.runfile import read_run_file
    from mtl_core.runfile.schema import run_name

    path = Path(args.file)
    # Arrow on every core: this process reads one file and exits (the app's upload child
    # reads single-threaded under its memory cap, mtl_core.runfile.threads)
    parsed = read_run_file(
        path,
        rows=args.rows,
        measure=args.measure,
        tag_pattern=args.tag_pattern,
        unit=args.unit,
        threads=True,
    )
    for text in parsed.warnings():
        warn(text)
    if parsed.measure_assumed:
        warn("the file names no measure: imported as lookahead (say another with --measure)")
    name = args.name or str(parsed.meta.get("name") or "") or run_name(path.name)
    store = _store(args)
    ids = store.import_parsed(parsed, name)
    # a square JSON object reads the same either way round: the reading is in the result
    # line too, not only in a warning above it
    way = parsed.orientation_note() or ""
    if "symmetric" in way:
        way = " (a symmetric JSON object: read the same either way round)"
    elif way:
        way = (
            " (JSON outer keys read as SOURCES, as --rows target declares)"
            if args.rows == "target"
            else " (JSON outer keys read as TARGETS; --rows target flips it)"
        )
    for rid in ids:
        info = store.get_run(rid)
        cells = ", ".join(info.measures) or "no affinity"
        left = f", {parsed.left_out} non-finite cells left out" if parsed.left_out else ""
        print(
            f"imported run {rid} {info.name!r}: {_count(len(info.tasks), 'task')}, "
            f"{_count(int(info.steps_done or 0), 'step')}, {cells}{left}{way}"
        )
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write a run to ``--out`` in the open format."""
    from mtl_core.commands import out_path
    from mtl_core.runfile import FILE_EXTENSIONS, dropped_parts, write_run_file

    out = Path(args.out)
    if out.suffix.lower() not in FILE_EXTENSIONS:
        raise LabError(f"--out {out}: use one of the extensions {', '.join(FILE_EXTENSIONS)}")
    parsed = _store(args).export_parsed(args.run_id)  # a missing run: no folder made
    out_path(out)
    if not len(parsed.affinity):
        raise LabError(f"run {args.run_id} has no affinity logged yet; nothing to export")
    write_run_file(parsed, out)
    print(f"wrote run {args.run_id} to {out}")
    lost = dropped_parts(parsed, out.name)
    if lost:
        sys.stderr.write(
            f"note: {out.suffix} holds the affinity table only; "
            f"use .zip to keep the {', '.join(lost)} too\n"
        )
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Delete a run (a running run must be cancelled first)."""
    store = _store(args)
    info = store.get_run(args.run_id)
    store.delete_run(args.run_id)
    print(f"deleted run {args.run_id} {info.name!r}")
    return 0


def _count(n: int, noun: str) -> str:
    """``1 step``, ``12 steps``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
