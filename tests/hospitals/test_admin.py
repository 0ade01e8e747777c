"""Platform admins run the network from the Django admin: hospitals, filters, search, a read-only audit trail."""

import pytest
from django.core.exceptions import ValidationError

from hospitals.audit import Action, audit_record
from hospitals.models import AuditEntry, Hospital, User
from tests.conftest import Network


def test_platform_admin_filters_and_searches_hospitals(
    network_a: Network, network_b: Network, platform_admin: User, login
) -> None:  # type: ignore[no-untyped-def]
    client = login(platform_admin)
    page = client.get("/admin/hospitals/hospital/", {"kind__exact": "regional"}).content.decode()
    assert "Tula Regional Hospital" in page and "Kostroma Regional Hospital" in page
    assert f"/admin/hospitals/hospital/{network_b.central.pk}/change/" not in page  # no row for the central one
    page = client.get("/admin/hospitals/hospital/", {"q": "kostroma"}).content.decode()
    assert f"/admin/hospitals/hospital/{network_b.regional.pk}/change/" in page
    assert f"/admin/hospitals/hospital/{network_a.regional.pk}/change/" not in page


def test_platform_admin_attaches_a_new_train_car_to_the_network(
    network_a: Network, platform_admin: User, login
) -> None:  # type: ignore[no-untyped-def]
    response = login(platform_admin).post(
        "/admin/hospitals/hospital/add/",
        {
            "name": "Medical car, train 100 Moscow–Beijing",
            "kind": "mobile_unit",
            "region": "Trans-Siberian Railway",
            "time_zone": "Asia/Irkutsk",
            "is_active": "on",
            "central_hospital": network_a.central.pk,
            "departments-TOTAL_FORMS": "0",
            "departments-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    car = Hospital.objects.get(name__startswith="Medical car, train 100")
    assert car.central_hospital == network_a.central


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "central", "central_hospital": "self-central"}, "A central hospital does not refer to another one."),
        ({"kind": "regional", "central_hospital": "regional"}, "Choose a central hospital."),
        ({"kind": "regional", "time_zone": "Mars/Olympus"}, "is not a known time zone"),
    ],
)
def test_the_network_rejects_impossible_links(fields: dict[str, str], message: str, network_a: Network) -> None:
    links = {"self-central": network_a.central, "regional": network_a.regional}
    hospital = Hospital(name="New", region="R", kind=fields["kind"], time_zone=fields.get("time_zone", "Europe/Moscow"))
    if "central_hospital" in fields:
        hospital.central_hospital = links[fields["central_hospital"]]
    with pytest.raises(ValidationError, match=message):
        hospital.full_clean()


def test_the_audit_trail_is_read_only_in_the_admin(platform_admin: User, login) -> None:  # type: ignore[no-untyped-def]
    entry = audit_record(request=None, action=Action.VIEW, object_type="x", detail="original")
    client = login(platform_admin)
    assert client.get("/admin/hospitals/auditentry/").status_code == 200
    assert client.get("/admin/hospitals/auditentry/add/").status_code == 403
    client.post(f"/admin/hospitals/auditentry/{entry.pk}/change/", {"detail": "rewritten"})
    client.post(f"/admin/hospitals/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert AuditEntry.objects.get(pk=entry.pk).detail == "original"


def test_only_platform_admins_open_the_django_admin(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import StaffFactory

    flagged = StaffFactory(hospital=network_a.regional, user__is_staff=True).user  # is_staff alone is not enough
    response = login(flagged).get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_changes_are_audited_and_deactivation_goes_through_the_service(
    network_a: Network, platform_admin: User, login
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import StaffFactory

    client = login(platform_admin)
    target = StaffFactory(hospital=network_a.regional)
    target_session = login(target.user)
    response = client.post(
        "/admin/hospitals/staff/", {"action": "deactivate", "_selected_action": [target.pk]}, follow=True
    )
    assert response.status_code == 200
    target.refresh_from_db()
    target.user.refresh_from_db()
    assert target.deactivated_at is not None and not target.user.is_active
    assert target_session.get("/")["Location"] == "/accounts/login/?next=/"
    assert AuditEntry.objects.filter(object_id=str(target.pk), detail="admin: deactivated").count() == 1

    client.post(
        f"/admin/hospitals/hospital/{network_a.regional.pk}/change/",
        {
            "name": network_a.regional.name,
            "kind": "regional",
            "region": "Tula Oblast",
            "time_zone": "Europe/Moscow",
            "is_active": "on",
            "central_hospital": network_a.central.pk,
            "departments-TOTAL_FORMS": "0",
            "departments-INITIAL_FORMS": "0",
        },
    )
    entry = AuditEntry.objects.get(object_type="hospitals.hospital", action="update")
    assert entry.detail == "admin: region" and entry.actor_username == platform_admin.username


def test_platform_admins_set_the_response_deadlines(platform_admin: User, login) -> None:  # type: ignore[no-untyped-def]
    from consultations.models import ResponseDeadline

    row = ResponseDeadline.objects.get(urgency="urgent")
    assert row.hours == 24  # the default
    response = login(platform_admin).post(
        f"/admin/consultations/responsedeadline/{row.pk}/change/", {"urgency": "urgent", "hours": 12}
    )
    assert response.status_code == 302
    assert ResponseDeadline.for_urgency("urgent").total_seconds() == 12 * 3600
