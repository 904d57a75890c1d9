"""Pages opened in a real headless Chromium (Debian's, driven by Playwright).

Playwright cannot download its own browser here, so it is pointed at the system's
``chromium`` (``PERFCI_CHROMIUM`` overrides the path). Without one the tests skip, saying
why; CI installs it (``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright


def chromium_path() -> str | None:
    explicit = os.environ.get("PERFCI_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):  # Debian, Ubuntu, Actions
        found = shutil.which(name)
        if found:
            return found
    return None


# Module scope, not session: Playwright's sync API runs an event loop in this thread while
# it is open, and any later test calling asyncio.run() would find it running.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # Nothing but the file under test may load: a request elsewhere fails the page.
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith("file://") else route.abort()
        ),
    )
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()
