"""In a real browser: a Tula clinician has a patient's page open when the analyser sends a critical troponin;
the red banner appears on top of the page without a reload, and Acknowledge takes it away."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from playwright.sync_api import expect

from diagnostics.models import LabAlert, LabAlertAck
from hospitals.demo import demo_load
from hospitals.models import AuditEntry, Hospital
from patients.models import Patient
from tests.conftest import PatientFactory
from tests.diagnostics.test_lab_alerts import troponin_store
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.browser]


def _store(patient: Patient) -> LabAlert:
    try:
        return troponin_store(patient)
    finally:
        connection.close()


def test_a_critical_result_appears_live_on_an_open_page_and_is_acknowledged(  # type: ignore[no-untyped-def]
    page, asgi_server: str, lab_reference
) -> None:
    demo_load()
    tula = Hospital.objects.get(name="Tula Regional Hospital")
    patient = PatientFactory(hospital=tula, family_name="Морозова", given_name="Ирина")

    sign_in(page, asgi_server, "tula.clinician")
    page.goto(f"{asgi_server}/patients/{patient.pk}/")
    page.wait_for_function("document.body.dataset.live === 'connected'")
    banner = page.get_by_test_id("lab-alerts")
    expect(banner).to_be_hidden()
    page.evaluate("window.notReloaded = true")

    # The result is stored as a device's would be, through the service, in the server's database. Its live
    # event goes through the channel layer, which cannot be called from this thread while Playwright's event
    # loop lives in it: it is stored from another thread.
    with ThreadPoolExecutor(1) as other_thread:
        alert = other_thread.submit(_store, patient).result()

    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("role", "alert")
    item = banner.get_by_test_id("lab-alert")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("Морозова Ирина")
    expect(item).to_contain_text(patient.record_number)
    expect(item).to_contain_text("hs-TnI")
    expect(item.get_by_test_id("lab-alert-value")).to_have_text("450 ng/L")
    expect(item).to_contain_text("critically high")
    expect(banner).to_have_css("background-color", "rgb(179, 38, 30)")  # the app's red (--bad)
    assert page.evaluate("document.title").startswith("(1) ")
    assert page.evaluate("window.notReloaded") is True

    item.get_by_role("button", name="Acknowledge").click()

    expect(banner).to_be_hidden()
    expect(page.get_by_test_id("lab-alert")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True
    assert not page.evaluate("document.title").startswith("(")
    ack = LabAlertAck.objects.get(alert=alert)
    assert ack.hospital == tula and ack.user.username == "tula.clinician"
    assert AuditEntry.objects.filter(
        object_type="diagnostics.labalert", action="update", patient_id=str(patient.pk), actor_username="tula.clinician"
    ).exists()
