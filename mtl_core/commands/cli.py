"""``task-affinity-lab`` (the installed script) or ``python -m mtl_core``: the headless command
line.

Every subcommand module exposes ``add_parser(subparsers)`` (or ``add_parsers``) and a ``run``
function; a ``LabError`` (or a bad argument) becomes one clear line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import signal
import sys
import threading
from pathlib import Path

from mtl_core.errors import LabError, write_error
from mtl_core.text.terminal import one_line, safe_streams

PROG = "task-affinity-lab"  # [project.scripts] in pyproject.toml

# Subcommand modules in display order; a module missing from this checkout is skipped.
COMMAND_MODULES = (
    "mtl_core.commands.scenarios",
    "mtl_core.commands.train",
    "mtl_core.commands.group",
    "mtl_core.commands.evaluate",
    "mtl_core.commands.select",
    "mtl_core.commands.runs",
    "mtl_core.commands.lesson",
    "mtl_core.commands.watch",
    "mtl_core.commands.app",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {one_line(message)} (see --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    # --help names the command the user typed: the installed script or `python -m mtl_core`
    prog = PROG if Path(sys.argv[0]).name == PROG else "python -m mtl_core"
    parser = _Parser(prog=prog, description="Task Affinity Lab command line")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        if hasattr(mod, "add_parsers"):
            mod.add_parsers(sub)
        else:
            mod.add_parser(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill PID``, a container or job scheduler stopping us): handled like Ctrl-C,
    so a training run in the store is cancelled and its worker stops, its steps kept."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 done, 2 a user error, 130 Ctrl-C,
    143 SIGTERM).

    Everything printed goes through :func:`mtl_core.text.terminal.safe_streams` (control
    characters from a file are shown escaped, never sent to the terminal), and an error is
    one line (:func:`mtl_core.text.terminal.one_line`).
    """
    in_main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    try:
        with safe_streams():
            return _main(argv)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LabError as exc:
        sys.stderr.write(f"error: {one_line(str(exc))}\n")
        return 2
    except Terminated:
        sys.stderr.write("terminated (SIGTERM)\n")
        return 143
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:  # e.g. `runs | head`: the reader left, nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the machine said no: a full disk, no permission, a read-only disk
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # only a write fills a disk
            text = str(write_error(exc))
        else:
            text = (f"{exc.filename}: " if exc.filename else "") + (exc.strerror or str(exc))
        sys.stderr.write(f"error: {one_line(text)}\n")
        return 2
    except Exception:  # a bug: the traceback is for the report, its text escaped like the rest
        damage = _store_damage(args)
        if damage is not None:  # ... unless the store is damaged: that is the cause to report
            sys.stderr.write(f"error: {one_line(damage)}\n")
            return 2
        import traceback

        traceback.print_exc()
        return 1


def _store_damage(args: argparse.Namespace) -> str | None:
    """The damage message of the command's store (``--store``, else the default) when its
    file fails SQLite's ``quick_check``; None when it is sound, absent or cannot be checked."""
    from mtl_core.store import Store
    from mtl_core.store.base import default_store_path
    from mtl_core.store.faults import StoreFault

    path = getattr(args, "store", None) or default_store_path()
    try:
        if not Path(path).is_file():
            return None
        Store(path).check()
    except StoreFault as exc:
        return str(exc) if exc.kind == "damaged" else None
    except Exception:
        return None
    return None
