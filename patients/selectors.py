"""Reads of patient data, always through the scoping rules in hospitals/scoping.py."""

import re
from datetime import date, datetime

from django.db.models import Prefetch, Q, QuerySet

from hospitals.scoping import Scope, access_record, patients_visible
from patients.models import Consent, Patient
from patients.validators import normalize_name, snils_digits

_DATE_FORMATS = ("%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y")


def _as_date(text: str) -> date | None:
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def patient_search(*, scope: Scope, query: str = "") -> QuerySet[Patient]:
    """Patients the scope may see, matching a name (any order, case and ё/е ignored), a record number,
    a SNILS or a birth date."""
    patients = patients_visible(scope, Patient.objects.select_related("hospital"))
    query = query.strip()
    if not query:
        return patients
    digits = snils_digits(query)
    if re.fullmatch(r"\d{11}", digits):
        return patients.filter(Q(snils=digits) | Q(record_number=query))
    if (born := _as_date(query)) is not None:
        return patients.filter(birth_date=born)
    if any(character.isdigit() for character in query):  # names have no digits; record numbers do
        return patients.filter(record_number__iexact=query)
    by_name = Q()
    for token in normalize_name(query).split():
        by_name &= Q(search_name__contains=token)
    return patients.filter(by_name)


def access_patient(scope: Scope, pk: object) -> Patient:
    patients = patients_visible(scope, Patient.objects.select_related("hospital"))
    return access_record(
        patients.prefetch_related(Prefetch("consents", queryset=Consent.objects.select_related("recorded_by"))), pk
    )


def patient_likely_duplicates(
    *, hospital_id: int, snils: str, family_name: str, given_name: str, patronymic: str, birth_date: date | None
) -> QuerySet[Patient]:
    """Patients of the same hospital with the same SNILS, or the same full name and birth date."""
    condition = Q()
    if snils:
        condition |= Q(snils=snils)
    if birth_date is not None:
        condition |= Q(search_name=normalize_name(family_name, given_name, patronymic), birth_date=birth_date)
    if not condition:
        return Patient.objects.none()
    return Patient.objects.filter(condition, hospital_id=hospital_id)
