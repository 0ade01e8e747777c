"""A clinician of each network with an API token, patients and lab results, and a client that checks
every FHIR answer against the FHIR R4 models."""

import datetime
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken

from diagnostics.models import LabMessage, LabTest, Observation
from diagnostics.models.labs import Source
from hospitals.models import Staff, User
from interop.views import validate
from tests.conftest import Network, PatientFactory, StaffFactory

FhirGet = Callable[..., Any]


@pytest.fixture(autouse=True)
def validated_responses(settings):  # type: ignore[no-untyped-def]
    settings.FHIR_VALIDATE_RESPONSES = True


@pytest.fixture
def tula_clinician(network_a: Network) -> User:
    return StaffFactory(hospital=network_a.regional, role=Staff.Role.CLINICIAN).user


@pytest.fixture
def kostroma_clinician(network_b: Network) -> User:
    return StaffFactory(hospital=network_b.regional, role=Staff.Role.CLINICIAN).user


def fhir_client(user: User | None) -> FhirGet:
    """GET with the user's API token (None: anonymous); the JSON body, checked against FHIR R4."""
    headers = {"HTTP_AUTHORIZATION": f"Token {AuthToken.objects.create(user)[1]}"} if user else {}

    def get(path: str, expect: int = 200, /, **query: Any) -> dict[str, Any]:
        response = Client().get(path, query, **headers)
        assert response.status_code == expect, response.content
        assert response["Content-Type"].startswith("application/fhir+json")
        body = json.loads(response.content)
        validate(body)
        return body

    return get


@pytest.fixture
def tula(tula_clinician: User) -> FhirGet:
    return fhir_client(tula_clinician)


@pytest.fixture
def kostroma(kostroma_clinician: User) -> FhirGet:
    return fhir_client(kostroma_clinician)


def observation_make(
    patient: Any, *, loinc: str = "14749-6", value: str = "5.4", flag: str = "normal", **fields: Any
) -> Observation:
    test = LabTest.objects.get(loinc=loinc)
    message, _ = LabMessage.objects.get_or_create(
        hospital=patient.hospital,
        sender="user:1",
        control_id="fhir-tests",
        defaults={"source": Source.FHIR, "raw": "{}"},
    )
    observed_at = fields.pop("observed_at", timezone.now() - datetime.timedelta(hours=1))
    return Observation.objects.create(
        hospital=patient.hospital,
        patient=patient,
        message=message,
        test=test,
        record_number=patient.record_number,
        code_sent=loinc,
        value_sent=value,
        value=Decimal(value),
        unit=test.unit,
        unit_sent=test.unit,
        low=Decimal("3.9"),
        high=Decimal("6.1"),
        flag=flag,
        observed_at=observed_at,
        key=f"{patient.pk}-{loinc}-{observed_at.isoformat()}-{value}",
        **fields,
    )


@pytest.fixture
def tula_patient(network_a: Network) -> Any:
    return PatientFactory(hospital=network_a.regional, snils="11223344595")


@pytest.fixture
def kostroma_patient(network_b: Network) -> Any:
    return PatientFactory(hospital=network_b.regional)
