"""What the browser tests share: Debian's Chromium launched the way FIELD-NOTES says, a real
server subprocess (sora-2 is tiny-wan, sora-2-pro tiny-ltx), a page that fails the test on any
uncaught error, and screenshots in test-artifacts/ (ignored by git) for a person to look at.

Test modules import the fixtures they use (``from browser_support import browser, page``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openreel.jobs.store import JobStore
from openreel.server.auth import create_api_key
from remote_server import RemoteServer

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's Chromium is not installed (/usr/bin/chromium): apt-get install -y chromium",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")

# FIELD-NOTES: the flags Debian's Chromium needs in a container without a GPU or a sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# Small, one second, two steps: the page is under test, not the pictures.
FAST_SIZE = "160x96"
JOB_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def start_server(
    home: Path, folder: Path, *, keys: tuple[str, ...] = ()
) -> tuple[RemoteServer, dict[str, str]]:
    url = f"sqlite:///{folder / 'openreel.db'}"
    secrets: dict[str, str] = {}
    if keys:
        store = JobStore(url)
        secrets = {name: create_api_key(store, name)[1] for name in keys}
        store.close()
    remote = RemoteServer(home, url, env={"OPENREEL_OUTPUT_DIR": str(folder / "outputs")})
    return remote, secrets


@pytest.fixture(scope="module")
def server(session_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    remote, _ = start_server(session_home, tmp_path_factory.mktemp("studio"))
    try:
        yield remote
    finally:
        remote.stop()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def open_settings(page) -> None:
    """Open the composer's settings panel (the prompt bar keeps only the prompt and Create)."""
    button = page.locator("#settings-button")
    if button.get_attribute("aria-expanded") != "true":
        button.click()


def shot(page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
