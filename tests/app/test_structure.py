"""The app's shape: small files, no import cycles between its modules."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def _modules() -> dict[str, Path]:
    out = {}
    for f in APP.rglob("*.py"):
        parts = f.relative_to(APP.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def test_no_file_in_the_app_is_over_500_lines():
    long = {
        str(f.relative_to(APP.parent)): n
        for f in APP.rglob("*.py")
        if (n := len(f.read_text().splitlines())) > 500
    }
    assert not long


def test_app_modules_import_each_other_without_cycles():
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.parse(f.read_text()).body:  # module-level imports only
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    target = sub if sub in mods else node.module
                    if target in mods and target != m:
                        graph[m].add(target)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in mods)
    done: set[str] = set()

    def visit(m: str, path: tuple[str, ...]) -> None:
        assert m not in path, "import cycle: " + " -> ".join(path[path.index(m) :] + (m,))
        if m in done:
            return
        for n in sorted(graph[m]):
            visit(n, path + (m,))
        done.add(m)

    for m in sorted(graph):
        visit(m, ())
    assert "app.views.explore.page" in graph  # the walk saw the packages
