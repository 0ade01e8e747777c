"""Pages with lists cost the same number of queries for 3 rows as for 40 (no N+1)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hospitals.audit import Action, audit_record
from hospitals.models import Staff
from tests.conftest import Network, StaffFactory


def _queries(client, path: str) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


@pytest.mark.parametrize("path", ["/staff/", "/audit/", "/hospitals/", "/"])
def test_list_pages_do_not_grow_with_their_rows(path: str, network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    admin = StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN).user
    client = login(admin)
    for _ in range(3):
        audit_record(request=None, user=StaffFactory(hospital=network_a.regional).user, action=Action.VIEW)
    _queries(client, path)  # the first request also refreshes the session's idle clock
    few = _queries(client, path)
    for _ in range(40):
        audit_record(request=None, user=StaffFactory(hospital=network_a.regional).user, action=Action.VIEW)
    assert _queries(client, path) == few
