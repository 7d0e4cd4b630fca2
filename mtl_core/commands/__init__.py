"""CLI subcommands: each module exposes add_parser(subparsers) and run(args)."""

from __future__ import annotations

import sys
from pathlib import Path


def out_path(path: str | Path, what: str = "--out") -> Path:
    """Check an output path before any work (``mtl_core.runfile.prepare_out_path``: one
    missing folder level is created, deeper ones refused with ``LabError``) and say on
    stderr when a folder was made: ``note: created the folder runs for --out``."""
    from mtl_core.runfile import prepare_out_path
    from mtl_core.text.terminal import one_line

    p, made = prepare_out_path(path, what)
    if made is not None:
        sys.stderr.write(one_line(f"note: created the folder {made} for {what}") + "\n")
    return p
