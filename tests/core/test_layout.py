"""The library's shape (issue 19): few top-level modules, small files, torch only in train/."""

from __future__ import annotations

from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "mtl_core"


def test_no_library_file_is_over_500_lines():
    long = {
        str(f.relative_to(CORE.parent)): n
        for f in CORE.rglob("*.py")
        if (n := len(f.read_text().splitlines())) > 500
    }
    assert not long


def test_the_top_level_holds_at_most_eleven_modules():
    top = sorted(f.name for f in CORE.glob("*.py"))
    assert len(top) <= 11, top
