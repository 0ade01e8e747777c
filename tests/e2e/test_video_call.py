"""In two real browsers: Moscow's cardiologist rings the Tula clinician about an accepted consultation, the
clinician answers from the ringing panel on another page, both see and hear each other (Chromium's fake
camera and microphone), they chat, and the hang-up and a missed call land in the consultation's call log.

Chromium gathers host candidates only (no STUN or TURN is configured in the tests), with their real
addresses rather than mDNS names, so the media goes between two tabs of this machine and nowhere else."""

import os
import shutil
import time
from collections.abc import Iterator

import pytest

from consultations.models import Call, Consultation, Message
from hospitals.demo import demo_load
from hospitals.models import Hospital, User
from tests.conftest import PatientFactory, consultation_make, need
from tests.e2e.conftest import CHROMIUM, off_loop, sign_in

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """The suite's Chromium with a fake camera and microphone that it may use without asking."""
    need("Chromium (apt-get install chromium)", bool(shutil.which(CHROMIUM)))
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--disable-features=WebRtcHideLocalIpsWithMdns",
            ],
        )
        yield launched
        launched.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def second_page(browser):  # type: ignore[no-untyped-def]
    """Another person's browser (a context of its own: its own cookies)."""
    context = browser.new_context(locale="en-GB", timezone_id="Europe/Moscow")
    page = context.new_page()
    page.set_default_timeout(20_000)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    yield page
    context.close()
    assert not refused, f"the page's CSP refused: {refused}"


def _accepted() -> Consultation:
    demo_load()
    tula = Hospital.objects.get(name="Tula Regional Hospital")
    return consultation_make(  # type: ignore[no-any-return]
        PatientFactory(hospital=tula),
        state="accepted",
        requested_by=User.objects.get(username="tula.clinician"),
        assigned_to=User.objects.get(username="moscow.cardiologist"),
    )


def test_a_specialist_rings_the_clinician_answers_they_see_each_other_chat_and_hang_up(  # type: ignore[no-untyped-def]
    page, second_page, asgi_server: str, settings
) -> None:
    settings.CALL_RING_SECONDS = 8  # the missed call at the end rings out quickly
    consultation = off_loop(_accepted)
    specialist, clinician = page, second_page
    call_url = f"{asgi_server}/consultations/{consultation.pk}/call/"

    sign_in(specialist, asgi_server, "moscow.cardiologist")
    specialist.goto(call_url)
    specialist.wait_for_function("() => document.getElementById('call').dataset.room === 'open'")
    sign_in(clinician, asgi_server, "tula.clinician")
    clinician.goto(f"{asgi_server}/consultations/{consultation.pk}/")
    clinician.wait_for_function("() => document.body.dataset.live === 'connected'")

    # Moscow rings; in Tula a panel rings over the consultation page.
    specialist.get_by_test_id("call-ring").click()
    specialist.wait_for_function("() => document.getElementById('call').dataset.state === 'ringing'")
    panel = clinician.get_by_test_id("ring-panel")
    panel.wait_for()
    assert "Соколова" in panel.inner_text() and f"#{consultation.pk}" in panel.inner_text()
    clicked = time.monotonic()
    panel.get_by_test_id("ring-answer").click()

    # Both sides connect, and each one's video plays on the other's page.
    for side in (clinician, specialist):
        side.wait_for_function("() => document.getElementById('call').dataset.connection === 'connected'")
    answer_to_connected = time.monotonic() - clicked
    for side in (clinician, specialist):
        side.wait_for_function("() => document.getElementById('remote-video').videoWidth > 0")
        side.wait_for_function("() => Number(document.getElementById('call').dataset.framesDecoded || 0) > 0")
    assert specialist.get_by_test_id("call-status").inner_text() == "Connected with Сергей Иванов."
    assert clinician.get_by_test_id("call-status").inner_text() == "Connected with Анна Соколова."
    print(f"\nanswer to connected: {answer_to_connected * 1000:.0f} ms (the panel's click to both pages connected)")
    call = Call.objects.get(consultation=consultation)
    assert call.state == Call.State.ACTIVE and call.answered_by.username == "tula.clinician"

    # A line of chat reaches the other side and stays in the consultation's messages.
    clinician.get_by_label("Message").fill("Снимок видно?")
    clinician.get_by_role("button", name="Send").click()
    specialist.get_by_test_id("call-chat-lines").get_by_text("Снимок видно?").wait_for()
    assert Message.objects.filter(consultation=consultation, body="Снимок видно?").exists()

    # Moscow hangs up: both pages say so, and the call log has it with its length.
    specialist.get_by_test_id("call-hangup").click()
    for side in (clinician, specialist):
        side.wait_for_function("() => document.getElementById('call').dataset.state === 'ended'")
    assert "hung up" in clinician.get_by_test_id("call-status").inner_text()
    clinician.goto(f"{asgi_server}/consultations/{consultation.pk}/")
    log = clinician.get_by_test_id("call-log").inner_text()
    assert "ended: hung up" in log and "Сергей Иванов" in log and "\t0:0" in log  # answered by Tula, a few seconds

    # Rung again and not answered: logged as missed on both sides.
    specialist.get_by_test_id("call-ring").click()
    specialist.wait_for_function(
        "() => document.getElementById('call').dataset.state === 'missed'", timeout=settings.CALL_RING_SECONDS * 4000
    )
    assert "Nobody answered" in specialist.get_by_test_id("call-status").inner_text()
    clinician.reload()
    assert "missed: not answered in time" in clinician.get_by_test_id("call-log").inner_text()
    assert Call.objects.filter(consultation=consultation, state=Call.State.MISSED).count() == 1
