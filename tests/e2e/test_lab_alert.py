"""In a real browser: a Tula clinician has a patient's page open when the analyser sends a critical troponin;
the red banner, already showing the demo patient's earlier critical troponin, takes the new one on top of the
page without a reload, and Acknowledge takes each away."""

import pytest
from playwright.sync_api import expect

from diagnostics.models import LabAlert, LabAlertAck
from hospitals.demo import demo_load
from hospitals.models import AuditEntry, Hospital
from patients.models import Patient
from tests.conftest import PatientFactory
from tests.diagnostics.test_lab_alerts import troponin_store
from tests.e2e.conftest import off_loop, sign_in

pytestmark = [pytest.mark.browser]


def test_a_critical_result_appears_live_on_an_open_page_and_is_acknowledged(  # type: ignore[no-untyped-def]
    page, asgi_server: str, lab_reference
) -> None:
    off_loop(demo_load)
    tula = Hospital.objects.get(name="Tula Regional Hospital")
    demo_patient = Patient.objects.get(hospital=tula, record_number="TUL-DEMO-1")
    patient = PatientFactory(hospital=tula, family_name="Морозова", given_name="Ирина")

    sign_in(page, asgi_server, "tula.clinician")
    page.goto(f"{asgi_server}/patients/{patient.pk}/")
    page.wait_for_function("() => document.body.dataset.live === 'connected'")
    banner = page.get_by_test_id("lab-alerts")
    items = banner.get_by_test_id("lab-alert")
    # The demo's troponin of an hour ago waits for this clinician's acknowledgement on every page.
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text(demo_patient.record_number)
    assert page.evaluate("document.title").startswith("(1) ")
    page.evaluate("window.notReloaded = true")

    # Stored as a device's result would be, through the service, in the server's database.
    alert: LabAlert = off_loop(lambda: troponin_store(patient))

    expect(items).to_have_count(2)
    expect(banner).to_have_attribute("role", "alert")
    item = items.filter(has_text=patient.record_number)
    expect(item).to_contain_text("Морозова Ирина")
    expect(item).to_contain_text("hs-TnI")
    expect(item.get_by_test_id("lab-alert-value")).to_have_text("450 ng/L")
    expect(item).to_contain_text("critically high")
    expect(banner).to_have_css("background-color", "rgb(179, 38, 30)")  # the app's red (--bad)
    # The title follows once htmx has settled the swap, a moment after the banner shows.
    page.wait_for_function("() => document.title.startsWith('(2) ')")
    assert page.evaluate("window.notReloaded") is True

    item.get_by_role("button", name="Acknowledge").click()
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text(demo_patient.record_number)
    items.first.get_by_role("button", name="Acknowledge").click()

    expect(banner).to_be_hidden()
    expect(page.get_by_test_id("lab-alert")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True
    page.wait_for_function("() => !document.title.startsWith('(')")
    ack = LabAlertAck.objects.get(alert=alert)
    assert ack.hospital == tula and ack.user.username == "tula.clinician"
    assert AuditEntry.objects.filter(
        object_type="diagnostics.labalert", action="update", patient_id=str(patient.pk), actor_username="tula.clinician"
    ).exists()
