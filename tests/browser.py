"""Headless Chromium from Debian's package, driven by Playwright for Python.

Playwright's own browser download cannot work on these machines, so the browser
is `/usr/bin/chromium` (installed by `scripts/test.sh` when missing), started
with the flags that keep it off the closed network. A missing browser is a
failure, not a skip: browser tests are part of the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """A launched Playwright `Browser` (sync API), shared by one module's tests.

    Module scope, not session: while Playwright's sync API is open it runs an
    event loop on the main thread, and every later test that calls
    `asyncio.run` would fail with "cannot be called from a running event loop"."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), (
        "Debian's chromium is missing: run ./scripts/test.sh, which installs it"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
