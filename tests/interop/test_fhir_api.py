"""The FHIR R4 API: read and search of each resource type, paging, _include, the CapabilityStatement,
another hospital's data answered like absent data, and an OperationOutcome for every error."""

import datetime
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from hospitals.models import AuditEntry
from interop.resources import SNILS_SYSTEM, record_number_system
from interop.views import validate
from tests.conftest import Network, PatientFactory
from tests.interop.conftest import FhirGet, observation_make

pytestmark = [pytest.mark.usefixtures("lab_reference")]


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [entry["resource"]["id"] for entry in bundle["entry"] if entry["search"]["mode"] == mode]


def not_found(body: dict[str, Any]) -> bool:
    return body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "not-found"


# The frame.


def test_metadata_lists_exactly_the_served_types_and_parameters(tula: FhirGet) -> None:
    body = tula("/fhir/metadata")
    served = {resource["type"]: resource for resource in body["rest"][0]["resource"]}
    assert set(served) == {
        "Patient",
        "Organization",
        "Observation",
        "ServiceRequest",
        "DiagnosticReport",
        "ImagingStudy",
        "Encounter",
        "Consent",
        "Device",
        "Practitioner",
        "PractitionerRole",
        "DocumentReference",
    }
    assert [i["code"] for i in served["Observation"]["interaction"]] == ["read", "search-type", "create"]
    observation = served["Observation"]
    assert {param["name"] for param in observation["searchParam"]} >= {"patient", "subject", "code", "date", "_count"}
    assert observation["searchInclude"] == ["Observation:patient"]
    assert body["fhirVersion"] == "4.0.1"


def test_an_anonymous_call_is_401_with_an_operation_outcome(tula_patient: Any) -> None:
    response = Client().get(f"/fhir/Patient/{tula_patient.pk}")
    assert response.status_code == 401 and response["Content-Type"].startswith("application/fhir+json")
    assert response.json()["resourceType"] == "OperationOutcome"
    validate(response.json())


def test_an_unknown_type_is_404_naming_it(tula: FhirGet) -> None:
    body = tula("/fhir/Spaceship", 404)
    assert not_found(body) and "Spaceship" in body["issue"][0]["diagnostics"]
    assert not_found(tula("/fhir/Spaceship/1", 404))


def test_an_unsupported_search_parameter_is_400_naming_it(tula: FhirGet) -> None:
    body = tula("/fhir/Patient", 400, shoe_size="42")
    assert body["resourceType"] == "OperationOutcome" and "shoe_size" in body["issue"][0]["diagnostics"]
    assert body["issue"][0]["expression"] == ["shoe_size"]


def test_a_value_not_understood_is_400(tula: FhirGet) -> None:
    body = tula("/fhir/Observation", 400, date="yesterday")
    assert "date" in body["issue"][0]["diagnostics"]
    assert tula("/fhir/Observation", 400, _count="many")["resourceType"] == "OperationOutcome"


# Patient.


def test_a_patient_is_read_with_record_number_and_snils_identifiers(tula: FhirGet, tula_patient: Any) -> None:
    body = tula(f"/fhir/Patient/{tula_patient.pk}")
    identifiers = {identifier["system"]: identifier["value"] for identifier in body["identifier"]}
    assert identifiers[record_number_system(tula_patient.hospital_id)] == tula_patient.record_number
    assert identifiers[SNILS_SYSTEM] == "11223344595"
    assert body["name"][0]["family"] == tula_patient.family_name and body["gender"] == "male"
    assert body["managingOrganization"]["reference"] == f"Organization/{tula_patient.hospital_id}"
    assert AuditEntry.objects.filter(
        object_type="fhir.patient", object_id=str(tula_patient.pk), patient_id=str(tula_patient.pk)
    ).exists()


def test_another_hospitals_patient_is_404_like_an_absent_one(
    tula: FhirGet, kostroma_patient: Any, tula_patient: Any
) -> None:
    other = tula(f"/fhir/Patient/{kostroma_patient.pk}", 404)
    absent = tula("/fhir/Patient/999999", 404)
    assert not_found(other) and other == absent
    assert kostroma_patient.pk not in ids(tula("/fhir/Patient"))
    assert AuditEntry.objects.filter(object_id=str(kostroma_patient.pk), outcome="not_found").exists()


def test_patient_search_by_each_parameter(tula: FhirGet, tula_patient: Any, network_a: Network) -> None:
    other = PatientFactory(hospital=network_a.regional, sex="female", birth_date=datetime.date(1990, 5, 1))
    mine = str(tula_patient.pk)
    system = record_number_system(tula_patient.hospital_id)
    assert ids(tula("/fhir/Patient", identifier=f"{system}|{tula_patient.record_number}")) == [mine]
    assert ids(tula("/fhir/Patient", identifier=f"{SNILS_SYSTEM}|11223344595")) == [mine]
    assert ids(tula("/fhir/Patient", family=tula_patient.family_name)) == [mine]
    assert ids(tula("/fhir/Patient", gender="female")) == [str(other.pk)]
    assert ids(tula("/fhir/Patient", birthdate="ge1980-01-01")) == [str(other.pk)]
    assert ids(tula("/fhir/Patient", birthdate="1961-03-12")) == [mine]
    assert ids(tula("/fhir/Patient", _id=mine)) == [mine]


# Organization.


def test_organizations_are_the_hospitals_of_the_network_only(
    tula: FhirGet, network_a: Network, network_b: Network
) -> None:
    found = ids(tula("/fhir/Organization"))
    assert set(found) == {str(network_a.central.pk), str(network_a.regional.pk)}
    body = tula(f"/fhir/Organization/{network_a.regional.pk}")
    assert body["name"] == network_a.regional.name
    assert body["partOf"]["reference"] == f"Organization/{network_a.central.pk}"
    assert not_found(tula(f"/fhir/Organization/{network_b.regional.pk}", 404))
    assert ids(tula("/fhir/Organization", name="Tula")) == [str(network_a.regional.pk)]


# Observation.


def test_an_observation_carries_loinc_ucum_range_and_interpretation(tula: FhirGet, tula_patient: Any) -> None:
    stored = observation_make(tula_patient, value="7.2", flag="high")
    body = tula(f"/fhir/Observation/{stored.pk}")
    assert body["code"]["coding"][0] == {"system": "http://loinc.org", "code": "14749-6", "display": stored.test.name}
    quantity = body["valueQuantity"]
    assert (
        quantity["value"] == 7.2 and quantity["system"] == "http://unitsofmeasure.org" and quantity["code"] == "mmol/L"
    )
    assert body["referenceRange"][0]["low"]["value"] == 3.9 and body["referenceRange"][0]["high"]["value"] == 6.1
    assert body["interpretation"][0]["coding"][0]["code"] == "H"
    assert body["subject"]["reference"] == f"Patient/{tula_patient.pk}"
    assert AuditEntry.objects.filter(object_type="fhir.observation", patient_id=str(tula_patient.pk)).exists()


def test_a_critical_result_is_interpreted_critically_high(tula: FhirGet, tula_patient: Any) -> None:
    stored = observation_make(tula_patient, value="25", flag="critical_high")
    assert tula(f"/fhir/Observation/{stored.pk}")["interpretation"][0]["coding"][0]["code"] == "HH"


def test_observation_search_by_patient_subject_code_and_date(
    tula: FhirGet, tula_patient: Any, network_a: Network
) -> None:
    now = timezone.now()
    # Noon UTC: the same calendar day in UTC and in Moscow, whichever zone reads the bare date.
    old = observation_make(tula_patient, observed_at=(now - datetime.timedelta(days=10)).replace(hour=12))
    new = observation_make(tula_patient, loinc="718-7", value="140", observed_at=now - datetime.timedelta(hours=1))
    someone_else = observation_make(PatientFactory(hospital=network_a.regional))
    assert ids(tula("/fhir/Observation", patient=f"Patient/{tula_patient.pk}")) == [str(new.pk), str(old.pk)]
    assert ids(tula("/fhir/Observation", subject=str(tula_patient.pk))) == [str(new.pk), str(old.pk)]
    assert ids(tula("/fhir/Observation", code="http://loinc.org|718-7")) == [str(new.pk)]
    assert str(someone_else.pk) in ids(tula("/fhir/Observation", code="14749-6"))
    day = (now - datetime.timedelta(days=5)).date().isoformat()
    mine = {"patient": tula_patient.pk}
    assert ids(tula("/fhir/Observation", date=f"lt{day}", **mine)) == [str(old.pk)]
    assert ids(tula("/fhir/Observation", date=f"le{day}", **mine)) == [str(old.pk)]
    assert ids(tula("/fhir/Observation", date=f"gt{day}", **mine)) == [str(new.pk)]
    assert ids(tula("/fhir/Observation", date=f"ge{day}", **mine)) == [str(new.pk)]
    assert ids(tula("/fhir/Observation", date=old.observed_at.date().isoformat(), **mine)) == [str(old.pk)]
    assert ids(tula("/fhir/Observation", date=f"eq{old.observed_at.date().isoformat()}", **mine)) == [str(old.pk)]
    assert ids(tula("/fhir/Observation", date=f"ne{old.observed_at.date().isoformat()}", **mine)) == [str(new.pk)]


def test_observation_search_pages_with_next_and_previous_links(tula: FhirGet, tula_patient: Any) -> None:
    now = timezone.now()
    made = [
        observation_make(tula_patient, value=f"5.{n}", observed_at=now - datetime.timedelta(minutes=n))
        for n in range(5)
    ]
    first = tula("/fhir/Observation", patient=tula_patient.pk, _count=2)
    assert ids(first) == [str(made[0].pk), str(made[1].pk)]
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "previous" not in links and "_page=2" in links["next"] and "_count=2" in links["next"]
    second = tula(links["next"].split("testserver", 1)[1])
    assert ids(second) == [str(made[2].pk), str(made[3].pk)]
    second_links = {link["relation"]: link["url"] for link in second["link"]}
    assert "_page=1" in second_links["previous"]
    last = tula(second_links["next"].split("testserver", 1)[1])
    assert ids(last) == [str(made[4].pk)] and "next" not in {link["relation"] for link in last["link"]}


def test_include_adds_the_patient_once(tula: FhirGet, tula_patient: Any) -> None:
    observation_make(tula_patient, value="5.1")
    observation_make(tula_patient, value="5.2", observed_at=timezone.now() - datetime.timedelta(hours=3))
    bundle = tula("/fhir/Observation", patient=tula_patient.pk, _include="Observation:patient")
    assert len(ids(bundle)) == 2 and ids(bundle, "include") == [str(tula_patient.pk)]
    included = next(entry for entry in bundle["entry"] if entry["search"]["mode"] == "include")
    assert included["fullUrl"].endswith(f"/fhir/Patient/{tula_patient.pk}")
    assert tula("/fhir/Observation", 400, _include="Observation:performer")["resourceType"] == "OperationOutcome"


def test_another_hospitals_observation_is_404_and_not_found_by_search(
    tula: FhirGet, kostroma: FhirGet, kostroma_patient: Any
) -> None:
    theirs = observation_make(kostroma_patient)
    assert not_found(tula(f"/fhir/Observation/{theirs.pk}", 404))
    assert ids(tula("/fhir/Observation", patient=kostroma_patient.pk)) == []
    assert ids(kostroma("/fhir/Observation", patient=kostroma_patient.pk)) == [str(theirs.pk)]
