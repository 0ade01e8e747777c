"""In two real browsers: Tula registers a patient and asks for an urgent consultation; Moscow sees it appear
without reloading, accepts, signs a conclusion; Tula sees the conclusion arrive and downloads the PDF."""

import io

import pytest

from consultations.reference import reference_data_load
from hospitals.demo import demo_load
from tests.e2e.conftest import off_loop, sign_in, totp_code

pytestmark = [pytest.mark.browser]


def test_an_urgent_consultation_from_tula_to_moscow_and_back(browser, asgi_server: str) -> None:  # type: ignore[no-untyped-def]
    from pypdf import PdfReader

    off_loop(demo_load)
    reference_data_load()  # earlier tests of the run may have emptied the tables
    tula = browser.new_context(locale="en-GB").new_page()
    moscow = browser.new_context(locale="en-GB").new_page()
    for page in (tula, moscow):
        page.set_default_timeout(15_000)

    # Moscow's cardiologist has the worklist open, and it is empty.
    sign_in(moscow, asgi_server, "moscow.cardiologist")
    moscow.goto(f"{asgi_server}/consultations/")
    moscow.wait_for_function("() => document.body.dataset.live === 'connected'")
    assert "Nothing waiting for you." in moscow.get_by_test_id("worklist-rows").inner_text()

    # Tula registers the patient, records consent, and asks.
    sign_in(tula, asgi_server, "tula.clinician")
    tula.goto(f"{asgi_server}/patients/new/")
    for label, value in {
        "Hospital record number": "TUL-2026-0042",
        "Family name": "Ёлкина",
        "Given name": "Анна",
        "Patronymic": "Петровна",
        "Birth date": "1958-07-21",
        "SNILS": "112-233-445 95",
    }.items():
        tula.get_by_label(label).fill(value)
    tula.get_by_label("Sex").select_option("female")
    tula.get_by_role("button", name="Register").click()
    tula.get_by_text("The patient agrees to a remote consultation").click()
    tula.get_by_text("The patient agrees that their data are shared with the central hospital").click()
    tula.get_by_role("button", name="Record consent").click()
    tula.get_by_role("link", name="Request a consultation").click()
    tula.get_by_label("Urgency").select_option("urgent")
    tula.get_by_label("Specialty").select_option(label="Cardiology")
    tula.get_by_label("Clinical question").fill("Chest pain for three hours. Acute coronary syndrome?")
    tula.get_by_label("Current condition").fill("BP 150/90, HR 96, ST elevation in II, III, aVF")
    tula.get_by_role("button", name="Send the request").click()
    assert tula.get_by_test_id("state").inner_text() == "requested"

    # It appears in Moscow's worklist without a reload.
    row = moscow.get_by_test_id("worklist-rows").get_by_role("link", name="Ёлкина Анна Петровна")
    row.wait_for()
    row.click()
    moscow.get_by_role("button", name="Accept").click()
    assert moscow.get_by_test_id("state").inner_text() == "accepted"
    moscow.get_by_label("Findings").fill("ST elevation in II, III, aVF; troponin I 2.4 ng/mL.")
    moscow.get_by_label("Diagnosis (ICD-10)").fill("I21.1")
    moscow.get_by_label("Diagnosis in words").fill("Острый нижний инфаркт миокарда")
    moscow.get_by_label("Recommendation").select_option("transfer")
    moscow.get_by_label("Plan").fill("Transfer to the central hospital for PCI today.")
    moscow.get_by_label("Your six-digit code, to sign").fill(totp_code("moscow.cardiologist"))
    moscow.get_by_role("button", name="Sign", exact=True).click()
    assert moscow.get_by_test_id("state").inner_text() == "concluded"

    # Tula's open consultation page shows the conclusion without a reload, and the PDF reads in Cyrillic.
    tula.get_by_test_id("conclusion-v1").wait_for()
    assert "Острый нижний инфаркт миокарда" in tula.get_by_test_id("conclusion-v1").inner_text()
    with tula.expect_download() as download:
        tula.get_by_test_id("pdf-v1").click()
    pdf = PdfReader(io.BytesIO(download.value.path().read_bytes()))
    text = "".join(page.extract_text() for page in pdf.pages)
    assert "Ёлкина Анна Петровна" in text and "Острый нижний инфаркт миокарда" in text
