"""A real headless Chromium (Debian's package) driven by Playwright against the live test server."""

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import need

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


# Module scope: Playwright's loop must be gone before other modules' asyncio tests run.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    need("Chromium (apt-get install chromium)", bool(shutil.which(CHROMIUM)))
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread for as long as the browser lives; the tests'
    # own ORM calls (and the database flush after each test) stay synchronous all the same.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="en-GB", timezone_id="Europe/Moscow")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
