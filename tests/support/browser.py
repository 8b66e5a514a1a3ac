"""Real-browser fixtures: the app served over HTTP by uvicorn on loopback, Debian's Chromium
driven headless by Playwright, axe-core's accessibility check, and screenshots.

Registered as a plugin by tests/conftest.py (`pytest_plugins`), so any test can ask for
`live_server`, `page` or `phone_page`.

The browser is the machine's own `/usr/bin/chromium` (scripts/system-packages.sh installs it):
nothing here, nor any recipe, runs `playwright install`, which would download a build of its own.
axe-core comes bundled in the `axe-playwright-python` wheel, so the check needs no network.

Screenshots and accessibility results are listed in a "browser" section at the end of the test
run (also under pytest-xdist), so the paths can be cited without digging through captured output.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, Route, async_playwright
from playwright.async_api import Error as PlaywrightError

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium reaches for the network at start (component updates, sync, field
# trials, QUIC probes) and, as root, refuses to start with its sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # No name resolves but loopback's: a page that asks for a CDN fails here as it would offline.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SERIOUS = frozenset({"serious", "critical"})
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".dev" / "screenshots"
SERVER_START_SECONDS = 30.0

# What the running test saved or checked, moved onto its report by pytest_runtest_makereport
# (the report is what pytest-xdist sends back to the controller that prints the summary).
_pending: list[tuple[str, str]] = []
_failed = pytest.StashKey[bool]()


# --- the app over real HTTP -------------------------------------------------------------------


class LiveServer:
    """The app (its own instance, with its own lifespan and pools) served by uvicorn in a
    background thread: the thread runs its own event loop, and shares the process's clock, so
    the `clock` fixture moves the pages' time too."""

    def __init__(self, settings: Any) -> None:
        from api.app import create_app

        self.url = str(settings.public_base_url).rstrip("/")
        address = urlsplit(self.url)
        if address.scheme != "http" or address.hostname != "127.0.0.1" or not address.port:
            raise RuntimeError(
                f"PUBLIC_BASE_URL is {self.url!r}: the live server needs http://127.0.0.1:PORT "
                "(tests/conftest.py sets one)"
            )
        config = uvicorn.Config(
            create_app(settings),
            host=address.hostname,
            port=address.port,
            lifespan="on",
            access_log=False,
            log_config=None,
            log_level="warning",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="live-server", daemon=True)

    def start(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the live server did not start on {self.url} (see its log)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the live server did not start within {SERVER_START_SECONDS} s")
            time.sleep(0.05)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=SERVER_START_SECONDS)


@pytest.fixture(scope="session")
def live_server(settings: Any) -> Iterator[str]:
    """The base URL (no trailing slash) of the test app served over real HTTP, for the session.
    It is PUBLIC_BASE_URL, so the links in e-mails the tests capture point at it."""
    server = LiveServer(settings)
    url = server.start()
    yield url
    server.stop()


# --- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/system-packages.sh (make install does)")
    return CHROMIUM


@contextmanager
def _children_on_real_time() -> Iterator[None]:
    """`make test-at` preloads libfaketime into the test processes (scripts/test-at.sh).
    Inherited by Playwright's driver and Chromium, it slows each page by about a minute. They
    keep the real time; the app they browse runs in this process, on the moved clock."""
    preload = os.environ.get("LD_PRELOAD")
    if preload is None:
        yield
        return
    os.environ["LD_PRELOAD"] = ":".join(p for p in preload.split(":") if "faketime" not in p)
    try:
        yield
    finally:
        os.environ["LD_PRELOAD"] = preload


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    with _children_on_real_time():
        # The driver's environment is copied when it starts; Chromium inherits the driver's.
        playwright = await async_playwright().start()
    try:
        headless = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield headless
        finally:
            await headless.close()
    finally:
        await playwright.stop()


async def _page(browser: Browser, request: pytest.FixtureRequest, **options: Any) -> Page:
    context = await browser.new_context(locale="en-US", **options)
    problems: list[str] = []

    async def loopback_only(route: Route) -> None:
        # The pages must work with no internet, and a test sends no traffic off this machine.
        host = urlsplit(route.request.url).hostname or ""
        if host in LOOPBACK:
            await route.continue_()
        else:
            problems.append(f"asked for an outside address: {route.request.url}")
            await route.abort("blockedbyclient")

    await context.route(re.compile(r"^(https?|wss?)://"), loopback_only)
    page = await context.new_page()
    page.on("pageerror", lambda error: problems.append(f"script failed: {error}"))
    request.addfinalizer(lambda: _no_page_problems(problems))
    return page


def _no_page_problems(problems: list[str]) -> None:
    # A page that throws or needs the internet works for no one, even if the test's own checks
    # passed.
    assert not problems, "the page:\n" + "\n".join(problems)


async def _close(page: Page, request: pytest.FixtureRequest, label: str) -> None:
    if request.node.stash.get(_failed, False) and not page.is_closed():
        # Best effort: the test has already failed with its own reason, and a page that could not
        # be photographed (the usual reason it failed) must not add a second error in teardown.
        try:
            await screenshot(page, f"FAILED-{request.node.name}-{label}", full_page=False)
        except PlaywrightError as error:
            print(f"no failure screenshot: {error.message.splitlines()[0]}")
    await page.context.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh desktop page (1280x800, its own cookies); on failure its screenshot is saved."""
    tab = await _page(browser, request, viewport=DESKTOP)
    yield tab
    await _close(tab, request, "desktop")


@pytest.fixture
async def phone_page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh phone-sized page (390x844, mobile, touch)."""
    tab = await _page(browser, request, viewport=PHONE, is_mobile=True, has_touch=True)
    yield tab
    await _close(tab, request, "phone")


# --- accessibility and screenshots -------------------------------------------------------------


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [v for v in violations if v.get("impact") in SERIOUS]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        lines.append(f"  {violation.get('helpUrl', '')}")
        for node in violation.get("nodes", [])[:5]:
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"  at {node.get('target')}: {summary}")
    return "\n".join(lines)


async def assert_accessible(page: Page) -> None:
    """Fail with a readable list when axe-core finds a serious or critical violation."""
    violations = await axe_violations(page)
    size = page.viewport_size
    where = f"{await page.title()!r} ({_shown(page.url)}"
    where += f" at {size['width']}x{size['height']})" if size else ")"
    assert not violations, f"axe-core: {where}:\n{describe_violations(violations)}"
    _pending.append(("axe", f"{where}: no serious or critical violation"))


def _shown(url: str) -> str:
    """The page's path, a signed link's token cut short: it is a credential, even in a test."""
    path = urlsplit(url).path
    return re.sub(r"/([A-Za-z0-9_-]{8})[A-Za-z0-9_\-.]{32,}", r"/\1…", path)


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save the page as .dev/screenshots/<name>.png and print its path.

    The whole page by default; `full_page=False` keeps to the viewport, for pages so tall (Redoc
    lays out the entire API) that rendering them whole takes longer than the screenshot's timeout
    on a busy machine.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    _pending.append(("screenshot", str(path)))
    return path


# --- reporting ----------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    item.user_properties.extend(_pending)
    _pending.clear()
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_failed] = True
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # A test's teardown report carries everything it saved or checked, in order.
    lines = [
        f"{kind}: {value}"
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "teardown"
        for kind, value in report.user_properties
        if kind in ("screenshot", "axe")
    ]
    if lines:
        terminalreporter.section("browser")
        for line in lines:
            terminalreporter.line(line)
