"""Security headers on pages, the API, errors and files: what a browser is told to refuse and not to keep."""

import pytest
from django.test import Client

from tests.conftest import Network, PatientFactory, StaffFactory


def _policy(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """The Content-Security-Policy header as directive -> sources."""
    directives = [part.split() for part in response["Content-Security-Policy"].split(";") if part.strip()]
    return {name: sources for name, *sources in directives}


def _hardened(response) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(response)
    # Only the platform's own script files run: no inline script, no eval, no other origin.
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and response["X-Frame-Options"] == "DENY"
    assert policy["object-src"] == ["'none'"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_a_patient_page_is_hardened_and_never_kept_by_the_browser(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    page = login(StaffFactory(hospital=network_a.regional).user).get(f"/patients/{patient.pk}/")
    assert page.status_code == 200 and patient.family_name in page.content.decode()
    _hardened(page)
    assert page["Cache-Control"] == "no-store"
    # The page itself carries no inline script or inline style for the policy to refuse.
    html = page.content.decode()
    assert "<script>" not in html and " onchange=" not in html and ' style="' not in html


@pytest.mark.django_db
def test_api_answers_and_errors_are_hardened_and_not_stored(network_a: Network, network_b: Network, login) -> None:  # type: ignore[no-untyped-def]
    api = login(StaffFactory(hospital=network_a.regional).user)
    mine = PatientFactory(hospital=network_a.regional)
    foreign = PatientFactory(hospital=network_b.regional)

    found = api.get(f"/api/v1/patients/{mine.pk}/")
    assert found.status_code == 200 and found.json()["record_number"] == mine.record_number
    hidden = api.get(f"/api/v1/patients/{foreign.pk}/")
    assert hidden.status_code == 404
    page_missing = api.get(f"/patients/{foreign.pk}/")
    assert page_missing.status_code == 404
    for response in (found, hidden, page_missing):
        _hardened(response)
        assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_the_sign_in_page_is_hardened(client: Client) -> None:
    login = client.get("/accounts/login/")
    assert login.status_code == 200
    _hardened(login)
    assert "no-store" in login["Cache-Control"]


@pytest.mark.django_db
def test_the_api_documentation_page_runs_no_inline_script(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    api = login(StaffFactory(hospital=network_a.regional).user)
    page = api.get("/api/docs/")
    html = page.content.decode()
    assert page.status_code == 200 and "swagger-ui" in html
    assert "<script>" not in html and "<style>" not in html
    # Swagger UI's start-up script comes from a URL of its own, which the policy allows.
    script = api.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()
