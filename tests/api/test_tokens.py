"""API tokens: an expired token is refused and removed, a request reads only its own token (however many a
machine client holds), and the beat's sweep deletes the expired ones."""

from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken

from hospitals.tasks import api_tokens_sweep
from tests.conftest import Network, PatientFactory, StaffFactory


def _get(token: str) -> tuple[int, int]:
    """The patients list with the token: its status and how many queries it took."""
    with CaptureQueriesContext(connection) as queries:
        status = Client(headers={"authorization": f"Token {token}"}).get("/api/v1/patients/").status_code
    return status, len(queries)


def test_an_expired_token_is_refused_and_removed(network_a: Network) -> None:
    user = StaffFactory(hospital=network_a.regional).user
    expired, key = AuthToken.objects.create(user, expiry=timedelta(seconds=-1))
    assert _get(key)[0] == 401
    assert not AuthToken.objects.filter(pk=expired.pk).exists()


def test_a_request_reads_its_own_token_only_however_many_the_client_holds(network_a: Network) -> None:
    user = StaffFactory(hospital=network_a.regional).user
    PatientFactory(hospital=network_a.regional)
    _, key = AuthToken.objects.create(user, expiry=timedelta(days=1))
    _get(key)  # first-use work (content types, sessions) out of the count
    status, alone = _get(key)
    assert status == 200
    for _ in range(20):  # a client that signs in often: old tokens, expired
        AuthToken.objects.create(user, expiry=timedelta(seconds=-1))
    status, among_many = _get(key)
    assert status == 200
    assert among_many == alone


def test_the_sweep_deletes_expired_tokens_and_keeps_live_ones(network_a: Network) -> None:
    user = StaffFactory(hospital=network_a.regional).user
    live, key = AuthToken.objects.create(user, expiry=timedelta(days=1))
    for _ in range(3):
        AuthToken.objects.create(user, expiry=timedelta(seconds=-1))
    assert api_tokens_sweep.delay().get(timeout=10) == 3
    assert list(AuthToken.objects.values_list("pk", flat=True)) == [live.pk]
    assert _get(key)[0] == 200


def test_the_token_brings_the_membership_so_a_request_asks_no_more(network_a: Network) -> None:
    user = StaffFactory(hospital=network_a.regional).user
    PatientFactory(hospital=network_a.regional)
    _, key = AuthToken.objects.create(user, expiry=timedelta(days=1))
    _get(key)  # first-use work out of the count
    with CaptureQueriesContext(connection) as queries:
        response = Client(headers={"authorization": f"Token {key}"}).get("/api/v1/patients/")
    assert response.status_code == 200 and response.json()["count"] == 1
    assert [q["sql"] for q in queries if '"hospitals_staff"' in q["sql"]] == [
        q["sql"] for q in queries if '"knox_authtoken"' in q["sql"]
    ]


def test_a_token_of_a_member_whose_membership_ended_sees_no_patients(network_a: Network) -> None:
    staff = StaffFactory(hospital=network_a.regional)
    PatientFactory(hospital=network_a.regional)
    _, key = AuthToken.objects.create(staff.user, expiry=timedelta(days=1))
    assert _get(key)[0] == 200
    staff.deactivated_at = staff.created_at  # the membership row ended, the account itself still active
    staff.save(update_fields=["deactivated_at"])
    response = Client(headers={"authorization": f"Token {key}"}).get("/api/v1/patients/")
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0, response.json()
