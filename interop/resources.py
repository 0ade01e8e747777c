"""The registry of FHIR R4 resource types the API serves: each maps platform rows to FHIR JSON.

One registry drives the read and search views and the CapabilityStatement at /fhir/metadata, so the
statement lists exactly what the views answer.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Model, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from consultations.models import Call, Conclusion, Consultation
from consultations.selectors import consultations_visible
from devices.models import Device
from diagnostics.models import Observation, Recording, Study
from diagnostics.selectors import observations_visible, recordings_visible, studies_visible
from hospitals.models import Hospital, Staff
from hospitals.scoping import Scope, hospital_assets_manageable, hospitals_visible, patients_visible
from patients.models import Consent as PatientConsent
from patients.models import Patient

SNILS_SYSTEM = "urn:oid:1.2.643.100.3"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


class SearchError(ValueError):
    """A search parameter's value the API cannot use; the message names it."""


def record_number_system(hospital_id: int) -> str:
    """Record numbers are unique within a hospital only, so each hospital has its own identifier system."""
    return f"urn:mhospital:hospital:{hospital_id}:record-number"


def _instant(value: datetime) -> str:
    return value.isoformat()


def _number(value: Decimal) -> float | int:
    normalised = value.normalize()
    return int(normalised) if normalised == normalised.to_integral() else float(normalised)


def patient_json(patient: Patient) -> dict[str, Any]:
    identifiers = [
        {
            "use": "usual",
            "type": {"text": "Hospital record number"},
            "system": record_number_system(patient.hospital_id),
            "value": patient.record_number,
        }
    ]
    if patient.snils:
        identifiers.append(
            {"use": "official", "type": {"text": "SNILS"}, "system": SNILS_SYSTEM, "value": patient.snils}
        )
    name: dict[str, Any] = {"use": "official", "family": patient.family_name, "given": [patient.given_name]}
    if patient.patronymic:
        name["given"].append(patient.patronymic)
    return {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "identifier": identifiers,
        "name": [name],
        "gender": patient.sex,
        "birthDate": patient.birth_date.isoformat(),
        "managingOrganization": {"reference": f"Organization/{patient.hospital_id}"},
    }


def organization_json(hospital: Hospital) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Organization",
        "id": str(hospital.pk),
        "active": hospital.is_active,
        "name": hospital.name,
        "type": [{"text": hospital.get_kind_display()}],
        "address": [{"state": hospital.region}],
    }
    if hospital.central_hospital_id:
        body["partOf"] = {"reference": f"Organization/{hospital.central_hospital_id}"}
    return body


def _interpretation(observation: Observation) -> str | None:
    return {
        Observation.Flag.NORMAL: "N",
        Observation.Flag.LOW: "L",
        Observation.Flag.HIGH: "H",
        Observation.Flag.CRITICAL_LOW: "LL",
        Observation.Flag.CRITICAL_HIGH: "HH",
    }.get(observation.flag)  # type: ignore[call-overload]


def observation_json(observation: Observation) -> dict[str, Any]:
    test = observation.test
    coding: dict[str, Any] = (
        {"system": LOINC, "code": test.loinc, "display": test.name}
        if test is not None
        else {"code": observation.code_sent, "display": observation.name_sent}
    )
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(observation.pk),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [coding], "text": test.name if test else observation.name_sent or observation.code_sent},
        "effectiveDateTime": _instant(observation.observed_at),
        "issued": _instant(observation.received_at),
    }
    if observation.patient_id is not None:
        body["subject"] = {"reference": f"Patient/{observation.patient_id}"}
    if observation.value is not None:
        quantity: dict[str, Any] = {"value": _number(observation.value), "unit": observation.unit}
        if observation.unit:
            quantity.update(system=UCUM, code=observation.unit)
        if observation.comparator in ("<", "<=", ">", ">="):
            quantity["comparator"] = observation.comparator
        body["valueQuantity"] = quantity
    else:
        body["valueString"] = observation.value_sent
    if observation.low is not None or observation.high is not None:
        limits: dict[str, Any] = {}
        unit = {"unit": observation.unit, "system": UCUM, "code": observation.unit} if observation.unit else {}
        if observation.low is not None:
            limits["low"] = {"value": _number(observation.low), **unit}
        if observation.high is not None:
            limits["high"] = {"value": _number(observation.high), **unit}
        body["referenceRange"] = [limits]
    code = _interpretation(observation)
    if code:
        body["interpretation"] = [
            {"coding": [{"system": INTERPRETATION, "code": code, "display": observation.get_flag_display()}]}
        ]
    return body


SERVICE_REQUEST_STATUS = {
    "draft": "draft",
    "requested": "active",
    "accepted": "active",
    "info_requested": "on-hold",
    "concluded": "completed",
    "declined": "revoked",
    "cancelled": "revoked",
}
ICD10 = "http://hl7.org/fhir/sid/icd-10"
DICOM_UID = "urn:dicom:uid"


def service_request_json(consultation: Consultation) -> dict[str, Any]:
    """A consultation request from one hospital to another."""
    body: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(consultation.pk),
        "status": SERVICE_REQUEST_STATUS.get(consultation.state, "unknown"),
        "intent": "order",
        "priority": "stat"
        if consultation.urgency == "emergency"
        else "urgent"
        if consultation.urgency == "urgent"
        else "routine",
        "code": {"text": f"Teleconsultation: {consultation.specialty}"},
        "subject": {"reference": f"Patient/{consultation.patient_id}"},
        "requester": {"reference": f"Organization/{consultation.requesting_hospital_id}"},
        "performer": [{"reference": f"Organization/{consultation.consulted_hospital_id}"}],
        "reasonCode": [{"text": consultation.question[:1000]}],
    }
    if consultation.requested_at:
        body["authoredOn"] = _instant(consultation.requested_at)
    return body


def diagnostic_report_json(conclusion: Conclusion) -> dict[str, Any]:
    """A signed conclusion: the specialist's findings and the ICD-10 diagnosis."""
    consultation = conclusion.consultation
    return {
        "resourceType": "DiagnosticReport",
        "id": str(conclusion.pk),
        "status": "final" if conclusion.version == 1 else "amended",
        "code": {"text": "Teleconsultation conclusion"},
        "subject": {"reference": f"Patient/{consultation.patient_id}"},
        "basedOn": [{"reference": f"ServiceRequest/{consultation.pk}"}],
        "issued": _instant(conclusion.signed_at),
        "performer": [{"reference": f"Organization/{consultation.consulted_hospital_id}"}],
        "conclusion": f"{conclusion.diagnosis_text}. {conclusion.findings}"[:8000],
        "conclusionCode": [
            {
                "coding": [
                    {"system": ICD10, "code": conclusion.diagnosis_id, "display": conclusion.diagnosis.title_en}
                ],
                "text": conclusion.diagnosis_text,
            }
        ],
        # The signed PDF, as the clinician downloads it (the same sign-in and scope apply).
        "presentedForm": [
            {
                "contentType": "application/pdf",
                "language": "ru",
                "url": reverse("consultation_conclusion_pdf", args=[consultation.pk, conclusion.version]),
                "title": f"Conclusion v{conclusion.version}",
                "creation": _instant(conclusion.signed_at),
            }
        ],
    }


def imaging_study_json(study: Study) -> dict[str, Any]:
    """A DICOM study with its UIDs and series, and the platform's DICOMweb endpoint to fetch it."""
    series = list(study.series.all())
    body: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": str(study.pk),
        "identifier": [{"system": DICOM_UID, "value": f"urn:oid:{study.study_instance_uid}"}],
        "status": "available",
        "subject": {"reference": f"Patient/{study.patient_id}"},
        "endpoint": [{"reference": "#dicomweb"}],
        "contained": [
            {
                "resourceType": "Endpoint",
                "id": "dicomweb",
                "status": "active",
                "connectionType": {
                    "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                    "code": "dicom-wado-rs",
                },
                "payloadType": [{"text": "DICOM"}],
                "address": f"/dicom-web/studies/{study.study_instance_uid}",
            }
        ],
        "numberOfSeries": len(series),
        "series": [
            {
                "uid": item.series_instance_uid,
                **({"number": item.number} if item.number is not None else {}),
                "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": item.modality or "OT"},
                **({"description": item.description} if item.description else {}),
                **({"bodySite": {"display": item.body_part}} if item.body_part else {}),
            }
            for item in series
        ],
    }
    if study.description:
        body["description"] = study.description
    if study.study_date:
        body["started"] = study.study_date.isoformat()
    return body


def _service_requests(scope: Scope) -> QuerySet[Consultation]:
    return consultations_visible(scope).exclude(state="draft").order_by("-pk")


def _diagnostic_reports(scope: Scope) -> QuerySet[Conclusion]:
    visible = consultations_visible(scope).values("pk")
    return (
        Conclusion.objects.filter(consultation__in=visible).select_related("consultation", "diagnosis").order_by("-pk")
    )


def _imaging_studies(scope: Scope) -> QuerySet[Study]:
    return studies_visible(scope).prefetch_related("series").order_by("-pk")


ENCOUNTER_STATUS = {
    "ringing": "arrived",
    "active": "in-progress",
    "ended": "finished",
    "missed": "cancelled",
    "declined": "cancelled",
    "failed": "cancelled",
}


def encounter_json(call: Call) -> dict[str, Any]:
    """A video call on a consultation: a virtual encounter between the two hospitals."""
    consultation = call.consultation
    period: dict[str, Any] = {"start": _instant(call.answered_at or call.started_at)}
    if call.ended_at:
        period["end"] = _instant(call.ended_at)
    return {
        "resourceType": "Encounter",
        "id": str(call.pk),
        "status": ENCOUNTER_STATUS.get(call.state, "unknown"),
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR", "display": "virtual"},
        "subject": {"reference": f"Patient/{consultation.patient_id}"},
        "basedOn": [{"reference": f"ServiceRequest/{consultation.pk}"}],
        "period": period,
        "serviceProvider": {"reference": f"Organization/{consultation.consulted_hospital_id}"},
    }


def consent_json(consent: PatientConsent) -> dict[str, Any]:
    """The patient's recorded consent to telemedicine and to sharing data with the central hospital."""
    permitted = consent.telemedicine and consent.data_sharing and consent.withdrawn_at is None
    return {
        "resourceType": "Consent",
        "id": str(consent.pk),
        "status": "inactive" if consent.withdrawn_at else "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Consent Document"}]}],
        "patient": {"reference": f"Patient/{consent.patient_id}"},
        "dateTime": _instant(consent.recorded_at),
        "policyRule": {"text": "Telemedicine consultation and data sharing within the hospital network"},
        "provision": {
            "type": "permit" if permitted else "deny",
            "purpose": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                    "code": "TREAT",
                    "display": "treatment",
                }
            ],
        },
    }


def device_json(device: Device) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Device",
        "id": str(device.pk),
        "status": "active" if device.active else "inactive",
        "deviceName": [{"name": device.name, "type": "user-friendly-name"}],
        "type": {"text": device.get_kind_display()},
        "owner": {"reference": f"Organization/{device.hospital_id}"},
    }
    if device.vendor:
        body["manufacturer"] = device.vendor
    if device.model_name:
        body["modelNumber"] = device.model_name
    if device.serial:
        body["serialNumber"] = device.serial
    return body


def _encounters(scope: Scope) -> QuerySet[Call]:
    visible = consultations_visible(scope).values("pk")
    return Call.objects.filter(consultation__in=visible).select_related("consultation").order_by("-pk")


def _consents(scope: Scope) -> QuerySet[PatientConsent]:
    patients = patients_visible(scope, Patient.objects.all()).values("pk")
    return PatientConsent.objects.filter(patient__in=patients).order_by("-pk")


def _devices(scope: Scope) -> QuerySet[Device]:
    return hospital_assets_manageable(scope, Device.objects.all()).order_by("pk")


def practitioner_json(staff: Staff) -> dict[str, Any]:
    """A member of staff as a person (their role at the hospital is the PractitionerRole of the same id)."""
    user = staff.user
    name: dict[str, Any] = {"use": "official", "family": user.last_name or user.username}
    if user.first_name:
        name["given"] = [user.first_name]
    return {
        "resourceType": "Practitioner",
        "id": str(staff.pk),
        "active": staff.deactivated_at is None,
        "name": [name],
    }


def practitioner_role_json(staff: Staff) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": str(staff.pk),
        "active": staff.deactivated_at is None,
        "practitioner": {"reference": f"Practitioner/{staff.pk}"},
        "organization": {"reference": f"Organization/{staff.hospital_id}"},
        "code": [
            {
                "coding": [{"system": "urn:mhospital:staff-role", "code": staff.role}],
                "text": staff.job_title or staff.get_role_display(),
            }
        ],
    }
    specialties = [
        {"coding": [{"system": "urn:mhospital:specialty", "code": item.code, "display": item.name_en}]}
        for item in staff.specialties.all()
    ]
    if specialties:
        body["specialty"] = specialties
    return body


def _staff(scope: Scope) -> QuerySet[Staff]:
    """The staff of the hospitals the scope sees (its own and its network): who asks and who answers."""
    hospitals = hospitals_visible(scope).values("pk")
    return (
        Staff.objects.filter(hospital__in=hospitals, deactivated_at__isnull=True)
        .select_related("user")
        .prefetch_related("specialties")
        .order_by("pk")
    )


RECORDING_TYPES = {"heart": "heart sound", "lung": "lung sound", "ecg": "ECG"}
RECORDING_MEDIA = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg"}


def document_reference_json(recording: Recording) -> dict[str, Any]:
    """A recording (heart or lung sound, ECG) as a document whose content is the platform's file URL."""
    attachment: dict[str, Any] = {
        "contentType": RECORDING_MEDIA.get(recording.format, "application/octet-stream"),
        "url": f"/recordings/{recording.pk}/file",
        "size": recording.size,
        "title": recording.original_name,
    }
    if recording.recorded_at:
        attachment["creation"] = _instant(recording.recorded_at)
    return {
        "resourceType": "DocumentReference",
        "id": str(recording.pk),
        "status": "current",
        "type": {"text": RECORDING_TYPES.get(recording.kind, recording.kind)},
        "subject": {"reference": f"Patient/{recording.patient_id}"},
        "custodian": {"reference": f"Organization/{recording.hospital_id}"},
        "date": _instant(recording.created_at),
        "content": [{"attachment": attachment}],
    }


def _documents(scope: Scope) -> QuerySet[Recording]:
    return recordings_visible(scope).order_by("-pk")


# Search parameters: each turns one value into a Q on the type's queryset.

Filter = Callable[[str], Q]

DATE_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge")


def _id(value: str) -> int:
    tail = value.rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise SearchError(value)
    return int(tail)


def date_filter(field_name: str, *, whole_days: bool = False) -> Filter:
    """FHIR date search with a prefix (eq, ne, lt, le, gt, ge). On a datetime field a bare date means its
    whole day (in the active time zone), kept as a range so the field's index still serves it."""

    def build(value: str) -> Q:
        prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
        raw = value[2:] if value[:2] in DATE_PREFIXES else value
        # A bare date first: parse_datetime would read "2026-01-31" as a naive midnight.
        day = parse_date(raw) if len(raw) == 10 else None
        moment = parse_datetime(raw) if day is None else None
        if day is None and moment is None:
            raise SearchError(value)
        start: date | datetime
        after: date | datetime
        if whole_days:
            if day is None:
                raise SearchError(value)
            start, after = day, day + timedelta(days=1)
        elif day is not None:
            start = timezone.make_aware(datetime.combine(day, time.min))
            after = start + timedelta(days=1)
        else:
            assert moment is not None
            start = moment if moment.tzinfo else timezone.make_aware(moment)
            after = start + timedelta(microseconds=1)
        within = Q(**{f"{field_name}__gte": start, f"{field_name}__lt": after})
        return {
            "eq": within,
            "ne": ~within,
            "lt": Q(**{f"{field_name}__lt": start}),
            "le": Q(**{f"{field_name}__lt": after}),
            "gt": Q(**{f"{field_name}__gte": after}),
            "ge": Q(**{f"{field_name}__gte": start}),
        }[prefix]

    return build


def _token_code(value: str) -> str:
    """`system|code` or `code`: the code (the only system served for codes is LOINC)."""
    return value.rsplit("|", 1)[-1]


def _patient_identifier(value: str) -> Q:
    system, _, code = value.rpartition("|")
    if system == SNILS_SYSTEM:
        return Q(snils=code.replace("-", "").replace(" ", ""))
    if system.startswith("urn:mhospital:hospital:") and system.endswith(":record-number"):
        hospital = system.split(":")[3]
        if not hospital.isdigit():
            raise SearchError(value)
        return Q(hospital_id=int(hospital), record_number=code)
    if system:
        raise SearchError(value)
    return Q(record_number=code) | Q(snils=code)


@dataclass(frozen=True)
class Include:
    """`_include=<Type>:<param>`: the rows referenced through `attribute` are added to the Bundle."""

    target: str
    attribute: str


@dataclass(frozen=True)
class ResourceType:
    name: str
    profile_doc: str
    queryset: Callable[[Scope], QuerySet[Any]]
    to_json: Callable[[Any], dict[str, Any]]
    search: dict[str, tuple[str, Filter]] = field(default_factory=dict)  # name -> (FHIR type, filter)
    includes: dict[str, Include] = field(default_factory=dict)
    patient_of: Callable[[Any], object] | None = None  # for the audit: whose data this row is


def _patients(scope: Scope) -> QuerySet[Patient]:
    return patients_visible(scope, Patient.objects.all()).order_by("pk")


def _observations(scope: Scope) -> QuerySet[Observation]:
    return observations_visible(scope).select_related("test").order_by("-observed_at", "-pk")


def _hospitals(scope: Scope) -> QuerySet[Hospital]:
    return hospitals_visible(scope).order_by("pk")


_patient_ref: Filter = lambda value: Q(patient_id=_id(value))  # noqa: E731

REGISTRY: dict[str, ResourceType] = {
    resource.name: resource
    for resource in (
        ResourceType(
            name="Patient",
            profile_doc="Patients of the caller's hospital, and those it consults on.",
            queryset=_patients,
            to_json=patient_json,
            search={
                "_id": ("token", lambda value: Q(pk=_id(value))),
                "identifier": ("token", _patient_identifier),
                "family": ("string", lambda value: Q(family_name__istartswith=value)),
                "birthdate": ("date", date_filter("birth_date", whole_days=True)),
                "gender": ("token", lambda value: Q(sex=value)),
            },
            patient_of=lambda patient: patient.pk,
        ),
        ResourceType(
            name="Organization",
            profile_doc="Hospitals: the caller's own and those of its network.",
            queryset=_hospitals,
            to_json=organization_json,
            search={
                "_id": ("token", lambda value: Q(pk=_id(value))),
                "name": ("string", lambda value: Q(name__icontains=value)),
            },
        ),
        ResourceType(
            name="Observation",
            profile_doc="Lab results with LOINC codes, UCUM quantities, reference ranges and interpretation.",
            queryset=_observations,
            to_json=observation_json,
            search={
                "_id": ("token", lambda value: Q(pk=_id(value))),
                "patient": ("reference", _patient_ref),
                "subject": ("reference", _patient_ref),
                "code": ("token", lambda value: Q(test__loinc=_token_code(value)) | Q(code_sent=_token_code(value))),
                "date": ("date", date_filter("observed_at")),
            },
            includes={"Observation:patient": Include(target="Patient", attribute="patient_id")},
            patient_of=lambda observation: observation.patient_id or "",
        ),
        ResourceType(
            name="ServiceRequest",
            profile_doc="Consultation requests between hospitals.",
            queryset=_service_requests,
            to_json=service_request_json,
            search={
                "_id": ("token", lambda value: Q(pk=_id(value))),
                "patient": ("reference", _patient_ref),
                "subject": ("reference", _patient_ref),
                "status": (
                    "token",
                    lambda value: Q(state__in=[k for k, v in SERVICE_REQUEST_STATUS.items() if v == value]),
                ),
            },
            includes={"ServiceRequest:patient": Include(target="Patient", attribute="patient_id")},
            patient_of=lambda consultation: consultation.patient_id,
        ),
        ResourceType(
            name="DiagnosticReport",
            profile_doc="Signed consultation conclusions with the ICD-10 diagnosis.",
            queryset=_diagnostic_reports,
            to_json=diagnostic_report_json,
            search={
                "_id": ("token", lambda value: Q(pk=_id(value))),
                "patient": ("reference", lambda value: Q(consultation__patient_id=_id(value))),
                "subject": ("reference", lambda value: Q(consultation__patient_id=_id(value))),
                "code": ("token", lambda value: Q(diagnosis_id=_token_code(value))),
                "date": ("date", date_filter("signed_at")),
            },
            patient_of=lambda conclusion: conclusion.consultation.patient_id,
        ),
        ResourceType(
            name="ImagingStudy",
            profile_doc="DICOM studies with their UIDs and series; the endpoint is the platform's DICOMweb.",
            queryset=_imaging_studies,
            to_json=imaging_study_json,
            search={
                "_id": ("token", lambda value: Q(pk=_id(value))),
                "patient": ("reference", _patient_ref),
                "subject": ("reference", _patient_ref),
                "identifier": (
                    "token",
                    lambda value: Q(study_instance_uid=_token_code(value).removeprefix("urn:oid:")),
                ),
            },
            includes={"ImagingStudy:patient": Include(target="Patient", attribute="patient_id")},
            patient_of=lambda study: study.patient_id,
        ),
        ResourceType(
            name="Encounter",
            profile_doc="Video calls on consultations (virtual encounters).",
            queryset=_encounters,
            to_json=encounter_json,
            search={
                "_id": ("token", lambda value: Q(pk=_id(value))),
                "patient": ("reference", lambda value: Q(consultation__patient_id=_id(value))),
                "subject": ("reference", lambda value: Q(consultation__patient_id=_id(value))),
                "status": ("token", lambda value: Q(state__in=[k for k, v in ENCOUNTER_STATUS.items() if v == value])),
            },
            patient_of=lambda call: call.consultation.patient_id,
        ),
        ResourceType(
            name="Consent",
            profile_doc="Patients' consent to telemedicine and data sharing.",
            queryset=_consents,
            to_json=consent_json,
            search={
                "_id": ("token", lambda value: Q(pk=_id(value))),
                "patient": ("reference", _patient_ref),
                "status": ("token", lambda value: Q(withdrawn_at__isnull=value == "active")),
            },
            patient_of=lambda consent: consent.patient_id,
        ),
        ResourceType(
            name="Device",
            profile_doc="The hospital's registered devices (hospital admins).",
            queryset=_devices,
            to_json=device_json,
            search={"_id": ("token", lambda value: Q(pk=_id(value)))},
        ),
        ResourceType(
            name="Practitioner",
            profile_doc="Staff of the caller's hospital and its network.",
            queryset=_staff,
            to_json=practitioner_json,
            search={
                "_id": ("token", lambda value: Q(pk=_id(value))),
                "family": ("string", lambda value: Q(user__last_name__istartswith=value)),
            },
        ),
        ResourceType(
            name="PractitionerRole",
            profile_doc="Each member of staff's role, hospital and specialties.",
            queryset=_staff,
            to_json=practitioner_role_json,
            search={
                "_id": ("token", lambda value: Q(pk=_id(value))),
                "organization": ("reference", lambda value: Q(hospital_id=_id(value))),
                "specialty": ("token", lambda value: Q(specialties__code=_token_code(value))),
            },
        ),
        ResourceType(
            name="DocumentReference",
            profile_doc="Recordings (heart and lung sounds, ECGs) with a link to the file.",
            queryset=_documents,
            to_json=document_reference_json,
            search={
                "_id": ("token", lambda value: Q(pk=_id(value))),
                "patient": ("reference", _patient_ref),
                "subject": ("reference", _patient_ref),
            },
            includes={"DocumentReference:patient": Include(target="Patient", attribute="patient_id")},
            patient_of=lambda recording: recording.patient_id,
        ),
    )
}


def model_label(row: Model) -> str:
    return row._meta.label_lower
