"""The one ``browser`` fixture of the end-to-end modules (one Chromium per module)."""

from __future__ import annotations

import pytest

from tests.helpers.browser import ARGS, CHROMIUM


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="end-to-end tests need the playwright package"
    )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()
