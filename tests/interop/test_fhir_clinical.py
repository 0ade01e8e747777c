"""ServiceRequest (consultations), DiagnosticReport (signed conclusions), ImagingStudy (DICOM studies),
Encounter (video calls), Consent, Device, Practitioner(Role) and DocumentReference (recordings):
read, search with each parameter, _include, another hospital's resource 404 with an OperationOutcome."""

from typing import Any

import pytest
from django.test import TestCase
from django.utils import timezone

from consultations.models import Call, Conclusion
from devices.models import Device
from diagnostics import recordings
from hospitals.models import Specialty, Staff
from interop.resources import DICOM_UID, ICD10
from patients.models import Consent
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make, study_make
from tests.diagnostics.test_recordings import heart_sound, wav_bytes
from tests.interop.conftest import FhirGet, fhir_client

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
    [pdf] = body["presentedForm"]
    assert pdf["contentType"] == "application/pdf"
    assert pdf["url"] == f"/consultations/{report.consultation_id}/conclusion/1.pdf"
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


def test_a_video_call_is_a_virtual_encounter(tula: FhirGet, tula_patient: Any, kostroma_patient: Any) -> None:
    consultation = consultation_make(tula_patient, state="accepted")
    call = Call.objects.create(
        consultation=consultation,
        started_by=consultation.requested_by,
        state="ended",
        ring_until=timezone.now(),
        ended_at=timezone.now(),
    )
    other = consultation_make(kostroma_patient, state="accepted")
    theirs = Call.objects.create(consultation=other, started_by=other.requested_by, ring_until=timezone.now())
    body = tula(f"/fhir/Encounter/{call.pk}")
    assert body["status"] == "finished" and body["class"]["code"] == "VR" and "end" in body["period"]
    assert body["basedOn"][0]["reference"] == f"ServiceRequest/{consultation.pk}"
    assert ids(tula("/fhir/Encounter", patient=tula_patient.pk)) == [str(call.pk)]
    assert ids(tula("/fhir/Encounter", subject=tula_patient.pk, status="in-progress")) == []
    assert ids(tula("/fhir/Encounter", status="finished")) == [str(call.pk)]
    assert tula(f"/fhir/Encounter/{theirs.pk}", 404)["issue"][0]["code"] == "not-found"


def test_a_recorded_consent_and_its_withdrawal(tula: FhirGet, tula_patient: Any, kostroma_patient: Any) -> None:
    by = consultation_make(tula_patient).requested_by
    given = Consent.objects.create(patient=tula_patient, telemedicine=True, data_sharing=True, recorded_by=by)
    withdrawn = Consent.objects.create(
        patient=tula_patient, telemedicine=True, data_sharing=True, recorded_by=by, withdrawn_at=timezone.now()
    )
    theirs = Consent.objects.create(patient=kostroma_patient, telemedicine=True, data_sharing=False, recorded_by=by)
    body = tula(f"/fhir/Consent/{given.pk}")
    assert body["status"] == "active" and body["provision"]["type"] == "permit"
    assert tula(f"/fhir/Consent/{withdrawn.pk}")["status"] == "inactive"
    assert ids(tula("/fhir/Consent", patient=tula_patient.pk)) == [str(withdrawn.pk), str(given.pk)]
    assert ids(tula("/fhir/Consent", patient=tula_patient.pk, status="active")) == [str(given.pk)]
    assert tula(f"/fhir/Consent/{theirs.pk}", 404)["issue"][0]["code"] == "not-found"


def test_devices_are_read_by_their_hospital_admin_only(network_a: Network, network_b: Network) -> None:
    admin = StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN).user
    device = Device.objects.create(
        hospital=network_a.regional, name="Analyser", kind=Device.Kind.LAB_ANALYSER, vendor="Mindray", serial="S1"
    )
    theirs = Device.objects.create(hospital=network_b.regional, name="Glucometer", kind=Device.Kind.GLUCOSE_METER)
    get = fhir_client(admin)
    body = get(f"/fhir/Device/{device.pk}")
    assert body["manufacturer"] == "Mindray" and body["serialNumber"] == "S1" and body["status"] == "active"
    assert ids(get("/fhir/Device")) == [str(device.pk)] and ids(get("/fhir/Device", _id=device.pk)) == [str(device.pk)]
    assert get(f"/fhir/Device/{theirs.pk}", 404)["issue"][0]["code"] == "not-found"


def test_staff_of_the_network_are_practitioners_with_roles(
    tula: FhirGet, tula_clinician: Any, network_a: Network, network_b: Network
) -> None:
    cardiology = Specialty.objects.create(code="cardio-fhir", name_en="Cardiology", name_ru="Кардиология")
    specialist = StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST, user__last_name="Orlova")
    specialist.specialties.add(cardiology)
    elsewhere = StaffFactory(hospital=network_b.central, role=Staff.Role.SPECIALIST)
    body = tula(f"/fhir/Practitioner/{specialist.pk}")
    assert body["name"][0]["family"] == "Orlova" and body["active"] is True
    role = tula(f"/fhir/PractitionerRole/{specialist.pk}")
    assert role["organization"]["reference"] == f"Organization/{network_a.central.pk}"
    assert role["specialty"][0]["coding"][0]["code"] == "cardio-fhir"
    assert role["practitioner"]["reference"] == f"Practitioner/{specialist.pk}"
    assert ids(tula("/fhir/Practitioner", family="Orlova")) == [str(specialist.pk)]
    assert ids(tula("/fhir/Practitioner", _id=specialist.pk)) == [str(specialist.pk)]
    assert ids(tula("/fhir/PractitionerRole", specialty="cardio-fhir")) == [str(specialist.pk)]
    assert ids(tula("/fhir/PractitionerRole", organization=f"Organization/{network_a.central.pk}")) == [
        str(specialist.pk)
    ]
    assert str(tula_clinician.staff.pk) in ids(tula("/fhir/PractitionerRole"))
    assert tula(f"/fhir/Practitioner/{elsewhere.pk}", 404)["issue"][0]["code"] == "not-found"
    assert tula(f"/fhir/PractitionerRole/{elsewhere.pk}", 404)["issue"][0]["code"] == "not-found"


def recording_of(patient: Any) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        stored = recordings.recording_store(
            data=wav_bytes(heart_sound(seed=patient.pk)),
            filename="apex.wav",
            kind="heart",
            patient=patient,
            hospital_id=patient.hospital_id,
        )
    return stored.recording


def test_a_recording_is_a_document_reference_to_its_file(
    tula: FhirGet, tula_patient: Any, kostroma_patient: Any
) -> None:
    recording = recording_of(tula_patient)
    theirs = recording_of(kostroma_patient)
    body = tula(f"/fhir/DocumentReference/{recording.pk}")
    attachment = body["content"][0]["attachment"]
    assert attachment["url"] == f"/recordings/{recording.pk}/file" and attachment["contentType"] == "audio/wav"
    assert attachment["title"] == "apex.wav" and body["type"]["text"] == "heart sound"
    assert ids(tula("/fhir/DocumentReference", patient=tula_patient.pk)) == [str(recording.pk)]
    bundle = tula("/fhir/DocumentReference", subject=tula_patient.pk, _include="DocumentReference:patient")
    assert ids(bundle) == [str(recording.pk)] and ids(bundle, "include") == [str(tula_patient.pk)]
    assert tula(f"/fhir/DocumentReference/{theirs.pk}", 404)["issue"][0]["code"] == "not-found"
