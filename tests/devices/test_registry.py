"""A hospital admin keeps the hospital's devices and their tokens on the device pages; every change is audited."""

import hashlib
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.models import Device, DeviceToken
from hospitals.models import AuditEntry, Staff, User
from tests.conftest import Network, StaffFactory
from tests.devices.conftest import token_for

TOKEN = re.compile(r"mhd_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def _form(**overrides: str) -> dict[str, str]:
    return {
        "name": "Glucometer 2",
        "kind": "glucose_meter",
        "vendor": "Elta",
        "model_name": "Satellit Express",
        "serial": "GM-7781",
        "location": "Train 002, car 7",
        "ae_title": "",
        **overrides,
    }


def test_an_admin_registers_a_device_and_sees_it_listed(
    tula_admin: User, network_a: Network, network_b: Network, login
) -> None:  # type: ignore[no-untyped-def]
    client = login(tula_admin)
    response = client.post("/devices/new/", {**_form(), "hospital": network_b.regional.pk})

    device = Device.objects.get(serial="GM-7781")
    assert response.status_code == 302 and response["Location"] == f"/devices/{device.pk}/"
    assert device.hospital == network_a.regional  # the admin's own hospital, whatever the form claimed
    assert (device.vendor, device.model_name, device.location, device.active) == (
        "Elta",
        "Satellit Express",
        "Train 002, car 7",
        True,
    )
    page = client.get("/devices/").content.decode()
    for text in ("Glucometer 2", "glucose meter", "Elta Satellit Express", "GM-7781", "Train 002, car 7", "never"):
        assert text in page
    assert AuditEntry.objects.filter(action="create", object_type="devices.device", object_id=str(device.pk)).exists()


def test_a_platform_admin_registers_a_device_for_the_hospital_chosen(
    platform_admin: User, network_b: Network, login
) -> None:  # type: ignore[no-untyped-def]
    response = login(platform_admin).post(
        "/devices/new/", {**_form(ae_title="KOS_XR1"), "hospital": network_b.regional.pk}
    )
    assert response.status_code == 302
    assert Device.objects.get(ae_title="KOS_XR1").hospital == network_b.regional


def test_the_devices_link_is_in_the_navigation_of_admins_only(tula_admin: User, network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    assert 'href="/devices/"' in login(tula_admin).get("/").content.decode()
    clinician = StaffFactory(hospital=network_a.regional).user
    assert 'href="/devices/"' not in login(clinician).get("/").content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ae_title", "TULA_US1", "Another device already has this AE title; give each modality its own."),
        ("ae_title", "УЗИ_ТУЛА", "only Latin letters"),
        ("name", "<script>alert(1)</script>", "Remove the characters &lt; and &gt;."),
        ("name", "", "This field is required."),
        ("kind", "toaster", "Select a valid choice."),
        ("location", "W" * 121, "Ensure this value has at most 120 characters (it has 121)."),
    ],
)
def test_bad_input_registers_nothing_says_why_and_is_audited(
    field: str, value: str, message: str, tula_admin: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    Device.objects.create(hospital=network_a.regional, name="US", kind=Device.Kind.ULTRASOUND, ae_title="TULA_US1")
    response = login(tula_admin).post("/devices/new/", _form(**{field: value}))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page and "nothing was saved" in page
    assert "<script>alert(1)</script>" not in page
    assert not Device.objects.filter(serial="GM-7781").exists()
    assert AuditEntry.objects.filter(action="create", outcome="invalid", object_type="devices.device").count() == 1


def test_an_admin_edits_a_device_and_the_audit_says_what_changed(tula_admin: User, analyser: Device, login) -> None:  # type: ignore[no-untyped-def]
    client = login(tula_admin)
    form = _form(name="Blood analyser 1", kind="lab_analyser", vendor="Mindray", model_name="BC-5150")
    response = client.post(f"/devices/{analyser.pk}/", {**form, "serial": "SN-0042", "location": "Tula-1 station"})

    assert response.status_code == 302
    analyser.refresh_from_db()
    assert analyser.location == "Tula-1 station"
    entry = AuditEntry.objects.get(action="update", object_type="devices.device", object_id=str(analyser.pk))
    assert entry.detail == "location: 'Laboratory' -> 'Tula-1 station'"
    assert "Changes to Blood analyser 1 saved." in client.get(f"/devices/{analyser.pk}/").content.decode()


def test_a_bad_edit_keeps_the_device_as_it_was(tula_admin: User, analyser: Device, login) -> None:  # type: ignore[no-untyped-def]
    response = login(tula_admin).post(f"/devices/{analyser.pk}/", _form(name="", kind="lab_analyser"))
    assert response.status_code == 400
    assert "<h1>Blood analyser 1</h1>" in response.content.decode()
    analyser.refresh_from_db()
    assert (analyser.name, analyser.serial) == ("Blood analyser 1", "SN-0042")
    assert AuditEntry.objects.filter(action="update", outcome="invalid", object_id=str(analyser.pk)).count() == 1


def test_a_token_is_shown_once_and_only_its_hash_is_kept(tula_admin: User, analyser: Device, login) -> None:  # type: ignore[no-untyped-def]
    client = login(tula_admin)
    response = client.post(f"/devices/{analyser.pk}/tokens/")

    assert response.status_code == 201
    page = response.content.decode()
    assert "Copy it now: it will not be shown again." in page
    plain = TOKEN.search(page)
    assert plain is not None
    token = plain.group()
    assert "no-store" in response["Cache-Control"]  # no browser or proxy keeps the page

    stored = DeviceToken.objects.get(device=analyser)
    assert stored.digest == hashlib.sha256(token.encode()).hexdigest()
    secret = token.split("_", 2)[2]
    for row in DeviceToken.objects.values():
        assert not any(secret in str(value) for value in row.values())
    assert not any(secret in entry.detail for entry in AuditEntry.objects.all())
    assert AuditEntry.objects.filter(
        action="create", object_type="devices.devicetoken", object_id=str(stored.pk)
    ).exists()

    again = client.get(f"/devices/{analyser.pk}/").content.decode()
    assert secret not in again and str(stored) in again  # named by its prefix, never shown in full again
    assert "“Authorization: Device &lt;token&gt;”" in again  # how to send it, readable
    assert "1 active" in client.get("/devices/").content.decode()


def test_an_admin_replaces_a_token_and_the_old_one_is_revoked(tula_admin: User, analyser: Device, login) -> None:  # type: ignore[no-untyped-def]
    old, _ = token_for(analyser, tula_admin)
    response = login(tula_admin).post(f"/devices/{analyser.pk}/tokens/", {"rotate": "1"})

    assert response.status_code == 201
    assert "The previous token was revoked and no longer works." in response.content.decode()
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert analyser.tokens.filter(revoked_at__isnull=True).count() == 1
    assert AuditEntry.objects.filter(action="update", object_type="devices.devicetoken", object_id=str(old.pk)).exists()


def test_issuing_another_token_keeps_the_current_one(tula_admin: User, analyser: Device, login) -> None:  # type: ignore[no-untyped-def]
    token_for(analyser, tula_admin)
    assert login(tula_admin).post(f"/devices/{analyser.pk}/tokens/").status_code == 201
    assert analyser.tokens.filter(revoked_at__isnull=True).count() == 2


def test_an_admin_revokes_a_token(tula_admin: User, analyser: Device, login) -> None:  # type: ignore[no-untyped-def]
    token, _ = token_for(analyser, tula_admin)
    client = login(tula_admin)
    response = client.post(f"/devices/{analyser.pk}/tokens/{token.pk}/revoke/", follow=True)

    assert "the device can no longer send with it" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None
    entry = AuditEntry.objects.get(action="update", object_type="devices.devicetoken", object_id=str(token.pk))
    assert entry.actor_username == "o.smirnova" and "revoked" in entry.detail


def test_a_token_is_revoked_only_through_its_own_device(
    tula_admin: User, analyser: Device, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    other = Device.objects.create(hospital=network_a.regional, name="ECG", kind=Device.Kind.ECG)
    token, _ = token_for(other, tula_admin)
    response = login(tula_admin).post(f"/devices/{analyser.pk}/tokens/{token.pk}/revoke/")
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_an_admin_deactivates_and_activates_a_device(tula_admin: User, analyser: Device, login) -> None:  # type: ignore[no-untyped-def]
    client = login(tula_admin)
    page = client.post(f"/devices/{analyser.pk}/deactivate/", follow=True).content.decode()
    analyser.refresh_from_db()
    assert not analyser.active and "is deactivated" in page
    assert "deactivated" in client.get("/devices/").content.decode()

    client.post(f"/devices/{analyser.pk}/activate/")
    analyser.refresh_from_db()
    assert analyser.active
    details = AuditEntry.objects.filter(action="update", object_id=str(analyser.pk)).values_list("detail", flat=True)
    assert list(details.order_by("id")) == ["deactivated", "activated"]


def test_a_tula_admin_cannot_reach_a_kostroma_device(tula_admin: User, kostroma_device: Device, login) -> None:  # type: ignore[no-untyped-def]
    client = login(tula_admin)
    pk = kostroma_device.pk
    assert client.get(f"/devices/{pk}/").status_code == 404
    assert client.post(f"/devices/{pk}/", _form()).status_code == 404
    assert client.post(f"/devices/{pk}/tokens/").status_code == 404
    assert client.post(f"/devices/{pk}/deactivate/").status_code == 404
    assert "Kostroma glucometer" not in client.get("/devices/").content.decode()

    kostroma_device.refresh_from_db()
    assert kostroma_device.active and kostroma_device.name == "Kostroma glucometer"
    assert not kostroma_device.tokens.exists()
    assert AuditEntry.objects.filter(outcome="not_found", object_type="devices.device", object_id=str(pk)).count() == 4


@pytest.mark.parametrize("role", [Staff.Role.CLINICIAN, Staff.Role.SPECIALIST])
def test_clinicians_and_specialists_may_not_manage_devices(
    role: str, network_a: Network, analyser: Device, login
) -> None:  # type: ignore[no-untyped-def]
    client = login(StaffFactory(hospital=network_a.regional, role=role).user)
    response = client.get("/devices/")
    assert response.status_code == 403
    assert "Only hospital admins manage devices." in response.content.decode()
    assert client.post("/devices/new/", _form()).status_code == 403
    assert client.post(f"/devices/{analyser.pk}/tokens/").status_code == 404
    assert not Device.objects.filter(serial="GM-7781").exists() and not analyser.tokens.exists()


def test_the_device_list_costs_the_same_queries_for_many_devices(
    tula_admin: User, analyser: Device, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    client = login(tula_admin)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/devices/").status_code == 200
        return len(captured)

    token_for(analyser, tula_admin)
    queries()  # the first request of a session also writes the session
    few = queries()
    for n in range(5):
        device = Device.objects.create(hospital=network_a.regional, name=f"Glucometer {n}", kind="glucose_meter")
        token_for(device, tula_admin)
    assert queries() == few


def test_the_platform_admin_sees_tokens_in_the_django_admin_without_their_hash(
    platform_admin: User, analyser: Device, login
) -> None:  # type: ignore[no-untyped-def]
    token, plain = token_for(analyser, platform_admin)
    client = login(platform_admin)
    pages = [
        client.get("/admin/devices/devicetoken/").content.decode(),
        client.get(f"/admin/devices/devicetoken/{token.pk}/change/").content.decode(),
        client.get(f"/admin/devices/device/{analyser.pk}/change/").content.decode(),
    ]
    for page in pages:
        assert token.prefix in page
        assert token.digest not in page and plain not in page
    assert client.get("/admin/devices/devicetoken/add/").status_code == 403

    response = client.post(
        "/admin/devices/devicetoken/", {"action": "revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert response.status_code == 200
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEntry.objects.filter(
        object_type="devices.devicetoken", object_id=str(token.pk), action="update"
    ).exists()
