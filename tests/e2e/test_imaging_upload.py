"""In a real browser: a Tula clinician drops a folder of DICOM files on a patient's page, watches the progress
reach 100%, and sees the thumbnails appear without reloading, brought by the live event of the pipeline."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from diagnostics.models import Instance
from hospitals.demo import demo_load
from hospitals.models import Hospital
from tests.conftest import PatientFactory, dicom_for
from tests.e2e.conftest import off_loop, sign_in

pytestmark = [pytest.mark.browser]


def test_a_folder_of_dicom_files_uploads_and_its_thumbnails_appear_live(  # type: ignore[no-untyped-def]
    page, asgi_server: str, tmp_path: Path
) -> None:
    off_loop(demo_load)
    tula = Hospital.objects.get(name="Tula Regional Hospital")
    patient = PatientFactory(hospital=tula, family_name="Морозова", given_name="Ирина")
    folder = tmp_path / "CD" / "DICOM"
    folder.mkdir(parents=True)
    study = "1.2.826.0.1.3680043.8.498.77"
    (folder / "IM0001").write_bytes(dicom_for(patient, "CT_small.dcm", StudyInstanceUID=study))
    (folder / "IM0002").write_bytes(dicom_for(patient, "MR_small.dcm", StudyInstanceUID=study))
    (folder / "IM0003").write_bytes(dicom_for(patient, "US1_J2KR.dcm", StudyInstanceUID=study))
    (folder / "readme.txt").write_text("Exported by the ultrasound unit.\n" * 20)

    sign_in(page, asgi_server, "tula.clinician")
    page.goto(f"{asgi_server}/patients/{patient.pk}/")
    page.wait_for_function("() => document.body.dataset.live === 'connected'")
    expect(page.get_by_test_id("imaging-studies")).to_contain_text("No images of this patient yet.")
    # Marks that survive only as long as the page is not reloaded, and the study events that arrive.
    page.evaluate(
        "window.notReloaded = true; window.studyEvents = [];"
        "document.body.addEventListener('mh:study', (e) => window.studyEvents.push(e.detail))"
    )

    page.get_by_test_id("upload-folder").set_input_files(str(tmp_path / "CD"))

    page.wait_for_function("() => document.querySelector('[data-testid=upload-percent]').textContent === '100%'")
    assert page.get_by_test_id("upload-progress").get_attribute("value") == "100"
    items = page.get_by_test_id("upload-item")
    assert items.count() == 4
    listed = page.get_by_test_id("upload-list").inner_text()
    assert "CD/DICOM/IM0001" in listed and "stored" in listed
    readme = items.filter(has_text="readme.txt")
    assert "refused: Not a DICOM file" in readme.get_by_test_id("upload-state").inner_text()

    # The thumbnails of the three series appear in place: the page was not reloaded.
    page.locator("#imaging-studies [data-testid=thumbnail]").nth(2).wait_for()
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#imaging-studies [data-testid=study]").count() == 1
    statuses = page.locator("#imaging-studies [data-testid=series-status]").all_inner_texts()
    assert len(statuses) == 3 and all("1 ready" in status for status in statuses)
    for thumbnail in page.locator("#imaging-studies [data-testid=thumbnail]").all():
        # Lazy images load once on screen; wait for the load to finish, then check a picture arrived.
        thumbnail.scroll_into_view_if_needed()
        image = thumbnail.element_handle()
        page.wait_for_function("(img) => img.complete", arg=image)
        assert page.evaluate("(img) => img.naturalWidth > 0", image)
    # The pipeline's own event came over the socket (it counts the images per status), not only the page's.
    pushed = page.evaluate("window.studyEvents.filter((detail) => detail.instances)")
    assert pushed and pushed[-1]["patient"] == patient.pk
    assert Instance.objects.filter(series__study__patient=patient, status=Instance.Status.READY).count() == 3
