"""Writes to the patient registry: registering, correcting, recording consent."""

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from hospitals.models import Hospital, User
from patients.models import PATIENT_FIELDS, Consent, Patient


@transaction.atomic
def patient_create(*, hospital: Hospital, by: User, **fields: Any) -> Patient:
    patient = Patient(hospital=hospital, created_by=by, **{name: fields[name] for name in PATIENT_FIELDS})
    patient.full_clean()
    patient.save()
    return patient


@transaction.atomic
def patient_update(*, patient: Patient, **fields: Any) -> Patient:
    for name in PATIENT_FIELDS:
        setattr(patient, name, fields[name])
    patient.full_clean()
    patient.save()
    return patient


@transaction.atomic
def consent_record(
    *, patient: Patient, by: User, telemedicine: bool, data_sharing: bool, form_scan: UploadedFile | None = None
) -> Consent:
    """Record the patient's answer; a newer record replaces the older one (which stays for the audit)."""
    return Consent.objects.create(
        patient=patient,
        telemedicine=telemedicine,
        data_sharing=data_sharing,
        form_scan=form_scan or "",
        recorded_by=by,
    )
