"""A real headless Chromium (Debian's package) driven by Playwright against the live test server."""

import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from tests.conftest import need

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

T = TypeVar("T")


def off_loop(work: Callable[[], T]) -> T:
    """Run a service (the demo's loading, a device's result) in another thread and wait for it.

    Playwright's event loop lives in the test's thread, and the live events a service sends after its commit
    go through the channel layer with async_to_sync, which refuses to run in a thread that has a loop."""
    from django.db import connection

    def run() -> T:
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as other_thread:
        return other_thread.submit(run).result()


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
    """A fresh browser tab; any Content-Security-Policy violation on any page it visits fails the test (an
    inline script or style the policy refused is a feature that silently does not work)."""
    context = browser.new_context(locale="en-GB", timezone_id="Europe/Moscow")
    page = context.new_page()
    page.set_default_timeout(15_000)
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )
    yield page
    context.close()
    assert not refused, f"the page's CSP refused: {refused}"


def totp_code(username: str) -> str:
    """The user's current six-digit code, usable once more (as if the next 30-second window had come)."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user__username=username, confirmed=True)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0):06d}"


def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    """Sign a demo user in through the pages, with the second factor where their role asks for one."""
    from hospitals.demo import DEMO_PASSWORD
    from hospitals.models import Staff, User

    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    user = User.objects.get(username=username)
    staff = Staff.objects.filter(user=user).first()
    if user.is_superuser or (staff is not None and staff.needs_second_factor):
        page.wait_for_url("**/second-factor/verify/**")
        page.get_by_label("Six-digit code").fill(totp_code(username))
        page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{base}/")
