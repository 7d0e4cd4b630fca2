"""Headless Chromium for the end-to-end tests: where it is, how it starts, and the marks that
skip a module (with the reason) where it is absent. The ``browser`` fixture is in
``tests/e2e/conftest.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
#: Playwright cannot download its own browser here: Debian's, headless, no sandbox (root).
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: ``pytestmark`` of an end-to-end module.
E2E_MARKS = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"end-to-end tests need Chromium at {CHROMIUM} "
        "(Debian: apt-get install chromium; .ci/run installs it)",
    ),
]
