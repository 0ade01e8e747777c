"""The lab pipeline's core: results become coded observations with units, ranges and flags, once each;
what the platform cannot place waits for review; a critical value raises an alert both sides hear of."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from diagnostics.labs import (
    ResultIn,
    lab_message_open,
    lab_results_store,
    observation_patient_assign,
    value_parse,
)
from diagnostics.models import LabAlert, LabMessage, LabTest, Observation, ReferenceRange
from hospitals.events import hospital_group
from hospitals.models import AuditEntry
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("lab_reference")]


def _message(hospital_id: int, control_id: str = "MSG-1", sender: str = "device:7") -> LabMessage:
    message, _new = lab_message_open(
        hospital_id=hospital_id, source="hl7", sender=sender, control_id=control_id, raw="MSH|..."
    )
    return message


def _result(value: str, code: str = "GLU", unit: str = "mmol/L", record: str = "", **fields: object) -> ResultIn:
    taken = fields.pop("observed_at", timezone.now() - datetime.timedelta(minutes=30))
    return ResultIn(value=value, code=code, unit=unit, record_number=record, observed_at=taken, **fields)  # type: ignore[arg-type]


def test_results_become_observations_in_the_tests_unit_with_the_patients_range(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional, sex="female", birth_date=datetime.date(1980, 5, 1))
    report = lab_results_store(
        message=_message(network_a.regional.pk),
        results=[
            _result("108", code="2345-7", unit="mg/dL", record=patient.record_number),  # mass code and unit
            _result("115", code="HGB", unit="g/L", record=patient.record_number.lower()),
            _result("7,2", code="HbA1c", unit="%", record=patient.record_number),
        ],
    )
    glucose, hemoglobin, hba1c = report.stored
    assert glucose.test.loinc == "14749-6" and glucose.unit == "mmol/L"
    assert glucose.value.quantize(Decimal("0.01")) == Decimal("5.99") and glucose.flag == Observation.Flag.NORMAL
    assert (glucose.value_sent, glucose.unit_sent) == ("108", "mg/dL")  # what was sent is kept beside it
    # A woman's haemoglobin range (120–140 g/L), not a man's (130–160).
    assert (hemoglobin.low, hemoglobin.high, hemoglobin.flag) == (Decimal(120), Decimal(140), Observation.Flag.LOW)
    assert hba1c.value == Decimal("7.2") and hba1c.flag == Observation.Flag.HIGH
    assert {o.patient_id for o in report.stored} == {patient.pk} and not report.problems
    assert LabMessage.objects.get().status == LabMessage.Status.DONE


def test_an_age_specific_range_applies_by_the_patients_age_on_the_day(network_a: Network) -> None:
    young = PatientFactory(hospital=network_a.regional, birth_date=datetime.date(1980, 1, 1))
    old = PatientFactory(hospital=network_a.regional, birth_date=datetime.date(1950, 1, 1))
    report = lab_results_store(
        message=_message(network_a.regional.pk),
        results=[_result("4.0", code="PSA", unit="ng/mL", record=p.record_number) for p in (young, old)],
    )
    assert [(o.high, o.flag) for o in report.stored] == [(Decimal("2.5"), "high"), (Decimal("6.5"), "normal")]


def test_the_same_message_twice_stores_once(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    taken = timezone.now() - datetime.timedelta(hours=1)
    for _attempt in range(2):
        report = lab_results_store(
            message=_message(network_a.regional.pk, control_id=f"RETRY-{_attempt}"),
            results=[_result("5.1", record=patient.record_number, observed_at=taken)],
        )
    assert Observation.objects.count() == 1
    assert report.duplicates == 1 and report.stored == []


def test_a_result_for_an_unknown_record_number_waits_for_a_patient_and_alerts_once_assigned(
    network_a: Network, django_capture_on_commit_callbacks
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    with django_capture_on_commit_callbacks(execute=True):
        report = lab_results_store(
            message=_message(network_a.regional.pk), results=[_result("2.1", record="NO-SUCH-RECORD")]
        )
    (waiting,) = report.stored
    assert waiting.patient is None and waiting.review == Observation.Review.PATIENT
    assert waiting.flag == Observation.Flag.CRITICAL_LOW  # critical limits do not depend on the patient
    assert not LabAlert.objects.exists()  # nobody to alert about yet

    clinician = StaffFactory(hospital=network_a.regional).user
    with django_capture_on_commit_callbacks(execute=True):
        observation_patient_assign(observation=waiting, patient=patient, by=clinician)
    waiting.refresh_from_db()
    assert (waiting.patient, waiting.review, waiting.record_number) == (patient, "", patient.record_number)
    assert LabAlert.objects.get().observation == waiting
    assert AuditEntry.objects.filter(object_type="diagnostics.observation", patient_id=str(patient.pk)).exists()


def test_an_unknown_unit_is_stored_as_sent_for_review_and_not_guessed(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    report = lab_results_store(
        message=_message(network_a.regional.pk),
        results=[_result("90", code="GLU", unit="mg%", record=patient.record_number)],
    )
    (observation,) = report.stored
    assert observation.review == Observation.Review.UNIT
    assert (observation.value, observation.unit, observation.flag) == (Decimal(90), "mg%", "")


def test_an_unknown_test_is_stored_as_sent_for_review(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    report = lab_results_store(
        message=_message(network_a.regional.pk),
        results=[_result("12", code="XYZ", name="Mystery", unit="U/L", record=patient.record_number)],
    )
    (observation,) = report.stored
    assert observation.test is None and observation.review == Observation.Review.ANALYTE


def test_bad_results_are_named_and_the_rest_of_the_message_is_stored(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    record = patient.record_number
    report = lab_results_store(
        message=_message(network_a.regional.pk),
        results=[
            _result("haemolysed", code="K", where="OBX 1", record=record),
            _result("4.2", code="K", where="OBX 2", record=record),
            _result(
                "5.0", code="GLU", where="OBX 3", record=record, observed_at=timezone.now() + datetime.timedelta(days=1)
            ),
        ],
    )
    assert [o.value for o in report.stored] == [Decimal("4.2")]
    problems = {(p.where, p.field) for p in report.problems}
    assert problems == {("OBX 1", "value"), ("OBX 3", "observed_at")}
    assert "“haemolysed” of K is not a number" in report.problems[0].reason
    message = LabMessage.objects.get()
    assert message.status == LabMessage.Status.PARTIAL and len(message.errors) == 2
    assert AuditEntry.objects.filter(outcome="invalid", object_type="diagnostics.labmessage").exists()


def test_a_critical_value_alerts_the_patients_hospital_and_the_consulted_hospital(
    network_a: Network, django_capture_on_commit_callbacks, layer_listener
) -> None:  # type: ignore[no-untyped-def]
    consultation = consultation_make(PatientFactory(hospital=network_a.regional))
    tula = layer_listener.channel(hospital_group(network_a.regional.pk))
    moscow = layer_listener.channel(hospital_group(network_a.central.pk))

    with django_capture_on_commit_callbacks(execute=True):
        report = lab_results_store(
            message=_message(network_a.regional.pk),
            results=[_result("0.45", code="TNI", unit="ng/mL", record=consultation.patient.record_number)],
        )

    (troponin,) = report.stored
    assert troponin.value == Decimal(450) and troponin.flag == Observation.Flag.CRITICAL_HIGH
    alert = LabAlert.objects.get()
    for channel in (tula, moscow):
        kinds = {}
        for _event in range(2):
            message = layer_listener.receive(channel)
            assert message is not None
            payload = message["payload"]
            kinds[payload["kind"]] = payload
        assert kinds["lab_alert"] == {
            "kind": "lab_alert",
            "id": alert.pk,
            "patient": consultation.patient_id,
            "flag": "critical_high",
        }
        assert kinds["lab"] == {"kind": "lab", "patient": consultation.patient_id}


def test_an_admins_edit_of_a_critical_limit_applies_to_the_next_result(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    potassium = LabTest.objects.get(loinc="2823-3")
    potassium.critical_high = Decimal("5.5")
    potassium.save()
    report = lab_results_store(
        message=_message(network_a.regional.pk), results=[_result("5.8", code="K", record=patient.record_number)]
    )
    assert report.stored[0].flag == Observation.Flag.CRITICAL_HIGH
    assert ReferenceRange.objects.filter(test=potassium).exists()


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("5.6", ("", Decimal("5.6"))), ("5,6", ("", Decimal("5.6"))), ("<0.01", ("<", Decimal("0.01"))),
     (">= 20", (">=", Decimal(20))), ("1e3", ("", Decimal(1000))), ("positive", None), ("5.6.1", None), ("", None)],
)  # fmt: skip
def test_values_are_read_as_labs_write_them(text: str, parsed: object) -> None:
    assert value_parse(text) == parsed


def test_a_large_batch_is_stored_by_copy_on_postgresql_exactly_as_by_insert(network_a: Network, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A worker's batch goes to PostgreSQL by COPY: every field reads back as computed, alerts point at the
    stored rows, and a result stored already makes the whole COPY fail (the caller counts it a duplicate)."""
    from django.db import IntegrityError, connection, transaction

    from diagnostics import labs

    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's; elsewhere bulk_create stores the batch")
    monkeypatch.setattr(labs, "COPY_FROM", 2)
    patient = PatientFactory(hospital=network_a.regional)
    report = lab_results_store(
        message=_message(network_a.regional.pk),
        results=[
            _result("108", code="2345-7", unit="mg/dL", record=patient.record_number),
            _result("0.45", code="10839-9", unit="ng/mL", record=patient.record_number),  # critical
            _result("3", code="NOT-A-TEST", unit="x", record="NOBODY-1"),  # waits for review
        ],
    )
    assert len(report.stored) == 3
    names = [field.attname for field in Observation._meta.concrete_fields]
    for observation in report.stored:
        stored = Observation.objects.get(pk=observation.pk)
        assert [getattr(stored, name) for name in names] == [getattr(observation, name) for name in names]
    assert LabAlert.objects.get().observation.test.short_name == "hs-TnI"

    fields = {name: getattr(report.stored[0], name) for name in names if name != "id"}
    with pytest.raises(IntegrityError), transaction.atomic():
        labs.rows_insert([Observation(**{**fields, "key": "new"}), Observation(**fields)])
    assert Observation.objects.count() == 3
