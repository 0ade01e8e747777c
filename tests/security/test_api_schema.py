"""schemathesis against the REST API's OpenAPI schema, as each role with an API token: no server error, no
answer outside the schema, no operation that lets a request without a token through. Bounded (a fixed
number of examples per operation); MHOSPITAL_SCHEMATHESIS_EXAMPLES raises it for a longer run."""

import json
import os

import pytest
import schemathesis
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis import checks

from hospitals.models import Staff
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make, verified_login

EXAMPLES = int(os.environ.get("MHOSPITAL_SCHEMATHESIS_EXAMPLES", "15"))
ROLES = (Staff.Role.CLINICIAN, Staff.Role.SPECIALIST, Staff.Role.HOSPITAL_ADMIN)


def _api_schema():  # type: ignore[no-untyped-def]
    """The schema the API serves at /api/schema/ (pytest-django has set Django up before this module is
    collected); its operations are called over HTTP on the real ASGI server."""
    document = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), cls=DjangoJSONEncoder))
    # Integrations call with a token; the browser's session cookie is the pages' business (and schemathesis
    # would invent one beside the token and take the token's success for an ignored bad cookie).
    document["components"]["securitySchemes"].pop("cookieAuth", None)
    for operations in document["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and "security" in operation:
                operation["security"] = [s for s in operation["security"] if "cookieAuth" not in s]
    return schemathesis.openapi.from_dict(document)


@pytest.fixture
def tokens(network_a: Network, network_b: Network) -> dict[str, str]:
    """An API token of a person in each role, in a network whose hospitals hold patients and consultations,
    with another network's records beside them."""
    for network in (network_a, network_b):
        for _ in range(3):
            consultation_make(PatientFactory(hospital=network.regional))
    found = {}
    for role in ROLES:
        hospital = network_a.central if role == Staff.Role.SPECIALIST else network_a.regional
        answer = verified_login(Client(), StaffFactory(hospital=hospital, role=role).user).post("/api/v1/tokens/")
        assert answer.status_code == 200, answer.content
        found[role] = str(answer.json()["token"])
    return found


schema = _api_schema()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_api_holds_to_its_schema_for_every_role(case, asgi_server: str, tokens: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    for token in tokens.values():
        case.call_and_validate(
            base_url=asgi_server,
            headers={"Authorization": f"Token {token}"},
            # Left out: how strictly requests are validated (an empty `page` reads as the first page; a
            # schema-valid consultation may still be refused by the rules of its state), not what is answered.
            excluded_checks=[checks.negative_data_rejection, checks.positive_data_acceptance],
        )


# Found by the run above, kept as they were found.


@pytest.mark.django_db
def test_a_list_where_a_patient_field_takes_one_value_is_refused_by_name(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    api = login(StaffFactory(hospital=network_a.regional).user)
    body = {"record_number": "A-1", "family_name": "Б", "given_name": "В", "sex": "female", "birth_date": [None, None]}
    answer = api.post("/api/v1/patients/", body, content_type="application/json")
    assert answer.status_code == 400 and answer.json()["errors"] == {
        "birth_date": ["Send one value here, not a list or an object."]
    }
    wrong_type = api.post("/api/v1/patients/", {**body, "birth_date": False}, content_type="application/json")
    assert wrong_type.status_code == 400 and "birth_date" in wrong_type.json()["errors"]
    as_list = api.post("/api/v1/patients/", [body], content_type="application/json")
    assert as_list.status_code == 400 and "one JSON object" in as_list.json()["errors"]["non_field_errors"][0]


@pytest.mark.django_db
def test_an_api_url_nothing_answers_and_a_method_a_view_lacks_are_answered_in_the_apis_terms(client) -> None:  # type: ignore[no-untyped-def]
    missing = client.get("/api/v1/consultations/0.5/")
    assert missing.status_code == 404 and missing.json() == {"code": "not_found", "detail": "Not found."}
    trace = client.generic("TRACE", "/api/v1/tokens/")
    assert trace.status_code == 405 and trace.json()["code"] == "method_not_allowed"
