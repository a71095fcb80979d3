"""Real headless Chromium, Debian's `chromium` package, driven by Playwright, for page tests.

Playwright's own browser download cannot run here (and is not needed): its Python wheel
carries the driver, and `launch(executable_path=...)` points it at the system's Chromium.
When that is missing and we are root on a Debian machine, the first test that needs it
installs it with apt-get (workers take turns on a lock file so apt's own lock is never
contended), as `tests/conftest.py` does for PostgreSQL. Where no Chromium can be had, the
tests skip with the reason, shown by `pytest -ra`.

Screenshots of the pages under test go to `test-artifacts/screenshots/` at the repository
root, so a person can look at what the tests saw.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from tests.system_packages import Unavailable, apt_install

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
APT_TIMEOUT = 300  # seconds; a cold `apt-get install chromium` pulls about 100 MB
LAUNCH_ARGS = (
    "--no-sandbox",  # containers and CI machines run the tests as root
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a small /dev/shm must not crash the renderer
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)


class ChromiumUnavailable(Unavailable):
    """Why no Chromium could be had; becomes the skip reason."""


def find_chromium() -> Path | None:
    """The system's Chromium: on PATH under one of its Debian or Ubuntu names."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def install_chromium() -> Path:
    """Install Debian's `chromium` (see `system_packages`)."""
    return apt_install("chromium", find_chromium, error=ChromiumUnavailable, timeout=APT_TIMEOUT)


def chromium_executable() -> Path:
    """The Chromium to drive, installing it first when it is missing."""
    return find_chromium() or install_chromium()


@contextlib.contextmanager
def launched_browser() -> Iterator[Browser]:
    """A headless Chromium under Playwright, closed afterwards."""
    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=list(LAUNCH_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of `page` as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@contextlib.contextmanager
def open_page(
    browser: Browser, url: str, name: str, *, width: int = 1400, height: int = 1900
) -> Iterator[Page]:
    """A page at `url` in a fresh browser context; on failure its screenshot is saved as
    `<name>-failed.png` (and its text printed) before the error goes on."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        page.goto(url)
        yield page
    except BaseException:
        with contextlib.suppress(Exception):
            print(f"page text of {name}:\n{page.locator('body').inner_text()[:4000]}")
            screenshot(page, f"{name}-failed")
        raise
    finally:
        context.close()
