"""What the real-browser tests share: Debian's chromium driven by Playwright, one browser per test
module, a page that records its console errors, and a way to refuse every load from the network.

Never ``playwright install`` (it downloads browsers): the tests use the system's chromium, which
``.ci/run`` installs with ``apt-get install chromium``. Without it, or without playwright, they skip.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from typing import Any

import pytest

#: Chromium's flags here: no sandbox (containers run as root), and nothing that reaches for the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: Desktop width: the book's main column is then about 780 px wide.
VIEWPORT = {"width": 1280, "height": 900}


def chromium_path() -> str | None:
    """The system's chromium (Debian: /usr/bin/chromium), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (one line), or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]' (it drives the system's chromium)"
    if chromium_path() is None:
        return "chromium is not installed: apt-get install chromium"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium for the whole test module (starting one costs about a second)."""
    if (why := missing_browser()) is not None:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class WatchedPage:
    """A new page in its own context that records console errors, uncaught exceptions and every
    request that would leave ``allowed`` (refused: the book and the lab must work offline)."""

    def __init__(self, browser: Any, allowed: str) -> None:
        self.errors: list[str] = []
        self.context = browser.new_context(viewport=VIEWPORT)
        self.context.route("**/*", self._route)
        self.allowed = allowed
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            where = msg.location.get("url", "") if isinstance(msg.location, dict) else ""
            self.errors.append(f"console error: {msg.text}" + (f" ({where.rsplit('/', 1)[-1]})" if where else ""))

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith((self.allowed, "data:", "blob:")):
            route.continue_()
        else:
            self.errors.append(f"loads from the network: {url}")
            route.abort()

    def close(self) -> None:
        self.context.close()
