"""In a real browser: a Tula clinician uploads an analyser's CSV export (Russian Excel: semicolons, decimal
commas, Windows-1251) with one bad row, sees it flagged in the preview, corrects it in place, imports, and
finds the glucose trend chart on the patient's page."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from diagnostics.models import LabMessage, Observation
from hospitals.demo import demo_load
from hospitals.models import Hospital
from tests.conftest import PatientFactory
from tests.e2e.conftest import off_loop, sign_in

pytestmark = [pytest.mark.browser]


def test_a_csv_export_is_previewed_corrected_imported_and_charted(  # type: ignore[no-untyped-def]
    page, asgi_server: str, lab_reference, tmp_path: Path
) -> None:
    off_loop(demo_load)
    tula = Hospital.objects.get(name="Tula Regional Hospital")
    patient = PatientFactory(hospital=tula, record_number="TUL-0042", family_name="Кузнецов", given_name="Пётр")
    export = tmp_path / "analyser-export.csv"
    export.write_bytes(
        (
            "Номер карты;Показатель;Результат;Ед. изм.;Дата\r\n"
            "TUL-0042;Глюкоза;5,4;mmol/L;01.03.2025 08:00\r\n"
            "TUL-0042;Глюкоза;6,,8;mmol/L;08.03.2025 08:00\r\n"  # row 3: a slip of the finger
            "TUL-0042;Глюкоза;7,9;mmol/L;15.03.2025 08:00\r\n"
            "TUL-0042;Глюкоза;2,6;mmol/L;22.03.2025 08:00\r\n"  # critically low
        ).encode("cp1251")
    )

    stored_before = Observation.objects.count()  # the demo patient's results

    sign_in(page, asgi_server, "tula.clinician")
    page.goto(f"{asgi_server}/labs/import/")
    expect(page.get_by_test_id("import-sample")).to_contain_text("record_number,test,value,unit,taken_at")
    page.get_by_test_id("import-file").set_input_files(str(export))
    page.get_by_test_id("import-preview").click()

    bad = page.locator('[data-testid=import-row][data-row="3"]')
    expect(bad).to_have_attribute("data-state", "error")
    expect(bad).to_contain_text("The value “6,,8” is not a number.")
    expect(page.locator('[data-testid=import-row][data-state="ok"]')).to_have_count(3)
    expect(page.get_by_test_id("import-row").first).to_contain_text("Кузнецов Пётр")
    expect(page.get_by_test_id("import-submit")).to_have_text("Import 3 rows")
    assert Observation.objects.count() == stored_before  # the preview stored nothing

    bad.get_by_test_id("fix-value").fill("6,8")
    page.get_by_test_id("import-check").click()
    expect(page.locator('[data-testid=import-row][data-row="3"]')).to_have_attribute("data-state", "ok")
    expect(page.get_by_test_id("import-summary")).to_contain_text("4 rows read: 4 can be imported")
    page.get_by_test_id("import-submit").click()
    expect(page.get_by_test_id("import-result")).to_contain_text("4 results stored")

    page.goto(f"{asgi_server}/patients/{patient.pk}/")
    chart = page.locator('#labs-results [data-testid=lab-chart][data-test="GLU"] svg')
    expect(chart).to_be_visible()
    expect(chart.get_by_test_id("trend-point")).to_have_count(4)
    expect(chart.locator("circle.critical")).to_have_count(1)
    assert "2.6 mmol/L (critically low)" in (chart.locator("circle.critical title").text_content() or "")
    latest = page.locator('#labs-results [data-testid=lab-row][data-test="GLU"] [data-testid=lab-value]').first
    expect(latest).to_have_text("2.6 ↓↓ (critically low)")
    assert Observation.objects.filter(patient=patient).count() == 4
    assert LabMessage.objects.filter(source="csv").count() == 1
