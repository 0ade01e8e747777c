"""In a real browser: a clinician and a specialist (with the second factor) sign in and reach their dashboards."""

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from hospitals.demo import DEMO_PASSWORD, demo_load
from tests.e2e.conftest import off_loop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, live_server, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{live_server.url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_clinician_signs_in_and_sees_the_dashboard(page, live_server) -> None:  # type: ignore[no-untyped-def]
    off_loop(demo_load)
    _sign_in(page, live_server, "tula.clinician")
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert page.get_by_role("heading", name="My patients").is_visible()
    assert "Tula Regional Hospital" in page.get_by_test_id("who").inner_text()
    # The stylesheet and htmx come from this server, not a CDN.
    assert page.evaluate("() => typeof window.htmx") == "object"


def test_a_specialist_confirms_the_second_factor_and_sees_the_worklist(page, live_server) -> None:  # type: ignore[no-untyped-def]
    off_loop(demo_load)
    _sign_in(page, live_server, "moscow.cardiologist")
    page.wait_for_url("**/accounts/second-factor/verify/**")
    device = TOTPDevice.objects.get(user__username="moscow.cardiologist")
    page.get_by_label("Six-digit code").fill(f"{totp(device.bin_key, step=device.step, t0=device.t0):06d}")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", name="Worklist").is_visible()


def test_wrong_password_shows_a_message_in_the_browser(page, live_server) -> None:  # type: ignore[no-untyped-def]
    off_loop(demo_load)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("tula.clinician")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("Please enter a correct username and password")


def test_the_language_switch_and_the_api_documentation_work_under_the_pages_csp(page, live_server) -> None:  # type: ignore[no-untyped-def]
    off_loop(demo_load)
    _sign_in(page, live_server, "tula.clinician")
    page.wait_for_url(f"{live_server.url}/")
    # Choosing a language submits the form by itself (a script file's handler, not an inline one).
    page.get_by_label("Language").select_option("ru")
    page.wait_for_function("() => document.documentElement.lang === 'ru'")
    assert page.get_by_role("heading", name="Главная").is_visible()
    # Swagger UI starts from its own script URL and lists the API's operations.
    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".opblock-summary-path", has_text="/api/v1/patients/").first.wait_for()
