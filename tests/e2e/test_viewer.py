"""In a real browser: Moscow's radiologist opens the images of a Tula patient under consultation, windows the
CT by dragging, picks a preset, measures, switches to the ultrasound loop and plays it."""

import math

import pydicom
import pytest
from django.db import connection
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut
from pydicom.uid import generate_uid

from diagnostics.models import Instance
from hospitals.demo import demo_load
from hospitals.models import Hospital
from tests.conftest import PatientFactory, consultation_make, dicom_for, store_now
from tests.e2e.conftest import off_loop, sign_in

pytestmark = [pytest.mark.browser]

# The red channel summed over the canvas: changes whenever what is drawn changes.
CANVAS_SUM = """() => {
  const canvas = document.getElementById("viewer-canvas");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) sum += data[i];
  return sum;
}"""


def _study() -> Instance:
    """A Tula patient under consultation with Moscow, with a CT slice and an ultrasound loop in one study."""
    try:
        patient = PatientFactory(hospital=Hospital.objects.get(name="Tula Regional Hospital"))
        consultation_make(patient)  # addressed to Moscow, so Moscow's specialists may see the patient's images
        study_uid = generate_uid()
        ct = store_now(
            patient,
            dicom_for(
                patient, "CT_small.dcm", StudyInstanceUID=study_uid, SeriesNumber="1", SeriesDescription="Chest CT"
            ),
        ).instance
        loop = dicom_for(
            patient,
            "examples_ybr_color.dcm",
            StudyInstanceUID=study_uid,
            SeriesNumber="2",
            SeriesDescription="Cardiac loop",
        )
        store_now(patient, loop)
        return ct  # type: ignore[no-any-return]
    finally:
        connection.close()


def test_a_specialist_windows_measures_and_plays_a_study_in_the_viewer(page, asgi_server: str) -> None:  # type: ignore[no-untyped-def]
    off_loop(demo_load)
    ct = off_loop(_study)  # the pipeline announces finished images over the channel layer

    sign_in(page, asgi_server, "moscow.radiologist")
    page.goto(f"{asgi_server}/imaging/studies/{ct.series.study_id}/viewer/")
    viewer = page.locator("#viewer")
    page.wait_for_function("() => document.getElementById('viewer').dataset.state === 'shown'")
    window = page.get_by_test_id("window")
    # CT_small has no window in its header: the default spans its values, in Hounsfield units.
    sample = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    values = apply_modality_lut(sample.pixel_array, sample)
    low, high = float(values.min()), float(values.max())
    default = f"C {math.floor((low + high) / 2 + 0.5)} / W {math.floor(high - low + 0.5)}"
    assert window.inner_text() == default
    before = page.evaluate(CANVAS_SUM)

    # Drag right and down: a wider window, a higher center.
    box = page.get_by_test_id("viewer-canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 80, steps=6)
    page.mouse.up()
    page.wait_for_function(f"() => {{ const n = ({CANVAS_SUM})(); return n !== {before}; }}")
    dragged = window.inner_text()
    center, width = (float(part.split()[1]) for part in dragged.split(" / "))
    assert center > (low + high) / 2 + 100 and width > high - low + 100

    page.get_by_role("button", name="Lung").click()
    assert window.inner_text() == "C -600 / W 1500"
    lung = page.evaluate(CANVAS_SUM)
    page.get_by_role("button", name="Default").click()
    assert window.inner_text() == default
    page.wait_for_function(f"() => ({CANVAS_SUM})() !== {lung}")

    # The CT knows its pixel spacing: a length in millimetres.
    page.get_by_role("button", name="Measure").click()
    page.mouse.move(x - 100, y)
    page.mouse.down()
    page.mouse.move(x + 100, y, steps=4)
    page.mouse.up()
    assert page.get_by_test_id("measurement").inner_text().endswith(" mm")

    # The ultrasound loop: 30 frames at the 30 per second its header asks for.
    page.get_by_test_id("series").filter(has_text="Cardiac loop").click()
    page.wait_for_function(f"() => document.getElementById('viewer').dataset.current !== '{ct.series_id}'")
    page.wait_for_function("() => document.getElementById('viewer').dataset.state === 'shown'")
    assert "frame 1 of 30" in page.get_by_test_id("position").inner_text()
    assert page.get_by_label("Frames per second").input_value() == "30"
    assert page.get_by_role("button", name="Lung").is_disabled()  # Hounsfield presets mean nothing here
    play = page.get_by_test_id("play")
    play.click()
    assert play.inner_text() == "Pause"
    page.wait_for_function("() => Number(document.getElementById('viewer').dataset.position) >= 5")
    play.click()
    assert play.get_attribute("aria-pressed") == "false"
    stopped = viewer.get_attribute("data-position")
    page.wait_for_timeout(300)
    assert viewer.get_attribute("data-position") == stopped


# Pixels of the canvas that are coloured (red clearly above blue): a grey radiograph has none until the AI's
# red-to-yellow heat map is laid over it.
COLOURED_PIXELS = """() => {
  const canvas = document.getElementById("viewer-canvas");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] - data[i + 2] > 40) count++;
  return count;
}"""


def _read_by_ai() -> Instance:
    """A chest X-ray of a Tula patient under consultation with Moscow, read by a test model enabled for Tula."""
    from tests.diagnostics.test_ai import model_make

    try:
        tula = Hospital.objects.get(name="Tula Regional Hospital")
        model_make(tula, name="Chest brightness", version="1.2")
        patient = PatientFactory(hospital=tula)
        consultation_make(patient)
        return store_now(patient, dicom_for(patient, "RG1_UNCR.dcm")).instance  # type: ignore[no-any-return]
    finally:
        connection.close()


def test_a_specialist_sees_the_ai_second_reader_overlays_its_heat_map_and_confirms_a_finding(
    page, asgi_server: str
) -> None:  # type: ignore[no-untyped-def]
    from diagnostics.models import AIFinding
    from hospitals.models import AuditEntry

    off_loop(demo_load)
    xray = off_loop(_read_by_ai)

    sign_in(page, asgi_server, "moscow.radiologist")
    page.goto(f"{asgi_server}/imaging/studies/{xray.series.study_id}/viewer/")
    page.wait_for_function("() => document.getElementById('viewer').dataset.state === 'shown'")
    # The demo's own model (enabled for Tula too) reads the X-ray as well: look at the test model's reading.
    reading = page.get_by_test_id("ai-reading").filter(has_text="Chest brightness")
    assert "version 1.2" in reading.inner_text()
    assert "Not for standalone diagnosis" in reading.get_by_test_id("ai-disclaimer").inner_text()
    assert reading.get_by_test_id("ai-finding").count() == 2

    assert page.evaluate(COLOURED_PIXELS) == 0
    page.get_by_test_id("heatmap-toggle").check()
    page.wait_for_function("() => document.getElementById('viewer').dataset.heatmap === 'shown'")
    assert page.evaluate(COLOURED_PIXELS) > 1000
    page.get_by_test_id("heatmap-toggle").uncheck()
    page.wait_for_function(f"() => ({COLOURED_PIXELS})() === 0")

    page.evaluate("window.notReloaded = true")
    bright = reading.get_by_test_id("ai-finding").filter(has_text="bright")
    bright.get_by_test_id("ai-confirm").click()
    decided = reading.get_by_test_id("ai-finding").filter(has_text="bright").get_by_test_id("ai-decision")
    decided.wait_for()
    assert decided.inner_text() == "confirmed"
    assert page.evaluate("window.notReloaded") is True  # swapped in place, the image stays as it was
    finding = AIFinding.objects.get(reading__instance=xray, reading__model__name="Chest brightness", label="bright")
    assert finding.decision == "confirmed" and finding.decided_by.username == "moscow.radiologist"
    assert AuditEntry.objects.filter(object_type="diagnostics.aifinding", object_id=str(finding.pk)).exists()
