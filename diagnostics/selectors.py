"""Reads of imaging data, always through the patient scoping of hospitals/scoping.py."""

from django.db.models import QuerySet

from diagnostics.models import Instance, Series, Study
from hospitals.scoping import Scope, patients_visible
from patients.models import Patient


def studies_visible(scope: Scope) -> QuerySet[Study]:
    """Studies of the patients the scope may see (their own hospital's, or through a consultation)."""
    return Study.objects.filter(patient__in=patients_visible(scope, Patient.objects.all()).values("pk"))


def series_visible(scope: Scope) -> QuerySet[Series]:
    return Series.objects.filter(study__in=studies_visible(scope).values("pk"))


def instances_visible(scope: Scope) -> QuerySet[Instance]:
    return Instance.objects.filter(series__study__in=studies_visible(scope).values("pk"))
