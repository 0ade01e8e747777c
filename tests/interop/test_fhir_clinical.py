"""ServiceRequest (consultations), DiagnosticReport (signed conclusions) and ImagingStudy (DICOM studies):
read, search with each parameter, _include, another hospital's resource 404 with an OperationOutcome."""

from typing import Any

import pytest

from consultations.models import Conclusion
from interop.resources import DICOM_UID, ICD10
from tests.conftest import PatientFactory, consultation_make, study_make
from tests.interop.conftest import FhirGet

pytestmark = [pytest.mark.usefixtures("lab_reference")]


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [entry["resource"]["id"] for entry in bundle["entry"] if entry["search"]["mode"] == mode]


def conclude(consultation: Any) -> Conclusion:
    return Conclusion.objects.create(
        consultation=consultation,
        version=1,
        findings="ST elevation in II, III, aVF",
        diagnosis_id="I21.1",
        diagnosis_text="Inferior STEMI",
        recommendation="transfer",
        plan="Transfer today",
        signed_by=consultation.requested_by,
    )


def test_a_consultation_is_a_service_request(tula: FhirGet, tula_patient: Any, kostroma_patient: Any) -> None:
    consultation = consultation_make(tula_patient, urgency="emergency")
    concluded = consultation_make(tula_patient, state="concluded")
    theirs = consultation_make(kostroma_patient)
    body = tula(f"/fhir/ServiceRequest/{consultation.pk}")
    assert body["status"] == "active" and body["priority"] == "stat" and body["intent"] == "order"
    assert body["subject"]["reference"] == f"Patient/{tula_patient.pk}"
    assert body["performer"][0]["reference"] == f"Organization/{tula_patient.hospital.central_hospital_id}"
    assert ids(tula("/fhir/ServiceRequest", patient=tula_patient.pk)) == [str(concluded.pk), str(consultation.pk)]
    assert ids(tula("/fhir/ServiceRequest", subject=f"Patient/{tula_patient.pk}", status="completed")) == [
        str(concluded.pk)
    ]
    assert ids(tula("/fhir/ServiceRequest", _id=consultation.pk, _include="ServiceRequest:patient"), "include") == [
        str(tula_patient.pk)
    ]
    assert tula(f"/fhir/ServiceRequest/{theirs.pk}", 404)["issue"][0]["code"] == "not-found"


def test_a_signed_conclusion_is_a_diagnostic_report_with_its_icd10_code(
    tula: FhirGet, tula_patient: Any, kostroma_patient: Any
) -> None:
    report = conclude(consultation_make(tula_patient, state="concluded"))
    theirs = conclude(consultation_make(kostroma_patient, state="concluded"))
    body = tula(f"/fhir/DiagnosticReport/{report.pk}")
    assert body["conclusionCode"][0]["coding"][0]["system"] == ICD10
    assert body["conclusionCode"][0]["coding"][0]["code"] == "I21.1"
    assert body["conclusion"].startswith("Inferior STEMI") and body["status"] == "final"
    assert body["basedOn"][0]["reference"] == f"ServiceRequest/{report.consultation_id}"
    mine = str(report.pk)
    assert ids(tula("/fhir/DiagnosticReport", patient=tula_patient.pk)) == [mine]
    assert ids(tula("/fhir/DiagnosticReport", subject=tula_patient.pk, code=f"{ICD10}|I21.1")) == [mine]
    assert ids(tula("/fhir/DiagnosticReport", code="J18.9")) == []
    assert ids(tula("/fhir/DiagnosticReport", date=f"ge{report.signed_at.date().isoformat()}")) == [mine]
    assert tula(f"/fhir/DiagnosticReport/{theirs.pk}", 404)["resourceType"] == "OperationOutcome"


def test_an_imaging_study_carries_its_uids_series_and_dicomweb_endpoint(
    tula: FhirGet, tula_patient: Any, kostroma_patient: Any
) -> None:
    study = study_make(tula_patient)
    theirs = study_make(kostroma_patient)
    series = study.series.get()
    body = tula(f"/fhir/ImagingStudy/{study.pk}")
    assert body["identifier"][0] == {"system": DICOM_UID, "value": f"urn:oid:{study.study_instance_uid}"}
    assert body["series"][0]["uid"] == series.series_instance_uid and body["numberOfSeries"] == 1
    assert body["series"][0]["modality"]["code"] == series.modality
    assert body["contained"][0]["address"] == f"/dicom-web/studies/{study.study_instance_uid}"
    assert ids(tula("/fhir/ImagingStudy", patient=tula_patient.pk)) == [str(study.pk)]
    assert ids(tula("/fhir/ImagingStudy", subject=tula_patient.pk, identifier=study.study_instance_uid)) == [
        str(study.pk)
    ]
    bundle = tula("/fhir/ImagingStudy", patient=tula_patient.pk, _include="ImagingStudy:patient")
    assert ids(bundle, "include") == [str(tula_patient.pk)]
    assert tula(f"/fhir/ImagingStudy/{theirs.pk}", 404)["issue"][0]["code"] == "not-found"
    assert ids(tula("/fhir/ImagingStudy", patient=PatientFactory(hospital=tula_patient.hospital).pk)) == []
