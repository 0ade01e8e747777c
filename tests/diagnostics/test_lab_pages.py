"""Lab result pages: the results card (latest values, ranges, flags, history, trend charts) on the patient and
consultation pages, a result entered by hand, CSV import with a preview, and the hospital's review queue."""

import datetime
import json
import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from diagnostics import charts, lab_import, selectors
from diagnostics.labs import ResultIn, StoreReport, lab_message_open, lab_results_store
from diagnostics.models import LabMessage, LabTest, Observation
from hospitals.models import AuditEntry, Staff
from patients.models import Patient
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make, verified_login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("lab_reference")]


def _store(patient: Patient, *results: ResultIn, control_id: str = "MSG-1") -> StoreReport:
    message, _new = lab_message_open(
        hospital_id=patient.hospital_id, source="hl7", sender="device:7", control_id=control_id, raw="MSH|..."
    )
    for result in results:
        result.record_number = result.record_number or patient.record_number
    return lab_results_store(message=message, results=list(results))


def _result(value: str, code: str = "GLU", unit: str = "mmol/L", hours_ago: float = 1, **fields: object) -> ResultIn:
    taken = timezone.now() - datetime.timedelta(hours=hours_ago)
    return ResultIn(value=value, code=code, unit=unit, observed_at=taken, **fields)  # type: ignore[arg-type]


def _clinician(hospital, role: str = Staff.Role.CLINICIAN) -> Client:  # type: ignore[no-untyped-def]
    return verified_login(Client(), StaffFactory(hospital=hospital, role=role).user)


def _test_row(html: str, short_name: str) -> str:
    match = re.search(rf'<tbody data-testid="lab-row" data-test="{re.escape(short_name)}">(.*?)</tbody>', html, re.S)
    assert match, f"no row for {short_name}"
    return match.group(1)


def _squash(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# The card.


def test_the_card_shows_the_latest_value_of_each_test_with_its_range_and_flag_and_is_audited(
    network_a: Network,
) -> None:
    patient = PatientFactory(hospital=network_a.regional, sex="female", birth_date=datetime.date(1980, 5, 1))
    _store(
        patient,
        _result("5.0", hours_ago=72),
        _result("7,24", hours_ago=2),  # the latest glucose: high
        _result("115", code="HGB", unit="g/L"),  # a woman's range: low
        _result("6.8", code="K"),  # critical
        _result("0.45", code="TNI", unit="ng/mL"),  # 450 ng/L: critical
    )
    before = AuditEntry.objects.count()

    response = _clinician(network_a.regional).get(f"/labs/patients/{patient.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    glucose = _test_row(html, "GLU")
    assert "7.2" in _squash(glucose) and "3.9–6.1" in glucose and "mmol/L" in glucose
    assert 'data-flag="high"' in glucose and "↑" in glucose and "(high)" in glucose
    assert "1 earlier result" in glucose and "5.0" in glucose  # the history behind "earlier results"
    assert "HL7 v2 message" in glucose
    hemoglobin = _test_row(html, "HGB")
    assert "120–140" in hemoglobin and 'data-flag="low"' in hemoglobin and "↓" in hemoglobin
    potassium = _test_row(html, "K")
    assert 'data-flag="critical_high"' in potassium and "<strong>6.8</strong>" in potassium and "↑↑" in potassium
    assert 'class="lab-latest critical"' in potassium
    troponin = _test_row(html, "hs-TnI")
    assert "<strong>450</strong>" in troponin and "0–16" in troponin  # ng/L, the female cut-off
    # One audit row for the render, naming the patient.
    (entry,) = AuditEntry.objects.order_by("id")[before:]
    assert (entry.action, entry.object_type, entry.patient_id) == ("list", "diagnostics.observation", str(patient.pk))


def test_results_waiting_for_review_are_listed_apart_as_sent(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    _store(patient, _result("90", unit="mg%"), _result("12", code="XYZ", name="Mystery", unit="U/L"))
    html = _clinician(network_a.regional).get(f"/labs/patients/{patient.pk}/").content.decode()
    assert 'data-testid="labs-latest"' not in html  # nothing placed: no table of values
    waiting = _squash(html[html.index('data-testid="labs-waiting"') :])
    assert "unknown unit" in waiting and "90 mg%" in waiting
    assert "unknown test" in waiting and "Mystery (XYZ): 12 U/L" in waiting
    assert "Open the review queue" in waiting


def test_a_trend_chart_is_drawn_for_a_trend_test_with_two_results_or_more(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    _store(
        patient,
        *[_result(value, hours_ago=24 * days) for value, days in (("5.5", 30), ("7.8", 20), ("2.1", 10))],
        _result("4.2", code="K"),  # not a trend test
        _result("6.9", code="HbA1c", unit="%"),  # a trend test with one result: no chart
    )
    html = _clinician(network_a.regional).get(f"/labs/patients/{patient.pk}/").content.decode()
    charts_html = re.findall(r'<figure class="lab-chart" data-testid="lab-chart" data-test="([^"]+)"', html)
    assert charts_html == ["GLU"]
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count('data-testid="trend-point"') == 3
    assert svg.count('class="trend-point critical"') == 1  # 2.1 mmol/L is below the critical 3.0
    assert "7.8 mmol/L (high)" in svg and 'class="trend-band"' in svg


def test_the_latest_result_of_every_test_is_one_query(network_a: Network, django_assert_num_queries) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    codes = ["GLU", "K", "HGB", "CREA", "ALT", "AST", "Na", "PLT"]
    units = {"HGB": "g/L", "CREA": "umol/L", "ALT": "U/L", "AST": "U/L", "PLT": "10*9/L"}
    _store(
        patient,
        *[
            _result(str(10 + hours), code=code, unit=units.get(code, "mmol/L"), hours_ago=hours)
            for code in codes
            for hours in range(1, 6)
        ],
    )
    with django_assert_num_queries(1):
        latest = selectors.observations_latest(Observation.objects.filter(patient=patient))
        shown = [(o.test.short_name if o.test else "", o.value, o.message.source) for o in latest]
    assert len(shown) == len(codes)
    assert {value for _test, value, _source in shown} == {Decimal(11)}  # each test's newest (1 hour ago)
    with django_assert_num_queries(1):
        rows = selectors.patient_lab_rows(Observation.objects.filter(patient=patient))
        assert [len(row.results) for row in rows] == [5] * len(codes)


def test_the_consulted_specialist_sees_the_card_in_the_consultation_and_a_stranger_does_not(
    network_a: Network, network_b: Network
) -> None:
    consultation = consultation_make(PatientFactory(hospital=network_a.regional))
    patient = consultation.patient
    _store(patient, _result("6.8", code="K"))
    specialist = _clinician(network_a.central, Staff.Role.SPECIALIST)

    page = specialist.get(f"/consultations/{consultation.pk}/").content.decode()
    assert f'hx-get="/labs/patients/{patient.pk}/"' in page and 'data-testid="labs"' in page
    assert 'data-testid="lab-entry"' not in page  # entering results is the home hospital's
    card = specialist.get(f"/labs/patients/{patient.pk}/")
    assert card.status_code == 200 and "<strong>6.8</strong>" in card.content.decode()
    assert specialist.post(f"/labs/patients/{patient.pk}/new/", {"value": "5"}).status_code == 403

    for stranger in (_clinician(network_b.regional), _clinician(network_b.central, Staff.Role.SPECIALIST)):
        assert stranger.get(f"/labs/patients/{patient.pk}/").status_code == 404
    assert AuditEntry.objects.filter(outcome="not_found", object_id=str(patient.pk)).count() == 2


def test_the_patient_page_carries_the_card_with_entry_for_its_hospital(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    html = _clinician(network_a.regional).get(f"/patients/{patient.pk}/").content.decode()
    assert f'hx-get="/labs/patients/{patient.pk}/"' in html
    assert f"mh:lab:patient-{patient.pk} from:body" in html
    assert f'hx-get="/labs/patients/{patient.pk}/new/"' in html
    assert f'href="/labs/patients/{patient.pk}/import/"' in html


# Entry by hand.


def _entry(client: Client, patient: Patient, **fields: str):  # type: ignore[no-untyped-def]
    data = {
        "test": str(LabTest.objects.get(short_name="GLU").pk),
        "value": "6.4",
        "unit": "mmol/L",
        "taken_at": timezone.localtime(timezone.now() - datetime.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"),
        "token": "a" * 32,
    } | fields
    return client.post(f"/labs/patients/{patient.pk}/new/", data, headers={"HX-Request": "true"})


def test_a_result_entered_by_hand_is_stored_once_and_shown(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    staff = StaffFactory(hospital=network_a.regional)
    client = verified_login(Client(), staff.user)

    glucose = LabTest.objects.get(short_name="GLU")
    # Choosing a test sets its unit and offers the units it may be entered in.
    form = client.get(
        f"/labs/patients/{patient.pk}/new/", {"test": glucose.pk, "value": "6,4"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert 'type="datetime-local"' in form and 'name="token"' in form and 'value="6,4"' in form
    assert 'name="unit" id="lab-entry-unit" value="mmol/L"' in form and '<option value="mg/dL">' in form
    assert f'<option value="{glucose.pk}" selected>GLU — Glucose</option>' in form

    first = _entry(client, patient, value="6,4")
    again = _entry(client, patient, value="6,4")  # a double click: the same form's token

    assert first.status_code == 200 and "Stored: GLU 6.4 mmol/L." in first.content.decode()
    assert json.loads(first["HX-Trigger"]) == {"mh:lab": {"kind": "lab", "patient": patient.pk}}
    assert "stored before; nothing was added" in again.content.decode()
    observation = Observation.objects.get()
    assert observation.value == Decimal("6.4") and observation.flag == Observation.Flag.HIGH
    message = LabMessage.objects.get()
    assert (message.source, message.sender, message.by) == ("manual", f"user:{staff.user.pk}", staff.user)
    assert json.loads(message.raw)["value"] == "6,4"
    card = client.get(f"/labs/patients/{patient.pk}/").content.decode()
    assert "6.4" in _squash(_test_row(card, "GLU")) and "entered by hand" in card


def test_a_value_that_is_not_a_number_is_refused_with_its_reason_beside_the_field(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    client = _clinician(network_a.regional)

    response = _entry(client, patient, value="haemolysed")

    assert response.status_code == 200  # htmx swaps only a 2xx answer in
    html = response.content.decode()
    value_field = html[html.index('name="value"') : html.index('name="unit"')]
    assert "The value “haemolysed” of Glucose is not a number." in value_field
    assert 'value="haemolysed"' in value_field and 'aria-invalid="true"' in value_field
    assert f'value="{"a" * 32}"' not in html  # a fresh token: the corrected result is a new entry
    assert not Observation.objects.exists()

    future = timezone.localtime(timezone.now() + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = _entry(client, patient, taken_at=future, token="b" * 32)
    html = response.content.decode()
    assert "in the future" in html[html.index('name="taken_at"') :]
    assert not Observation.objects.exists()


def test_a_unit_the_test_does_not_know_is_stored_for_review(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    response = _entry(_clinician(network_a.regional), patient, unit="mg%", value="90")
    assert "waits in the review queue" in response.content.decode()
    assert Observation.objects.get().review == Observation.Review.UNIT


def test_without_javascript_the_entry_returns_to_the_patient(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    client = _clinician(network_a.regional)
    assert "<h1>Enter a lab result" in client.get(f"/labs/patients/{patient.pk}/new/").content.decode()
    data = {"test": "", "value": "1", "unit": "", "taken_at": "", "token": "c" * 32}
    refused = client.post(f"/labs/patients/{patient.pk}/new/", data)
    assert refused.status_code == 400 and "<h1>Enter a lab result" in refused.content.decode()
    data = {"test": str(LabTest.objects.get(short_name="K").pk), "value": "4.1", "unit": "mmol/L"}
    data |= {"taken_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"), "token": "d" * 32}
    stored = client.post(f"/labs/patients/{patient.pk}/new/", data)
    assert stored.status_code == 302 and stored["Location"] == f"/patients/{patient.pk}/"
    assert patient.observations.get().value == Decimal("4.1")


# CSV import.

EXPORT = (
    "record_number,test,value,unit,taken_at\n"
    "{record},GLU,5.9,mmol/L,2025-03-10 08:15\n"
    "{record},GLU,abc,mmol/L,2025-03-17 08:15\n"  # row 3: not a number
    "{record},HbA1c,7.4,%,2025-03-10 08:15\n"
    "NO-SUCH-1,GLU,6.1,mmol/L,2025-03-10 08:15\n"  # row 5: waits for a patient
    "{record},GLU,90,mg%,2025-03-12 08:15\n"  # row 6: unknown unit
    "{record},GLU,5.0,mmol/L,31.02.2025 08:15\n"  # row 7: no such date
    "{record},GLU,5.0,mmol/L,2099-01-01 08:15\n"  # row 8: in the future
    "{record},FOO,1,U/L,2025-03-10 08:15\n"  # row 9: unknown test
)


def _upload(client: Client, content: bytes, url: str = "/labs/import/"):  # type: ignore[no-untyped-def]
    return client.post(url, {"action": "preview", "file": SimpleUploadedFile("export.csv", content, "text/csv")})


def _states(html: str) -> dict[int, str]:
    return {
        int(row): state
        for row, state in re.findall(r'data-testid="import-row" data-row="(\d+)" data-state="(\w+)"', html)
    }


def _token(html: str) -> str:
    match = re.search(r'name="rows" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_the_preview_flags_each_row_and_stores_nothing(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    client = _clinician(network_a.regional)

    response = _upload(client, EXPORT.format(record=patient.record_number).encode())

    assert response.status_code == 200
    html = response.content.decode()
    assert _states(html) == {
        2: "ok",
        3: "error",
        4: "ok",
        5: "review",
        6: "review",
        7: "error",
        8: "error",
        9: "review",
    }
    text = _squash(html)
    assert "The value “abc” is not a number." in text
    assert "“31.02.2025 08:15” is not a date this import reads" in text
    assert "in the future" in text
    assert "No such patient — will wait in the review queue." in text
    assert "Unknown unit for this test — will wait in the review queue. Known: mmol/L, mg/dL" in text
    assert "Unknown test — will wait in the review queue." in text
    assert patient.full_name in text and "Import 5 rows" in text
    assert 'name="fix-3-value"' in html and 'name="fix-2-value"' not in html  # only flagged rows are editable
    assert not Observation.objects.exists() and not LabMessage.objects.exists()
    assert AuditEntry.objects.filter(action="view", patient_id=str(patient.pk), detail__contains="preview").exists()


def test_a_flagged_row_corrected_in_the_preview_is_imported_and_the_same_import_twice_stores_once(
    network_a: Network,
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    client = _clinician(network_a.regional)
    token = _token(_upload(client, EXPORT.format(record=patient.record_number).encode()).content.decode())
    fixes = {"fix-3-value": "8,1", "fix-7-taken_at": "28.02.2025 08:15"}

    checked = client.post("/labs/import/", {"rows": token, "action": "check", **fixes}).content.decode()
    assert _states(checked)[3] == "ok" and _states(checked)[7] == "ok" and "Import 7 rows" in checked

    done = client.post("/labs/import/", {"rows": _token(checked), "action": "import"})
    again = client.post("/labs/import/", {"rows": _token(checked), "action": "import"})

    assert done.status_code == 200
    assert "7 results stored; 3 wait in the review queue." in _squash(done.content.decode())
    assert "Row 8: The result is dated" in _squash(done.content.decode())  # still in the future: left out
    assert "imported before" in again.content.decode() and "Nothing was added" in again.content.decode()
    assert Observation.objects.count() == 7 and LabMessage.objects.count() == 1
    message = LabMessage.objects.get()
    assert (message.source, message.status, message.stored) == ("csv", "partial", 7)
    assert [error["where"] for error in message.errors] == ["row 8"]
    assert "8,1" in message.raw  # the rows as imported, corrections included
    assert patient.observations.filter(value=Decimal("8.1")).exists()
    # A colleague importing the same export again stores nothing either.
    colleague = _clinician(network_a.regional)
    preview = _upload(colleague, EXPORT.format(record=patient.record_number).encode()).content.decode()
    colleague.post("/labs/import/", {"rows": _token(preview), "action": "import", **fixes})
    assert Observation.objects.count() == 7


def test_a_russian_excel_file_with_semicolons_decimal_commas_in_windows_1251_is_read(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional, family_name="Соколова", given_name="Анна")
    content = (
        "Номер карты;Показатель;Результат;Ед. изм.;Дата;Время\r\n"
        f"{patient.record_number};Глюкоза;5,6;mmol/L;17.03.2025;08:30\r\n"
        f"{patient.record_number};Гемоглобин;12,1;g/dL;17.03.2025;08:30\r\n"
    ).encode("cp1251")
    client = _clinician(network_a.regional)

    preview = _upload(client, content).content.decode()

    assert _states(preview) == {2: "ok", 3: "ok"} and "Соколова Анна" in preview
    client.post("/labs/import/", {"rows": _token(preview), "action": "import"})
    glucose, hemoglobin = (Observation.objects.get(test__short_name=name) for name in ("GLU", "HGB"))
    moscow = datetime.timezone(datetime.timedelta(hours=3))
    assert glucose.value == Decimal("5.6") and glucose.observed_at == datetime.datetime(
        2025, 3, 17, 8, 30, tzinfo=moscow
    )
    assert hemoglobin.value == Decimal(121) and hemoglobin.unit == "g/L"  # converted from g/dL


def test_a_patients_own_file_needs_no_record_number_and_refuses_another_patients_row(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    other = PatientFactory(hospital=network_a.regional)
    client = _clinician(network_a.regional)
    url = f"/labs/patients/{patient.pk}/import/"
    assert "record-number column may be left out" in client.get(url).content.decode()

    preview = _upload(client, b"test;value;unit;date\nGLU;5.1;mmol/L;2025-03-10 08:00\n", url).content.decode()
    assert _states(preview) == {2: "ok"}
    client.post(url, {"rows": _token(preview), "action": "import"})
    assert patient.observations.count() == 1

    mixed = f"record_number,test,value,unit,date\n{other.record_number},GLU,5.1,mmol/L,2025-03-11 08:00\n"
    preview = _upload(client, mixed.encode(), url).content.decode()
    assert _states(preview) == {2: "error"} and f"This row is for record {other.record_number}" in preview


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "The file is empty."),
        (b"record_number;test;unit;date\nMR-1;GLU;mmol/L;2025-03-10\n", "no column for the value"),
        (b"foo bar baz\n1 2 3\n", "should name the columns"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file"),
        (b"record_number,test,value,unit,date\n", "has no results under them"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_with_a_reason(network_a: Network, content: bytes, reason: str) -> None:
    response = _upload(_clinician(network_a.regional), content)
    assert response.status_code == 400 and reason in response.content.decode()
    assert not LabMessage.objects.exists()


def test_the_import_limits_are_told(network_a: Network, settings) -> None:  # type: ignore[no-untyped-def]
    client = _clinician(network_a.regional)
    rows = "".join(f"MR-1,GLU,5.{i},mmol/L,2025-03-10 08:0{i}\n" for i in range(4))
    settings.LAB_IMPORT_MAX_ROWS = 3
    response = _upload(client, f"record_number,test,value,unit,date\n{rows}".encode())
    assert response.status_code == 400 and "more than 3 rows" in response.content.decode()
    settings.LAB_IMPORT_MAX_BYTES = 50
    response = _upload(client, f"record_number,test,value,unit,date\n{rows}".encode())
    assert response.status_code == 400 and "larger than" in response.content.decode()


def test_a_tampered_preview_is_refused(network_a: Network) -> None:
    response = _clinician(network_a.regional).post("/labs/import/", {"rows": "forged", "action": "import"})
    assert response.status_code == 400 and "Choose the file again" in response.content.decode()
    assert not LabMessage.objects.exists()


def test_the_page_documents_the_format_with_a_sample_to_download(network_a: Network) -> None:
    client = _clinician(network_a.regional)
    html = client.get("/labs/import/").content.decode()
    assert "номер карты" in html and "record_number,test,value,unit,taken_at" in html
    sample = client.get("/labs/import/sample.csv")
    assert sample["Content-Type"].startswith("text/csv") and "attachment" in sample["Content-Disposition"]
    rows = lab_import.csv_read(sample.content, max_rows=10)
    assert [row.test for row in rows][:2] == ["GLU", "HbA1c"]


def test_the_separator_is_found_from_the_header_or_named_by_excel() -> None:
    for content in (
        "Номер карты\tТест\tЗначение\tДата\nMR-1\tGLU\t5,5\t17.03.2025\n",
        "sep=;\nrecord_number;test;value;taken_at\nMR-1;GLU;5,5;17.03.2025\n",
        '\ufeffrecord_number,test,value,taken_at\n"MR-1","GLU","5,5","17.03.2025"\n',
    ):
        (row,) = lab_import.csv_read(content.encode(), max_rows=10)
        assert (row.row, row.record_number, row.test, row.value) == (
            2 + content.startswith("sep"),
            "MR-1",
            "GLU",
            "5,5",
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-17 08:30", (2025, 3, 17, 8, 30)),
        ("2025-03-17T08:30:15", (2025, 3, 17, 8, 30)),
        ("17.03.2025 08:30", (2025, 3, 17, 8, 30)),
        ("17.03.2025", (2025, 3, 17, 0, 0)),
        ("17/03/2025 08:30", (2025, 3, 17, 8, 30)),
        ("31.02.2025", None),
        ("yesterday", None),
    ],
)
def test_dates_are_read_as_spreadsheets_write_them(text: str, expected: tuple[int, ...] | None) -> None:
    parsed = lab_import.taken_parse(text)
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None and timezone.localtime(parsed).timetuple()[:5] == expected


# The review queue.


def test_a_result_waiting_for_a_patient_is_assigned_from_the_queue_and_audited(
    network_a: Network, network_b: Network
) -> None:
    patient = PatientFactory(hospital=network_a.regional, record_number="MR-777")
    waiting = _store(patient, _result("2.1", record_number="MR-7777")).stored[0]  # a typo in the number
    stranger = _store(PatientFactory(hospital=network_b.regional), _result("5", record_number="X")).stored[0]
    client = _clinician(network_a.regional)

    assert client.get("/labs/review/count/").content.decode().strip().endswith(">1</span>")
    queue = client.get("/labs/review/").content.decode()
    assert f'data-observation="{waiting.pk}"' in queue and f'data-observation="{stranger.pk}"' not in queue
    assert "no patient with this record number" in queue and "MR-7777" in queue
    found = client.get("/labs/review/", {"find": waiting.pk, "q": "MR-777"}).content.decode()
    assert f'<input type="hidden" name="patient" value="{patient.pk}">' in found

    response = client.post(f"/labs/review/{waiting.pk}/assign/", {"patient": patient.pk})

    assert response.status_code == 302
    waiting.refresh_from_db()
    assert (waiting.patient, waiting.review, waiting.flag) == (patient, "", Observation.Flag.CRITICAL_LOW)
    assert AuditEntry.objects.filter(
        action="update", object_type="diagnostics.observation", object_id=str(waiting.pk), patient_id=str(patient.pk)
    ).exists()
    assert client.get("/labs/review/count/").content.decode().strip().endswith(">0</span>")
    # Another hospital's result is not there to assign; nor is another hospital's patient to assign it to.
    assert client.post(f"/labs/review/{stranger.pk}/assign/", {"patient": patient.pk}).status_code == 404
    other = PatientFactory(hospital=network_b.regional)
    second = _store(patient, _result("5", record_number="NOBODY"), control_id="MSG-2").stored[0]
    client.post(f"/labs/review/{second.pk}/assign/", {"patient": other.pk})
    second.refresh_from_db()
    assert second.patient is None


def test_an_unknown_unit_is_kept_as_sent_from_the_queue(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    waiting = _store(patient, _result("90", unit="mg%")).stored[0]
    client = _clinician(network_a.regional)
    assert client.post(f"/labs/review/{waiting.pk}/keep/").status_code == 302
    waiting.refresh_from_db()
    assert waiting.review == "" and waiting.unit == "mg%"
    card = client.get(f"/labs/patients/{patient.pk}/").content.decode()
    assert "90" in _squash(_test_row(card, "GLU")) and "mg%" in _test_row(card, "GLU")
    assert 'data-testid="lab-chart"' not in card  # a value in another unit is not charted


def test_the_queue_is_for_clinical_staff_with_its_badge_in_their_navigation(network_a: Network) -> None:
    admin = _clinician(network_a.regional, Staff.Role.HOSPITAL_ADMIN)
    assert admin.get("/labs/review/").status_code == 403
    assert admin.get("/labs/import/").status_code == 403
    assert "/labs/review/count/" not in admin.get("/").content.decode()
    dashboard = _clinician(network_a.regional).get("/").content.decode()
    assert 'href="/labs/review/"' in dashboard and 'hx-get="/labs/review/count/"' in dashboard
    badge = _clinician(network_a.regional).get("/labs/review/count/").content.decode()
    assert 'hx-trigger="mh:lab_review from:body delay:300ms"' in badge  # live: refreshed on the hospital's event


def test_who_sees_which_lab_results(network_a: Network, network_b: Network) -> None:
    from hospitals.scoping import scope_for

    consulted = consultation_make(PatientFactory(hospital=network_a.regional)).patient
    own = _store(consulted, _result("5.1"), _result("5.2", record_number="NOBODY")).stored
    elsewhere = _store(PatientFactory(hospital=network_b.regional), _result("5.3", record_number="NOBODY")).stored
    clinician = scope_for(StaffFactory(hospital=network_a.regional).user)
    specialist = scope_for(StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user)
    admin = scope_for(StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN).user)

    assert set(selectors.observations_visible(clinician)) == set(own)
    assert set(selectors.observations_visible(specialist)) == {own[0]}  # the patient, through the consultation
    assert list(selectors.observations_review(clinician)) == [own[1]]
    assert not selectors.observations_review(specialist).exists()  # Tula's queue is Tula's
    assert not selectors.observations_visible(admin).exists() and not selectors.observations_review(admin).exists()
    assert elsewhere[0] not in selectors.observations_visible(clinician)


# The chart itself.


def test_the_chart_has_a_time_axis_a_value_axis_the_band_and_a_titled_point_per_result() -> None:
    start = timezone.now() - datetime.timedelta(days=60)
    points = [
        charts.Point(start + datetime.timedelta(days=20 * i), Decimal(value), value, flag, label)
        for i, (value, flag, label) in enumerate(
            [("6.0", "normal", ""), ("7.5", "high", "high"), ("21.3", "critical_high", "critically high")]
        )
    ]
    svg = str(
        charts.trend_svg(points, title="Glucose <plasma>", unit="mmol/L", low=Decimal("3.9"), high=Decimal("6.1"))
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<circle") == 3 and svg.count("trend-point critical") == 1
    assert "21.3 mmol/L (critically high)</title>" in svg
    assert 'class="trend-band"' in svg and "<polyline" in svg
    assert "Glucose &lt;plasma&gt;" in svg  # escaped
    ticks = re.findall(r'class="trend-tick"[^>]*>([^<]+)<', svg)
    assert "0" in ticks and "25" in ticks  # round value ticks spanning the points and the band
    assert timezone.localtime(start).strftime("%d.%m.%y") in ticks  # the time axis starts at the first result
    assert str(charts.trend_svg(points[:1], title="x", unit="")) == ""
