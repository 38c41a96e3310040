"""Browser fixtures: Debian's Chromium driven by Playwright, a server, console errors, artefacts.

The browser is the system one (``/usr/bin/chromium``, installed by ``.ci/run``); Playwright never
downloads one. The browser tests skip, saying so, only where that binary is absent. Every page
gets its browser console watched: an error logged by the browser fails the test at teardown
unless the test declared it expected. A failing test leaves a full-page screenshot in
``test-artifacts/console/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import RunningServer, start_server
from tests.security.conftest import create_key

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@dataclass
class Keys:
    """Secrets of one key per kind, made through the API on the console's server."""

    read: str
    write: str
    super_admin: str


@dataclass
class ConsoleServer:
    """The server the browser tests use, with its keys."""

    server: RunningServer
    keys: Keys

    def http(self, key: str | None = None) -> httpx.Client:
        return self.server.http(key or self.keys.super_admin)


@pytest.fixture(scope="module")
def console_server(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[ConsoleServer]:
    server = start_server(tmp_path_factory.mktemp("console"), embedder)
    with server.http() as root:
        keys = Keys(
            read=create_key(root, name="console-read", scope="read")["key"],
            write=create_key(root, name="console-write", scope="write")["key"],
            super_admin=create_key(root, name="console-admin", scope="super_admin")["key"],
        )
    yield ConsoleServer(server, keys)
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


@dataclass
class Console:
    """One browser tab on the console, and what its browser console logged."""

    page: Any
    url: str
    errors: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def expect_error(self, pattern: str) -> None:
        """Declare a browser console error this test provokes on purpose."""
        self.expected.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]

    def open(self, route: str) -> None:
        """Go to ``#/route`` and wait for the page's heading."""
        self.page.goto(f"{self.url}/console#/{route}")
        self.page.wait_for_selector("main h1")

    def sign_in(self, key: str) -> None:
        self.page.goto(f"{self.url}/console")
        self.page.fill("#api-key", key)
        self.page.press("#api-key", "Enter")
        self.page.wait_for_selector("#who-badge")


def open_console(browser: Any, url: str, viewport: dict[str, int]) -> tuple[Any, Console]:
    """A new browser context and tab on ``url``, its console errors collected."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(10_000)
    console = Console(page, url)
    page.on(
        "console",
        lambda message: (
            console.errors.append(f"console.{message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: console.errors.append(f"page error: {error}"))
    return context, console


def screenshot(request: pytest.FixtureRequest, console: Console) -> None:
    """Save the tab as ``test-artifacts/console/<test name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    console.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def finish(request: pytest.FixtureRequest, context: Any, console: Console) -> None:
    """At a fixture's teardown: screenshot on failure, fail on unexpected browser errors,
    close the context."""
    report = getattr(request.node, "report_call", None)
    try:
        if report is not None and report.failed:
            screenshot(request, console)
        unexpected = console.unexpected_errors()
        passed = report is not None and report.passed
        assert not (passed and unexpected), "browser console errors:\n" + "\n".join(unexpected)
    finally:
        context.close()


@pytest.fixture
def console(
    request: pytest.FixtureRequest, browser: Any, console_server: ConsoleServer
) -> Iterator[Console]:
    """A fresh tab (own sessionStorage) at 1280×800."""
    context, tab = open_console(browser, console_server.server.url, DESKTOP)
    yield tab
    finish(request, context, tab)


@pytest.fixture
def phone(
    request: pytest.FixtureRequest, browser: Any, console_server: ConsoleServer
) -> Iterator[Console]:
    """A fresh tab at 390×844."""
    context, tab = open_console(browser, console_server.server.url, PHONE)
    yield tab
    finish(request, context, tab)
