"""mtl_core.runfile keeps its shape: no import cycle, no private name borrowed from a sibling,
no module over 500 lines (the single module it replaced had grown to 1,199 lines, in an import
cycle with three siblings)."""

from __future__ import annotations

import ast
from pathlib import Path

import mtl_core.runfile

PACKAGE = Path(mtl_core.runfile.__file__).parent
PREFIX = "mtl_core.runfile."


def _imports() -> dict[str, list[tuple[str, list[str]]]]:
    """module -> [(imported sibling, names)] for every ``from mtl_core.runfile.x import ...``."""
    out = {}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        out[path.stem] = [
            (node.module[len(PREFIX) :], [a.name for a in node.names])
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PREFIX)
        ]
    return out


def test_no_import_cycle():
    graph = {m: {s for s, _ in deps} for m, deps in _imports().items() if m != "__init__"}
    done: set[str] = set()

    def visit(m: str, path: tuple[str, ...]) -> None:
        assert m not in path, f"import cycle: {' -> '.join((*path, m))}"
        if m in done:
            return
        for dep in graph[m]:
            visit(dep, (*path, m))
        done.add(m)

    for m in graph:
        visit(m, ())


def test_no_private_names_cross_modules():
    borrowed = [
        (m, s, n)
        for m, deps in _imports().items()
        for s, names in deps
        for n in names
        if n.startswith("_")
    ]
    assert not borrowed


def test_modules_stay_small():
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.glob("*.py")}
    assert max(sizes.values()) <= 500, sizes
